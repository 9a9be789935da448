/**
 * The backup's last word per target: a success or failure notice to SNS (e-mail, chat) and an event
 * on EventBridge (source "infrahub-backup"), for people and for automation. A failure notice names
 * the target, the step and the cause: the runner's own error record (`.runner/<component>.error.json`)
 * when a runner failed, otherwise what the failed state reported (an ECS task's exit code and stop
 * reason, a Lambda's error message). Returns a short summary for the execution's result.
 *
 * Each notice goes out once per channel (deliverNotice, core/notices/deliver.ts: SNS, EventBridge, metrics as CloudWatch
 * embedded metric format log lines), with one request id (noticeRequestId) on all of them; a retry
 * after one channel failed sends only that channel. docs/deployment.md, "Notices: channels, request
 * id and de-duplication", says what subscribers see.
 */

import { z } from 'zod';
import { BackupIdSchema, fileKey, RESULTS_DIR } from '../backup/layout.js';
import { lockKey } from '../backup/lock.js';
import { ManifestSummarySchema } from '../backup/manifest-step.js';
import { type ComponentError, ComponentErrorSchema } from '../backup/results.js';
import { runnerCommandOf } from '../backup/runner-steps.js';
import { parseInput } from '../config/load.js';
import { targetName } from '../config/schema.js';
import { type Metric, MetricNames } from '../metrics.js';
import { getJson, listAll } from '../s3/objects.js';
import {
  bytes,
  clip,
  DetailTypes,
  deliverNotice,
  describeCause,
  type LockRelease,
  LockReleaseSchema,
  lockLeftLines,
  type NotifyDeps,
  noticeRequestId,
} from './deliver.js';

const common = {
  target: targetName,
  backupId: BackupIdSchema,
  executionId: z.string().min(1),
  /** The execution's start ($$.Execution.StartTime), for the backup's duration. */
  startedAt: z.iso.datetime({ offset: true }).optional(),
  lockRelease: LockReleaseSchema.optional(),
  /** The lock's lifetime (the execution's timeout), for when a lock left behind expires. */
  lockTtlSeconds: z.number().int().positive().optional(),
};

export const NotifyEventSchema = z.discriminatedUnion('outcome', [
  z.strictObject({
    outcome: z.literal('succeeded'),
    ...common,
    forced: z.boolean().default(false),
    /** The preflight's warnings (stale Infrahub tasks it let pass), one line each. */
    warnings: z.array(z.string()).default([]),
    /** What the state machine keeps of the manifest step's summary. */
    manifest: ManifestSummarySchema.pick({
      manifest: true,
      files: true,
      bytes: true,
      componentBytes: true,
      retentionClass: true,
      retentionWarnings: true,
    }),
  }),
  z.strictObject({
    outcome: z.literal('failed'),
    ...common,
    failure: z.strictObject({
      /** The state that failed, as the state machine names it. */
      step: z.string().min(1),
      /** Error and Cause as Step Functions' Catch hands them over. */
      error: z.string().default('States.TaskFailed'),
      cause: z.string().default(''),
      /**
       * What became of a Community DBMS that the backup had stopped for its dump: "running again: ..."
       * or "DOWN: ... Start it: <command>" (the backup state machine's DbmsRunningAgain / DbmsRestartFailed).
       */
      dbms: z.string().optional(),
    }),
  }),
  z.strictObject({
    /**
     * The execution stopped outside the per-target work: before it (bad input), after it (a failed
     * report), or the fleet's Map failed as a whole (step BackupTargets, with its `report`).
     */
    outcome: z.literal('aborted'),
    step: z.string().min(1),
    executionId: z.string().min(1),
    /** The caught error, as Step Functions' Catch hands it over. */
    failure: z.looseObject({ Error: z.string().default('States.TaskFailed'), Cause: z.string().default('') }),
    /**
     * When the fleet's Map failed: the fleet report's summary (core/backup/fleet-report.ts
     * mapFailureReport), which targets are known to have been backed up or to have failed.
     */
    report: z.string().optional(),
  }),
]);
export type NotifyEvent = z.input<typeof NotifyEventSchema>;

/** How much of a fleet report an aborted notice quotes (an e-mail; the execution's cause has it whole). */
const REPORT_IN_NOTICE = 8_000;

export interface Notice {
  outcome: 'succeeded' | 'failed' | 'aborted';
  /** The notice's request id (noticeRequestId): the same on its SNS message, its event and its metrics. */
  requestId: string;
  target?: string;
  backupId?: string;
  /** For a failure: the step that failed (a runner subcommand when a runner failed). */
  step?: string;
  error?: string;
  /** One line, at most 500 characters. */
  summary: string;
}

/** The event's `lockLeft` detail (key and cause) when the lock was left behind; nothing otherwise. */
function lockDetail(event: { target: string; lockRelease?: LockRelease }): Record<string, unknown> {
  const r = event.lockRelease;
  if (!r || !('Error' in r)) return {};
  return {
    lockLeft: { key: lockKey(event.target), error: r.Error, cause: clip(describeCause(r.Cause).detail, 400) },
  };
}

