import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * Streams offered to `LOAD DATA LOCAL INFILE`. The server names the "file" it wants; mysql2 asks
 * `infileStreamFactory` for it. Only names registered here resolve, so a server can never make
 * the client read a real file from disk.
 */
const streams = new Map<string, Readable>();

/** Registers a stream for one LOAD DATA statement; returns the name to put in the statement. */
export function offerInfile(stream: Readable): string {
  const name = `zinc-stream-${randomUUID()}`;
  streams.set(name, stream);
  return name;
}

/** Withdraws a stream that was never asked for (the statement failed before reading). */
export function withdrawInfile(name: string): void {
  streams.delete(name);
}

/** mysql2's `infileStreamFactory`. */
export function infileStreamFactory(name: string): Readable {
  const stream = streams.get(name);
  streams.delete(name);
  if (stream) return stream;
  const refused = new Readable({ read() {} });
  process.nextTick(() => refused.destroy(new Error(`refused LOCAL INFILE request for ${JSON.stringify(name)}`)));
  return refused;
}
