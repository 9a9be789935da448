import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, postgresRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { restorePostgres } from '../../containers/runner/src/components/restore-postgres.js';
import {
  requestStop,
  resetStopGuard,
  targetStateNote,
  withTargetState,
} from '../../containers/runner/src/stop-guard.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { writeManifest } from '../../core/backup/seal.js';
import { createLogger } from '../../core/log.js';
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

const Bucket = 'backups-restore-postgres';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_020000';
const logger = createLogger({}, { write: () => undefined });

// Backup with the real runner, data changed and deleted, restore streamed from S3: the backup-time
// state comes back, checked by exact row counts.
describe('restore: PostgreSQL (real pg_restore, real S3 server)', () => {
  let postgres: PostgresServer;
  let server: S3Server;
  let s3: S3Client;
  let manifest: Manifest;

  beforeAll(async () => {
    [postgres, server] = await Promise.all([startPostgres(), startS3()]);
    s3 = server.client();
    await createVersionedBucket(s3, Bucket);
    await seedPrefect(postgres, { flowRuns: 300 });
    const run = await runRunner('backup-postgres', {
      ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
      ...postgresRunnerEnv(postgres),
    });
    expect(run.code, run.stderr).toBe(0);
    ({ manifest } = await writeManifest(s3, Bucket, { target, backupId, components: ['task-manager-db'] }));
  }, scaled(240_000));

  afterAll(async () => {
    await Promise.allSettled([postgres?.stop(), server?.stop()]);
  });

  const connection = () => ({
    host: '127.0.0.1',
    port: postgres.port,
    user: postgres.user,
    password: postgres.password,
    database: 'prefect',
  });
  const ctx = () => ({ s3, bucket: Bucket, target, backupId, logger });
  afterEach(() => resetStopGuard());

  it(
    'brings back the backup-time rows after data was changed and deleted, with a session still open',
    async () => {
      const before = await countTables(postgres, 'prefect');
      const client = new pg.Client({ connectionString: postgres.url('prefect') });
      await client.connect();
      await client.query('DELETE FROM log');
      await client.query("UPDATE flow_run SET name = 'changed'");
      await client.query('CREATE TABLE stray (id int)');
      const lingering = new pg.Client({ connectionString: postgres.url('prefect') });
      await lingering.connect();
      lingering.on('error', () => undefined); // it is terminated by the restore
      await client.end();

      const result = await restorePostgres(ctx(), connection(), manifest, { binDir: postgres.binDir });
      expect(result).toMatchObject({ component: 'task-manager-db', database: 'prefect', tables: 3 });
      expect(await countTables(postgres, 'prefect')).toEqual(before);
      const check = new pg.Client({ connectionString: postgres.url('prefect') });
      await check.connect();
      const changed = await check.query("SELECT count(*)::int AS n FROM flow_run WHERE name = 'changed'");
      const stray = await check.query("SELECT to_regclass('public.stray') AS t");
      await check.end();
      expect(changed.rows[0].n).toBe(0);
      expect(stray.rows[0].t).toBeNull();
      await lingering.end().catch(() => undefined);
      // A failure reported after this (a stop, a report that cannot be written) says the target changed.
      expect(withTargetState(new Error('writing the report: AccessDenied')).message).toMatch(
        /^writing the report: AccessDenied\. The backup's task-manager database had been put in place of the target's prefect before this \(its row counts compared with those at backup time\): prefect holds the backup's data; the database it replaced \(prefect_replaced_\w+\) was dropped\.$/,
      );
    },
    scaled(120_000),
  );

  it(
    'fails validation, naming each table, when the restored counts differ from the backup',
    async () => {
      const wrong: Manifest = {
        ...manifest,
        counts: {
          ...manifest.counts,
          postgres: {
            database: 'prefect',
            tables: { ...manifest.counts?.postgres?.tables, 'public.log': 1 },
          },
        },
      };
      await expect(
        restorePostgres(ctx(), connection(), wrong, { binDir: postgres.binDir }),
      ).rejects.toMatchObject({
        name: 'RestoreValidation',
        message: expect.stringMatching(/public\.log: 1 at backup, 1500 after restore/),
      });
      // Refused before the swap: the target was not changed, and nothing says it was.
      expect(targetStateNote()).toBeUndefined();
    },
    scaled(120_000),
  );

  // A fresh user's finding: a stop during the swap's transaction waits for its COMMIT, then skips the
  // drop of the replaced database; the sentence said "dropped unless a warning says otherwise".
  it(
    'a stop during the swap: the backup serves, and the sentence names the replaced database still on the server',
    async () => {
      const lingering = new pg.Client({ connectionString: postgres.url('prefect') });
      await lingering.connect();
      lingering.on('error', () => undefined); // terminated by the swap
      const stop = Object.assign(new Error('the runner received SIGTERM'), { name: 'Interrupted' });
      // The swap logs the sessions it closed inside its transaction: the stop arrives right then.
      const stopMidSwap = createLogger(
        {},
        {
          write: (line) => (line.includes('closed sessions still connected') ? requestStop(stop) : undefined),
        },
      );
      const outcome = await restorePostgres({ ...ctx(), logger: stopMidSwap }, connection(), manifest, {
        binDir: postgres.binDir,
      }).catch((e: unknown) => e);
      await lingering.end().catch(() => undefined);
      expect(outcome).toBe(stop);
      const note = targetStateNote() ?? '';
      const aside = note.match(
        /still on the server as (prefect_replaced_\w+) \(the next restore of prefect drops it\)\.$/,
      )?.[1];
      expect(aside, note).toBeDefined();
      const admin = new pg.Client({ connectionString: postgres.url('postgres') });
      await admin.connect();
      const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database');
      expect(rows.map((r) => r.datname)).toContain(aside);
      await admin.query(`DROP DATABASE "${aside}"`);
      await admin.end();
      expect(await countTables(postgres, 'prefect')).toEqual(manifest.counts?.postgres?.tables);
    },
    scaled(120_000),
  );

  // Review of issue 19: the swap (one transaction) is an uninterruptible section; a stop asked for
  // before it must leave the target's database as it was and drop the restored copy.
  it(
    'a stop asked for before the swap: nothing replaced, the restored copy dropped, the target as it was',
    async () => {
      const client = new pg.Client({ connectionString: postgres.url('prefect') });
      await client.connect();
      await client.query('CREATE TABLE after_backup (id int)');
      await client.end();
      const before = await countTables(postgres, 'prefect');
      const stop = Object.assign(new Error('the runner received SIGTERM'), { name: 'Interrupted' });
      requestStop(stop);
      await expect(restorePostgres(ctx(), connection(), manifest, { binDir: postgres.binDir })).rejects.toBe(
        stop,
      );
      expect(targetStateNote()).toBeUndefined();
      expect(await countTables(postgres, 'prefect')).toEqual(before);
      const admin = new pg.Client({ connectionString: postgres.url('postgres') });
      await admin.connect();
      const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY 1');
      await admin.end();
      expect(rows.map((r) => r.datname).filter((n) => n.startsWith('prefect'))).toEqual(['prefect']);
    },
    scaled(120_000),
  );
});
