import { setTimeout as sleep } from 'node:timers/promises';
import type { Database, DB } from '../db/database.js';
import { WriteLockWaitAborted } from '../db/write-lock.js';
import type { Log } from '../log.js';

/**
 * The one way a change to `sales` is made (an import, an undo, a rebuild of the rollups): one
 * writer at a time across processes (the dialect's writer lock), one transaction in which the
 * change keeps the rollups and moves the data version on (rollup-upkeep.ts, data-version.ts),
 * and, once committed, the listeners of this Database told (the answer cache, so this instance
 * serves the new data at once). A transaction the database refuses as conflicting with another
 * writer (a deadlock, a cluster's certification failure: Dialect.conflictCode) is run again
 * whole, a few times, before the change fails.
 */

const listeners = new WeakMap<Database, Set<() => void>>();

/**
 * Calls `listener` after every change to sales committed through this Database object. The set
 * belongs to the object: apps with databases of their own never hear each other. Returns the
 * function that stops it.
 */
export function onSalesCommitted(database: Database, listener: () => void): () => void {
  let set = listeners.get(database);
  if (!set) listeners.set(database, (set = new Set()));
  set.add(listener);
  return () => set.delete(listener);
}

/** How a change that conflicted with another writer is run again (tests shorten the pauses, and put them back). */
export const writeRetryTuning = {
  /** Attempts in all, the first one included. */
  attempts: 4,
  /** The pause before the second attempt, doubled before each next one; each ± 25 % at random. */
  baseDelayMs: 100,
};

export interface ChangeOptions {
  /** A shutdown: ends the wait for the writer lock, and the pause before running a conflicting change again. */
  signal?: AbortSignal | undefined;
  /** Where each conflict is logged (warn). */
  log?: Log | undefined;
  /** Fields that name the change on those log lines (`{ importId, file }`). */
  context?: Record<string, unknown> | undefined;
  /**
   * Runs first inside each attempt's transaction (1, 2, …), before `change`: a test's hook to
   * make a competing writer conflict with that attempt.
   */
  onAttempt?: ((trx: DB, attempt: number) => Promise<void>) | undefined;
}

/**
 * The database refused a change's transaction as conflicting with another writer on every
 * attempt (writeRetryTuning.attempts): every attempt rolled back, nothing of the change is stored.
 */
export class WriteConflict extends Error {
  override name = 'WriteConflict';
  constructor(
    /** The driver's code of the last refusal (Dialect.conflictCode): `1213`, `40P01`. */
    readonly conflictCode: string,
    readonly attempts: number,
    cause: unknown,
  ) {
    super(
      `the database kept refusing the transaction as conflicting with another writer (error ${conflictCode}, ${attempts} attempts); nothing of it was stored`,
      { cause },
    );
  }
}

/** One refusal of a change's transaction as a conflict: run again (`retried`) or not (`exhausted`). */
export interface WriteConflictEvent {
  code: string;
  attempt: number;
  outcome: 'retried' | 'exhausted';
}

const conflictListeners = new WeakMap<Database, Set<(event: WriteConflictEvent) => void>>();

/**
 * Calls `listener` each time a change through this Database object meets a write conflict (the
 * app counts them for Prometheus). Returns the function that stops it.
 */
export function onWriteConflict(database: Database, listener: (event: WriteConflictEvent) => void): () => void {
  let set = conflictListeners.get(database);
  if (!set) conflictListeners.set(database, (set = new Set()));
  set.add(listener);
  return () => set.delete(listener);
}

/**
 * Runs `change` in a transaction on `conn` (one connection of `database.writer`: on MySQL the
 * writer lock lives and dies with it) holding the writer lock; a shutdown (`options.signal`) ends
 * the wait for it. `change` gets a signal that aborts when the lock is lost meanwhile (a lease on
 * a cluster, not renewed in time): a long change stops there. Whatever `change` did, the lock's
 * fence runs last in the transaction, so a holder that lost it rolls back (WriteLockLost)
 * instead of committing. Resolves to what `change` returned, once committed and announced.
 *
 * When the database refuses the transaction as a conflict (Dialect.conflictCode), the whole
 * transaction is rolled back and run again from BEGIN, `change` and the fence included, after
 * 100, 200, 400 ms (± 25 %), up to writeRetryTuning.attempts in all; then WriteConflict. So
 * `change` must build everything it writes inside itself, each time it is called. The writer
 * lock stays held through the pauses: the writer it conflicted with does not wait for it (that
 * one holds no Zinc writer lock, or it could not be running), while letting the next Zinc change
 * in would only put this one behind it, for as long as that change takes.
 */
export async function changeSales<T>(
  database: Database,
  conn: DB,
  change: (trx: DB, lost: AbortSignal) => Promise<T>,
  options: ChangeOptions = {},
): Promise<T> {
  const { dialect } = database;
  const { signal, log, context, onAttempt } = options;
  const result = await dialect.withWriteLock(
    conn,
    async (hold) => {
      for (let attempt = 1; ; attempt++) {
        try {
          // Kysely's transaction rolls back whatever `change` threw on, before it reaches us.
          return await conn.transaction().execute(async (trx) => {
            await onAttempt?.(trx, attempt);
            const value = await change(trx, hold.signal);
            await hold.fence(trx);
            return value;
          });
        } catch (error) {
          const code = dialect.conflictCode(error);
          if (code === undefined) throw error;
          const { attempts } = writeRetryTuning;
          const exhausted = attempt >= attempts;
          tellConflict(database, { code, attempt, outcome: exhausted ? 'exhausted' : 'retried' });
          if (exhausted) {
            log?.warn({ ...context, code, attempt, attempts }, 'write conflict: giving up');
            throw new WriteConflict(code, attempt, error);
          }
          const delayMs = retryDelayMs(attempt);
          log?.warn({ ...context, code, attempt, attempts, delayMs, reason: (error as Error).message }, 'write conflict: running the transaction again');
          await pauseBeforeRetry(delayMs, signal, hold.signal);
        }
      }
    },
    signal,
  );
  noteSalesCommitted(database);
  return result;
}

/** The pause after attempt `attempt` failed: baseDelayMs · 2^(attempt-1), ± 25 %. */
function retryDelayMs(attempt: number): number {
  return Math.round(writeRetryTuning.baseDelayMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5));
}

/** Waits `ms`, unless a shutdown (WriteLockWaitAborted) or the loss of the writer lock ends it. */
async function pauseBeforeRetry(ms: number, shutdown: AbortSignal | undefined, lost: AbortSignal): Promise<void> {
  const stop = shutdown ? AbortSignal.any([shutdown, lost]) : lost;
  await sleep(ms, undefined, { signal: stop }).catch(() => {});
  if (lost.aborted) throw lost.reason;
  if (shutdown?.aborted) throw new WriteLockWaitAborted();
}

function tellConflict(database: Database, event: WriteConflictEvent): void {
  for (const listener of conflictListeners.get(database) ?? []) {
    try {
      listener(event);
    } catch {
      // Counting a conflict must never change what happens to the change.
    }
  }
}

/**
 * Tells this Database's listeners that sales changed: changeSales does it for every change it
 * makes; call it after a change committed some other way (by hand, by another tool).
 */
export function noteSalesCommitted(database: Database): void {
  for (const listener of listeners.get(database) ?? []) {
    // The change is committed whatever a listener does: its failure must not read as the change's.
    try {
      listener();
    } catch {
      // A listener that throws has only lost its own freshness; the next one is still told.
    }
  }
}
