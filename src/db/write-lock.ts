import type { Database } from './database.js';

/**
 * Changes to `sales` (imports, undo) run one at a time per database, whichever process or
 * instance makes them; a second one waits for the first to finish, up to this long.
 *
 * - In one process: queues (`serializedWrites`), so that waiting costs one connection at most.
 * - Between processes: the dialect's writer lock (`Dialect.withWriteLock`): on MySQL a named lock
 *   held on the transaction's connection from before BEGIN to after COMMIT (on a Galera cluster,
 *   whose named locks are per node, a lease in the `zinc_locks` table, checked again inside the
 *   transaction before COMMIT); on SQLite the database's own write lock, taken at BEGIN and
 *   waited for without blocking the event loop.
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

/** Thrown when the process began shutting down while waiting for the write lock (or to run a conflicting change again). */
export class WriteLockWaitAborted extends Error {
  override name = 'WriteLockWaitAborted';
  constructor() {
    super('shutting down while waiting for the write lock');
  }
}

/**
 * A lock held as a lease (a Galera cluster) was lost before the change committed: not renewed in
 * time (the database unreachable, the process stalled), or taken over after it expired. The
 * change rolled back; nothing of it is stored.
 */
export class WriteLockLost extends Error {
  override name = 'WriteLockLost';
  constructor(lock: string, why: string) {
    super(`lost the database lock "${lock}" (${why}) before committing, so nothing was stored`);
  }
}

const queues = new WeakMap<Database, Map<string, Promise<unknown>>>();

/**
 * Runs the tasks of one lane (imports, undos) of one process on one database one at a time, in
 * the order asked: only the first of them holds a connection while it waits for the write lock.
 * Lanes take turns through the write lock itself, so an undo need not wait for a whole folder.
 * The queues belong to the Database object: two apps with databases of their own never share one.
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
