/**
 * Grandfather-father-son retention. When a backup completes it gets one retention class, a pure
 * function of its date and the complete backups already present: the first of its UTC year is
 * `yearly`, else the first of its month `monthly`, else the first of its ISO week (Monday to Sunday,
 * UTC) `weekly`, else `daily`; a class whose configured count is 0 is skipped. Every object of the
 * backup is tagged `retention=<class>`, and one lifecycle rule per class expires it after its count
 * of periods. Objects are uploaded tagged `retention=pending`: a backup that never completes is
 * expired by the `pending` rule instead of staying forever.
 *
 * Keep the newest: lifecycle rules see one object at a time and know nothing of the other backups
 * (S3 User Guide, "Lifecycle configuration elements": a rule filters by key prefix, object tags and
 * size), so a target whose backups stop would lose its dailies one by one until none is left. The
 * newest complete backup of each target is therefore tagged `retention=newest`, a value no rule
 * matches, and keeps its real class in its manifest (`retention_class`); when the next backup of the
 * target is sealed, the previous newest is tagged with its class (core/backup/seal.ts). Its age
 * still counts from its objects' creation, so it then expires on its class's schedule, at once if
 * that has passed.
 *
 * Colder storage (`coldStorage`): the rules of the chosen classes also move their objects to a
 * colder S3 storage class some days after creation. The newest backup matches no rule, so it neither
 * expires nor moves while it is the newest: the backup a restore takes by default stays in Standard.
 */
import type { Retention } from '../config/schema.js';

export const RETENTION_TAG = 'retention';
export const RetentionClasses = ['daily', 'weekly', 'monthly', 'yearly'] as const;
export type RetentionClass = (typeof RetentionClasses)[number];
/** The tag value of objects whose backup has not completed (yet). */
export const PENDING = 'pending';
/**
 * The tag value of the newest complete backup of a target: no lifecycle rule matches it, so it never
 * expires (nor moves to colder storage) while it is the newest; its class is in its manifest.
 */
export const NEWEST = 'newest';
/**
 * The second tag the seal puts on a backup's files (the manifest's `s3` objects), never on its
 * manifest or `.runner/` records: the cold-storage rules match it, so only files move to colder
 * storage and every manifest stays readable without a restore (infra/constructs/backup-bucket.ts).
 */
export const FILE_TAG = { key: 'backup-part', value: 'file' } as const;
/** The Tagging header (URL-encoded query form) for uploads of a backup in progress. */
export const PENDING_TAGGING = `${RETENTION_TAG}=${PENDING}`;

const DAY_MS = 86_400_000;

/** Monday 00:00 UTC of the ISO week that holds `date`. */
function weekStart(date: Date): number {
  const day = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
  const weekday = (new Date(day).getUTCDay() + 6) % 7; // Monday 0 ... Sunday 6
  return day - weekday * DAY_MS;
}

/** The class of a backup taken at `date`, given the dates of the complete backups already present. */
export function retentionClass(date: Date, present: readonly Date[], retention: Retention): RetentionClass {
  const earlier = present.filter((p) => p.getTime() !== date.getTime());
  const sameYear = earlier.filter((p) => p.getUTCFullYear() === date.getUTCFullYear());
  if (retention.yearly > 0 && sameYear.length === 0) return 'yearly';
  const sameMonth = sameYear.filter((p) => p.getUTCMonth() === date.getUTCMonth());
  if (retention.monthly > 0 && sameMonth.length === 0) return 'monthly';
  const sameWeek = earlier.filter((p) => weekStart(p) === weekStart(date));
  if (retention.weekly > 0 && sameWeek.length === 0) return 'weekly';
  return 'daily';
}

/**
 * Days after which the lifecycle expires each class: enough to keep `count` periods of that class
 * (a month counted as 31 days, a year as 366, so a class never expires early).
 */
export function expirationDays(retention: Retention): Record<RetentionClass, number> {
  return {
    daily: retention.daily,
    weekly: retention.weekly * 7,
    monthly: retention.monthly * 31,
    yearly: retention.yearly * 366,
  };
}

/** The Tagging header value for a class. */
export function retentionTagging(cls: RetentionClass): string {
  return `${RETENTION_TAG}=${cls}`;
}

/**
 * The S3 storage classes a lifecycle rule may move backups to (S3 API Reference, "Transition":
 * StorageClass; Reduced Redundancy and Standard are no transition targets).
 */
export const ColdStorageClasses = [
  'GLACIER_IR',
  'GLACIER',
  'DEEP_ARCHIVE',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
] as const;
export type ColdStorageClass = (typeof ColdStorageClasses)[number];

/**
 * Storage classes whose objects must be restored (RestoreObject) before GetObject can read them: S3
 * Glacier Flexible Retrieval and Deep Archive (S3 User Guide, "Working with archived objects"). S3
 * Glacier Instant Retrieval, the IA classes and Intelligent-Tiering's automatic tiers are read as
 * they are (its optional archive tiers are not configured here).
 */
