/**
 * npm run bench:scale -- [--duration 12] [--warmup 4] [--readers 8] [--only NAME] [--replica-script PATH]
 *
 * Zinc scaled out, measured: 1 and 3 instances behind HAProxy (bench/fleet.ts), on a MariaDB
 * primary alone and with a read replica (the machine's shared `replica.sh`: primary 127.0.0.1:3307,
 * replica :3308), then 3 instances with the replica under a rolling restart and with the replica
 * killed mid-run. In each: readers at full speed through HAProxy (half of them the questions whose
 * answers can be checked against the committed states — bench/consistency.ts — half random
 * ranges with a product filter, which miss the answer cache and go to the database) while one
 * writer imports, replaces and undoes files through HAProxy.
 *
 * Prints per scenario: requests per second, p50 and p99 latency, failed requests, answers that
 * match no committed state, which server the database reads went to, and the CPU time each part
 * spent per request (the Zinc instances, HAProxy, the primary, the replica, this load generator),
 * read from /proc: on a 2-core machine throughput cannot grow with instances, so where each
 * request's time goes is what sizes a deployment (the runbook's capacity section computes from it).
 * Each scenario's fresh instances are warmed up first (`--warmup` seconds of the same load, not
 * counted: a cold process runs its first requests in V8's interpreter); failures and answers
 * outside a committed state count from the first request.
 * Exits 1 on any failed request or inconsistent answer.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { generateFiles, inconsistencies, newSeen, observations, QUESTIONS, stateOf, type SalesFile, type State } from './consistency.js';
import { haproxyInstalled, startFleet, type Fleet } from './fleet.js';
import { prng } from './sales-generator.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '12' },
    warmup: { type: 'string', default: '4' },
    readers: { type: 'string', default: '8' },
    only: { type: 'string' },
    'replica-script': { type: 'string' },
  },
});
const DURATION_MS = Number(values.duration) * 1000;
const WARMUP_MS = Number(values.warmup) * 1000;
const READERS = Number(values.readers);
const PRIMARY = 'mysql://root@127.0.0.1:3307';
const REPLICA = 'mysql://zinc@127.0.0.1:3308';
const CLUSTERS = '/var/tmp/zinc-clusters/replica';
const WRITE_TOKEN = 'scale-write-token';
const READ_TOKEN = 'scale-read-token';
const run = promisify(execFile);

const replicaScript =
  values['replica-script'] ??
  [process.env.ZINC_CLUSTERS_SCRIPTS, path.resolve('../shared/clusters'), '/work/shared/clusters']
    .filter((d): d is string => !!d)
    .map((d) => path.join(d, 'replica.sh'))
    .find((f) => existsSync(f));
if (!replicaScript) throw new Error('replica.sh not found: pass --replica-script or set ZINC_CLUSTERS_SCRIPTS');
if (!haproxyInstalled()) throw new Error('HAProxy is not installed: apt-get install haproxy');
const topology = (...args: string[]) => run('bash', [replicaScript, ...args], { timeout: 240_000 });

interface Scenario {
  name: string;
  instances: number;
  replica: boolean;
  /** Something that happens during the run, started a third of the way in. */
  event?: 'rolling restart' | 'replica killed';
}

const SCENARIOS: Scenario[] = [
  { name: '1 instance', instances: 1, replica: false },
  { name: '3 instances', instances: 3, replica: false },
  { name: '1 instance + replica', instances: 1, replica: true },
  { name: '3 instances + replica', instances: 3, replica: true },
  { name: '3 + replica, rolling restart', instances: 3, replica: true, event: 'rolling restart' },
  { name: '3 + replica, replica killed', instances: 3, replica: true, event: 'replica killed' },
];

/** Cumulative CPU seconds (user + system) of a process, from /proc; undefined once it is gone. */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime), counted after the command name: 12 and 13 here.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

const pidFile = (node: string) => Number(readFileSync(path.join(CLUSTERS, node, 'mariadbd.pid'), 'utf8').trim());

/**
 * The CPU time of groups of processes over a run, sampled every 200 ms so that processes which
 * exit meanwhile (a rolling restart) count up to their last sample.
 */
class CpuMeter {
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private readonly groupOf = new Map<number, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pids: () => Record<string, Array<number | undefined>>) {}

  private sample(): void {
    for (const [group, pids] of Object.entries(this.pids())) {
      for (const pid of pids) {
        const seconds = cpuSeconds(pid);
        if (pid === undefined || seconds === undefined) continue;
        if (!this.first.has(pid)) this.first.set(pid, seconds);
        this.last.set(pid, seconds);
        this.groupOf.set(pid, group);
      }
    }
  }

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), 200);
  }

  /** CPU seconds per group since start. */
  stop(): Record<string, number> {
    clearInterval(this.timer);
    this.sample();
    const totals: Record<string, number> = {};
    for (const [pid, group] of this.groupOf) totals[group] = (totals[group] ?? 0) + this.last.get(pid)! - this.first.get(pid)!;
    return totals;
  }
}

