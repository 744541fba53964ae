import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database, DB, DialectName } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { importFolder } from '../src/imports/import.service.js';
import { undoImport } from '../src/imports/undo.service.js';
import { writeRetryTuning } from '../src/write/sales-change.js';
import { DIALECTS } from './support/databases.js';
import { createGaleraDatabase, GALERA_URLS, type GaleraDatabase } from './support/galera.js';
import { csv, orderId, useHarness } from './support/harness.js';
import { expectRollupsMatchRebuild } from './support/rollups.js';

/**
 * Changes to sales that the database refuses as conflicting with another writer are run again,
 * whole, a bounded number of times (src/write/sales-change.ts). The conflicts here are real: a
 * second connection and the import's (or undo's) own transaction deadlock on rows of the database,
 * and the server picks the import as the victim. No database is mocked.
 *
 * SQLite cannot produce one: a change's transaction holds the write lock from BEGIN IMMEDIATE, so
 * no statement in it ever meets another writer (Dialect.conflictCode is undefined there). What
 * runs on it too: an error that is no conflict is never retried. On a Galera cluster
 * (ZINC_TEST_GALERA_URLS), the conflict is the cluster's own: another node commits a write to a
 * row the import's transaction has written, and the import is aborted for it (1213).
 */

/** A competing writer, one transaction on a connection of its own (not Zinc's pool). */
interface Competitor {
  query(text: string): Promise<unknown>;
  close(): Promise<void>;
}

async function connect(kind: DialectName, url: string): Promise<Competitor> {
  if (kind === 'postgres') {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    await client.connect();
    return { query: (text) => client.query(text), close: () => client.end() };
  }
  const conn = await createConnection(url);
  return { query: (text) => conn.query(text), close: () => conn.end() };
}

/**
 * Inside an attempt's transaction `trx`: makes it deadlock with a second connection. `trx` locks
 * row A of a scratch table; the competitor locks the data version's row (B), which every change
 * writes last (writeDelta, bumpDataVersion), then asks for A and waits. When the change reaches
 * B, each waits for the other. The server must pick the change as the victim:
 *
 * - MySQL/MariaDB (InnoDB detects the cycle at once) rolls back the transaction that changed
 *   fewer rows: the competitor first inserts 5,000 rows of its own, far more than the change's.
 * - PostgreSQL fails the backend whose deadlock_timeout runs out first, checking: 100 ms for the
 *   change, 60 s for the competitor.
 *
 * Resolves to the competitor's end: it gets A once the change rolled back, then rolls back too.
 */
async function deadlockWith(kind: DialectName, url: string, trx: DB): Promise<{ done: Promise<void> }> {
  if (kind === 'postgres') await sql`SET LOCAL deadlock_timeout = '100ms'`.execute(trx);
  await sql`SELECT id FROM zinc_test_conflict WHERE id = 1 FOR UPDATE`.execute(trx);
  const competitor = await connect(kind, url);
  await competitor.query('BEGIN');
  if (kind === 'postgres') await competitor.query(`SET LOCAL deadlock_timeout = '60s'`);
  else await competitor.query(`INSERT INTO zinc_test_weight (n) VALUES ${Array.from({ length: 5000 }, (_, i) => `(${i})`).join(', ')}`);
  await competitor.query('SELECT version FROM data_version WHERE id = 1 FOR UPDATE');
  const done = competitor
    .query('SELECT id FROM zinc_test_conflict WHERE id = 1 FOR UPDATE')
    .then(() => competitor.query('ROLLBACK'))
    .then(
      () => competitor.close(),
      async (error: unknown) => {
        await competitor.close().catch(() => {});
        throw error;
      },
    );
  // Seen by the test at the end: a competitor that failed means the change was not the victim.
  done.catch(() => {});
  return { done };
}

