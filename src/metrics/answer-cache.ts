import type { FastifyInstance } from 'fastify';

/**
 * Caching of metrics answers, exact and fresh.
 *
 * Every change to `sales` bumps a one-row data version in the same transaction
 * (src/write/sales-change.ts, src/db/data-version.ts). An answer is cached under (data version, question), so a cached answer is
 * always the answer for that version; what can be late is only this process's idea of the
 * current version:
 *
 * - it is re-read from the database at most every `maxStaleMs` (CACHE_MAX_STALE_MS), when a
 *   request needs it, so changes made by other instances show within that time;
 * - a request that may have changed sales in this process (to a route declaring `changesSales`,
 *   see route-policy.ts) calls `invalidate()` before its response is sent, so the instance that
 *   changed the data sees the new version at once (see registerCacheInvalidation in app.ts);
 * - every change to sales committed through this app's Database (src/write/sales-change.ts:
 *   background imports, undo, rebuilds) invalidates it once committed (wired in app.ts), so this
 *   instance serves its own changes at once; apps with databases of their own never hear each
 *   other.
 *
 * With maxStaleMs = 0 answers are not cached and the version is read on every request (it still
 * gives the ETag).
 */
export class DataVersion {
  private value: string | undefined;
  private checkedAt = -Infinity;
  private generation = 0;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly read: () => Promise<string>,
    readonly maxStaleMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The data version, read from the database when the one known is older than maxStaleMs. */
  current(): Promise<string> {
    if (this.value !== undefined && this.now() - this.checkedAt < this.maxStaleMs) return Promise.resolve(this.value);
    return this.refresh();
  }

  /** Forgets the known version: the next `current()` reads it from the database. */
  invalidate(): void {
    this.generation++;
    this.checkedAt = -Infinity;
    this.pending = undefined;
  }

  private refresh(): Promise<string> {
    if (this.pending) return this.pending;
    const generation = this.generation;
    const started = this.now();
    const pending = this.read().then(
      (value) => {
        // A read that began before an invalidation may predate the change: use it, never keep it.
        if (generation === this.generation) {
          this.value = value;
          this.checkedAt = started;
        }
        if (this.pending === pending) this.pending = undefined;
        return value;
      },
      (error: unknown) => {
        if (this.pending === pending) this.pending = undefined;
        throw error;
      },
    );
    this.pending = pending;
    return pending;
  }
}

interface Entry {
  body: Buffer;
  bytes: number;
}

/**
 * Serialized answers of one data version, least recently used first out, bounded in bytes.
 * Concurrent requests for the same missing answer share one computation.
 */
export class AnswerCache {
  private version: string | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly computing = new Map<string, Promise<Buffer>>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    readonly enabled: boolean,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  /** The cached body of `key` at `version`, or the one `compute` gives (then cached), as UTF-8 bytes. */
  async get(version: string, key: string, compute: () => Promise<string>): Promise<Buffer> {
    if (!this.enabled) return Buffer.from(await compute());
    if (version !== this.version) {
      this.version = version;
      this.entries.clear();
      this.computing.clear();
      this.bytes = 0;
    }
    const entry = this.entries.get(key);
    if (entry) {
      this.hits++;
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry.body;
    }
    const running = this.computing.get(key);
    if (running) return running;
    this.misses++;
    const promise = compute().then(
      (text) => {
        const body = Buffer.from(text);
        if (this.computing.get(key) === promise) this.computing.delete(key);
        if (this.version === version) this.store(key, body);
        return body;
      },
      (error: unknown) => {
        if (this.computing.get(key) === promise) this.computing.delete(key);
        throw error;
      },
    );
    this.computing.set(key, promise);
    return promise;
  }

  get size(): number {
    return this.entries.size;
  }

  private store(key: string, body: Buffer): void {
    const bytes = body.length + key.length * 2 + 64;
    if (bytes > this.maxBytes / 4) return;
    const previous = this.entries.get(key);
    if (previous) {
      this.entries.delete(key);
      this.bytes -= previous.bytes;
    }
    this.entries.set(key, { body, bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }
}

/** Bumped whenever the shape of an answer changes, so ETags from an older build never match. */
export const ANSWER_FORMAT = 'r1';

/** The data version and the answer cache of one app, and the headers they give responses. */
export class MetricsCache {
  readonly version: DataVersion;
  readonly answers: AnswerCache;
  /** Cache-Control of cacheable answers: a shared cache may keep them as long as we may. */
  readonly cacheControl: string;

  constructor(readVersion: () => Promise<string>, maxStaleMs: number, options: { privateAnswers: boolean }) {
    this.version = new DataVersion(readVersion, maxStaleMs);
    this.answers = new AnswerCache(maxStaleMs > 0);
    const seconds = Math.floor(maxStaleMs / 1000);
    // With an API token the answers are for authorized callers only: no shared cache may keep them.
    const scope = options.privateAnswers ? 'private' : 'public';
    this.cacheControl = seconds > 0 ? `${scope}, max-age=${seconds}` : `${scope}, no-cache`;
  }

  etag(version: string): string {
    return `"${ANSWER_FORMAT}-${version}"`;
  }

  /** Sales may have changed in this process: the next answer re-reads the data version. */
  invalidate(): void {
    this.version.invalidate();
  }
}

/** True when an If-None-Match header names the ETag (or is `*`). */
export function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  for (const part of header.split(',')) {
    const tag = part.trim().replace(/^W\//, '');
    if (tag === etag || tag === '*') return true;
  }
  return false;
}

/**
 * The instance that changes sales sees the new data version at once: every request to a route
 * that may change them (its `config.changesSales`: imports, uploads, undo; by default any method
 * but GET, HEAD and OPTIONS) forgets the known version before its response leaves, i.e. after
 * its transaction committed. Registered on the root instance so it sees every route.
 */
export function registerCacheInvalidation(app: FastifyInstance, cache: MetricsCache): void {
  app.addHook('onSend', (request, _reply, payload, done) => {
    if (request.policy.changesSales) cache.invalidate();
    done(null, payload);
  });
}
