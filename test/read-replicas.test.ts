import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { ReadReplicas } from '../src/db/read-replicas.js';

/**
 * How ReadReplicas bounds a replica's lag, on a clock the test moves: two SQLite files stand for
 * a primary and its replica, and the test plays replication by setting their data versions.
 * (test/replicas.test.ts runs the same rules on replicated MariaDB and PostgreSQL servers.)
 */
describe('ReadReplicas', () => {
  let dir: string;
  let primary: Database;
  let replica: Database;
  let clock = 0;
  let replicas: ReadReplicas;
  const MAX_LAG = 1000;
  const POLL = 100;

  const setVersion = async (database: Database, version: number) => {
    await sql`UPDATE data_version SET version = ${version} WHERE id = 1`.execute(database.writer);
  };
  /** A poll at time `at` (ms on the test's clock). */
  const pollAt = async (at: number) => {
    clock = at;
    await replicas.poll();
  };
  const sourceAt = async (at: number) => {
    clock = at;
    return (await replicas.source()).name;
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'zinc-read-replicas-'));
    primary = openDatabase({ kind: 'sqlite', path: path.join(dir, 'primary.sqlite') });
    replica = openDatabase({ kind: 'sqlite', path: path.join(dir, 'replica.sqlite') });
    await migrateToLatest(primary.writer);
    await migrateToLatest(replica.writer);
  });
  afterAll(async () => {
    await primary.close();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    // Reopened for each test: close() closes the replicas' connections.
    replica = openDatabase({ kind: 'sqlite', path: path.join(dir, 'replica.sqlite') });
    await setVersion(primary, 10);
    await setVersion(replica, 10);
    clock = 0;
    replicas = new ReadReplicas(primary, [{ name: 'r1', database: replica }], {
      maxLagMs: MAX_LAG,
      pollMs: POLL,
      now: () => clock,
      primaryVersion: async () => String((await sql<{ version: number }>`SELECT version FROM data_version`.execute(primary.db)).rows[0]!.version),
    });
  });
  afterEach(async () => {
    await replicas.close();
  });

  it('when the replica has what the primary had at its last poll, then reads go to the replica', async () => {
    expect(await sourceAt(0)).toBe('primary'); // not polled yet: unknown
    await pollAt(0);
    expect(await sourceAt(50)).toBe('r1');
    expect(replicas.status()[0]).toMatchObject({ state: 'ok', lagMs: 50, version: '10' });
  });

  it('when the primary moves on and the replica does not, then the replica is used until the change may be older than the bound', async () => {
    await pollAt(0);
    await setVersion(primary, 11); // committed after the poll at 0
    await pollAt(100);
    expect(await sourceAt(900)).toBe('r1'); // the change is at most 900 ms old
    expect(replicas.status()[0]!.lagMs).toBe(900);
    expect(await sourceAt(1001)).toBe('primary'); // it may be 1001 ms old now
    expect(replicas.status()[0]).toMatchObject({ state: 'lagging', lagMs: 1001 });
    await setVersion(replica, 11);
    await pollAt(1100);
    expect(await sourceAt(1150)).toBe('r1');
    expect(replicas.status()[0]).toMatchObject({ state: 'ok', version: '11', lagMs: 50 });
  });

  it('when the primary stops answering, then a caught-up replica is used only while nothing it lacks can be older than the bound', async () => {
    const gone = openDatabase({ kind: 'sqlite', path: path.join(dir, 'primary.sqlite') });
    const router = new ReadReplicas(gone, [{ name: 'r1', database: openDatabase({ kind: 'sqlite', path: path.join(dir, 'replica.sqlite') }) }], {
      maxLagMs: MAX_LAG,
      pollMs: POLL,
      now: () => clock,
      primaryVersion: async () => String((await sql<{ version: number }>`SELECT version FROM data_version`.execute(gone.db)).rows[0]!.version),
    });
    try {
      clock = 0;
      await router.poll();
      await gone.close();
      clock = 500;
      await router.poll(); // the primary's poll fails; the replica's answers
      clock = 900;
      expect((await router.source()).name).toBe('r1');
      clock = 1001;
      // Anything committed after the primary's last poll may be 1001 ms old: to the primary, whose error is the caller's.
      await expect(router.source()).rejects.toThrow();
      expect(router.status()[0]).toMatchObject({ state: 'lagging', lagMs: 1001 });
    } finally {
      await router.close();
    }
  });

  it('when this instance commits a change, then reads go to the primary until the replica has its version', async () => {
    await pollAt(0);
    expect(await sourceAt(10)).toBe('r1');
    await setVersion(primary, 11);
    replicas.noteCommitted();
    expect(await sourceAt(20)).toBe('primary'); // the version is being read
    await new Promise((resolve) => setTimeout(resolve, 50));
    await pollAt(100);
    expect(await sourceAt(120)).toBe('primary'); // the replica lacks the instance's own change
    await setVersion(replica, 11);
    await pollAt(200);
    expect(await sourceAt(210)).toBe('r1');
  });

  it('when a read fails on the replica, then it is made on the primary and the replica is down until a poll finds it', async () => {
    await pollAt(0);
    const source = await replicas.source();
    expect(source.name).toBe('r1');
    const seen: string[] = [];
    const answer = await replicas.read(source, async (database) => {
      seen.push(database === replica ? 'replica' : 'primary');
      if (database === replica) throw new Error('connection refused');
      return 42;
    });
    expect(answer).toBe(42);
    expect(seen).toEqual(['replica', 'primary']);
    expect(replicas.status()[0]).toMatchObject({ state: 'down', error: 'connection refused', reads: 0 });
    expect(await sourceAt(10)).toBe('primary');
    await pollAt(100);
    expect(await sourceAt(110)).toBe('r1');
  });

  it('when a read fails for the question, not the replica, then the error is the caller\'s and the replica stays up', async () => {
    const strict = new ReadReplicas(primary, [{ name: 'r1', database: replica }], {
      maxLagMs: MAX_LAG,
      pollMs: POLL,
      now: () => clock,
      primaryVersion: async () => '10',
      isReplicaFault: (error) => !(error instanceof RangeError),
    });
    await strict.poll();
    const source = await strict.source();
    await expect(strict.read(source, () => Promise.reject(new RangeError('bad question')))).rejects.toThrow('bad question');
    expect(strict.status()[0]!.state).toBe('ok');
  });

  it('when many changes pass and the replica has none of them, then the versions kept stay bounded and it lags until it has them', async () => {
    await pollAt(0);
    for (let v = 11; v <= 10_100; v += 1) {
      await setVersion(primary, v);
      await pollAt(v * 10);
    }
    // @ts-expect-error -- reading the router's memory of versions
    expect(replicas.seen.length).toBeLessThanOrEqual(10_000);
    // The time of its first missing change was forgotten: as late as can be.
    expect(replicas.status()[0]).toMatchObject({ state: 'lagging', lagMs: Infinity });
    await setVersion(replica, 10_100);
    await pollAt(101_010);
    expect(await sourceAt(101_020)).toBe('r1');
  }, 60_000);
});
