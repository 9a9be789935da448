/**
 * An S3 outage while a backup releases its target's lock (issue 12, item 11): the synthesized
 * backup state machine, run locally, with its Lambdas' S3 client pointed at the fault proxy in
 * front of the real S3 server (moto). The target fails at the preflight gate (Infrahub busy), so
 * the execution goes straight to ReleaseLockAfterFailure, where the outage is injected on the lock
 * object's requests.
 *
 * The retry pauses are shortened by the local runner's `retryIntervalMs` (every Retry waits that
 * long, instead of the definition's 5 s doubling to 60 s); the outages are shortened with them.
 */
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalAws, type LocalExecution, runBackupLocally } from '../../cli/local/backup.js';
import { type LocalTarget, localDeploymentConfig } from '../../cli/local/harness-target.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { lockKey } from '../../core/backup/lock.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { createS3Client } from '../../core/s3/client.js';
import { type FakeInfrahub, startFakeInfrahub, task } from '../../harness/fake-infrahub-api.js';
import {
  createVersionedBucket,
  type FaultProxy,
  type Neo4jServer,
  type PostgresServer,
  type S3Server,
  startFaultProxy,
  startS3,
} from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { captureNotices, type Notices } from '../helpers/notices.js';
import { exists } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const bucket = 'infrahub-backups-lock-outage';
const RETRY_PAUSE_MS = 4_000;
const entered = (run: LocalExecution) =>
  run.events.flatMap((e) => (e.type === 'StateEntered' ? [(e.state as { name: string }).name] : []));

