import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { buildApp } from '../../src/app.js';
import type { Config } from '../../src/config.js';
import { type Database } from '../../src/db/database.js';
import { openDatabase } from '../../src/db/dialects/index.js';
import { migrateToLatest } from '../../src/db/migrator.js';
import { testConfig } from './config.js';
import { checkResponses } from './openapi-validator.js';
import { createTestDatabase, type TestDatabase } from './databases.js';
import type { DialectName } from '../../src/db/database.js';

export interface Harness {
  app: FastifyInstance;
  database: Database;
  config: Config;
  /** A fresh, empty sales folder for the current test. */
  salesDir: string;
  /** Writes a file into the current test's sales folder and returns its path. */
  writeCsv(name: string, content: string | Buffer): string;
  /** Rebuilds the app with other settings (same database, same folder). */
  rebuild(overrides: Partial<Config>): Promise<FastifyInstance>;
}

/**
 * Registers hooks that give each test a migrated, empty database of `kind` behind a real app
 * (no port: requests go through `app.inject`), and a fresh sales folder.
 */
export function useHarness(kind: DialectName, overrides: Partial<Config> = {}): Harness {
  let testDb: TestDatabase;
  const apps: FastifyInstance[] = [];
  const h = {} as Harness;

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    h.database = openDatabase(testDb.config);
    await migrateToLatest(h.database.writer);
  });

  beforeEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    // Every table but the migrator's, children before parents.
    const tables = (await h.database.db.introspection.getTables())
      .map((t) => t.name)
      .filter((name) => !name.startsWith('zinc_migrations'))
      .sort((a, b) => (a === 'imported_files' ? 1 : b === 'imported_files' ? -1 : 0));
    for (const table of tables) await sql`DELETE FROM ${sql.table(table)}`.execute(h.database.writer);
    h.salesDir = mkdtempSync(path.join(tmpdir(), 'zinc-sales-'));
    h.config = testConfig(testDb.config, h.salesDir, overrides);
    h.app = await build(h.config);
  });

  async function build(config: Config) {
    // Every answer a test gets through app.inject is checked against the OpenAPI document.
    const app = checkResponses(await buildApp({ config, database: h.database, logger: false }));
    apps.push(app);
    return app;
  }

  h.rebuild = async (more) => {
    h.config = Object.freeze({ ...h.config, ...more });
    h.app = await build(h.config);
    return h.app;
  };
  h.writeCsv = (name, content) => {
    const file = path.join(h.salesDir, name);
    writeFileSync(file, content);
    return file;
  };

  afterAll(async () => {
    for (const app of apps.splice(0)) await app.close();
    await h.database?.close();
    await testDb?.drop();
    if (h.salesDir) rmSync(h.salesDir, { recursive: true, force: true });
  });
  return h;
}

/** A CSV document from a header and rows, LF line endings, final newline. */
export function csv(rows: string[][], header = ['date', 'order_id', 'product_id', 'amount_sgd']): string {
  return [header, ...rows].map((r) => r.join(',')).join('\n') + '\n';
}

let counter = 0;
/** A unique order id, so tests never collide with each other's data. */
export function orderId(prefix = 'ORD'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}
