/**
 * Sealing a backup: what makes its objects a complete backup, done once for every way a backup is
 * made (the manifest step after the runner's components, and the import of an infrahub-backup
 * tarball). The backup is classified against the target's complete backups already present
 * (core/backup/retention.ts), every object it holds re-tagged from "pending" to that class, and only
 * then its manifest written, last: its presence is what marks the backup complete, so a backup
 * interrupted before this point stays incomplete and its "pending" objects expire.
 *
 * Why per object, at the end: S3 lifecycle rules act on each object alone, by its key prefix, size
 * and tags (S3 User Guide, "Lifecycle configuration elements"); no rule can ask whether a backup's
 * manifest exists. An object tagged with its class when uploaded would live its class's time (up to
 * `yearly` x 366 days) even if its backup never completed; tagged "pending" it expires after
 * `incompleteDays` unless something changes its tag, and only the seal knows the backup is complete.
 * So sealing costs one PutObjectTagging per object (50,000 for an artifact store of 50,000 files).
 * When that cannot finish in the caller's time (`secondsLeft`, the manifest Lambda's), the seal
 * stops early, tags what it had tagged "pending" again and fails naming the rate: the backup stays
 * incomplete and expires as one, instead of being cut off by the Lambda's timeout half re-tagged.
 *
 * Keep the newest (core/backup/retention.ts): a backup that is the newest complete one of its target
 * is tagged `newest` instead of its class (the class goes into its manifest), so no lifecycle rule
 * expires it however long backups stop. Once its manifest is written, the backups that were the
 * newest before it (normally one) are tagged with their classes, their files and records first,
 * their manifest last; their age counts from their objects' creation, so they then expire on their
 * class's schedule (at once when it has passed). Seals of one target are serialized by the target's
 * lock (core/backup/lock.ts; an import, which takes no lock, is the exception, see sealBackup). That
 * re-tagging never fails the new backup, which is complete by then: the SDK retries each request
 * (SEAL_CLIENT), and a previous newest that still cannot be re-tagged keeps `newest` on its manifest
 * (so it does not expire early either) and is named in the seal's `warnings` (the success notice).
 * The next seal of the target finds it again: it walks down from the newest complete backup while
 * the manifests carry `newest` (one GetObjectTagging each, two in the usual case) and re-tags them
 * oldest first, stopping at the first that fails, so those left behind always lie just below the
 * newest. Cost: the previous newest backup's objects are tagged once more, one PutObjectTagging
 * each, so a seal sends twice as many tagging requests as before (about $0.005 per 1,000 in
 * us-east-1: a 5-object backup 11 instead of 5, one of 50,000 files 100,000 instead of 50,000).
 * Object Lock does not stand in the way: it protects versions, and tags are not part of a version's
 * locked data (S3 User Guide, "Locking objects with Object Lock").
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Retention } from '../config/schema.js';
import { IncompleteBackupError, ManifestError, StorageError } from '../errors.js';
import { listCurrentVersions, putJson } from '../s3/objects.js';
import {
  completeBackupDatesIn,
  isComplete,
  isFutureBackupId,
  listBackupIds,
  manifestRetentionTag,
  type TaggedObject,
  type TagRun,
  tagObjects,
} from './catalog.js';
import { backupPrefix, manifestKey, parseBackupId, RESULTS_DIR, resultKey } from './layout.js';
import { type Manifest, readManifest, validateManifest } from './manifest.js';
import { buildManifest, type ComponentResults, type ManifestInput, readResults } from './manifest-build.js';
import {
  expirationDays,
  NEWEST,
  PENDING,
  RETENTION_TAG,
  type RetentionClass,
  retentionClass,
} from './retention.js';
import { describeProblems, verifyAgainst } from './verify.js';

/**
 * PutObjectTagging requests at once when a backup's objects are classified: under the SDK's 50
 * sockets per host (@smithy/node-http-handler's default `maxSockets`), so none waits for a socket,
 * and far under S3's 3,500 PUT requests per second per prefix at any latency above 14 ms (S3 User
 * Guide, "Best practices design patterns: optimizing Amazon S3 performance"). A 503 SlowDown is
 * retried by the client, with backoff (SEAL_CLIENT).
 */
export const TAG_CONCURRENCY = 48;

