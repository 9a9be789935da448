/**
 * `infrahub-backup`: the operator CLI. Lists, inspects and verifies backups in the bucket (on AWS or
 * at a local S3-compatible endpoint). Settings come from flags, then environment variables, then the
 * deployment configuration file. Every command prints plain text, or JSON with `--json`; exit codes
 * are in EXIT (and the README).
 */

import { SFNClient } from '@aws-sdk/client-sfn';
import { Command, CommanderError, Option } from 'commander';
import { BackupIdSchema, backupPrefix } from '../core/backup/layout.js';
import { listProblems, type Manifest, readManifest } from '../core/backup/manifest.js';
import { BackupExecutionInputSchema } from '../core/backup/plan.js';
import { describeProblems, describeProof, verifyAgainst } from '../core/backup/verify.js';
import { loadDeploymentConfigFile, parseInput } from '../core/config/load.js';
import type { DeploymentConfig } from '../core/config/schema.js';
import { ManifestError } from '../core/errors.js';
import { formatBytes } from '../core/format.js';
import { redactJsonOrText, redactText } from '../core/redact.js';
import { RestoreExecutionInputSchema } from '../core/restore/plan.js';
import { boundedClientOptions, createS3Client } from '../core/s3/client.js';
import { runLocalExecution } from './local/from-env.js';
import { describeBackups, listTargets, recordVerification } from './ops/catalog.js';
import {
  type ExecutionOutcome,
  followExecution,
  type StateProgress,
  startExecution,
} from './ops/executions.js';
import { exportBackup, importTarball, type Progress } from './ops/tarball.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

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

class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

interface GlobalOptions {
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
  const region = options.region ?? env.AWS_REGION ?? config?.region ?? 'us-east-1';
  return { config, bucket, endpoint, region, json: options.json === true };
}

type Settings = ReturnType<typeof resolveSettings>;

