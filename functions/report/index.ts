/**
 * Lambda handler for the fleet report after the Map: reads the Distributed Map's results from
 * BACKUP_BUCKET (ResultWriter), so it names every target of a fleet of 1,000.
 */
import { createLogger } from '../../core/log.js';
import { createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { functionEnv } from '../env.js';
import { lambdaHandler } from '../handler.js';
import { type FleetReport, fleetReport } from './report.js';

const s3 = createS3Client(FUNCTION_REQUEST_BOUNDS);
const logger = createLogger({ service: 'infrahub-backup-report' });

export const handler = lambdaHandler(async (event: unknown): Promise<FleetReport> => {
  const { BACKUP_BUCKET: bucket } = functionEnv(['BACKUP_BUCKET']);
  const report = await fleetReport(event, { s3, bucket });
  logger.info('fleet report', {
    backupId: report.backupId,
    succeeded: report.succeeded.length,
    failed: report.failed.length,
  });
  return report;
});
