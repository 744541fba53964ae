import { existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { ColumnAliasError, parseColumnAliases, type ColumnAliases } from './imports/csv-format.js';

/** One server of a database URL: `host` as written (an IPv6 address in brackets), and its port. */
export interface ServerHost {
  host: string;
  port: number;
}

/** Where the data lives: one variant per database (src/db/dialects/ has a module for each). */
export type DatabaseConfig =
  | { kind: 'sqlite'; path: string; poolSize?: number }
  | {
      kind: 'mysql';
      url: string;
      /** The first server of `hosts`. */
      host: string;
      port: number;
      /**
       * Every server the URL names, in its order (`mysql://u:p@h1:3321,h2:3322/db`): the nodes of
       * one cluster, used first to last (src/db/dialects/mysql/host-pools.ts). Absent: just `host`.
       */
      hosts?: readonly ServerHost[];
      database: string;
      poolSize?: number;
    }
  | { kind: 'postgres'; url: string; host: string; port: number; database: string; poolSize?: number };

export interface Config {
  readonly database: DatabaseConfig;
  /**
   * Read replicas of `database` (same kind, MySQL/MariaDB or PostgreSQL): metrics reads go to one
   * that is at most `replicaMaxLagMs` behind; everything else goes to `database`.
   */
  readonly replicas: readonly DatabaseConfig[];
  /** How far behind the primary a replica may be and still answer (see src/db/read-replicas.ts). */
  readonly replicaMaxLagMs: number;
  /** The local sales folder; with `salesUrl` set it is not read (and need not exist). */
  readonly salesDir: string;
  /** SALES_URL: the bucket and prefix folder imports read instead of `salesDir` (src/imports/s3-source.ts). */
  readonly salesUrl?: S3SalesLocation | undefined;
  readonly host: string;
  readonly port: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly apiToken: string | undefined;
  /** Bearer token for GET /metrics; open when unset. */
  readonly metricsToken: string | undefined;
  /**
   * After SIGTERM: how long the instance keeps serving as usual, not ready, so that load
   * balancers take it out before it stops listening; 0: stop listening at once. (SIGINT skips it.)
   */
  readonly shutdownDrainMs: number;
  /** Then how long in-flight requests and running imports get to finish before imports are stopped (rolled back). */
  readonly shutdownTimeoutMs: number;
  /** Largest accepted upload, in bytes. */
  readonly maxUploadBytes: number;
  /** MySQL bulk path: LOAD DATA LOCAL INFILE when the server allows it (`auto`), or forced. */
  readonly mysqlLoadMethod: 'auto' | 'load-data' | 'insert';
  /** Other header names for the required columns, for every import (CSV_COLUMNS); an import may add its own. */
  readonly csvColumns?: ColumnAliases | undefined;
  /** How late this instance may notice another instance's import in cached metrics answers; 0: no answer cache. */
  readonly cacheMaxStaleMs: number;
  /** Bearer token that may only read (GET metrics and import records); needs apiToken. */
  readonly apiReadToken: string | undefined;
  /** NODE_ENV=production: serving then needs API_TOKEN unless allowAnonymous. */
  readonly production: boolean;
  /** ALLOW_ANONYMOUS=true: serve without API_TOKEN even in production, on purpose. */
  readonly allowAnonymous: boolean;
  /** Requests one client (see trustProxy) may make per rateLimitWindowMs; 0: no rate limit. */
  readonly rateLimitMax: number;
  readonly rateLimitWindowMs: number;
  /**
   * Redis (`redis://host:port/db`) where every instance counts each client's requests, so that
   * the limit holds across instances behind a load balancer; unset: each instance counts alone.
   */
  readonly rateLimitRedisUrl?: string | undefined;
  /** Longest time to answer a request (imports and undo excepted) and longest silence on a connection; 0: none. */
  readonly requestTimeoutMs: number;
  /** Origins (`https://host[:port]`) whose pages may call the API from a browser; empty: CORS off. */
  readonly corsOrigins: readonly string[];
  /** Which proxies' X-Forwarded-For to believe for the client address: none, all, or these addresses/CIDRs. */
  readonly trustProxy: boolean | readonly string[];
  /**
   * The watched folder (src/imports/sales-watch.ts): `serve` watches SALES_DIR when `serve`
   * (SALES_WATCH=true); `zinc watch` always does. A file is imported once unchanged for
   * `settleMs`; the folder is scanned every `pollMs`. Absent: not watched, the default pace.
   */
  readonly watch?: { readonly serve: boolean; readonly settleMs: number; readonly pollMs: number } | undefined;
}

/** A folder of sales files in S3-compatible object storage (AWS S3, MinIO, R2, …). */
export interface S3SalesLocation {
  /** `s3://bucket/prefix/` (the prefix always ends with `/` unless it is empty). */
  readonly url: string;
  readonly bucket: string;
  /** Keys of the folder's files start with it: `''` or ending with `/`. */
  readonly prefix: string;
  /** AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL: another store than AWS; unset: AWS itself. */
  readonly endpoint?: string | undefined;
  /** AWS_REGION; unset: the SDK's default chain (the profile), or us-east-1 when an endpoint is set. */
  readonly region?: string | undefined;
  /** Path-style addressing (`endpoint/bucket/key`), as MinIO and most self-hosted stores need. */
  readonly forcePathStyle: boolean;
}

/** Start-up configuration is wrong; the message is one line naming the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const DEFAULT_DATABASE_URL = 'sqlite:./data/zinc.sqlite';

/** Server URL schemes, the database each names, its default port, and whether it takes a list of hosts (a Galera cluster's nodes). */
const SERVER_SCHEMES = {
  'mysql:': { kind: 'mysql', port: 3306, hostList: true },
  'mariadb:': { kind: 'mysql', port: 3306, hostList: true },
  'postgres:': { kind: 'postgres', port: 5432, hostList: false },
  'postgresql:': { kind: 'postgres', port: 5432, hostList: false },
} as const;

/**
 * Parses `sqlite:PATH`, `mysql://user:pass@host:port/db` (or a list of hosts,
 * `mysql://user:pass@h1:3321,h2:3322,h3/db`) or `postgres://user:pass@host:port/db`; throws a
 * plain message on anything else.
 */
export function parseDatabaseUrl(value: string): DatabaseConfig {
  if (value.startsWith('sqlite:')) {
    const file = value.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (file === '') throw new Error('sqlite: needs a file path, e.g. sqlite:./data/zinc.sqlite');
    if (/^sqlite:\/\/[^/]/i.test(value)) {
      throw new Error('names a host (or a list of hosts), but an SQLite database is one local file: use sqlite:./data/zinc.sqlite or sqlite:///absolute/path');
    }
    return { kind: 'sqlite', path: file === ':memory:' ? file : path.resolve(file) };
  }
  const listed = splitServerUrl(value);
  if (listed && listed.hosts.includes(',')) return parseHostList(value, listed);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error('is not a URL; expected mysql://user:pass@host:port/db, postgres://user:pass@host:port/db or sqlite:PATH');
  }
  const scheme = Object.hasOwn(SERVER_SCHEMES, url.protocol) ? SERVER_SCHEMES[url.protocol as keyof typeof SERVER_SCHEMES] : undefined;
  if (!scheme) {
    throw new Error(`has unsupported scheme "${url.protocol.replace(/:$/, '')}"; use mysql://, postgres:// or sqlite:`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!url.hostname) throw new Error('has no host; expected mysql://user:pass@host:port/db');
  if (!database || database.includes('/')) {
    throw new Error('has no database name; expected mysql://user:pass@host:port/db');
  }
  const port = url.port === '' ? scheme.port : Number(url.port);
  const server = { url: value, host: url.hostname, port, database };
  return scheme.hostList ? { ...server, kind: scheme.kind, hosts: [{ host: url.hostname, port }] } : { ...server, kind: scheme.kind };
}

/** A server URL cut around its hosts: `mysql://user:pass@` + `h1:3321,h2` + `/db?opts`. */
interface SplitUrl {
  /** Scheme, `//` and the user part up to its `@` (or nothing). */
  head: string;
  scheme: string;
  hosts: string;
  /** The path and query (`/db?ssl=…`), or nothing. */
  tail: string;
}

function splitServerUrl(value: string): SplitUrl | undefined {
  const match = /^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)(.*)$/is.exec(value);
  if (!match) return undefined;
  const [, scheme = '', authority = '', tail = ''] = match;
  // Up to the last "@": a password may itself contain "@" (or ",", or ":").
  const at = authority.lastIndexOf('@');
  return { head: `${scheme}//${authority.slice(0, at + 1)}`, scheme: scheme.toLowerCase(), hosts: authority.slice(at + 1), tail };
}