function storage(settings: Settings) {
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

const mib = formatBytes;
const age = (hours: number) => (hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} d`);

/**
 * Which target a backup id belongs to: the one given, else the only one holding it. A manifest that
 * exists but is refused (malformed, unsafe, pointing outside its prefix) is never "no such backup":
 * the backup is there and unusable, so the refusal is reported with its reason (exit 1), whether the
 * target was given or searched for. A manifest refused under one target does not hide a valid one of
 * the same id under another (that one is used; the refusal is then passed to `warn`).
 *
 * @throws CliError EXIT.failed naming each refused manifest and why; EXIT.notFound when no target
 *   holds the id; EXIT.usage when several do
 */
async function backupOf(
  settings: Settings,
  s3: ReturnType<typeof storage>,
  backupId: string,
  given?: string,
  warn: (line: string) => void = () => undefined,
): Promise<{ target: string; manifest: Manifest }> {
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

const backupIdArgument = (value: string) => {
  const parsed = BackupIdSchema.safeParse(value);
  if (!parsed.success)
    throw new CliError(`backup id "${value}" must look like infrahub_backup_YYYYMMDD_HHMMSS`, EXIT.usage);
  return value;
};

export function buildProgram(
  out: (line: string) => void = (l) => console.log(l),
  err: (line: string) => void = (l) => console.error(l),
): Command {
  const program = new Command('infrahub-backup')
    // Before the commands are added: they inherit it (help and usage go where the output goes).
    .configureOutput({ writeOut: (s) => out(s.trimEnd()), writeErr: (s) => err(s.trimEnd()) })
    .description(
      'Backups of Infrahub deployments: list, inspect, verify, back up, restore, follow, export and import',
    )
    .addOption(new Option('--config <file>', 'deployment configuration (JSON)').env('INFRAHUB_BACKUP_CONFIG'))
    .addOption(
      new Option('--bucket <name>', 'backup bucket (stack output BackupBucketName)').env(
        'INFRAHUB_BACKUP_BUCKET',
      ),
    )
    .addOption(
      new Option(
        '--endpoint <url>',
        'AWS-compatible endpoint instead of AWS (a local server; AWS_ENDPOINT_URL also works)',
      ).env('INFRAHUB_BACKUP_ENDPOINT'),
    )
    .option('--region <region>', 'AWS region (default: AWS_REGION, then the configuration)')
    .option('--json', 'print JSON for scripts instead of text')
    .showHelpAfterError()
    .exitOverride();

  const settings = () => resolveSettings(program.opts<GlobalOptions>(), process.env, err);

  program
    .command('list')
    .description('backups per target: id, age, size per component, retention class, complete, last verified')
    .option('--target <name...>', 'only these targets')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup list --bucket infrahub-backups\n  infrahub-backup list --target infrahub-prod --json',
    )
    .action(async (options: { target?: string[] }) => {
      const s = settings();
      const st = storage(s);
      const targets =
        options.target ?? s.config?.targets.map((t) => t.name) ?? (await listTargets(st.s3, st.bucket));
      const entries = await describeBackups(st.s3, st.bucket, targets, new Date(), err);
      if (s.json) return out(JSON.stringify(entries, null, 2));
      if (entries.length === 0)
        return out(`no backups in s3://${st.bucket} for ${targets.join(', ') || 'any target'}`);
      for (const target of targets) {
        const mine = entries.filter((e) => e.target === target);
        if (mine.length === 0) continue;
        out(`${target}`);
        for (const e of mine) {
          const sizes = Object.entries(e.sizes)
            .map(([c, n]) => `${c} ${mib(n)}`)
            .join(', ');
          const verified = e.lastVerified
            ? `verified ${e.lastVerified.verifiedAt.slice(0, 16).replace('T', ' ')}${e.lastVerified.deep ? ' (deep)' : ''} ${e.lastVerified.ok ? 'ok' : 'FAILED'}`
            : 'never verified';
          out(
            `  ${e.backupId}  ${(e.future ? 'FUTURE' : age(e.ageHours)).padStart(8)}  ${(e.complete ? 'complete' : 'INCOMPLETE').padEnd(10)}  ${(e.retentionClass ?? '-').padEnd(8)}  ${mib(e.bytes).padStart(10)}  (${sizes})  ${verified}`,
          );
          if (e.problem) out(`    manifest refused: ${e.problem.split('\n').join(' ')}`);
          if (e.future)
            out(
              `    dated later than now: never "latest" for a restore or drill, never fresh for the RPO alarm; check it and delete or rename it`,
            );
        }
      }
    });

  program
    .command('inspect')
    .description("a backup's manifest (backup_information.json), readable")
    .argument('<backup-id>', 'infrahub_backup_YYYYMMDD_HHMMSS', backupIdArgument)
    .option('--target <name>', 'the target (needed only when several hold this id)')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup inspect infrahub_backup_20261121_020000 --target infrahub-prod\n  infrahub-backup inspect infrahub_backup_20261121_020000 --json',
    )
    .action(async (backupId: string, options: { target?: string }) => {
      const s = settings();
      const st = storage(s);
      const { target, manifest } = await backupOf(s, st, backupId, options.target, err);
      if (s.json) return out(JSON.stringify(manifest, null, 2));
      out(`${target}/${backupId}  s3://${st.bucket}/${backupPrefix(target, backupId)}`);
      out(
        `  created      ${manifest.created_at}${manifest.completed_at ? `, completed ${manifest.completed_at}` : ''}`,
      );
      out(`  components   ${manifest.components.join(', ')}`);
      out(`  infrahub     ${manifest.infrahub_version}`);
      if (manifest.versions?.neo4j)
        out(
          `  neo4j        ${manifest.neo4j_edition ?? ''} ${manifest.versions.neo4j.server ?? manifest.versions.neo4j.tool}`,
        );
      if (manifest.versions?.postgres)
        out(
          `  postgres     ${manifest.versions.postgres.server} (pg_dump ${manifest.versions.postgres.tool})`,
        );
      if (manifest.retention_class) out(`  retention    ${manifest.retention_class}`);
      if (manifest.forced) out('  forced       yes: the preflight gate was skipped');
      for (const [db, c] of Object.entries(manifest.counts?.neo4j ?? {}))
        out(`  graph        ${db}: ${c.nodes} nodes, ${c.relationships} relationships`);
      if (manifest.counts?.postgres) {
        const rows = Object.values(manifest.counts.postgres.tables).reduce((a, b) => a + b, 0);
        out(
          `  task db      ${manifest.counts.postgres.database}: ${Object.keys(manifest.counts.postgres.tables).length} tables, ${rows} rows`,
        );
      }
      out(`  files        ${Object.keys(manifest.checksums).length}`);
      for (const [path, sha256] of Object.entries(manifest.checksums))
        out(`    ${path.padEnd(48)} ${mib(manifest.sizes?.[path] ?? 0).padStart(10)}  sha256 ${sha256}`);
    });

  program
    .command('verify')
    .description(
      "checks a backup against its manifest: sizes, S3's own checksums and version ids (--deep: every byte)",
    )
    .argument('<backup-id>', 'infrahub_backup_YYYYMMDD_HHMMSS', backupIdArgument)
    .option('--target <name>', 'the target (needed only when several hold this id)')
    .option('--deep', 'download and hash every file instead of trusting S3 checksums')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup verify infrahub_backup_20261121_020000\n  infrahub-backup verify infrahub_backup_20261121_020000 --deep --json',
    )
    .action(async (backupId: string, options: { target?: string; deep?: boolean }) => {
      const s = settings();
      const st = storage(s);
      const { target, manifest } = await backupOf(s, st, backupId, options.target, err);
      const shown = progress(err);
      const report = await verifyAgainst(st.s3, st.bucket, target, backupId, manifest, {
        deep: options.deep === true,
        // Downloads are the long part of a deep verification: one progress line per file.
        onDownloaded: (f) =>
          shown({ phase: 'file', path: f.path, bytes: f.bytes, done: f.downloaded, total: f.files }),
      });
      await recordVerification(st.s3, st.bucket, report, options.deep === true);
      if (s.json) out(JSON.stringify(report, null, 2));
      else if (report.ok)
        out(
          `${target}/${backupId}: ${report.files} files match the manifest (${options.deep ? `${report.downloaded} downloaded and hashed` : 'S3 checksums, sizes and version ids; nothing downloaded'})\n${describeProof(
            report,
          )
            .map((l) => `  ${l}`)
            .join('\n')}`,
        );
      else
        out(
          `${target}/${backupId}: ${report.problems.length} problem(s)\n${listProblems(describeProblems(report), 50)}`,
        );
      if (!report.ok) throw new CliError('', EXIT.failed);
    });

  program
    .command('export')
    .description(
      "writes a backup as infrahub-backup's tarball: infrahub_backup_YYYYMMDD_HHMMSS.tar.gz, entries under backup/",
    )
    .argument('<backup-id>', 'infrahub_backup_YYYYMMDD_HHMMSS', backupIdArgument)
    .option('--target <name>', 'the target (needed only when several hold this id)')
    .option('--out <dir>', 'where to write the archive', '.')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup export infrahub_backup_20261121_020000 --out /srv/exports\n  infrahub-backup --json export infrahub_backup_20261121_020000 --target infrahub-prod',
    )
    .action(async (backupId: string, options: { target?: string; out: string }) => {
      const s = settings();
      const st = storage(s);
      const { target, manifest } = await backupOf(s, st, backupId, options.target, err);
      const result = await exportBackup(st.s3, st.bucket, target, manifest, options.out, progress(err));
      if (s.json) return out(JSON.stringify({ target, backupId, ...result }, null, 2));
      out(
        `${result.file}: ${result.files} files, ${mib(result.bytes)} before compression, every checksum checked`,
      );
    });

  program
    .command('import')
    .description('stores an infrahub-backup tarball as a backup of a target, after checking every checksum')
    .argument('<tarball>', 'infrahub_backup_YYYYMMDD_HHMMSS.tar.gz')
    .requiredOption('--target <name>', 'the target it becomes a backup of')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup --config deployment.json import ./infrahub_backup_20261121_020000.tar.gz --target infrahub-lab',
    )
    .action(async (tarball: string, options: { target: string }) => {
      const s = settings();
      const st = storage(s);
      if (!s.config) {
        throw new CliError(
          'import needs the deployment configuration (--config or INFRAHUB_BACKUP_CONFIG): the target must be configured, and its retention policy classifies the backup',
          EXIT.usage,
        );
      }
      if (!s.config.targets.some((t) => t.name === options.target)) {
        throw new CliError(
          `target "${options.target}" is not configured (known: ${s.config.targets.map((t) => t.name).join(', ')})`,
          EXIT.notFound,
        );
      }
      const result = await importTarball(st.s3, st.bucket, tarball, options.target, {
        retention: s.config.retention,
        onProgress: progress(err),
      });
      if (s.json) return out(JSON.stringify(result, null, 2));
      out(
        `${result.target}/${result.backupId}: ${result.files} files, ${mib(result.bytes)}, every checksum matches; retention ${result.retentionClass ?? 'pending'}`,
      );
    });

  const follow = (command: Command) =>
    command
      .option('--local', 'run the synthesized state machine on this machine (needs --config and --endpoint)')
      .option('--no-follow', 'start the execution and return at once (on AWS)');

  follow(
    program
      .command('backup')
      .description(
        'backs up targets: starts the backup state machine on AWS, or runs it locally with --local',
      )
      .option('--target <name...>', 'targets to back up (default: all)')
      .option('--component <name...>', 'database, task-manager-db, artifacts (default: all)')
      .option('--force', 'skip the preflight gate (recorded in the manifest)')
      .option('--reason <text>', 'free text for the audit trail')
      .addOption(
        new Option(
          '--state-machine <arn>',
          'the backup state machine (stack output BackupStateMachineArn)',
        ).env('INFRAHUB_BACKUP_STATE_MACHINE'),
      ),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup backup --target infrahub-prod --reason "before the upgrade"\n  infrahub-backup --config local.json --endpoint http://127.0.0.1:5000 --bucket b backup --local',
    )
    .action(
      async (options: ExecutionOptions & { target?: string[]; component?: string[]; force?: boolean }) => {
        const input = parseInput(
          BackupExecutionInputSchema,
          {
            ...(options.target ? { targets: options.target } : {}),
            ...(options.component ? { components: options.component } : {}),
            ...(options.force ? { force: true } : {}),
            ...(options.reason ? { reason: options.reason } : {}),
          },
          'backup options',
        );
        await execute('backup', input, options);
      },
    );

  follow(
    program
      .command('restore')
      .description(
        'restores a target from a backup: starts the restore state machine, or runs it locally with --local',
      )
      .requiredOption('--target <name>', 'the target to restore')
      .option('--backup-id <id>', 'infrahub_backup_YYYYMMDD_HHMMSS or latest', 'latest')
      .option('--component <name...>', 'database, task-manager-db, artifacts (default: all the backup holds)')
      .addOption(
        new Option('--mode <mode>', 'in-place, or new-database (Neo4j Enterprise)').choices([
          'in-place',
          'new-database',
        ]),
      )
      .option('--new-database-name <name>', 'new-database: the name to restore under')
      .addOption(
        new Option(
          '--neo4j-system <choice>',
          "Neo4j Community: keep the target's system database (users, passwords) or restore the backup's (default keep)",
        ).choices(['keep', 'restore']),
      )
      .option('--dry-run', 'verify and plan only; change nothing')
      .option('--allow-infrahub-version-mismatch', 'restore a backup of another Infrahub version')
      .option('--reason <text>', 'free text for the audit trail')
      .addOption(
        new Option(
          '--state-machine <arn>',
          'the restore state machine (stack output RestoreStateMachineArn)',
        ).env('INFRAHUB_RESTORE_STATE_MACHINE'),
      ),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup restore --target infrahub-prod --dry-run\n  infrahub-backup restore --target infrahub-prod --backup-id infrahub_backup_20261121_020000 --reason "change 4711"',
    )
    .action(
      async (
        options: ExecutionOptions & {
          target: string;
          backupId: string;
          component?: string[];
          mode?: string;
          newDatabaseName?: string;
          neo4jSystem?: string;
          dryRun?: boolean;
          allowInfrahubVersionMismatch?: boolean;
        },
      ) => {
        const input = parseInput(
          RestoreExecutionInputSchema,
          {
            target: options.target,
            backupId: options.backupId,
            ...(options.component ? { components: options.component } : {}),
            ...(options.mode ? { mode: options.mode } : {}),
            ...(options.newDatabaseName ? { newDatabaseName: options.newDatabaseName } : {}),
            ...(options.neo4jSystem ? { neo4jSystem: options.neo4jSystem } : {}),
            ...(options.dryRun ? { dryRun: true } : {}),
            ...(options.allowInfrahubVersionMismatch ? { allowInfrahubVersionMismatch: true } : {}),
            ...(options.reason ? { reason: options.reason } : {}),
          },
          'restore options',
        );
        await execute('restore', input, options);
      },
    );

  program
    .command('status')
    .description(
      'follows an execution (backup, restore or drill) until it ends: its states as they run, then the outcome',
    )
    .argument('<execution-arn>', 'the execution, as backup or restore printed it')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup status arn:aws:states:eu-west-1:123456789012:execution:infrahub-backup-backup:0b7c...',
    )
    .action(async (executionArn: string) => {
      const s = settings();
      if (!/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:/.test(executionArn))
        throw new CliError(`"${executionArn}" is not a Step Functions execution ARN`, EXIT.usage);
      report(
        s,
        await followExecution(sfnClient(s), executionArn, {
          onProgress: printProgress,
          onPoll: printWaiting,
        }),
      );
    });

  /** Starts (or runs locally) a backup or restore and reports its outcome. */
  async function execute(
    kind: 'backup' | 'restore',
    input: unknown,
    options: ExecutionOptions,
  ): Promise<void> {
    const s = settings();
    if (options.local) {
      if (!s.config || !s.endpoint || !s.bucket) {
        throw new CliError(
          '--local needs the deployment configuration (--config), an AWS-compatible endpoint (--endpoint) and the bucket (--bucket)',
          EXIT.usage,
        );
      }
      const t0 = Date.now();
      const ticker = setInterval(() => printWaiting(Math.round((Date.now() - t0) / 1000)), 1000);
      let result: Awaited<ReturnType<typeof runLocalExecution>>;
      try {
        result = await runLocalExecution(kind, input, {
          config: s.config,
          endpoint: s.endpoint,
          bucket: s.bucket,
          region: s.region,
          onEvent: (event) => {
            const state = event.state as { name: string; type: string } | undefined;
            const seconds = Math.round((Date.now() - t0) / 100) / 10;
            if (event.type === 'StateEntered' && state?.type === 'Task')
              printProgress({ state: state.name, what: 'entered', seconds });
            if (event.type === 'StateFailed' && state)
              printProgress({ state: state.name, what: 'failed', seconds });
          },
        });
      } finally {
        clearInterval(ticker);
        if (live.tty) process.stderr.write('\r\x1b[K');
      }
      return report(s, {
        executionArn: result.executionArn,
        status: result.status,
        ...(result.output !== undefined ? { output: result.output } : {}),
        ...(result.error ? { error: result.error } : {}),
        ...(result.cause ? { cause: result.cause } : {}),
      });
    }
    if (!options.stateMachine) {
      throw new CliError(
        `no ${kind} state machine: give --state-machine, or set ${kind === 'backup' ? 'INFRAHUB_BACKUP_STATE_MACHINE' : 'INFRAHUB_RESTORE_STATE_MACHINE'} (stack output ${kind === 'backup' ? 'BackupStateMachineArn' : 'RestoreStateMachineArn'}), or run it locally with --local`,
        EXIT.usage,
      );
    }
    const sfn = sfnClient(s);
    const executionArn = await startExecution(sfn, options.stateMachine, input);
    err(`started ${executionArn}`);
    if (options.follow === false) return out(s.json ? JSON.stringify({ executionArn }) : executionArn);
    report(s, await followExecution(sfn, executionArn, { onProgress: printProgress, onPoll: printWaiting }));
  }

  // On a terminal, a live line under the states says what runs and for how long; elsewhere (logs,
  // CI) only the plain state lines are written.
  const live = { state: '', tty: process.stderr.isTTY === true };
  function printProgress(p: StateProgress): void {
    // Progress goes to standard error, so standard output stays the result (and --json stays JSON).
    if (live.tty) process.stderr.write('\r\x1b[K');
    err(`${p.seconds.toFixed(1).padStart(7)} s  ${p.state}${p.what === 'failed' ? ' failed' : ''}`);
    if (p.what === 'entered') live.state = p.state;
  }
  function printWaiting(seconds: number): void {
    if (live.tty) process.stderr.write(`\r\x1b[K  ... ${live.state || 'starting'}, ${seconds} s so far`);
  }

  function report(s: Settings, outcome: ExecutionOutcome): void {
    if (s.json) out(JSON.stringify(outcome, null, 2));
    else if (outcome.status === 'SUCCEEDED')
      out(`${outcome.executionArn}: SUCCEEDED\n${JSON.stringify(outcome.output, null, 2)}`);
    else
      out(
        `${outcome.executionArn}: ${outcome.status}${outcome.error ? ` (${outcome.error})` : ''}\n${outcome.cause ?? ''}`,
      );
    if (outcome.status !== 'SUCCEEDED') throw new CliError('', EXIT.failed);
  }

  return program;
}

