/**
 * Restores the graph database from a backup.
 * - Community: with the DBMS stopped, every database the backup holds (`neo4j`, `system`) is loaded
 *   with `neo4j-admin database load <db> --from-stdin --overwrite-destination=true`, streamed from the
 *   exact S3 version the manifest records. From Neo4j 5.20 an Enterprise full backup loads the same
 *   way (`--from-path`, after a verified download): the plan refuses an older target.
 * - Enterprise (online, DBMS running): `STOP DATABASE`, `neo4j-admin database restore --from-path
 *   --overwrite-destination` of the downloaded, verified chain, the generated `restore_metadata.cypher`
 *   applied to `system`, `CREATE DATABASE IF NOT EXISTS`, `START DATABASE`; or, in `new-database`
 *   mode, the same under a new name and the alias switched to it (blue/green).
 * After that, `validateGraph` compares node and relationship counts over Bolt with those recorded at
 * backup time.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import neo4j from 'neo4j-driver';
import type { Manifest } from '../../../../core/backup/manifest.js';
import {
  DatabaseUnreachableError,
  ManifestError,
  Neo4jDatabaseInUseError,
  RestoreValidationError,
} from '../../../../core/errors.js';
import { graphCountDifferences } from '../../../../core/restore/compare.js';
import { downloadVerified } from '../../../../core/s3/download.js';
import { runTool } from '../../../../core/tools/run-tool.js';
import { streamS3ToTool } from '../../../../core/tools/stream-from-s3.js';
import { databaseInfo, type Neo4jAdmin } from './neo4j.js';
import { type BoltConnection, readGraphCounts, waitForGraph } from './neo4j-counts.js';
import type { RestoreContext } from './restore-postgres.js';

export interface Neo4jRestoreResult {
  component: 'database';
  databases: Array<{ name: string; file: string }>;
  durationMs: number;
}

export async function restoreNeo4jCommunity(
  ctx: RestoreContext,
  admin: Neo4jAdmin,
  manifest: Manifest,
  options: { workDir: string } = { workDir: '/tmp/neo4j-restore' },
): Promise<Neo4jRestoreResult> {
  const started = Date.now();
  const log = ctx.logger.child({ component: 'database', step: 'restore', edition: 'community' });
  const recorded = manifest.neo4j;
  if (!recorded) throw new ManifestError(`${ctx.target}/${ctx.backupId} holds no Neo4j backup to load`);
  const loads = recorded.databases.map((db) => {
    const files = db.files.map((file) => {
      const stored = manifest.s3?.[file];
      const sha256 = manifest.checksums[file];
      if (!stored || !sha256)
        throw new ManifestError(`${ctx.target}/${ctx.backupId} records no stored copy of ${file}`);
      return { file, stored, sha256 };
    });
    if (files.length === 0)
      throw new ManifestError(`${ctx.target}/${ctx.backupId} records no file for database ${db.name}`);
    if (recorded.method === 'backup' && files.length > 1) {
      throw new ManifestError(
        `${ctx.target}/${ctx.backupId} holds a chain of ${files.length} backup files for ${db.name}; Community loads only a full backup (set NEO4J_AGGREGATE=true on the Enterprise backups to fold each chain into one)`,
      );
    }
    return { name: db.name, ...(files[0] as (typeof files)[number]) };
  });
  // Refuse before loading anything while the DBMS runs (it is stopped by the state machine first).
  for (const { name } of loads) {
    if ((await databaseInfo(admin, name)).inUse) throw new Neo4jDatabaseInUseError(name);
  }
  // system first: it holds the users and roles the data database is then opened with.
  loads.sort((a, b) => (a.name === 'system' ? -1 : b.name === 'system' ? 1 : 0));
  const env = admin.env ?? process.env;
  for (const { name, file, stored, sha256 } of loads) {
    log.info('neo4j-admin database load started', {
      database: name,
      key: stored.key,
      versionId: stored.version_id,
    });
    if (recorded.method === 'dump') {
      const load = runTool(
        admin.path,
        ['database', 'load', name, '--from-stdin', '--overwrite-destination=true'],
        {
          env,
          stdin: 'pipe',
          stdout: 'ignore',
        },
      );
      await streamS3ToTool(ctx.s3, ctx.bucket, stored.key, load, stored.version_id);
    } else {
      // An Enterprise full backup (5.20+): load reads it from a folder, not from standard input.
      const dir = join(options.workDir, name);
      await rm(dir, { recursive: true, force: true });
      await downloadVerified(
        ctx.s3,
        { bucket: ctx.bucket, key: stored.key, versionId: stored.version_id },
        sha256,
        join(dir, file.split('/').pop() as string),
      );
      try {
        await runTool(
          admin.path,
          ['database', 'load', name, `--from-path=${dir}`, '--overwrite-destination=true'],
          {
            env,
            stdout: 'ignore',
          },
        ).done;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    log.info('neo4j-admin database load finished', { database: name, file });
  }
  return {
    component: 'database',
    databases: loads.map(({ name, file }) => ({ name, file })),
    durationMs: Date.now() - started,
  };
}

/** Cypher against the running DBMS (Enterprise administration commands go to `system`). */
export interface CypherSession {
  run(
    database: string,
    query: string,
    params?: Record<string, unknown>,
  ): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export function boltCypher(connection: BoltConnection): CypherSession {
  const driver = neo4j.driver(connection.uri, neo4j.auth.basic(connection.username, connection.password), {
    connectionTimeout: 15_000,
  });
  // The first statement waits (bounded) until the DBMS answers with `system` online (waitForGraph).
  let ready: Promise<void> | undefined;
  return {
    async run(database, query, params = {}) {
      ready ??= waitForGraph(connection, ['system']);
      await ready;
      const session = driver.session({ database });
      try {
        const result = await session.run(query, params);
        return result.records.map((r) => r.toObject());
      } catch (err) {
        const code = String((err as { code?: unknown }).code ?? '');
        if (code === 'ServiceUnavailable' || code.startsWith('Neo.ClientError.Security.'))
          throw new DatabaseUnreachableError(`cannot connect to Neo4j at ${connection.uri}: ${String(err)}`);
        throw err;
      } finally {
        await session.close();
      }
    },
    close: () => driver.close(),
  };
}

/** A Neo4j identifier in backticks (names are validated, so this only guards the syntax). */
const quoted = (name: string) => `\`${name.replace(/`/g, '``')}\``;

