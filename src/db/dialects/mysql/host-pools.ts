import type { MysqlPool, MysqlPoolConnection, MysqlStream, MysqlStreamOptions } from 'kysely';
import { createPool, type Pool, type PoolConnection, type PoolOptions } from 'mysql2';
import { createConnection } from 'mysql2/promise';
import { serverUrl, type ServerHost } from '../../../config.js';
import type { ServerState } from '../../database.js';
import {
  CLUSTER_STATE_SQL,
  clusterStateFromStatus,
  explainWriteSetLimit,
  GALERA_SESSION_SQL,
  galeraFromVariables,
  IS_GALERA_SQL,
  type ClusterState,
} from './galera.js';
import { statementWatchTuning, watchStatement, type StatementStalled, type WatchedServer } from './statement-watch.js';

/**
 * The servers of DATABASE_URL (`mysql://u:p@h1:3321,h2:3322,h3/db`, the nodes of one Galera
 * cluster) behind the one pool Kysely's MySQL dialect takes: one mysql2 pool per host.
 *
 * - A connection comes from the first host in the URL's order that is not down, so that every
 *   instance writes through the same node (writes through several nodes at once conflict at
 *   certification: one of them fails with 1213).
 * - A host is down when a connection to it cannot be opened, when it is a Galera node that is not
 *   ready (not Synced in the Primary component: error 1047 "WSREP has not yet prepared node"), or
 *   when a statement on it lost its connection or stalled. A down host is skipped; it is tried
 *   again in the background every `hostTuning.retryMs` (at once after a lost connection, which may
 *   have been that connection's alone), and new connections go back to it once it answers ready.
 * - A plain read (a SELECT outside a transaction, without locks or session state) whose node was
 *   lost under it is run once more on the next host. So is a read-only transaction
 *   (`Dialect.inSnapshot`, see `retryingRead`). Writes are not: whether they committed is not
 *   known; the changes that need it retry whole (src/write/sales-change.ts).
 *
 * Each new connection is set up before it is handed out: `onConnection` (session settings), and
 * on a Galera node `wsrep_sync_wait` (galera.ts). Whether a host is a Galera node is asked on its
 * first connection. Every statement is watched for stalls (statement-watch.ts). With a single
 * host this is that host's pool as before: no extra statement on a reused connection.
 */
export const hostTuning = {
  /** How often a down host is tried again. */
  retryMs: 2_000,
};

/** One server of the URL, its pool and what is known of it. */
export class Host implements WatchedServer {
  readonly name: string;
  readonly pool: Pool;
  /** Whether it is a Galera node: asked on its first connection. */
  galera: boolean | undefined;
  /** Skipped until it answers again (see HostPools). */
  down = false;
  /** Why it is down. */
  error: string | null = null;
  retry: NodeJS.Timeout | undefined;

  constructor(
    server: ServerHost,
    readonly url: string,
    options: PoolOptions,
  ) {
    this.name = `${server.host}:${server.port}`;
    this.pool = createPool({ ...options, uri: url });
  }
}

/** A node that answers but takes no queries (or its connection did not come up in time). */
class NodeNotReady extends Error {
  override name = 'NodeNotReady';
  readonly code = 'ER_UNKNOWN_COM_ERROR';
  constructor(node: string, why: string) {
    super(`database node ${node} is not ready: ${why}`);
  }
}

/** Errors after which the host a statement ran on may be gone (not a statement's own failure). */
const NODE_LOSS = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_UNKNOWN_COM_ERROR', // 1047: WSREP has not yet prepared node for application use
  'ZINC_DB_STALLED',
]);

/** Whether `error` says the statement's server was lost (or is not ready) rather than the statement failed. */
export function isNodeLoss(error: unknown): boolean {
  const e = error as { code?: unknown; fatal?: unknown } | null;
  return !!e && typeof e === 'object' && ((typeof e.code === 'string' && NODE_LOSS.has(e.code)) || e.fatal === true);
}

