import { randomBytes, randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateFiles, inconsistencies, newSeen, observations, QUESTIONS, stateOf, type SalesFile, type State } from '../bench/consistency.js';
import { HAPROXY, haproxyInstalled, startFleet, type Fleet } from '../bench/fleet.js';
import { prng } from '../bench/sales-generator.js';
import { createTestDatabase, DIALECTS, REDIS_URL, type TestDatabase } from './support/databases.js';
import { csv } from './support/harness.js';

/**
 * Three real Zinc processes (the built CLI, `serve`) on one MariaDB or PostgreSQL database behind
 * a real HAProxy that checks /health/ready (bench/fleet.ts): a rolling restart under reads,
 * uploads and undos costs no request and shows no inconsistent answer; an upload answered 202 by
 * one instance is followed on another and undone on a third; one folder imported through all
 * three (and the CLI) at once stores each file once; the rate limit counted in Redis holds across
 * instances. One fleet per database, for the whole file.
 *
 * Not on SQLite (an SQLite file belongs to one instance). Skipped without a MySQL or PostgreSQL
 * server (ZINC_TEST_MYSQL_URL, ZINC_TEST_POSTGRES_URL) or without HAProxy (apt-get install
 * haproxy), unless ZINC_REQUIRE_HAPROXY=1 (CI), which fails instead.
 */

const HAVE_HAPROXY = haproxyInstalled();
if (!HAVE_HAPROXY && process.env.ZINC_REQUIRE_HAPROXY === '1') {
  throw new Error(`ZINC_REQUIRE_HAPROXY=1 but ${HAPROXY} is missing: install it (apt-get install haproxy); the scale-out tests would not run`);
}
const KINDS = HAVE_HAPROXY ? DIALECTS.filter((kind) => kind !== 'sqlite') : [];

const WRITE_TOKEN = randomBytes(12).toString('hex');
const READ_TOKEN = randomBytes(12).toString('hex');
const writeAuth = { authorization: `Bearer ${WRITE_TOKEN}` };
const readAuth = { authorization: `Bearer ${READ_TOKEN}` };

/** Every instance's settings; the drain and timeout spelled out because the rolling restart depends on them. */
const FLEET_ENV = {
  API_TOKEN: WRITE_TOKEN,
  API_READ_TOKEN: READ_TOKEN,
  // The readers are one client at full speed on purpose; the rate-limit test turns it on.
  RATE_LIMIT_MAX: '0',
  // HAProxy on 127.0.0.1 names the client in X-Forwarded-For.
  TRUST_PROXY: 'loopback',
  DATABASE_POOL_SIZE: '6',
  // The default: longer than HAProxy takes to see /health/ready 503 (2 checks, 500 + 250 ms apart).
  SHUTDOWN_DRAIN_MS: '2000',
  SHUTDOWN_TIMEOUT_MS: '30000',
  CACHE_MAX_STALE_MS: '500',
};

interface ImportAnswer {
  id: number;
  filename: string;
  status: string;
  num_rows: number;
}
interface Totals {
  total_revenue: string;
  sale_count: number;
  order_count: number;
}

/** A request's outcome: status, JSON body (or the text when not JSON), the instance that answered through HAProxy. */
async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown; text: string; server: string | null }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body, text, server: res.headers.get('x-zinc-server') };
}

/** An error from fetch, with its cause (ECONNRESET, UND_ERR_SOCKET, …). */
function describeError(error: unknown): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  return `${e.message}${e.cause ? ` (${e.cause.code ?? ''} ${e.cause.message ?? ''})` : ''}`;
}

if (KINDS.length === 0) {
  describe.skip(`three processes behind HAProxy: needs ZINC_TEST_MYSQL_URL or ZINC_TEST_POSTGRES_URL, and ${HAPROXY}`, () => {
    it('is skipped', () => {});
  });
}

