import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateStateMachineCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { describe, expect, it } from 'vitest';
import { acquireLock, lockKey } from '../../core/backup/lock.js';
import { lockStep, stepFunctionsExecutionStatus } from '../../core/backup/lock-step.js';
import { BUNDLED_CONFIG_FILE } from '../../core/config/bundled.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { createLogger } from '../../core/log.js';
import { handler as planHandler } from '../../functions/plan/index.js';
import { exists, useLocalS3 } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'backups-lock-lambda';
const config = loadDeploymentConfigFile('config/example.json');
const logger = createLogger({}, { write: () => undefined });
const acquire = (owner: string, target = 'infrahub-lab') => ({
  action: 'acquire',
  target,
  backupId: 'infrahub_backup_20261121_020000',
  components: ['database', 'task-manager-db'],
  force: false,
  owner,
});

describe('lock Lambda core and plan handler', () => {
  const local = useLocalS3(Bucket);

  it('takes the lock and returns the target work; a second execution is refused until release', async () => {
    const deps = { s3: local.s3, bucket: Bucket, config, logger };
    const work = await lockStep(acquire('arn:exec:one'), deps);
    expect(work).toMatchObject({
      target: 'infrahub-lab',
      edition: 'community',
      components: ['database', 'task-manager-db'],
    });
    await expect(lockStep(acquire('arn:exec:two'), deps)).rejects.toMatchObject({
      name: 'TargetLocked',
      message: expect.stringMatching(/locked by arn:exec:one/),
    });
    expect(
      await lockStep({ action: 'release', target: 'infrahub-lab', owner: 'arn:exec:one' }, deps),
    ).toEqual({
      target: 'infrahub-lab',
      released: true,
    });
    expect(await lockStep(acquire('arn:exec:two'), deps)).toMatchObject({ target: 'infrahub-lab' });
  });

  it('refuses an unknown target before taking any lock', async () => {
    await expect(
      lockStep(acquire('arn:exec:x', 'infrahub-ghost'), { s3: local.s3, bucket: Bucket, config, logger }),
    ).rejects.toMatchObject({
      name: 'InvalidInput',
    });
    expect(await exists(local.s3, Bucket, lockKey('infrahub-ghost'))).toBe(false);
  });

  it('plans from the configuration bundled beside the function', async () => {
    const root = testTempDir('lambda-root-');
    copyFileSync('config/example.json', join(root, BUNDLED_CONFIG_FILE));
    process.env.LAMBDA_TASK_ROOT = root;
    try {
      const plan = await planHandler({
        input: { targets: ['infrahub-prod'] },
        startTime: '2026-11-21T02:00:00.123Z',
      });
      expect(plan).toEqual({
        backupId: 'infrahub_backup_20261121_020000',
        components: ['database', 'task-manager-db', 'artifacts'],
        force: false,
        targets: ['infrahub-prod'],
      });
      await expect(
        planHandler({ input: { targets: 'prod' }, startTime: '2026-11-21T02:00:00Z' }),
      ).rejects.toMatchObject({
        name: 'InvalidInput',
      });
      // A start time that is not one would otherwise become the backup id "infrahub_backup_NaNNaN...".
      await expect(planHandler({ input: {}, startTime: 'yesterday' })).rejects.toThrow(
        /Invalid plan event:[\s\S]*startTime: must be an ISO 8601 timestamp/,
      );
    } finally {
      delete process.env.LAMBDA_TASK_ROOT;
    }
  });

  // moto serves the Step Functions API: it starts executions and keeps them RUNNING (it does not run
  // their states), and StopExecution ends one (ABORTED), as an execution that ended would be.
  it('takes over the lock of an execution Step Functions reports ended, and refuses while it runs', async () => {
    const server = local.server;
    const sfn = new SFNClient({
      endpoint: server.endpoint,
      region: server.region,
      credentials: server.credentials,
    });
    const machine = await sfn.send(
      new CreateStateMachineCommand({
        name: 'infrahub-backup-backup',
        roleArn: 'arn:aws:iam::123456789012:role/sfn',
        definition: JSON.stringify({
          StartAt: 'Wait',
          States: { Wait: { Type: 'Wait', Seconds: 3600, End: true } },
        }),
      }),
    );
    const start = async (name: string) =>
      (
        await sfn.send(
          new StartExecutionCommand({ stateMachineArn: machine.stateMachineArn, name, input: '{}' }),
        )
      ).executionArn as string;
    const first = await start('first');
    const second = await start('second');
    const deps = {
      s3: local.s3,
      bucket: Bucket,
      config,
      logger,
      executionStatus: stepFunctionsExecutionStatus(sfn, logger),
    };

    await lockStep(acquire(first, 'infrahub-prod'), deps);
    await expect(lockStep(acquire(second, 'infrahub-prod'), deps)).rejects.toMatchObject({
      name: 'TargetLocked',
      message: expect.stringMatching(new RegExp(`locked by ${first}.*still running \\(RUNNING\\)`)),
    });
    // The first execution ends without releasing the lock (its release failed while S3 was down).
    await sfn.send(
      new StopExecutionCommand({ executionArn: first, error: 'States.TaskFailed', cause: 'S3 outage' }),
    );
    expect(await stepFunctionsExecutionStatus(sfn, logger)(first)).toEqual({
      running: false,
      status: 'ABORTED',
    });
    expect(await lockStep(acquire(second, 'infrahub-prod'), deps)).toMatchObject({ target: 'infrahub-prod' });
    expect(await lockStep({ action: 'release', target: 'infrahub-prod', owner: second }, deps)).toEqual({
      target: 'infrahub-prod',
      released: true,
    });

    // An execution Step Functions does not know (deleted, or past its 90 days) is not running either.
    const unknown = `${first.replace(/:first$/, '')}:long-gone`;
    expect(await stepFunctionsExecutionStatus(sfn, logger)(unknown)).toEqual({
      running: false,
      status: 'no longer exists',
    });
    await acquireLock(local.s3, Bucket, 'infrahub-prod', unknown, { ttlSeconds: 3600 });
    expect(await lockStep(acquire(second, 'infrahub-prod'), deps)).toMatchObject({ target: 'infrahub-prod' });
    // An owner that is no execution ARN cannot be asked: the lock's expiry decides.
    expect(await stepFunctionsExecutionStatus(sfn, logger)('exec-1')).toBeUndefined();
    sfn.destroy();
  });
});
