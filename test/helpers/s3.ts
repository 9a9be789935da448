import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

export { createVersionedBucket } from '../../harness/index.js';

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
