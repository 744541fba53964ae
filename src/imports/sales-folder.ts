import { constants, existsSync } from 'node:fs';
import { open, readdir, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Stats } from 'node:fs';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import type { FileOutcome, OnError } from './import-run.js';
import { localFile, type SalesEntry, type SalesFolder, type SalesSource } from './sales-source.js';

/**
 * The sales folder is not a way out of it. Only regular files directly in SALES_DIR are read:
 * a `*.csv` entry that is a symbolic link (wherever it points), a directory, FIFO, socket or
 * device, or a file that turns out to live outside the folder is refused with a reason, and
 * reported in the run as `refused` (shown as failed, without a record), never opened for reading.
 *
 * A file is opened once, without following links (O_NOFOLLOW) and without blocking (a FIFO
 * cannot hang the import), and checked on that open descriptor (fstat: a regular file; its
 * real location: inside the folder). Every later read goes through that descriptor
 * (`/proc/self/fd/N` on Linux), so swapping the name for a link or another file after the
 * check changes nothing: the bytes hashed and imported are the ones that were checked. (Where
 * /proc is missing, reads reopen the checked real path; the hash comparison at the end of the
 * import still fails a file that changed.) Hard links cannot be told from ordinary files: who
 * may write to SALES_DIR must be trusted not to link other files into it.
 */

/** One `*.csv` entry of the folder, not yet opened. */
export interface SalesFile {
  readonly name: string;
  /** The folder's real path. */
  readonly dir: string;
}

/** A file that passed the checks, open until `close`. */
export interface OpenedSalesFile {
  /** Reads exactly the opened file, while it is open. */
  readonly path: string;
  readonly size: number;
  close(): Promise<void>;
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);
const PROC_FD = '/proc/self/fd';
const hasProcFd = existsSync(PROC_FD);

/** The `*.csv` entries directly in `dir` (of any type: opening them decides), in name order. */
export async function listSalesFiles(dir: string): Promise<SalesFile[]> {
  const real = await realpath(dir);
  const entries = await readdir(real, { withFileTypes: true });
  return entries
    .filter((e) => e.name.toLowerCase().endsWith('.csv'))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => ({ name, dir: real }));
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function refusalForOpenError(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ELOOP':
    case 'EMLINK': // O_NOFOLLOW on a link, as FreeBSD reports it
      return 'is a symbolic link';
    case 'ENOENT':
      return 'disappeared before it could be read';
    case 'ENXIO':
      return 'is a socket or a FIFO without a writer';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read (permission denied)';
    default:
      return `could not be opened (${error.code ?? error.message})`;
  }
}

function inside(dir: string, file: string): boolean {
  const relative = path.relative(dir, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative) && !relative.includes(path.sep);
}

/** Opens one entry safely; resolves to the open file, or to the reason it is refused (nothing read). */
export async function openSalesFile(file: SalesFile): Promise<OpenedSalesFile | { refused: string }> {
  const full = path.join(file.dir, file.name);
  let handle: FileHandle;
  try {
    handle = await open(full, OPEN_FLAGS);
  } catch (error) {
    return { refused: refusalForOpenError(error as NodeJS.ErrnoException) };
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return refuse(handle, `is ${kindOf(stats)}`);
    // Where the open file really is (the descriptor's own link on Linux): directly in the folder.
    const real = await realpath(hasProcFd ? `${PROC_FD}/${handle.fd}` : full);
    if (!inside(file.dir, real)) return refuse(handle, 'resolves outside SALES_DIR');
    return {
      path: hasProcFd ? `${PROC_FD}/${handle.fd}` : real,
      size: stats.size,
      close: () => handle.close().catch(() => {}),
    };
  } catch (error) {
    return refuse(handle, refusalForOpenError(error as NodeJS.ErrnoException));
  }
}

async function refuse(handle: FileHandle, reason: string): Promise<{ refused: string }> {
  await handle.close().catch(() => {});
  return { refused: reason };
}

/** The message of a refused folder entry. */
function refusalMessage(name: string, reason: string): string {
  return `not imported: ${name} ${reason}; only regular files directly in SALES_DIR are read`;
}

/** A refused entry as one file of an import run: never read, no record. */
export function refusedOutcome(name: string, reason: string, onError: OnError, log?: Log): FileOutcome {
  return unreadOutcome(name, refusalMessage(name, reason), onError, log, 'sales file refused');
}

/**
 * A folder entry that was not read at all (refused, or gone before its first byte) as one file
 * of an import run: failed, and without a record, as there is no content hash to keep it by.
 */
export function unreadOutcome(name: string, message: string, onError: OnError, log?: Log, logMessage = 'sales file not read'): FileOutcome {
  log?.warn({ file: name, reason: message }, logMessage);
  return { status: 'refused', filename: name, message, onError, at: new Date().toISOString() };
}

/** A local folder (SALES_DIR) as a folder import's source: entries opened safely, as above. */
export function localFolder(dir: string): SalesFolder {
  return {
    location: dir,
    list: async () =>
      (await listSalesFiles(dir)).map((file) => ({
        name: file.name,
        open: async () => {
          const opened = await openSalesFile(file);
          if ('refused' in opened) return { refused: refusalMessage(file.name, opened.refused) };
          return { source: localFile(opened.path, file.name), close: opened.close };
        },
      })),
  };
}

/**
 * The folder imports read by configuration: SALES_URL's bucket (s3-source.ts, loaded only
 * then), else SALES_DIR. The caller closes it when the run is over.
 */
export async function openSalesFolder(config: Pick<Config, 'salesDir' | 'salesUrl'>): Promise<SalesFolder> {
  if (!config.salesUrl) return localFolder(config.salesDir);
  const { s3Folder } = await import('./s3-source.js');
  return s3Folder(config.salesUrl);
}

/**
 * Opens `entry` and hands `use` its source; closes it afterwards. A refused entry becomes a
 * failed outcome without `use` ever running.
 */
export async function withSalesEntry(
  entry: SalesEntry,
  options: { onError: OnError; log: Log },
  use: (source: SalesSource) => Promise<FileOutcome>,
): Promise<FileOutcome> {
  const opened = await entry.open();
  if ('refused' in opened) return unreadOutcome(entry.name, opened.refused, options.onError, options.log, 'sales file refused');
  try {
    return await use(opened.source);
  } finally {
    await opened.close();
  }
}
