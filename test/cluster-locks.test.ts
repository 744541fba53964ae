import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSalesCsv } from '../bench/sales-generator.js';
import type { DatabaseConfig } from '../src/config.js';
import type { Database, DB, WriteLockHold } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { leaseTuning } from '../src/db/dialects/mysql/leases.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { migrations } from '../src/db/migrations/index.js';
import { WriteLockLost } from '../src/db/write-lock.js';
import { importFile, recoverInterruptedImports } from '../src/imports/import.service.js';
import { changeSales } from '../src/write/sales-change.js';
import { createTestDatabase, MYSQL_URL } from './support/databases.js';
import { createGaleraDatabase, GALERA_URLS } from './support/galera.js';

/**
 * Zinc's locks across two connections to a cluster's two nodes — the writer lock, per-file
 * claims, a process's claim on itself, the migration lock — and on a single server, where they
 * must keep working as before: a MariaDB Galera cluster (ZINC_TEST_GALERA_URLS, see
 * support/galera.ts; leases in `zinc_locks`), a single MySQL/MariaDB server (ZINC_TEST_MYSQL_URL;
 * named locks, and the leases forced on). A killed holder is a child process running the built
 * code (npm test builds it first).
 */

interface Target {
  name: string;
  /** Locks are leases: a dead holder's lock is free after the TTL (named locks: at once). */
  leases: boolean;
  /** Leases even on a single server (leaseTuning.always). */
  always: boolean;
  /** A new database, as the first instance (`a`) and the second (`b`, another node) see it. */
  create(): Promise<{ a: DatabaseConfig; b: DatabaseConfig; drop(): Promise<void> }>;
}

/** Whether ZINC_TEST_MYSQL_URL is a Galera node (the whole suite also runs on one): its locks are leases. */
async function isGaleraNode(url: string): Promise<boolean> {
  const conn = await createConnection(url);
  try {
    const [rows] = await conn.query(`SHOW GLOBAL VARIABLES LIKE 'wsrep_on'`);
    return String((rows as Array<{ Value?: unknown }>)[0]?.Value ?? '').toUpperCase() === 'ON';
  } finally {
    await conn.end();
  }
}
const MYSQL_IS_GALERA = MYSQL_URL ? await isGaleraNode(MYSQL_URL) : false;

async function single() {
  const testDb = await createTestDatabase('mysql');
  return { a: testDb.config, b: testDb.config, drop: () => testDb.drop() };
}

const TARGETS: Target[] = [
  ...(GALERA_URLS.length >= 2
    ? [
        {
          name: `a Galera cluster (${GALERA_URLS[0]} and ${GALERA_URLS.at(-1)})`,
          leases: true,
          always: false,
          async create() {
            const cluster = await createGaleraDatabase();
            return { a: cluster.nodes[0]!, b: cluster.nodes.at(-1)!, drop: () => cluster.drop() };
          },
        },
      ]
    : []),
  ...(MYSQL_URL && MYSQL_IS_GALERA ? [{ name: 'one Galera node (leases)', leases: true, always: false, create: single }] : []),
  ...(MYSQL_URL && !MYSQL_IS_GALERA
    ? [
        { name: 'a single server (named locks)', leases: false, always: false, create: single },
        { name: 'a single server (leases)', leases: true, always: true, create: single },
      ]
    : []),
];

/** Short leases for the tests: taken over 6 s after the holder's last renewal, renewed every second. */
const TTL_MS = 6_000;
const HEARTBEAT_MS = 1_000;
const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const timings: string[] = [];
const sha = () => createHash('sha256').update(randomBytes(16)).digest('hex');

/** One connection of `database`'s pool, held until `done`. */
async function holdConnection(database: Database): Promise<{ conn: DB; done: () => Promise<void> }> {
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let got!: (conn: DB) => void;
  const gotConn = new Promise<DB>((resolve) => (got = resolve));
  const running = database.writer.connection().execute(async (conn) => {
    got(conn);
    await finished;
  });
  const conn = await Promise.race([gotConn, running.then(() => Promise.reject(new Error('no connection')))]);
  return {
    conn,
    done: async () => {
      finish();
      await running;
    },
  };
}

