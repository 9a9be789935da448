/**
 * The backup state machine's first state: validate the execution input against its schema and the
 * deployed configuration, before any side effect, and return the plan (backup id, options, target
 * names). A bad input fails here with InvalidInput, one line per field.
 */

import { z } from 'zod';
import { type BackupPlan, planBackup } from '../../core/backup/plan.js';
import { bundledConfig } from '../../core/config/bundled.js';
import { parseInput } from '../../core/config/load.js';
import { createLogger } from '../../core/log.js';

const logger = createLogger({ service: 'infrahub-backup-plan' });

export const PlanEventSchema = z.strictObject({
  /** The execution input, as the state machine passes it ($$.Execution.Input); validated by planBackup. */
  input: z.unknown(),
  /** The execution's start time ($$.Execution.StartTime): the backup id derives from it. */
  startTime: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 timestamp' }),
});
export type PlanEvent = z.input<typeof PlanEventSchema>;

export async function handler(input: unknown): Promise<BackupPlan> {
  const event = parseInput(PlanEventSchema, input, 'plan event');
  const plan = planBackup(event.input, bundledConfig(import.meta.url), new Date(event.startTime));
  logger.info('backup planned', {
    backupId: plan.backupId,
    targets: plan.targets.length,
    components: plan.components,
  });
  return plan;
}
