import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import type { Database } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { testConfig } from './support/config.js';
import { csv } from './support/harness.js';

/**
 * Everything mutable belongs to an app (or to the Database object it was given): two apps built in
 * one process never see each other's running imports, cache invalidations or write queues.
 */
describe('two apps in one process', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** An app on an SQLite file of its own (or on `file`, through a Database object of its own). */
  async function app(options: { file?: string; cacheMaxStaleMs?: number } = {}) {
    const dir = mkdtempSync(path.join(tmpdir(), 'zinc-instance-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = options.file ?? path.join(dir, 'zinc.sqlite');
    const database: Database = openDatabase({ kind: 'sqlite', path: file });
    await migrateToLatest(database.writer);
    const config = testConfig({ kind: 'sqlite', path: file }, dir, { cacheMaxStaleMs: options.cacheMaxStaleMs ?? 60_000 });
    const instance: FastifyInstance = await buildApp({ config, database, logger: false });
    cleanups.push(async () => {
      await instance.close();
      await database.close();
    });
    return { instance, database, file, dir };
  }

  const upload = (instance: FastifyInstance, rows: string[][], async = false) =>
    instance.inject({
      method: 'POST',
      url: `/api/imports?async=${async}`,
      payload: csv(rows),
      headers: { 'content-type': 'text/csv' },
    });

  it('when one app runs a long import, then the other does not wait for it and each answers about its own imports', async () => {
    const a = await app();
    const b = await app();
    // A large file for A: its import runs for seconds, its record processing meanwhile.
    const rows = Array.from({ length: 300_000 }, (_, i) => ['2024-02-01', `A-${String(i).padStart(7, '0')}`, `P-${i % 50}`, '1.00']);
    const started = await upload(a.instance, rows, true);
    expect(started.statusCode, started.body).toBe(202);
    const id = started.json().id as number;

    // B's queue and locks are its own: it imports at once, while A's import runs.
    const imported = await upload(b.instance, [['2024-02-01', 'B-1', 'P-1', '2.00']]);
    expect(imported.statusCode, imported.body).toBe(200);
    expect(imported.json()).toMatchObject({ id, status: 'success', num_rows: 1 });

    // The same id names A's running import on A (with its progress) and B's finished one on B.
    const onA = (await a.instance.inject({ url: `/api/imports/${id}` })).json();
    expect(onA).toMatchObject({ status: 'processing', progress: { bytes_total: expect.any(Number) } });
    const onB = (await b.instance.inject({ url: `/api/imports/${id}` })).json();
    expect(onB.status).toBe('success');
    expect(onB.progress).toBeUndefined();

    await expect.poll(async () => (await a.instance.inject({ url: `/api/imports/${id}` })).json().status, { timeout: 60_000 }).toBe('success');
    expect((await a.instance.inject({ url: '/api/metrics/revenue' })).json().total_revenue).toBe('300000.00');
    expect((await b.instance.inject({ url: '/api/metrics/revenue' })).json().total_revenue).toBe('2.00');
  });

  it('when two apps share one database file, then an import shows at once on the app that made it and within the staleness bound on the other', async () => {
    const a = await app({ cacheMaxStaleMs: 60_000 });
    const b = await app({ file: a.file, cacheMaxStaleMs: 60_000 });
    const url = '/api/metrics/revenue';
    expect((await a.instance.inject({ url })).json().total_revenue).toBe('0.00');
    expect((await b.instance.inject({ url })).json().total_revenue).toBe('0.00');

    expect((await upload(a.instance, [['2024-03-01', 'S-1', 'P-1', '5.00']], true)).statusCode).toBe(202);
    await expect.poll(async () => (await a.instance.inject({ url })).json().total_revenue, { timeout: 10_000 }).toBe('5.00');
    // B was not told: A's commit listeners are A's. B re-reads the version within CACHE_MAX_STALE_MS.
    expect((await b.instance.inject({ url })).json().total_revenue).toBe('0.00');
  });
});
