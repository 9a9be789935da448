import type { S3Client } from '@aws-sdk/client-s3';
import { PENDING_TAGGING } from '../../../core/backup/retention.js';
import type { Logger } from '../../../core/log.js';
import type { UploadStreamOptions } from '../../../core/s3/upload-stream.js';

/** What every component needs: where to write, and how. Clients are passed in, so tests hand in local ones. */
export interface RunContext {
  s3: S3Client;
  bucket: string;
  target: string;
  backupId: string;
  /** First multipart part size in bytes. */
  partSize: number;
  /** Parts in flight per upload. */
  concurrency: number;
  logger: Logger;
}

/**
 * How every backup file is uploaded: into the backup bucket, with the run's part size and
 * concurrency, tagged "pending" until the manifest step gives the completed backup its class.
 */
export function uploadOptions(
  ctx: RunContext,
  key: string,
  contentType = 'application/octet-stream',
): Omit<UploadStreamOptions, 'beforeComplete'> {
  return {
    bucket: ctx.bucket,
    key,
    partSize: ctx.partSize,
    concurrency: ctx.concurrency,
    tagging: PENDING_TAGGING,
    contentType,
  };
}

/** The fields every component result starts with: whose backup it is, and when it ran. */
export function resultStamp(ctx: RunContext, startedAt: string) {
  return { target: ctx.target, backupId: ctx.backupId, startedAt, finishedAt: new Date().toISOString() };
}

/**
 * The backup a restore step reads, as its messages name it: `<source>/<backup id>`, the source
 * being the target whose backup it is (a refresh's SOURCE_TARGET), else the target restored into.
 */
export function backupName(ctx: { target: string; source?: string | undefined; backupId: string }): string {
  return `${ctx.source ?? ctx.target}/${ctx.backupId}`;
}
