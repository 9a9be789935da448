/**
 * The backup's last word per target: a success or failure notice to SNS (e-mail, chat) and an event
 * on EventBridge (source "infrahub-backup"), for people and for automation. A failure notice names
 * the target, the step and the cause: the runner's own error record (`.runner/<component>.error.json`)
 * when a runner failed, otherwise what the failed state reported (an ECS task's exit code and stop
 * reason, a Lambda's error message). Returns a short summary for the execution's result.
 *
 * Each notice goes out once per channel (deliverNotice: SNS, EventBridge, metrics as CloudWatch
 * embedded metric format log lines), with one request id (noticeRequestId) on all of them; a retry
 * after one channel failed sends only that channel. docs/deployment.md, "Notices: channels, request
 * id and de-duplication", says what subscribers see.
 */

import { createHash } from 'node:crypto';
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { BackupIdSchema, fileKey, NOTICES_ROOT, RESULTS_DIR } from '../backup/layout.js';
import { lockKey } from '../backup/lock.js';
import { ManifestSummarySchema } from '../backup/manifest-step.js';
import { type ComponentError, ComponentErrorSchema } from '../backup/results.js';
import { runnerCommandOf } from '../backup/runner-steps.js';
import { parseInput } from '../config/load.js';
import { targetName } from '../config/schema.js';
import { NotificationError } from '../errors.js';
import { formatBytes } from '../format.js';
import type { Logger } from '../log.js';
import { type EmfSink, emfLines, type Metric, MetricNames, stdoutEmfSink } from '../metrics.js';
import { excerpt, IDENTIFIER_KEYS, redactText, redactValue } from '../redact.js';
import { getJson, listAll } from '../s3/objects.js';

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

export interface NotifyDeps {
  s3: S3Client;
  bucket: string;
  sns: Pick<SNSClient, 'send'>;
  /** Our topic first, then any configured extra topics. */
  topicArns: string[];
  events: Pick<EventBridgeClient, 'send'>;
  eventBusName?: string;
  /** Where the metrics' EMF lines go: standard output by default (the function's log). */
  emf?: EmfSink;
  logger: Logger;
  now?: () => Date;
}

/** At most `max` characters of `text`, redacted before it is cut (core/redact.ts excerpt), ending in `…` when cut. */
export const clip = (text: string, max: number) => excerpt(text, max);
/** A byte count for people (core/format.ts formatBytes). */
export const bytes = formatBytes;

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
      requestId,
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

/**
 * The request id of a notice: the same for every attempt to send it (a Step Functions retry, a
 * Lambda retry), different for any other notice. A UUID (version 8, RFC 9562 section 5.8: "custom",
 * built as in its appendix B.2 from a SHA-256 name digest) of the execution's id and what identifies
 * the notice within it, such as `['backup', 'succeeded', target]`: one execution sends at most one
 * notice per target and outcome (per step for an aborted backup). It is on the SNS message (its
 * `requestId` message attribute and its last line), in the event's detail (`requestId`) and on the
 * metrics' EMF line, so a subscriber can tell a repeated delivery from a new notice.
 */
export function noticeRequestId(executionId: string, ...parts: string[]): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([executionId, ...parts]))
    .digest();
  digest[6] = ((digest[6] ?? 0) & 0x0f) | 0x80; // version 8
  digest[8] = ((digest[8] ?? 0) & 0x3f) | 0x80; // variant 10xx (RFC 9562)
  const hex = digest.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The S3 key of the marker that says a notice went out on a channel: `.notices/<requestId>/<channel>.json`,
 * channel `metrics`, `events`, or `sns-<first 16 hex digits of SHA-256 of the topic ARN>`.
 */
export function noticeMarkerKey(requestId: string, channel: string): string {
  return `${NOTICES_ROOT}${requestId}/${channel}.json`;
}

const MarkerSchema = z.looseObject({ requestId: z.string(), channel: z.string() });

/** The channels of one notice: metrics, each topic, the event. */
export interface NoticeChannel {
  name: string;
  /** Sends on this channel; throws a NotificationError when the channel refused. */
  send(): Promise<Record<string, unknown>>;
}

/**
 * Sends a notice once per channel: the metrics as EMF lines to the function's log output (Powertools
 * Metrics; no API call), the message to every topic (with the `requestId` message attribute), the
 * event to EventBridge (`requestId` in its detail).
 *
 * Each channel is tried on its own, and one that worked is recorded by a marker object in the backup
 * bucket (noticeMarkerKey, written with `If-None-Match: *`, S3 conditional writes), so that a retry of
 * the step, after another channel failed, skips it: an EventBridge failure no longer sends the e-mail
 * again or counts the metrics twice. A channel is skipped when its marker exists; every channel is
 * tried even when one before it failed; then a NotificationError names the channels that failed (the
 * state machine retries it). S3 is never allowed to fail or block a notice: a marker that cannot be
 * read counts as absent (the channel sends; at worst a duplicate, which the request id identifies)
 * and one that cannot be written is logged. Delivery is thus at least once per channel, and more than
 * once only when a send's answer or its marker was lost; subscribers de-duplicate on the request id.
 */
