/**
 * The last state of a restore or a drill: gathers what each runner step reported
 * (`.restores/TARGET/RESTORE_ID/<step>.json`, or `<step>.error.json`) and what the state machine
 * caught, writes the report with per-step timings to `.restores/TARGET/RESTORE_ID/report.json`,
 * publishes the metrics (a drill: its recovery time, and success or failure for the alarm) and sends
 * the notice. Returns `ok` and a one-paragraph summary, the execution's cause when it failed.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { BackupIdSchema, RestoreIdSchema, restorePrefix, restoreStepKey } from '../backup/layout.js';
import { lockKey } from '../backup/lock.js';
import { runnerCommandOf } from '../backup/runner-steps.js';
import { parseInput } from '../config/load.js';
import { targetName } from '../config/schema.js';
import { type Metric, MetricNames } from '../metrics.js';
import {
  bytes,
  clip,
  DetailTypes,
  deliverNotice,
  describeCause,
  LockReleaseSchema,
  lockLeftLines,
  type NotifyDeps,
  noticeRequestId,
} from '../notices/deliver.js';
import { redactValue } from '../redact.js';
import type { RestoreSubcommand } from '../runner-subcommands.js';
import { getJson, listAll, putJson } from '../s3/objects.js';
import {
  type RestoreStepError,
  RestoreStepErrorSchema,
  type RestoreStepResult,
  RestoreStepResultSchema,
} from './steps.js';

const FailureSchema = z.looseObject({ step: z.string(), error: z.string(), cause: z.string() });

export const RestoreReportEventSchema = z.strictObject({
  kind: z.enum(['restore', 'drill']),
  executionId: z.string().min(1),
  startedAt: z.iso.datetime({ offset: true }),
  /** The execution input: names the target when planning failed before a plan existed. */
  input: z.unknown().optional(),
  /** The plan (empty when planning failed: the refusal is then the failure reported). */
  plan: z.looseObject({
    /** Per component, the files and bytes its manifest records (restore-plan's `expected`). */
    expected: z
      .record(z.string(), z.strictObject({ files: z.number().int(), bytes: z.number().int() }))
      .optional(),
    target: targetName.optional(),
    /** The target whose backup is restored (restore-plan's `source`; another target for a refresh). */
    source: targetName.optional(),
    /** A refresh: restore-plan's RefreshPlan (what becomes of the deployment id). */
    refresh: z
      .looseObject({
        source: targetName,
        deploymentId: z.looseObject({ action: z.enum(['reset', 'untouched']) }),
      })
      .optional(),
    backupId: BackupIdSchema.optional(),
    restoreId: RestoreIdSchema.optional(),
    /** A fleet drill's plan (restore-plan's planDrillFleet): `drill-fleet` and its targets. */
    kind: z.string().optional(),
    targets: z.array(z.string()).optional(),
  }),
  /** The restore's Parallel branches, each `{component, ok, skipped?, failure?}`. */
  branches: z
    .array(z.looseObject({ component: z.string(), ok: z.boolean(), failure: FailureSchema.optional() }))
    .default([]),
  /** Failures outside the branches, by where they happened (plan, lock, quiesce, restore, drill, restart). */
  failures: z.record(z.string(), FailureSchema).default({}),
  /** Seconds spent scaling the Infrahub services down and up again, when they were. */
  quiesce: z.strictObject({ stopSeconds: z.number(), startSeconds: z.number() }).partial().optional(),
  /** What releasing the target's lock came to (restores; a drill takes no lock): see notify's LockReleaseSchema. */
  lockRelease: LockReleaseSchema.optional(),
  /** The lock's lifetime (the execution's timeout), for when a lock left behind expires. */
  lockTtlSeconds: z.number().int().positive().optional(),
  /**
   * A fleet drill whose Map failed as a whole: the Map state (`step`), the error its Catch caught
   * ({Error, Cause}) and the fleet report's summary (core/backup/fleet-report.ts
   * drillMapFailureReport), what is known of each target's drill. The caught error is a failure.
   */
  fleet: z
    .strictObject({
      step: z.string().min(1),
      failure: z.looseObject({ Error: z.string().min(1), Cause: z.string().default('') }),
      report: z.string(),
    })
    .optional(),
});
export type RestoreReportEvent = z.input<typeof RestoreReportEventSchema>;

