/**
 * Lambda handler for the fleet report after a Distributed Map: reads the Map's results from
 * BACKUP_BUCKET (ResultWriter), so it names every target of a fleet of 1,000. A backup's
 * (`{backupId, results}`) or a fleet drill's (`{kind: "drill-fleet", results}`): reportStep.
 */

import { type DrillFleetReport, type FleetReport, reportStep } from '../../core/backup/fleet-report.js';
import { createLogger } from '../../core/log.js';
import { createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { functionEnv } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { traced } from '../tracing.js';

const s3 = traced(createS3Client(FUNCTION_REQUEST_BOUNDS));
const logger = createLogger({ service: 'infrahub-backup-report' });

export const handler = lambdaHandler(async (event: unknown): Promise<FleetReport | DrillFleetReport> => {
  const { BACKUP_BUCKET: bucket } = functionEnv(['BACKUP_BUCKET']);
  const report = await reportStep(event, { s3, bucket });
  if ('backupId' in report)
    logger.info('fleet report', {
      backupId: report.backupId,
      succeeded: report.succeeded.length,
      failed: report.failed.length,
    });
  else logger.info('fleet drill report', { passed: report.passed, failed: report.failed });
  return report;
});
