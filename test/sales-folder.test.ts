import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importFolder, type FileOutcome } from '../src/imports/import.service.js';
import { listSalesFiles, openSalesFile } from '../src/imports/sales-folder.js';
import { DIALECTS } from './support/databases.js';
import { csv, orderId, useHarness } from './support/harness.js';

/** The record of a file the run read (a refused entry has none). */
function recordOf(outcome: FileOutcome | undefined) {
  if (!outcome || outcome.status === 'refused') throw new Error(`no record: ${JSON.stringify(outcome)}`);
  return outcome.record;
}

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const outside = mkdtempSync(path.join(tmpdir(), 'zinc-outside-'));
afterAll(() => rmSync(outside, { recursive: true, force: true }));

/** A valid CSV outside the sales folder: if it were ever imported, its rows would show. */
function secretFile(name = `secret-${Math.random().toString(16).slice(2)}.csv`): string {
  const file = path.join(outside, name);
  writeFileSync(file, csv([['2024-01-01', orderId('SECRET'), 'P', '999.99']]));
  return file;
}

function mkfifo(file: string): boolean {
  try {
    execFileSync('mkfifo', [file]);
    return true;
  } catch {
    return false;
  }
}

interface RunFile {
  id: number;
  filename: string;
  sha256: string;
  status: string;
  num_rows: number;
  error_message: string | null;
}

describe.each(DIALECTS)('the sales folder is not a way out (%s)', (kind) => {
  const h = useHarness(kind);

  async function run(query = '') {
    const res = await h.app.inject({ method: 'POST', url: `/api/import-sales/${query}` });
    expect(res.statusCode, res.body).toBeLessThan(300);
    return res.json() as { files: RunFile[]; summary: Record<string, number> };
  }
  const storedRows = async () => (await h.database.db.selectFrom('sales').select('order_id').execute()).map((r) => r.order_id);
  const records = async () => h.database.db.selectFrom('imported_files').selectAll().execute();

  it('when *.csv entries are links, directories or FIFOs, then each is failed with its reason, nothing of them is read, and the regular files import', async () => {
    const good = orderId();
    h.writeCsv('2024-01.csv', csv([['2024-01-02', good, 'P-1', '10.00']]));
    symlinkSync(secretFile(), path.join(h.salesDir, 'a-link-out.csv'));
    symlinkSync('2024-01.csv', path.join(h.salesDir, 'b-link-in.csv'));
    symlinkSync(path.join(outside, 'missing.csv'), path.join(h.salesDir, 'c-dangling.csv'));
    symlinkSync('/dev/zero', path.join(h.salesDir, 'd-zero.csv'));
    mkdirSync(path.join(h.salesDir, 'e-folder.csv'));
    const fifo = mkfifo(path.join(h.salesDir, 'f-pipe.csv'));
    h.writeCsv('notes.txt', 'ignored: not *.csv');

    const body = await run();
    const byName = Object.fromEntries(body.files.map((f) => [f.filename, f]));
    expect(byName['2024-01.csv']).toMatchObject({ status: 'success', num_rows: 1 });
    for (const name of ['a-link-out.csv', 'b-link-in.csv', 'c-dangling.csv', 'd-zero.csv']) {
      expect(byName[name], name).toMatchObject({ id: 0, sha256: '', status: 'failed', num_rows: 0 });
      expect(byName[name]!.error_message).toBe(`not imported: ${name} is a symbolic link; only regular files directly in SALES_DIR are read`);
    }
    expect(byName['e-folder.csv']!.error_message).toMatch(/^not imported: e-folder\.csv is a directory;/);
    if (fifo) expect(byName['f-pipe.csv']!.error_message).toMatch(/^not imported: f-pipe\.csv is a FIFO;/);
    expect(body.summary).toMatchObject({ imported: 1, failed: fifo ? 6 : 5, rows: 1 });
    expect(body.files.map((f) => f.filename)).not.toContain('notes.txt');

    expect(await storedRows()).toEqual([good]);
    // Refused entries leave no record behind: only the regular file has one.
    expect((await records()).map((r) => r.filename)).toEqual(['2024-01.csv']);
  });

  it('when the run is asynchronous, then refused entries are in its answer as failed', async () => {
    symlinkSync(secretFile(), path.join(h.salesDir, 'link.csv'));
    h.writeCsv('ok.csv', csv([['2024-01-02', orderId(), 'P-1', '1.00']]));
    const res = await h.app.inject({ method: 'POST', url: '/api/import-sales?async=true' });
    expect(res.statusCode, res.body).toBe(202);
    const files = (res.json() as { files: RunFile[] }).files;
    expect(files.find((f) => f.filename === 'link.csv')).toMatchObject({ id: 0, status: 'failed', error_message: expect.stringContaining('symbolic link') });
    const ok = files.find((f) => f.filename === 'ok.csv')!;
    for (let i = 0; i < 100; i++) {
      const record = (await h.app.inject({ url: `/api/imports/${ok.id}` })).json() as RunFile;
      if (record.status !== 'processing') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await h.app.inject({ url: `/api/imports/${ok.id}` })).json()).toMatchObject({ status: 'success', num_rows: 1 });
    expect(await storedRows()).toHaveLength(1);
  });

  it('when SALES_DIR itself is reached through a link, then its files import as usual', async () => {
    const link = path.join(outside, `sales-link-${kind}`);
    rmSync(link, { force: true });
    symlinkSync(h.salesDir, link);
    h.writeCsv('a.csv', csv([['2024-01-02', orderId(), 'P-1', '3.00']]));
    const app = await h.rebuild({ salesDir: link });
    const res = await app.inject({ method: 'POST', url: '/api/import-sales' });
    expect(res.json()).toMatchObject({ summary: { imported: 1, failed: 0, rows: 1 } });
  });

  it('when a file grows while it is being read, then it fails as changed and stores nothing; the next run imports it whole', async () => {
    const name = 'growing.csv';
    const rows = Array.from({ length: 20_000 }, (_, i) => ['2024-01-03', `GROW-${kind}-${i}`, 'P-1', '1.00']);
    const file = h.writeCsv(name, csv(rows));
    let appended = false;
    const result = await importFolder(h.database, h.salesDir, {
      onError: 'fail',
      log: quiet,
      onProgress: () => {
        if (appended) return;
        appended = true;
        appendFileSync(file, `2024-01-04,GROW-${kind}-late,P-1,5.00\n`);
      },
    });
    expect(appended).toBe(true);
    expect(result.files[0]).toMatchObject({ status: 'failed' });
    expect(recordOf(result.files[0]).error_message).toBe('the file changed while it was being imported; import it again once it is complete');
    expect(await storedRows()).toEqual([]);

    const again = await importFolder(h.database, h.salesDir, { onError: 'fail', log: quiet });
    expect(again.files[0]).toMatchObject({ status: 'success' });
    expect(recordOf(again.files[0]).num_rows).toBe(rows.length + 1);
  });

  it('when a file is cut short while it is being read, then it fails as changed and stores nothing', async () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => ['2024-01-03', `CUT-${kind}-${i}`, 'P-1', '1.00']);
    const file = h.writeCsv('shrinking.csv', csv(rows));
    let cut = false;
    const result = await importFolder(h.database, h.salesDir, {
      onError: 'fail',
      log: quiet,
      onProgress: () => {
        if (cut) return;
        cut = true;
        truncateSync(file, 100_000);
      },
    });
    expect(cut).toBe(true);
    expect(result.files[0]).toMatchObject({ status: 'failed' });
    expect(recordOf(result.files[0]).error_message).toMatch(/changed while it was being imported|line \d+/);
    expect(await storedRows()).toEqual([]);
  });
});