/**
 * How the client that seals is built (the manifest function's; createS3Client options): the SDK's
 * standard retry mode, five attempts. Each throttled call (503 SlowDown) waits alone, with
 * exponential backoff and jitter (the SDK's throttling delay), while the others go on:
 * TAG_CONCURRENCY bounds the rate. Adaptive mode (the product's default) slows the whole client
 * instead, its rate cut by 0.7 at every throttled answer: with 40 SlowDown answers after the first
 * 1,000 of 2,000 tags it took 24 to 39 s and once failed a tag, standard mode 14 to 17 s
 * (`BENCH_ONLY=verify-scale npm run bench`, (e); busy 2-core machine).
 */
export const SEAL_CLIENT = { retryMode: 'standard', maxAttempts: 5 } as const;

/**
 * Share of the caller's time (`SealOptions.secondsLeft`) in which the re-tagging must be projected to
 * end; the rest is kept to tag "pending" again what was tagged when it cannot.
 */
export const TAG_TIME_SHARE = 0.9;

/** An S3 object version of the backup that is not one of the manifest's files (a `.runner/` record). */
export interface SealedRecord {
  key: string;
  versionId?: string | undefined;
}

export interface SealOptions {
  target: string;
  backupId: string;
  /** The deployment's retention policy; without it the backup keeps no class and its objects are not re-tagged. */
  retention?: Retention | undefined;
  /**
   * Objects of the backup besides the manifest's files (`manifest.s3`): the runner's component
   * results or an import's record. They are tagged with the files; anything not listed (a stray
   * failure record) keeps "pending" and expires.
   */
  records?: readonly SealedRecord[];
  /**
   * Seconds the caller may still spend, from now (the manifest Lambda's remaining time less its
   * margin for the manifest's PUT). The re-tagging must be projected to end within TAG_TIME_SHARE of
   * it. Unset: no bound (the CLI's import, the local mode).
   */
  secondsLeft?: () => number;
  /** PutObjectTagging requests at once (default TAG_CONCURRENCY). */
  tagConcurrency?: number;
}

/** The re-tagging of a sealed backup: objects tagged and how long it took. */
export interface TaggingStats {
  objects: number;
  ms: number;
}

/** The previous newest backup re-tagged with its class, or left `newest` (with why) by a seal. */
export interface Demotion {
  backupId: string;
  retentionClass?: RetentionClass;
  /** Objects tagged with the class (files and records; the manifest is counted in `manifest`). */
  objects: number;
  /** Whether its manifest was tagged too: only then does the backup count as re-tagged. */
  manifest: boolean;
  /** Why it is still (partly) tagged `newest`. */
  problem?: string;
}

/**
 * Seals a backup whose files are all in S3 and checked: with `retention`, classifies it against the
 * target's complete backups of the same year, tags every file of `manifest.s3` and every record with
 * the class, or with `newest` when no complete backup of the target is later than it (one
 * PutObjectTagging per object version, `tagConcurrency` at once: see the top of this file), records
 * the class as `retention_class`; then writes `TARGET/BACKUP_ID/backup_information.json` with
 * infrahub-backup's formatting (4-space indent), tagged like the files; then, when it is the newest,
 * re-tags the target's previous newest backups with their classes (see the top of this file). The
 * manifest must have been validated for this location (`validateManifest(manifest, …, { target,
 * backupId })`) and its files checked by the caller. When the tagging fails or cannot end in time, or
 * the manifest cannot be written after it,
 * the objects already tagged are tagged "pending" again (as many as the time allows) and no manifest
 * is written. The caller holds the target's lock (the manifest step does; an import does not, so an
 * import sealed at the same time as a backup of the same target may leave both tagged `newest`,
 * which the next seal puts right).
 *
 * @returns the sealed manifest (a copy, with `retention_class` when classified), its key and version
 *   id, the re-tagging's count and duration (with retention), whether it is now the newest, the
 *   previous newest backups it re-tagged or could not (`demoted`) and a line for each that failed
 *   (`warnings`)
 * @throws StorageError when S3 cannot be listed, tagged or written (the manifest is then not written)
 * @throws IncompleteBackupError when the re-tagging is projected past `secondsLeft` (its rate, what
 *   was undone)
 */
