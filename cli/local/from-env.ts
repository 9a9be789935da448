/**
 * A local execution (backup, restore or drill) against any AWS-compatible endpoint, with the tools of
 * this machine: what `npm run backup:local` and `infrahub-backup backup|restore --local` run. The
 * runner takes PG_BINDIR, NEO4J_ADMIN, NEO4J_HOME, NEO4J_CONF, RESTORE_WORK_DIR and DRILL_PG_USER from
 * this process's environment; a Community DBMS is stopped and started with NEO4J_STOP_COMMAND and
 * NEO4J_START_COMMAND (without them, a Community database step is refused by the DBMS stand-in).
 *
 * The Lambda steps' log lines (core/log.ts: Powertools Logger, JSON, redacted) go to standard error,
 * at WARN unless POWERTOOLS_LOG_LEVEL or LOG_LEVEL sets the level (Powertools' own variables); a live
 * progress line on a terminal is erased before each, so it is never written into.
 */
import { spawnSync } from 'node:child_process';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { createLogger, type Logger } from '../../core/log.js';
import { boundedClientOptions, createS3Client } from '../../core/s3/client.js';
import { clearLiveLine } from '../output.js';
import { type LocalExecution, type LocalTargetRuntime, runStateMachineLocally } from './backup.js';
import type { ExecutionEvent } from './state-machine.js';
import type { MachineKind } from './synth.js';

function shell(command: string, what: string): void {
  const run = spawnSync('/bin/sh', ['-c', command], { stdio: 'inherit' });
  if (run.status !== 0) throw new Error(`${what} ("${command}") exited with ${run.status}`);
}

/**
 * The local mode's logger for the Lambda steps: Powertools Logger (core/log.ts, JSON and redacted),
 * each line to `write` (default: standard error, after erasing a live progress line). Its level is
 * POWERTOOLS_LOG_LEVEL, else LOG_LEVEL (read by Powertools from the process's environment), else
 * WARN: the progress lines stay readable, warnings and errors are shown.
 */
export function localLogger(
  env: NodeJS.ProcessEnv = process.env,
  write: (line: string) => void = (line) => {
    clearLiveLine();
    process.stderr.write(`${line}\n`);
  },
): Logger {
  const levelSet = Boolean(env.POWERTOOLS_LOG_LEVEL || env.LOG_LEVEL);
  return createLogger(
    { service: 'infrahub-backup-local' },
    { ...(levelSet ? {} : { level: 'warn' }), write },
  );
}

/**
 * Runs the backup, restore or drill state machine here (runStateMachineLocally) against `endpoint`,
 * with the tools and credentials of `env` (default process.env); the Lambda steps log through
 * localLogger. Resolves to the execution's outcome; rejects when the SNS topic cannot be created.
 */
export async function runLocalExecution(
  machine: MachineKind,
  input: unknown,
  options: {
    config: DeploymentConfig;
    endpoint: string;
    bucket: string;
    region?: string;
    topicArn?: string;
    env?: NodeJS.ProcessEnv;
    onEvent?: (event: ExecutionEvent) => void;
    /** Default: localLogger(env). */
    logger?: Logger;
    /**
     * The pause before every retry of a Task state, in milliseconds, in place of its Retry's
     * IntervalSeconds, BackoffRate and jitter (parseRetryInterval). Default: the definition's own, as
     * on AWS (a transient runner error waits up to 60 s, then up to 120 s).
     */
    retryIntervalMs?: number;
  },
): Promise<LocalExecution> {
  const env = options.env ?? process.env;
  const { config, endpoint } = options;
  const region = options.region ?? env.AWS_REGION ?? config.region;
  const s3 = createS3Client({ endpoint, region, forcePathStyle: true });
  const sns = new SNSClient({ endpoint, region, ...boundedClientOptions() });
  const topicArn =
    options.topicArn ??
    (await sns.send(new CreateTopicCommand({ Name: 'infrahub-backup-notices' }))).TopicArn ??
    '';
  const tools: Record<string, string> = {};
  for (const name of [
    'PG_BINDIR',
    'NEO4J_ADMIN',
    'NEO4J_HOME',
    'NEO4J_CONF',
    'NEO4J_COPY_DIR',
    'RESTORE_WORK_DIR',
    'DRILL_PG_USER',
  ])
    if (env[name]) tools[name] = env[name] as string;
  const stop = env.NEO4J_STOP_COMMAND;
  const start = env.NEO4J_START_COMMAND;
  const runtime = (): LocalTargetRuntime => ({
    env: tools,
    ...(stop && start
      ? {
          dbms: {
            stop: async () => shell(stop, 'NEO4J_STOP_COMMAND'),
            start: async () => shell(start, 'NEO4J_START_COMMAND'),
          },
        }
      : {}),
  });
  return runStateMachineLocally(machine, input, {
    config,
    logger: options.logger ?? localLogger(env),
    runtime,
    aws: {
      endpoint,
      env: () => ({
        AWS_REGION: region,
        ...Object.fromEntries(
          ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']
            .filter((k) => env[k])
            .map((k) => [k, env[k] as string]),
        ),
      }),
      s3,
      secrets: new SecretsManagerClient({ endpoint, region, ...boundedClientOptions() }),
      sns,
      events: new EventBridgeClient({ endpoint, region, ...boundedClientOptions() }),
      cloudwatch: new CloudWatchClient({ endpoint, region, ...boundedClientOptions() }),
      bucket: options.bucket,
      topicArn,
    },
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(options.retryIntervalMs !== undefined ? { retryIntervalMs: options.retryIntervalMs } : {}),
  });
}
