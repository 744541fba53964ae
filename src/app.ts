import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import type { Database } from './db/connection.js';
import { registerAuth } from './http/auth.js';
import { registerErrorHandler } from './http/error-handler.js';
import { healthRoutes } from './http/health.routes.js';
import { registerRequestLog } from './http/request-log.js';
import { ErrorResponse } from './http/schemas.js';
import { importRoutes } from './imports/imports.routes.js';
import { revenueRoutes } from './metrics/revenue.routes.js';

export interface AppOptions {
  config: Config;
  database: Database;
  /** pino options, or false to stay quiet (tests). */
  logger?: boolean | object;
}

/** Builds the HTTP application without listening: plugins, routes, error handling. */
export async function buildApp({ config, database, logger }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: logger ?? {
      level: config.logLevel,
      redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
    },
    routerOptions: { ignoreTrailingSlash: true },
    // request-log.ts writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => crypto.randomUUID(),
    requestIdHeader: 'x-request-id',
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addSchema(ErrorResponse);
  registerRequestLog(app);
  registerErrorHandler(app);
  registerAuth(app, config.apiToken);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Zinc',
        version: '1.0.0',
        description: 'Sales CSV import and exact revenue metrics. Money is a decimal string with two fraction digits.',
      },
      components: config.apiToken
        ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }
        : {},
      security: config.apiToken ? [{ bearer: [] }] : [],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(healthRoutes, { database });
  await app.register(importRoutes, { database, config });
  await app.register(revenueRoutes, { database });
  return app;
}