/** Reads whose answer depends on nothing but the data: the same on any node, safe to run twice. */
const PLAIN_READ = /^\s*(?:select|show)\b/i;
/** What ties a read to its own connection or session, or makes it lock. */
const SESSION_BOUND =
  /\b(?:get_lock|release_lock|release_all_locks|is_free_lock|is_used_lock|connection_id|last_insert_id|found_rows|row_count|for\s+update|for\s+share|lock\s+in\s+share\s+mode|into)\b|(?<!@)@(?!@)/i;

export function isPlainRead(statement: string): boolean {
  return PLAIN_READ.test(statement) && !SESSION_BOUND.test(statement);
}

type Callback = (error: unknown, result?: unknown) => void;

/** A connection as Kysely sees it: statements watched, failures noted, plain reads retried. */
class Session implements MysqlPoolConnection {
  /** Between BEGIN and COMMIT/ROLLBACK: no statement of it is run anywhere else. */
  private inTransaction = false;
  /** Why the watch cut the connection: every later statement on it fails with it. */
  private cut: StatementStalled | undefined;

  constructor(
    private readonly pools: HostPools,
    readonly host: Host,
    readonly raw: PoolConnection,
  ) {}

  query(sql: string, parameters: unknown[]): { stream: <T>(options: MysqlStreamOptions) => MysqlStream<T> };
  query(sql: string, parameters: unknown[], callback: Callback): void;
  query(sql: string, parameters: unknown[], callback?: Callback): { stream: <T>(options: MysqlStreamOptions) => MysqlStream<T> } | void {
    if (!callback) return this.streamed(sql, parameters);
    this.run(sql, parameters, callback, false);
  }

  release(): void {
    this.raw.release();
  }

  /** Runs one statement; `retried`: this is a read's second try, after its first node was lost. */
  run(sql: string, parameters: unknown[], callback: Callback, retried: boolean): void {
    if (this.cut) return callback(this.cut);
    this.track(sql);
    let settled = false;
    const failed = (error: unknown) => {
      explainWriteSetLimit(error);
      if (isNodeLoss(error)) {
        this.pools.noteLoss(this.host, error);
        if (!retried && !this.inTransaction && this.pools.hosts.length > 1 && isPlainRead(sql)) {
          return this.pools.retryRead(sql, parameters, callback, error);
        }
      }
      callback(error);
    };
    const watch = watchStatement(this.host, this.raw.threadId, (error) => {
      if (settled) return;
      settled = true;
      this.cutOff(error);
      failed(error);
    });
    this.raw.query(sql, parameters, (error: unknown, result: unknown) => {
      if (settled) return;
      settled = true;
      watch.done();
      if (error) failed(error);
      else callback(null, result);
    });
  }

  /** A statement whose rows are read as they come (Kysely's `stream`): watched, never retried. */
  private streamed(sql: string, parameters: unknown[]) {
    this.track(sql);
    const query = this.raw.query(sql, parameters);
    return {
      stream: <T>(options: MysqlStreamOptions): MysqlStream<T> => {
        const stream = query.stream(options);
        const watch = watchStatement(this.host, this.raw.threadId, (error) => {
          this.cutOff(error);
          this.pools.noteLoss(this.host, error);
          stream.destroy(error);
        });
        for (const event of ['end', 'error', 'close']) stream.once(event, () => watch.done());
        return stream as unknown as MysqlStream<T>;
      },
    };
  }

  /** Follows BEGIN … COMMIT/ROLLBACK as Kysely sends them. */
  private track(sql: string): void {
    if (/^\s*(?:begin|start\s+transaction)\b/i.test(sql)) this.inTransaction = true;
    else if (/^\s*(?:commit|rollback)\b(?!\s+to\b)/i.test(sql)) this.inTransaction = false;
  }

  /** Closes the connection of a stalled statement at once: mysql2 would keep it busy until the server answers. */
  private cutOff(error: StatementStalled): void {
    this.cut = error;
    this.raw.destroy();
    (this.raw as unknown as { stream?: { destroy?: () => void } }).stream?.destroy?.();
  }
}

/** The one pool Kysely gets (see the top of this file). */
export class HostPools implements MysqlPool {
  readonly hosts: readonly Host[];
  private closed = false;
  private readonly sessions = new WeakMap<PoolConnection, Session>();
  private readonly prepared = new WeakSet<PoolConnection>();

