/** Lambda handler for the first state of the restore and drill state machines (a fleet drill's plan too). */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { bundledConfig } from '../../core/config/bundled.js';
import { createLogger } from '../../core/log.js';
import type { DrillFleetPlan } from '../../core/restore/plan.js';
import { type DrillStatePlan, type RestoreStatePlan, restorePlanStep } from '../../core/restore/plan-step.js';
import { boundedClientOptions, createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { functionEnv } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const s3 = traced(createS3Client(FUNCTION_REQUEST_BOUNDS));
const secrets = traced(new SecretsManagerClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS)));
const logger = createLogger({ service: 'infrahub-backup-restore-plan' });

export const handler = lambdaHandler(
  async (input: unknown): Promise<RestoreStatePlan | DrillStatePlan | DrillFleetPlan> => {
    const { BACKUP_BUCKET } = functionEnv(['BACKUP_BUCKET']);
    return restorePlanStep(input, {
      s3,
      secrets,
      bucket: BACKUP_BUCKET,
      config: bundledConfig(import.meta.url),
      logger,
    });
  },
);
