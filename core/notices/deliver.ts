/**
 * What every notice shares, the backup's (core/notices/notify.ts) and the restore's and drill's
 * (core/restore/report.ts): the EventBridge source and detail types, the notice's request id, the
 * lines about a lock left behind, a failed state's cause in one line, and delivery once per channel
 * (deliverNotice: SNS, EventBridge, metrics as CloudWatch embedded metric format log lines, each
 * recorded by a marker under `.notices/`). docs/deployment.md, "Notices: channels, request id and
 * de-duplication", says what subscribers see.
 */
import { createHash } from 'node:crypto';
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { NOTICES_ROOT } from '../backup/layout.js';
import { lockKey } from '../backup/lock.js';
import { NotificationError } from '../errors.js';
import { formatBytes } from '../format.js';
import type { Logger } from '../log.js';
import { type EmfSink, emfLines, type Metric, stdoutEmfSink } from '../metrics.js';
import { excerpt, IDENTIFIER_KEYS, redactText, redactValue } from '../redact.js';
import { conditionalWrite, getJson } from '../s3/objects.js';

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
  /**
   * The deployment's `monitoring.perTargetMetrics` (the handler reads it from the bundled
   * configuration): false leaves out the metrics with a `Target` dimension. Default true.
   */
  perTargetMetrics?: boolean;
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
    's3' | 'bucket' | 'sns' | 'topicArns' | 'events' | 'eventBusName' | 'emf' | 'perTargetMetrics' | 'logger'
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
          perTarget: deps.perTargetMetrics ?? true,
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
    await conditionalWrite(() =>
      deps.s3.send(
        new PutObjectCommand({
          Bucket: deps.bucket,
          Key: key,
          Body: JSON.stringify(body),
          ContentType: 'application/json',
          IfNoneMatch: '*',
        }),
      ),
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