/** `host` or `host:port` or `[v6]:port`, each host name made of the characters a DNS name or an address may use. */
const HOST_ENTRY = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?$/i;

/**
 * `mysql://user:pass@h1:3321,h2:3322,h3/db`: Node's URL cannot parse a list of hosts, so the list
 * is cut out by hand and the rest (user, database, options) parsed from the URL of its first host.
 */
function parseHostList(value: string, split: SplitUrl): DatabaseConfig {
  const scheme = Object.hasOwn(SERVER_SCHEMES, split.scheme) ? SERVER_SCHEMES[split.scheme as keyof typeof SERVER_SCHEMES] : undefined;
  if (!scheme) {
    throw new Error(`has unsupported scheme "${split.scheme.replace(/:$/, '')}"; use mysql://, postgres:// or sqlite:`);
  }
  if (!scheme.hostList) {
    throw new Error(
      'lists several hosts, which only mysql:// and mariadb:// URLs may (the nodes of a Galera cluster); name the one PostgreSQL primary, or a proxy in front of it',
    );
  }
  const hosts: ServerHost[] = [];
  for (const entry of split.hosts.split(',')) {
    const match = HOST_ENTRY.exec(entry);
    const port = match?.[2] === undefined ? scheme.port : Number(match[2]);
    if (!match || port < 1 || port > 65535) {
      throw new Error(`has a bad host "${entry}" in its host list; expected mysql://user:pass@host1:port1,host2:port2/db`);
    }
    hosts.push({ host: match[1]!, port });
  }
  const seen = new Set(hosts.map((h) => `${h.host.toLowerCase()}:${h.port}`));
  if (seen.size < hosts.length) throw new Error('names the same host twice in its host list');
  const first = parseDatabaseUrl(serverUrl(value, hosts[0]!));
  if (!('database' in first)) throw new Error('has an unexpected scheme');
  return { kind: scheme.kind, url: value, host: first.host, port: first.port, hosts, database: first.database };
}

