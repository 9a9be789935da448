/** `infrahub-backup list`: backups per target, with age, sizes, retention class and last verification. */
import type { Command } from 'commander';
import { type CommandContext, checkTargets, storage } from '../context.js';
import { describeBackups, listTargets } from '../ops/catalog.js';
import { age, mib } from '../output.js';

/** Adds the `list` command to `program`. */
export function registerList(program: Command, ctx: CommandContext): void {
  const { out, err } = ctx;
  program
    .command('list')
    .description('backups per target: id, age, size per component, retention class, complete, last verified')
    .option('--target <name...>', 'only these targets')
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup list --bucket infrahub-backups\n  infrahub-backup list --target infrahub-prod --json',
    )
    .action(async (options: { target?: string[] }) => {
      const s = ctx.settings();
      // Before S3: a malformed or (with --config) unconfigured target is refused, not listed as empty.
      if (options.target) checkTargets(s, options.target);
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
}
