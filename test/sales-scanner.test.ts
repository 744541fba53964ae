import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CsvFormatError, CsvParser, CsvTextDecoder, MAX_RECORD_CHARS } from '../src/imports/csv-reader.js';
import { SalesScanner } from '../src/imports/sales-scanner.js';
import { readHeader, validateRecord, type HeaderLayout, type RowError, type SaleRow } from '../src/imports/sales-row.js';
import { splitAt } from './support/chunks.js';

/**
 * The scanner validates plain records where they lie in the text and hands everything else to the
 * general parser. Its oracle is that general path: CsvParser over the whole text, then readHeader
 * and validateRecord. Whatever the text and however it is cut, both must give the same rows, the
 * same row errors and the same file-level failure.
 */

interface Outcome {
  layout: HeaderLayout | undefined;
  rows: SaleRow[];
  errors: RowError[];
  rowsRead: number;
  /** The CsvFormatError's message when the file fails as a whole. */
  failure?: string;
}

/** The general path over the same chunks (only when an overlong record is noticed depends on them). */
function reference(chunks: string | readonly string[]): Outcome {
  const out: Outcome = { layout: undefined, rows: [], errors: [], rowsRead: 0 };
  try {
    const parser = new CsvParser();
    const records = (typeof chunks === 'string' ? [chunks] : chunks).flatMap((chunk) => parser.push(chunk));
    for (const record of [...records, ...parser.end()]) {
      if (!out.layout) {
        out.layout = readHeader(record);
        continue;
      }
      out.rowsRead++;
      const result = validateRecord(record, out.layout);
      if (Array.isArray(result)) out.errors.push(...result);
      else out.rows.push(result);
    }
  } catch (error) {
    if (!(error instanceof CsvFormatError)) throw error;
    return { layout: undefined, rows: [], errors: [], rowsRead: 0, failure: error.message };
  }
  return out;
}

/** How many rows of `text` the scanner took by its plain path. */
function plainRows(text: string): number {
  const scanner = new SalesScanner({ onHeader: () => {}, onErrors: () => {} });
  scanner.push(text, []);
  scanner.end([]);
  return scanner.plainRowsRead;
}

function scanText(chunks: readonly string[]): Outcome {
  const rows: SaleRow[] = [];
  const errors: RowError[] = [];
  const scanner = new SalesScanner({ onHeader: () => {}, onErrors: (e) => errors.push(...e) });
  try {
    for (const chunk of chunks) scanner.push(chunk, rows);
    scanner.end(rows);
  } catch (error) {
    if (!(error instanceof CsvFormatError)) throw error;
    return { layout: undefined, rows: [], errors: [], rowsRead: 0, failure: error.message };
  }
  return { layout: scanner.header, rows, errors, rowsRead: scanner.rowsRead };
}

/** As streamRows reads: bytes decoded chunk by chunk, then scanned. */
function scanBytes(chunks: readonly Uint8Array[]): Outcome {
  const decoder = new CsvTextDecoder();
  const texts: string[] = [];
  try {
    for (const chunk of chunks) texts.push(decoder.decode(chunk));
    decoder.end();
  } catch (error) {
    if (!(error instanceof CsvFormatError)) throw error;
    return { layout: undefined, rows: [], errors: [], rowsRead: 0, failure: error.message };
  }
  return scanText(texts);
}

// ---------------------------------------------------------------------------------------------
// Generated sales files: mostly plain rows, and every kind of record that must leave the plain path
// ---------------------------------------------------------------------------------------------

const ASTRAL = '😀';

const date = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 3 * 366 }).map((d) => new Date(Date.UTC(2022, 0, 1 + d)).toISOString().slice(0, 10)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '2024-02-30',
      '2023-02-29',
      '2024-02-29',
      '2024-1-01',
      '2024-13-01',
      '0999-12-31',
      '',
      ' 2024-01-05',
      '2024-01-05 ',
      '\t2024-01-05\r',
      '2024/01/05',
      '２０２４-01-01',
      '20240105xx',
      'yesterday',
    ),
  },
);

const id = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 99_999 }).map((n) => `ORD-${n}`) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'x'.repeat(64),
      'x'.repeat(65),
      ASTRAL.repeat(64),
      ASTRAL.repeat(65),
      `${ASTRAL.repeat(63)}xy`,
      `${'é'.repeat(64)}`,
      '',
      '   ',
      ' A',
      'A ',
      '\u00a0A',
      'A\u3000',
      '\ufeffA',
      'A\u2028',
      'A\u0085',
      'a\rb',
      'a\r',
      'ab"c',
      '"q"',
      'a,b',
      'two\nlines',
      'עברית\u200f',
      'ß\u0301',
      'ORD-1',
      'ord-1',
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 10 }).map((s) => s.replaceAll('\u0000', '')) },
);

