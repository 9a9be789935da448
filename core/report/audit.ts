/**
 * The audit report (`infrahub-backup report`): for a period, every backup with its size, duration,
 * verification state and retention class; every restore drill (and restore) with its recovery time
 * against the objective; the failures with their cause; the policy in force. This module holds its
 * JSON document (report.json, written beside the HTML page) and the pure functions that make it from
 * what the bucket holds; reading the bucket is core/report/gather.ts, the page core/report/html.ts.
 *
 * report.json (AuditReport), units: bytes are bytes, durations seconds (one decimal), times ISO 8601
 * in UTC, days `YYYY-MM-DD` in UTC:
 *
 * ```
 * {
 *   "format": "infrahub-backup-audit-report", "version": 1,
 *   "generatedAt": "2026-11-30T09:00:00.000Z", "tool": {"name": "infrahub-backup-aws", "version": "0.1.0"},
 *   "bucket": "infrahub-backups",
 *   "period": {"since": "2026-09-02", "until": "2026-11-30",          // days, inclusive
 *              "start": "2026-09-02T00:00:00.000Z", "end": "2026-12-01T00:00:00.000Z"},  // end exclusive
 *   "targets": ["infrahub-prod", ...],
 *   "policy": {"source": "not given"}                                 // no --config
 *           | {"source": "config", "file": ..., "name": ..., "retention": {"daily": 7, "weekly": 4, "monthly": 12,
 *              "yearly": 3, "incompleteDays": 7, "noncurrentVersionDays": 7}, "rpoHours": 26, "rtoMinutes": 240,
 *              "objectLock": {"mode": "GOVERNANCE", "days": 7} | null, "replication": {"region": ...,
 *              "replicationTimeControl": false} | null, "schedules": [{"name", "kind", "expression", "timezone",
 *              "targets", "enabled"}], "targets": [names]},
 *   "counts": {"backups", "complete", "incomplete", "failed", "completeBytes", "drills", "drillsPassed",
 *              "drillsFailed", "drillsWithinObjective", "drillsOverObjective", "restores", "restoresFailed",
 *              "failures"},
 *   "backups": [AuditBackup, ...],     // by target, then oldest first
 *   "drills": [AuditRecovery, ...],    // kind "drill", by target, then oldest first
 *   "restores": [AuditRecovery, ...],  // kind "restore"
 *   "failures": [AuditFailure, ...],   // oldest first
 *   "coverage": ["what the bucket cannot show", ...]
 * }
 * ```
 */
import { z } from 'zod';
import { parseBackupId } from '../backup/layout.js';
import { type Manifest, TOOL_NAME } from '../backup/manifest.js';
import type { ComponentError } from '../backup/results.js';
import type { DeploymentConfig } from '../config/schema.js';
import { InvalidInputError } from '../errors.js';
import type { RestoreStepError } from '../restore/steps.js';
import { TOOL_VERSION } from '../version.js';

export const AUDIT_REPORT_FORMAT = 'infrahub-backup-audit-report';
export const AUDIT_REPORT_VERSION = 1;
/** The period when neither --since nor --until is given: the last 90 days, today included. */
export const DEFAULT_PERIOD_DAYS = 90;

/** The report's period: whole UTC days, both ends included. */
export interface AuditPeriod {
  /** First day, `YYYY-MM-DD` (UTC). */
  since: string;
  /** Last day, `YYYY-MM-DD` (UTC). */
  until: string;
  /** `since` at 00:00 UTC (ISO 8601): a backup or drill started at or after it is in the period. */
  start: string;
  /** The day after `until` at 00:00 UTC (ISO 8601): one started before it is in the period. */
  end: string;
}

/**
 * A backup's verification state. `complete`: its manifest exists and passes validation; the
 * manifest step writes it only after checking every recorded file against S3 (sizes, S3's stored
 * SHA-256, version ids: core/backup/seal.ts), and `infrahub-backup verify`, when run, found nothing
 * wrong. `incomplete`: no manifest and no failure recorded (still running, or stopped before a
 * runner failed). `failed`: a runner recorded its failure, the manifest is refused, or the last
 * verification found problems.
 */