describe.each(DIALECTS)('write conflicts on %s', (kind) => {
  const h = useHarness(kind);
  const conflicts = kind !== 'sqlite';

  const tuning = { ...writeRetryTuning };
  beforeAll(() => {
    // Short pauses between attempts: the backoff's length is not what is tested here.
    writeRetryTuning.baseDelayMs = 10;
  });
  afterAll(() => {
    Object.assign(writeRetryTuning, tuning);
  });

  beforeEach(async () => {
    if (!conflicts) return;
    await sql`CREATE TABLE IF NOT EXISTS zinc_test_conflict (id INT PRIMARY KEY)`.execute(h.database.writer);
    await sql`CREATE TABLE IF NOT EXISTS zinc_test_weight (n INT)`.execute(h.database.writer);
    await sql`INSERT INTO zinc_test_conflict (id) VALUES (1)`.execute(h.database.writer);
    // The data version's row exists, as after any change: the competitor locks it.
    await sql`INSERT INTO data_version (id, version) VALUES (1, 1)`.execute(h.database.writer);
  });

  const url = () => (h.config.database as { url: string }).url;

  /** A log that keeps its warnings. */
  function recordingLog() {
    const warnings: Array<{ fields: Record<string, unknown>; msg: string | undefined }> = [];
    return {
      warnings,
      log: { info: () => {}, error: () => {}, warn: (fields: object, msg?: string) => warnings.push({ fields: fields as Record<string, unknown>, msg }) },
    };
  }

  /** zinc_write_conflicts_total as the app's /metrics shows it. */
  async function conflictCounts() {
    const text = (await h.app.inject({ url: '/metrics' })).body;
    const count = (outcome: string) => Number(new RegExp(`^zinc_write_conflicts_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
    return { retried: count('retried'), exhausted: count('exhausted') };
  }

  async function rowsOf(importId: number) {
    return h.database.db.selectFrom('sales').select(['order_id', 'amount_sgd']).where('imported_file_id', '=', importId).execute();
  }

  it('when a change throws an error that is no write conflict, then it is not run again and the import fails at once', async () => {
    h.writeCsv('a.csv', csv([['2024-06-01', orderId(), 'P-1', '5.00']]));
    const attempts: number[] = [];
    const { log } = recordingLog();
    const run = importFolder(h.database, h.salesDir, {
      onError: 'fail',
      log,
      onLoadAttempt: async (_trx, attempt) => {
        attempts.push(attempt);
        throw new Error('not a conflict');
      },
    });
    await expect(run).rejects.toThrow('not a conflict');
    expect(attempts).toEqual([1]);
    expect(await conflictCounts()).toEqual({ retried: 0, exhausted: 0 });
    const record = await h.database.db.selectFrom('imported_files').selectAll().executeTakeFirstOrThrow();
    expect(record).toMatchObject({ status: 'failed', num_rows: 0, error_message: 'database error: not a conflict' });
    expect(await rowsOf(record.id)).toEqual([]);
  });

  it.runIf(conflicts)(
    'when the import\'s transaction deadlocks with another writer once, then it is run again whole and succeeds: rows stored once, rollups as a rebuild, the retry logged and counted',
    async () => {
      const orders = Array.from({ length: 40 }, () => orderId('RETRY'));
      h.writeCsv('a.csv', csv(orders.map((o, i) => [`2024-06-0${1 + (i % 5)}`, o, `P-${i % 3}`, '2.50'])));
      const attempts: number[] = [];
      const competitors: Array<Promise<void>> = [];
      const { log, warnings } = recordingLog();
      const result = await importFolder(h.database, h.salesDir, {
        onError: 'fail',
        log,
        onLoadAttempt: async (trx, attempt) => {
          attempts.push(attempt);
          if (attempt === 1) competitors.push((await deadlockWith(kind, url(), trx)).done);
        },
      });
      await Promise.all(competitors);
      expect(attempts).toEqual([1, 2]);
      expect(result.files.map((f) => [f.filename, f.status])).toEqual([['a.csv', 'success']]);
      const record = (result.files[0] as { record: { id: number; num_rows: number; error_message: string | null } }).record;
      expect(record).toMatchObject({ num_rows: 40, error_message: null });
      const rows = await rowsOf(record.id);
      expect(rows.map((r) => r.order_id).sort()).toEqual([...orders].sort());
      const total = (await h.app.inject({ url: '/api/metrics/revenue' })).json();
      expect(total).toMatchObject({ total_revenue: '100.00', sale_count: 40, order_count: 40 });
      await expectRollupsMatchRebuild(h.database, 'after a retried import');

      const code = kind === 'postgres' ? '40P01' : '1213';
      expect(warnings).toEqual([
        {
          msg: 'write conflict: running the transaction again',
          fields: expect.objectContaining({ importId: record.id, file: 'a.csv', code, attempt: 1, attempts: 4, reason: expect.stringMatching(/deadlock/i) }),
        },
      ]);
      expect(await conflictCounts()).toEqual({ retried: 1, exhausted: 0 });
    },
    30_000,
  );

  it.runIf(conflicts)(
    'when every attempt deadlocks, then the file fails with a clear message, stores nothing, and the next file of the folder is imported',
    async () => {
      h.writeCsv('a.csv', csv([['2024-07-01', orderId('LOSER'), 'P-1', '9.00'], ['2024-07-02', orderId('LOSER'), 'P-2', '1.00']]));
      h.writeCsv('b.csv', csv([['2024-07-01', orderId('NEXT'), 'P-1', '4.00']]));
      const attempts: string[] = [];
      const competitors: Array<Promise<void>> = [];
      const { log, warnings } = recordingLog();
      const result = await importFolder(h.database, h.salesDir, {
        onError: 'fail',
        log,
        onLoadAttempt: async (trx, attempt, filename) => {
          attempts.push(`${filename}#${attempt}`);
          if (filename !== 'a.csv') return;
          // The previous competitor has let go of both rows before the next one takes them.
          await competitors.at(-1);
          competitors.push((await deadlockWith(kind, url(), trx)).done);
        },
      });
      await Promise.all(competitors);
      expect(attempts).toEqual(['a.csv#1', 'a.csv#2', 'a.csv#3', 'a.csv#4', 'b.csv#1']);

      const code = kind === 'postgres' ? '40P01' : '1213';
      const message = `the database kept refusing the import's transaction as conflicting with another writer (error ${code}, 4 attempts); nothing of the file was stored: run it again`;
      expect(result.files.map((f) => [f.filename, f.status])).toEqual([
        ['a.csv', 'failed'],
        ['b.csv', 'success'],
      ]);
      expect(result.summary).toMatchObject({ imported: 1, failed: 1, rows: 1 });
      const [a, b] = result.files as Array<{ record: { id: number } }>;
      const failed = await h.database.db.selectFrom('imported_files').selectAll().where('id', '=', a!.record.id).executeTakeFirstOrThrow();
      expect(failed).toMatchObject({ status: 'failed', num_rows: 0, error_message: message, owner: null });
      expect(await rowsOf(a!.record.id)).toEqual([]);
      expect(await rowsOf(b!.record.id)).toHaveLength(1);
      const total = (await h.app.inject({ url: '/api/metrics/revenue' })).json();
      expect(total).toMatchObject({ total_revenue: '4.00', sale_count: 1 });
      await expectRollupsMatchRebuild(h.database, 'after an exhausted import');

      expect(warnings.map((w) => [w.msg, w.fields.code, w.fields.attempt])).toEqual([
        ['write conflict: running the transaction again', code, 1],
        ['write conflict: running the transaction again', code, 2],
        ['write conflict: running the transaction again', code, 3],
        ['write conflict: giving up', code, 4],
      ]);
      expect(await conflictCounts()).toEqual({ retried: 3, exhausted: 1 });

      // "Run it again": the failed record is taken over and the file stored.
      const again = await importFolder(h.database, h.salesDir, { onError: 'fail', log });
      expect(again.files.map((f) => [f.filename, f.status])).toEqual([
        ['a.csv', 'success'],
        ['b.csv', 'skipped'],
      ]);
      expect(await rowsOf(a!.record.id)).toHaveLength(2);
    },
    60_000,
  );

  it.runIf(conflicts)('when a shutdown begins during the pause after a conflict, then the import is not run again: it fails as interrupted', async () => {
    h.writeCsv('a.csv', csv([['2024-08-01', orderId(), 'P-1', '3.00']]));
    const shutdown = new AbortController();
    const attempts: number[] = [];
    const competitors: Array<Promise<void>> = [];
    const { log, warnings } = recordingLog();
    writeRetryTuning.baseDelayMs = 60_000;
    try {
      const started = performance.now();
      const result = await importFolder(h.database, h.salesDir, {
        onError: 'fail',
        signal: shutdown.signal,
        log: {
          ...log,
          warn: (fields, msg) => {
            log.warn(fields, msg);
            if (msg === 'write conflict: running the transaction again') shutdown.abort();
          },
        },
        onLoadAttempt: async (trx, attempt) => {
          attempts.push(attempt);
          competitors.push((await deadlockWith(kind, url(), trx)).done);
        },
      });
      await Promise.all(competitors);
      expect(performance.now() - started).toBeLessThan(20_000);
      expect(attempts).toEqual([1]);
      expect(warnings).toHaveLength(1);
      expect(result.files[0]).toMatchObject({
        status: 'failed',
        record: { num_rows: 0, error_message: 'interrupted by shutdown; the next import run takes the file again' },
      });
    } finally {
      writeRetryTuning.baseDelayMs = 10;
    }
  }, 30_000);

  it.runIf(conflicts)('when an undo deadlocks with another writer once, then it is run again and reverts the import', async () => {
    h.writeCsv('a.csv', csv([['2024-09-01', orderId(), 'P-1', '6.00'], ['2024-09-02', orderId(), 'P-2', '7.00']]));
    const { log } = recordingLog();
    const imported = await importFolder(h.database, h.salesDir, { onError: 'fail', log });
    const id = (imported.files[0] as { record: { id: number } }).record.id;
    const attempts: number[] = [];
    const competitors: Array<Promise<void>> = [];
    const record = await undoImport(h.database, id, {
      log,
      onAttempt: async (trx, attempt) => {
        attempts.push(attempt);
        if (attempt === 1) competitors.push((await deadlockWith(kind, url(), trx)).done);
      },
    });
    await Promise.all(competitors);
    expect(attempts).toEqual([1, 2]);
    expect(record).toMatchObject({ id, status: 'reverted' });
    expect(await rowsOf(id)).toEqual([]);
    await expectRollupsMatchRebuild(h.database, 'after a retried undo');
    expect(await conflictCounts()).toEqual({ retried: 1, exhausted: 0 });
  }, 30_000);
});

