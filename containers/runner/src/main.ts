/**
 * The runner's entrypoint: `runner <subcommand>`, one subcommand per component. Configuration comes
 * from the environment only (see env.ts); the result is written to S3 as `.runner/<component>.json`
 * and summarised on one stdout line. Exit codes tell the failure class (see EXIT_CODES).
 */
import { restoreStepKey, resultKey } from '../../../core/backup/layout.js';
import { type Manifest, readManifest } from '../../../core/backup/manifest.js';
import type { ComponentError, ComponentResult } from '../../../core/backup/results.js';
import { PENDING_TAGGING } from '../../../core/backup/retention.js';
import {
  appendSentence,
  DatabaseUnreachableError,
  ErrorNames,
  InterruptedError,
  ManifestError,
  RunnerConfigError,
  UnexpectedError,
} from '../../../core/errors.js';
import { createLogger, type Logger } from '../../../core/log.js';
import { neo4jTlsFromEnv } from '../../../core/readiness/neo4j-tls.js';
import { postgresTlsFromEnv } from '../../../core/readiness/postgres-tls.js';
import { redactError } from '../../../core/redact.js';
import {
  type RestoreStep,
  type RestoreStepError,
  type RestoreStepResult,
  RestoreSteps,
} from '../../../core/restore/steps.js';
import type { BackupSubcommand } from '../../../core/runner-subcommands.js';
import { createS3Client } from '../../../core/s3/client.js';
import { scratchSpaceError } from '../../../core/s3/download.js';
import { putJson } from '../../../core/s3/objects.js';
import { abortActiveUploads } from '../../../core/s3/upload-stream.js';
import { stopRunningTools } from '../../../core/tools/run-tool.js';
import type { RunContext } from './context.js';
import {
  ArtifactsEnvSchema,
  type CommonEnv,
  CommonEnvSchema,
  DrillEnvSchema,
  Neo4jCountsEnvSchema,
  Neo4jEnvSchema,
  PostgresEnvSchema,
  parseEnv,
  RestoreArtifactsEnvSchema,
  type RestoreCommonEnv,
  RestoreCommonEnvSchema,
  RestoreNeo4jEnvSchema,
  RestorePostgresEnvSchema,
  ValidateNeo4jEnvSchema,
} from './env.js';
import {
  noteTargetState,
  requestStop,
  sectionsSettled,
  stopOutcome,
  uninterruptible,
  withTargetState,
} from './stop-guard.js';
import { startTaskToken, taskTokenArgs, taskTokenSession } from './task-token.js';

export const SUBCOMMANDS = {
  'backup-postgres': 'task-manager-db',
  'backup-neo4j': 'database',
  'count-neo4j': 'database-counts',
  'backup-artifacts': 'artifacts',
} as const satisfies Record<BackupSubcommand, string>;
export type Subcommand = keyof typeof SUBCOMMANDS;

/**
 * The target's PostgreSQL connection from the runner's parsed environment (PGHOST, PGPORT, PGUSER,
 * PGPASSWORD, PGDATABASE) and its TLS settings (PGSSLMODE / PGSSLROOTCERT / PG_TLS_CA_PEM, set by the
 * task definition from `postgres.tls`).
 */
function postgresConnection(
  e: { PGHOST: string; PGPORT: number; PGUSER: string; PGPASSWORD: string; PGDATABASE: string },
  env: NodeJS.ProcessEnv,
) {
  return {
    host: e.PGHOST,
    port: e.PGPORT,
    user: e.PGUSER,
    password: e.PGPASSWORD,
    database: e.PGDATABASE,
    tls: postgresTlsFromEnv(env),
  };
}
/**
 * The target's Neo4j Bolt connection from the runner's parsed environment (NEO4J_URI,
 * NEO4J_USERNAME, NEO4J_PASSWORD) and its TLS (NEO4J_TLS_MODE / NEO4J_TLS_CA / NEO4J_TLS_CA_PEM, set by
 * the task definition from `neo4j.tls`), checked before any connection: a plain bolt:// URI without
 * NEO4J_TLS_MODE=disable is refused (RunnerConfigError), never sent the credentials.
 */
function neo4jConnection(
  e: { NEO4J_URI: string; NEO4J_USERNAME: string; NEO4J_PASSWORD: string },
  env: NodeJS.ProcessEnv,
) {
  return {
    uri: e.NEO4J_URI,
    username: e.NEO4J_USERNAME,
    password: e.NEO4J_PASSWORD,
    tls: neo4jTlsFromEnv(env, e.NEO4J_URI),
  };
}
/** Restore steps (core/restore/steps.ts): they read a backup and report to `.restores/TARGET/RESTORE_ID/<step>.json`. */
const isRestoreStep = (s: string): s is RestoreStep => (RestoreSteps as readonly string[]).includes(s);

/**
 * The DBMS's ECS service scaled back to its count by the runner itself, through the same step as the
 * state machine's StartDbms (core/ecs/dbms.ts dbmsStep; the task role may UpdateService and
 * DescribeServices on that one service). The endpoint is the SDK's: AWS_ENDPOINT_URL_ECS in local mode.
 * The wait for the service's task ends (rejects) once `stopWaiting` fires: the dump is done, and the
 * state machine's StartDbms waits for the rest; the runner adds no time of its own.
 */
