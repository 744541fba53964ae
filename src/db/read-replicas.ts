import type { Database } from './database.js';
import { readDataVersion } from './data-version.js';

/**
 * Where metrics reads go when the primary has read replicas (DATABASE_REPLICA_URLS).
 *
 * Freshness is measured in Zinc's own terms, the data version that every change to `sales` moves
 * on in its own transaction (src/db/data-version.ts), so it means the same on MySQL, MariaDB and
 * PostgreSQL: a monitor reads the version on the primary and on each replica every `pollMs`. A
 * version first seen on the primary was committed after the start of the last poll that did not
 * see it yet; a replica whose version is v lacks at most the versions after v, so its lag is at
 * most the time since the first of them could have committed. A replica is *usable* while that
 * bound is within `maxLagMs`, so an answer from it reflects every change committed more than
 * `maxLagMs` ago (the contract REPLICA_MAX_LAG_MS states). With no usable replica, reads go to
 * the primary.
 *
 * Read your writes, and answers that never go back in time on one instance: the instance keeps
 * the highest version it has served or committed (`floor`); a replica below it is not used. A
 * change committed through this instance (`noteCommitted`) sends reads to the primary until the
 * primary's new version is known, and then raises the floor to it.
 *
 * A replica that fails a read is marked down at once and the read is answered by the primary
 * (see `read`); the monitor brings it back when it answers again.
 */

/** What one replica looks like to this instance, for /health and /metrics. */
export interface ReplicaStatus {
  /** host:port/database (never credentials). */
  readonly name: string;
  /** `ok`: used for reads; `lagging`: behind the bound (or behind this instance's floor); `down`: not answering. */
  readonly state: 'ok' | 'lagging' | 'down' | 'starting';
  /** Upper bound of how far behind the primary it is, in ms (0: caught up); null when unknown. */
  readonly lagMs: number | null;
  /** Its data version at the last poll. */
  readonly version: string | null;
  /** Reads it answered. */
  readonly reads: number;
  /** The last error it gave, while down. */
  readonly error: string | null;
}

/** Where one read goes: the database and the data version the answer is labelled with. */
export interface ReadSource {
  /** `primary`, or the replica's name. */
  readonly name: string;
  readonly database: Database;
  /** The data version of `database` as last seen: the answer reflects at least this version. */
  readonly version: string;
  readonly replica: boolean;
}

export interface ReadReplicasOptions {
  /** REPLICA_MAX_LAG_MS. */
  maxLagMs: number;
  /** How often versions are polled; default maxLagMs / 4, between 50 ms and 1 s. */
  pollMs?: number;
  /** The primary's data version as the answer cache knows it (CACHE_MAX_STALE_MS). */
  primaryVersion: () => Promise<string>;
  /**
   * Whether a failed read is the replica's fault (the read is then made on the primary), rather
   * than the question's (an invalid parameter found once the data is read): default, any error.
   */
  isReplicaFault?: (error: unknown) => boolean;
  /** Told when a replica changes state (for the log). */
  onStateChange?: (replica: ReplicaStatus, previous: ReplicaStatus['state']) => void;
  now?: () => number;
}

interface Replica {
  name: string;
  database: Database;
  version: bigint | null;
  up: boolean;
  polling: boolean;
  reads: number;
  error: string | null;
  state: ReplicaStatus['state'];
}

/** The primary's versions as polls first saw them, and when the earliest of each could have committed. */
interface SeenVersion {
  version: bigint;
  committedAfter: number;
}

/** Primary versions remembered at most (one per poll that saw a change). */
const MAX_SEEN = 10_000;

function toVersion(text: string): bigint | null {
  return /^-?\d+$/.test(text) ? BigInt(text) : null;
}