interface ExecutionOptions {
  local?: boolean;
  follow?: boolean;
  stateMachine?: string;
  reason?: string;
}

function sfnClient(s: Settings): SFNClient {
  return new SFNClient({ region: s.region, ...boundedClientOptions() });
}

/**
 * Progress of a long transfer on standard error: one line rewritten in place on a terminal, plain
 * lines otherwise (logs, CI), so standard output stays the result.
 */
function progress(err: (line: string) => void): Progress {
  const tty = process.stderr.isTTY === true;
  return (event) => {
    const line = `${event.path} ${mib(event.bytes)}${event.total ? ` (${Math.round((event.done / event.total) * 100)} %)` : ''}`;
    if (tty) process.stderr.write(`\r\x1b[K${line}`);
    else err(line);
  };
}

/** Clears a live progress line still on the terminal, so what is printed next starts a clean line. */
function clearLiveLine(): void {
  if (process.stderr.isTTY === true) process.stderr.write('\r\x1b[K');
}

/** Runs the CLI; returns the exit code. */
export async function run(
  argv: readonly string[],
  out?: (line: string) => void,
  errOut = (l: string) => console.error(l),
) {
  // Everything the CLI prints passes through core/redact.ts: secrets it read (local mode) and URL userinfo.
  const plain = out ?? ((l: string) => console.log(l));
  // JSON output (--json) is redacted leaf by leaf and serialised again, so it stays valid JSON.
  const print = (l: string) => plain(redactJsonOrText(l));
  const err = (l: string) => errOut(redactText(l));
  const program = buildProgram((line) => {
    clearLiveLine();
    print(line);
  }, err);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with code 0; parse errors with the usage already printed.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (e instanceof CliError) {
      if (e.message) err(e.message);
      return e.exitCode;
    }
    const error = e instanceof Error ? e : new Error(String(e));
    err(`${error.name}: ${error.message}`);
    if (error.name === 'ConfigError' || error.name === 'InvalidInput') return EXIT.usage;
    // A refused manifest or archive is a failed operation on something that exists (README: exit 1).
    if (error.name === 'StorageError') return EXIT.storage;
    return EXIT.failed;
  }
}
