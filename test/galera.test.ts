import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSalesCsv } from '../bench/sales-generator.js';
import { buildApp } from '../src/app.js';
import { parseDatabaseUrl, type DatabaseConfig } from '../src/config.js';
import type { Database, DB } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { importFile } from '../src/imports/import.service.js';
import { testConfig } from './support/config.js';
import { createGaleraDatabase, galera, GALERA_SCRIPT, GALERA_URLS, type GaleraDatabase } from './support/galera.js';

/**
 * Zinc on a MariaDB Galera cluster (ZINC_TEST_GALERA_URLS, three nodes, and the shared galera.sh
 * to kill and restart one; see support/galera.ts): causal reads after an import through another
 * node, streaming replication of the import's transaction, and an instance whose DATABASE_URL
 * lists the three nodes losing the first one. A kill costs about 6 s of stalled writes on the
 * others, and the restart 7-18 s.
 */

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

/** `mysql://user@h1:p1,h2:p2,h3:p3/db`: the nodes of GALERA_URLS in order, as one DATABASE_URL. */
function hostListUrl(database: string): string {
  const first = new URL(GALERA_URLS[0]!);
  const auth = first.username ? `${first.username}${first.password ? `:${first.password}` : ''}@` : '';
  return `mysql://${auth}${GALERA_URLS.map((url) => new URL(url).host).join(',')}/${database}`;
}

async function waitFor<T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch((error: unknown) => error as T);
    if (ok(value) || Date.now() > deadline) return value;
    await sleep(200);
  }
}