export type BackupState = 'complete' | 'incomplete' | 'failed';

export interface AuditBackup {
  target: string;
  backupId: string;
  /** When the backup started: the time its id names (the backup execution's start, UTC). */
  startedAt: string;
  /** The manifest's `completed_at` (built, then sealed); null without a manifest or when it records none. */
  completedAt: string | null;
  /**
   * Bytes: a backup with a manifest, the sum of its `sizes` (its files); without one, every object
   * stored so far under its folder (failure records included).
   */
  bytes: number;
  /** Files of the manifest; without one, objects stored so far. */
  files: number;
  /**
   * Seconds from `startedAt` to `completedAt`, one decimal; null when not recorded. It includes the
   * wait for the target's lock, the preflight gate and, in a fleet, the target's turn in the Map.
   */
  durationSeconds: number | null;
  /**
   * Seconds of the longest component (the manifest's `durations_ms`: each runner's own start to
   * finish; the components run in parallel), one decimal; null when not recorded.
   */
  captureSeconds: number | null;
  state: BackupState;
  /** Why the backup is failed or incomplete, one paragraph; null when complete. */
  cause: string | null;
  /** The runners' failure records (`.runner/<component>.error.json`), oldest first. */
  errors: Array<{ component: string; error: string; message: string; at: string }>;
  /**
   * The `retention` tag (core/backup/retention.ts) of the manifest object, which the lifecycle rule
   * of that class expires, or `newest` (the target's newest complete backup, which no rule expires;
   * its class is then `manifestRetentionClass`); without a manifest, of the backup's objects
   * (`pending`). Null: untagged.
   */
  retentionClass: string | null;
  /** The manifest's own `retention_class` (it should equal the tag); null when it records none. */
  manifestRetentionClass: string | null;
  /** The last `infrahub-backup verify` of this backup (`.verified/`), null when never verified. */
  lastVerified: { at: string; ok: boolean; deep: boolean; problems: number } | null;
  /** The archive an `infrahub-backup import` made this backup from; null for backups taken here. */
  importedFrom: string | null;
}

/** A restore drill or a restore, from its report (`.restores/TARGET/RESTORE_ID/report.json`). */
export interface AuditRecovery {
  kind: 'drill' | 'restore';
  target: string;
  restoreId: string;
  /** When it started: the report's `startedAt`, or the time its id names when it has no report. */
  startedAt: string;
  /** When its report was written; null without one. */
  finishedAt: string | null;
  /** The backup it restored; null when unknown (refused before one was chosen, no report). */
  backupId: string | null;
  /** `no report`: the report step did not run (the execution still runs, or it stopped or failed before). */
  outcome: 'passed' | 'failed' | 'no report';
  /** Seconds from the execution's start to its report; null without a report. */
  totalSeconds: number | null;
  /**
   * The recovery time, seconds: a drill's `recoverySeconds` (its disposable databases started,
   * restored and validated), a restore's `totalSeconds`; null when not recorded.
   */
  recoverySeconds: number | null;
  /** The recovery time objective, seconds: the report's own (`rtoSeconds`), else --config's rtoMinutes × 60. */
  objectiveSeconds: number | null;
  /** Where `objectiveSeconds` comes from: the report (in force when it ran), the --config file, or none. */
  objectiveSource: 'report' | 'config' | null;
  /** Recovery time at most the objective, for a passed run; null when not judged. */
  withinObjective: boolean | null;
  /** What failed, as the report says (or the runner steps' error records when there is no report). */
  failures: Array<{ step: string; error: string; cause: string }>;
  /** s3:// URL of report.json; null without one. */
  report: string | null;
}

