/**
 * Restores the task-manager database from a backup: `pg_restore --clean --create` connected to the
 * `postgres` maintenance database (design.md section 1), the dump streamed from the exact S3
 * version the manifest records, nothing staged. Then validates: exact row counts of every table
 * must equal those taken, in pg_dump's own snapshot, at backup time.
 */

import type { S3Client } from '@aws-sdk/client-s3';
import { PREFECT_DUMP } from '../../../../core/backup/layout.js';
import type { Manifest } from '../../../../core/backup/manifest.js';
import { ManifestError, RestoreValidationError } from '../../../../core/errors.js';
import type { Logger } from '../../../../core/log.js';
import { tableCountDifferences } from '../../../../core/restore/compare.js';
import { runTool } from '../../../../core/tools/run-tool.js';
import { streamS3ToTool } from '../../../../core/tools/stream-from-s3.js';
import { connectPostgres, countRows, type PostgresConnection, toolEnv, toolPath } from './postgres.js';

export interface RestoreContext {
  s3: S3Client;
  bucket: string;
  target: string;
  backupId: string;
  logger: Logger;
}

export interface PostgresRestoreResult {
  component: 'task-manager-db';
  database: string;
  tables: number;
  rows: number;
  durationMs: number;
  /** Milliseconds: the streamed pg_restore (sessions closed first), then the row counts. */
  timings: { 'pg-restore': number; 'count-rows': number };
}

export async function restorePostgres(
  ctx: RestoreContext,
  connection: PostgresConnection,
  manifest: Manifest,
  options: {
    binDir?: string;
    /** Skip GRANTs (a disposable drill server has none of the deployment's roles). */
    noAcl?: boolean;
  } = {},
): Promise<PostgresRestoreResult> {
  const started = Date.now();
  const log = ctx.logger.child({ component: 'task-manager-db', step: 'restore' });
  const stored = manifest.s3?.[PREFECT_DUMP];
  // An imported infrahub-backup archive records no counts: the restore is then checked for
  // reachability and tables only, and says so.
  const expected = manifest.counts?.postgres?.tables;
  if (!stored)
    throw new ManifestError(`${ctx.target}/${ctx.backupId} records no task-manager dump to restore`);
  const database = manifest.counts?.postgres?.database ?? connection.database;

  // The database is dropped and created again: nothing may stay connected to it (services quiesced).
  const admin = await connectPostgres(connection, 'infrahub-restore', 'postgres');
  try {
    const { rowCount } = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [database],
    );
    if (rowCount)
      log.warn('closed sessions still connected to the database', { database, sessions: rowCount });
  } finally {
    await admin.end();
  }

  log.info('pg_restore started', { database, key: stored.key, versionId: stored.version_id });
  const restore = runTool(
    toolPath(options.binDir, 'pg_restore'),
    [
      '--clean',
      '--if-exists',
      '--create',
      '--no-owner',
      ...(options.noAcl ? ['--no-acl'] : []),
      '--exit-on-error',
      '--dbname=postgres',
    ],
    {
      env: toolEnv(connection, 'infrahub-restore'),
      stdin: 'pipe',
      stdout: 'ignore',
    },
  );
  await streamS3ToTool(ctx.s3, ctx.bucket, stored.key, restore, stored.version_id);
  const restoredAt = Date.now();
  log.info('pg_restore finished; counting rows', { database, ms: restoredAt - started });

  const client = await connectPostgres(connection, 'infrahub-restore', database);
  let actual: Record<string, number>;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    actual = await countRows(client, { parallel: true });
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
  if (!expected)
    log.warn(
      'the backup records no row counts (an imported archive): restored tables counted, not compared',
      {
        tables: Object.keys(actual).length,
      },
    );
  const differences = expected ? tableCountDifferences(expected, actual) : [];
  if (differences.length > 0) {
    throw new RestoreValidationError(
      `restored ${database} does not match the backup's row counts:\n${differences.map((d) => `  - ${d}`).join('\n')}`,
    );
  }
  const rows = Object.values(actual).reduce((a, b) => a + b, 0);
  log.info('pg_restore finished; row counts equal the backup', {
    database,
    tables: Object.keys(actual).length,
    rows,
  });
  const finished = Date.now();
  return {
    component: 'task-manager-db',
    database,
    tables: Object.keys(actual).length,
    rows,
    durationMs: finished - started,
    timings: { 'pg-restore': restoredAt - started, 'count-rows': finished - restoredAt },
  };
}
