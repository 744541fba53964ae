import { Buffer, isAscii } from 'node:buffer';
import { TextDecoder } from 'node:util';

/**
 * A streaming RFC 4180 reader: UTF-8 (BOM tolerated), comma-separated (or `;`, or tab), quoted
 * fields with delimiters, doubled quotes and newlines, LF or CRLF, optional final newline, blank
 * lines skipped.
 * Each record carries the physical line it starts on, which row errors report.
 *
 * Hand-written because a record's starting line is not something the general-purpose parsers
 * report directly, and because the import reads every record that is not plain with it (see
 * sales-scanner.ts): `parseRecord` reads one record wherever it starts.
 */

export interface CsvRecord {
  /** Physical line (1-based) where the record starts. */
  line: number;
  fields: string[];
}

/** The file cannot be read as CSV at all; the whole file fails with this message. */
export class CsvFormatError extends Error {
  override name = 'CsvFormatError';
  constructor(
    /** The message without its line. */
    readonly reason: string,
    readonly line?: number,
  ) {
    super(line === undefined ? reason : `line ${line}: ${reason}`);
  }
}

/** Longest record accepted; a longer one is almost always a stray quote swallowing the file. */
export const MAX_RECORD_CHARS = 1 << 20;

const QUOTE = 34;
const COMMA = 44;

/** The field delimiters a file may use: comma (the default), semicolon, tab. */
export const FIELD_DELIMITERS = [',', ';', '\t'] as const;
export type FieldDelimiter = (typeof FIELD_DELIMITERS)[number];
const LF = 10;
const CR = 13;

/** One record as `parseRecord` found it. */
export interface ParsedRecord {
  fields: string[];
  /** Where the next record starts. */
  end: number;
  /** Line breaks the record spans, its own line ending included. */
  newlines: number;
}

/**
 * Parses the one record starting at `pos` of `buf`, which starts on physical line `line`, its
 * fields separated by `delimiter` (a character code: `,` unless told).
 * Returns null when `buf` ends before the record does and more text may follow (`final` false);
 * throws a CsvFormatError for a malformed or overlong record.
 */
export function parseRecord(buf: string, pos: number, line: number, final: boolean, delimiter = COMMA): ParsedRecord | null {
  const len = buf.length;
  const fields: string[] = [];
  let newlines = 0;
  let i = pos;
  let complete = false;
  fields: for (;;) {
    if (buf.charCodeAt(i) === QUOTE) {
      let value = '';
      let seg = i + 1;
      let j: number;
      for (;;) {
        j = buf.indexOf('"', seg);
        if (j === -1) {
          if (final) throw new CsvFormatError('quoted field is never closed (missing ")', line);
          break fields;
        }
        if (j + 1 === len && !final) break fields; // a doubled quote may follow in the next chunk
        if (buf.charCodeAt(j + 1) === QUOTE) {
          value += buf.slice(seg, j + 1);
          seg = j + 2;
          continue;
        }
        value += buf.slice(seg, j);
        break;
      }
      newlines += countNewlines(value);
      fields.push(value);
      i = j + 1;
      const c = buf.charCodeAt(i);
      if (c === delimiter) {
        i++;
        continue;
      }
      if (c === LF) {
        i++;
        newlines++;
        complete = true;
        break;
      }
      if (c === CR) {
        if (i + 1 === len && !final) break fields;
        if (buf.charCodeAt(i + 1) === LF) {
          i += 2;
          newlines++;
          complete = true;
          break;
        }
      }
      if (i >= len) {
        if (!final) break fields;
        complete = true;
        break;
      }
      throw new CsvFormatError(
        `unexpected character ${JSON.stringify(buf[i])} after a closing quote in field ${fields.length}`,
        line + newlines,
      );
    }
    let j = i;
    let c = 0;
    while (j < len) {
      c = buf.charCodeAt(j);
      if (c === delimiter || c === LF) break;
      j++;
    }
    if (j === len) {
      if (!final) break fields;
      fields.push(buf.slice(i, j));
      i = j;
      complete = true;
      break;
    }
    if (c === delimiter) {
      fields.push(buf.slice(i, j));
      i = j + 1;
      continue;
    }
    // LF: a CR right before it belongs to the line ending.
    fields.push(buf.slice(i, j > i && buf.charCodeAt(j - 1) === CR ? j - 1 : j));
    i = j + 1;
    newlines++;
    complete = true;
    break;
  }
  if (!complete) {
    if (len - pos > MAX_RECORD_CHARS) {
      throw new CsvFormatError(`record is longer than ${MAX_RECORD_CHARS} characters (an unclosed quote?)`, line);
    }
    return null;
  }
  if (i - pos > MAX_RECORD_CHARS) {
    throw new CsvFormatError(`record is longer than ${MAX_RECORD_CHARS} characters`, line);
  }
  return { fields, end: i, newlines };
}

