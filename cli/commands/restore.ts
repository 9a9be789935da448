/**
 * `infrahub-backup restore`: starts the restore state machine on AWS, or runs it here with --local.
 * With --from-target, a refresh: another target's backup restored into --target.
 */
import { type Command, Option } from 'commander';
import { parseInput } from '../../core/config/load.js';
import { refreshProblem } from '../../core/config/schema.js';
import { RestoreExecutionInputSchema } from '../../core/restore/plan.js';
import { CliError, type CommandContext, checkTargets, EXIT } from '../context.js';
import { type ExecutionOptions, execute, withExecutionFlags } from '../execute.js';

/** Adds the `restore` command to `program`. */
export function registerRestore(program: Command, ctx: CommandContext): void {
  withExecutionFlags(
    program
      .command('restore')
      .description(
        'restores a target from a backup: starts the restore state machine, or runs it locally with --local',
      )
      .requiredOption('--target <name>', 'the target to restore')
      .option(
        '--from-target <name>',
        "refresh: restore this other target's backup into --target (which must list it in refreshFrom and not be production); the graph keeps --target's deployment id",
      )
      .option(
        '--backup-id <id>',
        "infrahub_backup_YYYYMMDD_HHMMSS or latest (of --from-target's backups when given)",
        'latest',
      )
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
      '\nExamples:\n  infrahub-backup restore --target infrahub-prod --dry-run\n  infrahub-backup restore --target infrahub-prod --backup-id infrahub_backup_20261121_020000 --reason "change 4711"\n  infrahub-backup restore --target infrahub-staging --from-target infrahub-prod --backup-id latest   # refresh staging from production',
    )
    .action(
      async (
        options: ExecutionOptions & {
          target: string;
          fromTarget?: string;
          backupId: string;
          component?: string[];
          mode?: string;
          newDatabaseName?: string;
          neo4jSystem?: string;
          dryRun?: boolean;
          allowInfrahubVersionMismatch?: boolean;
        },
      ) => {
        // Before any AWS call or synthesis: a malformed or (with --config) unconfigured target, and
        // a refresh the configuration refuses (a production destination, a source not in refreshFrom).
        const settings = ctx.settings();
        checkTargets(settings, [options.target]);
        if (options.fromTarget !== undefined) {
          checkTargets(settings, [options.fromTarget], '--from-target');
          const problem =
            settings.config && refreshProblem(settings.config, options.target, options.fromTarget);
          if (problem)
            throw new CliError(
              `${problem.field === 'target' ? '--target' : '--from-target'}: ${problem.message}`,
              EXIT.usage,
            );
        }
        const input = parseInput(
          RestoreExecutionInputSchema,
          {
            target: options.target,
            ...(options.fromTarget !== undefined ? { sourceTarget: options.fromTarget } : {}),
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
        await execute(ctx, 'restore', input, options);
      },
    );
}
