import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { fileKey, PREFECT_DUMP, resultKey } from '../../core/backup/layout.js';
import { fileRecord } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { describeProof, verifyBackup } from '../../core/backup/verify.js';
import { putJson } from '../../core/s3/objects.js';
import { uploadStream } from '../../core/s3/upload-stream.js';
import { useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-verify-broken-record';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261122_020000';

// Issue 12 review, finding 12: a truncated `.runner/` record left quick verify saying "1 files match"
// and the file "not proven" without a word about the record being broken.
describe('quick verify with a broken upload record (real S3 server)', () => {
  const local = useLocalS3(Bucket);

  it('names the broken record and why, beside the file it could not prove', async () => {
    const s3 = local.s3;
    const bytes = Buffer.alloc(11 * 1024 * 1024, 7);
    const uploaded = await uploadStream(s3, Readable.from([bytes]), {
      bucket: Bucket,
      key: fileKey(target, backupId, PREFECT_DUMP),
      partSize: 5 * 1024 * 1024,
    });
    expect(uploaded.s3ChecksumSHA256).toMatch(/-3$/);
    const now = new Date().toISOString();
    const record = {
      target,
      backupId,
      startedAt: now,
      finishedAt: now,
      component: 'task-manager-db',
      database: 'prefect',
      files: [fileRecord(PREFECT_DUMP, uploaded)],
      tool: { name: 'pg_dump', version: '15', compress: '1' },
      server: { version: '15', majorVersion: 15 },
      counts: { tables: {} },
    };
    const key = resultKey(target, backupId, 'task-manager-db');
    await putJson(s3, Bucket, key, record);
    await writeManifest(s3, Bucket, {
      target,
      backupId,
      components: ['task-manager-db'],
      toolVersion: 'test',
    });

    await s3.send(new PutObjectCommand({ Bucket, Key: key, Body: JSON.stringify(record).slice(0, 60) }));
    const cut = await verifyBackup(s3, Bucket, target, backupId);
    expect(cut.proof.unproven).toEqual([PREFECT_DUMP]);
    expect(cut.proof.brokenRecords).toEqual([{ key, reason: expect.stringMatching(/^not valid JSON: /) }]);
    expect(describeProof(cut).join('\n')).toMatch(
      new RegExp(
        `upload record ${key.replace(/[.]/g, '\\.')} is broken \\(not valid JSON: .*\\): .*--deep does`,
      ),
    );

    await s3.send(new PutObjectCommand({ Bucket, Key: key, Body: '{"files": 3}' }));
    const shape = await verifyBackup(s3, Bucket, target, backupId);
    expect(shape.proof.brokenRecords).toEqual([
      { key, reason: expect.stringMatching(/^not a record of files: files: /) },
    ]);

    await putJson(s3, Bucket, key, record);
    const whole = await verifyBackup(s3, Bucket, target, backupId);
    expect(whole.proof).toMatchObject({ uploadRecord: 1, unproven: [] });
    expect(whole.proof.brokenRecords).toBeUndefined();
  });
});
