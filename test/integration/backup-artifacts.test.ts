import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { backupArtifacts } from '../../containers/runner/src/components/artifacts.js';
import type { RunContext } from '../../containers/runner/src/context.js';
import { fileKey, resultKey } from '../../core/backup/layout.js';
import { ArtifactsResultSchema } from '../../core/backup/results.js';
import { createLogger } from '../../core/log.js';
import { getJson } from '../../core/s3/objects.js';
import type { S3Server } from '../../harness/index.js';
import { downloadAndHash, useLocalS3 } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const MiB = 1024 * 1024;
const Bucket = 'backups-artifacts-test';
const Source = 'infrahub-artifacts';
const target = 'infrahub-prod';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('backup runner: artifact storage', () => {
  const local = useLocalS3(Bucket);
  let server: S3Server;
  let s3: S3Client;
  const sourceObjects: Record<string, Buffer> = {
    'artifacts/device-1/startup-config.txt': Buffer.from('hostname switch-1\n'),
    'artifacts/device 2/rendered config.json': Buffer.from('{"hostname": "switch-2"}'),
    'artifacts/large.bin': randomBytes(12 * MiB + 3),
    'other/ignored.txt': Buffer.from('outside the prefix'),
  };

  const ctx = (backupId: string): RunContext => ({
    s3,
    bucket: Bucket,
    target,
    backupId,
    partSize: 5 * MiB,
    concurrency: 2,
    logger: createLogger({}, { write: () => undefined }),
  });

  beforeAll(async () => {
    server = local.server;
    s3 = local.s3;
    await s3.send(new CreateBucketCommand({ Bucket: Source }));
    for (const [Key, Body] of Object.entries(sourceObjects))
      await s3.send(new PutObjectCommand({ Bucket: Source, Key, Body }));
  });

  it('copies every object under the prefix server-side and records its SHA-256', async () => {
    const backupId = 'infrahub_backup_20261121_020000';
    // A 5 MiB threshold sends the 12 MiB object through the multipart copy used above 5 GiB.
    const result = await backupArtifacts(
      ctx(backupId),
      { type: 's3', bucket: Source, prefix: 'artifacts/' },
      {
        multipartCopyThreshold: 5 * MiB,
        copyPartSize: 5 * MiB,
      },
    );
    expect(result.files.map((f) => f.path).sort()).toEqual([
      'artifacts/device 2/rendered config.json',
      'artifacts/device-1/startup-config.txt',
      'artifacts/large.bin',
    ]);
    for (const file of result.files) {
      const original = sourceObjects[file.path] as Buffer;
      expect(file.sha256).toBe(sha256(original));
      expect(file.size).toBe(original.length);
      const copy = await downloadAndHash(s3, Bucket, fileKey(target, backupId, file.path));
      expect(copy.sha256).toBe(file.sha256);
    }
  });

  it('streams every file of a mounted path, through the runner entrypoint', async () => {
    const root = testTempDir('infrahub-storage-');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    const files: Record<string, Buffer> = {
      'a/b/config.txt': Buffer.from('interface Ethernet1\n'),
      'top.bin': randomBytes(6 * MiB),
      'empty.txt': Buffer.alloc(0),
    };
    for (const [rel, body] of Object.entries(files)) writeFileSync(join(root, rel), body);

    const backupId = 'infrahub_backup_20261121_030000';
    const run = await runRunner('backup-artifacts', {
      ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
      S3_PART_SIZE_MIB: '5',
      ARTIFACTS_SOURCE: 'path',
      ARTIFACTS_PATH: root,
    });
    expect(run.code, run.stderr).toBe(0);
    const result = await getJson(s3, Bucket, resultKey(target, backupId, 'artifacts'), ArtifactsResultSchema);
    expect(Object.fromEntries((result?.files ?? []).map((f) => [f.path, f.sha256]))).toEqual(
      Object.fromEntries(Object.entries(files).map(([rel, body]) => [`artifacts/${rel}`, sha256(body)])),
    );
    const big = await downloadAndHash(s3, Bucket, fileKey(target, backupId, 'artifacts/top.bin'));
    expect(big.sha256).toBe(sha256(files['top.bin'] as Buffer));
  });

  it('refuses a path store with symbolic links or other non-files, naming each, and writes no result', async () => {
    const root = testTempDir('infrahub-storage-links-');
    mkdirSync(join(root, 'dir'), { recursive: true });
    writeFileSync(join(root, 'dir', 'real.txt'), 'kept\n');
    symlinkSync('real.txt', join(root, 'dir', 'to-file'));
    symlinkSync('/etc', join(root, 'to-outside-dir'));
    symlinkSync('missing', join(root, 'dangling'));
    execFileSync('mkfifo', [join(root, 'dir', 'pipe')]);

    const backupId = 'infrahub_backup_20261121_031500';
    const run = await runRunner('backup-artifacts', {
      ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
      ARTIFACTS_SOURCE: 'path',
      ARTIFACTS_PATH: root,
    });
    expect(run.code, run.stderr).toBe(10);
    expect(run.stderr).toMatch(/UnsupportedArtifact/);
    for (const entry of [
      'dir/to-file (symbolic link to real.txt)',
      'to-outside-dir (symbolic link to /etc)',
      'dangling (symbolic link to missing)',
      'dir/pipe (named pipe)',
    ])
      expect(run.stderr).toContain(entry);
    expect(
      await getJson(s3, Bucket, resultKey(target, backupId, 'artifacts'), ArtifactsResultSchema),
    ).toBeUndefined();
  });

  it('refuses artifact names that no backup path can hold, before copying anything', async () => {
    const bucket = 'infrahub-artifacts-odd-keys';
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    for (const Key of ['store/ok.txt', 'store/a/../b.txt', 'store//twice.txt', 'store/back\\slash'])
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Buffer.from(Key) }));
    const backupId = 'infrahub_backup_20261121_033000';
    const error = await backupArtifacts(ctx(backupId), { type: 's3', bucket, prefix: 'store/' }).catch(
      (e) => e,
    );
    expect(error).toMatchObject({ name: 'UnsupportedArtifact' });
    expect(error.message).toContain('"a/../b.txt" has a "." or ".." segment');
    expect(error.message).toContain('"/twice.txt" starts with "/"');
    expect(error.message).toContain('"back\\\\slash" contains a backslash');
    expect(error.message).not.toContain('ok.txt');
    const copied = await s3.send(
      new ListObjectsV2Command({ Bucket: Bucket, Prefix: `${target}/${backupId}/` }),
    );
    expect(copied.KeyCount ?? 0).toBe(0);

    const root = testTempDir('infrahub-storage-odd-');
    writeFileSync(join(root, 'back\\slash.txt'), 'x');
    await expect(backupArtifacts(ctx(backupId), { type: 'path', path: root })).rejects.toMatchObject({
      name: 'UnsupportedArtifact',
      message: expect.stringContaining('contains a backslash'),
    });
  });

  it('names the bucket when the source cannot be read', async () => {
    await expect(
      backupArtifacts(ctx('infrahub_backup_20261121_040000'), {
        type: 's3',
        bucket: 'missing-source-bucket',
        prefix: '',
      }),
    ).rejects.toMatchObject({
      name: 'StorageError',
      message: expect.stringMatching(/missing-source-bucket/),
    });
  });
});
