import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, neo4jRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { fileKey, resultKey } from '../../core/backup/layout.js';
import { Neo4jResultSchema } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { verifyBackup } from '../../core/backup/verify.js';
import { getJson, listAll } from '../../core/s3/objects.js';
import { runTool } from '../../core/tools/run-tool.js';
import { streamS3ToTool } from '../../core/tools/stream-from-s3.js';
import { countGraph, type Neo4jServer, type S3Server, startNeo4j } from '../../harness/index.js';
import { type RunnerStack, startRunnerStack } from '../../harness/runner-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { downloadAndHash } from '../helpers/s3.js';

const Bucket = 'backups-neo4j-test';
const target = 'infrahub-lab';

describe('backup runner: Neo4j Community (real neo4j-admin, real S3 server)', () => {
  let stack: RunnerStack;
  let source: Neo4jServer;
  let server: S3Server;
  let s3: S3Client;
  let seeded: { nodes: number; relationships: number };

  const env = (backupId: string) => ({
    ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
    ...neo4jRunnerEnv(source),
  });

  beforeAll(async () => {
    stack = await startRunnerStack({ bucket: Bucket, neo4j: { devices: 150 } });
    ({ neo4j: source, server, s3 } = stack);
    seeded = stack.seeded.graph;
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('refuses to dump while the DBMS is running, before writing anything', async () => {
    const backupId = 'infrahub_backup_20261121_010000';
    const run = await runRunner('backup-neo4j', env(backupId));
    expect(run.code).toBe(5);
    expect(run.stderr).toMatch(/Neo4jDatabaseInUse: Neo4j database "neo4j" is in use/);
    const written = await listAll(s3, Bucket, `${target}/${backupId}/database/`);
    expect(written).toEqual([]);
  });

  it(
    'counts over Bolt, dumps each database with the DBMS stopped, and the dump loads into a fresh store with the same counts',
    async () => {
      const backupId = 'infrahub_backup_20261121_020000';
      const counted = await runRunner('count-neo4j', env(backupId));
      expect(counted.code, counted.stderr).toBe(0);

      await source.stopDbms();
      const run = await runRunner('backup-neo4j', env(backupId));
      await source.startDbms();
      expect(run.code, run.stderr).toBe(0);

      const result = await getJson(s3, Bucket, resultKey(target, backupId, 'database'), Neo4jResultSchema);
      expect(result?.files.map((f) => f.path)).toEqual(['database/neo4j.dump', 'database/system.dump']);
      expect(result?.tool.version).toBe(source.version);
      expect(result?.databases[0]?.lastCommittedTx).toBeGreaterThan(0);

      const { manifest } = await writeManifest(s3, Bucket, {
        target,
        backupId,
        components: ['database'],
        toolVersion: 'test',
      });
      expect(manifest.neo4j_edition).toBe('community');
      expect(manifest.counts?.neo4j).toEqual({ neo4j: seeded });
      expect(manifest.versions?.neo4j).toEqual({
        edition: 'community',
        tool: source.version,
        server: source.version,
      });
      for (const path of ['database/neo4j.dump', 'database/system.dump']) {
        const downloaded = await downloadAndHash(s3, Bucket, fileKey(target, backupId, path));
        expect(downloaded.sha256).toBe(manifest.checksums[path]);
      }
      expect(await verifyBackup(s3, Bucket, target, backupId)).toMatchObject({
        ok: true,
        files: 2,
        downloaded: 0,
      });

      // A fresh, empty Neo4j: stop it, load the dump, start, count.
      const fresh = await startNeo4j();
      try {
        expect((await countGraph(fresh)).nodes).toBe(0);
        await fresh.stopDbms();
        const load = runTool(
          fresh.adminPath,
          ['database', 'load', 'neo4j', '--from-stdin', '--overwrite-destination=true'],
          {
            env: { ...process.env, ...fresh.adminEnv() },
            stdin: 'pipe',
            stdout: 'ignore',
          },
        );
        await streamS3ToTool(s3, Bucket, fileKey(target, backupId, 'database/neo4j.dump'), load);
        await fresh.startDbms();
        expect(await countGraph(fresh)).toEqual(manifest.counts?.neo4j?.neo4j);
      } finally {
        await fresh.stop();
      }
      // Two DBMS stop/starts, the offline count's own read-only server, a second Neo4j and its load:
      // about 3 min on a quiet 2-core machine, so the project's 180 s default leaves no room under load.
    },
    scaled(600_000),
  );
});
