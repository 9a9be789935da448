/**
 * Lambda handler for the fleet report after a Distributed Map: reads the Map's results from
 * BACKUP_BUCKET (ResultWriter), so it names every target of a fleet of 1,000. A backup's
 * (`{backupId, results}`) or a fleet drill's (`{kind: "drill-fleet", results}`): reportStep. After a
 * Map that failed as a whole (its Catch: `{..., executionId, targets, mapFailure}`), it finds the Map
 * Run's results through the execution's Map Runs (states:ListMapRuns).
 */

import { SFNClient } from '@aws-sdk/client-sfn';
import {
  type DrillFleetReport,
  type FleetReport,
  reportStep,
  stepFunctionsMapRuns,
} from '../../core/backup/fleet-report.js';
import { createLogger } from '../../core/log.js';
import { boundedClientOptions, createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { functionEnv } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const s3 = traced(createS3Client(FUNCTION_REQUEST_BOUNDS));
const sfn = traced(new SFNClient(boundedClientOptions(FUNCTION_REQUEST_BOUNDS)));
const mapRuns = stepFunctionsMapRuns(sfn);
const logger = createLogger({ service: 'infrahub-backup-report' });

export const handler = lambdaHandler(async (event: unknown): Promise<FleetReport | DrillFleetReport> => {
  const { BACKUP_BUCKET: bucket } = functionEnv(['BACKUP_BUCKET']);
  const report = await reportStep(event, { s3, bucket, mapRuns });
  const mapFailed = event !== null && typeof event === 'object' && 'mapFailure' in event;
  if ('backupId' in report)
    logger.info(mapFailed ? 'fleet report: the Map failed' : 'fleet report', {
      backupId: report.backupId,
      succeeded: report.succeeded.length,
      failed: report.failed.length,
    });
  else
    logger.info(mapFailed ? 'fleet drill report: the Map failed' : 'fleet drill report', {
      passed: report.passed,
      failed: report.failed,
    });
  return report;
});
