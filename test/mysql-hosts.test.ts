import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../src/config.js';
import type { Database } from '../src/db/database.js';
import { openDatabase } from '../src/db/dialects/index.js';
import { statementWatchTuning } from '../src/db/dialects/mysql/statement-watch.js';
import { migrateToLatest } from '../src/db/migrator.js';
import { isDatabaseUnavailable } from '../src/http/errors.js';
import { createTestDatabase, MYSQL_URL, type TestDatabase } from './support/databases.js';
import { TcpProxy } from './support/tcp-proxy.js';

/**
 * The MySQL dialect's connections on a single MariaDB/MySQL server (ZINC_TEST_MYSQL_URL): a
 * statement whose server went silent fails instead of hanging (statement-watch.ts), one that is
 * merely long is left alone, and a URL listing two hosts moves to the second when the first
 * goes silent, answering the read that was in flight there (host-pools.ts). Galera's side is
 * test/galera.test.ts.
 */
describe.runIf(MYSQL_URL)('MySQL connections: statement watch and host list', () => {
  let testDb: TestDatabase;
  const opened: Database[] = [];
  const proxies: TcpProxy[] = [];
  const saved = { ...statementWatchTuning };
  const server = new URL(MYSQL_URL ?? 'mysql://127.0.0.1:3306');
  const direct = `${server.hostname}:${server.port || 3306}`;

  /** The test database's URL with `hosts` in place of its host. */
  const urlWith = (hosts: string) => {
    const url = testDb.config.kind === 'mysql' ? testDb.config.url : '';
    return url.replace(`@${server.host}`, `@${hosts}`).replace(`//${server.host}`, `//${hosts}`);
  };
  const open = (url: string) => {
    const database = openDatabase(parseDatabaseUrl(url));
    opened.push(database);
    return database;
  };
  const proxy = async () => {
    const p = new TcpProxy(server.hostname, Number(server.port || 3306));
    proxies.push(p);
    await p.start();
    return p;
  };

  beforeAll(async () => {
    testDb = await createTestDatabase('mysql');
    const database = open(testDb.config.kind === 'mysql' ? testDb.config.url : '');
    await migrateToLatest(database.writer);
    await sql`UPDATE data_version SET version = 7 WHERE id = 1`.execute(database.db);
  });

  afterEach(() => {
    Object.assign(statementWatchTuning, saved);
  });

  afterAll(async () => {
    for (const database of opened) await database.close().catch(() => {});
    for (const p of proxies) await p.stop();
    await testDb?.drop();
  });

  it('when a statement runs past the check interval on a server that works, then it is left to finish', async () => {
    Object.assign(statementWatchTuning, { checkMs: 200, probeMs: 1000 });
    const database = open(testDb.config.kind === 'mysql' ? testDb.config.url : '');
    const { rows } = await sql<{ slept: number }>`SELECT SLEEP(1.5) AS slept`.execute(database.db);
    expect(rows[0]).toEqual({ slept: 0 });
  });

  it('when the network to the server goes silent mid-statement, then the statement fails as unavailable (ZINC_DB_STALLED) within the check and look, not hanging', async () => {
    Object.assign(statementWatchTuning, { checkMs: 300, probeMs: 700 });
    const p = await proxy();
    const database = open(urlWith(`127.0.0.1:${p.port}`));
    await sql`SELECT 1`.execute(database.db);
    const running = sql`SELECT SLEEP(0.5) AS slept, version FROM data_version`.execute(database.db);
    await sleep(100);
    p.freeze();
    const started = Date.now();
    const error = await running.then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    const waited = Date.now() - started;
    expect(error?.code).toBe('ZINC_DB_STALLED');
    expect(error?.message).toMatch(/stalled on 127\.0\.0\.1:\d+: the server (gave no answer within \d+ ms|does not answer \(ETIMEDOUT\))/);
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(waited).toBeLessThan(3000);
  });

  it('when the first of two hosts goes silent, then the read in flight there is answered by the second, and /health names the second', async () => {
    Object.assign(statementWatchTuning, { checkMs: 300, probeMs: 700 });
    const p = await proxy();
    const database = open(urlWith(`127.0.0.1:${p.port},${direct}`));
    expect(await database.dialect.serverState(database.db)).toMatchObject({ usable: true, node: `127.0.0.1:${p.port}` });
    const running = sql<{ slept: number; version: number }>`SELECT SLEEP(0.5) AS slept, version FROM data_version`.execute(database.db);
    await sleep(100);
    p.freeze();
    const { rows } = await running;
    expect(rows[0]).toEqual({ slept: 0, version: 7 });
    expect(await database.dialect.serverState(database.db)).toMatchObject({ usable: true, node: direct });
  });

  it('when the first host refuses connections, then the second answers at once, and a transaction runs there whole', async () => {
    const p = await proxy();
    await p.stop();
    const database = open(urlWith(`127.0.0.1:${p.port},${direct}`));
    const started = Date.now();
    const version = await database.dialect.inSnapshot(database.db, async (trx) => {
      const { rows } = await sql<{ version: number }>`SELECT version FROM data_version`.execute(trx);
      return rows[0]!.version;
    });
    expect(version).toBe(7);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await database.dialect.serverState(database.db)).toMatchObject({ usable: true, node: direct });
  });
});
