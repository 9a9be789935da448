/**
 * Lambda handler for the manifest step; BACKUP_BUCKET comes from the function's environment, the
 * retention policy from the bundled configuration (core/config/bundled.ts). The step's time is the
 * function's remaining time less a margin for the manifest's PUT and the answer
 * (MANIFEST_MARGIN_SECONDS): a re-tagging that cannot end in it fails with its rate
 * (IncompleteBackup) instead of the function timing out half done.
 */
import {
  MANIFEST_MARGIN_SECONDS,
  type ManifestSummary,
  manifestEvent,
  manifestStep,
} from '../../core/backup/manifest-step.js';
import { SEAL_CLIENT } from '../../core/backup/seal.js';
import { bundledConfig } from '../../core/config/bundled.js';
import { createLogger } from '../../core/log.js';
import { createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { functionEnv, secondsLeft } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

// Standard retries, five attempts: the seal's many tags (core/backup/seal.ts SEAL_CLIENT).
const s3 = traced(createS3Client({ ...FUNCTION_REQUEST_BOUNDS, ...SEAL_CLIENT }));
const logger = createLogger({ service: 'infrahub-backup-manifest' });

export const handler = lambdaHandler(
  async (event: unknown, context: { getRemainingTimeInMillis(): number }): Promise<ManifestSummary> => {
    const { BACKUP_BUCKET: bucket } = functionEnv(['BACKUP_BUCKET']);
    return manifestStep(manifestEvent(event, bundledConfig(import.meta.url)), {
      s3,
      bucket,
      logger,
      secondsLeft: () => secondsLeft(context, MANIFEST_MARGIN_SECONDS * 1000),
    });
  },
);
