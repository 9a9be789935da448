import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalAws,
  type RunTaskRequest,
  runBackupLocally,
  runDrillLocally,
} from '../../cli/local/backup.js';
import { provisionLocalAws } from '../../cli/local/harness-target.js';
import type { ExecutionEvent } from '../../cli/local/state-machine.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { restoreStepKey } from '../../core/backup/layout.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import type { RestoreStepResult } from '../../core/restore/steps.js';
import { listAll, putJson } from '../../core/s3/objects.js';
import { type S3Server, startS3 } from '../../harness/index.js';
import { enteredStates } from '../../harness/local-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { artifactsFleetConfig, putEmptyArtifactsResult } from '../helpers/fleet-config.js';
import { captureNotices, type Notices } from '../helpers/notices.js';

// Issue 16, item 3: drills as ONE execution over many targets. The synthesized drill state machine,
// run locally against moto (S3, SNS, EventBridge), is given a fleet input of three targets, one of
// which has no backup: its Distributed Map starts one drill execution of the same state machine per
// target (states:startExecution.sync:2), each with its own history and notice, and the fleet fails
// naming the target whose drill failed. The ECS states are FAKED (as in backup-fleet.test.ts): the
// backup's artifacts runner writes an empty storage's result, the drill runner the report a drill
// of it writes; the drill's own runner is tested with real databases in restore-state-machine.test.ts.
describe('a fleet drill of three targets, run locally', () => {
  let aws: S3Server;
  let local: LocalAws;
  let config: DeploymentConfig;
  let synthesized: SynthesizedBackup;
  let notices: Notices;
  const names = ['infrahub-site-a', 'infrahub-site-b', 'infrahub-site-c'];
  const [siteA, siteB, bare] = names as [string, string, string];
  const drilled: RunTaskRequest[] = [];

  /** The ECS states: a backup's artifacts runner, or a drill's runner (what each writes to S3). */
  const runTask = async (request: RunTaskRequest) => {
    const now = new Date().toISOString();
    const env = request.environment;
    if (request.subcommand === 'backup-artifacts') {
      await putEmptyArtifactsResult(local.s3, local.bucket, request.target, env.BACKUP_ID ?? '');
      return;
    }
    if (request.subcommand !== 'drill') throw new Error(`unexpected runner ${request.subcommand}`);
    drilled.push(request);
    const target = env.TARGET ?? '';
    const restoreId = env.RESTORE_ID ?? '';
    const report: RestoreStepResult = {
      step: 'drill',
      target,
      backupId: env.BACKUP_ID ?? '',
      restoreId,
      startedAt: now,
      finishedAt: now,
      durationMs: 1500,
      timings: { 'restore-artifacts': 0.5, teardown: 0.1 },
      details: {
        recoverySeconds: 1.2,
        artifacts: { files: 0, verifiedBytes: 0, validation: '0 files restored, as the manifest lists' },
      },
    };
    await putJson(local.s3, local.bucket, restoreStepKey(target, restoreId, 'drill'), report);
  };

  beforeAll(async () => {
    aws = await startS3();
    local = await provisionLocalAws(aws, 'infrahub-backups-drill-fleet', []);
    notices = await captureNotices(local);
    config = artifactsFleetConfig('drills', names, 'drill-fleet');
    synthesized = synthesizeBackup(config);
    // Two of the three targets have a backup (artifacts only); the third has none.
    const backup = await runBackupLocally(
      { targets: [siteA, siteB], components: ['artifacts'], force: true },
      { config, aws: local, runtime: () => ({ env: {} }), synthesized, runTask, retryIntervalMs: 0 },
    );
    expect(backup.status, backup.cause).toBe('SUCCEEDED');
    await notices.sns();
    await notices.events();
  }, scaled(240_000));

  afterAll(async () => {
    await aws?.stop();
  });

  it(
    "runs each target's drill as its own execution, fails naming the target without a backup, and the others passed with their notices",
    async () => {
      const events: ExecutionEvent[] = [];
      const run = await runDrillLocally(
        { targets: names, backup: 'latest', reason: 'quarterly drill of the fleet', maxConcurrency: 2 },
        {
          config,
          aws: local,
          runtime: () => ({ env: {} }),
          synthesized,
          runTask,
          retryIntervalMs: 0,
          onEvent: (e) => events.push(e),
        },
      );

      // The fleet: its own history is the plan, the Map and the report; it fails naming the bare target.
      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('RestoreDrillFleetFailed');
      expect(run.cause).toMatch(/^Restore drill of 3 target\(s\): 1 failed, 2 passed\n- infrahub-site-c: /);
      expect(run.cause).toMatch(/- infrahub-site-c: RestoreDrillFailed: drill execution \S+ ended FAILED: /);
      expect(run.cause).toMatch(/infrahub-site-c has no complete backup to rehearse a restore with/);
      expect(run.cause).not.toMatch(/infrahub-site-(a|b):/);
      const own = run.history.flatMap((e) =>
        e.type === 'StateEntered' ? [(e.state as { name: string }).name] : [],
      );
      expect(own).toEqual([
        'Init',
        'PlanDrill',
        'DrillPlanned',
        'DrillFleet?',
        'DrillTargets',
        'DrillFleetReport',
        'AllTargetsDrilled?',
        'DrillFleetFailed',
      ]);

      // One Map child per target, each starting one drill execution of the same state machine.
      const fleetArn = run.executionArn;
      const children = run.executions.filter((e) => e.parentArn === fleetArn);
      expect(children).toHaveLength(3);
      expect(children.every((c) => c.status === 'SUCCEEDED')).toBe(true);
      const drills = run.executions.filter((e) => e.startedBy !== undefined);
      expect(drills).toHaveLength(3);
      for (const d of drills) {
        expect(d.executionArn).toMatch(
          /^arn:aws:states:us-east-1:000000000000:execution:drills-restore-drill:/,
        );
        // Linked to the Map child that started it (AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID).
        expect(children.map((c) => c.executionArn)).toContain(d.startedBy);
      }
      const targetOf = (arn: string) => {
        const started = events.find((e) => e.executionArn === arn && e.type === 'ExecutionStarted');
        return (started?.input as { target?: string } | undefined)?.target;
      };
      const outcome = new Map(drills.map((d) => [targetOf(d.executionArn), d.status]));
      expect(outcome).toEqual(
        new Map([
          [siteA, 'SUCCEEDED'],
          [siteB, 'SUCCEEDED'],
          [bare, 'FAILED'],
        ]),
      );
      // Each drill got the single-target input, with the fleet's options and its starter.
      const inputs = drills.map(
        (d) => events.find((e) => e.executionArn === d.executionArn && e.type === 'ExecutionStarted')?.input,
      );
      expect(inputs).toContainEqual({
        target: siteA,
        backup: 'latest',
        windowDays: 30,
        reason: 'quarterly drill of the fleet',
        AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: expect.stringContaining(
          ':execution:drills-restore-drill/DrillTargets:',
        ),
      });
      // The runner ran for the two targets with a backup only, at most maxConcurrency drills at once.
      expect(drilled.map((r) => r.environment.TARGET).sort()).toEqual([siteA, siteB]);
      let running = 0;
      let most = 0;
      for (const e of events) {
        if (!e.executionArn || !drills.some((d) => d.executionArn === e.executionArn)) continue;
        if (e.type === 'ExecutionStarted') most = Math.max(most, ++running);
        if (e.type === 'ExecutionSucceeded' || e.type === 'ExecutionFailed') running -= 1;
      }
      expect(most).toBe(2);

      // Each drill execution sent its own notice; the fleet sent none of its own.
      const sns = await notices.sns();
      expect(sns).toHaveLength(3);
      const messages = sns.map((n) => n.Message).join('\n---\n');
      for (const t of [siteA, siteB])
        expect(messages).toContain(`Restore drill of Infrahub target "${t}" passed.`);
      expect(messages).toMatch(
        /Restore drill of Infrahub target "infrahub-site-c" FAILED\.[\s\S]*no complete backup/,
      );

      // The Map's results are in the local bucket, where the report read them.
      const results = (await listAll(local.s3, local.bucket, '.fleet-results/drill/')).map(
        (o) => o.Key ?? '',
      );
      expect(results.filter((k) => k.endsWith('/manifest.json'))).toHaveLength(1);
      expect(results.some((k) => k.endsWith('/SUCCEEDED_0.json'))).toBe(true);
      const reportState = run.history.find(
        (e) => e.type === 'StateExited' && (e.state as { name: string }).name === 'DrillFleetReport',
      )?.state as {
        output: { report: { passed: number; failed: number; summary: string } };
      };
      expect(reportState.output.report).toMatchObject({ passed: 2, failed: 1 });
      expect(reportState.output.report.summary).toMatch(
        new RegExp(
          `\\n- ${bare}: RestoreDrillFailed: drill execution arn:aws:states:[^ ]+:execution:drills-restore-drill:`,
        ),
      );
    },
    scaled(240_000),
  );

  it(
    'passes when every target passes, and keeps the single-target input as it was',
    async () => {
      const fleet = await runDrillLocally(
        { targets: [siteB, siteA] },
        { config, aws: local, runtime: () => ({ env: {} }), synthesized, runTask, retryIntervalMs: 0 },
      );
      expect(fleet.status, fleet.cause).toBe('SUCCEEDED');
      expect(fleet.output).toMatchObject({
        ok: true,
        summary: 'Restore drill of 2 target(s): all passed',
        passed: 2,
        failed: 0,
      });
      const single = await runDrillLocally(
        { target: siteA },
        { config, aws: local, runtime: () => ({ env: {} }), synthesized, runTask, retryIntervalMs: 0 },
      );
      expect(single.status, single.cause).toBe('SUCCEEDED');
      expect(single.output).toEqual({
        ok: true,
        summary: expect.stringMatching(/^Restore drill of infrahub-site-a from /),
      });
      expect(enteredStates(single)).toEqual([
        'Init',
        'PlanDrill',
        'DrillPlanned',
        'DrillFleet?',
        'RunDrill',
        'DrillReport',
        'DrillOk?',
        'DrillSucceeded',
      ]);
      expect(single.executions).toHaveLength(1);
    },
    scaled(240_000),
  );

  it(
    'refuses a fleet input naming an unknown target, as a drill refusal with its notice',
    async () => {
      await notices.sns();
      const run = await runDrillLocally(
        { targets: [siteA, 'infrahub-nowhere'] },
        { config, aws: local, runtime: () => ({ env: {} }), synthesized, runTask, retryIntervalMs: 0 },
      );
      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('RestoreDrillFailed');
      expect(run.cause).toMatch(
        /Invalid drill fleet input:\s+- targets: "infrahub-nowhere" is not configured \(known: infrahub-site-a, infrahub-site-b, infrahub-site-c\)/,
      );
      expect(enteredStates(run).slice(0, 3)).toEqual(['Init', 'PlanDrill', 'DrillRefused']);
      expect(run.executions).toHaveLength(1);
      const sns = await notices.sns();
      expect(sns.map((n) => n.Message).join('\n')).toMatch(/infrahub-nowhere/);
    },
    scaled(120_000),
  );
});
