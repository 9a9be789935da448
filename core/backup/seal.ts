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
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Retention } from '../config/schema.js';
import { IncompleteBackupError, ManifestError, StorageError } from '../errors.js';
import { putJson } from '../s3/objects.js';
import { completeBackupDatesIn, type TagRun, tagObjects } from './catalog.js';
import { manifestKey, parseBackupId, resultKey } from './layout.js';
import { type Manifest, validateManifest } from './manifest.js';
import { buildManifest, type ComponentResults, type ManifestInput, readResults } from './manifest-build.js';
import {
  expirationDays,
  PENDING,
  type RetentionClass,
  retentionClass,
  retentionTagging,
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

/**
 * Seals a backup whose files are all in S3 and checked: with `retention`, classifies it against the
 * target's complete backups of the same year, tags every file of `manifest.s3` and every record with
 * the class (one PutObjectTagging per object version, `tagConcurrency` at once: see the top of this
 * file), records the class as `retention_class`; then writes
 * `TARGET/BACKUP_ID/backup_information.json` with infrahub-backup's formatting (4-space indent),
 * tagged with the class too. The manifest must have been validated for this location
 * (`validateManifest(manifest, …, { target, backupId })`) and its files checked by the caller.
 * When the tagging fails or cannot end in time, the objects already tagged are tagged "pending"
 * again (as many as the time allows) and no manifest is written.
 *
 * @returns the sealed manifest (a copy, with `retention_class` when classified), its key and version
 *   id, and the re-tagging's count and duration (with retention)
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
}> {
  const sealed: Manifest = { ...manifest };
  let tagging: string | undefined;
  let stats: TaggingStats | undefined;
  let undoAll: ((cause: unknown) => Promise<never>) | undefined;
  if (options.retention) {
    const date = parseBackupId(options.backupId);
    if (!date) throw new ManifestError(`${options.backupId} is not a backup id: cannot classify it`);
    const present = await completeBackupDatesIn(s3, bucket, options.target, date.getUTCFullYear());
    const cls = retentionClass(date, present, options.retention);
    sealed.retention_class = cls;
    const files = Object.values(manifest.s3 ?? {}).map((f) => ({ key: f.key, versionId: f.version_id }));
    const objects = [...files, ...(options.records ?? [])];
    const end = options.secondsLeft ? Date.now() + Math.max(0, options.secondsLeft()) * 1000 : undefined;
    stats = await retag(s3, bucket, objects, cls, options.retention, options, end);
    tagging = retentionTagging(cls);
    const retention = options.retention;
    // Every object carries the class now: a manifest that cannot be written must not leave them so.
    undoAll = async (cause) => {
      const all = objects.map((_, i) => i);
      throw withUndone(
        cause,
        `backup ${options.backupId} of ${options.target}`,
        await undoTagging(s3, bucket, objects, all, cls, retention, options, end),
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
  return {
    manifest: sealed,
    key,
    ...(written.versionId ? { versionId: written.versionId } : {}),
    ...(sealed.retention_class ? { retentionClass: sealed.retention_class } : {}),
    ...(stats ? { tagging: stats } : {}),
  };
}

/**
 * Tags every object with `cls`; when that stops before the end (a failure, or `secondsLeft` too
 * short at the rate S3 answers), tags what was started "pending" again within the time left, then
 * throws naming what happened and what still carries the class.
 */
async function retag(
  s3: S3Client,
  bucket: string,
  objects: ReadonlyArray<{ key: string; versionId?: string | undefined }>,
  cls: RetentionClass,
  retention: Retention,
  options: SealOptions,
  end: number | undefined,
): Promise<TaggingStats> {
  const concurrency = options.tagConcurrency ?? TAG_CONCURRENCY;
  const start = Date.now();
  const run = await tagObjects(s3, bucket, objects, cls, {
    concurrency,
    ...(end !== undefined ? { deadline: start + (end - start) * TAG_TIME_SHARE } : {}),
  });
  if (!run.stopped && run.failed === 0) return { objects: objects.length, ms: run.ms };

  const undone = await undoTagging(s3, bucket, objects, run.mayCarry, cls, retention, options, end);
  const what = `backup ${options.backupId} of ${options.target}`;
  if (run.stopped === 'failed' || run.failed > 0) throw withUndone(run.error, what, undone);
  throw new IncompleteBackupError(
    `re-tagging the ${objects.length} objects of ${what} with its retention class "${cls}" could not end within the manifest step's time: ${describeRate(run, objects.length, end === undefined ? 0 : end - start)}; no manifest written; ${undone}`,
  );
}

/**
 * Tags the objects at `indices` "pending" again, as far as the time up to `end` allows and past any
 * failure (every object left with the class outlives an incomplete backup's expiry); returns a
 * sentence saying what was undone and what may still carry `cls`. Best effort: an S3 slower still
 * than during the tagging may leave some with the class, and the sentence names how many.
 */
async function undoTagging(
  s3: S3Client,
  bucket: string,
  objects: ReadonlyArray<{ key: string; versionId?: string | undefined }>,
  indices: readonly number[],
  cls: RetentionClass,
  retention: Retention,
  options: SealOptions,
  end: number | undefined,
): Promise<string> {
  const undo = await tagObjects(
    s3,
    bucket,
    indices.map((i) => objects[i] as { key: string; versionId?: string }),
    PENDING,
    {
      concurrency: options.tagConcurrency ?? TAG_CONCURRENCY,
      keepGoing: true,
      ...(end !== undefined ? { deadline: end, stopWhenBehind: false } : {}),
    },
  );
  const left = indices.length - undo.tagged;
  return indices.length === 0
    ? `no object had been tagged: the backup expires as an incomplete one (retention.incompleteDays)`
    : left === 0
      ? `the ${indices.length} object(s) it had tagged were tagged "${PENDING}" again: the backup expires as an incomplete one (retention.incompleteDays)`
      : `${left} of the ${indices.length} object(s) it had tagged may still carry "${cls}" (tagging them "${PENDING}" again ${undoEnd(undo)}): those expire with that class, ${expirationDays(retention)[cls]} days after they were written, not as an incomplete backup's`;
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
function describeRate(run: TagRun, total: number, givenMs: number): string {
  const perSecond = run.ms > 0 ? (run.tagged * 1000) / run.ms : 0;
  const need =
    perSecond > 0 ? `all ${total} need about ${Math.ceil(total / perSecond)} s` : 'none was answered';
  return `${run.tagged} tagged in ${(run.ms / 1000).toFixed(1)} s (${perSecond.toFixed(0)}/s): ${need}, ${Math.floor(givenMs / 1000)} s were given (${Math.round(TAG_TIME_SHARE * 100)}% of them for tagging)`;
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
 * @returns with retention, `tagging`: objects re-tagged and the milliseconds it took
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
  };
}
