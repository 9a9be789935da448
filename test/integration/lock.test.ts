import { describe, expect, it } from 'vitest';
import { acquireLock, releaseLock } from '../../core/backup/lock.js';
import { useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-lock-test';

describe('target lock (S3 conditional writes on the real S3 server)', () => {
  const local = useLocalS3(Bucket);

  it('lets exactly one of two racing executions take a target', async () => {
    const results = await Promise.allSettled([
      acquireLock(local.s3, Bucket, 'race', 'exec-a', { ttlSeconds: 3600 }),
      acquireLock(local.s3, Bucket, 'race', 'exec-b', { ttlSeconds: 3600 }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({
      name: 'TargetLocked',
      message: expect.stringMatching(/target race is locked by exec-[ab] since /),
    });
  });

  it('refuses a second run while the first holds the lock, and allows it after release', async () => {
    await acquireLock(local.s3, Bucket, 'prod', 'exec-1', { ttlSeconds: 3600 });
    await expect(acquireLock(local.s3, Bucket, 'prod', 'exec-2', { ttlSeconds: 3600 })).rejects.toMatchObject(
      {
        name: 'TargetLocked',
      },
    );
    expect(await releaseLock(local.s3, Bucket, 'prod', 'exec-2')).toBe(false);
    expect(await releaseLock(local.s3, Bucket, 'prod', 'exec-1')).toBe(true);
    expect((await acquireLock(local.s3, Bucket, 'prod', 'exec-2', { ttlSeconds: 3600 })).owner).toBe(
      'exec-2',
    );
  });

  it('is re-entrant for the execution that holds it (a retried step)', async () => {
    const first = await acquireLock(local.s3, Bucket, 'retry', 'exec-1', { ttlSeconds: 3600 });
    expect(await acquireLock(local.s3, Bucket, 'retry', 'exec-1', { ttlSeconds: 3600 })).toEqual(first);
  });

  it('takes over a lock whose holder died and let it expire', async () => {
    const t0 = new Date('2026-11-21T02:00:00Z');
    await acquireLock(local.s3, Bucket, 'stale', 'dead-exec', { ttlSeconds: 60, now: () => t0 });
    const later = new Date(t0.getTime() + 61_000);
    const lock = await acquireLock(local.s3, Bucket, 'stale', 'exec-new', {
      ttlSeconds: 60,
      now: () => later,
    });
    expect(lock.owner).toBe('exec-new');
    await expect(
      acquireLock(local.s3, Bucket, 'stale', 'exec-third', { ttlSeconds: 60, now: () => later }),
    ).rejects.toMatchObject({ name: 'TargetLocked' });
  });
});