const amount = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.integer({ min: -99_999_999, max: 99_999_999 }).map((c) => {
      const abs = Math.abs(c);
      return `${c < 0 ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
    }),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '12',
      '12.5',
      '-0',
      '-0.00',
      '007.10',
      '999999999999.99',
      '1000000000000',
      '0000000000000012.34',
      '1,000.00',
      '1.005',
      '12.',
      '.5',
      '+5',
      '1e3',
      '-',
      '--5',
      'abc',
      '',
      ' 12',
      '12 ',
      '١٢',
    ),
  },
);

const note = fc.oneof(fc.constant(''), fc.string({ maxLength: 6 }), fc.constantFrom('a"b', 'x\ry', 'multi\nline', 'c,d'));

const field = (value: fc.Arbitrary<string>) =>
  fc.record({ value, quote: fc.constantFrom<'if-needed' | 'always' | 'never'>('if-needed', 'if-needed', 'if-needed', 'always', 'never') });

/** A field as a CSV writer would put it, or (`never`) raw, which may not even be valid CSV. */
function written({ value, quote }: { value: string; quote: 'if-needed' | 'always' | 'never' }): string {
  const needs = /[",\r\n]/.test(value);
  if (quote === 'always' || (quote === 'if-needed' && needs)) return `"${value.replaceAll('"', '""')}"`;
  return value;
}

const row = fc.record({
  date: field(date),
  orderId: field(id),
  productId: field(id),
  amount: field(amount),
  note: field(note),
  // Now and then a record of the wrong width.
  width: fc.constantFrom(0, 0, 0, 0, 0, 0, -1, 1),
  blankBefore: fc.constantFrom('', '', '', '', '\n', '  \n', '\r\n', '""\n'),
  eol: fc.constantFrom('\n', '\n', '\r\n'),
});

const COLUMNS = ['date', 'order_id', 'product_id', 'amount_sgd'] as const;

const salesDocument = fc
  .record({
    order: fc.shuffledSubarray([0, 1, 2, 3], { minLength: 4, maxLength: 4 }),
    note: fc.boolean(),
    headerCase: fc.constantFrom('lower', 'upper', 'spaced'),
    rows: fc.array(row, { maxLength: 25 }),
    finalEol: fc.boolean(),
  })
  .map(({ order, note: withNote, headerCase, rows, finalEol }) => {
    const names = order.map((i) => COLUMNS[i]!) as string[];
    if (withNote) names.splice(1, 0, 'note');
    const header = names
      .map((n) => (headerCase === 'upper' ? n.toUpperCase() : headerCase === 'spaced' ? ` ${n} ` : n))
      .join(',');
    let text = `${header}\n`;
    rows.forEach((r, i) => {
      const byName: Record<string, string> = {
        date: written(r.date),
        order_id: written(r.orderId),
        product_id: written(r.productId),
        amount_sgd: written(r.amount),
        note: written(r.note),
      };
      const fields = names.map((n) => byName[n]!);
      if (r.width < 0) fields.pop();
      if (r.width > 0) fields.push('extra');
      text += r.blankBefore + fields.join(',');
      if (i < rows.length - 1 || finalEol) text += r.eol;
    });
    return text;
  });

describe('SalesScanner against the general path (CsvParser + validateRecord)', () => {
  it('gives the same rows, row errors and failures on generated sales files cut anywhere', () => {
    fc.assert(
      fc.property(salesDocument, fc.array(fc.nat(), { maxLength: 8 }), (text, cuts) => {
        const expected = reference(text);
        expect(scanText([text])).toEqual(expected);
        expect(scanText(splitAt(text, cuts))).toEqual(expected);
        expect(reference(splitAt(text, cuts))).toEqual(expected);
      }),
      { numRuns: 600 },
    );
  });

  it('gives the same outcome from UTF-8 bytes cut anywhere, with or without a BOM', () => {
    fc.assert(
      fc.property(salesDocument, fc.array(fc.nat(), { maxLength: 8 }), fc.boolean(), (text, cuts, bom) => {
        const bytes = new Uint8Array(Buffer.from((bom ? '\ufeff' : '') + text, 'utf8'));
        expect(scanBytes(splitAt(bytes, cuts))).toEqual(reference(text));
      }),
      { numRuns: 300 },
    );
  });

  it('takes the plain path for plain rows, LF or CRLF (so the comparison means something)', () => {
    const text = 'date,order_id,product_id,amount_sgd\n2024-01-01,A,P,1.00\n2024-01-01,B,P,-2\n';
    const outcome = scanText([text]);
    expect(outcome.rows).toEqual([
      { line: 2, date: '2024-01-01', orderId: 'A', productId: 'P', amountCents: 100 },
      { line: 3, date: '2024-01-01', orderId: 'B', productId: 'P', amountCents: -200 },
    ]);
    expect(plainRows(text)).toBe(2);
    expect(plainRows(text.replaceAll('\n', '\r\n'))).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------
// The edge cases one by one
// ---------------------------------------------------------------------------------------------

const HEADER = 'date,order_id,product_id,amount_sgd\n';

/** A file with every kind of record the scanner tells apart. */
const QUIRKS =
  HEADER +
  '2024-01-01,ORD-1,SKU-1,12.50\n' + // plain
  '2024-01-01,ORD-1,SKU-2,-3\r\n' + // CRLF
  '\n' + // blank line
  '  \r\n' + // white-space line
  '2024-01-02,"ORD-2","SKU, with comma",7.00\n' + // quoted
  '2024-01-02,"multi\nline\r\norder",SKU-3,1\n' + // line breaks inside quotes
  '2024-01-03,ORD-3,SKU-4,1.005\n' + // bad amount
  '2024-02-30,ORD-4,SKU-5,1\n' + // not a calendar date
  '2024-02-30,ORD-5,SKU-5,1\n' + // the same bad date again (its verdict reused)
  ` 2024-01-04 , ORD-6 ,${'\u00a0'}SKU-6${'\u3000'}, 4.5 \n` + // fields to trim
  `2024-01-04,${ASTRAL.repeat(64)},SKU-7,1\n` + // 64 astral characters: 128 UTF-16 units, valid
  `2024-01-04,${ASTRAL.repeat(65)},SKU-7,1\n` + // 65: too long
  `2024-01-04,${'x'.repeat(64)},SKU-8,1\n` + // 64 ASCII: valid
  '2024-01-04,ORD-7,SKU-9\n' + // too few fields
  '2024-01-04,ORD-8,SKU-9,1,2\n' + // too many
  '2024-01-04,ab"c,SKU-10,1\n' + // a quote inside an unquoted field is a plain character
  '2024-01-05,ORD-9,SKU-11,99'; // the last line has no line ending

describe('SalesScanner edge cases', () => {
  it('reads the quirks file as the general path does, with the right physical lines', () => {
    const outcome = scanText([QUIRKS]);
    expect(outcome).toEqual(reference(QUIRKS));
    expect(outcome.rows.map((r) => [r.line, r.orderId])).toEqual([
      [2, 'ORD-1'],
      [3, 'ORD-1'],
      [6, 'ORD-2'],
      [7, 'multi\nline\r\norder'],
      [13, 'ORD-6'],
      [14, ASTRAL.repeat(64)],
      [16, 'x'.repeat(64)],
      [19, 'ab"c'],
      [20, 'ORD-9'],
    ]);
    expect(outcome.rows.find((r) => r.line === 13)).toEqual({
      line: 13,
      date: '2024-01-04',
      orderId: 'ORD-6',
      productId: 'SKU-6',
      amountCents: 450,
    });
    expect(outcome.errors).toEqual([
      { line: 10, column: 'amount_sgd', message: '"1.005" has more than 2 fraction digits' },
      { line: 11, column: 'date', message: '"2024-02-30" is not a real calendar date' },
      { line: 12, column: 'date', message: '"2024-02-30" is not a real calendar date' },
      { line: 15, column: 'order_id', message: 'order_id is longer than 64 characters' },
      { line: 17, column: null, message: 'expected 4 fields as in the header, found 3' },
      { line: 18, column: null, message: 'expected 4 fields as in the header, found 5' },
    ]);
    expect(outcome.rowsRead).toBe(15);
    // Plain: lines 2, 3 (CRLF) and 16 (64 ASCII characters). The 64 astral characters are 128
    // UTF-16 units, counted the general way; line 19 has a quote; line 20 no line ending.
    expect(plainRows(QUIRKS)).toBe(3);
  });

  it('gives the same outcome whatever position of whatever record a chunk boundary falls on', () => {
    const expected = reference(QUIRKS);
    for (let at = 0; at <= QUIRKS.length; at++) {
      expect(scanText([QUIRKS.slice(0, at), QUIRKS.slice(at)]), `cut at ${at}`).toEqual(expected);
    }
  });

  it('gives the same outcome for every pair of cuts in a CRLF file', () => {
    const text = `${HEADER}2024-01-01,A,P,1\n2024-01-02,"B\r\nC",P,2\n2024-01-03,D,P,3\n`.replaceAll(/\r?\n/g, '\r\n');
    const expected = reference(text);
    expect(expected.rows.map((r) => r.line)).toEqual([2, 3, 5]);
    for (let a = 0; a <= text.length; a++) {
      for (let b = a; b <= text.length; b++) {
        expect(scanText([text.slice(0, a), text.slice(a, b), text.slice(b)])).toEqual(expected);
      }
    }
  });

  it('gives the same outcome one character at a time and one byte at a time', () => {
    const expected = reference(QUIRKS);
    expect(scanText([...QUIRKS])).toEqual(expected);
    const bytes = Buffer.from(`\ufeff${QUIRKS}`, 'utf8');
    expect(scanBytes(Array.from(bytes, (b) => Uint8Array.of(b)))).toEqual(expected);
  });

  it('when the file starts with a BOM, then the header is still recognised', () => {
    const outcome = scanBytes([Buffer.from(`\ufeff${HEADER}2024-01-01,A,P,1\n`, 'utf8')]);
    expect(outcome.layout?.index).toEqual({ date: 0, order_id: 1, product_id: 2, amount_sgd: 3 });
    expect(outcome.rows).toHaveLength(1);
  });

  it('when the columns come in another order with an extra one, then the plain path follows the header', () => {
    const text = 'note,Amount_SGD, product_id ,DATE,order_id\nhello,-0.5,P,2024-03-01,O\n,7,Q,2024-03-01,O\n';
    const outcome = scanText([text]);
    expect(outcome).toEqual(reference(text));
    expect(outcome.rows).toEqual([
      { line: 2, date: '2024-03-01', orderId: 'O', productId: 'P', amountCents: -50 },
      { line: 3, date: '2024-03-01', orderId: 'O', productId: 'Q', amountCents: 700 },
    ]);
    expect(plainRows(text)).toBe(2);
  });

  it('when a quote is never closed, then it fails naming the line the record starts on', () => {
    const text = `${HEADER}2024-01-01,A,P,1\n2024-01-01,"B,P,1\n2024-01-01,C,P,1\n`;
    expect(scanText([text]).failure).toBe('line 3: quoted field is never closed (missing ")');
    expect(scanText(splitAt(text, [40, 50, 60]))).toEqual(reference(text));
  });

  it('when an unquoted record is longer than MAX_RECORD_CHARS, then it fails as the general reader does', () => {
    const long = `${HEADER}2024-01-01,${'A'.repeat(MAX_RECORD_CHARS)},P,1\n2024-01-01,B,P,1\n`;
    expect(scanText([long]).failure).toBe(`line 2: record is longer than ${MAX_RECORD_CHARS} characters`);
    // In 64 KiB chunks the record is complete in the chunk that first takes it past the limit.
    const chunks = splitAt(long, Array.from({ length: 20 }, (_, i) => (i + 1) * 65_536));
    expect(scanText(chunks)).toEqual(reference(chunks));
    // Twice as long: the limit is passed while the record is still open, and the message says why that may be.
    const longer = `${HEADER}2024-01-01,${'A'.repeat(2 * MAX_RECORD_CHARS)},P,1\n`;
    const pieces = splitAt(longer, Array.from({ length: 40 }, (_, i) => (i + 1) * 65_536));
    expect(scanText(pieces).failure).toBe(`line 2: record is longer than ${MAX_RECORD_CHARS} characters (an unclosed quote?)`);
    expect(scanText(pieces)).toEqual(reference(pieces));
  });

  it('when a record is exactly MAX_RECORD_CHARS long, then it is read (and its id is too long)', () => {
    const id = 'A'.repeat(MAX_RECORD_CHARS - '2024-01-01,,P,1\n'.length);
    const outcome = scanText([`${HEADER}2024-01-01,${id},P,1\n`]);
    expect(outcome.failure).toBeUndefined();
    expect(outcome.errors).toEqual([{ line: 2, column: 'order_id', message: 'order_id is longer than 64 characters' }]);
  });

  it('when there is no header, then nothing is read and no layout is given', () => {
    expect(scanText(['', '\n', '  \r\n'])).toEqual({ layout: undefined, rows: [], errors: [], rowsRead: 0 });
  });
});