export async function sealBackup(
  s3: S3Client,
  bucket: string,
  manifest: Manifest,
  options: SealOptions,
): Promise<{
  manifest: Manifest;
  key: string;
  versionId?: string;
  retentionClass?: RetentionClass;
  tagging?: TaggingStats;
  newest?: boolean;
  demoted?: Demotion[];
  warnings: string[];
}> {
  const sealed: Manifest = { ...manifest };
  const start = Date.now();
  const end = options.secondsLeft ? start + Math.max(0, options.secondsLeft()) * 1000 : undefined;
  let tagging: string | undefined;
  let stats: TaggingStats | undefined;
  let newest = false;
  let previous: PreviousNewest[] = [];
  let undoAll: ((cause: unknown) => Promise<never>) | undefined;
  let lookup: string | undefined;
  if (options.retention) {
    const date = parseBackupId(options.backupId);
    if (!date) throw new ManifestError(`${options.backupId} is not a backup id: cannot classify it`);
    // One listing of the target's backups serves the class, the newest check and the walk.
    const ids = await listBackupIds(s3, bucket, options.target);
    const present = await completeBackupDatesIn(s3, bucket, options.target, date.getUTCFullYear(), ids);
    const cls = retentionClass(date, present, options.retention);
    sealed.retention_class = cls;
    newest = await isNewest(s3, bucket, options.target, options.backupId, ids);
    if (newest) {
      // Looking for the previous newest reads other backups: S3 failing there must not fail this
      // backup, which does not depend on them (nothing is re-tagged then, and the next seal looks again).
      try {
        previous = await previousNewest(s3, bucket, options.target, options.backupId, ids);
      } catch (err) {
        if (!(err instanceof StorageError)) throw err;
        lookup = `could not look for the previous newest backup of ${options.target} (${err.message}): a backup still tagged "${NEWEST}" below this one keeps that tag, and does not expire, until the next seal of ${options.target} finds it`;
      }
    }
    const files = Object.values(manifest.s3 ?? {}).map((f) => ({
      key: f.key,
      versionId: f.version_id,
      file: true,
    }));
    const objects = [...files, ...(options.records ?? [])];
    const later = previous.reduce((n, p) => n + p.objects.length + 1, 0);
    const value = newest ? NEWEST : cls;
    stats = await retag(s3, bucket, objects, value, cls, options.retention, options, {
      start,
      end,
      share: TAG_TIME_SHARE * (objects.length / Math.max(1, objects.length + later)),
      later,
    });
    tagging = `${RETENTION_TAG}=${value}`;
    const retention = options.retention;
    // Every object carries the class (or "newest") now: a manifest that cannot be written must not
    // leave them so (kept a year, or for ever, instead of expiring as an incomplete backup).
    undoAll = async (cause) => {
      const all = objects.map((_, i) => i);
      throw withUndone(
        cause,
        `backup ${options.backupId} of ${options.target}`,
        await undoTagging(s3, bucket, objects, all, value, cls, retention, options, end),
      );
    };
  }
  const key = manifestKey(options.target, options.backupId);
  let written: Awaited<ReturnType<typeof putJson>>;
  try {
    written = await putJson(s3, bucket, key, sealed, 4, tagging);
  } catch (err) {
    if (undoAll) await undoAll(err);
    throw err;
  }
  const demoted =
    previous.length > 0
      ? await demote(s3, bucket, options.target, previous, {
          concurrency: options.tagConcurrency ?? TAG_CONCURRENCY,
          ...(end !== undefined ? { deadline: end } : {}),
        })
      : [];
  const warnings = [
    ...(lookup ? [lookup] : []),
    ...demoted
      .filter((d) => d.problem)
      .map(
        (d) =>
          `the previous newest backup ${d.backupId} of ${options.target} is still tagged "${NEWEST}"${d.objects > 0 ? ` (${d.objects} of its objects were re-tagged "${d.retentionClass}", its manifest was not)` : ''}: ${d.problem}; it does not expire until it is re-tagged, which the next backup of ${options.target} tries again`,
      ),
  ];
  return {
    manifest: sealed,
    key,
    ...(written.versionId ? { versionId: written.versionId } : {}),
    ...(sealed.retention_class ? { retentionClass: sealed.retention_class } : {}),
    ...(stats ? { tagging: stats } : {}),
    ...(options.retention ? { newest } : {}),
    ...(demoted.length > 0 ? { demoted } : {}),
    warnings,
  };
}

