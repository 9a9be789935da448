/**
 * The backup state machine's first state: validate the execution input against its schema and the
 * deployed configuration, before any side effect, and return the plan (backup id, options, target
 * names). A bad input fails here with InvalidInput, one line per field.
 */
import { type BackupPlan, planBackup } from '../../core/backup/plan.js';
import { bundledConfig } from '../../core/config/bundled.js';
import { createLogger } from '../../core/log.js';

const logger = createLogger({ service: 'infrahub-backup-plan' });

export interface PlanEvent {
  /** The execution input, as the state machine passes it ($$.Execution.Input). */
  input: unknown;
  /** The execution's start time ($$.Execution.StartTime): the backup id derives from it. */
  startTime: string;
}

export async function handler(event: PlanEvent): Promise<BackupPlan> {
  const plan = planBackup(event.input, bundledConfig(import.meta.url), new Date(event.startTime));
  logger.info('backup planned', {
    backupId: plan.backupId,
    targets: plan.targets.length,
    components: plan.components,
  });
  return plan;
}