/**
 * The error a failure notice names, and its cause. A runner state (`ecs:runTask.waitForTaskToken`)
 * fails with the runner's own error name as Error (SendTaskFailure: `Stalled`, `StorageError`,
 * `ToolFailed`, ...) and its redacted message as Cause, or with `States.HeartbeatTimeout` /
 * `States.Timeout` when no runner answered in time; only a task ECS could not start still fails
 * as `States.TaskFailed` (infra/constructs/runner-tasks.ts). So the state's Error is the name, unless
 * it is the bare `States.TaskFailed`, where the runner's record (`.runner/<component>.error.json`)
 * names it if there is one. The cause: the runners' records when one of them has that name (their
 * components said), else `<error>: <the state's cause>` (a Lambda's cause already starts with its
 * error type, and a DBMS left down has the state machine's own sentence), then the records of other
 * components that failed too.
 */
export function failureNaming(
  failure: { error: string; dbms?: string | undefined },
  records: readonly ComponentError[],
  detail: string,
): { error: string; cause: string } {
  const named = failure.error !== '' && failure.error !== 'States.TaskFailed';
  const error = named ? failure.error : (records[0]?.error.name ?? failure.error);
  const said = (r: ComponentError) => `runner ${r.component}: ${r.error.name}: ${r.error.message}`;
  const matching = records.filter((r) => r.error.name === error);
  if (matching.length > 0)
    return {
      error,
      cause: [...matching, ...records.filter((r) => r.error.name !== error)].map(said).join('; '),
    };
  const own =
    !named || detail.startsWith(`${error}: `) || failure.dbms?.startsWith('DOWN')
      ? detail
      : `${error}: ${detail}`;
  return { error, cause: [own, ...records.map(said)].join('; ') };
}

/** The runners' own failure records for this backup (best effort: a listing error yields none). */
async function runnerErrors(deps: NotifyDeps, target: string, backupId: string): Promise<ComponentError[]> {
  try {
    const prefix = fileKey(target, backupId, RESULTS_DIR);
    const keys = (await listAll(deps.s3, deps.bucket, prefix))
      .map((o) => o.Key ?? '')
      .filter((k) => k.endsWith('.error.json'));
    const records = await Promise.all(
      keys.map((k) => getJson(deps.s3, deps.bucket, k, ComponentErrorSchema)),
    );
    return records.filter((r): r is ComponentError => r !== undefined);
  } catch (err) {
    deps.logger.warn('could not read the runners’ failure records', { error: String(err) });
    return [];
  }
}

