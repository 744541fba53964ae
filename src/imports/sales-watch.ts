import { watch, type FSWatcher } from 'node:fs';
import { lstat, open, readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Database } from '../db/database.js';
import type { Log } from '../log.js';
import { importFile } from './import.service.js';
import type { FileOutcome, ImportOptions } from './import-run.js';
import { openSalesFile, refusedOutcome } from './sales-folder.js';

/**
 * A watched sales folder: each new or changed `*.csv` directly in it is imported once it has
 * stopped changing, through the same pipeline as `zinc import` (importFile: the same records,
 * SHA-256 idempotency, row errors, metrics and claims).
 *
 * The folder is scanned every `pollMs` (readdir, then lstat of each `*.csv`): the scan is the
 * source of truth, because fs.watch misses changes on network filesystems and some bind mounts.
 * fs.watch, where it works, only makes the next scan come sooner.
 *
 * A file is ready when two observations at least `settleMs` apart saw the same inode, size,
 * mtime and ctime, and it ends with a line end. An empty file is not ready (a shell redirect
 * creates it before its writer has written anything), and a file whose last line has no line end
 * yet must stay unchanged ten times as long (`UNTERMINATED_SETTLE_FACTOR`): a writer paused in
 * the middle of its last field (`…,P-1,12` of `…,P-1,1234.56`) would otherwise have a valid,
 * wrong row imported. A file that changes while it is read is not committed anyway: the import hashes what it
 * reads and fails a file whose bytes differ from those it claimed ("the file changed while it was
 * being imported"); the watcher then sees the new size, waits for it to settle again and imports
 * the whole file, a new content under a new SHA-256. A writer that pauses longer than `settleMs`
 * between two lines can still have the part written so far imported as a file of its own; when
 * the rest arrives, the complete file is imported and
 * its rows replace the part's by (order_id, product_id), so the totals are the complete file's.
 * Writers that cannot promise that should write under a temporary name and rename into place:
 * dotfiles and names not ending in `.csv` (`*.part`, `*.tmp`, `*~`) are never looked at.
 *
 * Each file state (inode, size, mtime) is taken once: a file that failed (bad rows), was refused
 * (a link, a FIFO) or was skipped is not tried again until it changes — or until the watcher
 * starts again, when failed files get one more try, as `zinc import` gives them. Only a file that
 * another importer is working on (its record `processing`), and a file whose import threw (the
 * database unreachable), are looked at again later.
 */

/** How the watcher paces itself. */
export interface WatchSettings {
  /** How long a file must stay unchanged (inode, size, mtime) before it is imported. */
  settleMs: number;
  /** How often the folder is scanned, whether fs.watch reports changes or not. */
  pollMs: number;
}

export const DEFAULT_WATCH_SETTINGS: WatchSettings = Object.freeze({ settleMs: 2000, pollMs: 1000 });

export interface SalesWatchOptions extends WatchSettings, ImportOptions {
  /**
   * Told each file's outcome, once per file state (the CLI prints a line). Default: one log line
   * per file (`watched file imported`, a warning when it failed; refusals are logged as such).
   */
  report?: ((outcome: FileOutcome) => void) | undefined;
}

/** A running watch of one folder. */
export interface SalesWatch {
  /** The folder's real path. */
  readonly dir: string;
  /** Scans done so far (tests wait for a few to pass). */
  readonly scans: number;
  /**
   * Stops scanning and starts no other import; resolves once the running one has ended (it ends
   * as the import's `signal` decides: aborted, it rolls back).
   */
  stop(): Promise<void>;
}

/** The names a watcher takes: `*.csv`, not hidden, not an editor's or office suite's scratch file. */
export function isWatchedName(name: string): boolean {
  return name.toLowerCase().endsWith('.csv') && !name.startsWith('.') && !name.startsWith('~');
}

/** What a file is now (inode, size, mtime, ctime); a change of any part means it is still being written, was rewritten, or had its permissions changed. */
type Signature = string;

interface Tracked {
  signature: Signature;
  size: number;
  /** When this signature was first seen. */
  since: number;
  /** How long this state must stay unchanged: `settleMs`, longer once seen without a final line end. */
  settleFor: number;
  /** This signature has had its outcome; nothing more until the file changes. */
  done: boolean;
  /** Not before then (another importer holds it, or its import threw). */
  retryAt: number;
  /** Tries of this state that ended without an outcome, for the backoff. */
  failures: number;
}

