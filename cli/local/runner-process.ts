/**
 * The runner as a local process: what the local mode's ECS states start, and the environment that
 * points it at local servers (tests).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { packageFile, packageRoot } from '../../core/package-root.js';

export interface RunnerRun {
  code: number | null;
  /** The signal that ended the process (code is null then), as ECS's SIGKILL after a stop timeout. */
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * How the runner's entrypoint is started: from the repository's TypeScript through tsx when this
 * module runs as TypeScript itself (tests, `npm run backup:local`), else (the built CLI of an
 * installed package) the runner's bundle beside it with this Node: dist/runner/runner.mjs, as
 * `npm run build` writes it. Resolved against the package, never the working directory.
 * @throws Error when the package holds no runner bundle (built without `npm run build`)
 */
export function runnerCommand(): { command: string; args: string[] } {
  if (import.meta.url.endsWith('.ts'))
    return {
      command: join(packageRoot(), 'node_modules', '.bin', 'tsx'),
      args: [join(packageRoot(), 'containers', 'runner', 'src', 'cli.ts')],
    };
  return { command: process.execPath, args: [packageFile('dist', 'runner', 'runner.mjs')] };
}

/**
 * Runs the runner's real entrypoint as a local process with exactly `env` (plus PATH and HOME), the
 * way the ECS task definition starts it in the cloud. `onStart` receives the child's PID.
 */
export function runRunner(
  subcommand: string,
  env: Record<string, string>,
  onStart?: (pid: number) => void,
): Promise<RunnerRun> {
  const runner = runnerCommand();
  return new Promise((resolve, reject) => {
    const child = spawn(runner.command, [...runner.args, subcommand], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', reject);
    if (child.pid !== undefined) onStart?.(child.pid);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The runner environment that points it at the local S3 server (what the task definition sets on AWS). */
export function localRunnerEnv(
  s3: { env(): Record<string, string>; endpoint: string },
  backup: { target: string; backupId: string; bucket: string },
): Record<string, string> {
  return {
    ...s3.env(),
    TARGET: backup.target,
    BACKUP_ID: backup.backupId,
    BACKUP_BUCKET: backup.bucket,
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: 'true',
  };
}

/** backup-postgres's connection variables for a local PostgreSQL (the task gets them from Secrets Manager). */
export function postgresRunnerEnv(
  postgres: { port: number; user: string; password: string; binDir: string },
  database = 'prefect',
): Record<string, string> {
  return {
    PGHOST: '127.0.0.1',
    PGPORT: String(postgres.port),
    PGUSER: postgres.user,
    PGPASSWORD: postgres.password,
    PGDATABASE: database,
    PG_BINDIR: postgres.binDir,
  };
}

/**
 * backup-neo4j / count-neo4j variables for a local Neo4j Community instance, with its Bolt TLS as the
 * task definition sets it (NEO4J_TLS_MODE, NEO4J_TLS_CA): the harness's plain instance says
 * `disable` explicitly, a TLS instance (startNeo4j `tls`) is verified against its CA.
 */
export function neo4jRunnerEnv(neo4j: {
  adminPath: string;
  boltUrl: string;
  boltTls: { mode: string; caFile?: string };
  password: string;
  adminEnv(): Record<string, string>;
}): Record<string, string> {
  return {
    NEO4J_TLS_MODE: neo4j.boltTls.mode,
    ...(neo4j.boltTls.caFile ? { NEO4J_TLS_CA: neo4j.boltTls.caFile } : {}),
    ...neo4j.adminEnv(),
    NEO4J_EDITION: 'community',
    NEO4J_DATABASES: 'neo4j,system',
    NEO4J_ADMIN: neo4j.adminPath,
    NEO4J_URI: neo4j.boltUrl,
    NEO4J_USERNAME: 'neo4j',
    NEO4J_PASSWORD: neo4j.password,
  };
}
