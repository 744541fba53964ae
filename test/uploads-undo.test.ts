import { describe, expect, it } from 'vitest';
import { IMPORT_PATHS, useImportPath } from './support/databases.js';
import { csv, orderId, useHarness } from './support/harness.js';
import { multipart } from './support/multipart.js';


describe.each(IMPORT_PATHS)('uploads and undo on $name', (importPath) => {
  const { kind, mysqlLoadMethod } = importPath;
  useImportPath(importPath);
  const h = useHarness(kind, { mysqlLoadMethod, maxUploadBytes: 4096 });

  const upload = (content: string | Buffer, query = '') =>
    h.app.inject({ method: 'POST', url: `/api/imports/${query}`, payload: content, headers: { 'content-type': 'text/csv' } });
  const total = async () => (await h.app.inject({ url: '/api/metrics/revenue' })).json();
  const recordCount = async () => (await h.database.db.selectFrom('imported_files').select('id').execute()).length;

  describe('uploads', () => {
    it('when a CSV is posted as text/csv, then it is imported under the given name', async () => {
      const res = await upload(csv([['2024-01-01', orderId(), 'P', '7.25']]), '?filename=shop-export.csv');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ filename: 'shop-export.csv', status: 'success', num_rows: 1 });
      expect((await total()).total_revenue).toBe('7.25');
      const again = await upload(csv([['2024-01-01', orderId(), 'P', '1.00']]));
      expect(again.json().filename).toMatch(/^upload-\d{8}T\d{6}Z\.csv$/);
    });

    it('when a CSV is posted as multipart, then the part name and on_error field are used', async () => {
      const form = multipart({ on_error: 'skip' }, { name: '../../etc/passwd.csv', content: csv([['2024-01-01', orderId(), 'P', '2.00'], ['bad', orderId(), 'P', '1']]) });
      const res = await h.app.inject({ method: 'POST', url: '/api/imports', ...form });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ filename: 'passwd.csv', status: 'partial', num_rows: 1, rows_rejected: 1 });
    });

    it('when the form sends on_error after the file (as curl -F file=@… -F on_error=skip does), then it is used too', async () => {
      const form = multipart({}, { name: 'after.csv', content: csv([['2024-01-01', orderId(), 'P', '4.00'], ['bad', orderId(), 'P', '1']]) }, { on_error: 'skip' });
      const res = await h.app.inject({ method: 'POST', url: '/api/imports', ...form });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ filename: 'after.csv', status: 'partial', on_error: 'skip', num_rows: 1, rows_rejected: 1 });
    });

    it('when a form has a bad on_error or two files, then it is 400 naming the problem and nothing is stored', async () => {
      const before = await h.app.inject({ url: '/api/imports' });
      const bad = multipart({}, { name: 'bad.csv', content: csv([['2024-01-01', orderId(), 'P', '4.00']]) }, { on_error: 'ignore' });
      const res = await h.app.inject({ method: 'POST', url: '/api/imports', ...bad });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toMatchObject({ error: 'invalid_parameter', field: 'on_error', message: expect.stringContaining('fail or skip') });
      const two = multipart({}, { name: 'one.csv', content: csv([['2024-01-01', orderId(), 'P', '4.00']]) });
      const second = `--${two.headers['content-type'].split('boundary=')[1]}\r\nContent-Disposition: form-data; name="file"; filename="two.csv"\r\nContent-Type: text/csv\r\n\r\n${csv([['2024-01-01', orderId(), 'P', '5.00']])}\r\n`;
      const payload = Buffer.concat([two.payload.subarray(0, two.payload.lastIndexOf('--' + two.headers['content-type'].split('boundary=')[1] + '--')), Buffer.from(second), Buffer.from(`--${two.headers['content-type'].split('boundary=')[1]}--\r\n`)]);
      const twice = await h.app.inject({ method: 'POST', url: '/api/imports', payload, headers: two.headers });
      expect(twice.statusCode, twice.body).toBe(400);
      expect(twice.json()).toMatchObject({ error: 'invalid_parameter', message: expect.stringContaining('one file') });
      expect((await h.app.inject({ url: '/api/imports' })).json()).toEqual(before.json());
      expect((await total()).total_revenue).toBe('0.00');
    });

    it('when the same content is uploaded twice, then the second is skipped', async () => {
      const content = csv([['2024-01-01', orderId(), 'P', '3.00']]);
      const first = (await upload(content)).json();
      const second = await upload(content, '?filename=again.csv');
      expect(second.json()).toMatchObject({ id: first.id, status: 'skipped', error_message: expect.stringContaining('already imported') });
    });

    it('when an upload is larger than MAX_UPLOAD_BYTES, then it is 413 and nothing is stored', async () => {
      const rows = Array.from({ length: 200 }, () => ['2024-01-01', orderId(), 'P', '1.00']);
      const res = await upload(csv(rows));
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ error: 'payload_too_large' });
      const form = multipart({}, { name: 'big.csv', content: csv(rows) });
      const viaForm = await h.app.inject({ method: 'POST', url: '/api/imports', ...form });
      expect(viaForm.statusCode).toBe(413);
      expect(await recordCount()).toBe(0);
      expect((await total()).sale_count).toBe(0);
    });

    it('when the upload is binary or of another type, then it is refused with a clear message', async () => {
      const bin = await upload(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x08]));
      expect(bin.statusCode).toBe(415);
      expect(bin.json().message).toMatch(/binary/);
      const json = await h.app.inject({ method: 'POST', url: '/api/imports', payload: { a: 1 } });
      expect(json.statusCode).toBe(415);
      expect(json.json().message).toMatch(/text\/csv/);
      expect(await recordCount()).toBe(0);
    });

    it('when async=true, then the answer is 202 with the id and the record ends in success', async () => {
      const rows = Array.from({ length: 50 }, () => ['2024-02-01', orderId(), 'P', '1.00']);
      const res = await upload(csv(rows), '?async=true&filename=async.csv');
      expect(res.statusCode, res.body).toBe(202);
      const { id, status } = res.json();
      expect(status).toBe('processing');
      let record = res.json();
      for (let i = 0; i < 100 && record.status === 'processing'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        record = (await h.app.inject({ url: `/api/imports/${id}` })).json();
      }
      expect(record).toMatchObject({ id, status: 'success', num_rows: 50 });
    });

    it('when import-sales runs with async=true, then it answers 202 with every new file\'s id', async () => {
      h.writeCsv('a.csv', csv([['2024-03-01', orderId(), 'P', '1.00']]));
      h.writeCsv('b.csv', csv([['2024-03-01', orderId(), 'P', '2.00']]));
      const res = await h.app.inject({ url: '/api/import-sales?async=true' });
      expect(res.statusCode, res.body).toBe(202);
      const files = res.json().files as Array<{ id: number; filename: string; status: string }>;
      expect(files.map((f) => [f.filename, f.status])).toEqual([
        ['a.csv', 'processing'],
        ['b.csv', 'processing'],
      ]);
      for (const f of files) {
        let status = 'processing';
        for (let i = 0; i < 100 && status === 'processing'; i++) {
          await new Promise((r) => setTimeout(r, 50));
          status = (await h.app.inject({ url: `/api/imports/${f.id}` })).json().status;
        }
        expect(status).toBe('success');
      }
      expect((await total()).total_revenue).toBe('3.00');
    });
  });

  describe('undo', () => {
    async function importRows(name: string, rows: string[][]) {
      h.writeCsv(name, csv(rows));
      const res = await h.app.inject({ url: '/api/import-sales' });
      return (res.json().files as Array<{ filename: string; id: number; status: string }>).find((f) => f.filename === name)!;
    }
    const undo = (id: number) => h.app.inject({ method: 'DELETE', url: `/api/imports/${id}` });

    it('when a correction is undone, then the earlier values come back and the file can be imported again', async () => {
      const a = orderId();
      const b = orderId();
      const first = await importRows('1.csv', [['2024-01-01', a, 'P-1', '10.00'], ['2024-01-01', b, 'P-1', '5.00']]);
      const fix = await importRows('2.csv', [['2024-01-02', a, 'P-1', '12.00'], ['2024-01-02', orderId(), 'P-1', '1.00']]);
      expect(await total()).toMatchObject({ total_revenue: '18.00', sale_count: 3 });

      const res = await undo(fix.id);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ id: fix.id, status: 'reverted' });
      expect(await total()).toMatchObject({ total_revenue: '15.00', sale_count: 2 });
      const daily = (await h.app.inject({ url: '/api/metrics/revenue/daily?start=2024-01-01&end=2024-01-02' })).json();
      expect(daily.days.map((d: { revenue: string }) => d.revenue)).toEqual(['15.00', '0.00']);

      expect((await undo(fix.id)).statusCode).toBe(409);
      const again = await h.app.inject({ url: '/api/import-sales' });
      expect(again.json().files.find((f: { filename: string }) => f.filename === '2.csv')).toMatchObject({ id: fix.id, status: 'success' });
      expect(await total()).toMatchObject({ total_revenue: '18.00' });

      expect((await undo(first.id)).statusCode).toBe(200);
      expect(await total()).toMatchObject({ total_revenue: '13.00', sale_count: 2 });
    });

    it('when a middle import of a chain is undone, then undoing the last restores the first value', async () => {
      const o = orderId();
      const one = await importRows('1.csv', [['2024-01-01', o, 'P', '1.00']]);
      const two = await importRows('2.csv', [['2024-01-01', o, 'P', '2.00']]);
      const three = await importRows('3.csv', [['2024-01-01', o, 'P', '3.00']]);
      expect((await total()).total_revenue).toBe('3.00');
      expect((await undo(two.id)).statusCode).toBe(200);
      expect((await total()).total_revenue).toBe('3.00');
      expect((await undo(three.id)).statusCode).toBe(200);
      expect((await total()).total_revenue).toBe('1.00');
      expect((await undo(one.id)).statusCode).toBe(200);
      expect(await total()).toMatchObject({ total_revenue: '0.00', sale_count: 0 });
      expect(await h.database.db.selectFrom('sales_history').selectAll().execute()).toEqual([]);
    });

    it('when the import is unknown, failed or still processing, then undo refuses', async () => {
      expect((await undo(424242)).statusCode).toBe(404);
      const failed = await importRows('bad.csv', [['2024-01-01', orderId(), 'P', 'x']]);
      expect((await undo(failed.id)).json()).toMatchObject({ error: 'conflict' });
      const busy = await importRows('ok.csv', [['2024-01-01', orderId(), 'P', '1.00']]);
      await h.database.writer.updateTable('imported_files').set({ status: 'processing' }).where('id', '=', busy.id).execute();
      const res = await undo(busy.id);
      expect(res.statusCode).toBe(409);
      expect(res.json().message).toMatch(/still processing/);
    });
  });
});
