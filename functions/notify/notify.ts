/**
 * The backup's last word per target: a success or failure notice to SNS (e-mail, chat) and an event
 * on EventBridge (source "infrahub-backup"), for people and for automation. A failure notice names
 * the target, the step and the cause: the runner's own error record (`.runner/<component>.error.json`)
 * when a runner failed, otherwise what the failed state reported (an ECS task's exit code and stop
 * reason, a Lambda's error message). Returns a short summary for the execution's result.
 */

import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { BackupIdSchema, fileKey, RESULTS_DIR } from '../../core/backup/layout.js';
import { lockKey } from '../../core/backup/lock.js';
import { type ComponentError, ComponentErrorSchema } from '../../core/backup/results.js';
import { parseInput } from '../../core/config/load.js';
import { targetName } from '../../core/config/schema.js';
import { NotificationError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { type Metric, MetricNames, publishMetrics } from '../../core/metrics.js';
import { excerpt, IDENTIFIER_KEYS, redactText, redactValue } from '../../core/redact.js';
import { getJson, listAll } from '../../core/s3/objects.js';
import { ManifestSummarySchema } from '../manifest/manifest.js';

export const EVENT_SOURCE = 'infrahub-backup';
export const DetailTypes = {
  succeeded: 'Infrahub Backup Succeeded',
  failed: 'Infrahub Backup Failed',
  aborted: 'Infrahub Backup Aborted',
  restoreSucceeded: 'Infrahub Restore Succeeded',
  restoreFailed: 'Infrahub Restore Failed',
  drillSucceeded: 'Infrahub Restore Drill Succeeded',
  drillFailed: 'Infrahub Restore Drill Failed',
} as const;

/**
 * What releasing the target's lock came to: `{released}` (false: this execution did not hold it),
 * `{notHeld}` (taking it failed), or the error Step Functions caught when the release still failed
 * after its retries: the lock was left behind, and the notice says so.
 */
export const LockReleaseSchema = z.union([
  z.strictObject({ released: z.boolean() }),
  z.strictObject({ notHeld: z.literal(true) }),
  z.looseObject({ Error: z.string().default('States.TaskFailed'), Cause: z.string().default('') }),
]);
export type LockRelease = z.infer<typeof LockReleaseSchema>;

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

/**
 * The lines a notice adds when the target's lock was left behind (its release failed after its
 * retries): its key, that the next backup or restore takes it over once this execution has ended
 * (it asks Step Functions), and when it expires at the latest. None when the lock was released.
 */
export function lockLeftLines(
  event: { target: string; executionId: string; lockRelease?: LockRelease; lockTtlSeconds?: number },
  startedAt: string | undefined,
): string[] {
  const r = event.lockRelease;
  if (!r || !('Error' in r)) return [];
  const expires =
    startedAt && event.lockTtlSeconds
      ? new Date(Date.parse(startedAt) + event.lockTtlSeconds * 1000).toISOString()
      : undefined;
  return [
    '',
    `The target's lock could not be released: ${lockKey(event.target)} was left in the backup bucket`,
    `(${r.Error}: ${clip(describeCause(r.Cause).detail, 300)}).`,
    `It names this execution, which has now ended: the next backup or restore of "${event.target}" asks`,
    'Step Functions, finds it ended and takes the lock over, so nothing needs to be done by hand.',
    ...(expires ? [`Should that question fail, the lock expires at about ${expires}.`] : []),
  ];
}

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
    /** The execution stopped before or after the per-target work (bad input, a failed report). */
    outcome: z.literal('aborted'),
    step: z.string().min(1),
    executionId: z.string().min(1),
    /** The caught error, as Step Functions' Catch hands it over. */
    failure: z.looseObject({ Error: z.string().default('States.TaskFailed'), Cause: z.string().default('') }),
  }),
]);
export type NotifyEvent = z.input<typeof NotifyEventSchema>;

export interface Notice {
  outcome: 'succeeded' | 'failed' | 'aborted';
  target?: string;
  backupId?: string;
  /** For a failure: the step that failed (a runner subcommand when a runner failed). */
  step?: string;
  error?: string;
  /** One line, at most 500 characters. */
  summary: string;
}

export interface NotifyDeps {
  s3: S3Client;
  bucket: string;
  sns: Pick<SNSClient, 'send'>;
  /** Our topic first, then any configured extra topics. */
  topicArns: string[];
  events: Pick<EventBridgeClient, 'send'>;
  eventBusName?: string;
  cloudwatch: Pick<CloudWatchClient, 'send'>;
  logger: Logger;
  now?: () => Date;
}

/** At most `max` characters of `text`, redacted before it is cut (core/redact.ts excerpt), ending in `…` when cut. */
export const clip = (text: string, max: number) => excerpt(text, max);
export const bytes = (n: number) =>
  n < 1024 ** 2
    ? `${(n / 1024).toFixed(1)} KiB`
    : n < 1024 ** 3
      ? `${(n / 1024 ** 2).toFixed(1)} MiB`
      : `${(n / 1024 ** 3).toFixed(2)} GiB`;

