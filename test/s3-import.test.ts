import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSalesCsv } from '../bench/sales-generator.js';
import { ConfigError, loadConfig, parseS3Url } from '../src/config.js';
import { importFolder, type FileOutcome } from '../src/imports/import.service.js';
import { s3Folder } from '../src/imports/s3-source.js';
import { SalesFolderError, type SalesFolder } from '../src/imports/sales-source.js';
import { DIALECTS } from './support/databases.js';
import { csv, orderId, useHarness } from './support/harness.js';
import { S3_CREDENTIALS, startLocalS3, type LocalS3 } from './support/s3-server.js';
import { waitFor } from './support/wait.js';
import { cliRunner } from './support/cli.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
let s3: LocalS3;
const work = mkdtempSync(path.join(tmpdir(), 'zinc-s3-'));

beforeAll(async () => {
  s3 = await startLocalS3();
  // The app's runs find credentials as in production: the SDK's default chain, here the environment.
  process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
});
afterAll(async () => {
  await s3?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A bucket no other test uses. */
async function newBucket(): Promise<string> {
  const bucket = `zinc-${randomBytes(6).toString('hex')}`;
  await s3.createBucket(bucket);
  return bucket;
}

function recordOf(outcome: FileOutcome | undefined) {
  if (!outcome || outcome.status === 'refused') throw new Error(`no record: ${JSON.stringify(outcome)}`);
  return outcome.record;
}

/**
 * `folder` with test hooks: `afterList` runs once the listing is done (before any object is
 * read); `beforeRead(name, n)` before the n-th read (1: the hash, 2: the load, …) of an object.
 */
function hooked(
  folder: SalesFolder,
  hooks: { afterList?: () => Promise<void>; beforeRead?: (name: string, n: number) => Promise<void> },
): SalesFolder {
  return {
    location: folder.location,
    close: () => folder.close?.() ?? Promise.resolve(),
    list: async () => {
      const entries = await folder.list();
      await hooks.afterList?.();
      return entries.map((entry) => ({
        name: entry.name,
        open: async () => {
          const opened = await entry.open();
          if ('refused' in opened) return opened;
          let reads = 0;
          const { source } = opened;
          const open = () =>
            Readable.from(
              (async function* () {
                await hooks.beforeRead?.(source.name, ++reads);
                yield* source.open();
              })(),
              { objectMode: false },
            );
          return { close: opened.close, source: { name: source.name, open } };
        },
      }));
    },
  };
}

describe.each(DIALECTS)('imports from S3-compatible storage (%s)', (kind) => {
  const h = useHarness(kind);
  const records = async () => h.database.db.selectFrom('imported_files').selectAll().orderBy('id').execute();
  const salesCount = async () => Number((await h.database.db.selectFrom('sales').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const revenue = async (start = '2024-01-01', end = '2024-12-31') => {
    const res = await h.app.inject({ method: 'GET', url: `/api/metrics/revenue/?start=${start}&end=${end}` });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { total_revenue: string; order_count: number; sale_count: number };
  };
  /** Imports the bucket's prefix through a folder of its own, closed afterwards. */
  async function importS3(bucket: string, prefix: string, options: { onError?: 'fail' | 'skip'; wrap?: (f: SalesFolder) => SalesFolder } = {}) {
    const folder = await s3Folder(s3.location(bucket, prefix));
    try {
      return await importFolder(h.database, options.wrap ? options.wrap(folder) : folder, {
        onError: options.onError ?? 'fail',
        log: quiet,
        mysqlLoadMethod: h.config.mysqlLoadMethod,
      });
    } finally {
      await folder.close?.();
    }
  }

  it('when a prefix holds *.csv objects, then each one directly under it is imported in name order, to the cent, and nothing else is read', async () => {
    const bucket = await newBucket();
    const jan = csv([
      ['2024-01-05', orderId(), 'P-1', '10.10'],
      ['2024-01-06', orderId(), 'P-2', '0.01'],
    ]);
    const feb = csv([['2024-02-01', orderId(), 'P-1', '-2.50']]);
    await s3.put(bucket, 'sales/2024-02.CSV', feb);
    await s3.put(bucket, 'sales/2024-01.csv', jan);
    // Beside them, none of which may count: another type, a "subfolder", another prefix, the bucket's root.
    const decoy = csv([['2024-03-01', orderId('DECOY'), 'P-9', '999.00']]);
    await s3.put(bucket, 'sales/notes.txt', decoy);
    await s3.put(bucket, 'sales/old/2023-12.csv', decoy);
    await s3.put(bucket, 'sales-archive/2024-03.csv', decoy);
    await s3.put(bucket, 'root.csv', decoy);

    const result = await importS3(bucket, 'sales/');
    expect(result.files.map((f) => [f.filename, f.status])).toEqual([
      ['2024-01.csv', 'success'],
      ['2024-02.CSV', 'success'],
    ]);
    expect(result.summary).toEqual({ imported: 2, partial: 0, skipped: 0, failed: 0, rows: 3 });
    expect(recordOf(result.files[0]).size_bytes).toBe(Buffer.byteLength(jan));
    expect(await revenue()).toMatchObject({ total_revenue: '7.61', order_count: 3, sale_count: 3 });
    expect(await salesCount()).toBe(3);
  });

  it('when the same bytes come again, from the bucket or from a local folder, then they are skipped by their SHA-256', async () => {
    const bucket = await newBucket();
    const text = csv([['2024-04-01', orderId(), 'P-1', '12.34']]);
    await s3.put(bucket, 'in/2024-04.csv', text);
    expect((await importS3(bucket, 'in')).summary.imported).toBe(1);

    const again = await importS3(bucket, 'in');
    expect(again.files).toMatchObject([{ status: 'skipped', filename: '2024-04.csv', message: expect.stringMatching(/already imported as 2024-04\.csv/) }]);
    h.writeCsv('local-copy.csv', text);
    const local = await importFolder(h.database, h.salesDir, { onError: 'fail', log: quiet });
    expect(local.files).toMatchObject([{ status: 'skipped', filename: 'local-copy.csv', message: expect.stringMatching(/already imported as 2024-04\.csv/) }]);
    expect(await records()).toHaveLength(1);
    expect((await revenue()).total_revenue).toBe('12.34');
  });

  it('when an object has bad rows, then its record lists them by line and column as for a local file, and with on_error=skip the good rows are kept', async () => {
    const bucket = await newBucket();
    await s3.put(bucket, 'bad.csv', csv([['2024-05-01', orderId(), 'P-1', '5.00'], ['2024-05-02', orderId(), 'P-1', '5.001'], ['2024-13-01', orderId(), 'P-1', '1.00']]));
    const strict = await importS3(bucket, '');
    const failed = recordOf(strict.files[0]);
    expect(failed.status).toBe('failed');
    expect(failed.error_message).toMatch(/^2 rows have errors, so nothing was imported \(first: line 3, amount_sgd: /);
    expect(JSON.parse(failed.errors)).toMatchObject([
      { line: 3, column: 'amount_sgd' },
      { line: 4, column: 'date' },
    ]);
    expect(await salesCount()).toBe(0);

    const lenient = await importS3(bucket, '', { onError: 'skip' });
    expect(recordOf(lenient.files[0])).toMatchObject({ status: 'partial', num_rows: 1, rows_rejected: 2 });
    expect((await revenue()).total_revenue).toBe('5.00');
  });

  it('when the credentials are wrong, then the run fails with one line saying so and nothing is stored', async () => {
    const bucket = await newBucket();
    await s3.put(bucket, 'a.csv', csv([['2024-06-01', orderId(), 'P-1', '1.00']]));
    const folder = await s3Folder(s3.location(bucket, ''), { credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'wrong-secret-value' } });
    const error = await importFolder(h.database, folder, { onError: 'fail', log: quiet }).catch((e: unknown) => e);
    await folder.close?.();
    expect(error).toBeInstanceOf(SalesFolderError);
    expect(error).toMatchObject({ reason: 'denied' });
    const { message } = error as Error;
    expect(message).toMatch(new RegExp(`^the S3 endpoint ${s3.endpoint} refused to list s3://${bucket}/ \\(InvalidAccessKeyId: `));
    expect(message).toMatch(/set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \(or AWS_PROFILE\)/);
    expect(message).not.toMatch(/wrong-secret-value/);
    expect(message.split('\n')).toHaveLength(1);
    expect(await records()).toHaveLength(0);
    expect(await salesCount()).toBe(0);
  });

  it('when the bucket does not exist, then the run fails naming it and nothing is stored', async () => {
    const error = await importS3('no-such-bucket-here', 'sales/').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SalesFolderError);
    expect(error).toMatchObject({ reason: 'not_found' });
    expect((error as Error).message).toMatch(/^bucket no-such-bucket-here does not exist at the S3 endpoint .* \(NoSuchBucket: .*\); check SALES_URL$/);
    expect(await records()).toHaveLength(0);
  });

  it('when an object vanishes after the listing, then that file fails with the reason (no record: nothing was read) and the others import', async () => {
    const bucket = await newBucket();
    await s3.put(bucket, 'a.csv', csv([['2024-07-01', orderId(), 'P-1', '1.00']]));
    await s3.put(bucket, 'b.csv', csv([['2024-07-02', orderId(), 'P-1', '2.00']]));
    const result = await importS3(bucket, '', { wrap: (f) => hooked(f, { afterList: () => s3.remove(bucket, 'a.csv') }) });
    expect(result.files[0]).toMatchObject({ status: 'refused', filename: 'a.csv' });
    expect(result.files[0]!.status === 'refused' && result.files[0]!.message).toBe(
      `not imported: s3://${bucket}/a.csv disappeared after it was listed (NoSuchKey: The specified key does not exist.)`,
    );
    expect(result.files[1]).toMatchObject({ status: 'success', filename: 'b.csv' });
    expect(result.summary).toMatchObject({ imported: 1, failed: 1 });
    expect((await revenue()).total_revenue).toBe('2.00');
    expect((await records()).map((r) => r.filename)).toEqual(['b.csv']);
  });

  it('when an object vanishes after it was hashed and claimed, then its record fails saying why and nothing of it is stored', async () => {
    const bucket = await newBucket();
    await s3.put(bucket, 'gone.csv', csv([['2024-07-03', orderId(), 'P-1', '3.00']]));
    const result = await importS3(bucket, '', {
      wrap: (f) => hooked(f, { beforeRead: async (_name, n) => (n === 2 ? s3.remove(bucket, 'gone.csv') : undefined) }),
    });
    const record = recordOf(result.files[0]);
    expect(record).toMatchObject({ status: 'failed', num_rows: 0 });
    expect(record.error_message).toMatch(new RegExp(`^s3://${bucket}/gone\\.csv disappeared while it was being imported \\(NoSuchKey: .*\\); nothing of it was stored$`));
    expect(await salesCount()).toBe(0);
  });

  it('when an object is replaced during its import, then the file fails as changed (no mix of versions) and the next run imports the new one', async () => {
    const bucket = await newBucket();
    const replaced = orderId('OLD');
    const newer = orderId('NEW');
    await s3.put(bucket, 'live.csv', csv([['2024-08-01', replaced, 'P-1', '4.00']]));
    const result = await importS3(bucket, '', {
      wrap: (f) =>
        hooked(f, { beforeRead: async (_name, n) => (n === 2 ? s3.put(bucket, 'live.csv', csv([['2024-08-01', newer, 'P-1', '40.00']])) : undefined) }),
    });
    const record = recordOf(result.files[0]);
    expect(record.status).toBe('failed');
    // s3rver ignores If-Match: the ETag the GET answers with gives the change away.
    expect(record.error_message).toMatch(new RegExp(`^s3://${bucket}/live\\.csv changed while it was being imported \\(its ETag went from ".*" to ".*"\\); nothing of it was stored`));
    expect(await salesCount()).toBe(0);

    const next = await importS3(bucket, '');
    expect(recordOf(next.files[0])).toMatchObject({ status: 'success', num_rows: 1 });
    const stored = await h.database.db.selectFrom('sales').select('order_id').execute();
    expect(stored.map((r) => r.order_id)).toEqual([newer]);
  });

  // SQLite has no write conflicts (its write lock is taken at BEGIN).
  it.skipIf(kind === 'sqlite')(
    'when a write conflict runs the load again, then the object is read again from its first byte, pinned to the version first read',
    async () => {
      const bucket = await newBucket();
      const first = orderId();
      await s3.put(bucket, 'retry.csv', csv([['2024-08-10', first, 'P-1', '8.00']]));
      await s3.put(bucket, 'swapped.csv', csv([['2024-08-11', orderId('OLD'), 'P-1', '8.00']]));
      const reads: string[] = [];
      // The load's first read meets what the database would answer to a deadlock.
      const deadlock = () => Object.assign(new Error('Deadlock found when trying to get lock'), { code: kind === 'postgres' ? '40P01' : 'ER_LOCK_DEADLOCK' });
      const result = await importS3(bucket, '', {
        wrap: (f) =>
          hooked(f, {
            beforeRead: async (name, n) => {
              reads.push(`${name}#${n}`);
              if (n !== 2) return;
              if (name === 'swapped.csv') await s3.put(bucket, 'swapped.csv', csv([['2024-08-11', orderId('NEW'), 'P-1', '80.00']]));
              throw deadlock();
            },
          }),
      });
      expect(reads).toEqual(['retry.csv#1', 'retry.csv#2', 'retry.csv#3', 'swapped.csv#1', 'swapped.csv#2', 'swapped.csv#3']);
      expect(recordOf(result.files[0])).toMatchObject({ status: 'success', num_rows: 1 });
      const swapped = recordOf(result.files[1]);
      expect(swapped.status).toBe('failed');
      expect(swapped.error_message).toMatch(new RegExp(`^s3://${bucket}/swapped\\.csv changed while it was being imported`));
      expect((await h.database.db.selectFrom('sales').select('order_id').execute()).map((r) => r.order_id)).toEqual([first]);
    },
  );

  it('when SALES_URL is set, then POST /api/import-sales reads the bucket (also async), and a missing bucket or a store that does not answer is a clear 502 / 503', async () => {
    const bucket = await newBucket();
    await s3.put(bucket, 'exports/2024-09.csv', csv([['2024-09-01', orderId(), 'P-1', '9.99']]));
    await h.rebuild({ salesUrl: s3.location(bucket, 'exports/') });
    const res = await h.app.inject({ method: 'POST', url: '/api/import-sales/' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ files: [{ filename: '2024-09.csv', status: 'success', num_rows: 1 }], summary: { imported: 1 } });

    await s3.put(bucket, 'exports/2024-10.csv', csv([['2024-10-01', orderId(), 'P-1', '0.01']]));
    const started = await h.app.inject({ method: 'POST', url: '/api/import-sales/?async=true' });
    expect(started.statusCode, started.body).toBe(202);
    const { files } = started.json() as { files: Array<{ id: number; filename: string; status: string }> };
    expect(files.map((f) => [f.filename, f.status]).sort()).toEqual([
      ['2024-09.csv', 'skipped'],
      ['2024-10.csv', 'processing'],
    ]);
    const id = files.find((f) => f.status === 'processing')!.id;
    await waitFor(
      async () => ((await h.app.inject({ method: 'GET', url: `/api/imports/${id}` })).json().status === 'success' ? true : undefined),
      20_000,
      'the background import',
    );
    expect((await revenue()).total_revenue).toBe('10.00');

    await h.rebuild({ salesUrl: s3.location('no-such-bucket-here', 'exports/') });
    const missing = await h.app.inject({ method: 'POST', url: '/api/import-sales/' });
    expect(missing.statusCode).toBe(502);
    expect(missing.json()).toMatchObject({ error: 'sales_source_error', message: expect.stringMatching(/^bucket no-such-bucket-here does not exist/) });

    await h.rebuild({ salesUrl: { ...s3.location(bucket, 'exports/'), endpoint: 'http://127.0.0.1:1' } });
    const away = await h.app.inject({ method: 'POST', url: '/api/import-sales/?async=true' });
    expect(away.statusCode).toBe(503);
    expect(away.json()).toMatchObject({
      error: 'sales_source_unavailable',
      message: expect.stringMatching(new RegExp(`^cannot reach the S3 endpoint http://127\\.0\\.0\\.1:1 to list s3://${bucket}/exports/ \\(connect ECONNREFUSED`)),
    });
    expect((await records()).map((r) => r.status)).toEqual(['success', 'success']);
  });

  it('when a large object is imported, then every row arrives, to the cent', { timeout: 120_000 }, async () => {
    const bucket = await newBucket();
    const file = path.join(work, `big-${kind}.csv`);
    const { totalCents } = await generateSalesCsv(file, { rows: 200_000, seed: 11 });
    await s3.putFile(bucket, 'big.csv', file);
    const result = await importS3(bucket, '');
    expect(recordOf(result.files[0])).toMatchObject({ status: 'success', num_rows: 200_000, size_bytes: statSync(file).size });
    const cents = totalCents.toString().padStart(3, '0');
    expect((await revenue('2022-01-01', '2024-12-31')).total_revenue).toBe(`${cents.slice(0, -2)}.${cents.slice(-2)}`);
  });
});

describe('an S3 object as a source', () => {
  it('when it is read, then it streams at the reader\'s pace: while the reader waits, most of the object stays in the store, and memory grows by far less than the object', { timeout: 60_000 }, async () => {
    const bucket = await newBucket();
    const file = path.join(work, 'huge.csv');
    const line = Buffer.from('2024-01-01,ORD-00000001,P0001,123.45\n');
    const block = Buffer.concat(Array.from({ length: Math.floor(2 ** 20 / line.length) }, () => line));
    for (let i = 0; i < 64; i++) appendFileSync(file, block);
    const size = statSync(file).size;
    await s3.putFile(bucket, 'huge.csv', file);
    const expected = createHash('sha256');
    for await (const chunk of createReadStream(file)) expected.update(chunk as Buffer);

    // Between the store and the reader: how many bytes the store has sent so far.
    let sent = 0;
    const target = new URL(s3.endpoint);
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(target.port), target.hostname);
      upstream.on('data', (chunk: Buffer) => (sent += chunk.length));
      client.pipe(upstream).pipe(client);
      for (const socket of [client, upstream]) socket.on('error', () => (client.destroy(), upstream.destroy()));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const folder = await s3Folder({ ...s3.location(bucket, ''), endpoint: `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}` });
    try {
      const [entry] = await folder.list();
      const opened = await entry!.open();
      if ('refused' in opened) throw new Error(opened.refused);
      const reader = opened.source.open()[Symbol.asyncIterator]();
      const rssBefore = process.memoryUsage().rss;
      let rssPeak = rssBefore;
      const hash = createHash('sha256');
      let read = 0;
      const take = async () => {
        const { value, done } = (await reader.next()) as IteratorResult<Buffer>;
        if (done) return false;
        hash.update(value);
        read += value.length;
        rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
        return true;
      };
      await take();
      await new Promise((resolve) => setTimeout(resolve, 500));
      // Socket buffers and a stream's high-water mark hold a few MiB; the rest waits in the store.
      const waiting = sent;
      expect(waiting).toBeLessThan(size / 3);
      while (await take());
      expect(read).toBe(size);
      expect(hash.digest('hex')).toBe(expected.digest('hex'));
      const growth = rssPeak - rssBefore;
      console.log(`object ${(size / 2 ** 20).toFixed(0)} MiB: ${(waiting / 2 ** 20).toFixed(1)} MiB sent while the reader waited; RSS growth while reading it ${(growth / 2 ** 20).toFixed(1)} MiB`);
      expect(growth).toBeLessThan(size / 2);
    } finally {
      await folder.close?.();
      proxy.close();
    }
  });
});

describe('zinc import s3://… (the built CLI)', () => {
  const zinc = cliRunner(path.join(work, 'cli.sqlite'), 30_000);
  const aws = () => ({
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
  });

  it('when run on an s3:// prefix (or with SALES_URL), then it imports each object once, prints it, and exits 0', async () => {
    const bucket = await newBucket();
    await s3.put(bucket, 'daily/2024-11-01.csv', csv([['2024-11-01', orderId(), 'P-1', '1.25']]));
    const first = await zinc(['import', `s3://${bucket}/daily`], aws());
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/^success\s+2024-11-01\.csv \(import \d+\) 1 rows$/m);
    const second = await zinc(['import'], { ...aws(), SALES_URL: `s3://${bucket}/daily/` });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^skipped\s+2024-11-01\.csv .*already imported as 2024-11-01\.csv/m);
  });

  it('when the credentials are wrong or the settings clash, then it exits 1 with one line', async () => {
    const bucket = await newBucket();
    const denied = await zinc(['import', `s3://${bucket}/`], { ...aws(), AWS_ACCESS_KEY_ID: 'NOT-A-KEY', AWS_SECRET_ACCESS_KEY: 'hunter2-secret' });
    expect(denied.code).toBe(1);
    expect(denied.stderr.trim().split('\n')).toHaveLength(1);
    expect(denied.stderr).toMatch(new RegExp(`^zinc: the S3 endpoint ${s3.endpoint} refused to list s3://${bucket}/ \\(InvalidAccessKeyId: `));
    expect(denied.stderr + denied.stdout).not.toMatch(/hunter2/);

    const both = await zinc(['serve'], { ...aws(), SALES_URL: `s3://${bucket}/`, SALES_DIR: work });
    expect(both).toMatchObject({ code: 1, stderr: 'zinc: SALES_URL and SALES_DIR are both set: set one, the bucket or the folder imports read\n' });
  });
});

