import { sql, type RawBuilder } from 'kysely';
import type { DB, FileClaims } from '../../database.js';
import { holdOnOwnConnection, whileHolding } from '../shared.js';

/**
 * MySQL's named locks (GET_LOCK): held by a connection, dropped by the server when that
 * connection dies, so a crashed holder frees them. Names are server-wide: each is qualified by the
 * database (a hash of its name), within MySQL's 64 characters.
 */

/** Takes a named lock, waiting up to `seconds`. True when held; throws when the server refuses. */
async function tryLock(conn: DB, name: RawBuilder<unknown>, seconds: number): Promise<boolean> {
  const { rows } = await sql<{ ok: number | null }>`SELECT GET_LOCK(${name}, ${seconds}) AS ok`.execute(conn);
  const ok = rows[0]?.ok;
  if (ok === null || ok === undefined) throw new Error('GET_LOCK failed: the server could not take the lock');
  return Number(ok) === 1;
}

async function unlock(conn: DB, name: RawBuilder<unknown>): Promise<void> {
  await sql`SELECT RELEASE_LOCK(${name})`.execute(conn);
}

const writerLock = sql`CONCAT('zinc:writer:', SHA1(DATABASE()))`;
const fileLock = (sha256: string) => sql`CONCAT('zinc:import:', LEFT(SHA1(DATABASE()), 8), ':', ${sha256.slice(0, 40)})`;
const ownerLock = (owner: string) => sql`${`zinc:owner:${owner.slice(-32)}`}`;

/**
 * The writer lock, held on the transaction's connection from before BEGIN to after COMMIT or
 * ROLLBACK. Without it, two imports whose dates overlap deadlock in the rollup upkeep (each reads
 * the days the other is writing) and InnoDB fails one of them. Asked for a second at a time, so
 * that a shutdown (`signal`) ends the wait.
 */
export function withWriteLock<T>(conn: DB, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  // GET_LOCK waits up to a second on the server: no pause between tries.
  return whileHolding(conn, { take: (c) => tryLock(c, writerLock, 1), release: (c) => unlock(c, writerLock) }, work, { signal, pauseMs: 0 });
}

/**
 * Per-file claims: the importer holds a lock named after the file on the very connection that
 * runs the import's transaction, so "lock free" means exactly "nothing of that import can still
 * commit". While a process has claimed files it has not started loading (asynchronous runs), it
 * holds a lock named after itself on a connection of its own, so others see its records as alive.
 */
export function fileClaims(writer: DB): FileClaims {
  return {
    acquire: (conn, sha256) => tryLock(conn, fileLock(sha256), 0),
    release: (conn, sha256) => unlock(conn, fileLock(sha256)),
    holdOwner: (owner) => holdOnOwnConnection(writer, { take: (c) => tryLock(c, ownerLock(owner), 0), release: (c) => unlock(c, ownerLock(owner)) }),
    async isAbandoned(db, record, here) {
      if (record.owner === here.owner && here.active) return false;
      const { rows } = await sql<{ file: number | null; owner: number | null }>`
        SELECT IS_FREE_LOCK(${fileLock(record.sha256)}) AS file, IS_FREE_LOCK(${ownerLock(record.owner ?? '')}) AS owner`.execute(db);
      const fileFree = here.leased === true || Number(rows[0]?.file) === 1;
      return fileFree && (record.owner === here.owner || Number(rows[0]?.owner) === 1);
    },
  };
}
