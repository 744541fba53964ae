import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildApp } from '../app.js';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/dialects/index.js';

/**
 * The OpenAPI document exactly as `GET /docs/json` serves it, without a server or a database of
 * the caller's: the app is built over a throwaway SQLite file and asked for its document. The
 * document does not depend on the configuration, so this is what every instance serves.
 */
export async function openApiDocument(): Promise<unknown> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zinc-openapi-'));
  const config = loadConfig({ DATABASE_URL: `sqlite:${path.join(dir, 'zinc.sqlite')}`, SALES_DIR: dir, LOG_LEVEL: 'silent' });
  const database = openDatabase(config.database);
  try {
    const app = await buildApp({ config, database, logger: false });
    try {
      await app.ready();
      return app.swagger();
    } finally {
      await app.close();
    }
  } finally {
    await database.close();
    await rm(dir, { recursive: true, force: true });
  }
}
