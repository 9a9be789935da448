/**
 * Lambda handler for the restore and drill report (report.json, metrics, notice); topics and bucket
 * come from its environment, monitoring.perTargetMetrics and the recovery time objective (rtoMinutes)
 * from the bundled configuration (core/config/bundled.ts).
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SNSClient } from '@aws-sdk/client-sns';
import { bundledConfig } from '../../core/config/bundled.js';
import { createLogger } from '../../core/log.js';
import { restoreReportStep } from '../../core/restore/report.js';
import { boundedClientOptions, createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { functionEnv } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const s3 = traced(createS3Client(FUNCTION_REQUEST_BOUNDS));
const sns = traced(new SNSClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS)));
const events = traced(new EventBridgeClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS)));
const logger = createLogger({ service: 'infrahub-backup-restore-report' });

export const handler = lambdaHandler(async (event: unknown) => {
  const env = functionEnv(['BACKUP_BUCKET', 'TOPIC_ARNS']);
  const config = bundledConfig(import.meta.url);
  return restoreReportStep(event, {
    s3,
    sns,
    events,
    bucket: env.BACKUP_BUCKET,
    topicArns: env.TOPIC_ARNS.split(',').filter(Boolean),
    perTargetMetrics: config.monitoring.perTargetMetrics,
    rtoMinutes: config.rtoMinutes,
    logger,
  });
});
