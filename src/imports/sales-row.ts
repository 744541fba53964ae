import type { RowError, SaleRow } from '../db/sales-writer.js';
import { parseAmountCents, parseDecimalCommaCents } from '../money.js';
import { CsvFormatError, type CsvRecord, type FieldDelimiter } from './csv-reader.js';
import type { ColumnAliases } from './csv-format.js';

export const REQUIRED_COLUMNS = ['date', 'order_id', 'product_id', 'amount_sgd'] as const;
export type Column = (typeof REQUIRED_COLUMNS)[number];

/** The validated row and the row error are the store's shapes too (src/db/sales-writer.ts). */
export type { RowError, SaleRow } from '../db/sales-writer.js';

/** Where each required column sits in a record, plus the header's warnings. */
export interface HeaderLayout {
  index: Record<Column, number>;
  /**
   * Each column as row errors name it: the field's own name when the header uses it (in any
   * case), else the header's name for it as the file writes it (an alias: `Order Date`).
   */
  labels: Record<Column, string>;
  width: number;
  warnings: string[];
  delimiter: FieldDelimiter;
  /** amount_sgd may use a decimal comma (`12,50`): semicolon- and tab-separated files only. */
  decimalComma: boolean;
}

const MAX_ID_CHARS = 64;

/**
 * Reads the header record (split with `delimiter`, a comma unless told); a required column
 * missing (under its own name and its aliases) or named twice fails the whole file.
 */
export function readHeader(
  record: CsvRecord,
  { delimiter = ',', columns = {} }: { delimiter?: FieldDelimiter; columns?: ColumnAliases } = {},
): HeaderLayout {
  const names = record.fields.map((f) => f.trim().toLowerCase());
  const index = {} as Record<Column, number>;
  const labels = {} as Record<Column, string>;
  const used = new Set<number>();
  for (const column of REQUIRED_COLUMNS) {
    const aliases = columns[column] ?? [];
    const accepted = [column, ...aliases.map((a) => a.toLowerCase())];
    const found = names.flatMap((name, i) => (accepted.includes(name) ? [i] : []));
    if (found.length === 0) {
      const also = aliases.length === 0 ? '' : ` or its alias${aliases.length > 1 ? 'es' : ''} ${aliases.map((a) => `"${a}"`).join(', ')}`;
      throw new CsvFormatError(
        `missing required column "${column}"${also} (the header must name ${REQUIRED_COLUMNS.join(', ')})`,
        record.line,
      );
    }
    const at = found[0]!;
    const label = names[at] === column ? column : record.fields[at]!.trim();
    if (found.length > 1) {
      const second = found[1]!;
      throw new CsvFormatError(
        names[second] === names[at]
          ? `column "${label}" appears more than once in the header`
          : `columns "${record.fields[at]!.trim()}" (column ${at + 1}) and "${record.fields[second]!.trim()}" (column ${second + 1}) ` +
              `both name ${column}; keep one, or change the column aliases`,
        record.line,
      );
    }
    index[column] = at;
    labels[column] = label;
    used.add(at);
  }
  const extras = record.fields
    .map((name, i) => ({ name: name.trim(), i }))
    .filter(({ i }) => !used.has(i))
    .map(({ name, i }) => (name === '' ? `(unnamed column ${i + 1})` : name));
  const warnings =
    extras.length === 0 ? [] : [`ignored column${extras.length > 1 ? 's' : ''}: ${extras.join(', ')}`];
  return { index, labels, width: names.length, warnings, delimiter, decimalComma: delimiter !== ',' };
}

/**
 * Validates one record against the header. Returns the normalised row, or every error found in it
 * (one per bad column), so a user can fix a line in one pass.
 */
export function validateRecord(record: CsvRecord, layout: HeaderLayout): SaleRow | RowError[] {
  const { fields, line } = record;
  if (fields.length !== layout.width) {
    return [
      {
        line,
        column: null,
        message: `expected ${layout.width} fields as in the header, found ${fields.length}`,
      },
    ];
  }
  const errors: RowError[] = [];
  const { labels } = layout;
  const date = fields[layout.index.date]!.trim();
  const dateError = date === '' ? `${labels.date} is empty` : checkDate(date);
  if (dateError) errors.push({ line, column: labels.date, message: dateError });

  const orderId = fields[layout.index.order_id]!.trim();
  const orderError = checkId(labels.order_id, orderId);
  if (orderError) errors.push({ line, column: labels.order_id, message: orderError });

  const productId = fields[layout.index.product_id]!.trim();
  const productError = checkId(labels.product_id, productId);
  if (productError) errors.push({ line, column: labels.product_id, message: productError });

  const amountText = fields[layout.index.amount_sgd]!.trim();
  const amount =
    amountText === ''
      ? `${labels.amount_sgd} is empty`
      : layout.decimalComma
        ? parseDecimalCommaCents(amountText)
        : parseAmountCents(amountText);
  if (typeof amount === 'string') errors.push({ line, column: labels.amount_sgd, message: amount });

  if (errors.length > 0) return errors;
  return { line, date, orderId, productId, amountCents: amount as number };
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Sales files repeat the same few thousand dates: remember the verdicts (bounded). */
const dateVerdicts = new Map<string, string | null>();

/** Checks a `YYYY-MM-DD` calendar date; returns an error sentence, or null when it is valid. */
export function checkDate(text: string): string | null {
  const known = dateVerdicts.get(text);
  if (known !== undefined) return known;
  const verdict = judgeDate(text);
  if (dateVerdicts.size >= 20_000) dateVerdicts.clear();
  if (text.length === 10) dateVerdicts.set(text, verdict);
  return verdict;
}

function judgeDate(text: string): string | null {
  const m = DATE.exec(text);
  if (!m) return text === '' ? 'date is empty' : `"${clip(text)}" is not a date in YYYY-MM-DD form`;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (year < 1000) return `"${text}" is outside the supported years 1000 to 9999`;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return `"${text}" is not a real calendar date`;
  }
  return null;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function checkId(column: string, value: string): string | null {
  if (value === '') return `${column} is empty`;
  if (value.length <= MAX_ID_CHARS) return null; // UTF-16 units ≥ code points
  // Length in characters (code points), as MySQL's VARCHAR(64) counts them.
  let chars = 0;
  for (const _ of value) if (++chars > MAX_ID_CHARS) break;
  if (chars > MAX_ID_CHARS) return `${column} is longer than ${MAX_ID_CHARS} characters`;
  return null;
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
