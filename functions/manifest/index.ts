/**
 * Lambda handler for the manifest step; BACKUP_BUCKET comes from the function's environment, the
 * retention policy from the bundled configuration (core/config/bundled.ts).
 */
import { type ManifestSummary, manifestEvent, manifestStep } from '../../core/backup/manifest-step.js';
import { bundledConfig } from '../../core/config/bundled.js';
import { createLogger } from '../../core/log.js';
import { createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { functionEnv } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const s3 = traced(createS3Client(FUNCTION_REQUEST_BOUNDS));
const logger = createLogger({ service: 'infrahub-backup-manifest' });

export const handler = lambdaHandler(async (event: unknown): Promise<ManifestSummary> => {
  const { BACKUP_BUCKET: bucket } = functionEnv(['BACKUP_BUCKET']);
  return manifestStep(manifestEvent(event, bundledConfig(import.meta.url)), { s3, bucket, logger });
});