/**
 * Two nodes of a Galera cluster (the last two listed: galera.test.ts kills the first one): the
 * import writes through one, a competitor commits through the other. The competitor's write is
 * certified first, so applying it on the import's node aborts the import's transaction, which
 * holds the row (a brute-force abort), or the import fails certification at COMMIT: 1213 either way.
 */
describe.runIf(GALERA_URLS.length >= 2)('write conflicts across two nodes of a Galera cluster', () => {
  let cluster: GaleraDatabase;
  let database: Database;
  let salesDir: string;
  const tuning = { ...writeRetryTuning };

  beforeAll(async () => {
    writeRetryTuning.baseDelayMs = 10;
    cluster = await createGaleraDatabase();
    database = openDatabase(cluster.nodes.at(-2)!);
    await migrateToLatest(database.writer);
    await sql`CREATE TABLE zinc_test_conflict (id INT PRIMARY KEY, n INT NOT NULL)`.execute(database.writer);
    await sql`INSERT INTO zinc_test_conflict (id, n) VALUES (1, 0)`.execute(database.writer);
    salesDir = mkdtempSync(path.join(tmpdir(), 'zinc-galera-conflicts-'));
  });
  afterAll(async () => {
    Object.assign(writeRetryTuning, tuning);
    await database?.close();
    await cluster?.drop();
    if (salesDir) rmSync(salesDir, { recursive: true, force: true });
  });

  it('when another node commits a write to a row the import\'s transaction wrote, then the import is aborted (1213), run again and stored once', async () => {
    const orders = Array.from({ length: 30 }, () => orderId('GALERA'));
    writeFileSync(path.join(salesDir, 'a.csv'), csv(orders.map((o, i) => ['2024-10-01', o, `P-${i % 4}`, '1.10'])));
    const attempts: number[] = [];
    const warnings: Array<Record<string, unknown>> = [];
    const log = { info: () => {}, error: () => {}, warn: (fields: object) => warnings.push(fields as Record<string, unknown>) };
    const result = await importFolder(database, salesDir, {
      onError: 'fail',
      log,
      onLoadAttempt: async (trx, attempt) => {
        attempts.push(attempt);
        if (attempt > 1) return;
        await sql`UPDATE zinc_test_conflict SET n = n + 1 WHERE id = 1`.execute(trx);
        const other = await createConnection((cluster.nodes.at(-1) as { url: string }).url);
        try {
          await other.query('UPDATE zinc_test_conflict SET n = n + 10 WHERE id = 1');
        } finally {
          await other.end();
        }
      },
    });
    expect(attempts).toEqual([1, 2]);
    expect(warnings).toEqual([expect.objectContaining({ file: 'a.csv', code: '1213', attempt: 1 })]);
    expect(result.files.map((f) => [f.filename, f.status])).toEqual([['a.csv', 'success']]);
    const id = (result.files[0] as { record: { id: number } }).record.id;
    const stored = await database.db.selectFrom('sales').select('order_id').where('imported_file_id', '=', id).execute();
    expect(stored.map((r) => r.order_id).sort()).toEqual([...orders].sort());
    // The other node's write stands; the import's first attempt left nothing, not even its own write.
    const { rows } = await sql<{ n: number }>`SELECT n FROM zinc_test_conflict WHERE id = 1`.execute(database.db);
    expect(Number(rows[0]!.n)).toBe(10);
    await expectRollupsMatchRebuild(database, 'after an import retried on Galera');
  }, 60_000);
});
