import { CsvFormatError, FIELD_DELIMITERS, isBlankRecord, parseRecord, type FieldDelimiter, type ParsedRecord } from './csv-reader.js';
import { readHeader, REQUIRED_COLUMNS, type Column, type HeaderLayout } from './sales-row.js';

/**
 * How a sales file is written, beyond the contract's defaults: its field delimiter (comma,
 * semicolon or tab; found from the header when `auto`) and other names for the required columns
 * (`Order Date` for `date`). Set per import (HTTP `delimiter` and `columns`, `zinc import
 * --delimiter --columns`) and, for the column names, for every import (CSV_COLUMNS).
 */

export const DELIMITER_CHOICES = ['auto', 'comma', 'semicolon', 'tab'] as const;
export type DelimiterChoice = (typeof DELIMITER_CHOICES)[number];

const DELIMITER_OF: Record<Exclude<DelimiterChoice, 'auto'>, FieldDelimiter> = { comma: ',', semicolon: ';', tab: '\t' };
const NAME_OF: Record<FieldDelimiter, string> = { ',': 'comma', ';': 'semicolon', '\t': 'tab' };

/** Other header names each required column may have, besides its own. */
export type ColumnAliases = Readonly<Partial<Record<Column, readonly string[]>>>;

export interface CsvFormat {
  delimiter: DelimiterChoice;
  columns: ColumnAliases;
}

/** Comma, semicolon or tab as the header shows, and the contract's column names only. */
export const DEFAULT_CSV_FORMAT: CsvFormat = Object.freeze({ delimiter: 'auto', columns: Object.freeze({}) });

/** A list of column aliases cannot be used; the message reads after the setting's name. */
export class ColumnAliasError extends Error {
  override name = 'ColumnAliasError';
}

/** Whether `value` is a delimiter choice (`auto`, `comma`, `semicolon`, `tab`). */
export function isDelimiterChoice(value: unknown): value is DelimiterChoice {
  return typeof value === 'string' && (DELIMITER_CHOICES as readonly string[]).includes(value);
}

/**
 * Parses `date=Order Date,order_id=Order ID` into column aliases: comma-separated `field=name`
 * pairs (a field may have several names), names matched trimmed and case-insensitively as the
 * header's are. Throws ColumnAliasError for an unknown field, an empty name, or a name given to
 * two fields or that is another field's own name.
 *
 * @example parseColumnAliases('date=Order Date,amount_sgd=Total (SGD)')
 * // → { date: ['Order Date'], amount_sgd: ['Total (SGD)'] }
 */
export function parseColumnAliases(text: string): ColumnAliases {
  const pairs: Array<[Column, string]> = [];
  for (const entry of text.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    if (eq === -1) {
      throw new ColumnAliasError(
        `must be field=column name pairs separated by commas, such as date=Order Date,amount_sgd=Total (SGD); "${entry.trim()}" is not one`,
      );
    }
    const field = entry.slice(0, eq).trim().toLowerCase();
    const name = entry.slice(eq + 1).trim();
    if (!(REQUIRED_COLUMNS as readonly string[]).includes(field)) {
      throw new ColumnAliasError(`names an unknown field "${entry.slice(0, eq).trim()}" (the fields are ${REQUIRED_COLUMNS.join(', ')})`);
    }
    if (name === '') throw new ColumnAliasError(`gives no column name for ${field}`);
    pairs.push([field as Column, name]);
  }
  return aliasesOf(pairs);
}

/** The aliases of both (an import's own added to the setting's), checked together. */
export function mergeColumnAliases(base: ColumnAliases, extra: ColumnAliases): ColumnAliases {
  return aliasesOf([...pairsOf(base), ...pairsOf(extra)]);
}

/** Column aliases written back as `parseColumnAliases` reads them (for logs and messages). */
export function formatColumnAliases(aliases: ColumnAliases): string {
  return pairsOf(aliases)
    .map(([field, name]) => `${field}=${name}`)
    .join(',');
}

function pairsOf(aliases: ColumnAliases): Array<[Column, string]> {
  return REQUIRED_COLUMNS.flatMap((field) => (aliases[field] ?? []).map((name): [Column, string] => [field, name]));
}

