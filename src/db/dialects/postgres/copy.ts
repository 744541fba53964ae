import { CompiledQuery } from 'kysely';
import { from as copyFrom, type CopyStreamQuery } from 'pg-copy-streams';
import type { AnyDB } from '../../database.js';

/**
 * One `COPY … FROM STDIN` on the connection of `db` (a transaction, or a connection of the pool),
 * fed as rows are produced. The statement is handed to the connection as a pg "submittable"
 * through Kysely's own executeQuery, so it runs in the caller's transaction, queued like any
 * other statement on that connection; the stream is then written to and ended.
 */
export class CopyIn {
  private readonly stream: CopyStreamQuery;
  private readonly done: Promise<void>;
  private readonly refused: Promise<never>;
  private failure: unknown;

  private constructor(statement: string) {
    this.stream = copyFrom(statement);
    // Known at once (not a tick later): once the server has refused the COPY, the stream must not
    // be written, ended or destroyed again — pg-copy-streams drops its connection then, and a
    // chunk it still held would be flushed into nothing (a TypeError outside any promise).
    this.stream.on('error', (error: unknown) => {
      this.failure ??= error;
    });
    this.done = new Promise<void>((resolve, reject) => {
      this.stream.on('finish', resolve);
      this.stream.on('error', reject);
    });
    this.refused = this.done.then(
      () => new Promise<never>(() => {}),
      (error: unknown) => Promise.reject(error),
    );
    this.done.catch(() => {});
    this.refused.catch(() => {});
  }

  /** Starts `statement` (a `COPY … FROM STDIN`) on the connection of `db`. */
  static async start(db: AnyDB, statement: string): Promise<CopyIn> {
    const copy = new CopyIn(statement);
    // pg's Client.query takes a submittable in place of the text and runs it on that connection.
    await db.executeQuery({ ...CompiledQuery.raw(''), sql: copy.stream as unknown as string });
    return copy;
  }

  /** Whether the server has refused the COPY (its error is `error`). */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  get error(): unknown {
    return this.failure;
  }

  /**
   * Sends `text` and waits until the connection has taken it: one chunk in flight at a time, so
   * the stream never holds chunks the server's refusal would strand.
   */
  async write(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    const taken = new Promise<void>((resolve, reject) => this.stream.write(text, (error) => (error ? reject(error) : resolve())));
    await Promise.race([taken, this.refused]);
    if (this.failure) throw this.failure;
  }

  /** Ends the stream; resolves to the rows the statement stored. */
  async finish(): Promise<number> {
    if (this.failure) throw this.failure;
    this.stream.end();
    await this.done;
    return this.stream.rowCount;
  }

  /** Ends a COPY still running (its rows go with the transaction's rollback); a refused one is left as it is. */
  async settle(): Promise<void> {
    if (this.failure === undefined && !this.stream.writableEnded) this.stream.end();
    await this.done.catch(() => {});
  }
}
