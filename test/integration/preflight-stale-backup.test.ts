import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalAws, runBackupLocally } from '../../cli/local/backup.js';
import { provisionLocalAws } from '../../cli/local/harness-target.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { readManifest } from '../../core/backup/manifest.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { type FakeInfrahub, startFakeInfrahub, task } from '../../harness/fake-infrahub-api.js';
import { type S3Server, startS3 } from '../../harness/index.js';
import { unreachableTargetConfig } from '../../harness/local-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { captureNotices, type Notices } from '../helpers/notices.js';

// Issue 12, item 14: a task left RUNNING for days by a restarted Infrahub worker. The synthesized
// backup state machine, run locally with the preflight Lambda core against the fake Infrahub API
// and moto (S3, Secrets Manager, SNS, EventBridge); the backup captures the artifacts component only
// (an S3 artifact bucket in moto, copied by the real runner), so no database is needed.
describe('a backup while Infrahub holds a stale task', () => {
  let aws: S3Server;
  let local: LocalAws;
  let infrahub: FakeInfrahub;
  let config: DeploymentConfig;
  let synthesized: SynthesizedBackup;
  let notices: Notices;
  let fresh = false;
  const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000);

  beforeAll(async () => {
    aws = await startS3();
    local = await provisionLocalAws(aws, 'infrahub-backups-stale', []);
    infrahub = await startFakeInfrahub({
      script: () => [
        task(41, 'RUNNING', 'Generate artifacts for branch main', { createdAt: hoursAgo(80) }),
        ...(fresh ? [task(42, 'RUNNING', 'Merge branch feature-x', { createdAt: hoursAgo(0.2) })] : []),
      ],
    });
    await local.s3.send(new CreateBucketCommand({ Bucket: 'infrahub-lab-artifacts' }));
    await local.s3.send(
      new PutObjectCommand({
        Bucket: 'infrahub-lab-artifacts',
        Key: 'dev-1/config.txt',
        Body: 'hostname dev-1\n',
      }),
    );
    await local.secrets.send(
      new CreateSecretCommand({ Name: 'lab/token', SecretString: JSON.stringify({ token: infrahub.token }) }),
    );
    // The runner's task definition injects the database credentials, unused by the artifacts step.
    for (const Name of ['lab/neo4j', 'lab/pg'])
      await local.secrets.send(
        new CreateSecretCommand({ Name, SecretString: JSON.stringify({ username: 'u', password: 'p' }) }),
      );
    config = unreachableTargetConfig({
      name: 'stale',
      infrahubAddress: infrahub.address,
      preflight: { maxWaitSeconds: 2, pollIntervalSeconds: 1, staleTaskHours: 24 },
    });
    synthesized = synthesizeBackup(config);
    notices = await captureNotices(local);
  }, scaled(240_000));

  afterAll(async () => {
    await infrahub?.close();
    await aws?.stop();
  });

  beforeEach(async () => {
    await notices.sns();
    await notices.events();
  });

  const run = () =>
    runBackupLocally(
      { components: ['artifacts'] },
      { config, aws: local, runtime: () => ({ env: {} }), synthesized, retryIntervalMs: 0 },
    );

  it(
    'backs up past a task RUNNING for 80 h, recording it as a warning in the manifest, the notice and the event',
    async () => {
      fresh = false;
      const result = await run();
      expect(result.status, result.cause).toBe('SUCCEEDED');
      const backupId = (result.output as { backupId: string }).backupId;
      const manifest = await readManifest(local.s3, local.bucket, 'infrahub-lab', backupId);
      const warning =
        /^Infrahub task "Generate artifacts for branch main" \(id task-41\) has been RUNNING for 3 d 8 h .*older than preflight\.staleTaskHours \(24 h\), so it did not block this backup/;
      expect(manifest?.warnings).toEqual([expect.stringMatching(warning)]);
      const [notice] = await notices.sns();
      expect(notice?.Subject).toBe('Infrahub backup succeeded: infrahub-lab');
      expect(notice?.Message).toMatch(
        /Warnings:\n {2}- Infrahub task "Generate artifacts for branch main" \(id task-41\) has been RUNNING for 3 d 8 h/,
      );
      const events = await notices.events();
      expect(events.find((e) => e['detail-type'] === 'Infrahub Backup Succeeded')?.detail.warnings).toEqual([
        expect.stringMatching(warning),
      ]);
    },
    scaled(120_000),
  );

  it(
    'still refuses while a fresh task runs, naming it with its age, and the stale one it let pass',
    async () => {
      fresh = true;
      const result = await run();
      expect(result.status).toBe('FAILED');
      expect(result.cause).toMatch(
        /failed at Preflight: InfrahubBusy: Infrahub still has 1 task\(s\) scheduled, pending, running or cancelling .*"Merge branch feature-x" \(RUNNING for 1\d min, last update 1\d min ago, branch main, id task-42\).*1 such task\(s\) were let pass: "Generate artifacts for branch main" \(RUNNING for 3 d 8/,
      );
      await notices.sns();
      await notices.events();
    },
    scaled(120_000),
  );
});
