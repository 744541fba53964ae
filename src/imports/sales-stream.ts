import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { CsvFormatError, readCsv } from './csv-reader.js';
import { readHeader, validateRecord, type HeaderLayout, type RowError, type SaleRow } from './sales-row.js';

/** Valid rows handed to the store at a time. */
const BATCH_ROWS = 2000;

/**
 * Reads a file once: records are validated, valid rows handed over in batches, bad ones reported.
 * Resolves to the file's SHA-256, so the caller can tell whether it changed while being read.
 */
export async function streamRows(
  filePath: string,
  handlers: {
    onHeader(layout: HeaderLayout): void;
    onRows(rows: SaleRow[]): Promise<void>;
    onErrors(errors: RowError[]): void;
    onProgress?(bytesRead: number, rowsRead: number): void;
  },
): Promise<string> {
  const hash = createHash('sha256');
  let layout: HeaderLayout | undefined;
  let batch: SaleRow[] = [];
  let bytesRead = 0;
  let rowsRead = 0;
  const source = createReadStream(filePath, { highWaterMark: 1 << 16 });
  const onChunk = (chunk: Uint8Array) => {
    hash.update(chunk);
    bytesRead += chunk.length;
  };
  for await (const records of readCsv(source, onChunk)) {
    for (const record of records) {
      if (!layout) {
        layout = readHeader(record);
        handlers.onHeader(layout);
        continue;
      }
      rowsRead++;
      const result = validateRecord(record, layout);
      if (Array.isArray(result)) handlers.onErrors(result);
      else if (batch.push(result) >= BATCH_ROWS) {
        const rows = batch;
        batch = [];
        await handlers.onRows(rows);
      }
    }
    handlers.onProgress?.(bytesRead, rowsRead);
  }
  if (batch.length > 0) await handlers.onRows(batch);
  if (!layout) throw new CsvFormatError('the file is empty: a header row naming date, order_id, product_id, amount_sgd is required');
  return hash.digest('hex');
}

