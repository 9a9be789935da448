/**
 * Archived backups: with `retention.coldStorage` in S3 Glacier Flexible Retrieval (`GLACIER`) or
 * Deep Archive (`DEEP_ARCHIVE`), a backup's files cannot be read until each object is restored: S3
 * answers GetObject with InvalidObjectState until a RestoreObject request has made a temporary copy
 * readable, which takes hours (Glacier Flexible Retrieval: 1-5 minutes Expedited, 3-5 hours Standard,
 * 5-12 hours Bulk; Deep Archive: within 12 hours Standard, 48 hours Bulk; S3 User Guide, "Restoring an
 * archived object"). S3 Glacier Instant Retrieval and the IA classes need nothing of the kind.
 *
 * The restore plan refuses such a backup before touching anything, naming the objects' class and
 * how to restore them (`describeArchived`); `infrahub-backup thaw` requests the restores
 * (`thawObjects`) and, run again, says how far they are. A restore state that requests the restores
 * and waits in a loop was not built: the wait is hours, longer than a restore should hold a target's
 * lock, and an operator decides whether the retrieval's cost and time are worth it.
 */
import { RestoreObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mapLimit } from '../concurrency.js';
import { InvalidInputError } from '../errors.js';
import { headObject, isAwsError, listCurrentVersions, storageError } from '../s3/objects.js';
import { backupPrefix } from './layout.js';
import { ARCHIVE_STORAGE_CLASSES } from './retention.js';

/** RestoreObject's retrieval tiers (S3 API Reference, "GlacierJobParameters": Tier). */
export const ThawTiers = ['Standard', 'Bulk', 'Expedited'] as const;
export type ThawTier = (typeof ThawTiers)[number];

/** Days a restored copy stays readable by default: a restore or drill started within a week. */
export const THAW_DEFAULT_DAYS = 7;

/**
 * How long a restore request takes, by archive class and tier (S3 User Guide, "Understanding archive
 * retrieval options": Glacier Flexible Retrieval Expedited 1-5 minutes, Standard 3-5 hours, Bulk
 * 5-12 hours; Deep Archive Standard within 12 hours, Bulk within 48 hours, no Expedited).
 */
export const RETRIEVAL_TIMES: Readonly<
  Record<'GLACIER' | 'DEEP_ARCHIVE', Partial<Record<ThawTier, string>>>
> = {
  GLACIER: { Expedited: '1-5 minutes', Standard: '3-5 hours', Bulk: '5-12 hours' },
  DEEP_ARCHIVE: { Standard: 'within 12 hours', Bulk: 'within 48 hours' },
};

/** "GLACIER 3-5 hours, DEEP_ARCHIVE within 12 hours" for the classes given at `tier`. Pure. */
export function retrievalTime(tier: ThawTier, classes: readonly string[]): string {
  return classes
    .map((c) => {
      const time = RETRIEVAL_TIMES[c as keyof typeof RETRIEVAL_TIMES]?.[tier];
      return time ? `${c} ${time}` : `${c}: no ${tier} retrieval`;
    })
    .join(', ');
}

/** Requests at once (RestoreObject or HeadObject). */
const CONCURRENCY = 16;

/** An object version in an archive storage class. */
export interface ArchivedObject {
  key: string;
  versionId?: string;
  storageClass: string;
}

/** Where an archived object's restore stands. */
export type ThawState = 'not-restored' | 'in-progress' | 'restored';

export interface ArchivedStatus extends ArchivedObject {
  state: ThawState;
  /** When the restored copy goes again (S3's expiry-date), once restored. */
  expires?: string;
}

/**
 * Reads S3's x-amz-restore header (HeadObject's Restore): `ongoing-request="true"` while restoring,
 * `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"` once readable (S3 API
 * Reference, "HeadObject": x-amz-restore). No header: never restored (or the copy has expired).
 */
export function restoreState(header: string | undefined): { state: ThawState; expires?: string } {
  if (!header) return { state: 'not-restored' };
  if (/ongoing-request="true"/.test(header)) return { state: 'in-progress' };
  const expiry = /expiry-date="([^"]+)"/.exec(header)?.[1];
  const expires = expiry ? new Date(expiry) : undefined;
  return {
    state: 'restored',
    ...(expires && !Number.isNaN(expires.getTime()) ? { expires: expires.toISOString() } : {}),
  };
}

/**
 * Every current object of the backup (files, records, manifest) in an archive storage class, from
 * one listing of its versions (ListObjectVersions reports each version's StorageClass).
 * @throws StorageError when S3 fails
 */
export async function archivedObjectsOf(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
): Promise<ArchivedObject[]> {
  const listed = await listCurrentVersions(s3, bucket, backupPrefix(target, backupId));
  return [...listed.values()]
    .filter((v) => v.storageClass !== undefined && ARCHIVE_STORAGE_CLASSES.has(v.storageClass))
    .map((v) => ({
      key: v.key,
      ...(v.versionId ? { versionId: v.versionId } : {}),
      storageClass: v.storageClass as string,
    }));
}

