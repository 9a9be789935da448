/**
 * Grandfather-father-son retention. When a backup completes it gets one retention class, a pure
 * function of its date and the complete backups already present: the first of its UTC year is
 * `yearly`, else the first of its month `monthly`, else the first of its ISO week (Monday to Sunday,
 * UTC) `weekly`, else `daily`; a class whose configured count is 0 is skipped. Every object of the
 * backup is tagged `retention=<class>`, and one lifecycle rule per class expires it after its count
 * of periods. Objects are uploaded tagged `retention=pending`: a backup that never completes is
 * expired by the `pending` rule instead of staying forever.
 */
import type { Retention } from '../config/schema.js';

export const RETENTION_TAG = 'retention';
export const RetentionClasses = ['daily', 'weekly', 'monthly', 'yearly'] as const;
export type RetentionClass = (typeof RetentionClasses)[number];
/** The tag value of objects whose backup has not completed (yet). */
export const PENDING = 'pending';
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