/**
 * Whether no complete backup of `target` has a later id than `backupId` (ids sort by time, UTC): one
 * listing and a HEAD per later backup folder, usually none. Backups dated in the future (more than
 * CLOCK_SKEW_MS ahead of this clock) do not count: they are never `latest` either.
 */
async function isNewest(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
  ids: readonly string[],
): Promise<boolean> {
  const now = new Date();
  const later = ids.filter((id) => id > backupId && !isFutureBackupId(id, now));
  for (const id of later.reverse()) if (await isComplete(s3, bucket, target, id)) return false;
  return true;
}

/** A backup still tagged `newest` below the one being sealed, and the objects to re-tag. */
interface PreviousNewest {
  backupId: string;
  retentionClass?: RetentionClass;
  /** Its files (manifest `s3`) and `.runner/` records; the manifest is tagged after them. */
  objects: TaggedObject[];
  /** Why it cannot be re-tagged (a refused manifest, no class recorded). */
  problem?: string;
}

/**
 * The complete backups of `target` older than `backupId` whose manifests are tagged `newest`, oldest
 * first: the walk goes down from `backupId` and stops at the first complete backup whose manifest
 * carries anything else (a class, or no tag). Usually one (the previous newest); more when an earlier
 * seal could not re-tag it. Each is read: its manifest (its class and files) and its `.runner/`
 * records (one ListObjectVersions request).
 */
async function previousNewest(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
  ids: readonly string[],
): Promise<PreviousNewest[]> {
  const found: PreviousNewest[] = [];
  const earlier = ids.filter((id) => id < backupId).reverse();
  for (const id of earlier) {
    const tag = await manifestRetentionTag(s3, bucket, target, id);
    if (tag === undefined) continue; // incomplete: its objects keep "pending"
    if (tag !== NEWEST) break;
    found.push(await toDemote(s3, bucket, target, id));
  }
  return found.reverse();
}

async function toDemote(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
): Promise<PreviousNewest> {
  let manifest: Manifest | undefined;
  try {
    manifest = await readManifest(s3, bucket, target, backupId);
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    return { backupId, objects: [], problem: `its manifest is refused: ${err.message}` };
  }
  const cls = manifest?.retention_class;
  if (!manifest || !cls)
    return { backupId, objects: [], problem: 'its manifest records no retention_class to re-tag it with' };
  const prefix = backupPrefix(target, backupId);
  const records = [...(await listCurrentVersions(s3, bucket, `${prefix}${RESULTS_DIR}`)).values()]
    .filter((v) => v.key.endsWith('.json') && !v.key.endsWith('.error.json'))
    .map((v) => ({ key: v.key, versionId: v.versionId }));
  const files = Object.values(manifest.s3 ?? {}).map((f) => ({
    key: f.key,
    versionId: f.version_id,
    file: true,
  }));
  return { backupId, retentionClass: cls, objects: [...files, ...records] };
}

/**
 * Tags each previous newest backup with its class, oldest first: files and records, then its
 * manifest. Stops at the first that fails or runs out of time (the rest keep `newest` on their
 * manifests and lie just below the newest, where the next seal finds them). Never throws for S3's
 * answers: what failed is in each Demotion's `problem`.
 */
async function demote(
  s3: S3Client,
  bucket: string,
  target: string,
  previous: readonly PreviousNewest[],
  options: { concurrency: number; deadline?: number },
): Promise<Demotion[]> {
  const done: Demotion[] = [];
  for (const p of previous) {
    const cls = p.retentionClass;
    if (!cls || p.problem) {
      done.push({ backupId: p.backupId, objects: 0, manifest: false, problem: p.problem ?? 'no class' });
      break;
    }
    const tagOptions = {
      concurrency: options.concurrency,
      ...(options.deadline !== undefined ? { deadline: options.deadline, stopWhenBehind: false } : {}),
    };
    const run = await tagObjects(s3, bucket, p.objects, cls, tagOptions);
    const why = failure(run, p.objects.length);
    if (why) {
      done.push({
        backupId: p.backupId,
        retentionClass: cls,
        objects: run.tagged,
        manifest: false,
        problem: why,
      });
      break;
    }
    const last = await tagObjects(s3, bucket, [{ key: manifestKey(target, p.backupId) }], cls, tagOptions);
    const lastWhy = failure(last, 1);
    done.push({
      backupId: p.backupId,
      retentionClass: cls,
      objects: run.tagged,
      manifest: !lastWhy,
      ...(lastWhy ? { problem: `its manifest: ${lastWhy}` } : {}),
    });
    if (lastWhy) break;
  }
  return done;
}

