import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Database, DB } from '../db/database.js';

/**
 * Who is importing a file, and whether they are still alive. A record stays `processing` only
 * while its importer lives; a crashed importer leaves a record that the next run takes over.
 * How an importer is seen alive across processes is the dialect's (`FileClaims`): on MySQL a
 * named lock on the very connection that runs the import's transaction, dropped by the server
 * with that connection and its uncommitted rows (on a Galera cluster a lease the importer renews,
 * which its transaction checks before COMMIT, free once it expires); on SQLite, a local file, the
 * owner's pid.
 */

/** This process's owner tag, written into the records it imports: `host:pid:nonce`. */
export const OWNER = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

/**
 * Files (by sha256) this process is importing or has queued right now. A record owned by this
 * process but absent here was left behind by an import that failed without being able to write
 * its outcome (the database went away mid-file), so it is abandoned too. Process-wide on purpose:
 * the owner tag is the process's.
 */
export const activeHere = new Set<string>();

/** Takes the claim on a file on `conn`, without waiting. False when another importer holds it. */
export function acquireLease(database: Database, conn: DB, sha256: string): Promise<boolean> {
  return database.dialect.claims.acquire(conn, sha256);
}

export function releaseLease(database: Database, conn: DB, sha256: string): Promise<void> {
  return database.dialect.claims.release(conn, sha256);
}

/**
 * While this process has claimed files it has not started loading (asynchronous runs), it is
 * seen alive through a claim on itself. Resolves to the function that releases it.
 */
export function holdOwnerLease(database: Database): Promise<() => Promise<void>> {
  return database.dialect.claims.holdOwner(OWNER);
}

/**
 * True when the importer named in a `processing` record can no longer finish it. `leased`: the
 * asking connection holds the file's claim itself.
 */
export function isAbandoned(
  database: Database,
  db: DB,
  record: { sha256: string; owner: string | null },
  leased = false,
): Promise<boolean> {
  return database.dialect.claims.isAbandoned(db, record, { owner: OWNER, active: activeHere.has(record.sha256), leased });
}