/** Holds the writer lock of `database` until the returned function is called; `hold` is what the work got. */
async function holdWriteLock(database: Database): Promise<{ hold: WriteLockHold; release: () => Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held!: (hold: WriteLockHold) => void;
  const acquired = new Promise<WriteLockHold>((resolve) => (held = resolve));
  const holding = database.writer.connection().execute((conn) =>
    database.dialect.withWriteLock(conn, async (hold) => {
      held(hold);
      await released;
    }),
  );
  const hold = await Promise.race([acquired, holding.then(() => Promise.reject(new Error('the lock was never held')))]);
  return {
    hold,
    release: async () => {
      release();
      await holding;
    },
  };
}

/** A direct connection to the server behind `config` (what another client, or an operator, sees). */
async function admin(config: DatabaseConfig) {
  return createConnection((config as { url: string }).url);
}

async function dataVersion(database: Database): Promise<number> {
  const { rows } = await sql<{ version: number | string }>`SELECT version FROM data_version WHERE id = 1`.execute(database.db);
  return Number(rows[0]?.version ?? 0);
}

/** A child process of the built code holding the writer lock and a file's claim on `config`, until killed. */
function startHolder(config: DatabaseConfig, fileSha: string, target: Target): ChildProcess & { held: Promise<void> } {
  const dist = path.resolve('dist/src');
  const code = `
    import { openDatabase } from ${JSON.stringify(`${dist}/db/dialects/index.js`)};
    import { leaseTuning } from ${JSON.stringify(`${dist}/db/dialects/mysql/leases.js`)};
    Object.assign(leaseTuning, { ttlMs: ${TTL_MS}, heartbeatMs: ${HEARTBEAT_MS}, always: ${target.always} });
    setInterval(() => {}, 1 << 30);
    const database = openDatabase(${JSON.stringify(config)});
    await database.writer.connection().execute(async (conn) => {
      if (!(await database.dialect.claims.acquire(conn, ${JSON.stringify(fileSha)}))) throw new Error('the claim was refused');
      await database.dialect.withWriteLock(conn, async () => {
        console.log('held');
        await new Promise(() => {});
      });
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const held = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('held')) resolve();
    });
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (code) => reject(new Error(`the holder exited (${code}): ${output}`)));
  });
  held.catch(() => {});
  return Object.assign(child, { held });
}

describe.each(TARGETS)('locks on $name', (target) => {
  let created: Awaited<ReturnType<Target['create']>>;
  let a: Database;
  let b: Database;
  const tuning = { ...leaseTuning };

  beforeAll(async () => {
    Object.assign(leaseTuning, { ttlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS, always: target.always });
    created = await target.create();
    a = openDatabase(created.a);
    b = openDatabase(created.b);
    await migrateToLatest(a.writer);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await created?.drop();
    Object.assign(leaseTuning, tuning);
  });

  it('when one instance holds the writer lock, then an instance on another node waits until it is released', async () => {
    const first = await holdWriteLock(a);
    const asked = performance.now();
    let enteredAt = 0;
    const second = b.writer.connection().execute((conn) => b.dialect.withWriteLock(conn, async () => (enteredAt = performance.now())));
    await sleep(1_500);
    expect(enteredAt, 'the second holder entered while the first held the lock').toBe(0);
    const releasedAt = performance.now();
    await first.release();
    await second;
    expect(enteredAt).toBeGreaterThanOrEqual(releasedAt);
    timings.push(`${target.name}: writer lock: waited ${Math.round(enteredAt - asked)} ms, entered ${Math.round(enteredAt - releasedAt)} ms after the release`);
    expect(enteredAt - releasedAt).toBeLessThan(2_000);
  });

  it('when instances on two nodes race for one file claim, then exactly one gets it, every time', async () => {
    const ca = await Promise.all([holdConnection(a), holdConnection(a)]);
    const cb = await Promise.all([holdConnection(b), holdConnection(b)]);
    const conns = [...ca.map((c) => ({ database: a, ...c })), ...cb.map((c) => ({ database: b, ...c }))];
    try {
      const winners: number[] = [];
      for (let round = 0; round < 20; round++) {
        const file = sha();
        const got = await Promise.all(conns.map(({ database, conn }) => database.dialect.claims.acquire(conn, file)));
        expect(got.filter(Boolean), `round ${round}: ${got.join(', ')}`).toHaveLength(1);
        const winner = got.indexOf(true);
        winners.push(winner);
        await conns[winner]!.database.dialect.claims.release(conns[winner]!.conn, file);
      }
      timings.push(`${target.name}: claim races won by connection ${winners.join('')} (0-1: first instance, 2-3: second)`);
    } finally {
      for (const c of conns) await c.done();
    }
  });

  it('when a file claim is held on one node, then another node refuses it and sees the importer alive, until it is released', async () => {
    const file = sha();
    const holder = await holdConnection(a);
    const other = await holdConnection(b);
    const record = { sha256: file, owner: 'host-a:1:aaaa' };
    const asker = { owner: 'host-b:2:bbbb', active: false };
    try {
      expect(await a.dialect.claims.acquire(holder.conn, file)).toBe(true);
      expect(await b.dialect.claims.acquire(other.conn, file)).toBe(false);
      expect(await b.dialect.claims.isAbandoned(b.db, record, asker)).toBe(false);
      if (target.leases) {
        // Longer than the TTL: the heartbeat keeps it.
        await sleep(TTL_MS + 1_000);
        expect(await b.dialect.claims.acquire(other.conn, file)).toBe(false);
        expect(await b.dialect.claims.isAbandoned(b.db, record, asker)).toBe(false);
      }
      await a.dialect.claims.release(holder.conn, file);
      expect(await b.dialect.claims.isAbandoned(b.db, record, asker)).toBe(true);
      expect(await b.dialect.claims.acquire(other.conn, file)).toBe(true);
      await b.dialect.claims.release(other.conn, file);

      // A process's claim on itself shows its records alive while it holds no file's claim.
      const releaseOwner = await a.dialect.claims.holdOwner(record.owner);
      expect(await b.dialect.claims.isAbandoned(b.db, record, asker)).toBe(false);
      await releaseOwner();
      expect(await b.dialect.claims.isAbandoned(b.db, record, asker)).toBe(true);
    } finally {
      await holder.done();
      await other.done();
    }
  }, 30_000);

  it('when the holder of the writer lock and a claim is killed, then another node takes both over after the TTL, not before', async () => {
    const file = sha();
    const child = startHolder(created.a, file, target);
    try {
      await child.held;
      const other = await holdConnection(b);
      try {
        expect(await b.dialect.claims.acquire(other.conn, file)).toBe(false);
        child.kill('SIGKILL');
        await once(child, 'exit');
        const killedAt = performance.now();
        while (!(await b.dialect.claims.acquire(other.conn, file))) {
          expect(performance.now() - killedAt, 'the claim was never freed').toBeLessThan(TTL_MS + 10_000);
          await sleep(100);
        }
        const claimedAfter = performance.now() - killedAt;
        const writer = await holdWriteLock(b);
        const writerAfter = performance.now() - killedAt;
        await writer.release();
        await b.dialect.claims.release(other.conn, file);
        timings.push(`${target.name}: killed holder (TTL ${TTL_MS} ms, heartbeat ${HEARTBEAT_MS} ms): claim taken over after ${Math.round(claimedAfter)} ms, writer lock after ${Math.round(writerAfter)} ms`);
        if (target.leases) {
          // The last renewal was at most a heartbeat (and a tick) before the kill.
          expect(claimedAfter).toBeGreaterThan(TTL_MS - HEARTBEAT_MS - 1_000);
          expect(claimedAfter).toBeLessThan(TTL_MS + 3_000);
        } else {
          expect(claimedAfter).toBeLessThan(3_000);
        }
      } finally {
        await other.done();
      }
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it.runIf(target.leases)(
    'when the writer lock expired and was taken over while a change ran, then the change cannot commit: it rolls back with WriteLockLost',
    async () => {
      const before = await dataVersion(a);
      const heartbeat = leaseTuning.heartbeatMs;
      // The holder notices nothing before COMMIT: its fence inside the transaction must.
      leaseTuning.heartbeatMs = 60_000;
      const operator = await admin(created.b);
      try {
        let proceed!: () => void;
        const gate = new Promise<void>((resolve) => (proceed = resolve));
        let reached!: () => void;
        const atGate = new Promise<void>((resolve) => (reached = resolve));
        const changing = a.writer.connection().execute((conn) =>
          changeSales(a, conn, async (trx) => {
            await a.dialect.bumpDataVersion(trx, 1);
            reached();
            await gate;
            return 'committed';
          }),
        );
        changing.catch(() => {});
        await atGate;
        // What another node sees once a holder has stopped renewing: the lease expired. It takes it.
        await operator.query(`UPDATE zinc_locks SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE name = 'writer'`);
        const taken = await holdWriteLock(b);
        proceed();
        const error = await changing.then(() => undefined, (e: unknown) => e);
        expect(error).toBeInstanceOf(WriteLockLost);
        expect((error as Error).message).toMatch(/^lost the database lock "writer" \(taken over, or expired, before COMMIT\)/);
        expect(await dataVersion(a)).toBe(before);
        const [rows] = await operator.query(`SELECT holder FROM zinc_locks WHERE name = 'writer'`);
        expect((rows as Array<{ holder: string }>)).toHaveLength(1);
        await taken.release();
      } finally {
        leaseTuning.heartbeatMs = heartbeat;
        await operator.end();
      }
    },
    30_000,
  );

  it.runIf(target.leases)('when the writer lock is taken over while held, then the holder is told within a heartbeat or two, and cannot commit', async () => {
    const operator = await admin(created.b);
    try {
      const before = await dataVersion(a);
      const { hold, release } = await holdWriteLock(a);
      expect(hold.signal.aborted).toBe(false);
      await operator.query(`UPDATE zinc_locks SET holder = 'a stranger' WHERE name = 'writer'`);
      const takenAt = performance.now();
      while (!hold.signal.aborted) {
        expect(performance.now() - takenAt).toBeLessThan(3 * HEARTBEAT_MS);
        await sleep(20);
      }
      timings.push(`${target.name}: a holder learned of the takeover after ${Math.round(performance.now() - takenAt)} ms (heartbeat ${HEARTBEAT_MS} ms)`);
      expect(hold.signal.reason).toBeInstanceOf(WriteLockLost);
      await release();
      await operator.query(`DELETE FROM zinc_locks WHERE name = 'writer'`);
      expect(await dataVersion(a)).toBe(before);
    } finally {
      await operator.end();
    }
  });

  it.runIf(target.leases)(
    'when an import loses the writer lock midway, then it stops, stores nothing, is recorded interrupted, and imports fully when run again',
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'zinc-cluster-'));
      const operator = await admin(created.b);
      try {
        const file = path.join(dir, 'lost.csv');
        await generateSalesCsv(file, { rows: 200_000, seed: 11, firstOrder: 900_000_000 });
        const importing = importFile(a, file, 'lost.csv', { onError: 'fail', log: quiet });
        // Once it holds the writer lock: the lease expired (as if unrenewed), another instance takes it.
        for (;;) {
          const [rows] = await operator.query(`SELECT holder FROM zinc_locks WHERE name = 'writer'`);
          if ((rows as unknown[]).length > 0) break;
          await sleep(20);
        }
        await sleep(300);
        await operator.query(`UPDATE zinc_locks SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE name = 'writer'`);
        const taken = await holdWriteLock(b);
        const outcome = await importing;
        await taken.release();
        expect(outcome.status).toBe('failed');
        expect(outcome.record.error_message).toMatch(/^interrupted: lost the database lock "writer"/);
        const count = async () => Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM sales WHERE order_id LIKE 'ORD-9%'`.execute(a.db)).rows[0]?.n);
        expect(await count()).toBe(0);

        const again = await importFile(a, file, 'lost.csv', { onError: 'fail', log: quiet });
        expect([again.status, again.record.id, again.record.num_rows]).toEqual(['success', outcome.record.id, 200_000]);
      } finally {
        await operator.end();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );

  it('when two migrators on two nodes start at once on an empty database, then the migrations run once', async () => {
    const fresh = await target.create();
    const first = openDatabase(fresh.a);
    const second = openDatabase(fresh.b);
    try {
      const started = performance.now();
      const [x, y] = await Promise.all([migrateToLatest(first.writer), migrateToLatest(second.writer)]);
      timings.push(`${target.name}: two migrators at once: ${x.length} and ${y.length} migrations applied, ${Math.round(performance.now() - started)} ms`);
      expect([...x, ...y].sort()).toEqual(Object.keys(migrations).sort());
      expect(await migrateToLatest(second.writer)).toEqual([]);
    } finally {
      await first.close();
      await second.close();
      await fresh.drop();
    }
  }, 120_000);

  it.runIf(!target.always)(
    'when an importing process is killed, then the sweep marks its record interrupted once its claim is free, and the file imports fully again',
    async () => {
      // The built CLI, with the default TTL: what an operator's cluster does.
      const dir = mkdtempSync(path.join(tmpdir(), 'zinc-cluster-'));
      const rows = 200_000;
      try {
        await generateSalesCsv(path.join(dir, 'big.csv'), { rows, seed: 5, firstOrder: 500_000_000 });
        const cli = spawn(process.execPath, [path.resolve('dist/src/cli.js'), 'import'], {
          env: { ...process.env, DATABASE_URL: (created.a as { url: string }).url, SALES_DIR: dir, LOG_LEVEL: 'silent' },
          stdio: 'ignore',
        });
        const exited = once(cli, 'exit');
        const processing = async () =>
          (await a.db.selectFrom('imported_files').select(['id', 'status']).where('filename', '=', 'big.csv').executeTakeFirst())?.status === 'processing';
        while (!(await processing())) await sleep(50);
        await sleep(500);
        cli.kill('SIGKILL');
        await exited;
        const killedAt = performance.now();
        while ((await recoverInterruptedImports(b, quiet)) === 0) {
          expect(performance.now() - killedAt, 'the record was never recovered').toBeLessThan(60_000);
          await sleep(250);
        }
        const recoveredAfter = performance.now() - killedAt;
        timings.push(`${target.name}: killed \`zinc import\` (default TTL ${tuning.ttlMs} ms): record marked interrupted after ${Math.round(recoveredAfter)} ms`);
        if (!target.always && target.leases) expect(recoveredAfter).toBeGreaterThan(tuning.ttlMs - tuning.heartbeatMs - 2_000);
        const again = await importFile(b, path.join(dir, 'big.csv'), 'big.csv', { onError: 'fail', log: quiet });
        expect([again.status, again.record.num_rows]).toEqual(['success', rows]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});

if (TARGETS.length === 0) it.skip('needs ZINC_TEST_GALERA_URLS or ZINC_TEST_MYSQL_URL', () => {});

afterAll(() => {
  if (timings.length > 0) console.log(`cluster locks:\n  ${timings.join('\n  ')}`);
});
