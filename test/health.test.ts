import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { parseDatabaseUrl, type Config } from '../src/config.js';
import { type Database } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { createTestDatabase, MYSQL_URL } from './support/databases.js';
import { testConfig } from './support/config.js';
import { TcpProxy } from './support/tcp-proxy.js';

function configFor(url: string): Config {
  return testConfig(parseDatabaseUrl(url), process.cwd());
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitFor<T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('health when the database is unreachable', () => {
  const opened: Database[] = [];
  afterAll(async () => {
    for (const d of opened) await d.close();
  });

  it.each([
    ['MySQL', 'mysql', 'mysql://root@127.0.0.1:PORT/zinc'],
    ['PostgreSQL', 'postgres', 'postgres://postgres@127.0.0.1:PORT/zinc'],
  ])('when %s is on a closed port, then /health is 503 with the reason and metrics are a JSON 503', async (_name, engine, url) => {
    const config = configFor(url.replace('PORT', String(await closedPort())));
    const database = openDatabase(config.database);
    opened.push(database);
    const app = await buildApp({ config, database, logger: false });
    const started = Date.now();
    const health = await app.inject({ url: '/health' });
    expect(Date.now() - started).toBeLessThan(2500);
    expect(health.statusCode).toBe(503);
    expect(health.json()).toEqual({ status: 'error', database: expect.stringContaining('ECONNREFUSED'), engine });
    const metrics = await app.inject({ url: '/api/metrics/revenue' });
    expect(metrics.statusCode).toBe(503);
    expect(metrics.json()).toMatchObject({ error: 'database_unavailable', message: expect.any(String) });
    await app.close();
  });

  it.runIf(MYSQL_URL)('when the database goes away and comes back, then the service recovers without a restart', async () => {
    const testDb = await createTestDatabase('mysql');
    const proxy = new TcpProxy('127.0.0.1', Number(new URL(MYSQL_URL!).port || 3306));
    await proxy.start();
    const target = new URL(testDb.config.kind === 'mysql' ? testDb.config.url : '');
    target.port = String(proxy.port);
    const config = configFor(target.toString());
    const database = openDatabase(config.database);
    opened.push(database);
    try {
      await migrateToLatest(database.writer);
      const app = await buildApp({ config, database, logger: false });
      expect((await app.inject({ url: '/health' })).statusCode).toBe(200);

      await proxy.stop();
      const down = await waitFor(() => app.inject({ url: '/health' }), (r) => r.statusCode === 503, 3000);
      expect(down.statusCode).toBe(503);
      expect((await app.inject({ url: '/api/metrics/revenue' })).statusCode).toBe(503);

      await proxy.start();
      const up = await waitFor(() => app.inject({ url: '/health' }), (r) => r.statusCode === 200, 5000);
      expect(up.statusCode).toBe(200);
      const metrics = await waitFor(() => app.inject({ url: '/api/metrics/revenue' }), (r) => r.statusCode === 200, 5000);
      expect(metrics.json()).toMatchObject({ total_revenue: '0.00' });
      await app.close();
    } finally {
      await proxy.stop();
      await testDb.drop();
    }
  });
});
