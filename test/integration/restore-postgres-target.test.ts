import { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, postgresRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import {
  restoreDatabaseNames,
  restoreLockKey,
  restoreMarker,
  restorePostgres,
} from '../../containers/runner/src/components/restore-postgres.js';
import { PREFECT_DUMP } from '../../core/backup/layout.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { writeManifest } from '../../core/backup/seal.js';
import { createLogger } from '../../core/log.js';
import {
  createVersionedBucket,
  type FaultProxy,
  type PostgresServer,
  type S3Server,
  startFaultProxy,
  startPostgres,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { holdTool } from '../helpers/held-tool.js';

const Bucket = 'backups-restore-pg-target';
const target = 'infrahub-lab';
const logger = createLogger({}, { write: () => undefined });

// The target database as a deployment has it: owned by the application's role (not the superuser
// the restore connects as, like an RDS master user), with database-level settings, ACL, comment,
// connection limit and per-role settings. A restore brings back the data and keeps all of those, so
// the application can work on as before.
describe('restore: PostgreSQL keeps the target database (owner, ACL, settings) and touches only its own', () => {
  let postgres: PostgresServer;
  let server: S3Server;
  let proxy: FaultProxy;
  let s3: S3Client;
  const manifests: Record<string, Manifest> = {};

  const as = (user: string, password: string, database: string) => ({
    host: '127.0.0.1',
    port: postgres.port,
    user,
    password,
    database,
  });
  const su = (database: string) => as(postgres.user, postgres.password, database);
  const query = async <T extends pg.QueryResultRow>(
    config: pg.ClientConfig,
    sql: string,
    values: unknown[] = [],
  ): Promise<T[]> => {
    const c = new pg.Client(config);
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query<T>(sql, values)).rows;
    } finally {
      await c.end();
    }
  };
  const databases = async () =>
    (await query<{ datname: string }>(su('postgres'), 'SELECT datname FROM pg_database ORDER BY 1')).map(
      (r) => r.datname,
    );
  const backup = async (backupId: string, database = 'prefect', env: Record<string, string> = {}) => {
    const run = await runRunner('backup-postgres', {
      ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
      ...postgresRunnerEnv(postgres, database),
      ...env,
    });
    expect(run.code, run.stderr).toBe(0);
    manifests[backupId] = (
      await writeManifest(server.client(), Bucket, { target, backupId, components: ['task-manager-db'] })
    ).manifest;
    return manifests[backupId] as Manifest;
  };
  const ctx = (backupId: string, restoreId: string, client = s3) => ({
    s3: client,
    bucket: Bucket,
    target,
    backupId,
    restoreId,
    logger,
  });
  /** Everything database-level a restore must keep, read from the catalogs. */
  const databaseState = async (database: string) =>
    (
      await query(
        su('postgres'),
        `SELECT pg_get_userbyid(d.datdba) AS owner, d.datacl::text AS acl, d.datconnlimit AS connlimit,
                shobj_description(d.oid, 'pg_database') AS comment,
                (SELECT array_agg(coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '-') || ':' || array_to_string(s.setconfig, ';') ORDER BY 1)
                   FROM pg_db_role_setting s WHERE s.setdatabase = d.oid) AS settings
           FROM pg_database d WHERE d.datname = $1`,
        [database],
      )
    )[0];
  const objectOwners = async (database: string) =>
    await query(
      su(database),
      `SELECT 'table' AS kind, tableowner AS owner FROM pg_tables WHERE schemaname = 'public'
       UNION SELECT 'sequence', sequenceowner FROM pg_sequences WHERE schemaname = 'public'
       UNION SELECT 'large object', pg_get_userbyid(lomowner) FROM pg_largeobject_metadata
       ORDER BY 1, 2`,
    );

  beforeAll(async () => {
    [postgres, server] = await Promise.all([startPostgres(), startS3()]);
    proxy = await startFaultProxy(server.endpoint);
    await createVersionedBucket(server.client(), Bucket);
    s3 = new S3Client({
      endpoint: server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: server.credentials,
    });
    await query(su('postgres'), "CREATE ROLE app LOGIN PASSWORD 'apppw'");
    await query(su('postgres'), 'CREATE DATABASE prefect OWNER app');
    const app = new pg.Client(as('app', 'apppw', 'prefect'));
    await app.connect();
    await app.query(
      `CREATE TABLE flow_run (id serial PRIMARY KEY, name text NOT NULL);
       INSERT INTO flow_run (name) SELECT 'run ' || g FROM generate_series(1, 250) g;
       SELECT setval('flow_run_id_seq', 1000);
       SELECT lo_from_bytea(0, 'a large object'::bytea);`,
    );
    await app.end();
    await query(
      su('postgres'),
      `ALTER DATABASE prefect SET statement_timeout = '123s';
       ALTER DATABASE prefect SET search_path = "$user", public, "odd, schema";
       ALTER DATABASE prefect CONNECTION LIMIT 40;
       REVOKE CONNECT, TEMPORARY ON DATABASE prefect FROM PUBLIC;
       GRANT CONNECT ON DATABASE prefect TO app;
       COMMENT ON DATABASE prefect IS 'Prefect''s task database';
       ALTER ROLE app IN DATABASE prefect SET work_mem = '7MB';`,
    );
    await backup('infrahub_backup_20261120_010000');
  }, scaled(300_000));

  afterAll(async () => {
    s3?.destroy();
    await proxy?.stop();
    await Promise.allSettled([postgres?.stop(), server?.stop()]);
  });

  it(
    "keeps the target's owner, ACL, settings, per-role settings, comment and connection limit, and the objects' owners (restored as a superuser)",
    async () => {
      const before = await databaseState('prefect');
      expect(before).toMatchObject({ owner: 'app', comment: "Prefect's task database", connlimit: 40 });
      await query(as('app', 'apppw', 'prefect'), "UPDATE flow_run SET name = 'changed'");
      const result = await restorePostgres(
        ctx('infrahub_backup_20261120_010000', 'restore_20261121_010000_keep'),
        su('prefect'),
        manifests.infrahub_backup_20261120_010000 as Manifest,
        { binDir: postgres.binDir },
      );
      expect(result).toMatchObject({
        database: 'prefect',
        dumpDatabase: 'prefect',
        replaced: true,
        ownership: { databaseOwner: 'app', objects: 'dump', missingOwners: [] },
        access: expect.stringContaining('owner app can read every restored table'),
      });
      expect(await databaseState('prefect')).toEqual(before);
      expect(await objectOwners('prefect')).toEqual([
        { kind: 'large object', owner: 'app' },
        { kind: 'sequence', owner: 'app' },
        { kind: 'table', owner: 'app' },
      ]);
      // The application works on: reads, writes, creates in public, its settings apply.
      const app = new pg.Client(as('app', 'apppw', 'prefect'));
      await app.connect();
      try {
        expect((await app.query('SELECT count(*)::int AS n FROM flow_run')).rows).toEqual([{ n: 250 }]);
        expect((await app.query("SELECT DISTINCT name FROM flow_run WHERE name = 'changed'")).rows).toEqual(
          [],
        );
        await app.query('CREATE TABLE after_restore (id int)');
        expect((await app.query("SELECT nextval('flow_run_id_seq')::int AS v")).rows).toEqual([{ v: 1001 }]);
        expect((await app.query('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '123s' }]);
        expect((await app.query('SHOW work_mem')).rows).toEqual([{ work_mem: '7MB' }]);
        expect((await app.query('SHOW search_path')).rows).toEqual([
          { search_path: '"$user", public, "odd, schema"' },
        ]);
        await app.query('DROP TABLE after_restore');
      } finally {
        await app.end();
      }
      // PUBLIC still may not connect.
      await query(su('postgres'), "CREATE ROLE outsider LOGIN PASSWORD 'outpw'");
      await expect(query(as('outsider', 'outpw', 'prefect'), 'SELECT 1')).rejects.toThrow(
        /permission denied for database/,
      );
    },
    scaled(240_000),
  );

  it(
    "restores every object as the database's owner when a dump owner is missing on the target, and says so",
    async () => {
      await query(su('postgres'), 'CREATE ROLE ghost');
      await query(su('prefect'), 'CREATE TABLE ghost_table (id int); ALTER TABLE ghost_table OWNER TO ghost');
      const manifest = await backup('infrahub_backup_20261120_020000');
      await query(su('prefect'), 'DROP TABLE ghost_table');
      await query(su('postgres'), 'ALTER ROLE ghost RENAME TO ghost_elsewhere'); // the target lacks "ghost"
      const result = await restorePostgres(
        ctx('infrahub_backup_20261120_020000', 'restore_20261121_020000_ghost'),
        su('prefect'),
        manifest,
        { binDir: postgres.binDir },
      );
      expect(result.ownership).toMatchObject({
        databaseOwner: 'app',
        objects: 'database-owner',
        missingOwners: ['ghost'],
      });
      expect(result.ownership.note).toMatch(/lacks .*ghost.*every object restored as app/);
      expect(await objectOwners('prefect')).toEqual([
        { kind: 'large object', owner: 'app' },
        { kind: 'sequence', owner: 'app' },
        { kind: 'table', owner: 'app' },
      ]);
      expect(
        await query(as('app', 'apppw', 'prefect'), 'SELECT count(*)::int AS n FROM ghost_table'),
      ).toEqual([{ n: 0 }]);
      await query(su('prefect'), 'DROP TABLE ghost_table');
      await query(su('postgres'), 'ALTER ROLE ghost_elsewhere RENAME TO ghost');
    },
    scaled(240_000),
  );

  it(
    "fails validation, leaving the current database serving, when the restored tables' owner is not the database's and grants the owner nothing",
    async () => {
      await query(su('postgres'), 'CREATE ROLE other');
      await query(
        su('prefect'),
        'CREATE TABLE other_secret (id int); INSERT INTO other_secret VALUES (1); ALTER TABLE other_secret OWNER TO other',
      );
      const manifest = await backup('infrahub_backup_20261120_030000');
      await query(su('prefect'), 'DROP TABLE other_secret');
      await expect(
        restorePostgres(
          ctx('infrahub_backup_20261120_030000', 'restore_20261121_030000_locked'),
          su('prefect'),
          manifest,
          { binDir: postgres.binDir },
        ),
      ).rejects.toMatchObject({
        name: 'RestoreValidation',
        message: expect.stringMatching(/would lock its owner app out: .*public\.other_secret/),
      });
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
      expect(
        await query(
          su('prefect'),
          "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'other_secret'",
        ),
      ).toEqual([{ n: 0 }]);
    },
    scaled(240_000),
  );

  it(
    "restores into the configured database (not the dump's), reports the dump's name, and a new database gets the dump's owner when it exists",
    async () => {
      await query(as('app', 'apppw', 'prefect'), "UPDATE flow_run SET name = 'live'");
      const manifest = manifests.infrahub_backup_20261120_010000 as Manifest;
      const result = await restorePostgres(
        ctx('infrahub_backup_20261120_010000', 'restore_20261121_040000_cfg'),
        su('prefect_configured'),
        manifest,
        { binDir: postgres.binDir },
      );
      expect(result).toMatchObject({
        database: 'prefect_configured',
        dumpDatabase: 'prefect',
        databaseNote: expect.stringMatching(
          /taken of database prefect; restored into the configured database prefect_configured/,
        ),
        replaced: false,
        ownership: { databaseOwner: 'app', objects: 'dump' },
      });
      expect(result.ownership.note).toMatch(
        /no database prefect_configured on the target: owned by the dump's owner app/,
      );
      expect(await databaseState('prefect_configured')).toMatchObject({ owner: 'app', comment: null });
      expect(await query(su('prefect_configured'), 'SELECT count(*)::int AS n FROM flow_run')).toEqual([
        { n: 250 },
      ]);
      // The dump's own database was not touched.
      expect(await query(su('prefect'), 'SELECT DISTINCT name FROM flow_run')).toEqual([{ name: 'live' }]);
      await query(su('postgres'), 'DROP DATABASE prefect_configured');
    },
    scaled(240_000),
  );

  it(
    "drops only leftovers marked as this database's, never a database that merely looks like one",
    async () => {
      const manifest = manifests.infrahub_backup_20261120_010000 as Manifest;
      const long = `${'p'.repeat(45)}_a`;
      const longOther = `${'p'.repeat(45)}_b`;
      const theirs = restoreDatabaseNames(longOther, 'restore_20261120_000000_theirs').fresh;
      const ours = restoreDatabaseNames('prefect', 'restore_20261120_000000_ours').fresh;
      // Names the old pattern matched: a dated database of someone else's, a hex-named one, another
      // target's leftover (its name cut to 45 bytes looks like ours), and an unmarked old leftover.
      const bystanders = ['prefect_restore_20261130', 'prefect_replaced_deadbeef', theirs];
      for (const name of [...bystanders, ours]) await query(su('postgres'), `CREATE DATABASE "${name}"`);
      await query(
        su('postgres'),
        `COMMENT ON DATABASE "${theirs}" IS '${restoreMarker({ database: longOther, restoreId: 'restore_20261120_000000_theirs', role: 'fresh' })}'`,
      );
      await query(
        su('postgres'),
        `COMMENT ON DATABASE "${ours}" IS '${restoreMarker({ database: 'prefect', restoreId: 'restore_20261120_000000_ours', role: 'fresh' })}'`,
      );
      await query(
        su('prefect_restore_20261130'),
        'CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (7)',
      );
      expect(restoreDatabaseNames(long, 'x').pattern.test(theirs)).toBe(true); // the overlap the old rule had
      await restorePostgres(
        ctx('infrahub_backup_20261120_010000', 'restore_20261121_050000_left'),
        su('prefect'),
        manifest,
        { binDir: postgres.binDir },
      );
      const after = await databases();
      for (const name of bystanders) expect(after).toContain(name);
      expect(after).not.toContain(ours);
      expect(await query(su('prefect_restore_20261130'), 'SELECT id FROM keep_me')).toEqual([{ id: 7 }]);
      for (const name of bystanders) await query(su('postgres'), `DROP DATABASE "${name}"`);
    },
    scaled(240_000),
  );

  it(
    'refuses a second restore of the same database at once while one runs (RestoreInProgress), and the first succeeds',
    async () => {
      const manifest = manifests.infrahub_backup_20261120_010000 as Manifest;
      // A restore holding the lock (a session of another runner): refused before anything is created.
      const holder = new pg.Client(su('postgres'));
      await holder.connect();
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [restoreLockKey('prefect')]);
      await expect(
        restorePostgres(
          ctx('infrahub_backup_20261120_010000', 'restore_20261121_060000_second'),
          su('prefect'),
          manifest,
          {
            binDir: postgres.binDir,
          },
        ),
      ).rejects.toMatchObject({
        name: 'RestoreInProgress',
        message: expect.stringContaining('another restore of database prefect is running on this server'),
      });
      await holder.end();
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);

      // Two real restores: the second starts while the first restores into its new database. The
      // first's pg_restore (the one that restores: --exit-on-error) is held until the second has
      // been refused: before, a first restore of 0.2 s could end before the second began (a full
      // run saw the second succeed).
      const held = holdTool(postgres.binDir, 'pg_restore', '--exit-on-error');
      let first: Promise<unknown> | undefined;
      try {
        first = restorePostgres(
          ctx('infrahub_backup_20261120_010000', 'restore_20261121_060000_one'),
          su('prefect'),
          manifest,
          { binDir: held.dir },
        );
        first.catch(() => undefined);
        const { fresh } = restoreDatabaseNames('prefect', 'restore_20261121_060000_one');
        expect(await held.untilHolding(first, scaled(60_000)), "the first restore's pg_restore began").toBe(
          true,
        );
        expect(await databases()).toContain(fresh);
        await expect(
          restorePostgres(
            ctx('infrahub_backup_20261120_010000', 'restore_20261121_060000_two'),
            su('prefect'),
            manifest,
            { binDir: held.dir },
          ),
        ).rejects.toMatchObject({ name: 'RestoreInProgress' });
        expect(held.stillHeld(), "the first restore's pg_restore still held").toBe(true);
        held.release();
        await expect(first).resolves.toMatchObject({ database: 'prefect', replaced: true });
      } finally {
        held.release();
        await first?.catch(() => undefined);
        held.remove();
      }
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
    },
    scaled(240_000),
  );

  it(
    'backs up and restores databases whose names hold =, quotes, spaces or a leading dash',
    async () => {
      for (const [i, name] of ["we=ird 'name\\x", '-dash', 'host=elsewhere port=1'].entries()) {
        await query(su('postgres'), `CREATE DATABASE ${pg.escapeIdentifier(name)} OWNER app`);
        await query(
          as('app', 'apppw', name),
          `CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, ${10 + i})`,
        );
        const backupId = `infrahub_backup_20261120_04000${i}`;
        const manifest = await backup(backupId, name);
        await query(as('app', 'apppw', name), 'DELETE FROM t');
        const result = await restorePostgres(
          ctx(backupId, `restore_20261121_07000${i}_odd`),
          su(name),
          manifest,
          {
            binDir: postgres.binDir,
          },
        );
        expect(result).toMatchObject({ database: name, dumpDatabase: name, rows: 10 + i, replaced: true });
        expect(await query(as('app', 'apppw', name), 'SELECT count(*)::int AS n FROM t')).toEqual([
          { n: 10 + i },
        ]);
        await query(su('postgres'), `DROP DATABASE ${pg.escapeIdentifier(name)}`);
      }
    },
    scaled(300_000),
  );

  it(
    'refuses up front, restoring nothing, when a non-superuser cannot close a superuser session on the database; restores as an RDS-like master user otherwise',
    async () => {
      await query(
        su('postgres'),
        "CREATE ROLE master LOGIN PASSWORD 'masterpw' CREATEDB CREATEROLE; GRANT app TO master",
      );
      const manifest = manifests.infrahub_backup_20261120_010000 as Manifest;
      const superSession = new pg.Client(su('prefect'));
      superSession.on('error', () => undefined);
      await superSession.connect();
      await query(as('app', 'apppw', 'prefect'), "UPDATE flow_run SET name = 'kept'");
      const restoreId = 'restore_20261121_080000_blocked';
      try {
        await expect(
          restorePostgres(
            ctx('infrahub_backup_20261120_010000', restoreId),
            as('master', 'masterpw', 'prefect'),
            manifest,
            {
              binDir: postgres.binDir,
            },
          ),
        ).rejects.toMatchObject({
          name: 'RestoreBlocked',
          message: expect.stringMatching(
            /session\(s\) on prefect cannot be terminated by this role \(pid \d+ of \S+, a superuser\).*nothing was restored/,
          ),
        });
      } finally {
        await superSession.end();
      }
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
      expect(await query(su('prefect'), 'SELECT DISTINCT name FROM flow_run')).toEqual([{ name: 'kept' }]);
      // Without the superuser's session, the master user (member of app, CREATEDB, CREATEROLE) restores.
      const before = await databaseState('prefect');
      const result = await restorePostgres(
        ctx('infrahub_backup_20261120_010000', 'restore_20261121_080000_master'),
        as('master', 'masterpw', 'prefect'),
        manifest,
        { binDir: postgres.binDir },
      );
      expect(result.ownership).toMatchObject({ databaseOwner: 'app', objects: 'dump' });
      expect(await databaseState('prefect')).toEqual(before);
      expect(await query(as('app', 'apppw', 'prefect'), 'SELECT count(*)::int AS n FROM flow_run')).toEqual([
        { n: 250 },
      ]);
    },
    scaled(240_000),
  );

  it(
    "names a bit flip in a single-part object RestoreValidation (the S3 client's own checksum), like one in a multipart object, leaving the database as it was",
    async () => {
      const manifest = manifests.infrahub_backup_20261120_010000 as Manifest;
      // A single PUT: S3's full-object checksum, which the SDK checks on GET by default.
      expect(manifest.s3?.[PREFECT_DUMP]?.checksum_sha256).not.toMatch(/-\d+$/);
      await query(as('app', 'apppw', 'prefect'), "UPDATE flow_run SET name = 'before-flip'");
      const viaProxy = new S3Client({
        endpoint: proxy.endpoint,
        region: server.region,
        forcePathStyle: true,
        credentials: server.credentials,
        maxAttempts: 1,
      });
      proxy.clear();
      proxy.add({ match: { method: 'GET', path: /prefect\.dump$/ }, fault: { kind: 'flip-bit' }, times: 1 });
      try {
        await expect(
          restorePostgres(
            ctx('infrahub_backup_20261120_010000', 'restore_20261121_090000_flip', viaProxy),
            su('prefect'),
            manifest,
            {
              binDir: postgres.binDir,
            },
          ),
        ).rejects.toMatchObject({
          name: 'RestoreValidation',
          message: expect.stringMatching(/prefect\.dump does not match its (checksum|manifest)/),
        });
      } finally {
        viaProxy.destroy();
        proxy.clear();
      }
      expect(await databases()).toEqual(['postgres', 'prefect', 'template0', 'template1']);
      expect(await query(su('prefect'), 'SELECT DISTINCT name FROM flow_run')).toEqual([
        { name: 'before-flip' },
      ]);
    },
    scaled(240_000),
  );
});
