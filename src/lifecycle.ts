/**
 * The process's life as the HTTP layer and the importer see it: ready until a shutdown starts,
 * then not ready, and running imports are asked to stop (their rows roll back).
 */
export class Lifecycle {
  private readonly controller = new AbortController();

  /** Aborted when shutdown starts; imports watch it. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get shuttingDown(): boolean {
    return this.controller.signal.aborted;
  }

  beginShutdown(): void {
    if (!this.controller.signal.aborted) this.controller.abort(new Error('shutting down'));
  }
}
