/**
 * Issue 18, item 2: the newest complete backup of a target never expires while it is the newest.
 * Lifecycle rules filter by tag, so the seal (core/backup/seal.ts) tags the newest backup
 * `retention=newest`, which no rule matches, keeps its class in the manifest, and re-tags the
 * previous newest with its class once the new manifest is written. Real moto S3, the manifest step
 * as the Lambda runs it, behind the fault proxy (harness/fault-proxy.ts) for the failed re-tag.
 */
import { GetObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupPrefix, manifestKey, parseBackupId, resultKey } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import { manifestStep } from '../../core/backup/manifest-step.js';
import { PENDING_TAGGING } from '../../core/backup/retention.js';
import { SEAL_CLIENT } from '../../core/backup/seal.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { createLogger } from '../../core/log.js';
import { createS3Client, FUNCTION_REQUEST_BOUNDS } from '../../core/s3/client.js';
import { listCurrentVersions, putJson, putObject } from '../../core/s3/objects.js';
import {
  createVersionedBucket,
  type FaultProxy,
  type S3Server,
  startFaultProxy,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

const Bucket = 'backups-newest';
/** The example's policy: daily 7, weekly 4, monthly 12, yearly 0. */
const { retention } = loadDeploymentConfigFile('config/example.json');
const logger = createLogger({}, { write: () => undefined });

describe('the newest complete backup of a target is tagged "newest" and never expires while it is', () => {
  let server: S3Server;
  let proxy: FaultProxy;
  let direct: S3Client;
  /** The manifest function's client (its bounds and retries), through the proxy, counting its calls. */
  let fn: S3Client;
  const calls = new Map<string, number>();

  /** Uploads a backup's files and its artifacts record, tagged "pending" as the runner does. */
  async function stage(target: string, backupId: string, files = 2): Promise<string[]> {
    const prefix = backupPrefix(target, backupId);
    const at = (parseBackupId(backupId) as Date).toISOString();
    const records = [];
    for (let i = 0; i < files; i++) {
      const key = `${prefix}artifacts/store/file-${i}.txt`;
      const put = await putObject(
        direct,
        Bucket,
        key,
        Buffer.from(`${target} ${backupId} ${i}\n`),
        'text/plain',
        PENDING_TAGGING,
      );
      records.push({
        path: key.slice(prefix.length),
        size: put.size,
        sha256: put.sha256,
        s3: { key, versionId: put.versionId, checksumSHA256: put.checksumSHA256 },
      });
    }
    await putJson(
      direct,
      Bucket,
      resultKey(target, backupId, 'artifacts'),
      {
        target,
        backupId,
        component: 'artifacts',
        startedAt: at,
        finishedAt: at,
        source: { type: 's3', bucket: 'infrahub-artifacts', prefix: 'store/' },
        files: records,
      },
      2,
      PENDING_TAGGING,
    );
    return records.map((r) => r.s3.key);
  }

  const seal = (target: string, backupId: string) =>
    manifestStep(
      { target, backupId, components: ['artifacts'], retention },
      { s3: fn, bucket: Bucket, logger },
    );

  /** Every current object of a backup (files, record, manifest) → its tags, as `key=value,...`. */
  async function tagsOf(target: string, backupId: string): Promise<Record<string, string>> {
    const prefix = backupPrefix(target, backupId);
    const tags: Record<string, string> = {};
    for (const key of (await listCurrentVersions(direct, Bucket, prefix)).keys()) {
      const out = await direct.send(new GetObjectTaggingCommand({ Bucket, Key: key }));
      tags[key.slice(prefix.length)] = (out.TagSet ?? [])
        .map((t) => `${t.Key}=${t.Value}`)
        .sort()
        .join(',');
    }
    return tags;
  }
  const asFile = (value: string) => `backup-part=file,retention=${value}`;
  const expected = (value: string, files = 2) => ({
    ...Object.fromEntries(
      Array.from({ length: files }, (_, i) => [`artifacts/store/file-${i}.txt`, asFile(value)]),
    ),
    '.runner/artifacts.json': `retention=${value}`,
    'backup_information.json': `retention=${value}`,
  });

  beforeAll(async () => {
    server = await startS3();
    direct = server.client();
    await createVersionedBucket(direct, Bucket);
    proxy = await startFaultProxy(server.endpoint);
    fn = createS3Client({
      ...FUNCTION_REQUEST_BOUNDS,
      ...SEAL_CLIENT,
      endpoint: proxy.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: server.credentials,
    });
    fn.middlewareStack.add(
      (next, context) => async (args) => {
        const name = context.commandName ?? '?';
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize', name: 'countCalls' },
    );
  }, scaled(120_000));

  afterAll(async () => {
    fn?.destroy();
    await proxy?.stop();
    await server?.stop();
  });

  it('tags the first backup "newest" (files also backup-part=file) and records its class in the manifest', async () => {
    await stage('lab', 'infrahub_backup_20261102_020000');
    const summary = await seal('lab', 'infrahub_backup_20261102_020000');
    expect(summary).toMatchObject({ retentionClass: 'monthly', retentionWarnings: [] });
    expect(await tagsOf('lab', 'infrahub_backup_20261102_020000')).toEqual(expected('newest'));
    expect(
      (await readManifest(direct, Bucket, 'lab', 'infrahub_backup_20261102_020000'))?.retention_class,
    ).toBe('monthly');
  });

  it('the next backup becomes the newest; the previous one is re-tagged with its class, manifest included, one request per object', async () => {
    await stage('lab', 'infrahub_backup_20261103_020000');
    calls.clear();
    const summary = await seal('lab', 'infrahub_backup_20261103_020000');
    expect(summary).toMatchObject({ retentionClass: 'daily', retentionWarnings: [] });
    expect(await tagsOf('lab', 'infrahub_backup_20261103_020000')).toEqual(expected('newest'));
    expect(await tagsOf('lab', 'infrahub_backup_20261102_020000')).toEqual(expected('monthly'));
    // The request cost of keeping the newest: this backup's 3 objects, then the previous newest's
    // 2 files, record and manifest; one GetObjectTagging (the previous newest's manifest, found
    // "newest"; none below it to stop at) besides its manifest read and its records listed, and one
    // listing of the target's backups for the class, the newest check and the walk.
    expect(calls.get('PutObjectTaggingCommand')).toBe(3 + 4);
    expect(calls.get('GetObjectTaggingCommand')).toBe(1);
    expect(calls.get('ListObjectsV2Command')).toBe(1);
  });

  it('walks past an incomplete backup (its objects stay "pending") to the previous newest', async () => {
    await stage('lab', 'infrahub_backup_20261104_020000'); // never sealed: incomplete
    await stage('lab', 'infrahub_backup_20261105_020000');
    const summary = await seal('lab', 'infrahub_backup_20261105_020000');
    expect(summary).toMatchObject({ retentionClass: 'daily', retentionWarnings: [] });
    expect(await tagsOf('lab', 'infrahub_backup_20261103_020000')).toEqual(expected('daily'));
    expect(await tagsOf('lab', 'infrahub_backup_20261105_020000')).toEqual(expected('newest'));
    const incomplete = await tagsOf('lab', 'infrahub_backup_20261104_020000');
    expect(Object.values(incomplete)).toEqual([
      'retention=pending',
      'retention=pending',
      'retention=pending',
    ]);
    // The monthly one below was not touched again.
    expect(await tagsOf('lab', 'infrahub_backup_20261102_020000')).toEqual(expected('monthly'));
  });

  it('a previous newest that cannot be re-tagged does not fail the new backup: it is reported, keeps "newest", and the next seal re-tags it', async () => {
    await stage('lab', 'infrahub_backup_20261106_020000');
    proxy.clear();
    // Every tag of the previous newest (20261105) is refused, after the client's own retries.
    const refused = proxy.add({
      match: {
        test: (r) =>
          r.method === 'PUT' &&
          r.query.has('tagging') &&
          r.path.startsWith(`/${Bucket}/lab/infrahub_backup_20261105_020000/`),
      },
      fault: { kind: 'status', status: 403, code: 'AccessDenied' },
    });
    const summary = await seal('lab', 'infrahub_backup_20261106_020000');
    proxy.clear();
    expect(refused.hits).toBeGreaterThan(0);
    expect(summary.retentionClass).toBe('daily');
    expect(summary.retentionWarnings).toEqual([
      expect.stringMatching(
        /^the previous newest backup infrahub_backup_20261105_020000 of lab is still tagged "newest": re-tagging failed \d+ time\(s\) after the client's retries, first: tagging s3:\/\/backups-newest\/lab\/infrahub_backup_20261105_020000\/.* failed: AccessDenied: .*; it does not expire until it is re-tagged, which the next backup of lab tries again$/,
      ),
    ]);
    // The new backup is complete and the newest; the previous one still carries "newest" on its manifest.
    expect(await tagsOf('lab', 'infrahub_backup_20261106_020000')).toEqual(expected('newest'));
    expect((await tagsOf('lab', 'infrahub_backup_20261105_020000'))['backup_information.json']).toBe(
      'retention=newest',
    );

    // The next seal finds both below it (the walk goes on while manifests say "newest") and re-tags
    // them, oldest first.
    await stage('lab', 'infrahub_backup_20261107_020000');
    const next = await seal('lab', 'infrahub_backup_20261107_020000');
    expect(next.retentionWarnings).toEqual([]);
    expect(await tagsOf('lab', 'infrahub_backup_20261105_020000')).toEqual(expected('daily'));
    expect(await tagsOf('lab', 'infrahub_backup_20261106_020000')).toEqual(expected('daily'));
    expect(await tagsOf('lab', 'infrahub_backup_20261107_020000')).toEqual(expected('newest'));
  });

  it('S3 failing while the previous newest is looked for does not fail the new backup either: reported, and the next seal finds it', async () => {
    await stage('lab', 'infrahub_backup_20261108_020000');
    proxy.clear();
    // GetObjectTagging of the previous newest's manifest refused (an IAM policy without it, say).
    proxy.add({
      match: { test: (r) => r.method === 'GET' && r.query.has('tagging') },
      fault: { kind: 'status', status: 403, code: 'AccessDenied' },
    });
    const summary = await seal('lab', 'infrahub_backup_20261108_020000');
    proxy.clear();
    expect(summary.retentionWarnings).toEqual([
      expect.stringMatching(
        /^could not look for the previous newest backup of lab \(reading the tags of s3:\/\/backups-newest\/lab\/infrahub_backup_20261107_020000\/backup_information\.json failed: AccessDenied: .*\): a backup still tagged "newest" below this one keeps that tag, and does not expire, until the next seal of lab finds it$/,
      ),
    ]);
    expect(await tagsOf('lab', 'infrahub_backup_20261108_020000')).toEqual(expected('newest'));
    expect(await tagsOf('lab', 'infrahub_backup_20261107_020000')).toEqual(expected('newest'));

    await stage('lab', 'infrahub_backup_20261109_020000');
    expect((await seal('lab', 'infrahub_backup_20261109_020000')).retentionWarnings).toEqual([]);
    expect(await tagsOf('lab', 'infrahub_backup_20261107_020000')).toEqual(expected('daily'));
    expect(await tagsOf('lab', 'infrahub_backup_20261108_020000')).toEqual(expected('daily'));
    expect(await tagsOf('lab', 'infrahub_backup_20261109_020000')).toEqual(expected('newest'));
  });

  it('an older backup sealed later (an import of an older archive) gets its class; the newest stays the newest', async () => {
    await stage('lab', 'infrahub_backup_20261101_020000');
    const summary = await seal('lab', 'infrahub_backup_20261101_020000');
    // A Sunday: the month has a backup already, its ISO week (Oct 26 - Nov 1) none.
    expect(summary).toMatchObject({ retentionClass: 'weekly', retentionWarnings: [] });
    expect(await tagsOf('lab', 'infrahub_backup_20261101_020000')).toEqual(expected('weekly'));
    expect(await tagsOf('lab', 'infrahub_backup_20261109_020000')).toEqual(expected('newest'));
  });

  it('each target has its own newest', async () => {
    await stage('other', 'infrahub_backup_20261102_030000');
    await seal('other', 'infrahub_backup_20261102_030000');
    expect(await tagsOf('other', 'infrahub_backup_20261102_030000')).toEqual(expected('newest'));
    expect(await tagsOf('lab', 'infrahub_backup_20261109_020000')).toEqual(expected('newest'));
  });

  it('re-tagging changes tags only: no object gets a new version', async () => {
    // The re-tagging changes tags only: every object keeps its one version (no copy, no new version).
    const versions = await listCurrentVersions(
      direct,
      Bucket,
      backupPrefix('lab', 'infrahub_backup_20261102_020000'),
    );
    expect(versions.has(manifestKey('lab', 'infrahub_backup_20261102_020000'))).toBe(true);
    expect(versions.size).toBe(4);
  });
});
