/** `infrahub-backup status`: follows an execution (backup, restore or drill) until it ends. */
import type { Command } from 'commander';
import { CliError, type CommandContext, EXIT, sfnClient } from '../context.js';
import { reportOutcome } from '../execute.js';
import { followExecution } from '../ops/executions.js';

/** Adds the `status` command to `program`; a malformed ARN ends with EXIT.usage. */
export function registerStatus(program: Command, ctx: CommandContext): void {
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
      const s = ctx.settings();
      if (!/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:/.test(executionArn))
        throw new CliError(`"${executionArn}" is not a Step Functions execution ARN`, EXIT.usage);
      reportOutcome(
        ctx,
        s,
        await followExecution(sfnClient(s), executionArn, {
          onProgress: ctx.executions.state,
          onPoll: ctx.executions.waiting,
        }),
      );
    });
}
