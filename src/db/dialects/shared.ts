import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type RawBuilder } from 'kysely';
import type { DB, Dialect, WriteLockHold } from '../database.js';
import { WRITE_LOCK_WAIT_MS, WriteLockTimeout, WriteLockWaitAborted } from '../write-lock.js';

/**
 * What several dialects do the same way, written once: statements cut into chunks, rows streamed
 * as tab-separated text into a bulk load (LOAD DATA, COPY), locks held by a connection, the
 * staging-first rule of the server writers, read snapshots and generated ids.
 */

/** Rows a statement carries when writing by key (well under every database's placeholder limit). */
const ROWS_PER_STATEMENT = 1000;

/** Runs `statement` on the rows, ROWS_PER_STATEMENT at a time. */
export async function inStatements(rows: Iterable<unknown[]>, statement: (chunk: unknown[][]) => Promise<unknown>): Promise<void> {
  let chunk: unknown[][] = [];
  for (const row of rows) {
    if (chunk.push(row) >= ROWS_PER_STATEMENT) {
      await statement(chunk);
      chunk = [];
    }
  }
  if (chunk.length > 0) await statement(chunk);
}

export function* rowsWhere(rows: () => Iterable<unknown[]>, keep: (row: unknown[]) => boolean): Generator<unknown[]> {
  for (const row of rows()) if (keep(row)) yield row;
}

/** `(a, b), (c, d), …` for a multi-row VALUES list. */
export function valuesList(rows: unknown[][]): RawBuilder<unknown> {
  return sql.join(rows.map((r) => sql`(${sql.join(r)})`));
}

/**
 * A value as LOAD DATA (`ESCAPED BY '\\'`) and COPY's text format both read it: tab-separated,
 * `\N` for NULL, backslash escapes for tab, line breaks and the backslash.
 */
export function textField(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  const text = typeof value === 'string' ? value : String(value);
  return /[\t\n\r\\]/.test(text)
    ? text.replace(/[\t\n\r\\]/g, (c) => (c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\\\'))
    : text;
}

/** A bulk load fed with text as it is produced (LOAD DATA LOCAL INFILE, COPY … FROM STDIN). */
export interface TextLoad {
  write(text: string): Promise<void>;
  /** Ends the text; resolves to the rows stored. */
  finish(): Promise<number>;
  /** Ends it whatever happened, so that the transaction can roll back. */
  settle(): Promise<void>;
}

/** Streams `rows` as tab-separated lines into a load opened at the first row (none: none opened). */
export async function loadAsText(rows: Iterable<unknown[]>, open: () => TextLoad | Promise<TextLoad>): Promise<void> {
  const iterator = rows[Symbol.iterator]();
  let next = iterator.next();
  if (next.done) return;
  const load = await open();
  try {
    let text = '';
    for (; !next.done; next = iterator.next()) {
      text += next.value.map(textField).join('\t') + '\n';
      if (text.length >= 1 << 20) {
        await load.write(text);
        text = '';
      }
    }
    if (text.length > 0) await load.write(text);
    await load.finish();
  } catch (error) {
    await load.settle();
    throw error;
  }
}

/** A lock a connection holds: taken without waiting long, released by its holder. */
export interface ConnectionLock {
  take(conn: DB): Promise<boolean>;
  release(conn: DB): Promise<void>;
}

/**
 * The hold of a lock that lives and dies with its connection (named and advisory locks, SQLite's
 * own lock): never lost while the work runs, so there is nothing to check before COMMIT.
 */
export const HELD_BY_CONNECTION: WriteLockHold = Object.freeze({
  signal: new AbortController().signal,
  fence: async () => {},
});

/**
 * Runs `work` on `conn` holding `lock`, asked for again after `pauseMs` (a lock that waits on the
 * server by itself needs no pause; a function of the attempt backs off) until WRITE_LOCK_WAIT_MS,
 * or until `signal` ends the wait. `hold` tells `work` what it holds (HELD_BY_CONNECTION unless
 * the lock can be lost meanwhile).
 */
export async function whileHolding<T>(
  conn: DB,
  lock: ConnectionLock,
  work: (hold: WriteLockHold) => Promise<T>,
  options: {
    signal?: AbortSignal | undefined;
    pauseMs: number | ((attempt: number) => number);
    hold?: (conn: DB) => WriteLockHold;
  },
): Promise<T> {
  const deadline = performance.now() + WRITE_LOCK_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw new WriteLockWaitAborted();
    if (await lock.take(conn)) break;
    if (performance.now() > deadline) throw new WriteLockTimeout();
    const pause = typeof options.pauseMs === 'number' ? options.pauseMs : options.pauseMs(attempt);
    if (pause > 0) await sleep(pause, undefined, { signal: options.signal }).catch(() => {});
  }
  try {
    return await work(options.hold?.(conn) ?? HELD_BY_CONNECTION);
  } finally {
    await lock.release(conn).catch(() => {});
  }
}

/**
 * Holds `lock` on a connection of its own until the returned function is called (a process's
 * claim on itself while it has records it has not started loading).
 */
export async function holdOnOwnConnection(writer: DB, lock: ConnectionLock): Promise<() => Promise<void>> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let held!: () => void;
  const acquired = new Promise<void>((resolve) => (held = resolve));
  const holding = writer.connection().execute(async (conn) => {
    await lock.take(conn);
    held();
    await released;
    await lock.release(conn);
  });
  await Promise.race([acquired, holding]);
  return async () => {
    release();
    await holding.catch(() => {});
  };
}

/**
 * A server writer's first decision: when at least half of the file's first rows are stored
 * already (a corrected export sent again), the direct bulk load would refuse nearly every row,
 * so rows go to staging at once. `sales` is `sales` as the dialect reads it by identity.
 */
export async function mostlyStored(trx: DB, sales: RawBuilder<unknown>, rows: ReadonlyArray<{ orderId: string; productId: string }>): Promise<boolean> {
  const sample = rows.slice(0, 500);
  const { rows: found } = await sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM ${sales}
    WHERE (order_id, product_id) IN (${sql.join(sample.map((r) => sql`(${r.orderId}, ${r.productId})`))})`.execute(trx);
  return Number(found[0]?.n ?? 0) >= sample.length / 2;
}

/** A read-only transaction: a consistent snapshot where the database's default isolation gives one. */
export function inSnapshotReadOnly<T>(db: DB, read: (trx: DB) => Promise<T>): Promise<T> {
  return db.transaction().setAccessMode('read only').execute(read);
}

/** An import record inserted where the driver reports the generated key (MySQL, SQLite). */
export async function insertWithGeneratedId(db: DB, row: Parameters<Dialect['insertReturningId']>[1]): Promise<number> {
  const result = await db.insertInto('imported_files').values(row).executeTakeFirstOrThrow();
  return Number(result.insertId);
}