  /**
   * `url` may name several hosts; `options` are each host's pool options (the URL aside);
   * `onConnection` sets up each new connection (its statements are queued before any other).
   */
  constructor(
    url: string,
    servers: readonly ServerHost[],
    options: PoolOptions,
    private readonly onConnection: (conn: PoolConnection) => void,
  ) {
    // One host: its URL as given, as before there were lists.
    this.hosts = servers.map((server) => new Host(server, servers.length === 1 ? url : serverUrl(url, server), options));
  }

  /** Whether the servers are Galera nodes (known once a connection was made). */
  get galera(): boolean {
    return this.hosts.some((host) => host.galera === true);
  }

  getConnection(callback: (error: unknown, connection: MysqlPoolConnection) => void): void {
    if (this.hosts.length === 1) return this.acquire(this.hosts[0]!, (error, session) => callback(error, session!));
    // Up hosts in the URL's order, then, as a last resort, the down ones.
    const order = [...this.hosts.filter((host) => !host.down), ...this.hosts.filter((host) => host.down)];
    const attempt = (i: number, lastError: unknown): void => {
      const host = order[i];
      if (!host) return callback(lastError, undefined as never);
      this.acquire(host, (error, session) => {
        if (!error) return callback(null, session!);
        if (this.closed) return callback(error, undefined as never);
        this.markDown(host, error, hostTuning.retryMs);
        attempt(i + 1, error);
      });
    };
    attempt(0, new Error('no database host to connect to'));
  }

  end(callback: (error: unknown) => void): void {
    this.closed = true;
    for (const host of this.hosts) clearTimeout(host.retry);
    let left = this.hosts.length;
    let failure: unknown = null;
    for (const host of this.hosts) {
      host.pool.end((error) => {
        failure ??= error;
        if (--left === 0) callback(failure);
      });
    }
  }