export async function notifyStep(input: unknown, deps: NotifyDeps): Promise<Notice> {
  const event = parseInput(NotifyEventSchema, input, 'notify event');
  const now = deps.now?.() ?? new Date();
  const durationSeconds =
    'startedAt' in event && event.startedAt
      ? Math.max(0, Math.round((now.getTime() - Date.parse(event.startedAt)) / 1000))
      : undefined;
  const metrics: Metric[] = [];
  // One notice per target and outcome in an execution (an aborted one: per step).
  const requestId = noticeRequestId(
    event.executionId,
    'backup',
    event.outcome,
    'target' in event ? event.target : event.step,
  );
  const log = deps.logger.child({
    requestId,
    step: 'notify',
    ...('target' in event ? { target: event.target, backupId: event.backupId } : {}),
  });
  let notice: Notice;
  let subject: string;
  let lines: string[];
  let detail: Record<string, unknown>;

  if (event.outcome === 'succeeded') {
    const m = event.manifest;
    const parts = Object.entries(m.componentBytes).map(([c, n]) => `${c} ${bytes(n)}`);
    notice = {
      outcome: 'succeeded',
      requestId,
      target: event.target,
      backupId: event.backupId,
      summary: clip(
        `Backed up ${event.target} as ${event.backupId}: ${m.files} files, ${bytes(m.bytes)} (${parts.join(', ')})`,
        500,
      ),
    };
    subject = `Infrahub backup succeeded: ${event.target}`;
    lines = [
      `The backup of Infrahub target "${event.target}" is complete.`,
      '',
      `Backup id:  ${event.backupId}`,
      `Manifest:   ${m.manifest}`,
      `Files:      ${m.files}, ${bytes(m.bytes)} in all`,
      ...(m.retentionClass ? [`Retention:  ${m.retentionClass}`] : []),
      ...(durationSeconds !== undefined ? [`Duration:   ${durationSeconds} s`] : []),
      ...Object.entries(m.componentBytes).map(([c, n]) => `  ${c.padEnd(16)} ${bytes(n)}`),
      ...(event.forced
        ? ['', 'The preflight gate was skipped (force): Infrahub may have been running tasks.']
        : []),
      ...(event.warnings.length + m.retentionWarnings.length > 0
        ? ['', 'Warnings:', ...[...event.warnings, ...m.retentionWarnings].map((w) => `  - ${w}`)]
        : []),
      ...lockLeftLines(event, event.startedAt),
      '',
      `Execution:  ${event.executionId}`,
    ];
    detail = {
      ...notice,
      executionId: event.executionId,
      forced: event.forced,
      ...(event.warnings.length > 0 ? { warnings: event.warnings } : {}),
      ...lockDetail(event),
      ...(durationSeconds !== undefined ? { durationSeconds } : {}),
      ...m,
    };
    const dims = { Target: event.target };
    metrics.push(
      { name: MetricNames.BackupSucceeded, value: 1, unit: 'Count', dimensions: dims },
      { name: MetricNames.BackupBytes, value: m.bytes, unit: 'Bytes', dimensions: dims },
      ...Object.entries(m.componentBytes).map(([Component, n]) => ({
        name: MetricNames.BackupBytes,
        value: n,
        unit: 'Bytes' as const,
        dimensions: { ...dims, Component },
      })),
    );
    if (durationSeconds !== undefined)
      metrics.push({
        name: MetricNames.BackupDurationSeconds,
        value: durationSeconds,
        unit: 'Seconds',
        dimensions: dims,
      });
  } else if (event.outcome === 'aborted') {
    const described = describeCause(event.failure.Cause);
    notice = {
      outcome: 'aborted',
      requestId,
      step: event.step,
      error: event.failure.Error,
      summary: clip(`Backup execution stopped at ${event.step}: ${described.detail}`, 500),
    };
    subject = `Infrahub backup FAILED: ${event.step === 'Plan' ? 'input rejected' : `${event.step} failed`}`;
    lines = [
      event.report === undefined
        ? 'An Infrahub backup execution stopped before backing up any target, or after all of them.'
        : `An Infrahub backup execution failed as a whole at ${event.step}, its fleet of targets: some targets may have been backed up, others not. Each target that ran sent its own notice.`,
      '',
      `Step:       ${event.step}`,
      `Error:      ${event.failure.Error}`,
      `Cause:      ${described.detail}`,
      `Execution:  ${event.executionId}`,
      ...(event.report === undefined
        ? []
        : ['', 'What is known of the targets:', clip(event.report, REPORT_IN_NOTICE)]),
    ];
    detail = {
      ...notice,
      executionId: event.executionId,
      ...(event.report === undefined ? {} : { report: clip(event.report, REPORT_IN_NOTICE) }),
    };
    metrics.push({ name: MetricNames.BackupFailed, value: 1, unit: 'Count' });
  } else {
    const { failure } = event;
    const records = await runnerErrors(deps, event.target, event.backupId);
    const described = describeCause(failure.cause);
    const step = failure.step;
    const { error, cause } = failureNaming(failure, records, described.detail);
    // A runner state's cause is the runner's message now (SendTaskFailure), no task description.
    const command = described.command ?? runnerCommandOf(step);
    notice = {
      outcome: 'failed',
      requestId,
      target: event.target,
      backupId: event.backupId,
      step,
      error,
      // A DBMS left down is said first, so that no clipping can drop it.
      summary: failure.dbms?.startsWith('DOWN')
        ? clip(
            `Backup of ${event.target} failed at ${step}, and its DBMS is ${failure.dbms}. Cause: ${cause}`,
            1000,
          )
        : clip(
            `Backup of ${event.target} failed at ${step}: ${cause}${failure.dbms ? ` (DBMS ${failure.dbms})` : ''}`,
            500,
          ),
    };
    subject = `Infrahub backup FAILED: ${event.target} at ${step}`;
    lines = [
      `The backup of Infrahub target "${event.target}" failed.`,
      '',
      `Step:       ${step}${command ? ` (runner ${command})` : ''}`,
      `Error:      ${error}`,
      `Cause:      ${cause}`,
      ...(failure.dbms ? [`DBMS:       ${failure.dbms}`] : []),
      `Backup id:  ${event.backupId}`,
      `Execution:  ${event.executionId}`,
      ...(durationSeconds !== undefined ? [`Failed after ${durationSeconds} s`] : []),
      '',
      'No manifest was written: this backup is incomplete and no restore will use it.',
      'The execution history in the Step Functions console has the full cause.',
      ...lockLeftLines(event, event.startedAt),
    ];
    detail = {
      ...notice,
      executionId: event.executionId,
      cause: clip(cause, 2000),
      ...(failure.dbms ? { dbms: failure.dbms } : {}),
      ...lockDetail(event),
      ...(durationSeconds !== undefined ? { durationSeconds } : {}),
    };
    metrics.push(
      { name: MetricNames.BackupFailed, value: 1, unit: 'Count', dimensions: { Target: event.target } },
      { name: MetricNames.BackupFailed, value: 1, unit: 'Count' },
    );
  }

  const delivered = await deliverNotice(deps, {
    requestId,
    subject,
    lines,
    detailType: DetailTypes[notice.outcome],
    detail,
    metrics,
    now,
  });
  log.info('notice sent', {
    outcome: notice.outcome,
    ...delivered,
    topics: deps.topicArns.length,
    ...(notice.step ? { failedStep: notice.step } : {}),
  });
  return notice;
}
