import { createConnection, type Connection } from 'mysql2/promise';
import { CLUSTER_STATE_SQL, clusterStateFromStatus } from './galera.js';

/**
 * A bound on every statement's silence that never cuts a long statement that is working.
 *
 * A statement that has not answered after `checkMs` is looked at from a connection of its own
 * to the same server, and again every `checkMs`. It is *stalled*, and fails with StatementStalled
 * (its connection destroyed, its server thread killed), when:
 * - the server does not answer that look within `probeMs` (host gone, network cut);
 * - its thread is gone from the server, or has finished while its answer never came (twice);
 * - on a Galera node: the node left the Primary component, or the statement waits on the
 *   cluster (certification, flow control) while the node committed nothing since the last look —
 *   the wedge in which every write waits "for certification" for minutes.
 * Otherwise it is working (a large reconcile, a rollup rebuild, a migration, a LOAD DATA that is
 * still being fed) and is left alone, however long it takes. A bound on total time would cut
 * those; a bound on silence alone cannot tell them from a stall, as a server sends nothing until
 * a statement ends. mysql2's own `timeout` cannot be used either: it fails the query but leaves
 * the connection busy until the server answers.
 */
export const statementWatchTuning = {
  /** How long a statement runs before it is first looked at, and between looks. */
  checkMs: 15_000,
  /** How long a look may take (connect and two statements) before the server counts as not answering. */
  probeMs: 5_000,
};

/** Thrown for a statement found stalled: retryable, like a lost connection (code ZINC_DB_STALLED). */
export class StatementStalled extends Error {
  override name = 'StatementStalled';
  readonly code = 'ZINC_DB_STALLED';
  /** Like mysql2's connection errors: the connection is gone. */
  readonly fatal = true;
  constructor(node: string, why: string) {
    super(`the database statement stalled on ${node}: ${why}; its connection was closed and the statement did not complete`);
  }
}

/** The server a statement runs on, as the watch needs it. */
export interface WatchedServer {
  /** `host:port`, for messages. */
  name: string;
  /** A URL of that one server (user, database, options). */
  url: string;
  /** Whether it is a Galera node (undefined: not known yet). */
  galera: boolean | undefined;
}

/** Thread states of a statement waiting on the Galera cluster rather than working. */
const CLUSTER_WAIT = /certification|flow control|wsrep|commit/i;

const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'PROTOCOL_CONNECTION_LOST']);

type Verdict = { stalled: false; lastCommitted?: string; sleeping: boolean } | { stalled: true; why: string };

/** A statement being watched. */
interface Watched {
  server: WatchedServer;
  threadId: number | null;
  stall: (error: StatementStalled) => void;
  /** When (Date.now()) it is next looked at. */
  due: number;
  looking: boolean;
  previous: Extract<Verdict, { stalled: false }> | undefined;
}

/**
 * The statements running, and one timer for all of them while there are any: a statement costs
 * a Set entry, not a timer of its own (statements on a busy pool run by the thousand a second).
 */
const running = new Set<Watched>();
let sweeper: NodeJS.Timeout | undefined;

function sweep(): void {
  const now = Date.now();
  for (const watched of running) {
    if (watched.looking || now < watched.due) continue;
    watched.looking = true;
    void look(watched.server, watched.threadId, watched.previous).then((verdict) => {
      watched.looking = false;
      if (!running.has(watched)) return;
      if (verdict.stalled) {
        running.delete(watched);
        watched.stall(new StatementStalled(watched.server.name, verdict.why));
      } else {
        watched.previous = verdict;
        watched.due = Date.now() + statementWatchTuning.checkMs;
      }
    });
  }
  if (running.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/**
 * Watches one statement running on `threadId` (its server thread) until `done` is called;
 * calls `stall` (once) with a StatementStalled when it finds it stalled.
 */
export function watchStatement(server: WatchedServer, threadId: number | null, stall: (error: StatementStalled) => void): { done(): void } {
  const watched: Watched = { server, threadId, stall, due: Date.now() + statementWatchTuning.checkMs, looking: false, previous: undefined };
  running.add(watched);
  if (!sweeper) {
    sweeper = setInterval(sweep, Math.max(10, Math.min(1000, statementWatchTuning.checkMs / 4)));
    sweeper.unref();
  }
  return {
    done() {
      running.delete(watched);
    },
  };
}

/** Looks at the statement on `threadId` from a connection of its own; kills its thread when stalled. */
async function look(server: WatchedServer, threadId: number | null, previous: Extract<Verdict, { stalled: false }> | undefined): Promise<Verdict> {
  const started = performance.now();
  let conn: Connection | undefined;
  let deadline: NodeJS.Timeout | undefined;
  const silent = new Promise<'silent'>((resolve) => {
    deadline = setTimeout(() => resolve('silent'), statementWatchTuning.probeMs);
  });
  const probe = (async (): Promise<Verdict> => {
    try {
      conn = await createConnection({ uri: server.url, connectTimeout: statementWatchTuning.probeMs });
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      // A server that answers with an error (too many connections, access) is alive: look again later.
      return NETWORK.has(code) ? { stalled: true, why: `the server does not answer (${code})` } : { stalled: false, sleeping: false };
    }
    conn.on('error', () => {});
    if (threadId === null) return { stalled: false, sleeping: false };
    const [threads] = await conn.query('SELECT COMMAND AS command, STATE AS state FROM information_schema.PROCESSLIST WHERE ID = ?', [threadId]);
    const thread = (threads as Array<{ command: string | null; state: string | null }>)[0];
    if (!thread) return { stalled: true, why: 'the server no longer runs its connection' };
    const sleeping = thread.command === 'Sleep';
    if (sleeping && previous?.sleeping) return { stalled: true, why: 'the server finished it, but its answer never arrived' };
    if (!server.galera) return { stalled: false, sleeping };
    const [status] = await conn.query(CLUSTER_STATE_SQL);
    const cluster = clusterStateFromStatus(status);
    if (cluster.status !== 'Primary') return { stalled: true, why: `the node left the cluster's Primary component (${cluster.status}, ${cluster.state})` };
    const waiting = CLUSTER_WAIT.test(thread.state ?? '');
    if (waiting && previous?.lastCommitted === cluster.lastCommitted) {
      return { stalled: true, why: `it waits "${thread.state}" while the cluster has committed nothing for ${statementWatchTuning.checkMs} ms` };
    }
    return { stalled: false, sleeping, lastCommitted: waiting ? cluster.lastCommitted : undefined };
  })().catch((error: unknown): Verdict => {
    const code = (error as { code?: string }).code ?? '';
    return NETWORK.has(code) ? { stalled: true, why: `the server stopped answering (${code})` } : { stalled: false, sleeping: false };
  });
  try {
    const verdict = await Promise.race([probe, silent]);
    if (verdict === 'silent') {
      return { stalled: true, why: `the server gave no answer within ${Math.round(performance.now() - started)} ms` };
    }
    if (verdict.stalled && threadId !== null && conn) {
      // Frees what the thread holds (row locks, a transaction) on a server that still answers.
      await Promise.race([conn.query(`KILL ${Number(threadId)}`).catch(() => {}), silent]);
    }
    return verdict;
  } finally {
    clearTimeout(deadline);
    conn?.destroy();
    // A connection still being opened when the look gave up is closed once it opens.
    void probe.then(() => conn?.destroy());
  }
}
