import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../../../core/log.js';

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

/** The fields every component result starts with: whose backup it is, and when it ran. */
export function resultStamp(ctx: RunContext, startedAt: string) {
  return { target: ctx.target, backupId: ctx.backupId, startedAt, finishedAt: new Date().toISOString() };
}
