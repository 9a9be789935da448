/** Lambda handler for the first state; the deployment configuration is bundled beside the code. */
import type { BackupPlan } from '../../core/backup/plan.js';
import { planStep } from '../../core/backup/plan-step.js';
import { bundledConfig } from '../../core/config/bundled.js';
import { createLogger } from '../../core/log.js';
import { lambdaHandler } from '../handler.js';

const logger = createLogger({ service: 'infrahub-backup-plan' });

export const handler = lambdaHandler(async (input: unknown): Promise<BackupPlan> => {
  return planStep(input, { config: bundledConfig(import.meta.url), logger });
});
