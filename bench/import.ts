/**
 * npm run bench:import -- --rows 1000000 --db sqlite|mysql [--mysql-url mysql://root@127.0.0.1:3306] [--method auto|load-data|insert]
 *
 * Generates a deterministic sales CSV, imports it through Zinc's pipeline (every row validated)
 * in a fresh child process, re-imports it as a second file whose every identity is stored
 * already (each row replaces one), and measures in the same run a baseline on the same rows:
 * MySQL — a raw LOAD DATA LOCAL INFILE of the file into an identical table, no validation;
 * SQLite — a bare prepared INSERT of pre-split rows in one transaction. Prints rows/s, MB/s,
 * peak RSS and the ratios.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, statSync, appendFileSync, copyFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import SqliteDatabase from 'better-sqlite3';
import { createConnection } from 'mysql2/promise';
import { parseDatabaseUrl } from '../src/config.js';
import { openDatabase } from '../src/db/connection.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { importFile } from '../src/imports/import.service.js';
import { generateSalesCsv } from './sales-generator.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    db: { type: 'string', default: 'sqlite' },
    'mysql-url': { type: 'string', default: process.env.ZINC_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306' },
    method: { type: 'string', default: 'auto' },
    worker: { type: 'string' },
    file: { type: 'string' },
    name: { type: 'string' },
  },
});

const silent = { info: () => {}, warn: () => {}, error: () => {} };

/** Child mode: import one file into DATABASE_URL and print a JSON line with the figures. */
async function worker(url: string, file: string, name: string): Promise<void> {
  const database = openDatabase(parseDatabaseUrl(url));
  await migrateToLatest(database.writer);
  const started = performance.now();
  const outcome = await importFile(database, file, name, {
    onError: 'fail',
    log: silent,
    mysqlLoadMethod: values.method as 'auto',
  });
  const seconds = (performance.now() - started) / 1000;
  await database.close();
  if (outcome.status !== 'success') throw new Error(`import ended ${outcome.status}: ${JSON.stringify(outcome.record)}`);
  console.log(
    JSON.stringify({ seconds, rows: outcome.record.num_rows, peakRssMb: process.resourceUsage().maxRSS / 1024 }),
  );
}

function runWorker(url: string, file: string, name: string) {
  const result = spawnSync(
    process.execPath,
    [process.argv[1]!, '--worker', url, '--file', file, '--name', name, '--method', values.method!],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (result.status !== 0) throw new Error(`worker failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as { seconds: number; rows: number; peakRssMb: number };
}

async function mysqlBaseline(serverUrl: string, database: string, file: string): Promise<number> {
  const conn = await createConnection({ uri: `${serverUrl}/${database}`, infileStreamFactory: () => createReadStream(file) });
  await conn.query(`CREATE TABLE raw_sales LIKE sales`);
  await conn.query('ALTER TABLE raw_sales DROP FOREIGN KEY IF EXISTS fk_sales_imported_file').catch(() => {});
  const started = performance.now();
  await conn.query(
    `LOAD DATA LOCAL INFILE 'sales.csv' INTO TABLE raw_sales FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n'
     IGNORE 1 LINES (date, order_id, product_id, amount_sgd) SET imported_file_id = 1, source_line = 0`,
  );
  const seconds = (performance.now() - started) / 1000;
  await conn.end();
  return seconds;
}

function sqliteBaseline(dir: string, file: string, zincPath: string): number {
  // Rows are split beforehand (no parsing, no validation): the database's own insert speed.
  const lines = execFileSync('tail', ['-n', '+2', file], { maxBuffer: 1 << 30 }).toString().split('\n');
  lines.pop();
  const conn = new SqliteDatabase(path.join(dir, 'baseline.sqlite'));
  conn.pragma('journal_mode = WAL');
  conn.pragma('synchronous = NORMAL');
  conn.pragma('cache_size = -32768'); // as Zinc's writer connection (32 MiB)
  conn.pragma('foreign_keys = OFF'); // as the MySQL baseline, which drops the foreign key
  // The same table as Zinc's: its definition and every index, read from the database just used.
  const zinc = new SqliteDatabase(zincPath, { readonly: true });
  const ddl = zinc.prepare("SELECT sql FROM sqlite_master WHERE tbl_name = 'sales' AND sql IS NOT NULL ORDER BY type DESC").all() as { sql: string }[];
  zinc.close();
  for (const { sql } of ddl) conn.exec(sql);
  const insert = conn.prepare('INSERT INTO sales (date, order_id, product_id, amount_sgd, imported_file_id, source_line) VALUES (?, ?, ?, ?, 1, ?)');
  const rows = lines.map((l) => l.split(','));
  const started = performance.now();
  conn.transaction(() => {
    let line = 2;
    for (const r of rows) insert.run(r[0], r[1], r[2], Math.round(Number(r[3]) * 100), line++);
  })();
  const seconds = (performance.now() - started) / 1000;
  conn.close();
  return seconds;
}

async function main(): Promise<void> {
  if (values.worker) return worker(values.worker, values.file!, values.name!);
  const rows = Number(values.rows);
  const dir = mkdtempSync(path.join(tmpdir(), 'zinc-bench-'));
  const file = path.join(dir, 'sales.csv');
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  console.log(`generating ${rows.toLocaleString('en')} rows…`);
  await generateSalesCsv(file, { rows });
  const mb = statSync(file).size / 2 ** 20;
  // The same rows again as a different file (one extra blank line): every identity is stored already.
  const again = path.join(dir, 'sales-again.csv');
  copyFileSync(file, again);
  appendFileSync(again, '\n');

  let url: string;
  let dbName = '';
  if (values.db === 'mysql') {
    dbName = `zinc_bench_${process.pid}`;
    const admin = await createConnection(values['mysql-url']!);
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.end();
    url = `${values['mysql-url']}/${dbName}`;
  } else {
    url = `sqlite:${path.join(dir, 'zinc.sqlite')}`;
  }
  try {
    const first = runWorker(url, file, 'sales.csv');
    const second = runWorker(url, again, 'sales-again.csv');
    const baseline =
      values.db === 'mysql' ? await mysqlBaseline(values['mysql-url']!, dbName, file) : sqliteBaseline(dir, file, path.join(dir, 'zinc.sqlite'));
    const label = values.db === 'mysql' ? 'raw LOAD DATA LOCAL INFILE (no validation)' : 'bare prepared INSERT into the same table and indexes, one transaction';
    const fmt = (n: number) => Math.round(n).toLocaleString('en');
    console.log(`file: ${mb.toFixed(1)} MB, ${fmt(rows)} rows, db ${values.db}${values.db === 'mysql' ? ` (method ${values.method})` : ''}`);
    console.log(`zinc import (new rows):     ${first.seconds.toFixed(2)} s  ${fmt(rows / first.seconds)} rows/s  ${(mb / first.seconds).toFixed(1)} MB/s  peak RSS ${first.peakRssMb.toFixed(0)} MB`);
    console.log(`zinc re-import (replaces):  ${second.seconds.toFixed(2)} s  ${fmt(rows / second.seconds)} rows/s  peak RSS ${second.peakRssMb.toFixed(0)} MB`);
    console.log(`baseline, ${label}: ${baseline.toFixed(2)} s  ${fmt(rows / baseline)} rows/s`);
    console.log(`ratio import / baseline:    ${(first.seconds / baseline).toFixed(2)}×`);
    console.log(`ratio re-import / import:   ${(second.seconds / first.seconds).toFixed(2)}×`);
  } finally {
    if (values.db === 'mysql') {
      const admin = await createConnection(values['mysql-url']!);
      await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
      await admin.end();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
