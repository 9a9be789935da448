/**
 * The runner's environment contract: what the ECS task definition (or the local mode) sets.
 * Credentials arrive as variables injected from Secrets Manager and are never logged.
 */
import { z } from 'zod';
import { BackupIdSchema, RestoreIdSchema } from '../../../core/backup/layout.js';
import { formatPath } from '../../../core/config/load.js';
import { canonicalHostPort, hasUserinfo, targetName, userinfoMessage } from '../../../core/config/schema.js';
import { RunnerConfigError } from '../../../core/errors.js';
import { Neo4jDatabaseNameSchema, RestoreDatabaseNameSchema } from '../../../core/neo4j-names.js';
import { registerSecretsFromEnv } from '../../../core/redact.js';

const bool = z
  .enum(['true', 'false', '1', '0'], { error: 'must be "true" or "false"' })
  .transform((v) => v === 'true' || v === '1');
const port = z.coerce.number({ error: 'must be a port number' }).int().min(1).max(65535);
const positiveInt = z.coerce.number({ error: 'must be a whole number' }).int().positive();

export const CommonEnvSchema = z.object({
  TARGET: targetName,
  BACKUP_ID: BackupIdSchema,
  BACKUP_BUCKET: z.string().min(3, 'must name the backup bucket'),
  AWS_REGION: z.string().optional(),
  /** Set only for a non-AWS S3 endpoint (the local mode). */
  S3_ENDPOINT: z
    .url({ error: 'must be a URL such as http://127.0.0.1:9000' })
    .refine(
      (u) => !hasUserinfo(u),
      userinfoMessage('S3 credentials come from the AWS_* variables or the task role'),
    )
    .optional(),
  S3_FORCE_PATH_STYLE: bool.default(false),
  /** First multipart part size in MiB (memory is about this times S3_UPLOAD_CONCURRENCY + 1). */
  S3_PART_SIZE_MIB: positiveInt.min(5, 'must be at least 5 (S3 minimum part size)').default(8),
  S3_UPLOAD_CONCURRENCY: positiveInt.max(16).default(4),
  /** Bounds of every S3 request (core/s3/client.ts RequestBounds): connect, inactivity, one attempt in all. */
  S3_CONNECT_TIMEOUT_MS: positiveInt.default(5_000),
  S3_SOCKET_TIMEOUT_MS: positiveInt.default(60_000),
  S3_REQUEST_TIMEOUT_MS: positiveInt.default(600_000),
  /** Attempts per S3 request, the first included (the SDK's backoff between them). */
  S3_MAX_ATTEMPTS: positiveInt.max(20).default(5),
});

export const PostgresEnvSchema = CommonEnvSchema.extend({
  PGHOST: z.string().min(1),
  PGPORT: port.default(5432),
  PGDATABASE: z.string().min(1).default('prefect'),
  PGUSER: z.string().min(1),
  PGPASSWORD: z.string().min(1, 'must be set (inject it from Secrets Manager)'),
  /** Folder with pg_dump / pg_restore; PATH is used when unset. */
  PG_BINDIR: z.string().optional(),
  /**
   * TLS of every connection (the target's postgres.tls; core/readiness/postgres-tls.ts
   * postgresTlsFromEnv reads them): libpq's PGSSLMODE (disable, require, verify-full; unset is
   * disable) and PGSSLROOTCERT (the CA bundle file), or PG_TLS_CA_PEM (the bundle's text, from a secret).
   */
  PGSSLMODE: z.enum(['disable', 'require', 'verify-full']).optional(),
  PGSSLROOTCERT: z.string().optional(),
  PG_TLS_CA_PEM: z.string().optional(),
  /**
   * pg_dump --compress. Default "1" (gzip level 1): pg_dump's compression is single-threaded and is
   * what limits a backup, and level 1 runs about twice as fast as pg_dump's default (6) for a dump
   * about 7 % larger on Prefect-like data (README, Benchmarks). With pg_dump 16 or newer, "zstd" or "lz4" are faster still.
   */
  PG_DUMP_COMPRESS: z
    .string()
    .regex(
      /^(\d|(gzip|lz4|zstd|none)(:\d{1,2})?)$/,
      'must be a pg_dump --compress value such as "1", "6", "zstd:3" or "none"',
    )
    .default('1'),
});

