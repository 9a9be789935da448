import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCommand,
  type UploadPartCommandInput,
  type UploadPartCommandOutput,
} from '@aws-sdk/client-s3';
import type { BuildMiddleware } from '@smithy/types';
import { NamedError, StorageError } from '../errors.js';
import { noteBytes } from '../progress.js';
import { putObject, storageError } from './objects.js';

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last) and largest part count. */
const MIN_PART = 5 * MiB;
const MAX_PARTS = 10_000;

export interface UploadStreamOptions {
  bucket: string;
  key: string;
  /** First part size (default 8 MiB); it doubles every 1,000 parts so a stream of unknown length fits 10,000 parts. */
  partSize?: number;
  /** Object tags in the URL query form ("retention=pending"). */
  tagging?: string;
  /** Parts in flight at once (default 4). Memory is partSize x (concurrency + 1). */
  concurrency?: number;
  contentType?: string;
  /**
   * Awaited after the last byte and before the object is completed. A producer (pg_dump,
   * neo4j-admin) that exits non-zero throws here, and the upload is aborted instead of completed.
   */
  beforeComplete?: () => Promise<void>;
}

export interface UploadedObject {
  bucket: string;
  key: string;
  versionId?: string;
  /** Bytes in the object. */
  size: number;
  /** SHA-256 of the whole object, lowercase hex (the manifest's checksum). */
  sha256: string;
  /**
   * The checksum S3 keeps for the object: the full-object SHA-256 (base64) for a single PUT, or
   * the composite `base64(sha256(part digests))-N` of a multipart upload. Comparing it with
   * HeadObject's answer verifies the stored object without downloading it.
   */
  s3ChecksumSHA256: string;
  parts: number;
}

export const PARTS_PER_SIZE = 1000;

/** Where signedPayloadHash goes: before signing (the finalizeRequest step), once the request is built. */
export const SIGNED_PAYLOAD_HASH = { step: 'build', name: 'partSignedPayloadHash' } as const;

/**
 * A build-step middleware that sets `x-amz-content-sha256` to `digest` (the part's SHA-256, already
 * computed for its ChecksumSHA256), so Signature Version 4 signs that hash instead of hashing the
 * part's bytes once more: the SDK's signer takes the header when present (@smithy/signature-v4
 * getPayloadHash), and S3 refuses a part whose bytes do not match it (XAmzContentSHA256Mismatch;
 * Amazon S3 API Reference, "Common Request Headers": x-amz-content-sha256). One SHA-256 pass over
 * every uploaded byte fewer.
 */
export function signedPayloadHash(
  digest: Buffer,
): BuildMiddleware<UploadPartCommandInput, UploadPartCommandOutput> {
  const hex = digest.toString('hex');
  return (next) => async (args) => {
    const request = args.request as { headers?: Record<string, string> };
    if (request.headers) request.headers['x-amz-content-sha256'] = hex;
    return next(args);
  };
}

/** Part size for the n-th part (1-based): doubles every 1,000 parts, so 8 MiB parts reach ~8 TiB. */
export function partSizeFor(partNumber: number, firstPartSize: number): number {
  return firstPartSize * 2 ** Math.floor((partNumber - 1) / PARTS_PER_SIZE);
}

/** The composite checksum S3 reports for a multipart object whose parts have these SHA-256 digests. */
export function compositeChecksum(partDigests: readonly Buffer[]): string {
  const combined = createHash('sha256').update(Buffer.concat(partDigests)).digest('base64');
  return `${combined}-${partDigests.length}`;
}

/**
 * Fixed-size part buffers, reused: memory stays at (concurrency + 1) parts whatever the stream's
 * length, and nothing is left for the garbage collector to catch up with. `acquire` waits while every
 * buffer is in flight, which is what pauses reading the source (backpressure on the producer).
 */
class PartBuffers {
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<() => void> = [];
  private allocated = 0;

  constructor(private readonly max: number) {}

