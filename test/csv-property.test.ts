import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CsvFormatError, CsvParser, readCsv, type CsvRecord } from '../src/imports/csv-reader.js';
import { splitAt } from './support/chunks.js';

/**
 * Property-based twin of the seeded comparison in csv-reader.test.ts: fast-check writes random
 * RFC 4180 documents (and shrinks any failure to a minimal one), csv-parse is the oracle.
 */

// The reader's one documented difference from csv-parse: a line whose only field is blank or
// white space (quoted or not) is skipped. The generator leaves such records out.
const CSV_PARSE_OPTIONS = { relax_column_count: true, skip_empty_lines: true } as const;

const PIECES = [',', '"', '""', '\n', '\r\n', '\r', 'a', 'Z', '7', ' ', '\t', 'é', '€', '😀', '\u200f', 'שׁ', '.', ';', "'"];

const field = fc.oneof(
  fc.array(fc.constantFrom(...PIECES), { maxLength: 8 }).map((p) => p.join('')),
  fc.string({ unit: 'grapheme', maxLength: 6 }).filter((s) => !s.includes('\u0000')),
);

const record = fc
  .array(field, { minLength: 1, maxLength: 6 })
  .filter((fields) => !(fields.length === 1 && fields[0]!.trim() === ''));

interface Document {
  text: string;
  records: string[][];
  lines: number[];
}

const document: fc.Arbitrary<Document> = fc
  .record({
    records: fc.array(fc.record({ fields: record, quoteAll: fc.boolean(), blankBefore: fc.boolean() }), { minLength: 1, maxLength: 10 }),
    eol: fc.constantFrom('\n', '\r\n'),
    finalEol: fc.boolean(),
  })
  .map(({ records, eol, finalEol }) => {
    let text = '';
    const lines: number[] = [];
    records.forEach(({ fields, quoteAll, blankBefore }, r) => {
      if (r > 0) text += eol;
      if (r > 0 && blankBefore) text += eol;
      lines.push(text.split('\n').length);
      // A field must be quoted when it holds a comma, a quote, or a line break (a lone CR included).
      text += fields.map((f) => (quoteAll || /[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
    });
    if (finalEol) text += eol;
    return { text, records: records.map((r) => r.fields), lines };
  });

function parseChunks(chunks: readonly string[]): CsvRecord[] {
  const parser = new CsvParser();
  const out: CsvRecord[] = [];
  for (const chunk of chunks) out.push(...parser.push(chunk));
  out.push(...parser.end());
  return out;
}

async function readBytes(chunks: Uint8Array[]): Promise<CsvRecord[]> {
  async function* source() {
    for (const c of chunks) yield c;
  }
  const out: CsvRecord[] = [];
  for await (const batch of readCsv(source())) out.push(...batch);
  return out;
}

describe('CsvParser against csv-parse, property-based', () => {
  it('parses every generated RFC 4180 document into the fields csv-parse finds, on the lines they start', () => {
    fc.assert(
      fc.property(document, ({ text, records, lines }) => {
        const oracle = parse(text, CSV_PARSE_OPTIONS) as string[][];
        expect(oracle).toEqual(records); // the oracle agrees with the generator first
        const got = parseChunks([text]);
        expect(got.map((r) => r.fields)).toEqual(oracle);
        expect(got.map((r) => r.line)).toEqual(lines);
      }),
      { numRuns: 400 },
    );
  });

  it('gives the same records whatever the text is cut into', () => {
    fc.assert(
      fc.property(document, fc.array(fc.nat(), { maxLength: 12 }), ({ text }, cuts) => {
        expect(parseChunks(splitAt(text, cuts))).toEqual(parseChunks([text]));
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same records from UTF-8 bytes cut anywhere, even inside a character', async () => {
    await fc.assert(
      fc.asyncProperty(document, fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), async ({ text }, cuts, bom) => {
        const bytes = new Uint8Array(Buffer.from((bom ? '\ufeff' : '') + text, 'utf8'));
        expect(await readBytes(splitAt(bytes, cuts))).toEqual(parseChunks([text]));
      }),
      { numRuns: 200 },
    );
  });

  it('either parses or throws CsvFormatError on arbitrary text, never anything else', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...PIECES, 'x', '"a"b'), maxLength: 60 }), (text) => {
        try {
          const records = parseChunks([text]);
          // What parses is what csv-parse parses, unless csv-parse is stricter or reads a lone CR as a line break.
          if (!text.includes('\r')) {
            let oracle: string[][] | undefined;
            try {
              oracle = parse(text, CSV_PARSE_OPTIONS) as string[][];
            } catch {
              oracle = undefined;
            }
            if (oracle) {
              const comparable = oracle.filter((r) => !(r.length === 1 && r[0]!.trim() === ''));
              expect(records.map((r) => r.fields)).toEqual(comparable);
            }
          }
        } catch (error) {
          expect(error).toBeInstanceOf(CsvFormatError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