/** Rejects after `ms` when `promise` has not settled (the promise itself goes on). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class ReadReplicas {
  readonly maxLagMs: number;
  readonly pollMs: number;
  private readonly replicas: Replica[];
  private readonly now: () => number;
  private seen: SeenVersion[] = [];
  /** Versions up to this one were dropped from `seen`: a replica below it lags by an unknown time. */
  private forgotten: bigint | null = null;
  /** When the last successful poll of the primary started. */
  private primaryPolledAt = -Infinity;
  private primaryPolling = false;
  /** The highest version this instance served or committed: replicas below it are not read. */
  private floor: bigint | null = null;
  /** Changes committed here whose version the primary has not been asked for yet. */
  private pendingOwnWrites = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  primaryReads = 0;

  constructor(
    private readonly primary: Database,
    replicas: ReadonlyArray<{ name: string; database: Database }>,
    private readonly options: ReadReplicasOptions,
  ) {
    this.maxLagMs = options.maxLagMs;
    this.pollMs = options.pollMs ?? Math.min(1000, Math.max(50, Math.floor(options.maxLagMs / 4)));
    this.now = options.now ?? (() => performance.now());
    this.replicas = replicas.map((r) => ({
      name: r.name,
      database: r.database,
      version: null,
      up: false,
      polling: false,
      reads: 0,
      error: null,
      state: 'starting',
    }));
  }

  get size(): number {
    return this.replicas.length;
  }

  /** Starts polling (nothing to do without replicas). */
  start(): void {
    if (this.replicas.length === 0 || this.timer || this.closed) return;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.pollMs);
    this.timer.unref();
  }

  /** Stops polling and closes the replicas' connections (the primary is its owner's to close). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await Promise.allSettled(this.replicas.map((r) => r.database.close()));
  }

  /**
   * The source of the next read: a usable replica (the least used, to spread reads), else the
   * primary at the version the answer cache knows.
   */
  async source(): Promise<ReadSource> {
    const replica = this.pick();
    if (replica) return { name: replica.name, database: replica.database, version: String(replica.version), replica: true };
    const version = await this.options.primaryVersion();
    this.raiseFloor(toVersion(version));
    return { name: 'primary', database: this.primary, version, replica: false };
  }

  /**
   * Runs `read` on `source`; a replica that fails is marked down and the read is made again on
   * the primary, so a replica that stops costs no failed request. The primary's errors are the
   * caller's.
   */
  async read<T>(source: ReadSource, read: (database: Database) => Promise<T>): Promise<T> {
    if (!source.replica) {
      this.primaryReads++;
      return read(source.database);
    }
    const replica = this.replicas.find((r) => r.name === source.name)!;
    try {
      const result = await read(source.database);
      replica.reads++;
      return result;
    } catch (error) {
      if (this.options.isReplicaFault && !this.options.isReplicaFault(error)) throw error;
      this.markDown(replica, error);
      this.primaryReads++;
      return read(this.primary);
    }
  }

  /**
   * A change to sales committed through this instance: reads go to the primary until its new
   * version is known, then to replicas that have it (read your writes).
   */
  noteCommitted(): void {
    if (this.replicas.length === 0) return;
    this.pendingOwnWrites++;
    void readDataVersion(this.primary.db)
      .then((version) => this.raiseFloor(toVersion(version)))
      .catch(() => {
        // Unknown: the floor stays; the next primary read raises it.
      })
      .finally(() => this.pendingOwnWrites--);
  }

  status(): ReplicaStatus[] {
    const now = this.now();
    return this.replicas.map((r) => ({
      name: r.name,
      state: r.state,
      lagMs: r.up && r.version !== null ? Math.round(this.lagOf(r.version, now)) : null,
      version: r.version === null ? null : String(r.version),
      reads: r.reads,
      error: r.up ? null : r.error,
    }));
  }

  private pick(): Replica | undefined {
    if (this.pendingOwnWrites > 0) return undefined;
    const now = this.now();
    let best: Replica | undefined;
    for (const r of this.replicas) {
      this.updateState(r, now);
      if (r.state === 'ok' && (!best || r.reads < best.reads)) best = r;
    }
    return best;
  }

  private usable(r: Replica, now: number): boolean {
    if (!r.up || r.version === null) return false;
    if (this.floor !== null && r.version < this.floor) return false;
    return this.lagOf(r.version, now) <= this.maxLagMs;
  }

  /**
   * At most how long ago the first change missing from a replica at `version` committed. Caught up
   * with the primary's last poll: what committed since is younger than that poll.
   */
  private lagOf(version: bigint, now: number): number {
    // Its first missing change may be one whose time was forgotten: as late as can be.
    if (this.forgotten !== null && version < this.forgotten) return Infinity;
    const missing = this.seen.find((s) => s.version > version);
    return now - (missing ? missing.committedAfter : this.primaryPolledAt);
  }

  private updateState(r: Replica, now: number): void {
    const state: ReplicaStatus['state'] = !r.up
      ? r.state === 'starting' && r.error === null
        ? 'starting'
        : 'down'
      : this.usable(r, now)
        ? 'ok'
        : 'lagging';
    if (state !== r.state) {
      const previous = r.state;
      r.state = state;
      this.options.onStateChange?.(this.status().find((s) => s.name === r.name)!, previous);
    }
  }

  private markDown(r: Replica, error: unknown): void {
    r.up = false;
    r.error = error instanceof Error ? error.message : String(error);
    this.updateState(r, this.now());
  }

  private raiseFloor(version: bigint | null): void {
    if (version === null) return;
    if (this.floor === null || version > this.floor) this.floor = version;
  }

  /** Reads the data version on the primary and on every replica once (start() does it every pollMs). */
  async poll(): Promise<void> {
    if (this.closed) return;
    const timeout = Math.max(this.pollMs * 2, 1000);
    await Promise.all([this.pollPrimary(timeout), ...this.replicas.map((r) => this.pollReplica(r, timeout))]);
    const now = this.now();
    for (const r of this.replicas) this.updateState(r, now);
  }

  private async pollPrimary(timeout: number): Promise<void> {
    if (this.primaryPolling) return;
    this.primaryPolling = true;
    const started = this.now();
    try {
      const version = toVersion(await within(readDataVersion(this.primary.db), timeout, 'the primary'));
      if (version === null) return;
      const last = this.seen.at(-1);
      if (!last || version > last.version) {
        // Committed after the previous poll of the primary started (it did not see it yet).
        this.seen.push({ version, committedAfter: last ? this.primaryPolledAt : -Infinity });
      } else if (version < last.version) {
        // The data version went back (its row was emptied by hand and started again): start over.
        this.seen = [{ version, committedAfter: -Infinity }];
        this.forgotten = null;
        this.floor = null;
      }
      this.primaryPolledAt = started;
      this.prune();
    } catch {
      // The primary not answering: replicas' lag grows from its last poll, and the bound holds.
    } finally {
      this.primaryPolling = false;
    }
  }

  private async pollReplica(r: Replica, timeout: number): Promise<void> {
    if (r.polling) return;
    r.polling = true;
    try {
      r.version = toVersion(await within(readDataVersion(r.database.db), timeout, `replica ${r.name}`));
      r.up = true;
      r.error = null;
    } catch (error) {
      r.up = false;
      r.error = error instanceof Error ? error.message : String(error);
    } finally {
      r.polling = false;
    }
  }

  /**
   * Keeps the versions a replica that answers may still lack (the first above its version holds
   * its lag), the last one, and at most MAX_SEEN; what is dropped is `forgotten`.
   */
  private prune(): void {
    const lowest = this.replicas.reduce<bigint | null>(
      (min, r) => (r.up && r.version !== null && (min === null || r.version < min) ? r.version : min),
      null,
    );
    let keepFrom = lowest === null ? this.seen.length - 1 : this.seen.findIndex((s) => s.version > lowest);
    if (keepFrom === -1) keepFrom = this.seen.length - 1;
    keepFrom = Math.max(keepFrom, this.seen.length - MAX_SEEN);
    if (keepFrom <= 0) return;
    this.forgotten = this.seen[keepFrom - 1]!.version;
    this.seen = this.seen.slice(keepFrom);
  }
}
