import { constants, existsSync } from 'node:fs';
import { open, readdir, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Stats } from 'node:fs';
import type { Log } from '../log.js';
import type { FileOutcome, OnError } from './import-run.js';

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

/** A refused entry as one file of an import run: never read, no record. */
export function refusedOutcome(name: string, reason: string, onError: OnError, log?: Log): FileOutcome {
  const message = `not imported: ${name} ${reason}; only regular files directly in SALES_DIR are read`;
  log?.warn({ file: name, reason }, 'sales file refused');
  return { status: 'refused', filename: name, message, onError, at: new Date().toISOString() };
}

/**
 * Opens `file` safely and hands `use` the path to read it by; closes it afterwards. A refused
 * file becomes a failed outcome without `use` ever running.
 */
export async function withSalesFile(
  file: SalesFile,
  options: { onError: OnError; log: Log },
  use: (filePath: string) => Promise<FileOutcome>,
): Promise<FileOutcome> {
  const opened = await openSalesFile(file);
  if ('refused' in opened) return refusedOutcome(file.name, opened.refused, options.onError, options.log);
  try {
    return await use(opened.path);
  } finally {
    await opened.close();
  }
}
