import { sql } from 'kysely';
import type { AnyDB } from '../../database.js';

/**
 * What Zinc does differently on a Galera node (MariaDB Galera Cluster, Percona XtraDB Cluster),
 * a multi-primary cluster that replicates each transaction to every node at COMMIT:
 *
 * - every connection reads causally (`wsrep_sync_wait = 1`): a read waits until its node has
 *   applied what the cluster committed before it began, so a read right after an import made
 *   through another node sees it (idle: no cost; right after a 1M-row import: seconds);
 * - a change to `sales` (an import, an undo, a rebuild) streams its transaction in fragments of
 *   `galeraTuning.fragmentRows` rows (streaming replication) instead of one write set at COMMIT:
 *   a large import then never needs a write set of its size, and a node lost during it cannot
 *   freeze the cluster's certification (see docs/operations.md, "Galera").
 *
 * None of this runs on a server without wsrep: MySQL 8 has no such variables, and a MariaDB
 * without a provider refuses `wsrep_trx_fragment_unit = 'rows'` (error 1231).
 */
export const galeraTuning = {
  /** Rows per streaming-replication fragment of a change's transaction (10,000 rows: about 1 MB of write set). */
  fragmentRows: 10_000,
};

/** Asked once per server: `wsrep_on` is ON only on a Galera node, and absent on MySQL 8 (no row). */
export const IS_GALERA_SQL = "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'";

/** Whether the rows of IS_GALERA_SQL say Galera. */
export function galeraFromVariables(rows: unknown): boolean {
  const row = (rows as Array<{ Value?: unknown }> | undefined)?.[0];
  return String(row?.Value ?? '').toUpperCase() === 'ON';
}

/** Whether `db` is on a Galera node. */
export async function isGalera(db: AnyDB): Promise<boolean> {
  const { rows } = await sql.raw(IS_GALERA_SQL).execute(db);
  return galeraFromVariables(rows);
}

/** Run on every new connection to a Galera node: reads (SELECT, BEGIN) wait for causality. */
export const GALERA_SESSION_SQL = 'SET SESSION wsrep_sync_wait = 1';

/**
 * Runs `change` (a whole transaction on the connection `conn`) with streaming replication on,
 * then turns it off again, since `conn` goes back to a pool. A change under
 * `galeraTuning.fragmentRows` rows replicates as one write set, as without it.
 */
export async function withStreamingReplication<T>(conn: AnyDB, change: () => Promise<T>): Promise<T> {
  await sql`SET SESSION wsrep_trx_fragment_unit = 'rows', wsrep_trx_fragment_size = ${galeraTuning.fragmentRows}`.execute(conn);
  try {
    return await change();
  } finally {
    // A connection that cannot take this any more is gone, and its session with it.
    await sql`SET SESSION wsrep_trx_fragment_size = 0`.execute(conn).catch(() => {});
  }
}

/** A Galera node's state, from SHOW STATUS. */
export interface ClusterState {
  /** Takes queries: `wsrep_ready` ON, in the Primary component, Synced. */
  ready: boolean;
  /** `wsrep_cluster_size`: nodes in this node's component. */
  size: number;
  /** `wsrep_local_state_comment`: Synced, Donor/Desynced, Joining, Joined, Initialized… */
  state: string;
  /** `wsrep_cluster_status`: Primary, non-Primary or Disconnected. */
  status: string;
}

/** Still answered by a node without quorum (which refuses queries with error 1047). */
export const CLUSTER_STATE_SQL =
  "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_cluster_size', 'wsrep_local_state_comment', 'wsrep_cluster_status', 'wsrep_last_committed')";

/** The ClusterState in CLUSTER_STATE_SQL's rows, and the node's last committed seqno. */
export function clusterStateFromStatus(rows: unknown): ClusterState & { lastCommitted: string } {
  const status = new Map<string, string>();
  for (const row of (rows as Array<{ Variable_name?: unknown; Value?: unknown }> | undefined) ?? []) {
    status.set(String(row.Variable_name).toLowerCase(), String(row.Value ?? ''));
  }
  const state = status.get('wsrep_local_state_comment') ?? 'unknown';
  const clusterStatus = status.get('wsrep_cluster_status') ?? 'unknown';
  return {
    ready: status.get('wsrep_ready')?.toUpperCase() === 'ON' && clusterStatus === 'Primary' && state === 'Synced',
    size: Number(status.get('wsrep_cluster_size') ?? 0),
    state,
    status: clusterStatus,
    lastCommitted: status.get('wsrep_last_committed') ?? '',
  };
}

/**
 * Says which setting a write-set limit comes from, on errors that name none usefully: with
 * streaming replication `wsrep_max_ws_size` bounds each fragment (so only a very low value
 * matters), while `wsrep_max_ws_rows` counts every row of the transaction, fragments or not.
 */
export function explainWriteSetLimit(error: unknown): void {
  const e = error as { message?: unknown; sqlMessage?: unknown } | null;
  if (!e || typeof e.message !== 'string' || e.message.includes('(Zinc:')) return;
  const text = `${e.message} ${String(e.sqlMessage ?? '')}`;
  if (/wsrep_max_ws_rows exceeded/i.test(text)) {
    e.message +=
      ' (Zinc: the change has more rows than the cluster takes in one transaction, wsrep_max_ws_rows, which counts every row of a transaction even with streaming replication; set it to 0, no limit, the default, on every node, or import the file in parts)';
  } else if (/Maximum writeset size exceeded/i.test(text)) {
    e.message += ` (Zinc: one write set is larger than the cluster's wsrep_max_ws_size; imports stream in fragments of ${galeraTuning.fragmentRows} rows, about 1 MB, so raise wsrep_max_ws_size well above that, e.g. to its default 2147483647)`;
  }
}
