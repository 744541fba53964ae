import net from 'node:net';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('when the database accepts connections but never answers and REQUEST_TIMEOUT_MS is short, then the probes answer 503 with their own body, not a 500', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const config = testConfig(parseDatabaseUrl(`postgres://postgres@127.0.0.1:${port}/zinc`), process.cwd(), { requestTimeoutMs: 300 });
      const database = openDatabase(config.database);
      opened.push(database);
      const app = await buildApp({ config, database, logger: false });
      for (const url of ['/health', '/health/ready']) {
        const res = await app.inject({ url });
        expect(res.statusCode, res.body).toBe(503);
        expect(res.json()).toMatchObject({ status: 'error', database: expect.stringContaining('no answer to SELECT 1 within 2000 ms'), engine: 'postgres' });
      }
      // Other routes keep the answer timeout.
      const metrics = await app.inject({ url: '/api/metrics/revenue' });
      expect(metrics.statusCode).toBe(503);
      expect(metrics.json()).toMatchObject({ error: 'timeout' });
      await app.close();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
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

describe.runIf(MYSQL_URL)('health names the server in use', () => {
  /** On a Galera node (ZINC_TEST_MYSQL_URL may name one) the answers also carry the node and its cluster. */
  let galera: Record<string, unknown> = {};
  beforeAll(async () => {
    const admin = await createConnection(MYSQL_URL!);
    const [rows] = await admin.query("SHOW GLOBAL VARIABLES LIKE 'wsrep_on'");
    await admin.end();
    const server = new URL(MYSQL_URL!);
    if ((rows as Array<{ Value: string }>)[0]?.Value === 'ON') {
      galera = { node: `${server.hostname}:${server.port || 3306}`, cluster: { ready: true, size: expect.any(Number), state: 'Synced', status: 'Primary' } };
    }
  });

  it('when DATABASE_URL names one MySQL/MariaDB server, then /health and /health/ready show no node and no cluster (but on a Galera node)', async () => {
    const testDb = await createTestDatabase('mysql');
    const config = testConfig(testDb.config, process.cwd());
    const database = openDatabase(config.database);
    try {
      await migrateToLatest(database.writer);
      const app = await buildApp({ config, database, logger: false });
      expect((await app.inject({ url: '/health' })).json()).toEqual({ status: 'ok', database: 'ok', engine: 'mysql', ...galera });
      expect((await app.inject({ url: '/health/ready' })).json()).toEqual({ status: 'ok', database: 'ok', engine: 'mysql', schema: 'ok', ...galera });
      await app.close();
    } finally {
      await database.close();
      await testDb.drop();
    }
  });

  it('when DATABASE_URL lists a closed port first and the server second, then both answer through the second, named as the node (with its cluster only on Galera)', async () => {
    const testDb = await createTestDatabase('mysql');
    const server = new URL(MYSQL_URL!);
    const direct = `${server.hostname}:${server.port || 3306}`;
    const url = (testDb.config.kind === 'mysql' ? testDb.config.url : '').replace(`@${server.host}`, `@127.0.0.1:${await closedPort()},${direct}`);
    const config = configFor(url);
    const database = openDatabase(config.database);
    try {
      await migrateToLatest(database.writer);
      const app = await buildApp({ config, database, logger: false });
      const health = await app.inject({ url: '/health' });
      expect([health.statusCode, health.json()]).toEqual([200, { status: 'ok', database: 'ok', engine: 'mysql', ...galera, node: direct }]);
      const ready = await app.inject({ url: '/health/ready' });
      expect([ready.statusCode, ready.json()]).toEqual([200, { status: 'ok', database: 'ok', engine: 'mysql', schema: 'ok', ...galera, node: direct }]);
      await app.close();
    } finally {
      await database.close();
      await testDb.drop();
    }
  });
});
