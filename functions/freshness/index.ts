/** Lambda handler, run hourly by an EventBridge rule: the targets come from the bundled configuration. */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { freshnessStep } from '../../core/backup/freshness.js';
import { bundledConfig } from '../../core/config/bundled.js';
import { createLogger } from '../../core/log.js';
import { boundedClientOptions, createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { functionEnv } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const s3 = traced(createS3Client(FUNCTION_REQUEST_BOUNDS));
const cloudwatch = traced(new CloudWatchClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS)));
const logger = createLogger({ service: 'infrahub-backup-freshness' });

export const handler = lambdaHandler(async () => {
  const config = bundledConfig(import.meta.url);
  const { BACKUP_BUCKET: bucket } = functionEnv(['BACKUP_BUCKET']);
  return freshnessStep({
    s3,
    bucket,
    targets: config.targets.map((t) => t.name),
    rpoHours: config.rpoHours,
    perTargetMetrics: config.monitoring.perTargetMetrics,
    cloudwatch,
    logger,
  });
});