async function startDbmsFromRunner(
  e: { TARGET: string; DBMS_CLUSTER?: string; DBMS_SERVICE?: string; DBMS_DESIRED_COUNT?: number },
  logger: Logger,
  stopWaiting: AbortSignal,
) {
  const clock = {
    now: () => Date.now(),
    sleep: (ms: number) =>
      new Promise<void>((resolve, reject) => {
        if (stopWaiting.aborted) return reject(new Error('the dump ended before the DBMS ran'));
        const timer = setTimeout(resolve, ms);
        stopWaiting.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            reject(new Error('the dump ended before the DBMS ran'));
          },
          { once: true },
        );
      }),
  };
  const { ECSClient } = await import('@aws-sdk/client-ecs');
  const { dbmsStep } = await import('../../../core/ecs/dbms.js');
  const { boundedClientOptions, FUNCTION_REQUEST_BOUNDS } = await import('../../../core/s3/client.js');
  const ecs = new ECSClient({
    ...boundedClientOptions(FUNCTION_REQUEST_BOUNDS),
    ...(process.env.AWS_REGION ? { region: process.env.AWS_REGION } : {}),
  });
  try {
    return await dbmsStep(
      {
        action: 'start',
        target: e.TARGET,
        cluster: e.DBMS_CLUSTER,
        service: e.DBMS_SERVICE,
        desiredCount: e.DBMS_DESIRED_COUNT,
      },
      { ecs, logger, maxWaitSeconds: 3600, pollIntervalSeconds: 2, clock },
    );
  } finally {
    ecs.destroy();
  }
}

/**
 * Why a Community backup with NEO4J_DUMP_FROM=copy dumps in place when DBMS_DESIRED_COUNT is 0: the
 * DBMS's service had no task before the backup (StopDbms found 0), so there is nothing to start again
 * and a copy would only cost its time (and record a start that never happened).
 */
export const DBMS_NOT_RUNNING =
  'the DBMS was not running before the backup (its service count was 0): nothing to start again, dumped in place';

/** Exit codes by error name; the state machine and the CLI read them. 1 is anything unexpected. */
export const EXIT_CODES: Record<string, number> = {
  [ErrorNames.RunnerConfigError]: 2,
  [ErrorNames.ToolFailed]: 3,
  [ErrorNames.IncompatibleTool]: 4,
  [ErrorNames.Neo4jDatabaseInUse]: 5,
  [ErrorNames.StorageError]: 6,
  [ErrorNames.DatabaseUnreachable]: 7,
  [ErrorNames.RestoreValidation]: 8,
  [ErrorNames.ManifestError]: 9,
  [ErrorNames.UnsupportedArtifact]: 10,
  [ErrorNames.Interrupted]: 11,
  [ErrorNames.Neo4jBackupDegraded]: 12,
  [ErrorNames.Stalled]: 13,
  [ErrorNames.TaskAbandoned]: 14,
  [ErrorNames.HeartbeatNotAccepted]: 15,
  [ErrorNames.BackupArchived]: 16,
  [ErrorNames.Neo4jStoreCopy]: 17,
  [ErrorNames.DumpFormat]: 18,
  [ErrorNames.InsufficientScratchSpace]: 19,
  [ErrorNames.IncompatibleBackup]: 20,
  [ErrorNames.RestoreInProgress]: 21,
  [ErrorNames.RestoreBlocked]: 22,
  [ErrorNames.Neo4jStoreSwap]: 23,
  [ErrorNames.Neo4jStoreSwapUndone]: 24,
};

const USAGE = `usage: runner <subcommand>

subcommands:
  backup-postgres    pg_dump -Fc of the task-manager database, streamed to S3, with row counts
  backup-neo4j       Neo4j: Community dump (DBMS stopped) or Enterprise online backup, streamed to S3
  count-neo4j        node and relationship counts per database, over Bolt
  backup-artifacts   artifact storage (S3 bucket or mounted path) copied into the backup

  restore-postgres   pg_restore of the backup's dump (streamed, SHA-256 verified) into a new database, row counts compared, then swapped in
  restore-neo4j      Community (DBMS stopped): each dump loaded under a staging name while it downloads, swapped in once every SHA-256 verified; Enterprise: seeded from the bucket
  validate-neo4j     node and relationship counts over Bolt compared with those of the backup
  restore-artifacts  the backup's artifacts copied back into artifact storage (checksums verified)
  drill              restore into disposable PostgreSQL and Neo4j inside the task, validate, tear down

All configuration is read from environment variables (containers/runner/README.md).`;

/** The S3 client every subcommand uses (a local endpoint and path-style addressing in local mode). */
function s3Client(env: CommonEnv) {
  return createS3Client({
    region: env.AWS_REGION,
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: env.S3_FORCE_PATH_STYLE,
    connectionTimeoutMs: env.S3_CONNECT_TIMEOUT_MS,
    socketTimeoutMs: env.S3_SOCKET_TIMEOUT_MS,
    requestTimeoutMs: env.S3_REQUEST_TIMEOUT_MS,
    maxAttempts: env.S3_MAX_ATTEMPTS,
  });
}

