import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

/**
 * Where an import's bytes come from. The pipeline reads a file more than once — its hash first,
 * to claim it (import-claim.ts), then to load it (import-load.ts), and again when a write
 * conflict runs the load's transaction anew — so a source is something that can be opened as
 * often as needed, each time from its first byte, and streamed: never held whole in memory.
 * A local file (an upload, or a folder entry read through its checked descriptor) and an
 * object in S3-compatible storage (s3-source.ts) are the two kinds.
 */

/** One file's bytes, readable from the start as many times as the import needs. */
export interface SalesSource {
  /** The name the import record carries (a file name, or the key after the prefix). */
  readonly name: string;
  /**
   * A new stream of the bytes, from the first. A source that cannot be read (gone, changed
   * since it was first read, unreachable) fails the stream with a SourceReadError.
   */
  open(): Readable;
}

/**
 * A file's bytes could not be read, for a reason outside the file's content: the message is one
 * line that says which file and why, fit for the import's record.
 */
export class SourceReadError extends Error {
  override name = 'SourceReadError';
}

/**
 * A folder (local or a bucket prefix) could not be listed: nothing was imported. `reason` is
 * stable: `denied` (credentials or permissions), `not_found` (no such bucket or folder),
 * `unreachable` (the store did not answer), `failed` (anything else).
 */
export class SalesFolderError extends Error {
  override name = 'SalesFolderError';
  constructor(
    readonly reason: 'denied' | 'not_found' | 'unreachable' | 'failed',
    message: string,
  ) {
    super(message);
  }
}

/** A local file read by path (which may be a checked descriptor's `/proc/self/fd/N`). */
export function localFile(filePath: string, name: string): SalesSource {
  return { name, open: () => createReadStream(filePath, { highWaterMark: 1 << 16 }) };
}

/** A stream of `input`'s bytes: a source, or a local file's path (as tools and tests pass it). */
export function openSource(input: SalesSource | string): Readable {
  return typeof input === 'string' ? createReadStream(input, { highWaterMark: 1 << 16 }) : input.open();
}

/** A folder entry, not yet read. */
export interface SalesEntry {
  readonly name: string;
  /**
   * Makes the entry readable: its source (released with `close`), or why it is not read at all
   * (a one-line message: a local entry that is a link, a FIFO, …).
   */
  open(): Promise<{ source: SalesSource; close(): Promise<void> } | { refused: string }>;
}

/** Where a folder import finds its files: SALES_DIR, or an S3 bucket and prefix. */
export interface SalesFolder {
  /** The folder as the operator named it, for messages and logs. */
  readonly location: string;
  /** The `*.csv` entries directly in the folder, in name order. Throws SalesFolderError. */
  list(): Promise<SalesEntry[]>;
  /** Releases what listing and reading held (an S3 client's connections). */
  close?(): Promise<void>;
}
