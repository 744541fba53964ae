/**
 * npm run bench:metrics -- --rows 1000000 --db sqlite|mysql|postgres [--sizes 100000,1000000[,5000000]]
 *                          [--duration 10] [--connections 32] [--mysql-url mysql://root@127.0.0.1:3306]
 *                          [--postgres-url postgres://postgres@127.0.0.1:5432] [--fresh]
 *
 * Loads N generated sales rows (bench/sales-generator.ts, imported through Zinc's import service,
 * so the rollups are built the way production builds them), serves Zinc from a child process,
 * and measures with autocannon at 32 connections, in the same run:
 *   (a) the same one-year total and the same one-year daily series, asked repeatedly;
 *   (b) totals and daily series over random ranges (each range once: every answer computed);
 *   (c) a minimal Fastify route returning a fixed JSON body (the ceiling), and (c') the same with
 *       a body as large as the daily series' answer (the ceiling for answers of that size);
 * printing requests/s, p50/p99 and each ratio to (c). Then, for every size in --sizes, the
 * single-request latency (one connection per size, sizes taking turns, every question new) of
 * every metrics endpoint, to show that cost follows the days asked about, not the rows stored.
 *
 * Databases are kept between runs (SQLite: data/bench-metrics-N.sqlite; MySQL and PostgreSQL: zinc_bench_metrics_N)
 * and reused when they hold N rows; --fresh reloads them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { sql } from 'kysely';
import { createConnection } from 'mysql2/promise';
import { buildApp } from '../src/app.js';
import { loadConfig, parseDatabaseUrl } from '../src/config.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { importFile } from '../src/imports/import.service.js';
import { rebuildRollups } from '../src/write/rollup-rebuild.js';
import { postgresAdmin } from './postgres-admin.js';
import { generateSalesCsv } from './sales-generator.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    db: { type: 'string', default: 'sqlite' },
    sizes: { type: 'string', default: '100000,1000000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    'latency-requests': { type: 'string', default: '300' },
    'mysql-url': { type: 'string', default: process.env.ZINC_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306' },
    'postgres-url': { type: 'string', default: process.env.ZINC_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432' },
    fresh: { type: 'boolean', default: false },
    serve: { type: 'string' },
  },
});

const silent = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

// The generator's data spans 2022-01-01 .. 2024-12-31.
const DATA_FIRST_DAY = Date.UTC(2022, 0, 1) / 86_400_000;
const DATA_DAYS = 3 * 365 + 1;
const iso = (day: number) => new Date(day * 86_400_000).toISOString().slice(0, 10);

// ---------------------------------------------------------------------------------------------
// Child mode: serve Zinc and a fixed-JSON Fastify route; print their ports as one JSON line.

async function serve(url: string): Promise<void> {
  const database = openDatabase(parseDatabaseUrl(url));
  await migrateToLatest(database.writer);
  // The service's own settings from the environment (CACHE_MAX_STALE_MS included), quiet.
  // No rate limit: the load generator is one client asking as fast as it can.
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: url,
    SALES_DIR: process.cwd(),
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    RATE_LIMIT_MAX: '0',
  });
  const app = await buildApp({ config, database, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const fixed = Fastify({ logger: false });
  const body = { start: '2024-01-01', end: '2024-12-31', currency: 'SGD', total_revenue: '12345.67', order_count: 123 };
  fixed.get('/fixed', async () => body);
  // The same minimal route with an answer as large as the one-year daily series (~30 KB): the
  // ceiling for answers of that size on this machine (bytes cost the load generator and the kernel).
  const days = Array.from({ length: 365 }, (_, i) => ({
    date: iso(Date.UTC(2023, 0, 1) / 86_400_000 + i),
    revenue: '1140285.37',
    order_count: 2281,
    sale_count: 4563,
  }));
  const large = JSON.stringify({ start: '2023-01-01', end: '2023-12-31', currency: 'SGD', days });
  fixed.get('/fixed-large', async (_request, reply) => reply.type('application/json; charset=utf-8').send(large));
  await fixed.listen({ host: '127.0.0.1', port: 0 });
  const port = (a: ReturnType<typeof app.server.address>) => (typeof a === 'object' && a ? a.port : 0);
  console.log(JSON.stringify({ zinc: port(app.server.address()), fixed: port(fixed.server.address()) }));
  process.on('SIGTERM', () => {
    void Promise.all([app.close(), fixed.close()]).then(() => database.close()).finally(() => process.exit(0));
  });
}

// ---------------------------------------------------------------------------------------------
// Parent mode.

interface Server {
  child: ChildProcess;
  zinc: string;
  fixed: string;
}

async function startServer(url: string): Promise<Server> {
  const child = spawn(process.execPath, [process.argv[1]!, '--serve', url], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const ports = JSON.parse(line) as { zinc: number; fixed: number };
  return { child, zinc: `http://127.0.0.1:${ports.zinc}`, fixed: `http://127.0.0.1:${ports.fixed}` };
}

async function stopServer(server: Server): Promise<void> {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
}

function databaseUrl(kind: string, rows: number): string {
  if (kind === 'sqlite') return `sqlite:${path.resolve('data', `bench-metrics-${rows}.sqlite`)}`;
  if (kind === 'postgres') return `${values['postgres-url']!.replace(/\/+$/, '')}/zinc_bench_metrics_${rows}`;
  return `${values['mysql-url']!.replace(/\/+$/, '')}/zinc_bench_metrics_${rows}`;
}

const reloaded = new Set<number>();

/** Makes sure the database for `rows` holds exactly the generated rows, importing them if not. */
async function ensureLoaded(kind: string, rows: number): Promise<string> {
  const url = databaseUrl(kind, rows);
  // --fresh reloads each size once per run.
  const fresh = values.fresh && !reloaded.has(rows);
  reloaded.add(rows);
  if (kind === 'sqlite') {
    mkdirSync('data', { recursive: true });
    if (fresh) for (const s of ['', '-wal', '-shm']) rmSync(`${url.slice('sqlite:'.length)}${s}`, { force: true });
  } else if (kind === 'postgres') {
    const name = `zinc_bench_metrics_${rows}`;
    await postgresAdmin(values['postgres-url']!, async (admin) => {
      if (fresh) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      // CREATE DATABASE has no IF NOT EXISTS.
      const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (!rowCount) await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`);
    });
  } else {
    const admin = await createConnection(values['mysql-url']!);
    if (fresh) await admin.query(`DROP DATABASE IF EXISTS \`zinc_bench_metrics_${rows}\``);
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`zinc_bench_metrics_${rows}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await admin.end();
  }
  const database = openDatabase(parseDatabaseUrl(url));
  try {
    await migrateToLatest(database.writer);
    const stored = Number(
      (await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM sales`.execute(database.db)).rows[0]!.n,
    );
    if (stored === rows) {
      console.log(`  ${rows.toLocaleString('en')} rows already loaded in ${redact(url)}`);
      return url;
    }
    if (stored !== 0) throw new Error(`${redact(url)} holds ${stored} rows, not ${rows}: run again with --fresh`);
    const dir = mkdtempSync(path.join(tmpdir(), 'zinc-bench-metrics-'));
    try {
      const file = path.join(dir, `sales-${rows}.csv`);
      let started = performance.now();
      // The shape its product filters name (SKU-n, bought together as n, n+7, n+14) and its figures were measured on.
      await generateSalesCsv(file, { rows, seed: 42, shape: 'random' });
      const generated = (performance.now() - started) / 1000;
      started = performance.now();
      const outcome = await importFile(database, file, path.basename(file), { onError: 'fail', log: silent });
      if (outcome.status !== 'success') throw new Error(`import ended ${outcome.status}`);
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `  loaded ${rows.toLocaleString('en')} rows into ${redact(url)}: generated in ${generated.toFixed(1)} s, ` +
          `imported (rollups included) in ${seconds.toFixed(1)} s (${Math.round(rows / seconds).toLocaleString('en')} rows/s)`,
      );
      // What the rollups cost by themselves: the same work again, from scratch.
      started = performance.now();
      await rebuildRollups(database);
      console.log(`  rollups rebuilt from scratch in ${((performance.now() - started) / 1000).toFixed(1)} s (the import above includes building them)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return url;
  } finally {
    await database.close();
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** A pseudo-random permutation of 0..n-1, so that random ranges never repeat within a run. */
function permutation(n: number, seed: number): () => number {
  // An affine map i → (a·i + c) mod n is a bijection when gcd(a, n) = 1.
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  let a = Math.floor(n * 0.618_033_988_75) | 1;
  while (gcd(a, n) !== 1) a += 2;
  let i = 0;
  return () => (Number((BigInt(a) * BigInt(i++ % n) + BigInt(seed)) % BigInt(n)));
}

/** Random ranges within the data, 1 to maxDays long, each (start, length) at most once. */
function randomRanges(maxDays: number, seed: number): () => { start: string; end: string } {
  const next = permutation(DATA_DAYS * maxDays, seed);
  return () => {
    const k = next();
    const length = 1 + (k % maxDays);
    const first = DATA_FIRST_DAY + Math.floor(k / maxDays) % Math.max(1, DATA_DAYS - length + 1);
    return { start: iso(first), end: iso(first + length - 1) };
  };
}

interface Measured {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function load(name: string, base: string, paths: string | (() => string), connections: number, duration: number): Promise<Measured> {
  const options: autocannon.Options = { url: base, connections, duration, pipelining: 1 };
  if (typeof paths === 'string') options.url = `${base}${paths}`;
  else options.requests = [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths() }) }];
  const result = await autocannon(options);
  return {
    name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

/**
 * Each question against the fixed-JSON route (c) in turns of `slice` seconds, `rounds` times, so
 * that the machine's drift weighs on both alike: the ratio is of requests served in paired slices.
 */
async function throughput(kind: string, rows: number, connections: number, duration: number): Promise<void> {
  const url = await ensureLoaded(kind, rows);
  const server = await startServer(url);
  try {
    const year = 'start=2023-01-01&end=2023-12-31';
    // Warm up (JIT, pools, the version check).
    await load('warm-up', server.zinc, `/api/metrics/revenue?${year}`, connections, 2);
    await load('warm-up', server.fixed, '/fixed', connections, 2);
    const totals = randomRanges(1096, 7);
    const series = randomRanges(365, 11);
    const questions: Array<[string, string, string | (() => string)]> = [
      ['(a) one-year total, repeated', server.zinc, `/api/metrics/revenue?${year}`],
      ['(a) one-year daily series, repeated', server.zinc, `/api/metrics/revenue/daily?${year}`],
      ["(c') fixed route, a daily series' size (30 KB)", server.fixed, '/fixed-large'],
      ['(b) total, random ranges', server.zinc, () => {
        const r = totals();
        return `/api/metrics/revenue?start=${r.start}&end=${r.end}`;
      }],
      ['(b) daily series, random ranges (1-365 days)', server.zinc, () => {
        const r = series();
        return `/api/metrics/revenue/daily?start=${r.start}&end=${r.end}`;
      }],
    ];
    const rounds = Math.max(1, Math.round(duration / 2));
    const slice = duration / rounds;
    const lines: string[][] = [];
    for (const [name, base, paths] of questions) {
      const mine: Measured[] = [];
      const ceiling: Measured[] = [];
      for (let round = 0; round < rounds; round++) {
        ceiling.push(await load('(c)', server.fixed, '/fixed', connections, slice));
        mine.push(await load(name, base, paths, connections, slice));
      }
      const rps = (list: Measured[]) => list.reduce((sum, m) => sum + m.rps, 0) / list.length;
      lines.push([
        name,
        Math.round(rps(mine)).toLocaleString('en'),
        Math.round(rps(ceiling)).toLocaleString('en'),
        `${((100 * rps(mine)) / rps(ceiling)).toFixed(1)}%`,
        (mine.reduce((sum, m) => sum + m.p50, 0) / mine.length).toFixed(1),
        Math.max(...mine.map((m) => m.p99)).toFixed(1),
        String(mine.reduce((sum, m) => sum + m.errors, 0)),
      ]);
    }
    console.log(
      `\nThroughput at ${connections} connections, ${rows.toLocaleString('en')} rows on ${kind}: each question and ` +
        `(c) the fixed JSON route in turns, ${rounds} × ${slice} s each:\n`,
    );
    console.log(table([['', 'req/s', '(c) req/s', 'vs (c)', 'p50 ms', 'p99 ms', 'errors'], ...lines]));
  } finally {
    await stopServer(server);
  }
}

/** Every metrics endpoint, asked about one year; `i` moves the year so that no answer is cached. */
const ENDPOINTS: Array<[string, (start: string, end: string) => string]> = [
  ['total', (s, e) => `/api/metrics/revenue?start=${s}&end=${e}`],
  ['total, compare=previous_period', (s, e) => `/api/metrics/revenue?start=${s}&end=${e}&compare=previous_period`],
  ['total, 1 product', (s, e) => `/api/metrics/revenue?start=${s}&end=${e}&product_id=SKU-7`],
  ['total, 3 products', (s, e) => `/api/metrics/revenue?start=${s}&end=${e}&product_id=SKU-7&product_id=SKU-8&product_id=SKU-9`],
  // The generator's orders hold SKU-n, SKU-(n+7), SKU-(n+14): these three are often in one order.
  ['total, 3 products bought together', (s, e) => `/api/metrics/revenue?start=${s}&end=${e}&product_id=SKU-1&product_id=SKU-8&product_id=SKU-15`],
  ['daily', (s, e) => `/api/metrics/revenue/daily?start=${s}&end=${e}`],
  ['series, week', (s, e) => `/api/metrics/revenue/series?start=${s}&end=${e}&granularity=week`],
  ['series, month', (s, e) => `/api/metrics/revenue/series?start=${s}&end=${e}&granularity=month`],
  ['series, month, 1 product', (s, e) => `/api/metrics/revenue/series?start=${s}&end=${e}&granularity=month&product_id=SKU-7`],
  ['series, week, 3 products bought together', (s, e) => `/api/metrics/revenue/series?start=${s}&end=${e}&granularity=week&product_id=SKU-1&product_id=SKU-8&product_id=SKU-15`],
  ['by-product, top 10', (s, e) => `/api/metrics/revenue/by-product?start=${s}&end=${e}`],
];

/** One keep-alive connection that asks one question at a time, timing each answer in ms. */
function client(base: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    async time(path: string): Promise<number> {
      const url = `${base}${path}`;
      const started = performance.now();
      const status = await new Promise<number>((resolve, reject) => {
        http
          .get(url, { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', reject);
      });
      const ms = performance.now() - started;
      if (status !== 200) throw new Error(`${url} answered ${status}`);
      return ms;
    },
    close: () => agent.destroy(),
  };
}

function percentiles(times: number[]): { p50: number; p99: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

/**
 * Every size's server runs at once and the sizes take turns, request by request, so that the
 * machine's drift over minutes weighs on every size alike and the ratio compares like with like.
 */
async function latencies(kind: string, sizes: number[], requests: number): Promise<void> {
  const servers: Server[] = [];
  const clients: Array<ReturnType<typeof client>> = [];
  const figures = new Map<string, Array<{ p50: number; p99: number }>>();
  try {
    for (const rows of sizes) servers.push(await startServer(await ensureLoaded(kind, rows)));
    for (const server of servers) clients.push(client(server.zinc));
    for (const [name, path] of ENDPOINTS) {
      // One-year windows starting on each of the data's first ~700 days: a new question each time.
      const window = (i: number) => {
        const first = DATA_FIRST_DAY + 30 + ((i * 37) % 700);
        return path(iso(first), iso(first + 364));
      };
      for (let i = 0; i < 50; i++) for (const c of clients) await c.time(window(i)); // warm-up
      const times = clients.map(() => [] as number[]);
      for (let i = 1000; i < 1000 + requests; i++) {
        for (const [k, c] of clients.entries()) times[k]!.push(await c.time(window(i)));
      }
      figures.set(name, times.map(percentiles));
    }
  } finally {
    for (const c of clients) c.close();
    for (const server of servers) await stopServer(server);
  }
  console.log(
    `\nSingle-request latency on ${kind} (one connection per size, sizes taking turns, one-year ranges, ` +
      'every answer computed), p50 / p99 ms:\n',
  );
  const header = ['', ...sizes.map((n) => `${n.toLocaleString('en')} rows`), `p50 ${sizes.at(-1)!.toLocaleString('en')} / ${sizes[0]!.toLocaleString('en')}`];
  console.log(
    table([
      header,
      ...[...figures].map(([name, list]) => [
        name,
        ...list.map((f) => `${f.p50.toFixed(2)} / ${f.p99.toFixed(2)}`),
        `${(list.at(-1)!.p50 / list[0]!.p50).toFixed(2)}×`,
      ]),
    ]),
  );
}

async function main(): Promise<void> {
  if (values.serve) return serve(values.serve);
  const kind = values.db!;
  if (kind !== 'sqlite' && kind !== 'mysql' && kind !== 'postgres') throw new Error('--db must be sqlite, mysql or postgres');
  const rows = Number(values.rows);
  const sizes = values.sizes!.split(',').map(Number).filter((n) => n > 0);
  const cpu = cpus();
  console.log(
    `Machine: ${cpu.length} CPUs (${cpu[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ` +
      `database ${kind}; autocannon in this process, the servers in a child process.`,
  );
  console.log('\nPreparing data:');
  for (const n of new Set([rows, ...sizes])) await ensureLoaded(kind, n);
  await throughput(kind, rows, Number(values.connections), Number(values.duration));
  if (sizes.length > 0) await latencies(kind, sizes, Number(values['latency-requests']));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
