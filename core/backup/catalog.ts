/**
 * What backups a target has in the bucket: backup folders from one delimited listing (no walk over
 * every object), and whether each is complete (its manifest exists).
 */
import { PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { mapLimit } from '../concurrency.js';
import { headObject, listPages, storageError } from '../s3/objects.js';
import { BackupIdSchema, manifestKey, parseBackupId } from './layout.js';
import { RETENTION_TAG } from './retention.js';

/**
 * How far a backup id may lie ahead of this machine's clock and still be taken as now (clocks of
 * the runner, the Lambdas and an operator's machine differ by seconds, not minutes).
 */
export const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Whether a backup id names a time later than `now` plus the allowed clock skew: no backup can have
 * been taken then, so such an id (an archive dated in the future, a folder made by hand) is never
 * imported, never `latest` and never counts as fresh for the RPO alarm.
 */
export function isFutureBackupId(backupId: string, now: Date): boolean {
  const at = parseBackupId(backupId);
  return at !== undefined && at.getTime() > now.getTime() + CLOCK_SKEW_MS;
}

/** Backup ids with a folder under the target, complete or not, oldest first. */
export async function listBackupIds(s3: S3Client, bucket: string, target: string): Promise<string[]> {
  const ids: string[] = [];
  const input = { Bucket: bucket, Prefix: `${target}/`, Delimiter: '/' };
  for await (const page of listPages(s3, input, `listing the backups of ${target} in s3://${bucket}`))
    for (const p of page.CommonPrefixes ?? []) {
      const id = (p.Prefix ?? '').slice(target.length + 1, -1);
      if (BackupIdSchema.safeParse(id).success) ids.push(id);
    }
  return ids.sort();
}

export async function isComplete(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
): Promise<boolean> {
  return (await headObject(s3, bucket, manifestKey(target, backupId))) !== undefined;
}

/** Dates of the target's complete backups taken in `year` (UTC): what retention classes depend on. */
export async function completeBackupDatesIn(
  s3: S3Client,
  bucket: string,
  target: string,
  year: number,
): Promise<Date[]> {
  const candidates = (await listBackupIds(s3, bucket, target)).filter(
    (id) => parseBackupId(id)?.getUTCFullYear() === year,
  );
  // One HEAD per backup of the year (365 for daily, 8,760 for hourly backups), 32 at once.
  const complete = await mapLimit(candidates, 32, (id) => isComplete(s3, bucket, target, id));
  return candidates.filter((_, i) => complete[i]).map((id) => parseBackupId(id) as Date);
}

/** Tags object versions `retention=<value>`, a few at a time. */
export async function tagObjects(
  s3: S3Client,
  bucket: string,
  objects: ReadonlyArray<{ key: string; versionId?: string }>,
  value: string,
  concurrency = 16,
): Promise<void> {
  await mapLimit(objects, concurrency, async (o) => {
    try {
      await s3.send(
        new PutObjectTaggingCommand({
          Bucket: bucket,
          Key: o.key,
          ...(o.versionId ? { VersionId: o.versionId } : {}),
          Tagging: { TagSet: [{ Key: RETENTION_TAG, Value: value }] },
        }),
      );
    } catch (err) {
      throw storageError(err, `tagging s3://${bucket}/${o.key}`);
    }
  });
}
