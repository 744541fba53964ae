import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseDatabaseUrl } from '../src/config.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import type { Database } from '../src/db/database.js';
import { listImports } from '../src/imports/imports.repository.js';
import type { FileOutcome } from '../src/imports/import-run.js';
import { isWatchedName, watchSalesFolder, type SalesWatch, type SalesWatchOptions } from '../src/imports/sales-watch.js';
import { startServer } from '../src/server.js';
import { createTestDatabase, DIALECTS, POSTGRES_URL } from './support/databases.js';
import { csv, orderId, useHarness } from './support/harness.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

const SETTLE_MS = 400;
const POLL_MS = 100;
const WAIT_MS = 20_000;
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/** Rows of one day with unique order ids, one per amount. */
function rows(prefix: string, amounts: string[]): string[][] {
  const id = orderId(prefix);
  return amounts.map((amount, i) => ['2024-05-01', `${id}-${i}`, `P-${i}`, amount]);
}

describe.each(DIALECTS)('watched folder (%s)', (kind) => {
  const h = useHarness(kind);
  const running: Array<{ stop(): Promise<void> }> = [];
  afterEach(async () => {
    for (const w of running.splice(0)) await w.stop();
  });

  /** Watches the test's folder, keeping every outcome it reports. */
  async function watchFolder(more: Partial<SalesWatchOptions> = {}, database: Database = h.database) {
    const outcomes: FileOutcome[] = [];
    const watching = await watchSalesFolder(database, h.salesDir, {
      settleMs: SETTLE_MS,
      pollMs: POLL_MS,
      onError: 'fail',
      log: quiet,
      report: (o) => outcomes.push(o),
      ...more,
    });
    running.push(watching);
    const outcome = (name: string, status: FileOutcome['status'], nth = 1) =>
      waitFor(
        async () => outcomes.filter((o) => o.filename === name && o.status === status)[nth - 1],
        WAIT_MS,
        `${name} ${status} (${nth})`,
      );
    return { watching, outcomes, outcome };
  }

  /** Resolves after `n` more scans of the folder: what did not happen by then will not happen. */
  async function scansPass(watching: SalesWatch, n = 4) {
    const target = watching.scans + n;
    await waitFor(async () => (watching.scans >= target ? true : undefined), WAIT_MS, `${n} scans`);
  }

  async function totals() {
    const res = await h.app.inject({ url: '/api/metrics/revenue/' });
    return res.json() as { total_revenue: string; sale_count: number };
  }

  async function records() {
    return (await listImports(h.database.db, 100, 0)).sort((a, b) => a.id - b.id);
  }

  it('when a file is written in two parts with a pause shorter than the settle period, then it is imported whole, once', async () => {
    const { watching, outcomes, outcome } = await watchFolder();
    const all = rows('HALVES', ['1.10', '2.20', '3.30', '4.40']);
    const text = csv(all);
    const cut = text.indexOf('\n', text.indexOf(all[1]![1]!)) + 20; // mid-line of the third row
    h.writeCsv('halves.csv', text.slice(0, cut));
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS / 8));
    appendFileSync(path.join(h.salesDir, 'halves.csv'), text.slice(cut));

    const done = await outcome('halves.csv', 'success');
    expect(done.status === 'success' && done.record.num_rows).toBe(4);
    await scansPass(watching);
    expect(outcomes.map((o) => `${o.filename} ${o.status}`)).toEqual(['halves.csv success']);
    expect(await records()).toHaveLength(1);
    expect(await totals()).toMatchObject({ total_revenue: '11.00', sale_count: 4 });
  });

  it('when a writer pauses mid-line for longer than the settle period, then the part fails on its cut line (nothing stored) and the complete file imports whole', async () => {
    const { outcome } = await watchFolder();
    const text = csv(rows('PAUSE', ['10.00', '20.00', '30.05']));
    const cut = text.lastIndexOf(',') - 3; // inside the last row's product id
    h.writeCsv('pause.csv', text.slice(0, cut));
    const part = await outcome('pause.csv', 'failed');
    expect(part.status === 'failed' && part.record.error_message).toMatch(/line 4/);
    expect(await totals()).toMatchObject({ total_revenue: '0.00', sale_count: 0 });

    appendFileSync(path.join(h.salesDir, 'pause.csv'), text.slice(cut));
    const whole = await outcome('pause.csv', 'success');
    expect(whole.status === 'success' && whole.record.num_rows).toBe(3);
    // The history keeps both states: the cut one failed, with nothing stored.
    expect((await records()).map((r) => [r.status, r.num_rows])).toEqual([
      ['failed', 0],
      ['success', 3],
    ]);
    expect(await totals()).toMatchObject({ total_revenue: '60.05', sale_count: 3 });
  });

  it('when a writer pauses inside the last field for longer than the settle period, then the cut row is not imported (a file without a final line end waits ten settle periods) and the complete file imports once', async () => {
    const { watching, outcomes, outcome } = await watchFolder();
    const text = csv(rows('AMOUNT', ['10.00', '20.00', '1234.56']));
    const cut = text.length - 5; // "…,P-2,12" of "…,P-2,1234.56\n": a valid row, and a wrong one
    h.writeCsv('amount.csv', text.slice(0, cut));
    // Three settle periods: long enough for a terminated file, not for this one.
    const target = watching.scans + Math.ceil((3 * SETTLE_MS) / POLL_MS);
    await waitFor(async () => (watching.scans >= target ? true : undefined), WAIT_MS, 'three settle periods of scans');
    expect(outcomes).toEqual([]);
    appendFileSync(path.join(h.salesDir, 'amount.csv'), text.slice(cut));
    const whole = await outcome('amount.csv', 'success');
    expect(whole.status === 'success' && whole.record.num_rows).toBe(3);
    expect((await records()).map((r) => [r.status, r.num_rows])).toEqual([['success', 3]]);
    expect(await totals()).toMatchObject({ total_revenue: '1264.56', sale_count: 3 });
  });

  it('when an empty file appears (a shell redirect before its writer writes), then nothing is imported until it has content', async () => {
    const { watching, outcomes, outcome } = await watchFolder();
    writeFileSync(path.join(h.salesDir, 'redirect.csv'), '');
    const target = watching.scans + Math.ceil((3 * SETTLE_MS) / POLL_MS);
    await waitFor(async () => (watching.scans >= target ? true : undefined), WAIT_MS, 'three settle periods of scans');
    expect(outcomes).toEqual([]);
    expect(await records()).toEqual([]);
    appendFileSync(path.join(h.salesDir, 'redirect.csv'), csv(rows('REDIRECT', ['7.00'])));
    await outcome('redirect.csv', 'success');
    expect(await totals()).toMatchObject({ total_revenue: '7.00', sale_count: 1 });
  });

  it('when the folder goes away while a file is settling, then it is scanned for at the poll interval, not in a tight loop', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'zinc-watch-gone-'));
    const outcomes: FileOutcome[] = [];
    const watching = await watchSalesFolder(h.database, dir, { settleMs: SETTLE_MS, pollMs: POLL_MS, onError: 'fail', log: quiet, report: (o) => outcomes.push(o) });
    running.push(watching);
    writeFileSync(path.join(dir, 'settling.csv'), csv(rows('GONE', ['1.00'])).slice(0, 20));
    await scansPass(watching, 2);
    rmSync(dir, { recursive: true, force: true });
    const before = watching.scans;
    const window = 5 * SETTLE_MS;
    await new Promise((resolve) => setTimeout(resolve, window));
    // At most one scan per poll (plus one for a nudge); a tight loop makes hundreds.
    expect(watching.scans - before).toBeLessThanOrEqual(window / POLL_MS + 2);
    expect(outcomes).toEqual([]);
  });

  it('when a writer pauses between lines for longer than the settle period, then the part imports as a file of its own and the complete file replaces its rows', async () => {
    const { outcome } = await watchFolder();
    const all = rows('LINES', ['1.00', '2.00', '3.00', '4.00']);
    h.writeCsv('lines.csv', csv(all.slice(0, 2)));
    await outcome('lines.csv', 'success');
    expect(await totals()).toMatchObject({ total_revenue: '3.00', sale_count: 2 });

    appendFileSync(path.join(h.salesDir, 'lines.csv'), all.slice(2).map((r) => r.join(',')).join('\n') + '\n');
    await outcome('lines.csv', 'success', 2);
    expect((await records()).map((r) => [r.status, r.num_rows])).toEqual([
      ['success', 2],
      ['success', 4],
    ]);
    // The complete file's totals, never the part's rows counted twice.
    expect(await totals()).toMatchObject({ total_revenue: '10.00', sale_count: 4 });
  });

  it('when a file grows while it is being imported, then that import fails without storing anything and the grown file is imported whole once it settles', async () => {
    const all = rows('GROWS', ['5.00', '6.00', '7.00']);
    const file = path.join(h.salesDir, 'grows.csv');
    let appended = false;
    const { outcome } = await watchFolder({
      // The writer adds rows just as the import starts reading.
      onLoadAttempt: async () => {
        if (appended) return;
        appended = true;
        appendFileSync(file, all.slice(2).map((r) => r.join(',')).join('\n') + '\n');
      },
    });
    writeFileSync(file, csv(all.slice(0, 2)));
    const changed = await outcome('grows.csv', 'failed');
    expect(changed.status === 'failed' && changed.record.error_message).toMatch(/changed while it was being imported/);
    const whole = await outcome('grows.csv', 'success');
    expect(whole.status === 'success' && whole.record.num_rows).toBe(3);
    expect((await records()).map((r) => [r.status, r.num_rows])).toEqual([
      ['failed', 0],
      ['success', 3],
    ]);
    expect(await totals()).toMatchObject({ total_revenue: '18.00', sale_count: 3 });
  });

  it('when a file is written under a temporary name and renamed into place, then only the renamed file is imported, once', async () => {
    const { watching, outcomes, outcome } = await watchFolder();
    const text = csv(rows('RENAME', ['9.99']));
    for (const name of ['.hidden.csv', 'r.csv.part', 'r.csv.tmp', 'r.csv~', '~$r.csv']) h.writeCsv(name, text);
    h.writeCsv('r.csv.part', text);
    renameSync(path.join(h.salesDir, 'r.csv.part'), path.join(h.salesDir, 'r.csv'));
    await outcome('r.csv', 'success');
    await scansPass(watching);
    expect(outcomes.map((o) => `${o.filename} ${o.status}`)).toEqual(['r.csv success']);
    expect(await totals()).toMatchObject({ total_revenue: '9.99', sale_count: 1 });
  });

  it('when a file has a bad row, then it is recorded failed once and not tried again until it changes; the fixed file imports, a copy is skipped', async () => {
    const { watching, outcomes, outcome } = await watchFolder();
    const good = rows('BAD', ['1.25', '2.50']);
    h.writeCsv('bad.csv', csv([...good, ['2024-05-01', orderId('BAD'), 'P', 'twelve']]));
    const failed = await outcome('bad.csv', 'failed');
    expect(failed.status === 'failed' && failed.record.error_message).toMatch(/line 4, amount_sgd/);
    await scansPass(watching);
    expect(outcomes).toHaveLength(1);
    expect(await records()).toHaveLength(1);

    // Rewritten in place, fixed: a new content, imported.
    h.writeCsv('bad.csv', csv(good));
    await outcome('bad.csv', 'success');
    // The same bytes dropped again under another name: skipped, pointing at the import that has them.
    h.writeCsv('copy.csv', csv(good));
    const copy = await outcome('copy.csv', 'skipped');
    expect(copy.status === 'skipped' && copy.message).toMatch(/already imported as bad\.csv/);
    await scansPass(watching);
    expect(outcomes.map((o) => `${o.filename} ${o.status}`)).toEqual(['bad.csv failed', 'bad.csv success', 'copy.csv skipped']);
    expect(await totals()).toMatchObject({ total_revenue: '3.75', sale_count: 2 });
  });

  it('when a file is deleted before it settles, then nothing is reported; a symbolic link is refused once', async () => {
    const { watching, outcomes, outcome } = await watchFolder();
    const gone = h.writeCsv('gone.csv', csv(rows('GONE', ['1.00'])));
    unlinkSync(gone);
    const target = path.join(mkdtempSync(path.join(tmpdir(), 'zinc-outside-')), 'secret.csv');
    writeFileSync(target, csv(rows('LINK', ['1.00'])));
    symlinkSync(target, path.join(h.salesDir, 'link.csv'));
    const refused = await outcome('link.csv', 'refused');
    expect(refused.status === 'refused' && refused.message).toMatch(/symbolic link/);
    await scansPass(watching);
    expect(outcomes.map((o) => `${o.filename} ${o.status}`)).toEqual(['link.csv refused']);
    expect(await records()).toHaveLength(0);
    rmSync(path.dirname(target), { recursive: true, force: true });
  });

  it('when the watcher is stopped during an import, then the import rolls back, and the next watcher imports the file under the same record', async () => {
    const stop = new AbortController();
    const first = await watchFolder({
      signal: stop.signal,
      // The stop (SIGTERM) arrives while the file is being loaded.
      onLoadAttempt: async () => stop.abort(new Error('shutting down')),
    });
    h.writeCsv('stopped.csv', csv(rows('STOP', ['7.00', '8.00'])));
    const interrupted = await first.outcome('stopped.csv', 'failed');
    expect(interrupted.status === 'failed' && interrupted.record.error_message).toMatch(/interrupted/);
    await first.watching.stop();
    expect(await totals()).toMatchObject({ total_revenue: '0.00', sale_count: 0 });

    const second = await watchFolder();
    const done = await second.outcome('stopped.csv', 'success');
    expect(done.status === 'success' && done.record.id).toBe(interrupted.status === 'failed' && interrupted.record.id);
    expect(await totals()).toMatchObject({ total_revenue: '15.00', sale_count: 2 });
  });

  it('when two watchers watch one folder, then each file is stored once', async () => {
    const other = openDatabase(h.config.database);
    try {
      const first = await watchFolder();
      const second = await watchFolder({}, other);
      const names = ['m1.csv', 'm2.csv', 'm3.csv'];
      for (const [i, name] of names.entries()) h.writeCsv(name, csv(rows(`MULTI${i}`, ['1.00', '2.00'])));
      for (const name of names) {
        // Each watcher ends with an outcome for each file: one imported it, the other skipped it.
        const ends = await waitFor(
          async () => {
            const seen = [...first.outcomes, ...second.outcomes].filter((o) => o.filename === name).map((o) => o.status);
            return seen.length >= 2 ? seen.sort() : undefined;
          },
          WAIT_MS,
          `both watchers on ${name}`,
        );
        expect(ends).toEqual(['skipped', 'success']);
      }
      expect(await records()).toHaveLength(3);
      expect(await totals()).toMatchObject({ total_revenue: '9.00', sale_count: 6 });
      await first.watching.stop();
      await second.watching.stop();
    } finally {
      await other.close();
    }
  });

  it('when serve runs with SALES_WATCH, then a file dropped in SALES_DIR is imported and counted in the import metrics', async () => {
    const server = await startServer({ ...h.config, watch: { serve: true, settleMs: SETTLE_MS, pollMs: POLL_MS } }, quiet);
    try {
      h.writeCsv('served.csv', csv(rows('SERVE', ['4.20', '0.80'])));
      const record = await waitFor(
        async () => (await records()).find((r) => r.filename === 'served.csv' && r.status === 'success'),
        WAIT_MS,
        'served.csv imported',
      );
      expect(record.num_rows).toBe(2);
      // Counted as the watcher hears the outcome, just after the record's commit.
      await waitFor(
        async () => /^zinc_imports_total\{outcome="success"\} 1$/m.exec((await server.app.inject({ url: '/metrics' })).body) ?? undefined,
        WAIT_MS,
        'the import counted in /metrics',
      );
    } finally {
      await server.close();
    }
    expect(await totals()).toMatchObject({ total_revenue: '5.00', sale_count: 2 });
  });
});

