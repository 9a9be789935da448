/**
 * A restore drill: the backup is restored into disposable databases started inside the runner task
 * (scratch.ts), validated against the counts recorded at backup time, and torn down. What is timed is
 * what a recovery takes: from the first database start to the last validation (the recovery time the
 * drill reports); teardown is timed separately.
 */
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Manifest } from '../../../../core/backup/manifest.js';
import { ManifestError, RunnerConfigError } from '../../../../core/errors.js';
import { neo4jDatabaseNameProblem } from '../../../../core/neo4j-names.js';
import { runTool } from '../../../../core/tools/run-tool.js';
import { onScratchTarget } from '../stop-guard.js';
import type { Neo4jAdmin } from './neo4j.js';
import type { BoltConnection } from './neo4j-counts.js';
import { connectPostgres } from './postgres.js';
import { restoreArtifacts } from './restore-artifacts.js';
import {
  boltCypher,
  checkGraph,
  downloadManifestFilesVerified,
  quotedName,
  restoreNeo4jCommunity,
  type VerifiedFile,
} from './restore-neo4j.js';
import type { RestoreContext } from './restore-postgres.js';
import { restorePostgres } from './restore-postgres.js';
import {
  acceptNeo4jLicence,
  inOwnScratch,
  type Neo4jLicence,
  prepareScratchNeo4j,
  type ScratchNeo4j,
  type ScratchPostgres,
  startScratchPostgres,
} from './scratch.js';

export interface DrillOptions {
  workDir: string;
  pgBinDir?: string;
  /** When the runner runs as root: the account the disposable PostgreSQL runs as. */
  pgUser?: string;
  neo4jHome: string;
  neo4jAdmin: string;
  neo4jMemory?: { heap: string; pageCache: string };
  /** The edition of the image's Neo4j (NEO4J_EDITION); default community. */
  neo4jEdition?: 'community' | 'enterprise';
  /**
   * Enterprise, and required there: the licence agreement the disposable server is started under
   * (config `neo4j.licence`, NEO4J_LICENCE); accepted with acceptNeo4jLicence before it starts.
   */
  neo4jLicence?: Neo4jLicence;
}

/**
 * The role a drill restores PostgreSQL as in its disposable server: not a superuser, with CREATEDB
 * only. A dump is SQL run by pg_restore (PostgreSQL docs, "pg_restore": only restore dumps from
 * trusted sources, since a dump can run arbitrary code as the restoring role); drills restore any
 * complete backup, imported archives included, on a schedule. As this role, a dump's `COPY ... TO
 * PROGRAM` or `FROM PROGRAM`, reads and writes of server files, `ALTER SYSTEM` and untrusted
 * languages are refused (PostgreSQL docs, "COPY" and "Predefined Roles": they need a superuser or
 * pg_execute_server_program / pg_read_server_files / pg_write_server_files), so they fail the drill
 * instead of running in the drill task. Objects are restored as this role (pg_restore --no-owner:
 * the dump's owners do not exist in the disposable server).
 */
export const DRILL_RESTORE_ROLE = 'drill_restore';

/** Creates DRILL_RESTORE_ROLE in the disposable server and returns the connection that logs in as it. */
async function restoreRoleOf(scratch: ScratchPostgres): Promise<ScratchPostgres['connection']> {
  const admin = await connectPostgres(scratch.connection, 'infrahub-drill');
  try {
    await admin.query(
      `CREATE ROLE ${DRILL_RESTORE_ROLE} LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS`,
    );
  } finally {
    await admin.end().catch(() => undefined);
  }
  return { ...scratch.connection, user: DRILL_RESTORE_ROLE };
}

export interface DrillResult {
  /** From the first database start to the last validation, in seconds. */
  recoverySeconds: number;
  timings: Record<string, number>;
  details: Record<string, unknown>;
}

/**
 * Restores the backup into disposable databases, validates it and tears them down (module docstring).
 *
 * @throws RunnerConfigError for an Enterprise drill without `neo4jLicence`, before anything is
 *   downloaded or started (Neo4j 5.4+ would refuse to start the disposable server)
 * @throws what the restores and validations throw (ManifestError, RestoreValidationError,
 *   ToolFailedError naming a chain that does not restore, ...)
 */
