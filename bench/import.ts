/**
 * npm run bench:import -- [--shape chronological|random|wide] [--rows 1000000] [--products N]
 *                         [--db sqlite|mysql|postgres] [--mysql-url mysql://root@127.0.0.1:3306] [--method auto|load-data|insert]
 *                         [--postgres-url postgres://postgres@127.0.0.1:5432]
 *
 * Generates a deterministic sales CSV of the given shape (bench/sales-generator.ts) and measures,
 * in one run, on one database:
 * - a baseline on the same rows, into a fresh table with only the keys the CSV contract needs
 *   (id, UNIQUE (order_id, product_id), an index on date): MySQL — a raw LOAD DATA LOCAL INFILE of
 *   the file, no validation; PostgreSQL — a raw COPY … FROM STDIN (FORMAT csv) of the file, streamed
 *   from disk, no validation; SQLite — the file read and validated beforehand by Zinc's own reader,
 *   then a bare prepared INSERT of those rows in one transaction;
 * - Zinc's import of the file into a fresh database (every row validated, rollups maintained) in
 *   a child process, so its peak RSS is its own, with the phases the import reports;
 * - the re-import: the same rows as a second file whose every identity is stored already.
 * The last line, `RESULT key=value …`, is for scripts (bench/import-matrix.ts reads it).
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import SqliteDatabase from 'better-sqlite3';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { parseDatabaseUrl } from '../src/config.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { importFile } from '../src/imports/import.service.js';
import type { SaleRow } from '../src/imports/sales-row.js';
import { streamRows } from '../src/imports/sales-stream.js';
import { postgresAdmin } from './postgres-admin.js';
import { defaultProducts, generateSalesCsv, isSalesShape, SALES_SHAPES } from './sales-generator.js';

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'chronological' },
    rows: { type: 'string', default: '1000000' },
    products: { type: 'string' },
    db: { type: 'string', default: 'sqlite' },
    'mysql-url': { type: 'string', default: process.env.ZINC_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306' },
    'postgres-url': { type: 'string', default: process.env.ZINC_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432' },
    method: { type: 'string', default: 'auto' },
    worker: { type: 'string' },
    file: { type: 'string' },
    name: { type: 'string' },
  },
});

/** Phase name → milliseconds, as the import reports them. */
type Phases = Record<string, number>;

interface ImportRun {
  seconds: number;
  rows: number;
  peakRssMb: number;
  phases: Phases | null;
  /** Per rollup table, as the import reports it: rows written and milliseconds. */
  tables?: Record<string, { rows: number; ms: number }>;
}

/** Every numeric field, nested ones named by their path, so new phases show without a change here. */
function numericFields(value: unknown, prefix = ''): Phases {
  const out: Phases = {};
  if (value === null || typeof value !== 'object') return out;
  for (const [key, field] of Object.entries(value)) {
    if (typeof field === 'number' && Number.isFinite(field)) out[prefix + key] = field;
    else if (field !== null && typeof field === 'object') Object.assign(out, numericFields(field, `${prefix}${key}.`));
  }
  return out;
}

/** Child mode: import one file into DATABASE_URL and print a JSON line with the figures. */
async function worker(url: string, file: string, name: string): Promise<void> {
  const database = openDatabase(parseDatabaseUrl(url));
  await migrateToLatest(database.writer);
  // The import reports its phase times on 'import finished' (`phases`); older engines don't.
  let phases: Phases | null = null;
  let tables: ImportRun['tables'];
  const log = {
    info: (obj: object, msg?: string) => {
      if (msg === 'import finished' && 'phases' in obj) {
        phases = numericFields(obj.phases);
        if ('rollups' in obj) tables = (obj.rollups as { tables?: ImportRun['tables'] }).tables;
      }
    },
    warn: () => {},
    error: () => {},
  };
  const started = performance.now();
  const outcome = await importFile(database, file, name, {
    onError: 'fail',
    log,
    mysqlLoadMethod: values.method as 'auto',
  });
  const seconds = (performance.now() - started) / 1000;
  await database.close();
  if (outcome.status !== 'success') throw new Error(`import ended ${outcome.status}: ${JSON.stringify(outcome.record)}`);
  const run: ImportRun = { seconds, rows: outcome.record.num_rows, peakRssMb: process.resourceUsage().maxRSS / 1024, phases, tables };
  console.log(JSON.stringify(run));
}

