import { createHash } from 'node:crypto';
import { CsvFormatError, CsvTextDecoder } from './csv-reader.js';
import { DEFAULT_CSV_FORMAT, type CsvFormat } from './csv-format.js';
import { SalesScanner } from './sales-scanner.js';
import type { HeaderLayout, RowError, SaleRow } from './sales-row.js';
import { openSource, type SalesSource } from './sales-source.js';

/** Valid rows handed to the store at a time. */
const BATCH_ROWS = 2000;

/**
 * Reads a file once: records are validated, valid rows handed over in batches, bad ones reported.
 * Resolves to the file's SHA-256, so the caller can tell whether it changed while being read.
 * `format`: the file's delimiter (or `auto`) and column aliases.
 */
export async function streamRows(
  /** Where the bytes come from (a local file's path is one too). */
  input: SalesSource | string,
  handlers: {
    onHeader(layout: HeaderLayout): void;
    onRows(rows: SaleRow[]): Promise<void>;
    onErrors(errors: RowError[]): void;
    onProgress?(bytesRead: number, rowsRead: number): void;
  },
  format: CsvFormat = DEFAULT_CSV_FORMAT,
): Promise<string> {
  const hash = createHash('sha256');
  const decoder = new CsvTextDecoder();
  const scanner = new SalesScanner(handlers, format);
  let pending: SaleRow[] = [];
  let bytesRead = 0;

  // The store's pace sets the reader's: the next chunk is read once it has taken the batches.
  // `pending` holds at most one batch plus the rows of one chunk.
  const handOver = async (all: boolean) => {
    let from = 0;
    while (pending.length - from >= BATCH_ROWS || (all && from < pending.length)) {
      const rows = pending.slice(from, from + BATCH_ROWS);
      from += rows.length;
      await handlers.onRows(rows);
    }
    if (from > 0) pending = pending.slice(from);
  };

  const source = openSource(input);
  for await (const chunk of source as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytesRead += chunk.length;
    const before = scanner.recordsRead;
    scanner.push(decoder.decode(chunk), pending);
    await handOver(false);
    if (scanner.recordsRead !== before) handlers.onProgress?.(bytesRead, scanner.rowsRead);
  }
  decoder.end();
  const before = scanner.recordsRead;
  scanner.end(pending);
  await handOver(true);
  if (scanner.recordsRead !== before) handlers.onProgress?.(bytesRead, scanner.rowsRead);
  if (!scanner.header) throw new CsvFormatError('the file is empty: a header row naming date, order_id, product_id, amount_sgd is required');
  return hash.digest('hex');
}
