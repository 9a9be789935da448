/**
 * What backups a target has in the bucket: backup folders from one delimited listing (no walk over
 * every object), whether each is complete (its manifest exists), the latest complete one whose
 * manifest passes validation, and the retention tags of a backup's objects.
 */
import { GetObjectTaggingCommand, PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { mapLimit } from '../concurrency.js';
import { ManifestError } from '../errors.js';
import { headObject, isNotFound, listPages, storageError } from '../s3/objects.js';
import { BackupIdSchema, manifestKey, parseBackupId } from './layout.js';
import { type Manifest, readManifest } from './manifest.js';
import { FILE_TAG, RETENTION_TAG } from './retention.js';

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
  /** The target's backup ids when the caller has listed them already (listBackupIds). */
  ids?: readonly string[],
): Promise<Date[]> {
  const candidates = (ids ?? (await listBackupIds(s3, bucket, target))).filter(
    (id) => parseBackupId(id)?.getUTCFullYear() === year,
  );
  // One HEAD per backup of the year (365 for daily, 8,760 for hourly backups), 32 at once.
  const complete = await mapLimit(candidates, 32, (id) => isComplete(s3, bucket, target, id));
  return candidates.filter((_, i) => complete[i]).map((id) => parseBackupId(id) as Date);
}

/**
 * The `retention` tag of a backup's manifest (GetObjectTagging of its current version): the class,
 * `newest`, or `null` when the manifest carries none (sealed without retention); `undefined` when
 * the backup has no manifest (incomplete).
 * @throws StorageError when S3 fails otherwise
 */
export async function manifestRetentionTag(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
): Promise<string | null | undefined> {
  const key = manifestKey(target, backupId);
  try {
    const out = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
    return out.TagSet?.find((t) => t.Key === RETENTION_TAG)?.Value ?? null;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw storageError(err, `reading the tags of s3://${bucket}/${key}`);
  }
}

/** What one run of `tagObjects` did. */
export interface TagRun {
  /**
   * Objects whose request was sent, counted from the first: objects are started in order, so these
   * are `objects.slice(0, started)`; no object after them was touched.
   */
  started: number;
  /** Objects S3 answered as tagged. */
  tagged: number;
  /**
   * Indices (into `objects`, ascending) of the objects that carry the new tag or may: those S3
   * answered as tagged, and those whose request failed without a definite answer (no HTTP answer, a
   * timeout, a 5xx): S3 may have applied it. A 4xx answer (access denied, no such version) is
   * definite: that object kept its tag.
   */
  mayCarry: number[];
  /** Requests that failed (after the client's own retries). */
  failed: number;
  /** Milliseconds from the start to the last answer. */
  ms: number;
  /**
   * Why objects were left unstarted: a request `failed` (unless `keepGoing`), the `deadline` came,
   * or the rate so far `projected` the rest past it. Unset when every object was started.
   */
  stopped?: 'failed' | 'deadline' | 'projected';
  /** The first failure (a StorageError naming the object, or what was thrown), when `failed` > 0. */
  error?: unknown;
}

export interface TagOptions {
  /** Requests at once (default 16). */
  concurrency?: number;
  /**
   * Time (epoch ms) by which the last answer must have come: no object is started at or after it.
   * Unset: no bound.
   */
  deadline?: number;
  /**
   * With `deadline`: once a twentieth of the time up to it has passed (at least a second), also stop
   * starting objects as soon as the rate puts the end of the rest after `deadline`, so a run that
   * cannot finish stops early and its caller keeps the time to undo it. The rate is the slower of the
   * whole run's and the last answers' (RECENT_ANSWERS x concurrency): S3 slowing down part-way is
   * seen within a few hundred answers, while what was tagged, which the undo must cover at that rate,
   * is still small. Default true; false tags as many as the deadline allows (an undo).
   */
  stopWhenBehind?: boolean;
  /** Go on after a failed request (an undo: every object it can reach); default false. */
  keepGoing?: boolean;
  /** The clock, epoch ms (tests); Date.now by default. */
  now?: () => number;
}

/** How many answers per request at once the recent tagging rate is measured over (tagObjects). */
export const RECENT_ANSWERS = 8;

/** Whether a failed request may still have been applied: no HTTP answer, or a 5xx. */
function mayHaveApplied(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  return status === undefined || status >= 500;
}

/** An object version to tag; `file`: one of the backup's files (a manifest `s3` entry), not its manifest or a record. */
export interface TaggedObject {
  key: string;
  versionId?: string | undefined;
  /** Also tagged FILE_TAG, which the cold-storage rules match (core/backup/retention.ts). */
  file?: boolean;
}

/**
 * Tags object versions `retention=<value>`, and the backup's files `backup-part=file` besides
 * (FILE_TAG; replacing their tag set), `concurrency` requests at once,
 * one PutObjectTagging per object version: S3 has no call that tags many (S3 API Reference,
 * "PutObjectTagging"; only S3 Batch Operations jobs do). Objects are started in order; after a
 * failure (unless `keepGoing`), the deadline or a projection past it, no further object is started
 * and the requests under way are awaited. Never throws: the caller reads `stopped`, `failed` and
 * `mayCarry` and undoes what it must.
 */
