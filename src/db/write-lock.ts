import { setTimeout as sleep } from 'node:timers/promises';
import type SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import type { Database, DB } from './connection.js';

/**
 * Changes to `sales` (imports, undo) run one at a time per database, whichever process or
 * instance makes them; a second one waits for the first to finish, up to this long.
 *
 * - In one process: queues (`serializedWrites`), so that waiting costs one connection at most.
 * - MySQL, between processes: a named lock (GET_LOCK) held on the transaction's connection from
 *   before BEGIN to after COMMIT or ROLLBACK (`withWriteLock`). Without it, two imports whose
 *   dates overlap deadlock in the rollup refresh (each reads the days the other is writing) and
 *   InnoDB fails one of them. The server drops the lock with the connection, so a crashed
 *   importer frees it.
 * - SQLite, between processes: the database's own write lock, taken at BEGIN (`beginImmediate`,
 *   used for every transaction on the writer connection) and waited for without blocking the
 *   event loop.
 *
 * A wait ends early when the process shuts down (the signal, or the database being closed).
 */
export const WRITE_LOCK_WAIT_MS = 30 * 60 * 1000;

/** Thrown when another writer held the lock for longer than WRITE_LOCK_WAIT_MS. */
export class WriteLockTimeout extends Error {
  override name = 'WriteLockTimeout';
  constructor() {
    super(
      `another import or undo kept the database's write lock for over ${WRITE_LOCK_WAIT_MS / 60_000} minutes; try again once it has finished`,
    );
  }
}

/** Thrown when the process began shutting down while waiting for the write lock. */
export class WriteLockWaitAborted extends Error {
  override name = 'WriteLockWaitAborted';
  constructor() {
    super('shutting down while waiting for the write lock');
  }
}

const queues = new WeakMap<Database, Map<string, Promise<unknown>>>();

/**
 * Runs the tasks of one lane (imports, undos) of one process on one database one at a time, in
 * the order asked: only the first of them holds a connection while it waits for the write lock.
 * Lanes take turns through the write lock itself, so an undo need not wait for a whole folder.
 */
export function serializedWrites<T>(database: Database, lane: 'imports' | 'undo', task: () => Promise<T>): Promise<T> {
  let lanes = queues.get(database);
  if (!lanes) queues.set(database, (lanes = new Map()));
  const previous = lanes.get(lane) ?? Promise.resolve();
  const next = previous.then(task, task);
  lanes.set(
    lane,
    next.catch(() => {}),
  );
  return next;
}

/** The lock's name: per database (names are server-wide), within MySQL's 64 characters. */
const LOCK_NAME = sql`CONCAT('zinc:writer:', SHA1(DATABASE()))`;

/**
 * Runs `work` (which opens and ends a transaction on `conn`) holding the writer lock (MySQL;
 * on SQLite the transaction takes the database's own lock, see beginImmediate). The lock is
 * asked for a second at a time, so that a shutdown (`signal`) ends the wait.
 */
export async function withWriteLock<T>(
  kind: 'mysql' | 'sqlite',
  conn: DB,
  work: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  if (kind !== 'mysql') return work();
  const deadline = performance.now() + WRITE_LOCK_WAIT_MS;
  for (;;) {
    if (signal?.aborted) throw new WriteLockWaitAborted();
    const { rows } = await sql<{ ok: number | null }>`SELECT GET_LOCK(${LOCK_NAME}, 1) AS ok`.execute(conn);
    const ok = rows[0]?.ok;
    if (ok === null || ok === undefined) throw new Error('GET_LOCK failed: the server could not take the write lock');
    if (Number(ok) === 1) break;
    if (performance.now() > deadline) throw new WriteLockTimeout();
  }
  try {
    return await work();
  } finally {
    await sql`SELECT RELEASE_LOCK(${LOCK_NAME})`.execute(conn).catch(() => {});
  }
}

/**
 * BEGIN IMMEDIATE on SQLite's writer connection: the write lock at the start of the transaction
 * rather than at its first write. A transaction that reads first and then writes fails at once
 * (SQLITE_BUSY) when another process wrote in between; and busy_timeout waits synchronously,
 * which would stall the whole process while another one imports a large file. So: quick tries,
 * with an asynchronous pause between them, until WRITE_LOCK_WAIT_MS or `closing()`.
 */
export async function beginImmediate(handle: SqliteDatabase.Database, closing: () => boolean): Promise<void> {
  const deadline = performance.now() + WRITE_LOCK_WAIT_MS;
  const busyTimeout = handle.pragma('busy_timeout', { simple: true }) as number;
  handle.pragma('busy_timeout = 0');
  try {
    for (let pause = 5; ; pause = Math.min(pause * 2, 200)) {
      try {
        handle.exec('BEGIN IMMEDIATE');
        return;
      } catch (error) {
        // SQLITE_BUSY and its extended codes (SQLITE_BUSY_RECOVERY, …): another connection writes.
        if (!String((error as { code?: unknown }).code ?? '').startsWith('SQLITE_BUSY')) throw error;
        if (performance.now() + pause > deadline) throw new WriteLockTimeout();
      }
      await sleep(pause);
      if (closing()) throw new WriteLockWaitAborted();
    }
  } finally {
    if (handle.open) handle.pragma(`busy_timeout = ${busyTimeout}`);
  }
}
