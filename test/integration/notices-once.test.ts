import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { SNSClient } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalAws, runBackupLocally, runRestoreLocally } from '../../cli/local/backup.js';
import { provisionLocalAws } from '../../cli/local/harness-target.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { METRICS_NAMESPACE } from '../../core/metrics.js';
import { listAll } from '../../core/s3/objects.js';
import { type S3Server, startS3 } from '../../harness/index.js';
import { enteredStates as entered, unreachableTargetConfig } from '../../harness/local-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { captureNotices, type Notices } from '../helpers/notices.js';

// Issue 16, part 5: each notice goes out once per channel. The synthesized state machines run
// locally against moto (S3, SNS, EventBridge); one channel refuses the first attempt, the state
// machine's own Retry sends the notice again, and only the channel that failed is sent the second
// time. The request id is the same on the SNS message, the event and the metrics' EMF line.
describe('notices sent once per channel, with one request id', () => {
  const bucket = 'infrahub-backups-notices';
  let aws: S3Server;
  let local: LocalAws;
  let config: DeploymentConfig;
  let synthesized: SynthesizedBackup;
  let notices: Notices;

  beforeAll(async () => {
    aws = await startS3();
    local = await provisionLocalAws(aws, bucket, []);
    config = unreachableTargetConfig({ name: 'notices' });
    synthesized = synthesizeBackup(config);
    notices = await captureNotices(local);
  }, scaled(240_000));

  afterAll(async () => {
    await aws?.stop();
  });

  beforeEach(async () => {
    await notices.sns();
    await notices.events();
  });

  /** A client whose first `failures` calls fail as AWS does when it is unavailable (HTTP 503). */
  const flaky = <C extends { send: (...a: never[]) => Promise<unknown> }>(client: C, failures = 1) => {
    const calls = { count: 0 };
    const wrapped = {
      send: async (...args: never[]) => {
        calls.count++;
        if (calls.count <= failures)
          throw Object.assign(new Error('Service Unavailable'), {
            name: 'ServiceUnavailable',
            $metadata: { httpStatusCode: 503 },
          });
        return client.send(...args);
      },
    } as unknown as C;
    return { client: wrapped, calls };
  };

  const run = (
    machine: typeof runBackupLocally,
    input: unknown,
    aws: Partial<LocalAws>,
  ): Promise<{ run: Awaited<ReturnType<typeof runBackupLocally>>; emf: Array<Record<string, unknown>> }> => {
    const emf: Array<Record<string, unknown>> = [];
    return machine(input, {
      config,
      aws: { ...local, ...aws },
      synthesized,
      retryIntervalMs: 0,
      runtime: () => ({}) as never,
      onMetrics: (line) => emf.push(JSON.parse(line)),
    }).then((r) => ({ run: r, emf }));
  };

  it(
    'backup: EventBridge fails the first attempt; the retry sends only the event, one of each arrives',
    async () => {
      const events = flaky(local.events as EventBridgeClient);
      const { run: r, emf } = await run(runBackupLocally, null, { events: events.client });
      expect(r.status).toBe('FAILED');
      expect(entered(r)).toContain('NotifyInputRejected');
      // The state's Retry ran it twice: the first PutEvents failed, the second went through.
      expect(events.calls.count).toBe(2);

      const sns = await notices.sns();
      const sent = await notices.events();
      expect(sns).toHaveLength(1);
      expect(sent).toHaveLength(1);
      expect(sent[0]?.['detail-type']).toBe('Infrahub Backup Aborted');
      // The metrics were written once (an EMF line per dimension set), not once per attempt.
      expect(emf).toHaveLength(1);
      expect(emf[0]).toMatchObject({
        _aws: { CloudWatchMetrics: [{ Namespace: METRICS_NAMESPACE, Dimensions: [[]] }] },
        BackupFailed: 1,
      });

      // One request id on all three: the SNS attribute and last line, the event's detail, the EMF line.
      const requestId = sns[0]?.MessageAttributes?.requestId?.Value;
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(sns[0]?.Message).toContain(`Request id: ${requestId}`);
      expect(sent[0]?.detail.requestId).toBe(requestId);
      expect(emf[0]?.requestId).toBe(requestId);
      // Each channel left its marker under .notices/<request id>/.
      const markers = (await listAll(local.s3, bucket, `.notices/${requestId}/`)).map((o) => o.Key);
      expect(markers).toHaveLength(3);
    },
    scaled(120_000),
  );

  it(
    'backup: SNS fails the first attempt; the retry publishes only the message, one of each arrives',
    async () => {
      const sns = flaky(local.sns as SNSClient);
      const { run: r, emf } = await run(runBackupLocally, null, { sns: sns.client });
      expect(r.status).toBe('FAILED');
      expect(sns.calls.count).toBe(2);
      const messages = await notices.sns();
      const sent = await notices.events();
      expect(messages).toHaveLength(1);
      expect(sent).toHaveLength(1);
      expect(emf).toHaveLength(1);
      expect(sent[0]?.detail.requestId).toBe(messages[0]?.MessageAttributes?.requestId?.Value);
    },
    scaled(120_000),
  );

  it(
    'restore: the report retried after an EventBridge failure sends one message and one event',
    async () => {
      const events = flaky(local.events as EventBridgeClient);
      const { run: r, emf } = await run(runRestoreLocally, null, { events: events.client });
      expect(r.status).toBe('FAILED');
      expect(events.calls.count).toBe(2);
      const sns = await notices.sns();
      const sent = await notices.events();
      expect(sns).toHaveLength(1);
      expect(sent).toHaveLength(1);
      const requestId = sns[0]?.MessageAttributes?.requestId?.Value;
      expect(sent[0]?.detail.requestId).toBe(requestId);
      expect(emf.length).toBeGreaterThan(0);
      for (const line of emf) expect(line.requestId).toBe(requestId);
    },
    scaled(120_000),
  );

  it(
    'two executions send two notices: the request id is per execution, not per content',
    async () => {
      await run(runBackupLocally, null, {});
      await run(runBackupLocally, null, {});
      const sns = await notices.sns();
      expect(sns).toHaveLength(2);
      const ids = sns.map((m) => m.MessageAttributes?.requestId?.Value);
      expect(new Set(ids).size).toBe(2);
    },
    scaled(120_000),
  );
});