  /**
   * Runs `read` (a read-only transaction, say) and, when its node was lost under it and another
   * host is listed, once more: it changed nothing, so running it again is safe.
   */
  async retryingRead<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (this.hosts.length < 2 || this.closed || !isNodeLoss(error)) throw error;
      return read();
    }
  }

  /** For /health: the host that takes the next connection and, on Galera, its cluster state. */
  async state(): Promise<ServerState> {
    const multi = this.hosts.length > 1;
    for (let tries = 0; ; tries++) {
      const session = await new Promise<Session>((resolve, reject) =>
        this.getConnection((error, connection) => (error ? reject(error as Error) : resolve(connection as Session))),
      );
      const { host } = session;
      let cluster: ClusterState;
      try {
        if (!host.galera) return { usable: true, ...(multi ? { node: host.name } : {}) };
        const rows = await new Promise((resolve, reject) =>
          session.run(CLUSTER_STATE_SQL, [], (error, result) => (error ? reject(error as Error) : resolve(result)), false),
        );
        const { lastCommitted: _, ...state } = clusterStateFromStatus(rows);
        cluster = state;
      } finally {
        session.release();
      }
      const reason = cluster.ready ? undefined : `node ${host.name} is not ready: ${cluster.status}, ${cluster.state}`;
      if (cluster.ready || !multi || tries >= this.hosts.length - 1 || this.hosts.every((h) => h === host || h.down)) {
        return { usable: cluster.ready, node: host.name, cluster, ...(reason ? { reason } : {}) };
      }
      // Not ready, and another host may be: the next connection goes there.
      this.markDown(host, new NodeNotReady(host.name, `${cluster.status}, ${cluster.state}`), hostTuning.retryMs);
    }
  }

  /** A read whose node was lost: once more, on a connection of the next host that answers. */
  retryRead(sql: string, parameters: unknown[], callback: Callback, original: unknown): void {
    this.getConnection((error, connection) => {
      if (error) return callback(original);
      const session = connection as Session;
      session.run(sql, parameters, (e, result) => {
        session.release();
        callback(e, result);
      }, true);
    });
  }

  /** A statement on `host` lost its connection (or stalled): skip the host until it answers again. */
  noteLoss(host: Host, error: unknown): void {
    // A lost connection may be that connection's alone (killed, timed out): look again at once.
    const code = (error as { code?: unknown }).code;
    this.markDown(host, error, code === 'ER_UNKNOWN_COM_ERROR' || code === 'ZINC_DB_STALLED' ? hostTuning.retryMs : 0);
  }

  private markDown(host: Host, error: unknown, retryInMs: number): void {
    if (this.hosts.length === 1 || this.closed) return;
    host.error = (error as Error).message ?? String(error);
    if (host.down) return;
    host.down = true;
    this.scheduleRetry(host, retryInMs);
  }

  private scheduleRetry(host: Host, delayMs: number): void {
    clearTimeout(host.retry);
    host.retry = setTimeout(() => {
      void this.answersReady(host).then((ready) => {
        if (this.closed) return;
        if (ready) {
          host.down = false;
          host.error = null;
        } else {
          this.scheduleRetry(host, hostTuning.retryMs);
        }
      });
    }, delayMs);
    host.retry.unref();
  }

  /** Whether `host` takes queries: it answers, and is a ready node if a Galera one. */
  private async answersReady(host: Host): Promise<boolean> {
    let conn: Awaited<ReturnType<typeof createConnection>> | undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), statementWatchTuning.probeMs);
    });
    const probe = (async () => {
      conn = await createConnection({ uri: host.url, connectTimeout: statementWatchTuning.probeMs });
      conn.on('error', () => {});
      host.galera ??= galeraFromVariables((await conn.query(IS_GALERA_SQL))[0]);
      if (!host.galera) return true;
      const state = clusterStateFromStatus((await conn.query(CLUSTER_STATE_SQL))[0]);
      if (!state.ready) host.error = `not ready: ${state.status}, ${state.state}`;
      return state.ready;
    })().catch((error: unknown) => {
      host.error = (error as Error).message;
      return false;
    });
    try {
      return await Promise.race([probe, timeout]);
    } finally {
      clearTimeout(timer);
      conn?.destroy();
      void probe.then(() => conn?.destroy());
    }
  }

  /** A connection of `host`'s pool, set up if new. */
  private acquire(host: Host, callback: (error: unknown, session?: Session) => void): void {
    host.pool.getConnection((error, raw) => {
      if (error) return callback(error);
      let session = this.sessions.get(raw);
      if (!session) this.sessions.set(raw, (session = new Session(this, host, raw)));
      if (this.prepared.has(raw)) return callback(null, session);
      this.prepare(host, raw).then(
        () => {
          this.prepared.add(raw);
          callback(null, session);
        },
        (failure: unknown) => {
          raw.destroy();
          callback(failure);
        },
      );
    });
  }

  /** Sets up a new connection: session settings, and on a Galera node causal reads (and, with several hosts, readiness). */
  private async prepare(host: Host, raw: PoolConnection): Promise<void> {
    // A pool error (server gone) must never take the process down; queries report it instead.
    raw.on('error', () => {});
    this.onConnection(raw);
    host.galera ??= galeraFromVariables(await ask(raw, IS_GALERA_SQL));
    if (!host.galera) return;
    await ask(raw, GALERA_SESSION_SQL);
    if (this.hosts.length > 1) {
      const state = clusterStateFromStatus(await ask(raw, CLUSTER_STATE_SQL));
      if (!state.ready) throw new NodeNotReady(host.name, `${state.status}, ${state.state}`);
    }
  }
}

/**
 * The URL of the first of `hosts` that takes a connection (or of the first, when none does):
 * for tools that take one server, such as mysqldump.
 */
export async function firstAnsweringUrl(url: string, hosts: readonly ServerHost[]): Promise<string> {
  if (hosts.length === 1) return url;
  for (const host of hosts) {
    const candidate = serverUrl(url, host);
    const conn = await createConnection({ uri: candidate, connectTimeout: statementWatchTuning.probeMs }).catch(() => undefined);
    if (conn) {
      conn.destroy();
      return candidate;
    }
  }
  return serverUrl(url, hosts[0]!);
}

/** One short statement on a raw connection, bounded (mysql2 then leaves it busy: the caller destroys it). */
function ask(raw: PoolConnection, sql: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    raw.query({ sql, timeout: statementWatchTuning.probeMs }, (error: unknown, rows: unknown) => (error ? reject(error as Error) : resolve(rows)));
  });
}
