import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import type { Database } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { testConfig } from './support/config.js';
import { csv } from './support/harness.js';
import { REPLICA_TOPOLOGIES, type ReplicaTopology } from './support/topologies.js';

/**
 * Read replicas on real replicated servers (a MariaDB primary with a replica; a PostgreSQL primary
 * with a streaming replica): metrics reads go to the replica, a replica further behind than
 * REPLICA_MAX_LAG_MS is skipped, an instance reads its own writes, and a replica that dies costs
 * no request.
 */

interface Health {
  replicas?: Array<{ name: string; state: string; lag_ms: number | null; version: string | null; reads: number; error: string | null }>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A file of `rows` sales of 1.00 on `date`, with order ids unique to `tag`. */
function salesFile(tag: string, rows: number, date: string): string {
  return csv(Array.from({ length: rows }, (_, i) => [date, `${tag}-${String(i).padStart(6, '0')}`, `P-${i % 5}`, '1.00']));
}

if (REPLICA_TOPOLOGIES.length === 0) {
  describe.skip('read replicas: needs ZINC_TEST_REPLICAS=1 and the replicated topologies (test/support/topologies.ts)', () => {
    it('is skipped', () => {});
  });
}

describe.each(REPLICA_TOPOLOGIES.map((t) => [t.kind, t] as const))('read replicas on %s', (_kind, topology: ReplicaTopology) => {
  let drop: () => Promise<void>;
  let salesDir: string;
  let replicaDb: Database;
  const databases: Database[] = [];
  /** `writer` imports (and must read its own writes); `reader` only reads, with a tight lag bound. */
  let writer: FastifyInstance;
  let reader: FastifyInstance;
  const MAX_LAG_MS = 1000;

  beforeAll(async () => {
    await topology.up();
    await topology.lag(0);
    const created = await topology.createDatabase();
    drop = created.drop;
    const primary = openDatabase(created.primary);
    databases.push(primary);
    await migrateToLatest(primary.writer);
    replicaDb = openDatabase(created.replica);
    // The schema reaches the replica through replication.
    const migrations = async (db: Database) =>
      Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM zinc_migrations`.execute(db.db).catch(() => ({ rows: [{ n: -1 }] }))).rows[0]!.n);
    const want = await migrations(primary);
    for (let waited = 0; (await migrations(replicaDb)) !== want; waited += 100) {
      if (waited > 30_000) throw new Error('the schema did not reach the replica within 30 s');
      await sleep(100);
    }
    salesDir = mkdtempSync(path.join(tmpdir(), 'zinc-replicas-'));
    const app = async (maxLagMs: number) => {
      const database = openDatabase(created.primary);
      databases.push(database);
      // No answer cache: every answer is read from a server, so the reads can be counted.
      const config = testConfig(created.primary, salesDir, { replicas: [created.replica], replicaMaxLagMs: maxLagMs, cacheMaxStaleMs: 0 });
      return buildApp({ config, database, logger: false });
    };
    writer = await app(60_000);
    reader = await app(MAX_LAG_MS);
  }, 300_000);

  afterAll(async () => {
    // Whatever a failed test left: the next run finds the topology whole.
    await topology.up().catch(() => {});
    await topology.lag(0).catch(() => {});
    await writer?.close();
    await reader?.close();
    await replicaDb?.close();
    for (const database of databases) await database.close();
    await drop?.();
    if (salesDir) rmSync(salesDir, { recursive: true, force: true });
  }, 120_000);

  const health = async (app: FastifyInstance) => (await app.inject({ url: '/health' })).json() as Health;
  const replica = async (app: FastifyInstance) => (await health(app)).replicas![0]!;
  const count = async (app: FastifyInstance) => {
    const res = await app.inject({ url: '/api/metrics/revenue' });
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { sale_count: number }).sale_count;
  };
  const replicaCount = async () => Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM sales`.execute(replicaDb.db)).rows[0]!.n);
  const upload = async (app: FastifyInstance, body: string) => {
    const res = await app.inject({ method: 'POST', url: '/api/imports', payload: body, headers: { 'content-type': 'text/csv' } });
    expect(res.statusCode, res.body).toBe(200);
    return res;
  };
  let stored = 0;

  it('when the replica has caught up, then metrics reads are served by it, and /health and /metrics show its state and lag', async () => {
    await upload(writer, salesFile('A', 1000, '2024-03-01'));
    stored += 1000;
    await expect.poll(async () => (await replica(reader)).state, { timeout: 20_000 }).toBe('ok');
    await expect.poll(() => replicaCount(), { timeout: 20_000 }).toBe(stored);
    const before = await replica(reader);
    const questions = [
      '/api/metrics/revenue',
      '/api/metrics/revenue?product_id=P-1',
      '/api/metrics/revenue/daily?start=2024-03-01&end=2024-03-03',
      '/api/metrics/revenue/series?granularity=month',
      '/api/metrics/revenue/by-product?limit=3',
    ];
    for (let i = 0; i < 20; i++) {
      const res = await reader.inject({ url: questions[i % questions.length]! });
      expect(res.statusCode, res.body).toBe(200);
    }
    expect(await count(reader)).toBe(stored);
    const after = await replica(reader);
    expect(after.reads - before.reads).toBe(21);
    expect(after).toMatchObject({ state: 'ok', error: null });
    expect(after.lag_ms).toBeLessThanOrEqual(MAX_LAG_MS);
    const metrics = (await reader.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(new RegExp(`zinc_replica_lag_seconds\\{replica="${after.name.replace(/[/.]/g, '\\$&')}"\\} [0-9.e-]+`));
    expect(metrics).toContain(`zinc_replica_usable{replica="${after.name}",state="ok"} 1`);
    expect(metrics).toMatch(new RegExp(`zinc_metrics_database_reads_total\\{server="${after.name.replace(/[/.]/g, '\\$&')}"\\} ${after.reads}`));
  }, 60_000);

  it('when the replica is behind, then the instance that imported reads its own import at once', async () => {
    await topology.lag(3);
    // The writer's bound (60 s) keeps the delayed replica usable: only read-your-writes can send it to the primary.
    await expect.poll(async () => (await replica(writer)).state, { timeout: 20_000 }).toBe('ok');
    await upload(writer, salesFile('B', 500, '2024-03-02'));
    stored += 500;
    expect(await count(writer)).toBe(stored);
    // The replica does not have it yet: that answer came from the primary.
    expect(await replicaCount()).toBe(stored - 500);
    // And it never goes back, while the replica catches up.
    for (let i = 0; i < 10; i++) {
      expect(await count(writer)).toBe(stored);
      await sleep(100);
    }
  }, 60_000);

  it('when the replica is further behind than REPLICA_MAX_LAG_MS, then another instance skips it and every answer holds imports older than the bound', async () => {
    // Still delayed by 3 s; the reader's bound is 1 s.
    await expect.poll(() => replicaCount(), { timeout: 20_000 }).toBe(stored);
    const before = await replica(reader);
    const committed = performance.now();
    await upload(writer, salesFile('C', 700, '2024-03-03'));
    const answered = performance.now();
    stored += 700;
    const late: string[] = [];
    const bodies = new Map<string, string>();
    const states = new Set<string>();
    let withImport = 0;
    while (performance.now() - answered < 4_500) {
      const started = performance.now();
      const res = await reader.inject({ url: '/api/metrics/revenue' });
      expect(res.statusCode, res.body).toBe(200);
      const { sale_count } = res.json() as { sale_count: number };
      if (sale_count === stored) withImport++;
      else if (started - answered > MAX_LAG_MS) late.push(`${Math.round(started - committed)} ms after the import: ${sale_count} sales`);
      // An ETag names one answer, whichever server gave it.
      const etag = String(res.headers.etag);
      expect(bodies.get(etag) ?? res.body, `ETag ${etag}`).toBe(res.body);
      bodies.set(etag, res.body);
      states.add((await replica(reader)).state);
      await sleep(50);
    }
    expect(late).toEqual([]);
    expect(withImport).toBeGreaterThan(0);
    expect(states).toContain('lagging');
    // Meanwhile the replica was behind: those answers came from the primary.
    const after = await replica(reader);
    expect(after.reads - before.reads).toBeLessThan(withImport + 30);
    await topology.lag(0);
    await expect.poll(async () => (await replica(reader)).state, { timeout: 30_000 }).toBe('ok');
  }, 90_000);

  it('when the replica dies under load, then no request fails, and it is used again once back', async () => {
    await expect.poll(() => replicaCount(), { timeout: 20_000 }).toBe(stored);
    await expect.poll(async () => (await replica(reader)).state, { timeout: 20_000 }).toBe('ok');
    const failures: string[] = [];
    let answers = 0;
    let stop = false;
    const questions = ['/api/metrics/revenue', '/api/metrics/revenue?product_id=P-2', '/api/metrics/revenue/daily', '/api/metrics/revenue/by-product'];
    const expectedTotal = (await (await reader.inject({ url: questions[0]! })).json()) as { sale_count: number };
    const client = async (n: number) => {
      for (let i = n; !stop; i++) {
        const url = questions[i % questions.length]!;
        const res = await reader.inject({ url });
        answers++;
        if (res.statusCode !== 200) failures.push(`${url}: ${res.statusCode} ${res.body}`);
        else if (i % questions.length === 0 && (res.json() as { sale_count: number }).sale_count !== expectedTotal.sale_count) {
          failures.push(`${url}: ${res.body}`);
        }
      }
    };
    const clients = [0, 1, 2, 3].map(client);
    await sleep(700);
    const readsBefore = (await replica(reader)).reads;
    await topology.stopReplica();
    await sleep(1500);
    stop = true;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(answers).toBeGreaterThan(20);
    expect(readsBefore).toBeGreaterThan(0);
    const down = await replica(reader);
    expect(down.state).toBe('down');
    expect(down.error).toBeTruthy();
    expect((await reader.inject({ url: '/health/ready' })).statusCode).toBe(200);

    await topology.startReplica();
    await expect.poll(async () => (await replica(reader)).state, { timeout: 30_000 }).toBe('ok');
    const back = (await replica(reader)).reads;
    expect(await count(reader)).toBe(stored);
    expect((await replica(reader)).reads).toBe(back + 1);
  }, 120_000);
});
