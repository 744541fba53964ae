#!/usr/bin/env node
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.js';
import type { Database } from './db/database.js';
import { openDatabase, backupDatabase, defaultBackupPath } from './db/dialects/index.js';
import { migrateDown, migrateToLatest, schemaStatus } from './db/migrator.js';
import { importFolder, recoverInterruptedImports, type FileOutcome, type FolderResult, type OnError } from './imports/import.service.js';
import { progressReporter } from './imports/progress-reporter.js';
import { ColumnAliasError, DELIMITER_CHOICES, importFormat, isDelimiterChoice, type CsvFormat } from './imports/csv-format.js';
import { openSalesFolder } from './imports/sales-folder.js';
import { DEFAULT_WATCH_SETTINGS, watchSalesFolder } from './imports/sales-watch.js';
import { createLogger, type Log } from './log.js';
import { closeOnSignals, startServer } from './server.js';
import { openApiDocument } from './http/openapi-document.js';

const USAGE = `Usage: zinc <command>

Commands:
  serve                          migrate the database, then serve the HTTP API
  migrate [status|latest|down]   show, apply every pending migration, or revert the newest one
  backup [FILE]                  write a consistent copy of the database (SQLite file or SQL dump)
  import [DIR] [--on-error skip] import every new *.csv in DIR (default: SALES_DIR)
         [--delimiter auto|comma|semicolon|tab] [--columns "date=Order Date,amount_sgd=Total"]
         [s3://bucket/prefix]    or under an S3 prefix (default: SALES_URL; AWS_* variables)
  watch [DIR] [--on-error skip]  import each new *.csv in DIR once it stops changing, until stopped
         [--delimiter …] [--columns …]  (as import)
  demo                           import the sample files, then serve (the first-run path)
  openapi                        print the HTTP API's OpenAPI document (JSON), as /docs/json serves it

Configuration comes from the environment: DATABASE_URL, SALES_DIR, HOST, PORT, LOG_LEVEL,
API_TOKEN, METRICS_TOKEN, SHUTDOWN_DRAIN_MS, SHUTDOWN_TIMEOUT_MS, WATCH_SETTLE_MS (see README.md).`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'on-error': { type: 'string', default: 'fail' },
      delimiter: { type: 'string', default: 'auto' },
      columns: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  switch (command) {
    case 'serve':
      return serve(loadConfig());
    case 'migrate':
      return migrate(loadConfig(), rest[0] ?? 'latest');
    case 'backup': {
      const config = loadConfig();
      const file = path.resolve(rest[0] ?? defaultBackupPath(config.database));
      await backupDatabase(config.database, file);
      console.log(`backup written to ${file}`);
      return 0;
    }
    case 'import': {
      const onError = values['on-error'];
      if (onError !== 'fail' && onError !== 'skip') throw new ConfigError('--on-error must be fail or skip');
      // A folder or s3:// URL given here is what the run reads, whatever the environment says.
      const target = rest[0];
      const env = !target
        ? process.env
        : target.startsWith('s3://')
          ? // SALES_WATCH (for serve, from a shared .env) watches a folder: not this run's business.
            { ...process.env, SALES_URL: target, SALES_DIR: undefined, SALES_WATCH: undefined }
          : { ...process.env, SALES_DIR: target, SALES_URL: undefined };
      const config = loadConfig(env);
      return runImport(config, onError, csvFormatOf(config, values));
    }
    case 'watch': {
      const onError = values['on-error'];
      if (onError !== 'fail' && onError !== 'skip') throw new ConfigError('--on-error must be fail or skip');
      // A folder given here is what is watched, whatever SALES_URL says.
      const env = rest[0] ? { ...process.env, SALES_DIR: rest[0], SALES_URL: undefined } : process.env;
      const config = loadConfig(env);
      return runWatch(config, onError, csvFormatOf(config, values));
    }
    case 'demo': {
      const config = loadConfig();
      const status = await runImport(config, 'fail');
      if (status !== 0) return status;
      return serve(config, true);
    }
    case 'openapi':
      console.log(JSON.stringify(await openApiDocument(), null, 2));
      return 0;
    default:
      console.error(`zinc: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function serve(config: Config, banner = false): Promise<number> {
  const log = createLogger(config.logLevel);
  const server = await startServer(config, log);
  closeOnSignals(server, log);
  const urls = {
    dashboard: `${server.url}/`,
    health: `${server.url}/health`,
    revenue: `${server.url}/api/metrics/revenue/`,
    daily: `${server.url}/api/metrics/revenue/daily/`,
    imports: `${server.url}/api/imports/`,
    docs: `${server.url}/docs`,
  };
  log.info({ urls, database: config.database.kind }, 'zinc is listening');
  if (banner) {
    const { dashboard, ...api } = urls;
    console.error(
      `\nZinc is running on ${config.database.kind}. Open ${dashboard} in a browser, or try:\n` +
        `${Object.values(api).map((u) => `  curl ${u}`).join('\n')}\n`,
    );
  }
  return new Promise<number>(() => {}); // runs until a signal closes it
}

async function migrate(config: Config, direction: string): Promise<number> {
  const database = openDatabase(config.database);
  try {
    if (direction === 'status') {
      const { applied, pending, unknown } = await schemaStatus(database.db);
      for (const name of applied) console.log(`applied  ${name}`);
      for (const name of pending) console.log(`pending  ${name}`);
      for (const name of unknown) console.log(`unknown  ${name}  (newer than this build)`);
      return unknown.length > 0 ? 1 : 0;
    }
    if (direction === 'latest') {
      const applied = await migrateToLatest(database.writer);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'already at the latest migration');
    } else if (direction === 'down') {
      const reverted = await migrateDown(database.writer);
      console.log(reverted ? `reverted: ${reverted}` : 'no migration to revert');
    } else {
      console.error(`zinc: migrate takes status, latest or down, not "${direction}"`);
      return 2;
    }
    return 0;
  } finally {
    await database.close();
  }
}

/**
 * What `import` and `watch` share: a quieter logger (their own lines are the output), the
 * database migrated and its interrupted imports recovered first, closed at the end.
 */
async function withImportDatabase(config: Config, run: (database: Database, log: Log) => Promise<number>): Promise<number> {
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const database = openDatabase(config.database);
  try {
    await migrateToLatest(database.writer);
    await recoverInterruptedImports(database, log);
    return await run(database, log);
  } finally {
    await database.close();
  }
}

async function runImport(config: Config, onError: OnError, csv = importFormat(config.csvColumns)): Promise<number> {
  return withImportDatabase(config, async (database, log) => {
    // Ctrl-C (or SIGTERM from cron's supervisor) rolls the running file back and records why.
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    const progress = progressReporter();
    const folder = await openSalesFolder(config);
    const result = await importFolder(database, folder, {
      onError,
      log,
      signal: stop.signal,
      onProgress: progress.report,
      mysqlLoadMethod: config.mysqlLoadMethod,
      csv,
    }).finally(async () => {
      progress.finish();
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      await folder.close?.();
    });
    printResult(result);
    return result.summary.failed > 0 ? 1 : 0;
  });
}

/**
 * Watches the folder until SIGINT/SIGTERM, printing one line per file as `import` does. The
 * signal rolls a running import back (its record says so; the next run takes the file again).
 */
async function runWatch(config: Config, onError: OnError, csv: CsvFormat): Promise<number> {
  if (config.salesUrl) throw new ConfigError('zinc watch watches a local folder (DIR or SALES_DIR), not SALES_URL');
  return withImportDatabase(config, async (database, log) => {
    const stop = new AbortController();
    const stopped = new Promise<void>((resolve) => {
      const onSignal = () => {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
        resolve();
      };
      process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    });
    const progress = progressReporter();
    const { settleMs, pollMs } = config.watch ?? DEFAULT_WATCH_SETTINGS;
    const watching = await watchSalesFolder(database, config.salesDir, {
      settleMs,
      pollMs,
      onError,
      log,
      signal: stop.signal,
      onProgress: progress.report,
      mysqlLoadMethod: config.mysqlLoadMethod,
      csv,
      report: (outcome) => {
        progress.finish();
        console.log(outcomeLine(outcome));
      },
    });
    console.error(`watching ${watching.dir}: each new *.csv is imported once unchanged for ${settleMs} ms; Ctrl-C stops`);
    await stopped;
    stop.abort();
    await watching.stop();
    progress.finish();
    console.error('stopped watching');
    return 0;
  });
}

/** The CSV format `--delimiter` and `--columns` ask for, on top of CSV_COLUMNS. */
function csvFormatOf(config: Config, { delimiter, columns }: { delimiter?: string | undefined; columns?: string | undefined }): CsvFormat {
  if (!isDelimiterChoice(delimiter)) throw new ConfigError(`--delimiter must be ${DELIMITER_CHOICES.join(', ')} (got "${delimiter}")`);
  try {
    return importFormat(config.csvColumns, delimiter, columns);
  } catch (error) {
    if (error instanceof ColumnAliasError) throw new ConfigError(`--columns ${error.message}`);
    throw error;
  }
}

/** One file's outcome as `import` and `watch` print it. */
function outcomeLine(f: FileOutcome): string {
  if (f.status === 'refused') return `${'failed'.padEnd(8)} ${f.filename} ${f.message}`;
  const detail =
    f.status === 'skipped'
      ? f.message
      : `${f.record.num_rows} rows${f.record.rows_rejected ? `, ${f.record.rows_rejected} rejected` : ''}` +
        `${f.record.error_message && f.status === 'failed' ? `: ${f.record.error_message}` : ''}`;
  return `${f.status.padEnd(8)} ${f.filename} (import ${f.record.id}) ${detail}`;
}

function printResult({ files, summary }: FolderResult): void {
  if (files.length === 0) console.log('no *.csv files found');
  for (const f of files) console.log(outcomeLine(f));
  console.log(
    `imported ${summary.imported}, partial ${summary.partial}, skipped ${summary.skipped}, failed ${summary.failed}; ${summary.rows} rows stored`,
  );
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) console.error(`zinc: ${error.message}`);
    else console.error(`zinc: ${(error as Error)?.message ?? error}`);
    process.exitCode = 1;
  },
);
