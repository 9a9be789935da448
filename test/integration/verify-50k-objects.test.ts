/**
 * Issue 16, part 4: a backup of 50,000 artifact objects is written (manifest Lambda core), verified
 * (the operator CLI's `verify`) and planned for a restore (restore-plan Lambda core) with a number of
 * S3 requests that grows by the listing page (1,000 files), not by the file: no HeadObject per file.
 * Before the fix every file was HEADed one after another (50,000 requests, over a Lambda's 5 minutes).
 *
 * Real moto S3. The objects are stored through moto's backend before it serves (harness/moto_server.py):
 * a PUT over HTTP costs moto several ms (2,000 took 18 s with 32 at once on this busy machine: 50,000
 * would take 7-8 minutes), seeding in-process about 10 s. Listings come in S3's pages of 1,000 versions
 * (51 pages): moto itself deep-copies every version of the bucket for each page (15 s a page at 50,000
 * objects), and harness/moto_server.py makes it copy only the page's (the same answers, proven by
 * test/integration/moto-server.test.ts). Paging is also tested with 7 versions a page further down.
 * Timings are not asserted here: bench/verify-scale.ts measures them.
 *
 * The manifest step runs with the example configuration's retention, as deployed: the objects are
 * seeded tagged "pending" (as the runner uploads them) and the seal re-tags every one with the
 * backup's class, one PutObjectTagging each (S3 has no call that tags many; core/backup/seal.ts),
 * within the time the deployed function gives it. That is most of this file's time: moto answers
 * under 300 tags a second here (50,001 took 180 s on a busy 2-core machine).
 *   SCALE_OBJECTS  number of artifact objects (default 50,000)
 */
import {
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  PutObjectCommand,
  type PutObjectTaggingCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { backupPrefix, manifestKey, resultKey } from '../../core/backup/layout.js';
import {
  MANIFEST_FUNCTION_TIMEOUT_SECONDS,
  MANIFEST_MARGIN_SECONDS,
  manifestStep,
} from '../../core/backup/manifest-step.js';
import { verifyBackup } from '../../core/backup/verify.js';
import { mapLimit } from '../../core/concurrency.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { createLogger } from '../../core/log.js';
import { planRestore } from '../../core/restore/plan.js';
import { getJson, listCurrentVersions, putJson } from '../../core/s3/objects.js';
import {
  createVersionedBucket,
  putArtifactsRecord,
  type S3Server,
  type SeededObject,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

const N = Number(process.env.SCALE_OBJECTS ?? 50_000);
const Bucket = 'backups-scale';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261120_020000';
const prefix = backupPrefix(target, backupId);
const logger = createLogger({}, { write: () => undefined });
const config = loadDeploymentConfigFile('config/example.json');
/** ListObjectVersions pages real S3 needs for this backup (1,000 versions a page), plus one to spare. */
const listPages = Math.ceil((N + 2) / 1000) + 1;

/**
 * An S3 client whose commands are counted by name (a middleware at the initialize step: retries are
 * one command), and whose PutObjectTagging inputs are kept: key, version id and tag value.
 */
function countingClient(server: S3Server): {
  s3: S3Client;
  calls: Map<string, number>;
  tagged: Array<{ key: string; versionId?: string; value?: string }>;
  reset(): void;
} {
  const s3 = server.client();
  const calls = new Map<string, number>();
  const tagged: Array<{ key: string; versionId?: string; value?: string }> = [];
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName);
      calls.set(name, (calls.get(name) ?? 0) + 1);
      if (name === 'PutObjectTaggingCommand') {
        const input = args.input as PutObjectTaggingCommandInput;
        tagged.push({
          key: input.Key as string,
          ...(input.VersionId ? { versionId: input.VersionId } : {}),
          ...(input.Tagging?.TagSet?.[0]?.Value ? { value: input.Tagging.TagSet[0].Value } : {}),
        });
      }
      return next(args);
    },
    { step: 'initialize', name: 'countCommands' },
  );
  return {
    s3,
    calls,
    tagged,
    reset: () => {
      calls.clear();
      tagged.length = 0;
    },
  };
}

const total = (calls: Map<string, number>) => [...calls.values()].reduce((a, b) => a + b, 0);