/** Longest wait before a file whose import threw, or that another importer holds, is looked at again. */
const MAX_RETRY_MS = 60_000;
/**
 * A file whose last line has no line end yet waits this many settle periods: it may be a writer
 * paused mid-field, or a complete export without a final newline.
 */
export const UNTERMINATED_SETTLE_FACTOR = 10;
/** fs.watch reports come in bursts while a file is written: one scan for a burst. */
const NUDGE_MS = 50;

/**
 * Watches `dir` (see the module comment) until `stop`. Resolves once the folder has been found
 * and the first scan is scheduled; files already there are imported like new ones, once settled.
 *
 * @example
 *   const watching = await watchSalesFolder(database, config.salesDir, { ...DEFAULT_WATCH_SETTINGS, onError: 'fail', log });
 *   // … later
 *   await watching.stop();
 */
export async function watchSalesFolder(database: Database, dir: string, options: SalesWatchOptions): Promise<SalesWatch> {
  const real = await realpath(dir);
  // onFileDone is told once per file state, here, not by every try of importFile (a file another
  // instance holds is tried again, and would be counted `skipped` each time).
  const { settleMs, pollMs, report = logOutcome(options.log), onFileDone, ...importOptions } = options;
  const log = options.log;
  const files = new Map<string, Tracked>();
  let stopping = false;
  let scans = 0;
  let timer: NodeJS.Timeout | undefined;
  let nextAt = Infinity;
  let cycle: Promise<void> = Promise.resolve();
  /** A cycle is queued behind the running one: more nudges meanwhile need no other. */
  let queued = false;
  let lastScanError: string | undefined;
  /** Imports are throwing (the database is unreachable, say): logged once, until one gets through. */
  let importsFailing = false;

  const schedule = (delay: number) => {
    if (stopping) return;
    const at = Date.now() + Math.max(0, delay);
    if (timer && at >= nextAt) return;
    clearTimeout(timer);
    nextAt = at;
    timer = setTimeout(() => {
      timer = undefined;
      nextAt = Infinity;
      if (queued) return;
      queued = true;
      const run = () => {
        queued = false;
        return runCycle();
      };
      cycle = cycle.then(run).catch((error: unknown) => {
        log.error({ err: error, dir: real }, 'watched folder: scan failed');
        schedule(pollMs);
      });
    }, Math.max(0, delay));
  };

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(real, { persistent: false }, () => schedule(NUDGE_MS));
    watcher.on('error', (error) => {
      log.warn({ err: error, dir: real }, 'fs.watch stopped; the folder is still scanned');
      watcher?.close();
      watcher = undefined;
    });
  } catch (error) {
    log.warn({ err: error, dir: real }, 'fs.watch is not available here; the folder is scanned only');
  }

  /** Scans; imports the first ready file, then scans again (an import can take minutes): until none is ready. */
  async function runCycle(): Promise<void> {
    for (;;) {
      if (stopping) return;
      let next: string | undefined;
      try {
        next = (await scan())[0];
        lastScanError = undefined;
      } catch (error) {
        const message = (error as Error).message;
        // A folder that went away (an unmounted share) is reported once, then scanned for again.
        if (message !== lastScanError) log.warn({ err: error, dir: real }, 'watched folder could not be scanned');
        lastScanError = message;
      }
      scans++;
      if (lastScanError !== undefined) {
        // Files seen before the folder went away are not retried every few milliseconds meanwhile.
        schedule(pollMs);
        return;
      }
      if (next === undefined || stopping) break;
      // Every way out of take marks this state done, puts it off, or forgets it: never ready twice in a row.
      await take(next);
    }
    schedule(nextDelay());
  }

  /** Observes every watched entry; returns the names ready to import, in name order. */
  async function scan(): Promise<string[]> {
    const now = Date.now();
    const names = (await readdir(real)).filter(isWatchedName).sort();
    const present = new Set(names);
    for (const name of files.keys()) if (!present.has(name)) files.delete(name);
    const ready: string[] = [];
    for (const name of names) {
      const stats = await lstat(path.join(real, name)).catch(() => undefined);
      if (!stats) {
        files.delete(name);
        continue;
      }
      const signature = `${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
      const known = files.get(name);
      if (!known || known.signature !== signature) {
        files.set(name, { signature, size: stats.size, since: now, settleFor: settleMs, done: false, retryAt: 0, failures: 0 });
        continue;
      }
      if (!known.done && now - known.since >= known.settleFor && now >= known.retryAt) ready.push(name);
    }
    return ready;
  }

  /** When the next scan is due: the poll, or sooner when a file settles or may be retried before it. */
  function nextDelay(): number {
    const now = Date.now();
    let at = now + pollMs;
    for (const t of files.values()) {
      if (!t.done) at = Math.min(at, Math.max(t.since + t.settleFor, t.retryAt));
    }
    return Math.max(at - now, 10);
  }

  /** How long before the next try of a file: the settle period (at least 1 s), doubling, up to a minute. */
  function backoff(tracked: Tracked): number {
    tracked.failures++;
    return Math.min(MAX_RETRY_MS, Math.max(settleMs, 1000) * 2 ** (tracked.failures - 1));
  }

  /** Imports one settled file (or finds it refused), and notes what came of this state of it. */
  async function take(name: string): Promise<void> {
    const tracked = files.get(name);
    if (!tracked) return;
    const opened = await openSalesFile({ name, dir: real });
    if ('refused' in opened) {
      // Gone between the scan and now: nothing to report, as if never seen.
      if (!(await lstat(path.join(real, name)).catch(() => undefined))) {
        files.delete(name);
        return;
      }
      tracked.done = true;
      const outcome = refusedOutcome(name, opened.refused, options.onError, log);
      onFileDone?.(outcome);
      report(outcome);
      return;
    }
    try {
      // Changed since it settled (same inode, other size): wait for it to settle again.
      if (opened.size !== tracked.size) {
        files.delete(name);
        return;
      }
      // Nothing written yet: any write makes it a new state.
      if (opened.size === 0) {
        tracked.done = true;
        return;
      }
      if (tracked.settleFor === settleMs && !(await endsWithLineEnd(opened.path, opened.size))) {
        tracked.settleFor = settleMs * UNTERMINATED_SETTLE_FACTOR;
        if (Date.now() - tracked.since < tracked.settleFor) return;
      }
      const outcome = await importFile(database, opened.path, name, importOptions);
      if (outcome.status === 'skipped' && outcome.record.status === 'processing') {
        // Another importer (another instance on the same folder) has it now: look again later,
        // to report what became of it, or take it over if that importer died.
        tracked.retryAt = Date.now() + backoff(tracked);
        return;
      }
      if (importsFailing) {
        importsFailing = false;
        log.info({ file: name }, 'watched files are being imported again');
      }
      tracked.done = true;
      onFileDone?.(outcome);
      report(outcome);
    } catch (error) {
      const waitMs = backoff(tracked);
      tracked.retryAt = Date.now() + waitMs;
      // One error line per outage, not one per file and try (a thousand waiting files would
      // otherwise log a thousand lines a minute); each later try is still logged, at debug.
      const fields = { err: error, file: name, retryInMs: waitMs };
      if (importsFailing) log.debug?.(fields, 'watched file could not be imported; trying again later');
      else log.error(fields, 'watched file could not be imported; trying again later (further failures are logged at debug until one succeeds)');
      importsFailing = true;
    } finally {
      await opened.close();
    }
  }

  schedule(0);
  return {
    dir: real,
    get scans() {
      return scans;
    },
    stop: async () => {
      stopping = true;
      clearTimeout(timer);
      timer = undefined;
      watcher?.close();
      await cycle;
    },
  };
}

/** Whether the file's last byte is a line end (LF, which ends CRLF too). */
async function endsWithLineEnd(filePath: string, size: number): Promise<boolean> {
  const handle = await open(filePath, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(1), 0, 1, size - 1);
    return bytesRead === 1 && buffer[0] === 0x0a;
  } finally {
    await handle.close();
  }
}

/** The default report: one log line per file outcome. */
function logOutcome(log: Log): (outcome: FileOutcome) => void {
  return (outcome) => {
    if (outcome.status === 'refused') return; // refusedOutcome logged it
    const fields = {
      file: outcome.filename,
      status: outcome.status,
      importId: outcome.record.id,
      ...(outcome.status === 'skipped'
        ? { reason: outcome.message }
        : { rows: outcome.record.num_rows, rejected: outcome.record.rows_rejected }),
    };
    if (outcome.status === 'failed') log.warn({ ...fields, error: outcome.record.error_message }, 'watched file failed');
    else log.info(fields, 'watched file imported');
  };
}