export interface RestoreReport {
  kind: 'restore' | 'drill';
  target?: string;
  /** A refresh: the target whose backup was restored into `target`. */
  source?: string;
  /**
   * A refresh that restored the graph: the Infrahub deployment id it came with (the source's) and
   * the one it holds now (the destination's own, or a new one), as validate-neo4j set it.
   */
  deploymentId?: DeploymentIdLine;
  backupId?: string;
  restoreId?: string;
  executionId: string;
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  /** From the execution's start to this report. */
  totalSeconds: number;
  /** A drill: from the first disposable database's start to the last validation. */
  recoverySeconds?: number;
  /**
   * The recovery time objective in force, in seconds: the deployment's `rtoMinutes` × 60 (given to
   * the step as RestoreReportDeps.rtoMinutes). Absent when the step was given none.
   */
  rtoSeconds?: number;
  /**
   * Whether the run recovered within `rtoSeconds` (recoveryAgainstObjective): a passed drill's
   * `recoverySeconds`, a passed restore's `totalSeconds`. Absent when not judged: no objective, a
   * failed run (it recovered nothing), a drill that recorded no recovery time.
   */
  withinRto?: boolean;
  /** Each runner step, in the order it finished, with its own sub-step timings. */
  steps: Array<{
    step: string;
    seconds: number;
    timings: Record<string, number>;
    details: Record<string, unknown>;
  }>;
  quiesce?: { stopSeconds?: number; startSeconds?: number };
  /**
   * Per restored component, the bytes held to the manifest's SHA-256 (`checksums` in
   * backup_information.json) before they reached the target: each runner step's `verifiedBytes`.
   */
  verified: VerifiedComponent[];
  failures: Array<{ step: string; error: string; cause: string }>;
  summary: string;
  /**
   * The target's lock, when its release failed after its retries: its key, the error, and when it
   * expires at the latest. The next backup or restore takes it over once this execution has ended.
   */
  lockLeft?: { key: string; error: string; cause: string; expiresAt?: string };
  /** s3:// URL of report.json (absent when planning failed: there was no restore id). */
  report?: string;
  /** The request id of this report's notice (notify's noticeRequestId): on its SNS message, event and metrics. */
  requestId: string;
}

/** A refresh's deployment id in the report (validate-neo4j's `details.deploymentId`). */
export interface DeploymentIdLine {
  /** The id the restored graph came with (the source's); null when it held no Root node. */
  restored: string | null;
  /** The id it holds now; null when it holds no Root node. */
  value: string | null;
  how: 'kept' | 'generated';
  reason?: string;
  database?: string;
}

const DeploymentIdDetailsSchema = z.looseObject({
  restored: z.string().nullable(),
  value: z.string().nullable(),
  how: z.enum(['kept', 'generated']),
  reason: z.string().optional(),
  database: z.string().optional(),
});

/**
 * What a refresh did to the graph's deployment id: validate-neo4j's record, or undefined when no
 * validate-neo4j step recorded one. Pure.
 */
export function deploymentIdOf(results: readonly RestoreStepResult[]): DeploymentIdLine | undefined {
  const validate = [...results].reverse().find((r) => r.step === 'validate-neo4j');
  const parsed = DeploymentIdDetailsSchema.safeParse(validate?.details.deploymentId);
  if (!parsed.success) return undefined;
  const { restored, value, how, reason, database } = parsed.data;
  return { restored, value, how, ...(reason ? { reason } : {}), ...(database ? { database } : {}) };
}

