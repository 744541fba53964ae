import { rmSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_RECORD_CHARS } from '../src/imports/csv-reader.js';
import { formatCents } from '../src/money.js';
import { dialectModule } from '../src/db/dialects/index.js';
import { DIALECTS } from './support/databases.js';
import { useHarness } from './support/harness.js';
import type { DialectName } from '../src/db/database.js';

/** Money through a database's columns, as its dialect converts it. */
const centsFromDb = (kind: DialectName, value: string | number | bigint | null) => dialectModule(kind).centsFromDb(value);


/**
 * Hostile files through the real import API (the folder run and the upload): whatever the bytes,
 * each file ends `failed` with a message or with exactly its valid rows; never a 5xx, never a
 * hang, never some of a failed file's rows.
 */

const HOSTILE_IDS = [
  "'; DROP TABLE sales; --",
  "=cmd|'/c calc'!A0",
  '+SUM(1+1)',
  '@import',
  '😀👩‍👩‍👧',
  '\u200fעברית\u200f',
  '\u202eevil',
  'a\tb',
  'back\\slash',
  '"quoted"',
  'a,b',
  'line\nbreak',
  'cr\rinside',
  '\\N',
  'NULL',
  '%s%n',
  '${jndi:x}',
  '<script>',
];

interface GoodRow {
  date: string;
  order: string;
  product: string;
  cents: number;
}

type Corruption = 'none' | 'nul' | 'invalid-utf8' | 'truncated-utf8' | 'utf16le' | 'utf16be' | 'unclosed-quote' | 'after-quote' | 'random-bytes' | 'no-header';

/** Code points, as the validator counts id length. */
const codePoints = (s: string) => [...s].length;

const suffix = fc.oneof(fc.constantFrom(...HOSTILE_IDS), fc.string({ unit: 'grapheme', maxLength: 8 })).map((s) => [...s.replaceAll('\u0000', '')].slice(0, 30).join(''));

const goodRow = fc.record({
  date: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2030-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)),
  orderSuffix: suffix,
  product: suffix,
  cents: fc.integer({ min: -99_999_999_99, max: 99_999_999_99 }),
});

const BAD_ROWS = [
  ['2024-02-30', 'B-1', 'P', '1.00'],
  ['2024-1-01', 'B-2', 'P', '1.00'],
  ['2024-01-01', '', 'P', '1.00'],
  ['2024-01-01', 'B-3', '   ', '1.00'],
  ['2024-01-01', 'B-4', 'P', '1,000.00'],
  ['2024-01-01', 'B-5', 'P', 'abc'],
  ['2024-01-01', 'B-6', 'P', '1.005'],
  ['2024-01-01', 'x'.repeat(65), 'P', '1.00'],
  ['2024-01-01', 'B-7', 'P'],
  ['2024-01-01', 'B-8', 'P', '1.00', 'extra'],
];