/** What a failed state's Cause says, in one line, and the runner subcommand when an ECS task failed. */
export function describeCause(cause: string): { detail: string; command?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(cause);
  } catch {
    return { detail: clip(cause.trim() || 'no cause given', 400) };
  }
  const record = (parsed ?? {}) as Record<string, unknown>;
  if (typeof record.errorMessage === 'string') {
    // A Lambda's error, as lambda:invoke reports it.
    return { detail: clip(`${record.errorType ?? 'Error'}: ${record.errorMessage}`, 400) };
  }
  if (Array.isArray(record.Containers) || typeof record.TaskArn === 'string') {
    // An ECS task, as ecs:runTask.sync reports it (the DescribeTasks shape).
    const container = (record.Containers as Array<Record<string, unknown>> | undefined)?.[0] ?? {};
    const override = ((record.Overrides as { ContainerOverrides?: Array<{ Command?: string[] }> } | undefined)
      ?.ContainerOverrides ?? [])[0];
    const command = override?.Command?.[0];
    const how =
      typeof container.ExitCode === 'number'
        ? `stopped with exit code ${container.ExitCode}`
        : 'stopped before its container exited';
    const why = [record.StoppedReason, container.Reason].filter((x) => typeof x === 'string' && x).join('; ');
    return {
      detail: clip(`runner ${command ?? 'task'} ${how}${why ? ` (${why})` : ''}`, 400),
      ...(command ? { command } : {}),
    };
  }
  return { detail: clip(cause, 400) };
}

/** The event's `lockLeft` detail (key and cause) when the lock was left behind; nothing otherwise. */
function lockDetail(event: { target: string; lockRelease?: LockRelease }): Record<string, unknown> {
  const r = event.lockRelease;
  if (!r || !('Error' in r)) return {};
  return {
    lockLeft: { key: lockKey(event.target), error: r.Error, cause: clip(describeCause(r.Cause).detail, 400) },
  };
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
  const log = deps.logger.child({
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
      ...(event.warnings.length > 0 ? ['', 'Warnings:', ...event.warnings.map((w) => `  - ${w}`)] : []),
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
      step: event.step,
      error: event.failure.Error,
      summary: clip(`Backup execution stopped at ${event.step}: ${described.detail}`, 500),
    };
    subject = `Infrahub backup FAILED: ${event.step === 'Plan' ? 'input rejected' : `${event.step} failed`}`;
    lines = [
      'An Infrahub backup execution stopped before backing up any target, or after all of them.',
      '',
      `Step:       ${event.step}`,
      `Error:      ${event.failure.Error}`,
      `Cause:      ${described.detail}`,
      `Execution:  ${event.executionId}`,
    ];
    detail = { ...notice, executionId: event.executionId };
    metrics.push({ name: MetricNames.BackupFailed, value: 1, unit: 'Count' });
  } else {
    const { failure } = event;
    const records = await runnerErrors(deps, event.target, event.backupId);
    const described = describeCause(failure.cause);
    const first = records[0];
    const step = failure.step;
    const error = first ? first.error.name : failure.error;
    // A runner says best what went wrong; the state's own cause is the fallback.
    const cause = first
      ? records.map((r) => `runner ${r.component}: ${r.error.name}: ${r.error.message}`).join('; ')
      : described.detail;
    notice = {
      outcome: 'failed',
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
      `Step:       ${step}${described.command ? ` (runner ${described.command})` : ''}`,
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

  await deliverNotice(deps, {
    subject,
    lines,
    detailType: DetailTypes[notice.outcome],
    detail,
    metrics,
    now,
  });
  log.info('notice sent', {
    outcome: notice.outcome,
    topics: deps.topicArns.length,
    ...(notice.step ? { failedStep: notice.step } : {}),
  });
  return notice;
}

/**
 * Sends a notice: the message to every topic, the event to EventBridge, the metrics to CloudWatch.
 * Any refusal is a NotificationError (retried by the state machine).
 */
export async function deliverNotice(
  deps: Pick<NotifyDeps, 'sns' | 'topicArns' | 'events' | 'eventBusName' | 'cloudwatch'>,
  notice: {
    subject: string;
    lines: string[];
    detailType: string;
    detail: Record<string, unknown>;
    metrics: Metric[];
    now: Date;
  },
): Promise<void> {
  // Nothing a remote server answered may carry a secret into a notice (core/redact.ts): the cause
  // quoted here came from a runner's record or a state's error, both redacted at their source too.
  const message = redactText(notice.lines.join('\n'));
  const subject = redactText(notice.subject);
  await Promise.all(
    deps.topicArns.map((TopicArn) =>
      deps.sns
        .send(new PublishCommand({ TopicArn, Subject: clip(subject, 100), Message: message }))
        .catch((err: unknown) => {
          throw new NotificationError(
            `publishing to ${TopicArn} failed: ${err instanceof Error ? err.message : String(err)}`,
          );
        }),
    ),
  );
  const put = await deps.events.send(
    new PutEventsCommand({
      Entries: [
        {
          Source: EVENT_SOURCE,
          DetailType: notice.detailType,
          // String leaves redacted before serialising (never the JSON text, which a replacement could
          // make invalid); identifiers such as the target are kept as they are.
          Detail: JSON.stringify(redactValue(notice.detail, { keep: IDENTIFIER_KEYS })),
          ...(deps.eventBusName ? { EventBusName: deps.eventBusName } : {}),
        },
      ],
    }),
  );
  if (put.FailedEntryCount) {
    throw new NotificationError(
      `EventBridge refused the event: ${put.Entries?.[0]?.ErrorMessage ?? 'no reason given'}`,
    );
  }
  await publishMetrics(deps.cloudwatch, notice.metrics, notice.now).catch((err: unknown) => {
    throw new NotificationError(
      `publishing metrics failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  });
}
