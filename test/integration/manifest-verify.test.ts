import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { backupArtifacts } from '../../containers/runner/src/components/artifacts.js';
import type { RunContext } from '../../containers/runner/src/context.js';
import { fileKey, manifestKey, resultKey } from '../../core/backup/layout.js';
import { METADATA_VERSION, writeManifest } from '../../core/backup/manifest.js';
import { describeProblems, verifyBackup } from '../../core/backup/verify.js';
import { createLogger } from '../../core/log.js';
import { putJson } from '../../core/s3/objects.js';
import { createVersionedBucket } from '../../harness/index.js';
import { downloadAndHash, useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-verify-test';
const target = 'infrahub-lab';

describe('manifest and verify (real S3 server)', () => {
  const local = useLocalS3(Bucket);
  let s3: S3Client;
  let root: string;

  /** A small real backup: artifacts captured from a source bucket, then the manifest. */
  async function makeBackup(backupId: string): Promise<void> {
    const ctx: RunContext = {
      s3,
      bucket: Bucket,
      target,
      backupId,
      partSize: 5 * 1024 * 1024,
      concurrency: 2,
      logger: createLogger({}, { write: () => undefined }),
    };
    const result = await backupArtifacts(ctx, { type: 's3', bucket: 'verify-source', prefix: '' });
    await putJson(s3, Bucket, resultKey(target, backupId, 'artifacts'), result);
    await writeManifest(s3, Bucket, { target, backupId, components: ['artifacts'], toolVersion: 'test' });
  }

  beforeAll(async () => {
    s3 = local.s3;
    await createVersionedBucket(s3, 'verify-source');
    root = 'verify-source';
    for (const name of ['a.txt', 'b.txt', 'c.txt']) {
      await s3.send(new PutObjectCommand({ Bucket: root, Key: name, Body: `content of ${name}` }));
    }
  });

  it('writes backup_information.json last, with 4-space indentation and infrahub-backup keys', async () => {
    const backupId = 'infrahub_backup_20261121_020000';
    await makeBackup(backupId);
    const text = (await downloadAndHash(s3, Bucket, manifestKey(target, backupId))).body.toString('utf8');
    expect(text).toMatch(
      /^\{\n {4}"metadata_version": 2025111200,\n {4}"backup_id": "infrahub_backup_20261121_020000",/,
    );
    const manifest = JSON.parse(text);
    expect(manifest.metadata_version).toBe(METADATA_VERSION);
    expect(Object.keys(manifest.checksums)).toEqual([
      'artifacts/a.txt',
      'artifacts/b.txt',
      'artifacts/c.txt',
    ]);
    expect(await verifyBackup(s3, Bucket, target, backupId)).toMatchObject({
      ok: true,
      files: 3,
      downloaded: 0,
      problems: [],
    });
    expect(await verifyBackup(s3, Bucket, target, backupId, { deep: true })).toMatchObject({
      ok: true,
      downloaded: 3,
    });
  });

  it('reports every missing, unexpected, overwritten or altered file', async () => {
    const backupId = 'infrahub_backup_20261121_030000';
    await makeBackup(backupId);
    await s3.send(new DeleteObjectCommand({ Bucket, Key: fileKey(target, backupId, 'artifacts/a.txt') }));
    await s3.send(
      new PutObjectCommand({
        Bucket,
        Key: fileKey(target, backupId, 'artifacts/b.txt'),
        Body: 'content of b.txx',
      }),
    );
    await s3.send(
      new PutObjectCommand({ Bucket, Key: fileKey(target, backupId, 'artifacts/stray.txt'), Body: 'x' }),
    );

    const report = await verifyBackup(s3, Bucket, target, backupId);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => [p.path, p.kind])).toEqual([
      ['artifacts/a.txt', 'missing'],
      ['artifacts/b.txt', 'version'],
      ['artifacts/stray.txt', 'unexpected'],
    ]);
    expect(describeProblems(report)).toEqual([
      'artifacts/a.txt: missing',
      expect.stringMatching(/^artifacts\/b\.txt: overwritten \(version /),
      'artifacts/stray.txt: not in the manifest (1 bytes)',
    ]);

    // Deep verification hashes the content: same size, different bytes.
    const deep = await verifyBackup(s3, Bucket, target, backupId, { deep: true });
    expect(deep.problems.find((p) => p.path === 'artifacts/b.txt')).toMatchObject({ kind: 'checksum' });
  });

  it('says a backup without a manifest is incomplete', async () => {
    await expect(verifyBackup(s3, Bucket, target, 'infrahub_backup_20261121_040000')).rejects.toMatchObject({
      name: 'ManifestError',
      message: expect.stringMatching(/has no backup_information\.json: the backup is incomplete or failed/),
    });
  });
});
