/**
 * The process's life as the HTTP layer and the importer see it. Ready until a shutdown begins;
 * then not ready (load balancers take the instance out) while requests and imports carry on; when
 * the shutdown's grace period is over, running imports are asked to stop (their rows roll back).
 */
export class Lifecycle {
  private draining = false;
  private readonly controller = new AbortController();

  /** Aborted when running imports must stop (`stopImports`); imports and write-lock waits watch it. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** A shutdown has begun: `/health/ready` answers 503 and answers close their connections. */
  get shuttingDown(): boolean {
    return this.draining;
  }

  /** Not ready from now on; requests and running imports go on. */
  beginShutdown(): void {
    this.draining = true;
  }

  /** Running imports stop between batches and roll back; a wait for the write lock ends. */
  stopImports(): void {
    this.draining = true;
    if (!this.controller.signal.aborted) this.controller.abort(new Error('shutting down'));
  }
}
