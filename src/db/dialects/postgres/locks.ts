import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { DB, FileClaims, WriteLockHold } from '../../database.js';
import { holdOnOwnConnection, whileHolding } from '../shared.js';

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
export function withWriteLock<T>(conn: DB, work: (hold: WriteLockHold) => Promise<T>, signal?: AbortSignal): Promise<T> {
  return whileHolding(conn, { take: (c) => tryLock(c, WRITER), release: (c) => unlock(c, WRITER) }, work, { signal, pauseMs: 200 });
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
    holdOwner: (owner) => holdOnOwnConnection(writer, { take: (c) => tryLock(c, ownerLock(owner)), release: (c) => unlock(c, ownerLock(owner)) }),
    async isAbandoned(db, record, here) {
      if (record.owner === here.owner && here.active) return false;
      if (!here.leased && (await isHeld(db, fileLock(record.sha256)))) return false;
      return record.owner === here.owner || !(await isHeld(db, ownerLock(record.owner ?? '')));
    },
  };
}
