import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { openObject, storageError } from '../s3/objects.js';
import type { RunningTool } from './run-tool.js';

/**
 * Streams one S3 object into a tool's standard input (`pg_restore`, `neo4j-admin database load
 * --from-stdin`), nothing staged. Resolves when the tool has exited 0. The tool's own failure is
 * the cause reported before a broken pipe; an S3 failure stops the tool.
 */
export async function streamS3ToTool(
  s3: S3Client,
  bucket: string,
  key: string,
  tool: RunningTool,
  /** The exact version to read (a manifest records it); the current one when unset. */
  versionId?: string,
): Promise<void> {
  let body: Readable;
  try {
    body = await openObject(s3, bucket, key, versionId);
  } catch (err) {
    tool.child.kill('SIGTERM');
    await tool.done.catch(() => undefined);
    throw err;
  }
  const [piped, exited] = await Promise.allSettled([pipeline(body, tool.stdin), tool.done]);
  if (exited.status === 'rejected') throw exited.reason;
  if (piped.status === 'rejected') throw storageError(piped.reason, `reading s3://${bucket}/${key}`);
}
