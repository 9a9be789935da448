/** Lambda handler for the fleet report after the Map. Pure: no clients. */
import { createLogger } from '../../core/log.js';
import { lambdaHandler } from '../handler.js';
import { type FleetReport, reportFleet } from './report.js';

const logger = createLogger({ service: 'infrahub-backup-report' });

export const handler = lambdaHandler(async (event: unknown): Promise<FleetReport> => {
  const report = reportFleet(event);
  logger.info('fleet report', {
    backupId: report.backupId,
    succeeded: report.succeeded.length,
    failed: report.failed.length,
  });
  return report;
});
