import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { backupDatabase, openDatabase } from '../src/db/dialects/index.js';
import { migrateDown, migrateToLatest, schemaStatus } from '../src/db/migrator.js';
import { migrations } from '../src/db/migrations/index.js';
import { Lifecycle } from '../src/lifecycle.js';
import { createTestDatabase, DIALECTS, MYSQL_URL } from './support/databases.js';
import { csv, orderId, useHarness } from './support/harness.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'zinc-ops-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(DIALECTS)('operations on %s', (kind) => {
  const h = useHarness(kind);

  it('when probes are asked, then live is 200 and ready reports database and schema', async () => {
    expect((await h.app.inject({ url: '/health/live' })).json()).toEqual({ status: 'ok' });
    const ready = await h.app.inject({ url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    // On a Galera node it also names the node and its cluster (test/galera.test.ts).
    const { node: _node, cluster: _cluster, ...rest } = ready.json() as Record<string, unknown>;
    expect(rest).toEqual({ status: 'ok', database: 'ok', engine: kind, schema: 'ok' });
  });

  it('when shutdown has begun, then ready answers 503 while live still answers', async () => {
    const lifecycle = new Lifecycle();
    const app = await buildApp({ config: h.config, database: h.database, logger: false, lifecycle });
    lifecycle.beginShutdown();
    const ready = await app.inject({ url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'shutting_down' });
    expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
    await app.close();
  });

  it('when requests and imports happen, then /metrics shows them by route template and outcome', async () => {
    h.writeCsv('m1.csv', csv([['2024-01-01', orderId(), 'P', '1.00'], ['2024-01-01', orderId(), 'P', 'bad']]));
    await h.app.inject({ url: '/api/import-sales?on_error=skip' });
    await h.app.inject({ url: '/api/import-sales' });
    await h.app.inject({ url: '/api/metrics/revenue?start=2024-01-01&end=2024-01-31' });
    await h.app.inject({ url: '/api/imports/12345' });
    const res = await h.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const text = res.body;
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(text).toMatch(
      /^zinc_http_request_duration_seconds_count\{method="GET",route="\/api\/metrics\/revenue",status_code="200"\} 1$/m,
    );
    expect(text).toMatch(/route="\/api\/imports\/:id",status_code="404"/);
    expect(text).not.toMatch(/start=2024/);
    expect(text).toMatch(/^zinc_imports_total\{outcome="partial"\} 1$/m);
    expect(text).toMatch(/^zinc_imports_total\{outcome="skipped"\} 1$/m);
    expect(text).toMatch(/^zinc_import_rows_total\{result="stored"\} 1$/m);
    expect(text).toMatch(/^zinc_import_rows_total\{result="rejected"\} 1$/m);
    expect(text).toMatch(/^zinc_import_duration_seconds_count\{outcome="partial"\} 1$/m);
    expect(text).toMatch(/^zinc_db_query_errors_total 0$/m);
  });

  it('when METRICS_TOKEN is set, then /metrics needs it', async () => {
    const app = await h.rebuild({ metricsToken: 'prom-secret' });
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
    const ok = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer prom-secret' } });
    expect(ok.statusCode).toBe(200);
  });

  it('when the schema is not at the latest migration, then ready answers 503 naming it', async () => {
    const testDb = await createTestDatabase(kind);
    const database = openDatabase(testDb.config);
    try {
      const app = await buildApp({ config: { ...h.config, database: testDb.config }, database, logger: false });
      const ready = await app.inject({ url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().schema).toMatch(/pending migrations: 2026-11-25T0000-initial/);
      await app.close();
    } finally {
      await database.close();
      await testDb.drop();
    }
  });

  it('when every migration is run down and up again, then the schema comes back and works', async () => {
    const testDb = await createTestDatabase(kind);
    const database = openDatabase(testDb.config);
    try {
      const names = Object.keys(migrations);
      expect(await migrateToLatest(database.writer)).toEqual(names);
      const tables = async () => (await database.db.introspection.getTables()).map((t) => t.name).sort();
      const full = await tables();
      expect(full).toEqual(expect.arrayContaining(['imported_files', 'sales']));
      for (const name of [...names].reverse()) expect(await migrateDown(database.writer)).toBe(name);
      expect(await tables()).not.toContain('sales');
      expect((await schemaStatus(database.db)).pending).toEqual(names);
      expect(await migrateToLatest(database.writer)).toEqual(names);
      expect(await tables()).toEqual(full);
    } finally {
      await database.close();
      await testDb.drop();
    }
  });

  it('when the database has a migration this build does not know, then start-up refuses with what to do', async () => {
    const testDb = await createTestDatabase(kind);
    const database = openDatabase(testDb.config);
    try {
      await migrateToLatest(database.writer);
      await sql`INSERT INTO zinc_migrations (name, timestamp) VALUES ('2099-01-01T0000-future', '2099-01-01T00:00:00.000Z')`.execute(
        database.writer,
      );
      await expect(migrateToLatest(database.writer)).rejects.toThrow(
        /schema is newer than this build .*2099-01-01T0000-future.*deploy the newer image/,
      );
      const app = await buildApp({ config: { ...h.config, database: testDb.config }, database, logger: false });
      expect((await app.inject({ url: '/health/ready' })).json().schema).toMatch(/newer than this build/);
      await app.close();
    } finally {
      await database.close();
      await testDb.drop();
    }
  });

  it('when a backup is taken, then restoring it gives back the same data', async () => {
    h.writeCsv('b.csv', csv([['2024-01-01', orderId(), 'P', '12.34'], ['2024-01-02', orderId(), 'P', '0.66']]));
    await h.app.inject({ url: '/api/import-sales' });
    const before = (await h.app.inject({ url: '/api/metrics/revenue' })).json();
    expect(before.total_revenue).toBe('13.00');
    const file = path.join(tmp, `backup-${kind}-${Date.now()}.${kind === 'sqlite' ? 'sqlite' : 'sql'}`);
    await backupDatabase(h.config.database, file);
    expect(existsSync(file)).toBe(true);

    // Restore into a brand-new database and ask the same question there.
    const restored = await createTestDatabase(kind);
    try {
      if (restored.config.kind === 'sqlite') {
        const conn = new SqliteDatabase(file, { readonly: true });
        await conn.backup(restored.config.path);
        conn.close();
      } else if (restored.config.kind === 'postgres') {
        execFileSync('psql', ['--quiet', '--set=ON_ERROR_STOP=1', `--dbname=${restored.config.url}`, `--file=${file}`]);
      } else {
        const url = new URL(MYSQL_URL!);
        execFileSync('mysql', [`--host=${url.hostname}`, `--port=${url.port || 3306}`, `--user=${url.username}`, restored.config.database], {
          input: (await import('node:fs')).readFileSync(file),
          env: { ...process.env, MYSQL_PWD: decodeURIComponent(url.password) },
        });
      }
      const database = openDatabase(restored.config);
      const app = await buildApp({ config: { ...h.config, database: restored.config }, database, logger: false });
      expect((await app.inject({ url: '/api/metrics/revenue' })).json()).toEqual(before);
      expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200);
      await app.close();
      await database.close();
    } finally {
      await restored.drop();
    }
  });
});
