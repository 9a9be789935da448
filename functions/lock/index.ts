/** Lambda handler for the per-target lock steps; BACKUP_BUCKET comes from the function's environment. */
import { bundledConfig } from '../../core/config/bundled.js';
import { createLogger } from '../../core/log.js';
import { createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { functionEnv } from '../env.js';
import { lockStep } from './lock.js';

const s3 = createS3Client(FUNCTION_REQUEST_BOUNDS);
const logger = createLogger({ service: 'infrahub-backup-lock' });

export async function handler(event: unknown) {
  const { BACKUP_BUCKET: bucket } = functionEnv(['BACKUP_BUCKET']);
  return lockStep(event, { s3, bucket, config: bundledConfig(import.meta.url), logger });
}