/** The report's and notice's line about a refresh's deployment id. Pure. */
export function describeDeploymentId(
  line: DeploymentIdLine | undefined,
  source: string,
  target: string,
): string {
  if (!line)
    return `NOT confirmed reset: no validation recorded it, so ${target}'s graph may carry ${source}'s deployment id; restore again, or run \`infrahub db reset-deployment-id\` and restart Infrahub`;
  if (line.value === null) return `none: ${line.reason ?? 'the restored graph holds no Root node'}`;
  const was = line.restored === null ? '' : ` (the backup of ${source} carried ${line.restored})`;
  return line.how === 'kept'
    ? `${line.value}, ${target}'s own, kept${was}`
    : `${line.value}, new${line.reason ? `: ${line.reason}` : ''}${was}`;
}

export interface VerifiedComponent {
  component: 'database' | 'task-manager-db' | 'artifacts';
  /** The runner step that restored it (`drill` for the drill's disposable databases). */
  step: string;
  /** Bytes verified against the manifest's SHA-256; `null` when the step recorded none. */
  bytes: number | null;
}

/** The restore steps that write a component, and a drill's per-component details. */
const StepComponents: Partial<Record<RestoreSubcommand, VerifiedComponent['component']>> = {
  'restore-postgres': 'task-manager-db',
  'restore-neo4j': 'database',
  'restore-artifacts': 'artifacts',
};
const DrillParts: Record<string, VerifiedComponent['component']> = {
  postgres: 'task-manager-db',
  neo4j: 'database',
  artifacts: 'artifacts',
};

/**
 * Reads, the one way for every component, the `verifiedBytes` a runner step records in its details
 * (a drill: in its `postgres`, `neo4j` and `artifacts` details): the bytes it read from S3 and held
 * to the manifest's SHA-256 before they reached a database or the artifact storage. Steps that
 * restore nothing (validate-neo4j) are not listed. Pure.
 */
export function verifiedComponents(results: readonly RestoreStepResult[]): VerifiedComponent[] {
  const count = (details: unknown) => {
    const n = (details as { verifiedBytes?: unknown } | undefined)?.verifiedBytes;
    return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : null;
  };
  return results.flatMap((r): VerifiedComponent[] => {
    const component = StepComponents[r.step];
    if (component) return [{ component, step: r.step, bytes: count(r.details) }];
    if (r.step !== 'drill') return [];
    return Object.entries(DrillParts).flatMap(([part, c]) =>
      r.details[part] ? [{ component: c, step: r.step, bytes: count(r.details[part]) }] : [],
    );
  });
}

/**
 * What was restored against what the manifest records (the plan's `expected`): a component whose
 * step reports other bytes verified (`verifiedBytes`), or for artifacts another file count, than the
 * manifest lists was not restored whole, whatever each file's checksum said. One line per difference;
 * a component without an expectation, or whose step records no count, is not compared here. Pure.
 */
export function restoredAgainstManifest(
  results: readonly RestoreStepResult[],
  expected: Partial<Record<string, { files: number; bytes: number }>> | undefined,
): string[] {
  if (!expected) return [];
  const problems: string[] = [];
  const restored: Array<{ component: string; step: string; details: Record<string, unknown> }> = [];
  for (const r of results) {
    const component = StepComponents[r.step];
    if (component) restored.push({ component, step: r.step, details: r.details });
    if (r.step === 'drill')
      for (const [part, c] of Object.entries(DrillParts)) {
        const d = r.details[part];
        if (d && typeof d === 'object')
          restored.push({ component: c, step: r.step, details: d as Record<string, unknown> });
      }
  }
  for (const { component, step, details } of restored) {
    const want = expected[component];
    if (!want) continue;
    const bytesDone = details.verifiedBytes;
    if (typeof bytesDone === 'number' && bytesDone !== want.bytes)
      problems.push(
        `${step} restored ${bytes(bytesDone)} of ${component} (${bytesDone} bytes), the manifest records ${want.bytes} bytes`,
      );
    const filesDone = details.files;
    if (component === 'artifacts' && typeof filesDone === 'number' && filesDone !== want.files)
      problems.push(`${step} restored ${filesDone} artifact file(s), the manifest records ${want.files}`);
  }
  return problems;
}

