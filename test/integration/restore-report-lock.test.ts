/**
 * The restore report Lambda when the restore's lock release failed after its retries (issue 12
 * review, item 3): the report, the notice and the event say the lock was left, its key, that the next
 * run takes it over, and when it expires; a released lock adds nothing. Real moto (S3, SNS,
 * EventBridge). The state machine path (ReleaseRestoreLock's Catch into $.lockRelease) is run in
 * restore-state-machine.test.ts.
 */
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { LocalAws } from '../../cli/local/backup.js';
import { provisionLocalAws } from '../../cli/local/harness-target.js';
import { restoreStepKey } from '../../core/backup/layout.js';
import { createLogger } from '../../core/log.js';
import { restoreReportStep } from '../../core/restore/report.js';
import { getJson } from '../../core/s3/objects.js';
import { type S3Server, startS3 } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { captureNotices, type Notices } from '../helpers/notices.js';

const bucket = 'infrahub-backups-report-lock';

describe('restore report: a lock left behind', () => {
  let aws: S3Server;
  let local: LocalAws;
  let notices: Notices;

  beforeAll(async () => {
    aws = await startS3();
    local = await provisionLocalAws(aws, bucket, [
      {
        name: 'infrahub-lab',
        postgres: { port: 5432, majorVersion: 15 } as never,
        neo4j: { boltPort: 7687, version: '5.26.0' } as never,
        infrahub: { address: 'http://127.0.0.1:9', token: 'unused-token-value' },
        storagePath: tmpdir(),
      },
    ]);
    notices = await captureNotices(local);
  }, scaled(240_000));
  afterAll(async () => {
    await aws?.stop();
  });

  const deps = () => ({
    s3: local.s3,
    bucket,
    sns: local.sns,
    events: local.events,
    cloudwatch: local.cloudwatch,
    topicArns: [local.topicArn],
    logger: createLogger({}, { write: () => undefined }),
  });
  const event = (restoreId: string, lockRelease: unknown) => ({
    kind: 'restore' as const,
    // One execution per restore: a notice is sent once per execution, target and outcome (its request id).
    executionId: `arn:aws:states:us-east-1:000000000000:execution:infrahub-backup-restore:${restoreId}`,
    startedAt: '2026-11-21T03:00:00Z',
    plan: { target: 'infrahub-lab', backupId: 'infrahub_backup_20261121_020000', restoreId },
    lockRelease,
    lockTtlSeconds: 12 * 3600,
  });

  it('says in the report, the notice and the event that the lock was left, and when it expires', async () => {
    const restoreId = 'restore_20261121_030000_abcd1234';
    const out = await restoreReportStep(
      event(restoreId, {
        Error: 'StorageError',
        Cause: JSON.stringify({
          errorType: 'StorageError',
          errorMessage: 'releasing the lock failed: SlowDown',
        }),
      }),
      deps(),
    );
    expect(out.ok).toBe(true);
    const [notice] = await notices.sns();
    expect(notice?.Message).toContain('lock could not be released: locks/infrahub-lab.json was left');
    expect(notice?.Message).toMatch(/StorageError/);
    expect(notice?.Message).toMatch(/takes the lock over/);
    expect(notice?.Message).toContain('expires at about 2026-11-21T15:00:00.000Z');
    const [ev] = await notices.events();
    expect(ev?.detail).toMatchObject({
      lockLeft: {
        key: 'locks/infrahub-lab.json',
        error: 'StorageError',
        expiresAt: '2026-11-21T15:00:00.000Z',
      },
    });
    const report = await getJson(
      local.s3,
      bucket,
      restoreStepKey('infrahub-lab', restoreId, 'report'),
      z.looseObject({ lockLeft: z.unknown().optional() }),
    );
    expect(report?.lockLeft).toMatchObject({ key: 'locks/infrahub-lab.json', error: 'StorageError' });
  });

  it('adds nothing about the lock when it was released, or never held', async () => {
    for (const [i, lockRelease] of [{ released: true }, { notHeld: true }].entries()) {
      await restoreReportStep(event(`restore_20261121_03001${i}_abcd1234`, lockRelease), deps());
      const [notice] = await notices.sns();
      expect(notice?.Message).not.toMatch(/lock could not be released/);
      const [ev] = await notices.events();
      expect(ev?.detail).not.toHaveProperty('lockLeft');
    }
  });
});
