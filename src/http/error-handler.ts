import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError, isDatabaseNotWritable, isDatabaseUnavailable } from './errors.js';

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Names the parameter a schema validation error is about, and says what it must be. */
function describeValidation(issue: ValidationIssue, context: string | undefined) {
  const field =
    (issue.params.missingProperty as string | undefined) ??
    issue.instancePath.replace(/^\//, '').split('/')[0] ??
    context ??
    'request';
  let message: string;
  if (issue.keyword === 'format' && issue.params.format === 'date') {
    message = `${field} must be a real calendar date in YYYY-MM-DD form`;
  } else if (issue.keyword === 'enum') {
    message = `${field} must be one of ${(issue.params.allowedValues as unknown[]).join(', ')}`;
  } else if (issue.keyword === 'required') {
    message = `${field} is required`;
  } else {
    message = `${field} ${issue.message ?? 'is invalid'}`;
  }
  return { field, message };
}

/** Largest request body Fastify parses itself (JSON, text); CSV uploads stream and have MAX_UPLOAD_BYTES instead. */
export const BODY_LIMIT_BYTES = 64 * 1024;

/** The one place where errors become responses: JSON bodies, stable codes, 5xx details hidden. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      return reply.status(error.statusCode).send({
        error: error.code,
        message: error.message,
        ...(error.field ? { field: error.field } : {}),
      });
    }
    if (error.validation && error.validation.length > 0) {
      const { field, message } = describeValidation(error.validation[0] as ValidationIssue, error.validationContext);
      return reply.status(400).send({ error: 'invalid_parameter', message, field });
    }
    if (error.code === 'FST_ERR_HANDLER_TIMEOUT') {
      request.log.warn({ err: error }, 'request timed out');
      return reply.status(503).header('retry-after', '2').send({
        error: 'timeout',
        message: 'no answer within the request timeout (REQUEST_TIMEOUT_MS); try again shortly or ask for less',
      });
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send({ error: 'payload_too_large', message: `the request body is larger than ${BODY_LIMIT_BYTES} bytes` });
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.status(415).send({ error: 'unsupported_media_type', message: error.message });
    }
    if (isDatabaseNotWritable(error)) {
      request.log.error({ err: error }, 'database not writable');
      return reply.status(503).header('retry-after', '30').send({
        error: 'database_not_writable',
        message: 'the database cannot be written (read-only or out of space); nothing was changed, and reads still work',
      });
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable');
      return reply
        .status(503)
        .header('retry-after', '2')
        .send({ error: 'database_unavailable', message: 'the database is unavailable; try again shortly' });
    }
    const status = error.statusCode ?? 500;
    if (status < 500) {
      return reply.status(status).send({ error: (error.code ?? 'bad_request').toLowerCase(), message: error.message });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send({ error: 'internal_error', message: 'something went wrong; the error was logged' });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route for ${request.method} ${request.url.split('?')[0]}` }),
  );
}
