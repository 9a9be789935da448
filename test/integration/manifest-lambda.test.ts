import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { backupArtifacts } from '../../containers/runner/src/components/artifacts.js';
import { fileKey, manifestKey, resultKey } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import { manifestStep } from '../../core/backup/manifest-step.js';
import { createLogger } from '../../core/log.js';
import { putJson } from '../../core/s3/objects.js';
import { TOOL_VERSION } from '../../core/version.js';
import { createVersionedBucket } from '../../harness/index.js';
import { exists, useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-manifest-lambda';
const target = 'infrahub-lab';
const logger = createLogger({}, { write: () => undefined });

describe('manifest Lambda core (real S3 server)', () => {
  const local = useLocalS3(Bucket);
  let s3: S3Client;

  async function captureArtifacts(backupId: string): Promise<void> {
    const result = await backupArtifacts(
      { s3, bucket: Bucket, target, backupId, partSize: 5 * 1024 * 1024, concurrency: 2, logger },
      { type: 's3', bucket: 'manifest-source', prefix: '' },
    );
    await putJson(s3, Bucket, resultKey(target, backupId, 'artifacts'), result);
  }

  beforeAll(async () => {
    s3 = local.s3;
    await createVersionedBucket(s3, 'manifest-source');
    await s3.send(new PutObjectCommand({ Bucket: 'manifest-source', Key: 'one.txt', Body: 'artifact one' }));
    await s3.send(new PutObjectCommand({ Bucket: 'manifest-source', Key: 'two.txt', Body: 'artifact two!' }));
  });

  it('writes the manifest last and returns a small summary for the state payload', async () => {
    const backupId = 'infrahub_backup_20261121_020000';
    await captureArtifacts(backupId);
    const summary = await manifestStep(
      { target, backupId, components: ['artifacts'], executionId: 'arn:exec:1', forced: true },
      { s3, bucket: Bucket, logger },
    );
    expect(summary).toMatchObject({
      target,
      backupId,
      manifest: `s3://${Bucket}/${manifestKey(target, backupId)}`,
      files: 2,
      bytes: 25,
      componentBytes: { artifacts: 25 },
    });
    expect(JSON.stringify(summary).length).toBeLessThan(1024);
    const manifest = await readManifest(s3, Bucket, target, backupId);
    expect(manifest).toMatchObject({ tool_version: TOOL_VERSION, execution_id: 'arn:exec:1', forced: true });
  });

  it('refuses, writing nothing, when a component has not reported', async () => {
    const backupId = 'infrahub_backup_20261121_030000';
    await captureArtifacts(backupId);
    await expect(
      manifestStep(
        { target, backupId, components: ['artifacts', 'task-manager-db'] },
        { s3, bucket: Bucket, logger },
      ),
    ).rejects.toMatchObject({
      name: 'IncompleteBackup',
      message: expect.stringMatching(/no result from task-manager-db/),
    });
    expect(await exists(s3, Bucket, manifestKey(target, backupId))).toBe(false);
  });

  it('refuses when S3 no longer holds what a component recorded', async () => {
    const backupId = 'infrahub_backup_20261121_040000';
    await captureArtifacts(backupId);
    await s3.send(
      new PutObjectCommand({ Bucket, Key: fileKey(target, backupId, 'artifacts/two.txt'), Body: 'changed!' }),
    );
    await expect(
      manifestStep({ target, backupId, components: ['artifacts'] }, { s3, bucket: Bucket, logger }),
    ).rejects.toMatchObject({
      name: 'IncompleteBackup',
      message: expect.stringMatching(/artifacts\/two\.txt: (overwritten|size)/),
    });
    expect(await exists(s3, Bucket, manifestKey(target, backupId))).toBe(false);
  });

  it('rejects a malformed event, naming the fields', async () => {
    await expect(
      manifestStep({ target, backupId: 'today', components: [] }, { s3, bucket: Bucket, logger }),
    ).rejects.toThrow(
      /Invalid manifest event:[\s\S]*backupId: must look like[\s\S]*components: must name at least one component/,
    );
  });
});
