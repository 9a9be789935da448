import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalAws, runBackupLocally } from '../../cli/local/backup.js';
import { provisionLocalAws } from '../../cli/local/harness-target.js';
import type { ExecutionEvent } from '../../cli/local/state-machine.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { readManifest } from '../../core/backup/manifest.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { type FakeInfrahub, startFakeInfrahub, task } from '../../harness/fake-infrahub-api.js';
import { type S3Server, startS3 } from '../../harness/index.js';
import { unreachableTargetConfig } from '../../harness/local-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { captureNotices, type Notices } from '../helpers/notices.js';

/** How many times the execution entered a state (the library's StateEntered events). */
const entered = (events: ExecutionEvent[], name: string) =>
  events.filter((e) => e.type === 'StateEntered' && (e.state as { name?: string })?.name === name).length;

// Issue 16, part 6: the preflight wait was a loop inside the Lambda, cut off by its timeout (at most
// 900 s) although the configuration allowed 3600 s. It is now the state machine's: one check per
// Lambda call, a Wait state (PreflightWait) between checks. The synthesized backup state machine,
// run locally (aws-local-stepfunctions) with the preflight Lambda core against a fake Infrahub API
// and moto; PreflightWait's pauses overridden to 0 ms so a 30-minute bound runs in seconds (the
// bound counts at least one poll interval per Wait state passed, so it ends as on AWS). The backup
// captures the artifacts component only, so no database is needed.
describe('the preflight wait as a state-machine loop', () => {
  let aws: S3Server;
  let local: LocalAws;
  let infrahub: FakeInfrahub;
  let config: DeploymentConfig;
  let synthesized: SynthesizedBackup;
  let notices: Notices;
  /** The polls (from now on) during which the fake Infrahub shows a running task. */
  let busyFor = Number.POSITIVE_INFINITY;
  let pollsBefore = 0;

  beforeAll(async () => {
    aws = await startS3();
    local = await provisionLocalAws(aws, 'infrahub-backups-preflight-loop', []);
    infrahub = await startFakeInfrahub({
      script: (poll) =>
        poll - pollsBefore < busyFor
          ? [task(7, 'RUNNING', 'Merge branch feature-x', { createdAt: new Date(Date.now() - 60_000) })]
          : [task(7, 'COMPLETED', 'Merge branch feature-x')],
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
    // 1800 s: more than the preflight Lambda's own timeout (and than any Lambda's 900 s).
    config = unreachableTargetConfig({
      name: 'pfloop',
      infrahubAddress: infrahub.address,
      preflight: { maxWaitSeconds: 1800, pollIntervalSeconds: 15 },
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
    pollsBefore = infrahub.polls();
  });

  const run = (input: Record<string, unknown> = {}) =>
    runBackupLocally(
      { components: ['artifacts'], ...input },
      {
        config,
        aws: local,
        runtime: () => ({ env: {} }),
        synthesized,
        retryIntervalMs: 0,
        waitTimeOverrides: { PreflightWait: 0 },
      },
    );

  it(
    'fails with the gate’s InfrahubBusy after the configured 1800 s (121 checks, 120 waits), not at a Lambda timeout',
    async () => {
      busyFor = Number.POSITIVE_INFINITY;
      const started = Date.now();
      const result = await run();
      expect(result.status).toBe('FAILED');
      expect(result.cause).toMatch(
        /failed at Preflight: InfrahubBusy: Infrahub still has 1 task\(s\) scheduled, pending, running or cancelling after 1800 s \(the gate waits up to 1800 s\): "Merge branch feature-x" \(RUNNING for 1 min.*id task-7\).*start the backup with "force": true to skip the gate/,
      );
      expect(infrahub.polls() - pollsBefore).toBe(121);
      expect(entered(result.events, 'PreflightWait')).toBe(120);
      expect(entered(result.events, 'Preflight')).toBe(121);
      // Wait states overridden: the 30-minute bound took seconds.
      expect(Date.now() - started).toBeLessThan(120_000);
      // The same failure notice as when the Lambda waited: step Preflight, error InfrahubBusy.
      const [notice] = await notices.sns();
      expect(notice?.Subject).toBe('Infrahub backup FAILED: infrahub-lab at Preflight');
      expect(notice?.Message).toMatch(/InfrahubBusy/);
      expect(notice?.Message).toMatch(/after 1800 s \(the gate waits up to 1800 s\)/);
    },
    scaled(240_000),
  );

  it(
    'proceeds once Infrahub is idle after 3 busy polls: 4 checks, 3 waits, the wait recorded',
    async () => {
      busyFor = 3;
      const result = await run();
      expect(result.status, result.cause).toBe('SUCCEEDED');
      expect(infrahub.polls() - pollsBefore).toBe(4);
      expect(entered(result.events, 'PreflightWait')).toBe(3);
      const backupId = (result.output as { backupId: string }).backupId;
      const manifest = await readManifest(local.s3, local.bucket, 'infrahub-lab', backupId);
      expect(manifest?.forced).toBe(false);
      const exited = result.events.filter(
        (e) => e.type === 'StateExited' && (e.state as { name?: string })?.name === 'Preflight',
      );
      // The last check's state: not busy, 45 s waited (three intervals), counted from the first check.
      expect(JSON.stringify(exited.at(-1))).toMatch(/"busy":false.*"polls":4/);
    },
    scaled(240_000),
  );

  it(
    'with force, proceeds at once while Infrahub is busy: no check, no wait',
    async () => {
      busyFor = Number.POSITIVE_INFINITY;
      const result = await run({ force: true });
      expect(result.status, result.cause).toBe('SUCCEEDED');
      expect(infrahub.polls() - pollsBefore).toBe(0);
      expect(entered(result.events, 'PreflightWait')).toBe(0);
      const backupId = (result.output as { backupId: string }).backupId;
      expect((await readManifest(local.s3, local.bucket, 'infrahub-lab', backupId))?.forced).toBe(true);
    },
    scaled(240_000),
  );
});
