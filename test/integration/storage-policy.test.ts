import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutObjectLockConfigurationCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestKey } from '../../core/backup/layout.js';
import { putJson } from '../../core/s3/objects.js';
import { createVersionedBucket, type S3Server, startS3 } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_020000';

// The storage guarantees the bucket configuration relies on, against the local S3 server (moto),
// which enforces versioning and Object Lock retention.
describe('backup bucket behaviour on an S3 server', () => {
  let server: S3Server;
  let s3: S3Client;

  beforeAll(async () => {
    server = await startS3();
    s3 = server.client();
  }, scaled(120_000));

  afterAll(async () => {
    await server?.stop();
  });

  it('keeps the old version of an overwritten manifest (versioning)', async () => {
    await createVersionedBucket(s3, 'versioned');
    const key = manifestKey(target, backupId);
    const first = await putJson(s3, 'versioned', key, { backup_id: backupId, note: 'original' }, 4);
    await putJson(s3, 'versioned', key, { backup_id: backupId, note: 'overwritten' }, 4);
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: 'versioned', Prefix: key }));
    expect(versions.Versions).toHaveLength(2);
    const old = await s3.send(
      new GetObjectCommand({ Bucket: 'versioned', Key: key, VersionId: first.versionId }),
    );
    expect(JSON.parse((await old.Body?.transformToString()) ?? '')).toMatchObject({ note: 'original' });
  });

  it('refuses to delete a locked version before its retention ends (COMPLIANCE default retention)', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'locked', ObjectLockEnabledForBucket: true }));
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: 'locked',
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 7 } },
        },
      }),
    );
    const key = manifestKey(target, backupId);
    const written = await putJson(s3, 'locked', key, { backup_id: backupId }, 4);
    // (moto answers GetObjectRetention with XML the SDK cannot parse, so the lock is shown by its effect.)
    await expect(
      s3.send(new DeleteObjectCommand({ Bucket: 'locked', Key: key, VersionId: written.versionId })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
    // A delete without a version only adds a delete marker; the locked version stays readable.
    await s3.send(new DeleteObjectCommand({ Bucket: 'locked', Key: key }));
    const kept = await s3.send(
      new GetObjectCommand({ Bucket: 'locked', Key: key, VersionId: written.versionId }),
    );
    expect(JSON.parse((await kept.Body?.transformToString()) ?? '')).toEqual({ backup_id: backupId });
  });
});
