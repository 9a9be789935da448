/**
 * The product's CloudWatch metrics, in one namespace. Per target (dimension `Target`), and some also
 * without dimensions, so one alarm covers a whole fleet (200 targets would otherwise need 600 alarms).
 *
 * Two ways out: the notices (core/notices/notify.ts, core/restore/report.ts) write them as CloudWatch
 * embedded metric format (EMF) lines to their log output (emfLines, writeEmf), so that no API call
 * can fail or repeat a notice; the hourly freshness check, which is no notice, calls PutMetricData
 * (publishMetrics). Both give a metric the same namespace, name and dimensions, so the alarms
 * (infra/constructs/backup-monitoring.ts) see one metric whichever way it came.
 */
import { Metrics } from '@aws-lambda-powertools/metrics';
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
  /**
   * Hours since the newest complete backup of the target whose newest is the oldest (fleet-wide,
   * hourly, whenever some target has one): how old the backup is that a target behind the silence
   * alarm would be restored from. It is still there: the newest backup never expires while it is the
   * newest (core/backup/retention.ts).
   */
  OldestBackupAgeHours: 'OldestBackupAgeHours',
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
 * Publishes metrics in batches of 500 (PutMetricData's limit per call); metrics with a `Target`
 * dimension only when `perTarget` (the deployment's `monitoring.perTargetMetrics`, which the callers
 * read from the bundled configuration). CloudWatch bills each custom metric (name and dimensions) for
 * every hour in which it is published (Amazon CloudWatch pricing), so per-target metrics cost per
 * target; fleet-wide ones (no dimensions, the alarms' metrics) are always published.
 */
export async function publishMetrics(
  cloudwatch: Pick<CloudWatchClient, 'send'>,
  all: Metric[],
  timestamp = new Date(),
  perTarget = true,
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

/** Members of an EMF line that are not metrics: logged with it, searchable, never a dimension. */
export type EmfMetadata = Record<string, string>;

/**
 * The metrics as CloudWatch embedded metric format documents, one JSON line each, built with
 * Powertools for AWS Lambda (TypeScript) Metrics (@aws-lambda-powertools/metrics `serializeMetrics`).
 *
 * One document per distinct dimension set (an EMF directive's dimension sets apply to every metric
 * in it, and a root member holds one value per name): `BackupFailed` per target and fleet-wide are
 * two lines. Powertools' default `service` dimension is cleared, so a metric's identity is exactly
 * namespace, name and the given dimensions, as PutMetricData gave it and as the alarms expect; a
 * metric without dimensions carries the empty dimension set `[[]]` ("A DimensionSet MAY be empty",
 * Amazon CloudWatch User Guide, "Specification: Embedded metric format"), which publishes it with
 * none. `metadata` (the notice's request id) is added to every line as a plain member. Metrics with a
 * `Target` dimension are left out when `perTarget` is false (monitoring.perTargetMetrics; default true).
 * Pure: nothing is written or sent. Powertools' own warnings (a timestamp CloudWatch would skip)
 * go to `warn`.
 */
export function emfLines(
  all: Metric[],
  options: {
    timestamp?: Date;
    metadata?: EmfMetadata;
    perTarget?: boolean;
    warn?: (message: string) => void;
  } = {},
): string[] {
  const perTarget = options.perTarget ?? true;
  const metrics = perTarget ? all : all.filter((m) => m.dimensions?.Target === undefined);
  const groups = new Map<string, Metric[]>();
  for (const m of metrics) {
    const key = JSON.stringify(Object.entries(m.dimensions ?? {}).sort(([a], [b]) => a.localeCompare(b)));
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const warn = options.warn ?? (() => undefined);
  const quiet = { debug: () => undefined, info: () => undefined, warn, error: warn };
  return [...groups.values()].map((group) => {
    const emf = new Metrics({ namespace: METRICS_NAMESPACE, logger: quiet });
    // Powertools adds a `service` dimension to everything by default: it would make new metrics.
    emf.clearDefaultDimensions();
    emf.addDimensions(group[0]?.dimensions ?? {});
    for (const m of group) emf.addMetric(m.name, m.unit, m.value);
    for (const [key, value] of Object.entries(options.metadata ?? {})) emf.addMetadata(key, value);
    if (options.timestamp) emf.setTimestamp(options.timestamp);
    const line = JSON.stringify(emf.serializeMetrics());
    emf.clearMetrics();
    emf.clearDimensions();
    emf.clearMetadata();
    return line;
  });
}

/**
 * Where EMF lines go: in a Lambda, standard output, which Lambda sends to the function's CloudWatch
 * Logs group, where CloudWatch extracts the metrics (Amazon CloudWatch User Guide, "Embedded metric
 * format": "Using the Lambda ... integration"). The local mode and tests pass their own.
 */
export type EmfSink = (line: string) => void;
export const stdoutEmfSink: EmfSink = (line) => {
  process.stdout.write(`${line}\n`);
};

/**
 * Writes the metrics as EMF lines (emfLines) to `sink`. Never throws: a log line that could not be
 * written is reported to `warn` and dropped, so metrics can never fail the notice they belong to.
 */
export function writeEmf(
  sink: EmfSink,
  metrics: Metric[],
  options: Parameters<typeof emfLines>[1] = {},
): void {
  try {
    for (const line of emfLines(metrics, options)) sink(line);
  } catch (err) {
    options.warn?.(`metrics not written: ${err instanceof Error ? err.message : String(err)}`);
  }
}
