import { parseAmountCents, parseDecimalCommaCents } from '../money.js';
import { MAX_RECORD_CHARS, isBlankRecord, parseRecord } from './csv-reader.js';
import { DEFAULT_CSV_FORMAT, findHeader, type CsvFormat } from './csv-format.js';
import { checkDate, validateRecord, type HeaderLayout, type RowError, type SaleRow } from './sales-row.js';

const COMMA = 44;
const CR = 13;
/** An id of at most this many UTF-16 units has at most 64 code points: no need to count them. */
const PLAIN_ID_UNITS = 64;
const WHITE_SPACE = /\s/;

/**
 * Reads a sales CSV from its decoded text, chunk by chunk, into validated rows and row errors.
 *
 * Nearly every record of a real export is plain: no quotes, as many fields as the header, a
 * valid date, ids and amount with nothing to trim. Such a record is validated where it lies in
 * the text (field bounds, the amount parsed in place, the date compared with the previous row's)
 * without building its field array; this is what takes the import past 2 million rows/s (see
 * `npm run bench:csv`). Any other record — quoted, blank, the wrong width, cut by the end of the
 * text, or with anything to trim or report — is read by the general `parseRecord` and judged by
 * `validateRecord`, so the outcome is by construction the general path's.
 *
 * The header is read first, with the format's delimiter, or found among comma, semicolon and tab
 * (`auto`, see findHeader); every record after it is split with that delimiter.
 */
export class SalesScanner {
  private buf = '';
  private line = 1;
  private layout: HeaderLayout | undefined;
  /** The field delimiter, as a string (for indexOf) and as a character code. */
  private delimiter = ',';
  private delimiterCode = COMMA;
  private decimalComma = false;
  private width = 0;
  private dateAt = 0;
  private orderAt = 0;
  private productAt = 0;
  private amountAt = 0;
  private starts = new Int32Array(0);
  // Chronological files repeat a date for many rows: a date equal to the previous row's reuses
  // its string and its verdict.
  private lastDate = '';
  private lastDateValid = false;
  /** Records read after the header, valid or not. */
  rowsRead = 0;
  /** Records read, header included (blank lines are not records). */
  recordsRead = 0;
  /** Rows read by the plain-record path, all valid. */
  plainRowsRead = 0;

  constructor(
    private readonly handlers: {
      onHeader(layout: HeaderLayout): void;
      onErrors(errors: RowError[]): void;
    },
    private readonly format: CsvFormat = DEFAULT_CSV_FORMAT,
  ) {}

  /** The header's layout, once its record has been read. */
  get header(): HeaderLayout | undefined {
    return this.layout;
  }

  /** Reads the complete records of `text` (after what is left of earlier text) into `rows`. */
  push(text: string, rows: SaleRow[]): void {
    if (this.buf.length === 0) {
      this.scan(text, 0, false, true, rows);
      return;
    }
    // The plain path reads the decoder's own (flat) strings about 15% faster than a joined one,
    // so only the record cut by the chunk boundary is joined, with the text up to the next LF,
    // and read the general way; only a record running on past that LF (a quoted line break)
    // joins the whole chunk.
    const lf = text.indexOf('\n');
    if (lf !== -1) {
      this.scan(this.buf + text.slice(0, lf + 1), 0, false, false, rows);
      if (this.buf.length === 0) {
        this.scan(text, lf + 1, false, true, rows);
        return;
      }
      text = text.slice(lf + 1);
    }
    this.scan(this.buf + text, 0, false, false, rows);
  }

  /** Reads what is left; a last record without a line ending counts, an open quote fails. */
  end(rows: SaleRow[]): void {
    this.scan(this.buf, 0, true, false, rows);
  }

  /**
   * Reads the complete records of `buf` from `pos` on; keeps the rest in `this.buf`. `plain`:
   * try the plain-record path first (else every record is read the general way).
   */
  private scan(buf: string, pos: number, final: boolean, plain: boolean, rows: SaleRow[]): void {
    const len = buf.length;
    let line = this.line;
    // The next quote at or after `pos` (`len` when there is none): records before it are unquoted.
    let quoteAt = -1;
    while (pos < len) {
      if (plain && this.layout) {
        // Native searches (indexOf) beat a character loop several times over.
        const lf = buf.indexOf('\n', pos);
        if (lf !== -1 && lf - pos < MAX_RECORD_CHARS) {
          if (quoteAt < pos) {
            quoteAt = buf.indexOf('"', pos);
            if (quoteAt === -1) quoteAt = len;
          }
          if (quoteAt > lf) {
            const row = this.plainRow(buf, pos, lf, line);
            if (row !== null) {
              rows.push(row);
              this.plainRowsRead++;
              this.rowsRead++;
              this.recordsRead++;
              line++;
              pos = lf + 1;
              continue;
            }
          }
        }
      }
      if (!this.layout) {
        const found = findHeader(buf, pos, line, final, this.format);
        pos = found.pos;
        line = found.line;
        if (!found.layout) break;
        this.recordsRead++;
        this.useHeader(found.layout);
        continue;
      }
      const record = parseRecord(buf, pos, line, final, this.delimiterCode);
      if (record === null) break;
      const recordLine = line;
      line += record.newlines;
      pos = record.end;
      if (isBlankRecord(record.fields)) continue;
      this.recordsRead++;
      this.rowsRead++;
      const result = validateRecord({ line: recordLine, fields: record.fields }, this.layout);
      if (Array.isArray(result)) this.handlers.onErrors(result);
      else rows.push(result);
    }
    this.line = line;
    this.buf = pos < len ? buf.slice(pos) : '';
  }

