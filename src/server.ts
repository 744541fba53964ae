import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { assertServable, type Config } from './config.js';
import { type Database } from './db/database.js';
import { openDatabase } from './db/dialects/index.js';
import { migrateToLatest } from './db/migrator.js';
import { serializedWrites } from './db/write-lock.js';
import { recoverInterruptedImports } from './imports/import.service.js';
import { importFormat } from './imports/csv-format.js';
import { countImportOutcome } from './imports/import-metrics.js';
import { ImportRuns } from './imports/import-progress.js';
import { watchSalesFolder, type SalesWatch } from './imports/sales-watch.js';
import { Lifecycle } from './lifecycle.js';
import type { Log } from './log.js';
import { Telemetry } from './telemetry.js';

/** How often a running server looks for imports whose importer died. */
export const RECOVERY_SWEEP_MS = 15_000;

/** At the shutdown timeout: how long requests whose imports were stopped get to send their answer. */
const ANSWER_GRACE_MS = 1_000;

/** Resolves once the imports and undos this process queued on `database` so far have ended. */
function writesSettled(database: Database): Promise<unknown> {
  const nothing = async () => {};
  return Promise.all([serializedWrites(database, 'imports', nothing), serializedWrites(database, 'undo', nothing)]);
}

export interface RunningServer {
  app: FastifyInstance;
  database: Database;
  url: string;
  /**
   * Graceful stop: not ready at once; still serving for the drain delay (`drain: false` skips it);
   * then no longer listening while in-flight requests and running imports finish, up to the
   * shutdown timeout (past it imports roll back and connections are cut); the database closes.
   */
  close(options?: { drain?: boolean }): Promise<void>;
}

/**
 * Opens the database, migrates it to the latest version (refusing a schema newer than this
 * build), marks imports a crash left behind as failed, and listens. Never imports by itself,
 * unless SALES_WATCH=true: then, once listening, it watches SALES_DIR (imports/sales-watch.ts).
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
  const runs = new ImportRuns();
  const app = await buildApp({ config, database, telemetry, lifecycle, runs });
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
  let watching: SalesWatch | undefined;
  if (config.watch?.serve) {
    // Strict, as the API's default: a file with a bad row stores nothing and its record says why.
    // Several instances may watch one shared folder: the file's claim makes one of them import it.
    watching = await watchSalesFolder(database, config.salesDir, {
      settleMs: config.watch.settleMs,
      pollMs: config.watch.pollMs,
      onError: 'fail',
      log,
      signal: lifecycle.signal,
      onFileDone: countImportOutcome(telemetry),
      mysqlLoadMethod: config.mysqlLoadMethod,
      csv: importFormat(config.csvColumns),
      // Its running import shows in /api/imports/{id} and zinc_imports_running like the API's.
      runs,
    }).catch(async (error: unknown) => {
      await app.close();
      await database.close();
      throw error;
    });
    log.info({ dir: watching.dir, settleMs: config.watch.settleMs, pollMs: config.watch.pollMs }, 'watching the sales folder');
  }

  let closing: Promise<void> | undefined;
  const close = ({ drain = true }: { drain?: boolean } = {}) =>
    (closing ??= (async () => {
      // Not ready from now on: a load balancer checking /health/ready takes this instance out.
      lifecycle.beginShutdown();
      // No new file from the watched folder; the one being imported finishes like any import.
      const watchStopped = watching?.stop();
      // Until it has, requests keep coming: answer them as usual.
      if (drain && config.shutdownDrainMs > 0) {
        log.info({ drainMs: config.shutdownDrainMs }, 'not ready; still serving while load balancers take this instance out');
        await sleep(config.shutdownDrainMs);
      }
      // Stop listening. Requests in flight, and this instance's imports (those answered 202
      // included), get the shutdown timeout to finish; once no request is left, none can start one.
      const closed = app.close();
      const finished = closed.then(() => Promise.all([writesSettled(database), watchStopped]));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs);
      });
      if ((await Promise.race([finished, deadline])) === 'timeout') {
        log.warn(
          { timeoutMs: config.shutdownTimeoutMs },
          'still running at the shutdown timeout: stopping imports (they roll back) and closing connections',
        );
        lifecycle.stopImports();
        // The stopped imports roll back and their requests answer (failed, interrupted by
        // shutdown); whatever is still open after that is cut.
        await Promise.race([closed, writesSettled(database).then(() => sleep(ANSWER_GRACE_MS))]);
        app.server.closeAllConnections();
        await finished;
      }
      clearTimeout(timer);
      await database.close();
    })());
  return { app, database, url: `http://${host}:${port}`, close };
}

/**
 * On SIGTERM/SIGINT: a graceful close, then exit 0; a second signal exits at once. SIGINT (Ctrl-C
 * at a terminal: no load balancer to wait for) skips the drain delay.
 */
export function closeOnSignals(server: RunningServer, log: Log): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.close({ drain: signal !== 'SIGINT' }).then(
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
