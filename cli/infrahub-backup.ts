/**
 * `infrahub-backup`: the operator CLI. Lists, inspects and verifies backups in the bucket (on AWS or
 * at a local S3-compatible endpoint), exports and imports them, starts or follows backups and
 * restores. Settings come from flags, then environment variables, then the deployment configuration
 * file. Every command prints plain text, or JSON with `--json`; exit codes are in EXIT (and the
 * README). This file wires the commands (cli/commands/*, one per command) into one commander program.
 */

import { Command, CommanderError, Option } from 'commander';
import { redactJsonOrText, redactText } from '../core/redact.js';
import { TOOL_VERSION } from '../core/version.js';
import { registerBackup } from './commands/backup.js';
import { registerExport } from './commands/export.js';
import { registerImport } from './commands/import.js';
import { registerInspect } from './commands/inspect.js';
import { registerList } from './commands/list.js';
import { registerReport } from './commands/report.js';
import { registerRestore } from './commands/restore.js';
import { registerRetention } from './commands/retention.js';
import { registerStatus } from './commands/status.js';
import { registerThaw } from './commands/thaw.js';
import { registerVerify } from './commands/verify.js';
import { CliError, type CommandContext, EXIT, type GlobalOptions, resolveSettings } from './context.js';
import { clearLiveLine, executionProgress } from './output.js';

export { EXIT, resolveSettings } from './context.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * The commander program with every command; `out` receives results (standard output), `err` messages,
 * warnings and progress (standard error). Parsing errors throw CommanderError (exitOverride).
 */
export function buildProgram(
  out: (line: string) => void = (l) => console.log(l),
  err: (line: string) => void = (l) => console.error(l),
): Command {
  const program = new Command('infrahub-backup')
    // Before the commands are added: they inherit it (help and usage go where the output goes).
    .configureOutput({ writeOut: (s) => out(s.trimEnd()), writeErr: (s) => err(s.trimEnd()) })
    .description(
      'Backups of Infrahub deployments: list, inspect, verify, back up, restore, follow, export, import and report; preview retention, thaw archived backups',
    )
    .version(TOOL_VERSION)
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

  const ctx: CommandContext = {
    out,
    err,
    settings: () => resolveSettings(program.opts<GlobalOptions>(), process.env, err),
    executions: executionProgress(err),
  };
  for (const register of [
    registerList,
    registerInspect,
    registerVerify,
    registerExport,
    registerImport,
    registerBackup,
    registerRestore,
    registerStatus,
    registerReport,
    registerRetention,
    registerThaw,
  ])
    register(program, ctx);
  return program;
}

/**
 * Runs the CLI on `argv` (the arguments after the executable); returns the exit code (one of EXIT).
 * Everything printed passes through core/redact.ts.
 */
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
