import { pino } from 'pino';

type LogFn = (obj: object, msg?: string) => void;

/** What domain code needs of a logger; pino's loggers (and Fastify's request.log) fit it. */
export interface Log {
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/** The process logger for the CLI and the server: JSON lines on stdout, secrets redacted. */
export function createLogger(level: string) {
  return pino({
    level,
    redact: { paths: ['req.headers.authorization', 'headers.authorization', '*.apiToken', 'apiToken'], censor: '[redacted]' },
  });
}