/** Why a tagging run did not tag every object, or undefined when it did. */
function failure(run: TagRun, total: number): string | undefined {
  if (run.failed > 0)
    return `re-tagging failed ${run.failed} time(s) after the client's retries, first: ${run.error instanceof Error ? run.error.message : String(run.error)}`;
  if (run.stopped || run.tagged < total)
    return `the manifest step's time ran out after ${run.tagged} of ${total} object(s)`;
  return undefined;
}

/**
 * Tags every object with `value` (the class, or `newest`); when that stops before the end (a
 * failure, or the time given too short at the rate S3 answers), tags what was started "pending"
 * again within the time left, then throws naming what happened and what still carries the value.
 * `budget.share` of the time up to `budget.end` is this backup's (the rest is for re-tagging the
 * `budget.later` objects of the previous newest backups after the manifest is written).
 */
async function retag(
  s3: S3Client,
  bucket: string,
  objects: readonly TaggedObject[],
  value: string,
  cls: RetentionClass,
  retention: Retention,
  options: SealOptions,
  budget: { start: number; end: number | undefined; share: number; later: number },
): Promise<TaggingStats> {
  const concurrency = options.tagConcurrency ?? TAG_CONCURRENCY;
  const { start, end } = budget;
  const run = await tagObjects(s3, bucket, objects, value, {
    concurrency,
    ...(end !== undefined ? { deadline: start + (end - start) * budget.share } : {}),
  });
  if (!run.stopped && run.failed === 0) return { objects: objects.length, ms: run.ms };

  const undone = await undoTagging(s3, bucket, objects, run.mayCarry, value, cls, retention, options, end);
  const what = `backup ${options.backupId} of ${options.target}`;
  if (run.stopped === 'failed' || run.failed > 0) throw withUndone(run.error, what, undone);
  const tagged =
    value === NEWEST
      ? `"${NEWEST}" (it is the newest complete backup; its class is "${cls}")`
      : `its retention class "${cls}"`;
  throw new IncompleteBackupError(
    `re-tagging the ${objects.length} objects of ${what} with ${tagged} could not end within the manifest step's time: ${describeRate(run, objects.length, end === undefined ? 0 : end - start, budget)}; no manifest written; ${undone}`,
  );
}

/**
 * Tags the objects at `indices` "pending" again, as far as the time up to `end` allows and past any
 * failure (every object left with `value`, the class or "newest", outlives an incomplete backup's
 * expiry); returns a sentence saying what was undone and what may still carry `value`. Best effort:
 * an S3 slower still than during the tagging may leave some with it, and the sentence names how many.
 */
async function undoTagging(
  s3: S3Client,
  bucket: string,
  objects: readonly TaggedObject[],
  indices: readonly number[],
  value: string,
  cls: RetentionClass,
  retention: Retention,
  options: SealOptions,
  end: number | undefined,
): Promise<string> {
  const undo = await tagObjects(
    s3,
    bucket,
    indices.map((i) => objects[i] as TaggedObject),
    PENDING,
    {
      concurrency: options.tagConcurrency ?? TAG_CONCURRENCY,
      keepGoing: true,
      ...(end !== undefined ? { deadline: end, stopWhenBehind: false } : {}),
    },
  );
  const left = indices.length - undo.tagged;
  const lifetime =
    value === NEWEST
      ? 'those never expire (no lifecycle rule matches it): delete them by hand'
      : `those expire with that class, ${expirationDays(retention)[cls]} days after they were written, not as an incomplete backup's`;
  return indices.length === 0
    ? `no object had been tagged: the backup expires as an incomplete one (retention.incompleteDays)`
    : left === 0
      ? `the ${indices.length} object(s) it had tagged were tagged "${PENDING}" again: the backup expires as an incomplete one (retention.incompleteDays)`
      : `${left} of the ${indices.length} object(s) it had tagged may still carry "${value}" (tagging them "${PENDING}" again ${undoEnd(undo)}): ${lifetime}`;
}

/** The error `cause` with the undo's sentence: a StorageError stays one (retried), others are rethrown as they are. */
function withUndone(cause: unknown, what: string, undone: string): unknown {
  const message = `${cause instanceof Error ? cause.message : String(cause)}\nno manifest written for ${what}; ${undone}`;
  if (cause instanceof StorageError) return new StorageError(message, { cause });
  if (cause instanceof Error) {
    cause.message = message;
    return cause;
  }
  return new StorageError(message, { cause });
}

