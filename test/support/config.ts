import type { Config } from '../../src/config.js';

/** A Config for tests: quiet, no port, no tokens, no rate limit; `overrides` wins. */
export function testConfig(database: Config['database'], salesDir: string, overrides: Partial<Config> = {}): Config {
  return Object.freeze({
    database,
    replicas: [],
    replicaMaxLagMs: 5000,
    salesDir,
    host: '127.0.0.1',
    port: 0,
    logLevel: 'silent',
    apiToken: undefined,
    metricsToken: undefined,
    shutdownDrainMs: 0,
    shutdownTimeoutMs: 10_000,
    mysqlLoadMethod: 'auto',
    maxUploadBytes: 2 ** 30,
    cacheMaxStaleMs: 1000,
    apiReadToken: undefined,
    production: false,
    allowAnonymous: false,
    rateLimitMax: 0,
    rateLimitWindowMs: 60_000,
    requestTimeoutMs: 30_000,
    corsOrigins: [],
    trustProxy: false,
    ...overrides,
  });
}
