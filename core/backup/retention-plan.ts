/**
 * What the lifecycle rules will do to each backup, and what a changed policy would change, computed
 * before anyone deploys it (`infrahub-backup retention`). Pure: the caller reads each backup's tag and
 * class from S3 (cli/ops/retention.ts); nothing here touches S3.
 *
 * The rules are those infra/constructs/backup-bucket.ts builds from a policy (core/backup/retention.ts):
 * - a complete backup tagged with a class expires `expirationDays(policy)[class]` days after its
 *   objects were created, when the policy's count for that class is above 0; with a count of 0 the
 *   class has no rule, and backups already tagged with it are kept for ever (until deleted by hand);
 * - the newest complete backup of a target is tagged `newest`: no rule matches it, so it is kept while
 *   it is the newest; once the next backup is sealed it is tagged with its class, and since its age
 *   counts from its creation, it expires on that class's day, at the next lifecycle run if that day
 *   has passed;
 * - an incomplete backup keeps `pending` and expires after `incompleteDays`;
 * - the classes of `coldStorage` move to its storage class `afterDays` after creation (their files
 *   only, which the seal tags `backup-part=file`).
 * A day here is the one S3 acts on (lifecycleDay: creation time plus the days, rounded up to midnight
 * UTC). A backup's objects are written from its id's time until its manifest, usually within hours,
 * so the day is counted from the id's time: the day the first of its objects goes and the backup
 * stops being restorable. An imported backup's objects are written by the import, whatever its id
 * says: its day counts from its first object's creation (`written`). An expired object is kept `noncurrentVersionDays` more as a noncurrent
 * version (the rule `expire-noncurrent-versions`), the last day it can still be recovered: `purgedOn`.
 */
import type { Retention } from '../config/schema.js';
import {
  type ColdStorageClass,
  expirationDays,
  lifecycleDay,
  NEWEST,
  PENDING,
  type RetentionClass,
  RetentionClasses,
} from './retention.js';

/** What is known of one backup: from its id, its manifest's tag and its manifest. */
export interface BackupRetentionFacts {
  target: string;
  backupId: string;
  /** Its id's time (UTC): when its first objects were created. */
  created: Date;
  /**
   * When its first object was written, when that is later than its id's time: an imported backup's
   * objects are created by the import, and S3 Lifecycle counts their days from then.
   */
  written?: Date;
  /** Whether its manifest exists. */
  complete: boolean;
  /**
   * The `retention` tag of its manifest: a class, `newest`, or null when it carries none (sealed
   * without retention). Unset for an incomplete backup, whose objects carry `pending`.
   */
  tag?: string | null;
  /** The class its manifest records (`retention_class`). */
  retentionClass?: RetentionClass;
}

/** What the lifecycle does to a backup under one policy. */
export type RetentionFate =
  /**
   * Expires on `on` (ISO date, midnight UTC); `due`: that day has come, so at the next lifecycle run.
   * `purgedOn`: its noncurrent version goes, noncurrentVersionDays after `on` (after now when `due`).
   */
  | { kind: 'expires'; on: string; due: boolean; purgedOn: string }
  /**
   * The newest complete backup: kept while it is. Once superseded it expires on `onceSuperseded`
   * (its class's day, counted from its creation), at the next lifecycle run when `due`.
   */
  | { kind: 'kept-while-newest'; onceSuperseded?: string; due: boolean; why?: string }
  /** No rule matches it: kept until deleted by hand (`why`). */
  | { kind: 'never'; why: string };

/** One backup under one policy. */
export interface PlannedBackup {
  target: string;
  backupId: string;
  /** ISO time of its id. */
  created: string;
  complete: boolean;
  /** The tag the lifecycle sees: a class, `newest`, `pending`, or `none`. */
  tag: string;
  retentionClass?: RetentionClass;
  fate: RetentionFate;
  /** With coldStorage: when its files move and where (`done`: that day has come). */
  moves?: { to: ColdStorageClass; on: string; done: boolean };
}

const iso = (d: Date) => d.toISOString();

/** The day a class's objects created at `created` expire under `policy`, or why they never do. */
function classExpiry(cls: string, created: Date, policy: Retention): { on: Date } | { why: string } {
  if (!(RetentionClasses as readonly string[]).includes(cls))
    return { why: `no lifecycle rule matches the tag "${cls}"` };
  const c = cls as RetentionClass;
  if (policy[c] === 0)
    return {
      why: `retention.${c} is 0, so there is no rule for "${c}" backups: kept until deleted by hand`,
    };
  return { on: lifecycleDay(created, expirationDays(policy)[c]) };
}

/**
 * Each backup's fate under `policy` at `now`, in the order given.
 * @param backups what the bucket holds (BackupRetentionFacts)
 * @param policy a retention policy (validated: RetentionSchema)
 */