describe('watch settings', () => {
  it('when nothing is set, then serve does not watch and the pace is 2 s settle, 1 s scans', () => {
    expect(loadConfig({ SALES_DIR: tmpdir() }).watch).toEqual({ serve: false, settleMs: 2000, pollMs: 1000 });
    expect(loadConfig({ SALES_DIR: tmpdir(), SALES_WATCH: 'true', WATCH_SETTLE_MS: '500', WATCH_POLL_MS: '250' }).watch).toEqual({
      serve: true,
      settleMs: 500,
      pollMs: 250,
    });
  });

  it.each([
    [{ SALES_WATCH: 'yes' }, 'SALES_WATCH must be true or false (got "yes")'],
    [{ WATCH_SETTLE_MS: '0' }, 'WATCH_SETTLE_MS must be a whole number of milliseconds above 0 (got "0")'],
    [{ WATCH_POLL_MS: '10' }, 'WATCH_POLL_MS must be between 50 and 2147483647 (got "10")'],
    [{ SALES_DIR: undefined, SALES_WATCH: 'true', SALES_URL: 's3://bucket/sales/' }, 'SALES_WATCH watches SALES_DIR, a local folder; it cannot watch SALES_URL (unset one of them)'],
  ])('when %o, then the configuration is refused with one line naming the variable', (env, message) => {
    expect(() => loadConfig({ SALES_DIR: tmpdir(), ...env })).toThrow(new ConfigError(message));
  });
});

