import { TextDecoder } from 'node:util';

/**
 * A streaming RFC 4180 reader: UTF-8 (BOM tolerated), comma-separated, quoted fields with
 * commas, doubled quotes and newlines, LF or CRLF, optional final newline, blank lines skipped.
 * Each record carries the physical line it starts on, which row errors report.
 *
 * Hand-written because it is the import's hot path (see `npm run bench:csv`) and because a
 * record's starting line is not something the general-purpose parsers report directly.
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
    message: string,
    readonly line?: number,
  ) {
    super(line === undefined ? message : `line ${line}: ${message}`);
  }
}

/** Longest record accepted; a longer one is almost always a stray quote swallowing the file. */
export const MAX_RECORD_CHARS = 1 << 20;

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

/** Incremental parser: feed text with `push`, then call `end`; complete records come back as arrays. */
export class CsvParser {
  private buf = '';
  private line = 1;

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
    const len = buf.length;
    let pos = 0;
    while (pos < len) {
      const start = pos;
      const recordLine = this.line;
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
              if (final) throw new CsvFormatError('quoted field is never closed (missing ")', recordLine);
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
          if (c === COMMA) {
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
            recordLine + newlines,
          );
        }
        let j = i;
        let c = 0;
        while (j < len) {
          c = buf.charCodeAt(j);
          if (c === COMMA || c === LF) break;
          j++;
        }
        if (j === len) {
          if (!final) break fields;
          fields.push(buf.slice(i, j));
          i = j;
          complete = true;
          break;
        }
        if (c === COMMA) {
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
        if (len - start > MAX_RECORD_CHARS) {
          throw new CsvFormatError(
            `record is longer than ${MAX_RECORD_CHARS} characters (an unclosed quote?)`,
            recordLine,
          );
        }
        this.buf = buf.slice(start);
        return out;
      }
      if (i - start > MAX_RECORD_CHARS) {
        throw new CsvFormatError(`record is longer than ${MAX_RECORD_CHARS} characters`, recordLine);
      }
      this.line += newlines;
      pos = i;
      if (fields.length === 1 && isBlank(fields[0]!)) continue;
      out.push({ line: recordLine, fields });
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
 * Decodes a byte stream as strict UTF-8 (a leading BOM is dropped) and parses it, yielding the
 * records of each chunk together. `onChunk` sees every raw chunk first (hashing, progress).
 */
export async function* readCsv(
  source: AsyncIterable<Uint8Array>,
  onChunk?: (chunk: Uint8Array) => void,
): AsyncGenerator<CsvRecord[]> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  const parser = new CsvParser();
  let offset = 0;
  let first = true;
  for await (const chunk of source) {
    onChunk?.(chunk);
    if (first && chunk.length > 0) {
      first = false;
      if ((chunk[0] === 0xff && chunk[1] === 0xfe) || (chunk[0] === 0xfe && chunk[1] === 0xff)) {
        throw new CsvFormatError('the file is UTF-16; save it as UTF-8');
      }
    }
    const text = decode(decoder, chunk, true, offset);
    offset += chunk.length;
    const records = parser.push(text);
    if (records.length > 0) yield records;
  }
  decode(decoder, new Uint8Array(0), false, offset);
  const rest = parser.end();
  if (rest.length > 0) yield rest;
}

function decode(decoder: TextDecoder, chunk: Uint8Array, stream: boolean, offset: number): string {
  let text: string;
  try {
    text = decoder.decode(chunk, { stream });
  } catch {
    throw new CsvFormatError(`the file is not valid UTF-8 (in the bytes after offset ${offset})`);
  }
  if (text.includes('\u0000')) {
    throw new CsvFormatError('the file contains NUL bytes: it is binary, not a CSV text file');
  }
  return text;
}
