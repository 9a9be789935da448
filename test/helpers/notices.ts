/**
 * Captures what the local mode publishes: an SQS queue subscribed to the notice topic and another
 * targeted by an EventBridge rule for our event source, both on the moto server.
 */
import { PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { LocalAws } from '../../cli/local/backup.js';
import { EVENT_SOURCE } from '../../core/notices/deliver.js';
import { localCredentials, localRegion } from '../../harness/index.js';

export interface Notices {
  /**
   * SNS notices received since the last call: subject, message and message attributes (the
   * notice's `requestId`), as SNS delivers them to an SQS subscriber (not raw).
   */
  sns(): Promise<
    Array<{
      Subject?: string;
      Message: string;
      MessageAttributes?: Record<string, { Type: string; Value: string }>;
    }>
  >;
  /** EventBridge events received since the last call. */
  events(): Promise<Array<{ 'detail-type': string; source: string; detail: Record<string, unknown> }>>;
}

export async function captureNotices(aws: LocalAws): Promise<Notices> {
  const sqs = new SQSClient({ endpoint: aws.endpoint, region: localRegion, credentials: localCredentials });
  const queue = async (name: string) => {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    return { url: QueueUrl ?? '', arn: attrs.Attributes?.QueueArn ?? '' };
  };
  const snsQueue = await queue('notices-sns');
  const eventsQueue = await queue('notices-events');
  await aws.sns.send(
    new SubscribeCommand({ TopicArn: aws.topicArn, Protocol: 'sqs', Endpoint: snsQueue.arn }),
  );
  await aws.events.send(
    new PutRuleCommand({
      Name: 'infrahub-backup-notices',
      EventPattern: JSON.stringify({ source: [EVENT_SOURCE] }),
    }),
  );
  await aws.events.send(
    new PutTargetsCommand({
      Rule: 'infrahub-backup-notices',
      Targets: [{ Id: 'queue', Arn: eventsQueue.arn }],
    }),
  );
  const drain = async (url: string): Promise<string[]> => {
    const bodies: string[] = [];
    for (;;) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
      const messages = out.Messages ?? [];
      if (messages.length === 0) return bodies;
      bodies.push(...messages.map((m) => m.Body ?? ''));
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
  };
  return {
    sns: async () => (await drain(snsQueue.url)).map((b) => JSON.parse(b)),
    events: async () => (await drain(eventsQueue.url)).map((b) => JSON.parse(b)),
  };
}

/**
 * The metrics that CloudWatch would extract from embedded metric format lines, as
 * "Name Dim=value ..." (dimensions in the line's order), one per metric and dimension set.
 */
export function emfMetricNames(lines: readonly string[]): string[] {
  return lines.flatMap((line) => {
    const doc = JSON.parse(line) as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: Array<{ Dimensions: string[][]; Metrics: Array<{ Name: string }> }> };
    };
    return doc._aws.CloudWatchMetrics.flatMap((d) =>
      d.Dimensions.flatMap((set) =>
        d.Metrics.map((m) => `${m.Name}${set.map((k) => ` ${k}=${String(doc[k])}`).join('')}`),
      ),
    );
  });
}
