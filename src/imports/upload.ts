import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../http/errors.js';

/** An uploaded CSV, spooled to a temporary file that `remove` deletes. */
export interface Upload {
  path: string;
  filename: string;
  onError?: 'fail' | 'skip';
  /** The form's `delimiter` and `columns` fields, unchecked (the import's format reads them). */
  delimiter?: string;
  columns?: string;
  remove(): void;
}

const UPLOAD_DIR = path.join(tmpdir(), 'zinc-uploads');

export const tooLarge = (max: number) =>
  new AppError(413, 'payload_too_large', `the upload is larger than ${max} bytes (MAX_UPLOAD_BYTES); nothing was stored`);
const binary = () =>
  new AppError(415, 'unsupported_media_type', 'the upload is binary (it contains NUL bytes), not a CSV text file');
const notCsv = () =>
  new AppError(415, 'unsupported_media_type', 'send the CSV as the body with Content-Type: text/csv, or as multipart/form-data with a "file" field');

/** A file name safe to record: no folders, no control characters, at most 255 characters. */
export function cleanFilename(name: string | undefined): string {
  // eslint-disable-next-line no-control-regex
  const base = path.basename((name ?? '').replace(/\\/g, '/')).replace(/[\u0000-\u001f\u007f]/g, '').trim();
  if (base && base !== '.' && base !== '..') return base.slice(0, 255);
  return `upload-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')}.csv`;
}

/** Counts bytes (413 past the limit) and refuses binary content, as the upload streams through. */
function guard(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > max) return callback(tooLarge(max));
      if (chunk.includes(0)) return callback(binary());
      callback(null, chunk);
    },
  });
}

async function spool(source: Readable, max: number): Promise<string> {
  mkdirSync(UPLOAD_DIR, { recursive: true });
  const file = path.join(UPLOAD_DIR, `${randomUUID()}.csv`);
  try {
    await pipeline(source, guard(max), createWriteStream(file));
    return file;
  } catch (error) {
    rmSync(file, { force: true });
    source.resume(); // drain what the client still sends; the response goes out now
    if (error instanceof AppError) throw error;
    if ((error as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(max);
    throw error;
  }
}

/** Streams the request's CSV (text/csv body or multipart "file" part) to a temporary file. */
export async function receiveUpload(request: FastifyRequest, max: number): Promise<Upload> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > max + (type === 'multipart/form-data' ? 64 * 1024 : 0)) throw tooLarge(max);

  if (type === 'multipart/form-data') {
    // Every part is read, so fields sent after the file (`curl -F file=@x.csv -F on_error=skip`)
    // count as much as those before it: the file is spooled first and imported only then.
    let spooled: { path: string; filename: string } | undefined;
    const fields: Record<string, string> = {};
    try {
      for await (const part of request.parts()) {
        if (part.type === 'field') {
          if (typeof part.value === 'string') fields[part.fieldname] = part.value;
          continue;
        }
        if (part.fieldname !== 'file') {
          part.file.resume();
          throw notCsv();
        }
        spooled = { path: await spool(part.file, max), filename: cleanFilename(part.filename) };
        if (part.file.truncated) throw tooLarge(max);
      }
    } catch (error) {
      if (spooled) rmSync(spooled.path, { force: true });
      const code = (error as { code?: string }).code;
      if (code === 'FST_FILES_LIMIT') throw new AppError(400, 'invalid_parameter', 'send one file per upload (one "file" part)', 'file');
      if (code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') throw new AppError(400, 'invalid_parameter', 'the form has too many fields: send "file" with on_error, delimiter and columns at most');
      throw error;
    }
    if (!spooled) throw notCsv();
    const { path: file, filename } = spooled;
    const { on_error: onError, delimiter, columns } = fields;
    if (onError !== undefined && onError !== 'fail' && onError !== 'skip') {
      rmSync(file, { force: true });
      throw new AppError(400, 'invalid_parameter', `on_error must be fail or skip (got "${onError.slice(0, 40)}"); nothing was stored`, 'on_error');
    }
    return {
      path: file,
      filename,
      ...(onError === 'fail' || onError === 'skip' ? { onError } : {}),
      ...(delimiter === undefined ? {} : { delimiter }),
      ...(columns === undefined ? {} : { columns }),
      remove: () => rmSync(file, { force: true }),
    };
  }
  if (!request.body || typeof (request.body as Readable).pipe !== 'function') throw notCsv();
  const file = await spool(request.body as Readable, max);
  return { path: file, filename: cleanFilename(undefined), remove: () => rmSync(file, { force: true }) };
}