describe(`${N} artifact objects: manifest, verify and restore plan list instead of a HEAD per file`, () => {
  let server: S3Server & { seeded: SeededObject[] };
  let counted: ReturnType<typeof countingClient>;
  let setup: S3Client;

  beforeAll(async () => {
    server = await startS3({
      seed: {
        buckets: [
          {
            name: Bucket,
            versioned: true,
            objects: [
              {
                prefix: `${prefix}artifacts/store/`,
                count: N,
                body: 'artifact ',
                tags: { retention: 'pending' },
              },
            ],
          },
        ],
      },
    });
    setup = server.client();
    counted = countingClient(server);
    // What the runner's artifacts component records for these objects (.runner/artifacts.json).
    await putArtifactsRecord(setup, Bucket, target, backupId, server.seeded);
  }, scaled(600_000));

  afterAll(async () => {
    await server?.stop();
  });

  it(
    'the manifest step checks every file with list pages and a few GETs, no HEAD, and re-tags every object once ("newest": the only backup of its target)',
    async () => {
      counted.reset();
      const summary = await manifestStep(
        { target, backupId, components: ['artifacts'], retention: config.retention },
        {
          s3: counted.s3,
          bucket: Bucket,
          logger,
          // What the deployed function gives the step (its timeout less its margin), stretched only
          // as the tests' own time-outs are (scaled: by TEST_TIME_SCALE or the machine's load). Idle,
          // moto tags about 280 objects a second (`npm run bench`, verify-scale) and 50,001 fit the
          // deployed 870 s unstretched; at a load of 15 on two cores it answered in bursts and pauses,
          // and the seal, projecting from its recent answers, rightly stopped: the machine was slower
          // than S3, not the seal wrong. The seal's own bound is tested in seal-retagging.test.ts.
          secondsLeft: () =>
            scaled((MANIFEST_FUNCTION_TIMEOUT_SECONDS - MANIFEST_MARGIN_SECONDS) * 1000) / 1000,
        },
      );
      // The example's retention (yearly 0) makes the first backup of a month "monthly"; the target's
      // only complete backup is its newest, so its objects are tagged "newest" (core/backup/seal.ts).
      expect(summary).toMatchObject({ files: N, retentionClass: 'monthly' });
      const calls = Object.fromEntries(counted.calls);
      // The one HEAD asks whether this backup is complete already (the year's backups, for the
      // class; core/backup/catalog.ts completeBackupDatesIn): never one per file.
      expect(calls.HeadObjectCommand ?? 0).toBeLessThanOrEqual(1);
      expect(calls.ListObjectsV2Command).toBe(1);
      expect(calls.ListObjectVersionsCommand).toBeGreaterThanOrEqual(1);
      expect(calls.ListObjectVersionsCommand).toBeLessThanOrEqual(listPages);
      // readResults' four result names, the artifacts record for verification, the manifest's PUT.
      expect(calls.GetObjectCommand).toBeLessThanOrEqual(5);
      expect(calls.PutObjectCommand).toBe(1);
      // One tag per file and one for the record, none twice: the design's bound (S3 has no call
      // that tags many objects), beside the list pages and a few requests.
      expect(calls.PutObjectTaggingCommand).toBe(N + 1);
      expect(total(counted.calls)).toBeLessThanOrEqual(N + 1 + listPages + 8);

      // Every object of the backup, from the listing, was tagged once, that version, "newest".
      const listed = await listCurrentVersions(setup, Bucket, prefix);
      const manifestAt = manifestKey(target, backupId);
      const tags = new Map(counted.tagged.map((t) => [t.key, t]));
      expect(tags.size).toBe(counted.tagged.length);
      const wrong = [...listed]
        .filter(([key]) => key !== manifestAt)
        .filter(([key, v]) => {
          const t = tags.get(key);
          // The record is tagged as its current version (no version id given).
          return t?.value !== 'newest' || (t.versionId !== undefined && t.versionId !== v.versionId);
        })
        .map(([key]) => key);
      expect(wrong).toEqual([]);
      expect(listed.size).toBe(N + 2);
      // And S3 holds those tags: one object in 100, the record and the manifest, read back.
      const sample: Array<{ key: string; versionId?: string | undefined }> = [
        ...server.seeded.filter((_, i) => i % 100 === 0).map((o) => ({ key: o.key, versionId: o.versionId })),
        { key: resultKey(target, backupId, 'artifacts') },
        { key: manifestAt },
      ];
      const values = await mapLimit(sample, 16, async (o) => {
        const out = await setup.send(
          new GetObjectTaggingCommand({
            Bucket,
            Key: o.key,
            ...(o.versionId ? { VersionId: o.versionId } : {}),
          }),
        );
        return out.TagSet?.find((t) => t.Key === 'retention')?.Value;
      });
      expect(values.filter((v) => v !== 'newest')).toEqual([]);
    },
    scaled(900_000),
  );

  it(
    "the CLI's quick verify and the restore plan prove every file the same way",
    async () => {
      counted.reset();
      const report = await verifyBackup(counted.s3, Bucket, target, backupId);
      expect(report).toMatchObject({ ok: true, files: N, heads: 0, downloaded: 0, problems: [] });
      expect(report.proof).toMatchObject({ s3FullObject: N, uploadRecord: 0, hashed: 0, unproven: [] });
      expect(counted.calls.get('HeadObjectCommand') ?? 0).toBe(0);
      expect(total(counted.calls)).toBeLessThanOrEqual(listPages + 3);

      counted.reset();
      const plan = await planRestore(
        { target, backupId, components: ['artifacts'], dryRun: true },
        { s3: counted.s3, bucket: Bucket, config },
      );
      expect(plan.files).toHaveLength(N);
      expect(counted.calls.get('HeadObjectCommand') ?? 0).toBe(0);
      expect(total(counted.calls)).toBeLessThanOrEqual(listPages + 3);
    },
    scaled(900_000),
  );

  it(
    'still names an overwritten, a deleted and a re-described file, HEADing only the one the listing cannot prove',
    async () => {
      const seeded = (i: number) => server.seeded[i] as SeededObject;
      const [overwritten, deleted, redescribed] = [seeded(1), seeded(2), seeded(3)];
      await setup.send(new PutObjectCommand({ Bucket, Key: overwritten.key, Body: 'artifact 1\n' }));
      await setup.send(new DeleteObjectCommand({ Bucket, Key: deleted.key }));
      // The manifest made to describe other bytes for one file, consistently (SHA-256 and S3 checksum):
      // its upload record disagrees, so the listing does not vouch for it and a HEAD shows S3's checksum.
      const other = seeded(4);
      const key = manifestKey(target, backupId);
      const manifest = (await getJson(setup, Bucket, key, z.looseObject({}))) as {
        checksums: Record<string, string>;
        s3: Record<string, { checksum_sha256: string }>;
      };
      const path = redescribed.key.slice(prefix.length);
      manifest.checksums[path] = other.sha256;
      (manifest.s3[path] as { checksum_sha256: string }).checksum_sha256 = other.checksumSHA256;
      await putJson(setup, Bucket, key, manifest, 4);

      counted.reset();
      const report = await verifyBackup(counted.s3, Bucket, target, backupId);
      expect(report.ok).toBe(false);
      expect(report.problems).toEqual([
        {
          path: overwritten.key.slice(prefix.length),
          kind: 'version',
          expected: overwritten.versionId,
          actual: expect.any(String),
        },
        { path: deleted.key.slice(prefix.length), kind: 'missing', expected: deleted.sha256 },
        expect.objectContaining({
          path,
          kind: 'checksum',
          expected: other.checksumSHA256,
          actual: redescribed.checksumSHA256,
        }),
      ]);
      expect(report.heads).toBe(1);
      expect(counted.calls.get('HeadObjectCommand')).toBe(1);
      await expect(
        planRestore(
          { target, backupId, components: ['artifacts'] },
          { s3: counted.s3, bucket: Bucket, config },
        ),
      ).rejects.toMatchObject({ name: 'IncompatibleBackup' });
    },
    scaled(900_000),
  );
});

