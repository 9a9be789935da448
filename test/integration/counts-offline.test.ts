/**
 * Issue 12 item 9, Community: the counts a restore compares are taken from the very store that is
 * dumped. While the DBMS is stopped for the dump, backup-neo4j starts a read-only server on the
 * store (loopback Bolt, no HTTP, no auth), counts it, stops it, then dumps: a write between
 * CountNeo4j and the dump no longer matters, and the manifest's counts are `verified`.
 * Real runner entrypoint, real Neo4j Community 5.26 (server and neo4j-admin), real S3/SNS (moto).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalAws } from '../../cli/local/backup.js';
import { provisionLocalAws } from '../../cli/local/harness-target.js';
import { localRunnerEnv, neo4jRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { databaseInfo } from '../../containers/runner/src/components/neo4j.js';
import { countStoreOffline } from '../../containers/runner/src/components/neo4j-counts.js';
import { checkGraph, restoreNeo4jCommunity } from '../../containers/runner/src/components/restore-neo4j.js';
import { restoreStepKey, resultKey } from '../../core/backup/layout.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { Neo4jResultSchema } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { createLogger } from '../../core/log.js';
import { restoreReportStep } from '../../core/restore/report.js';
import { getJson } from '../../core/s3/objects.js';
import {
  countGraph,
  type Neo4jServer,
  type S3Server,
  seedGraph,
  startNeo4j,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { captureNotices, type Notices } from '../helpers/notices.js';

const Bucket = 'backups-counts-offline';
const target = 'infrahub-lab';
const logger = createLogger({}, { write: () => undefined });

describe('Community graph counts taken from the dumped store', () => {
  let source: Neo4jServer;
  let fresh: Neo4jServer;
  let server: S3Server;
  let local: LocalAws;
  let notices: Notices;
  let scratch: string;

  const env = (backupId: string, extra: Record<string, string> = {}) => ({
    ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
    ...neo4jRunnerEnv(source),
    NEO4J_HOME: source.home,
    NEO4J_COUNT_WORK_DIR: join(scratch, 'count'),
    ...extra,
  });
  const admin = () => ({ path: source.adminPath, env: { ...process.env, ...source.adminEnv() } });
  const lastTx = async () => ({
    neo4j: (await databaseInfo(admin(), 'neo4j')).lastCommittedTx,
    system: (await databaseInfo(admin(), 'system')).lastCommittedTx,
  });
  const dumpResult = async (backupId: string) =>
    getJson(local.s3, Bucket, resultKey(target, backupId, 'database'), Neo4jResultSchema);

  beforeAll(async () => {
    // One at a time: the machine is shared, and a Neo4j start is heavy.
    server = await startS3();
    source = await startNeo4j();
    local = await provisionLocalAws(server, Bucket, []);
    notices = await captureNotices(local);
    scratch = mkdtempSync(join(tmpdir(), 'counts-offline-'));
    await seedGraph(source, { devices: 40 });
  }, scaled(400_000));

  afterAll(async () => {
    await Promise.all([source?.stop(), fresh?.stop(), server?.stop()]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, scaled(120_000));

  it(
    'the read-only counting server counts the stopped store, never writes it, and releases it for the dump',
    async () => {
      const running = await countGraph(source);
      await source.stopDbms();
      try {
        const before = await lastTx();
        expect(before.neo4j).toBeGreaterThan(0);
        const counted = await countStoreOffline(
          { home: source.home, conf: join(source.home, 'conf'), workDir: join(scratch, 'direct') },
          ['neo4j', 'system'],
          logger,
        );
        // Measured downtime added to a Community backup (printed for the README's figure).
        console.log('offline count timings (ms)', JSON.stringify(counted.timings));
        expect(counted.counts).toEqual({ neo4j: running });
        // Not a transaction committed, in either database; the lock is released (not in use).
        expect(await lastTx()).toEqual(before);
        expect((await databaseInfo(admin(), 'neo4j')).inUse).toBe(false);
        // Its scratch folder is gone.
        expect(readdirSync(join(scratch, 'direct'))).toEqual([]);
      } finally {
        await source.startDbms();
      }
    },
    scaled(300_000),
  );

  let manifest: Manifest;
  const backupId = 'infrahub_backup_20261130_020000';

  it(
    "a write between CountNeo4j and the dump no longer matters: the recorded counts are the dumped store's, verified",
    async () => {
      const counted = await runRunner('count-neo4j', env(backupId));
      expect(counted.code, counted.stderr).toBe(0);
      const atCount = await countGraph(source);
      // The write that used to make these counts differ from the dump.
      await source.driver().executeQuery('UNWIND range(1, 7) AS i CREATE (:LateWrite {i: i})');
      const dumpedGraph = await countGraph(source);
      expect(dumpedGraph.nodes).toBe(atCount.nodes + 7);

      await source.stopDbms();
      let before: Awaited<ReturnType<typeof lastTx>>;
      try {
        before = await lastTx();
        const dumped = await runRunner('backup-neo4j', env(backupId));
        expect(dumped.code, dumped.stderr).toBe(0);
        // The counting server wrote nothing: the store's last transaction is what it was.
        expect(await lastTx()).toEqual(before);
      } finally {
        await source.startDbms();
      }
      const result = await dumpResult(backupId);
      expect(result?.storeCounts).toMatchObject({ status: 'counted', counts: { neo4j: dumpedGraph } });
      console.log('backup-neo4j offline count timings (ms)', JSON.stringify(result?.storeCounts));

      ({ manifest } = await writeManifest(local.s3, Bucket, {
        target,
        backupId,
        components: ['database'],
        toolVersion: 'test',
      }));
      expect(manifest.counts?.neo4j).toEqual({ neo4j: dumpedGraph });
      expect(manifest.counts_basis?.neo4j).toEqual({
        describes_dump: 'verified',
        counted_from: 'dumped-store',
        counted_tx: before.neo4j,
        dumped_tx: before.neo4j,
      });

      // The dump itself, loaded into a fresh store and counted: the same graph.
      fresh = await startNeo4j();
      await fresh.stopDbms();
      try {
        await restoreNeo4jCommunity(
          { s3: local.s3, bucket: Bucket, target, backupId, logger },
          { path: fresh.adminPath, env: { ...process.env, ...fresh.adminEnv() } },
          manifest,
          { workDir: join(scratch, 'load'), system: 'keep' },
        );
      } finally {
        await fresh.startDbms();
      }
      expect(await countGraph(fresh)).toEqual(dumpedGraph);
    },
    scaled(600_000),
  );

  it(
    'a restore then validates strictly, says so in the report and notice, and a tampered count fails RestoreValidation',
    async () => {
      const ctx = { s3: local.s3, bucket: Bucket, target, backupId, logger };
      const bolt = { uri: fresh.boltUrl, username: 'neo4j', password: fresh.password };
      const checked = await checkGraph(ctx, bolt, manifest);
      expect(checked.validation).toBe(
        'graph counts equal those at backup time (counted from the dumped store)',
      );

      const recorded = manifest.counts?.neo4j?.neo4j as { nodes: number; relationships: number };
      const tampered = {
        ...manifest,
        counts: { ...manifest.counts, neo4j: { neo4j: { ...recorded, nodes: recorded.nodes + 1 } } },
      } as Manifest;
      await expect(checkGraph(ctx, bolt, tampered)).rejects.toMatchObject({
        name: 'RestoreValidation',
        message: expect.stringMatching(/restored graph does not match/),
      });

      // Counts that cannot be tied to the dump (Bolt fallback) and differ: a warning, in the report and notice.
      const unknown = {
        ...tampered,
        counts_basis: { neo4j: { describes_dump: 'unknown', counted_from: 'bolt' } },
      } as Manifest;
      const warned = await checkGraph(ctx, bolt, unknown);
      expect(warned.validation).toMatch(/^counts differ but were not tied to the dump: warning/);

      const restoreId = 'restore_20261130_030000_abcd1234';
      for (const [step, details] of [
        ['validate-neo4j', { counts: warned.counts, validation: warned.validation }],
      ] as const) {
        const now = new Date().toISOString();
        await local.s3.send(
          new PutObjectCommand({
            Bucket,
            Key: restoreStepKey(target, restoreId, step),
            Body: JSON.stringify({
              step,
              target,
              backupId,
              restoreId,
              startedAt: now,
              finishedAt: now,
              durationMs: 1000,
              timings: {},
              details,
            }),
          }),
        );
      }
      await restoreReportStep(
        {
          kind: 'restore',
          executionId: 'arn:aws:states:us-east-1:000000000000:execution:restore:counts',
          startedAt: new Date(Date.now() - 60_000).toISOString(),
          plan: { target, backupId, restoreId },
          branches: [{ component: 'database', ok: true }],
        },
        {
          s3: local.s3,
          bucket: Bucket,
          sns: local.sns,
          events: local.events,
          topicArns: [local.topicArn],
          logger,
        },
      );
      const out = await local.s3.send(
        new GetObjectCommand({ Bucket, Key: restoreStepKey(target, restoreId, 'report') }),
      );
      const report = (await out.Body?.transformToString()) ?? '';
      expect(report).toContain('counts differ but were not tied to the dump: warning');
      const sent = JSON.stringify(await notices.sns());
      expect(sent).toContain(
        'Validated:   validate-neo4j: counts differ but were not tied to the dump: warning',
      );
    },
    scaled(300_000),
  );

  it(
    'NEO4J_COUNT_OFFLINE=false, or a counting server that cannot start, falls back on the Bolt counts and the manifest says so; the dump still succeeds',
    async () => {
      for (const [backup, extra, status, reason] of [
        [
          'infrahub_backup_20261130_040000',
          { NEO4J_COUNT_OFFLINE: 'false' },
          'disabled',
          /NEO4J_COUNT_OFFLINE=false/,
        ],
        // A heap the JVM refuses: the server exits at once.
        ['infrahub_backup_20261130_050000', { NEO4J_COUNT_HEAP: '1k' }, 'failed', /counting server exited/],
      ] as const) {
        const counted = await runRunner('count-neo4j', env(backup));
        expect(counted.code, counted.stderr).toBe(0);
        const bolt = await countGraph(source);
        await source.stopDbms();
        try {
          const dumped = await runRunner('backup-neo4j', env(backup, extra));
          expect(dumped.code, dumped.stderr).toBe(0);
        } finally {
          await source.startDbms();
        }
        expect((await dumpResult(backup))?.storeCounts).toMatchObject({
          status,
          reason: expect.stringMatching(reason),
        });
        const { manifest: m } = await writeManifest(local.s3, Bucket, {
          target,
          backupId: backup,
          components: ['database'],
          toolVersion: 'test',
        });
        expect(m.counts?.neo4j).toEqual({ neo4j: bolt });
        expect(m.counts_basis?.neo4j).toMatchObject({
          describes_dump: 'unknown',
          counted_from: 'bolt',
          store_count: expect.stringMatching(new RegExp(`^${status}: `)),
        });
      }
    },
    scaled(600_000),
  );
});
