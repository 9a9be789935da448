/**
 * The backup state machine's first state: validate the execution input against its schema and the
 * deployed configuration, before any side effect, and return the plan (backup id, options, target
 * names). A bad input fails here with InvalidInput, one line per field.
 */
import { z } from 'zod';
import { parseInput } from '../config/load.js';
import type { DeploymentConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { type BackupPlan, planBackup } from './plan.js';

export const PlanEventSchema = z.strictObject({
  /** The execution input, as the state machine passes it ($$.Execution.Input); validated by planBackup. */
  input: z.unknown(),
  /** The execution's start time ($$.Execution.StartTime): the backup id derives from it. */
  startTime: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 timestamp' }),
});
export type PlanEvent = z.input<typeof PlanEventSchema>;

export function planStep(input: unknown, deps: { config: DeploymentConfig; logger: Logger }): BackupPlan {
  const event = parseInput(PlanEventSchema, input, 'plan event');
  const plan = planBackup(event.input, deps.config, new Date(event.startTime));
  deps.logger.info('backup planned', {
    backupId: plan.backupId,
    targets: plan.targets.length,
    components: plan.components,
  });
  return plan;
}
