import { DRIVER_ERROR_CODES } from '../db/dialects/index.js';

/**
 * The errors the API answers with. Each has a stable machine code; the one error handler
 * (error-handler.ts) turns them into `{"error", "message", "field"}` responses.
 */
export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const invalidParameter = (field: string, message: string) =>
  new AppError(400, 'invalid_parameter', message, field);
export const notFound = (message: string) => new AppError(404, 'not_found', message);
export const unauthorized = () =>
  new AppError(401, 'unauthorized', 'send the API token as "Authorization: Bearer <token>"');
export const databaseUnavailable = (message = 'the database is unavailable; try again shortly') =>
  new AppError(503, 'database_unavailable', message);
/**
 * The sales folder's store (SALES_URL's bucket) could not be listed, so nothing was imported:
 * 503 `sales_source_unavailable` when it did not answer (try again), else 502 `sales_source_error`
 * (credentials, permissions, no such bucket: the configuration needs fixing).
 */
export const salesSourceError = (unreachable: boolean, message: string) =>
  unreachable ? new AppError(503, 'sales_source_unavailable', message) : new AppError(502, 'sales_source_error', message);
/** The database refused a change as conflicting with another writer, every time it was run: nothing was changed. */
export const writeConflict = (message: string) => new AppError(503, 'write_conflict', message);

/** Network failures, whatever the database: Node's own codes. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** True for errors that mean "the database cannot be reached right now" rather than a bug. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; fatal?: boolean; message?: string } | null;
  if (!e || typeof e !== 'object') return false;
  if (e.code && (CONNECTION_CODES.has(e.code) || DRIVER_ERROR_CODES.unavailable.has(e.code))) return true;
  if (e.fatal === true) return true;
  const message = e.message ?? '';
  return /closed state|Pool is closed|connect ETIMEDOUT/i.test(message) || DRIVER_ERROR_CODES.unavailableMessages.some((m) => m.test(message));
}

/** True for errors that mean "the database answers but cannot be written": read-only, disk full. */
export function isDatabaseNotWritable(error: unknown): boolean {
  const e = error as { code?: string } | null;
  return !!e && typeof e === 'object' && typeof e.code === 'string' && DRIVER_ERROR_CODES.notWritable.has(e.code);
}
