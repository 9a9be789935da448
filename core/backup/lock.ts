/**
 * One execution per target at a time: a lock object `locks/<target>.json` in the backup bucket,
 * created with an S3 conditional write (If-None-Match: *), so exactly one of two racing executions
 * gets it. A lock carries an expiry; an expired lock (an execution that died without releasing it)
 * is taken over with If-Match on its ETag, so two executions cannot both take it over either.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { TargetLockedError } from '../errors.js';
import { isAwsError, isNotFound, storageError } from '../s3/objects.js';

export const LockSchema = z.strictObject({
  target: z.string(),
  owner: z.string(),
  acquiredAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
});
export type Lock = z.infer<typeof LockSchema>;

export function lockKey(target: string): string {
  return `locks/${target}.json`;
}

const isPreconditionFailed = (err: unknown) =>
  isAwsError(err) && (err.name === 'PreconditionFailed' || err.$metadata.httpStatusCode === 412);

async function readLock(
  s3: S3Client,
  bucket: string,
  target: string,
): Promise<{ lock: Lock; etag?: string } | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: lockKey(target) }));
    const lock = LockSchema.parse(JSON.parse((await out.Body?.transformToString()) ?? ''));
    return { lock, etag: out.ETag };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function acquireLock(
  s3: S3Client,
  bucket: string,
  target: string,
  owner: string,
  options: { ttlSeconds: number; now?: () => Date },
): Promise<Lock> {
  const now = options.now?.() ?? new Date();
  const lock: Lock = {
    target,
    owner,
    acquiredAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + options.ttlSeconds * 1000).toISOString(),
  };
  const put = (condition: { IfNoneMatch: string } | { IfMatch: string }) =>
    s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: lockKey(target),
        Body: JSON.stringify(lock),
        ContentType: 'application/json',
        ...condition,
      }),
    );
  try {
    await put({ IfNoneMatch: '*' });
    return lock;
  } catch (err) {
    if (!isPreconditionFailed(err)) throw storageError(err, `locking target ${target}`);
  }
  const held = await readLock(s3, bucket, target);
  if (held && held.lock.owner === owner) return held.lock; // a retried step already holds it
  if (held && Date.parse(held.lock.expiresAt) > now.getTime()) {
    throw new TargetLockedError(
      `target ${target} is locked by ${held.lock.owner} since ${held.lock.acquiredAt} (until ${held.lock.expiresAt}); ` +
        'two executions never work on the same target at once',
    );
  }
  try {
    // Expired (or released between our two reads): take it over only if nobody else changed it.
    await put(held?.etag ? { IfMatch: held.etag } : { IfNoneMatch: '*' });
    return lock;
  } catch (err) {
    if (isPreconditionFailed(err)) {
      throw new TargetLockedError(`target ${target} was locked by another execution at the same moment`);
    }
    throw storageError(err, `locking target ${target}`);
  }
}

/** Releases the lock if `owner` holds it; a lock held by someone else is left alone. */
export async function releaseLock(
  s3: S3Client,
  bucket: string,
  target: string,
  owner: string,
): Promise<boolean> {
  const held = await readLock(s3, bucket, target);
  if (!held || held.lock.owner !== owner) return false;
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: lockKey(target) }));
  return true;
}
