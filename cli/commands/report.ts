/**
 * `infrahub-backup report`: audit evidence for a period, written into a folder as one self-contained
 * HTML page and its JSON (cli/ops/audit-report.ts; the report itself is core/report/).
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../core/errors.js';
import { formatBytes } from '../../core/format.js';
import { type AuditPeriod, DEFAULT_PERIOD_DAYS, parsePeriod } from '../../core/report/audit.js';
import { CliError, type CommandContext, checkBucket, checkTargets, EXIT, storage } from '../context.js';
import { assertReportOutDir, writeAuditReport } from '../ops/audit-report.js';

/** Adds the `report` command to `program`. */
export function registerReport(program: Command, ctx: CommandContext): void {
  const { out, err } = ctx;
  program
    .command('report')
    .description(
      'audit evidence for a period: one self-contained HTML page and its JSON (every backup, drills against the recovery time objective, failures with their cause, the policy in force)',
    )
    .requiredOption('--out <dir>', 'folder to write report.html and report.json into (created when missing)')
    .option(
      '--since <YYYY-MM-DD>',
      `first day of the period, UTC (default: ${DEFAULT_PERIOD_DAYS - 1} days before --until)`,
    )
    .option('--until <YYYY-MM-DD>', 'last day of the period, UTC, included (default: today)')
    .option(
      '--target <name...>',
      'only these targets (repeatable; default: every target with backups or reports in the bucket, and every configured one)',
    )
    .addHelpText(
      'after',
      '\nThe policy in force (retention, rpoHours, rtoMinutes, Object Lock, replication) comes from --config; without it the report says "not given".\n\nExamples:\n  infrahub-backup --config config/production.json report --out audit-2026-q4 --since 2026-10-01 --until 2026-12-31\n  infrahub-backup report --out audit --target infrahub-prod --json',
    )
    .action(async (options: { out: string; since?: string; until?: string; target?: string[] }) => {
      const s = ctx.settings();
      let period: AuditPeriod;
      try {
        period = parsePeriod(options);
      } catch (e) {
        if (e instanceof InvalidInputError) throw new CliError(e.problems.join('\n'), EXIT.usage);
        throw e;
      }
      // Before S3: a malformed or (with --config) unconfigured target is refused, not reported as empty.
      if (options.target) checkTargets(s, options.target);
      assertReportOutDir(options.out);
      const st = storage(s);
      await checkBucket(st);
      const { html, json, report } = await writeAuditReport(st.s3, st.bucket, {
        period,
        targets: options.target ? [...new Set(options.target)] : undefined,
        config: s.config && s.configFile ? { config: s.config, file: s.configFile } : undefined,
        outDir: options.out,
        warn: err,
      });
      const c = report.counts;
      if (s.json)
        return out(
          JSON.stringify({ html, json, period: report.period, targets: report.targets, counts: c }, null, 2),
        );
      out(`audit report for ${period.since} to ${period.until} (UTC), ${report.targets.length} target(s)`);
      out(
        `  backups   ${c.backups}: ${c.complete} complete (${formatBytes(c.completeBytes)}), ${c.incomplete} incomplete, ${c.failed} failed`,
      );
      out(
        `  drills    ${c.drills}: ${c.drillsPassed} passed, ${c.drillsFailed} failed or unreported; ${c.drillsWithinObjective} within the recovery time objective, ${c.drillsOverObjective} over it`,
      );
      out(`  restores  ${c.restores}: ${c.restoresFailed} failed or unreported`);
      out(`  failures  ${c.failures}`);
      out(
        `  policy    ${report.policy.source === 'config' ? `from ${report.policy.file}` : 'not given (no --config)'}`,
      );
      out(html);
      out(json);
    });
}