/**
 * The statements of a `restore_metadata.cypher` (as `cypher-shell -f` would run them): cypher-shell
 * commands such as `:param` are dropped (the script's `$database` is passed as a parameter instead),
 * statements end with ";" at the end of a line.
 */
export function metadataStatements(script: string): string[] {
  return script
    .split(/\r?\n/)
    .filter((line) => !line.trim().startsWith(':') && !line.trim().startsWith('//'))
    .join('\n')
    .split(/;\s*(?:\n|$)/)
    .map((statement) => statement.trim())
    .filter(Boolean);
}

export interface EnterpriseRestoreOptions {
  /** Where the backup chain is downloaded (and removed afterwards). */
  workDir: string;
  /** The server's data directory, where `neo4j-admin database restore` leaves the metadata script. */
  dataDir: string;
  mode: 'in-place' | 'new-database';
  /** new-database: the name to restore under. */
  newDatabaseName?: string;
  /** new-database: the alias switched to the new database (Infrahub connects through it). */
  alias?: string;
}

export async function restoreNeo4jEnterprise(
  ctx: RestoreContext,
  admin: Neo4jAdmin,
  cypher: CypherSession,
  manifest: Manifest,
  options: EnterpriseRestoreOptions,
): Promise<Neo4jRestoreResult> {
  const started = Date.now();
  const log = ctx.logger.child({ component: 'database', step: 'restore', edition: 'enterprise' });
  const what = `${ctx.target}/${ctx.backupId}`;
  const recorded = manifest.neo4j;
  if (recorded?.method !== 'backup') {
    throw new ManifestError(
      `${what} holds no Enterprise backup to restore (method ${recorded?.method ?? 'none'}); a Community dump loads into Community`,
    );
  }
  // `system` is not restored online: its users and roles come back through the metadata script.
  const databases = recorded.databases.filter((db) => db.name !== 'system');
  if (databases.length === 0) throw new ManifestError(`${what} holds no user database to restore`);
  if (options.mode === 'new-database' && (databases.length !== 1 || !options.newDatabaseName)) {
    throw new ManifestError(
      `mode "new-database" restores one database under a new name; ${what} holds ${databases.map((d) => d.name).join(', ')}`,
    );
  }
  const env = admin.env ?? process.env;
  const restored: Array<{ name: string; file: string }> = [];
  for (const db of databases) {
    const name = options.mode === 'new-database' ? (options.newDatabaseName as string) : db.name;
    const dir = join(options.workDir, db.name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    try {
      for (const file of db.files) {
        const stored = manifest.s3?.[file];
        const sha256 = manifest.checksums[file];
        if (!stored || !sha256) throw new ManifestError(`${what} records no stored copy of ${file}`);
        await downloadVerified(
          ctx.s3,
          { bucket: ctx.bucket, key: stored.key, versionId: stored.version_id },
          sha256,
          join(dir, file.split('/').pop() as string),
        );
      }
      log.info('backup chain downloaded and verified', { database: db.name, files: db.files.length });

      const exists =
        (await cypher.run('system', 'SHOW DATABASES YIELD name WHERE name = $name RETURN name', { name }))
          .length > 0;
      if (exists) {
        log.info('STOP DATABASE', { database: name });
        await cypher.run('system', `STOP DATABASE ${quoted(name)} WAIT`);
      }
      await runTool(
        admin.path,
        ['database', 'restore', `--from-path=${dir}`, '--overwrite-destination=true', name],
        { env, stdout: 'ignore' },
      ).done;
      log.info('neo4j-admin database restore finished', { database: name, files: db.files.length });

      const script = join(options.dataDir, 'scripts', name, 'restore_metadata.cypher');
      if (existsSync(script)) {
        const statements = metadataStatements(await readFile(script, 'utf8'));
        for (const statement of statements) await cypher.run('system', statement, { database: name });
        log.info('restore_metadata.cypher applied to system', {
          database: name,
          statements: statements.length,
        });
      } else {
        log.warn('no restore_metadata.cypher (the backup was taken without --include-metadata)', {
          database: name,
        });
      }
      await cypher.run('system', `CREATE DATABASE ${quoted(name)} IF NOT EXISTS WAIT`);
      await cypher.run('system', `START DATABASE ${quoted(name)} WAIT`);
      if (options.mode === 'new-database') {
        const alias = options.alias ?? 'infrahub';
        await cypher.run('system', `CREATE OR REPLACE ALIAS ${quoted(alias)} FOR DATABASE ${quoted(name)}`);
        log.info('alias switched to the restored database', { alias, database: name });
      }
      restored.push({ name, file: db.files[db.files.length - 1] as string });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return { component: 'database', databases: restored, durationMs: Date.now() - started };
}

/** After the DBMS is back: node and relationship counts per database equal those at backup time. */
export async function validateGraph(
  ctx: RestoreContext,
  connection: BoltConnection,
  manifest: Manifest,
  /** The backup's database name → the name it was restored under (new-database mode). */
  renamed: Record<string, string> = {},
): Promise<Record<string, { nodes: number; relationships: number }>> {
  const recorded = manifest.counts?.neo4j;
  if (!recorded) {
    // An imported infrahub-backup archive records no counts: the graph must answer, and its counts are reported.
    const databases = (manifest.neo4j?.databases ?? [])
      .map((d) => renamed[d.name] ?? d.name)
      .filter((d) => d !== 'system');
    const actual = await readGraphCounts(connection, databases);
    ctx.logger.warn(
      'the backup records no graph counts (an imported archive): the graph answers; counts not compared',
      {
        step: 'validate',
        counts: actual,
      },
    );
    return actual;
  }
  // counts_basis (core/backup/manifest.ts) says whether the counts describe the dumped data: a
  // database whose counts differ from it ("differs") is only read, not compared; one where that is
  // unknown (Community: no transaction id over Bolt) reports a difference as a warning, since the
  // bytes loaded were verified against the manifest and a write between counting and the dump
  // cannot be told apart from it; "verified" (and manifests without counts_basis) fail on any difference.
  const basis = manifest.counts_basis ?? {};
  const strict = Object.fromEntries(
    Object.entries(recorded)
      .filter(([db]) => basis[db]?.describes_dump !== 'unknown')
      .map(([db, c]) => [renamed[db] ?? db, c]),
  );
  const lenient = Object.fromEntries(
    Object.entries(recorded)
      .filter(([db]) => basis[db]?.describes_dump === 'unknown')
      .map(([db, c]) => [renamed[db] ?? db, c]),
  );
  const notComparable = Object.entries(basis)
    .filter(([db, b]) => b.describes_dump === 'differs' && !(db in recorded))
    .map(([db]) => renamed[db] ?? db);
  const databases = [...Object.keys(strict), ...Object.keys(lenient), ...notComparable];
  const actual = await readGraphCounts(connection, databases);
  const differences = graphCountDifferences(strict, actual);
  if (differences.length > 0) {
    throw new RestoreValidationError(
      `restored graph does not match the backup's counts:\n${differences.map((d) => `  - ${d}`).join('\n')}`,
    );
  }
  const unproven = graphCountDifferences(lenient, actual);
  if (unproven.length > 0) {
    ctx.logger.warn(
      'graph counts differ from those taken before the dump, which cannot be tied to the dumped transaction (no transaction id at counting time); the loaded bytes matched the manifest: not failed',
      { step: 'validate', differences: unproven, counts: actual },
    );
  }
  if (notComparable.length > 0) {
    ctx.logger.warn('graph counts not compared: they were taken at another transaction than the one dumped', {
      step: 'validate',
      databases: notComparable,
      basis,
    });
  }
  ctx.logger.info('graph counts equal the backup', { step: 'validate', counts: actual });
  return actual;
}