const quote = (f: string) => (/[",\r\n]/.test(f) || f.trim() !== f ? `"${f.replace(/"/g, '""')}"` : f);

const hostileFile = fc.record({
  rows: fc.array(fc.oneof({ weight: 12, arbitrary: goodRow.map((r) => ({ good: r })) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_ROWS).map((r) => ({ bad: r })) }), { maxLength: 25 }),
  corruption: fc.oneof(
    { weight: 5, arbitrary: fc.constant<Corruption>('none') },
    { weight: 4, arbitrary: fc.constantFrom<Corruption>('nul', 'invalid-utf8', 'truncated-utf8', 'utf16le', 'utf16be', 'unclosed-quote', 'after-quote', 'random-bytes', 'no-header') },
  ),
  at: fc.nat(),
  randomBytes: fc.uint8Array({ minLength: 1, maxLength: 300 }),
  eol: fc.constantFrom('\n', '\r\n'),
  bom: fc.boolean(),
  onError: fc.constantFrom<'fail' | 'skip'>('fail', 'skip'),
  via: fc.constantFrom<'folder' | 'upload'>('folder', 'upload'),
});

let run = 0;

/** ZINC_FUZZ_SCALE=20 runs twenty times as many files, for a deeper search on a developer machine. */
const FUZZ_SCALE = Number(process.env.ZINC_FUZZ_SCALE ?? 1);

interface Built {
  bytes: Buffer;
  good: GoodRow[];
  badRows: number;
  corrupt: boolean;
}

type HostileSpec = typeof hostileFile extends fc.Arbitrary<infer T> ? T : never;

function build(spec: HostileSpec, prefix: string): Built {
  const good: GoodRow[] = [];
  let badRows = 0;
  const lines = ['date,order_id,product_id,amount_sgd'];
  spec.rows.forEach((row, i) => {
    if ('good' in row) {
      const r = row.good;
      const order = `${prefix}-${i}-${r.orderSuffix}x`;
      const product = `p${r.product}x`;
      if (codePoints(order) > 64 || codePoints(product) > 64) return;
      good.push({ date: r.date, order, product, cents: r.cents });
      lines.push([r.date, order, product, formatCents(r.cents)].map(quote).join(','));
    } else {
      badRows++;
      lines.push(row.bad.map(quote).join(','));
    }
  });
  if (spec.corruption === 'no-header') lines.shift();
  if (spec.corruption === 'unclosed-quote') lines.push('2024-01-01,"never closed,P,1.00');
  if (spec.corruption === 'after-quote') lines.push('2024-01-01,"A"B,P,1.00');
  const text = (spec.bom ? '\ufeff' : '') + lines.join(spec.eol) + spec.eol;
  let bytes = Buffer.from(text, 'utf8');
  const at = spec.at % (bytes.length + 1);
  const insert = (extra: number[]) => Buffer.concat([bytes.subarray(0, at), Buffer.from(extra), bytes.subarray(at)]);
  switch (spec.corruption) {
    case 'nul':
      bytes = insert([0]);
      break;
    case 'invalid-utf8':
      bytes = insert([0xff]);
      break;
    case 'truncated-utf8':
      bytes = Buffer.concat([bytes, Buffer.from([0xe2, 0x82])]);
      break;
    case 'utf16le':
      bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text.replace(/^\ufeff/, ''), 'utf16le')]);
      break;
    case 'utf16be':
      bytes = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text.replace(/^\ufeff/, ''), 'utf16le').swap16()]);
      break;
    case 'random-bytes':
      bytes = Buffer.from(spec.randomBytes);
      break;
  }
  return { bytes, good, badRows, corrupt: spec.corruption !== 'none' };
}

interface Outcome {
  id: number;
  status: string;
  num_rows: number;
  error_message: string | null;
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]);
}

describe.each(DIALECTS)('hostile CSV files through the import API (%s)', (kind) => {
  const h = useHarness(kind, { maxUploadBytes: 32 * 1024 * 1024 });

  async function importBytes(bytes: Buffer, via: 'folder' | 'upload', onError: 'fail' | 'skip', name: string) {
    if (via === 'folder') {
      const file = h.writeCsv(name, bytes);
      try {
        const res = await withDeadline(h.app.inject({ method: 'POST', url: `/api/import-sales?on_error=${onError}` }), 20_000, 'import-sales');
        return res;
      } finally {
        rmSync(file, { force: true });
      }
    }
    return withDeadline(
      h.app.inject({ method: 'POST', url: `/api/imports?on_error=${onError}&filename=${name}`, payload: bytes, headers: { 'content-type': 'text/csv' } }),
      20_000,
      'upload',
    );
  }

  async function storedRows(id: number): Promise<GoodRow[]> {
    const rows = await h.database.db
      .selectFrom('sales')
      .select(['date', 'order_id', 'product_id', 'amount_sgd'])
      .where('imported_file_id', '=', id)
      .execute();
    return rows.map((r) => ({ date: r.date, order: r.order_id, product: r.product_id, cents: Number(centsFromDb(kind, r.amount_sgd)) }));
  }

  /** No import has some of its rows: every record's stored rows are exactly its num_rows (none when failed). */
  async function expectNoPartialImports() {
    const records = await h.database.db.selectFrom('imported_files').select(['id', 'status', 'num_rows']).execute();
    const counts = await h.database.db
      .selectFrom('sales')
      .select((eb) => ['imported_file_id', eb.fn.countAll<number | string>().as('n')])
      .groupBy('imported_file_id')
      .execute();
    const byId = new Map(counts.map((c) => [Number(c.imported_file_id), Number(c.n)]));
    for (const r of records) {
      expect(r.status, `record ${r.id}`).not.toBe('processing');
      expect(byId.get(Number(r.id)) ?? 0, `rows of record ${r.id} (${r.status})`).toBe(r.status === 'failed' ? 0 : r.num_rows);
    }
  }

  it('every generated file ends failed with a message, or with exactly its valid rows stored byte for byte', async () => {
    await fc.assert(
      fc.asyncProperty(hostileFile, async (spec) => {
        const prefix = `H${kind[0]}${++run}`;
        const built = build(spec, prefix);
        const res = await importBytes(built.bytes, spec.via, spec.onError, `${prefix}.csv`);
        expect(res.statusCode, res.body).toBeLessThan(500);
        if (res.statusCode === 415) {
          // Uploads refuse binary (NUL) content before any import starts.
          expect(spec.via).toBe('upload');
          expect(res.json()).toMatchObject({ error: 'unsupported_media_type', message: expect.stringContaining('binary') });
          return;
        }
        expect(res.statusCode, res.body).toBe(200);
        const outcome = (spec.via === 'folder' ? res.json().files[0] : res.json()) as Outcome;
        if (outcome.status === 'skipped') return; // the very same bytes were imported before (a shrink replay)
        expect(['success', 'partial', 'failed']).toContain(outcome.status);

        const expectedFail = built.corrupt || (built.badRows > 0 && spec.onError === 'fail');
        if (expectedFail) {
          expect(outcome.status, JSON.stringify(outcome)).toBe('failed');
          expect(outcome.error_message).toMatch(/\S/);
          expect(outcome.num_rows).toBe(0);
          if (built.corrupt && spec.corruption !== 'random-bytes') {
            const messages: Record<string, RegExp> = {
              nul: /NUL bytes|not valid UTF-8/,
              'invalid-utf8': /not valid UTF-8/,
              'truncated-utf8': /not valid UTF-8/,
              utf16le: /UTF-16/,
              utf16be: /UTF-16/,
              'unclosed-quote': /never closed/,
              'after-quote': /after a closing quote/,
              'no-header': /missing required column|empty/,
            };
            expect(outcome.error_message).toMatch(messages[spec.corruption]!);
          }
          expect(await storedRows(outcome.id)).toEqual([]);
        } else {
          expect(outcome.status).toBe(built.badRows > 0 ? 'partial' : 'success');
          expect(outcome.num_rows).toBe(built.good.length);
          const key = (r: GoodRow) => `${r.order}\u0001${r.product}`;
          const sort = (rows: GoodRow[]) => [...rows].sort((a, b) => (key(a) < key(b) ? -1 : 1));
          expect(sort(await storedRows(outcome.id))).toEqual(sort(built.good));
        }
      }),
      { numRuns: Math.round((kind === 'sqlite' ? 80 : 40) * FUZZ_SCALE) },
    );
    await expectNoPartialImports();
  }, 120_000 * FUZZ_SCALE);

  it.each(['folder', 'upload'] as const)('when a file is one 10 MB line, then it fails at once with a clear message (%s)', async (via) => {
    const started = Date.now();
    const line = `date,order_id,product_id,amount_sgd\n2024-01-01,${'A'.repeat(10 * 1024 * 1024)},P,1.00\n`;
    const res = await importBytes(Buffer.from(line), via, 'skip', `long-${via}.csv`);
    expect(res.statusCode).toBe(200);
    const outcome = (via === 'folder' ? res.json().files[0] : res.json()) as Outcome;
    expect(outcome).toMatchObject({ status: 'failed', num_rows: 0 });
    expect(outcome.error_message).toBe(`line 2: record is longer than ${MAX_RECORD_CHARS} characters (an unclosed quote?)`);
    expect(Date.now() - started).toBeLessThan(15_000);
    await expectNoPartialImports();
  });

  it('when a quote opens at the top of a 10 MB file and never closes, then the file fails without reading it all into one record', async () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => `2024-01-01,Q-${i},P,1.00`).join('\n');
    const text = `date,order_id,product_id,amount_sgd\n"2024-01-01,Q,P,1.00\n${rows}\n`;
    expect(text.length).toBeGreaterThan(5_000_000);
    const res = await importBytes(Buffer.from(text), 'folder', 'skip', 'quote.csv');
    expect(res.json().files[0]).toMatchObject({ status: 'failed', num_rows: 0, error_message: expect.stringMatching(/^line 2: record is longer than/) });
    await expectNoPartialImports();
  });
});
