/**
 * `infrahub-backup retention`: for each backup, its class, when it was created and the day the
 * lifecycle rules expire it under the deployed policy (or "kept while newest"), when it moves to
 * colder storage; with `--policy`, what a changed policy would change, before anyone deploys it:
 * the backups the next lifecycle run would delete, those that would go earlier or later, and those
 * no rule would match any more. Planned by core/backup/retention-plan.ts from what
 * cli/ops/retention.ts reads.
 */
import type { Command } from 'commander';
import {
  comparePolicies,
  type PlannedBackup,
  type PolicyChange,
  planRetention,
  type RetentionFate,
} from '../../core/backup/retention-plan.js';
import type { Retention } from '../../core/config/schema.js';
import { CliError, type CommandContext, checkTargets, EXIT, storage } from '../context.js';
import { loadRetentionPolicy, retentionFacts } from '../ops/retention.js';

const day = (iso: string) => iso.slice(0, 10);

/** "daily 7, weekly 4, monthly 12, yearly 0; incomplete 7 days; noncurrent 7 days; monthly, yearly to GLACIER_IR after 30 days". */
export function describePolicy(p: Retention): string {
  const cold = p.coldStorage
    ? `; ${p.coldStorage.classes.join(', ')} to ${p.coldStorage.storageClass} after ${p.coldStorage.afterDays} days`
    : '';
  return `daily ${p.daily}, weekly ${p.weekly}, monthly ${p.monthly}, yearly ${p.yearly}; incomplete ${p.incompleteDays} days; noncurrent ${p.noncurrentVersionDays} days${cold}`;
}

/** A fate in words: "expires 2026-11-11 (purged 2026-11-18)", "kept while newest (then ...)". */
export function describeFate(fate: RetentionFate): string {
  if (fate.kind === 'expires')
    return fate.due
      ? `expired ${day(fate.on)}: deleted at the next lifecycle run (recoverable until ${day(fate.purgedOn)})`
      : `expires ${day(fate.on)} (recoverable until ${day(fate.purgedOn)})`;
  if (fate.kind === 'kept-while-newest')
    return fate.onceSuperseded
      ? `kept while newest (once superseded: ${fate.due ? `deleted at the next lifecycle run, its day ${day(fate.onceSuperseded)} has passed` : `expires ${day(fate.onceSuperseded)}`})`
      : `kept while newest (once superseded: never expires: ${fate.why})`;
  return `never expires: ${fate.why}`;
}

const EFFECTS: Record<PolicyChange['effect'], string> = {
  'deleted-at-next-run': 'deleted at the next lifecycle run after the deployment',
  'expires-earlier': 'expires earlier',
  'expires-later': 'expires later',
  'kept-for-ever': 'kept for ever (no rule matches it any more)',
  'earlier-once-superseded': 'the newest: kept while it is, then goes earlier',
  'later-once-superseded': 'the newest: kept while it is, then goes later',
};

/** Adds the `retention` command to `program`. */
export function registerRetention(program: Command, ctx: CommandContext): void {
  const { out, err } = ctx;
  program
    .command('retention')
    .description(
      "each backup's retention class, creation and expiry day under the deployed policy (--config); with --policy, what a changed policy would delete or keep",
    )
    .option('--target <name...>', 'only these targets')
    .option(
      '--policy <file>',
      'a proposed policy: a deployment configuration, {"retention": {...}} or the retention object itself',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup --config deployment.json retention --target infrahub-prod\n  infrahub-backup --config deployment.json retention --policy proposed.json --json',
    )
    .action(async (options: { target?: string[]; policy?: string }) => {
      const s = ctx.settings();
      if (!s.config)
        throw new CliError(
          'retention needs the deployed configuration, whose retention policy the bucket follows: give --config (or INFRAHUB_BACKUP_CONFIG)',
          EXIT.usage,
        );
      if (options.target) checkTargets(s, options.target);
      const proposed = options.policy ? loadRetentionPolicy(options.policy, err) : undefined;
      const st = storage(s);
      const targets = options.target ?? s.config.targets.map((t) => t.name);
      const now = new Date();
      const facts = await retentionFacts(st.s3, st.bucket, targets, err);
      const current = s.config.retention;
      const planned = planRetention(facts, current, now);
      const changes = proposed ? comparePolicies(facts, current, proposed, now) : undefined;
      if (s.json)
        return out(
          JSON.stringify(
            {
              now: now.toISOString(),
              policy: current,
              ...(proposed ? { proposed } : {}),
              backups: planned,
              ...(changes ? { changes } : {}),
            },
            null,
            2,
          ),
        );
      out(`policy: ${describePolicy(current)}`);
      for (const target of targets) {
        const mine = planned.filter((p) => p.target === target);
        out(`${target}${mine.length === 0 ? ': no backups' : ''}`);
        for (const p of [...mine].reverse()) out(`  ${line(p)}`);
      }
      if (!proposed || !changes) return;
      out('');
      out(`proposed (${options.policy}): ${describePolicy(proposed)}`);
      if (changes.length === 0) out('  changes no backup');
      for (const effect of Object.keys(EFFECTS) as Array<PolicyChange['effect']>) {
        const these = changes.filter((c) => c.effect === effect);
        if (these.length === 0) continue;
        out(`  ${EFFECTS[effect]}: ${these.length}`);
        for (const c of these)
          out(
            `    ${c.target}/${c.backupId}  ${c.tag}${c.retentionClass && c.tag !== c.retentionClass ? ` (${c.retentionClass})` : ''}  now: ${describeFate(c.current)}; proposed: ${describeFate(c.proposed)}`,
          );
      }
    });
}

function line(p: PlannedBackup): string {
  const cls =
    p.tag === 'newest' ? `${p.retentionClass ?? '?'} (newest)` : p.complete ? p.tag : 'INCOMPLETE (pending)';
  const moves = p.moves ? `; to ${p.moves.to} ${p.moves.done ? 'since' : 'on'} ${day(p.moves.on)}` : '';
  return `${p.backupId}  ${cls.padEnd(20)}  created ${day(p.created)}  ${describeFate(p.fate)}${moves}`;
}
