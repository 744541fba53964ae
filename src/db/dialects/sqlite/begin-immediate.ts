import { setTimeout as sleep } from 'node:timers/promises';
import type SqliteDatabase from 'better-sqlite3';
import { WRITE_LOCK_WAIT_MS, WriteLockTimeout, WriteLockWaitAborted } from '../../write-lock.js';

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