export function planRetention(
  backups: readonly BackupRetentionFacts[],
  policy: Retention,
  now: Date,
): PlannedBackup[] {
  return backups.map((b) => {
    // S3 counts from each object's creation: the id's time, or an import's later one.
    const from = b.written && b.written > b.created ? b.written : b.created;
    const tag = b.complete ? (b.tag ?? 'none') : PENDING;
    let fate: RetentionFate;
    if (tag === PENDING) {
      const on = lifecycleDay(from, policy.incompleteDays);
      fate = expires(on, now, policy);
    } else if (tag === NEWEST) {
      const cls = b.retentionClass;
      const later = cls ? classExpiry(cls, from, policy) : { why: 'its manifest records no class' };
      fate =
        'on' in later
          ? { kind: 'kept-while-newest', onceSuperseded: iso(later.on), due: later.on <= now }
          : { kind: 'kept-while-newest', due: false, why: later.why };
    } else if (tag === 'none') {
      fate = {
        kind: 'never',
        why: 'its manifest carries no retention tag (sealed without retention): no rule matches it',
      };
    } else {
      const e = classExpiry(tag, from, policy);
      fate = 'on' in e ? expires(e.on, now, policy) : { kind: 'never', why: e.why };
    }
    const cold = policy.coldStorage;
    const movesClass = tag !== NEWEST && tag !== PENDING && cold?.classes.includes(tag as RetentionClass);
    const moveOn = cold && movesClass ? lifecycleDay(from, cold.afterDays) : undefined;
    return {
      target: b.target,
      backupId: b.backupId,
      created: iso(b.created),
      complete: b.complete,
      tag,
      ...(b.retentionClass ? { retentionClass: b.retentionClass } : {}),
      fate,
      ...(cold && moveOn && (fate.kind !== 'expires' || moveOn < new Date(fate.on))
        ? { moves: { to: cold.storageClass, on: iso(moveOn), done: moveOn <= now } }
        : {}),
    };
  });
}

/**
 * An expiry on `on`. The expired object becomes noncurrent when S3 acts on it: on `on`, or, when that
 * day has passed (`due`: a previous newest re-tagged after its day, a shorter proposed policy), at the
 * next lifecycle run, from now on. Its noncurrent version is removed `noncurrentVersionDays` after
 * that (NoncurrentDays count from when an object becomes noncurrent: S3 User Guide, "Lifecycle
 * configuration elements"), so `purgedOn` counts from the later of the two.
 */
function expires(on: Date, now: Date, policy: Retention): RetentionFate {
  const due = on <= now;
  return {
    kind: 'expires',
    on: iso(on),
    due,
    purgedOn: iso(lifecycleDay(due ? now : on, policy.noncurrentVersionDays)),
  };
}

/** How a changed policy changes one backup's fate. */
export type PolicyEffect =
  /** It expires under the proposed policy on a day that has come: the next lifecycle run deletes it. */
  | 'deleted-at-next-run'
  /** It expires earlier than under the current policy (on a day still to come). */
  | 'expires-earlier'
  /** It expires later (or never did and now will, later than now). */
  | 'expires-later'
  /** It expired under the current policy but no proposed rule matches it: kept for ever. */
  | 'kept-for-ever'
  /** The newest: kept while it is; once superseded it goes on an earlier (or a passed) day. */
  | 'earlier-once-superseded'
  /** The newest: once superseded it goes later, or never. */
  | 'later-once-superseded'
  | 'unchanged';

/** One backup whose fate a proposed policy changes. */
export interface PolicyChange {
  target: string;
  backupId: string;
  tag: string;
  retentionClass?: RetentionClass;
  effect: Exclude<PolicyEffect, 'unchanged'>;
  current: RetentionFate;
  proposed: RetentionFate;
}

/** The day a fate ends the backup, or undefined for never. */
function endOf(fate: RetentionFate): string | undefined {
  if (fate.kind === 'expires') return fate.on;
  if (fate.kind === 'kept-while-newest') return fate.onceSuperseded;
  return undefined;
}

/**
 * The backups whose fate differs between `current` and `proposed` (both validated policies) at
 * `now`, in the order given; unchanged ones are left out. A backup the proposed policy expires on a
 * day that has passed is `deleted-at-next-run`: S3 acts on it at its next lifecycle run after the
 * deployment (asynchronously, usually within a day), with no other warning. The newest backup of a
 * target is never deleted while it is the newest; its effects say what happens once superseded.
 */
export function comparePolicies(
  backups: readonly BackupRetentionFacts[],
  current: Retention,
  proposed: Retention,
  now: Date,
): PolicyChange[] {
  const before = planRetention(backups, current, now);
  const after = planRetention(backups, proposed, now);
  const changes: PolicyChange[] = [];
  after.forEach((p, i) => {
    const c = before[i] as PlannedBackup;
    const effect = effectOf(c.fate, p.fate, now);
    if (effect === 'unchanged') return;
    changes.push({
      target: p.target,
      backupId: p.backupId,
      tag: p.tag,
      ...(p.retentionClass ? { retentionClass: p.retentionClass } : {}),
      effect,
      current: c.fate,
      proposed: p.fate,
    });
  });
  return changes;
}

function effectOf(current: RetentionFate, proposed: RetentionFate, now: Date): PolicyEffect {
  const was = endOf(current);
  const will = endOf(proposed);
  if (was === will) return 'unchanged';
  // Due under both: the next lifecycle run takes it either way.
  if (was !== undefined && will !== undefined && new Date(was) <= now && new Date(will) <= now)
    return 'unchanged';
  if (proposed.kind === 'kept-while-newest') {
    if (will !== undefined && (was === undefined || will < was)) return 'earlier-once-superseded';
    return 'later-once-superseded';
  }
  if (will === undefined) return 'kept-for-ever';
  if (new Date(will) <= now && (was === undefined || new Date(was) > now)) return 'deleted-at-next-run';
  if (was === undefined || will > was) return 'expires-later';
  return 'expires-earlier';
}
