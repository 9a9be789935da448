/**
 * What backup, restore and status share: starting an execution on AWS (or running the synthesized
 * state machine on this machine with --local), following it, and reporting its outcome.
 */
import { type Command, InvalidArgumentError } from 'commander';
import {
  CliError,
  type CommandContext,
  checkBucket,
  EXIT,
  type Settings,
  sfnClient,
  storage,
} from './context.js';
import type { LocalExecution } from './local/backup.js';
import { localStateProgress, parseRetryInterval } from './local/run-options.js';
import { type ExecutionOutcome, followExecution, startExecution } from './ops/executions.js';
import { clearLiveLine } from './output.js';

/** The flags of an execution command (backup, restore). */
export interface ExecutionOptions {
  local?: boolean;
  follow?: boolean;
  stateMachine?: string;
  reason?: string;
  /** --retry-interval with --local: the pause before each retry, in milliseconds (parseRetryInterval). */
  retryInterval?: number;
}

/** Adds --local, --retry-interval and --no-follow to an execution command. */
export function withExecutionFlags(command: Command): Command {
  return command
    .option('--local', 'run the synthesized state machine on this machine (needs --config and --endpoint)')
    .option(
      '--retry-interval <seconds>',
      "with --local: seconds before each retry of a failed step, in place of the deployed Retry's pauses (default: those, as on AWS)",
      (value: string) => {
        try {
          return parseRetryInterval(value);
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
      },
    )
    .option('--no-follow', 'start the execution and return at once (on AWS)');
}

/**
 * Prints an execution's outcome: JSON with --json, else the ARN, status and output (or error and
 * cause).
 * @throws CliError EXIT.failed unless it SUCCEEDED (after printing it)
 */
export function reportOutcome(ctx: CommandContext, s: Settings, outcome: ExecutionOutcome): void {
  if (s.json) ctx.out(JSON.stringify(outcome, null, 2));
  else if (outcome.status === 'SUCCEEDED')
    ctx.out(`${outcome.executionArn}: SUCCEEDED\n${JSON.stringify(outcome.output, null, 2)}`);
  else
    ctx.out(
      `${outcome.executionArn}: ${outcome.status}${outcome.error ? ` (${outcome.error})` : ''}\n${outcome.cause ?? ''}`,
    );
  if (outcome.status !== 'SUCCEEDED') throw new CliError('', EXIT.failed);
}

/**
 * Starts (or, with --local, runs here) a backup or restore and reports its outcome. `input` is the
 * execution input already validated against the machine's schema.
 * @throws CliError EXIT.usage when --local lacks --config, --endpoint or --bucket, or (on AWS) no state
 *   machine is given; EXIT.storage when --local's bucket cannot be read (checkBucket); EXIT.failed
 *   when the execution does not succeed
 */
export async function execute(
  ctx: CommandContext,
  kind: 'backup' | 'restore',
  input: unknown,
  options: ExecutionOptions,
): Promise<void> {
  const s = ctx.settings();
  const shown = ctx.executions;
  if (options.retryInterval !== undefined && !options.local)
    throw new CliError(
      '--retry-interval applies to a run with --local only: on AWS the deployed Retry pauses apply',
      EXIT.usage,
    );
  if (options.local) {
    if (!s.config || !s.endpoint || !s.bucket) {
      throw new CliError(
        '--local needs the deployment configuration (--config), an AWS-compatible endpoint (--endpoint) and the bucket (--bucket)',
        EXIT.usage,
      );
    }
    // Before the synthesis (seconds) and the lock's retries (a minute): a bucket S3 does not have.
    await checkBucket(storage(s));
    // Loaded only here: the local mode brings the CDK app (aws-cdk-lib), seconds of module loading
    // that every other command (and --help, --version) does without.
    const { runLocalExecution } = await import('./local/from-env.js');
    const t0 = Date.now();
    const ticker = setInterval(() => shown.waiting(Math.round((Date.now() - t0) / 1000)), 1000);
    let result: LocalExecution;
    try {
      result = await runLocalExecution(kind, input, {
        config: s.config,
        endpoint: s.endpoint,
        bucket: s.bucket,
        region: s.region,
        ...(options.retryInterval !== undefined ? { retryIntervalMs: options.retryInterval } : {}),
        onEvent: (event) => {
          // Task states only, as `npm run backup:local` prints them (a Fail state's own failure is
          // the outcome printed at the end, not a step that failed).
          const progress = localStateProgress(event);
          if (progress) shown.state({ ...progress, seconds: Math.round((Date.now() - t0) / 100) / 10 });
        },
      });
    } finally {
      clearInterval(ticker);
      clearLiveLine();
    }
    return reportOutcome(ctx, s, {
      executionArn: result.executionArn,
      status: result.status,
      ...(result.output !== undefined ? { output: result.output } : {}),
      ...(result.error ? { error: result.error } : {}),
      ...(result.cause ? { cause: result.cause } : {}),
    });
  }
  if (!options.stateMachine) {
    throw new CliError(
      `no ${kind} state machine: give --state-machine, or set ${kind === 'backup' ? 'INFRAHUB_BACKUP_STATE_MACHINE' : 'INFRAHUB_RESTORE_STATE_MACHINE'} (stack output ${kind === 'backup' ? 'BackupStateMachineArn' : 'RestoreStateMachineArn'}), or run it locally with --local`,
      EXIT.usage,
    );
  }
  const sfn = sfnClient(s);
  const executionArn = await startExecution(sfn, options.stateMachine, input);
  ctx.err(`started ${executionArn}`);
  if (options.follow === false) return ctx.out(s.json ? JSON.stringify({ executionArn }) : executionArn);
  reportOutcome(
    ctx,
    s,
    await followExecution(sfn, executionArn, { onProgress: shown.state, onPoll: shown.waiting }),
  );
}
