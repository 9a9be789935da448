/**
 * Per-target steps around a backup in the fleet Map: take the target's lock and resolve its work
 * item (connection details, secret names) at the start; release the lock at the end, on success or
 * failure. Takes its clients and configuration as arguments.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { z } from 'zod';
import { parseInput } from '../config/load.js';
import { type DeploymentConfig, targetName } from '../config/schema.js';
import type { Logger } from '../log.js';
import { BackupIdSchema } from './layout.js';
import { acquireLock, EXECUTION_ARN, type ExecutionStatusReader, releaseLock } from './lock.js';
import { ComponentSchema } from './manifest.js';
import { type TargetWork, targetWork } from './plan.js';

export const LockEventSchema = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('acquire'),
    target: targetName,
    backupId: BackupIdSchema,
    components: z.array(ComponentSchema).min(1),
    force: z.boolean(),
    /** The execution's id ($$.Execution.Id): the lock's owner. */
    owner: z.string().min(1),
    ttlSeconds: z
      .number()
      .int()
      .positive()
      .default(6 * 3600),
  }),
  z.strictObject({ action: z.literal('release'), target: targetName, owner: z.string().min(1) }),
]);

export interface LockDeps {
  s3: S3Client;
  bucket: string;
  config: DeploymentConfig;
  logger: Logger;
  now?: () => Date;
  /**
   * Whether a lock's holder still runs: Step Functions on AWS (stepFunctionsExecutionStatus), the
   * local runner's record of its executions in local mode (cli/local/executions.ts). Without it,
   * only a lock's expiry frees it.
   */
  executionStatus?: ExecutionStatusReader;
}

/**
 * Asks Step Functions (DescribeExecution; AWS Step Functions API Reference) whether the execution
 * holding a lock still runs: RUNNING, or PENDING_REDRIVE (a redrive about to run it again), count as
 * running; SUCCEEDED, FAILED, TIMED_OUT and ABORTED as ended; an execution Step Functions no longer
 * knows (ExecutionDoesNotExist: deleted, or past the 90 days it keeps them) as ended. Any other
 * failure (access denied, throttled, unreachable) answers "cannot tell", logged, and the lock's
 * expiry decides. Needs `states:DescribeExecution` on the state machines' executions.
 */
export function stepFunctionsExecutionStatus(
  sfn: Pick<SFNClient, 'send'>,
  logger: Logger,
): ExecutionStatusReader {
  return async (executionArn) => {
    if (!EXECUTION_ARN.test(executionArn)) return undefined;
    try {
      const out = await sfn.send(new DescribeExecutionCommand({ executionArn }));
      const status = out.status ?? 'UNKNOWN';
      return { running: status === 'RUNNING' || status === 'PENDING_REDRIVE', status };
    } catch (err) {
      const name = err instanceof Error ? err.name : 'Error';
      if (name === 'ExecutionDoesNotExist') return { running: false, status: 'no longer exists' };
      logger.warn('cannot ask Step Functions whether the lock holder still runs; its expiry decides', {
        executionArn,
        error: `${name}: ${err instanceof Error ? err.message : String(err)}`,
      });
      return undefined;
    }
  };
}

export async function lockStep(
  input: unknown,
  deps: LockDeps,
): Promise<TargetWork | { target: string; released: boolean }> {
  const event = parseInput(LockEventSchema, input, 'lock event');
  const log = deps.logger.child({ target: event.target, step: `lock-${event.action}` });
  if (event.action === 'release') {
    const released = await releaseLock(deps.s3, deps.bucket, event.target, event.owner);
    log.info(released ? 'lock released' : 'lock not held by this execution; left alone', {
      owner: event.owner,
    });
    return { target: event.target, released };
  }
  // Resolve first: an unknown target fails before any lock is taken.
  const work = targetWork(deps.config, event, event.target);
  await acquireLock(deps.s3, deps.bucket, event.target, event.owner, {
    ttlSeconds: event.ttlSeconds,
    now: deps.now,
    logger: log,
    ...(deps.executionStatus ? { executionStatus: deps.executionStatus } : {}),
  });
  log.info('lock acquired', { owner: event.owner, backupId: event.backupId });
  return work;
}
