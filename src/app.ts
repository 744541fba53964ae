import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import { openDatabase } from './db/dialects/index.js';
import { ReadReplicas } from './db/read-replicas.js';
import { registerAuth } from './http/auth.js';
import { dashboardRoutes } from './http/dashboard.routes.js';
import { BODY_LIMIT_BYTES, registerErrorHandler } from './http/error-handler.js';
import { healthRoutes, readiness } from './http/health.routes.js';
import { openApiOptions } from './http/openapi.js';
import { registerRequestLog } from './http/request-log.js';
import { declareRoutes, registerRoutePolicy } from './http/route-policy.js';
import { registerRouteTemplate } from './http/route-template.js';
import { registerParameterBounds, registerSecurity, registerTimeouts, serverLimits } from './http/security.js';
import { AppError } from './http/errors.js';
import { ErrorResponse } from './http/schemas.js';
import { ImportRuns } from './imports/import-progress.js';
import { importRoutes } from './imports/imports.routes.js';
import { prometheusRoutes } from './http/prometheus.routes.js';
import { Lifecycle } from './lifecycle.js';
import { LOG_REDACT } from './log.js';
import { MetricsCache, registerCacheInvalidation } from './metrics/answer-cache.js';
import { revenueRoutes } from './metrics/revenue.routes.js';
import { readDataVersion } from './db/data-version.js';
import { onSalesCommitted, onWriteConflict } from './write/sales-change.js';
import { Telemetry } from './telemetry.js';

export interface AppOptions {
  config: Config;
  database: Database;
  /** false to stay quiet (tests); pino options (a stream, say) to add to the default level and redaction. */
  logger?: boolean | object;
  telemetry?: Telemetry;
  lifecycle?: Lifecycle;
  /** The imports this instance runs, whether a request or its watched folder started them. */
  runs?: ImportRuns;
}

/** Builds the HTTP application without listening: plugins, routes, error handling. */
export async function buildApp({
  config,
  database,
  logger,
  telemetry = new Telemetry(),
  lifecycle = new Lifecycle(),
  runs = new ImportRuns(),
}: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger:
      logger === false
        ? false
        : { level: config.logLevel, redact: LOG_REDACT, ...(typeof logger === 'object' ? logger : {}) },
    routerOptions: { ignoreTrailingSlash: true },
    // The client address that rate limiting counts by: X-Forwarded-For only from trusted proxies.
    trustProxy: typeof config.trustProxy === 'boolean' ? config.trustProxy : [...config.trustProxy],
    // No route takes a JSON body; CSV uploads stream past this limit (MAX_UPLOAD_BYTES applies to them).
    bodyLimit: BODY_LIMIT_BYTES,
    ...serverLimits(config),
    // request-log.ts writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => crypto.randomUUID(),
    requestIdHeader: 'x-request-id',
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addSchema(ErrorResponse);
  registerRouteTemplate(app);
  // Before any route and any hook that reads a route's policy (timeouts, auth, cache, security).
  registerRoutePolicy(app);
  registerRequestLog(app, telemetry);
  // Once a shutdown has begun, every answer closes its connection: clients and load balancers
  // reconnect (elsewhere, once this instance is out of the pool), and the server can stop without
  // waiting out idle keep-alive connections.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (lifecycle.shuttingDown) reply.header('connection', 'close');
    done(null, payload);
  });
  registerErrorHandler(app);
  registerTimeouts(app, config.requestTimeoutMs);
  registerParameterBounds(app);
  await registerSecurity(app, config);
  registerAuth(app, { apiToken: config.apiToken, apiReadToken: config.apiReadToken });
  // Before any route: a request that changed sales makes this instance re-read the data version.
  const metricsCache = new MetricsCache(() => readDataVersion(database.db), config.cacheMaxStaleMs, {
    privateAnswers: config.apiToken !== undefined,
  });
  registerCacheInvalidation(app, metricsCache);
  const reads = openReplicas(app, config, database, metricsCache);
  telemetry.watchReplicas(reads);
  telemetry.watchReadiness(() => readiness(database, lifecycle));
  // Changes committed outside a request (background imports) show at once on this instance too,
  // and its reads go where those changes are (read your writes).
  const stopListening = onSalesCommitted(database, () => {
    metricsCache.invalidate();
    reads.noteCommitted();
  });
  // Every change through this database (imports, undo, rebuilds) that met a write conflict, counted.
  const stopCounting = onWriteConflict(database, ({ outcome }) => telemetry.writeConflicts.inc({ outcome }));
  app.addHook('onClose', async () => {
    stopListening();
    stopCounting();
    await reads.close();
  });

  // The document depends on no setting: every instance serves the same one (src/http/openapi.ts).
  await app.register(swagger, openApiOptions());
  await app.register(async (docs) => {
    // Swagger UI's routes cannot declare a policy themselves: its pages are open, as pages.
    declareRoutes(docs, { access: 'open', page: true });
    await docs.register(swaggerUi, { routePrefix: '/docs' });
  });

  await app.register(healthRoutes, { database, lifecycle, reads });
  await app.register(prometheusRoutes, { telemetry, metricsToken: config.metricsToken });
  await app.register(importRoutes, { database, config, telemetry, lifecycle, runs });
  await app.register(revenueRoutes, { database, cache: metricsCache, replicas: reads });
  await app.register(dashboardRoutes, { tokenRequired: config.apiToken !== undefined });
  return app;
}

/**
 * The read replicas of DATABASE_REPLICA_URLS (none: every read goes to the primary), opened and
 * closed with the app, their state changes logged.
 */
function openReplicas(app: FastifyInstance, config: Config, database: Database, cache: MetricsCache): ReadReplicas {
  const replicas = config.replicas.map((replica) => ({
    name: 'host' in replica ? `${replica.host}:${replica.port}/${replica.database}` : replica.path,
    database: openDatabase(replica),
  }));
  const reads = new ReadReplicas(database, replicas, {
    maxLagMs: config.replicaMaxLagMs,
    primaryVersion: () => cache.version.current(),
    // A question found invalid once the data is read is the question's fault, not the replica's.
    isReplicaFault: (error) => !(error instanceof AppError),
    onStateChange: (replica, previous) => {
      const line = { replica: replica.name, state: replica.state, previous, lagMs: replica.lagMs, error: replica.error };
      if (replica.state === 'ok') app.log.info(line, 'read replica in use');
      else app.log.warn(line, `read replica not used: ${replica.state}`);
    },
  });
  reads.start();
  return reads;
}
