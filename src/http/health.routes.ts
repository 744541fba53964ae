import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { Database, ServerState } from '../db/database.js';
import type { ReadReplicas } from '../db/read-replicas.js';
import { schemaStatus } from '../db/migrator.js';
import type { Lifecycle } from '../lifecycle.js';

/** How long `/health` waits for `SELECT 1`. */
export const HEALTH_TIMEOUT_MS = 2000;

/** Runs `SELECT 1`; resolves to null when it answered in time, or to the reason it did not. */
export async function checkDatabase(database: Database, timeoutMs = HEALTH_TIMEOUT_MS): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer to SELECT 1 within ${timeoutMs} ms`), timeoutMs);
  });
  const probe = sql`SELECT 1`
    .execute(database.db)
    .then(() => null)
    .catch((error: NodeJS.ErrnoException) => `${error.code ? `${error.code}: ` : ''}${error.message}`.slice(0, 200));
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The server in use and its cluster's state (the dialect's `serverState`), or nothing when it
 * cannot be told within `timeoutMs` (SELECT 1 then says why).
 */
export async function checkServer(database: Database, timeoutMs = HEALTH_TIMEOUT_MS): Promise<ServerState | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    return await Promise.race([database.dialect.serverState(database.db).catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What the health answers show of the server: `node` and `cluster` where there are such things. */
function serverFields(state: ServerState | undefined) {
  return {
    ...(state?.node === undefined ? {} : { node: state.node }),
    ...(state?.cluster === undefined ? {} : { cluster: state.cluster }),
  };
}

/**
 * What `/health/ready` answers (and `zinc_ready` reports): `status` ok when the database answers
 * (on a cluster: the node in use is ready), the schema is at the latest migration and no shutdown
 * has begun; `database` ok, the reason it is not, or `not checked` while shutting down.
 */
export async function readiness(database: Database, lifecycle: Lifecycle) {
  const reachable = lifecycle.shuttingDown ? 'not checked' : await checkDatabase(database);
  const server = reachable === null ? await checkServer(database) : undefined;
  const problem = reachable ?? (server?.usable === false ? (server.reason ?? 'the database server is not ready') : null);
  let schema = 'not checked';
  if (problem === null) {
    const status = await withinHealthTimeout(schemaStatus(database.db), 'no answer to the migration check').catch((error: Error) => ({ error: error.message }));
    if ('error' in status) schema = status.error;
    else if (status.unknown.length > 0) schema = `newer than this build: ${status.unknown.join(', ')}`;
    else if (status.pending.length > 0) schema = `pending migrations: ${status.pending.join(', ')}`;
    else schema = 'ok';
  }
  return {
    status: lifecycle.shuttingDown ? 'shutting_down' : problem === null && schema === 'ok' ? 'ok' : 'error',
    database: problem ?? 'ok',
    engine: database.dialect.name,
    schema,
    ...serverFields(server),
  };
}

/** Which database the instance runs on: `sqlite`, `mysql` (MySQL or MariaDB) or `postgres`. */
const engine = Type.String({ description: 'The database the instance runs on: sqlite, mysql (MySQL or MariaDB) or postgres' });

const ReplicaHealth = Type.Object({
  name: Type.String({ description: 'host:port/database' }),
  state: Type.Union([Type.Literal('ok'), Type.Literal('lagging'), Type.Literal('down'), Type.Literal('starting')], {
    description: 'ok: metrics reads go to it; lagging: further behind than REPLICA_MAX_LAG_MS; down: not answering; starting: not polled yet',
  }),
  lag_ms: Type.Union([Type.Integer(), Type.Null()], { description: 'At most this far behind the primary (null: unknown)' }),
  version: Type.Union([Type.String(), Type.Null()], { description: 'Its data version at the last poll' }),
  reads: Type.Integer({ description: 'Metrics reads it answered' }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'Why it is down' }),
});

const node = Type.Optional(
  Type.String({ description: 'host:port of the database server in use, where DATABASE_URL lists several or the server is a cluster node' }),
);

const ClusterHealth = Type.Optional(
  Type.Object(
    {
      ready: Type.Boolean({ description: 'The node takes queries: wsrep_ready ON, Primary component, Synced' }),
      size: Type.Integer({ description: 'wsrep_cluster_size: nodes in its component' }),
      state: Type.String({ description: 'wsrep_local_state_comment: Synced, Donor/Desynced, Joining…' }),
      status: Type.String({ description: 'wsrep_cluster_status: Primary, non-Primary or Disconnected' }),
    },
    { description: 'On a Galera cluster: the state of the node in use' },
  ),
);

const HealthResponse = Type.Object({
  status: Type.String(),
  database: Type.String(),
  engine,
  node,
  cluster: ClusterHealth,
  replicas: Type.Optional(Type.Array(ReplicaHealth, { description: 'With DATABASE_REPLICA_URLS: each read replica; never makes the status an error' })),
});

const ReadyResponse = Type.Object({
  status: Type.String(),
  database: Type.String(),
  engine,
  schema: Type.String(),
  node,
  cluster: ClusterHealth,
});

/** Probes need no token, and are never rate limited: a throttled load balancer would take the instance out. */
const probe = { access: 'open', rateLimited: false } as const;

/**
 * A probe's answer time: each check bounds itself (HEALTH_TIMEOUT_MS each, three at most), so the
 * probes are not held to REQUEST_TIMEOUT_MS, whose 503 error body is not a health answer: a
 * short REQUEST_TIMEOUT_MS would otherwise turn a slow database into a 500 instead of a 503.
 */
const PROBE_ANSWER_MS = 3 * HEALTH_TIMEOUT_MS + 5_000;

/** `work`, or an error saying `what` got no answer within HEALTH_TIMEOUT_MS. */
async function withinHealthTimeout<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${HEALTH_TIMEOUT_MS} ms`)), HEALTH_TIMEOUT_MS);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

