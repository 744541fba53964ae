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

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_ACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_LOCK_WAIT_TIMEOUT',
  'SQLITE_BUSY',
  'SQLITE_CANTOPEN',
  'SQLITE_IOERR',
]);

/** True for errors that mean "the database cannot be reached right now" rather than a bug. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; fatal?: boolean; message?: string } | null;
  if (!e || typeof e !== 'object') return false;
  if (e.code && CONNECTION_CODES.has(e.code)) return true;
  if (e.fatal === true) return true;
  return /closed state|Pool is closed|connect ETIMEDOUT/i.test(e.message ?? '');
}

const NOT_WRITABLE_CODES = new Set([
  'SQLITE_READONLY',
  'SQLITE_READONLY_DBMOVED',
  'SQLITE_READONLY_DIRECTORY',
  'SQLITE_FULL',
  'ER_DISK_FULL',
  'ER_RECORD_FILE_FULL',
  'ER_OPTION_PREVENTS_STATEMENT', // read_only / super_read_only server
  'ER_READ_ONLY_MODE',
]);

/** True for errors that mean "the database answers but cannot be written": read-only, disk full. */
export function isDatabaseNotWritable(error: unknown): boolean {
  const e = error as { code?: string } | null;
  return !!e && typeof e === 'object' && typeof e.code === 'string' && NOT_WRITABLE_CODES.has(e.code);
}
