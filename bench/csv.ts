/**
 * npm run bench:csv -- --rows 1000000
 *
 * Reads the same generated sales CSV with Zinc's reader (alone, and with row validation) and with
 * csv-parse, in one run, and prints rows/s and the ratio to csv-parse: the measurement behind
 * hand-writing the reader on the import's hot path.
 */
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse';
import { readCsv } from '../src/imports/csv-reader.js';
import { readHeader, validateRecord, type HeaderLayout } from '../src/imports/sales-row.js';
import { generateSalesCsv } from './sales-generator.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' } } });
const rows = Number(values.rows);

async function timed(label: string, run: () => Promise<number>): Promise<number> {
  const started = performance.now();
  const n = await run();
  const rate = n / ((performance.now() - started) / 1000);
  console.log(`${label.padEnd(34)} ${Math.round(rate).toLocaleString('en').padStart(12)} rows/s`);
  return rate;
}

const dir = mkdtempSync(path.join(tmpdir(), 'zinc-bench-csv-'));
const file = path.join(dir, 'sales.csv');
try {
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  await generateSalesCsv(file, { rows });
  const reader = await timed('zinc reader', async () => {
    let n = 0;
    for await (const records of readCsv(createReadStream(file, { highWaterMark: 1 << 16 }))) n += records.length;
    return n - 1;
  });
  const validated = await timed('zinc reader + row validation', async () => {
    let n = 0;
    let layout: HeaderLayout | undefined;
    for await (const records of readCsv(createReadStream(file, { highWaterMark: 1 << 16 }))) {
      for (const record of records) {
        if (!layout) layout = readHeader(record);
        else if (!Array.isArray(validateRecord(record, layout))) n++;
      }
    }
    return n;
  });
  const baseline = await timed('csv-parse (baseline)', async () => {
    let n = 0;
    for await (const _record of createReadStream(file).pipe(parse())) n++;
    return n - 1;
  });
  console.log(`ratio zinc reader / csv-parse:      ${(reader / baseline).toFixed(2)}×`);
  console.log(`ratio with validation / csv-parse:  ${(validated / baseline).toFixed(2)}×`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
