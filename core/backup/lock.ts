/**
 * One execution per target at a time: a lock object `locks/<target>.json` in the backup bucket,
 * created with an S3 conditional write (If-None-Match: *), so exactly one of two racing executions
 * gets it. The lock records its holder: the Step Functions execution ARN (`owner`). A lock is taken
 * over (with If-Match on its ETag, so two executions cannot both take it over either) when
 * - its holder's execution has ended (asked of Step Functions: DescribeExecution, or of the local
 *   runner's record of its executions in local mode), so a lock left behind by an execution that
 *   could not release it (S3 down at its end) never blocks the next run;
 * - it has expired (the execution's own timeout), when nobody can tell whether its holder runs;
 * - it is not a lock at all (truncated JSON, invalid dates, wrong shape) and names no running
 *   holder: S3 writes whole objects, so no execution of ours can have left it half-written, and
 *   keeping it would block the target until someone deleted it by hand. A warning names its key,
 *   its size and what was wrong with it;
 * - it cannot be one of ours (lockProblem), and names no running holder: it names another target,
 *   it expires before it was taken, it was taken in the future (beyond CLOCK_SKEW_MS), or it lasts
 *   longer than any execution may (the execution timeout, MAX_LOCK_LIFETIME_SECONDS unless the
 *   acquiring execution's own is longer). Such an object (a hand-written "hold" until 9999, a copy
 *   of another target's lock) would otherwise block the target for as long as it says; it is taken
 *   over with a warning naming its key and what is wrong with it.
 * A refusal (TargetLockedError) names the lock's key and what to do about it.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { z } from 'zod';
import { TargetLockedError } from '../errors.js';
import type { Logger } from '../log.js';
import { conditionalWrite, isAwsError, isNotFound, storageError } from '../s3/objects.js';

export const LockSchema = z.strictObject({
  target: z.string(),
  /** The holder: its Step Functions execution ARN ($$.Execution.Id). */
  owner: z.string(),
  acquiredAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
});
export type Lock = z.infer<typeof LockSchema>;

export function lockKey(target: string): string {
  return `locks/${target}.json`;
}

/**
 * The longest a lock of ours lasts: the state machines' execution timeout (12 h; their `timeout`
 * prop), which is the ttlSeconds they pass. A lock lasting longer was not written by an execution
 * (unless the acquiring execution's own ttlSeconds is longer: the larger of the two is allowed).
 */
export const MAX_LOCK_LIFETIME_SECONDS = 12 * 3600;

/** How far in the future a lock's acquiredAt may lie (clocks of Lambda and runners differ a little). */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * Why a well-formed lock stored under `lockKey(target)` cannot have been written by an execution of
 * ours, or undefined when it can: it names another target; its expiresAt is not after its acquiredAt;
 * its acquiredAt is more than CLOCK_SKEW_MS after `now`; it lasts longer than `maxLifetimeSeconds`.
 */
export function lockProblem(
  lock: Lock,
  target: string,
  now: Date,
  maxLifetimeSeconds: number,
): string | undefined {
  if (lock.target !== target)
    return `it names target ${clipName(JSON.stringify(lock.target), 100)}, not ${target}`;
  const acquired = Date.parse(lock.acquiredAt);
  const expires = Date.parse(lock.expiresAt);
  if (!(expires > acquired)) return `it expires (${lock.expiresAt}) before it was taken (${lock.acquiredAt})`;
  if (acquired > now.getTime() + CLOCK_SKEW_MS)
    return `it was taken in the future (${lock.acquiredAt}; now ${now.toISOString()})`;
  if (expires - acquired > maxLifetimeSeconds * 1000)
    return (
      `it lasts ${Math.round((expires - acquired) / 3600_000)} h (${lock.acquiredAt} to ${lock.expiresAt}), ` +
      `longer than any execution (${maxLifetimeSeconds / 3600} h)`
    );
  return undefined;
}

/**
 * Whether an execution still runs: `running` true while it may still use the lock; `status` says
 * what the answer came from (Step Functions' status, such as RUNNING, FAILED, TIMED_OUT, ABORTED).
 * Resolves undefined when it cannot tell (not an execution it knows, or the question failed); the
 * lock's expiry decides then.
 */
export type ExecutionStatusReader = (
  executionArn: string,
) => Promise<{ running: boolean; status: string } | undefined>;