/** A failed backup, drill or restore, one per run. */
export interface AuditFailure {
  kind: 'backup' | 'drill' | 'restore';
  target: string;
  /** The backup id or the restore id. */
  id: string;
  /** When it failed: the first failure record's time, else the run's start (ISO 8601, UTC). */
  at: string;
  /** Where: the runner components or the state machine's steps that failed, comma-separated. */
  step: string;
  /** The error names, comma-separated (`Stalled`, `ManifestError`, `RestoreValidation`...). */
  error: string;
  /** The causes, `; `-separated, as recorded (user data: shown as text, never as markup). */
  cause: string;
}

/** The policy in force: from the --config file when one is given. */
export type AuditPolicy =
  | { source: 'not given' }
  | {
      source: 'config';
      /** The configuration file it was read from. */
      file: string;
      /** The deployment's name (its stacks' prefix). */
      name: string;
      /** Retention counts per class (daily backups, weeks, months, years) and days for leftovers and old versions. */
      retention: {
        daily: number;
        weekly: number;
        monthly: number;
        yearly: number;
        incompleteDays: number;
        noncurrentVersionDays: number;
      };
      /** Recovery point objective, hours. */
      rpoHours: number;
      /** Recovery time objective, minutes. */
      rtoMinutes: number;
      /** S3 Object Lock: mode and days; null when not configured. */
      objectLock: { mode: string; days: number } | null;
      /** The off-region copy; null when not configured. */
      replication: { region: string; replicationTimeControl: boolean } | null;
      schedules: Array<{
        name: string;
        kind: string;
        expression: string;
        timezone: string;
        targets: string[] | '*';
        enabled: boolean;
      }>;
      /** The targets it configures. */
      targets: string[];
    };

export interface AuditCounts {
  backups: number;
  complete: number;
  incomplete: number;
  failed: number;
  /** Bytes of the complete backups. */
  completeBytes: number;
  drills: number;
  drillsPassed: number;
  /** Failed drills and drills without a report. */
  drillsFailed: number;
  drillsWithinObjective: number;
  drillsOverObjective: number;
  restores: number;
  /** Failed restores and restores without a report. */
  restoresFailed: number;
  failures: number;
}