interface Answer {
  status: number;
  body: unknown;
  text: string;
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

const describeError = (error: unknown) => {
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  return `${e.message ?? String(error)}${e.cause ? ` (${e.cause.code ?? e.cause.message})` : ''}`;
};

const percentile = (sorted: number[], p: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);

/** The database reads each instance's /metrics counted, summed: primary vs replica. */
async function databaseReads(fleet: Fleet): Promise<{ primary: number; replica: number }> {
  const reads = { primary: 0, replica: 0 };
  for (const url of fleet.urls) {
    const text = await (await fetch(`${url}/metrics`)).text().catch(() => '');
    for (const m of text.matchAll(/^zinc_metrics_database_reads_total\{server="([^"]+)"\} (\d+)/gm)) {
      if (m[1] === 'primary') reads.primary += Number(m[2]);
      else reads.replica += Number(m[2]);
    }
  }
  return reads;
}

interface Result {
  scenario: Scenario;
  seconds: number;
  requests: number;
  failed: number;
  failures: string[];
  inconsistent: string[];
  checked: number;
  p50: number;
  p99: number;
  writes: number;
  cpu: Record<string, number>;
  reads: { primary: number; replica: number };
}

async function runScenario(scenario: Scenario, databaseUrl: string, replicaUrl: string, files: SalesFile[]): Promise<Result> {
  const env: Record<string, string> = {
    API_TOKEN: WRITE_TOKEN,
    API_READ_TOKEN: READ_TOKEN,
    RATE_LIMIT_MAX: '0',
    ...(scenario.replica ? { DATABASE_REPLICA_URLS: replicaUrl, REPLICA_MAX_LAG_MS: '2000' } : {}),
  };
  const fleet = await startFleet(scenario.instances, { databaseUrl, env });
  const readAuth = { authorization: `Bearer ${READ_TOKEN}` };
  const writeAuth = { authorization: `Bearer ${WRITE_TOKEN}` };
  try {
    // The writer starts from nothing: undo what a previous scenario left.
    const left = (await call(`${fleet.baseUrl}/api/imports?limit=500`, { headers: readAuth })).body as { imports: Array<{ id: number; status: string }> };
    for (const record of left.imports.filter((r) => r.status === 'success')) {
      await call(`${fleet.baseUrl}/api/imports/${record.id}`, { method: 'DELETE', headers: writeAuth });
    }
    if (scenario.replica) {
      // Every instance uses the replica before the clock starts.
      for (let i = 0; i < 100; i++) {
        const states = await Promise.all(fleet.urls.map(async (u) => ((await call(`${u}/health`)).body as { replicas?: Array<{ state: string }> }).replicas?.[0]?.state));
        if (states.every((s) => s === 'ok')) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    const failures: string[] = [];
    let failed = 0;
    const fail = (what: string) => {
      failed++;
      if (measuring) failedMeasured++;
      if (failures.length < 10) failures.push(what);
    };
    const seen = newSeen();
    const latencies: number[] = [];
    let stopping = false;
    /** Past the warm-up: latencies and requests are counted. */
    let measuring = false;
    let failedMeasured = 0;
    const random = prng(11);

    const reader = async (n: number) => {
      for (let i = n; !stopping; i++) {
        const checked = i % 2 === 0;
        const q = QUESTIONS[Math.floor(i / 2) % QUESTIONS.length]!;
        let url = q.url;
        if (!checked) {
          const start = 1 + Math.floor(random() * 300);
          const day = (d: number) => new Date(Date.UTC(2024, 0, d)).toISOString().slice(0, 10);
          url = `/api/metrics/revenue?start=${day(start)}&end=${day(start + 1 + Math.floor(random() * 60))}&product_id=SKU-${Math.floor(random() * 97)}`;
        }
        const started = performance.now();
        try {
          const res = await call(fleet.baseUrl + url, { headers: readAuth });
          if (measuring) latencies.push(performance.now() - started);
          if (res.status !== 200) fail(`GET ${url}: ${res.status} ${res.text.slice(0, 200)}`);
          else if (checked) q.record(res.body, seen);
        } catch (error) {
          fail(`GET ${url}: ${describeError(error)}`);
        }
      }
    };

    const states: State[] = [stateOf([])];
    const active: Array<{ file: SalesFile; id: number }> = [];
    let writes = 0;
    const writer = async () => {
      const pick = prng(5);
      while (!stopping) {
        const inactive = files.filter((f) => !active.some((a) => a.file === f));
        const started = performance.now();
        try {
          if (inactive.length > 0 && (active.length === 0 || pick() < 0.6)) {
            const file = inactive[Math.floor(pick() * inactive.length)]!;
            const res = await call(`${fleet.baseUrl}/api/imports?filename=${file.name}`, {
              method: 'POST',
              body: file.text,
              headers: { ...writeAuth, 'content-type': 'text/csv' },
            });
            const body = res.body as { id: number; status: string };
            if (res.status !== 200 || body.status !== 'success') throw new Error(`upload ${file.name}: ${res.status} ${res.text.slice(0, 200)}`);
            active.push({ file, id: body.id });
          } else {
            const at = Math.floor(pick() * active.length);
            const res = await call(`${fleet.baseUrl}/api/imports/${active[at]!.id}`, { method: 'DELETE', headers: writeAuth });
            if (res.status !== 200) throw new Error(`undo: ${res.status} ${res.text.slice(0, 200)}`);
            active.splice(at, 1);
          }
          if (measuring) {
            latencies.push(performance.now() - started);
            writes++;
          }
          states.push(stateOf(active.map((a) => a.file)));
        } catch (error) {
          fail(`writer: ${describeError(error)}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        // A steady trickle of imports, as a shop's exports arrive: not a write benchmark.
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    };

    const replicaPid = () => (scenario.replica && existsSync(path.join(CLUSTERS, 'replica', 'mariadbd.pid')) ? pidFile('replica') : undefined);
    const meter = new CpuMeter(() => ({
      zinc: fleet.pids().instances,
      haproxy: [fleet.pids().haproxy],
      primary: [pidFile('primary')],
      replica: [replicaPid()],
    }));
    const done = Promise.all([...Array.from({ length: READERS }, (_, i) => reader(i)), writer()]);
    await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
    const readsBefore = await databaseReads(fleet);
    const clientBefore = process.cpuUsage();
    meter.start();
    measuring = true;
    const started = performance.now();
    let eventDone: Promise<unknown> = Promise.resolve();
    if (scenario.event) {
      await new Promise((resolve) => setTimeout(resolve, DURATION_MS / 3));
      eventDone =
        scenario.event === 'rolling restart'
          ? fleet.rollingRestart()
          : topology('stop-replica').then(() => new Promise((resolve) => setTimeout(resolve, DURATION_MS / 3)));
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, DURATION_MS - (performance.now() - started))));
    await eventDone;
    measuring = false;
    const seconds = (performance.now() - started) / 1000;
    const cpu = meter.stop();
    const client = process.cpuUsage(clientBefore);
    const readsAfter = await databaseReads(fleet);
    stopping = true;
    await done;
    cpu.client = (client.user + client.system) / 1e6;
    // After a rolling restart the counters started again: count the new processes' reads.
    const reads =
      scenario.event === 'rolling restart'
        ? readsAfter
        : { primary: readsAfter.primary - readsBefore.primary, replica: readsAfter.replica - readsBefore.replica };
    if (scenario.event === 'replica killed') await topology('start-replica');
    latencies.sort((a, b) => a - b);
    return {
      scenario,
      seconds,
      requests: latencies.length + failedMeasured,
      failed,
      failures,
      inconsistent: inconsistencies(seen, states),
      checked: observations(seen),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      writes,
      cpu,
      reads,
    };
  } finally {
    await fleet.close();
  }
}

async function main(): Promise<void> {
  await topology('up');
  await topology('lag', '0');
  const name = `zinc_scale_${Date.now()}`;
  const admin = await createConnection(PRIMARY);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  const files = generateFiles({ count: 6, orders: 2000, seed: 7, prefix: 'scale' });
  const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `bench:scale: ${cpus().length} cores (${cpuModel}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ` +
      `MariaDB primary :3307 + replica :3308 (replica.sh), HAProxy in front; ${READERS} readers + 1 writer for ${DURATION_MS / 1000} s per scenario, ` +
      `everything on this machine (the load generator included)`,
  );
  const results: Result[] = [];
  try {
    for (const scenario of SCENARIOS.filter((s) => !values.only || s.name === values.only)) {
      const result = await runScenario(scenario, `${PRIMARY}/${name}`, `${REPLICA}/${name}`, files);
      results.push(result);
      const perRequest = (group: string) => ((result.cpu[group] ?? 0) * 1000) / result.requests;
      console.log(
        `${scenario.name.padEnd(30)} ${(result.requests / result.seconds).toFixed(0).padStart(6)} req/s  ` +
          `p50 ${result.p50.toFixed(1).padStart(6)} ms  p99 ${result.p99.toFixed(1).padStart(6)} ms  ` +
          `failed ${result.failed}  inconsistent ${result.inconsistent.length} (of ${result.checked} checked)  writes ${result.writes}  ` +
          `db reads primary ${result.reads.primary} / replica ${result.reads.replica}\n` +
          `${''.padEnd(30)} CPU ms per request: zinc ${perRequest('zinc').toFixed(3)}, haproxy ${perRequest('haproxy').toFixed(3)}, ` +
          `primary ${perRequest('primary').toFixed(3)}, replica ${perRequest('replica').toFixed(3)}, load generator ${perRequest('client').toFixed(3)}`,
      );
      for (const f of result.failures) console.log(`  failed: ${f}`);
      for (const i of result.inconsistent.slice(0, 10)) console.log(`  inconsistent: ${i}`);
    }
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.end();
  }
  const bad = results.filter((r) => r.failed > 0 || r.inconsistent.length > 0);
  if (bad.length > 0) {
    console.log(`FAILED: ${bad.map((r) => r.scenario.name).join(', ')}`);
    process.exitCode = 1;
  } else {
    console.log('OK: 0 failed requests and 0 inconsistent answers in every scenario');
  }
}

await main();