/** A Step Functions execution ARN: arn:<partition>:states:<region>:<account>:execution:<machine>:<name>. */
export const EXECUTION_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/;

const isPreconditionFailed = (err: unknown) =>
  isAwsError(err) && (err.name === 'PreconditionFailed' || err.$metadata.httpStatusCode === 412);

/** What is stored under a lock key: a valid lock, or the reason it is not one (and its holder, if named). */
type HeldLock =
  | { valid: true; lock: Lock; etag?: string; size: number }
  | { valid: false; problem: string; holder?: string; etag?: string; size: number };

/** The most of a lock object that is read: a lock of ours is under 1 KiB; anything larger is not one. */
export const MAX_LOCK_BYTES = 64 * 1024;

/** At most `max` characters of a name (a holder, an owner) for a message or a log line, its length said when cut. */
export function clipName(name: string, max = 200): string {
  return name.length <= max ? name : `${name.slice(0, max)}… (${name.length} characters)`;
}

async function readLock(s3: S3Client, bucket: string, target: string): Promise<HeldLock | undefined> {
  let text: string;
  let etag: string | undefined;
  let size: number;
  try {
    // Never more than MAX_LOCK_BYTES (+1, to know it is larger): a huge object under the lock key
    // is not read whole (HTTP Range, S3 GetObject "Range").
    const out = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: lockKey(target), Range: `bytes=0-${MAX_LOCK_BYTES}` }),
    );
    text = (await out.Body?.transformToString()) ?? '';
    etag = out.ETag;
    const total = /\/(\d+)$/.exec(out.ContentRange ?? '')?.[1];
    size = total !== undefined ? Number(total) : Buffer.byteLength(text);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    // An empty object has no byte 0: S3 answers 416 InvalidRange to the ranged read.
    if (isAwsError(err) && (err.name === 'InvalidRange' || err.$metadata.httpStatusCode === 416)) {
      text = '';
      size = 0;
      etag = await s3
        .send(new HeadObjectCommand({ Bucket: bucket, Key: lockKey(target) }))
        .then((h) => h.ETag)
        .catch(() => undefined);
    } else throw storageError(err, `reading the lock s3://${bucket}/${lockKey(target)}`);
  }
  if (size > MAX_LOCK_BYTES)
    return {
      valid: false,
      problem: `${size} bytes, larger than any lock (${MAX_LOCK_BYTES} bytes at most): not read`,
      etag,
      size,
    };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { valid: false, problem: 'not JSON (truncated or overwritten)', etag, size };
  }
  const result = LockSchema.safeParse(parsed);
  if (result.success) return { valid: true, lock: result.data, etag, size };
  const owner = (parsed as { owner?: unknown } | null)?.owner;
  return {
    valid: false,
    problem: clipName(
      result.error.issues.map((i) => `${i.path.join('.') || 'lock'}: ${i.message}`).join('; '),
      500,
    ),
    ...(typeof owner === 'string' && owner ? { holder: owner } : {}),
    etag,
    size,
  };
}

export interface AcquireLockOptions {
  /** Seconds until the lock expires (the execution's own timeout). */
  ttlSeconds: number;
  now?: () => Date;
  /** Asks whether the holder of a lock still runs (Step Functions' DescribeExecution on AWS). */
  executionStatus?: ExecutionStatusReader;
  /** Where take-overs are reported (warnings for malformed locks). */
  logger?: Logger;
}

/**
 * Takes the target's lock for `owner` (an execution ARN) and returns it. Idempotent for the same
 * owner (a retried state). Takes over a lock whose holder has ended, has expired, or is malformed
 * (see the module's comment). Throws TargetLockedError naming the holder when another execution
 * holds it and still runs (or may: not ended and not expired), or took it at the same moment;
 * StorageError when S3 fails.
 */
