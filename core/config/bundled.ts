/**
 * How configuration reaches the Lambdas: one channel per kind of value (docs/architecture.md,
 * "How the Lambdas get their configuration").
 *
 * - Settings: the deployment configuration (config/*.json, validated by core/config/schema.ts) is
 *   bundled beside each function's code as `deployment-config.json` and read with `bundledConfig`,
 *   validated again at cold start. A handler that needs a setting (the preflight gate's bounds, a
 *   target's Infrahub API or Neo4j address, the retention policy, monitoring.perTargetMetrics) reads
 *   it there, for the target its event names (`configuredTarget`, core/config/schema.ts). The file
 *   has no size limit worth the name; the environment (4 KB) could not hold a fleet, and a copy in
 *   the state machine's definition or state would be a second source that could disagree with it.
 * - The environment holds only what CloudFormation names at deploy time and the configuration cannot
 *   know: `BACKUP_BUCKET` and `TOPIC_ARNS` (infra/constructs/backup-functions.ts sets them;
 *   functions/env.ts `functionEnv` refuses a missing one).
 * - The event holds only run-time values: the target's name, ids, the execution's options, what
 *   earlier states answered, and the few values a state machine itself reads to route or to word a
 *   message (the work item's `edition`, `capture`, `dbms`, the restore plan's `quiesce`), which the
 *   planning functions resolved from the same bundled file. The steps' event schemas are strict, so
 *   a setting sent in an event is refused (functions/steps.ts `stepEvents`).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDeploymentConfigFile } from './load.js';
import type { DeploymentConfig } from './schema.js';

/** File name of the deployment configuration bundled beside each Lambda's code at synth time. */
export const BUNDLED_CONFIG_FILE = 'deployment-config.json';

const cache = new Map<string, DeploymentConfig>();

/**
 * The deployment configuration a Lambda was deployed with: validated again at cold start, so a
 * function never runs on a configuration the schema would refuse. (Environment variables are limited
 * to 4 KB, too small for a fleet; the file ships inside the function's code, versioned with it.)
 */
export function bundledConfig(moduleUrl: string): DeploymentConfig {
  const roots = [process.env.LAMBDA_TASK_ROOT, dirname(fileURLToPath(moduleUrl))].filter(
    (r): r is string => !!r,
  );
  const file = roots.map((r) => join(r, BUNDLED_CONFIG_FILE)).find((f) => existsSync(f));
  if (!file)
    throw new Error(
      `${BUNDLED_CONFIG_FILE} is not bundled with this function (looked in ${roots.join(', ')})`,
    );
  let config = cache.get(file);
  if (!config) {
    // The schedules' fire times were checked by `cdk synth`; a deployed function must not start
    // refusing its configuration because the calendar moved on.
    config = loadDeploymentConfigFile(file, { scheduleCheckFrom: null });
    cache.set(file, config);
  }
  return config;
}
