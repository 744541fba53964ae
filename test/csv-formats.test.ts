import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { parseDecimalCommaCents } from '../src/money.js';
import { CsvFormatError, CsvParser, CsvTextDecoder, type FieldDelimiter } from '../src/imports/csv-reader.js';
import { ColumnAliasError, importFormat, parseColumnAliases, type CsvFormat } from '../src/imports/csv-format.js';
import { SalesScanner } from '../src/imports/sales-scanner.js';
import type { HeaderLayout, RowError, SaleRow } from '../src/imports/sales-row.js';
import { DIALECTS } from './support/databases.js';
import { useHarness } from './support/harness.js';
import { multipart } from './support/multipart.js';
import { cliRunner } from './support/cli.js';

/**
 * Exports as people have them: semicolon- and tab-separated files (found from the header, or
 * chosen), decimal commas in those, and other names for the columns (CSV_COLUMNS, the `columns`
 * option, `zinc import --columns`).
 */

const DELIMITERS: Record<'comma' | 'semicolon' | 'tab', FieldDelimiter> = { comma: ',', semicolon: ';', tab: '\t' };

/** A table written as CSV with `delimiter`: a field holding it, a quote or a line break is quoted. */
function write(rows: string[][], delimiter: string, eol = '\n'): string {
  const quote = (f: string) => (f.includes(delimiter) || /["\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f);
  return rows.map((r) => r.map(quote).join(delimiter)).join(eol) + eol;
}

interface Scanned {
  layout?: HeaderLayout;
  rows: SaleRow[];
  errors: RowError[];
  failure?: string;
}

/** Reads `text` as streamRows does (bytes decoded, then scanned), in pieces of `chunk` bytes. */
function scan(text: string | Buffer, format?: CsvFormat, chunk = 7): Scanned {
  const out: Scanned = { rows: [], errors: [] };
  const scanner = new SalesScanner({ onHeader: (l) => (out.layout = l), onErrors: (e) => out.errors.push(...e) }, format);
  const decoder = new CsvTextDecoder();
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  try {
    for (let i = 0; i < bytes.length; i += chunk) scanner.push(decoder.decode(bytes.subarray(i, i + chunk)), out.rows);
    decoder.end();
    scanner.end(out.rows);
  } catch (error) {
    if (!(error instanceof CsvFormatError)) throw error;
    out.failure = error.message;
  }
  return out;
}

const format = (delimiter: CsvFormat['delimiter'], columns = ''): CsvFormat => importFormat({}, delimiter, columns);

const HEADER = ['date', 'order_id', 'product_id', 'amount_sgd'];
/** Quoted fields holding every delimiter, a quoted line break, bad rows (line numbers shift after the break). */
const TABLE = [
  HEADER,
  ['2024-01-01', 'A;1', 'P,1', '10.50'],
  ['2024-01-02', 'B\t2', 'P "2"', '-0.25'],
  ['2024-01-03', 'C\n3', 'P3', '1'],
  ['2024-13-01', '', 'P4', 'x'],
  ['2024-01-04', 'E', 'P5', '1.234'],
  ['2024-01-05', 'F', 'P6', '99.99'],
];

describe('delimiters', () => {
  it.each(Object.entries(DELIMITERS))(
    'when a %s-separated file (BOM, CRLF, quoted delimiters) is read, then its rows and row errors are the comma file\'s',
    (_name, delimiter) => {
      const comma = scan(`\ufeff${write(TABLE, ',', '\r\n')}`);
      const other = scan(`\ufeff${write(TABLE, delimiter, '\r\n')}`);
      expect(other.failure).toBeUndefined();
      expect(other.layout?.delimiter).toBe(delimiter);
      expect(other.rows).toEqual(comma.rows);
      expect(other.errors).toEqual(comma.errors);
      expect(other.rows.map((r) => [r.line, r.orderId, r.productId, r.amountCents])).toEqual([
        [2, 'A;1', 'P,1', 1050],
        [3, 'B\t2', 'P "2"', -25],
        [4, 'C\n3', 'P3', 100],
        [8, 'F', 'P6', 9999],
      ]);
      expect(other.errors).toEqual([
        { line: 6, column: 'date', message: '"2024-13-01" is not a real calendar date' },
        { line: 6, column: 'order_id', message: 'order_id is empty' },
        { line: 6, column: 'amount_sgd', message: '"x" is not a plain decimal such as 12.34 or -5' },
        { line: 7, column: 'amount_sgd', message: '"1.234" has more than 2 fraction digits' },
      ]);
    },
  );

  it('when the header is comma-, semicolon- or tab-separated, then auto finds that delimiter, even after blank lines', () => {
    expect(scan('date,order_id,product_id,amount_sgd\n2024-01-01,A,P,1\n').layout?.delimiter).toBe(',');
    expect(scan('\n  \ndate;order_id;product_id;amount_sgd\n2024-01-01;A;P;1\n').layout?.delimiter).toBe(';');
    const tab = scan('"date"\t"order_id"\tproduct_id\tamount_sgd\r\n2024-01-01\tA\tP\t1\r\n');
    expect(tab.layout?.delimiter).toBe('\t');
    expect(tab.rows).toMatchObject([{ line: 2, orderId: 'A', amountCents: 100 }]);
    // A quoted header name holding another delimiter does not mislead it.
    const quoted = scan('"date;x",order_id,product_id,amount_sgd,date\nx,A,P,1,2024-01-01\n');
    expect(quoted.failure).toBeUndefined();
    expect(quoted.layout).toMatchObject({ delimiter: ',', index: { date: 4 }, warnings: ['ignored column: date;x'] });
  });

  it('when two delimiters both give the required columns, then the file fails asking for one', () => {
    const header = 'date,order_id,product_id,amount_sgd,x;date;order_id;product_id;amount_sgd;y,z';
    expect(scan(`${header}\n2024-01-01,A,P,1,2,3\n`).failure).toBe(
      'line 1: the header names the required columns read as comma-separated and as semicolon-separated; ' +
        'choose the delimiter (delimiter=comma or semicolon)',
    );
    // Choosing one settles it.
    expect(scan(`${header}\n2024-01-01,A,P,1,2,3\n`, format('comma')).rows).toHaveLength(1);
  });

  it('when no delimiter gives the required columns, then a comma file fails as it always did, another names its reading', () => {
    expect(scan('when,order_id,product_id,amount_sgd\n2024-01-01,A,P,1\n').failure).toBe(
      'line 1: missing required column "date" (the header must name date, order_id, product_id, amount_sgd)',
    );
    expect(scan('Datum;Bestellung;Artikel;Betrag\n2024-01-01;A;P;1\n').failure).toBe(
      'line 1: missing required column "date" (the header must name date, order_id, product_id, amount_sgd) (the header read as semicolon-separated)',
    );
    expect(scan('just one column\n').failure).toBe(
      'line 1: missing required column "date" (the header must name date, order_id, product_id, amount_sgd)',
    );
    expect(scan('\n\n').failure).toBeUndefined(); // no header at all: streamRows says the file is empty
  });

  it('when a delimiter is chosen, then only it is tried', () => {
    const semi = 'date;order_id;product_id;amount_sgd\n2024-01-01;A;P;1\n';
    expect(scan(semi, format('semicolon')).rows).toHaveLength(1);
    expect(scan(semi, format('comma')).failure).toMatch(/^line 1: missing required column "date"/);
    expect(scan(semi.replace(/;/g, '\t'), format('tab')).rows).toHaveLength(1);
    expect(scan(semi.replace(/;/g, '\t'), format('semicolon')).failure).toMatch(/^line 1: missing required column "date"/);
  });

  it('when a row has the wrong number of fields in a semicolon file, then the error is the comma file\'s', () => {
    const rows = [HEADER, ['2024-01-01', 'A', 'P', '1'], ['2024-01-01', 'B', 'P'], ['2024-01-01', 'C', 'P', '1', 'extra']];
    const comma = scan(write(rows, ','));
    const semi = scan(write(rows, ';'));
    expect(semi.errors).toEqual(comma.errors);
    expect(semi.errors).toEqual([
      { line: 3, column: null, message: 'expected 4 fields as in the header, found 3' },
      { line: 4, column: null, message: 'expected 4 fields as in the header, found 5' },
    ]);
  });
});

describe('decimal commas', () => {
  it('when a semicolon or tab file writes amounts with a decimal comma, then they are read as cents', () => {
    for (const delimiter of [';', '\t']) {
      const text = write([HEADER, ['2024-01-01', 'A', 'P', '12,50'], ['2024-01-01', 'B', 'P', '-0,5'], ['2024-01-01', 'C', 'P', '7.25'], ['2024-01-01', 'D', 'P', ' 3,01 ']], delimiter);
      const { rows, errors } = scan(text, undefined, 1 << 16);
      expect(errors).toEqual([]);
      expect(rows.map((r) => r.amountCents)).toEqual([1250, -50, 725, 301]);
    }
  });

  it('when a decimal comma is ambiguous or misplaced, then the row error names amount_sgd', () => {
    const text = write([HEADER, ['2024-01-01', 'A', 'P', '1,234'], ['2024-01-01', 'B', 'P', '1.234,50'], ['2024-01-01', 'C', 'P', ',5'], ['2024-01-01', 'D', 'P', '1,']], ';');
    expect(scan(text).errors).toEqual([
      { line: 2, column: 'amount_sgd', message: '"1,234" has more than 2 digits after the decimal comma (no thousands separators)' },
      { line: 3, column: 'amount_sgd', message: '"1.234,50" is not a plain decimal such as 12,34 or 12.34 or -5 (no thousands separators or spaces)' },
      { line: 4, column: 'amount_sgd', message: '",5" is not a plain decimal such as 12,34 or 12.34 or -5 (no thousands separators or spaces)' },
      { line: 5, column: 'amount_sgd', message: '"1," is not a plain decimal such as 12,34 or 12.34 or -5 (no thousands separators or spaces)' },
    ]);
  });

  it('when a comma file quotes an amount with a comma, then it is refused as before', () => {
    expect(scan('date,order_id,product_id,amount_sgd\n2024-01-01,A,P,"12,50"\n').errors).toEqual([
      { line: 2, column: 'amount_sgd', message: '"12,50" is not a plain decimal (no thousands separators or spaces)' },
    ]);
  });

  it('parses exactly: limits and signs as parseAmountCents', () => {
    expect(parseDecimalCommaCents('999999999999,99')).toBe(99_999_999_999_999);
    expect(parseDecimalCommaCents('1000000000000,00')).toMatch(/too large/);
    expect(parseDecimalCommaCents('-0,00')).toBe(0);
    expect(parseDecimalCommaCents('12.5')).toBe(1250);
    expect(parseDecimalCommaCents('1,2,3')).toMatch(/not a plain decimal/);
  });
});

describe('column aliases', () => {
  const ALIASED = ['Order Date', 'Order ID', 'SKU', 'Total (SGD)'];
  const columns = 'date=Order Date,order_id=Order ID,product_id=sku,amount_sgd=Total (SGD)';

  it('when the header uses aliases (any case, trimmed), then the rows are read and row errors name the columns as the file does', () => {
    const text = write([[' order date ', 'ORDER ID', 'SKU', 'Total (SGD)', 'Note'], ['2024-01-01', 'A', 'P', '1.50', 'x'], ['2024-02-30', 'B', '', '', 'y']], ';');
    const out = scan(text, format('auto', columns));
    expect(out.failure).toBeUndefined();
    expect(out.layout).toMatchObject({ labels: { date: 'order date', order_id: 'ORDER ID', product_id: 'SKU', amount_sgd: 'Total (SGD)' }, warnings: ['ignored column: Note'] });
    expect(out.rows).toMatchObject([{ line: 2, date: '2024-01-01', orderId: 'A', productId: 'P', amountCents: 150 }]);
    expect(out.errors).toEqual([
      { line: 3, column: 'order date', message: '"2024-02-30" is not a real calendar date' },
      { line: 3, column: 'SKU', message: 'SKU is empty' },
      { line: 3, column: 'Total (SGD)', message: 'Total (SGD) is empty' },
    ]);
  });

  it('when a field keeps its own name beside aliases of others, then row errors use the field name', () => {
    const out = scan(write([['date', 'Order ID', 'product_id', 'amount_sgd'], ['', 'A', 'P', '1']], ','), format('auto', 'order_id=Order ID'));
    expect(out.errors).toEqual([{ line: 2, column: 'date', message: 'date is empty' }]);
  });

  it('when the file has neither a field\'s name nor its alias, then it fails naming both', () => {
    expect(scan(write([['Day', ...ALIASED.slice(1)], ['2024-01-01', 'A', 'P', '1']], ';'), format('auto', columns)).failure).toBe(
      'line 1: missing required column "date" or its alias "Order Date" (the header must name date, order_id, product_id, amount_sgd) (the header read as semicolon-separated)',
    );
    expect(scan(write([['Day', 'order_id', 'product_id', 'amount_sgd'], ['2024-01-01', 'A', 'P', '1']], ','), format('auto', 'date=Order Date,date=Datum')).failure).toBe(
      'line 1: missing required column "date" or its aliases "Order Date", "Datum" (the header must name date, order_id, product_id, amount_sgd)',
    );
  });

  it('when two columns of the file name one field, then it fails naming both', () => {
    expect(scan(write([['date', 'order_id', 'product_id', 'amount_sgd', 'Order Date'], ['2024-01-01', 'A', 'P', '1', '2024-01-01']], ','), format('auto', columns)).failure).toBe(
      'line 1: columns "date" (column 1) and "Order Date" (column 5) both name date; keep one, or change the column aliases',
    );
  });

  it('when aliases cannot be used, then parsing them says why', () => {
    const why = (text: string) => {
      try {
        parseColumnAliases(text);
      } catch (error) {
        expect(error).toBeInstanceOf(ColumnAliasError);
        return (error as Error).message;
      }
      throw new Error(`expected ${JSON.stringify(text)} to be refused`);
    };
    expect(why('dat=Order Date')).toBe('names an unknown field "dat" (the fields are date, order_id, product_id, amount_sgd)');
    expect(why('Order Date')).toMatch(/^must be field=column name pairs separated by commas, .*; "Order Date" is not one$/);
    expect(why('date=  ')).toBe('gives no column name for date');
    expect(why('date=Day,order_id=day')).toBe('maps "day" to both date and order_id');
    expect(why('date=order_id')).toBe('maps "order_id" to date, but order_id is a field\'s own name');
    expect(parseColumnAliases(' DATE = Order Date ,, date=date, date=order date')).toEqual({ date: ['Order Date'] });
    expect(parseColumnAliases('')).toEqual({});
  });

  it('when CSV_COLUMNS is set, then start-up reads it, or stops with one line naming it', () => {
    const env = { SALES_DIR: tmpdir() };
    expect(loadConfig({ ...env, CSV_COLUMNS: columns }).csvColumns).toEqual({
      date: ['Order Date'],
      order_id: ['Order ID'],
      product_id: ['sku'],
      amount_sgd: ['Total (SGD)'],
    });
    expect(loadConfig(env).csvColumns).toEqual({});
    expect(() => loadConfig({ ...env, CSV_COLUMNS: 'dat=Day' })).toThrow(
      new ConfigError('CSV_COLUMNS names an unknown field "dat" (the fields are date, order_id, product_id, amount_sgd) (got "dat=Day")'),
    );
  });

  it('when an import adds aliases to the setting, then both count, and a clash between them is refused', () => {
    const setting = parseColumnAliases('date=Order Date');
    expect(importFormat(setting, 'tab', 'amount_sgd=Total').columns).toEqual({ date: ['Order Date'], amount_sgd: ['Total'] });
    expect(() => importFormat(setting, 'auto', 'order_id=order date')).toThrow('maps "order date" to both date and order_id');
  });
});

describe('property: the delimiter changes nothing but the delimiter', () => {
  const PIECES = [',', ';', '\t', '"', '\n', '\r\n', 'a', 'Z', '7', ' ', 'é', '😀'];
  const field = fc.array(fc.constantFrom(...PIECES), { maxLength: 6 }).map((p) => p.join(''));
  const table = fc
    .array(fc.array(field, { minLength: 3, maxLength: 3 }), { minLength: 1, maxLength: 8 })
    // A record whose only field is blank is skipped, whatever the delimiter: leave those out.
    .map((rows) => rows.filter((r) => r.some((f) => f.trim() !== '')))
    .filter((rows) => rows.length > 0);

  it('when a random table is written with ; or tab, then it reads as the same records as with ,', () => {
    fc.assert(
      fc.property(table, fc.constantFrom(';', '\t') as fc.Arbitrary<FieldDelimiter>, fc.constantFrom('\n', '\r\n'), (rows, delimiter, eol) => {
        const read = (d: FieldDelimiter) => {
          const parser = new CsvParser(d);
          return [...parser.push(write(rows, d, eol)), ...parser.end()];
        };
        expect(read(delimiter)).toEqual(read(','));
      }),
      { numRuns: 300 },
    );
  });

  const value = fc.oneof(
    fc.constantFrom('2024-01-01', '2024-02-29', '2023-02-29', '', ' 2024-03-01 ', 'A', 'B;1', 'C\t2', 'D,3', 'E"4', 'F\n5', '1.50', '-2', '1.234', 'x'),
    field,
  );
  const salesTable = fc.array(fc.array(value, { minLength: 4, maxLength: 4 }), { maxLength: 12 });

  it('when random sales rows are written with ; or tab, then the import reads the rows and row errors of the comma file', () => {
    fc.assert(
      fc.property(salesTable, fc.constantFrom(';', '\t') as fc.Arbitrary<FieldDelimiter>, fc.integer({ min: 1, max: 40 }), (rows, delimiter, chunk) => {
        // Amounts with a comma mean something else with ; or tab (a decimal comma): leave them out.
        const table = [HEADER, ...rows.filter((r) => !r[3]!.includes(',') && r.some((f) => f.trim() !== ''))];
        const comma = scan(write(table, ','), undefined, chunk);
        const other = scan(write(table, delimiter), undefined, chunk);
        expect(other.failure).toBe(comma.failure);
        expect(other.rows).toEqual(comma.rows);
        expect(other.errors).toEqual(comma.errors);
      }),
      { numRuns: 300 },
    );
  });
});

describe.each(DIALECTS)('semicolon, tab and aliased files imported on %s', (kind) => {
  const h = useHarness(kind);
  const total = async () => (await h.app.inject({ url: '/api/metrics/revenue' })).json();
  const upload = (content: string | Buffer, query = '') =>
    h.app.inject({ method: 'POST', url: `/api/imports/${query}`, payload: content, headers: { 'content-type': 'text/csv' } });
  const stored = async () => (await h.database.db.selectFrom('sales').select(['order_id', 'product_id', 'amount_sgd']).orderBy('order_id').execute()).length;


  it('when a European semicolon export (BOM, CRLF, decimal commas, quoted ;) is uploaded, then its total is exact', async () => {
    const text =
      '\ufeffdate;order_id;product_id;amount_sgd\r\n' +
      '2024-01-01;"ORD;1";P1;1234,56\r\n' +
      '2024-01-01;ORD-2;"P ""2""";0,01\r\n' +
      '2024-01-02;ORD-3;P3;-100,5\r\n' +
      '2024-01-02;ORD-4;P4;99.99\r\n';
    const res = await upload(text, '?filename=eu.csv');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ status: 'success', num_rows: 4, rows_rejected: 0, warnings: [] });
    expect(await total()).toMatchObject({ total_revenue: '1234.06', order_count: 4 });
    const ids = await h.database.db.selectFrom('sales').select(['order_id', 'product_id']).orderBy('order_id').execute();
    expect(ids).toEqual([
      { order_id: 'ORD-2', product_id: 'P "2"' },
      { order_id: 'ORD-3', product_id: 'P3' },
      { order_id: 'ORD-4', product_id: 'P4' },
      { order_id: 'ORD;1', product_id: 'P1' },
    ]);
  });

  it('when a tab file with other column names is uploaded as a form with delimiter and columns, then it is imported', async () => {
    const text = write([['Order Date', 'Order ID', 'SKU', 'Total (SGD)'], ['2024-03-01', 'T-1', 'P\t1', '10,10'], ['2024-03-01', 'T-2', 'P2', '0.90']], '\t', '\r\n');
    const form = multipart({ delimiter: 'tab', columns: 'date=Order Date,order_id=Order ID,product_id=SKU,amount_sgd=Total (SGD)' }, { name: 'tab.tsv', content: text });
    const res = await h.app.inject({ method: 'POST', url: '/api/imports', ...form });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ filename: 'tab.tsv', status: 'success', num_rows: 2 });
    expect((await total()).total_revenue).toBe('11.00');
  });

  it('when the folder holds a semicolon export with aliased columns, then import-sales takes columns in the query', async () => {
    h.writeCsv('shop.csv', write([['Datum', 'Bestellung', 'Artikel', 'Betrag (SGD)'], ['2024-04-01', 'S-1', 'P1', '5,25'], ['2024-04-02', 'S-2', 'P1', '4,75']], ';'));
    const columns = encodeURIComponent('date=Datum,order_id=Bestellung,product_id=Artikel,amount_sgd=Betrag (SGD)');
    const res = await h.app.inject({ method: 'POST', url: `/api/import-sales/?delimiter=semicolon&columns=${columns}` });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().summary).toMatchObject({ imported: 1, failed: 0, rows: 2 });
    expect((await total()).total_revenue).toBe('10.00');
  });

  it('when CSV_COLUMNS names the columns, then uploads use it without asking, and an import adds its own', async () => {
    await h.rebuild({ csvColumns: parseColumnAliases('date=Order Date,amount_sgd=Total') });
    const first = await upload(write([['Order Date', 'order_id', 'product_id', 'Total'], ['2024-05-01', 'C-1', 'P', '2.50']], ','));
    expect(first.json(), first.body).toMatchObject({ status: 'success', num_rows: 1 });
    const second = await upload(write([['Order Date', 'Ref', 'product_id', 'Total'], ['2024-05-01', 'C-2', 'P', '1.50']], ','), '?columns=order_id%3DRef');
    expect(second.json(), second.body).toMatchObject({ status: 'success', num_rows: 1 });
    expect((await total()).total_revenue).toBe('4.00');
  });

  it('when delimiter or columns cannot be used, then the request is 400 naming it and nothing is stored', async () => {
    const text = write([HEADER, ['2024-01-01', 'X-1', 'P', '1']], ',');
    const bad = await upload(text, '?delimiter=pipe');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_parameter' });
    const alias = await upload(text, `?columns=${encodeURIComponent('dat=Day')}`);
    expect(alias.statusCode).toBe(400);
    expect(alias.json()).toEqual({
      error: 'invalid_parameter',
      field: 'columns',
      message: 'columns names an unknown field "dat" (the fields are date, order_id, product_id, amount_sgd)',
    });
    const clash = await h.app.inject({ method: 'POST', url: `/api/import-sales?columns=${encodeURIComponent('date=Day,order_id=day')}` });
    expect(clash.statusCode).toBe(400);
    expect(clash.json()).toMatchObject({ field: 'columns', message: 'columns maps "day" to both date and order_id' });
    const form = multipart({ delimiter: 'pipe' }, { name: 'x.csv', content: text });
    const viaForm = await h.app.inject({ method: 'POST', url: '/api/imports', ...form });
    expect(viaForm.statusCode).toBe(400);
    expect(viaForm.json()).toMatchObject({ field: 'delimiter' });
    expect(await stored()).toBe(0);
    expect(await h.database.db.selectFrom('imported_files').select('id').execute()).toEqual([]);
  });

  it('when a file fails for want of an alias, then it can be imported again with it; the same bytes later are skipped whatever the options', async () => {
    const text = write([['Day', 'order_id', 'product_id', 'amount_sgd'], ['2024-06-01', 'R-1', 'P', '3.00']], ';');
    const failed = (await upload(text)).json();
    expect(failed).toMatchObject({
      status: 'failed',
      error_message:
        'line 1: missing required column "date" (the header must name date, order_id, product_id, amount_sgd) (the header read as semicolon-separated)',
    });
    const retried = (await upload(text, '?columns=date%3DDay')).json();
    expect(retried).toMatchObject({ id: failed.id, status: 'success', num_rows: 1 });
    const again = (await upload(text, '?delimiter=comma')).json();
    expect(again).toMatchObject({ id: failed.id, status: 'skipped' });
    expect((await total()).total_revenue).toBe('3.00');
  });

  it('when the same rows with errors come as a comma and as a semicolon file, then their records list the same errors', async () => {
    const rows = [HEADER, ['2024-07-01', 'E-1', 'P', '1'], ['2024-07-01', 'E-"2"\nsecond line', 'P', 'oops'], ['2024-07-32', 'E-3', 'P', '2'], ['2024-07-01', 'E-1', 'P', '5']];
    const comma = (await upload(write(rows, ','))).json();
    const semi = (await upload(write(rows, ';'))).json();
    expect(comma.status).toBe('failed');
    expect(semi.status).toBe('failed');
    expect(semi.errors).toEqual(comma.errors);
    expect(semi.errors.map((e: RowError) => [e.line, e.column])).toEqual([
      [3, 'amount_sgd'],
      [5, 'date'],
      [6, null],
    ]);
    expect(await stored()).toBe(0);
  });
});