export const ARCHIVE_STORAGE_CLASSES: ReadonlySet<string> = new Set(['GLACIER', 'DEEP_ARCHIVE']);

/**
 * The least `Days` S3 accepts for a transition to each class: Standard-IA and One Zone-IA only
 * after an object's first 30 days, the others from day 0 (S3 API Reference, "Transition": Days;
 * S3 User Guide, "Transitioning objects using Amazon S3 Lifecycle", constraints).
 */
export const MIN_TRANSITION_DAYS: Record<ColdStorageClass, number> = {
  GLACIER_IR: 0,
  GLACIER: 0,
  DEEP_ARCHIVE: 0,
  STANDARD_IA: 30,
  ONEZONE_IA: 30,
  INTELLIGENT_TIERING: 0,
};

/**
 * Minimum storage duration S3 bills for each class, in days: an object deleted sooner is billed for
 * the rest (S3 User Guide, "Comparing the Amazon S3 storage classes"; Intelligent-Tiering has none).
 */
export const MIN_STORAGE_DAYS: Record<ColdStorageClass, number> = {
  GLACIER_IR: 90,
  GLACIER: 90,
  DEEP_ARCHIVE: 180,
  STANDARD_IA: 30,
  ONEZONE_IA: 30,
  INTELLIGENT_TIERING: 0,
};

/**
 * What is wrong with `retention.coldStorage`, each with its path below `coldStorage` and a message
 * naming the rule it breaks; empty when there is nothing to say (or no coldStorage):
 * - `afterDays` under the class's least transition day (Standard-IA, One Zone-IA: 30), which S3
 *   refuses in the lifecycle configuration;
 * - a class in `classes` whose count is 0: it has no lifecycle rule to carry the transition;
 * - a class that expires on or before `afterDays`: S3 refuses a rule whose expiration does not
 *   come after its transition ("'Days' in the Expiration action ... must be greater than 'Days' in
 *   the Transition action");
 * - a class whose objects would stay in the storage class for less than its minimum storage
 *   duration (MIN_STORAGE_DAYS): from `afterDays` to its expiration plus `noncurrentVersionDays`
 *   (an expired object stays that long as a noncurrent version, in the same class). S3 accepts it
 *   but bills the minimum anyway (an early-deletion charge): weekly backups kept 4 weeks would pay
 *   90 days of Glacier for 35 days of use. Refused so that nobody pays for storage time no backup
 *   gets; leave that class in Standard or keep it longer.
 */
export function coldStorageProblems(retention: Retention): Array<{ path: PropertyKey[]; message: string }> {
  const cold = retention.coldStorage;
  if (!cold) return [];
  const problems: Array<{ path: PropertyKey[]; message: string }> = [];
  const least = MIN_TRANSITION_DAYS[cold.storageClass];
  if (cold.afterDays < least)
    problems.push({
      path: ['afterDays'],
      message: `(${cold.afterDays}) is too early for ${cold.storageClass}: S3 moves objects to ${cold.storageClass} only ${least} days or more after their creation (S3 API Reference, "Transition": Days); set afterDays to at least ${least}`,
    });
  const expires = expirationDays(retention);
  cold.classes.forEach((cls, i) => {
    if (retention[cls] === 0) {
      problems.push({
        path: ['classes', i],
        message: `"${cls}": retention.${cls} is 0, so there are no ${cls} backups and no lifecycle rule to move them; remove it from coldStorage.classes`,
      });
      return;
    }
    if (expires[cls] <= cold.afterDays) {
      problems.push({
        path: ['classes', i],
        message: `"${cls}": ${cls} backups expire ${expires[cls]} days after creation, not later than afterDays (${cold.afterDays}): S3 refuses a lifecycle rule whose expiration does not come after its transition; lower afterDays or leave ${cls} out`,
      });
      return;
    }
    const stay = expires[cls] + retention.noncurrentVersionDays - cold.afterDays;
    const minimum = MIN_STORAGE_DAYS[cold.storageClass];
    if (stay < minimum)
      problems.push({
        path: ['classes', i],
        message: `"${cls}": ${cls} backups would stay ${stay} days in ${cold.storageClass} (from day ${cold.afterDays} to their expiration on day ${expires[cls]}, plus ${retention.noncurrentVersionDays} noncurrentVersionDays), but S3 bills ${cold.storageClass} for at least ${minimum} days (minimum storage duration): they would cost more there than the days they are kept; leave ${cls} out of coldStorage.classes, lower afterDays, or keep ${cls} backups longer`,
      });
  });
  return problems;
}

const DAY = 86_400_000;

/**
 * The day S3 Lifecycle acts on an object `days` after `created`: S3 adds the days to the object's
 * creation time and rounds the result up to the next midnight UTC (S3 User Guide, "Lifecycle
 * configuration elements": "Lifecycle rules: based on an object's age"). The action itself runs
 * asynchronously from then on, usually the same day.
 */
export function lifecycleDay(created: Date, days: number): Date {
  const at = created.getTime() + days * DAY;
  return new Date(Math.ceil(at / DAY) * DAY);
}