/**
 * The URL of one server of a (possibly multi-host) URL: the same user, database and options with
 * `host` alone, as drivers and tools that take one host want it.
 */
export function serverUrl(url: string, host: ServerHost): string {
  const split = splitServerUrl(url);
  if (!split) throw new Error('not a server URL');
  return `${split.head}${host.host}:${host.port}${split.tail}`;
}

const portSchema = z
  .string()
  .regex(/^\d+$/, 'must be a whole number between 0 and 65535')
  .transform(Number)
  .refine((n) => n <= 65535, 'must be a whole number between 0 and 65535');

const booleanSchema = z
  .string()
  .transform((v) => v.trim().toLowerCase())
  .refine((v) => ['', 'true', 'false', '1', '0'].includes(v), 'must be true or false')
  .transform((v) => v === 'true' || v === '1');

/** setTimeout's limit: a longer timer would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A whole number of milliseconds above 0 that a timer can wait: from `min` (1) up to MAX_TIMER_MS. */
function positiveMsSchema(min = 1) {
  return z
    .string()
    .regex(/^[1-9]\d*$/, 'must be a whole number of milliseconds above 0')
    .transform(Number)
    .refine((n) => n >= min && n <= MAX_TIMER_MS, min > 1 ? `must be between ${min} and ${MAX_TIMER_MS}` : `must be at most ${MAX_TIMER_MS}`);
}

/** `scheme://host[:port]` and nothing else (no path, no trailing slash). */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}

