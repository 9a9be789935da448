import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { NamedError, RestoreValidationError, StorageError } from '../errors.js';
import { openObject, storageError } from '../s3/objects.js';
import type { RunningTool } from './run-tool.js';

/** What a verified stream fed to a tool: its size and SHA-256 (lowercase hex, as the manifest records it). */
export interface VerifiedStream {
  bytes: number;
  sha256: string;
}

/**
 * Streams one S3 object into a tool's standard input (`pg_restore`, `neo4j-admin database load
 * --from-stdin`), nothing staged. Resolves when the tool has exited 0. The tool's own failure is
 * the cause reported before a broken pipe; an S3 failure stops the tool.
 *
 * With `options.sha256`, every byte of the object is hashed on its way to the tool and the digest
 * compared with it once the tool has exited: a mismatch is a RestoreValidationError (also when the
 * tool failed on the damaged bytes: the checksum is then the cause named first). The tool has by
 * then consumed bytes that do not match: the caller must discard what the tool wrote (a restore into
 * a database that is then dropped; see `feedToolVerified`).
 */
export async function streamS3ToTool(
  s3: S3Client,
  bucket: string,
  key: string,
  tool: RunningTool,
  /** The exact version to read (a manifest records it); the current one when unset. */
  versionId?: string,
  options: { sha256?: string } = {},
): Promise<VerifiedStream | undefined> {
  let body: Readable;
  try {
    body = await openObject(s3, bucket, key, versionId);
  } catch (err) {
    tool.child.kill('SIGTERM');
    await tool.done.catch(() => undefined);
    throw err;
  }
  if (options.sha256)
    return feedToolVerified(body, tool, { sha256: options.sha256, what: `s3://${bucket}/${key}` });
  const [piped, exited] = await Promise.allSettled([pipeline(body, tool.stdin), tool.done]);
  if (exited.status === 'rejected') throw exited.reason;
  if (piped.status === 'rejected') throw storageError(piped.reason, `reading s3://${bucket}/${key}`);
  return undefined;
}

/**
 * A failure while reading an object's body: S3's own errors and the connection's (a reset, a
 * timeout: plain Node.js errors, not the SDK's) are a StorageError naming the object, which the
 * state machines retry; our named errors pass unchanged.
 *
 * A checksum mismatch is not transient and is never a StorageError: the AWS SDK validates the
 * full-object checksum S3 returns for a single-part object (`responseChecksumValidation`, default
 * WHEN_SUPPORTED; a multipart object's composite checksum is not validated on GET) and fails the
 * body's stream with a plain Error "Checksum mismatch: expected ... but received ...". That is the
 * same finding as our SHA-256 against the manifest, so it is the same RestoreValidationError, naming
 * the object; the state machines do not retry it (reading the same stored bytes again cannot help).
 */
export function bodyError(err: unknown, what: string): Error {
  if (err instanceof NamedError) return err;
  if (err instanceof Error && /checksum mismatch/i.test(err.message))
    return new RestoreValidationError(
      `${what} does not match its checksum: the S3 client's check of S3's full-object checksum failed while reading it (${err.message}); what was restored from it is discarded`,
      { cause: err },
    );
  const converted = storageError(err, `reading ${what}`);
  if (converted instanceof NamedError) return converted;
  return new StorageError(`reading ${what} failed: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

/**
 * Feeds `source` (an S3 body, or one whose first chunks were already read and are yielded again)
 * into `tool`'s standard input, hashing every byte with SHA-256, and resolves once the tool has
 * exited 0 and the digest equals `expected.sha256`.
 *
 * - Every byte of the source is hashed, also those after the tool stopped reading or failed (they
 *   are read to the end and discarded), so the outcome always says whether the object matched.
 * - The source failing (an S3 connection reset, a timeout) stops the tool (SIGTERM) and is a
 *   StorageError naming `expected.what`.
 * - A digest other than `expected.sha256` (or a size other than `expected.bytes`) is a
 *   RestoreValidationError naming both digests, and the tool's own error if it failed too.
 * - Otherwise the tool's failure (ToolFailedError) is rethrown as it is.
 */
export async function feedToolVerified(
  source: AsyncIterable<Buffer | Uint8Array>,
  tool: RunningTool,
  expected: { sha256: string; bytes?: number; what: string },
): Promise<VerifiedStream> {
  const hash = createHash('sha256');
  let bytes = 0;
  let toolExited = false;
  const exited = tool.done.then(
    () => undefined,
    (err: unknown) => err,
  );
  void exited.then(() => {
    toolExited = true;
  });
  // A tool that stops reading makes its pipe fail with EPIPE; what it says on exit is the cause.
  tool.stdin.on('error', () => undefined);
  let writable = true;
  try {
    for await (const chunk of source) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      hash.update(buffer);
      bytes += buffer.length;
      if (!writable || toolExited || tool.stdin.destroyed) {
        writable = false;
        continue;
      }
      if (!tool.stdin.write(buffer))
        await Promise.race([once(tool.stdin, 'drain').catch(() => undefined), exited]);
    }
  } catch (err) {
    tool.child.kill('SIGTERM');
    await exited;
    throw bodyError(err, expected.what);
  }
  if (!tool.stdin.destroyed) tool.stdin.end();
  const failure = await exited;
  const sha256 = hash.digest('hex');
  const sizeDiffers = expected.bytes !== undefined && expected.bytes !== bytes;
  if (sha256 !== expected.sha256 || sizeDiffers) {
    const toolSaid = failure instanceof Error ? ` (and ${failure.message})` : '';
    throw new RestoreValidationError(
      `${expected.what} does not match its manifest: ${bytes} bytes hashing to sha256 ${sha256}, the manifest records ` +
        `${expected.bytes !== undefined ? `${expected.bytes} bytes, ` : ''}sha256 ${expected.sha256}; what was restored from it is discarded${toolSaid}`,
    );
  }
  if (failure) throw failure;
  return { bytes, sha256 };
}
