/**
 * npm run bench:csv -- --rows 1000000 --runs 3 --shape chronological [--delimiter comma|semicolon|tab] [--decimal-comma]
 *
 * Reads the same generated sales CSV, in one run, with:
 * - Zinc's general reader alone (readCsv: every record as a field array),
 * - the general reader + validateRecord (how the import read files before the plain-record path),
 * - the import's own path, streamRows: read + validate + SHA-256, with an `onRows` that yields to
 *   the event loop per batch as a store running alongside would, so backpressure is exercised,
 * - csv-parse, the baseline,
 * - a tight hand splitter with the same validation and no quoting, hashing or batching: the ceiling.
 * Each figure is the best of `--runs` timed runs after a warm-up run, so that JIT warm-up and a
 * busy neighbour on the machine weigh as little as possible; the median and the first (cold) run
 * are shown beside it. `--delimiter` writes the file semicolon- or tab-separated (and
 * `--decimal-comma` its amounts as `12,50`); every reader is told the delimiter.
 */
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse';
import { parseAmountCents, parseDecimalCommaCents } from '../src/money.js';
import { readCsv } from '../src/imports/csv-reader.js';
import { checkDate, readHeader, validateRecord, type HeaderLayout } from '../src/imports/sales-row.js';
import { streamRows } from '../src/imports/sales-stream.js';
import { SALES_SHAPES, generateSalesCsv, isSalesShape } from './sales-generator.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    // A shop's export, the files the import is tuned for.
    shape: { type: 'string', default: 'chronological' },
    delimiter: { type: 'string', default: 'comma' },
    'decimal-comma': { type: 'boolean', default: false },
  },
});
const DELIMITERS = { comma: ',', semicolon: ';', tab: '\t' } as const;
if (!(values.delimiter in DELIMITERS)) throw new Error('--delimiter must be comma, semicolon or tab');
const sep = DELIMITERS[values.delimiter as keyof typeof DELIMITERS];
const decimalComma = values['decimal-comma'];
if (decimalComma && sep === ',') throw new Error('--decimal-comma needs --delimiter semicolon or tab');
const amountOf = decimalComma ? parseDecimalCommaCents : parseAmountCents;
const rows = Number(values.rows);
const runs = Math.max(1, Number(values.runs));
const shape = values.shape;
if (!isSalesShape(shape)) throw new Error(`--shape must be one of ${SALES_SHAPES.join(', ')}`);
const CHUNK = 1 << 16;

interface Figure {
  best: number;
  median: number;
}

async function timed(label: string, expected: number, run: () => Promise<number>): Promise<Figure> {
  const warmUp = performance.now();
  if ((await run()) !== expected) throw new Error(`${label}: did not read all ${expected} rows`);
  const first = expected / ((performance.now() - warmUp) / 1000);
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const n = await run();
    rates.push(n / ((performance.now() - started) / 1000));
  }
  rates.sort((a, b) => b - a);
  const figure = { best: rates[0]!, median: rates[Math.floor(rates.length / 2)]! };
  const show = (rate: number) => Math.round(rate).toLocaleString('en').padStart(11);
  console.log(
    `${label.padEnd(44)} ${show(figure.best)} rows/s   (median ${show(figure.median).trim()}, first run ${show(first).trim()})`,
  );
  return figure;
}

/** The ceiling: lines and fields found with indexOf, validated in place; quotes are not handled. */
async function handSplitter(file: string): Promise<number> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let rest = '';
  let valid = 0;
  let header = true;
  for await (const chunk of createReadStream(file, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>) {
    const text = rest + decoder.decode(chunk, { stream: true });
    let pos = 0;
    for (let lf = text.indexOf('\n'); lf !== -1; pos = lf + 1, lf = text.indexOf('\n', pos)) {
      if (header) {
        header = false;
        continue;
      }
      const a = text.indexOf(sep, pos);
      const b = text.indexOf(sep, a + 1);
      const c = text.indexOf(sep, b + 1);
      if (a === -1 || c === -1 || c > lf) continue;
      const ok =
        checkDate(text.slice(pos, a)) === null &&
        b - a > 1 &&
        b - a <= 65 &&
        c - b > 1 &&
        c - b <= 65 &&
        typeof amountOf(text, c + 1, text.charCodeAt(lf - 1) === 13 ? lf - 1 : lf) === 'number';
      if (ok) {
        text.slice(a + 1, b);
        text.slice(b + 1, c);
        valid++;
      }
    }
    rest = text.slice(pos);
  }
  return valid;
}

const dir = mkdtempSync(path.join(tmpdir(), 'zinc-bench-csv-'));
const file = path.join(dir, 'sales.csv');
try {
  console.log(
    `machine: ${cpus().length} cores × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, node ${process.version}`,
  );
  await generateSalesCsv(file, { rows, shape, delimiter: sep, decimalComma });
  const mib = statSync(file).size / 2 ** 20;
  console.log(
    `file: ${rows.toLocaleString('en')} rows, ${mib.toFixed(1)} MiB, ${shape} shape, ${values.delimiter}-separated` +
      `${decimalComma ? ', decimal commas' : ''}; best of ${runs} runs after a warm-up`,
  );

  const reader = await timed('general reader alone (readCsv)', rows, async () => {
    let n = 0;
    for await (const records of readCsv(createReadStream(file, { highWaterMark: CHUNK }), undefined, sep)) n += records.length;
    return n - 1;
  });
  const general = await timed('general reader + validateRecord', rows, async () => {
    let n = 0;
    let layout: HeaderLayout | undefined;
    for await (const records of readCsv(createReadStream(file, { highWaterMark: CHUNK }), undefined, sep)) {
      for (const record of records) {
        if (!layout) layout = readHeader(record, { delimiter: sep });
        else if (!Array.isArray(validateRecord(record, layout))) n++;
      }
    }
    return n;
  });
  const stream = await timed('streamRows (read + validate + SHA-256)', rows, async () => {
    let n = 0;
    let errors = 0;
    await streamRows(file, {
      onHeader: () => {},
      onErrors: (e) => (errors += e.length),
      onRows: async (batch) => {
        n += batch.length;
        // A store taking the batch: the reader waits for it, and other work gets a turn.
        await new Promise<void>((resolve) => setImmediate(resolve));
      },
    });
    if (errors > 0) throw new Error(`streamRows found ${errors} row errors in a generated file`);
    return n;
  });
  const baseline = await timed('csv-parse (baseline)', rows, async () => {
    let n = 0;
    for await (const _record of createReadStream(file).pipe(parse({ delimiter: sep }))) n++;
    return n - 1;
  });
  const ceiling = await timed('hand splitter + validation (ceiling)', rows, () => handSplitter(file));

  const ratio = (label: string, a: Figure, b: Figure) =>
    console.log(`${label.padEnd(44)} ${(a.best / b.best).toFixed(2).padStart(6)}×`);
  ratio('general reader / csv-parse', reader, baseline);
  ratio('general reader + validation / csv-parse', general, baseline);
  ratio('streamRows / csv-parse', stream, baseline);
  ratio('streamRows / general reader + validation', stream, general);
  ratio('streamRows / ceiling', stream, ceiling);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
