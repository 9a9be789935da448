/**
 * What the operator CLI's commands share: exit codes, the error that carries one, the settings
 * (flags, then environment variables, then the deployment configuration), the bucket, and how a
 * backup id is found among the targets. Each command (cli/commands/*) is given a CommandContext.
 */
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { BackupIdSchema } from '../core/backup/layout.js';
import { type Manifest, readManifest } from '../core/backup/manifest.js';
import { loadDeploymentConfigFile } from '../core/config/load.js';
import { type DeploymentConfig, notConfigured, targetName } from '../core/config/schema.js';
import { ManifestError } from '../core/errors.js';
import { boundedClientOptions, createS3Client } from '../core/s3/client.js';
import { storageError } from '../core/s3/objects.js';
import { listTargets } from './ops/catalog.js';
import type { ExecutionProgress } from './output.js';

/** Exit codes (README, "Operator CLI"). */
export const EXIT = {
  ok: 0,
  /** The operation ran and failed: a verification found problems, an execution failed. */
  failed: 1,
  /** Bad arguments or configuration (the usage is printed). */
  usage: 2,
  /** No such backup or target. */
  notFound: 3,
  /** S3 (or another AWS API) refused or could not be reached. */
  storage: 4,
} as const;

/** An error the CLI reports as its message (when not empty) and ends with `exitCode` (one of EXIT). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** The program's global flags, as commander parsed them. */
export interface GlobalOptions {
  config?: string;
  bucket?: string;
  endpoint?: string;
  region?: string;
  json?: boolean;
}

/**
 * Flags, then environment variables, then the deployment configuration. The configuration's schedule
 * calendar problems (a time skipped by daylight saving time, an interval beyond rpoHours) do not stop
 * the operator from listing or restoring backups: each is passed to `warn` (standard error) as
 * "warning: <file>: <problem>"; `cdk synth` refuses them.
 * @throws ConfigError when the configuration file is unreadable or invalid; CliError EXIT.usage when
 *   the endpoint is not an http(s) URL
 */
export function resolveSettings(
  options: GlobalOptions,
  env: NodeJS.ProcessEnv = process.env,
  warn: (line: string) => void = (l) => console.error(l),
) {
  const configFile = options.config ?? env.INFRAHUB_BACKUP_CONFIG;
  const config: DeploymentConfig | undefined = configFile
    ? loadDeploymentConfigFile(configFile, {
        onScheduleProblems: (problems) => {
          for (const p of problems) warn(`warning: ${configFile}: ${p}`);
        },
      })
    : undefined;
  const bucket = options.bucket ?? env.INFRAHUB_BACKUP_BUCKET;
  const endpoint = options.endpoint ?? env.INFRAHUB_BACKUP_ENDPOINT ?? env.AWS_ENDPOINT_URL;
  if (endpoint !== undefined) checkEndpoint(endpoint);
  const region = options.region ?? env.AWS_REGION ?? config?.region ?? 'us-east-1';
  return { config, configFile, bucket, endpoint, region, json: options.json === true };
}

/**
 * An endpoint (--endpoint, INFRAHUB_BACKUP_ENDPOINT or AWS_ENDPOINT_URL) must be an absolute http or
 * https URL, as the SDK's endpoint option takes it (for example http://127.0.0.1:5000).
 * @throws CliError EXIT.usage naming --endpoint and the value
 */
function checkEndpoint(endpoint: string): void {
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new CliError(
      `--endpoint "${endpoint}" is not an http(s) URL (for example http://127.0.0.1:5000); it comes from --endpoint, INFRAHUB_BACKUP_ENDPOINT or AWS_ENDPOINT_URL`,
      EXIT.usage,
    );
}

/**
 * Target names given on the command line (`flag`, --target by default), checked before any AWS
 * call: each must be a target name by the configuration schema's rule (core/config/schema.ts
 * targetName: it becomes part of S3 keys, so "", "../x" never reach S3), and, when a configuration
 * is given, one it configures.
 * @throws CliError EXIT.usage naming the malformed name and the rule; EXIT.notFound naming the
 *   unconfigured names and the configured ones (notConfigured's wording)
 */