export async function acquireLock(
  s3: S3Client,
  bucket: string,
  target: string,
  owner: string,
  options: AcquireLockOptions,
): Promise<Lock> {
  const now = options.now?.() ?? new Date();
  const key = lockKey(target);
  const lock: Lock = {
    target,
    owner,
    acquiredAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + options.ttlSeconds * 1000).toISOString(),
  };
  const put = (condition: { IfNoneMatch: string } | { IfMatch: string }) =>
    conditionalWrite(() =>
      s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify(lock),
          ContentType: 'application/json',
          ...condition,
        }),
      ),
    );
  try {
    await put({ IfNoneMatch: '*' });
    return lock;
  } catch (err) {
    if (!isPreconditionFailed(err)) throw storageError(err, `locking target ${target}`);
  }
  const read = await readLock(s3, bucket, target);
  const problem = read?.valid
    ? lockProblem(read.lock, target, now, Math.max(options.ttlSeconds, MAX_LOCK_LIFETIME_SECONDS))
    : undefined;
  const held: HeldLock | undefined =
    read?.valid && problem
      ? { valid: false, problem, holder: read.lock.owner, etag: read.etag, size: read.size }
      : read;
  if (held?.valid && held.lock.owner === owner) return held.lock; // a retried step already holds it

  const where = `s3://${bucket}/${key}`;
  const holder = held ? (held.valid ? held.lock.owner : held.holder) : undefined;
  const state = holder && options.executionStatus ? await options.executionStatus(holder) : undefined;
  if (held && state?.running) {
    const since = held.valid ? ` since ${held.lock.acquiredAt} (until ${held.lock.expiresAt})` : '';
    const stop = EXECUTION_ARN.test(holder ?? '')
      ? ` or stop it (aws stepfunctions stop-execution --execution-arn ${clipName(holder ?? '')})`
      : '';
    throw new TargetLockedError(
      `target ${target} is locked by ${clipName(holder ?? '')}${since}, which is still running (${state.status}); ` +
        `two executions never work on the same target at once. The lock is ${where}: wait for that execution to end${stop}; ` +
        'the next run then takes the lock over',
    );
  }
  if (held?.valid && !state && Date.parse(held.lock.expiresAt) > now.getTime()) {
    throw new TargetLockedError(
      `target ${target} is locked by ${clipName(held.lock.owner)} since ${held.lock.acquiredAt} (until ${held.lock.expiresAt}); ` +
        `two executions never work on the same target at once. The lock is ${where}: it expires at ${held.lock.expiresAt}; ` +
        `if no execution holds it (none runs for this target), delete it (aws s3 rm ${where}) and run again`,
    );
  }
  if (held) {
    const why = state
      ? `its holder ${clipName(holder ?? '')} has ended (${clipName(state.status)})`
      : held.valid
        ? `it expired at ${held.lock.expiresAt}`
        : `it is not a valid lock (${held.problem})`;
    const log = held.valid ? options.logger?.info : options.logger?.warn;
    log?.call(options.logger, `taking over the lock s3://${bucket}/${key}: ${why}`, {
      key,
      bytes: held.size,
      ...(holder ? { holder: clipName(holder) } : {}),
      owner: clipName(owner),
    });
  }
  try {
    // Ended, expired, malformed (or released between our two reads): take it over only if nobody else changed it.
    try {
      await put(held?.etag ? { IfMatch: held.etag } : { IfNoneMatch: '*' });
    } catch (err) {
      // Released since it was read (If-Match on a key that no longer exists: 404): create it, as when none was held.
      if (!(held?.etag && isNotFound(err))) throw err;
      await put({ IfNoneMatch: '*' });
    }
    return lock;
  } catch (err) {
    if (isPreconditionFailed(err)) {
      // Our own write may be what the precondition met: an earlier attempt of this same request (an
      // answer lost after the write landed, or a 409 resent while the first was still being written).
      const current = await readLock(s3, bucket, target).catch(() => undefined);
      if (current?.valid && current.lock.owner === owner && current.lock.acquiredAt === lock.acquiredAt)
        return current.lock;
      throw new TargetLockedError(
        `target ${target} was locked by another execution at the same moment (${where}); ` +
          'two executions never work on the same target at once: run again once it has ended',
      );
    }
    throw storageError(err, `locking target ${target}`);
  }
}

/**
 * Releases the lock if `owner` holds it; a lock held by someone else (or not a valid lock) is left
 * alone. Returns whether it released. Throws StorageError when S3 fails (the state machine retries).
 */
export async function releaseLock(
  s3: S3Client,
  bucket: string,
  target: string,
  owner: string,
): Promise<boolean> {
  const held = await readLock(s3, bucket, target);
  if (!held?.valid || held.lock.owner !== owner) return false;
  try {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: lockKey(target) }));
  } catch (err) {
    throw storageError(err, `releasing the lock s3://${bucket}/${lockKey(target)}`);
  }
  return true;
}
