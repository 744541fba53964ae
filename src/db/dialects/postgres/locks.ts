import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { DB, FileClaims } from '../../database.js';
import { WRITE_LOCK_WAIT_MS, WriteLockTimeout, WriteLockWaitAborted } from '../../write-lock.js';

/**
 * PostgreSQL's advisory locks, session level: held by a connection, scoped to the database,
 * released by the server when the connection ends, so a crashed holder frees them. A lock is a
 * 64-bit key: the first 8 bytes of the SHA-1 of its name.
 */
function key(name: string): bigint {
  return createHash('sha1').update(name).digest().readBigInt64BE(0);
}

async function tryLock(conn: DB, lock: bigint): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${String(lock)}::bigint) AS ok`.execute(conn);
  return rows[0]?.ok === true;
}

async function unlock(conn: DB, lock: bigint): Promise<void> {
  await sql`SELECT pg_advisory_unlock(${String(lock)}::bigint)`.execute(conn);
}

/** Whether any session of this database holds the lock (pg_locks splits a bigint key in two). */
async function isHeld(db: DB, lock: bigint): Promise<boolean> {
  const unsigned = BigInt.asUintN(64, lock);
  const { rows } = await sql<{ held: boolean }>`SELECT EXISTS (
      SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND classid::text::bigint = ${String(unsigned >> 32n)}::bigint AND objid::text::bigint = ${String(unsigned & 0xffffffffn)}::bigint
    ) AS held`.execute(db);
  return rows[0]?.held === true;
}

const WRITER = key('zinc:writer');
const fileLock = (sha256: string) => key(`zinc:import:${sha256}`);
const ownerLock = (owner: string) => key(`zinc:owner:${owner}`);

/**
 * The writer lock, held on the transaction's connection from before BEGIN to after COMMIT or
 * ROLLBACK: one change to sales at a time across processes. Tried every 200 ms, so that a
 * shutdown (`signal`) ends the wait.
 */
export async function withWriteLock<T>(conn: DB, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const deadline = performance.now() + WRITE_LOCK_WAIT_MS;
  for (;;) {
    if (signal?.aborted) throw new WriteLockWaitAborted();
    if (await tryLock(conn, WRITER)) break;
    if (performance.now() > deadline) throw new WriteLockTimeout();
    await sleep(200);
  }
  try {
    return await work();
  } finally {
    await unlock(conn, WRITER).catch(() => {});
  }
}

/**
 * Per-file claims: the importer holds the file's lock on the connection that runs the import's
 * transaction, so "lock free" means "nothing of that import can still commit"; a process with
 * claimed files it has not started holds a lock named after itself on a connection of its own.
 */
export function fileClaims(writer: DB): FileClaims {
  return {
    acquire: (conn, sha256) => tryLock(conn, fileLock(sha256)),
    release: (conn, sha256) => unlock(conn, fileLock(sha256)),
    async holdOwner(owner) {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let held!: () => void;
      const acquired = new Promise<void>((resolve) => (held = resolve));
      const holding = writer.connection().execute(async (conn) => {
        await tryLock(conn, ownerLock(owner));
        held();
        await released;
        await unlock(conn, ownerLock(owner));
      });
      await Promise.race([acquired, holding]);
      return async () => {
        release();
        await holding.catch(() => {});
      };
    },
    async isAbandoned(db, record, here) {
      if (record.owner === here.owner && here.active) return false;
      if (!here.leased && (await isHeld(db, fileLock(record.sha256)))) return false;
      return record.owner === here.owner || !(await isHeld(db, ownerLock(record.owner ?? '')));
    },
  };
}