export const healthRoutes: FastifyPluginAsyncTypebox<{ database: Database; lifecycle: Lifecycle; reads: ReadReplicas }> = async (
  app,
  { database, lifecycle, reads },
) => {
  /** Each replica's state, when there are replicas (reads go to the primary when none is usable). */
  const replicas = () =>
    reads.size === 0
      ? {}
      : {
          replicas: reads.status().map((r) => ({
            name: r.name,
            state: r.state,
            lag_ms: r.lagMs === null || !Number.isFinite(r.lagMs) ? null : r.lagMs,
            version: r.version,
            reads: r.reads,
            error: r.error,
          })),
        };

  app.get(
    '/health/live',
    {
      config: probe,
      handlerTimeout: PROBE_ANSWER_MS,
      schema: {
        operationId: 'getLiveness',
        tags: ['health'],
        summary: 'The process answers (liveness probe)',
        description: 'Always 200 while the process serves; asks nothing of the database. What the container image checks.',
        response: { 200: Type.Object({ status: Type.String() }) },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/health/ready',
    {
      config: probe,
      handlerTimeout: PROBE_ANSWER_MS,
      schema: {
        operationId: 'getReadiness',
        tags: ['health'],
        description:
          'For load balancers: 503 (status error or shutting_down, with the reason) takes the instance out; ' +
          'it turns 503 at once on SIGTERM, while the instance still serves for SHUTDOWN_DRAIN_MS.',
        summary:
          'Ready for traffic: database reachable (on a cluster: the node in use ready, or another listed node), schema at the latest migration, not shutting down',
        response: { 200: ReadyResponse, 503: ReadyResponse },
      },
    },
    async (_request, reply) => {
      const body = await readiness(database, lifecycle);
      return reply.status(body.status === 'ok' ? 200 : 503).send(body);
    },
  );

  app.get(
    '/health',
    {
      config: probe,
      handlerTimeout: PROBE_ANSWER_MS,
      schema: {
        operationId: 'getHealth',
        tags: ['health'],
        description: '503 with the reason when the database does not answer SELECT 1 within 2 s. Replicas never make it an error.',
        summary: 'Whether the service and its database answer, the server in use (and its cluster), and each read replica\'s state and lag',
        response: { 200: HealthResponse, 503: HealthResponse },
      },
    },
    async (_request, reply) => {
      const problem = await checkDatabase(database);
      if (problem === null) {
        return { status: 'ok', database: 'ok', engine: database.dialect.name, ...serverFields(await checkServer(database)), ...replicas() };
      }
      return reply.status(503).send({ status: 'error', database: problem, engine: database.dialect.name, ...replicas() });
    },
  );
};
