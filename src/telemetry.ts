import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReadReplicas } from './db/read-replicas.js';

/** Longest a scrape waits for the readiness check before reporting the database down. */
export const SCRAPE_CHECK_TIMEOUT_MS = 2500;

/** The running imports as `watchImports` reads them (`ImportRuns` of imports/import-progress.ts). */
export interface RunningImports {
  readonly size: number;
  /** `performance.now()` when the longest-running one started; undefined when none runs. */
  oldestStart(): number | undefined;
}

/** What `/health/ready` decided: `status` ok or not, `database` ok, a reason, or `not checked`. */
export interface Readiness {
  status: string;
  database: string;
}

/**
 * Everything Zinc reports to Prometheus, in one registry per app (never the global one, so
 * several apps in one process — tests — do not collide).
 */
export class Telemetry {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'zinc_http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly imports = new Counter({
    name: 'zinc_imports_total',
    help: 'Files taken by import runs, by outcome (success, partial, failed, skipped)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly importRows = new Counter({
    name: 'zinc_import_rows_total',
    help: 'CSV rows handled by imports: stored, or rejected as invalid',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly importDuration = new Histogram({
    name: 'zinc_import_duration_seconds',
    help: 'Time to import one file (skipped files excluded), by outcome',
    labelNames: ['outcome'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });

  readonly writeConflicts = new Counter({
    name: 'zinc_write_conflicts_total',
    help: 'Transactions of imports, undos and rebuilds the database refused as conflicting with another writer (deadlock, certification failure): run again (retried) or given up (exhausted)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly dbErrors = new Counter({
    name: 'zinc_db_query_errors_total',
    help: 'Database queries that failed (connection loss, timeouts, constraint errors)',
    registers: [this.registry],
  });

  /** Each read replica's lag, state and reads, read from `reads` at every scrape. */
  watchReplicas(reads: ReadReplicas): void {
    new Gauge({
      name: 'zinc_replica_lag_seconds',
      help: 'At most how far each read replica is behind the primary (absent while it is down)',
      labelNames: ['replica'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of reads.status()) {
          if (r.lagMs !== null) this.set({ replica: r.name }, Number.isFinite(r.lagMs) ? r.lagMs / 1000 : Number.MAX_VALUE);
        }
      },
    });
    new Gauge({
      name: 'zinc_replica_usable',
      help: 'Whether metrics reads go to each read replica (1) or it is lagging, down or starting (0)',
      labelNames: ['replica', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of reads.status()) this.set({ replica: r.name, state: r.state }, r.state === 'ok' ? 1 : 0);
      },
    });
    new Counter({
      name: 'zinc_metrics_database_reads_total',
      help: 'Metrics answers computed from the database (cache misses), by server: primary or a replica',
      labelNames: ['server'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ server: 'primary' }, reads.primaryReads);
        for (const r of reads.status()) this.inc({ server: r.name }, r.reads);
      },
    });
  }

  /**
   * `zinc_ready` and `zinc_database_up`, from `check` (the readiness of `/health/ready`) run at
   * every scrape, so an instance that nothing probes still reports it. While shutting down the
   * database is not checked and `zinc_database_up` keeps its last value.
   */
  watchReadiness(check: () => Promise<Readiness>, timeoutMs = SCRAPE_CHECK_TIMEOUT_MS): void {
    // One check at a time: both gauges collect at once and share the check under way, and a
    // check that outlives its scrape is joined by the next scrape rather than started again.
    let pending: Promise<Readiness> | undefined;
    const probe = async (): Promise<Readiness> => {
      const running = (pending ??= check()
        .catch((error: Error) => ({ status: 'error', database: error.message }))
        .finally(() => (pending = undefined)));
      // A database that does not answer makes the scrape say so in time, instead of holding the
      // whole scrape (process metrics included) past Prometheus's timeout.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<Readiness>((resolve) => {
        timer = setTimeout(() => resolve({ status: 'error', database: `no answer within ${timeoutMs} ms` }), timeoutMs);
      });
      try {
        return await Promise.race([running, late]);
      } finally {
        clearTimeout(timer);
      }
    };
    new Gauge({
      name: 'zinc_ready',
      help: 'Whether /health/ready answers 200 (1): database reachable, schema at the latest migration, not shutting down; else 0',
      registers: [this.registry],
      async collect() {
        this.set((await probe()).status === 'ok' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'zinc_database_up',
      help: 'Whether the database answered SELECT 1 within 2 s and, on a cluster, the node in use is ready (1); while shutting down, the last value checked',
      registers: [this.registry],
      async collect() {
        const { database } = await probe();
        if (database !== 'not checked') this.set(database === 'ok' ? 1 : 0);
      },
    });
  }

  /** How many imports `runs` has running and how long the oldest has been running, at every scrape. */
  watchImports(runs: RunningImports): void {
    new Gauge({
      name: 'zinc_imports_running',
      help: 'Imports this instance is running now (uploads, folder imports, async ones included)',
      registers: [this.registry],
      collect() {
        this.set(runs.size);
      },
    });
    new Gauge({
      name: 'zinc_import_oldest_running_seconds',
      help: 'How long the longest-running import of this instance has been running (retries included); 0 when none runs',
      registers: [this.registry],
      collect() {
        const started = runs.oldestStart();
        this.set(started === undefined ? 0 : Math.max(performance.now() - started, 0) / 1000);
      },
    });
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Present from the start, so dashboards and alerts see zeros rather than gaps.
    for (const outcome of ['success', 'partial', 'failed', 'skipped']) this.imports.inc({ outcome }, 0);
    for (const result of ['stored', 'rejected']) this.importRows.inc({ result }, 0);
    for (const outcome of ['retried', 'exhausted']) this.writeConflicts.inc({ outcome }, 0);
  }

  /** Records one file's import outcome. */
  importFinished(outcome: string, stored: number, rejected: number, seconds: number | null): void {
    this.imports.inc({ outcome });
    if (outcome === 'skipped') return;
    this.importRows.inc({ result: 'stored' }, stored);
    this.importRows.inc({ result: 'rejected' }, rejected);
    if (seconds !== null) this.importDuration.observe({ outcome }, seconds);
  }
}
