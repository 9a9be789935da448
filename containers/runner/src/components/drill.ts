/**
 * A restore drill: the backup is restored into disposable databases started inside the runner task
 * (scratch.ts), validated against the counts recorded at backup time, and torn down. What is timed is
 * what a recovery takes: from the first database start to the last validation (the recovery time the
 * drill reports); teardown is timed separately.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from '../../../../core/backup/manifest.js';
import { ManifestError } from '../../../../core/errors.js';
import { connectPostgres } from './postgres.js';
import { restoreArtifacts } from './restore-artifacts.js';
import { checkGraph, restoreNeo4jCommunity } from './restore-neo4j.js';
import type { RestoreContext } from './restore-postgres.js';
import { restorePostgres } from './restore-postgres.js';
import {
  inOwnScratch,
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

export async function runDrill(
  ctx: RestoreContext,
  manifest: Manifest,
  options: DrillOptions,
): Promise<DrillResult> {
  // options.workDir is only where scratch goes: the disposable servers live in a folder of this run's own.
  return inOwnScratch(options.workDir, 'drill', (workDir) => drillIn(ctx, manifest, { ...options, workDir }));
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
    if (manifest.components.includes('database')) {
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