export const Neo4jEnvSchema = CommonEnvSchema.extend({
  NEO4J_EDITION: z.enum(['community', 'enterprise']),
  NEO4J_DATABASES: z
    .string()
    .default('neo4j,system')
    .transform((s) =>
      s
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean),
    )
    .pipe(
      z
        .array(Neo4jDatabaseNameSchema)
        .min(1)
        // As neo4j.databases: a database named twice would be dumped twice into one key at once.
        .superRefine((dbs, ctx) => {
          const twice = dbs.find((db, i) => dbs.indexOf(db) !== i);
          if (twice !== undefined)
            ctx.addIssue({ code: 'custom', message: `must not name a database twice ("${twice}")` });
        }),
    ),
  /** The neo4j-admin executable (of the server's exact version). */
  NEO4J_ADMIN: z.string().min(1).default('neo4j-admin'),
  /**
   * Enterprise: the backup listeners (server.backup.listen_address), host:port, comma-separated for
   * a cluster's members, tried in order by `neo4j-admin database backup --from=a:6362,b:6362`
   * (Operations Manual, "Back up an online database", Targeting multiple servers).
   */
  NEO4J_BACKUP_FROM: z
    .string()
    .refine(
      (s) => s.split(',').every((member) => canonicalHostPort(member) !== undefined),
      'must be host:port, or a comma-separated list of them, such as a.internal:6362,b.internal:6362 (IPv6 in brackets: [fd00::1]:6362)',
    )
    .refine(
      (s) => new Set(s.split(',').map((m) => canonicalHostPort(m) ?? m)).size === s.split(',').length,
      'must not name a member twice (also not in another spelling)',
    )
    .transform((s) => s.split(','))
    .optional(),
  /**
   * Enterprise: where a differential backup finds its chain (neo4j.backupChain.base): `previous-backup`
   * fetches the previous complete backup's chain from the bucket (verified against its manifest);
   * `none` uses whatever NEO4J_BACKUP_DIR holds (an EFS mount keeps a chain, a task's disk does not).
   * The task definition passes the configuration's value (default there: `previous-backup`); the
   * runner's own default is `none`, the behaviour of a runner started by hand on a kept folder.
   */
  NEO4J_BACKUP_CHAIN_BASE: z.enum(['previous-backup', 'none']).default('none'),
  /** Enterprise: a full backup is taken once the base chain holds this many differentials (neo4j.backupChain.maxDifferentials). */
  NEO4J_BACKUP_MAX_DIFFERENTIALS: z.coerce.number().int().min(0).max(100).default(6),
  /** Enterprise: where the backup chain is kept between runs (an EFS mount keeps differentials possible). */
  NEO4J_BACKUP_DIR: z.string().default('/var/lib/neo4j-backups'),
  NEO4J_BACKUP_TYPE: z.enum(['AUTO', 'FULL', 'DIFF']).default('AUTO'),
  NEO4J_INCLUDE_METADATA: z.enum(['all', 'none', 'users', 'roles']).default('all'),
  /** Enterprise: fold the chain into one full backup after each run (neo4j-admin database aggregate-backup). */
  NEO4J_AGGREGATE: bool.default(false),
  /**
   * Community: count the stopped store with a read-only server on it before dumping it, so the
   * manifest's counts describe exactly the dump (counts_basis `verified`). `false` keeps CountNeo4j's
   * Bolt counts (`unknown`) and saves the counting server's start (README, "Community DBMS handling").
   */
  NEO4J_COUNT_OFFLINE: bool.default(true),
  /** Community: the installation whose `bin/neo4j console` runs the counting server (the image's own). */
  NEO4J_HOME: z.string().regex(/^\//, 'must be an absolute path').default('/var/lib/neo4j'),
  /** Community: the DBMS's configuration folder (its neo4j.conf names the store); default `$NEO4J_HOME/conf`. */
  NEO4J_CONF: z.string().regex(/^\//, 'must be an absolute path').optional(),
  /** Community: heap and page cache of the counting server. */
  NEO4J_COUNT_HEAP: z
    .string()
    .regex(/^\d+[kmg]$/, 'must be a size such as "512m" or "1g"')
    .default('512m'),
  NEO4J_COUNT_PAGECACHE: z
    .string()
    .regex(/^\d+[kmg]$/, 'must be a size such as "128m"')
    .default('128m'),
  /** Community: scratch folder of the counting server (its configuration, logs). */
  NEO4J_COUNT_WORK_DIR: z
    .string()
    .regex(/^\//, 'must be an absolute path')
    .default('/tmp/infrahub-neo4j-count'),
  /**
   * Community (neo4j.dumpFrom): `copy` copies the stopped store to NEO4J_COPY_DIR, starts the DBMS
   * again through its ECS service (DBMS_CLUSTER, DBMS_SERVICE, DBMS_DESIRED_COUNT) and dumps the
   * copy; `store` dumps in place with the DBMS stopped throughout (the default when unset).
   */
  NEO4J_DUMP_FROM: z.enum(['copy', 'store']).default('store'),
  /** Community, copy: the folder on the task's disk that holds the copy (removed after the dump). */
  NEO4J_COPY_DIR: z.string().regex(/^\//, 'must be an absolute path').default('/tmp/infrahub-neo4j-copy'),
  /** Community, copy: bytes that must stay free on the task's disk beyond the store's size, else the store is dumped in place (default 1 GiB). */
  NEO4J_COPY_HEADROOM_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(1024 ** 3),
  /** Community, copy: the DBMS's ECS cluster and service (neo4j.dbms), set by the task definition. */
  DBMS_CLUSTER: z.string().min(1).optional(),
  DBMS_SERVICE: z.string().min(1).optional(),
  /** Community, copy: the service's count before StopDbms (the DumpNeo4j state sets it from $.dbmsState). */
  DBMS_DESIRED_COUNT: z.coerce.number().int().min(0).max(10).optional(),
}).superRefine((env, ctx) => {
  if (env.NEO4J_EDITION === 'enterprise' && !env.NEO4J_BACKUP_FROM) {
    ctx.addIssue({
      code: 'custom',
      path: ['NEO4J_BACKUP_FROM'],
      message: 'is required when NEO4J_EDITION is "enterprise"',
    });
  }
  if (env.NEO4J_EDITION === 'community' && env.NEO4J_DUMP_FROM === 'copy')
    for (const key of ['DBMS_CLUSTER', 'DBMS_SERVICE', 'DBMS_DESIRED_COUNT'] as const)
      if (env[key] === undefined)
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message:
            'is required when NEO4J_DUMP_FROM is "copy": the runner starts the DBMS again before the dump (the task definition sets DBMS_CLUSTER and DBMS_SERVICE, the DumpNeo4j state DBMS_DESIRED_COUNT)',
        });
});

/**
 * Bolt TLS of every connection to the target's Neo4j (neo4j.tls; core/readiness/neo4j-tls.ts
 * neo4jTlsFromEnv reads them and checks NEO4J_URI's scheme against the mode before connecting):
 * NEO4J_TLS_MODE (unset is verify-full, the configuration's default; `disable` is the explicit
 * statement that credentials may travel unencrypted), and for verify-full NEO4J_TLS_CA (a CA bundle
 * file in the image) or NEO4J_TLS_CA_PEM (the bundle's text, from a secret); neither: the system
 * trust store.
 */
const neo4jTlsEnv = {
  NEO4J_TLS_MODE: z
    .enum(['disable', 'require', 'verify-full'], {
      error: 'must be "disable", "require" or "verify-full" (neo4j.tls.mode)',
    })
    .optional(),
  NEO4J_TLS_CA: z.string().regex(/^\//, 'must be an absolute path').optional(),
  NEO4J_TLS_CA_PEM: z.string().optional(),
};

export const Neo4jCountsEnvSchema = CommonEnvSchema.extend({
  /** bolt+s:// (verify-full), bolt+ssc:// (require) or bolt:// (disable), agreeing with NEO4J_TLS_MODE. */
  NEO4J_URI: z
    .string()
    .regex(/^(bolt|neo4j)(\+s|\+ssc)?:\/\/.+/, 'must be a bolt:// or neo4j:// URI')
    .refine((u) => !hasUserinfo(u), userinfoMessage('the credentials are NEO4J_USERNAME and NEO4J_PASSWORD')),
  NEO4J_USERNAME: z.string().min(1).default('neo4j'),
  NEO4J_PASSWORD: z.string().min(1, 'must be set (inject it from Secrets Manager)'),
  NEO4J_DATABASES: Neo4jEnvSchema.shape.NEO4J_DATABASES,
  ...neo4jTlsEnv,
});

export const ArtifactsEnvSchema = CommonEnvSchema.extend({
  ARTIFACTS_SOURCE: z.enum(['s3', 'path']),
  ARTIFACTS_BUCKET: z.string().optional(),
  ARTIFACTS_PREFIX: z.string().default(''),
  ARTIFACTS_PATH: z.string().optional(),
  ARTIFACTS_CONCURRENCY: positiveInt.max(32).default(8),
}).superRefine((env, ctx) => {
  if (env.ARTIFACTS_SOURCE === 's3' && !env.ARTIFACTS_BUCKET) {
    ctx.addIssue({
      code: 'custom',
      path: ['ARTIFACTS_BUCKET'],
      message: 'is required when ARTIFACTS_SOURCE is "s3"',
    });
  }
  if (env.ARTIFACTS_SOURCE === 'path' && !env.ARTIFACTS_PATH?.startsWith('/')) {
    ctx.addIssue({
      code: 'custom',
      path: ['ARTIFACTS_PATH'],
      message: 'must be an absolute path when ARTIFACTS_SOURCE is "path"',
    });
  }
});

/** Every restore step: which backup, which restore (its reports go under `.restores/`), where to stage. */
export const RestoreCommonEnvSchema = CommonEnvSchema.extend({
  RESTORE_ID: RestoreIdSchema,
  /**
   * A refresh (core/restore/plan.ts `sourceTarget`): the target whose backup BACKUP_ID is, read from
   * `<SOURCE_TARGET>/<BACKUP_ID>/`; TARGET is still the target restored into. Unset: TARGET's own.
   */
  SOURCE_TARGET: targetName.optional(),
  /**
   * A refresh: the new deployment id the graph gets when the destination had none before the load
   * (the plan's random UUID; deployment-id.ts).
   */
  DEPLOYMENT_ID_FALLBACK: z.uuid({ error: 'must be a UUID' }).optional(),
  /** Scratch space for downloads that a tool reads from a folder (Enterprise chains) and for drills. */
  RESTORE_WORK_DIR: z.string().regex(/^\//, 'must be an absolute path').default('/tmp/infrahub-restore'),
});

export const RestorePostgresEnvSchema = RestoreCommonEnvSchema.extend(
  PostgresEnvSchema.pick({
    PGHOST: true,
    PGPORT: true,
    PGDATABASE: true,
    PGUSER: true,
    PGPASSWORD: true,
    PG_BINDIR: true,
    PGSSLMODE: true,
    PGSSLROOTCERT: true,
    PG_TLS_CA_PEM: true,
  }).shape,
);

export const RestoreNeo4jEnvSchema = RestoreCommonEnvSchema.extend({
  NEO4J_EDITION: z.enum(['community', 'enterprise']),
  NEO4J_ADMIN: z.string().min(1).default('neo4j-admin'),
  NEO4J_URI: Neo4jCountsEnvSchema.shape.NEO4J_URI.optional(),
  NEO4J_USERNAME: z.string().min(1).default('neo4j'),
  NEO4J_PASSWORD: z.string().optional(),
  ...neo4jTlsEnv,
  /** Enterprise: how long a seeded database may take to be online on every member (seconds; config neo4j.seed.onlineTimeoutSeconds). */
  NEO4J_SEED_ONLINE_TIMEOUT_SECONDS: positiveInt.default(3600),
  /** Enterprise in-place: seed and validate a throwaway database first (config neo4j.seed.rehearse). */
  NEO4J_SEED_REHEARSE: bool.default(true),
  RESTORE_MODE: z.enum(['in-place', 'new-database']).default('in-place'),
  NEW_DATABASE_NAME: RestoreDatabaseNameSchema.optional(),
  /**
   * Community: `keep` (default) leaves the target's `system` database (users, passwords, roles); `restore`
   * loads the backup's `system.dump` too. From the restore input's `neo4jSystem` (core/restore/plan.ts).
   */
  NEO4J_SYSTEM: z.enum(['keep', 'restore']).default('keep'),
  /**
   * Community (config neo4j.restoreLoad): `staged` (default) loads each dump beside the target's store
   * and swaps them in once all loaded; `in-place` loads over the target's databases once every file
   * is verified (restore-neo4j.ts restoreNeo4jCommunity).
   */
  NEO4J_RESTORE_LOAD: z.enum(['staged', 'in-place']).default('staged'),
  /** new-database: the alias switched to the restored database (Infrahub connects through it). */
  NEO4J_ALIAS: RestoreDatabaseNameSchema.default('infrahub'),
  /**
   * Community refresh: the destination's deployment id is read from its stopped store before the
   * load by a read-only server of this installation (neo4j-counts.ts queryStoreOffline), with the
   * DBMS's configuration folder and the counting server's memory (the backup's variables).
   */
  NEO4J_HOME: Neo4jEnvSchema.shape.NEO4J_HOME,
  NEO4J_CONF: Neo4jEnvSchema.shape.NEO4J_CONF,
  NEO4J_COUNT_HEAP: Neo4jEnvSchema.shape.NEO4J_COUNT_HEAP,
  NEO4J_COUNT_PAGECACHE: Neo4jEnvSchema.shape.NEO4J_COUNT_PAGECACHE,
}).superRefine((env, ctx) => {
  if (env.NEO4J_EDITION === 'enterprise') {
    for (const name of ['NEO4J_URI', 'NEO4J_PASSWORD'] as const) {
      if (!env[name])
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message:
            'is required to restore Neo4j Enterprise (the database is seeded, waited for and validated over Bolt)',
        });
    }
  }
  if (env.RESTORE_MODE === 'new-database' && !env.NEW_DATABASE_NAME) {
    ctx.addIssue({
      code: 'custom',
      path: ['NEW_DATABASE_NAME'],
      message: 'is required when RESTORE_MODE is "new-database"',
    });
  }
});

export const ValidateNeo4jEnvSchema = RestoreCommonEnvSchema.extend({
  NEO4J_URI: Neo4jCountsEnvSchema.shape.NEO4J_URI,
  NEO4J_USERNAME: z.string().min(1).default('neo4j'),
  NEO4J_PASSWORD: z.string().min(1, 'must be set (inject it from Secrets Manager)'),
  ...neo4jTlsEnv,
  /** new-database: the backup's one user database was restored under this name (its counts are that database's). */
  NEW_DATABASE_NAME: z.string().optional(),
  /** `restore`: the backup's users apply now; an authentication failure says so (restore-neo4j.ts validateGraph). */
  NEO4J_SYSTEM: z.enum(['keep', 'restore']).default('keep'),
});

export const RestoreArtifactsEnvSchema = RestoreCommonEnvSchema.extend({
  ARTIFACTS_SOURCE: z.enum(['s3', 'path']),
  ARTIFACTS_BUCKET: z.string().optional(),
  ARTIFACTS_PREFIX: z.string().default(''),
  ARTIFACTS_PATH: z.string().regex(/^\//, 'must be an absolute path').optional(),
  ARTIFACTS_CONCURRENCY: positiveInt.max(32).default(8),
}).superRefine((env, ctx) => {
  if (env.ARTIFACTS_SOURCE === 's3' && !env.ARTIFACTS_BUCKET)
    ctx.addIssue({
      code: 'custom',
      path: ['ARTIFACTS_BUCKET'],
      message: 'is required when ARTIFACTS_SOURCE is "s3"',
    });
  if (env.ARTIFACTS_SOURCE === 'path' && !env.ARTIFACTS_PATH)
    ctx.addIssue({
      code: 'custom',
      path: ['ARTIFACTS_PATH'],
      message: 'is required when ARTIFACTS_SOURCE is "path"',
    });
});

export const DrillEnvSchema = RestoreCommonEnvSchema.extend({
  PG_BINDIR: z.string().optional(),
  /** Only when the runner runs as root (not in the image): the account for the disposable PostgreSQL. */
  DRILL_PG_USER: z.string().optional(),
  /** The Neo4j server the image carries (`<home>/bin/neo4j console` runs the disposable instance). */
  NEO4J_HOME: z.string().regex(/^\//, 'must be an absolute path').default('/var/lib/neo4j'),
  NEO4J_ADMIN: z.string().min(1).default('neo4j-admin'),
  DRILL_NEO4J_HEAP: z
    .string()
    .regex(/^\d+[kmg]$/, 'must be a size such as "1g" or "512m"')
    .default('1g'),
  DRILL_NEO4J_PAGECACHE: z
    .string()
    .regex(/^\d+[kmg]$/, 'must be a size such as "512m"')
    .default('512m'),
  /** The edition of the image's Neo4j (the drill task definition sets it, one per image). */
  NEO4J_EDITION: z.enum(['community', 'enterprise']).default('community'),
  /**
   * Enterprise, and required there: the licence agreement the disposable server is started under
   * (config `neo4j.licence`; the drill plan passes it per target). Accepted with `neo4j-admin server
   * license --accept-commercial|--accept-evaluation` before the server starts (scratch.ts).
   */
  NEO4J_LICENCE: z.enum(['commercial', 'evaluation']).optional(),
}).superRefine((env, ctx) => {
  if (env.NEO4J_EDITION === 'enterprise' && !env.NEO4J_LICENCE)
    ctx.addIssue({
      code: 'custom',
      path: ['NEO4J_LICENCE'],
      message:
        'is required when NEO4J_EDITION is "enterprise": "commercial" or "evaluation" (config neo4j.licence); Neo4j 5.4+ refuses to start Enterprise until one is accepted',
    });
});

export type CommonEnv = z.output<typeof CommonEnvSchema>;
export type RestoreCommonEnv = z.output<typeof RestoreCommonEnvSchema>;
export type PostgresEnv = z.output<typeof PostgresEnvSchema>;
export type Neo4jEnv = z.output<typeof Neo4jEnvSchema>;
export type Neo4jCountsEnv = z.output<typeof Neo4jCountsEnvSchema>;
export type ArtifactsEnv = z.output<typeof ArtifactsEnvSchema>;

/**
 * Parses the environment; a missing or bad variable fails with its name, never its value. The
 * credentials it carries (PGPASSWORD, NEO4J_PASSWORD, AWS credentials: every variable core/redact.ts's
 * SECRET_ENV_NAME matches) are registered for redaction first, so no error record, log line or
 * standard error of the runner can quote them, whatever tool or server echoes them.
 */
export function parseEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.output<T> {
  registerSecretsFromEnv(env);
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new RunnerConfigError(
    result.error.issues.map((issue) => {
      const name = formatPath(issue.path);
      if (issue.code === 'invalid_type' && /received undefined/.test(issue.message))
        return `${name}: is required`;
      return `${name}: ${issue.message}`;
    }),
  );
}
