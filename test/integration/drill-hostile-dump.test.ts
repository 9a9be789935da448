import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importTarball } from '../../cli/ops/tarball.js';
import { DRILL_RESTORE_ROLE, runDrill } from '../../containers/runner/src/components/drill.js';
import { type Manifest, readManifest } from '../../core/backup/manifest.js';
import { createLogger } from '../../core/log.js';
import {
  createVersionedBucket,
  type PostgresServer,
  type S3Server,
  startPostgres,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

const Bucket = 'backups-drill-hostile';
const target = 'infrahub-lab';
const logger = createLogger({}, { write: () => undefined });
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

// Review 12 item 14: a dump is SQL that pg_restore runs as the role it connects as. An imported
// archive's prefect.dump whose CHECK constraint calls a function running `COPY ... TO PROGRAM` ran
// that program in the drill task, because the drill restored as the disposable server's superuser.
// The drill now restores as a role that is no superuser: the program is refused and the drill fails.
describe('drill: a hostile dump in an imported archive (real pg_dump / pg_restore, real S3 server)', () => {
  let postgres: PostgresServer;
  let server: S3Server;
  let s3: S3Client;
  let work: string;
  let marker: string;
  const psql = (database: string, sql: string) =>
    execFileSync(postgres.tool('psql'), ['-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sql], {
      env: { ...process.env, ...postgres.env(database) },
      encoding: 'utf8',
    });

  /** Imports an archive of the database `prefect` of the harness server as `backupId`. */
  async function importDump(backupId: string): Promise<Manifest> {
    const dir = join(work, backupId, 'backup');
    mkdirSync(dir, { recursive: true });
    const dump = join(dir, 'prefect.dump');
    execFileSync(postgres.tool('pg_dump'), ['-Fc', '-f', dump, '--dbname=prefect'], {
      env: { ...process.env, ...postgres.env('prefect') },
    });
    writeFileSync(
      join(dir, 'backup_information.json'),
      JSON.stringify({
        metadata_version: 2025111200,
        backup_id: backupId,
        created_at: '2026-11-20T01:00:00Z',
        tool_version: '1.3.0',
        infrahub_version: '1.5.2',
        components: ['task-manager-db'],
        checksums: { 'prefect.dump': sha256(dump) },
        redacted: false,
        encrypted: false,
      }),
    );
    const tarball = join(work, `${backupId}.tar.gz`);
    execFileSync('tar', ['-czf', tarball, '-C', join(work, backupId), 'backup']);
    await importTarball(s3, Bucket, tarball, target, {});
    return (await readManifest(s3, Bucket, target, backupId)) as Manifest;
  }

  const drill = (manifest: Manifest) =>
    runDrill(
      {
        s3,
        bucket: Bucket,
        target,
        backupId: manifest.backup_id,
        restoreId: `drill_${manifest.backup_id}`,
        logger,
      },
      manifest,
      {
        workDir: join(work, `d${manifest.backup_id.slice(-8)}`), // short: the server's socket path has a length limit
        pgBinDir: postgres.binDir,
        neo4jHome: '/nonexistent',
        neo4jAdmin: '/nonexistent',
      },
    );

  beforeAll(async () => {
    [postgres, server] = await Promise.all([startPostgres(), startS3()]);
    s3 = server.client();
    await createVersionedBucket(s3, Bucket);
    work = mkdtempSync(join(tmpdir(), 'drill-hostile-'));
    // The disposable cluster (and its programs) run as an unprivileged account when tests run as root.
    chmodSync(work, 0o777);
    marker = join(work, 'program-ran');
  }, scaled(240_000));

  afterAll(async () => {
    await Promise.allSettled([postgres?.stop(), server?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it(
    'restores an ordinary dump as the non-superuser role',
    async () => {
      psql('postgres', 'CREATE DATABASE prefect');
      psql(
        'prefect',
        'CREATE TABLE flow_run (id int PRIMARY KEY, name text); INSERT INTO flow_run SELECT g, $$run$$ || g FROM generate_series(1, 25) g; CREATE INDEX ON flow_run (lower(name))',
      );
      const result = await drill(await importDump('infrahub_backup_20261120_010000'));
      expect(result.details.postgres).toMatchObject({
        database: 'prefect',
        tables: 1,
        rows: 25,
        restoredAs: `${DRILL_RESTORE_ROLE} (not a superuser)`,
      });
    },
    scaled(240_000),
  );

  it(
    'refuses a dump whose SQL runs a program (COPY ... TO PROGRAM in a CHECK constraint): the program never runs',
    async () => {
      // The program reads what COPY writes: one that exits first (plain touch) fails the COPY with a
      // broken pipe now and then, so the set-up itself would fail.
      const program = `touch ${marker}; cat > /dev/null`;
      psql(
        'prefect',
        `CREATE FUNCTION pwn(i int) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', ${`'${program}'`}); RETURN true; END $f$`,
      );
      // A CHECK constraint is dumped with its table and evaluated for every row the dump's COPY loads.
      psql('prefect', 'ALTER TABLE flow_run ADD CONSTRAINT flow_run_pwn CHECK (pwn(id))');
      // Adding it on the source server (as its superuser) ran the program: restoring the dump would too.
      expect(existsSync(marker)).toBe(true);
      rmSync(marker);
      const manifest = await importDump('infrahub_backup_20261121_010000');
      await expect(drill(manifest)).rejects.toMatchObject({
        name: 'ToolFailed',
        message: expect.stringMatching(/pg_execute_server_program|must be superuser/),
      });
      expect(existsSync(marker)).toBe(false);
    },
    scaled(240_000),
  );
});
