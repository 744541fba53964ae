import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** Where the data lives: a MySQL/MariaDB server or an embedded SQLite file. */
export type DatabaseConfig =
  | { kind: 'sqlite'; path: string }
  | { kind: 'mysql'; url: string; host: string; port: number; database: string };

export interface Config {
  readonly database: DatabaseConfig;
  readonly salesDir: string;
  readonly host: string;
  readonly port: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly apiToken: string | undefined;
  /** Bearer token for GET /metrics; open when unset. */
  readonly metricsToken: string | undefined;
  /** How long in-flight requests get to finish after SIGTERM/SIGINT. */
  readonly shutdownTimeoutMs: number;
  /** Largest accepted upload, in bytes. */
  readonly maxUploadBytes: number;
  /** MySQL bulk path: LOAD DATA LOCAL INFILE when the server allows it (`auto`), or forced. */
  readonly mysqlLoadMethod: 'auto' | 'load-data' | 'insert';
  /** How late this instance may notice another instance's import in cached metrics answers; 0: no answer cache. */
  readonly cacheMaxStaleMs: number;
}

/** Start-up configuration is wrong; the message is one line naming the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const DEFAULT_DATABASE_URL = 'sqlite:./data/zinc.sqlite';

/** Parses `sqlite:PATH` or `mysql://user:pass@host:port/db`; throws a plain message on anything else. */
export function parseDatabaseUrl(value: string): DatabaseConfig {
  if (value.startsWith('sqlite:')) {
    const file = value.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (file === '') throw new Error('sqlite: needs a file path, e.g. sqlite:./data/zinc.sqlite');
    return { kind: 'sqlite', path: file === ':memory:' ? file : path.resolve(file) };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error('is not a URL; expected mysql://user:pass@host:port/db or sqlite:PATH');
  }
  if (url.protocol !== 'mysql:' && url.protocol !== 'mariadb:') {
    throw new Error(`has unsupported scheme "${url.protocol.replace(/:$/, '')}"; use mysql:// or sqlite:`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!url.hostname) throw new Error('has no host; expected mysql://user:pass@host:port/db');
  if (!database || database.includes('/')) {
    throw new Error('has no database name; expected mysql://user:pass@host:port/db');
  }
  const port = url.port === '' ? 3306 : Number(url.port);
  return { kind: 'mysql', url: value, host: url.hostname, port, database };
}

const portSchema = z
  .string()
  .regex(/^\d+$/, 'must be a whole number between 0 and 65535')
  .transform(Number)
  .refine((n) => n <= 65535, 'must be a whole number between 0 and 65535');

const optionalSecret = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const envSchema = z.object({
  DATABASE_URL: z
    .string()
    .default(DEFAULT_DATABASE_URL)
    .transform((value, ctx) => {
      try {
        return parseDatabaseUrl(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
  SALES_DIR: z
    .string()
    .default('./static/sales')
    .transform((value, ctx) => {
      const dir = path.resolve(value);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) {
        ctx.addIssue({ code: 'custom', message: `folder ${dir} does not exist` });
        return z.NEVER;
      }
      return dir;
    }),
  HOST: z.string().min(1, 'must not be empty').default('0.0.0.0'),
  PORT: portSchema.default(8000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  API_TOKEN: optionalSecret,
  METRICS_TOKEN: optionalSecret,
  SHUTDOWN_TIMEOUT_MS: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of milliseconds')
    .transform(Number)
    .default(10_000),
  MYSQL_LOAD_METHOD: z.enum(['auto', 'load-data', 'insert']).default('auto'),
  MAX_UPLOAD_BYTES: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of bytes')
    .transform(Number)
    .default(2 ** 30),
  CACHE_MAX_STALE_MS: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of milliseconds (0 disables the cache)')
    .transform(Number)
    .default(1000),
});

/**
 * Reads the environment once into a frozen Config.
 * Throws ConfigError with a single line such as `PORT must be a whole number between 0 and 65535 (got "abc")`.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    const secret = name.endsWith('_TOKEN');
    const got = env[name] === undefined || secret ? '' : ` (got ${JSON.stringify(redactUrl(env[name]!))})`;
    throw new ConfigError(`${name} ${issue.message}${got}`);
  }
  const e = result.data;
  return Object.freeze({
    database: Object.freeze(e.DATABASE_URL),
    salesDir: e.SALES_DIR,
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    apiToken: e.API_TOKEN,
    metricsToken: e.METRICS_TOKEN,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    mysqlLoadMethod: e.MYSQL_LOAD_METHOD,
    cacheMaxStaleMs: e.CACHE_MAX_STALE_MS,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
  });
}

/** Hides a password in a URL so it can be printed. */
export function redactUrl(value: string): string {
  // Up to the last "@" before the path: a password may itself contain "@" or ":".
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^/]*@/i, '$1***@');
}