export async function tagObjects(
  s3: S3Client,
  bucket: string,
  objects: ReadonlyArray<TaggedObject>,
  value: string,
  options: TagOptions = {},
): Promise<TagRun> {
  const { concurrency = 16, deadline, stopWhenBehind = true, keepGoing = false, now = Date.now } = options;
  const start = now();
  const sampleMs = deadline === undefined ? 0 : Math.max(1000, (deadline - start) / 20);
  const mayCarry: number[] = [];
  // When the last answers came (a ring of `window` entries): the recent rate.
  const window = Math.max(1, concurrency) * RECENT_ANSWERS;
  const answeredAt: number[] = [];
  let answered = 0;
  let next = 0;
  let tagged = 0;
  let failed = 0;
  let stopped: TagRun['stopped'];
  let error: unknown;
  const mayStart = (): boolean => {
    if (stopped) return false;
    if (deadline === undefined) return true;
    const t = now();
    if (t >= deadline) stopped = 'deadline';
    else if (stopWhenBehind && t - start >= sampleMs && tagged > 0) {
      const overall = (t - start) / tagged;
      const k = Math.min(answered, window);
      const recent = k > 1 ? (t - (answeredAt[(answered - k) % window] as number)) / k : overall;
      const perObject = Math.max(overall, recent);
      if (t + (objects.length - tagged) * perObject > deadline) stopped = 'projected';
    }
    return !stopped;
  };
  const worker = async () => {
    while (next < objects.length && mayStart()) {
      const i = next++;
      const o = objects[i] as TaggedObject;
      try {
        await s3.send(
          new PutObjectTaggingCommand({
            Bucket: bucket,
            Key: o.key,
            ...(o.versionId ? { VersionId: o.versionId } : {}),
            Tagging: {
              TagSet: [
                { Key: RETENTION_TAG, Value: value },
                ...(o.file ? [{ Key: FILE_TAG.key, Value: FILE_TAG.value }] : []),
              ],
            },
          }),
        );
        tagged++;
        mayCarry.push(i);
        answeredAt[answered++ % window] = now();
      } catch (err) {
        failed++;
        if (mayHaveApplied(err)) mayCarry.push(i);
        if (failed === 1) error = storageError(err, `tagging s3://${bucket}/${o.key}`);
        if (!keepGoing) stopped = 'failed';
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(Math.max(1, concurrency), objects.length) }, () => worker()),
  );
  return {
    started: next,
    tagged,
    mayCarry: mayCarry.sort((a, b) => a - b),
    failed,
    ms: now() - start,
    ...(stopped ? { stopped } : {}),
    ...(failed > 0 ? { error } : {}),
  };
}

/** A backup whose manifest exists but is refused (malformed, unsafe, or pointing outside its prefix). */
export interface RefusedBackup {
  backupId: string;
  /** The ManifestError's message: the key and each problem. */
  reason: string;
}

/**
 * The newest backup of `target` whose manifest exists and passes `readManifest`'s validation
 * (backup ids sort by time, UTC) and whose id is not later than `now` (plus `CLOCK_SKEW_MS`). A
 * manifest that exists but is refused does not make a backup complete: it is skipped, so it can
 * neither become `latest` for a restore or drill nor count as fresh for the RPO alarm, and it is
 * returned in `refused` (newest first) for the caller to report. A backup dated in the future (an
 * imported archive or a folder made by hand: no backup can have been taken then) is skipped the same
 * way, unread, and returned in `future` (newest first). Reads one manifest per backup it passes over
 * (a few KB each).
 *
 * @returns `backupId` undefined when the target has no valid complete backup.
 * @throws StorageError when S3 cannot be listed or read.
 */
export async function latestValidBackup(
  s3: S3Client,
  bucket: string,
  target: string,
  now: Date = new Date(),
): Promise<{ backupId?: string; manifest?: Manifest; refused: RefusedBackup[]; future: string[] }> {
  const refused: RefusedBackup[] = [];
  const future: string[] = [];
  for (const backupId of (await listBackupIds(s3, bucket, target)).reverse()) {
    if (isFutureBackupId(backupId, now)) {
      future.push(backupId);
      continue;
    }
    try {
      const manifest = await readManifest(s3, bucket, target, backupId);
      if (manifest) return { backupId, manifest, refused, future };
    } catch (err) {
      if (!(err instanceof ManifestError)) throw err;
      refused.push({ backupId, reason: err.message });
    }
  }
  return { refused, future };
}

/** One line naming backups passed over because their ids lie in the future, for logs and warnings. */
export function describeFutureBackups(target: string, future: readonly string[], now: Date): string {
  return `${future.length} backup(s) of ${target} dated later than now (${now.toISOString()}) passed over: ${future.join(', ')}; no backup can have been taken then (a wrong clock, or an archive or folder named by hand): check them and delete or rename them`;
}
