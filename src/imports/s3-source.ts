import { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { redactUrl, type S3SalesLocation } from '../config.js';
import { SalesFolderError, SourceReadError, type SalesEntry, type SalesFolder, type SalesSource } from './sales-source.js';

/**
 * SALES_URL=s3://bucket/prefix: the `*.csv` objects directly under the prefix (like SALES_DIR,
 * not recursive: "subfolders" are left alone), in name order, each imported through the same
 * pipeline as a local file. The record's filename is the key after the prefix.
 *
 * The pipeline reads a file twice (its hash to claim it, then the load) and again on a write
 * conflict; each read is its own streamed GET, never a temporary copy, never whole in memory.
 * The first GET pins the object's ETag; every later GET sends it as If-Match and checks the ETag
 * it gets back, so an object replaced meanwhile fails the file ("changed while it was being
 * imported") instead of mixing two versions. (Stores that ignore If-Match, such as s3rver, are
 * caught by that check; the SHA-256 compared at the end of the load stays the last net.) Only
 * s3:ListBucket and s3:GetObject are needed: no version ids are asked for.
 *
 * Credentials, region and endpoint come from the AWS SDK's usual sources (AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE, a role, …; src/config.ts reads the
 * endpoint and region). Errors become one-line messages naming the bucket or object and never
 * carrying a secret: listing fails the run (SalesFolderError), an object fails its file
 * (SourceReadError).
 */

/** Error names the store answers when the credentials are wrong or may not do what was asked. */
const DENIED = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'InvalidClientTokenId',
]);
/** Node's codes for a store that cannot be reached, or went away. */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

type Kind = 'denied' | 'no_credentials' | 'no_region' | 'no_bucket' | 'no_key' | 'changed' | 'unreachable' | 'failed';

/** What went wrong, as one of a few kinds, and the store's own words for it. */
function classify(error: unknown): { kind: Kind; detail: string } {
  const e = (error ?? {}) as SdkError;
  const name = e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const message = (e.message ?? String(error)).split('\n')[0]!;
  const detail = name === 'Error' || name === message ? message : `${name}: ${message}`;
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(message)) return { kind: 'no_credentials', detail };
  if (/region is missing/i.test(message)) return { kind: 'no_region', detail };
  if (name === 'NoSuchBucket') return { kind: 'no_bucket', detail };
  if (name === 'NoSuchKey') return { kind: 'no_key', detail };
  if (name === 'PreconditionFailed' || status === 412) return { kind: 'changed', detail };
  if (DENIED.has(name) || status === 401 || status === 403) return { kind: 'denied', detail };
  const code = e.code ?? /\b(E[A-Z]{4,})\b/.exec(message)?.[1];
  if ((code && NETWORK.has(code)) || name === 'TimeoutError' || (status !== undefined && status >= 500)) {
    return { kind: 'unreachable', detail: code && !detail.includes(code) ? `${code}: ${detail}` : detail };
  }
  if (status === 404) return { kind: 'no_key', detail };
  return { kind: 'failed', detail };
}

/** The store as messages name it. */
function storeName(location: S3SalesLocation): string {
  return location.endpoint ? `the S3 endpoint ${redactUrl(location.endpoint)}` : 'AWS S3';
}

const CREDENTIALS_HINT = 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)';

/** A listing error as the run's one-line error. */
function folderError(error: unknown, location: S3SalesLocation): SalesFolderError {
  const { kind, detail } = classify(error);
  const where = location.url;
  switch (kind) {
    case 'no_credentials':
      return new SalesFolderError('denied', `no AWS credentials to list ${where}: ${CREDENTIALS_HINT}`);
    case 'no_region':
      return new SalesFolderError('failed', `no AWS region to list ${where}: set AWS_REGION`);
    case 'denied':
      return new SalesFolderError(
        'denied',
        `${storeName(location)} refused to list ${where} (${detail}): check the credentials (${CREDENTIALS_HINT}) and that they allow s3:ListBucket and s3:GetObject`,
      );
    case 'no_bucket':
    case 'no_key':
      return new SalesFolderError('not_found', `bucket ${location.bucket} does not exist at ${storeName(location)} (${detail}); check SALES_URL`);
    case 'unreachable':
      return new SalesFolderError('unreachable', `cannot reach ${storeName(location)} to list ${where} (${detail}); try again later`);
    default:
      return new SalesFolderError('failed', `listing ${where} failed (${detail})`);
  }
}

