/** Lambda handler for the per-target lock steps; BACKUP_BUCKET comes from the function's environment. */
import { SFNClient } from '@aws-sdk/client-sfn';
import { lockStep, stepFunctionsExecutionStatus } from '../../core/backup/lock-step.js';
import { bundledConfig } from '../../core/config/bundled.js';
import { createLogger } from '../../core/log.js';
import { boundedClientOptions, createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { functionEnv } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const s3 = traced(createS3Client(FUNCTION_REQUEST_BOUNDS));
const sfn = traced(new SFNClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS)));
const logger = createLogger({ service: 'infrahub-backup-lock' });
// A lock whose holder's execution has ended is taken over (states:DescribeExecution).
const executionStatus = stepFunctionsExecutionStatus(sfn, logger);

export const handler = lambdaHandler(async (event: unknown) => {
  const { BACKUP_BUCKET: bucket } = functionEnv(['BACKUP_BUCKET']);
  return lockStep(event, { s3, bucket, config: bundledConfig(import.meta.url), logger, executionStatus });
});
