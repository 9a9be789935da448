/**
 * `infrahub-backup thaw`: requests the restore of every object of a backup that retention.coldStorage
 * moved to S3 Glacier Flexible Retrieval or Deep Archive, so that a restore, drill, export or deep
 * verification can read it (core/backup/thaw.ts); run again, it says how far the restores are. The
 * restore plan refuses such a backup until then and names this command.
 */
import { type Command, Option } from 'commander';
import {
  archivedObjectsOf,
  retrievalTime,
  THAW_DEFAULT_DAYS,
  type ThawTier,
  ThawTiers,
  thawObjects,
} from '../../core/backup/thaw.js';
import { backupIdArgument, backupOf, CliError, type CommandContext, EXIT, storage } from '../context.js';

/**
 * Commander's parser for --days: a whole number of days from 1 to 30,000 (RestoreObject's Days).
 * @throws CliError EXIT.usage naming the value
 */
function daysArgument(value: string): number {
  const days = Number(value);
  if (!Number.isInteger(days) || days < 1 || days > 30_000)
    throw new CliError(`--days "${value}" must be a whole number of days from 1 to 30000`, EXIT.usage);
  return days;
}

/** Adds the `thaw` command to `program`. */
export function registerThaw(program: Command, ctx: CommandContext): void {
  const { out, err } = ctx;
  program
    .command('thaw')
    .description(
      "restores a backup's objects archived in GLACIER or DEEP_ARCHIVE (retention.coldStorage) so that it can be read; again: how far the restores are",
    )
    .argument('<backup-id>', 'infrahub_backup_YYYYMMDD_HHMMSS', backupIdArgument)
    .option('--target <name>', 'the target (needed only when several hold this id)')
    .option('--days <days>', 'days the restored copies stay readable', daysArgument, THAW_DEFAULT_DAYS)
    .addOption(
      new Option('--tier <tier>', 'retrieval tier: time and price per GB (S3 pricing)')
        .choices(ThawTiers)
        .default('Standard'),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  infrahub-backup thaw infrahub_backup_20261101_020000 --target infrahub-prod\n  infrahub-backup thaw infrahub_backup_20261101_020000 --tier Expedited --days 2 --json\n\nNeeds s3:RestoreObject besides s3:ListBucketVersions and s3:GetObject. Standard takes 3-5 hours for GLACIER, up to 12 for DEEP_ARCHIVE; Expedited 1-5 minutes (GLACIER only); Bulk 5-12 hours (GLACIER), up to 48 (DEEP_ARCHIVE).',
    )
    .action(async (backupId: string, options: { target?: string; days: number; tier: ThawTier }) => {
      const s = ctx.settings();
      const st = storage(s);
      const { target } = await backupOf(s, st, backupId, options.target, err);
      const archived = await archivedObjectsOf(st.s3, st.bucket, target, backupId);
      const results = await thawObjects(st.s3, st.bucket, archived, {
        days: options.days,
        tier: options.tier,
      });
      const count = (o: string) => results.filter((r) => r.outcome === o).length;
      const ready = results.every((r) => r.outcome === 'restored');
      if (s.json)
        return out(
          JSON.stringify(
            { target, backupId, days: options.days, tier: options.tier, ready, objects: results },
            null,
            2,
          ),
        );
      if (results.length === 0)
        return out(`${target}/${backupId}: no object is in GLACIER or DEEP_ARCHIVE; nothing to restore`);
      const classes = [...new Set(results.map((r) => r.storageClass))].join(', ');
      out(
        `${target}/${backupId}: ${results.length} archived object(s) (${classes}): ${count('requested')} restore(s) requested now, ${count('in-progress')} in progress, ${count('restored')} restored (readable for ${options.days} days from now)`,
      );
      out(
        ready
          ? '  ready: every object can be read; restore, drill or export it now'
          : `  not ready yet: run this again to see how far it is (at ${options.tier}: ${retrievalTime(options.tier, [...new Set(results.map((r) => r.storageClass))])})`,
      );
    });
}
