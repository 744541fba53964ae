import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import type { Database } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { testConfig } from './support/config.js';
import { createTestDatabase, DIALECTS, type TestDatabase } from './support/databases.js';
import { csv } from './support/harness.js';

/**
 * Several instances on one database, each with its own pool (as separate processes behind a load
 * balancer would be): what one starts, the others follow and undo, and a folder imported by all
 * of them at once is stored once.
 */
describe.each(DIALECTS)('three instances on one %s database', (kind) => {
  let testDb: TestDatabase;
  let salesDir: string;
  const databases: Database[] = [];
  const apps: FastifyInstance[] = [];

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    salesDir = mkdtempSync(path.join(tmpdir(), 'zinc-instances-'));
    for (let i = 0; i < 3; i++) {
      const database = openDatabase(testDb.config);
      if (i === 0) await migrateToLatest(database.writer);
      databases.push(database);
      apps.push(await buildApp({ config: testConfig(testDb.config, salesDir, { cacheMaxStaleMs: 200 }), database, logger: false }));
    }
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const database of databases) await database.close();
    await testDb?.drop();
    rmSync(salesDir, { recursive: true, force: true });
  });

  const total = async (app: FastifyInstance) => (await app.inject({ url: '/api/metrics/revenue' })).json() as { total_revenue: string; sale_count: number };

  it('when all three import the same folder at once, then each file is stored once', async () => {
    const files = ['a.csv', 'b.csv', 'c.csv'];
    files.forEach((name, f) => {
      const rows = Array.from({ length: 2_000 }, (_, i) => ['2024-05-01', `F${f}-${String(i).padStart(5, '0')}`, `P-${i % 7}`, '1.25']);
      writeFileSync(path.join(salesDir, name), csv(rows));
    });
    const runs = await Promise.all(apps.map((app) => app.inject({ method: 'POST', url: '/api/import-sales' })));
    for (const run of runs) expect(run.statusCode, run.body).toBe(200);
    const outcomes = runs.flatMap((run) => (run.json() as { files: Array<{ filename: string; status: string }> }).files);
    for (const name of files) {
      const statuses = outcomes.filter((o) => o.filename === name).map((o) => o.status);
      expect(statuses.filter((s) => s === 'success'), `${name}: ${statuses.join(', ')}`).toHaveLength(1);
      expect(statuses.filter((s) => s !== 'success' && s !== 'skipped'), name).toEqual([]);
    }
    await expect.poll(async () => (await total(apps[2]!)).sale_count, { timeout: 5_000 }).toBe(6_000);
    expect(await total(apps[0]!)).toMatchObject({ total_revenue: '7500.00', sale_count: 6_000 });
  }, 60_000);

  it('when an upload is answered 202 on one instance, then another follows it to the end and a third undoes it', async () => {
    const [a, b, c] = apps as [FastifyInstance, FastifyInstance, FastifyInstance];
    const before = await total(c);
    const rows = Array.from({ length: 5_000 }, (_, i) => ['2024-06-02', `U-${String(i).padStart(5, '0')}`, 'P-1', '2.00']);
    const started = await a.inject({ method: 'POST', url: '/api/imports?async=true', payload: csv(rows), headers: { 'content-type': 'text/csv' } });
    expect(started.statusCode, started.body).toBe(202);
    const id = (started.json() as { id: number }).id;

    await expect
      .poll(async () => (await b.inject({ url: `/api/imports/${id}` })).json().status, { timeout: 30_000 })
      .toBe('success');
    expect((await b.inject({ url: `/api/imports/${id}` })).json()).toMatchObject({ id, num_rows: 5_000 });
    await expect.poll(async () => (await c.inject({ url: '/api/metrics/revenue' })).json().sale_count, { timeout: 5_000 }).toBe(before.sale_count + 5_000);

    const undone = await c.inject({ method: 'DELETE', url: `/api/imports/${id}` });
    expect(undone.statusCode, undone.body).toBe(200);
    expect(undone.json()).toMatchObject({ id, status: 'reverted' });
    // The instance that ran the import sees the undo within its staleness bound.
    await expect.poll(async () => (await total(a)).sale_count, { timeout: 5_000 }).toBe(before.sale_count);
    expect((await total(a)).total_revenue).toBe(before.total_revenue);
  }, 60_000);
});
