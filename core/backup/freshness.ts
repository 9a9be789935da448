/**
 * Silence is a failure: hourly, for every configured target, the age of its last complete backup
 * (a manifest exists), published per target, and the number of targets with no complete backup
 * within the RPO published fleet-wide, so one alarm fires for any of them, and also when this
 * function stops publishing (missing data is treated as breaching). How old the backups are is
 * published fleet-wide too (OldestBackupAgeHours: the oldest of the targets' newest complete
 * backups), so the age is known with per-target metrics off, and said in words in the log line that
 * names the stale targets: the newest backup of a target never expires while it is the newest
 * (core/backup/retention.ts), so that is what a restore would still find.
 */
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { S3Client } from '@aws-sdk/client-s3';
import { mapLimit } from '../concurrency.js';
import type { Logger } from '../log.js';
import { type Metric, MetricNames, publishMetrics } from '../metrics.js';
import { describeFutureBackups, latestValidBackup } from './catalog.js';
import { parseBackupId } from './layout.js';

export interface TargetFreshness {
  target: string;
  lastCompleteBackup?: string;
  ageHours?: number;
  stale: boolean;
  /** Backups dated later than now, passed over (never fresh): named so someone looks at them. */
  future?: string[];
}

export interface FreshnessDeps {
  s3: S3Client;
  bucket: string;
  targets: string[];
  rpoHours: number;
  cloudwatch: Pick<CloudWatchClient, 'send'>;
  logger: Logger;
  now?: () => Date;
  /**
   * The deployment's `monitoring.perTargetMetrics` (the handler reads it from the bundled
   * configuration): false publishes only the fleet-wide metric. Default true.
   */
  perTargetMetrics?: boolean;
}

/**
 * Checks every target's newest complete backup (latestValidBackup) against `rpoHours` and publishes
 * the metrics (LastBackupAgeHours per target, TargetsWithoutRecentBackup and OldestBackupAgeHours
 * fleet-wide).
 * @returns each target's finding (sorted by name), the stale targets' names, the oldest newest
 *   backup's age in hours (undefined when no target has a complete backup), and `summary`: the stale
 *   targets in words ("lab: newest complete backup infrahub_backup_... is 50 h old (RPO 26 h), kept
 *   while it is the newest"), empty when none is stale
 * @throws StorageError when S3 cannot be read; CloudWatch's errors as they come
 */
export async function freshnessStep(deps: FreshnessDeps): Promise<{
  targets: TargetFreshness[];
  stale: string[];
  oldestAgeHours?: number;
  summary: string;
}> {
  const now = deps.now?.() ?? new Date();
  const results = await mapLimit(deps.targets, 8, async (target): Promise<TargetFreshness> => {
    // A manifest that exists but is refused (malformed, unsafe) is no complete backup: it must not
    // keep the RPO alarm quiet. Each one passed over is logged with its reason.
    // A backup dated later than now (an archive or folder named by hand, a wrong clock) is never
    // fresh either: it would keep the alarm quiet for decades. Each is logged by name.
    const { backupId: id, refused, future } = await latestValidBackup(deps.s3, deps.bucket, target, now);
    if (future.length > 0)
      deps.logger.warn('backups dated in the future passed over', {
        target,
        backupIds: future,
        reason: describeFutureBackups(target, future, now),
      });
    for (const r of refused)
      deps.logger.warn('backup passed over: its manifest is refused', {
        target,
        backupId: r.backupId,
        reason: r.reason,
      });
    const taken = id ? parseBackupId(id) : undefined;
    const ageHours = taken
      ? Math.round(((now.getTime() - taken.getTime()) / 3_600_000) * 10) / 10
      : undefined;
    return {
      target,
      ...(id ? { lastCompleteBackup: id } : {}),
      ...(ageHours !== undefined ? { ageHours } : {}),
      ...(future.length > 0 ? { future } : {}),
      stale: ageHours === undefined || ageHours > deps.rpoHours,
    };
  });
  results.sort((a, b) => a.target.localeCompare(b.target));
  const stale = results.filter((r) => r.stale).map((r) => r.target);
  const ages = results.flatMap((r) => (r.ageHours === undefined ? [] : [r.ageHours]));
  const oldestAgeHours = ages.length > 0 ? Math.max(...ages) : undefined;
  const summary = results
    .filter((r) => r.stale)
    .map((r) =>
      r.lastCompleteBackup
        ? `${r.target}: newest complete backup ${r.lastCompleteBackup} is ${r.ageHours} h old (RPO ${deps.rpoHours} h), kept while it is the newest`
        : `${r.target}: no complete backup`,
    )
    .join('; ');
  const metrics: Metric[] = [
    ...results.flatMap((r) =>
      r.ageHours === undefined
        ? []
        : [
            {
              name: MetricNames.LastBackupAgeHours,
              value: r.ageHours,
              unit: 'None' as const,
              dimensions: { Target: r.target },
            },
          ],
    ),
    { name: MetricNames.TargetsWithoutRecentBackup, value: stale.length, unit: 'Count' },
    ...(oldestAgeHours !== undefined
      ? [{ name: MetricNames.OldestBackupAgeHours, value: oldestAgeHours, unit: 'None' as const }]
      : []),
  ];
  await publishMetrics(deps.cloudwatch, metrics, now, deps.perTargetMetrics ?? true);
  if (stale.length > 0) {
    deps.logger.warn(`targets without a complete backup within the RPO: ${summary}`, {
      rpoHours: deps.rpoHours,
      stale: results.filter((r) => r.stale),
      ...(oldestAgeHours !== undefined ? { oldestAgeHours } : {}),
    });
  } else {
    deps.logger.info('every target has a complete backup within the RPO', { targets: results.length });
  }
  return { targets: results, stale, ...(oldestAgeHours !== undefined ? { oldestAgeHours } : {}), summary };
}
