/**
 * npm run bench:import:matrix -- [--shapes chronological,random,wide] [--sizes 1000000,5000000]
 *                                [--dbs sqlite,mysql[,postgres]] [--products N] [--mysql-url …] [--postgres-url …]
 *                                [--method …]
 *
 * Runs bench/import.ts for every shape × size × database, one after another (each in a child
 * process, so runs never compete for the CPU or the server), passing its output through, then
 * prints its RESULT lines as a Markdown table with the targets marked met or missed. A run that
 * fails shows as failed and the others go on.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isSalesShape, SALES_SHAPES } from './sales-generator.js';

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: SALES_SHAPES.join(',') },
    sizes: { type: 'string', default: '1000000,5000000' },
    dbs: { type: 'string', default: 'sqlite,mysql' },
    products: { type: 'string' },
    'mysql-url': { type: 'string' },
    'postgres-url': { type: 'string' },
    method: { type: 'string' },
  },
});

/** What the import aims for: near the raw load, replacing at most 3× slower, within 200 MB. */
const TARGETS = { ratio: 1.5, reimportRatio: 3, peakRssMb: 200 };

const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);
const shapes = list(values.shapes!);
const sizes = list(values.sizes!).map(Number);
const dbs = list(values.dbs!);
for (const s of shapes) if (!isSalesShape(s)) throw new Error(`unknown shape ${s} (known: ${SALES_SHAPES.join(', ')})`);
for (const n of sizes) if (!Number.isInteger(n) || n < 1) throw new Error(`--sizes must list positive whole numbers (got ${values.sizes})`);
for (const d of dbs) {
  if (d !== 'sqlite' && d !== 'mysql' && d !== 'postgres') throw new Error(`unknown database ${d} (sqlite, mysql or postgres)`);
}

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'import.js');
const passed = (['products', 'mysql-url', 'postgres-url', 'method'] as const).flatMap((k) => (values[k] === undefined ? [] : [`--${k}`, values[k]!]));

interface Outcome {
  shape: string;
  rows: number;
  db: string;
  result: Record<string, string> | null;
  failure: string | null;
}

let stopping = false;
process.on('SIGINT', () => (stopping = true));

/** Runs one benchmark with its output passed through; resolves to its RESULT fields, if any. */
function runOne(shape: string, rows: number, db: string): Promise<Outcome> {
  const child = spawn(process.execPath, [script, '--shape', shape, '--rows', String(rows), '--db', db, ...passed], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    output += chunk.toString();
  });
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      const line = output.split('\n').find((l) => l.startsWith('RESULT '));
      const result = line ? Object.fromEntries(line.slice('RESULT '.length).split(' ').map((kv) => kv.split('=') as [string, string])) : null;
      const failure = code === 0 && result ? null : `failed (${signal ?? `exit ${code}`})`;
      resolve({ shape, rows, db, result, failure });
    });
  });
}

function mark(value: string | undefined, limit: number, inclusive: boolean, unit: string): string {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n)) return '–';
  const met = inclusive ? n <= limit : n < limit;
  return `${value}${unit} ${met ? 'met' : 'missed'}`;
}

const outcomes: Outcome[] = [];
const started = performance.now();
for (const shape of shapes) {
  for (const rows of sizes) {
    for (const db of dbs) {
      if (stopping) break;
      console.log(`\n=== shape ${shape}, ${rows.toLocaleString('en')} rows, ${db} ===`);
      outcomes.push(await runOne(shape, rows, db));
    }
  }
}

console.log(`\n${outcomes.length} runs in ${((performance.now() - started) / 60_000).toFixed(1)} min${stopping ? ' (interrupted)' : ''}\n`);
console.log(
  `| shape | rows | db | baseline s | Zinc s | import / baseline (≤ ${TARGETS.ratio}×) | re-import s | re-import / import (≤ ${TARGETS.reimportRatio}×) | peak RSS (< ${TARGETS.peakRssMb} MB) |`,
);
console.log('|---|---:|---|---:|---:|---|---:|---|---|');
for (const { shape, rows, db, result: r, failure } of outcomes) {
  const cells = failure
    ? [failure, '', '', '', '', '']
    : [
        r!.baseline_s!,
        r!.zinc_s!,
        mark(r!.ratio, TARGETS.ratio, true, '×'),
        r!.reimport_s!,
        mark(r!.reimport_ratio, TARGETS.reimportRatio, true, '×'),
        mark(r!.peak_rss_mb, TARGETS.peakRssMb, false, ' MB'),
      ];
  console.log(`| ${shape} | ${rows.toLocaleString('en')} | ${db} | ${cells.join(' | ')} |`);
}
if (outcomes.some((o) => o.failure)) process.exitCode = 1;