/** A line whose only field is empty or white space carries no record: it is skipped. */
export function isBlankRecord(fields: readonly string[]): boolean {
  return fields.length === 1 && isBlank(fields[0]!);
}

/** Incremental parser: feed text with `push`, then call `end`; complete records come back as arrays. */
export class CsvParser {
  private buf = '';
  private line = 1;
  private readonly delimiter: number;

  constructor(delimiter: FieldDelimiter = ',') {
    this.delimiter = delimiter.charCodeAt(0);
  }

  /** Parses what it can of `text`; keeps an incomplete last record for the next call. */
  push(text: string): CsvRecord[] {
    this.buf = this.buf.length === 0 ? text : this.buf + text;
    return this.drain(false);
  }

  /** Parses the rest; an unterminated quoted field is an error here. */
  end(): CsvRecord[] {
    return this.drain(true);
  }

  private drain(final: boolean): CsvRecord[] {
    const out: CsvRecord[] = [];
    const buf = this.buf;
    let pos = 0;
    while (pos < buf.length) {
      const recordLine = this.line;
      const record = parseRecord(buf, pos, recordLine, final, this.delimiter);
      if (record === null) {
        this.buf = buf.slice(pos);
        return out;
      }
      this.line += record.newlines;
      pos = record.end;
      if (!isBlankRecord(record.fields)) out.push({ line: recordLine, fields: record.fields });
    }
    this.buf = '';
    return out;
  }
}

function countNewlines(text: string): number {
  let n = 0;
  for (let k = text.indexOf('\n'); k !== -1; k = text.indexOf('\n', k + 1)) n++;
  return n;
}

function isBlank(text: string): boolean {
  return text.length === 0 || text.trim().length === 0;
}

/**
 * Strict UTF-8 text of a byte stream, chunk by chunk (a leading BOM is dropped), with the checks
 * that fail a whole file: UTF-16, invalid or truncated UTF-8, NUL bytes.
 */
export class CsvTextDecoder {
  /** Made at the first chunk that is not all ASCII: until then, no character can be cut in two. */
  private decoder: TextDecoder | undefined;
  private offset = 0;

  /** The text of `chunk`; a character cut at its end comes with the next chunk. */
  decode(chunk: Uint8Array): string {
    if (this.offset === 0 && chunk.length > 0) {
      if ((chunk[0] === 0xff && chunk[1] === 0xfe) || (chunk[0] === 0xfe && chunk[1] === 0xff)) {
        throw new CsvFormatError('the file is UTF-16; save it as UTF-8');
      }
    }
    let text: string;
    if (!this.decoder && isAscii(chunk)) {
      // ASCII is valid UTF-8 and reads the same as Latin-1, which Node decodes several times
      // faster than TextDecoder (most sales files are all ASCII).
      text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
    } else {
      // A BOM is dropped only at the very start of the file: later, U+FEFF is text.
      this.decoder ??= new TextDecoder('utf-8', { fatal: true, ignoreBOM: this.offset > 0 });
      text = this.run(chunk, true);
    }
    if (text.includes('\u0000')) {
      throw new CsvFormatError('the file contains NUL bytes: it is binary, not a CSV text file');
    }
    this.offset += chunk.length;
    return text;
  }

  /** Fails if the bytes ended inside a character. */
  end(): void {
    if (this.decoder) this.run(new Uint8Array(0), false);
  }

  private run(chunk: Uint8Array, stream: boolean): string {
    try {
      return this.decoder!.decode(chunk, { stream });
    } catch {
      throw new CsvFormatError(`the file is not valid UTF-8 (in the bytes after offset ${this.offset})`);
    }
  }
}

/**
 * Decodes a byte stream as strict UTF-8 (a leading BOM is dropped) and parses it, yielding the
 * records of each chunk together. `onChunk` sees every raw chunk first (hashing, progress).
 */
export async function* readCsv(
  source: AsyncIterable<Uint8Array>,
  onChunk?: (chunk: Uint8Array) => void,
  delimiter: FieldDelimiter = ',',
): AsyncGenerator<CsvRecord[]> {
  const decoder = new CsvTextDecoder();
  const parser = new CsvParser(delimiter);
  for await (const chunk of source) {
    onChunk?.(chunk);
    const records = parser.push(decoder.decode(chunk));
    if (records.length > 0) yield records;
  }
  decoder.end();
  const rest = parser.end();
  if (rest.length > 0) yield rest;
}
