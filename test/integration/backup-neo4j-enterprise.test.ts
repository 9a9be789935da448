import { mkdtempSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { fileKey, resultKey } from '../../core/backup/layout.js';
import { writeManifest } from '../../core/backup/manifest.js';
import { Neo4jResultSchema } from '../../core/backup/results.js';
import { getJson, listAll } from '../../core/s3/objects.js';
import { repoRoot, type S3Server } from '../../harness/index.js';
import { downloadAndHash, useLocalS3 } from '../helpers/s3.js';

// Neo4j Enterprise cannot run here: these tests drive the runner against a FAKE neo4j-admin that
// follows the documented command contract (test/fakes/fake-neo4j-admin-enterprise.mjs).
const fakeAdmin = join(repoRoot, 'test', 'fakes', 'fake-neo4j-admin-enterprise.mjs');
const Bucket = 'backups-neo4j-enterprise-test';
const target = 'infrahub-prod';

describe('backup runner: Neo4j Enterprise online backup (fake neo4j-admin)', () => {
  const local = useLocalS3(Bucket);
  let server: S3Server;
  let s3: S3Client;
  let listener: Server;
  let backupPort: number;

  const env = (backupId: string, backupDir: string, extra: Record<string, string> = {}) => ({
    ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
    NEO4J_EDITION: 'enterprise',
    NEO4J_DATABASES: 'neo4j,system',
    NEO4J_ADMIN: fakeAdmin,
    NEO4J_BACKUP_FROM: `127.0.0.1:${backupPort}`,
    NEO4J_BACKUP_DIR: backupDir,
    ...extra,
  });

  beforeAll(async () => {
    server = local.server;
    s3 = local.s3;
    // Stands in for the server's backup listener (server.backup.listen_address).
    listener = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    backupPort = (listener.address() as { port: number }).port;
  });

  afterAll(async () => {
    listener?.close();
  });

  it('takes a full backup, then a differential, and uploads the whole chain each time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'neo4j-chain-'));

    const first = 'infrahub_backup_20261121_020000';
    const run1 = await runRunner('backup-neo4j', env(first, dir));
    expect(run1.code, run1.stderr).toBe(0);
    const r1 = await getJson(s3, Bucket, resultKey(target, first, 'database'), Neo4jResultSchema);
    expect(r1?.edition).toBe('enterprise');
    expect(r1?.method).toBe('backup');
    expect(r1?.databases.map((d) => d.files.length)).toEqual([1, 1]);

    const second = 'infrahub_backup_20261122_020000';
    const run2 = await runRunner('backup-neo4j', env(second, dir));
    expect(run2.code, run2.stderr).toBe(0);
    const r2 = await getJson(s3, Bucket, resultKey(target, second, 'database'), Neo4jResultSchema);
    // Full + differential per database, oldest first; the backup is restorable on its own.
    expect(r2?.databases.map((d) => d.files.length)).toEqual([2, 2]);
    const neo4jChain = r2?.databases[0]?.files ?? [];
    expect(neo4jChain[0]).toBe(r1?.databases[0]?.files[0]);

    const { manifest } = await writeManifest(s3, Bucket, {
      target,
      backupId: second,
      components: ['database'],
      toolVersion: 'test',
    });
    expect(manifest.neo4j_edition).toBe('enterprise');
    expect(Object.keys(manifest.checksums)).toHaveLength(4);
    for (const path of neo4jChain) {
      expect(path).toMatch(/^database\/neo4j-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.backup$/);
      const downloaded = await downloadAndHash(s3, Bucket, fileKey(target, second, path));
      expect(downloaded.sha256).toBe(manifest.checksums[path]);
    }
    // The fake's header says which artifact is the full one and which the differential.
    const headers = await Promise.all(
      neo4jChain.map(async (p) =>
        JSON.parse(
          (await downloadAndHash(s3, Bucket, fileKey(target, second, p))).body
            .toString('utf8')
            .split('\n')[0] ?? '{}',
        ),
      ),
    );
    expect(headers.map((h) => h.full)).toEqual([true, false]);
    expect(headers[0].metadata).toBe('all');
  });

  it('folds the chain into one full backup when aggregation is on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'neo4j-chain-'));
    expect(
      (
        await runRunner(
          'backup-neo4j',
          env('infrahub_backup_20261123_020000', dir, { NEO4J_DATABASES: 'neo4j' }),
        )
      ).code,
    ).toBe(0);
    const backupId = 'infrahub_backup_20261124_020000';
    const run = await runRunner(
      'backup-neo4j',
      env(backupId, dir, { NEO4J_DATABASES: 'neo4j', NEO4J_AGGREGATE: 'true' }),
    );
    expect(run.code, run.stderr).toBe(0);
    const result = await getJson(s3, Bucket, resultKey(target, backupId, 'database'), Neo4jResultSchema);
    expect(result?.databases[0]?.files).toHaveLength(1);
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('fails with the tool error and uploads nothing when the backup server is unreachable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'neo4j-chain-'));
    const backupId = 'infrahub_backup_20261125_020000';
    const run = await runRunner('backup-neo4j', env(backupId, dir, { NEO4J_BACKUP_FROM: '127.0.0.1:1' }));
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(
      /ToolFailed: neo4j-admin database backup exited with code 1: Backup failed for database 'neo4j'/,
    );
    expect(await listAll(s3, Bucket, `${target}/${backupId}/database/`)).toEqual([]);
  });

  it('fails when neo4j-admin reports a failed backup', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'neo4j-chain-'));
    const backupId = 'infrahub_backup_20261126_020000';
    const run = await runRunner('backup-neo4j', env(backupId, dir, { FAKE_NEO4J_ADMIN_FAIL: 'backup' }));
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/remote store copy interrupted/);
    expect(await listAll(s3, Bucket, `${target}/${backupId}/`)).toHaveLength(1); // only .runner/database.error.json
  });
});