describe.runIf(GALERA_URLS.length >= 3 && GALERA_SCRIPT)('Zinc on a Galera cluster', () => {
  let cluster: GaleraDatabase;
  let dir: string;
  const opened: Database[] = [];
  const open = (config: DatabaseConfig) => {
    const database = openDatabase(config);
    opened.push(database);
    return database;
  };

  beforeAll(async () => {
    await galera('up');
    cluster = await createGaleraDatabase();
    dir = mkdtempSync(path.join(tmpdir(), 'zinc-galera-'));
    // Migrations run through one node (docs/operations.md).
    await migrateToLatest(open(cluster.nodes[0]!).writer);
  }, 240_000);

  afterAll(async () => {
    for (const database of opened) await database.close().catch(() => {});
    await cluster?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when a file is imported through node 3, then the import streamed its transaction in fragments, and a read through node 1 right after it sees every row', async () => {
    const file = path.join(dir, 'through-3.csv');
    const { totalCents } = await generateSalesCsv(file, { rows: 30_000, seed: 17, firstOrder: 1 });
    const node3 = open(cluster.nodes[2]!);
    const node1 = open(cluster.nodes[0]!);
    const node2 = await createConnection(`${GALERA_URLS[1]}/mysql`);
    // Causal: node 2 answers once it has applied every fragment replicated before the question.
    await node2.query('SET SESSION wsrep_sync_wait = 1');

    // Inside the import's transaction, once its rows are loaded: the session's settings, and the
    // fragments already replicated to another node (they sit in its streaming log until COMMIT).
    const seen: { unit?: string; size?: number; fragmentsOnNode2?: number } = {};
    const createSalesWriter = node3.dialect.createSalesWriter.bind(node3.dialect);
    node3.dialect.createSalesWriter = async (trx: DB, importId, options) => {
      const { rows } = await sql<{ unit: string; size: number }>`
        SELECT @@session.wsrep_trx_fragment_unit AS unit, @@session.wsrep_trx_fragment_size AS size`.execute(trx);
      Object.assign(seen, { unit: rows[0]!.unit, size: Number(rows[0]!.size) });
      const writer = await createSalesWriter(trx, importId, options);
      const end = writer.end.bind(writer);
      writer.end = async () => {
        const ended = await end();
        const [log] = await node2.query('SELECT COUNT(*) AS n FROM mysql.wsrep_streaming_log');
        seen.fragmentsOnNode2 = Number((log as Array<{ n: number }>)[0]!.n);
        return ended;
      };
      return writer;
    };
    try {
      const outcome = await importFile(node3, file, 'through-3.csv', { onError: 'fail', log: quiet });
      expect([outcome.status, outcome.record.num_rows]).toEqual(['success', 30_000]);
      // At once, through node 1: its reads wait until it has applied what the cluster committed.
      const { rows } = await sql<{ n: number; total: string; wait: number }>`
        SELECT COUNT(*) AS n, SUM(amount_sgd) AS total, @@session.wsrep_sync_wait AS wait FROM sales`.execute(node1.db);
      expect(rows[0]).toMatchObject({ n: 30_000, wait: 1 });
      expect(node1.dialect.centsFromDb(rows[0]!.total)).toBe(totalCents);
    } finally {
      await node2.end();
    }
    console.info(`galera: ${seen.fragmentsOnNode2} fragments of the import on node 2 before its COMMIT (session: ${seen.unit}, ${seen.size})`);
    // 30,000 rows in fragments of 10,000: at least two on node 2 before the COMMIT.
    expect(seen.fragmentsOnNode2).toBeGreaterThanOrEqual(2);
    expect(seen).toMatchObject({ unit: 'rows', size: 10_000 });
  }, 120_000);

  describe('with DATABASE_URL listing the three nodes', () => {
    let app: FastifyInstance;
    let database: Database;

    beforeAll(async () => {
      const config = testConfig(parseDatabaseUrl(hostListUrl(cluster.nodes[0]!.kind === 'mysql' ? cluster.nodes[0]!.database : '')), dir);
      database = open(config.database);
      app = await buildApp({ config, database, logger: false });
    });
    afterAll(async () => {
      await app?.close();
    });

    const ready = async () => (await app.inject({ url: '/health/ready' })) as { statusCode: number; json(): Record<string, unknown> };

    it('when node 1 is killed, then an in-flight read is answered by node 2, the app answers and imports through node 2, /health/ready reports node 2 and a cluster of 2, and the instance goes back to node 1 once it is back', async () => {
      const [first, second] = GALERA_URLS.map((url) => new URL(url).host);
      const before = await ready();
      expect(before.statusCode).toBe(200);
      expect(before.json()).toMatchObject({ status: 'ok', node: first, cluster: { ready: true, size: 3, state: 'Synced', status: 'Primary' } });
      const { rows: counted } = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM sales`.execute(database.db);

      // For the runbook: how long node 2 takes a causal read, and a plain one, while node 1 is evicted.
      const observers = await Promise.all([1, 0].map(async (wait) => {
        const conn = await createConnection(GALERA_URLS[1]!);
        await conn.query(`SET SESSION wsrep_sync_wait = ${wait}`);
        return conn;
      }));
      const started = Date.now();
      try {
        // A read running on node 1 when it dies: its connection is lost, and it runs again on node 2.
        const inFlight = sql<{ slept: number; n: number }>`SELECT SLEEP(2) AS slept, COUNT(*) AS n FROM sales`.execute(database.db);
        await sleep(500);
        await galera('kill', '1');
        const killedMs = Date.now() - started;
        const [causalMs, plainMs] = await Promise.all(observers.map(async (conn) => {
          const at = Date.now();
          await conn.query('SELECT 1');
          return Date.now() - at;
        }));
        const { rows } = await inFlight;
        const inFlightMs = Date.now() - started;
        expect(rows[0]).toMatchObject({ slept: 0, n: counted[0]!.n });
        // Cut on node 1 before its 2 s were up, then the whole 2 s again on node 2.
        expect(killedMs).toBeLessThan(1900);
        expect(inFlightMs).toBeGreaterThanOrEqual(killedMs + 2000);
        console.info(`galera: node 1 killed at ${killedMs} ms; on node 2 right after: a causal read took ${causalMs} ms, a plain one ${plainMs} ms; the in-flight read answered at ${inFlightMs} ms`);

        const after = await waitFor(ready, (r) => r.statusCode === 200 && (r.json().cluster as { size?: number } | undefined)?.size === 2, 30_000);
        expect(after.statusCode).toBe(200);
        expect(after.json()).toMatchObject({ status: 'ok', node: second, cluster: { ready: true, size: 2, state: 'Synced', status: 'Primary' } });
        const failedOverMs = Date.now() - started;

        const metrics = await app.inject({ url: '/api/metrics/revenue/' });
        expect(metrics.statusCode).toBe(200);
        expect(metrics.json()).toMatchObject({ sale_count: counted[0]!.n });

        const upload = await app.inject({
          method: 'POST',
          url: '/api/imports/?filename=after-kill.csv',
          headers: { 'content-type': 'text/csv' },
          payload: 'date,order_id,product_id,amount_sgd\n2024-05-01,KILL-1,P1,10.00\n2024-05-01,KILL-2,P2,5.50\n',
        });
        expect(upload.statusCode).toBe(200);
        expect(upload.json()).toMatchObject({ status: 'success', num_rows: 2 });
        console.info(`galera: node 1 killed; /health/ready on node 2 with a cluster of 2 after ${failedOverMs} ms`);
      } finally {
        for (const conn of observers) await conn.end().catch(() => {});
        await galera('start', '1');
      }
      const back = await waitFor(ready, (r) => r.json().node === first, 15_000);
      expect(back.json()).toMatchObject({ status: 'ok', node: first, cluster: { ready: true, size: 3 } });
      console.info(`galera: back on node 1 ${Date.now() - started} ms after the kill`);
    }, 180_000);
  });
});