const describeVerified = (verified: readonly VerifiedComponent[]) =>
  verified.map((v) => `${v.component} ${v.bytes === null ? 'NOT verified' : bytes(v.bytes)}`).join(', ');

/**
 * What each step says its validation compared: `details.validation` (restore-postgres), or a drill's
 * per-component `details.<component>.validation`. A report says "counts equal those at backup time"
 * only when a step says so (it compared recorded counts); otherwise it repeats what the step did
 * compare ("no counts recorded at backup time; restored database has N tables, M rows"). Pure.
 */
export function validationsOf(results: readonly RestoreStepResult[]): string[] {
  const said = (v: unknown) =>
    typeof (v as { validation?: unknown } | undefined)?.validation === 'string'
      ? (v as { validation: string }).validation
      : undefined;
  return results.flatMap((r) => {
    const own = said(r.details);
    const parts = Object.entries(r.details).flatMap(([part, v]) => {
      const text = v && typeof v === 'object' ? said(v) : undefined;
      return text ? [`${r.step} ${part}: ${text}`] : [];
    });
    return [...(own ? [`${r.step}: ${own}`] : []), ...parts];
  });
}

/**
 * What a seeded Neo4j Enterprise restore changed beyond its data (restore-neo4j's details, from
 * containers/runner/src/components/seed-neo4j.ts): where the alias points now and the database it
 * left, which is kept for the operator to drop, and the rehearsal that proved the seed. Pure.
 */