/** An error reading one object as its file's one-line failure. */
function objectError(error: unknown, url: string, location: S3SalesLocation, readBefore: boolean): SourceReadError {
  if (error instanceof SourceReadError) return error;
  const { kind, detail } = classify(error);
  const nothing = readBefore ? '; nothing of it was stored' : '';
  switch (kind) {
    case 'no_key':
      return new SourceReadError(`${url} disappeared ${readBefore ? 'while it was being imported' : 'after it was listed'} (${detail})${nothing}`);
    case 'changed':
      return changedError(url, detail);
    case 'denied':
    case 'no_credentials':
      return new SourceReadError(`${storeName(location)} refused to read ${url} (${detail}): the credentials need s3:GetObject${nothing}`);
    case 'unreachable':
      return new SourceReadError(`lost ${storeName(location)} while reading ${url} (${detail})${nothing}; the next run takes it again`);
    default:
      return new SourceReadError(`reading ${url} failed (${detail})${nothing}`);
  }
}

function changedError(url: string, detail: string): SourceReadError {
  return new SourceReadError(
    `${url} changed while it was being imported (${detail}); nothing of it was stored: the next run imports it as it is then`,
  );
}

/**
 * One object, read by streamed GETs pinned to the version the first one saw (its ETag). `name`
 * is what the record carries.
 */
class S3ObjectSource implements SalesSource {
  #etag: string | undefined;
  readonly #url: string;

  constructor(
    private readonly client: S3Client,
    private readonly sdk: typeof import('@aws-sdk/client-s3'),
    private readonly location: S3SalesLocation,
    private readonly key: string,
    readonly name: string,
  ) {
    this.#url = `s3://${location.bucket}/${key}`;
  }

  open(): Readable {
    return Readable.from(this.#read(), { objectMode: false, highWaterMark: 1 << 16 });
  }

  async *#read(): AsyncGenerator<Uint8Array> {
    const pinned = this.#etag;
    let body: Readable;
    try {
      const response = await this.client.send(
        new this.sdk.GetObjectCommand({ Bucket: this.location.bucket, Key: this.key, ...(pinned ? { IfMatch: pinned } : {}) }),
      );
      body = response.Body as Readable;
      if (pinned === undefined) this.#etag = response.ETag;
      else if (response.ETag !== pinned) {
        body.destroy();
        throw changedError(this.#url, `its ETag went from ${pinned} to ${response.ETag ?? 'none'}`);
      }
    } catch (error) {
      throw objectError(error, this.#url, this.location, pinned !== undefined);
    }
    try {
      for await (const chunk of body) yield chunk as Uint8Array;
    } catch (error) {
      throw objectError(error, this.#url, this.location, true);
    } finally {
      // The reader may stop early (a failed load): the connection goes back, not left half read.
      body.destroy();
    }
  }
}

/** Extra client settings, for tests (credentials of their own, fewer retries). */
export type S3ClientOverrides = Partial<S3ClientConfig>;

/**
 * SALES_URL as a folder import's source: lists and reads through a client of its own, which
 * `close` releases. Loads the AWS SDK on first use, so nothing else pays for it.
 */
export async function s3Folder(location: S3SalesLocation, overrides: S3ClientOverrides = {}): Promise<SalesFolder> {
  // The SDK warns on Node.js 20 about its own releases from 2027 on; this pinned one supports it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sdk = await import('@aws-sdk/client-s3');
  const client = new sdk.S3Client({
    ...(location.endpoint ? { endpoint: location.endpoint } : {}),
    ...(location.region ? { region: location.region } : {}),
    forcePathStyle: location.forcePathStyle,
    // A store that never answers fails the run instead of hanging it; a read the import has
    // paused (the database sets the pace) is not cut unless it stalls for minutes.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 300_000 },
    ...overrides,
  });
  const { bucket, prefix } = location;
  return {
    location: location.url,
    async list(): Promise<SalesEntry[]> {
      const keys: Array<{ name: string; key: string }> = [];
      let token: string | undefined;
      do {
        let page;
        try {
          page = await client.send(
            new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ...(token ? { ContinuationToken: token } : {}) }),
          );
        } catch (error) {
          throw folderError(error, location);
        }
        for (const { Key: key } of page.Contents ?? []) {
          const name = key?.slice(prefix.length) ?? '';
          if (name === '' || name.includes('/') || !name.toLowerCase().endsWith('.csv')) continue;
          keys.push({ name, key: key! });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      keys.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return keys.map(({ name, key }) => ({
        name,
        open: async () => ({ source: new S3ObjectSource(client, sdk, location, key, name), close: async () => {} }),
      }));
    },
    async close() {
      client.destroy();
    },
  };
}