export async function deliverNotice(
  deps: Pick<
    NotifyDeps,
    's3' | 'bucket' | 'sns' | 'topicArns' | 'events' | 'eventBusName' | 'emf' | 'logger'
  >,
  notice: {
    /** noticeRequestId of the execution and the notice. */
    requestId: string;
    subject: string;
    lines: string[];
    detailType: string;
    detail: Record<string, unknown>;
    metrics: Metric[];
    now: Date;
  },
): Promise<{ sent: string[]; skipped: string[] }> {
  const { requestId } = notice;
  const log = deps.logger.child({ requestId });
  // Nothing a remote server answered may carry a secret into a notice (core/redact.ts): the cause
  // quoted here came from a runner's record or a state's error, both redacted at their source too.
  const message = redactText([...notice.lines, '', `Request id: ${requestId}`].join('\n'));
  const subject = redactText(notice.subject);
  const failure = (what: string, err: unknown) =>
    err instanceof NotificationError
      ? err
      : new NotificationError(`${what} failed: ${err instanceof Error ? err.message : String(err)}`);
  const channels: NoticeChannel[] = [
    {
      name: 'metrics',
      send: async () => {
        const lines = emfLines(notice.metrics, {
          timestamp: notice.now,
          metadata: { requestId },
          warn: (m) => log.warn(m),
        });
        const sink = deps.emf ?? stdoutEmfSink;
        try {
          for (const line of lines) sink(line);
        } catch (err) {
          // A log line cannot fail a notice; it is said and dropped.
          log.warn('metrics not written', { error: String(err) });
        }
        return { lines: lines.length };
      },
    },
    ...deps.topicArns.map(
      (TopicArn): NoticeChannel => ({
        name: `sns-${createHash('sha256').update(TopicArn).digest('hex').slice(0, 16)}`,
        send: async () => {
          const out = await deps.sns
            .send(
              new PublishCommand({
                TopicArn,
                Subject: clip(subject, 100),
                Message: message,
                MessageAttributes: { requestId: { DataType: 'String', StringValue: requestId } },
              }),
            )
            .catch((err: unknown) => {
              throw failure(`publishing to ${TopicArn}`, err);
            });
          return { topicArn: TopicArn, ...(out.MessageId ? { messageId: out.MessageId } : {}) };
        },
      }),
    ),
    {
      name: 'events',
      send: async () => {
        const put = await deps.events
          .send(
            new PutEventsCommand({
              Entries: [
                {
                  Source: EVENT_SOURCE,
                  DetailType: notice.detailType,
                  // String leaves redacted before serialising (never the JSON text, which a replacement
                  // could make invalid); identifiers such as the target are kept as they are.
                  Detail: JSON.stringify(
                    redactValue({ ...notice.detail, requestId }, { keep: IDENTIFIER_KEYS_WITH_REQUEST }),
                  ),
                  ...(deps.eventBusName ? { EventBusName: deps.eventBusName } : {}),
                },
              ],
            }),
          )
          .catch((err: unknown) => {
            throw failure('putting the event to EventBridge', err);
          });
        if (put.FailedEntryCount) {
          throw new NotificationError(
            `EventBridge refused the event: ${put.Entries?.[0]?.ErrorMessage ?? 'no reason given'}`,
          );
        }
        const eventId = put.Entries?.[0]?.EventId;
        return eventId ? { eventId } : {};
      },
    },
  ];

  const sent: string[] = [];
  const skipped: string[] = [];
  const failed: NotificationError[] = [];
  for (const channel of channels) {
    const key = noticeMarkerKey(requestId, channel.name);
    if (await markerExists(deps, key, log)) {
      skipped.push(channel.name);
      continue;
    }
    try {
      const result = await channel.send();
      sent.push(channel.name);
      await writeMarker(
        deps,
        key,
        { requestId, channel: channel.name, sentAt: new Date().toISOString(), ...result },
        log,
      );
    } catch (err) {
      failed.push(failure(channel.name, err));
    }
  }
  if (skipped.length > 0) log.info('notice channels already sent by an earlier attempt', { skipped });
  if (failed.length > 0) {
    throw new NotificationError(
      `notice ${requestId}: ${failed.map((e) => e.message).join('; ')}${sent.length + skipped.length > 0 ? ` (sent: ${[...skipped, ...sent].join(', ')}; a retry sends only the rest)` : ''}`,
    );
  }
  return { sent, skipped };
}

/** The identifiers redaction keeps in an event's detail: IDENTIFIER_KEYS and the request id. */
const IDENTIFIER_KEYS_WITH_REQUEST: ReadonlySet<string> = new Set([...IDENTIFIER_KEYS, 'requestId']);

/** Whether a channel's marker exists; an unreadable one counts as absent (the channel sends again). */
async function markerExists(
  deps: Pick<NotifyDeps, 's3' | 'bucket'>,
  key: string,
  log: Logger,
): Promise<boolean> {
  try {
    return (await getJson(deps.s3, deps.bucket, key, MarkerSchema)) !== undefined;
  } catch (err) {
    log.warn('notice marker unreadable: sending on this channel', { key, error: String(err) });
    return false;
  }
}

/**
 * Writes a channel's marker, only if none is there (`If-None-Match: *`: a 412 means another attempt
 * wrote it first, which is as good). A marker that cannot be written is logged, never thrown: the
 * notice went out, and only a later retry of the same notice could repeat this channel.
 */
async function writeMarker(
  deps: Pick<NotifyDeps, 's3' | 'bucket'>,
  key: string,
  body: Record<string, unknown>,
  log: Logger,
): Promise<void> {
  try {
    await deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.bucket,
        Key: key,
        Body: JSON.stringify(body),
        ContentType: 'application/json',
        IfNoneMatch: '*',
      }),
    );
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 412 || (err as { name?: string }).name === 'PreconditionFailed') return;
    log.warn('notice marker not written: a retry of this notice may repeat this channel', {
      key,
      error: String(err),
    });
  }
}
