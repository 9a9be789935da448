import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { backupArtifacts } from '../../containers/runner/src/components/artifacts.js';
import { fileKey, manifestKey, resultKey } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import { manifestStep } from '../../core/backup/manifest-step.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { createLogger } from '../../core/log.js';
import { planRestore } from '../../core/restore/plan.js';
import { putJson } from '../../core/s3/objects.js';
import { createVersionedBucket } from '../../harness/index.js';
import { downloadAndHash, useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-restore-plan';
const target = 'infrahub-lab';
const logger = createLogger({}, { write: () => undefined });
const config = loadDeploymentConfigFile('config/example.json');

// The checks before a restore touches anything, against backups in a real S3 server (moto).
describe('restore plan: resolve, verify, check', () => {
  const local = useLocalS3(Bucket);
  let s3: S3Client;

  async function backup(backupId: string, complete = true, of = target): Promise<void> {
    const result = await backupArtifacts(
      { s3, bucket: Bucket, target: of, backupId, partSize: 5 * 1024 * 1024, concurrency: 2, logger },
      { type: 's3', bucket: 'restore-plan-source', prefix: '' },
    );
    await putJson(s3, Bucket, resultKey(of, backupId, 'artifacts'), result);
    if (complete)
      await manifestStep({ target: of, backupId, components: ['artifacts'] }, { s3, bucket: Bucket, logger });
  }

  /** The stored JSON's sections a test rewrites. */
  type StoredManifest = {
    checksums: Record<string, string | undefined>;
    sizes: Record<string, number | undefined>;
    s3: Record<string, unknown>;
  };

  /** Rewrites a stored manifest (what someone with write access to the bucket could do). */
  async function tamper(backupId: string, change: (m: StoredManifest) => void): Promise<void> {
    const key = manifestKey(target, backupId);
    const manifest = JSON.parse((await downloadAndHash(s3, Bucket, key)).body.toString('utf8'));
    change(manifest);
    await putJson(s3, Bucket, key, manifest, 4);
  }

  beforeAll(async () => {
    s3 = local.s3;
    await createVersionedBucket(s3, 'restore-plan-source');
    await s3.send(new PutObjectCommand({ Bucket: 'restore-plan-source', Key: 'a.txt', Body: 'artifact a' }));
    await s3.send(
      new PutObjectCommand({ Bucket: 'restore-plan-source', Key: 'b/c.txt', Body: 'artifact c' }),
    );
    await backup('infrahub_backup_20261119_020000');
    await backup('infrahub_backup_20261120_020000');
    await backup('infrahub_backup_20261121_020000', false); // failed: no manifest
  });

  const deps = () => ({ s3, bucket: Bucket, config });

  it('resolves "latest" to the newest complete backup and plans it', async () => {
    const plan = await planRestore({ target, components: ['artifacts'], dryRun: true }, deps());
    expect(plan).toMatchObject({
      target,
      backupId: 'infrahub_backup_20261120_020000',
      components: ['artifacts'],
      mode: 'in-place',
      dryRun: true,
      warnings: [],
    });
    expect(plan.files.map((f) => f.path).sort()).toEqual(['artifacts/a.txt', 'artifacts/b/c.txt']);
  });

  it('refuses a backup without a manifest, and a target without backups', async () => {
    await expect(
      planRestore({ target, backupId: 'infrahub_backup_20261121_020000' }, deps()),
    ).rejects.toMatchObject({ name: 'ManifestError', message: expect.stringMatching(/has no manifest/) });
    await expect(planRestore({ target: 'infrahub-prod' }, deps())).rejects.toMatchObject({
      name: 'ManifestError',
      message: 'infrahub-prod has no complete backup to restore',
    });
  });

  it('refuses the whole restore, naming the file, when an object was changed, removed or added', async () => {
    const id = 'infrahub_backup_20261119_020000';
    await s3.send(
      new PutObjectCommand({ Bucket, Key: fileKey(target, id, 'artifacts/a.txt'), Body: 'tampered' }),
    );
    await s3.send(
      new PutObjectCommand({ Bucket, Key: fileKey(target, id, 'artifacts/extra.txt'), Body: 'x' }),
    );
    const error = await planRestore({ target, backupId: id }, deps()).catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'IncompatibleBackup' });
    expect((error as Error).message).toMatch(
      /refused before touching the target: the backup does not match its manifest/,
    );
    expect((error as Error).message).toMatch(/artifacts\/a\.txt/);
    expect((error as Error).message).toMatch(/artifacts\/extra\.txt/);
  });

  it('refuses an input that names an unknown target', async () => {
    await expect(planRestore({ target: 'infrahub-stage' }, deps())).rejects.toMatchObject({
      name: 'InvalidInput',
      message: expect.stringMatching(/target: "infrahub-stage" is not configured/),
    });
  });

  // Issue 12, item 3: the plan holds every file to the manifest's SHA-256, reads only this backup's
  // objects and refuses unsafe paths, before anything is touched.
  it("refuses a backup whose manifest SHA-256 was changed while S3's checksum was left as it was", async () => {
    const id = 'infrahub_backup_20261115_020000';
    await backup(id);
    await tamper(id, (m) => {
      m.checksums['artifacts/a.txt'] = '0'.repeat(64);
    });
    await expect(planRestore({ target, backupId: id }, deps())).rejects.toMatchObject({
      name: 'IncompatibleBackup',
      message: expect.stringMatching(
        /refused before touching the target: the backup does not match its manifest:\nartifacts\/a\.txt: SHA-256 differs/,
      ),
    });
  });

  it("refuses, naming the key, a manifest that points at another target's object", async () => {
    const id = 'infrahub_backup_20261116_020000';
    await backup(id);
    await backup(id, true, 'infrahub-prod');
    const prod = await readManifest(s3, Bucket, 'infrahub-prod', id);
    await tamper(id, (m) => {
      m.s3['artifacts/a.txt'] = prod?.s3?.['artifacts/a.txt'];
    });
    await expect(planRestore({ target, backupId: id, dryRun: true }, deps())).rejects.toMatchObject({
      name: 'IncompatibleBackup',
      message: expect.stringMatching(
        /refused before touching the target: .*\n {2}- s3\.artifacts\/a\.txt: key "infrahub-prod\/infrahub_backup_20261116_020000\/artifacts\/a\.txt" is not this backup's object/,
      ),
    });
  });

  it('refuses unsafe paths before anything is touched, naming each', async () => {
    const id = 'infrahub_backup_20261117_020000';
    await backup(id);
    await tamper(id, (m) => {
      for (const evil of ['artifacts/../../../../tmp/x', '/etc/passwd', 'artifacts\\x']) {
        m.checksums[evil] = m.checksums['artifacts/a.txt'];
      }
    });
    const error = (await planRestore({ target, backupId: id }, deps()).catch((e: Error) => e)) as Error;
    expect(error).toMatchObject({ name: 'IncompatibleBackup' });
    expect(error.message).toMatch(/refused before touching the target/);
    expect(error.message).toMatch(
      /checksums\.artifacts\/\.\.\/\.\.\/\.\.\/\.\.\/tmp\/x: path .* has a "\." or "\.\." segment/,
    );
    expect(error.message).toMatch(/checksums\.\/etc\/passwd: path "\/etc\/passwd" is absolute/);
    expect(error.message).toMatch(/contains a backslash/);
  });
});