/** An address, a CIDR, or one of proxy-addr's names for address ranges. */
function isProxyAddress(value: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(value)) return true;
  const [address = '', bits, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}

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
  DATABASE_REPLICA_URLS: z
    .string()
    .default('')
    .transform((value, ctx) => {
      const urls = value.split(',').map((u) => u.trim()).filter((u) => u !== '');
      const replicas: DatabaseConfig[] = [];
      for (const [i, url] of urls.entries()) {
        try {
          replicas.push(parseDatabaseUrl(url));
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: `URL ${i + 1} ${(error as Error).message}` });
          return z.NEVER;
        }
      }
      return replicas;
    }),
  REPLICA_MAX_LAG_MS: positiveMsSchema().default(5000),
  // Unset: ./static/sales, checked in loadConfig unless SALES_URL is set.
  SALES_DIR: z
    .string()
    .optional()
    .transform((value, ctx) => {
      // Empty is unset (SALES_DIR= in a .env or a manifest clears an inherited value).
      if (value === undefined || value.trim() === '') return undefined;
      const dir = path.resolve(value);
      if (!isFolder(dir)) {
        ctx.addIssue({ code: 'custom', message: `folder ${dir} does not exist` });
        return z.NEVER;
      }
      return dir;
    }),
  SALES_URL: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === '') return undefined;
      try {
        return parseS3Url(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
  S3_FORCE_PATH_STYLE: booleanSchema.optional(),
  HOST: z.string().min(1, 'must not be empty').default('0.0.0.0'),
  PORT: portSchema.default(8000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  API_TOKEN: optionalSecret,
  METRICS_TOKEN: optionalSecret,
  SHUTDOWN_DRAIN_MS: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of milliseconds (0: stop listening at once)')
    .transform(Number)
    .refine((n) => n <= MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS}`)
    .default(2_000),
  SALES_WATCH: booleanSchema.default(false),
  WATCH_SETTLE_MS: positiveMsSchema().default(2_000),
  WATCH_POLL_MS: positiveMsSchema(50).default(1_000),
  SHUTDOWN_TIMEOUT_MS: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of milliseconds')
    .transform(Number)
    .refine((n) => n <= MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS}`)
    .default(10_000),
  MYSQL_LOAD_METHOD: z.enum(['auto', 'load-data', 'insert']).default('auto'),
  CSV_COLUMNS: z
    .string()
    .default('')
    .transform((value, ctx) => {
      try {
        return parseColumnAliases(value);
      } catch (error) {
        if (!(error instanceof ColumnAliasError)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message });
        return z.NEVER;
      }
    }),
  MAX_UPLOAD_BYTES: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of bytes')
    .transform(Number)
    .default(2 ** 30),
  DATABASE_POOL_SIZE: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of connections')
    .transform(Number)
    // A background folder import holds two connections (its claim on itself, the file's load)
    // while requests go on: fewer than 3 could wait for one another forever.
    .refine((n) => n >= 3, 'must be at least 3: a background import holds two connections while requests are answered')
    .optional(),
  CACHE_MAX_STALE_MS: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of milliseconds (0 disables the cache)')
    .transform(Number)
    .default(1000),
  API_READ_TOKEN: optionalSecret,
  NODE_ENV: z.string().optional(),
  ALLOW_ANONYMOUS: booleanSchema.default(false),
  RATE_LIMIT_MAX: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of requests (0 disables rate limiting)')
    .transform(Number)
    .default(1200),
  RATE_LIMIT_REDIS_URL: z
    .string()
    .optional()
    .transform((v) => (v === '' ? undefined : v))
    .refine((v) => v === undefined || /^rediss?:\/\/[^/]/.test(v), 'must be a redis:// or rediss:// URL'),
  RATE_LIMIT_WINDOW_MS: z
    .string()
    .regex(/^[1-9]\d*$/, 'must be a whole number of milliseconds above 0')
    .transform(Number)
    .default(60_000),
  REQUEST_TIMEOUT_MS: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of milliseconds (0 disables the timeout)')
    .transform(Number)
    .refine((n) => n <= MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS}`)
    .default(30_000),
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((value, ctx) => {
      const origins = value.split(',').map((o) => o.trim()).filter((o) => o !== '');
      for (const origin of origins) {
        if (!isOrigin(origin)) {
          ctx.addIssue({ code: 'custom', message: `must list origins like https://app.example.com, separated by commas; "${origin}" is not one` });
          return z.NEVER;
        }
      }
      return origins;
    }),
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform((value, ctx) => {
      const v = value.trim().toLowerCase();
      if (v === '' || v === 'false') return false;
      if (v === 'true') return true;
      const addresses = v.split(',').map((a) => a.trim()).filter((a) => a !== '');
      if (addresses.length > 0 && addresses.every(isProxyAddress)) return addresses;
      ctx.addIssue({
        code: 'custom',
        message: 'must be false, true, or the proxies\' addresses or CIDRs (or loopback, linklocal, uniquelocal) separated by commas',
      });
      return z.NEVER;
    }),
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
    // A list of URLs (DATABASE_REPLICA_URLS), or a URL with a list of hosts, hides every password.
    const shown = env[name] === undefined ? '' : redactUrl(env[name]!);
    const got = env[name] === undefined || secret ? '' : ` (got ${JSON.stringify(shown)})`;
    throw new ConfigError(`${name} ${issue.message}${got}`);
  }
  const e = result.data;
  if (e.API_READ_TOKEN !== undefined && e.API_TOKEN === undefined) {
    throw new ConfigError('API_READ_TOKEN needs API_TOKEN: without API_TOKEN the API is open to everyone anyway');
  }
  if (e.API_READ_TOKEN !== undefined && e.API_READ_TOKEN === e.API_TOKEN) {
    throw new ConfigError('API_READ_TOKEN must differ from API_TOKEN');
  }
  for (const replica of e.DATABASE_REPLICA_URLS) {
    if (!('url' in replica)) {
      throw new ConfigError('DATABASE_REPLICA_URLS must list server URLs (mysql:// or postgres://): an SQLite file has no replicas');
    }
    if (replica.kind !== e.DATABASE_URL.kind) {
      throw new ConfigError(
        `DATABASE_REPLICA_URLS must name replicas of DATABASE_URL's database: ${replica.kind} replicas of a ${e.DATABASE_URL.kind} database`,
      );
    }
  }
  const { salesDir, salesUrl } = salesLocation(env, e.SALES_DIR, e.SALES_URL, e.S3_FORCE_PATH_STYLE);
  if (e.SALES_WATCH && salesUrl) {
    throw new ConfigError('SALES_WATCH watches SALES_DIR, a local folder; it cannot watch SALES_URL (unset one of them)');
  }
  const withPool = (database: DatabaseConfig) =>
    Object.freeze({ ...database, ...(e.DATABASE_POOL_SIZE === undefined ? {} : { poolSize: e.DATABASE_POOL_SIZE }) });
  return Object.freeze({
    // The pool size is for servers; an SQLite file ignores it (two connections: reader and writer).
    database: withPool(e.DATABASE_URL),
    replicas: Object.freeze(e.DATABASE_REPLICA_URLS.map(withPool)),
    replicaMaxLagMs: e.REPLICA_MAX_LAG_MS,
    salesDir,
    salesUrl,
    host: e.HOST,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    apiToken: e.API_TOKEN,
    metricsToken: e.METRICS_TOKEN,
    shutdownDrainMs: e.SHUTDOWN_DRAIN_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    mysqlLoadMethod: e.MYSQL_LOAD_METHOD,
    csvColumns: e.CSV_COLUMNS,
    cacheMaxStaleMs: e.CACHE_MAX_STALE_MS,
    maxUploadBytes: e.MAX_UPLOAD_BYTES,
    apiReadToken: e.API_READ_TOKEN,
    production: e.NODE_ENV === 'production',
    allowAnonymous: e.ALLOW_ANONYMOUS,
    rateLimitMax: e.RATE_LIMIT_MAX,
    rateLimitWindowMs: e.RATE_LIMIT_WINDOW_MS,
    rateLimitRedisUrl: e.RATE_LIMIT_REDIS_URL,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    corsOrigins: Object.freeze(e.CORS_ORIGINS),
    trustProxy: Array.isArray(e.TRUST_PROXY) ? Object.freeze(e.TRUST_PROXY) : e.TRUST_PROXY,
    watch: Object.freeze({ serve: e.SALES_WATCH, settleMs: e.WATCH_SETTLE_MS, pollMs: e.WATCH_POLL_MS }),
  });
}

