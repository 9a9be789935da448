/**
 * The product's CloudWatch metrics, in one namespace. Per target (dimension `Target`), and some also
 * without dimensions, so one alarm covers a whole fleet (200 targets would otherwise need 600 alarms).
 */
import { type CloudWatchClient, PutMetricDataCommand, type StandardUnit } from '@aws-sdk/client-cloudwatch';

export const METRICS_NAMESPACE = 'InfrahubBackup';

export const MetricNames = {
  /** 1 when a target's backup completed (per target). */
  BackupSucceeded: 'BackupSucceeded',
  /** 1 when a target's backup failed (per target and fleet-wide): the failed-backup alarm. */
  BackupFailed: 'BackupFailed',
  /** Seconds from the execution's start to the target's notice (per target). */
  BackupDurationSeconds: 'BackupDurationSeconds',
  /** Bytes stored by a backup (per target, and per target and component). */
  BackupBytes: 'BackupBytes',
  /** Hours since the target's last complete backup (per target), published hourly. */
  LastBackupAgeHours: 'LastBackupAgeHours',
  /** Targets whose last complete backup is older than the RPO, or that have none (fleet-wide): the silence alarm. */
  TargetsWithoutRecentBackup: 'TargetsWithoutRecentBackup',
  /** 1 when a restore drill failed (per target and fleet-wide); published by the restore drill. */
  RestoreDrillFailed: 'RestoreDrillFailed',
  /** Measured recovery time of a restore drill, seconds (per target). */
  RestoreDrillSeconds: 'RestoreDrillSeconds',
  /** 1 when a restore drill passed (per target). */
  RestoreDrillSucceeded: 'RestoreDrillSucceeded',
  /** 1 when a restore completed and validated, or failed (per target). */
  RestoreSucceeded: 'RestoreSucceeded',
  RestoreFailed: 'RestoreFailed',
  /** Seconds from a restore's start to its report (per target): the recovery time actually taken. */
  RestoreSeconds: 'RestoreSeconds',
} as const;

export interface Metric {
  name: (typeof MetricNames)[keyof typeof MetricNames];
  value: number;
  unit: StandardUnit;
  dimensions?: Record<string, string>;
}

/**
 * The environment variable that turns per-target metrics off (`"false"`): the deployment's
 * `monitoring.perTargetMetrics` (infra/constructs/backup-functions.ts sets it on every function).
 */
export const PER_TARGET_METRICS_ENV = 'PER_TARGET_METRICS';

/**
 * Whether metrics with a `Target` dimension are published: yes unless `PER_TARGET_METRICS` is
 * `"false"`. CloudWatch bills each custom metric (name and dimensions) for every hour in which it is
 * published (Amazon CloudWatch pricing), so per-target metrics cost per target; fleet-wide ones
 * (no dimensions, the alarms' metrics) are always published.
 */
export function perTargetMetricsEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[PER_TARGET_METRICS_ENV] !== 'false';
}

/**
 * Publishes metrics in batches of 500 (PutMetricData's limit per call); metrics with a `Target`
 * dimension only when per-target metrics are enabled (perTargetMetricsEnabled).
 */
export async function publishMetrics(
  cloudwatch: Pick<CloudWatchClient, 'send'>,
  all: Metric[],
  timestamp = new Date(),
  perTarget = perTargetMetricsEnabled(),
): Promise<void> {
  const metrics = perTarget ? all : all.filter((m) => m.dimensions?.Target === undefined);
  for (let i = 0; i < metrics.length; i += 500) {
    await cloudwatch.send(
      new PutMetricDataCommand({
        Namespace: METRICS_NAMESPACE,
        MetricData: metrics.slice(i, i + 500).map((m) => ({
          MetricName: m.name,
          Value: m.value,
          Unit: m.unit,
          Timestamp: timestamp,
          Dimensions: Object.entries(m.dimensions ?? {}).map(([Name, Value]) => ({ Name, Value })),
        })),
      }),
    );
  }
}