describe('lock release through an S3 outage (backup state machine, run locally)', () => {
  let aws: S3Server;
  let proxy: FaultProxy;
  let infrahub: FakeInfrahub;
  let local: LocalAws;
  let config: DeploymentConfig;
  let synthesized: SynthesizedBackup;
  let notices: Notices;
  const savedExecutionsDir = process.env.INFRAHUB_BACKUP_LOCAL_EXECUTIONS;
  let clock = Date.parse('2026-11-21T02:00:00Z');

  beforeAll(async () => {
    process.env.INFRAHUB_BACKUP_LOCAL_EXECUTIONS = testTempDir('lock-outage-executions-');
    aws = await startS3();
    proxy = await startFaultProxy(aws.endpoint);
    // Infrahub always runs a task: every backup fails at the preflight gate, before any database is
    // touched. The databases below only fill the configuration (their ports); nothing connects to them.
    // (created now, so the gate never counts it as stale).
    infrahub = await startFakeInfrahub({
      script: () => [task(7, 'RUNNING', 'Generate artifacts', { createdAt: new Date() })],
    });
    const target = {
      name: 'infrahub-lab',
      postgres: { port: 5432, majorVersion: 15 } as PostgresServer,
      neo4j: { boltPort: 7687, version: '5.26.0' } as Neo4jServer,
      infrahub: { address: infrahub.address, token: infrahub.token },
      storagePath: '/srv/infrahub-artifacts',
    } satisfies LocalTarget;
    config = localDeploymentConfig([target], { preflight: { maxWaitSeconds: 1, pollIntervalSeconds: 1 } });
    synthesized = synthesizeBackup(config);
    await createVersionedBucket(aws.client(), bucket);
    const secrets = aws.secretsManager();
    await secrets.send(
      new CreateSecretCommand({
        Name: config.targets[0]?.infrahub.tokenSecret,
        SecretString: JSON.stringify({ token: infrahub.token }),
      }),
    );
    const sns = aws.sns();
    const topic = await sns.send(new CreateTopicCommand({ Name: 'infrahub-backup-notices' }));
    local = {
      endpoint: aws.endpoint,
      env: () => aws.env(),
      // The Lambdas' S3 client goes through the proxy, with the Lambdas' bounds (few short attempts).
      s3: createS3Client({
        endpoint: proxy.endpoint,
        region: aws.region,
        forcePathStyle: true,
        credentials: aws.credentials,
        connectionTimeoutMs: 2_000,
        socketTimeoutMs: 5_000,
        requestTimeoutMs: 10_000,
        maxAttempts: 2,
      }),
      secrets,
      sns,
      events: aws.eventBridge(),
      cloudwatch: aws.cloudWatch(),
      bucket,
      topicArn: topic.TopicArn ?? '',
    };
    notices = await captureNotices(local);
  }, scaled(240_000));

  afterAll(async () => {
    if (savedExecutionsDir === undefined) delete process.env.INFRAHUB_BACKUP_LOCAL_EXECUTIONS;
    else process.env.INFRAHUB_BACKUP_LOCAL_EXECUTIONS = savedExecutionsDir;
    local?.s3.destroy();
    await infrahub?.close();
    await proxy?.stop();
    await aws?.stop();
  });

  beforeEach(async () => {
    proxy.clear();
    await notices.sns();
    await notices.events();
  });

  const run = (onEvent?: (e: { type: string; state?: unknown }) => void) => {
    clock += 1000;
    return runBackupLocally(
      { targets: ['infrahub-lab'] },
      {
        config,
        aws: local,
        runtime: () => ({ env: {} }),
        synthesized,
        retryIntervalMs: RETRY_PAUSE_MS,
        startTime: new Date(clock),
        ...(onEvent ? { onEvent } : {}),
      },
    );
  };

  /** An outage of the lock object's requests (503 for each) from the first one it meets, for `ms`. */
  const lockOutage = (ms: number) => {
    const rule = proxy.add({
      match: { path: new RegExp(`/${bucket}/locks/`) },
      fault: { kind: 'status', status: 503 },
    });
    const timer = setInterval(() => {
      if (rule.hits > 0) {
        clearInterval(timer);
        setTimeout(() => rule.remove(), ms);
      }
    }, 50);
    return { rule, stop: () => clearInterval(timer) };
  };

  it(
    'outlasts a short outage while releasing the lock after a failure: the lock is released',
    async () => {
      let outage: ReturnType<typeof lockOutage> | undefined;
      const result = await run((e) => {
        // Armed once the lock is held; it starts with the release's first request.
        if (e.type === 'StateEntered' && (e.state as { name: string }).name === 'Preflight')
          outage ??= lockOutage(24_000);
      });
      outage?.stop();
      expect(result.status).toBe('FAILED');
      expect(result.cause).toMatch(/Preflight: InfrahubBusy/);
      expect(entered(result)).toContain('ReleaseLockAfterFailure');
      expect(outage?.rule.hits).toBeGreaterThan(2); // the release met the outage, and was tried again
      expect(await exists(aws.client(), bucket, lockKey('infrahub-lab'))).toBe(false);
      const [notice] = await notices.sns();
      expect(notice?.Message).toMatch(/failed/);
      expect(notice?.Message).not.toMatch(/lock could not be released/);
    },
    scaled(300_000),
  );

  it(
    'says in the failure notice that the lock was left, and the next run takes it over',
    async () => {
      // An outage longer than every retry of the release.
      let held: ReturnType<typeof proxy.add> | undefined;
      const first = await run((e) => {
        if (e.type === 'StateEntered' && (e.state as { name: string }).name === 'Preflight')
          held ??= proxy.add({
            match: { path: new RegExp(`/${bucket}/locks/`) },
            fault: { kind: 'status', status: 503 },
          });
      });
      proxy.clear();
      expect(first.status).toBe('FAILED');
      expect(held?.hits).toBeGreaterThan(2);
      // The lock was left, naming the first execution.
      expect(await exists(aws.client(), bucket, lockKey('infrahub-lab'))).toBe(true);
      const [notice] = await notices.sns();
      expect(notice?.Message).toContain(`lock could not be released: ${lockKey('infrahub-lab')} was left`);
      expect(notice?.Message).toMatch(/StorageError/);
      expect(notice?.Message).toMatch(/takes the lock over/);
      expect(notice?.Message).toMatch(/expires at about \d{4}-\d\d-\d\dT/);
      const [event] = await notices.events();
      expect(event?.detail).toMatchObject({
        lockLeft: { key: lockKey('infrahub-lab'), error: 'StorageError' },
      });

      // The next execution finds the first ended, takes the lock over (not TargetLocked) and goes on.
      const second = await run();
      expect(entered(second)).toContain('Preflight');
      expect(entered(second)).not.toContain('LockFailed');
      expect(second.cause).toMatch(/Preflight: InfrahubBusy/);
      // ... and releases it at its end.
      expect(await exists(aws.client(), bucket, lockKey('infrahub-lab'))).toBe(false);
    },
    scaled(300_000),
  );

  // Review item 5: S3 stored the lock but its answer was lost, and the retries met an outage: the
  // failure path releases what this execution holds, and the notice does not claim no lock is held.
  it(
    'releases a lock S3 stored when taking it failed (answer lost, then an outage), and says nothing false',
    async () => {
      const dropped = proxy.add({
        match: { method: 'PUT', path: new RegExp(`/${bucket}/locks/`) },
        fault: { kind: 'drop-response' },
        times: 1,
      });
      const outage = proxy.add({
        match: { path: new RegExp(`/${bucket}/locks/`) },
        fault: { kind: 'status', status: 503 },
      });
      const result = await run((e) => {
        // The outage ends a few seconds into the release (within its retries).
        if (e.type === 'StateEntered' && (e.state as { name: string }).name === 'ReleaseLockAfterFailure')
          setTimeout(() => outage.remove(), 6_000);
      });
      proxy.clear();
      expect(dropped.hits).toBe(1);
      expect(result.status).toBe('FAILED');
      expect(entered(result)).toContain('LockFailed');
      expect(entered(result)).toContain('ReleaseLockAfterFailure');
      // The lock S3 stored for this execution is gone: the next run is not blocked for 12 h.
      expect(await exists(aws.client(), bucket, lockKey('infrahub-lab'))).toBe(false);
      const [notice] = await notices.sns();
      expect(notice?.Message).toMatch(/AcquireLock/);
      expect(notice?.Message).not.toMatch(/lock could not be released/);
      const second = await run();
      expect(entered(second)).not.toContain('LockFailed');
    },
    scaled(300_000),
  );
});