describe('zinc import --delimiter --columns', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'zinc-csv-cli-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const zinc = cliRunner(path.join(work, 'cli.sqlite'));

  it('when a folder holds semicolon exports with other names, then --columns (or CSV_COLUMNS) imports them', async () => {
    const dir = mkdtempSync(path.join(work, 'sales-'));
    writeFileSync(path.join(dir, 'a.csv'), write([['Order Date', 'Order ID', 'product_id', 'amount_sgd'], ['2024-01-01', 'CLI-1', 'P', '1,50']], ';'));
    const without = await zinc(['import', dir]);
    expect(without.code).toBe(1);
    expect(without.stdout).toMatch(/^failed\s+a\.csv .*missing required column "date"/m);
    const withColumns = await zinc(['import', dir, '--delimiter', 'semicolon', '--columns', 'date=Order Date,order_id=Order ID']);
    expect(withColumns.code, withColumns.stderr + withColumns.stdout).toBe(0);
    expect(withColumns.stdout).toMatch(/^success\s+a\.csv \(import \d+\) 1 rows/m);

    writeFileSync(path.join(dir, 'b.csv'), write([['Order Date', 'Order ID', 'product_id', 'amount_sgd'], ['2024-01-02', 'CLI-2', 'P', '2']], '\t'));
    const viaEnv = await zinc(['import', dir], { CSV_COLUMNS: 'date=Order Date,order_id=Order ID' });
    expect(viaEnv.code, viaEnv.stderr + viaEnv.stdout).toBe(0);
    expect(viaEnv.stdout).toMatch(/^success\s+b\.csv .*1 rows/m);
    expect(viaEnv.stdout).toMatch(/^skipped\s+a\.csv/m);
  });

  it('when --delimiter, --columns or CSV_COLUMNS cannot be used, then import stops with one line saying why', async () => {
    const dir = mkdtempSync(path.join(work, 'sales-'));
    const bad = [
      [['import', dir, '--delimiter', 'pipe'], {}, 'zinc: --delimiter must be auto, comma, semicolon, tab (got "pipe")'],
      [['import', dir, '--columns', 'dat=Day'], {}, 'zinc: --columns names an unknown field "dat" (the fields are date, order_id, product_id, amount_sgd)'],
      [['import', dir], { CSV_COLUMNS: 'date' }, 'zinc: CSV_COLUMNS must be field=column name pairs separated by commas, such as date=Order Date,amount_sgd=Total (SGD); "date" is not one (got "date")'],
    ] as const;
    for (const [args, env, line] of bad) {
      const { code, stderr } = await zinc([...args], env);
      expect(code).toBe(1);
      expect(stderr.trim()).toBe(line);
    }
  });
});
