import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db/connection.js';
import { migrateToLatest } from './db/migrator.js';
import { recoverInterruptedImports } from './imports/import.service.js';
import type { Log } from './log.js';

export interface RunningServer {
  app: FastifyInstance;
  database: Database;
  url: string;
  close(): Promise<void>;
}

/**
 * Opens the database, migrates it to the latest version, marks imports a crash left behind as
 * failed, and listens. Never imports by itself.
 */
export async function startServer(config: Config, log: Log): Promise<RunningServer> {
  const database = openDatabase(config.database);
  try {
    const applied = await migrateToLatest(database.writer);
    if (applied.length > 0) log.info({ migrations: applied }, 'database migrated');
    await recoverInterruptedImports(database, log);
  } catch (error) {
    await database.close();
    throw error;
  }
  const app = await buildApp({ config, database });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${host}:${port}`;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await app.close();
      await database.close();
    })());
  return { app, database, url, close };
}

/** Closes the server on SIGINT/SIGTERM: in-flight requests finish, then the database closes. */
export function closeOnSignals(server: RunningServer, log: Log, delayMs = 10_000): void {
  closeWithGrace({ delay: delayMs }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error');
    else log.info({ signal }, 'shutting down');
    await server.close();
  });
}
