import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSalesCsv } from '../bench/sales-generator.js';
import { buildApp } from '../src/app.js';
import type { Database } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateDown, migrateToLatest } from '../src/db/migrator.js';
import { recoverInterruptedImports } from '../src/imports/import.service.js';
import { PROGRESS_STALE_MS } from '../src/imports/import-progress.js';
import { testConfig } from './support/config.js';
import { createTestDatabase, DIALECTS, type TestDatabase } from './support/databases.js';

/**
 * The progress of an import, followed from another instance on the same database (its own pool,
 * as a separate process behind a load balancer would have): on MySQL and PostgreSQL as the
 * running instance writes it to `import_progress`; on SQLite, one instance's file, only there.
 */
const ROWS = 400_000;

interface Progress {
  bytes_read: number;
  bytes_total: number;
  rows_read: number;
  rows_per_s: number;
  eta_s: number | null;
}
interface ImportView {
  id: number;
  status: string;
  num_rows: number;
  progress?: Progress;
}

const work = mkdtempSync(path.join(tmpdir(), 'zinc-progress-'));
const bigFile = path.join(work, 'big.csv');
beforeAll(async () => {
  await generateSalesCsv(bigFile, { rows: ROWS, seed: 11 });
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `YYYY-MM-DD HH:MM:SS.mmm`, UTC, `ms` from `now`, as the progress rows store times. */
const utc = (ms: number, now = Date.now()) => new Date(now + ms).toISOString().replace('T', ' ').replace('Z', '');

describe.each(DIALECTS)('import progress across two instances on one %s database', (kind) => {
  let testDb: TestDatabase;
  const databases: Database[] = [];
  const apps: FastifyInstance[] = [];

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    for (let i = 0; i < 2; i++) {
      const database = openDatabase(testDb.config);
      if (i === 0) await migrateToLatest(database.writer);
      databases.push(database);
      apps.push(await buildApp({ config: testConfig(testDb.config, work), database, logger: false }));
    }
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const database of databases) await database.close();
    await testDb?.drop();
  });

  const get = async (app: FastifyInstance, id: number) => (await app.inject({ url: `/api/imports/${id}` })).json() as ImportView;
  const progressRows = async () => Number((await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM import_progress`.execute(databases[0]!.db)).rows[0]!.n);

  it('when an upload is answered 202 on A, then B follows its progress as rows_read grows, then its final status', async () => {
    const [a, b] = apps as [FastifyInstance, FastifyInstance];
    const shares = databases[1]!.dialect.sharesImportProgress;
    const started = await a.inject({
      method: 'POST',
      url: '/api/imports?async=true&filename=big.csv',
      payload: createReadStream(bigFile),
      headers: { 'content-type': 'text/csv' },
    });
    expect(started.statusCode, started.body).toBe(202);
    const id = (started.json() as ImportView).id;

    const seenOnB: Progress[] = [];
    let seenOnA = 0;
    let last: ImportView;
    const deadline = Date.now() + 120_000;
    for (;;) {
      last = await get(b, id);
      if (last.status !== 'processing') break;
      if (last.progress) seenOnB.push(last.progress);
      if ((await get(a, id)).progress) seenOnA++;
      expect(Date.now(), 'the import should have ended').toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(last).toMatchObject({ id, status: 'success', num_rows: ROWS });
    expect(last.progress).toBeUndefined();

    if (!shares) {
      // SQLite: the running app shows it, another app on the same file does not.
      expect(seenOnA).toBeGreaterThan(0);
      expect(seenOnB).toEqual([]);
      return;
    }
    const rows = seenOnB.map((p) => p.rows_read);
    expect(new Set(rows).size, `rows_read seen on B: ${rows.join(', ')}`).toBeGreaterThanOrEqual(2);
    expect(rows, 'rows_read never goes back').toEqual([...rows].sort((x, y) => x - y));
    expect(rows.at(-1)!).toBeGreaterThan(rows[0]!);
    for (const p of seenOnB) {
      expect(p.bytes_total).toBe(statSync(bigFile).size);
      expect(p.bytes_read).toBeLessThanOrEqual(p.bytes_total);
      expect(p.rows_read).toBeLessThanOrEqual(ROWS);
    }
    const moving = seenOnB.find((p) => p.rows_read > 0)!;
    expect(moving.rows_per_s).toBeGreaterThan(0);
    expect(moving.eta_s).toEqual(expect.any(Number));
    // The running instance removes its row once the import has ended.
    await expect.poll(progressRows, { timeout: 5_000 }).toBe(0);
  }, 180_000);

  it('when a processing record has a progress row last written long ago, then it is not shown as live, and the recovery sweep removes it', async () => {
    const [, b] = apps as [FastifyInstance, FastifyInstance];
    const database = databases[0]!;
    // A record whose importer is gone (a pid that does not exist, no lock held).
    const id = await database.dialect.insertReturningId(database.writer, {
      filename: 'abandoned.csv',
      sha256: 'd'.repeat(64),
      size_bytes: 1000,
      imported_at: utc(-60_000),
      num_rows: 0,
      rows_rejected: 0,
      status: 'processing',
      error_message: null,
      error_count: 0,
      errors: '[]',
      warnings: '[]',
      on_error: 'fail',
      owner: `${hostname()}:2147483646:deadbeef`,
      duration_ms: null,
    });
    const row = { import_id: id, bytes_read: 500, bytes_total: 1000, rows_read: 1000, started_at: utc(-10_000) };
    await database.writer.insertInto('import_progress').values({ ...row, updated_at: utc(-PROGRESS_STALE_MS - 1_000) }).execute();
    expect(await get(b, id)).toMatchObject({ id, status: 'processing' });
    expect((await get(b, id)).progress).toBeUndefined();

    // The same row, written a second ago, 9 s after its import started: shown where the dialect
    // shares progress, with its rates.
    const now = Date.now();
    await database.writer
      .updateTable('import_progress')
      .set({ started_at: utc(-10_000, now), updated_at: utc(-1_000, now) })
      .where('import_id', '=', id)
      .execute();
    const fresh = await get(b, id);
    if (database.dialect.sharesImportProgress) {
      expect(fresh.progress).toMatchObject({ bytes_read: 500, bytes_total: 1000, rows_read: 1000, rows_per_s: 111 });
      // 500 bytes left at 500 bytes in 9 s: 9 s from the write, 8 s from a second later (or less).
      expect(fresh.progress!.eta_s).toBeLessThanOrEqual(8);
      expect(fresh.progress!.eta_s).toBeGreaterThan(6);
    } else {
      expect(fresh.progress).toBeUndefined();
    }

    const log = { info: () => {}, warn: () => {}, error: () => {} };
    expect(await recoverInterruptedImports(database, log)).toBe(1);
    expect(await get(b, id)).toMatchObject({ status: 'failed' });
    expect((await get(b, id)).progress).toBeUndefined();
    expect(await progressRows()).toBe(database.dialect.sharesImportProgress ? 0 : 1);
    await sql`DELETE FROM import_progress`.execute(database.writer);
  });
});

describe.each(DIALECTS)('the import_progress migration on %s', (kind) => {
  it('when it is run down and up again, then the table goes and comes back empty and usable', async () => {
    const testDb = await createTestDatabase(kind);
    const database = openDatabase(testDb.config);
    try {
      await migrateToLatest(database.writer);
      const tables = async () => (await database.db.introspection.getTables()).map((t) => t.name);
      const row = { import_id: 1, bytes_read: 2 ** 40, bytes_total: 2 ** 41, rows_read: 3, started_at: utc(-1_000), updated_at: utc(0) };
      await database.writer.insertInto('import_progress').values(row).execute();
      expect(await database.db.selectFrom('import_progress').selectAll().execute()).toEqual([row]);

      expect(await migrateDown(database.writer)).toBe('2026-12-07T0000-import-progress');
      expect(await tables()).not.toContain('import_progress');
      expect(await tables()).toContain('imported_files');

      expect(await migrateToLatest(database.writer)).toEqual(['2026-12-07T0000-import-progress']);
      expect(await database.db.selectFrom('import_progress').selectAll().execute()).toEqual([]);
      await database.writer.insertInto('import_progress').values(row).execute();
      expect(await database.db.selectFrom('import_progress').select('bytes_total').executeTakeFirst()).toEqual({ bytes_total: 2 ** 41 });
    } finally {
      await database.close();
      await testDb.drop();
    }
  });
});
