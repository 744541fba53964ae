/** How far an import has got; `bytesTotal` is the file's size. */
export interface ImportProgress {
  bytesRead: number;
  bytesTotal: number;
  rowsRead: number;
}

/**
 * The imports one app is running, by record id: how far each has got, for `GET /api/imports/{id}`
 * while it runs. Owned by the app (two apps in one process see only their own), handed to the
 * import service in its options.
 */
export class ImportRuns {
  private readonly running = new Map<number, ImportProgress & { startedAt: number }>();
  /** The store path last used, so that a change of path is logged once. */
  lastMethod: string | undefined;

  start(id: number, bytesTotal: number, startedAt: number): void {
    this.running.set(id, { bytesRead: 0, bytesTotal, rowsRead: 0, startedAt });
  }

  update(id: number, progress: ImportProgress): void {
    const run = this.running.get(id);
    if (run) this.running.set(id, { ...progress, startedAt: run.startedAt });
  }

  end(id: number): void {
    this.running.delete(id);
  }

  /** How far a running import has got, when this app runs it. */
  progress(id: number) {
    const p = this.running.get(id);
    if (!p) return undefined;
    const seconds = Math.max((performance.now() - p.startedAt) / 1000, 0.001);
    const bytesPerS = p.bytesRead / seconds;
    return {
      bytes_read: p.bytesRead,
      bytes_total: p.bytesTotal,
      rows_read: p.rowsRead,
      rows_per_s: Math.round(p.rowsRead / seconds),
      eta_s: bytesPerS > 0 ? Math.round(((p.bytesTotal - p.bytesRead) / bytesPerS) * 10) / 10 : null,
    };
  }
}
