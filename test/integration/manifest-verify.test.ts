import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportBackup } from '../../cli/ops/tarball.js';
import { backupArtifacts } from '../../containers/runner/src/components/artifacts.js';
import type { RunContext } from '../../containers/runner/src/context.js';
import { fileKey, manifestKey, PREFECT_DUMP, resultKey } from '../../core/backup/layout.js';
import { type Manifest, METADATA_VERSION, readManifest } from '../../core/backup/manifest.js';
import { fileRecord } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { describeProblems, describeProof, verifyBackup } from '../../core/backup/verify.js';
import { createLogger } from '../../core/log.js';
import { putJson } from '../../core/s3/objects.js';
import { uploadStream } from '../../core/s3/upload-stream.js';
import { createVersionedBucket } from '../../harness/index.js';
import { downloadAndHash, useLocalS3 } from '../helpers/s3.js';

const Bucket = 'backups-verify-test';
const target = 'infrahub-lab';

describe('manifest and verify (real S3 server)', () => {
  const local = useLocalS3(Bucket);
  let s3: S3Client;
  let root: string;

  /** A small real backup: artifacts captured from a source bucket, then the manifest. */
  async function makeBackup(backupId: string, forTarget = target): Promise<void> {
    const ctx: RunContext = {
      s3,
      bucket: Bucket,
      target: forTarget,
      backupId,
      partSize: 5 * 1024 * 1024,
      concurrency: 2,
      logger: createLogger({}, { write: () => undefined }),
    };
    const result = await backupArtifacts(ctx, { type: 's3', bucket: 'verify-source', prefix: '' });
    await putJson(s3, Bucket, resultKey(forTarget, backupId, 'artifacts'), result);
    await writeManifest(s3, Bucket, {
      target: forTarget,
      backupId,
      components: ['artifacts'],
      toolVersion: 'test',
    });
  }

  /** The stored JSON's sections a test rewrites. */
  type StoredManifest = {
    checksums: Record<string, string | undefined>;
    sizes: Record<string, number | undefined>;
    s3: Record<string, unknown>;
  };

  /** Rewrites a stored manifest (what someone with write access to the bucket could do). */
  async function tamper(backupId: string, change: (m: StoredManifest) => void): Promise<void> {
    const manifest = JSON.parse(
      (await downloadAndHash(s3, Bucket, manifestKey(target, backupId))).body.toString('utf8'),
    );
    change(manifest);
    await putJson(s3, Bucket, manifestKey(target, backupId), manifest, 4);
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

    // Deep verification reads exactly the recorded version (as a restore does) and reports the newer
    // one that replaced it as overwritten, like quick mode (review 6, item 5).
    const deep = await verifyBackup(s3, Bucket, target, backupId, { deep: true });
    expect(deep.problems.find((p) => p.path === 'artifacts/b.txt')).toMatchObject({ kind: 'version' });
  });

  it('says a backup without a manifest is incomplete', async () => {
    await expect(verifyBackup(s3, Bucket, target, 'infrahub_backup_20261121_040000')).rejects.toMatchObject({
      name: 'ManifestError',
      message: expect.stringMatching(/has no backup_information\.json: the backup is incomplete or failed/),
    });
  });

  // Issue 12, item 3: every check holds each file to the manifest's SHA-256, and reads only inside
  // the backup's own prefix; unsafe paths are refused by every reader.
  it("quick verify holds a single-part file to the manifest's SHA-256 through S3's full-object checksum", async () => {
    const backupId = 'infrahub_backup_20261122_010000';
    await makeBackup(backupId);
    const clean = await verifyBackup(s3, Bucket, target, backupId);
    expect(clean.proof).toEqual({ s3FullObject: 3, uploadRecord: 0, hashed: 0, unproven: [] });
    await tamper(backupId, (m) => {
      m.checksums['artifacts/a.txt'] = 'f'.repeat(64);
    });
    const report = await verifyBackup(s3, Bucket, target, backupId);
    expect(report.ok).toBe(false);
    expect(report.downloaded).toBe(0);
    expect(describeProblems(report)).toEqual([
      expect.stringMatching(
        /^artifacts\/a\.txt: SHA-256 differs \([0-9a-f]{64}, manifest says f{64}\): the manifest's SHA-256 differs from S3's full-object SHA-256/,
      ),
    ]);
  });

  it('quick verify holds a multipart file to its upload record, says what it proved, and leaves the rest to deep', async () => {
    const backupId = 'infrahub_backup_20261122_020000';
    // An 11 MiB object in 5 MiB parts: S3 keeps only a composite checksum for it.
    const bytes = Buffer.alloc(11 * 1024 * 1024, 7);
    const uploaded = await uploadStream(s3, Readable.from([bytes]), {
      bucket: Bucket,
      key: fileKey(target, backupId, PREFECT_DUMP),
      partSize: 5 * 1024 * 1024,
    });
    expect(uploaded.s3ChecksumSHA256).toMatch(/-3$/);
    const now = new Date().toISOString();
    await putJson(s3, Bucket, resultKey(target, backupId, 'task-manager-db'), {
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
    });
    await writeManifest(s3, Bucket, {
      target,
      backupId,
      components: ['task-manager-db'],
      toolVersion: 'test',
    });
    const clean = await verifyBackup(s3, Bucket, target, backupId);
    expect(clean).toMatchObject({ ok: true, proof: { uploadRecord: 1, s3FullObject: 0, unproven: [] } });
    expect(describeProof(clean).join('\n')).toMatch(
      /1 multipart: unchanged since upload .* bytes not re-hashed \(--deep does\)/,
    );

    await tamper(backupId, (m) => {
      m.checksums[PREFECT_DUMP] = 'e'.repeat(64);
    });
    const report = await verifyBackup(s3, Bucket, target, backupId);
    expect(report.problems).toEqual([
      expect.objectContaining({
        path: PREFECT_DUMP,
        kind: 'checksum',
        expected: 'e'.repeat(64),
        actual: uploaded.sha256,
        detail: expect.stringMatching(/differs from the one its upload computed/),
      }),
    ]);
    // Without the upload record, quick mode cannot tie the manifest's SHA-256 to the bytes: it says so;
    // deep hashes them and finds the difference.
    await s3.send(new DeleteObjectCommand({ Bucket, Key: resultKey(target, backupId, 'task-manager-db') }));
    const unproven = await verifyBackup(s3, Bucket, target, backupId);
    expect(unproven).toMatchObject({ ok: true, proof: { unproven: [PREFECT_DUMP] } });
    expect(describeProof(unproven).join('\n')).toMatch(
      /only --deep can hold them to the manifest's SHA-256: prefect\.dump/,
    );
    const deep = await verifyBackup(s3, Bucket, target, backupId, { deep: true });
    expect(deep.problems[0]).toMatchObject({ path: PREFECT_DUMP, kind: 'checksum', actual: uploaded.sha256 });
  });

  it("refuses, naming the key, a manifest that points at another target's object", async () => {
    const backupId = 'infrahub_backup_20261122_030000';
    await makeBackup(backupId);
    await makeBackup(backupId, 'infrahub-prod');
    const prod = await readManifest(s3, Bucket, 'infrahub-prod', backupId);
    await tamper(backupId, (m) => {
      m.s3['artifacts/a.txt'] = prod?.s3?.['artifacts/a.txt'];
    });
    for (const deep of [false, true]) {
      await expect(verifyBackup(s3, Bucket, target, backupId, { deep })).rejects.toMatchObject({
        name: 'ManifestError',
        message: expect.stringMatching(
          /s3\.artifacts\/a\.txt: key "infrahub-prod\/infrahub_backup_20261122_030000\/artifacts\/a\.txt" is not this backup's object/,
        ),
      });
    }
  });

  it('refuses a traversing path in both verify modes, and export never writes it into an archive', async () => {
    const backupId = 'infrahub_backup_20261122_040000';
    await makeBackup(backupId);
    const evil = 'artifacts/../../../../tmp/x';
    const original = (await readManifest(s3, Bucket, target, backupId)) as Manifest;
    await tamper(backupId, (m) => {
      m.checksums[evil] = m.checksums['artifacts/a.txt'];
      m.sizes[evil] = m.sizes['artifacts/a.txt'];
      m.s3[evil] = { ...(m.s3['artifacts/a.txt'] as object), key: `${target}/${backupId}/${evil}` };
    });
    for (const deep of [false, true]) {
      await expect(verifyBackup(s3, Bucket, target, backupId, { deep })).rejects.toMatchObject({
        name: 'ManifestError',
        message: expect.stringMatching(
          /checksums\.artifacts\/\.\.\/\.\.\/\.\.\/\.\.\/tmp\/x: path .* has a "\." or "\.\." segment/,
        ),
      });
    }
    // A manifest object that skipped readManifest (built in memory) is refused by export too.
    const unsafe = {
      ...original,
      checksums: { ...original.checksums, [evil]: original.checksums['artifacts/a.txt'] as string },
      sizes: { ...original.sizes, [evil]: 1 },
    } as Manifest;
    const out = mkdtempSync(join(tmpdir(), 'export-evil-'));
    try {
      await expect(exportBackup(s3, Bucket, target, unsafe, out)).rejects.toMatchObject({
        name: 'ManifestError',
        message: expect.stringMatching(/refusing to export unsafe paths/),
      });
      expect(readdirSync(out)).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