const DEFAULT_SALES_DIR = './static/sales';

function isFolder(dir: string): boolean {
  return existsSync(dir) && statSync(dir).isDirectory();
}

/**
 * Parses `s3://bucket/prefix` into its bucket and prefix (taken literally, as the AWS CLI does;
 * `/` appended: the prefix names a folder). Throws a plain message on anything else.
 */
export function parseS3Url(value: string): { url: string; bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/s.exec(value);
  if (!match) throw new Error('must be an s3://bucket/prefix URL');
  const [, bucket = '', rest = ''] = match;
  if (bucket.includes('@') || bucket.includes(':')) {
    throw new Error('must not carry credentials or a port: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and AWS_ENDPOINT_URL_S3 for another store');
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error('must name a bucket of 3 to 63 lowercase letters, digits, dots and hyphens: s3://bucket/prefix');
  }
  const prefix = rest === '' || rest.endsWith('/') ? rest : `${rest}/`;
  return { url: `s3://${bucket}/${prefix}`, bucket, prefix };
}

/** An http(s) URL and nothing else, or a plain message. */
function checkEndpoint(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be an http:// or https:// URL (got ${JSON.stringify(redactUrl(value))})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name} must be an http:// or https:// URL (got ${JSON.stringify(redactUrl(value))})`);
  }
  return value;
}

