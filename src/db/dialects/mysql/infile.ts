import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { sql } from 'kysely';
import type { AnyDB } from '../../database.js';

/**
 * Streams offered to `LOAD DATA LOCAL INFILE`, one registry per pool. The server names the
 * "file" it wants; mysql2 asks the pool's `infileStreamFactory` for it. Only names registered
 * here resolve, so a server can never make the client read a real file from disk.
 */
export class InfileStreams {
  private readonly streams = new Map<string, Readable>();

  /** Registers a stream for one LOAD DATA statement; returns the name to put in the statement. */
  offer(stream: Readable): string {
    const name = `zinc-stream-${randomUUID()}`;
    this.streams.set(name, stream);
    return name;
  }

  /** Withdraws a stream that was never asked for (the statement failed before reading). */
  withdraw(name: string): void {
    this.streams.delete(name);
  }

  /** mysql2's `infileStreamFactory`. */
  readonly factory = (name: string): Readable => {
    const stream = this.streams.get(name);
    this.streams.delete(name);
    if (stream) return stream;
    const refused = new Readable({ read() {} });
    process.nextTick(() => refused.destroy(new Error(`refused LOCAL INFILE request for ${JSON.stringify(name)}`)));
    return refused;
  };
}

/** One LOAD DATA LOCAL INFILE statement fed by a stream the import writes as it parses. */
export class InfileLoad {
  private readonly stream = new PassThrough({ highWaterMark: 1 << 20 });
  private readonly done: Promise<{ numAffectedRows?: bigint }>;
  private failure: unknown;

  constructor(streams: InfileStreams, trx: AnyDB, statement: (name: ReturnType<typeof sql.lit>) => ReturnType<typeof sql>) {
    const name = streams.offer(this.stream);
    this.done = statement(sql.lit(name))
      .execute(trx)
      .finally(() => streams.withdraw(name)) as Promise<{ numAffectedRows?: bigint }>;
    // A failed statement stops reading: make the next write fail instead of waiting forever.
    this.done.catch((error: unknown) => {
      this.failure = error;
      this.stream.destroy();
    });
  }

  async write(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      if (!this.stream.write(text)) await Promise.race([once(this.stream, 'drain'), this.done.then(() => undefined)]);
    } catch (error) {
      // A stream error here is the statement failing (the connection went away): report that.
      await this.done.catch(() => {});
      throw this.failure ?? error;
    }
    if (this.failure) throw this.failure;
  }

  /** Ends the stream and waits for the statement, whatever its outcome. */
  async settle(): Promise<void> {
    this.stream.end();
    await this.done.catch(() => {});
  }

  /** Ends the stream; resolves to the rows the statement stored. */
  async finish(): Promise<number> {
    this.stream.end();
    return Number((await this.done).numAffectedRows ?? 0n);
  }
}


/** The text format the writers produce for LOAD DATA: tab-separated, backslash escapes, LF. */
export const TSV = sql`CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'`;