export interface AuditReport {
  format: typeof AUDIT_REPORT_FORMAT;
  version: typeof AUDIT_REPORT_VERSION;
  generatedAt: string;
  tool: { name: string; version: string };
  bucket: string;
  period: AuditPeriod;
  targets: string[];
  policy: AuditPolicy;
  counts: AuditCounts;
  backups: AuditBackup[];
  drills: AuditRecovery[];
  restores: AuditRecovery[];
  failures: AuditFailure[];
  /** What the bucket cannot show, one sentence each: read with the rest. */
  coverage: string[];
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;

/**
 * 00:00 UTC of a `YYYY-MM-DD` day, or undefined when it is not one (the format, or a day the calendar
 * lacks). Every year 0000-9999 is read as written: `Date.UTC` alone maps years 0-99 to 1900-1999
 * (ECMA-262, MakeFullYear), so `0001-01-01` was refused; setUTCFullYear does not.
 */
export function parseDay(text: string): Date | undefined {
  const m = DAY.exec(text);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
    ? date
    : undefined;
}

const dayOf = (date: Date) => date.toISOString().slice(0, 10);

/**
 * The report's period from --since and --until (`YYYY-MM-DD`, UTC days, both included). Neither:
 * the last DEFAULT_PERIOD_DAYS days up to today (of `now`, UTC); --since alone: up to today;
 * --until alone: the DEFAULT_PERIOD_DAYS days ending that day.
 * @throws InvalidInputError ("report period", one problem) naming the option and the value when it
 *   is not a real day written `YYYY-MM-DD`, and when --since comes after --until
 */
export function parsePeriod(
  options: { since?: string; until?: string },
  now: Date = new Date(),
): AuditPeriod {
  const read = (name: 'since' | 'until', text: string | undefined) => {
    if (text === undefined) return undefined;
    const day = parseDay(text);
    if (!day)
      throw new InvalidInputError('report period', [
        `--${name} ${JSON.stringify(text)} is not a day: write it YYYY-MM-DD (a real date, UTC), for example 2026-11-30`,
      ]);
    return day;
  };
  const since = read('since', options.since);
  const until = read('until', options.until);
  const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const last = until ?? (since && since > today ? since : today);
  const first = since ?? new Date(last.getTime() - (DEFAULT_PERIOD_DAYS - 1) * DAY_MS);
  if (first > last)
    throw new InvalidInputError('report period', [
      `--since ${dayOf(first)} is after --until ${dayOf(last)}: the period must start on or before its last day`,
    ]);
  return {
    since: dayOf(first),
    until: dayOf(last),
    start: first.toISOString(),
    end: new Date(last.getTime() + DAY_MS).toISOString(),
  };
}

/** Whether a moment (ms since the epoch) lies in the period. */
export function inPeriod(period: AuditPeriod, at: Date | undefined): boolean {
  return (
    at !== undefined && at.getTime() >= Date.parse(period.start) && at.getTime() < Date.parse(period.end)
  );
}

/** `drill_YYYYMMDD_HHMMSS_<suffix>` or `restore_...`: its kind and the moment it names (UTC), or undefined. */
export function parseRestoreId(id: string): { kind: 'drill' | 'restore'; at: Date } | undefined {
  const m = /^(drill|restore)_(\d{8}_\d{6})_[a-z0-9]{1,12}$/.exec(id);
  const at = m ? parseBackupId(`infrahub_backup_${m[2]}`) : undefined;
  return m && at ? { kind: m[1] as 'drill' | 'restore', at } : undefined;
}

const tenths = (seconds: number) => Math.round(seconds * 10) / 10;

/** What the bucket says of one backup (core/report/gather.ts reads it). */
export interface BackupFacts {
  target: string;
  backupId: string;
  /** Its manifest, valid for this backup; undefined when it has none or it is refused. */
  manifest?: Manifest | undefined;
  /** Why its manifest was refused (ManifestError's message). */
  refused?: string | undefined;
  /** Without a manifest: the objects under its folder (count and bytes). */
  stored?: { objects: number; bytes: number } | undefined;
  /** Without a manifest: the components whose results are recorded (`.runner/<component>.json`). */
  finished?: readonly string[] | undefined;
  /** The runners' failure records. */
  errors: readonly ComponentError[];
  /** The `retention` tag read (GetObjectTagging), undefined when untagged. */
  tag?: string | undefined;
  verification?: { verifiedAt: string; ok: boolean; deep: boolean; problems: number } | undefined;
}

/**
 * One backup's row from what the bucket says of it: its state (BackupState) and cause, its size,
 * duration and capture time (from the manifest: see AuditBackup), its retention class. Pure.
 */
export function backupRecord(facts: BackupFacts): AuditBackup {
  const { manifest } = facts;
  const startedAt = (parseBackupId(facts.backupId) as Date).toISOString();
  const errors = [...facts.errors]
    .sort((a, b) => a.failedAt.localeCompare(b.failedAt))
    .map((e) => ({ component: e.component, error: e.error.name, message: e.error.message, at: e.failedAt }));
  const completedAt = manifest?.completed_at
    ? new Date(Date.parse(manifest.completed_at)).toISOString()
    : null;
  const duration = completedAt ? (Date.parse(completedAt) - Date.parse(startedAt)) / 1000 : undefined;
  const componentMs = Object.values(manifest?.durations_ms ?? {});
  let state: BackupState;
  let cause: string | null = null;
  const said = errors.map((e) => `runner ${e.component}: ${e.error}: ${e.message}`).join('; ');
  if (facts.refused !== undefined) {
    state = 'failed';
    cause = `manifest refused: ${facts.refused.replace(/\s*\n\s*/g, ' ')}`;
  } else if (manifest && facts.verification && !facts.verification.ok) {
    state = 'failed';
    cause = `infrahub-backup verify${facts.verification.deep ? ' --deep' : ''} found ${facts.verification.problems} problem(s) on ${facts.verification.verifiedAt}`;
  } else if (manifest) {
    state = 'complete';
  } else if (errors.length > 0) {
    state = 'failed';
    cause = said;
  } else {
    state = 'incomplete';
    cause = `no manifest and no failure recorded (still running, or stopped before a runner failed: see the execution's history)${
      facts.finished?.length
        ? `; results recorded by ${facts.finished.join(', ')}`
        : '; no component result recorded'
    }`;
  }
  return {
    target: facts.target,
    backupId: facts.backupId,
    startedAt,
    completedAt,
    bytes: manifest
      ? Object.values(manifest.sizes ?? {}).reduce((a, b) => a + b, 0)
      : (facts.stored?.bytes ?? 0),
    files: manifest ? Object.keys(manifest.checksums).length : (facts.stored?.objects ?? 0),
    durationSeconds: duration !== undefined && duration >= 0 ? tenths(duration) : null,
    captureSeconds: componentMs.length > 0 ? tenths(Math.max(...componentMs) / 1000) : null,
    state,
    cause,
    errors,
    retentionClass: facts.tag ?? null,
    manifestRetentionClass: manifest?.retention_class ?? null,
    lastVerified: facts.verification
      ? {
          at: facts.verification.verifiedAt,
          ok: facts.verification.ok,
          deep: facts.verification.deep,
          problems: facts.verification.problems,
        }
      : null,
    importedFrom: typeof manifest?.imported_from === 'string' ? manifest.imported_from : null,
  };
}

/**
 * A restore or drill report as the audit reads it (core/restore/report.ts RestoreReport): the fields
 * it uses, others kept. Reports written before `rtoMinutes` existed have no `rtoSeconds`.
 */
export const StoredRecoveryReportSchema = z.looseObject({
  kind: z.enum(['restore', 'drill']),
  target: z.string().optional(),
  backupId: z.string().optional(),
  restoreId: z.string().optional(),
  ok: z.boolean(),
  startedAt: z.string(),
  finishedAt: z.string(),
  totalSeconds: z.number().nonnegative(),
  recoverySeconds: z.number().nonnegative().optional(),
  rtoSeconds: z.number().positive().optional(),
  withinRto: z.boolean().optional(),
  failures: z.array(z.looseObject({ step: z.string(), error: z.string(), cause: z.string() })).default([]),
  report: z.string().optional(),
});
export type StoredRecoveryReport = z.output<typeof StoredRecoveryReportSchema>;

/** What the bucket says of one restore or drill (core/report/gather.ts reads it). */
export interface RecoveryFacts {
  target: string;
  restoreId: string;
  /** Its report.json, undefined when there is none. */
  report?: StoredRecoveryReport | undefined;
  /** Why report.json could not be used (not JSON, not a report). */
  unreadable?: string | undefined;
  /** The runner steps' failure records (`<step>.error.json`), read when there is no usable report. */
  stepErrors: readonly RestoreStepError[];
}

/**
 * One restore's or drill's row: its outcome and recovery time against the objective (the report's
 * own `rtoSeconds`, in force when it ran; else `configObjectiveSeconds`, the --config file's
 * rtoMinutes × 60, judged here the way the report would: recoveryAgainstObjective in
 * core/restore/report.ts). A restore id that is not one (by RestoreIdSchema) gives undefined. Pure.
 */
export function recoveryRecord(
  facts: RecoveryFacts,
  configObjectiveSeconds?: number,
): AuditRecovery | undefined {
  const id = parseRestoreId(facts.restoreId);
  if (!id) return undefined;
  const r = facts.report;
  if (!r) {
    const failures = facts.stepErrors.map((e) => ({
      step: e.step,
      error: e.error.name,
      cause: `runner ${e.step}: ${e.error.message}`,
    }));
    if (facts.unreadable)
      failures.unshift({ step: 'report', error: 'ReportUnreadable', cause: facts.unreadable });
    return {
      kind: id.kind,
      target: facts.target,
      restoreId: facts.restoreId,
      startedAt: id.at.toISOString(),
      finishedAt: null,
      backupId: facts.stepErrors[0]?.backupId ?? null,
      outcome: 'no report',
      totalSeconds: null,
      recoverySeconds: null,
      objectiveSeconds: configObjectiveSeconds ?? null,
      objectiveSource: configObjectiveSeconds !== undefined ? 'config' : null,
      withinObjective: null,
      failures,
      report: null,
    };
  }
  const recovery = id.kind === 'drill' ? r.recoverySeconds : r.totalSeconds;
  const objective = r.rtoSeconds ?? configObjectiveSeconds;
  const withinObjective =
    r.rtoSeconds !== undefined && r.withinRto !== undefined
      ? r.withinRto
      : r.ok && recovery !== undefined && objective !== undefined
        ? recovery <= objective
        : null;
  const startedAt = Number.isNaN(Date.parse(r.startedAt)) ? id.at : new Date(Date.parse(r.startedAt));
  const finishedAt = Number.isNaN(Date.parse(r.finishedAt)) ? null : new Date(Date.parse(r.finishedAt));
  return {
    kind: id.kind,
    target: facts.target,
    restoreId: facts.restoreId,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt?.toISOString() ?? null,
    backupId: r.backupId ?? null,
    outcome: r.ok ? 'passed' : 'failed',
    totalSeconds: r.totalSeconds,
    recoverySeconds: recovery ?? null,
    objectiveSeconds: objective ?? null,
    objectiveSource: r.rtoSeconds !== undefined ? 'report' : objective !== undefined ? 'config' : null,
    withinObjective,
    failures: r.failures.map((f) => ({ step: f.step, error: f.error, cause: f.cause })),
    report: r.report ?? null,
  };
}

const unique = (values: readonly string[]) => [...new Set(values)];

/** One failure per failed backup and per failed (or unreported) restore and drill, oldest first. Pure. */
export function failuresOf(
  backups: readonly AuditBackup[],
  recoveries: readonly AuditRecovery[],
): AuditFailure[] {
  const failures: AuditFailure[] = [];
  for (const b of backups) {
    if (b.state !== 'failed') continue;
    failures.push({
      kind: 'backup',
      target: b.target,
      id: b.backupId,
      at: b.errors[0]?.at ?? b.startedAt,
      step: b.errors.length > 0 ? unique(b.errors.map((e) => e.component)).join(', ') : 'manifest',
      error:
        b.errors.length > 0
          ? unique(b.errors.map((e) => e.error)).join(', ')
          : b.cause?.startsWith('manifest refused')
            ? 'ManifestError'
            : 'VerificationFailed',
      cause: b.cause ?? '',
    });
  }
  for (const r of recoveries) {
    if (r.outcome === 'passed') continue;
    failures.push({
      kind: r.kind,
      target: r.target,
      id: r.restoreId,
      at: r.finishedAt ?? r.startedAt,
      step: unique(r.failures.map((f) => f.step)).join(', ') || 'report',
      error: unique(r.failures.map((f) => f.error)).join(', ') || 'NoReport',
      cause:
        r.failures.map((f) => f.cause).join('; ') ||
        `no report.json and no failure recorded: the ${r.kind} is still running, or its execution stopped before its report (see its history)`,
    });
  }
  return failures.sort((a, b) => a.at.localeCompare(b.at) || a.target.localeCompare(b.target));
}

/** The counts of the summary. Pure. */
export function countsOf(
  backups: readonly AuditBackup[],
  drills: readonly AuditRecovery[],
  restores: readonly AuditRecovery[],
  failures: readonly AuditFailure[],
): AuditCounts {
  const complete = backups.filter((b) => b.state === 'complete');
  return {
    backups: backups.length,
    complete: complete.length,
    incomplete: backups.filter((b) => b.state === 'incomplete').length,
    failed: backups.filter((b) => b.state === 'failed').length,
    completeBytes: complete.reduce((n, b) => n + b.bytes, 0),
    drills: drills.length,
    drillsPassed: drills.filter((d) => d.outcome === 'passed').length,
    drillsFailed: drills.filter((d) => d.outcome !== 'passed').length,
    drillsWithinObjective: drills.filter((d) => d.withinObjective === true).length,
    drillsOverObjective: drills.filter((d) => d.withinObjective === false).length,
    restores: restores.length,
    restoresFailed: restores.filter((r) => r.outcome !== 'passed').length,
    failures: failures.length,
  };
}

/** The policy in force from a deployment configuration and its file; `not given` without one. Pure. */
export function policyOf(config?: { config: DeploymentConfig; file: string }): AuditPolicy {
  if (!config) return { source: 'not given' };
  const c = config.config;
  return {
    source: 'config',
    file: config.file,
    name: c.name,
    retention: {
      daily: c.retention.daily,
      weekly: c.retention.weekly,
      monthly: c.retention.monthly,
      yearly: c.retention.yearly,
      incompleteDays: c.retention.incompleteDays,
      noncurrentVersionDays: c.retention.noncurrentVersionDays,
    },
    rpoHours: c.rpoHours,
    rtoMinutes: c.rtoMinutes,
    objectLock: c.objectLock ? { mode: c.objectLock.mode, days: c.objectLock.days } : null,
    replication: c.replication
      ? { region: c.replication.region, replicationTimeControl: c.replication.replicationTimeControl }
      : null,
    schedules: c.schedules.map((s) => ({
      name: s.name,
      kind: s.kind,
      expression: s.expression,
      timezone: s.timezone,
      targets: s.targets === '*' ? '*' : [...s.targets],
      enabled: s.enabled,
    })),
    targets: c.targets.map((t) => t.name),
  };
}

/** What the bucket cannot show, for the report's last section, in the policy's terms when it is given. Pure. */
export function coverageNotes(policy: AuditPolicy): string[] {
  const incomplete =
    policy.source === 'config' ? `${policy.retention.incompleteDays} days` : 'retention.incompleteDays days';
  return [
    `A failed or incomplete backup's objects are tagged retention=pending and expire after ${incomplete}: failures older than that are no longer in the bucket, nor in this report.`,
    "A backup that failed before any runner wrote (its lock, the preflight gate) leaves nothing in the bucket: such failures are in the backup execution's history, its failure notice and the BackupFailed alarm, not here.",
    'Complete backups expire by their retention class; a backup expired before the report was made is not listed. Restore and drill reports (.restores/) do not expire.',
    'complete means the manifest exists and passes validation: the manifest step writes it only after checking every file against S3 (sizes, stored SHA-256 checksums, version ids); a later infrahub-backup verify that found problems makes the backup failed here.',
    "Durations come from the manifest: startedAt is the time in the backup id (the backup execution's start), completedAt the manifest's completed_at; capture is the longest component as the runners timed it.",
  ];
}

/** The report from its rows: failures, counts, policy and coverage added, rows sorted. Pure. */
export function assembleReport(input: {
  bucket: string;
  period: AuditPeriod;
  targets: readonly string[];
  backups: readonly AuditBackup[];
  recoveries: readonly AuditRecovery[];
  config?: { config: DeploymentConfig; file: string } | undefined;
  now: Date;
}): AuditReport {
  const byTargetThenTime = <T extends { target: string; startedAt: string }>(a: T, b: T) =>
    a.target.localeCompare(b.target) || a.startedAt.localeCompare(b.startedAt);
  const backups = [...input.backups].sort(byTargetThenTime);
  const drills = input.recoveries.filter((r) => r.kind === 'drill').sort(byTargetThenTime);
  const restores = input.recoveries.filter((r) => r.kind === 'restore').sort(byTargetThenTime);
  const failures = failuresOf(backups, [...drills, ...restores]);
  const policy = policyOf(input.config);
  return {
    format: AUDIT_REPORT_FORMAT,
    version: AUDIT_REPORT_VERSION,
    generatedAt: input.now.toISOString(),
    tool: { name: TOOL_NAME, version: TOOL_VERSION },
    bucket: input.bucket,
    period: input.period,
    targets: [...input.targets].sort(),
    policy,
    counts: countsOf(backups, drills, restores, failures),
    backups,
    drills,
    restores,
    failures,
    coverage: coverageNotes(policy),
  };
}
