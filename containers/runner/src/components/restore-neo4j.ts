/**
 * Restores a Neo4j Community store from a backup's dumps: with the DBMS stopped, every database the
 * backup holds (`neo4j`, `system`) is loaded with `neo4j-admin database load <db> --from-stdin
 * --overwrite-destination=true`, streamed from the exact S3 version the manifest records. After the
 * DBMS is started again, `validateGraph` compares node and relationship counts over Bolt with those
 * recorded at backup time. (Enterprise restores follow a different path: restore from a backup
 * chain, then the generated metadata script.)
 */
import type { Manifest } from '../../../../core/backup/manifest.js';
import { ManifestError, Neo4jDatabaseInUseError, RestoreValidationError } from '../../../../core/errors.js';
import { graphCountDifferences } from '../../../../core/restore/compare.js';
import { runTool } from '../../../../core/tools/run-tool.js';
import { streamS3ToTool } from '../../../../core/tools/stream-from-s3.js';
import { databaseInfo, type Neo4jAdmin } from './neo4j.js';
import { type BoltConnection, readGraphCounts } from './neo4j-counts.js';
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
): Promise<Neo4jRestoreResult> {
  const started = Date.now();
  const log = ctx.logger.child({ component: 'database', step: 'restore', edition: 'community' });
  const recorded = manifest.neo4j;
  if (!recorded || recorded.method !== 'dump') {
    throw new ManifestError(
      `${ctx.target}/${ctx.backupId} holds no Neo4j dump to load (method ${recorded?.method ?? 'none'})`,
    );
  }
  const loads = recorded.databases.map((db) => {
    const file = db.files[0];
    const stored = file ? manifest.s3?.[file] : undefined;
    if (!file || !stored)
      throw new ManifestError(`${ctx.target}/${ctx.backupId} records no dump file for ${db.name}`);
    return { name: db.name, file, stored };
  });
  // Refuse before loading anything while the DBMS runs (it is stopped by the state machine first).
  for (const { name } of loads) {
    if ((await databaseInfo(admin, name)).inUse) throw new Neo4jDatabaseInUseError(name);
  }
  // system first: it holds the users and roles the data database is then opened with.
  loads.sort((a, b) => (a.name === 'system' ? -1 : b.name === 'system' ? 1 : 0));
  for (const { name, file, stored } of loads) {
    log.info('neo4j-admin database load started', {
      database: name,
      key: stored.key,
      versionId: stored.version_id,
    });
    const load = runTool(
      admin.path,
      ['database', 'load', name, '--from-stdin', '--overwrite-destination=true'],
      { env: admin.env ?? process.env, stdin: 'pipe', stdout: 'ignore' },
    );
    await streamS3ToTool(ctx.s3, ctx.bucket, stored.key, load, stored.version_id);
    log.info('neo4j-admin database load finished', { database: name, file });
  }
  return {
    component: 'database',
    databases: loads.map(({ name, file }) => ({ name, file })),
    durationMs: Date.now() - started,
  };
}

/** After the DBMS is back: node and relationship counts per database equal those at backup time. */
export async function validateGraph(
  ctx: RestoreContext,
  connection: BoltConnection,
  manifest: Manifest,
): Promise<Record<string, { nodes: number; relationships: number }>> {
  const expected = manifest.counts?.neo4j;
  if (!expected)
    throw new ManifestError(`${ctx.target}/${ctx.backupId} recorded no Neo4j counts to compare with`);
  const databases = Object.keys(expected);
  const actual = await readGraphCounts(connection, databases);
  const differences = graphCountDifferences(expected, actual);
  if (differences.length > 0) {
    throw new RestoreValidationError(
      `restored graph does not match the backup's counts:\n${differences.map((d) => `  - ${d}`).join('\n')}`,
    );
  }
  ctx.logger.info('graph counts equal the backup', { step: 'validate', counts: actual });
  return actual;
}
