/**
 * Issue 18, item 3: a backup whose files retention.coldStorage moved to an archive class (GLACIER,
 * DEEP_ARCHIVE) cannot be read until restored. The restore plan finds their class in the versions
 * listing and refuses before touching anything, naming the class and how to thaw; `infrahub-backup
 * thaw` requests the restores; then the plan passes and the files read. Glacier Instant Retrieval
 * needs nothing. Against moto, which keeps storage classes, refuses GetObject of an unrestored
 * GLACIER object (InvalidObjectState) and restores at once on RestoreObject.
 */
import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client, type StorageClass } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/infrahub-backup.js';
import { backupPrefix, resultKey } from '../../core/backup/layout.js';
import { manifestStep } from '../../core/backup/manifest-step.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { createLogger } from '../../core/log.js';
import { planRestore } from '../../core/restore/plan.js';
import { hashObject, putJson } from '../../core/s3/objects.js';
import { inProcessCli } from '../helpers/cli.js';
import { useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-restore-archived';
const target = 'infrahub-lab';
const logger = createLogger({}, { write: () => undefined });
const config = loadDeploymentConfigFile('config/example.json');
const glacier = 'infrahub_backup_20261101_020000';
const instant = 'infrahub_backup_20261102_020000';

describe('restoring a backup whose files are archived', () => {
  const local = useLocalS3(Bucket);
  let s3: S3Client;
  const saved = { ...process.env };

  const cli = inProcessCli(Bucket, () => local.server.endpoint);

  /**
   * An artifacts backup whose two files are stored in `storageClass`, as a lifecycle transition leaves
   * them (their record and manifest stay in STANDARD, as the rules' backup-part=file filter keeps them).
   */
  async function archivedBackup(backupId: string, storageClass: StorageClass): Promise<void> {
    const prefix = backupPrefix(target, backupId);
    const files = [];
    for (const name of ['a.txt', 'b/c.txt']) {
      const key = `${prefix}artifacts/${name}`;
      const body = Buffer.from(`artifact ${name} of ${backupId}\n`);
      const digest = createHash('sha256').update(body).digest();
      const put = await s3.send(
        new PutObjectCommand({
          Bucket,
          Key: key,
          Body: body,
          StorageClass: storageClass,
          ChecksumAlgorithm: 'SHA256',
          ChecksumSHA256: digest.toString('base64'),
        }),
      );
      files.push({
        path: `artifacts/${name}`,
        size: body.length,
        sha256: digest.toString('hex'),
        s3: { key, versionId: put.VersionId, checksumSHA256: digest.toString('base64') },
      });
    }
    await putJson(s3, Bucket, resultKey(target, backupId, 'artifacts'), {
      target,
      backupId,
      component: 'artifacts',
      startedAt: '2026-11-01T02:00:00.000Z',
      finishedAt: '2026-11-01T02:01:00.000Z',
      source: { type: 's3', bucket: 'infrahub-artifacts', prefix: '' },
      files,
    });
    await manifestStep({ target, backupId, components: ['artifacts'] }, { s3, bucket: Bucket, logger });
  }

  beforeAll(async () => {
    s3 = local.s3;
    Object.assign(process.env, local.server.env());
    await archivedBackup(glacier, 'GLACIER');
    await archivedBackup(instant, 'GLACIER_IR');
    return () => {
      process.env = saved;
    };
  });

  const deps = () => ({ s3, bucket: Bucket, config });

  it('refuses a GLACIER backup before touching anything, naming the class, the files and how to thaw them', async () => {
    const refused = await planRestore({ target, backupId: glacier, components: ['artifacts'] }, deps()).catch(
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({ name: 'BackupArchived' });
    const message = (refused as Error).message;
    expect(message).toContain(
      `restore of ${target}/${glacier} refused before touching the target: 2 object(s) of backup ${glacier} of ${target} are in GLACIER (archived by retention.coldStorage) and cannot be read until restored: ${target}/${glacier}/artifacts/a.txt (GLACIER, not restored), ${target}/${glacier}/artifacts/b/c.txt (GLACIER, not restored).`,
    );
    expect(message).toContain(
      `Restore them first: infrahub-backup thaw ${glacier} --target ${target} --days 7 --tier Standard (one object with the AWS CLI: aws s3api restore-object --bucket ${Bucket} --key ${target}/${glacier}/artifacts/a.txt --version-id `,
    );
    expect(message).toMatch(
      /--restore-request '\{"Days":7,"GlacierJobParameters":\{"Tier":"Standard"\}\}'\);/,
    );
  });

  it("a refresh from another target's archived backup names the SOURCE target in the thaw command", async () => {
    // The archived objects are the source's: thawing with --target of the destination finds nothing.
    const refreshing = structuredClone(config);
    const destination = refreshing.targets.find((t) => t.name !== target);
    if (!destination) throw new Error('config/example.json has a second target');
    destination.refreshFrom = [target];
    const refused = await planRestore(
      { target: destination.name, sourceTarget: target, backupId: glacier, components: ['artifacts'] },
      { s3, bucket: Bucket, config: refreshing },
    ).catch((e: unknown) => e);
    expect(refused).toMatchObject({ name: 'BackupArchived' });
    const message = (refused as Error).message;
    expect(message).toContain(
      `refresh of ${destination.name} from ${target}/${glacier} refused before touching`,
    );
    expect(message).toContain(`infrahub-backup thaw ${glacier} --target ${target} --days 7`);
    expect(message).not.toContain(`--target ${destination.name}`);
  });

  it('a runner or export reading an unrestored object fails BackupArchived (not a StorageError to retry)', async () => {
    await expect(hashObject(s3, Bucket, `${target}/${glacier}/artifacts/a.txt`)).rejects.toMatchObject({
      name: 'BackupArchived',
      message: expect.stringMatching(
        /^reading s3:\/\/backups-restore-archived\/infrahub-lab\/infrahub_backup_20261101_020000\/artifacts\/a\.txt failed: the object is in GLACIER .*infrahub-backup thaw/,
      ),
    });
  });

  it('thaw requests the restores; then the plan passes, says until when, and the files read', async () => {
    const thawed = await cli('--json', 'thaw', glacier, '--target', target, '--days', '2');
    expect(thawed.code, thawed.err).toBe(EXIT.ok);
    const result = JSON.parse(thawed.out) as {
      ready: boolean;
      objects: Array<{ key: string; outcome: string; storageClass: string }>;
    };
    // Only the files: the record and the manifest stayed in STANDARD.
    expect(
      result.objects.map((o) => [o.key.slice(`${target}/${glacier}/`.length), o.storageClass, o.outcome]),
    ).toEqual([
      ['artifacts/a.txt', 'GLACIER', 'requested'],
      ['artifacts/b/c.txt', 'GLACIER', 'requested'],
    ]);
    // Again: S3 answers 200 for a restored object (moto restores at once; S3 takes hours).
    const again = await cli('thaw', glacier, '--target', target);
    expect(again.out).toContain(
      `${target}/${glacier}: 2 archived object(s) (GLACIER): 0 restore(s) requested now, 0 in progress, 2 restored`,
    );
    expect(again.out).toContain('ready: every object can be read');

    const plan = await planRestore({ target, backupId: glacier, components: ['artifacts'] }, deps());
    expect(plan.warnings).toEqual([
      expect.stringMatching(
        /^2 file\(s\) are archived \(GLACIER\) and restored for reading until \d{4}-\d\d-\d\dT.*: run the restore before then$/,
      ),
    ]);
    const read = await hashObject(s3, Bucket, `${target}/${glacier}/artifacts/a.txt`);
    expect(read.size).toBeGreaterThan(0);
  });

  it('Glacier Instant Retrieval needs no restore: the plan passes as for STANDARD, and thaw has nothing to do', async () => {
    const plan = await planRestore({ target, backupId: instant, components: ['artifacts'] }, deps());
    expect(plan.warnings).toEqual([]);
    const thaw = await cli('thaw', instant, '--target', target);
    expect(thaw.code).toBe(EXIT.ok);
    expect(thaw.out).toBe(
      `${target}/${instant}: no object is in GLACIER or DEEP_ARCHIVE; nothing to restore`,
    );
  });

  it('thaw refuses a bad --days or --tier before any S3 call', async () => {
    expect((await cli('thaw', glacier, '--days', '0')).code).toBe(EXIT.usage);
    expect((await cli('thaw', glacier, '--tier', 'Fast')).code).toBe(EXIT.usage);
  });
});