describe.each(KINDS)('three processes behind HAProxy on one %s database', (kind) => {
  let testDb: TestDatabase;
  let fleet: Fleet;

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    if (testDb.config.kind === 'sqlite') throw new Error('an SQLite file is one instance\'s');
    fleet = await startFleet(3, { databaseUrl: testDb.config.url, env: FLEET_ENV });
  }, 90_000);

  afterAll(async () => {
    await fleet?.close();
    await testDb?.drop();
  });

  const totalsOver = async (base: string, range: string) => (await call(`${base}/api/metrics/revenue?${range}`, { headers: readAuth })).body as Totals;

  it(
    'when all three are restarted one at a time under continuous reads, uploads and undos, then no request fails, every answer is of a committed state, and every upload succeeds',
    async () => {
      const files = generateFiles({ count: 6, orders: 1200, seed: 23, prefix: 'roll' });
      const failures: string[] = [];
      let failed = 0;
      const fail = (what: string) => {
        failed++;
        if (failures.length < 25) failures.push(what);
      };
      const seen = newSeen();
      const servedBy = new Map<string, number>();
      let reads = 0;
      let stopping = false;

      const reader = async (offset: number) => {
        for (let i = offset; !stopping; i++) {
          const q = QUESTIONS[i % QUESTIONS.length]!;
          try {
            const res = await call(fleet.baseUrl + q.url, { headers: readAuth });
            reads++;
            if (res.server) servedBy.set(res.server, (servedBy.get(res.server) ?? 0) + 1);
            if (res.status !== 200) fail(`GET ${q.url} answered ${res.status} (${res.server}): ${res.text.slice(0, 200)}`);
            else q.record(res.body, seen);
          } catch (error) {
            fail(`GET ${q.url} failed: ${describeError(error)}`);
          }
        }
      };

      // One writer: uploads (answered when done, or 202 and followed through HAProxy, so by any
      // instance) and undos, each through HAProxy; the states it commits are known exactly.
      const states: State[] = [stateOf([])];
      const active: Array<{ file: SalesFile; id: number }> = [];
      const done = { imports: 0, followed: 0, undos: 0 };
      const writer = async () => {
        const random = prng(5);
        const expectStatus = async (what: string, status: number, request: Promise<Awaited<ReturnType<typeof call>>>) => {
          const res = await request.catch((error: unknown) => {
            throw new Error(`${what} failed: ${describeError(error)}`);
          });
          if (res.status !== status) throw new Error(`${what} answered ${res.status} (${res.server}): ${res.text.slice(0, 300)}`);
          return res.body as ImportAnswer;
        };
        try {
          while (!stopping) {
            const inactive = files.filter((f) => !active.some((a) => a.file === f));
            if (inactive.length > 0 && (active.length === 0 || random() < 0.6)) {
              const file = inactive[Math.floor(random() * inactive.length)]!;
              const upload = { method: 'POST', body: file.text, headers: { ...writeAuth, 'content-type': 'text/csv' } };
              let outcome: ImportAnswer;
              if (random() < 0.4) {
                const what = `POST /api/imports?async=true (${file.name})`;
                const started = await expectStatus(what, 202, call(`${fleet.baseUrl}/api/imports?async=true&filename=${file.name}`, upload));
                outcome = started;
                while (outcome.status === 'processing') {
                  await sleep(100);
                  outcome = await expectStatus(`GET /api/imports/${started.id}`, 200, call(`${fleet.baseUrl}/api/imports/${started.id}`, { headers: readAuth }));
                }
                done.followed++;
              } else {
                outcome = await expectStatus(`POST /api/imports (${file.name})`, 200, call(`${fleet.baseUrl}/api/imports?filename=${file.name}`, upload));
              }
              if (outcome.status !== 'success' || outcome.num_rows !== file.lines.size) {
                throw new Error(`${file.name} ended ${outcome.status} with ${outcome.num_rows} rows (expected success, ${file.lines.size})`);
              }
              active.push({ file, id: outcome.id });
              done.imports++;
            } else {
              const at = Math.floor(random() * active.length);
              const { id } = active[at]!;
              const undone = await expectStatus(`DELETE /api/imports/${id}`, 200, call(`${fleet.baseUrl}/api/imports/${id}`, { method: 'DELETE', headers: writeAuth }));
              if (undone.status !== 'reverted') throw new Error(`undo of ${id} answered status ${undone.status}`);
              active.splice(at, 1);
              done.undos++;
            }
            states.push(stateOf(active.map((a) => a.file)));
          }
        } catch (error) {
          fail(`writer: ${(error as Error).message}`);
        }
      };

      const retried = async () =>
        Object.values(await fleet.serverStats()).reduce((n, server) => n + Number(server.wretr) + Number(server.wredis), 0);
      const retriedBefore = await retried();
      const started = performance.now();
      const readersDone = Promise.all(Array.from({ length: 4 }, (_, i) => reader(i)));
      const writerDone = writer();
      await sleep(1_000);
      const reports = await fleet.rollingRestart();
      await sleep(1_000);
      stopping = true;
      await Promise.all([readersDone, writerDone]);
      const seconds = (performance.now() - started) / 1000;

      // Once the caches have caught up, every instance answers the final state.
      const final = stateOf(active.map((a) => a.file));
      for (const url of fleet.urls) {
        await expect.poll(async () => totalsOver(url, 'start=2024-01-01&end=2024-12-31'), { timeout: 5_000 }).toMatchObject({
          total_revenue: final.total,
          sale_count: final.sales,
          order_count: final.orders,
        });
      }

      const stats = await fleet.serverStats();
      console.log(
        `scale-out on ${kind}: ${seconds.toFixed(1)} s, ${reads} reads (${[...servedBy].map(([s, n]) => `${s} ${n}`).join(', ')}), ` +
          `${done.imports} uploads (${done.followed} answered 202 and followed), ${done.undos} undos, ${states.length} committed states, ` +
          `${observations(seen)} answers checked; ${failed} failed\n` +
          reports
            .map((r) => `  restart z${r.index}: out of HAProxy's pool after ${r.outOfPoolMs} ms, exited ${r.code} after ${r.exitedMs} ms, ready after ${r.readyMs} ms, UP after ${r.upMs} ms`)
            .join('\n') +
          `\n  HAProxy retries/redispatches: ${Object.entries(stats).map(([s, v]) => `${s} ${v.wretr}/${v.wredis}`).join(', ')}`,
      );

      expect(failures, `${failed} failed requests:\n${failures.join('\n')}\nHAProxy:\n${fleet.haproxyLog().slice(-3000)}`).toEqual([]);
      expect(inconsistencies(seen, states)).toEqual([]);
      // Not thanks to HAProxy trying again: each instance left the pool while it still served
      // (the drain), so no request met a closed port or a closing server.
      expect(
        (await retried()) - retriedBefore,
        `requests HAProxy had to try again: instances stopped listening before HAProxy took them out (drain too short?)\n${fleet.haproxyLog().slice(-3000)}`,
      ).toBe(0);
      for (const report of reports) expect(report, fleet.output(report.index).slice(-3000)).toMatchObject({ code: 0 });
      expect(reads).toBeGreaterThan(100);
      expect(done.imports).toBeGreaterThanOrEqual(3);
      expect(done.undos).toBeGreaterThanOrEqual(1);
      expect([...servedBy.keys()].sort()).toEqual(['z0', 'z1', 'z2']);
    },
    180_000,
  );

  it(
    'when an upload is answered 202 by one instance, which is then restarted, then a second follows it to success and a third undoes it',
    async () => {
      const [a, b, c] = fleet.urls as [string, string, string];
      const range = 'start=2023-03-01&end=2023-03-31';
      const rows = Array.from({ length: 60_000 }, (_, i) => [`2023-03-${String(1 + (i % 28)).padStart(2, '0')}`, `A-${i}`, `P-${i % 13}`, '1.50']);
      const before = await totalsOver(c, range);
      expect(before.sale_count).toBe(0);

      const started = await call(`${a}/api/imports?async=true&filename=follow.csv`, {
        method: 'POST',
        body: csv(rows),
        headers: { ...writeAuth, 'content-type': 'text/csv' },
      });
      expect(started.status, started.text).toBe(202);
      const { id } = started.body as ImportAnswer;
      // A stops while its import runs: it finishes the import before it exits.
      const restarted = fleet.restart(0);

      await expect
        .poll(async () => ((await call(`${b}/api/imports/${id}`, { headers: readAuth })).body as ImportAnswer).status, { timeout: 30_000, interval: 100 })
        .toBe('success');
      expect((await call(`${b}/api/imports/${id}`, { headers: readAuth })).body).toMatchObject({ id, status: 'success', num_rows: 60_000 });
      expect(await restarted).toMatchObject({ code: 0 });
      expect(fleet.output(0)).not.toMatch(/shutdown timeout/);
      await expect.poll(async () => totalsOver(c, range), { timeout: 5_000 }).toMatchObject({ total_revenue: '90000.00', sale_count: 60_000 });

      const undone = await call(`${c}/api/imports/${id}`, { method: 'DELETE', headers: writeAuth });
      expect(undone.status, undone.text).toBe(200);
      expect(undone.body).toMatchObject({ id, status: 'reverted' });
      // The restarted instance that took the upload sees the undo too.
      await expect.poll(async () => totalsOver(a, range), { timeout: 5_000 }).toMatchObject({ total_revenue: '0.00', sale_count: 0 });
    },
    90_000,
  );

  it(
    'when the same folder is imported through all three instances and the CLI at once, then each file is stored once',
    async () => {
      const names = ['f-a.csv', 'f-b.csv', 'f-c.csv'];
      names.forEach((name, f) => {
        const rows = Array.from({ length: 2_000 }, (_, i) => [`2022-0${f + 1}-15`, `F${f}-${String(i).padStart(5, '0')}`, `P-${i % 7}`, '1.25']);
        writeFileSync(path.join(fleet.salesDir, name), csv(rows));
      });
      const [runs, cli] = await Promise.all([
        Promise.all(fleet.urls.map((url) => call(`${url}/api/import-sales`, { method: 'POST', headers: writeAuth }))),
        fleet.cli(['import']),
      ]);
      const outcomes: Array<{ filename: string; status: string }> = [];
      for (const run of runs) {
        expect(run.status, run.text).toBe(200);
        outcomes.push(...(run.body as { files: ImportAnswer[] }).files);
      }
      expect(cli.code, cli.output).toBe(0);
      for (const [, status, filename] of cli.output.matchAll(/^(\w+)\s+(\S+\.csv) /gm)) outcomes.push({ filename: filename!, status: status! });

      for (const name of names) {
        const statuses = outcomes.filter((o) => o.filename === name).map((o) => o.status);
        expect(statuses, name).toHaveLength(4);
        expect(statuses.filter((s) => s === 'success'), `${name}: ${statuses.join(', ')}`).toHaveLength(1);
        expect(statuses.filter((s) => s !== 'success' && s !== 'skipped'), name).toEqual([]);
      }
      const list = (await call(`${fleet.baseUrl}/api/imports?limit=500`, { headers: readAuth })).body as { imports: ImportAnswer[] };
      for (const name of names) {
        expect(list.imports.filter((r) => r.filename === name).map((r) => r.status), name).toEqual(['success']);
      }
      await expect
        .poll(async () => totalsOver(fleet.baseUrl, 'start=2022-01-01&end=2022-12-31'), { timeout: 5_000 })
        .toMatchObject({ total_revenue: '7500.00', sale_count: 6_000 });
    },
    90_000,
  );

  it.skipIf(!REDIS_URL)(
    'when the instances count in one Redis, then a client gets RATE_LIMIT_MAX answers in all, from every instance, and then 429 from any',
    async () => {
      const LIMIT = 9;
      const env = { RATE_LIMIT_MAX: String(LIMIT), RATE_LIMIT_WINDOW_MS: '60000', RATE_LIMIT_REDIS_URL: REDIS_URL! };
      await Promise.all(fleet.urls.map((_, i) => fleet.restart(i, { env })));
      // A client of its own (HAProxy passes X-Forwarded-For on; Zinc trusts loopback), so that no
      // earlier run's count in Redis is this one's.
      const client = `198.18.${randomInt(256)}.${randomInt(1, 255)}`;
      const headers = { ...readAuth, 'x-forwarded-for': client };
      const servers = new Set<string | null>();
      for (let k = 0; k < LIMIT; k++) {
        const res = await call(`${fleet.baseUrl}/api/metrics/revenue`, { headers });
        expect(res.status, `request ${k + 1}: ${res.text}`).toBe(200);
        servers.add(res.server);
      }
      // Counted across instances: HAProxy spread them (round robin: all three, unless one was
      // still rising after its restart), and the next is refused by every instance.
      expect(servers.size, [...servers].join(', ')).toBeGreaterThanOrEqual(2);
      const over = await call(`${fleet.baseUrl}/api/metrics/revenue`, { headers });
      expect(over.status, over.text).toBe(429);
      expect(over.body).toMatchObject({ error: 'rate_limited' });
      for (const url of fleet.urls) expect((await call(`${url}/api/metrics/revenue`, { headers })).status).toBe(429);
      // Another client still has its whole budget.
      expect((await call(`${fleet.baseUrl}/api/metrics/revenue`, { headers: { ...readAuth, 'x-forwarded-for': `198.19.${randomInt(256)}.1` } })).status).toBe(200);
    },
    90_000,
  );
});
