import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { AnyDB, DB, FileClaims, WriteLockHold } from '../../database.js';
import { WriteLockLost } from '../../write-lock.js';
import { whileHolding } from '../shared.js';

/**
 * Locks as leases in a table, for a Galera cluster, whose named locks (GET_LOCK) hold on one node
 * only. A lease is a row of `zinc_locks` (name, holder, expiry by the server's clock), taken by one
 * autocommit upsert that writes the row only when it is free, expired or already this holder's:
 * two nodes racing for it are certified in order and the later one, aborted (1213) and retried by
 * the server, finds the winner's row. The holder renews its leases from the pool every
 * `heartbeatMs`; a lease not renewed for half its TTL, or found taken over, is lost: the work
 * holding it is aborted, and the writer lock's transaction checks its leases again just before
 * COMMIT (`fence`), so a holder that lost one can never commit. A holder that dies leaves its
 * rows to expire: another takes over after the TTL.
 *
 * As GET_LOCK's were, leases are held "on a connection": the writer lock and a file's claim taken
 * on the connection that runs the import are what its transaction fences.
 */

/** Lease timing; tests shorten it (and put it back). `always`: leases on a plain server too. */
export const leaseTuning = {
  /** How long a lease outlives its holder's last renewal: a dead holder's lock is free after this. */
  ttlMs: 20_000,
  /** How often a holder renews its leases. */
  heartbeatMs: 5_000,
  /** Use leases even where named locks work (tests of this module on a single server). */
  always: false,
};

/** The lease table: in the app's database, created on first use (before any migration can run). */
const CREATE_TABLE = sql`CREATE TABLE IF NOT EXISTS zinc_locks (
  name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  holder VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  acquired_at DATETIME(6) NOT NULL,
  renewed_at DATETIME(6) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB`;

const HOST = hostname().slice(0, 200);

/** The lease names; rows are per database, so no database in them. */
export const WRITER = 'writer';
export const MIGRATE = 'migrate';
export const fileLease = (sha256: string) => `import:${sha256}`;
/** A process's claim on itself: one row per open database (`:nonce`), found by this prefix. */
export const ownerPrefix = (owner: string) => `owner:${owner.length > 180 ? createHash('sha1').update(owner).digest('hex') : owner}:`;

class Lease {
  readonly lost = new AbortController();
  /** performance.now() when the last renewal that succeeded was sent. */
  renewedAt: number;
  lastTry: number;
  renewing = false;
  constructor(
    readonly name: string,
    readonly holder: string,
    readonly ttlMs: number,
    sentAt: number,
  ) {
    this.renewedAt = sentAt;
    this.lastTry = sentAt;
  }
}

/** `expires_at` TTL from now, on the server's clock (UTC, whatever the session's time zone). */
const expiry = (ttlMs: number) => sql`UTC_TIMESTAMP(6) + INTERVAL ${Math.round(ttlMs * 1000)} MICROSECOND`;

/**
 * Writes the row when it is free, expired or `holder`'s already, in one statement. Each
 * assignment repeats the condition on the row's old expiry and holder, and `expires_at` comes
 * last: the result is the same whether the server assigns left to right (MySQL, MariaDB) or
 * simultaneously (MariaDB's SIMULTANEOUS_ASSIGNMENT). `causal`: on Galera, first wait until this
 * node has applied what the cluster committed before, so that a lease released on another node a
 * moment ago is free here too.
 */
function upsert(db: AnyDB, name: string, holder: string, ttlMs: number, causal: boolean) {
  const mine = sql`(expires_at <= UTC_TIMESTAMP(6) OR holder = VALUES(holder))`;
  return sql`${causal ? sql`SET STATEMENT wsrep_sync_wait = 4 FOR ` : sql``}INSERT INTO zinc_locks (name, holder, acquired_at, renewed_at, expires_at)
    VALUES (${name}, ${holder}, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ${expiry(ttlMs)})
    ON DUPLICATE KEY UPDATE
      acquired_at = IF(${mine}, VALUES(acquired_at), acquired_at),
      renewed_at = IF(${mine}, VALUES(renewed_at), renewed_at),
      holder = IF(${mine}, VALUES(holder), holder),
      expires_at = IF(${mine}, VALUES(expires_at), expires_at)`.execute(db);
}

/**
 * Renews a live lease of `lease.holder`: 0 rows when it expired or another holds it now.
 * `causal`: first wait until this node has applied every write the cluster committed before
 * (Galera's wsrep_sync_wait, for this statement only), so that a takeover on another node is
 * seen here rather than failing the transaction's COMMIT later with a bare certification error.
 */