  private useHeader(layout: HeaderLayout): void {
    this.layout = layout;
    this.delimiter = layout.delimiter;
    this.delimiterCode = layout.delimiter.charCodeAt(0);
    this.decimalComma = layout.decimalComma;
    this.width = layout.width;
    this.dateAt = layout.index.date;
    this.orderAt = layout.index.order_id;
    this.productAt = layout.index.product_id;
    this.amountAt = layout.index.amount_sgd;
    this.starts = new Int32Array(layout.width + 1);
    this.handlers.onHeader(layout);
  }

  /**
   * The row of the unquoted record from `pos` to the LF at `lf`, or null to take the general path.
   * Field k runs from `starts[k]` to `starts[k + 1] - 1` (the delimiter, or the line ending).
   */
  private plainRow(buf: string, pos: number, lf: number, line: number): SaleRow | null {
    const starts = this.starts;
    const last = this.width - 1;
    const delimiter = this.delimiter;
    const delimiterCode = this.delimiterCode;
    let from = pos;
    for (let k = 0; k < last; k++) {
      const at = buf.indexOf(delimiter, from);
      if (at === -1 || at > lf) return null; // fewer fields than the header
      starts[k] = from;
      from = at + 1;
    }
    for (let i = from; i < lf; i++) if (buf.charCodeAt(i) === delimiterCode) return null; // more fields than the header
    starts[last] = from;
    // A CR right before the LF belongs to the line ending, as in parseRecord.
    starts[last + 1] = lf > from && buf.charCodeAt(lf - 1) === CR ? lf : lf + 1;

    const dateFrom = starts[this.dateAt]!;
    if (starts[this.dateAt + 1]! - 1 - dateFrom !== 10) return null;
    // A native slice and compare beat a comparison character by character where the text lies.
    let date = buf.slice(dateFrom, dateFrom + 10);
    if (date === this.lastDate) {
      if (!this.lastDateValid) return null;
      date = this.lastDate;
    } else {
      // Only a YYYY-MM-DD text passes, which has nothing to trim: it is the date as validateRecord sees it.
      this.lastDate = date;
      this.lastDateValid = checkDate(date) === null;
      if (!this.lastDateValid) return null;
    }

    const orderFrom = starts[this.orderAt]!;
    const orderTo = starts[this.orderAt + 1]! - 1;
    if (!isPlainId(buf, orderFrom, orderTo)) return null;
    const orderId = buf.slice(orderFrom, orderTo);

    const productFrom = starts[this.productAt]!;
    const productTo = starts[this.productAt + 1]! - 1;
    if (!isPlainId(buf, productFrom, productTo)) return null;
    const productId = buf.slice(productFrom, productTo);

    // A field with white space at an end is not a number here, so it goes the general way.
    const amountFrom = starts[this.amountAt]!;
    const amountTo = starts[this.amountAt + 1]! - 1;
    const amountCents = this.decimalComma
      ? parseDecimalCommaCents(buf, amountFrom, amountTo)
      : parseAmountCents(buf, amountFrom, amountTo);
    if (typeof amountCents !== 'number') return null;

    return { line, date, orderId, productId, amountCents };
  }
}

/** A valid id as validateRecord would take it: non-empty, nothing to trim, short enough uncounted. */
function isPlainId(buf: string, from: number, to: number): boolean {
  const n = to - from;
  return n > 0 && n <= PLAIN_ID_UNITS && !trimmable(buf.charCodeAt(from)) && !trimmable(buf.charCodeAt(to - 1));
}

/** Whether `trim()` might remove this UTF-16 unit (any control character counts, to be safe). */
function trimmable(c: number): boolean {
  return c <= 0x20 || (c >= 0x80 && WHITE_SPACE.test(String.fromCharCode(c)));
}