describe('isWatchedName', () => {
  it.each([
    ['2024-05.csv', true],
    ['UPPER.CSV', true],
    ['.2024-05.csv', false],
    ['2024-05.csv.part', false],
    ['2024-05.csv.tmp', false],
    ['2024-05.csv~', false],
    ['~$2024-05.csv', false],
    ['notes.txt', false],
  ])('%s → %s', (name, watched) => {
    expect(isWatchedName(name)).toBe(watched);
  });
});

describe('zinc watch', () => {
  const CLI = path.resolve('dist/src/cli.js');

  it('when started on a folder, then it imports what is there and what is dropped, prints a line per file, and exits 0 on SIGTERM', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'zinc-watch-cli-'));
    const dir = path.join(work, 'sales');
    const database = `sqlite:${path.join(work, 'zinc.sqlite')}`;
    try {
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'before.csv'), csv(rows('CLI', ['1.00'])));
      const child = spawn(process.execPath, [CLI, 'watch', dir], {
        env: { PATH: process.env.PATH, DATABASE_URL: database, WATCH_SETTLE_MS: String(SETTLE_MS), WATCH_POLL_MS: String(POLL_MS) },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const line = (pattern: RegExp) => waitFor(async () => pattern.exec(stdout) ?? undefined, WAIT_MS, `${pattern} in ${stdout}`);

      await line(/^success\s+before\.csv \(import \d+\) 1 rows$/m);
      writeFileSync(path.join(dir, 'after.csv.part'), csv(rows('CLI', ['2.00', '3.00'])));
      renameSync(path.join(dir, 'after.csv.part'), path.join(dir, 'after.csv'));
      await line(/^success\s+after\.csv \(import \d+\) 2 rows$/m);
      writeFileSync(path.join(dir, 'broken.csv'), 'date,order_id\n');
      await line(/^failed\s+broken\.csv \(import \d+\) 0 rows: /m);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/^watching .*sales: each new \*\.csv is imported once unchanged for 400 ms/m);
      expect(stderr).toMatch(/^stopped watching$/m);
      expect(stdout.trim().split('\n')).toHaveLength(3);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('when a watch setting is bad, then it stops at once with one line naming the variable', async () => {
    const child = spawn(process.execPath, [CLI, 'watch', tmpdir()], {
      env: { PATH: process.env.PATH, DATABASE_URL: 'sqlite::memory:', WATCH_SETTLE_MS: '2s' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(stderr.trim()).toBe('zinc: WATCH_SETTLE_MS must be a whole number of milliseconds above 0 (got "2s")');
  });
});

describe.runIf(POSTGRES_URL)('a watched folder while the database is away', () => {
  it('when the database is cut while files wait, then one error is logged for the outage, and once it is back each file is imported once', async () => {
    const testDb = await createTestDatabase('postgres');
    const upstream = new URL(POSTGRES_URL!);
    const proxy = new TcpProxy(upstream.hostname, Number(upstream.port || 5432));
    await proxy.start();
    const target = new URL(testDb.config.kind === 'postgres' ? testDb.config.url : '');
    target.port = String(proxy.port);
    const database = openDatabase(parseDatabaseUrl(target.toString()));
    const dir = mkdtempSync(path.join(tmpdir(), 'zinc-watch-outage-'));
    const lines: Array<{ level: string; msg: string }> = [];
    const keep = (level: string) => (_fields: object, msg?: string) => void lines.push({ level, msg: msg ?? '' });
    const outcomes: FileOutcome[] = [];
    let watching: SalesWatch | undefined;
    try {
      await migrateToLatest(database.writer);
      await proxy.stop();
      watching = await watchSalesFolder(database, dir, {
        settleMs: SETTLE_MS,
        pollMs: POLL_MS,
        onError: 'fail',
        log: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') },
        report: (o) => outcomes.push(o),
      });
      for (const name of ['a.csv', 'b.csv', 'c.csv']) writeFileSync(path.join(dir, name), csv(rows(`OUT-${name}`, ['1.25', '2.50'])));
      // Every file has been tried (and failed) at least once.
      await waitFor(async () => (lines.filter((l) => l.msg.startsWith('watched file could not be imported')).length >= 3 ? true : undefined), WAIT_MS, 'three failed tries');
      expect(lines.filter((l) => l.level === 'error')).toHaveLength(1);
      expect(outcomes).toEqual([]);

      await proxy.start();
      await waitFor(async () => (outcomes.length === 3 ? true : undefined), 90_000, 'three files imported after the outage');
      expect(outcomes.map((o) => `${o.filename} ${o.status}`).sort()).toEqual(['a.csv success', 'b.csv success', 'c.csv success']);
      expect(lines.filter((l) => l.msg === 'watched files are being imported again')).toHaveLength(1);
      const stored = await database.db.selectFrom('sales').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
      expect(Number(stored.n)).toBe(6);
    } finally {
      await watching?.stop();
      await database.close();
      await proxy.stop();
      await testDb.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