export async function runDrill(
  ctx: RestoreContext,
  manifest: Manifest,
  options: DrillOptions,
): Promise<DrillResult> {
  if (options.neo4jEdition === 'enterprise' && !options.neo4jLicence) {
    throw new RunnerConfigError(
      [
        'NEO4J_LICENCE: is required for a drill of Neo4j Enterprise: "commercial" or "evaluation", the agreement the deployment accepted (config neo4j.licence); Neo4j 5.4+ refuses to start Enterprise until one is accepted, so nothing was downloaded or started',
      ],
      'drill',
    );
  }
  // options.workDir is only where scratch goes: the disposable servers live in a folder of this run's own.
  // Its restores go into its own disposable servers: no failure of the drill says a target was changed.
  return onScratchTarget(() =>
    inOwnScratch(options.workDir, 'drill', (workDir) => drillIn(ctx, manifest, { ...options, workDir })),
  );
}

async function drillIn(ctx: RestoreContext, manifest: Manifest, options: DrillOptions): Promise<DrillResult> {
  const log = ctx.logger.child({ step: 'drill' });
  const timings: Record<string, number> = {};
  const details: Record<string, unknown> = { components: manifest.components };
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await work();
    } finally {
      timings[name] = Date.now() - started;
      log.info('drill step finished', { drillStep: name, ms: timings[name] });
    }
  };
  if (manifest.components.length === 0)
    throw new ManifestError(`${ctx.target}/${ctx.backupId} holds no component`);

  let postgres: ScratchPostgres | undefined;
  let graph: ScratchNeo4j | undefined;
  const started = Date.now();
  let recoverySeconds: number;
  try {
    if (manifest.components.includes('task-manager-db')) {
      postgres = await timed('start-postgres', () =>
        startScratchPostgres(options.pgBinDir, join(options.workDir, 'postgres'), options.pgUser),
      );
      const scratch = postgres;
      // Restored as a role that is no superuser: a hostile dump cannot run programs in the task.
      const connection = await timed('create-restore-role', () => restoreRoleOf(scratch));
      const restored = await timed('restore-postgres', () =>
        restorePostgres(ctx, connection, manifest, {
          binDir: options.pgBinDir,
          noAcl: true,
          // The disposable server has no database of the deployment: restore under the dump's name.
          useDumpDatabaseName: true,
        }),
      );
      // Restored into the database the dump was taken of (not the scratch server's `postgres`), and
      // counted there; `validation` says whether counts recorded at backup time were compared.
      details.postgres = {
        database: restored.database,
        tables: restored.tables,
        rows: restored.rows,
        verifiedBytes: restored.verifiedBytes,
        sha256: restored.sha256,
        countsCompared: restored.countsCompared,
        validation: restored.validation,
        created: restored.created,
        restoredAs: `${DRILL_RESTORE_ROLE} (not a superuser)`,
      };
    }
    if (manifest.components.includes('database') && options.neo4jEdition === 'enterprise') {
      const { licence, restored, scratch } = await drillEnterpriseGraph(ctx, manifest, options, timed);
      graph = scratch;
      const bolt = await timed('start-neo4j', () => scratch.start());
      const created = await timed('create-neo4j-databases', () =>
        createMissingDatabases(bolt, restored.databases),
      );
      const { counts, validation } = await timed('validate-neo4j', () => checkGraph(ctx, bolt, manifest));
      details.neo4j = {
        counts,
        validation,
        edition: 'enterprise',
        licence,
        restoredWith: restored.restoredWith,
        databases: restored.databases,
        ...(created.length ? { created } : {}),
        system: restored.system,
        verifiedBytes: restored.verifiedBytes,
        verified: restored.verified,
      };
    } else if (manifest.components.includes('database')) {
      graph = await prepareScratchNeo4j(
        options.neo4jHome,
        options.neo4jAdmin,
        join(options.workDir, 'neo4j'),
        options.neo4jMemory ?? { heap: '1g', pageCache: '512m' },
      );
      const scratch = graph;
      // The disposable instance runs without authentication, so the backup's system database is loaded
      // too: the drill proves every dump loads, each verified against the manifest first.
      const loaded = await timed('load-neo4j', () =>
        restoreNeo4jCommunity(ctx, scratch.admin, manifest, {
          workDir: join(options.workDir, 'neo4j-load'),
          store: scratch.store,
          system: manifest.neo4j?.databases.some((d) => d.name === 'system') ? 'restore' : 'keep',
          // The scratch instance serves what it loads: any names, still one database besides system.
          databases: manifest.neo4j?.databases.map((d) => d.name) ?? [],
        }),
      );
      const bolt = await timed('start-neo4j', () => scratch.start());
      const { counts, validation } = await timed('validate-neo4j', () => checkGraph(ctx, bolt, manifest));
      details.neo4j = {
        counts,
        validation,
        system: loaded.system,
        verifiedBytes: loaded.verifiedBytes,
        verified: loaded.verified,
      };
    }
    if (manifest.components.includes('artifacts')) {
      const restored = await timed('restore-artifacts', () =>
        restoreArtifacts(ctx, { type: 'path', path: join(options.workDir, 'artifacts') }, manifest),
      );
      // Every artifact is held to the manifest's SHA-256 (restore-artifacts.ts).
      details.artifacts = { files: restored.files, bytes: restored.bytes, verifiedBytes: restored.bytes };
    }
    recoverySeconds = (Date.now() - started) / 1000;
  } finally {
    await timed('teardown', async () => {
      await Promise.allSettled([postgres?.stop(), graph?.stop()]);
      await rm(options.workDir, { recursive: true, force: true });
    });
  }
  log.info('drill passed: the backup restores and validates', {
    recoverySeconds,
    ...(details.postgres ? { postgres: (details.postgres as { validation: string }).validation } : {}),
  });
  return { recoverySeconds, timings, details };
}

