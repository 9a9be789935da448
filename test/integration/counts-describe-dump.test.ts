/**
 * Issue 12 item 9: the graph counts a restore compares must describe exactly the data dumped. A real
 * write between CountNeo4j and the dump (Community, DBMS stopped after it) must not fail the
 * validation of a good backup; counts known to describe the dump are still held strictly.
 * Real runner entrypoint, real Neo4j Community 5.26 with neo4j-admin, real S3 server (moto).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, neo4jRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { lastCommittedTxn } from '../../containers/runner/src/components/neo4j-counts.js';
import { validateGraph } from '../../containers/runner/src/components/restore-neo4j.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { buildManifest, countsBasis } from '../../core/backup/manifest-build.js';
import type { Neo4jCountsResult } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { createLogger } from '../../core/log.js';
import { countGraph, type Neo4jServer, type S3Server } from '../../harness/index.js';
import { type RunnerStack, startRunnerStack } from '../../harness/runner-stack.js';
import { scaled } from '../../harness/time-scale.js';

const Bucket = 'backups-counts-basis';
const target = 'infrahub-lab';
const logger = createLogger({}, { write: () => undefined });

describe('graph counts tied to the dumped transaction', () => {
  let stack: RunnerStack;
  let source: Neo4jServer;
  let server: S3Server;
  let s3: S3Client;

  const env = (backupId: string) => ({
    ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
    ...neo4jRunnerEnv(source),
    // The Bolt fallback (counts-offline.test.ts covers the default: the dumped store is counted).
    NEO4J_COUNT_OFFLINE: 'false',
  });
  const bolt = () => ({ uri: source.boltUrl, username: source.user, password: source.password });
  const ctx = (backupId: string) => ({ target, backupId, logger }) as never;

  beforeAll(async () => {
    stack = await startRunnerStack({ bucket: Bucket, neo4j: { devices: 30 } });
    ({ neo4j: source, server, s3 } = stack);
  }, scaled(240_000));

  afterAll(async () => {
    await stack?.stop();
  }, scaled(120_000));

  it('Neo4j Community 5.26 reports no lastCommittedTxn over Bolt (so its counts cannot be tied by id)', async () => {
    expect(await lastCommittedTxn(source.driver(), 'neo4j')).toBeUndefined();
  });

  it(
    'a real write between CountNeo4j and the dump: the manifest says the counts are not proven to describe the dump, and validating the restored data does not fail',
    async () => {
      const backupId = 'infrahub_backup_20261123_020000';
      const counted = await runRunner('count-neo4j', env(backupId));
      expect(counted.code, counted.stderr).toBe(0);
      const atCount = await countGraph(source);

      // The write that used to fail a good backup's validation.
      await source.driver().executeQuery('UNWIND range(1, 7) AS i CREATE (:LateWrite {i: i})');
      await source.stopDbms();
      const dumped = await runRunner('backup-neo4j', env(backupId));
      await source.startDbms();
      expect(dumped.code, dumped.stderr).toBe(0);
      // The running DBMS now holds exactly the dumped data (its store was dumped while stopped).
      const inDump = await countGraph(source);
      expect(inDump.nodes).toBe(atCount.nodes + 7);

      const { manifest } = await writeManifest(s3, Bucket, {
        target,
        backupId,
        components: ['database'],
        toolVersion: 'test',
      });
      expect(manifest.counts_basis?.neo4j).toMatchObject({
        describes_dump: 'unknown',
        counted_from: 'bolt',
        store_count: 'disabled: NEO4J_COUNT_OFFLINE=false',
      });
      expect(manifest.counts_basis?.neo4j?.dumped_tx).toBeGreaterThan(0);
      expect(manifest.counts?.neo4j?.neo4j).toEqual(atCount);

      // Before: RestoreValidationError "restored graph does not match the backup's counts".
      await expect(validateGraph(ctx(backupId), bolt(), manifest)).resolves.toEqual({ neo4j: inDump });
    },
    scaled(400_000),
  );

  it(
    'counts taken at the dumped transaction are verified and held strictly; counts taken at another are not compared',
    async () => {
      const now = await countGraph(source);
      const counts = (transactions: Record<string, number>, graph = now) =>
        ({ counts: { neo4j: graph }, transactions }) as unknown as Neo4jCountsResult;
      const dump = { databases: [{ name: 'neo4j', lastCommittedTx: 42 }] };

      expect(countsBasis(counts({ neo4j: 42 }), dump)).toEqual({
        neo4j: { describes_dump: 'verified', counted_tx: 42, dumped_tx: 42 },
      });
      expect(countsBasis(counts({ neo4j: 40 }), dump)).toEqual({
        neo4j: { describes_dump: 'differs', counted_tx: 40, dumped_tx: 42, counted: now },
      });

      const manifestWith = (
        describes: 'verified' | 'differs',
        graph: { nodes: number; relationships: number },
      ) =>
        ({
          counts: describes === 'differs' ? { neo4j: {} } : { neo4j: { neo4j: graph } },
          counts_basis: {
            neo4j: { describes_dump: describes, counted_tx: 1, dumped_tx: describes === 'verified' ? 1 : 2 },
          },
          neo4j: { method: 'backup', databases: [{ name: 'neo4j', files: [] }] },
        }) as unknown as Manifest;
      const wrong = { nodes: now.nodes + 1, relationships: now.relationships };
      // Verified counts that differ from the restored graph: a real restore failure.
      await expect(
        validateGraph(ctx('infrahub_backup_20261123_030000'), bolt(), manifestWith('verified', wrong)),
      ).rejects.toMatchObject({
        name: 'RestoreValidation',
      });
      // Counts of another transaction: read, not compared.
      await expect(
        validateGraph(ctx('infrahub_backup_20261123_030000'), bolt(), manifestWith('differs', wrong)),
      ).resolves.toEqual({ neo4j: now });
    },
    scaled(120_000),
  );

  it('buildManifest leaves counts known to differ out of counts.neo4j (kept under counts_basis)', () => {
    const common = {
      target,
      backupId: 'infrahub_backup_20261123_040000',
      startedAt: '2026-11-23T04:00:00Z',
      finishedAt: '2026-11-23T04:01:00Z',
    };
    const manifest = buildManifest(
      { target, backupId: common.backupId, components: ['database'], toolVersion: 'test' },
      {
        database: {
          ...common,
          component: 'database',
          edition: 'enterprise',
          method: 'backup',
          files: [
            {
              path: 'database/neo4j-2026-11-23T04-00-00.backup',
              size: 1,
              sha256: 'a'.repeat(64),
              s3: { key: 'k', checksumSHA256: 'x' },
            },
          ],
          databases: [
            { name: 'neo4j', files: ['database/neo4j-2026-11-23T04-00-00.backup'], lastCommittedTx: 9 },
          ],
          tool: { name: 'neo4j-admin', version: '5.26.0' },
        },
        'database-counts': {
          ...common,
          component: 'database-counts',
          server: { version: '5.26.0', edition: 'enterprise' },
          counts: { neo4j: { nodes: 3, relationships: 1 } },
          transactions: { neo4j: 8 },
        },
      } as never,
    );
    expect(manifest.counts?.neo4j).toEqual({});
    expect(manifest.counts_basis).toEqual({
      neo4j: {
        describes_dump: 'differs',
        counted_tx: 8,
        dumped_tx: 9,
        counted: { nodes: 3, relationships: 1 },
        counted_from: 'bolt',
      },
    });
  });
});