/** "12,000 tagged in 80 s (150/s): all 50,000 need about 333 s, 300 s were given". */
function describeRate(
  run: TagRun,
  total: number,
  givenMs: number,
  budget: { share: number; later: number },
): string {
  const perSecond = run.ms > 0 ? (run.tagged * 1000) / run.ms : 0;
  const need =
    perSecond > 0 ? `all ${total} need about ${Math.ceil(total / perSecond)} s` : 'none was answered';
  const share =
    budget.later > 0
      ? `${Math.round(budget.share * 100)}% of them for tagging this backup, the rest kept for re-tagging the ${budget.later} objects of the previous newest backup`
      : `${Math.round(budget.share * 100)}% of them for tagging`;
  return `${run.tagged} tagged in ${(run.ms / 1000).toFixed(1)} s (${perSecond.toFixed(0)}/s): ${need}, ${Math.floor(givenMs / 1000)} s were given (${share})`;
}

function undoEnd(undo: TagRun): string {
  const failed =
    undo.failed > 0
      ? `failed ${undo.failed} time(s), first: ${undo.error instanceof Error ? undo.error.message : String(undo.error)}`
      : '';
  const late = undo.stopped === 'deadline' ? 'ran out of time' : '';
  return [failed, late].filter(Boolean).join('; and ');
}

/**
 * The manifest step: reads the component results, builds the manifest, validates it as every reader
 * will, checks with S3 (a listing of the backup's versions, not bodies; core/backup/verify.ts) that
 * every recorded file is there as recorded, and only then seals the backup (`sealBackup`: classified,
 * re-tagged, the manifest written last). Nothing is written when anything is missing.
 *
 * @param options.secondsLeft the caller's time from now, in seconds (see SealOptions.secondsLeft)
 * @returns with retention, `tagging`: objects re-tagged and the milliseconds it took; `newest`,
 *   `demoted` and `warnings` as sealBackup
 * @throws IncompleteBackupError naming what is missing, malformed or different from the results, or
 *   a re-tagging that could not end in `secondsLeft`
 * @throws StorageError when S3 fails
 */
export async function writeManifest(
  s3: S3Client,
  bucket: string,
  input: ManifestInput,
  options: { secondsLeft?: () => number } = {},
): Promise<{
  manifest: Manifest;
  key: string;
  versionId?: string;
  results: ComponentResults;
  tagging?: TaggingStats;
  newest?: boolean;
  demoted?: Demotion[];
  warnings: string[];
}> {
  const results = await readResults(s3, bucket, input.target, input.backupId);
  const manifest = buildManifest(input, results);
  // What every reader will check, checked before anything is written (an artifact key that makes an
  // unsafe path, a component without its files): no manifest that its own readers would refuse.
  try {
    validateManifest(manifest, `manifest of ${input.target}/${input.backupId}`, input);
  } catch (err) {
    if (err instanceof ManifestError) throw new IncompleteBackupError(`${err.message}\nno manifest written`);
    throw err;
  }
  const report = await verifyAgainst(s3, bucket, input.target, input.backupId, manifest);
  if (!report.ok) {
    throw new IncompleteBackupError(
      `backup ${input.backupId} of ${input.target} does not match its component results; no manifest written:\n` +
        describeProblems(report).join('\n'),
    );
  }
  // The component results just read are part of the backup too.
  const records = Object.keys(results).map((name) => ({
    key: resultKey(input.target, input.backupId, name),
  }));
  const sealed = await sealBackup(s3, bucket, manifest, {
    target: input.target,
    backupId: input.backupId,
    retention: input.retention,
    records,
    ...(options.secondsLeft ? { secondsLeft: options.secondsLeft } : {}),
  });
  return {
    manifest: sealed.manifest,
    key: sealed.key,
    ...(sealed.versionId ? { versionId: sealed.versionId } : {}),
    results,
    ...(sealed.tagging ? { tagging: sealed.tagging } : {}),
    ...(sealed.newest !== undefined ? { newest: sealed.newest } : {}),
    ...(sealed.demoted ? { demoted: sealed.demoted } : {}),
    warnings: sealed.warnings,
  };
}
