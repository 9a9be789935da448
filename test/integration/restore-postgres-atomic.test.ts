import { readdirSync, readFileSync } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { localRunnerEnv, postgresRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import {
  restoreDatabaseNames,
  restoreMarker,
  restorePostgres,
} from '../../containers/runner/src/components/restore-postgres.js';
import {
  requestStop,
  resetStopGuard,
  targetStateNote,
  withTargetState,
} from '../../containers/runner/src/stop-guard.js';
import { PREFECT_DUMP } from '../../core/backup/layout.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { writeManifest } from '../../core/backup/seal.js';
import { createLogger } from '../../core/log.js';
import {
  countTables,
  createVersionedBucket,
  type FaultProxy,
  type PostgresServer,
  type S3Server,
  seedPrefect,
  startFaultProxy,
  startPostgres,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

const Bucket = 'backups-restore-pg-atomic';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_030000';
const logger = createLogger({}, { write: () => undefined });

/** The pg_restore this process started, found among its own children (never by name across the machine). */
function childPgRestore(): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (
        ppid === process.pid &&
        cmdline.includes('pg_restore') &&
        cmdline.includes("--dbname=dbname='prefect_restore_")
      )
        return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// An uncompressed dump (PG_DUMP_COMPRESS=0) large enough to be a multipart object (5 MiB parts),
// restored through a loopback proxy that can damage what S3 answers. A restore reports success
// only when every byte it restored matched the manifest's SHA-256, and a failed or interrupted
// restore leaves the database as it was before the restore, serving.
describe('restore: PostgreSQL, atomic and verified (real pg_restore, real S3 server, fault proxy)', () => {
  let postgres: PostgresServer;
  let server: S3Server;
  let proxy: FaultProxy;
  let s3: S3Client;
  let manifest: Manifest;
  let atBackup: Record<string, number>;

  beforeAll(async () => {
    [postgres, server] = await Promise.all([startPostgres(), startS3()]);
    proxy = await startFaultProxy(server.endpoint);
    await createVersionedBucket(server.client(), Bucket);
    await seedPrefect(postgres, { flowRuns: 300 });
    const seed = new pg.Client({ connectionString: postgres.url('prefect') });
    await seed.connect();
    // ~16 MiB of text, restored last (pg_dump orders table data by name).
    await seed.query(
      'CREATE TABLE zz_payload (id int PRIMARY KEY, body text NOT NULL); INSERT INTO zz_payload SELECT g, repeat(md5(g::text), 16) FROM generate_series(1, 30000) g',
    );
    await seed.end();
    atBackup = await countTables(postgres, 'prefect');
    const run = await runRunner('backup-postgres', {
      ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
      ...postgresRunnerEnv(postgres),
      PG_DUMP_COMPRESS: '0',
      S3_PART_SIZE_MIB: '5',
    });
    expect(run.code, run.stderr).toBe(0);
    ({ manifest } = await writeManifest(server.client(), Bucket, {
      target,
      backupId,
      components: ['task-manager-db'],
    }));
    // A multipart object: S3's checksum is composite (base64-N), which the SDK does not check on a
    // GET; only the manifest's SHA-256 of the whole object can catch a damaged body.
    expect(manifest.s3?.[PREFECT_DUMP]?.checksum_sha256).toMatch(/-[2-9]\d*$/);
    expect(manifest.sizes?.[PREFECT_DUMP]).toBeGreaterThan(10 * 1024 * 1024);
    s3 = new S3Client({
      endpoint: proxy.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: server.credentials,
      maxAttempts: 1,
    });
  }, scaled(300_000));

  afterAll(async () => {
    s3?.destroy();
    await proxy?.stop();
    await Promise.allSettled([postgres?.stop(), server?.stop()]);
  });

  const connection = (user = postgres.user, password = postgres.password) => ({
    host: '127.0.0.1',
    port: postgres.port,
    user,
    password,
    database: 'prefect',
  });
  const ctx = (restoreId: string) => ({ s3, bucket: Bucket, target, backupId, restoreId, logger });
  const query = async <T extends pg.QueryResultRow>(database: string, sql: string) => {
    const c = new pg.Client({ connectionString: postgres.url(database) });
    await c.connect();
    try {
      return (await c.query<T>(sql)).rows;
    } finally {
      await c.end();
    }
  };
  /** Changes made after the backup: a restore that did not complete must leave them in place. */
  const markCurrent = async (marker: string) => {
    await query('prefect', `UPDATE flow_run SET name = '${marker}'`);
  };
  const currentMarker = async () =>
    (await query<{ name: string }>('prefect', 'SELECT DISTINCT name FROM flow_run')).map((r) => r.name);
  const databases = async () =>
    (await query<{ datname: string }>('postgres', 'SELECT datname FROM pg_database ORDER BY 1')).map(
      (r) => r.datname,
    );

  it(
    'fails with RestoreValidation, naming both digests, when one bit of the GetObject body flips; the current database keeps serving',
    async () => {
      await markCurrent('before-flip');
      proxy.clear();
      const rule = proxy.add({
        match: { method: 'GET', path: /prefect\.dump$/ },
        fault: { kind: 'flip-bit' },
        times: 1,
      });
      await expect(
        restorePostgres(ctx('restore_20261122_010000_flip'), connection(), manifest, {
          binDir: postgres.binDir,
        }),
      ).rejects.toMatchObject({
        name: 'RestoreValidation',
        message: expect.stringMatching(
          new RegExp(
            `does not match its manifest: \\d+ bytes hashing to sha256 [0-9a-f]{64}, the manifest records .*sha256 ${manifest.checksums[PREFECT_DUMP]}`,
          ),
        ),
      });
      expect(rule.hits).toBe(1);
      expect(await currentMarker()).toEqual(['before-flip']);
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
    },
    scaled(180_000),
  );

  it(
    'swaps a verified restore into place, reporting the verified bytes and digest, and drops the replaced database',
    async () => {
      proxy.clear();
      await markCurrent('before-restore');
      await query('prefect', 'CREATE TABLE stray (id int)');
      const lingering = new pg.Client({ connectionString: postgres.url('prefect') });
      await lingering.connect();
      lingering.on('error', () => undefined); // terminated by the swap
      const result = await restorePostgres(ctx('restore_20261122_020000_good'), connection(), manifest, {
        binDir: postgres.binDir,
      });
      expect(result).toMatchObject({
        database: 'prefect',
        verifiedBytes: manifest.sizes?.[PREFECT_DUMP],
        sha256: manifest.checksums[PREFECT_DUMP],
        countsCompared: true,
        replaced: true,
        validation: expect.stringMatching(/^counts equal those at backup time \(4 tables, \d+ rows\)$/),
        created: { encoding: 'UTF8', localeFrom: 'dump', collate: 'C' },
      });
      expect(await countTables(postgres, 'prefect')).toEqual(atBackup);
      expect(await currentMarker()).not.toContain('before-restore');
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
      await lingering.end().catch(() => undefined);
    },
    scaled(180_000),
  );

  // Review: once the swap committed, a stop (or a report that could not be written) was reported
  // bare, "nothing kept", though the target's database now held the backup's data; and a stop
  // asked for before the swap did not keep it from swapping.
  describe('and a stop (stop-guard.ts)', () => {
    // The earlier tests' restores noted the target's state in this process (the runner starts each
    // step in a process of its own, noting nothing yet).
    beforeEach(() => resetStopGuard());
    afterEach(() => resetStopGuard());

    it(
      'a stop asked for before the swap: nothing is swapped, the current database keeps serving',
      async () => {
        proxy.clear();
        await markCurrent('before-stop');
        const stop = Object.assign(new Error('the runner received SIGTERM'), { name: 'Interrupted' });
        requestStop(stop);
        const outcome = await restorePostgres(ctx('restore_20261122_020500_stop'), connection(), manifest, {
          binDir: postgres.binDir,
        }).catch((e: unknown) => e);
        expect(outcome).toBe(stop);
        expect(await currentMarker()).toEqual(['before-stop']);
        expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
        expect(targetStateNote()).toBeUndefined();
      },
      scaled(180_000),
    );

    it(
      'once swapped, a failure reported after it says the target holds the backup',
      async () => {
        proxy.clear();
        await restorePostgres(ctx('restore_20261122_020600_note'), connection(), manifest, {
          binDir: postgres.binDir,
        });
        expect(withTargetState(new Error('writing the report: AccessDenied')).message).toMatch(
          /^writing the report: AccessDenied\. The backup's task-manager database had been put in place of the target's prefect before this .*: prefect holds the backup's data/,
        );
      },
      scaled(180_000),
    );
  });

  /** Once the new database and its last table exist, holds that table so pg_restore waits mid-restore. */
  const holdLastTable = async (fresh: string): Promise<pg.Client | undefined> => {
    for (let i = 0; i < 1200; i++) {
      const created = await query<{ n: number }>(
        'postgres',
        `SELECT count(*)::int AS n FROM pg_database WHERE datname = '${fresh}'`,
      );
      if (created[0]?.n) {
        const c = new pg.Client({ connectionString: postgres.url(fresh) });
        c.on('error', () => undefined);
        await c.connect().catch(() => undefined);
        const table = await c.query("SELECT to_regclass('public.zz_payload') AS t").catch(() => undefined);
        if (table?.rows[0]?.t) {
          await c.query('BEGIN');
          await c.query('LOCK TABLE zz_payload IN ACCESS EXCLUSIVE MODE').catch(() => undefined);
          return c;
        }
        await c.end().catch(() => undefined);
      }
      await sleep(25);
    }
    return undefined;
  };

  it(
    'leaves the current database serving when pg_restore is killed mid-restore, and drops the new one',
    async () => {
      proxy.clear();
      await markCurrent('before-kill');
      const restoreId = 'restore_20261122_030000_kill';
      const { fresh } = restoreDatabaseNames('prefect', restoreId);
      const restoring = restorePostgres(ctx(restoreId), connection(), manifest, { binDir: postgres.binDir });
      restoring.catch(() => undefined);
      // Hold the last table pg_restore fills, so the kill lands in the middle of the restore.
      const holder = await holdLastTable(fresh);
      expect(holder, 'the new database and its tables appeared').toBeDefined();
      const pid = childPgRestore();
      expect(pid, 'pg_restore is running').toBeDefined();
      process.kill(pid as number, 'SIGKILL');
      await expect(restoring).rejects.toMatchObject({
        name: 'ToolFailed',
        message: expect.stringMatching(/pg_restore was killed by SIGKILL/),
      });
      await holder?.end().catch(() => undefined);
      expect(await currentMarker()).toEqual(['before-kill']);
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
    },
    scaled(180_000),
  );

  it(
    'leaves the current database serving when S3 drops every GetObject connection',
    async () => {
      proxy.clear();
      await markCurrent('before-reset');
      proxy.add({ match: { method: 'GET', path: /prefect\.dump$/ }, fault: { kind: 'reset' } });
      await expect(
        restorePostgres(ctx('restore_20261122_040000_reset'), connection(), manifest, {
          binDir: postgres.binDir,
        }),
      ).rejects.toMatchObject({ name: 'StorageError' });
      proxy.clear();
      expect(await currentMarker()).toEqual(['before-reset']);
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
    },
    scaled(180_000),
  );

  it(
    'leaves the current database serving when the S3 connection drops in the middle of the body',
    async () => {
      // A dump far larger than what the loopback sockets buffer (tcp_rmem allows 32 MiB here), so the
      // cut lands with tens of MiB still to come: a database of its own, backed up by the runner.
      await query('postgres', 'CREATE DATABASE bulk');
      // The first table's CHECK sleeps 20 s on its one row, in a restored copy only (the database's
      // name), so pg_restore pauses early in the data with tens of MiB of the dump still to come.
      await query(
        'bulk',
        `CREATE FUNCTION gate(id int) RETURNS boolean LANGUAGE sql AS $$
         SELECT CASE WHEN current_database() LIKE 'bulk_restore_%' THEN pg_sleep(20) IS NOT NULL ELSE true END $$;
       CREATE TABLE aa_gate (id int CHECK (public.gate(id))); INSERT INTO aa_gate VALUES (1);
       CREATE TABLE marker (state text); INSERT INTO marker VALUES ('at-backup');
       CREATE TABLE zz_payload (id int, body text);
       INSERT INTO zz_payload SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 120000) g`,
      );
      const bulkId = 'infrahub_backup_20261121_040000';
      const run = await runRunner('backup-postgres', {
        ...localRunnerEnv(server, { target, backupId: bulkId, bucket: Bucket }),
        ...postgresRunnerEnv(postgres, 'bulk'),
        PG_DUMP_COMPRESS: '0',
      });
      expect(run.code, run.stderr).toBe(0);
      const { manifest: bulk } = await writeManifest(server.client(), Bucket, {
        target,
        backupId: bulkId,
        components: ['task-manager-db'],
      });
      expect(bulk.sizes?.[PREFECT_DUMP]).toBeGreaterThan(64 * 1024 * 1024);
      await query('bulk', "UPDATE marker SET state = 'before-drop'");

      // A proxy of its own, stopped (its connections destroyed) while pg_restore pauses (so the
      // stream is paused too), cutting the GetObject body in the middle.
      const cut = await startFaultProxy(server.endpoint);
      const viaCut = new S3Client({
        endpoint: cut.endpoint,
        region: server.region,
        forcePathStyle: true,
        credentials: server.credentials,
        maxAttempts: 1,
      });
      try {
        const restoreId = 'restore_20261122_045000_drop';
        const { fresh } = restoreDatabaseNames('bulk', restoreId);
        const restoring = restorePostgres(
          { ...ctx(restoreId), backupId: bulkId, s3: viaCut },
          { ...connection(), database: 'bulk' }, // the configured database (PGDATABASE) is the target
          bulk,
          { binDir: postgres.binDir },
        );
        restoring.catch(() => undefined);
        let paused = false;
        for (let i = 0; i < 2400 && !paused; i++) {
          const waiting = await query<{ n: number }>(
            'postgres',
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = '${fresh}' AND wait_event = 'PgSleep'`,
          );
          paused = Boolean(waiting[0]?.n);
          if (!paused) await sleep(25);
        }
        expect(paused, 'pg_restore paused in the first table').toBe(true);
        // pg_restore goes on after its pause, reads what had arrived, and then the body ends.
        await cut.stop();
        await expect(restoring).rejects.toMatchObject({
          name: 'StorageError',
          message: expect.stringMatching(/reading s3:\/\/backups-restore-pg-atomic\/.*prefect\.dump failed/),
        });
      } finally {
        viaCut.destroy();
        await cut.stop().catch(() => undefined);
      }
      expect(await query('bulk', 'SELECT state FROM marker')).toEqual([{ state: 'before-drop' }]);
      expect(await databases()).toEqual(['bulk', 'postgres', 'prefect', 'template0', 'template1']);
      await query('postgres', 'DROP DATABASE bulk');
    },
    scaled(300_000),
  );

  it(
    'puts the old name back when the swap fails midway (a session holds the new database), and drops the new one',
    async () => {
      proxy.clear();
      await markCurrent('before-swap');
      const restoreId = 'restore_20261122_050000_swap';
      const { fresh } = restoreDatabaseNames('prefect', restoreId);
      const restoring = restorePostgres(ctx(restoreId), connection(), manifest, { binDir: postgres.binDir });
      restoring.catch(() => undefined);
      // A session on the new database makes its rename (the swap's second step) fail after the
      // current database was already renamed aside in the same transaction.
      let squatter: pg.Client | undefined;
      for (let i = 0; i < 1200 && !squatter; i++) {
        const c = new pg.Client({ connectionString: postgres.url(fresh) });
        c.on('error', () => undefined);
        if (
          await c.connect().then(
            () => true,
            () => false,
          )
        )
          squatter = c;
        else await sleep(25);
      }
      expect(squatter, 'connected to the new database').toBeDefined();
      await expect(restoring).rejects.toMatchObject({
        name: 'RestoreValidation',
        message: expect.stringMatching(
          /could not swap the restored database into place as prefect .*being accessed by other users/,
        ),
      });
      await squatter?.end().catch(() => undefined);
      expect(await currentMarker()).toEqual(['before-swap']);
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
    },
    scaled(240_000),
  );

  it(
    'drops the leftovers of an interrupted restore (a new database never swapped in, marked as ours) before restoring',
    async () => {
      proxy.clear();
      // The same restore run again (an ECS retry keeps RESTORE_ID) and an earlier one: both marked.
      const restoreId = 'restore_20261122_060000_left';
      for (const id of [restoreId, 'restore_20261121_060000_earlier']) {
        const { fresh } = restoreDatabaseNames('prefect', id);
        await query('postgres', `CREATE DATABASE "${fresh}"`);
        await query(
          'postgres',
          `COMMENT ON DATABASE "${fresh}" IS '${restoreMarker({ database: 'prefect', restoreId: id, role: 'fresh' })}'`,
        );
      }
      await restorePostgres(ctx(restoreId), connection(), manifest, { binDir: postgres.binDir });
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
      expect(await countTables(postgres, 'prefect')).toEqual(atBackup);
    },
    scaled(180_000),
  );
});

describe('restore database names', () => {
  it('stay within 63 bytes for long and multi-byte names, derived from the name and the restore id', () => {
    const long = 'ü'.repeat(40);
    const names = restoreDatabaseNames(long, 'restore_20261122_010000_abc');
    expect(Buffer.byteLength(names.fresh)).toBeLessThanOrEqual(63);
    expect(Buffer.byteLength(names.aside)).toBeLessThanOrEqual(63);
    expect(names.fresh.startsWith('ü'.repeat(22))).toBe(true);
    expect(names.pattern.test(names.fresh) && names.pattern.test(names.aside)).toBe(true);
    expect(restoreDatabaseNames('prefect', 'a').fresh).not.toBe(restoreDatabaseNames('prefect', 'b').fresh);
    expect(restoreDatabaseNames('prefect', 'a').fresh).toMatch(/^prefect_restore_[0-9a-f]{8}$/);
  });
});
