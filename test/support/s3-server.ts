import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseS3Url, type S3SalesLocation } from '../../src/config.js';

/** s3rver (a local S3-compatible server) has no type declarations: what the tests use of it. */
interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
const S3rver = createRequire(import.meta.url)('s3rver') as new (options: Record<string, unknown>) => S3rverInstance;

/** s3rver's one account: any other key id is refused (InvalidAccessKeyId). */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface LocalS3 {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** A client that puts and deletes objects, as whoever fills the bucket would. */
  client: S3Client;
  /** The location SALES_URL=s3://bucket/prefix and AWS_ENDPOINT_URL_S3=endpoint would give. */
  location(bucket: string, prefix?: string): S3SalesLocation;
  createBucket(bucket: string): Promise<void>;
  put(bucket: string, key: string, body: string | Buffer): Promise<void>;
  /** Uploads a local file, streamed (never read whole into this process). */
  putFile(bucket: string, key: string, file: string): Promise<void>;
  remove(bucket: string, key: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts s3rver on a free port over a temporary folder of its own. */
export async function startLocalS3(): Promise<LocalS3> {
  const directory = mkdtempSync(path.join(tmpdir(), 'zinc-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // Checksums only where required: s3rver does not take the streamed (aws-chunked) uploads they would need.
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    client,
    location: (bucket, prefix = '') => ({
      ...parseS3Url(`s3://${bucket}/${prefix}`),
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
    }),
    createBucket: async (bucket) => {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
    },
    put: async (bucket, key, body) => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: typeof body === 'string' ? Buffer.from(body) : body }));
    },
    putFile: async (bucket, key, file) => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(file), ContentLength: statSync(file).size }));
    },
    remove: async (bucket, key) => {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    stop: async () => {
      client.destroy();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
