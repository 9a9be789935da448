/**
 * The runner's entrypoint: `runner <subcommand>`, one subcommand per component. Configuration comes
 * from the environment only (see env.ts); the result is written to S3 as `.runner/<component>.json`
 * and summarised on one stdout line. Exit codes tell the failure class (see EXIT_CODES).
 */
import { resultKey } from '../../../core/backup/layout.js';
import type { ComponentError, ComponentResult } from '../../../core/backup/results.js';
import { PENDING_TAGGING } from '../../../core/backup/retention.js';
import { ErrorNames } from '../../../core/errors.js';
import { createLogger, type Logger } from '../../../core/log.js';
import { createS3Client } from '../../../core/s3/client.js';
import { putJson } from '../../../core/s3/objects.js';
import type { RunContext } from './context.js';
import {
  ArtifactsEnvSchema,
  type CommonEnv,
  CommonEnvSchema,
  Neo4jCountsEnvSchema,
  Neo4jEnvSchema,
  PostgresEnvSchema,
  parseEnv,
} from './env.js';

export const SUBCOMMANDS = {
  'backup-postgres': 'task-manager-db',
  'backup-neo4j': 'database',
  'count-neo4j': 'database-counts',
  'backup-artifacts': 'artifacts',
} as const;
export type Subcommand = keyof typeof SUBCOMMANDS;

/** Exit codes by error name; the state machine and the CLI read them. 1 is anything unexpected. */
export const EXIT_CODES: Record<string, number> = {
  [ErrorNames.RunnerConfigError]: 2,
  [ErrorNames.ToolFailed]: 3,
  [ErrorNames.IncompatibleTool]: 4,
  [ErrorNames.Neo4jDatabaseInUse]: 5,
  [ErrorNames.StorageError]: 6,
  [ErrorNames.DatabaseUnreachable]: 7,
};

const USAGE = `usage: runner <subcommand>

subcommands:
  backup-postgres    pg_dump -Fc of the task-manager database, streamed to S3, with row counts
  backup-neo4j       Neo4j: Community dump (DBMS stopped) or Enterprise online backup, streamed to S3
  count-neo4j        node and relationship counts per database, over Bolt
  backup-artifacts   artifact storage (S3 bucket or mounted path) copied into the backup

All configuration is read from environment variables (containers/runner/README.md).`;

function context(env: CommonEnv, logger: Logger): RunContext {
  return {
    s3: createS3Client({
      region: env.AWS_REGION,
      endpoint: env.S3_ENDPOINT,
      forcePathStyle: env.S3_FORCE_PATH_STYLE,
    }),
    bucket: env.BACKUP_BUCKET,
    target: env.TARGET,
    backupId: env.BACKUP_ID,
    partSize: env.S3_PART_SIZE_MIB * 1024 * 1024,
    concurrency: env.S3_UPLOAD_CONCURRENCY,
    logger: logger.child({ target: env.TARGET, backupId: env.BACKUP_ID }),
  };
}

