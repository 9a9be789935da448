import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importTarball } from '../../cli/ops/tarball.js';
import { runDrill } from '../../containers/runner/src/components/drill.js';
import { parseDumpHeader } from '../../containers/runner/src/components/restore-postgres.js';
import { withTargetState } from '../../containers/runner/src/stop-guard.js';
import { type Manifest, readManifest } from '../../core/backup/manifest.js';
import { createLogger } from '../../core/log.js';
import { describeTableCheck, tablesMissing } from '../../core/restore/compare.js';
import {
  countTables,
  createVersionedBucket,
  type PostgresServer,
  type S3Server,
  seedPrefect,
  startPostgres,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

const Bucket = 'backups-drill-postgres';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261120_010000';
const logger = createLogger({}, { write: () => undefined });
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

// A drill of a backup imported from an infrahub-backup archive (which records no counts): the
// disposable server's tables are counted in the restored database (the dump's `prefect`), not in
// the server's `postgres`, and the drill says what it compared.
describe('drill: PostgreSQL of an imported infrahub-backup archive (real pg_restore, real S3 server)', () => {
  let postgres: PostgresServer;
  let server: S3Server;
  let s3: S3Client;
  let work: string;
  let manifest: Manifest;
  let atBackup: Record<string, number>;
  let dumpFile: string;

  beforeAll(async () => {
    [postgres, server] = await Promise.all([startPostgres(), startS3()]);
    s3 = server.client();
    await createVersionedBucket(s3, Bucket);
    await seedPrefect(postgres, { flowRuns: 40 });
    atBackup = await countTables(postgres, 'prefect');
    work = mkdtempSync(join(tmpdir(), 'drill-pg-'));
    // The disposable cluster runs as an unprivileged account when tests run as root: it must reach its folder.
    chmodSync(work, 0o755);
    const dir = join(work, 'archive', 'backup');
    mkdirSync(dir, { recursive: true });
    dumpFile = join(dir, 'prefect.dump');
    execFileSync(postgres.tool('pg_dump'), ['-Fc', '-f', dumpFile, '--dbname=prefect'], {
      env: { ...process.env, ...postgres.env('prefect') },
    });
    // backup_information.json as infrahub-backup writes it: checksums, and no counts.
    writeFileSync(
      join(dir, 'backup_information.json'),
      JSON.stringify({
        metadata_version: 2025111200,
        backup_id: backupId,
        created_at: '2026-11-20T01:00:00Z',
        tool_version: '1.3.0',
        infrahub_version: '1.5.2',
        components: ['task-manager-db'],
        checksums: { 'prefect.dump': sha256(dumpFile) },
        redacted: false,
        encrypted: false,
      }),
    );
    const tarball = join(work, `${backupId}.tar.gz`);
    execFileSync('tar', ['-czf', tarball, '-C', join(work, 'archive'), 'backup']);
    await importTarball(s3, Bucket, tarball, target, {});
    manifest = (await readManifest(s3, Bucket, target, backupId)) as Manifest;
    expect(manifest.counts).toBeUndefined();
  }, scaled(240_000));

  afterAll(async () => {
    await Promise.allSettled([postgres?.stop(), server?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it(
    "counts the restored prefect database's tables and rows, and says no counts were recorded",
    async () => {
      const rows = Object.values(atBackup).reduce((a, b) => a + b, 0);
      const result = await runDrill(
        { s3, bucket: Bucket, target, backupId, restoreId: 'drill_20261122_010000_imp', logger },
        manifest,
        {
          workDir: join(work, 'drill'),
          pgBinDir: postgres.binDir,
          neo4jHome: '/nonexistent',
          neo4jAdmin: '/nonexistent',
        },
      );
      expect(result.details.postgres).toMatchObject({
        database: 'prefect',
        tables: Object.keys(atBackup).length,
        rows,
        countsCompared: false,
        verifiedBytes: manifest.sizes?.['prefect.dump'],
        sha256: manifest.checksums['prefect.dump'],
        validation: `no counts recorded at backup time; restored database has 3 tables, ${rows} rows (all 3 tables the dump defines present)`,
      });
      expect(rows).toBeGreaterThan(0);
      // Review: the drill restores into its own disposable server: a failure after it (its report
      // refused) must not say that a target's database now holds the backup's data.
      expect(withTargetState(new Error('writing the report: AccessDenied')).message).toBe(
        'writing the report: AccessDenied',
      );
    },
    scaled(240_000),
  );

  it('fails an empty restored database when the dump defines tables (the tables are read from the dump itself)', () => {
    const sql = execFileSync(
      postgres.tool('pg_restore'),
      ['--create', '--section=pre-data', '--file=-', dumpFile],
      {
        encoding: 'utf8',
      },
    );
    const header = parseDumpHeader(sql);
    expect(header.database).toBe('prefect');
    expect(header.tables).toEqual(['public.flow_run', 'public.log', 'public.task_run']);
    // What counting the scratch server's `postgres` database found before: no table at all.
    expect(tablesMissing(header.tables, {})).toEqual(header.tables);
    expect(tablesMissing(header.tables, atBackup)).toEqual([]);
  });

  it('says "counts equal those at backup time" only when counts were compared', () => {
    expect(describeTableCheck({ compared: true, tables: 3, rows: 10, dumpTables: 3 })).toBe(
      'counts equal those at backup time (3 tables, 10 rows)',
    );
    expect(describeTableCheck({ compared: false, tables: 3, rows: 10, dumpTables: 3 })).not.toMatch(/equal/);
  });
});
