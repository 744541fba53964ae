import { pino } from 'pino';

type LogFn = (obj: object, msg?: string) => void;

/** What domain code needs of a logger; pino's loggers (and Fastify's request.log) fit it. */
export interface Log {
  /** Optional: pino has it; a quiet test logger may leave it out. */
  debug?: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/** What pino blanks out of every log line: the Authorization header and any token-bearing field. */
export const LOG_REDACT = {
  paths: [
    'req.headers.authorization',
    'headers.authorization',
    '*.headers.authorization',
    'apiToken',
    '*.apiToken',
    'apiReadToken',
    '*.apiReadToken',
    'metricsToken',
    '*.metricsToken',
  ],
  censor: '[redacted]',
};

/** The process logger for the CLI and the server: JSON lines on stdout, secrets redacted. */
export function createLogger(level: string) {
  return pino({ level, redact: LOG_REDACT });
}
