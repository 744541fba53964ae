import { createHash } from 'node:crypto';
import { renameSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { generateSalesCsv } from '../bench/sales-generator.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { acquireLease, releaseLease } from '../src/imports/import-lease.js';
import { importFile } from '../src/imports/import.service.js';
import { formatCents } from '../src/money.js';
import { createTestDatabase, IMPORT_PATHS, salesIndexes, useImportPath } from './support/databases.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { csv, orderId, useHarness } from './support/harness.js';

interface FileResult {
  id: number;
  sha256: string;
  imported_at: string;
  filename: string;
  status: string;
  num_rows: number;
  rows_rejected: number;
  error_message: string | null;
  error_count: number;
  errors: Array<{ line: number; column: string | null; message: string }>;
  warnings: string[];
}

describe.each(IMPORT_PATHS)('import-sales on $name', (importPath) => {
  const { kind, mysqlLoadMethod } = importPath;
  useImportPath(importPath);
  const h = useHarness(kind, { mysqlLoadMethod });

  async function runImport(query = '') {
    const res = await h.app.inject({ method: 'GET', url: `/api/import-sales/${query}` });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { files: FileResult[]; summary: Record<string, number> };
  }
  async function total(query = '') {
    const res = await h.app.inject({ url: `/api/metrics/revenue/${query}` });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { total_revenue: string; order_count: number; sale_count: number };
  }
  async function salesRows() {
    return h.database.db.selectFrom('sales').selectAll().orderBy('source_line').execute();
  }

  it('when two instances import files with overlapping dates at the same time, then both succeed and every answer counts both', async () => {
    // Two processes in production: two connection pools here. On MySQL each import's rollup
    // refresh reads the days the other is writing; unserialized, InnoDB failed one with a deadlock.
    const a = h.writeCsv('a.csv', '');
    const b = h.writeCsv('b.csv', '');
    const first = await generateSalesCsv(a, { rows: 20_000, seed: 1, firstOrder: 1 });
    const second = await generateSalesCsv(b, { rows: 20_000, seed: 2, firstOrder: 1_000_000 });
    const other = openDatabase(h.config.database);
    try {
      const options = { onError: 'fail' as const, log: { info: () => {}, warn: () => {}, error: () => {} }, mysqlLoadMethod };
      const outcomes = await Promise.all([importFile(h.database, a, 'a.csv', options), importFile(other, b, 'b.csv', options)]);
      expect(outcomes.map((o) => [o.status, o.record.error_message])).toEqual([
        ['success', null],
        ['success', null],
      ]);
    } finally {
      await other.close();
    }
    const body = await total();
    expect(body).toMatchObject({
      total_revenue: formatCents(first.totalCents + second.totalCents),
      order_count: first.orders + second.orders,
      sale_count: 40_000,
    });
    const direct = await sql<{ n: number | string }>`SELECT COUNT(DISTINCT order_id) AS n FROM sales`.execute(h.database.db);
    expect(Number(direct.rows[0]!.n)).toBe(body.order_count);
  });

  // Lock names are server-wide on MySQL; an SQLite file is a database of its own.
  if (kind === 'mysql') it('when a file is being imported into one database, then the same file imports into another database of the server', async () => {
    const content = csv([['2024-01-01', orderId(), 'P-1', '10.00']]);
    const file = h.writeCsv('same.csv', content);
    const sha256 = createHash('sha256').update(content).digest('hex');
    const second = await createTestDatabase('mysql');
    const other = openDatabase(second.config);
    try {
      await migrateToLatest(other.writer);
      // The first database's import lock for this file, held as by an import running there.
      const outcome = await h.database.writer.connection().execute(async (conn) => {
        expect(await acquireLease(h.database, conn, sha256)).toBe(true);
        try {
          return await importFile(other, file, 'same.csv', { onError: 'fail', log: quiet, mysqlLoadMethod });
        } finally {
          await releaseLease(h.database, conn, sha256);
        }
      });
      expect(outcome.status).toBe('success');
    } finally {
      await other.close();
      await second.drop();
    }
  });

  /** Takes the database's write lock as another process would; resolves to its release. */
  async function holdWriteLock(): Promise<() => Promise<void>> {
    const config = h.config.database;
    if (config.kind === 'sqlite') {
      const other = new SqliteDatabase(config.path);
      other.exec('BEGIN IMMEDIATE');
      return async () => {
        other.exec('COMMIT');
        other.close();
      };
    }
    // Another instance of Zinc on the same database, holding its writer lock (an advisory lock,
    // a named lock, or a lease on a Galera cluster).
    const other = openDatabase(config);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const acquired = new Promise<void>((resolve) => (held = resolve));
    const holding = other.writer.connection().execute((conn) =>
      other.dialect.withWriteLock(conn, async () => {
        held();
        await released;
      }),
    );
    await acquired;
    return async () => {
      release();
      await holding;
      await other.close();
    };
  }
  const quiet = { info: () => {}, warn: () => {}, error: () => {} };

  it('when another process holds the write lock for longer than SQLite\'s busy timeout, then an import waits and then succeeds', async () => {
    const file = h.writeCsv('wait.csv', csv([['2024-01-01', orderId(), 'P-1', '10.00']]));
    const release = await holdWriteLock();
    let settled = false;
    const importing = importFile(h.database, file, 'wait.csv', { onError: 'fail', log: quiet, mysqlLoadMethod }).finally(() => (settled = true));
    // Longer than busy_timeout (5 s), which used to fail the import; the event loop stays free meanwhile.
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    expect(performance.now() - started).toBeLessThan(6_500);
    expect(settled).toBe(false);
    await release();
    const outcome = await importing;
    expect([outcome.status, outcome.record.error_message]).toEqual(['success', null]);
    expect(await total()).toMatchObject({ total_revenue: '10.00', sale_count: 1 });
  }, 20_000);

  it('when the process shuts down while an import waits for the write lock, then the wait ends and nothing is stored', async () => {
    const file = h.writeCsv('wait.csv', csv([['2024-01-01', orderId(), 'P-1', '10.00']]));
    const release = await holdWriteLock();
    const instance = openDatabase(h.config.database);
    try {
      const stop = new AbortController();
      const importing = importFile(instance, file, 'wait.csv', { onError: 'fail', log: quiet, mysqlLoadMethod, signal: stop.signal });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // What shutdown does: the signal (MySQL's wait checks it every second), and on SQLite the
      // database closing (its wait checks that between tries).
      stop.abort();
      if (instance.dialect.name === 'sqlite') void instance.close();
      const ended = await Promise.race([
        importing.then((o) => `${o.status}: ${o.record.error_message}`, (error: Error) => `${error.name}: ${error.message}`),
        new Promise((resolve) => setTimeout(() => resolve('still waiting'), 3_000)),
      ]);
      expect(ended).toBe(
        instance.dialect.name === 'sqlite'
          ? 'WriteLockWaitAborted: shutting down while waiting for the write lock'
          : 'failed: interrupted by shutdown; the next import run takes the file again',
      );
    } finally {
      await release();
      await instance.close().catch(() => {});
    }
    expect(await total()).toMatchObject({ total_revenue: '0.00', sale_count: 0 });
  }, 20_000);

  it('when a record was left processing by an importer that died, then the next import of the file takes it over', async () => {
    const content = csv([['2024-01-01', orderId(), 'P-1', '7.00']]);
    const file = h.writeCsv('left.csv', content);
    const sha256 = createHash('sha256').update(content).digest('hex');
    // A process of this machine that no longer exists, holding no claim on any database.
    const { insertId } = await h.database.writer
      .insertInto('imported_files')
      .values({
        filename: 'left.csv', sha256, size_bytes: content.length, imported_at: '2024-01-01 00:00:00.000', num_rows: 0,
        rows_rejected: 0, status: 'processing', error_message: null, error_count: 0, errors: '[]', warnings: '[]',
        on_error: 'fail', owner: `${hostname()}:2147483646:dead`, duration_ms: null,
      })
      .executeTakeFirst();
    const outcome = await importFile(h.database, file, 'left.csv', { onError: 'fail', log: quiet, mysqlLoadMethod });
    expect([outcome.status, outcome.record.num_rows]).toEqual(['success', 1]);
    if (insertId !== undefined) expect(outcome.record.id).toBe(Number(insertId));
    expect(await total()).toMatchObject({ total_revenue: '7.00', sale_count: 1 });
  });

  // pg-copy-streams flushes chunks it still holds into a connection it dropped when the server
  // refused the COPY (a TypeError outside any promise: the process died). The server is made slow
  // on the file's first row, so that the writer is chunks ahead when the refusal comes.
  it.runIf(kind === 'postgres')('when the server refuses the COPY while more of the file is on its way, then the file is replayed and the process lives', async () => {
    const stored = orderId('STORED');
    h.writeCsv('first.csv', csv([['2024-01-01', stored, 'P-1', '1.00']]));
    expect((await runImport()).summary).toMatchObject({ imported: 1 });
    await sql`CREATE FUNCTION zinc_test_slow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.source_line = 2 THEN PERFORM pg_sleep(1); END IF; RETURN NEW; END $$`.execute(h.database.writer);
    await sql`CREATE TRIGGER zinc_test_slow BEFORE INSERT ON sales FOR EACH ROW EXECUTE FUNCTION zinc_test_slow()`.execute(h.database.writer);
    try {
      const rows = Array.from({ length: 250_000 }, () => ['2024-01-02', orderId('NEW'), 'P-1', '2.00']);
      rows.splice(1, 0, ['2024-01-03', stored, 'P-1', '5.00']);
      h.writeCsv('second.csv', csv(rows));
      const body = await runImport();
      expect(body.summary).toMatchObject({ imported: 1, failed: 0, rows: 250_001 });
      expect(await total()).toMatchObject({ total_revenue: formatCents(250_000 * 200 + 500), sale_count: 250_001 });
    } finally {
      await sql`DROP TRIGGER zinc_test_slow ON sales`.execute(h.database.writer);
      await sql`DROP FUNCTION zinc_test_slow()`.execute(h.database.writer);
    }
  }, 60_000);

  it('when the folder is empty, then the run reports no files', async () => {
    const body = await runImport();
    expect(body).toEqual({ files: [], summary: { imported: 0, partial: 0, skipped: 0, failed: 0, rows: 0 } });
  });

  it('when a valid file is imported, then its rows are stored and the record says success', async () => {
    const o = orderId();
    h.writeCsv('2024-01.csv', csv([['2024-01-02', o, 'P-1', '10.50'], ['2024-01-03', o, 'P-2', '-2.25']]));
    const body = await runImport();
    expect(body.summary).toEqual({ imported: 1, partial: 0, skipped: 0, failed: 0, rows: 2 });
    const [file] = body.files;
    expect(file).toMatchObject({
      filename: '2024-01.csv',
      status: 'success',
      num_rows: 2,
      rows_rejected: 0,
      error_message: null,
      error_count: 0,
      errors: [],
      warnings: [],
    });
    expect(file!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(new Date(file!.imported_at).toISOString()).toBe(file!.imported_at);
    expect(await total()).toMatchObject({ total_revenue: '8.25', order_count: 1, sale_count: 2 });

    const record = await h.app.inject({ url: `/api/imports/${file!.id}` });
    expect(record.json()).toMatchObject({ id: file!.id, status: 'success', num_rows: 2, errors: [] });
  });

  it('when files are imported, then they go one at a time in name order', async () => {
    h.writeCsv('b.csv', csv([['2024-01-02', orderId(), 'P', '1.00']]));
    h.writeCsv('a.csv', csv([['2024-01-02', orderId(), 'P', '2.00']]));
    h.writeCsv('notes.txt', 'not a csv');
    h.writeCsv('C.CSV', csv([['2024-01-02', orderId(), 'P', '3.00']]));
    const body = await runImport();
    expect(body.files.map((f) => f.filename)).toEqual(['C.CSV', 'a.csv', 'b.csv']);
    expect(body.summary.rows).toBe(3);
  });

  it('when the same file is imported again or under another name, then it is skipped and nothing doubles', async () => {
    const content = csv([['2024-01-02', orderId(), 'P-1', '10.00']]);
    h.writeCsv('2023-12.csv', content);
    const first = await runImport();
    const id = first.files[0]!.id;

    const again = await runImport();
    expect(again.files[0]).toMatchObject({
      id,
      status: 'skipped',
      error_message: `already imported as 2023-12.csv (import ${id})`,
    });
    renameSync(path.join(h.salesDir, '2023-12.csv'), path.join(h.salesDir, 'copy-of-2023-12.csv'));
    const renamed = await runImport();
    expect(renamed.files[0]).toMatchObject({ id, filename: 'copy-of-2023-12.csv', status: 'skipped' });
    expect(renamed.summary).toMatchObject({ skipped: 1, imported: 0, rows: 0 });
    expect(await total()).toMatchObject({ total_revenue: '10.00', sale_count: 1 });
  });

  it('when a later file carries identities already stored, then those rows are replaced, not counted twice', async () => {
    const o1 = orderId();
    const o2 = orderId();
    h.writeCsv('1.csv', csv([['2024-01-01', o1, 'P-1', '10.00'], ['2024-01-01', o2, 'P-1', '5.00']]));
    await runImport();
    h.writeCsv('2.csv', csv([['2024-01-05', o1, 'P-1', '12.00'], ['2024-01-05', o1, 'P-2', '1.00']]));
    const body = await runImport();
    expect(body.files[1]).toMatchObject({ status: 'success', num_rows: 2 });
    expect(await total()).toMatchObject({ total_revenue: '18.00', order_count: 2, sale_count: 3 });
    const rows = await salesRows();
    const replaced = rows.find((r) => r.order_id === o1 && r.product_id === 'P-1')!;
    expect(replaced.date).toBe('2024-01-05');
    expect(replaced.imported_file_id).toBe(body.files[1]!.id);
  });

  it('when a later file repeats a stored identity twice, then the first replaces it and the second is a row error', async () => {
    const o = orderId();
    h.writeCsv('1.csv', csv([['2024-01-01', o, 'P-1', '10.00']]));
    const first = (await runImport()).files[0]!;
    h.writeCsv('2.csv', csv([['2024-01-02', o, 'P-1', '20.00'], ['2024-01-03', orderId(), 'P-1', '1.00'], ['2024-01-04', o, 'P-1', '30.00']]));
    const second = (await runImport('?on_error=skip')).files[1]!;
    expect(second).toMatchObject({ status: 'partial', num_rows: 2, rows_rejected: 1 });
    expect(second.errors).toEqual([{ line: 4, column: null, message: expect.stringContaining('already appears on line 2') }]);
    expect(await total()).toMatchObject({ total_revenue: '21.00', sale_count: 2 });
    const history = await h.database.db.selectFrom('sales_history').selectAll().execute();
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ order_id: o, imported_file_id: first.id, replaced_by_import_id: second.id, date: '2024-01-01' });
  });

  it('when a later file holds only stored identities and repeats one, then the first replaces it and the repeat is a row error', async () => {
    const o = orderId();
    const other = orderId();
    h.writeCsv('1.csv', csv([['2024-01-01', o, 'P-1', '10.00'], ['2024-01-01', other, 'P-1', '5.00']]));
    const first = (await runImport()).files[0]!;
    h.writeCsv('2.csv', csv([['2024-01-02', o, 'P-1', '20.00'], ['2024-01-03', other, 'P-1', '6.00'], ['2024-01-04', o, 'P-1', '30.00']]));
    const second = (await runImport('?on_error=skip')).files[1]!;
    expect(second).toMatchObject({ status: 'partial', num_rows: 2, rows_rejected: 1 });
    expect(second.errors).toEqual([{ line: 4, column: null, message: expect.stringContaining('already appears on line 2') }]);
    expect(await total()).toMatchObject({ total_revenue: '26.00', sale_count: 2 });
    const history = await h.database.db.selectFrom('sales_history').selectAll().orderBy('order_id').execute();
    expect(history.map((r) => [r.order_id, r.imported_file_id, r.replaced_by_import_id])).toEqual(
      [o, other].sort().map((id) => [id, first.id, second.id]),
    );
  });

  it('when a strict file replacing stored rows fails, then the stored rows and history are untouched', async () => {
    const o = orderId();
    h.writeCsv('1.csv', csv([['2024-01-01', o, 'P-1', '10.00']]));
    await runImport();
    h.writeCsv('2.csv', csv([['2024-01-02', o, 'P-1', '99.00'], ['2024-01-02', orderId(), 'P-1', 'bad']]));
    expect((await runImport()).files[1]!.status).toBe('failed');
    expect(await total()).toMatchObject({ total_revenue: '10.00', sale_count: 1 });
    expect(await h.database.db.selectFrom('sales_history').selectAll().execute()).toEqual([]);
  });

  it('when identities differ only in case, then they are different orders', async () => {
    h.writeCsv('case.csv', csv([['2024-01-01', 'ORD-1', 'P-1', '1.00'], ['2024-01-01', 'ord-1', 'P-1', '2.00']]));
    const body = await runImport();
    expect(body.files[0]).toMatchObject({ status: 'success', num_rows: 2 });
    expect(await total()).toMatchObject({ total_revenue: '3.00', order_count: 2 });
  });

  describe('strict mode (default)', () => {
    it('when any row is invalid, then nothing of the file is stored and the errors name line and column', async () => {
      const good = orderId();
      h.writeCsv(
        'bad.csv',
        csv([
          ['2024-01-01', good, 'P-1', '1.00'],
          ['2024-02-30', orderId(), 'P-1', '1.00'],
          ['2024-01-01', orderId(), 'P-1', '"1,000.00"'],
        ]),
      );
      const body = await runImport();
      const file = body.files[0]!;
      expect(file).toMatchObject({ status: 'failed', num_rows: 0, rows_rejected: 2, error_count: 2 });
      expect(file.error_message).toMatch(/nothing was imported/);
      expect(file.errors).toEqual([
        { line: 3, column: 'date', message: expect.stringMatching(/not a real calendar date/) },
        { line: 4, column: 'amount_sgd', message: expect.stringMatching(/thousands separators/) },
      ]);
      expect(await salesRows()).toEqual([]);
      expect(body.summary).toMatchObject({ failed: 1, imported: 0, rows: 0 });
    });

    it('when each kind of bad value appears, then each gets its own error with its line', async () => {
      const rows = [
        ['2024-13-01', orderId(), 'P', '1.00'],
        ['01/02/2024', orderId(), 'P', '1.00'],
        ['', orderId(), 'P', '1.00'],
        ['2024-01-01', '   ', 'P', '1.00'],
        ['2024-01-01', 'x'.repeat(65), 'P', '1.00'],
        ['2024-01-01', orderId(), '', '1.00'],
        ['2024-01-01', orderId(), 'P', '1.234'],
        ['2024-01-01', orderId(), 'P', 'S$5'],
        ['2024-01-01', orderId(), 'P', '1000000000000.00'],
        ['2024-01-01', orderId(), 'P', ''],
        ['2024-01-01', orderId(), 'P', '+5'],
      ];
      h.writeCsv('kinds.csv', csv(rows) + '2024-01-01,too,few\n');
      const file = (await runImport()).files[0]!;
      expect(file.status).toBe('failed');
      expect(file.errors.map((e) => [e.line, e.column])).toEqual([
        [2, 'date'],
        [3, 'date'],
        [4, 'date'],
        [5, 'order_id'],
        [6, 'order_id'],
        [7, 'product_id'],
        [8, 'amount_sgd'],
        [9, 'amount_sgd'],
        [10, 'amount_sgd'],
        [11, 'amount_sgd'],
        [12, 'amount_sgd'],
        [13, null],
      ]);
      expect(file.errors[11]!.message).toMatch(/expected 4 fields/);
      expect(file.error_count).toBe(12);
    });

    it('when an identity repeats inside one file, then the repeat is a row error pointing at the first line', async () => {
      const o = orderId();
      h.writeCsv('dup.csv', csv([['2024-01-01', o, 'P-1', '1.00'], ['2024-01-02', orderId(), 'P-1', '1.00'], ['2024-01-03', o, 'P-1', '9.00']]));
      const file = (await runImport()).files[0]!;
      expect(file.status).toBe('failed');
      expect(file.errors).toEqual([{ line: 4, column: null, message: expect.stringContaining('already appears on line 2') }]);
      expect(await salesRows()).toEqual([]);
    });

    it('when a repeat is far apart (other batches in between), then it is still caught', async () => {
      const o = orderId();
      const rows = [['2024-01-01', o, 'P-1', '1.00']];
      for (let i = 0; i < 2500; i++) rows.push(['2024-01-01', orderId('FILL'), 'P-1', '1.00']);
      rows.push(['2024-01-01', o, 'P-1', '1.00']);
      h.writeCsv('far.csv', csv(rows));
      const file = (await runImport('?on_error=skip')).files[0]!;
      expect(file).toMatchObject({ status: 'partial', num_rows: 2501, rows_rejected: 1 });
      expect(file.errors).toEqual([{ line: 2503, column: null, message: expect.stringContaining('line 2') }]);
    });

    it('when more than 100 rows are bad, then the first 100 are kept and the total is counted', async () => {
      const rows = Array.from({ length: 150 }, () => ['2024-01-01', orderId(), 'P', 'oops']);
      h.writeCsv('many.csv', csv(rows));
      const file = (await runImport()).files[0]!;
      expect(file.error_count).toBe(150);
      expect(file.rows_rejected).toBe(150);
      expect(file.errors).toHaveLength(100);
      expect(file.errors[0]!.line).toBe(2);
      expect(file.errors[99]!.line).toBe(101);
    });

    it('when a failed file is fixed and imported again, then the same record succeeds', async () => {
      const o = orderId();
      h.writeCsv('fix.csv', csv([['2024-01-01', o, 'P', 'x']]));
      const failed = (await runImport()).files[0]!;
      expect(failed.status).toBe('failed');
      const again = (await runImport()).files[0]!;
      expect(again).toMatchObject({ id: failed.id, status: 'failed' }); // still bad: tried again, fails again
      h.writeCsv('fix.csv', csv([['2024-01-01', o, 'P', '4.00']]));
      const fixed = (await runImport()).files[0]!;
      expect(fixed).toMatchObject({ status: 'success', num_rows: 1 });
    });
  });

  describe('on_error=skip', () => {
    it('when some rows are invalid, then the valid ones are stored and the file is partial', async () => {
      const keep = orderId();
      h.writeCsv('mixed.csv', csv([['2024-01-01', keep, 'P-1', '3.10'], ['2024-01-01', orderId(), 'P-1', 'abc'], ['2024-01-02', keep, 'P-2', '0.20']]));
      const body = await runImport('?on_error=skip');
      const file = body.files[0]!;
      expect(file).toMatchObject({ status: 'partial', num_rows: 2, rows_rejected: 1, error_count: 1 });
      expect(file.error_message).toMatch(/1 row rejected/);
      expect(file.errors[0]).toMatchObject({ line: 3, column: 'amount_sgd' });
      expect(body.summary).toMatchObject({ partial: 1, rows: 2 });
      expect(await total()).toMatchObject({ total_revenue: '3.30', sale_count: 2 });
    });

    it('when a partial file is imported again, then it is skipped', async () => {
      h.writeCsv('p.csv', csv([['2024-01-01', orderId(), 'P', '1.00'], ['bad', orderId(), 'P', '1.00']]));
      expect((await runImport('?on_error=skip')).files[0]!.status).toBe('partial');
      expect((await runImport('?on_error=skip')).files[0]!.status).toBe('skipped');
    });

    it('when on_error has another value, then the request is a 400 naming it', async () => {
      const res = await h.app.inject({ url: '/api/import-sales/?on_error=ignore' });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_parameter', field: 'on_error' });
    });
  });

  describe('CSV format', () => {
    it('when the file has a BOM, CRLF, quotes, quoted newlines, blank lines and no final newline, then every row is read', async () => {
      const text =
        '\uFEFFDate , ORDER_ID,Product_Id,amount_sgd\r\n' +
        '2024-01-01,"Q,1","P ""big""",1.00\r\n' +
        '\r\n' +
        '2024-01-02,"Q\n2",P-1,2.00\r\n' +
        '\n' +
        '2024-01-03,Q3,P-1,3.00';
      h.writeCsv('quirks.csv', text);
      const file = (await runImport()).files[0]!;
      expect(file).toMatchObject({ status: 'success', num_rows: 3 });
      const rows = await salesRows();
      expect(rows.map((r) => [r.order_id, r.product_id, r.source_line])).toEqual([
        ['Q,1', 'P "big"', 2],
        ['Q\n2', 'P-1', 4],
        ['Q3', 'P-1', 7],
      ]);
    });

    it('when columns come in another order with extras, then they are mapped and the extras are a warning', async () => {
      h.writeCsv('order.csv', 'amount_sgd,channel,product_id,date,order_id,\n5.00,web,P,2024-01-01,X1,\n');
      const file = (await runImport()).files[0]!;
      expect(file).toMatchObject({ status: 'success', num_rows: 1 });
      expect(file.warnings).toEqual(['ignored columns: channel, (unnamed column 6)']);
      expect(await total()).toMatchObject({ total_revenue: '5.00' });
    });

    it('when a required column is missing, then the whole file fails with a message naming it', async () => {
      h.writeCsv('nocol.csv', 'date,order_id,amount_sgd\n2024-01-01,A,1.00\n');
      const file = (await runImport()).files[0]!;
      expect(file).toMatchObject({ status: 'failed', num_rows: 0 });
      expect(file.error_message).toMatch(/missing required column "product_id"/);
    });

    it('when a quote is never closed, then the file fails with the line where the record starts', async () => {
      h.writeCsv('open.csv', csv([['2024-01-01', 'A', 'P', '1.00']]) + '2024-01-02,"B,P,2.00\n');
      const file = (await runImport('?on_error=skip')).files[0]!;
      expect(file.status).toBe('failed');
      expect(file.error_message).toMatch(/^line 3: quoted field is never closed/);
      expect(await salesRows()).toEqual([]);
    });

    it('when the file is empty or not UTF-8, then it fails with a clear message and stores nothing', async () => {
      h.writeCsv('a-empty.csv', '');
      h.writeCsv('b-latin1.csv', Buffer.from('date,order_id,product_id,amount_sgd\n2024-01-01,caf\xe9,P,1.00\n', 'latin1'));
      h.writeCsv('c-utf16.csv', Buffer.from('\uFEFFdate,order_id\n', 'utf16le'));
      const body = await runImport();
      expect(body.files.map((f) => [f.status, f.error_message])).toEqual([
        ['failed', expect.stringMatching(/empty/)],
        ['failed', expect.stringMatching(/not valid UTF-8/)],
        ['failed', expect.stringMatching(/UTF-16/)],
      ]);
      expect(await salesRows()).toEqual([]);
    });

    it('when ids hold quotes, formulas, emoji and RTL marks, then they are stored byte for byte', async () => {
      const ids = [`'; DROP TABLE sales; --`, `=cmd|'/c calc'!A0`, 'order-🍊-1', '\u202Eabc\u200F'];
      h.writeCsv('hostile.csv', csv(ids.map((id) => ['2024-01-01', `"${id.replace(/"/g, '""')}"`, 'P', '1.00'])));
      expect((await runImport()).files[0]!.status).toBe('success');
      expect((await salesRows()).map((r) => r.order_id)).toEqual(ids);
    });
  });

  it('when money values drift as floats, then the totals are still exact to the cent', async () => {
    const rows = Array.from({ length: 1000 }, () => ['2024-03-01', orderId(), 'P', '0.10']);
    rows.push(['2024-03-01', orderId(), 'P', '0.20'], ['2024-03-01', orderId(), 'P', '999999999999.99']);
    h.writeCsv('drift.csv', csv(rows));
    await runImport();
    expect((await total()).total_revenue).toBe('1000000000100.19');
    let float = 0;
    for (let i = 0; i < 1000; i++) float += 0.1;
    expect(float).not.toBe(100); // what binary floating point would have reported
  });

  it('when two import requests arrive at once, then each file is imported exactly once', async () => {
    for (let f = 0; f < 3; f++) {
      h.writeCsv(`c${f}.csv`, csv(Array.from({ length: 200 }, () => ['2024-01-01', orderId(), 'P', '1.00'])));
    }
    const [a, b] = await Promise.all([runImport(), runImport()]);
    const imported = [...a.files, ...b.files].filter((f) => f.status === 'success');
    const skipped = [...a.files, ...b.files].filter((f) => f.status === 'skipped');
    expect(imported).toHaveLength(3);
    expect(skipped).toHaveLength(3);
    expect(new Set(imported.map((f) => f.id)).size).toBe(3);
    expect((await total()).sale_count).toBe(600);
    const records = await h.database.db.selectFrom('imported_files').select('id').execute();
    expect(records).toHaveLength(3);
  });

  it('when an import record is asked for, then the list is newest first and unknown ids are 404', async () => {
    h.writeCsv('1.csv', csv([['2024-01-01', orderId(), 'P', '1.00']]));
    h.writeCsv('2.csv', csv([['2024-01-01', orderId(), 'P', 'bad']]));
    await runImport();
    const list = await h.app.inject({ url: '/api/imports?limit=1' });
    expect(list.statusCode).toBe(200);
    const body = list.json();
    expect(body).toMatchObject({ total: 2, limit: 1, offset: 0 });
    expect(body.imports).toHaveLength(1);
    expect(body.imports[0]).toMatchObject({ filename: '2.csv', status: 'failed', error_count: 1 });
    const second = await h.app.inject({ url: '/api/imports/?limit=1&offset=1' });
    expect(second.json().imports[0].filename).toBe('1.csv');
    const detail = await h.app.inject({ url: `/api/imports/${body.imports[0].id}/` });
    expect(detail.json().errors).toEqual([{ line: 2, column: 'amount_sgd', message: expect.any(String) }]);

    expect((await h.app.inject({ url: '/api/imports/999999' })).statusCode).toBe(404);
    expect((await h.app.inject({ url: '/api/imports/abc' })).json()).toMatchObject({ error: 'invalid_parameter', field: 'id' });
    expect((await h.app.inject({ url: '/api/imports?limit=501' })).json()).toMatchObject({ field: 'limit' });
    expect((await h.app.inject({ url: '/api/imports?offset=-1' })).statusCode).toBe(400);
  });

  it('when a file fails on its last row or succeeds, then sales keeps every index it had (bulk loads build them again)', async () => {
    const before = await salesIndexes(h.database);
    expect(before.length).toBeGreaterThanOrEqual(3);
    const rows = Array.from({ length: 50 }, (_, i) => ['2024-01-01', orderId(), `P${i}`, '1.00']);
    h.writeCsv('bad.csv', csv([...rows, ['2024-01-02', orderId(), 'P', 'oops']]));
    expect((await runImport()).summary).toMatchObject({ failed: 1, imported: 0 });
    expect(await salesIndexes(h.database)).toEqual(before);
    expect(await salesRows()).toEqual([]);

    // A structural error fails the file while it is still being read (indexes still deferred).
    h.writeCsv('bad.csv', `${csv(rows)}2024-01-03,"unclosed,P,1.00\n`);
    expect((await runImport()).summary).toMatchObject({ failed: 1, imported: 0 });
    expect(await salesIndexes(h.database)).toEqual(before);

    h.writeCsv('bad.csv', csv(rows));
    expect((await runImport()).summary).toMatchObject({ imported: 1, rows: 50 });
    expect(await salesIndexes(h.database)).toEqual(before);
    expect(await total('?start=2024-01-01&end=2024-01-01')).toMatchObject({ total_revenue: '50.00', order_count: 50 });
  });

  it('when POST is used, then import-sales behaves as GET', async () => {
    h.writeCsv('post.csv', csv([['2024-01-01', orderId(), 'P', '1.00']]));
    const res = await h.app.inject({ method: 'POST', url: '/api/import-sales?on_error=skip' });
    expect(res.statusCode).toBe(200);
    expect(res.json().summary.imported).toBe(1);
  });
});