/** What a drill restored into its disposable Enterprise server (drillEnterpriseGraph). */
interface EnterpriseDrillRestore {
  /** `database restore` of each backup chain, or `database load` of dumps. */
  restoredWith: 'database restore' | 'database load';
  /** Each database with the files restored into it (a chain: its full backup first). */
  databases: Array<{ name: string; files: string[] }>;
  /** `system` is never restored into a drill's Enterprise server: its own is kept. */
  system: 'kept' | 'not-in-backup' | 'restored';
  verified: VerifiedFile[];
  verifiedBytes: number;
}

/**
 * The graph of an Enterprise drill, up to (not including) the server's start: a disposable server
 * prepared (prepareScratchNeo4j, licenses folder of its own), the configured licence accepted
 * (acceptNeo4jLicence, `server license`), then the backup restored into its store while it is not
 * running. An online backup (`method: backup`, possibly a chain: a full backup and differentials,
 * which `database load` cannot read) goes through restoreChains (`database restore`); a dump (an
 * imported archive) loads as in a Community drill (`database load` is in both editions).
 */
async function drillEnterpriseGraph(
  ctx: RestoreContext,
  manifest: Manifest,
  options: DrillOptions,
  timed: <T>(name: string, work: () => Promise<T>) => Promise<T>,
): Promise<{
  licence: { accepted: Neo4jLicence; command: string };
  restored: EnterpriseDrillRestore;
  scratch: ScratchNeo4j;
}> {
  const accepted = options.neo4jLicence as Neo4jLicence;
  const scratch = await prepareScratchNeo4j(
    options.neo4jHome,
    options.neo4jAdmin,
    join(options.workDir, 'neo4j'),
    options.neo4jMemory ?? { heap: '1g', pageCache: '512m' },
    { edition: 'enterprise' },
  );
  try {
    const args = await timed('accept-licence', () => acceptNeo4jLicence(scratch.admin, accepted));
    const licence = { accepted, command: `neo4j-admin ${args.join(' ')}` };
    if (manifest.neo4j?.method === 'backup') {
      const restored = await timed('restore-neo4j-chains', () =>
        restoreChains(ctx, scratch.admin, manifest, join(options.workDir, 'neo4j-chains')),
      );
      return { licence, restored, scratch };
    }
    const loaded = await timed('load-neo4j', () =>
      restoreNeo4jCommunity(ctx, scratch.admin, manifest, {
        workDir: join(options.workDir, 'neo4j-load'),
        store: scratch.store,
        system: 'keep',
        databases: manifest.neo4j?.databases.map((d) => d.name) ?? [],
      }),
    );
    return {
      licence,
      restored: {
        restoredWith: 'database load',
        databases: loaded.databases.map((d) => ({ name: d.name, files: [d.file] })),
        system: loaded.system,
        verified: loaded.verified,
        verifiedBytes: loaded.verifiedBytes,
      },
      scratch,
    };
  } catch (err) {
    await scratch.stop();
    throw err;
  }
}

