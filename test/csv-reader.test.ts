import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { CsvFormatError, CsvParser, MAX_RECORD_CHARS, parseRecord, readCsv, type CsvRecord } from '../src/imports/csv-reader.js';
import { prng } from '../bench/sales-generator.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Parses `text` with a single push followed by end. */
function parseWhole(text: string): CsvRecord[] {
  const parser = new CsvParser();
  return [...parser.push(text), ...parser.end()];
}

/** Parses the text delivered as the given string chunks. */
function parseChunks(chunks: readonly string[]): CsvRecord[] {
  const parser = new CsvParser();
  const out: CsvRecord[] = [];
  for (const chunk of chunks) out.push(...parser.push(chunk));
  out.push(...parser.end());
  return out;
}

/** Splits `text` at the given (sorted, distinct) offsets. */
function splitAt(text: string, offsets: readonly number[]): string[] {
  const parts: string[] = [];
  let from = 0;
  for (const offset of offsets) {
    parts.push(text.slice(from, offset));
    from = offset;
  }
  parts.push(text.slice(from));
  return parts;
}

function fieldsOf(records: readonly CsvRecord[]): string[][] {
  return records.map((r) => r.fields);
}

async function* fromChunks(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

/** Every byte of `bytes` as its own 1-byte Buffer. */
function oneBytePerChunk(bytes: Uint8Array): Buffer[] {
  return Array.from(bytes, (b) => Buffer.from([b]));
}

/** Runs readCsv to completion and returns what it yielded, batch by batch. */
async function readBatches(chunks: readonly Uint8Array[]): Promise<CsvRecord[][]> {
  const batches: CsvRecord[][] = [];
  for await (const batch of readCsv(fromChunks(chunks))) batches.push(batch);
  return batches;
}

async function readAll(chunks: readonly Uint8Array[]): Promise<CsvRecord[]> {
  return (await readBatches(chunks)).flat();
}

/** Resolves to the error readCsv throws (fails the test if it does not throw). */
async function readError(chunks: readonly Uint8Array[]): Promise<CsvFormatError> {
  try {
    await readAll(chunks);
  } catch (error) {
    expect(error).toBeInstanceOf(CsvFormatError);
    return error as CsvFormatError;
  }
  throw new Error('expected readCsv to throw a CsvFormatError');
}

function parseError(text: string): CsvFormatError {
  try {
    parseWhole(text);
  } catch (error) {
    expect(error).toBeInstanceOf(CsvFormatError);
    return error as CsvFormatError;
  }
  throw new Error('expected CsvParser to throw a CsvFormatError');
}

const CSV_PARSE_OPTIONS = { relax_column_count: true, skip_empty_lines: true } as const;

// ---------------------------------------------------------------------------------------------
// CsvParser: the RFC 4180 quirks
// ---------------------------------------------------------------------------------------------

describe('CsvParser', () => {
  it('splits plain records on commas and numbers them by physical line', () => {
    expect(parseWhole('id,amount\n1,12.50\n2,3\n')).toEqual([
      { line: 1, fields: ['id', 'amount'] },
      { line: 2, fields: ['1', '12.50'] },
      { line: 3, fields: ['2', '3'] },
    ]);
  });

  it('when a quoted field contains commas, then they stay inside the field', () => {
    expect(fieldsOf(parseWhole('a,"Smith, John, Jr.",c\n'))).toEqual([['a', 'Smith, John, Jr.', 'c']]);
  });

  it('when a quoted field contains doubled quotes, then each pair becomes one quote', () => {
    expect(fieldsOf(parseWhole('"say ""hi""",""""\n"a""b",x\n'))).toEqual([
      ['say "hi"', '"'],
      ['a"b', 'x'],
    ]);
  });

  it('when a quoted field is empty, then it is an empty string field', () => {
    expect(fieldsOf(parseWhole('"",x,""\n'))).toEqual([['', 'x', '']]);
  });

  it('when a quoted field contains newlines, then they are kept and the next record starts on the right line', () => {
    const text = 'id,note\n1,"first\nsecond\nthird"\n2,plain\n3,"x\ny"\n4,end\n';
    expect(parseWhole(text)).toEqual([
      { line: 1, fields: ['id', 'note'] },
      { line: 2, fields: ['1', 'first\nsecond\nthird'] },
      { line: 5, fields: ['2', 'plain'] },
      { line: 6, fields: ['3', 'x\ny'] },
      { line: 8, fields: ['4', 'end'] },
    ]);
  });

  it('when lines end in CRLF, then the CR is not part of the last field and the result equals LF input', () => {
    const lf = 'a,b\n1,2\n"q",3\n';
    const crlf = lf.replace(/\n/g, '\r\n');
    expect(parseWhole(crlf)).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1', '2'] },
      { line: 3, fields: ['q', '3'] },
    ]);
    expect(parseWhole(crlf)).toEqual(parseWhole(lf));
  });

  it('when a quoted field contains CRLF, then the CRLF is preserved and counts as one line', () => {
    expect(parseWhole('a,"one\r\ntwo"\r\nb,c\r\n')).toEqual([
      { line: 1, fields: ['a', 'one\r\ntwo'] },
      { line: 3, fields: ['b', 'c'] },
    ]);
  });

  it('when the last record has no trailing newline, then end() returns it', () => {
    const parser = new CsvParser();
    expect(parser.push('a,b\nc,d')).toEqual([{ line: 1, fields: ['a', 'b'] }]);
    expect(parser.end()).toEqual([{ line: 2, fields: ['c', 'd'] }]);
  });

  it('when the last record is a quoted field without trailing newline, then end() returns it', () => {
    expect(parseWhole('a\n"b, c"')).toEqual([
      { line: 1, fields: ['a'] },
      { line: 2, fields: ['b, c'] },
    ]);
  });

  it('when there are blank and whitespace-only lines, then they are skipped but still counted', () => {
    const text = '\nid,amount\n\n   \n\t\n1,2\n\n\n3,4\n\n';
    expect(parseWhole(text)).toEqual([
      { line: 2, fields: ['id', 'amount'] },
      { line: 6, fields: ['1', '2'] },
      { line: 9, fields: ['3', '4'] },
    ]);
  });

  it('when blank lines end in CRLF, then they are skipped and still counted', () => {
    expect(parseWhole('\r\na\r\n  \r\n\r\nb\r\n\r\n')).toEqual([
      { line: 2, fields: ['a'] },
      { line: 5, fields: ['b'] },
    ]);
  });

  it('when the document is empty or only blank lines, then there are no records', () => {
    expect(parseWhole('')).toEqual([]);
    expect(parseWhole('\n\n \r\n')).toEqual([]);
  });

  it('when fields are empty, then they come back as empty strings', () => {
    expect(fieldsOf(parseWhole('a,,c\n,,\n,x\n'))).toEqual([
      ['a', '', 'c'],
      ['', '', ''],
      ['', 'x'],
    ]);
  });

  it('when a line ends with a comma, then the last field is empty', () => {
    expect(fieldsOf(parseWhole('a,b,\nc,\r\nd,'))).toEqual([
      ['a', 'b', ''],
      ['c', ''],
      ['d', ''],
    ]);
  });

  it('keeps spaces around unquoted fields as they are', () => {
    expect(fieldsOf(parseWhole(' a , b \n'))).toEqual([[' a ', ' b ']]);
  });

  it('keeps emoji, RTL marks and combining characters exactly', () => {
    const fields = ['😀👍🏽', '\u200fשלום\u200f', 'e\u0301', '€1', '\u202eabc\u202c'];
    const [record] = parseWhole(`${fields.join(',')}\n`);
    expect(record?.fields).toEqual(fields);
    expect(Buffer.from(record!.fields.join(','))).toEqual(Buffer.from(fields.join(',')));
  });

  describe('when the text arrives in pieces', () => {
    const documents: Record<string, string> = {
      'quotes, CRLF, blank lines and unicode':
        'id,name,note\r\n1,"Smith, J","said ""hi"""\r\n\r\n2,"multi\nline",\n  \n3,é😀\u200f,"x\r\ny"\n4,last',
      'a document ending in a quoted field': 'a,"b""c"\n"d",""',
      'a document ending in a CRLF after a quote': '"a"\r\n"b"\r\n',
      'empty fields and doubled quotes at the edges': '"""",,""\n,\n""""""\n',
    };

    for (const [name, text] of Object.entries(documents)) {
      it(`then one character at a time gives the same records as one push (${name})`, () => {
        const whole = parseWhole(text);
        expect(whole.length).toBeGreaterThan(1);
        expect(parseChunks([...text.split('')])).toEqual(whole);
      });

      it(`then every split point gives the same records as one push (${name})`, () => {
        const whole = parseWhole(text);
        for (let a = 0; a <= text.length; a++) {
          expect(parseChunks(splitAt(text, [a])), `split at ${a}`).toEqual(whole);
        }
      });

      it(`then every pair of split points gives the same records as one push (${name})`, () => {
        const whole = parseWhole(text);
        for (let a = 0; a <= text.length; a++) {
          for (let b = a; b <= text.length; b++) {
            expect(parseChunks(splitAt(text, [a, b])), `split at ${a},${b}`).toEqual(whole);
          }
        }
      });
    }

    it('then a record split mid-way is held back until it is complete', () => {
      const parser = new CsvParser();
      expect(parser.push('a,"b\n')).toEqual([]);
      expect(parser.push('c"')).toEqual([]);
      expect(parser.push(',d\nnext')).toEqual([{ line: 1, fields: ['a', 'b\nc', 'd'] }]);
      expect(parser.end()).toEqual([{ line: 3, fields: ['next'] }]);
    });

    it('then a quote at the end of a chunk is not taken as closing before the next chunk is seen', () => {
      const parser = new CsvParser();
      expect(parser.push('"a"')).toEqual([]);
      expect(parser.push('"b"\n')).toEqual([{ line: 1, fields: ['a"b'] }]);
    });
  });

  describe('errors', () => {
    it('when a quoted field is never closed, then end() throws a CsvFormatError naming the line it started on', () => {
      const parser = new CsvParser();
      expect(parser.push('a,b\n\nc,"never closed\nmore\n')).toEqual([{ line: 1, fields: ['a', 'b'] }]);
      let error: unknown;
      try {
        parser.end();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CsvFormatError);
      expect((error as CsvFormatError).line).toBe(3);
      expect((error as CsvFormatError).message).toMatch(/^line 3: .*never closed/);
    });

    it('when a character follows a closing quote, then it throws with the physical line of that character', () => {
      const error = parseError('a\n"b\nc"x,d\n');
      expect(error.line).toBe(3);
      expect(error.message).toContain('after a closing quote');
    });

    it('when a space follows a closing quote, then it throws', () => {
      expect(parseError('"a" ,b\n').line).toBe(1);
    });

    it('when a complete record is longer than MAX_RECORD_CHARS, then it throws', () => {
      const error = parseError(`ok\n${'x'.repeat(MAX_RECORD_CHARS + 10)}\n`);
      expect(error.line).toBe(2);
      expect(error.message).toContain('longer than');
    });

    it('when an unclosed quote swallows more than MAX_RECORD_CHARS, then push throws without waiting for end', () => {
      const parser = new CsvParser();
      expect(parser.push('a\n"open')).toEqual([{ line: 1, fields: ['a'] }]);
      expect(() => parser.push('y'.repeat(MAX_RECORD_CHARS))).toThrow(CsvFormatError);
    });

    it('when a record is well below MAX_RECORD_CHARS, then it is accepted', () => {
      const long = 'z'.repeat(MAX_RECORD_CHARS - 10);
      expect(fieldsOf(parseWhole(`${long}\n`))).toEqual([[long]]);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// readCsv: bytes in, records out
// ---------------------------------------------------------------------------------------------

describe('parseRecord (one record at a position, as the import\'s plain-record path falls back to it)', () => {
  it('returns the fields, where the next record starts and the line breaks the record spans', () => {
    const text = 'skip\na,"b\r\nc",d\r\nnext';
    expect(parseRecord(text, 5, 2, false)).toEqual({ fields: ['a', 'b\r\nc', 'd'], end: 17, newlines: 2 });
    expect(text.slice(17)).toBe('next');
  });

  it('when the text ends before the record does, then it returns null unless the text is final', () => {
    expect(parseRecord('a,b', 0, 1, false)).toBeNull();
    expect(parseRecord('a,"b', 0, 1, false)).toBeNull();
    expect(parseRecord('a,"b"', 0, 1, false)).toBeNull(); // a doubled quote may follow
    expect(parseRecord('a,b', 0, 1, true)).toEqual({ fields: ['a', 'b'], end: 3, newlines: 0 });
    expect(() => parseRecord('a,"b', 0, 7, true)).toThrow('line 7: quoted field is never closed');
  });

  it('reads a blank line as one blank field, which CsvParser then skips', () => {
    expect(parseRecord('  \r\nx', 0, 1, false)).toEqual({ fields: ['  '], end: 4, newlines: 1 });
  });

  it('when told another delimiter (; or tab), then it splits on that one only, and commas are text', () => {
    const SEMICOLON = 59;
    const TAB = 9;
    expect(parseRecord('a,1;"b;c";"d""e"\nnext', 0, 1, false, SEMICOLON)).toEqual({ fields: ['a,1', 'b;c', 'd"e'], end: 17, newlines: 1 });
    expect(parseRecord('a;b\t"c\td"\t\r\n', 0, 1, false, TAB)).toEqual({ fields: ['a;b', 'c\td', ''], end: 12, newlines: 1 });
    // A closing quote must be followed by the delimiter in use (or the line end).
    expect(() => parseRecord('"a",b\n', 0, 3, false, SEMICOLON)).toThrow('line 3: unexpected character "," after a closing quote in field 1');
    const parser = new CsvParser('\t');
    expect([...parser.push('x\t"y\n z"\n\nw\tv'), ...parser.end()]).toEqual([
      { line: 1, fields: ['x', 'y\n z'] },
      { line: 4, fields: ['w', 'v'] },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('readCsv', () => {
  it('when the file starts with a UTF-8 BOM, then the BOM is dropped from the first field', async () => {
    const bytes = Buffer.from('\ufeffid,amount\n1,2\n', 'utf8');
    expect(bytes[0]).toBe(0xef);
    expect(await readAll([bytes])).toEqual([
      { line: 1, fields: ['id', 'amount'] },
      { line: 2, fields: ['1', '2'] },
    ]);
  });

  it('when the BOM arrives one byte at a time, then it is still dropped', async () => {
    const bytes = Buffer.from('\ufeffid,amount\n1,2\n', 'utf8');
    expect(fieldsOf(await readAll(oneBytePerChunk(bytes)))).toEqual([
      ['id', 'amount'],
      ['1', '2'],
    ]);
  });

  it('when a BOM-like character is not at the start, then it is kept', async () => {
    expect(fieldsOf(await readAll([Buffer.from('a\n\ufeffb\n')])).at(1)).toEqual(['\ufeffb']);
  });

  it('when a BOM-like character starts the first chunk that is not all ASCII, then it is kept', async () => {
    expect(fieldsOf(await readAll([Buffer.from('a\n'), Buffer.from('\ufeffb\n')]))).toEqual([['a'], ['\ufeffb']]);
    expect(fieldsOf(await readAll([Buffer.from(''), Buffer.from('\ufeffa\n')]))).toEqual([['a']]);
  });

  it('when ASCII chunks are followed by bytes that are not UTF-8, then the offset names the chunk they are in', async () => {
    const error = await readError([Buffer.from('a,b\n'), Buffer.from('1,2\n'), Buffer.from([0x31, 0xc3, 0x28, 0x0a])]);
    expect(error.message).toBe('the file is not valid UTF-8 (in the bytes after offset 8)');
  });

  it('when the file is UTF-16 little endian with a BOM, then it throws a CsvFormatError saying so', async () => {
    const error = await readError([Buffer.from('\ufeffid,amount\n1,2\n', 'utf16le')]);
    expect(error.message).toContain('UTF-16');
  });

  it('when the file is UTF-16 big endian with a BOM, then it throws a CsvFormatError saying so', async () => {
    const le = Buffer.from('\ufeffid\n', 'utf16le');
    const be = Buffer.from(le).swap16();
    expect([...be.subarray(0, 2)]).toEqual([0xfe, 0xff]);
    const error = await readError([be]);
    expect(error.message).toContain('UTF-16');
  });

  it('when the bytes are not valid UTF-8, then it throws a CsvFormatError', async () => {
    const error = await readError([Buffer.from('id\n'), Buffer.from([0x61, 0xff, 0x62, 0x0a])]);
    expect(error.message).toContain('not valid UTF-8');
  });

  it('when Latin-1 text is given, then it throws rather than guessing', async () => {
    await readError([Buffer.from('name\nJos\xe9\n', 'latin1')]);
  });

  it('when the file ends in the middle of a multi-byte character, then it throws a CsvFormatError', async () => {
    const euro = Buffer.from('€');
    const error = await readError([Buffer.from('a,'), euro.subarray(0, 2)]);
    expect(error.message).toContain('UTF-8');
  });

  it('when the file contains a NUL byte, then it throws a CsvFormatError calling it binary', async () => {
    const error = await readError([Buffer.from('a,b\n1,\u00002\n')]);
    expect(error.message).toContain('NUL');
  });

  it('when a quote is never closed, then it throws a CsvFormatError with the line', async () => {
    const error = await readError([Buffer.from('a,b\n1,"2\n3,4\n')]);
    expect(error.line).toBe(2);
  });

  it('when characters follow a closing quote, then it throws a CsvFormatError', async () => {
    const error = await readError([Buffer.from('a,b\n"1"2,3\n')]);
    expect(error.line).toBe(2);
    expect(error.message).toContain('closing quote');
  });

  it('when a record is longer than MAX_RECORD_CHARS across many chunks, then it throws a CsvFormatError', async () => {
    const chunk = Buffer.from('w'.repeat(64 * 1024));
    const chunks = [Buffer.from('a\n"'), ...Array.from({ length: 20 }, () => chunk)];
    const error = await readError(chunks);
    expect(error.message).toContain('longer than');
  });

  it('when multi-byte characters are split across 1-byte chunks, then every character comes back byte for byte', async () => {
    const text = 'name,city,note\né😀👨‍👩‍👧,\u200fתל אביב\u200f,"€ 5, ½ off"\r\n日本語,e\u0301,"a""😀""b"\n';
    const bytes = Buffer.from(text, 'utf8');
    const records = await readAll(oneBytePerChunk(bytes));
    const expected = [
      ['name', 'city', 'note'],
      ['é😀👨‍👩‍👧', '\u200fתל אביב\u200f', '€ 5, ½ off'],
      ['日本語', 'e\u0301', 'a"😀"b'],
    ];
    expect(fieldsOf(records)).toEqual(expected);
    expect(records.map((r) => r.line)).toEqual([1, 2, 3]);
    for (let i = 0; i < expected.length; i++) {
      for (let j = 0; j < expected[i]!.length; j++) {
        expect(Buffer.from(records[i]!.fields[j]!, 'utf8')).toEqual(Buffer.from(expected[i]![j]!, 'utf8'));
      }
    }
  });

  it('when the bytes arrive in 1-byte chunks, then the records equal reading them whole', async () => {
    const bytes = Buffer.from('\ufeffa,"b\r\nc",😀\n\n  \nd,"""",\u200f\n', 'utf8');
    const whole = await readAll([bytes]);
    expect(whole).toHaveLength(2);
    expect(await readAll(oneBytePerChunk(bytes))).toEqual(whole);
  });

  it('yields the records completed by each chunk as that chunk is read', async () => {
    const batches = await readBatches([Buffer.from('a,1\nb,'), Buffer.from('2\nc'), Buffer.from(',3')]);
    expect(batches).toEqual([
      [{ line: 1, fields: ['a', '1'] }],
      [{ line: 2, fields: ['b', '2'] }],
      [{ line: 3, fields: ['c', '3'] }],
    ]);
  });

  it('passes every raw chunk, in order, to onChunk', async () => {
    const chunks = [Buffer.from('\ufeffa,'), Buffer.from([0xe2, 0x82]), Buffer.from([0xac]), Buffer.from('\n')];
    const seen: Uint8Array[] = [];
    const records: CsvRecord[] = [];
    for await (const batch of readCsv(fromChunks(chunks), (c) => seen.push(c))) records.push(...batch);
    expect(seen).toEqual(chunks);
    expect(records).toEqual([{ line: 1, fields: ['a', '€'] }]);
  });
});

// ---------------------------------------------------------------------------------------------
// Oracle: csv-parse
// ---------------------------------------------------------------------------------------------

/** A deterministic PRNG (the sales generator's), so every run sees the same documents. */
const rng = prng;

const ALPHABET = [',', '"', '\n', '\r\n', 'a', 'b', 'Z', '7', ' ', ' ', 'é', '€', '😀', '\u200f', 'שׁ', '.'];

interface GeneratedDocument {
  text: string;
  records: string[][];
  /** Physical line each record starts on. */
  lines: number[];
}

function generateDocument(seed: number): GeneratedDocument {
  const random = rng(seed);
  const int = (max: number) => Math.floor(random() * (max + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const eol = random() < 0.5 ? '\n' : '\r\n';

  const records: string[][] = [];
  const lines: number[] = [];
  let text = '';
  const recordCount = 1 + int(7);
  for (let r = 0; r < recordCount; r++) {
    let fields: string[];
    do {
      fields = Array.from({ length: 1 + int(5) }, () => Array.from({ length: int(8) }, () => pick(ALPHABET)).join(''));
    } while (fields.length === 1 && fields[0]!.trim() === '');

    const encoded = fields.map((field) => {
      const needsQuotes = /[",\r\n]/.test(field);
      return needsQuotes || random() < 0.15 ? `"${field.replace(/"/g, '""')}"` : field;
    });

    if (r > 0) text += eol;
    // Occasionally a blank line between records: skipped, but it still counts for line numbers.
    if (r > 0 && random() < 0.15) text += eol;
    lines.push(text.split('\n').length);
    text += encoded.join(',');
    records.push(fields);
  }
  if (random() < 0.5) text += eol;
  return { text, records, lines };
}

describe('CsvParser compared with csv-parse', () => {
  const handWritten: Record<string, string> = {
    'RFC 4180 example with header': 'field_name,field_name,field_name\r\naaa,bbb,ccc\r\nzzz,yyy,xxx\r\n',
    'RFC 4180 quoted fields with CRLF and quotes': '"aaa","b\r\nbb","ccc"\r\nzzz,yyy,xxx',
    'RFC 4180 doubled quote': '"aaa","b""bb","ccc"\r\n',
    'sales export with quoted money and notes':
      'order_id,sold_at,amount_sgd,note\n1001,2024-01-02,12.50,"Gift, wrapped"\n1002,2024-01-03,-3.07,"He said ""refund"""\n1003,2024-01-04,0,\n',
    'ragged rows, empty fields and blank lines': 'a,b,c\n\n1,,\n,2\n\n"",3,"",""\n',
    'unicode everywhere': 'name,city\nZoë 😀,"Tel Aviv, \u200fתל אביב\u200f"\n日本,"改\n行"\n',
    'no trailing newline after a quoted newline': 'x,"y\nz"',
  };

  for (const [name, text] of Object.entries(handWritten)) {
    it(`then the fields match for: ${name}`, () => {
      const expected = parse(text, CSV_PARSE_OPTIONS);
      expect(expected.length).toBeGreaterThan(0);
      expect(fieldsOf(parseWhole(text))).toEqual(expected);
    });
  }

  it('then the fields match on 200 randomly generated documents, read whole and in random pieces', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const doc = generateDocument(seed);
      const context = `seed ${seed}: ${JSON.stringify(doc.text)}`;

      const oracle = parse(doc.text, CSV_PARSE_OPTIONS);
      // The generator knows the truth too: make sure the oracle agrees with it before trusting it.
      expect(oracle, `csv-parse vs generator, ${context}`).toEqual(doc.records);

      const whole = parseWhole(doc.text);
      expect(fieldsOf(whole), context).toEqual(oracle);
      expect(
        whole.map((r) => r.line),
        `line numbers, ${context}`,
      ).toEqual(doc.lines);

      const random = rng(seed * 7919);
      const cuts = Array.from({ length: 1 + Math.floor(random() * 6) }, () =>
        Math.floor(random() * (doc.text.length + 1)),
      ).sort((x, y) => x - y);
      expect(parseChunks(splitAt(doc.text, cuts)), `chunks at ${cuts.join(',')}, ${context}`).toEqual(whole);
    }
  });

  it('then the generated documents actually exercise every quirk', () => {
    const texts = Array.from({ length: 200 }, (_, i) => generateDocument(i + 1).text);
    const all = texts.join('\u0000');
    expect(all).toContain('""'); // doubled quotes or empty quoted fields
    expect(texts.some((t) => /"[^"]*\r\n[^"]*"/.test(t))).toBe(true); // CRLF inside quotes
    expect(texts.some((t) => /"[^"\r]*\n[^"]*"/.test(t))).toBe(true); // LF inside quotes
    expect(texts.some((t) => /"[^"]*,[^"]*"/.test(t))).toBe(true); // comma inside quotes
    expect(texts.some((t) => /(\r?\n){2}/.test(t))).toBe(true); // blank lines
    expect(all).toContain('😀');
    expect(all).toContain('\u200f');
  });
});