export function checkTargets(settings: Settings, names: readonly string[], flag = '--target'): void {
  for (const name of names) {
    const parsed = targetName.safeParse(name);
    if (!parsed.success)
      throw new CliError(
        `${flag} ${JSON.stringify(name)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
        EXIT.usage,
      );
  }
  if (!settings.config) return;
  const known = settings.config.targets.map((t) => t.name);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) throw new CliError(`target ${notConfigured(unknown, known)}`, EXIT.notFound);
}

/**
 * Whether the bucket exists and can be reached (S3 HeadBucket), before an operation that would
 * otherwise find out late (a local backup retries its lock for about a minute).
 * @throws CliError EXIT.storage naming the bucket and S3's answer (NotFound, Forbidden, unreachable)
 */
export async function checkBucket(st: Storage): Promise<void> {
  try {
    await st.s3.send(new HeadBucketCommand({ Bucket: st.bucket }));
  } catch (err) {
    const e = storageError(err, `reading the bucket s3://${st.bucket}`);
    const why = e instanceof Error ? e.message : String(e);
    throw new CliError(
      /NotFound|404/.test(why) ? `s3://${st.bucket}: no such bucket (${why})` : why,
      EXIT.storage,
    );
  }
}

/** The resolved settings (resolveSettings). */
export type Settings = ReturnType<typeof resolveSettings>;

/** The bucket's S3 client and name. */
export interface Storage {
  s3: ReturnType<typeof createS3Client>;
  bucket: string;
}

/**
 * The backup bucket and an S3 client for it (path-style at a local endpoint).
 * @throws CliError EXIT.usage when no bucket is set
 */
export function storage(settings: Settings): Storage {
  if (!settings.bucket) {
    throw new CliError(
      'no backup bucket: give --bucket, or set INFRAHUB_BACKUP_BUCKET (the stack output BackupBucketName)',
      EXIT.usage,
    );
  }
  const s3 = createS3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint, forcePathStyle: true } : {}),
  });
  return { s3, bucket: settings.bucket };
}

/**
 * A Step Functions client for the settings' region (and their endpoint, when one is set, like every
 * AWS client of the CLI), with the bounded timeouts and retries.
 */
export function sfnClient(s: Settings): SFNClient {
  return new SFNClient({
    region: s.region,
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    ...boundedClientOptions(),
  });
}

/**
 * Which target a backup id belongs to: the one given, else the only one holding it. A manifest that
 * exists but is refused (malformed, unsafe, pointing outside its prefix) is never "no such backup":
 * the backup is there and unusable, so the refusal is reported with its reason (exit 1), whether the
 * target was given or searched for. A manifest refused under one target does not hide a valid one of
 * the same id under another (that one is used; the refusal is then passed to `warn`).
 *
 * @throws CliError EXIT.failed naming each refused manifest and why; EXIT.notFound when no target
 *   holds the id or the given target is not configured; EXIT.usage when several do or the given
 *   target is not a target name (checkTargets)
 */
export async function backupOf(
  settings: Settings,
  s3: Storage,
  backupId: string,
  given?: string,
  warn: (line: string) => void = () => undefined,
): Promise<{ target: string; manifest: Manifest }> {
  if (given) checkTargets(settings, [given]);
  const targets = given
    ? [given]
    : (settings.config?.targets.map((t) => t.name) ?? (await listTargets(s3.s3, s3.bucket)));
  const holding: Array<{ target: string; manifest: Manifest }> = [];
  const refused: string[] = [];
  for (const target of targets) {
    const manifest = await readManifest(s3.s3, s3.bucket, target, backupId).catch((err: unknown) => {
      if (!(err instanceof ManifestError)) throw err;
      refused.push(err.message);
      return undefined;
    });
    if (manifest) holding.push({ target, manifest });
  }
  if (holding.length === 0 && refused.length > 0)
    throw new CliError(
      `${backupId}: manifest refused, the backup is not usable:\n${refused.join('\n')}`,
      EXIT.failed,
    );
  for (const r of refused) warn(`warning: another backup ${backupId} was passed over: ${r}`);
  if (holding.length === 1) return holding[0] as { target: string; manifest: Manifest };
  throw new CliError(
    holding.length === 0
      ? given
        ? `${given}/${backupId} has no manifest: incomplete, failed or absent`
        : `no complete backup ${backupId} in s3://${s3.bucket} (targets: ${targets.join(', ') || 'none'})`
      : `${backupId} exists for several targets (${holding.map((h) => h.target).join(', ')}): give --target`,
    holding.length === 0 ? EXIT.notFound : EXIT.usage,
  );
}

/**
 * Commander's argument parser for a backup id.
 * @throws CliError EXIT.usage unless it looks like infrahub_backup_YYYYMMDD_HHMMSS
 */
export function backupIdArgument(value: string): string {
  const parsed = BackupIdSchema.safeParse(value);
  if (!parsed.success)
    throw new CliError(`backup id "${value}" must look like infrahub_backup_YYYYMMDD_HHMMSS`, EXIT.usage);
  return value;
}

/** What every command is given by the program (cli/infrahub-backup.ts). */
export interface CommandContext {
  /** A result line to standard output (redacted). */
  out(line: string): void;
  /** A message or progress line to standard error (redacted). */
  err(line: string): void;
  /** The settings from the global flags as parsed, the environment and the configuration. */
  settings(): Settings;
  /** An execution's states as they run (shared by backup, restore and status). */
  executions: ExecutionProgress;
}
