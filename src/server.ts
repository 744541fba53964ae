import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { assertServable, type Config } from './config.js';
import { type Database } from './db/database.js';
import { openDatabase } from './db/dialects/index.js';
import { migrateToLatest } from './db/migrator.js';
import { recoverInterruptedImports } from './imports/import.service.js';
import { Lifecycle } from './lifecycle.js';
import type { Log } from './log.js';
import { Telemetry } from './telemetry.js';

/** How often a running server looks for imports whose importer died. */
export const RECOVERY_SWEEP_MS = 15_000;

export interface RunningServer {
  app: FastifyInstance;
  database: Database;
  url: string;
  /** Graceful stop: not ready, imports roll back, in-flight requests finish (up to the timeout), database closes. */
  close(): Promise<void>;
}

/**
 * Opens the database, migrates it to the latest version (refusing a schema newer than this
 * build), marks imports a crash left behind as failed, and listens. Never imports by itself.
 */
export async function startServer(config: Config, log: Log): Promise<RunningServer> {
  assertServable(config);
  const telemetry = new Telemetry();
  const lifecycle = new Lifecycle();
  const database = openDatabase(config.database, { onQueryError: () => telemetry.dbErrors.inc() });
  try {
    const applied = await migrateToLatest(database.writer);
    if (applied.length > 0) log.info({ migrations: applied }, 'database migrated');
    await recoverInterruptedImports(database, log);
  } catch (error) {
    await database.close();
    throw error;
  }
  const app = await buildApp({ config, database, telemetry, lifecycle });
  // Another instance (or a CLI run) may die mid-import while this one runs: look again now and then.
  const sweep = setInterval(() => {
    recoverInterruptedImports(database, log).catch((error: unknown) => log.warn({ err: error }, 'interrupted-import sweep failed'));
  }, RECOVERY_SWEEP_MS);
  sweep.unref();
  app.addHook('onClose', async () => clearInterval(sweep));
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      lifecycle.beginShutdown();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs);
      });
      const closed = app.close().then(() => 'closed' as const);
      if ((await Promise.race([closed, deadline])) === 'timeout') {
        log.warn({ timeoutMs: config.shutdownTimeoutMs }, 'requests still running at the shutdown timeout: closing their connections');
        app.server.closeAllConnections();
        await closed;
      }
      clearTimeout(timer);
      await database.close();
    })());
  return { app, database, url: `http://${host}:${port}`, close };
}

/** On SIGTERM/SIGINT: a graceful close, then exit 0; a second signal exits at once. */
export function closeOnSignals(server: RunningServer, log: Log): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.close().then(
      () => {
        log.info({}, 'shut down cleanly');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
