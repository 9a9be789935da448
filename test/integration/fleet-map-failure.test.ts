/**
 * Issue 16 review: a fleet's Distributed Map that fails as a whole. The synthesized backup and drill
 * state machines, run locally against moto (S3, SNS, EventBridge) with the Lambdas' and the
 * ResultWriter's S3 client pointed at the fault proxy, which refuses the ResultWriter's writes under
 * `.fleet-results/` (403 AccessDenied, as a bucket or key policy would): the Map fails with
 * States.ResultWriterFailed after its children ran. Its Catch must lead to a report naming the Map's
 * error and cause and what is known of the targets, a failure notice, and the execution failing with
 * the Map's error. The ECS states are FAKED, as in backup-fleet.test.ts and drill-fleet.test.ts.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type LocalAws,
  type LocalExecution,
  type RunTaskRequest,
  runBackupLocally,
  runDrillLocally,
} from '../../cli/local/backup.js';
import { provisionLocalAws } from '../../cli/local/harness-target.js';
import { runLocally } from '../../cli/local/state-machine.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { restoreStepKey } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import type { RestoreStepResult } from '../../core/restore/steps.js';
import { createS3Client } from '../../core/s3/client.js';
import { listAll, putJson } from '../../core/s3/objects.js';
import { type FaultProxy, type S3Server, startFaultProxy, startS3 } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { artifactsFleetConfig, putEmptyArtifactsResult } from '../helpers/fleet-config.js';
import { captureNotices, type Notices } from '../helpers/notices.js';

const bucket = 'infrahub-backups-map-failure';
const names = ['infrahub-site-a', 'infrahub-site-b', 'infrahub-site-c'];

describe('a fleet Map that fails as a whole (ResultWriter refused), run locally', () => {
  let aws: S3Server;
  let proxy: FaultProxy;
  let local: LocalAws;
  let config: DeploymentConfig;
  let synthesized: SynthesizedBackup;
  let notices: Notices;

  /** The ECS states: a backup's artifacts runner, or a drill's runner (what each writes to S3). */
  const runTask = async (request: RunTaskRequest) => {
    const now = new Date().toISOString();
    const env = request.environment;
    if (request.subcommand === 'backup-artifacts') {
      await putEmptyArtifactsResult(local.s3, local.bucket, request.target, env.BACKUP_ID ?? '');
      return;
    }
    if (request.subcommand !== 'drill') throw new Error(`unexpected runner ${request.subcommand}`);
    const target = env.TARGET ?? '';
    const restoreId = env.RESTORE_ID ?? '';
    const report: RestoreStepResult = {
      step: 'drill',
      target,
      backupId: env.BACKUP_ID ?? '',
      restoreId,
      startedAt: now,
      finishedAt: now,
      durationMs: 1000,
      timings: { 'restore-artifacts': 0.5 },
      details: {
        recoverySeconds: 1,
        artifacts: { files: 0, verifiedBytes: 0, validation: '0 files restored, as the manifest lists' },
      },
    };
    await putJson(local.s3, local.bucket, restoreStepKey(target, restoreId, 'drill'), report);
  };
  const options = () => ({
    config,
    aws: local,
    runtime: () => ({ env: {} }),
    synthesized,
    runTask,
    retryIntervalMs: 0,
  });
  /** The ResultWriter's writes under `.fleet-results/<kind>/` refused (those whose key matches `file`). */
  const refuseResults = (kind: 'backup' | 'drill', file = /.*/) =>
    proxy.add({
      match: {
        method: 'PUT',
        test: ({ path }) => path.startsWith(`/${bucket}/.fleet-results/${kind}/`) && file.test(path),
      },
      fault: { kind: 'status', status: 403, code: 'AccessDenied' },
    });
  /** The states the execution itself entered (its history, not its children's). */
  const ownStates = (run: LocalExecution) =>
    run.history.flatMap((e) => (e.type === 'StateEntered' ? [(e.state as { name: string }).name] : []));
  const stateOutput = (run: LocalExecution, name: string) =>
    (
      run.history.find((e) => e.type === 'StateExited' && (e.state as { name: string }).name === name)
        ?.state as { output: Record<string, unknown> } | undefined
    )?.output;

  beforeAll(async () => {
    aws = await startS3();
    proxy = await startFaultProxy(aws.endpoint);
    const provisioned = await provisionLocalAws(aws, bucket, []);
    local = {
      ...provisioned,
      // Every S3 call of the local run (the Lambdas' steps, the runners' fakes, the Map's
      // ResultWriter) goes through the proxy.
      s3: createS3Client({
        endpoint: proxy.endpoint,
        region: aws.region,
        forcePathStyle: true,
        credentials: aws.credentials,
        maxAttempts: 1,
      }),
    };
    notices = await captureNotices(local);
    config = artifactsFleetConfig('mapfail', names, 'map-failure');
    synthesized = synthesizeBackup(config);
  }, scaled(240_000));

  afterAll(async () => {
    local?.s3.destroy();
    await proxy?.stop();
    await aws?.stop();
  });

  beforeEach(async () => {
    proxy.clear();
    await notices.sns();
    await notices.events();
  });

  it(
    "backup: the Map's ResultWriterFailed is caught, reported (every target not known), noticed, and the execution fails with it",
    async () => {
      const refused = refuseResults('backup');
      const run = await runBackupLocally({ components: ['artifacts'], force: true }, options());

      expect(refused.hits).toBeGreaterThan(0);
      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('States.ResultWriterFailed');
      // The parent's own history: the Map, then its failure path (the report, the notice, the Fail).
      expect(ownStates(run)).toEqual([
        'Start',
        'Plan',
        'BackupTargets',
        'ReportMapFailure',
        'NotifyMapFailure',
        'BackupMapFailed',
      ]);
      // The cause is the report: the Map's error and cause, and what is known of the targets (nothing).
      const cause = run.cause ?? '';
      const backupId = /^(infrahub_backup_\d{8}_\d{6}): /.exec(cause)?.[1] ?? '';
      expect(backupId).not.toBe('');
      expect(cause).toMatch(
        new RegExp(
          `^${backupId}: the fleet's Map BackupTargets failed: States\\.ResultWriterFailed: Map BackupTargets \\(Map Run arn:aws:states:us-east-1:000000000000:mapRun:mapfail-backup/BackupTargets:[0-9a-f-]{36}\\) could not write its results \\(\\.fleet-results/backup/[0-9a-f-]{36}/SUCCEEDED_0\\.json\\): StorageError: writing s3://${bucket}/\\.fleet-results/backup/[0-9a-f-]{36}/SUCCEEDED_0\\.json failed: AccessDenied`,
        ),
      );
      expect(cause).toContain('\n- known: 0 of 3 target(s) finished: 0 backed up, 0 failed\n');
      expect(cause).toContain(`\n- not known: ${names.join(', ')} (no result of theirs could be read`);
      expect(cause).toMatch(
        /\n- results: Map Run \S+ wrote no results \(nothing under s3:\/\/\S+\/\.fleet-results\/backup\/[0-9a-f-]{36}\/\)$/,
      );

      // The targets themselves were backed up, each with its own notice; the fleet's failure has its own.
      for (const t of names) expect(await readManifest(local.s3, local.bucket, t, backupId), t).toBeDefined();
      const sns = await notices.sns();
      expect(sns.filter((n) => n.Subject?.startsWith('Infrahub backup succeeded:'))).toHaveLength(3);
      const fleet = sns.filter((n) => n.Subject === 'Infrahub backup FAILED: BackupTargets failed');
      expect(fleet).toHaveLength(1);
      expect(fleet[0]?.Message).toMatch(/^An Infrahub backup execution failed as a whole at BackupTargets/);
      expect(fleet[0]?.Message).toContain('Error:      States.ResultWriterFailed\n');
      expect(fleet[0]?.Message).toContain(
        `What is known of the targets:\n${backupId}: the fleet's Map BackupTargets failed`,
      );
      const events = await notices.events();
      const aborted = events.filter((e) => e['detail-type'] === 'Infrahub Backup Aborted');
      expect(aborted).toHaveLength(1);
      expect(aborted[0]?.detail).toMatchObject({ step: 'BackupTargets', error: 'States.ResultWriterFailed' });
    },
    scaled(240_000),
  );

  it(
    'backup: when only the manifest was refused, the report names the targets its result files say were backed up',
    async () => {
      refuseResults('backup', /\/manifest\.json$/);
      const run = await runBackupLocally({ components: ['artifacts'], force: true }, options());
      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('States.ResultWriterFailed');
      expect(run.cause).toMatch(
        / could not write its results \(\.fleet-results\/backup\/[0-9a-f-]{36}\/manifest\.json\): /,
      );
      expect(run.cause).toContain('\n- known: 3 of 3 target(s) finished: 3 backed up, 0 failed\n');
      expect(run.cause).toContain(`\n- backed up: ${names.join(', ')}\n`);
      expect(run.cause).not.toContain('- not known:');
      expect(run.cause).toMatch(
        /\n- results: Map Run \S+ wrote no manifest under s3:\/\/\S+: the outcomes above are those of the 1 result file\(s\) found there, perhaps not all$/,
      );
      expect(stateOutput(run, 'ReportMapFailure')?.report).toMatchObject({ ok: false, failed: [] });
      const fleet = (await notices.sns()).filter(
        (n) => n.Subject === 'Infrahub backup FAILED: BackupTargets failed',
      );
      expect(fleet).toHaveLength(1);
      expect(fleet[0]?.Message).toContain('3 backed up, 0 failed');
    },
    scaled(240_000),
  );

  it(
    "drill: the DrillTargets Map's ResultWriterFailed is caught, reported, noticed as the fleet drill's failure, and the execution fails with it",
    async () => {
      // Backups to drill, written with the ResultWriter working.
      const backup = await runBackupLocally({ components: ['artifacts'], force: true }, options());
      expect(backup.status, backup.cause).toBe('SUCCEEDED');
      await notices.sns();
      await notices.events();

      refuseResults('drill');
      const run = await runDrillLocally(
        { targets: names, reason: 'map failure drill', maxConcurrency: 3 },
        options(),
      );
      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('States.ResultWriterFailed');
      expect(ownStates(run)).toEqual([
        'Init',
        'PlanDrill',
        'DrillPlanned',
        'DrillFleet?',
        'DrillTargets',
        'ReportDrillMapFailure',
        'NotifyDrillMapFailure',
        'DrillMapFailed',
      ]);
      expect(run.cause).toMatch(
        /^Restore drill of 3 target\(s\): the fleet's Map DrillTargets failed: States\.ResultWriterFailed: Map DrillTargets \(Map Run \S+:mapRun:mapfail-restore-drill\/DrillTargets:[0-9a-f-]{36}\) could not write its results \(\.fleet-results\/drill\/[0-9a-f-]{36}\/SUCCEEDED_0\.json\): StorageError: writing s3:\/\/infrahub-backups-map-failure\/\S+ failed: AccessDenied/,
      );
      expect(run.cause).toContain('\n- known: 0 of 3 target(s) drilled: 0 passed, 0 failed\n');
      expect(run.cause).toContain(
        `\n- not known: ${names.join(', ')} (no result of theirs could be read: each drill that ran is an execution of its own, with its notice;`,
      );

      // Each target's drill ran and sent its notice; the fleet's failure has its own, as a failed drill.
      const sns = await notices.sns();
      expect(sns.filter((n) => / passed: infrahub-site-[abc]$/.test(n.Subject ?? ''))).toHaveLength(3);
      const fleet = sns.filter((n) => n.Subject === 'Infrahub restore drill FAILED: fleet of 3 target(s)');
      expect(fleet).toHaveLength(1);
      expect(fleet[0]?.Message).toMatch(
        new RegExp(`^Restore drill of the fleet of 3 target\\(s\\) \\(${names.join(', ')}\\) FAILED\\.`),
      );
      expect(fleet[0]?.Message).toContain(
        'Failed step: DrillTargets\nError:       States.ResultWriterFailed\n',
      );
      expect(fleet[0]?.Message).toContain(
        "Restore drill of 3 target(s): the fleet's Map DrillTargets failed",
      );
      const events = await notices.events();
      const failedDrills = events.filter((e) => e['detail-type'] === 'Infrahub Restore Drill Failed');
      expect(failedDrills).toHaveLength(1);
      expect(failedDrills[0]?.detail).toMatchObject({
        kind: 'drill',
        ok: false,
        failures: [expect.objectContaining({ step: 'DrillTargets', error: 'States.ResultWriterFailed' })],
      });
      // Nothing of the drill fleet's results was written.
      expect(await listAll(aws.client(), bucket, '.fleet-results/drill/')).toEqual([]);
    },
    scaled(300_000),
  );

  it("states the report's absence when the report itself cannot be made, naming both errors, within the Fail state's Cause bound whatever their causes", async () => {
    // The Pass states after a failed report, as synthesized, run alone: a caught error may lack a Cause.
    for (const [kind, name, expected] of [
      [
        'backup',
        'MapReportUnavailable',
        /^infrahub_backup_20261121_020000: the fleet Map BackupTargets failed \(States\.ResultWriterFailed\) and its report could not be made \(Lambda\.Unknown\): /,
      ],
      [
        'drill',
        'DrillMapReportUnavailable',
        /^Restore drill of the fleet: its Map DrillTargets failed \(States\.ResultWriterFailed\) and its report could not be made \(Lambda\.Unknown\): /,
      ],
    ] as const) {
      const state = { ...synthesized.machines[kind].definition.States[name], End: true } as Record<
        string,
        unknown
      >;
      delete state.Next;
      const out = (await runLocally(
        { StartAt: name, States: { [name]: state } },
        {
          plan: { backupId: 'infrahub_backup_20261121_020000' },
          // Causes at the API's bound each (32,768): quoted whole, the summary (the Fail state's
          // Cause) would pass that bound.
          mapError: { Error: 'States.ResultWriterFailed', Cause: 'm'.repeat(32_768) },
          report: { Error: 'Lambda.Unknown', Cause: 'r'.repeat(32_768) },
        },
        () => {
          throw new Error('no task here');
        },
      )) as { report: { summary: string } };
      expect(out.report.summary, name).toMatch(expected);
      expect(out.report.summary.length, name).toBeLessThan(1_000);
    }
  });
});
