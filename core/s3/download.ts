import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { RestoreValidationError } from '../errors.js';
import { openObject, storageError } from './objects.js';

/**
 * A pipeline stage that passes bytes through unchanged while feeding them to `hash` (and counting
 * them): the checksum of a stream in the same pass that moves it.
 */
export function hashing(hash: Hash, onBytes?: (n: number) => void) {
  return async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      hash.update(chunk);
      onBytes?.(chunk.length);
      yield chunk;
    }
  };
}

/**
 * Downloads one exact object version to `file`, hashing it on the way: it is written under a
 * temporary name beside `file` and renamed only when its SHA-256 equals `sha256`, so a file that
 * does not match is never left where a tool would read it.
 */
export async function downloadVerified(
  s3: S3Client,
  object: { bucket: string; key: string; versionId?: string },
  sha256: string,
  file: string,
): Promise<{ bytes: number }> {
  await mkdir(dirname(file), { recursive: true });
  const partial = join(dirname(file), `.${basename(file)}.partial`);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    const body = await openObject(s3, object.bucket, object.key, object.versionId);
    await pipeline(
      body,
      hashing(hash, (n) => {
        bytes += n;
      }),
      createWriteStream(partial),
    );
  } catch (err) {
    await rm(partial, { force: true });
    throw storageError(err, `reading s3://${object.bucket}/${object.key}`);
  }
  const actual = hash.digest('hex');
  if (actual !== sha256) {
    await rm(partial, { force: true });
    throw new RestoreValidationError(
      `s3://${object.bucket}/${object.key} hashes to ${actual}, the manifest records ${sha256}; ${file} was not written`,
    );
  }
  await rename(partial, file);
  return { bytes };
}