function context(env: CommonEnv, logger: Logger): RunContext {
  return {
    s3: s3Client(env),
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
      const result = await backupPostgres(ctx, postgresConnection(e, env), {
        binDir: e.PG_BINDIR,
        compress: e.PG_DUMP_COMPRESS,
      });
      return { ctx, result };
    }
    case 'backup-neo4j': {
      const { backupNeo4jCommunity, backupNeo4jEnterprise } = await import('./components/neo4j.js');
      const e = parseEnv(Neo4jEnvSchema, env);
      const ctx = context(e, logger);
      const admin = { path: e.NEO4J_ADMIN, env };
      if (e.NEO4J_EDITION === 'community') {
        const offline = e.NEO4J_COUNT_OFFLINE
          ? {
              home: e.NEO4J_HOME,
              ...(e.NEO4J_CONF ? { conf: e.NEO4J_CONF } : {}),
              workDir: e.NEO4J_COUNT_WORK_DIR,
              memory: { heap: e.NEO4J_COUNT_HEAP, pageCache: e.NEO4J_COUNT_PAGECACHE },
            }
          : (false as const);
        const copy =
          e.NEO4J_DUMP_FROM !== 'copy'
            ? undefined
            : e.DBMS_DESIRED_COUNT === 0
              ? { inPlace: DBMS_NOT_RUNNING }
              : {
                  home: e.NEO4J_HOME,
                  ...(e.NEO4J_CONF ? { conf: e.NEO4J_CONF } : {}),
                  dir: e.NEO4J_COPY_DIR,
                  headroomBytes: e.NEO4J_COPY_HEADROOM_BYTES,
                  startDbms: (stopWaiting: AbortSignal) => startDbmsFromRunner(e, logger, stopWaiting),
                };
        return { ctx, result: await backupNeo4jCommunity(ctx, admin, e.NEO4J_DATABASES, offline, copy) };
      }
      const result = await backupNeo4jEnterprise(ctx, admin, e.NEO4J_DATABASES, {
        from: e.NEO4J_BACKUP_FROM as string[],
        backupDir: e.NEO4J_BACKUP_DIR,
        type: e.NEO4J_BACKUP_TYPE,
        includeMetadata: e.NEO4J_INCLUDE_METADATA,
        aggregate: e.NEO4J_AGGREGATE,
        chain: { base: e.NEO4J_BACKUP_CHAIN_BASE, maxDifferentials: e.NEO4J_BACKUP_MAX_DIFFERENTIALS },
      });
      return { ctx, result };
    }
    case 'count-neo4j': {
      const { countGraph } = await import('./components/neo4j-counts.js');
      const e = parseEnv(Neo4jCountsEnvSchema, env);
      const ctx = context(e, logger);
      const result = await countGraph(ctx, neo4jConnection(e, env), e.NEO4J_DATABASES);
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

const KNOWN_NAMES = new Set<string>(Object.values(ErrorNames));

/**
 * Any error as one of ours, redacted: a named error stays as it is; anything else (a library's
 * TypeError, a driver's error event) becomes UnexpectedError carrying its name and message, so the
 * record, the exit code and the notice always name what happened. `origin` says where it was caught.
 */
export function runnerError(err: unknown, origin = 'main'): Error {
  const error = redactError(err);
  if (KNOWN_NAMES.has(error.name)) return error;
  // A full scratch disk anywhere (a tool's file, a download): named, with the path and what to raise.
  const full = scratchSpaceError(err, 'the scratch folder (RESTORE_WORK_DIR)');
  if (full) return redactError(full);
  return redactError(connectionLost(error) ?? new UnexpectedError(error, origin));
}

/**
 * A database driver's error for a connection the server ended or that broke, wherever it surfaced,
 * as DatabaseUnreachable: node-postgres (SQLSTATE class 08, 57P01-57P03 of a shutdown, "Connection
 * terminated"), neo4j-driver (ServiceUnavailable, SessionExpired: the Bolt connection was lost;
 * Neo4j driver manual, "Errors"). Undefined for anything else.
 */
function connectionLost(error: Error): DatabaseUnreachableError | undefined {
  const code = String((error as { code?: unknown }).code ?? '');
  const pgLost =
    /^(08|57P0[123])/.test(code) || /^Connection terminated( unexpectedly)?$/.test(error.message.trim());
  const boltLost = code === 'ServiceUnavailable' || code === 'SessionExpired';
  if (!pgLost && !boltLost) return undefined;
  const server = boltLost ? 'Neo4j' : 'PostgreSQL';
  return new DatabaseUnreachableError(
    `lost the connection to ${server}${code ? ` (${code})` : ''}: ${error.message.split('\n')[0]}`,
  );
}

/**
 * Where the last line of defence records a failure: set by main once it knows the component (or
 * restore step) and where its record goes. Unset before that: the error is printed only.
 */
let recordLastFailure: ((error: Error) => Promise<void>) | undefined;

/**
 * The last line of defence, for the runner's executable only (cli.ts): an error nothing caught
 * ('uncaughtException': an 'error' event without a listener on a stream, socket or database client;
 * 'unhandledRejection': a rejected promise nobody awaited) would otherwise end the process with
 * Node's bare stack trace, its multipart uploads open and no error record. Instead: the uploads are
 * aborted, the error is printed and recorded as a named error (runnerError), and the process exits
 * with that error's exit code. Bounded: whatever happens, the process exits within 30 s.
 * Node.js documents both events (Process events, nodejs.org/api/process.html).
 */
export function installLastResortHandlers(): void {
  const handle = (origin: 'uncaughtException' | 'unhandledRejection') => (err: unknown) => {
    // A second error while the first is being recorded (or while a stop signal is handled) changes nothing.
    if (lastResort || interruption) return;
    // What a restore step had done to its target (a swap, an in-place load) is said too.
    const error = withTargetState(runnerError(err, origin));
    const code = EXIT_CODES[error.name] ?? 1;
    // This handler owns the exit now: the subcommand, failing on the uploads it aborts, must neither
    // exit first with its own code nor print, record or report its own error (endedElsewhere; both
    // found as races in runner-faults).
    process.exitCode = code;
    console.error(`${error.name}: ${error.message}`);
    setTimeout(() => process.exit(code), 30_000).unref();
    // Like a stop: no uninterruptible section (a restore's swap, its report) begins from here on, and
    // one under way ends before the exit (a swap cut between its renames hides the target's store).
    requestStop(error);
    lastResort = (async () => {
      const sectionError = await sectionsSettled(SECTION_WAIT_MS);
      const reported = sectionError ? stopOutcome(error, sectionError) : error;
      if (reported !== error) console.error(`${reported.name}: ${reported.message}`);
      const exitCode = EXIT_CODES[reported.name] ?? code;
      process.exitCode = exitCode;
      await abortActiveUploads().catch(() => 0);
      await recordLastFailure?.(reported).catch(() => undefined);
      await taskTokenSession()
        ?.fail(reported)
        .catch(() => undefined);
      process.exit(exitCode);
      return exitCode;
    })();
  };
  process.on('uncaughtException', handle('uncaughtException'));
  process.on('unhandledRejection', handle('unhandledRejection'));
}

/**
 * Set once the last line of defence handles an error: resolves with its exit code once its handling
 * is done (it exits the process itself). A stop signal then changes nothing.
 */
let lastResort: Promise<number> | undefined;

/**
 * The ending of the work that the last line of defence or a stop signal owns, if one does: the
 * subcommand, whose own failure is then only an effect of it (uploads aborted under it), returns this
 * instead of printing, recording or reporting that failure.
 */
function endedElsewhere(): Promise<number> | undefined {
  return interruption ?? lastResort;
}

/**
 * Whether the last line of defence (an error nothing caught) or a stop signal is ending the process:
 * they exit it themselves, with their own code, once their uploads are aborted and their error
 * recorded; the subcommand's own result (an error from those aborted uploads) must not exit first.
 */
export function exitHandledElsewhere(): boolean {
  return endedElsewhere() !== undefined;
}

/** Set once a stop signal arrived: resolves with the exit code once the signal's handling is done. */
let interruption: Promise<number> | undefined;

/** How long the runner takes at most from a stop signal to its exit, in ms: below the task's stopTimeout (60 s, backup-runner.ts). */
export const INTERRUPT_BOUND_MS = 30_000;

/**
 * How long a stop waits at most for an uninterruptible section (stop-guard.ts: a swap's renames, a
 * step's report) to end, in ms: what is left of INTERRUPT_BOUND_MS records the outcome and reports
 * it (SendTaskFailure alone may take FINAL_CALL_TIMEOUT_MS, 15 s). A section hung longer (a hung
 * volume, a report PUT that never returns) is reported as unfinished instead of not at all.
 */
export const SECTION_WAIT_MS = 10_000;

/**
 * ECS stops a task (Step Functions' timeout or abort, StopTask, an operator) by sending SIGTERM to
 * the container's main process, then SIGKILL once the container's `stopTimeout` has passed (ECS
 * docs, "ContainerDefinition stopTimeout": 30 s by default, 120 s at most on Fargate; the runner's
 * task definitions set 60 s). Node.js ends on SIGTERM at once by default (exit 143): the tools kept
 * running as `<defunct>` children, the multipart upload stayed open, and no error record was left.
 * With these handlers, SIGTERM or SIGINT: ends every tool (SIGTERM to its process group, SIGKILL
 * after 5 s: stopRunningTools), aborts every open multipart upload, records `Interrupted` (naming
 * the signal) where the component's or restore step's failure goes, prints it as the last line of
 * standard error, and exits with EXIT_CODES.Interrupted (11), within INTERRUPT_BOUND_MS whatever
 * happens. A runner killed with SIGKILL (ECS after stopTimeout) can do none of this: its upload stays
 * open until the bucket's lifecycle rule aborts incomplete multipart uploads (after 2 days,
 * infra/constructs/backup-bucket.ts). For the runner's executable only (cli.ts).
 */
export function installStopSignalHandlers(): void {
  const onSignal = (signal: NodeJS.Signals) => stopWork(new InterruptedError(signal));
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/**
 * Ends the work from outside it, as a stop signal does: a signal (Interrupted), or the task token's
 * watch (task-token.ts: Stalled when no data moved for longer than the heartbeat allows,
 * TaskAbandoned when Step Functions refused a heartbeat, HeartbeatNotAccepted when it accepted none
 * for 3/4 of HeartbeatSeconds). Every tool is ended, every open upload aborted, the error recorded
 * where the component's failure goes, reported through the task token (SendTaskFailure, one attempt
 * within FINAL_CALL_TIMEOUT_MS; nothing for TaskAbandoned, whose token is dead), printed, and the
 * process exits with its exit code, within INTERRUPT_BOUND_MS whatever happens. The first call wins.
 */
export function stopWork(error: Error): void {
  if (interruption) return; // a second stop changes nothing: the first one's handling is bounded
  const code = EXIT_CODES[error.name] ?? 1;
  setTimeout(() => process.exit(code), INTERRUPT_BOUND_MS).unref();
  // No uninterruptible section (stop-guard.ts: a restore's swap, its report) begins from here on.
  requestStop(error);
  interruption = (async () => {
    await stopRunningTools(5_000).catch(() => 0);
    // A section under way ends first. Its failure (a swap that could not be undone) is what is
    // reported, and what the step did to its target (a swap, an in-place load) is said either way.
    const reported = stopOutcome(error, await sectionsSettled(SECTION_WAIT_MS));
    const exitCode = EXIT_CODES[reported.name] ?? code;
    await abortActiveUploads().catch(() => 0);
    // The component's own failure (its tool ended by the stop) is not recorded: this is.
    if (!lastResort) await recordLastFailure?.(reported).catch(() => undefined);
    await taskTokenSession()
      ?.fail(reported)
      .catch(() => undefined);
    console.error(`${reported.name}: ${reported.message}`);
    process.stderr.write('', () => process.exit(exitCode));
    return exitCode;
  })();
}

/** Runs one subcommand; returns the process exit code. Never throws. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // Standard error: standard output carries the subcommand's result line.
  const logger = createLogger(
    { service: 'infrahub-backup-runner' },
    { write: (line) => process.stderr.write(`${line}\n`) },
  );
  const subcommand = argv[0];
  if (!subcommand || subcommand === '--help' || subcommand === '-h') {
    console.log(USAGE);
    return subcommand ? 0 : 2;
  }
  // `--task-token` / `--heartbeat-seconds` after the subcommand (the restore and drill states).
  const extra = taskTokenArgs(argv.slice(1));
  if ('problem' in extra) {
    console.error(`${extra.problem}\n\n${USAGE}`);
    return 2;
  }
  if (Object.keys(extra.env).length > 0) env = { ...env, ...extra.env };
  if (!isRestoreStep(subcommand) && !(subcommand in SUBCOMMANDS)) {
    console.error(`unknown subcommand "${subcommand}"\n\n${USAGE}`);
    return 2;
  }
  // Started by a waitForTaskToken state: heartbeats while the work moves data (task-token.ts).
  try {
    await startTaskToken(env, subcommand, stopWork, logger);
  } catch (err) {
    const error = runnerError(err);
    console.error(`${error.name}: ${error.message}`);
    return EXIT_CODES[error.name] ?? 1;
  }
  // A heartbeat refused at start: the state gave up on this task before it ran; nothing is done.
  const ended = endedElsewhere();
  if (ended) return ended;
  if (isRestoreStep(subcommand)) return runRestoreStep(subcommand, env, logger);
  const name = subcommand as Subcommand;
  // Where a failure is recorded, when at least the common variables are valid.
  const common = CommonEnvSchema.safeParse(env);
  if (common.success)
    recordLastFailure = (error) => recordFailure(context(common.data, logger), SUBCOMMANDS[name], error);
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
    await taskTokenSession()?.succeed(summary);
    return 0;
  } catch (err) {
    // A stop signal (or an error nothing caught) ended the work: its handler records its own error,
    // aborts the uploads and exits.
    const ended = endedElsewhere();
    if (ended) return ended;
    // Redacted before it is logged, printed or recorded: a tool or server may have echoed a credential.
    const error = runnerError(err);
    logger.error('component failed', {
      subcommand: name,
      error: { name: error.name, message: error.message },
    });
    console.error(`${error.name}: ${error.message}`);
    // Whatever failed, no upload stays open (one a component left running beside its failure).
    await abortActiveUploads().catch(() => 0);
    if (common.success) await recordFailure(context(common.data, logger), SUBCOMMANDS[name], error);
    // The state's Retry and Catch see the error by its name (SendTaskFailure).
    await taskTokenSession()?.fail(error);
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

function restoreContext(env: RestoreCommonEnv, logger: Logger) {
  // A refresh reads another target's backup (SOURCE_TARGET); everything it writes is TARGET's.
  const source = env.SOURCE_TARGET ?? env.TARGET;
  return {
    s3: s3Client(env),
    bucket: env.BACKUP_BUCKET,
    target: env.TARGET,
    source,
    backupId: env.BACKUP_ID,
    restoreId: env.RESTORE_ID,
    refresh: source !== env.TARGET ? { fallback: env.DEPLOYMENT_ID_FALLBACK } : undefined,
    logger: logger.child({
      target: env.TARGET,
      ...(source !== env.TARGET ? { source } : {}),
      backupId: env.BACKUP_ID,
      restoreId: env.RESTORE_ID,
    }),
  };
}

/**
 * The plan's new deployment id for a refresh (DEPLOYMENT_ID_FALLBACK), which the Neo4j steps of a
 * refresh need: the graph gets it when the destination has no id of its own.
 * @throws RunnerConfigError when it is not set
 */
function refreshFallback(ctx: ReturnType<typeof restoreContext>): string {
  const fallback = ctx.refresh?.fallback;
  if (!fallback)
    throw new RunnerConfigError([
      `DEPLOYMENT_ID_FALLBACK: is required for a refresh (SOURCE_TARGET ${ctx.source} differs from TARGET ${ctx.target}): the restore plan sets it`,
    ]);
  return fallback;
}

type StepOutcome = {
  details: Record<string, unknown>;
  timings?: Record<string, number>;
  /**
   * Housekeeping (restore-neo4j: removing the replaced store) that runs after the step's success was
   * reported, the state machine going on meanwhile, or before its failure is: never changes the outcome.
   */
  afterReport?: () => Promise<void>;
};

async function restoreStep(
  step: RestoreStep,
  env: NodeJS.ProcessEnv,
  ctx: ReturnType<typeof restoreContext>,
  manifest: Manifest,
): Promise<StepOutcome> {
  switch (step) {
    case 'restore-postgres': {
      const { restorePostgres } = await import('./components/restore-postgres.js');
      const e = parseEnv(RestorePostgresEnvSchema, env);
      const r = await restorePostgres(ctx, postgresConnection(e, env), manifest, { binDir: e.PG_BINDIR });
      return {
        details: {
          database: r.database,
          dumpDatabase: r.dumpDatabase,
          ...(r.databaseNote ? { databaseNote: r.databaseNote } : {}),
          ownership: r.ownership,
          access: r.access,
          tables: r.tables,
          rows: r.rows,
          verifiedBytes: r.verifiedBytes,
          sha256: r.sha256,
          countsCompared: r.countsCompared,
          validation: r.validation,
          created: r.created,
          replaced: r.replaced,
        },
        timings: r.timings,
      };
    }
    case 'restore-neo4j': {
      const { restoreNeo4jCommunity, boltCypher, enterpriseDeploymentId } = await import(
        './components/restore-neo4j.js'
      );
      const e = parseEnv(RestoreNeo4jEnvSchema, env);
      const admin = { path: e.NEO4J_ADMIN, env };
      const workDir = e.RESTORE_WORK_DIR;
      if (e.NEO4J_EDITION === 'community') {
        // A refresh reads the destination's deployment id from its stopped store before the load.
        const refresh = ctx.refresh
          ? {
              fallback: refreshFallback(ctx),
              store: {
                home: e.NEO4J_HOME,
                ...(e.NEO4J_CONF ? { conf: e.NEO4J_CONF } : {}),
                workDir,
                memory: { heap: e.NEO4J_COUNT_HEAP, pageCache: e.NEO4J_COUNT_PAGECACHE },
              },
            }
          : undefined;
        const r = await restoreNeo4jCommunity(ctx, admin, manifest, {
          workDir,
          system: e.NEO4J_SYSTEM,
          ...(refresh ? { refresh } : {}),
          // Its store folders: each load is staged beside them once its dump is verified (unless
          // neo4j.restoreLoad is "in-place").
          store: { home: e.NEO4J_HOME, ...(e.NEO4J_CONF ? { conf: e.NEO4J_CONF } : {}) },
          load: e.NEO4J_RESTORE_LOAD,
          // The target's old store is removed once the step has reported, beside the DBMS's start.
          keepReplaced: true,
        });
        const replaced = r.replaced ?? [];
        return {
          ...(replaced.length > 0
            ? {
                afterReport: async () => {
                  const { removeReplaced } = await import('./components/neo4j-staged-load.js');
                  await removeReplaced(replaced, ctx.logger.child({ step: 'restore-neo4j' }));
                },
              }
            : {}),
          details: {
            edition: 'community',
            ...(r.deploymentId ? { deploymentId: r.deploymentId } : {}),
            databases: r.databases,
            system: r.system,
            verifiedBytes: r.verifiedBytes,
            verified: r.verified,
            load: r.load,
          },
        };
      }
      const cypher = boltCypher(
        neo4jConnection(
          { ...e, NEO4J_URI: e.NEO4J_URI as string, NEO4J_PASSWORD: e.NEO4J_PASSWORD as string },
          env,
        ),
      );
      try {
        // A refresh: the destination's deployment id, read before anything is seeded.
        const deploymentId = ctx.refresh
          ? await enterpriseDeploymentId(
              cypher,
              manifest,
              { mode: e.RESTORE_MODE, alias: e.NEO4J_ALIAS },
              refreshFallback(ctx),
            )
          : undefined;
        // Enterprise: the servers seed the database from the bucket (seed-neo4j.ts); the runner has no store.
        const { restoreNeo4jSeeded } = await import('./components/seed-neo4j.js');
        const r = await restoreNeo4jSeeded(ctx, cypher, manifest, {
          mode: e.RESTORE_MODE,
          ...(e.NEW_DATABASE_NAME ? { newDatabaseName: e.NEW_DATABASE_NAME } : {}),
          alias: e.NEO4J_ALIAS,
          onlineTimeoutMs: e.NEO4J_SEED_ONLINE_TIMEOUT_SECONDS * 1000,
          rehearse: e.NEO4J_SEED_REHEARSE,
        });
        return {
          details: {
            edition: 'enterprise',
            ...(deploymentId ? { deploymentId } : {}),
            mode: e.RESTORE_MODE,
            server: r.server,
            databases: r.databases.map((d) => ({
              name: d.name,
              from: d.from,
              how: d.how,
              seedUri: d.seedUri,
              members: d.members,
              validation: d.validation.validation,
            })),
            // What the seeded databases were compared with, in one sentence (the restore report quotes it).
            validation: r.databases.map((d) => `${d.name}: ${d.validation.validation}`).join('; '),
            ...(r.rehearsal ? { rehearsal: r.rehearsal } : {}),
            ...(r.alias ? { alias: r.alias } : {}),
            system: r.system,
            staged: r.staged,
            verifiedBytes: r.verifiedBytes,
            verified: r.verified,
          },
        };
      } finally {
        await cypher.close();
      }
    }
    case 'validate-neo4j': {
      const { checkGraph, renamedForNewDatabase } = await import('./components/restore-neo4j.js');
      const e = parseEnv(ValidateNeo4jEnvSchema, env);
      const connection = neo4jConnection(e, env);
      const renamed = e.NEW_DATABASE_NAME ? renamedForNewDatabase(manifest, e.NEW_DATABASE_NAME) : {};
      // A refresh: the graph gets the destination's own deployment id back before it is validated
      // (one property: the counts stay those of the backup), and before the services start again.
      const deploymentId = ctx.refresh
        ? await refreshDeploymentId(ctx, connection, manifest, renamed, refreshFallback(ctx))
        : undefined;
      // `validation` says what the counts were compared with; the restore report quotes it.
      const { counts, validation } = await checkGraph(ctx, connection, manifest, renamed, {
        system: e.NEO4J_SYSTEM,
      });
      return { details: { counts, validation, ...(deploymentId ? { deploymentId } : {}) } };
    }
    case 'restore-artifacts': {
      const { restoreArtifacts } = await import('./components/restore-artifacts.js');
      const e = parseEnv(RestoreArtifactsEnvSchema, env);
      const destination =
        e.ARTIFACTS_SOURCE === 's3'
          ? { type: 's3' as const, bucket: e.ARTIFACTS_BUCKET as string, prefix: e.ARTIFACTS_PREFIX }
          : { type: 'path' as const, path: e.ARTIFACTS_PATH as string };
      const r = await restoreArtifacts(ctx, destination, manifest, { concurrency: e.ARTIFACTS_CONCURRENCY });
      // Every artifact is held to the manifest's SHA-256 (restore-artifacts.ts): all its bytes are verified.
      return {
        details: { destination: r.destination, files: r.files, bytes: r.bytes, verifiedBytes: r.bytes },
      };
    }
    case 'drill': {
      const { runDrill } = await import('./components/drill.js');
      const e = parseEnv(DrillEnvSchema, env);
      const r = await runDrill(ctx, manifest, {
        workDir: e.RESTORE_WORK_DIR,
        pgBinDir: e.PG_BINDIR,
        ...(e.DRILL_PG_USER ? { pgUser: e.DRILL_PG_USER } : {}),
        neo4jHome: e.NEO4J_HOME,
        neo4jAdmin: e.NEO4J_ADMIN,
        neo4jMemory: { heap: e.DRILL_NEO4J_HEAP, pageCache: e.DRILL_NEO4J_PAGECACHE },
        neo4jEdition: e.NEO4J_EDITION,
        ...(e.NEO4J_LICENCE ? { neo4jLicence: e.NEO4J_LICENCE } : {}),
      });
      return { details: { recoverySeconds: r.recoverySeconds, ...r.details }, timings: r.timings };
    }
  }
}

/**
 * validate-neo4j of a refresh: once the DBMS answers with the restored databases online, the
 * graph's deployment id is reset over Bolt (restore-neo4j.ts resetRefreshedDeploymentId).
 */
async function refreshDeploymentId(
  ctx: ReturnType<typeof restoreContext>,
  connection: ReturnType<typeof neo4jConnection>,
  manifest: Manifest,
  renamed: Record<string, string>,
  fallback: string,
) {
  const { resetRefreshedDeploymentId, restoredUserDatabases } = await import('./components/restore-neo4j.js');
  const { waitForGraph } = await import('./components/neo4j-counts.js');
  const { driverCypher } = await import('./components/deployment-id.js');
  const { openBoltDriver } = await import('../../../core/readiness/neo4j-tls.js');
  await waitForGraph(connection, [...restoredUserDatabases(manifest, renamed), 'system'], ctx.logger);
  const driver = openBoltDriver(connection, { connectionTimeout: 15_000 });
  try {
    return await resetRefreshedDeploymentId(ctx, driverCypher(driver, 'WRITE'), manifest, renamed, fallback);
  } finally {
    await driver.close();
  }
}

/** One restore step: the manifest is read (it must exist: the plan verified it), the step runs, its report is written. */
async function runRestoreStep(step: RestoreStep, env: NodeJS.ProcessEnv, logger: Logger): Promise<number> {
  const common = RestoreCommonEnvSchema.safeParse(env);
  const ctx = common.success ? restoreContext(common.data, logger) : undefined;
  if (ctx) recordLastFailure = (error) => recordRestoreFailure(ctx, step, error);
  noteTargetState(undefined);
  const startedAt = new Date();
  let afterReport: (() => Promise<void>) | undefined;
  try {
    if (!ctx) parseEnv(RestoreCommonEnvSchema, env);
    const c = ctx as ReturnType<typeof restoreContext>;
    // A drill's own variables first (an Enterprise drill without NEO4J_LICENCE): nothing is read before.
    if (step === 'drill') parseEnv(DrillEnvSchema, env);
    // The backup's own prefix: the source's for a refresh (its manifest's keys are checked against it).
    const manifest = await readManifest(c.s3, c.bucket, c.source, c.backupId);
    if (!manifest)
      throw new ManifestError(
        `${c.source}/${c.backupId} has no manifest: there is no complete backup to restore`,
      );
    const outcome = await restoreStep(step, env, c, manifest);
    // Housekeeping the step left for after its report (the replaced store): done even when what
    // follows fails, so a failed report never leaves it behind.
    afterReport = outcome.afterReport;
    const finishedAt = new Date();
    const report: RestoreStepResult = {
      step,
      target: c.target,
      ...(c.source !== c.target ? { sourceTarget: c.source } : {}),
      backupId: c.backupId,
      restoreId: c.restoreId,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      timings: outcome.timings ?? {},
      details: outcome.details,
    };
    const key = restoreStepKey(c.target, c.restoreId, step);
    // One section (stop-guard.ts): a stop during the report waits for it, so the step is either
    // reported as done, or recorded as failed (a stop before it), never both.
    let written = false;
    await uninterruptible(
      async () => {
        await putJson(c.s3, c.bucket, key, report);
        written = true;
        // What a stop or failure from here on says: the step is done; only housekeeping may be cut.
        noteTargetState(
          `The step had finished and written its report (s3://${c.bucket}/${key}) before this${afterReport ? ": only the removal of the target's old store folders may have been cut (the next restore names what is left)" : ''}.`,
        );
        // Recorded: a stop from here on (ECS stopping the task) must not record the step as failed.
        recordLastFailure = undefined;
        c.logger.info('restore step finished', { step, durationMs: report.durationMs });
        const summary = { step, result: `s3://${c.bucket}/${key}`, durationMs: report.durationMs };
        console.log(JSON.stringify(summary));
        await taskTokenSession()?.succeed(summary);
      },
      // Hung (a PUT that never returns): the stop still records and reports, saying so.
      (stop, waitedMs) =>
        appendSentence(
          stop,
          written
            ? `The step's report (s3://${c.bucket}/${key}) was written, but sending its success had not ended ${Math.round(waitedMs / 1000)} s after the stop.`
            : `The step's report (s3://${c.bucket}/${key}) was being written and had not been ${Math.round(waitedMs / 1000)} s after the stop: it may appear later beside this failure.`,
        ),
    );
    if (afterReport) {
      const tidy = afterReport;
      afterReport = undefined;
      // A stop meanwhile ends the process (exit 11, Interrupted) but records no failure: the step
      // was recorded and reported; what is left of the old store is named by the next restore.
      await tidyUp(tidy, step, logger);
    }
    return 0;
  } catch (err) {
    // A stop signal (or an error nothing caught) ended the work: its handler records its own error,
    // aborts the uploads and exits.
    const ended = endedElsewhere();
    if (ended) return ended;
    // Redacted before it is logged, printed or recorded: a tool or server may have echoed a credential.
    // What the step had done to its target (the backup's databases swapped in) is said too.
    const error = withTargetState(runnerError(err));
    if (afterReport) await tidyUp(afterReport, step, logger);
    logger.error('restore step failed', { step, error: { name: error.name, message: error.message } });
    console.error(`${error.name}: ${error.message}`);
    if (ctx) await recordRestoreFailure(ctx, step, error);
    await taskTokenSession()?.fail(error);
    return EXIT_CODES[error.name] ?? 1;
  }
}

/** Runs a step's housekeeping (StepOutcome.afterReport); a failure is logged, never thrown. */
async function tidyUp(tidy: () => Promise<void>, step: RestoreStep, logger: Logger): Promise<void> {
  await tidy().catch((err: unknown) =>
    logger.warn('housekeeping after the step failed (it never changes the step outcome)', {
      step,
      error: err instanceof Error ? err.message : String(err),
    }),
  );
}

/** Best effort: leave `.restores/<target>/<restore id>/<step>.error.json` for the restore report. */
async function recordRestoreFailure(
  ctx: ReturnType<typeof restoreContext>,
  step: RestoreStep,
  error: Error,
): Promise<void> {
  const record: RestoreStepError = {
    step,
    target: ctx.target,
    ...(ctx.source !== ctx.target ? { sourceTarget: ctx.source } : {}),
    backupId: ctx.backupId,
    restoreId: ctx.restoreId,
    error: { name: error.name, message: error.message },
    failedAt: new Date().toISOString(),
  };
  await putJson(ctx.s3, ctx.bucket, restoreStepKey(ctx.target, ctx.restoreId, `${step}.error`), record).catch(
    (e: unknown) => ctx.logger.warn('could not record the failure in S3', { error: String(e) }),
  );
}
