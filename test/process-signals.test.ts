import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/fleet.js';
import { generateSalesCsv } from '../bench/sales-generator.js';
import { type Database } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { createTestDatabase, DIALECTS, type TestDatabase } from './support/databases.js';
import { waitFor } from './support/wait.js';

// Real processes, real signals: the built CLI (npm test builds it first) importing a file large
// enough to be caught in the middle.
const CLI = path.resolve('dist/src/cli.js');

interface ImportRun {
  files: Array<{ id: number; status: string; num_rows?: number; error_message: string | null }>;
}
const ROWS = 250_000;

const work = mkdtempSync(path.join(tmpdir(), 'zinc-proc-'));
const salesDir = path.join(work, 'sales');
let expectedTotal = '';

beforeAll(async () => {
  const { mkdirSync } = await import('node:fs');
  mkdirSync(salesDir);
  const { totalCents } = await generateSalesCsv(path.join(salesDir, 'big.csv'), { rows: ROWS, seed: 7 });
  const abs = totalCents < 0n ? -totalCents : totalCents;
  expectedTotal = `${totalCents < 0n ? '-' : ''}${abs / 100n}.${String(abs % 100n).padStart(2, '0')}`;
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

function databaseUrl(db: TestDatabase): string {
  return db.config.kind === 'sqlite' ? `sqlite:${db.config.path}` : db.config.url;
}

function startCli(args: string[], env: Record<string, string>): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, SALES_DIR: salesDir, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return Object.assign(child, { output: () => output });
}



async function processingRecord(database: Database) {
  const row = await database.db.selectFrom('imported_files').selectAll().where('status', '=', 'processing').executeTakeFirst();
  return row ?? undefined;
}

async function salesCount(database: Database): Promise<number> {
  const row = await database.db
    .selectFrom('sales')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

describe.each(DIALECTS)('processes on %s', (kind) => {
  let testDb: TestDatabase;
  let database: Database;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });

  it(
    'when an import is killed (SIGKILL) mid-file, then none of its rows are visible, the next start marks it interrupted and the next run imports it fully',
    async () => {
      const env = { DATABASE_URL: databaseUrl(testDb) };
      const importer = startCli(['import'], env);
      const exited = once(importer, 'exit');
      // The CLI migrates first; then the record appears as processing.
      database ??= await waitFor(async () => {
        const d = openDatabase(testDb.config);
        await d.db.selectFrom('imported_files').select('id').execute().catch(async (e) => {
          await d.close();
          throw e;
        });
        return d;
      }, 20_000, 'the schema');
      const record = await waitFor(() => processingRecord(database), 20_000, 'a processing record');
      await new Promise((r) => setTimeout(r, 300)); // well inside the file
      importer.kill('SIGKILL');
      await exited;

      expect(await salesCount(database)).toBe(0);
      if (kind !== 'sqlite') {
        // The server ends the dead session, rolling its work back and freeing its locks (named or
        // advisory); on a Galera cluster the claim is a lease, free once its TTL has passed.
        await waitFor(
          async () => ((await database.dialect.claims.isAbandoned(database.db, record, { owner: 'another process', active: false })) ? true : undefined),
          60_000,
          'the server to roll back the killed import',
        );
      }
      const port = await freePort();
      const server = startCli(['serve'], { ...env, PORT: String(port), HOST: '127.0.0.1' });
      try {
        await waitFor(async () => ((await fetch(`http://127.0.0.1:${port}/health/ready`)).ok ? true : undefined), 20_000, 'ready');
        const after = await (await fetch(`http://127.0.0.1:${port}/api/imports/${record.id}`)).json();
        expect(after).toMatchObject({ status: 'failed', error_message: expect.stringMatching(/^interrupted/) });

        const run = (await (await fetch(`http://127.0.0.1:${port}/api/import-sales/`, { method: 'POST' })).json()) as ImportRun;
        expect(run.files[0]).toMatchObject({ id: record.id, status: 'success', num_rows: ROWS });
        const total = await (await fetch(`http://127.0.0.1:${port}/api/metrics/revenue/`)).json();
        expect(total).toMatchObject({ total_revenue: expectedTotal, sale_count: ROWS });
      } finally {
        server.kill('SIGTERM');
        await once(server, 'exit');
      }
    },
    120_000,
  );

  it(
    'when SIGTERM arrives during an import that outlasts the shutdown timeout, then the import rolls back, its record says so, the process exits 0, and a restart imports the file',
    async () => {
      const fresh = await createTestDatabase(kind);
      // No drain, no grace: the import is stopped at once (with time it would finish: next test).
      const env = { DATABASE_URL: databaseUrl(fresh), SHUTDOWN_DRAIN_MS: '0', SHUTDOWN_TIMEOUT_MS: '0' };
      const db = openDatabase(fresh.config);
      try {
        const port = await freePort();
        const server = startCli(['serve'], { ...env, PORT: String(port), HOST: '127.0.0.1' });
        const exited = once(server, 'exit');
        await waitFor(async () => ((await fetch(`http://127.0.0.1:${port}/health/ready`)).ok ? true : undefined), 20_000, 'ready');
        const request = fetch(`http://127.0.0.1:${port}/api/import-sales/`, { method: 'POST' }).then((r) => r.json() as Promise<ImportRun>);
        const record = await waitFor(() => processingRecord(db), 20_000, 'a processing record');
        await new Promise((r) => setTimeout(r, 300));
        server.kill('SIGTERM');

        const answer = await request;
        expect(answer.files[0]).toMatchObject({ id: record.id, status: 'failed', error_message: expect.stringMatching(/interrupted by shutdown/) });
        const [code] = await exited;
        expect(code, server.output()).toBe(0);
        expect(server.output()).toMatch(/stopping imports \(they roll back\)/);
        expect(server.output()).toMatch(/shut down cleanly/);
        expect(await salesCount(db)).toBe(0);

        const again = startCli(['import'], env);
        const [status] = await once(again, 'exit');
        expect(status, again.output()).toBe(0);
        expect(again.output()).toMatch(new RegExp(`^success\\s+big\\.csv \\(import ${record.id}\\) ${ROWS} rows`, 'm'));
        expect(await salesCount(db)).toBe(ROWS);
      } finally {
        await db.close();
        await fresh.drop();
      }
    },
    120_000,
  );

  it(
    'when SIGTERM arrives during an import answered 202, then the instance is not ready at once, still answers during the drain, finishes the import and exits 0',
    async () => {
      const fresh = await createTestDatabase(kind);
      const env = { DATABASE_URL: databaseUrl(fresh), SHUTDOWN_DRAIN_MS: '3000', SHUTDOWN_TIMEOUT_MS: '60000' };
      const db = openDatabase(fresh.config);
      try {
        const port = await freePort();
        const base = `http://127.0.0.1:${port}`;
        const server = startCli(['serve'], { ...env, PORT: String(port), HOST: '127.0.0.1' });
        const exited = once(server, 'exit');
        await waitFor(async () => ((await fetch(`${base}/health/ready`)).ok ? true : undefined), 20_000, 'ready');
        const started = await fetch(`${base}/api/import-sales/?async=true`, { method: 'POST' });
        expect(started.status).toBe(202);
        const [queued] = ((await started.json()) as ImportRun).files;
        expect(queued).toMatchObject({ status: 'processing' });
        server.kill('SIGTERM');

        // Out of the load balancer's pool at once...
        const ready = await waitFor(async () => {
          const res = await fetch(`${base}/health/ready`);
          return res.status === 503 ? ((await res.json()) as { status: string }) : undefined;
        }, 2_000, 'ready to turn 503');
        expect(ready.status).toBe('shutting_down');
        // ...while still answering whoever has not noticed yet, closing each connection after its answer.
        const during = await fetch(`${base}/api/imports/${queued!.id}`);
        expect(during.status).toBe(200);
        expect(during.headers.get('connection')).toBe('close');
        await during.body?.cancel();

        const [code] = await exited;
        expect(code, server.output()).toBe(0);
        expect(server.output()).toMatch(/shut down cleanly/);
        expect(server.output()).not.toMatch(/shutdown timeout/);
        const record = await db.db.selectFrom('imported_files').selectAll().where('id', '=', queued!.id).executeTakeFirstOrThrow();
        expect(record).toMatchObject({ status: 'success', num_rows: ROWS });
        expect(await salesCount(db)).toBe(ROWS);
      } finally {
        await db.close();
        await fresh.drop();
      }
    },
    120_000,
  );
});
