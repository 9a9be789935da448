import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { InsufficientScratchSpaceError, RestoreValidationError, StorageError } from '../errors.js';
import { noteBytes } from '../progress.js';
import { openObject, storageError } from './objects.js';

/**
 * A pipeline stage that passes bytes through unchanged while feeding them to `hash` (and counting
 * them): the checksum of a stream in the same pass that moves it.
 */
export function hashing(hash: Hash, onBytes?: (n: number) => void) {
  return async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      hash.update(chunk);
      onBytes?.(chunk.length);
      // Every hashed transfer (downloads, verified copies) is progress for the heartbeat.
      noteBytes(chunk.length);
      yield chunk;
    }
  };
}

/** A minimum transfer rate: below `minKiBPerSecond` over `windowSeconds` of waiting, the transfer fails. */
export interface ThroughputFloor {
  minKiBPerSecond: number;
  windowSeconds: number;
}

/**
 * The floor from the runner's environment: `S3_MIN_THROUGHPUT_KIBPS` (default 8 KiB/s; 0 turns the
 * guard off) over `S3_THROUGHPUT_WINDOW_SECONDS` (default 120). A server that sends a byte now and
 * then never trips the socket's inactivity timeout (S3_SOCKET_TIMEOUT_MS): this bound does.
 * @throws StorageError naming a variable that is not a non-negative integer.
 */
export function throughputFloorFromEnv(env: NodeJS.ProcessEnv = process.env): ThroughputFloor {
  const read = (name: string, fallback: number, min: number) => {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < min)
      throw new StorageError(`${name} must be an integer of at least ${min} (got "${raw.slice(0, 40)}")`);
    return Number(raw);
  };
  return {
    minKiBPerSecond: read('S3_MIN_THROUGHPUT_KIBPS', 8, 0),
    windowSeconds: read('S3_THROUGHPUT_WINDOW_SECONDS', 120, 1),
  };
}

/**
 * A pipeline stage that fails a transfer running below `floor`: only the time spent waiting for the
 * source counts (a slow consumer, the disk or a tool holding back, never trips it). Each time
 * `windowSeconds` of waiting have gone by, the bytes received in them must reach
 * minKiBPerSecond × windowSeconds KiB, else StorageError naming `what`, the rate and the settings.
 */
export function throughputGuard(what: string, floor: ThroughputFloor = throughputFloorFromEnv()) {
  return async function* (source: AsyncIterable<Buffer>) {
    if (floor.minKiBPerSecond <= 0) {
      yield* source;
      return;
    }
    const it = source[Symbol.asyncIterator]();
    let waitedMs = 0;
    let bytes = 0;
    try {
      while (true) {
        const started = performance.now();
        const next = await it.next();
        waitedMs += performance.now() - started;
        if (next.done) return;
        bytes += next.value.length;
        if (waitedMs >= floor.windowSeconds * 1000) {
          const rate = bytes / 1024 / (waitedMs / 1000);
          if (rate < floor.minKiBPerSecond)
            throw new StorageError(
              `${what} was transferred at ${rate.toFixed(2)} KiB/s over ${Math.round(waitedMs / 1000)} s, below the floor of ${floor.minKiBPerSecond} KiB/s (S3_MIN_THROUGHPUT_KIBPS over S3_THROUGHPUT_WINDOW_SECONDS): given up`,
            );
          waitedMs = 0;
          bytes = 0;
        }
        yield next.value;
      }
    } finally {
      await it.return?.();
    }
  };
}

/**
 * A full disk (ENOSPC) or an exhausted quota (EDQUOT) while writing `path` as
 * InsufficientScratchSpaceError naming the path and what to raise; undefined for anything else.
 */
export function scratchSpaceError(err: unknown, path: string): InsufficientScratchSpaceError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  return new InsufficientScratchSpaceError(
    `no space left writing ${(err as { path?: string }).path ?? path} (${code}): raise the task's ephemeral storage (ECS ephemeralStorage, up to 200 GiB on Fargate) or point RESTORE_WORK_DIR at a larger volume`,
    { cause: err },
  );
}

/** The name downloadVerified writes `file` under until its SHA-256 is proven: `.<name>.partial` beside it. */
export const partialPathOf = (file: string) => join(dirname(file), `.${basename(file)}.partial`);

/**
 * Downloads one exact object version to `file`, hashing it on the way: it is written under a
 * temporary name beside `file` and renamed only when its SHA-256 equals `sha256`, so a file that
 * does not match is never left where a tool would read it.
 * `signal` stops the transfer (its body destroyed, the partial file removed): it rejects with the
 * signal's reason, as node:stream's pipeline does.
 * @throws StorageError (S3 failed, or the transfer ran below the throughput floor: throughputGuard),
 *   InsufficientScratchSpaceError (the disk under `file` is full: ENOSPC/EDQUOT), RestoreValidationError.
 */
export async function downloadVerified(
  s3: S3Client,
  object: { bucket: string; key: string; versionId?: string },
  sha256: string,
  file: string,
  signal?: AbortSignal,
): Promise<{ bytes: number }> {
  await mkdir(dirname(file), { recursive: true });
  const partial = partialPathOf(file);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    const body = await openObject(s3, object.bucket, object.key, object.versionId, signal);
    await pipeline(
      body,
      throughputGuard(`s3://${object.bucket}/${object.key}`),
      hashing(hash, (n) => {
        bytes += n;
      }),
      createWriteStream(partial),
      { signal },
    );
  } catch (err) {
    await rm(partial, { force: true });
    if (signal?.aborted) throw signal.reason;
    throw scratchSpaceError(err, partial) ?? storageError(err, `reading s3://${object.bucket}/${object.key}`);
  }
  const actual = hash.digest('hex');
  if (actual !== sha256) {
    await rm(partial, { force: true });
    throw new RestoreValidationError(
      `s3://${object.bucket}/${object.key} hashes to ${actual}, the manifest records ${sha256}; ${file} was not written`,
    );
  }
  await rename(partial, file);
  return { bytes };
}