async function renewRow(db: AnyDB, lease: Lease, causal = false): Promise<number> {
  const result = await sql`${causal ? sql`SET STATEMENT wsrep_sync_wait = 2 FOR ` : sql``}UPDATE zinc_locks
    SET renewed_at = UTC_TIMESTAMP(6), expires_at = ${expiry(lease.ttlMs)}
    WHERE name = ${lease.name} AND holder = ${lease.holder} AND expires_at > UTC_TIMESTAMP(6)`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** A pause between tries for a lock: 50 ms, doubling to 0.5 s, ±25 % so that waiters spread out. */
export const backoff = (attempt: number) => Math.min(500, 50 * 2 ** attempt) * (0.75 + Math.random() / 2);

/** The leases of one open database (one pool): taken, renewed, fenced and released. */
export class LeaseLocks {
  /** Leases by the connection they were taken on: what a transaction on it fences. */
  private readonly onConnection = new WeakMap<object, Set<Lease>>();
  /** Leases being renewed. */
  private readonly held = new Set<Lease>();
  private timer: NodeJS.Timeout | undefined;
  private table: Promise<void> | undefined;
  private readonly owners = new Map<string, { lease: Promise<Lease>; count: number }>();
  private readonly nonce = randomBytes(4).toString('hex');
  /** On a Galera node (not leases forced on a single server): the fence reads causally. */
  onGalera = false;

  /** `pool`: where renewals run (never a connection busy with the work). */
  constructor(private readonly pool: () => DB) {}

  /** Takes lease `name` on `conn` without waiting. True when held. */
  async take(conn: AnyDB, name: string): Promise<boolean> {
    return (await this.acquire(conn, name)) !== undefined;
  }

  /** Releases lease `name` held on `conn` (nothing when not held). */
  async releaseOn(conn: AnyDB, name: string): Promise<void> {
    const lease = [...(this.onConnection.get(conn) ?? [])].find((l) => l.name === name);
    if (lease) await this.release(conn, lease);
  }

  /** Takes lease `name` on `conn`, waiting up to `timeoutMs`; throws `timedOut()` past it. */
  async takeWaiting(conn: AnyDB, name: string, timeoutMs: number, timedOut: () => Error): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (let attempt = 0; !(await this.take(conn, name)); attempt++) {
      if (performance.now() > deadline) throw timedOut();
      await sleep(backoff(attempt));
    }
  }

  /**
   * The writer lock: lease `writer` on `conn` from before BEGIN to after COMMIT, tried again with
   * a backoff; the work gets the hold of every lease on `conn` (see holdOf).
   */
  withWriteLock<T>(conn: DB, work: (hold: WriteLockHold) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return whileHolding(
      conn,
      { take: (c) => this.take(c, WRITER), release: (c) => this.releaseOn(c, WRITER) },
      work,
      { signal, pauseMs: backoff, hold: (c) => this.holdOf(c) },
    );
  }

  /** Per-file claims and the process's claim on itself, as leases (see FileClaims). */
  claims(): FileClaims {
    return {
      acquire: (conn, sha256) => this.take(conn, fileLease(sha256)),
      release: (conn, sha256) => this.releaseOn(conn, fileLease(sha256)),
      holdOwner: (owner) => this.holdOwner(owner),
      isAbandoned: async (db, record, here) => {
        if (record.owner === here.owner && here.active) return false;
        const live = await this.liveNames(db, here.leased ? undefined : fileLease(record.sha256), record.owner && record.owner !== here.owner ? ownerPrefix(record.owner) : undefined);
        const fileFree = here.leased === true || !live.some((n) => n === fileLease(record.sha256));
        return fileFree && (record.owner === here.owner || !live.some((n) => n.startsWith(ownerPrefix(record.owner ?? ''))));
      },
    };
  }

  /** What the work on `conn` holds: its leases' lost signals, and their fence. */
  holdOf(conn: AnyDB): WriteLockHold {
    const leases = [...(this.onConnection.get(conn) ?? [])];
    return {
      signal: AbortSignal.any(leases.map((l) => l.lost.signal)),
      fence: (trx) => this.fence(trx, leases),
    };
  }

  private async ensureTable(db: AnyDB): Promise<void> {
    this.table ??= CREATE_TABLE.execute(db).then(
      () => {},
      (error: unknown) => {
        this.table = undefined;
        throw error;
      },
    );
    return this.table;
  }

  private async acquire(conn: AnyDB, name: string): Promise<Lease | undefined> {
    await this.ensureTable(conn);
    const holder = `${HOST}:${process.pid}:${randomBytes(6).toString('hex')}`;
    const ttlMs = leaseTuning.ttlMs;
    const sent = performance.now();
    // A certification conflict (1213) means another node wrote the row at the same moment: the
    // server retried once already; after a few more tries the row says who won. A lock wait
    // timeout: a holder's transaction has the row (its fence, until COMMIT), so it is held.
    for (let attempt = 0; ; attempt++) {
      try {
        await upsert(conn, name, holder, ttlMs, this.onGalera);
        break;
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        if (code === 'ER_LOCK_WAIT_TIMEOUT' || (code === 'ER_LOCK_DEADLOCK' && attempt >= 3)) break;
        if (code !== 'ER_LOCK_DEADLOCK') throw error;
        await sleep(10 + Math.random() * 40);
      }
    }
    const { rows } = await sql<{ holder: string }>`SELECT holder FROM zinc_locks WHERE name = ${name}`.execute(conn);
    if (rows[0]?.holder !== holder) return undefined;
    const lease = new Lease(name, holder, ttlMs, sent);
    let set = this.onConnection.get(conn);
    if (!set) this.onConnection.set(conn, (set = new Set()));
    set.add(lease);
    this.keep(lease);
    return lease;
  }

  /** Stops renewing first, so that a release that cannot reach the server still lets the lease expire. */
  private async release(conn: AnyDB, lease: Lease): Promise<void> {
    this.onConnection.get(conn)?.delete(lease);
    this.drop(lease);
    await sql`DELETE FROM zinc_locks WHERE name = ${lease.name} AND holder = ${lease.holder}`.execute(conn);
  }

  /**
   * The process's claim on itself while it has records it has not started loading: a row of its
   * own per open database (so that two apps of one process never release each other's), counted.
   */
  private async holdOwner(owner: string): Promise<() => Promise<void>> {
    const name = `${ownerPrefix(owner)}${this.nonce}`;
    let entry = this.owners.get(name);
    if (entry) entry.count++;
    else this.owners.set(name, (entry = { lease: this.takeOwner(name), count: 1 }));
    const held = entry;
    try {
      await held.lease;
    } catch (error) {
      if (--held.count === 0) this.owners.delete(name);
      throw error;
    }
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      if (--held.count > 0) return;
      this.owners.delete(name);
      await this.release(this.pool(), await held.lease).catch(() => {});
    };
  }

  private async takeOwner(name: string): Promise<Lease> {
    const pool = this.pool();
    // Rows of holders that died stay until someone takes that name again, which never happens to
    // another process's own row: clear the ones long expired now and then (here: rarely).
    await this.ensureTable(pool);
    await sql`DELETE FROM zinc_locks WHERE expires_at < UTC_TIMESTAMP(6) - INTERVAL 1 HOUR`.execute(pool).catch(() => {});
    const lease = await this.acquire(pool, name);
    if (!lease) throw new Error(`could not take the lease ${name}`);
    return lease;
  }

  /** The names among `name` and those starting with `prefix` whose leases are live. */
  private async liveNames(db: AnyDB, name: string | undefined, prefix: string | undefined): Promise<string[]> {
    if (name === undefined && prefix === undefined) return [];
    await this.ensureTable(db);
    const conditions = [
      ...(name === undefined ? [] : [sql`name = ${name}`]),
      // Names starting with the prefix: the prefix ends with ':', and ';' sorts right after it.
      ...(prefix === undefined ? [] : [sql`(name >= ${prefix} AND name < ${`${prefix.slice(0, -1)};`})`]),
    ];
    // On Galera, read what the cluster committed, not what this node has applied so far: a lease
    // released (or renewed) on another node a moment ago is seen as such.
    const { rows } = await sql<{ name: string }>`${this.onGalera ? sql`SET STATEMENT wsrep_sync_wait = 1 FOR ` : sql``}SELECT name FROM zinc_locks
      WHERE expires_at > UTC_TIMESTAMP(6) AND (${sql.join(conditions, sql` OR `)})`.execute(db);
    return rows.map((r) => r.name);
  }

  /** Inside the work's transaction, just before COMMIT (see WriteLockHold.fence). */
  private async fence(trx: DB, leases: Lease[]): Promise<void> {
    for (const lease of leases) {
      if (lease.lost.signal.aborted) throw lease.lost.signal.reason;
      const sent = performance.now();
      if ((await renewRow(trx, lease, this.onGalera)) === 0) {
        this.lose(lease, 'taken over, or expired, before COMMIT');
        throw lease.lost.signal.reason;
      }
      // Renewed with the transaction: the keeper may wait for it (the row is locked until COMMIT).
      lease.renewedAt = Math.max(lease.renewedAt, sent);
    }
  }

  private keep(lease: Lease): void {
    this.held.add(lease);
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), Math.min(1000, leaseTuning.heartbeatMs / 4));
    this.timer.unref();
  }

  private drop(lease: Lease): void {
    this.held.delete(lease);
    if (this.held.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private lose(lease: Lease, why: string): void {
    if (!lease.lost.signal.aborted) lease.lost.abort(new WriteLockLost(lease.name, why));
    this.drop(lease);
  }

  /** Renews what is due; a lease not renewed for half its TTL is lost well before it expires. */
  private tick(): void {
    const now = performance.now();
    for (const lease of this.held) {
      if (now - lease.renewedAt > lease.ttlMs / 2) {
        this.lose(lease, `not renewed for ${Math.round((now - lease.renewedAt) / 1000)} s`);
      } else if (!lease.renewing && now - lease.lastTry >= leaseTuning.heartbeatMs) {
        void this.renew(lease);
      }
    }
  }

  private async renew(lease: Lease): Promise<void> {
    lease.renewing = true;
    const sent = (lease.lastTry = performance.now());
    try {
      if ((await renewRow(this.pool(), lease)) === 0) this.lose(lease, 'taken over, or expired before it was renewed');
      else lease.renewedAt = Math.max(lease.renewedAt, sent);
    } catch {
      // The server is unreachable or busy: the next tick tries again, and the TTL decides.
    } finally {
      lease.renewing = false;
    }
  }
}
