/**
 * Per-target steps around a backup in the fleet Map: take the target's lock and resolve its work
 * item (connection details, secret names) at the start; release the lock at the end, on success or
 * failure. Takes its clients and configuration as arguments.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { BackupIdSchema } from '../../core/backup/layout.js';
import { acquireLock, releaseLock } from '../../core/backup/lock.js';
import { ComponentSchema } from '../../core/backup/manifest.js';
import { type TargetWork, targetWork } from '../../core/backup/plan.js';
import { parseInput } from '../../core/config/load.js';
import { type DeploymentConfig, targetName } from '../../core/config/schema.js';
import type { Logger } from '../../core/log.js';

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
  });
  log.info('lock acquired', { owner: event.owner, backupId: event.backupId });
  return work;
}
