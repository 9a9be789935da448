import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, neo4jRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import {
  restoreNeo4jCommunity,
  validateGraph,
} from '../../containers/runner/src/components/restore-neo4j.js';
import { type Manifest, writeManifest } from '../../core/backup/manifest.js';
import { createLogger } from '../../core/log.js';
import {
  countGraph,
  createVersionedBucket,
  type Neo4jServer,
  type S3Server,
  seedGraph,
  startNeo4j,
  startS3,
} from '../../harness/index.js';

const Bucket = 'backups-restore-neo4j';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_020000';
const logger = createLogger({}, { write: () => undefined });

// Backup with the real runner, graph changed, restore loaded from S3 into the same stopped DBMS:
// the backup-time graph comes back, checked by counts over Bolt.
describe('restore: Neo4j Community (real neo4j-admin load, real S3 server)', () => {
  let neo4j: Neo4jServer;
  let server: S3Server;
  let s3: S3Client;
  let manifest: Manifest;

  beforeAll(async () => {
    [neo4j, server] = await Promise.all([startNeo4j(), startS3()]);
    s3 = server.client();
    await createVersionedBucket(s3, Bucket);
    await seedGraph(neo4j, { devices: 30 });
    const env = { ...localRunnerEnv(server, { target, backupId, bucket: Bucket }), ...neo4jRunnerEnv(neo4j) };
    const counted = await runRunner('count-neo4j', env);
    expect(counted.code, counted.stderr).toBe(0);
    await neo4j.stopDbms();
    const dumped = await runRunner('backup-neo4j', env);
    await neo4j.startDbms();
    expect(dumped.code, dumped.stderr).toBe(0);
    ({ manifest } = await writeManifest(s3, Bucket, { target, backupId, components: ['database'] }));
  }, 240_000);

  afterAll(async () => {
    await Promise.allSettled([neo4j?.stop(), server?.stop()]);
  });

  const ctx = () => ({ s3, bucket: Bucket, target, backupId, logger });
  const admin = () => ({ path: neo4j.adminPath, env: { ...process.env, ...neo4j.adminEnv() } });
  const bolt = () => ({ uri: neo4j.boltUrl, username: 'neo4j', password: neo4j.password });

  it('refuses to load while the DBMS runs, before touching anything', async () => {
    await expect(restoreNeo4jCommunity(ctx(), admin(), manifest)).rejects.toMatchObject({
      name: 'Neo4jDatabaseInUse',
    });
  });

  it('brings back the backup-time graph after nodes were deleted and added', async () => {
    const before = await countGraph(neo4j);
    const session = neo4j.driver().session({ database: 'neo4j' });
    await session.run('MATCH (n) WITH n LIMIT 10 DETACH DELETE n');
    await session.run('CREATE (:Stray {name: "added after the backup"})');
    await session.close();
    expect(await countGraph(neo4j)).not.toEqual(before);

    await neo4j.stopDbms();
    const result = await restoreNeo4jCommunity(ctx(), admin(), manifest);
    await neo4j.startDbms();
    expect(result.databases.map((d) => d.name)).toEqual(['system', 'neo4j']);
    expect(await countGraph(neo4j)).toEqual(before);
    expect(await validateGraph(ctx(), bolt(), manifest)).toEqual({ neo4j: before });
  }, 180_000);

  it('fails validation, naming the database, when counts differ from the backup', async () => {
    const wrong: Manifest = {
      ...manifest,
      counts: { ...manifest.counts, neo4j: { neo4j: { nodes: 1, relationships: 0 } } },
    };
    await expect(validateGraph(ctx(), bolt(), wrong)).rejects.toMatchObject({
      name: 'RestoreValidation',
      message: expect.stringMatching(
        /neo4j: 1 nodes and 0 relationships at backup, \d+ and \d+ after restore/,
      ),
    });
  });
});
