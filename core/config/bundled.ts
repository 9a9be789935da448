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