async function runComponent(
  subcommand: Subcommand,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<{ ctx: RunContext; result: ComponentResult }> {
  switch (subcommand) {
    // Components load on demand: a task loads only its own database driver (less memory, faster start).
    case 'backup-postgres': {
      const { backupPostgres } = await import('./components/postgres.js');
      const e = parseEnv(PostgresEnvSchema, env);
      const ctx = context(e, logger);
      const result = await backupPostgres(
        ctx,
        { host: e.PGHOST, port: e.PGPORT, user: e.PGUSER, password: e.PGPASSWORD, database: e.PGDATABASE },
        { binDir: e.PG_BINDIR, compress: e.PG_DUMP_COMPRESS },
      );
      return { ctx, result };
    }
    case 'backup-neo4j': {
      const { backupNeo4jCommunity, backupNeo4jEnterprise } = await import('./components/neo4j.js');
      const e = parseEnv(Neo4jEnvSchema, env);
      const ctx = context(e, logger);
      const admin = { path: e.NEO4J_ADMIN, env };
      if (e.NEO4J_EDITION === 'community') {
        return { ctx, result: await backupNeo4jCommunity(ctx, admin, e.NEO4J_DATABASES) };
      }
      const result = await backupNeo4jEnterprise(ctx, admin, e.NEO4J_DATABASES, {
        from: e.NEO4J_BACKUP_FROM as string,
        backupDir: e.NEO4J_BACKUP_DIR,
        type: e.NEO4J_BACKUP_TYPE,
        includeMetadata: e.NEO4J_INCLUDE_METADATA,
        aggregate: e.NEO4J_AGGREGATE,
      });
      return { ctx, result };
    }
    case 'count-neo4j': {
      const { countGraph } = await import('./components/neo4j-counts.js');
      const e = parseEnv(Neo4jCountsEnvSchema, env);
      const ctx = context(e, logger);
      const result = await countGraph(
        ctx,
        { uri: e.NEO4J_URI, username: e.NEO4J_USERNAME, password: e.NEO4J_PASSWORD },
        e.NEO4J_DATABASES,
      );
      return { ctx, result };
    }
    case 'backup-artifacts': {
      const { backupArtifacts } = await import('./components/artifacts.js');
      const e = parseEnv(ArtifactsEnvSchema, env);
      const ctx = context(e, logger);
      const source =
        e.ARTIFACTS_SOURCE === 's3'
          ? { type: 's3' as const, bucket: e.ARTIFACTS_BUCKET as string, prefix: e.ARTIFACTS_PREFIX }
          : { type: 'path' as const, path: e.ARTIFACTS_PATH as string };
      return { ctx, result: await backupArtifacts(ctx, source, { concurrency: e.ARTIFACTS_CONCURRENCY }) };
    }
  }
}

/** Runs one subcommand; returns the process exit code. Never throws. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const logger = createLogger({ service: 'infrahub-backup-runner' });
  const subcommand = argv[0];
  if (!subcommand || subcommand === '--help' || subcommand === '-h') {
    console.log(USAGE);
    return subcommand ? 0 : 2;
  }
  if (!(subcommand in SUBCOMMANDS)) {
    console.error(`unknown subcommand "${subcommand}"\n\n${USAGE}`);
    return 2;
  }
  const name = subcommand as Subcommand;
  // Where a failure is recorded, when at least the common variables are valid.
  const common = CommonEnvSchema.safeParse(env);
  try {
    const { ctx, result } = await runComponent(name, env, logger);
    const key = resultKey(ctx.target, ctx.backupId, result.component);
    await putJson(ctx.s3, ctx.bucket, key, result, 2, PENDING_TAGGING);
    const files = 'files' in result ? result.files : [];
    const summary = {
      component: result.component,
      result: `s3://${ctx.bucket}/${key}`,
      files: files.length,
      bytes: files.reduce((n, f) => n + f.size, 0),
    };
    ctx.logger.info('component finished', summary);
    console.log(JSON.stringify(summary));
    return 0;
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    logger.error('component failed', {
      subcommand: name,
      error: { name: error.name, message: error.message },
    });
    console.error(`${error.name}: ${error.message}`);
    if (common.success) await recordFailure(context(common.data, logger), SUBCOMMANDS[name], error);
    return EXIT_CODES[error.name] ?? 1;
  }
}

/** Best effort: leave `.runner/<component>.error.json` for the failure notice. Never a backup file. */
async function recordFailure(ctx: RunContext, component: string, error: Error): Promise<void> {
  const record: ComponentError = {
    target: ctx.target,
    backupId: ctx.backupId,
    component,
    error: { name: error.name, message: error.message },
    failedAt: new Date().toISOString(),
  };
  await putJson(
    ctx.s3,
    ctx.bucket,
    resultKey(ctx.target, ctx.backupId, `${component}.error`),
    record,
    2,
    PENDING_TAGGING,
  ).catch((e: unknown) => ctx.logger.warn('could not record the failure in S3', { error: String(e) }));
}
