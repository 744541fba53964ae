/**
 * npm run bench:load -- [--duration 20] [--db sqlite|mysql|postgres] [--mysql-url mysql://root@127.0.0.1:3306]
 *                       [--read-mysql-url mysql://root@127.0.0.1:3323]
 *                       [--postgres-url postgres://postgres@127.0.0.1:5432] [--readers 8] [--files 6] [--orders 2000] [--seed 7]
 *
 * Load with consistency, on loopback, for a bounded time. A real server (dist/src/cli.js serve, a
 * child process) on a fresh database; readers ask metrics questions at full speed (read-only
 * token) while one writer imports, replaces (overlapping files) and undoes files through the HTTP
 * API (full token), uploads and folder runs both. The files are generated here (bench/consistency.ts),
 * so every state the writer commits is known exactly: each identity holds the value of the latest
 * import still active that carries it. Every total a reader saw must be the total of one of those states (no
 * half-file state, no mix of two), there must be no 5xx at all, and the final answer must equal
 * the final state. Prints requests served, errors and latency percentiles; exits 1 on any
 * inconsistency, 5xx or failed write.
 *
 * With --read-mysql-url (another node of the same cluster: Galera), a second server reads the
 * same database through that node while the writer imports through the first: the readers ask
 * the second, so every answer is checked across nodes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { generateFiles, inconsistencies, newSeen, QUESTIONS, stateOf, type SalesFile, type Seen, type State } from './consistency.js';
import { freePort } from './fleet.js';
import { postgresAdmin } from './postgres-admin.js';
import { prng } from './sales-generator.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '20' },
    db: { type: 'string', default: 'sqlite' },
    'mysql-url': { type: 'string', default: process.env.ZINC_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306' },
    'read-mysql-url': { type: 'string' },
    'postgres-url': { type: 'string', default: process.env.ZINC_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432' },
    readers: { type: 'string', default: '8' },
    files: { type: 'string', default: '6' },
    orders: { type: 'string', default: '2000' },
    seed: { type: 'string', default: '7' },
  },
});

const DURATION_MS = Number(values.duration) * 1000;
const READERS = Number(values.readers);
const FILES = Number(values.files);
const ORDERS = Number(values.orders);
const SEED = Number(values.seed);
const WRITE_TOKEN = randomBytes(16).toString('hex');
const READ_TOKEN = randomBytes(16).toString('hex');
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli.js');

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------


async function startServer(databaseUrl: string, salesDir: string): Promise<{ child: ChildProcess; base: string; output: () => string }> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: databaseUrl,
      SALES_DIR: salesDir,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      API_TOKEN: WRITE_TOKEN,
      API_READ_TOKEN: READ_TOKEN,
      RATE_LIMIT_MAX: '0', // the readers are one client at full speed on purpose
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}):\n${output}`);
    const ok = await fetch(`${base}/health/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`the server was not ready within 30 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, base, output: () => output };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// Readers and the writer
// ---------------------------------------------------------------------------------------------

interface Tally {
  requests: number;
  errors: number;
  fiveXx: number;
  latencies: number[];
  problems: string[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function reader(base: string, until: number, offset: number, tally: Tally, seen: Seen): Promise<void> {
  const headers = { authorization: `Bearer ${READ_TOKEN}` };
  for (let i = offset; Date.now() < until; i++) {
    const q = QUESTIONS[i % QUESTIONS.length]!;
    const started = performance.now();
    let status = 0;
    try {
      const res = await fetch(base + q.url, { headers });
      status = res.status;
      const body = (await res.json()) as unknown;
      tally.latencies.push(performance.now() - started);
      tally.requests++;
      if (status !== 200) {
        tally.errors++;
        if (status >= 500) tally.fiveXx++;
        if (tally.problems.length < 20) tally.problems.push(`${q.url} answered ${status}: ${JSON.stringify(body).slice(0, 200)}`);
        continue;
      }
      q.record(body, seen);
    } catch (error) {
      tally.requests++;
      tally.errors++;
      if (tally.problems.length < 20) tally.problems.push(`${q.url} failed (${status}): ${(error as Error).message}`);
    }
  }
}

interface WriterResult {
  imports: number;
  folderRuns: number;
  undos: number;
  states: State[];
  active: SalesFile[];
}

async function writer(base: string, salesDir: string, files: SalesFile[], until: number, tally: Tally): Promise<WriterResult> {
  const random = prng(SEED);
  const auth = { authorization: `Bearer ${WRITE_TOKEN}` };
  const active: Array<{ file: SalesFile; id: number }> = [];
  const states: State[] = [stateOf([])];
  const result = { imports: 0, folderRuns: 0, undos: 0 };

  async function call(method: string, url: string, init: RequestInit = {}) {
    const started = performance.now();
    const res = await fetch(base + url, { method, ...init, headers: { ...auth, ...(init.headers ?? {}) } });
    const body = (await res.json()) as Record<string, unknown>;
    tally.latencies.push(performance.now() - started);
    tally.requests++;
    if (res.status !== 200) {
      tally.errors++;
      if (res.status >= 500) tally.fiveXx++;
      throw new Error(`${method} ${url} answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
    }
    return body;
  }

  while (Date.now() < until) {
    const inactive = files.filter((f) => !active.some((a) => a.file === f));
    const doImport = inactive.length > 0 && (active.length === 0 || random() < 0.6);
    if (doImport) {
      const file = inactive[Math.floor(random() * inactive.length)]!;
      let outcome: { id: number; status: string; num_rows: number };
      if (random() < 0.25) {
        // Through the folder: the file is there for this one run only.
        const where = path.join(salesDir, file.name);
        writeFileSync(where, file.text);
        try {
          const body = await call('POST', '/api/import-sales');
          outcome = (body.files as Array<typeof outcome>)[0]!;
        } finally {
          unlinkSync(where);
        }
        result.folderRuns++;
      } else {
        outcome = (await call('POST', `/api/imports?filename=${file.name}`, {
          body: file.text,
          headers: { 'content-type': 'text/csv' },
        })) as unknown as typeof outcome;
      }
      if (outcome.status !== 'success' || outcome.num_rows !== file.lines.size) {
        throw new Error(`importing ${file.name} ended ${outcome.status} with ${outcome.num_rows} rows (expected ${file.lines.size})`);
      }
      active.push({ file, id: outcome.id });
      result.imports++;
    } else {
      const at = Math.floor(random() * active.length);
      const { id } = active[at]!;
      const body = await call('DELETE', `/api/imports/${id}`);
      if (body.status !== 'reverted') throw new Error(`undo of ${id} answered status ${String(body.status)}`);
      active.splice(at, 1);
      result.undos++;
    }
    states.push(stateOf(active.map((a) => a.file)));
  }
  return { ...result, states, active: active.map((a) => a.file) };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), 'zinc-load-'));
  const salesDir = path.join(dir, 'sales');
  mkdirSync(salesDir);
  let databaseUrl = `sqlite:${path.join(dir, 'zinc.sqlite')}`;
  let readDatabaseUrl: string | undefined;
  let dropDatabase = async () => {};
  if (values.db === 'mysql') {
    const name = `zinc_load_${randomBytes(4).toString('hex')}`;
    const serverUrl = values['mysql-url']!.replace(/\/+$/, '');
    const admin = await createConnection(serverUrl);
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    await admin.end();
    databaseUrl = `${serverUrl}/${name}`;
    if (values['read-mysql-url']) readDatabaseUrl = `${values['read-mysql-url'].replace(/\/+$/, '')}/${name}`;
    dropDatabase = async () => {
      const conn = await createConnection(serverUrl);
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    };
  } else if (values.db === 'postgres') {
    const name = `zinc_load_${randomBytes(4).toString('hex')}`;
    const serverUrl = values['postgres-url']!.replace(/\/+$/, '');
    await postgresAdmin(serverUrl, (admin) => admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`));
    databaseUrl = `${serverUrl}/${name}`;
    dropDatabase = async () => {
      await postgresAdmin(serverUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    };
  } else if (values.db !== 'sqlite') {
    console.error('--db must be sqlite, mysql or postgres');
    return 2;
  }

  const files = generateFiles({ count: FILES, orders: ORDERS, seed: SEED });
  const rows = files.reduce((n, f) => n + f.lines.size, 0);
  console.log(
    `bench:load on ${values.db}: ${Number(values.duration)} s, ${READERS} readers, 1 writer, ${FILES} overlapping files ` +
      `(${rows.toLocaleString('en')} rows), ${cpus().length} CPUs, node ${process.version}`,
  );

  const server = await startServer(databaseUrl, salesDir);
  // Readers ask a second server on another node when one is named, else the writer's.
  const readServer = readDatabaseUrl ? await startServer(readDatabaseUrl, salesDir) : server;
  if (readDatabaseUrl) console.log(`  writer through ${databaseUrl.replace(/\/[^/]*$/, '')}, readers through ${readDatabaseUrl.replace(/\/[^/]*$/, '')}`);
  const guard = setTimeout(() => {
    console.error('bench:load: still running 120 s past its duration; giving up');
    server.child.kill('SIGKILL');
    readServer.child.kill('SIGKILL');
    process.exit(1);
  }, DURATION_MS + 120_000);
  guard.unref();

  const reads: Tally = { requests: 0, errors: 0, fiveXx: 0, latencies: [], problems: [] };
  const writes: Tally = { requests: 0, errors: 0, fiveXx: 0, latencies: [], problems: [] };
  const seen: Seen = newSeen();
  const started = performance.now();
  const until = Date.now() + DURATION_MS;
  let written: WriterResult | undefined;
  let writerError: Error | undefined;
  try {
    const readersDone = Promise.all(Array.from({ length: READERS }, (_, i) => reader(readServer.base, until, i, reads, seen)));
    written = await writer(server.base, salesDir, files, until, writes).catch((error: Error) => {
      writerError = error;
      return undefined;
    });
    await readersDone;
  } finally {
    clearTimeout(guard);
  }
  const seconds = (performance.now() - started) / 1000;

  // The final answer, after everything settled, is the final state exactly.
  let finalProblem: string | undefined;
  if (written) {
    const expected = stateOf(written.active);
    // The reading server learns of the writer's last change within its cache's staleness bound (1 s).
    if (readServer !== server) await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const s of new Set([server, readServer])) {
      const res = await fetch(`${s.base}/api/metrics/revenue`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
      const body = (await res.json()) as { total_revenue: string; sale_count: number; order_count: number };
      if (body.total_revenue !== expected.total || body.sale_count !== expected.sales || body.order_count !== expected.orders) {
        finalProblem = `final answer ${JSON.stringify(body)} is not the final state ${JSON.stringify(expected)}`;
      }
    }
  }
  if (readServer !== server) await stopServer(readServer.child);
  await stopServer(server.child);
  await dropDatabase();
  rmSync(dir, { recursive: true, force: true });

  // Every observation must be one of the committed states.
  const states = written?.states ?? [];
  const inconsistent = inconsistencies(seen, states);

  const sorted = [...reads.latencies].sort((a, b) => a - b);
  const wsorted = [...writes.latencies].sort((a, b) => a - b);
  const observed = new Set([...seen.full.keys()].map((k) => k.split('|')[0]));
  const fmt = (n: number) => n.toFixed(1);
  console.log(`requests served: ${(reads.requests + writes.requests).toLocaleString('en')} in ${seconds.toFixed(1)} s`);
  console.log(
    `  reads:  ${reads.requests.toLocaleString('en')} (${Math.round(reads.requests / seconds).toLocaleString('en')}/s), ` +
      `errors ${reads.errors}, 5xx ${reads.fiveXx}, latency ms p50 ${fmt(percentile(sorted, 50))} p99 ${fmt(percentile(sorted, 99))} max ${fmt(sorted.at(-1) ?? 0)}`,
  );
  console.log(
    `  writes: ${writes.requests} (imports ${written?.imports ?? '?'} of which ${written?.folderRuns ?? '?'} through the folder, undos ${written?.undos ?? '?'}), ` +
      `errors ${writes.errors}, 5xx ${writes.fiveXx}, latency ms p50 ${fmt(percentile(wsorted, 50))} p99 ${fmt(percentile(wsorted, 99))}`,
  );
  console.log(`  consistency: ${states.length} committed states, ${observed.size} distinct totals seen by readers, ${inconsistent.length} not of any committed state`);

  const failures = [
    ...(writerError ? [`writer: ${writerError.message}`] : []),
    ...reads.problems,
    ...inconsistent.slice(0, 20).map((i) => `inconsistent: ${i}`),
    ...(finalProblem ? [finalProblem] : []),
    ...(reads.fiveXx + writes.fiveXx > 0 ? [`${reads.fiveXx + writes.fiveXx} answers were 5xx`] : []),
    ...(written && (written.imports === 0 || written.undos === 0) ? ['the writer did not both import and undo: run longer'] : []),
  ];
  if (failures.length > 0) {
    console.log(`FAIL\n  ${failures.join('\n  ')}`);
    if (writerError) console.log(server.output().slice(-3000));
    return 1;
  }
  console.log('OK: every total a reader saw was the total of a committed set of imports; no 5xx');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench:load: ${(error as Error)?.stack ?? error}`);
    process.exit(1);
  },
);
