import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, postgresRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { fileKey, manifestKey, PREFECT_DUMP, resultKey } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import { ComponentErrorSchema, PostgresResultSchema } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { verifyBackup } from '../../core/backup/verify.js';
import { getJson } from '../../core/s3/objects.js';
import { countTables, type PostgresServer, type S3Server } from '../../harness/index.js';
import { type RunnerStack, startRunnerStack } from '../../harness/runner-stack.js';
import { descendants, programName } from '../helpers/process-tree.js';
import { downloadAndHash, exists, openUploads } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'backups-postgres-test';
const target = 'infrahub-lab';

describe('backup runner: PostgreSQL (real pg_dump, real S3 server)', () => {
  let stack: RunnerStack;
  let postgres: PostgresServer;
  let server: S3Server;
  let s3: S3Client;

  const env = (backupId: string, extra: Record<string, string> = {}) => ({
    ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
    ...postgresRunnerEnv(postgres),
    S3_PART_SIZE_MIB: '5',
    ...extra,
  });

  beforeAll(async () => {
    stack = await startRunnerStack({ bucket: Bucket, postgres: { flowRuns: 2000 } });
    ({ postgres, server, s3 } = stack);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('streams pg_dump -Fc to S3; the downloaded dump hashes to the manifest and restores with the same row counts', async () => {
    const backupId = 'infrahub_backup_20261121_020000';
    const run = await runRunner('backup-postgres', env(backupId));
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ component: 'task-manager-db', files: 1 });

    const result = await getJson(
      s3,
      Bucket,
      resultKey(target, backupId, 'task-manager-db'),
      PostgresResultSchema,
    );
    expect(result?.counts.tables).toEqual({
      'public.flow_run': 2000,
      'public.log': 10_000,
      'public.task_run': 6000,
    });
    expect(result?.server.majorVersion).toBe(postgres.majorVersion);
    expect(result?.tool.compress).toBe('1');

    const { manifest } = await writeManifest(s3, Bucket, {
      target,
      backupId,
      components: ['task-manager-db'],
      toolVersion: 'test',
    });
    const dump = await downloadAndHash(s3, Bucket, fileKey(target, backupId, PREFECT_DUMP));
    expect(dump.sha256).toBe(manifest.checksums[PREFECT_DUMP]);
    expect(dump.body.length).toBe(manifest.sizes?.[PREFECT_DUMP]);
    expect(dump.body.subarray(0, 5).toString()).toBe('PGDMP');
    expect((await verifyBackup(s3, Bucket, target, backupId, { deep: true })).ok).toBe(true);

    // Restore into a new database and compare with the counts recorded at backup time.
    const file = join(testTempDir('pg-restore-'), 'prefect.dump');
    writeFileSync(file, dump.body);
    execFileSync(postgres.tool('createdb'), ['restored'], { env: { ...process.env, ...postgres.env() } });
    const restore = spawnSync(postgres.tool('pg_restore'), ['--no-owner', '--dbname=restored', file], {
      env: { ...process.env, ...postgres.env() },
      encoding: 'utf8',
    });
    expect(restore.status, restore.stderr).toBe(0);
    const restored = await countTables(postgres, 'restored');
    expect(restored).toEqual(manifest.counts?.postgres?.tables);
  });

  it('counts rows in the snapshot pg_dump dumps, not in the data that changes meanwhile', async () => {
    // A writer inserts throughout the dump; the recorded counts must match what the dump holds.
    const backupId = 'infrahub_backup_20261121_030000';
    const writer = new pg.Client({ connectionString: postgres.url('prefect') });
    await writer.connect();
    let writing = true;
    const inserts = (async () => {
      while (writing) {
        await writer.query(
          "INSERT INTO log (level, message) SELECT 10, 'noise' FROM generate_series(1, 200)",
        );
      }
    })();
    const run = await runRunner('backup-postgres', env(backupId));
    writing = false;
    await inserts;
    await writer.end();
    expect(run.code, run.stderr).toBe(0);

    const result = await getJson(
      s3,
      Bucket,
      resultKey(target, backupId, 'task-manager-db'),
      PostgresResultSchema,
    );
    const dump = await downloadAndHash(s3, Bucket, fileKey(target, backupId, PREFECT_DUMP));
    const file = join(testTempDir('pg-restore-'), 'prefect.dump');
    writeFileSync(file, dump.body);
    execFileSync(postgres.tool('createdb'), ['snapshot_check'], {
      env: { ...process.env, ...postgres.env() },
    });
    execFileSync(postgres.tool('pg_restore'), ['--no-owner', '--dbname=snapshot_check', file], {
      env: { ...process.env, ...postgres.env() },
    });
    const restored = await countTables(postgres, 'snapshot_check');
    expect(restored['public.log']).toBe(result?.counts.tables['public.log']);
    // The writer did change the table during the backup, so equal counts are not a coincidence.
    const live = await countTables(postgres, 'prefect');
    expect(live['public.log']).toBeGreaterThan(
      result?.counts.tables['public.log'] ?? Number.POSITIVE_INFINITY,
    );
  });

  it('aborts the upload and leaves no completed object and no manifest when pg_dump is killed', async () => {
    // Enough data that the dump spans several 5 MiB parts and takes a while.
    const admin = new pg.Client({ connectionString: postgres.url('prefect') });
    await admin.connect();
    await admin.query(
      'CREATE TABLE IF NOT EXISTS blob AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) AS v FROM generate_series(1, 1500000) g',
    );
    await admin.end();

    const backupId = 'infrahub_backup_20261121_040000';
    const key = fileKey(target, backupId, PREFECT_DUMP);
    let killed = false;
    const run = await runRunner('backup-postgres', env(backupId), (runnerPid) => {
      const poll = setInterval(async () => {
        // Kill pg_dump once a multipart upload of the dump is under way.
        if (killed || !(await openUploads(s3, Bucket)).includes(key)) return;
        // Only this runner's own pg_dump: other test files dump side by side.
        const pid = descendants(runnerPid).find((p) => programName(p) === 'pg_dump');
        if (pid) {
          process.kill(pid, 'SIGKILL');
          killed = true;
          clearInterval(poll);
        }
      }, 50);
    });
    expect(killed).toBe(true);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/ToolFailed: pg_dump was killed by SIGKILL/);
    expect(await exists(s3, Bucket, key)).toBe(false);
    expect(await openUploads(s3, Bucket)).not.toContain(key);
    expect(await exists(s3, Bucket, resultKey(target, backupId, 'task-manager-db'))).toBe(false);

    const failure = await getJson(
      s3,
      Bucket,
      resultKey(target, backupId, 'task-manager-db.error'),
      ComponentErrorSchema,
    );
    expect(failure?.error.name).toBe('ToolFailed');

    await expect(
      writeManifest(s3, Bucket, { target, backupId, components: ['task-manager-db'], toolVersion: 'test' }),
    ).rejects.toMatchObject({ name: 'IncompleteBackup' });
    expect(await exists(s3, Bucket, manifestKey(target, backupId))).toBe(false);
    expect(await readManifest(s3, Bucket, target, backupId)).toBeUndefined();
  });

  it('refuses, before dumping, a pg_dump older than the server', async () => {
    const bin = testTempDir('old-pg-');
    const script = join(bin, 'pg_dump');
    writeFileSync(script, '#!/bin/sh\necho "pg_dump (PostgreSQL) 12.22"\n');
    chmodSync(script, 0o755);
    const backupId = 'infrahub_backup_20261121_050000';
    const run = await runRunner('backup-postgres', env(backupId, { PG_BINDIR: bin }));
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/IncompatibleTool: pg_dump 12\.22 is older than the server \(PostgreSQL 1\d/);
    expect(await exists(s3, Bucket, fileKey(target, backupId, PREFECT_DUMP))).toBe(false);
  });

  it('fails at start, naming the variable, when the environment is incomplete', async () => {
    const run = await runRunner(
      'backup-postgres',
      env('infrahub_backup_20261121_060000', { PGPASSWORD: '' }),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/PGPASSWORD: must be set/);
  });
});
