import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { sql } from 'kysely';
import type { Database, DB } from '../db/connection.js';

/**
 * Who is importing a file, and whether they are still alive. A record stays `processing` only
 * while its importer lives; a crashed importer leaves a record that the next run takes over.
 *
 * - MySQL: the importer holds a named lock (GET_LOCK) on the very connection that runs the
 *   import's transaction. The server drops the lock when that connection dies, together with
 *   the uncommitted rows, so "lock free" means exactly "nothing of that import can still commit".
 * - SQLite: the database is a local file, so the owner is a local process: `host:pid:nonce`.
 *   A record is abandoned when its pid is gone, or is ours from an earlier life (a new nonce).
 */

/** This process's owner tag, written into the records it imports. */
export const OWNER = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

/**
 * Files (by sha256) this process is importing or has queued right now. A record owned by this
 * process but absent here was left behind by an import that failed without being able to write
 * its outcome (the database went away mid-file), so it is abandoned too.
 */
export const activeHere = new Set<string>();

/** A file's lock: named after the database too (lock names are server-wide), within 64 characters. */
function lockName(sha256: string) {
  return sql`CONCAT('zinc:import:', LEFT(SHA1(DATABASE()), 8), ':', ${sha256.slice(0, 40)})`;
}

/** Takes the import lock for a file on `conn` (MySQL), without waiting. False when another holds it. */
export async function acquireLease(kind: Database['kind'], conn: DB, sha256: string): Promise<boolean> {
  if (kind !== 'mysql') return true;
  const { rows } = await sql<{ ok: number | null }>`SELECT GET_LOCK(${lockName(sha256)}, 0) AS ok`.execute(conn);
  return Number(rows[0]?.ok) === 1;
}

export async function releaseLease(kind: Database['kind'], conn: DB, sha256: string): Promise<void> {
  if (kind !== 'mysql') return;
  await sql`SELECT RELEASE_LOCK(${lockName(sha256)})`.execute(conn);
}

function ownerLockName(owner: string): string {
  return `zinc:owner:${owner.slice(-32)}`;
}

/**
 * While a process has claimed files it has not started loading (asynchronous runs), it holds a
 * lock named after itself on a connection of its own (MySQL), so others see its records as alive.
 * Resolves to the function that releases it.
 */
export async function holdOwnerLease(database: Database): Promise<() => Promise<void>> {
  if (database.kind !== 'mysql') return async () => {};
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const acquired = new Promise<void>((resolve) => (held = resolve));
  const holding = database.writer.connection().execute(async (conn) => {
    await sql`SELECT GET_LOCK(${ownerLockName(OWNER)}, 0)`.execute(conn);
    held();
    await released;
    await sql`SELECT RELEASE_LOCK(${ownerLockName(OWNER)})`.execute(conn);
  });
  await Promise.race([acquired, holding]);
  return async () => {
    release();
    await holding.catch(() => {});
  };
}

/** True when the importer named in a `processing` record can no longer finish it. */
export async function isAbandoned(
  kind: Database['kind'],
  db: DB,
  record: { sha256: string; owner: string | null },
): Promise<boolean> {
  if (kind === 'mysql') {
    if (record.owner === OWNER && activeHere.has(record.sha256)) return false;
    const { rows } = await sql<{ file: number | null; owner: number | null }>`
      SELECT IS_FREE_LOCK(${lockName(record.sha256)}) AS file, IS_FREE_LOCK(${ownerLockName(record.owner ?? '')}) AS owner`.execute(db);
    return Number(rows[0]?.file) === 1 && (record.owner === OWNER || Number(rows[0]?.owner) === 1);
  }
  if (record.owner === null) return true;
  if (record.owner === OWNER) return !activeHere.has(record.sha256);
  const [host, pidText] = record.owner.split(':');
  if (host !== hostname()) return false; // another machine's process: cannot tell, so leave it
  const pid = Number(pidText);
  if (pid === process.pid) return true; // our pid, but an earlier life of it (the nonce differs)
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
