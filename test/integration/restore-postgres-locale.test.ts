import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, postgresRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { runDrill } from '../../containers/runner/src/components/drill.js';
import { restorePostgres } from '../../containers/runner/src/components/restore-postgres.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { writeManifest } from '../../core/backup/seal.js';
import { createLogger } from '../../core/log.js';
import {
  createVersionedBucket,
  type PostgresServer,
  type S3Server,
  startPostgres,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

const Bucket = 'backups-restore-pg-locale';
const target = 'infrahub-lab';
const logger = createLogger({}, { write: () => undefined });

/**
 * A locale this machine does not have installed (`locale -a`), generated with localedef into a
 * folder of our own: a server started with LOCPATH pointing there has it (glibc reads locales from
 * LOCPATH), a server started without it really lacks it, as the drill's disposable server lacked
 * RDS's en_US.UTF-8.
 */
function generateMissingLocale(dir: string): string {
  const installed = execFileSync('locale', ['-a'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().toLowerCase().replace('utf-8', 'utf8'));
  for (const candidate of ['en_US', 'de_DE', 'fr_FR', 'nl_NL', 'sv_SE']) {
    const name = `${candidate}.UTF-8`;
    if (installed.includes(`${candidate.toLowerCase()}.utf8`)) continue;
    if (!existsSync(`/usr/share/i18n/locales/${candidate}`)) continue;
    execFileSync('localedef', ['-i', candidate, '-f', 'UTF-8', join(dir, name)]);
    return name;
  }
  throw new Error('every candidate locale is installed or has no source here: cannot make a server lack one');
}

async function sql(server: PostgresServer, database: string, text: string) {
  const c = new pg.Client({ connectionString: server.url(database) });
  await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

// The source server has a locale (and roles) the target lacks: a restore creates the database
// itself, with the dump's encoding and the target's default locale, owners left out; the data and
// its row counts come back.
describe('restore: PostgreSQL into a server that lacks what the source had (locale, owner role, collation)', () => {
  let source: PostgresServer;
  let targetServer: PostgresServer;
  let server: S3Server;
  let s3: S3Client;
  let locales: string;
  let locale: string;
  let spaceDir: string;
  const manifests: Record<string, Manifest> = {};

  /** The runner's backup of one database of the source server, with its manifest. */
  const backUp = async (database: string, backupId: string) => {
    const run = await runRunner('backup-postgres', {
      ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
      ...postgresRunnerEnv(source, database),
    });
    expect(run.code, run.stderr).toBe(0);
    return (await writeManifest(s3, Bucket, { target, backupId, components: ['task-manager-db'] })).manifest;
  };

  beforeAll(async () => {
    locales = mkdtempSync(join(tmpdir(), 'locales-'));
    chmodSync(locales, 0o755);
    locale = generateMissingLocale(locales);
    process.env.LOCPATH = locales;
    try {
      source = await startPostgres();
    } finally {
      delete process.env.LOCPATH;
    }
    [targetServer, server] = await Promise.all([startPostgres(), startS3()]);
    s3 = server.client();
    await createVersionedBucket(s3, Bucket);

    await sql(source, 'postgres', 'CREATE ROLE prefect_owner NOLOGIN');
    await sql(
      source,
      'postgres',
      `CREATE DATABASE prefect TEMPLATE template0 ENCODING 'UTF8' LOCALE '${locale}' OWNER prefect_owner`,
    );
    await sql(
      source,
      'prefect',
      `CREATE TABLE flow_run (id int PRIMARY KEY, name text NOT NULL, code text COLLATE "C");
       INSERT INTO flow_run SELECT g, 'Flow ' || g, 'b' || g FROM generate_series(1, 500) g;
       CREATE TABLE log (id bigserial PRIMARY KEY, message text);
       INSERT INTO log (message) SELECT 'ä line ' || g FROM generate_series(1, 1200) g;
       ALTER TABLE flow_run OWNER TO prefect_owner; ALTER TABLE log OWNER TO prefect_owner;`,
    );
    // A tablespace and an extension (owned by a role the target lacks) that only the source has.
    spaceDir = mkdtempSync(join(tmpdir(), 'tablespace-'));
    if (process.getuid?.() === 0) {
      const id = (flag: string) =>
        Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(spaceDir, id('-u'), id('-g'));
    }
    await sql(source, 'postgres', `CREATE TABLESPACE extra LOCATION '${spaceDir}'`);
    // pg_trgm is a trusted extension: the database's owner may create it, and owns it.
    await sql(
      source,
      'prefect',
      `SET ROLE prefect_owner; CREATE EXTENSION pg_trgm; RESET ROLE;
       CREATE TABLE search (t text) TABLESPACE extra;
       INSERT INTO search SELECT 'flow ' || g FROM generate_series(1, 50) g;
       CREATE INDEX search_trgm ON search USING gin (t gin_trgm_ops) TABLESPACE extra;`,
    );
    expect(
      await sql(
        source,
        'prefect',
        "SELECT r.rolname FROM pg_extension e JOIN pg_roles r ON r.oid = e.extowner WHERE e.extname = 'pg_trgm'",
      ),
    ).toEqual([{ rolname: 'prefect_owner' }]);
    manifests.locale = await backUp('prefect', 'infrahub_backup_20261121_010000');

    // Neighbours: a database in C.UTF-8 (which the target has), and one whose provider is ICU.
    await sql(
      source,
      'postgres',
      "CREATE DATABASE prefect_cutf8 TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'",
    );
    await sql(
      source,
      'postgres',
      "CREATE DATABASE prefect_icu TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LOCALE 'C'",
    );
    for (const db of ['prefect_cutf8', 'prefect_icu'])
      await sql(
        source,
        db,
        `CREATE TABLE word (w text); INSERT INTO word VALUES ('b'), ('a'), ('B'), ('ä');
         CREATE COLLATION german_ci (provider = icu, locale = 'de-DE-u-ks-level2', deterministic = false);
         CREATE TABLE tag (t text COLLATE german_ci); INSERT INTO tag VALUES ('Tag'), ('tag');`,
      );
    manifests.cutf8 = await backUp('prefect_cutf8', 'infrahub_backup_20261121_020000');
    manifests.icu = await backUp('prefect_icu', 'infrahub_backup_20261121_030000');
  }, scaled(300_000));

  afterAll(async () => {
    await Promise.allSettled([source?.stop(), targetServer?.stop(), server?.stop()]);
    if (locales) rmSync(locales, { recursive: true, force: true });
    if (spaceDir) rmSync(spaceDir, { recursive: true, force: true });
  });

  const ctx = (backupId: string, restoreId: string) => ({
    s3,
    bucket: Bucket,
    target,
    backupId,
    restoreId,
    logger,
  });
  const connection = () => ({
    host: '127.0.0.1',
    port: targetServer.port,
    user: targetServer.user,
    password: targetServer.password,
    database: 'prefect',
  });

  it('the target really lacks the locale and the role (what pg_restore --create needed)', async () => {
    await expect(
      sql(targetServer, 'postgres', `CREATE DATABASE probe TEMPLATE template0 LOCALE '${locale}'`),
    ).rejects.toThrow(/invalid locale name/);
    expect(
      await sql(targetServer, 'postgres', "SELECT 1 FROM pg_roles WHERE rolname = 'prefect_owner'"),
    ).toEqual([]);
  });

  it(
    "restores a database created with a locale the target lacks, in the target's default locale, owned by the restoring role",
    async () => {
      const manifest = manifests.locale as Manifest;
      const result = await restorePostgres(
        ctx(manifest.backup_id, 'restore_20261122_010000_locale'),
        connection(),
        manifest,
        { binDir: targetServer.binDir },
      );
      expect(result).toMatchObject({
        database: 'prefect',
        tables: 3,
        rows: 1750,
        countsCompared: true,
        created: {
          encoding: 'UTF8',
          localeFrom: 'target-default',
          collate: 'C',
          fallbackReason: expect.stringMatching(/invalid locale name/),
        },
      });
      const owners = await sql(
        targetServer,
        'prefect',
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'",
      );
      expect(owners).toEqual([{ tableowner: 'postgres' }]);
      // The table that lived in the source's tablespace is in the target's default one, its trigram
      // index (pg_trgm, now the restoring role's) answers.
      expect(
        await sql(targetServer, 'prefect', "SELECT tablespace FROM pg_tables WHERE tablename = 'search'"),
      ).toEqual([{ tablespace: null }]);
      const similar = await sql(
        targetServer,
        'prefect',
        "SELECT count(*)::int AS n FROM search WHERE t % 'flow 7'",
      );
      expect((similar[0] as { n: number }).n).toBeGreaterThan(0);
      const first = await sql(targetServer, 'prefect', 'SELECT message FROM log ORDER BY id LIMIT 1');
      expect(first).toEqual([{ message: 'ä line 1' }]);
    },
    scaled(180_000),
  );

  it(
    "keeps the dump's locale when the target has it (C.UTF-8), and the ICU provider and collations",
    async () => {
      const cutf8 = await restorePostgres(
        ctx('infrahub_backup_20261121_020000', 'restore_20261122_020000_cutf8'),
        connection(),
        manifests.cutf8 as Manifest,
        // The target's configured database (PGDATABASE) is the connection's; this one names its own.
        { binDir: targetServer.binDir, database: 'prefect_cutf8' },
      );
      expect(cutf8).toMatchObject({
        database: 'prefect_cutf8',
        created: { localeFrom: 'dump', provider: 'libc', collate: 'C.UTF-8' },
      });
      expect(cutf8.created.fallbackReason).toBeUndefined();
      const icu = await restorePostgres(
        ctx('infrahub_backup_20261121_030000', 'restore_20261122_030000_icu'),
        connection(),
        manifests.icu as Manifest,
        // The target's configured database (PGDATABASE) is the connection's; this one names its own.
        { binDir: targetServer.binDir, database: 'prefect_icu' },
      );
      expect(icu).toMatchObject({
        database: 'prefect_icu',
        created: { localeFrom: 'dump', provider: 'icu' },
      });
      const [{ n }] = (await sql(
        targetServer,
        'prefect_icu',
        "SELECT count(*)::int AS n FROM tag WHERE t = 'TAG'",
      )) as [{ n: number }];
      expect(n).toBe(2); // the case-insensitive ICU collation came along
    },
    scaled(180_000),
  );

  it(
    "passes a drill of that backup on a disposable server lacking the locale, restored into the dump's database",
    async () => {
      const work = mkdtempSync(join(tmpdir(), 'drill-locale-'));
      chmodSync(work, 0o755);
      try {
        const manifest = manifests.locale as Manifest;
        const result = await runDrill(ctx(manifest.backup_id, 'drill_20261122_040000_locale'), manifest, {
          workDir: join(work, 'drill'),
          pgBinDir: targetServer.binDir,
          neo4jHome: '/nonexistent',
          neo4jAdmin: '/nonexistent',
        });
        expect(result.details.postgres).toMatchObject({
          database: 'prefect',
          tables: 3,
          rows: 1750,
          countsCompared: true,
          validation: 'counts equal those at backup time (3 tables, 1750 rows)',
          created: { localeFrom: expect.not.stringMatching(/^dump$/) },
        });
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
    scaled(240_000),
  );
});
