/** `infrahub-backup backup`: starts the backup state machine on AWS, or runs it here with --local. */
import { type Command, Option } from 'commander';
import { BackupExecutionInputSchema } from '../../core/backup/plan.js';
import { parseInput } from '../../core/config/load.js';
import { type CommandContext, checkTargets } from '../context.js';
import { type ExecutionOptions, execute, withExecutionFlags } from '../execute.js';

/** Adds the `backup` command to `program`. */
export function registerBackup(program: Command, ctx: CommandContext): void {
  withExecutionFlags(
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
        // Before any AWS call or synthesis: a malformed or (with --config) unconfigured target.
        if (options.target) checkTargets(ctx.settings(), options.target);
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
        await execute(ctx, 'backup', input, options);
      },
    );
}