/**
 * Where each archived object's restore stands: one HeadObject each (of that version), 16 at once.
 * @throws StorageError when S3 fails
 */
export async function archivedStatus(
  s3: S3Client,
  bucket: string,
  objects: readonly ArchivedObject[],
): Promise<ArchivedStatus[]> {
  return mapLimit(objects, CONCURRENCY, async (o) => {
    const head = await headObject(s3, bucket, o.key, o.versionId);
    return { ...o, ...restoreState(head?.restore) };
  });
}

/** What a RestoreObject request did. */
export type ThawOutcome = 'requested' | 'in-progress' | 'restored';

/**
 * Requests the restore of each archived object version for `days` days at `tier`, 16 at once. S3
 * answers 202 when it starts a restore, 200 when the object is restored already (its copy's expiry
 * is then moved to `days` from now), 409 RestoreAlreadyInProgress while one runs (S3 API Reference,
 * "RestoreObject"), so running it again is also how to see where the restores stand. Restores are
 * billed per request and per GB retrieved at the tier's price. The Expedited tier exists for S3 Glacier
 * Flexible Retrieval only, not Deep Archive (S3 API Reference, "RestoreObject": Expedited), so it is
 * refused for DEEP_ARCHIVE objects before any request (none is half requested).
 * @throws InvalidInputError for the Expedited tier when an object is in DEEP_ARCHIVE
 * @throws StorageError when S3 refuses otherwise (access denied: the caller needs s3:RestoreObject)
 */
export async function thawObjects(
  s3: S3Client,
  bucket: string,
  objects: readonly ArchivedObject[],
  options: { days: number; tier: ThawTier },
): Promise<Array<ArchivedObject & { outcome: ThawOutcome }>> {
  const deep = objects.filter((o) => o.storageClass === 'DEEP_ARCHIVE').length;
  if (options.tier === 'Expedited' && deep > 0)
    throw new InvalidInputError('thaw', [
      `--tier Expedited: ${deep} of the ${objects.length} archived object(s) are in DEEP_ARCHIVE, which S3 restores only at the Standard (within 12 hours) or Bulk (within 48 hours) tier; use --tier Standard or Bulk`,
    ]);
  return mapLimit(objects, CONCURRENCY, async (o) => {
    try {
      const out = await s3.send(
        new RestoreObjectCommand({
          Bucket: bucket,
          Key: o.key,
          ...(o.versionId ? { VersionId: o.versionId } : {}),
          RestoreRequest: { Days: options.days, GlacierJobParameters: { Tier: options.tier } },
        }),
      );
      const status = out.$metadata.httpStatusCode;
      return { ...o, outcome: status === 200 ? ('restored' as const) : ('requested' as const) };
    } catch (err) {
      if (
        isAwsError(err) &&
        (err.name === 'RestoreAlreadyInProgress' || err.$metadata.httpStatusCode === 409)
      )
        return { ...o, outcome: 'in-progress' as const };
      throw storageError(err, `requesting the restore of s3://${bucket}/${o.key}`);
    }
  });
}

/** The AWS CLI line that restores one archived object version. */
export function restoreObjectCommand(
  bucket: string,
  o: ArchivedObject,
  days: number,
  tier: ThawTier,
): string {
  return `aws s3api restore-object --bucket ${bucket} --key ${o.key}${o.versionId ? ` --version-id ${o.versionId}` : ''} --restore-request '{"Days":${days},"GlacierJobParameters":{"Tier":"${tier}"}}'`;
}

/**
 * Why a backup cannot be read now, for a refusal: how many of its objects are archived and in which
 * class, how many are being restored, the `infrahub-backup thaw` command and the AWS CLI equivalent
 * for the first object, how long a restore takes; at most 5 keys named.
 */
export function describeArchived(
  bucket: string,
  target: string,
  backupId: string,
  blocked: readonly ArchivedStatus[],
): string {
  const classes = [...new Set(blocked.map((b) => b.storageClass))].join(' and ');
  const inProgress = blocked.filter((b) => b.state === 'in-progress').length;
  const first = blocked[0];
  const named = blocked
    .slice(0, 5)
    .map(
      (b) => `${b.key} (${b.storageClass}, ${b.state === 'in-progress' ? 'being restored' : 'not restored'})`,
    )
    .join(', ');
  return [
    `${blocked.length} object(s) of backup ${backupId} of ${target} are in ${classes} (archived by retention.coldStorage) and cannot be read until restored${inProgress > 0 ? ` (${inProgress} being restored now)` : ''}: ${named}${blocked.length > 5 ? `, and ${blocked.length - 5} more` : ''}.`,
    `Restore them first: infrahub-backup thaw ${backupId} --target ${target} --days ${THAW_DEFAULT_DAYS} --tier Standard${first ? ` (one object with the AWS CLI: ${restoreObjectCommand(bucket, first, THAW_DEFAULT_DAYS, 'Standard')})` : ''};`,
    'GLACIER takes 3-5 hours at the Standard tier (1-5 minutes Expedited), DEEP_ARCHIVE up to 12 hours; run thaw again to see how far it is, then start this again.',
  ].join(' ');
}
