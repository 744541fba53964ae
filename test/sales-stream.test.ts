import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CsvFormatError, CsvParser } from '../src/imports/csv-reader.js';
import { readHeader, validateRecord, type HeaderLayout, type RowError, type SaleRow } from '../src/imports/sales-row.js';
import { streamRows } from '../src/imports/sales-stream.js';
import { prng } from '../bench/sales-generator.js';

/** streamRows on real files: the rows and errors of the general path, in batches, at the store's pace. */

const dir = mkdtempSync(path.join(tmpdir(), 'zinc-sales-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function fileOf(content: string | Buffer): string {
  const file = path.join(dir, `f${++files}.csv`);
  writeFileSync(file, content);
  return file;
}

/** A sales file of `rows` records, a few of them quoted, multi-line, CRLF, blank or invalid. */
function salesText(rows: number, seed: number): string {
  const random = prng(seed);
  let text = 'date,order_id,product_id,amount_sgd\n';
  for (let i = 0; i < rows; i++) {
    const day = 1 + Math.floor(i / 500);
    const date = `2024-${String(1 + Math.floor((day - 1) / 28)).padStart(2, '0')}-${String(((day - 1) % 28) + 1).padStart(2, '0')}`;
    const pick = random();
    if (pick < 0.01) text += `${date},"ORD-${i}","SKU ""quoted""\nacross lines",1.00\n`;
    else if (pick < 0.02) text += `${date},ORD-${i},SKU-${i % 50},1.234\n`;
    else if (pick < 0.03) text += '\n';
    else if (pick < 0.04) text += `${date},ORD-${i},SKU-${i % 50},${i}.5\r\n`;
    else text += `${date},ORD-${i},SKU-${i % 50},${Math.floor(random() * 100_000) / 100}\n`;
  }
  return text;
}

function reference(text: string): { rows: SaleRow[]; errors: RowError[]; rowsRead: number } {
  const parser = new CsvParser();
  let layout: HeaderLayout | undefined;
  const rows: SaleRow[] = [];
  const errors: RowError[] = [];
  let rowsRead = 0;
  for (const record of [...parser.push(text), ...parser.end()]) {
    if (!layout) {
      layout = readHeader(record);
      continue;
    }
    rowsRead++;
    const result = validateRecord(record, layout);
    if (Array.isArray(result)) errors.push(...result);
    else rows.push(result);
  }
  return { rows, errors, rowsRead };
}

async function failure(content: string | Buffer): Promise<CsvFormatError> {
  try {
    await streamRows(fileOf(content), { onHeader: () => {}, onRows: async () => {}, onErrors: () => {} });
  } catch (error) {
    expect(error).toBeInstanceOf(CsvFormatError);
    return error as CsvFormatError;
  }
  throw new Error('expected streamRows to fail with a CsvFormatError');
}

describe('streamRows', () => {
  it('hands over the rows and errors of the general path, in batches of at most 2000, and resolves to the SHA-256', async () => {
    const text = salesText(12_345, 7);
    const expected = reference(text);
    expect(expected.errors.length).toBeGreaterThan(50);
    const batches: SaleRow[][] = [];
    const errors: RowError[] = [];
    const progress: [number, number][] = [];
    let headers = 0;
    const sha = await streamRows(fileOf(text), {
      onHeader: (layout) => {
        expect(batches).toEqual([]);
        headers++;
        expect(layout.warnings).toEqual([]);
      },
      onRows: async (rows) => {
        batches.push(rows);
      },
      onErrors: (e) => errors.push(...e),
      onProgress: (bytes, rows) => progress.push([bytes, rows]),
    });
    expect(sha).toBe(createHash('sha256').update(text).digest('hex'));
    expect(headers).toBe(1);
    expect(batches.every((b) => b.length > 0 && b.length <= 2000)).toBe(true);
    expect(batches.flat()).toEqual(expected.rows);
    expect(errors).toEqual(expected.errors);
    expect(progress.at(-1)).toEqual([Buffer.byteLength(text), expected.rowsRead]);
    for (let i = 1; i < progress.length; i++) expect(progress[i]![0]).toBeGreaterThanOrEqual(progress[i - 1]![0]);
  });

  it('when the store is slow, then it waits for each batch before reading on (bounded memory)', async () => {
    const text = salesText(40_000, 11); // about 1.3 MB: many 64 KiB chunks
    let pending = false;
    let bytesAtHandOver = -1;
    let bytesSeen = 0;
    let stalls = 0;
    await streamRows(fileOf(text), {
      onHeader: () => {},
      onErrors: () => {},
      onProgress: (bytes) => {
        expect(pending).toBe(false);
        bytesSeen = bytes;
      },
      onRows: async () => {
        expect(pending).toBe(false);
        pending = true;
        bytesAtHandOver = bytesSeen;
        // A store that takes several turns of the event loop: the file must not be read meanwhile.
        for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
        expect(bytesSeen).toBe(bytesAtHandOver);
        stalls++;
        pending = false;
      },
    });
    expect(stalls).toBeGreaterThan(15);
  });

  it('when a store fails, then streamRows rejects with its error', async () => {
    const boom = new Error('store is down');
    await expect(
      streamRows(fileOf(salesText(3000, 3)), { onHeader: () => {}, onErrors: () => {}, onRows: async () => Promise.reject(boom) }),
    ).rejects.toBe(boom);
  });

  it('reads a BOM, CRLF and a last line without a line ending', async () => {
    const rows: SaleRow[] = [];
    await streamRows(fileOf('\ufeffDate,Order_ID,Product_ID,Amount_SGD\r\n2024-01-01,A,P,1\r\n\r\n2024-01-02,B,P,2.5'), {
      onHeader: () => {},
      onErrors: () => {},
      onRows: async (batch) => void rows.push(...batch),
    });
    expect(rows).toEqual([
      { line: 2, date: '2024-01-01', orderId: 'A', productId: 'P', amountCents: 100 },
      { line: 4, date: '2024-01-02', orderId: 'B', productId: 'P', amountCents: 250 },
    ]);
  });

  it('fails the whole file with the reader messages', async () => {
    expect((await failure('')).message).toBe(
      'the file is empty: a header row naming date, order_id, product_id, amount_sgd is required',
    );
    expect((await failure('\n \n')).message).toContain('the file is empty');
    expect((await failure('date,order_id,amount_sgd\n2024-01-01,A,1\n')).message).toBe(
      'line 1: missing required column "product_id" (the header must name date, order_id, product_id, amount_sgd)',
    );
    expect((await failure(Buffer.from('\ufeffdate\n', 'utf16le'))).message).toContain('UTF-16');
    const invalid = Buffer.concat([Buffer.from(`date,order_id,product_id,amount_sgd\n${'2024-01-01,A,P,1\n'.repeat(5000)}`), Buffer.from([0xff])]);
    expect((await failure(invalid)).message).toBe('the file is not valid UTF-8 (in the bytes after offset 65536)');
    expect((await failure('date,order_id,product_id,amount_sgd\n2024-01-01,A\u0000,P,1\n')).message).toContain('NUL bytes');
    expect((await failure('date,order_id,product_id,amount_sgd\n2024-01-01,"A,P,1\n2024-01-01,B,P,1\n')).message).toBe(
      'line 2: quoted field is never closed (missing ")',
    );
    expect((await failure(`date,order_id,product_id,amount_sgd\n2024-01-01,${'A'.repeat(3 << 20)},P,1\n`)).message).toMatch(
      /^line 2: record is longer than \d+ characters \(an unclosed quote\?\)$/,
    );
  });
});
