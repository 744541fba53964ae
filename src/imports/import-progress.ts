import type { Database } from '../db/database.js';
import type { Log } from '../log.js';
import { deleteProgress, findProgress, saveProgress } from './import-progress.repository.js';
import { nowUtc } from './import-record.js';

/** How far an import has got; `bytesTotal` is the file's size. */
export interface ImportProgress {
  bytesRead: number;
  bytesTotal: number;
  rowsRead: number;
}

/** How often the instance running an import writes its progress for the others (at most). */
export const PROGRESS_WRITE_MS = 1000;
/**
 * A progress row not written for this long is not shown: its importer is gone (the recovery sweep
 * will fail its record) or cannot reach the database. Five write intervals: a write or two may be
 * late or skipped, and instances' clocks may differ by a little, without the progress vanishing.
 */
export const PROGRESS_STALE_MS = 5 * PROGRESS_WRITE_MS;

/**
 * The imports one app is running, by record id: how far each has got, for `GET /api/imports/{id}`
 * while it runs. Owned by the app (two apps in one process see only their own), handed to the
 * import service in its options.
 */
export class ImportRuns {
  private readonly running = new Map<number, ImportProgress & { startedAt: number }>();
  /** When each running import first started (`performance.now()`), kept across its retried attempts. */
  private readonly begun = new Map<number, number>();
  /** The store path last used, so that a change of path is logged once. */
  lastMethod: string | undefined;

  start(id: number, bytesTotal: number, startedAt: number): void {
    this.running.set(id, { bytesRead: 0, bytesTotal, rowsRead: 0, startedAt });
    if (!this.begun.has(id)) this.begun.set(id, startedAt);
  }

  update(id: number, progress: ImportProgress): void {
    const run = this.running.get(id);
    if (run) this.running.set(id, { ...progress, startedAt: run.startedAt });
  }

  end(id: number): void {
    this.running.delete(id);
    this.begun.delete(id);
  }

  /** How many imports this app is running now. */
  get size(): number {
    return this.running.size;
  }

  /** When the longest-running of them started (`performance.now()`, first attempt), or undefined when none runs. */
  oldestStart(): number | undefined {
    let oldest: number | undefined;
    for (const started of this.begun.values()) if (oldest === undefined || started < oldest) oldest = started;
    return oldest;
  }

  /** The latest progress of a running import, as the import reported it. */
  latest(id: number): ImportProgress | undefined {
    return this.running.get(id);
  }

  /** How far a running import has got, when this app runs it. */
  progress(id: number) {
    const p = this.running.get(id);
    if (!p) return undefined;
    return progressFigures(p, (performance.now() - p.startedAt) / 1000, 0);
  }
}

/**
 * The wire shape of an import's progress: `p` as it was `seconds` after the import started,
 * `ageSeconds` ago (the ETA counts from now).
 */
function progressFigures(p: ImportProgress, seconds: number, ageSeconds: number) {
  const elapsed = Math.max(seconds, 0.001);
  const bytesPerS = p.bytesRead / elapsed;
  return {
    bytes_read: p.bytesRead,
    bytes_total: p.bytesTotal,
    rows_read: p.rowsRead,
    rows_per_s: Math.round(p.rowsRead / elapsed),
    eta_s: bytesPerS > 0 ? Math.round(Math.max((p.bytesTotal - p.bytesRead) / bytesPerS - ageSeconds, 0) * 10) / 10 : null,
  };
}

/**
 * Publishes one running import's progress to the database (`import_progress`), so that every
 * instance on it can show it: once at the start, then every PROGRESS_WRITE_MS from a timer, so
 * the row stays fresh while the import waits for the writer lock, keeps its rollups or commits.
 * Each write is a statement of its own on the pool, never on the import's connection or inside
 * its transaction, and the import never waits for one: a write still under way when the next is
 * due is skipped, a failed one is logged once. `latest` reads the progress the import reports.
 * `stop` ends the writes and deletes the row (after the last write) without being awaited; a row
 * left behind is never shown (only `processing` records show progress, and a stale row is
 * ignored) and the next claim of the record overwrites it.
 * Nothing is written where the dialect keeps progress in memory (SQLite: one instance).
 */
export function shareProgress(database: Database, id: number, latest: () => ImportProgress | undefined, log: Log): { stop(): Promise<void> } {
  if (!database.dialect.sharesImportProgress) return { stop: async () => {} };
  const startedAt = nowUtc();
  let writing: Promise<void> | undefined;
  let warned = false;
  const write = () => {
    const p = latest();
    if (!p || writing) return;
    writing = saveProgress(database.db, {
      import_id: id,
      bytes_read: p.bytesRead,
      bytes_total: p.bytesTotal,
      rows_read: p.rowsRead,
      started_at: startedAt,
      updated_at: nowUtc(),
    })
      .catch((error: unknown) => {
        if (!warned) log.warn({ err: error, importId: id }, 'could not share the import progress with other instances');
        warned = true;
      })
      .finally(() => (writing = undefined));
  };
  write();
  const timer = setInterval(write, PROGRESS_WRITE_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return (writing ?? Promise.resolve()).then(() => deleteProgress(database.db, id)).catch(() => {});
    },
  };
}

/**
 * How far an import that another instance (or app) runs has got, from its row in the database;
 * undefined when there is none, or when it is stale (older than PROGRESS_STALE_MS).
 */
export async function sharedProgress(database: Database, id: number, now = Date.now()) {
  if (!database.dialect.sharesImportProgress) return undefined;
  const row = await findProgress(database.db, id);
  if (!row) return undefined;
  const updated = msOfUtc(row.updated_at);
  const age = Math.max(now - updated, 0);
  if (age > PROGRESS_STALE_MS) return undefined;
  const p = { bytesRead: Number(row.bytes_read), bytesTotal: Number(row.bytes_total), rowsRead: Number(row.rows_read) };
  return progressFigures(p, (updated - msOfUtc(row.started_at)) / 1000, age / 1000);
}

/** Deletes the progress row of an import that will not write it again (its importer died). */
export async function forgetProgress(database: Database, id: number): Promise<void> {
  if (database.dialect.sharesImportProgress) await deleteProgress(database.db, id);
}

/** A stored time (`YYYY-MM-DD HH:MM:SS.mmm`, UTC) in milliseconds since the epoch. */
function msOfUtc(stored: string): number {
  return Date.parse(`${stored.replace(' ', 'T').slice(0, 23)}Z`);
}