export function seedLinesOf(results: readonly RestoreStepResult[]): string[] {
  return results.flatMap((r) => {
    const alias = r.details.alias as { name?: string; database?: string; previous?: string } | undefined;
    const rehearsal = r.details.rehearsal as
      | { name?: string; seconds?: number; notDropped?: string[] }
      | undefined;
    return [
      ...(alias?.name && alias.database
        ? [
            `Alias:       ${alias.name} -> ${alias.database}${
              alias.previous
                ? ` (was ${alias.previous}, kept: once satisfied, DROP DATABASE \`${alias.previous}\`)`
                : ''
            }`,
            `Backups:     they take neo4j.databases, not the alias: list ${alias.database} there${
              alias.previous ? ` in place of ${alias.previous}` : ''
            } and deploy again, or the next backups keep taking ${alias.previous ?? 'the old database'}`,
          ]
        : []),
      ...(rehearsal?.name
        ? [
            `Rehearsal:   seeded and validated ${rehearsal.name} in ${rehearsal.seconds ?? '?'} s before the live database was replaced (${
              rehearsal.notDropped?.length
                ? `NOT dropped: ${rehearsal.notDropped.join(', ')}; drop ${rehearsal.notDropped.length > 1 ? 'them' : 'it'} by hand`
                : 'dropped afterwards'
            })`,
          ]
        : []),
    ];
  });
}

/**
 * What the restore and drill report is given besides the notices' channels: the deployment's
 * recovery time objective (`rtoMinutes`, core/config/schema.ts; the handler reads it from the
 * bundled configuration, the local mode from the configuration it runs with).
 */
export type RestoreReportDeps = NotifyDeps & { rtoMinutes?: number | undefined };

/**
 * A run's recovery time against the objective: the seconds that count (a drill's `recoverySeconds`,
 * a restore's `totalSeconds`) and whether they are within `rtoSeconds` (at most equal). Undefined
 * `withinRto` when the run failed, has no such time, or there is no objective. Pure.
 */
export function recoveryAgainstObjective(run: {
  kind: 'restore' | 'drill';
  ok: boolean;
  totalSeconds: number;
  recoverySeconds?: number | undefined;
  rtoSeconds?: number | undefined;
}): { seconds?: number; withinRto?: boolean } {
  const seconds = run.kind === 'drill' ? run.recoverySeconds : run.totalSeconds;
  if (seconds === undefined) return {};
  if (!run.ok || run.rtoSeconds === undefined) return { seconds };
  return { seconds, withinRto: seconds <= run.rtoSeconds };
}

async function readStepReports(
  s3: S3Client,
  bucket: string,
  target: string,
  restoreId: string,
): Promise<{ results: RestoreStepResult[]; errors: RestoreStepError[] }> {
  const keys = (await listAll(s3, bucket, restorePrefix(target, restoreId)))
    .map((o) => o.Key ?? '')
    .filter((k) => k.endsWith('.json') && !k.endsWith('/report.json'));
  const results: RestoreStepResult[] = [];
  const errors: RestoreStepError[] = [];
  for (const key of keys) {
    if (key.endsWith('.error.json')) {
      const e = await getJson(s3, bucket, key, RestoreStepErrorSchema);
      if (e) errors.push(e);
    } else {
      const r = await getJson(s3, bucket, key, RestoreStepResultSchema);
      if (r) results.push(r);
    }
  }
  results.sort((a, b) => a.finishedAt.localeCompare(b.finishedAt));
  return { results, errors };
}

/** How much of a fleet report a drill notice quotes (an e-mail; the execution's cause has it whole). */
const FLEET_REPORT_IN_NOTICE = 8_000;

export async function restoreReportStep(
  input: unknown,
  deps: RestoreReportDeps,
): Promise<
  Pick<
    RestoreReport,
    | 'ok'
    | 'summary'
    | 'report'
    | 'totalSeconds'
    | 'recoverySeconds'
    | 'rtoSeconds'
    | 'withinRto'
    | 'requestId'
  >
> {
  const event = parseInput(RestoreReportEventSchema, input, 'restore report event');
  const now = deps.now?.() ?? new Date();
  const { restoreId, backupId } = event.plan;
  const requested = (event.input as { target?: unknown } | undefined)?.target;
  const target =
    event.plan.target ??
    (typeof requested === 'string' && targetName.safeParse(requested).success ? requested : undefined);
  const log = deps.logger.child({ target, restoreId, step: 'restore-report' });
  const { results, errors } =
    target && restoreId
      ? await readStepReports(deps.s3, deps.bucket, target, restoreId)
      : { results: [], errors: [] };

  // A runner's own error record says best what went wrong; the state's cause is the fallback.
  // A refusal first (nothing else ran), then the components, then the steps around them.
  const { plan: refused, ...others } = event.failures;
  const caught = [
    ...(refused ? [refused] : []),
    ...event.branches.flatMap((b) => (b.failure ? [b.failure] : [])),
    ...Object.values(others),
    ...(event.fleet
      ? [{ step: event.fleet.step, error: event.fleet.failure.Error, cause: event.fleet.failure.Cause }]
      : []),
  ];
  const failures = caught.map((f) => {
    const described = describeCause(f.cause);
    // A runner state's cause is the runner's message (SendTaskFailure): its state names the subcommand.
    const command = described.command ?? runnerCommandOf(f.step);
    const record = errors.find((e) => e.step === command);
    return record
      ? { step: f.step, error: record.error.name, cause: `runner ${record.step}: ${record.error.message}` }
      : { step: f.step, error: f.error, cause: described.detail };
  });
  // A restore never reports success unless every byte it restored matched the manifest's SHA-256.
  const verified = verifiedComponents(results);
  for (const v of verified.filter((x) => x.bytes === null)) {
    failures.push({
      step: v.step,
      error: 'RestoreValidation',
      cause: `runner ${v.step} restored ${v.component} without recording the bytes it verified against the manifest's SHA-256`,
    });
  }
  // ... and never unless it restored every file and byte the manifest lists.
  for (const problem of restoredAgainstManifest(results, event.plan.expected))
    failures.push({ step: 'restore-report', error: 'RestoreValidation', cause: problem });
  // ... and a refresh never unless the graph it restored was given back the destination's identity.
  const refresh = event.kind === 'restore' ? event.plan.refresh : undefined;
  const source = refresh?.source ?? event.plan.source;
  const deploymentId = refresh ? deploymentIdOf(results) : undefined;
  const graphRestored = event.branches.some((b) => b.component === 'database' && b.ok && !b.skipped);
  // The graph was (maybe partly) replaced: restore-neo4j ran, whether it finished or failed.
  const graphTouched = [...results, ...errors].some((r) => r.step === 'restore-neo4j');
  if (refresh?.deploymentId.action === 'reset' && graphRestored && !deploymentId)
    failures.push({
      step: 'restore-report',
      error: 'RestoreValidation',
      cause: `refresh of ${target ?? 'the target'} from ${source}: ${describeDeploymentId(undefined, source ?? 'the source', target ?? 'the target')}`,
    });
  const ok = failures.length === 0;
  const validations = validationsOf(results);
  const totalSeconds = Math.max(0, Math.round((now.getTime() - Date.parse(event.startedAt)) / 1000));
  const drill = results.find((r) => r.step === 'drill');
  const recoverySeconds =
    event.kind === 'drill' && drill && typeof drill.details.recoverySeconds === 'number'
      ? Math.round(drill.details.recoverySeconds * 10) / 10
      : undefined;
  const rtoSeconds = deps.rtoMinutes !== undefined ? deps.rtoMinutes * 60 : undefined;
  const { withinRto } = recoveryAgainstObjective({
    kind: event.kind,
    ok,
    totalSeconds,
    recoverySeconds,
    rtoSeconds,
  });
  const objective =
    withinRto === undefined
      ? ''
      : ` ${withinRto ? 'within' : 'OVER'} the recovery time objective of ${rtoSeconds} s`;
  const steps = results.map((r) => ({
    step: r.step,
    seconds: Math.round(r.durationMs / 100) / 10,
    timings: r.timings,
    details: r.details,
  }));
  const what = event.kind === 'drill' ? 'Restore drill' : refresh ? 'Refresh' : 'Restore';
  // A fleet drill's own report (its Map failed): the fleet, not one target, is what failed.
  const fleet = event.plan.kind === 'drill-fleet' ? (event.plan.targets ?? []) : undefined;
  const fleetName = fleet && `the fleet of ${fleet.length} target(s) (${clip(fleet.join(', '), 300)})`;
  const from = refresh
    ? ` from ${refresh.source}/${backupId ?? 'its latest backup'}`
    : backupId
      ? ` from ${backupId}`
      : '';
  const of = fleetName ?? `${target ?? 'an unknown target'}${from}`;
  const deploymentLine =
    refresh && target ? describeDeploymentId(deploymentId, refresh.source, target) : undefined;
  const summary = clip(
    ok
      ? `${what} of ${of} passed in ${totalSeconds} s${recoverySeconds !== undefined ? ` (recovery time ${recoverySeconds} s)` : ''}${objective}: ${steps.map((s) => `${s.step} ${s.seconds} s`).join(', ') || 'no runner step'}${verified.length > 0 ? `; verified against the manifest's SHA-256: ${describeVerified(verified)}` : ''}${validations.length > 0 ? `; ${validations.join('; ')}` : ''}${deploymentId ? `; deployment id ${deploymentLine}` : ''}`
      : `${what} of ${of} FAILED: ${failures.map((f) => `${f.step}: ${f.cause}`).join('; ')}`,
    30_000,
  );
  // The lock left behind (its release failed after its retries): said in the report, notice and event.
  const released = event.lockRelease;
  const lockLeft =
    target && released && 'Error' in released
      ? {
          key: lockKey(target),
          error: released.Error,
          cause: clip(describeCause(released.Cause).detail, 400),
          ...(event.lockTtlSeconds
            ? {
                expiresAt: new Date(Date.parse(event.startedAt) + event.lockTtlSeconds * 1000).toISOString(),
              }
            : {}),
        }
      : undefined;
  const reportKey = target && restoreId ? restoreStepKey(target, restoreId, 'report') : undefined;
  // One notice per target and outcome in an execution: a retried report sends the same one.
  const requestId = noticeRequestId(event.executionId, event.kind, ok ? 'succeeded' : 'failed', target ?? '');
  const report: RestoreReport = {
    kind: event.kind,
    ...(target ? { target } : {}),
    ...(refresh ? { source: refresh.source } : {}),
    ...(deploymentId ? { deploymentId } : {}),
    ...(backupId ? { backupId } : {}),
    ...(restoreId ? { restoreId } : {}),
    executionId: event.executionId,
    ok,
    startedAt: event.startedAt,
    finishedAt: now.toISOString(),
    totalSeconds,
    ...(recoverySeconds !== undefined ? { recoverySeconds } : {}),
    ...(rtoSeconds !== undefined ? { rtoSeconds } : {}),
    ...(withinRto !== undefined ? { withinRto } : {}),
    steps,
    ...(event.quiesce ? { quiesce: event.quiesce } : {}),
    verified,
    failures,
    summary,
    ...(lockLeft ? { lockLeft } : {}),
    ...(reportKey ? { report: `s3://${deps.bucket}/${reportKey}` } : {}),
    requestId,
  };
  // The failures quote runners' and states' errors: redacted (core/redact.ts) like every other output.
  if (reportKey) await putJson(deps.s3, deps.bucket, reportKey, redactValue(report));

  const dims: Record<string, string> = target ? { Target: target } : {};
  const metrics: Metric[] =
    event.kind === 'drill'
      ? [
          { name: MetricNames.RestoreDrillFailed, value: ok ? 0 : 1, unit: 'Count' },
          ...(target
            ? [
                {
                  name: MetricNames.RestoreDrillFailed,
                  value: ok ? 0 : 1,
                  unit: 'Count' as const,
                  dimensions: dims,
                },
                {
                  name: MetricNames.RestoreDrillSucceeded,
                  value: ok ? 1 : 0,
                  unit: 'Count' as const,
                  dimensions: dims,
                },
              ]
            : []),
          ...(ok && recoverySeconds !== undefined
            ? [
                {
                  name: MetricNames.RestoreDrillSeconds,
                  value: recoverySeconds,
                  unit: 'Seconds' as const,
                  dimensions: dims,
                },
              ]
            : []),
        ]
      : [
          {
            name: ok ? MetricNames.RestoreSucceeded : MetricNames.RestoreFailed,
            value: 1,
            unit: 'Count',
            dimensions: dims,
          },
          ...(ok
            ? [
                {
                  name: MetricNames.RestoreSeconds,
                  value: totalSeconds,
                  unit: 'Seconds' as const,
                  dimensions: dims,
                },
              ]
            : []),
        ];
  const lines = [
    fleetName
      ? `${what} of ${fleetName} ${ok ? 'passed' : 'FAILED'}.`
      : `${what} of Infrahub target "${target ?? 'unknown'}" ${ok ? 'passed' : 'FAILED'}.`,
    '',
    ...(refresh
      ? [`Source:      ${refresh.source} (a refresh: its backup restored into ${target ?? 'the target'})`]
      : []),
    `Backup id:   ${backupId ?? 'none (refused before one was chosen)'}`,
    ...(deploymentLine && refresh?.deploymentId.action === 'reset' && (graphTouched || deploymentId)
      ? [`Deployment:  ${deploymentLine}`]
      : []),
    `Restore id:  ${restoreId ?? 'none'}`,
    `Total:       ${totalSeconds} s`,
    ...(recoverySeconds !== undefined
      ? [`Recovery:    ${recoverySeconds} s (databases started, restored and validated)`]
      : []),
    ...(rtoSeconds !== undefined
      ? [
          `Objective:   ${rtoSeconds} s (rtoMinutes ${deps.rtoMinutes}): ${
            withinRto === undefined
              ? ok
                ? 'not judged, no recovery time recorded'
                : 'not judged, the run failed'
              : withinRto
                ? 'met'
                : 'MISSED'
          }`,
        ]
      : []),
    ...(event.quiesce
      ? [
          `Quiesce:     services stopped in ${event.quiesce.stopSeconds ?? 0} s, started in ${event.quiesce.startSeconds ?? 0} s`,
        ]
      : []),
    ...steps.flatMap((s) => [
      `  ${s.step.padEnd(18)} ${s.seconds} s`,
      ...Object.entries(s.timings).map(([name, ms]) => `    ${name.padEnd(16)} ${(ms / 1000).toFixed(1)} s`),
    ]),
    ...(verified.length > 0
      ? [`Verified:    ${describeVerified(verified)} (against the manifest's SHA-256)`]
      : []),
    ...validations.map((v) => `Validated:   ${v}`),
    ...seedLinesOf(results),
    ...(drill?.details.artifacts && typeof (drill.details.artifacts as { bytes?: unknown }).bytes === 'number'
      ? [`Artifacts:   ${bytes((drill.details.artifacts as { bytes: number }).bytes)}`]
      : []),
    ...failures.flatMap((f) => [
      '',
      `Failed step: ${f.step}`,
      `Error:       ${f.error}`,
      `Cause:       ${f.cause}`,
    ]),
    ...(event.fleet === undefined
      ? []
      : [
          '',
          'What is known of the targets (each drill that ran is an execution of its own, with its notice):',
          clip(event.fleet.report, FLEET_REPORT_IN_NOTICE),
        ]),
    ...(target
      ? lockLeftLines(
          {
            target,
            executionId: event.executionId,
            ...(event.lockRelease ? { lockRelease: event.lockRelease } : {}),
            ...(event.lockTtlSeconds ? { lockTtlSeconds: event.lockTtlSeconds } : {}),
          },
          event.startedAt,
        )
      : []),
    '',
    ...(report.report ? [`Report:      ${report.report}`] : []),
    `Execution:   ${event.executionId}`,
  ];
  await deliverNotice(deps, {
    requestId,
    subject: `Infrahub ${what.toLowerCase()} ${ok ? 'passed' : 'FAILED'}: ${fleet ? `fleet of ${fleet.length} target(s)` : (target ?? 'unknown target')}`,
    lines,
    detailType:
      event.kind === 'drill'
        ? ok
          ? DetailTypes.drillSucceeded
          : DetailTypes.drillFailed
        : ok
          ? DetailTypes.restoreSucceeded
          : DetailTypes.restoreFailed,
    detail: {
      ...report,
      steps: steps.map(({ step, seconds, timings }) => ({ step, seconds, timings })),
      ...(event.fleet === undefined ? {} : { fleetReport: clip(event.fleet.report, FLEET_REPORT_IN_NOTICE) }),
    },
    metrics,
    now,
  });
  log.info(ok ? 'restore report: passed' : 'restore report: failed', {
    totalSeconds,
    recoverySeconds,
    failures: failures.length,
  });
  return {
    ok,
    summary,
    ...(report.report ? { report: report.report } : {}),
    totalSeconds,
    ...(recoverySeconds !== undefined ? { recoverySeconds } : {}),
    ...(rtoSeconds !== undefined ? { rtoSeconds } : {}),
    ...(withinRto !== undefined ? { withinRto } : {}),
    requestId,
  };
}
