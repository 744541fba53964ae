import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { Database } from '../db/connection.js';

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

const HealthResponse = Type.Object({ status: Type.String(), database: Type.String() });

export const healthRoutes: FastifyPluginAsyncTypebox<{ database: Database }> = async (app, { database }) => {
  app.get(
    '/health',
    {
      schema: {
        tags: ['health'],
        summary: 'Whether the service and its database answer',
        response: { 200: HealthResponse, 503: HealthResponse },
      },
    },
    async (_request, reply) => {
      const problem = await checkDatabase(database);
      if (problem === null) return { status: 'ok', database: 'ok' };
      return reply.status(503).send({ status: 'error', database: problem });
    },
  );
};
