import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

import { afterAll, beforeAll } from 'vitest';
import { createVersionedBucket, type S3Server, startS3 } from '../../harness/index.js';

/** Downloads an object and hashes it here, independently of the code under test. */
export async function downloadAndHash(
  s3: S3Client,
  bucket: string,
  key: string,
): Promise<{ sha256: string; body: Buffer }> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const chunks: Buffer[] = [];
  for await (const chunk of out.Body as Readable) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  return { sha256: createHash('sha256').update(body).digest('hex'), body };
}

export async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

export async function openUploads(s3: S3Client, bucket: string): Promise<string[]> {
  const out = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map((u) => u.Key ?? '');
}

/**
 * Starts the local S3 server for a test file (beforeAll), with a versioned bucket, and stops it by
 * PID afterwards. Read `s3` and `server` inside tests, once the hook has run.
 */
export function useLocalS3(bucket: string): { readonly s3: S3Client; readonly server: S3Server } {
  let server: S3Server | undefined;
  let s3: S3Client | undefined;
  beforeAll(async () => {
    server = await startS3();
    s3 = server.client();
    await createVersionedBucket(s3, bucket);
  });
  afterAll(async () => {
    await server?.stop();
  });
  return {
    get s3() {
      if (!s3) throw new Error('the local S3 server is not started (use inside a test)');
      return s3;
    },
    get server() {
      if (!server) throw new Error('the local S3 server is not started (use inside a test)');
      return server;
    },
  };
}

/** The `retention` tag of an object's current version (undefined when untagged). */
export async function retentionTag(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  const out = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
  return out.TagSet?.find((t) => t.Key === 'retention')?.Value;
}