describe('openSalesFile', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'zinc-folder-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('when the name is swapped for a link after the file was opened, then reads still see the file that was checked', async () => {
    writeFileSync(path.join(dir, 'x.csv'), 'the checked bytes\n');
    const [entry] = await listSalesFiles(dir);
    const opened = await openSalesFile(entry!);
    if ('refused' in opened) throw new Error(opened.refused);
    try {
      const target = secretFile();
      renameSync(path.join(dir, 'x.csv'), path.join(dir, 'x.old'));
      symlinkSync(target, path.join(dir, 'x.csv'));
      expect(readFileSync(opened.path, 'utf8')).toBe('the checked bytes\n');
      expect(opened.size).toBe('the checked bytes\n'.length);
    } finally {
      await opened.close();
    }
    // Opened again now, the name is a link and is refused.
    expect(await openSalesFile(entry!)).toEqual({ refused: 'is a symbolic link' });
  });

  it('lists *.csv entries of every type in name order, case-insensitively', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'zinc-folder-'));
    try {
      for (const name of ['b.csv', 'A.CSV', 'c.txt', 'a.csv']) writeFileSync(path.join(d, name), '');
      symlinkSync('/etc/hostname', path.join(d, 'l.csv'));
      expect((await listSalesFiles(d)).map((f) => f.name)).toEqual(['A.CSV', 'a.csv', 'b.csv', 'l.csv']);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
