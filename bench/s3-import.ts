/**
 * npm run bench:s3 -- [--rows 1000000]
 *
 * The same generated sales CSV (bench/sales-generator.ts, chronological) imported into a fresh
 * SQLite database twice, each in a child process of its own: from a local folder (SALES_DIR), and
 * as an object in a local S3-compatible server (s3rver, its own process) through SALES_URL. Prints
 * rows/s and peak RSS of each, and their ratio: what reading over HTTP (two streamed GETs) costs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { importFolder } from '../src/imports/import.service.js';
import { openSalesFolder } from '../src/imports/sales-folder.js';
import { freePort } from './fleet.js';
import { generateSalesCsv } from './sales-generator.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, worker: { type: 'boolean' } } });
const silent = { info: () => {}, warn: () => {}, error: () => {} };
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
/** s3rver's one account. */
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

/** In a child: imports the folder its environment names (SALES_DIR or SALES_URL), prints one JSON line. */
async function worker(): Promise<void> {
  const config = loadConfig();
  const database = openDatabase(config.database);
  await migrateToLatest(database.writer);
  const folder = await openSalesFolder(config);
  const started = performance.now();
  const { files } = await importFolder(database, folder, { onError: 'fail', log: silent });
  const seconds = (performance.now() - started) / 1000;
  await folder.close?.();
  await database.close();
  const file = files[0];
  if (!file || file.status !== 'success') throw new Error(`import did not succeed: ${JSON.stringify(file)}`);
  console.log(JSON.stringify({ seconds, rows: file.record.num_rows, peakRssMb: process.resourceUsage().maxRSS / 1024 }));
}

function runWorker(env: Record<string, string>): { seconds: number; rows: number; peakRssMb: number } {
  const child = spawnSync(process.execPath, [process.argv[1]!, '--worker'], { env: { PATH: process.env.PATH, LOG_LEVEL: 'silent', ...env }, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`worker failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!) as { seconds: number; rows: number; peakRssMb: number };
}

async function main(): Promise<void> {
  const rows = Number(values.rows);
  const dir = mkdtempSync(path.join(tmpdir(), 'zinc-bench-s3-'));
  let server: ChildProcess | undefined;
  try {
    const sales = path.join(dir, 'sales');
    mkdirSync(sales);
    const file = path.join(sales, 'sales.csv');
    await generateSalesCsv(file, { rows });
    const size = statSync(file).size;

    const port = await freePort();
    const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
    mkdirSync(path.join(dir, 's3'));
    server = spawn(process.execPath, [bin, '-d', path.join(dir, 's3'), '-a', '127.0.0.1', '-p', String(port), '--silent'], { stdio: 'ignore' });
    const endpoint = `http://127.0.0.1:${port}`;
    const client = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    for (let attempt = 0; ; attempt++) {
      try {
        await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
        break;
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    await client.send(new PutObjectCommand({ Bucket: 'bench', Key: 'sales/sales.csv', Body: createReadStream(file), ContentLength: size }));
    // Where the time goes: one streamed GET hashed (the import reads the object twice, hashing
    // first, then loading), against the same hash of the local file.
    const hashed = async (open: () => Promise<Readable>) => {
      const started = performance.now();
      const hash = createHash('sha256');
      for await (const chunk of await open()) hash.update(chunk as Buffer);
      hash.digest();
      return (performance.now() - started) / 1000;
    };
    const getSeconds = await hashed(async () => (await client.send(new GetObjectCommand({ Bucket: 'bench', Key: 'sales/sales.csv' }))).Body as Readable);
    const fileSeconds = await hashed(async () => createReadStream(file));
    client.destroy();

    const local = runWorker({ DATABASE_URL: `sqlite:${path.join(dir, 'local.sqlite')}`, SALES_DIR: sales });
    const s3 = runWorker({ DATABASE_URL: `sqlite:${path.join(dir, 's3.sqlite')}`, SALES_URL: 's3://bench/sales/', AWS_ENDPOINT_URL_S3: endpoint, ...CREDENTIALS });
    const line = (name: string, r: typeof local) =>
      `${name.padEnd(14)} ${r.rows} rows in ${r.seconds.toFixed(2)} s = ${Math.round(r.rows / r.seconds).toLocaleString('en')} rows/s, peak RSS ${r.peakRssMb.toFixed(0)} MB`;
    console.log(`machine: ${cpus().length} cores × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}`);
    console.log(`${rows.toLocaleString('en')} rows, ${(size / 2 ** 20).toFixed(1)} MiB, chronological shape, SQLite`);
    console.log(`one read + SHA-256: local file ${fileSeconds.toFixed(2)} s, one s3rver GET ${getSeconds.toFixed(2)} s (an import reads twice: hash, then load)`);
    console.log(line('local folder', local));
    console.log(line('s3rver object', s3));
    console.log(`S3 / local rows/s: ${(local.seconds / s3.seconds).toFixed(2)}`);
  } finally {
    server?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

await (values.worker ? worker() : main());
