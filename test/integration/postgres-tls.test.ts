import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, postgresRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { dbnameArg, toolEnv } from '../../containers/runner/src/components/postgres.js';
import { resultKey } from '../../core/backup/layout.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { PostgresResultSchema } from '../../core/backup/results.js';
import { writeManifest } from '../../core/backup/seal.js';
import { getJson } from '../../core/s3/objects.js';
import {
  countTables,
  createVersionedBucket,
  type PostgresServer,
  type S3Server,
  seedPrefect,
  startPostgres,
  startS3,
} from '../../harness/index.js';
import { generateTestCa } from '../../harness/postgres.js';
import { scaled } from '../../harness/time-scale.js';

const Bucket = 'backups-postgres-tls';
const target = 'infrahub-lab';

// PostgreSQL 15 with ssl=on, a certificate for 127.0.0.1 signed by a generated CA, and TCP logins
// over TLS only (hostssl): every connection of the runner (readiness, counts, pg_dump, pg_restore,
// the restore's swap) must use postgres.tls, and a CA that did not sign the certificate is refused.
describe('PostgreSQL over TLS (real runner, real pg_dump / pg_restore, hostssl-only server)', () => {
  let postgres: PostgresServer;
  let server: S3Server;
  let s3: S3Client;
  let wrongCaDir: string;
  let wrongCa: string;
  let expected: Record<string, number>;

  const env = (backupId: string, tls: Record<string, string>) => ({
    ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
    ...postgresRunnerEnv(postgres),
    ...tls,
  });
  const verifyFull = () => ({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: postgres.tls?.caFile ?? '' });

  beforeAll(async () => {
    [postgres, server] = await Promise.all([startPostgres({ tls: true }), startS3()]);
    s3 = server.client();
    await createVersionedBucket(s3, Bucket);
    await seedPrefect(postgres, { flowRuns: 200 });
    expected = await countTables(postgres, 'prefect');
    wrongCaDir = mkdtempSync(join(tmpdir(), 'pg-wrong-ca-'));
    wrongCa = generateTestCa(wrongCaDir, 'other-ca').certFile;
  }, scaled(240_000));

  afterAll(async () => {
    await Promise.allSettled([postgres?.stop(), server?.stop()]);
    if (wrongCaDir) rmSync(wrongCaDir, { recursive: true, force: true });
  });

  let manifest: Manifest;
  const backupId = 'infrahub_backup_20261121_020000';

  it(
    'backs up with verify-full and the CA that signed the server certificate',
    async () => {
      const run = await runRunner('backup-postgres', env(backupId, verifyFull()));
      expect(run.code, run.stderr).toBe(0);
      const result = await getJson(
        s3,
        Bucket,
        resultKey(target, backupId, 'task-manager-db'),
        PostgresResultSchema,
      );
      expect(result?.counts.tables).toEqual(expected);
      ({ manifest } = await writeManifest(s3, Bucket, { target, backupId, components: ['task-manager-db'] }));
    },
    scaled(180_000),
  );

  it(
    'restores (pg_restore, counts, the atomic swap) with verify-full',
    async () => {
      expect(manifest).toBeDefined();
      // Data changed after the backup: the restore brings the backup-time rows back.
      const { default: pg } = await import('pg');
      const client = new pg.Client({
        host: '127.0.0.1',
        port: postgres.port,
        user: postgres.user,
        password: postgres.password,
        database: 'prefect',
        ssl: { ca: readFileSync(postgres.tls?.caFile ?? ''), rejectUnauthorized: true },
      });
      await client.connect();
      await client.query('DELETE FROM log');
      await client.end();
      expect((await countTables(postgres, 'prefect'))['public.log']).toBe(0);

      const run = await runRunner('restore-postgres', {
        ...env(backupId, verifyFull()),
        RESTORE_ID: 'restore_20261121_030000_tls1',
        RESTORE_WORK_DIR: join(tmpdir(), `pg-tls-restore-${process.pid}`),
      });
      expect(run.code, run.stderr).toBe(0);
      expect(await countTables(postgres, 'prefect')).toEqual(expected);
    },
    scaled(180_000),
  );

  it(
    'restores with the CA bundle given as PEM text (PG_TLS_CA_PEM, from a secret)',
    async () => {
      const run = await runRunner('restore-postgres', {
        ...env(backupId, {
          PGSSLMODE: 'verify-full',
          PG_TLS_CA_PEM: readFileSync(postgres.tls?.caFile ?? '', 'utf8'),
        }),
        RESTORE_ID: 'restore_20261121_040000_tls2',
        RESTORE_WORK_DIR: join(tmpdir(), `pg-tls-restore-pem-${process.pid}`),
      });
      expect(run.code, run.stderr).toBe(0);
      expect(await countTables(postgres, 'prefect')).toEqual(expected);
    },
    scaled(180_000),
  );

  it(
    'refuses a server certificate the configured CA did not sign: DatabaseUnreachable naming the host and the TLS problem',
    async () => {
      const run = await runRunner(
        'backup-postgres',
        env('infrahub_backup_20261121_050000', { PGSSLMODE: 'verify-full', PGSSLROOTCERT: wrongCa }),
      );
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain('DatabaseUnreachable');
      expect(run.stderr).toContain(`PostgreSQL at 127.0.0.1:${postgres.port}`);
      expect(run.stderr).toMatch(
        /TLS: the server's certificate was refused \(CA bundle [^)]*other-ca\.crt\)/,
      );
      expect(run.stderr).toMatch(
        /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER/,
      );
      // A named failure, not a raw stack trace.
      expect(run.stderr).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);
      expect(await exists(resultKey(target, 'infrahub_backup_20261121_050000', 'task-manager-db'))).toBe(
        false,
      );
    },
    scaled(120_000),
  );

  it("gives pg_dump libpq's TLS settings (toolEnv): the wrong CA is refused by pg_dump itself, the right one dumps", () => {
    const connection = (caFile: string) => ({
      host: '127.0.0.1',
      port: postgres.port,
      user: postgres.user,
      password: postgres.password,
      database: 'prefect',
      tls: { mode: 'verify-full' as const, caFile },
    });
    const dump = (caFile: string) =>
      spawnSync(postgres.tool('pg_dump'), ['--schema-only', '--no-password', dbnameArg('prefect')], {
        env: toolEnv(connection(caFile), 'tls-test'),
        encoding: 'utf8',
      });
    const wrong = dump(wrongCa);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/certificate verify failed/);
    const right = dump(postgres.tls?.caFile ?? '');
    expect(right.status, right.stderr).toBe(0);
    expect(right.stdout).toContain('CREATE TABLE public.flow_run');
  });

  it(
    'fails clearly with mode disable against a server that accepts TLS logins only',
    async () => {
      const run = await runRunner(
        'backup-postgres',
        env('infrahub_backup_20261121_060000', { PGSSLMODE: 'disable' }),
      );
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain('DatabaseUnreachable');
      expect(run.stderr).toContain(`PostgreSQL at 127.0.0.1:${postgres.port}`);
      expect(run.stderr).toMatch(
        /TLS: the server refuses unencrypted connections .*no encryption.*postgres\.tls\.mode is disable/,
      );
    },
    scaled(120_000),
  );

  it(
    'backs up with require (encrypted, no CA)',
    async () => {
      const id = 'infrahub_backup_20261121_070000';
      const run = await runRunner('backup-postgres', env(id, { PGSSLMODE: 'require' }));
      expect(run.code, run.stderr).toBe(0);
      const result = await getJson(
        s3,
        Bucket,
        resultKey(target, id, 'task-manager-db'),
        PostgresResultSchema,
      );
      expect(result?.counts.tables).toEqual(expected);
    },
    scaled(180_000),
  );

  it(
    'refuses verify-full without a CA bundle, and an unknown mode, before connecting',
    async () => {
      const noCa = await runRunner(
        'backup-postgres',
        env('infrahub_backup_20261121_080000', { PGSSLMODE: 'verify-full' }),
      );
      expect(noCa.code).not.toBe(0);
      expect(noCa.stderr).toContain('RunnerConfigError');
      expect(noCa.stderr).toMatch(/PGSSLROOTCERT: PGSSLMODE is verify-full, which needs a CA bundle/);
      const missing = await runRunner(
        'backup-postgres',
        env('infrahub_backup_20261121_080000', {
          PGSSLMODE: 'verify-full',
          PGSSLROOTCERT: '/opt/runner/certs/rds-global-bundle.pem',
        }),
      );
      expect(missing.stderr).toMatch(/rds-global-bundle\.pem does not exist in this runner/);
      const unknown = await runRunner(
        'backup-postgres',
        env('infrahub_backup_20261121_080000', { PGSSLMODE: 'prefer' }),
      );
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toMatch(/PGSSLMODE/);
    },
    scaled(120_000),
  );

  async function exists(key: string): Promise<boolean> {
    const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
    return s3.send(new HeadObjectCommand({ Bucket, Key: key })).then(
      () => true,
      () => false,
    );
  }
});