describe('listCurrentVersions pages through ListObjectVersions', () => {
  let server: S3Server;
  afterAll(async () => {
    await server?.stop();
  });

  it(
    'returns each key once with its current version, leaves out deleted keys, across pages',
    async () => {
      // 7 versions a page, so 20 keys (and their extra versions) take several pages.
      server = await startS3({ env: { MOTO_S3_DEFAULT_MAX_KEYS: '7' } });
      const s3 = server.client();
      await createVersionedBucket(s3, 'paging');
      const latest = new Map<string, string>();
      for (let i = 0; i < 20; i++) {
        const Key = `p/${String(i).padStart(2, '0')}`;
        let out = await s3.send(new PutObjectCommand({ Bucket: 'paging', Key, Body: `v1 ${i}` }));
        if (i % 3 === 0)
          out = await s3.send(new PutObjectCommand({ Bucket: 'paging', Key, Body: `v2 ${i}!` }));
        latest.set(Key, out.VersionId as string);
      }
      await s3.send(new DeleteObjectCommand({ Bucket: 'paging', Key: 'p/05' }));
      latest.delete('p/05');
      await s3.send(new PutObjectCommand({ Bucket: 'paging', Key: 'q/outside', Body: 'not listed' }));

      let pages = 0;
      s3.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'ListObjectVersionsCommand') pages++;
          return next(args);
        },
        { step: 'initialize', name: 'countPages' },
      );
      const listed = await listCurrentVersions(s3, 'paging', 'p/');
      expect(new Map([...listed].map(([k, v]) => [k, v.versionId]))).toEqual(latest);
      expect(listed.get('p/03')?.size).toBe('v2 3!'.length);
      // 20 + 7 extra versions + 1 delete marker = 28 entries: 4 pages of 7.
      expect(pages).toBe(4);
    },
    scaled(120_000),
  );
});