/**
 * Restores every user database's backup chain of `manifest` into the disposable (not yet started)
 * server of `admin`. Phase 1: every chain file downloaded and verified against the manifest
 * (downloadManifestFilesVerified), each database's chain in a folder of its own under its
 * artifact name. Phase 2, per database: `neo4j-admin database restore
 * --from-path=<folder>/<last artifact of the chain> --overwrite-destination=true <database>`
 * (Operations Manual 5, "Restore a database backup": with a `<database>` name, --from-path names
 * one artifact; for a differential "the command tries first to find in the folder a backup chain
 * ending at that specific differential backup and then restores that chain"). Restoring over the
 * disposable server's store is safe: it is local to the task and not running. `system` is not
 * restored (a cluster's system database describes its members and allocations; the disposable
 * server keeps its own, and a drill's server runs without authentication).
 *
 * @throws ManifestError when the manifest holds no user database or a database without files
 * @throws ToolFailedError naming the database and its chain when `database restore` refuses it (a
 *   broken chain, a missing full backup)
 */
async function restoreChains(
  ctx: RestoreContext,
  admin: Neo4jAdmin,
  manifest: Manifest,
  workDir: string,
): Promise<EnterpriseDrillRestore> {
  const what = `${ctx.target}/${ctx.backupId}`;
  const log = ctx.logger.child({ step: 'drill', component: 'database', edition: 'enterprise' });
  const recorded = manifest.neo4j;
  if (!recorded) throw new ManifestError(`${what} holds no Neo4j backup to restore`);
  const databases = recorded.databases.filter((db) => db.name !== 'system');
  if (databases.length === 0) throw new ManifestError(`${what} holds no database to restore besides system`);
  return inOwnScratch(workDir, 'neo4j-chains', async (dir) => {
    const chains = databases.map((db) => {
      const badName = neo4jDatabaseNameProblem(db.name);
      if (badName) throw new ManifestError(`${what}: database name ${JSON.stringify(db.name)} ${badName}`);
      if (db.files.length === 0) throw new ManifestError(`${what} records no file for database ${db.name}`);
      return {
        name: db.name,
        files: db.files.map((file) => ({ file, to: join(dir, db.name, basename(file)) })),
      };
    });
    const verified = await downloadManifestFilesVerified(
      ctx,
      manifest,
      dir,
      chains.flatMap((c) => c.files),
    );
    const verifiedBytes = verified.reduce((n, v) => n + v.bytes, 0);
    log.info('backup chains downloaded and verified against the manifest', {
      files: verified.length,
      verifiedBytes,
    });
    const env = admin.env ?? process.env;
    for (const { name, files } of chains) {
      const last = files[files.length - 1] as { to: string };
      try {
        await runTool(
          admin.path,
          ['database', 'restore', `--from-path=${last.to}`, '--overwrite-destination=true', name],
          { env, stdout: 'ignore' },
        ).done;
      } catch (err) {
        if (err instanceof Error)
          err.message = `the backup chain of ${name} (${files.map((f) => basename(f.file)).join(', ')}) did not restore into the drill's disposable server: ${err.message}`;
        throw err;
      }
      log.info('neo4j-admin database restore finished', { database: name, files: files.length });
    }
    return {
      restoredWith: 'database restore',
      databases: chains.map((c) => ({ name: c.name, files: c.files.map((f) => f.file) })),
      system: recorded.databases.some((db) => db.name === 'system') ? 'kept' : 'not-in-backup',
      verified,
      verifiedBytes,
    };
  });
}

/**
 * After the disposable Enterprise server started: every restored database it does not serve yet
 * is created (`CREATE DATABASE <name> IF NOT EXISTS WAIT` against `system`; Operations Manual 5,
 * "Restore a database backup": "You must create the database ... after the restore operation
 * finishes, unless you are replacing an existing database"). The default database (`neo4j`)
 * exists from the first start and opens the restored store, so nothing is created for it.
 *
 * @returns the databases created
 */
async function createMissingDatabases(
  connection: BoltConnection,
  databases: ReadonlyArray<{ name: string }>,
): Promise<string[]> {
  const cypher = boltCypher(connection);
  try {
    const served = new Set(
      (await cypher.run('system', 'SHOW DATABASES YIELD name RETURN name')).map((r) => String(r.name)),
    );
    const created: string[] = [];
    for (const { name } of databases) {
      if (served.has(name)) continue;
      await cypher.run('system', `CREATE DATABASE ${quotedName(name)} IF NOT EXISTS WAIT`);
      created.push(name);
    }
    return created;
  } finally {
    await cypher.close();
  }
}