/**
 * Where folder imports read: SALES_DIR (default ./static/sales, which must exist) or SALES_URL
 * with the standard AWS variables beside it; setting both is a mistake worth stopping for.
 */
function salesLocation(
  env: NodeJS.ProcessEnv,
  dir: string | undefined,
  bucket: { url: string; bucket: string; prefix: string } | undefined,
  forcePathStyle: boolean | undefined,
): { salesDir: string; salesUrl: S3SalesLocation | undefined } {
  if (!bucket) {
    const salesDir = dir ?? path.resolve(DEFAULT_SALES_DIR);
    if (!isFolder(salesDir)) throw new ConfigError(`SALES_DIR folder ${salesDir} does not exist`);
    return { salesDir, salesUrl: undefined };
  }
  if (dir !== undefined) throw new ConfigError('SALES_URL and SALES_DIR are both set: set one, the bucket or the folder imports read');
  const endpointName = env.AWS_ENDPOINT_URL_S3 ? 'AWS_ENDPOINT_URL_S3' : env.AWS_ENDPOINT_URL ? 'AWS_ENDPOINT_URL' : undefined;
  const endpoint = endpointName && checkEndpoint(endpointName, env[endpointName]!);
  const region = env.AWS_REGION || undefined;
  if (region !== undefined && !/^[a-z0-9-]+$/.test(region)) {
    throw new ConfigError(`AWS_REGION must be a region name such as eu-west-1 (got ${JSON.stringify(region)})`);
  }
  const salesUrl = Object.freeze({
    ...bucket,
    endpoint: endpoint || undefined,
    region: region ?? (endpoint ? 'us-east-1' : undefined),
    // A store of one's own (MinIO, s3rver, most others) wants bucket names in the path.
    forcePathStyle: forcePathStyle ?? Boolean(endpoint),
  });
  return { salesDir: path.resolve(DEFAULT_SALES_DIR), salesUrl };
}

/**
 * A server in production must not serve the API to anyone by accident: it needs API_TOKEN, or
 * ALLOW_ANONYMOUS=true saying that an open API is meant. (The CLI's import, migrate and backup
 * serve nothing, so they do not ask.)
 */
export function assertServable(config: Config): void {
  if (config.production && config.apiToken === undefined && !config.allowAnonymous) {
    throw new ConfigError(
      'API_TOKEN must be set when NODE_ENV=production (or set ALLOW_ANONYMOUS=true to serve the API without a token on purpose)',
    );
  }
}

/** Hides the password of a URL, of each URL of a comma-separated list, so it can be printed. */
export function redactUrl(value: string): string {
  // Each URL of a list on its own (a list is split only where a new scheme:// begins), its
  // password up to the URL's last "@": a password may itself contain "@", ":", "," or "/" (an AWS
  // secret key often has a "/"). Hiding too much is the safe way to be wrong.
  return value
    .split(/(,(?=\s*[a-z][a-z0-9+.-]*:\/\/))/i)
    .map((piece) => {
      const match = /^(\s*[a-z][a-z0-9+.-]*:\/\/[^:/@,]*:).*@/is.exec(piece);
      return match ? `${match[1]}***@${piece.slice(match[0].length)}` : piece;
    })
    .join('');
}