function aliasesOf(pairs: Array<[Column, string]>): ColumnAliases {
  const owner = new Map<string, Column>(REQUIRED_COLUMNS.map((c) => [c, c]));
  const out: Partial<Record<Column, string[]>> = {};
  for (const [field, name] of pairs) {
    const key = name.toLowerCase();
    const taken = owner.get(key);
    if (taken === field) continue; // its own name, or given twice
    if (taken !== undefined) {
      throw new ColumnAliasError(
        (REQUIRED_COLUMNS as readonly string[]).includes(key)
          ? `maps "${name}" to ${field}, but ${key} is a field's own name`
          : `maps "${name}" to both ${taken} and ${field}`,
      );
    }
    owner.set(key, field);
    (out[field] ??= []).push(name);
  }
  return Object.freeze(out);
}

/** Where the header search stopped: past blank lines (and past the header once found). */
export interface HeaderSearch {
  pos: number;
  line: number;
  /** Unset: the text ends before the header does; more text is needed (or there is no header). */
  layout?: HeaderLayout;
}

interface Reading {
  delimiter: FieldDelimiter;
  record?: ParsedRecord;
  layout?: HeaderLayout;
  error?: CsvFormatError;
}

/**
 * Finds the header record in `buf` from `pos` (physical line `line`) and reads it with the
 * format's delimiter, or with each of comma, semicolon and tab (`auto`): the one delimiter that
 * splits it into the required columns wins. Fails the file (CsvFormatError) when several do, or
 * none: then with the error of the reading that found the most columns (the comma reading on a
 * tie, whose error is the one a comma file always had).
 */
export function findHeader(buf: string, pos: number, line: number, final: boolean, format: CsvFormat): HeaderSearch {
  const len = buf.length;
  // Blank lines before the header, as a comma reading sees them. No delimiter wants one as a header.
  while (pos < len) {
    let blank: ParsedRecord | null;
    try {
      blank = parseRecord(buf, pos, line, final);
    } catch {
      break; // a malformed record read with commas: not blank, and perhaps well-formed otherwise
    }
    if (blank === null) return { pos, line };
    if (!isBlankRecord(blank.fields)) break;
    pos = blank.end;
    line += blank.newlines;
  }
  if (pos >= len) return { pos, line };

  const delimiters: readonly FieldDelimiter[] = format.delimiter === 'auto' ? FIELD_DELIMITERS : [DELIMITER_OF[format.delimiter]];
  const readings: Reading[] = [];
  for (const delimiter of delimiters) {
    const reading: Reading = { delimiter };
    readings.push(reading);
    try {
      const record = parseRecord(buf, pos, line, final, delimiter.charCodeAt(0));
      if (record === null) return { pos, line };
      reading.record = record;
      reading.layout = readHeader({ line, fields: record.fields }, { delimiter, columns: format.columns });
    } catch (error) {
      if (!(error instanceof CsvFormatError)) throw error;
      reading.error = error;
    }
  }
  const found = readings.filter((r) => r.layout);
  if (found.length === 1) {
    const { record, layout } = found[0]!;
    return { pos: record!.end, line: line + record!.newlines, layout: layout! };
  }
  if (found.length > 1) {
    throw new CsvFormatError(
      `the header names the required columns read as ${found.map((r) => `${NAME_OF[r.delimiter]}-separated`).join(' and as ')}; ` +
        `choose the delimiter (delimiter=${found.map((r) => NAME_OF[r.delimiter]).join(' or ')})`,
      line,
    );
  }
  let best = readings[0]!;
  for (const r of readings) if ((r.record?.fields.length ?? 0) > Math.max(1, best.record?.fields.length ?? 0)) best = r;
  if (best === readings[0]) throw best.error!;
  throw new CsvFormatError(`${best.error!.reason} (the header read as ${NAME_OF[best.delimiter]}-separated)`, best.error!.line);
}

/**
 * An import's format: `delimiter` (default `auto`) and the aliases of the setting (CSV_COLUMNS)
 * with the import's own `columns` added. Throws ColumnAliasError when `columns` cannot be used.
 */
export function importFormat(setting: ColumnAliases = {}, delimiter: DelimiterChoice = 'auto', columns?: string): CsvFormat {
  const own = columns === undefined ? {} : parseColumnAliases(columns);
  return { delimiter, columns: mergeColumnAliases(setting, own) };
}