describe('SALES_URL in the configuration', () => {
  it('when it is an s3:// URL, then bucket and prefix are read, the endpoint and path style follow the AWS variables', () => {
    expect(parseS3Url('s3://my-bucket')).toEqual({ url: 's3://my-bucket/', bucket: 'my-bucket', prefix: '' });
    expect(parseS3Url('s3://my-bucket/a/b')).toEqual({ url: 's3://my-bucket/a/b/', bucket: 'my-bucket', prefix: 'a/b/' });
    expect(loadConfig({ SALES_URL: 's3://b-1/x/' }).salesUrl).toEqual({ url: 's3://b-1/x/', bucket: 'b-1', prefix: 'x/', endpoint: undefined, region: undefined, forcePathStyle: false });
    expect(loadConfig({ SALES_URL: 's3://b-1/x', AWS_ENDPOINT_URL: 'http://minio:9000', AWS_ENDPOINT_URL_S3: 'http://s3.local:9000' }).salesUrl).toMatchObject({
      endpoint: 'http://s3.local:9000',
      region: 'us-east-1',
      forcePathStyle: true,
    });
    expect(loadConfig({ SALES_URL: 's3://b-1', AWS_ENDPOINT_URL: 'https://acct.r2.cloudflarestorage.com', AWS_REGION: 'auto', S3_FORCE_PATH_STYLE: 'false' }).salesUrl).toMatchObject({
      endpoint: 'https://acct.r2.cloudflarestorage.com',
      region: 'auto',
      forcePathStyle: false,
    });
  });

  it.each([
    [{ SALES_URL: 'https://bucket/x' }, 'SALES_URL must be an s3://bucket/prefix URL (got "https://bucket/x")'],
    [{ SALES_URL: 's3://Bad_Bucket/x' }, 'SALES_URL must name a bucket of 3 to 63 lowercase letters, digits, dots and hyphens: s3://bucket/prefix (got "s3://Bad_Bucket/x")'],
    [{ SALES_URL: 's3://key:secret@bucket/x' }, /^SALES_URL must not carry credentials or a port: .* \(got "s3:\/\/key:\*\*\*@bucket\/x"\)$/],
    // An AWS secret key with "/" in it is not echoed either.
    [{ SALES_URL: 's3://AKIA:wJalrXUtnFEMI/K7MDENG@bucket/x' }, /^SALES_URL must not carry credentials or a port: .* \(got "s3:\/\/AKIA:\*\*\*@bucket\/x"\)$/],
    [{ SALES_URL: 's3://bucket', AWS_ENDPOINT_URL_S3: 'minio:9000' }, 'AWS_ENDPOINT_URL_S3 must be an http:// or https:// URL (got "minio:9000")'],
    [{ SALES_URL: 's3://bucket', S3_FORCE_PATH_STYLE: 'yes' }, 'S3_FORCE_PATH_STYLE must be true or false (got "yes")'],
  ])('when it is bad (%o), then start-up stops with one line naming the variable', (env, message) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    if (typeof message === 'string') expect((error as Error).message).toBe(message);
    else expect((error as Error).message).toMatch(message);
  });

  it('when SALES_URL is set, then the default SALES_DIR need not exist', () => {
    const cwd = process.cwd();
    process.chdir(work);
    try {
      expect(() => loadConfig({})).toThrow(/^SALES_DIR folder .* does not exist$/);
      expect(loadConfig({ SALES_URL: 's3://bucket/x' }).salesUrl?.bucket).toBe('bucket');
      // An empty SALES_DIR (cleared in a .env or a manifest) is unset, not the working directory.
      expect(loadConfig({ SALES_URL: 's3://bucket/x', SALES_DIR: '' }).salesUrl?.bucket).toBe('bucket');
    } finally {
      process.chdir(cwd);
    }
  });
});
