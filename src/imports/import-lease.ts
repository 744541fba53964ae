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

function lockName(sha256: string): string {
  return `zinc:import:${sha256.slice(0, 48)}`;
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

/** True when the importer named in a `processing` record can no longer finish it. */
export async function isAbandoned(
  kind: Database['kind'],
  db: DB,
  record: { sha256: string; owner: string | null },
): Promise<boolean> {
  if (kind === 'mysql') {
    const { rows } = await sql<{ free: number | null }>`SELECT IS_FREE_LOCK(${lockName(record.sha256)}) AS free`.execute(db);
    return Number(rows[0]?.free) === 1;
  }
  if (record.owner === null || record.owner === OWNER) return record.owner === null;
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
