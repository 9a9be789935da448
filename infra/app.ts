import type { App } from 'aws-cdk-lib';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../core/config/load.js';
import type { DeploymentConfig } from '../core/config/schema.js';
import { ConfigError } from '../core/errors.js';
import { BackupStack } from './stacks/backup-stack.js';
import { ReplicaStack } from './stacks/replica-stack.js';

/** Context keys read by the app (set in cdk.json or with `cdk synth -c key=value`). */
export const ContextKeys = {
  /** Path of a JSON configuration file, relative to the working directory. */
  configFile: 'infrahubBackup:configFile',
  /** The configuration inline, as an object in cdk.json or as a JSON string on the command line. */
  config: 'infrahubBackup:config',
} as const;

/** Reads the deployment configuration from context: inline first, then the file it names. */
export function resolveConfig(app: App): DeploymentConfig {
  const inline: unknown = app.node.tryGetContext(ContextKeys.config);
  if (inline !== undefined) {
    const raw = typeof inline === 'string' ? parseInlineJson(inline) : inline;
    return parseDeploymentConfig(raw, `context "${ContextKeys.config}"`);
  }
  const file: unknown = app.node.tryGetContext(ContextKeys.configFile);
  if (typeof file !== 'string' || file === '') {
    throw new ConfigError('cdk context', [
      `neither "${ContextKeys.config}" nor "${ContextKeys.configFile}" is set; point the latter at a JSON file such as config/example.json`,
    ]);
  }
  return loadDeploymentConfigFile(file);
}

function parseInlineJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`context "${ContextKeys.config}"`, [
      `is not valid JSON: ${(err as Error).message}`,
    ]);
  }
}

/** Builds every stack of the app from a validated configuration. */
export function buildApp(
  app: App,
  config: DeploymentConfig,
): { backup: BackupStack; replica?: ReplicaStack } {
  const replication = config.replication;
  const replica = replication
    ? new ReplicaStack(app, `${config.name}-replica`, {
        config: { ...config, replication },
        env: { account: config.account, region: replication.region },
        description: 'Infrahub backup: off-region replica bucket and its key',
      })
    : undefined;
  const backup = new BackupStack(app, `${config.name}`, {
    config,
    env: { account: config.account, region: config.region },
    description: 'Infrahub backup and restore: storage, orchestration and runners',
  });
  // The replica bucket must exist before the primary's replication configuration names it.
  if (replica) backup.addStackDependency(replica, 'replication names the replica bucket');
  return { backup, ...(replica ? { replica } : {}) };
}