function runWorker(url: string, file: string, name: string): ImportRun {
  const result = spawnSync(
    process.execPath,
    [process.argv[1]!, '--worker', url, '--file', file, '--name', name, '--method', values.method!],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (result.status !== 0) throw new Error(`worker failed (${result.signal ?? `exit ${result.status}`}): ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as ImportRun;
}

interface BaselineRun {
  seconds: number;
  /** Parts of `seconds`, in ms. */
  phases: Phases;
  /** Work done before the timed part, in ms (not part of `seconds`). */
  untimed: Phases;
  label: string;
}

async function mysqlBaseline(serverUrl: string, database: string, file: string): Promise<BaselineRun> {
  const conn = await createConnection({ uri: `${serverUrl}/${database}`, infileStreamFactory: () => createReadStream(file) });
  try {
    // Only the CSV contract's keys: any index Zinc adds to its own table counts as Zinc's time.
    await conn.query(`CREATE TABLE baseline_sales (
      id BIGINT AUTO_INCREMENT PRIMARY KEY,
      date DATE NOT NULL,
      order_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      product_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      amount_sgd DECIMAL(14,2) NOT NULL,
      UNIQUE KEY baseline_identity (order_id, product_id),
      KEY baseline_date (date)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
    const started = performance.now();
    // One transaction, as Zinc's import, so that the commit can be told apart.
    await conn.query('START TRANSACTION');
    await conn.query(
      `LOAD DATA LOCAL INFILE 'sales.csv' INTO TABLE baseline_sales CHARACTER SET utf8mb4
       FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n' IGNORE 1 LINES (date, order_id, product_id, amount_sgd)`,
    );
    const loaded = performance.now();
    await conn.query('COMMIT');
    const done = performance.now();
    // Zinc's database starts without this table's pages in the buffer pool.
    await conn.query('DROP TABLE baseline_sales');
    return {
      seconds: (done - started) / 1000,
      phases: { load_ms: loaded - started, commit_ms: done - loaded },
      untimed: {},
      label: 'raw LOAD DATA LOCAL INFILE, contract keys only, no validation',
    };
  } finally {
    await conn.end();
  }
}

async function postgresBaseline(serverUrl: string, database: string, file: string): Promise<BaselineRun> {
  const client = new pg.Client({ connectionString: `${serverUrl}/${database}` });
  await client.connect();
  try {
    // Only the CSV contract's keys: any index Zinc adds to its own table counts as Zinc's time.
    await client.query(`CREATE TABLE baseline_sales (
      id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
      date DATE NOT NULL,
      order_id VARCHAR(64) COLLATE "C" NOT NULL,
      product_id VARCHAR(64) COLLATE "C" NOT NULL,
      amount_sgd NUMERIC(14,2) NOT NULL,
      CONSTRAINT baseline_identity UNIQUE (order_id, product_id)
    )`);
    await client.query('CREATE INDEX baseline_date ON baseline_sales (date)');
    const started = performance.now();
    // One transaction, as Zinc's import, so that the commit can be told apart.
    await client.query('BEGIN');
    await pipeline(
      createReadStream(file),
      client.query(copyFrom('COPY baseline_sales (date, order_id, product_id, amount_sgd) FROM STDIN WITH (FORMAT csv, HEADER true)')),
    );
    const loaded = performance.now();
    await client.query('COMMIT');
    const done = performance.now();
    // Zinc's database starts without this table's pages in shared buffers.
    await client.query('DROP TABLE baseline_sales');
    return {
      seconds: (done - started) / 1000,
      phases: { load_ms: loaded - started, commit_ms: done - loaded },
      untimed: {},
      label: 'raw COPY FROM STDIN (FORMAT csv), contract keys only, no validation',
    };
  } finally {
    await client.end();
  }
}

async function sqliteBaseline(dir: string, file: string): Promise<BaselineRun> {
  // Read and validated by Zinc's own reader beforehand, so the timed part is the database's alone.
  const readStarted = performance.now();
  const rows: SaleRow[] = [];
  await streamRows(file, {
    onHeader: () => {},
    onRows: async (batch) => {
      for (const row of batch) rows.push(row);
    },
    onErrors: (errors) => {
      throw new Error(`the generated file has row errors: ${JSON.stringify(errors.slice(0, 3))}`);
    },
  });
  const readMs = performance.now() - readStarted;

  const dbPath = path.join(dir, 'baseline.sqlite');
  const conn = new SqliteDatabase(dbPath);
  try {
    // Zinc's writer connection's pragmas (src/db/connection.ts).
    conn.pragma('journal_mode = WAL');
    conn.pragma('synchronous = NORMAL');
    conn.pragma('cache_size = -32768');
    conn.pragma('temp_store = FILE');
    conn.exec(`CREATE TABLE sales (
      id INTEGER PRIMARY KEY,
      date TEXT NOT NULL,
      order_id TEXT NOT NULL,
      product_id TEXT NOT NULL,
      amount_sgd INTEGER NOT NULL,
      UNIQUE (order_id, product_id)
    )`);
    conn.exec('CREATE INDEX sales_date ON sales (date)');
    const insert = conn.prepare('INSERT INTO sales (date, order_id, product_id, amount_sgd) VALUES (?, ?, ?, ?)');
    const started = performance.now();
    conn.exec('BEGIN');
    for (const r of rows) insert.run(r.date, r.orderId, r.productId, r.amountCents);
    const inserted = performance.now();
    conn.exec('COMMIT');
    const done = performance.now();
    return {
      seconds: (done - started) / 1000,
      phases: { insert_ms: inserted - started, commit_ms: done - inserted },
      untimed: { read_validate_ms: readMs },
      label: 'bare prepared INSERT of pre-validated rows, contract keys only, one transaction',
    };
  } finally {
    conn.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(dbPath + suffix, { force: true });
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en');
const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1).padStart(5)} %`;

function printPhases(phases: Phases | null, totalSeconds: number, indent = '  '): void {
  if (!phases) {
    console.log(`${indent}phases: not reported`);
    return;
  }
  const entries = Object.entries(phases);
  if (entries.length === 0) {
    console.log(`${indent}phases: reported, but none is a number`);
    return;
  }
  const total = totalSeconds * 1000;
  const width = Math.max(...entries.map(([k]) => k.length));
  for (const [key, ms] of entries) console.log(`${indent}${key.padEnd(width)} ${fmt(ms).padStart(9)} ms  ${pct(ms, total)}`);
  // Phases may overlap or leave gaps; the sum shows which. Nested fields break a phase down further.
  const sum = entries.reduce((s, [key, ms]) => (key.includes('.') ? s : s + ms), 0);
  console.log(`${indent}${'(sum)'.padEnd(width)} ${fmt(sum).padStart(9)} ms  ${pct(sum, total)} of ${fmt(total)} ms measured`);
}

/** rollups_ms broken down: each rollup table's rows written and time. */
function printTables(tables: ImportRun['tables'], indent = '    '): void {
  if (!tables) return;
  const entries = Object.entries(tables);
  const width = Math.max(...entries.map(([k]) => k.length));
  console.log(`  rollups_ms by table (rows written, ms):`);
  for (const [table, { rows, ms }] of entries) {
    console.log(`${indent}${table.padEnd(width)} ${fmt(rows).padStart(10)} rows ${fmt(ms).padStart(7)} ms`);
  }
}

async function machine(db: string, serverUrl: string): Promise<void> {
  const cpu = cpus();
  console.log(
    `machine: ${cpu.length} cores × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}`,
  );
  if (db === 'postgres') {
    const { rows } = await postgresAdmin(serverUrl, (client) =>
      client.query<Record<'version' | 'shared_buffers' | 'work_mem' | 'max_wal_size' | 'synchronous_commit', string>>(
        `SELECT current_setting('server_version') AS version, current_setting('shared_buffers') AS shared_buffers,
           current_setting('work_mem') AS work_mem, current_setting('max_wal_size') AS max_wal_size,
           current_setting('synchronous_commit') AS synchronous_commit`,
      ),
    );
    const s = rows[0]!;
    console.log(
      `server: PostgreSQL ${s.version}, shared_buffers ${s.shared_buffers}, work_mem ${s.work_mem}, ` +
        `max_wal_size ${s.max_wal_size}, synchronous_commit ${s.synchronous_commit}`,
    );
    return;
  }
  if (db !== 'mysql') return;
  const conn = await createConnection(serverUrl);
  try {
    const [rows] = await conn.query('SELECT VERSION() AS version, @@innodb_buffer_pool_size AS pool, @@local_infile AS local_infile');
    const { version, pool, local_infile: infile } = (rows as Array<{ version: string; pool: string | number; local_infile: number }>)[0]!;
    console.log(`server: ${version}, innodb_buffer_pool_size ${(Number(pool) / 2 ** 20).toFixed(0)} MiB, local_infile ${Number(infile) ? 'ON' : 'OFF'}`);
  } finally {
    await conn.end();
  }
}

async function main(): Promise<void> {
  if (values.worker) return worker(values.worker, values.file!, values.name!);
  const shape = values.shape!;
  if (!isSalesShape(shape)) throw new Error(`--shape must be one of ${SALES_SHAPES.join(', ')} (got ${shape})`);
  const db = values.db!;
  if (db !== 'sqlite' && db !== 'mysql' && db !== 'postgres') throw new Error(`--db must be sqlite, mysql or postgres (got ${db})`);
  const rows = Number(values.rows);
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`--rows must be a positive whole number (got ${values.rows})`);
  const products = values.products === undefined ? defaultProducts(shape) : Number(values.products);
  const serverUrl = values[db === 'postgres' ? 'postgres-url' : 'mysql-url']!.replace(/\/+$/, '');
  const dbName = `zinc_bench_${process.pid}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'zinc-bench-'));

  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      try {
        if (db === 'mysql') {
          const admin = await createConnection(serverUrl);
          await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
          await admin.end();
        } else if (db === 'postgres') {
          await postgresAdmin(serverUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    })());
  // Ctrl-C reaches the worker too; once it has gone, leave nothing behind.
  const interrupted = () => {
    console.error('interrupted: dropping the benchmark database and temporary files');
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  try {
    await machine(db, serverUrl);
    const file = path.join(dir, 'sales.csv');
    console.log(`generating ${fmt(rows)} rows, shape ${shape}, ${fmt(products)} products…`);
    const generated = await generateSalesCsv(file, { rows, shape, products });
    const mb = statSync(file).size / 2 ** 20;
    console.log(`file: ${mb.toFixed(1)} MB, ${fmt(rows)} rows, ${fmt(generated.orders)} orders; db ${db}${db === 'mysql' ? ` (method ${values.method})` : ''}`);
    // The same rows again as a different file (one extra blank line): every identity is stored already.
    const again = path.join(dir, 'sales-again.csv');
    copyFileSync(file, again);
    appendFileSync(again, '\n');

    let url: string;
    if (db === 'mysql') {
      const admin = await createConnection(serverUrl);
      await admin.query(`CREATE DATABASE ${dbName} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
      await admin.end();
      url = `${serverUrl}/${dbName}`;
    } else if (db === 'postgres') {
      await postgresAdmin(serverUrl, (admin) => admin.query(`CREATE DATABASE ${dbName} TEMPLATE template0 ENCODING 'UTF8'`));
      url = `${serverUrl}/${dbName}`;
    } else {
      url = `sqlite:${path.join(dir, 'zinc.sqlite')}`;
    }

    // The baseline first, its table gone before Zinc starts: neither inherits the other's cache.
    const baseline =
      db === 'mysql'
        ? await mysqlBaseline(serverUrl, dbName, file)
        : db === 'postgres'
          ? await postgresBaseline(serverUrl, dbName, file)
          : await sqliteBaseline(dir, file);
    console.log(`\nbaseline, ${baseline.label}: ${baseline.seconds.toFixed(2)} s  ${fmt(rows / baseline.seconds)} rows/s  ${(mb / baseline.seconds).toFixed(1)} MB/s`);
    for (const [key, ms] of Object.entries(baseline.untimed)) console.log(`  ${key} ${fmt(ms)} ms (before, not timed)`);
    printPhases(baseline.phases, baseline.seconds);

    const first = runWorker(url, file, 'sales.csv');
    console.log(
      `\nzinc import (new rows): ${first.seconds.toFixed(2)} s  ${fmt(rows / first.seconds)} rows/s  ${(mb / first.seconds).toFixed(1)} MB/s  ` +
        `peak RSS ${first.peakRssMb.toFixed(0)} MB  ratio to baseline ${(first.seconds / baseline.seconds).toFixed(2)}×`,
    );
    printPhases(first.phases, first.seconds);
    printTables(first.tables);

    const second = runWorker(url, again, 'sales-again.csv');
    console.log(
      `\nzinc re-import (every row replaces one): ${second.seconds.toFixed(2)} s  ${fmt(rows / second.seconds)} rows/s  ${(mb / second.seconds).toFixed(1)} MB/s  ` +
        `peak RSS ${second.peakRssMb.toFixed(0)} MB  ratio to import ${(second.seconds / first.seconds).toFixed(2)}×`,
    );
    printPhases(second.phases, second.seconds);
    printTables(second.tables);

    for (const run of [first, second]) {
      if (run.rows !== rows) throw new Error(`an import stored ${run.rows} rows, not ${rows}`);
    }
    const result = {
      shape,
      rows,
      db,
      baseline_s: baseline.seconds.toFixed(2),
      zinc_s: first.seconds.toFixed(2),
      ratio: (first.seconds / baseline.seconds).toFixed(2),
      reimport_s: second.seconds.toFixed(2),
      reimport_ratio: (second.seconds / first.seconds).toFixed(2),
      peak_rss_mb: Math.max(first.peakRssMb, second.peakRssMb).toFixed(0),
    };
    console.log(`\nRESULT ${Object.entries(result).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  } finally {
    await cleanUp();
  }
}

await main();