  async acquire(size: number): Promise<Buffer> {
    for (;;) {
      const index = this.free.findIndex((b) => b.length === size);
      if (index >= 0) return this.free.splice(index, 1)[0] as Buffer;
      if (this.free.length > 0) {
        // Buffers of an outgrown size are dropped, making room for the bigger ones.
        this.free.pop();
        this.allocated--;
        continue;
      }
      if (this.allocated < this.max) {
        this.allocated++;
        return Buffer.allocUnsafe(size);
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  release(buffer: Buffer): void {
    this.free.push(buffer);
    this.waiting.shift()?.();
  }
}

/**
 * The multipart uploads under way in this process, each with the function that cancels its parts
 * and aborts it. The runner's last line of defence (an error nothing caught) aborts them before the
 * process exits, so a crash leaves no upload open.
 */
const activeUploads = new Set<() => Promise<void>>();

/**
 * Aborts every multipart upload this process has under way (AbortMultipartUpload; their parts in
 * flight are cancelled first). For the runner's process-level handlers, when an error nothing caught
 * ends the process; the uploads' own callers then never resume. Resolves once every abort has been
 * tried; returns how many uploads there were.
 */
export async function abortActiveUploads(): Promise<number> {
  const aborts = [...activeUploads];
  activeUploads.clear();
  await Promise.allSettled(aborts.map((abort) => abort()));
  return aborts.length;
}

/**
 * A failed S3 call as StorageError, whatever the SDK threw: an S3 error answer, or a request that
 * timed out (`TimeoutError`, after the client's bounded attempts: core/s3/client.ts), was reset or
 * was cancelled. Named errors (a producer's ToolFailed) pass unchanged.
 */
function s3Failure(err: unknown, doing: string): unknown {
  if (err instanceof NamedError) return err;
  const wrapped = storageError(err, doing);
  if (wrapped !== err) return wrapped;
  const e = err instanceof Error ? err : new Error(String(err));
  return new StorageError(`${doing} failed: ${e.name}: ${e.message}`, { cause: err });
}

/**
 * Streams `source` into S3 without staging it: parts are uploaded while the source is still being
 * read, the SHA-256 and size of the whole object are computed in the same pass, and each part carries
 * its own SHA-256 for S3 to check. Reading pauses while `concurrency` parts are in flight.
 *
 * Every S3 request is bounded by the client's timeouts and attempts (createS3Client): a part that S3
 * never answers fails the upload with StorageError instead of waiting forever. On any failure
 * (source error, `beforeComplete` throwing, S3 error or timeout) the parts still in flight are
 * cancelled and the multipart upload is aborted (AbortMultipartUpload), so no object and no open
 * upload is left under `key`; should the abort itself fail, the bucket's lifecycle rule removes the
 * parts after 2 days. Throws StorageError for S3 failures, or the source's / `beforeComplete`'s error.
 */
export async function uploadStream(
  s3: S3Client,
  source: Readable,
  options: UploadStreamOptions,
): Promise<UploadedObject> {
  const firstPartSize = Math.max(options.partSize ?? 8 * MiB, MIN_PART);
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const { bucket, key } = options;
  const whole = createHash('sha256');
  const buffers = new PartBuffers(concurrency + 1);
  let size = 0;

  let uploadId: string | undefined;
  const completed: CompletedPart[] = [];
  const digests: Buffer[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  // Cancels the parts still in flight once the upload has failed (a hung part must not hold the abort).
  const cancelParts = new AbortController();

  const startUpload = async () => {
    const created = await s3
      .send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          ChecksumAlgorithm: 'SHA256',
          ContentType: options.contentType,
          ...(options.tagging ? { Tagging: options.tagging } : {}),
        }),
      )
      .catch((err: unknown) => {
        throw s3Failure(err, `starting the upload to s3://${bucket}/${key}`);
      });
    if (!created.UploadId) throw new StorageError(`S3 returned no upload id for s3://${bucket}/${key}`);
    uploadId = created.UploadId;
    activeUploads.add(abort);
  };

  /** Uploads `length` bytes of `buffer` as a part, and returns the buffer to the pool when done. */
  const sendPart = (partNumber: number, buffer: Buffer, length: number) => {
    const body = buffer.subarray(0, length);
    const digest = createHash('sha256').update(body).digest();
    digests[partNumber - 1] = digest;
    const command = new UploadPartCommand({
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      PartNumber: partNumber,
      Body: body,
      ContentLength: length,
      ChecksumSHA256: digest.toString('base64'),
    });
    command.middlewareStack.add(signedPayloadHash(digest), SIGNED_PAYLOAD_HASH);
    const task = s3
      .send(command, { abortSignal: cancelParts.signal })
      .then((out) => {
        completed[partNumber - 1] = {
          PartNumber: partNumber,
          ETag: out.ETag,
          ChecksumSHA256: digest.toString('base64'),
        };
      })
      .catch((err: unknown) => {
        failure ??= s3Failure(err, `uploading part ${partNumber} to s3://${bucket}/${key}`);
      })
      .finally(() => {
        inFlight.delete(task);
        buffers.release(buffer);
      });
    inFlight.add(task);
  };

  const abort = async () => {
    activeUploads.delete(abort);
    if (!uploadId) return;
    cancelParts.abort();
    await Promise.allSettled([...inFlight]);
    await s3
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
      .catch(() => {
        // The bucket's lifecycle rule aborts what this could not.
      });
  };

  let partNumber = 1;
  let current = await buffers.acquire(partSizeFor(partNumber, firstPartSize));
  let filled = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (failure) throw failure;
      whole.update(chunk);
      size += chunk.length;
      // Bytes read from the source (a dump as its tool writes it): the heartbeat's progress.
      noteBytes(chunk.length);
      let offset = 0;
      while (offset < chunk.length) {
        const n = Math.min(chunk.length - offset, current.length - filled);
        chunk.copy(current, filled, offset, offset + n);
        filled += n;
        offset += n;
        if (filled === current.length) {
          if (partNumber > MAX_PARTS)
            throw new StorageError(`s3://${bucket}/${key} would need more than ${MAX_PARTS} parts`);
          if (!uploadId) await startUpload();
          sendPart(partNumber++, current, filled);
          current = await buffers.acquire(partSizeFor(partNumber, firstPartSize));
          filled = 0;
          if (failure) throw failure;
        }
      }
    }
    await options.beforeComplete?.();

    const sha256 = whole.digest('hex');
    if (!uploadId) {
      // Smaller than one part: a single PUT, whose checksum S3 keeps as the full-object SHA-256.
      const put = await putObject(
        s3,
        bucket,
        key,
        current.subarray(0, filled),
        options.contentType,
        options.tagging,
      );
      return {
        bucket,
        key,
        versionId: put.versionId,
        size,
        sha256,
        s3ChecksumSHA256: put.checksumSHA256,
        parts: 1,
      };
    }

    if (filled > 0) sendPart(partNumber++, current, filled);
    await Promise.all([...inFlight]);
    if (failure) throw failure;
    const done = await s3
      .send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: completed },
        }),
      )
      .catch((err: unknown) => {
        throw s3Failure(err, `completing the upload to s3://${bucket}/${key}`);
      });
    activeUploads.delete(abort);
    return {
      bucket,
      key,
      versionId: done.VersionId,
      size,
      sha256,
      s3ChecksumSHA256: compositeChecksum(digests),
      parts: completed.length,
    };
  } catch (err) {
    await abort();
    throw storageError(err, `upload to s3://${bucket}/${key}`);
  }
}
