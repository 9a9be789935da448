import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalAws, type RunTaskRequest, runBackupLocally } from '../../cli/local/backup.js';
import { provisionLocalAws } from '../../cli/local/harness-target.js';
import { EXECUTION_HISTORY_QUOTA, type ExecutionEvent } from '../../cli/local/state-machine.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { resultKey } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import { runnerFamily } from '../../core/backup/plan.js';
import type { ArtifactsResult } from '../../core/backup/results.js';
import { parseDeploymentConfig } from '../../core/config/load.js';
import { type DeploymentConfig, MAX_TARGETS, TargetSchema } from '../../core/config/schema.js';
import { putJson } from '../../core/s3/objects.js';
import { type S3Server, startS3 } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';

// A fleet of MAX_TARGETS (1,000) targets through the backup state machine's definition: a
// Distributed Map, each target its own child execution (issue 16, item 3). The deployment is the
// whole fleet (its targets' runner resources in nested stacks, their secrets read by tag:
// test/infra/fleet-limit.test.ts proves the stacks' bounds), synthesized once and run with the
// Plan, Lock and Report steps reading its configuration as the deployed functions would.
const TARGETS = MAX_TARGETS;
const LIMIT = 256 * 1024; // Step Functions' limit on a state's input or output

const target = (i: number) =>
  TargetSchema.parse({
    name: `infrahub-site-${String(i).padStart(4, '0')}`,
    neo4j: {
      host: `neo4j.site-${i}.internal`,
      edition: 'enterprise',
      licence: 'commercial',
      version: '5.26.26',
      credentialsSecret: `site-${i}/neo4j`,
    },
    postgres: { host: `prefect.site-${i}.internal`, majorVersion: 18, credentialsSecret: `site-${i}/pg` },
    infrahub: { address: `https://infrahub.site-${i}.example.com`, tokenSecret: `site-${i}/token` },
    artifacts: { type: 's3', bucket: `infrahub-site-${i}-artifacts` },
  });

// The ECS states are FAKED here, and only here: a thousand runner processes would prove nothing more
// about the orchestration. The fake writes what a runner of the artifacts component writes (an empty
// storage), for the target whose task definition the state names.
describe(`a backup of a fleet of ${TARGETS} targets, run locally`, () => {
  let aws: S3Server;
  let local: LocalAws;
  let synthesized: SynthesizedBackup;
  let fleet: DeploymentConfig;
  const targetOf = (request: RunTaskRequest) =>
    request.target ||
    (fleet.targets.find((t) => runnerFamily(fleet.name, t.name) === request.family)?.name ?? '');
  const runTask = async (request: RunTaskRequest) => {
    const name = targetOf(request);
    const backupId = request.environment.BACKUP_ID ?? '';
    const now = new Date().toISOString();
    const result: ArtifactsResult = {
      target: name,
      backupId,
      component: 'artifacts',
      startedAt: now,
      finishedAt: now,
      source: { type: 's3', bucket: `${name}-artifacts`, prefix: '' },
      files: [],
    };
    await putJson(local.s3, local.bucket, resultKey(name, backupId, 'artifacts'), result);
  };

  beforeAll(async () => {
    aws = await startS3();
    local = await provisionLocalAws(aws, 'infrahub-backups-fleet', []);
    const targets = Array.from({ length: TARGETS }, (_, i) => target(i));
    fleet = parseDeploymentConfig(
      {
        name: 'fleet',
        region: 'us-east-1',
        network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], availabilityZones: ['us-east-1a'] },
        targets,
        retention: { daily: 7, weekly: 4, monthly: 12 },
        maxConcurrency: 40,
        secretsAccess: { tag: { key: 'infrahub-backup', value: 'fleet' } },
      },
      'fleet',
    );
    expect(fleet.targets).toHaveLength(MAX_TARGETS);
    synthesized = synthesizeBackup(fleet);
  }, scaled(600_000));

  afterAll(async () => {
    await aws?.stop();
  });

  it(
    'backs up every target in its own child execution: every history far below 25,000 events, every payload below 256 KiB, the report names each',
    async () => {
      const map = synthesized.definition.States.BackupTargets as {
        ItemProcessor: { ProcessorConfig: { Mode: string; ExecutionType: string } };
      };
      expect(map.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
      const faked: RunTaskRequest[] = [];
      let largest = { bytes: 0, where: '' };
      let running = 0;
      let most = 0;
      const measure = (event: ExecutionEvent) => {
        if (event.executionArn && event.type === 'ExecutionStarted') most = Math.max(most, ++running);
        if (event.executionArn && (event.type === 'ExecutionSucceeded' || event.type === 'ExecutionFailed'))
          running -= 1;
        const state = event.state as { name: string; input?: unknown; output?: unknown } | undefined;
        for (const [kind, value] of [
          ['input', state?.input ?? event.input],
          ['output', state?.output ?? event.output],
        ] as const) {
          if (value === undefined) continue;
          const bytes = Buffer.byteLength(JSON.stringify(value));
          if (bytes > largest.bytes) largest = { bytes, where: `${state?.name ?? event.type} ${kind}` };
        }
      };

      const started = Date.now();
      const result = await runBackupLocally(
        { components: ['artifacts'], force: true },
        {
          config: fleet,
          aws: local,
          runtime: () => ({ env: {} }),
          synthesized,
          runTask: async (request) => {
            faked.push(request);
            await runTask(request);
          },
          retryIntervalMs: 0,
          onEvent: measure,
        },
      );

      expect(result.status, result.cause).toBe('SUCCEEDED');
      const report = result.output as { succeeded: string[]; failed: unknown[] };
      expect(new Set(report.succeeded)).toEqual(new Set(fleet.targets.map((t) => t.name)));
      expect(report.failed).toEqual([]);
      expect(new Set(faked.map(targetOf)).size).toBe(TARGETS);
      expect(faked.every((r) => r.subcommand === 'backup-artifacts')).toBe(true);

      const parent = result.executions.find((e) => e.executionArn === result.executionArn);
      const children = result.executions.filter((e) => e.parentArn === result.executionArn);
      expect(children).toHaveLength(TARGETS);
      expect(children.every((c) => c.status === 'SUCCEEDED')).toBe(true);
      const perChild = Math.max(...children.map((c) => c.historyEvents));
      console.info(
        `${TARGETS}-target fleet in ${((Date.now() - started) / 1000).toFixed(0)} s: parent history ${parent?.historyEvents} events, each child's at most ${perChild} (quota ${EXECUTION_HISTORY_QUOTA}); ${most} children at once; largest state payload ${(largest.bytes / 1024).toFixed(1)} KiB (${largest.where})`,
      );
      expect(parent?.historyEvents).toBeLessThan(100);
      expect(perChild).toBeLessThan(200);
      expect(most).toBeLessThanOrEqual(fleet.maxConcurrency);
      expect(largest.bytes).toBeLessThan(LIMIT / 2);
      // The Map's own result is where its children's results are, not 1,000 outcomes.
      const mapExit = result.history.find(
        (e) => e.type === 'StateExited' && (e.state as { name: string }).name === 'BackupTargets',
      )?.state as { output: { results: { ResultWriterDetails: { Key: string } } } };
      expect(mapExit.output.results.ResultWriterDetails.Key).toMatch(
        /^\.fleet-results\/backup\/.+\/manifest\.json$/,
      );
    },
    scaled(1_800_000),
  );

  it(
    'fails one target without failing the others, and names it',
    async () => {
      const five = fleet.targets.slice(0, 5).map((t) => t.name);
      const broken = five[2] ?? '';
      const partial = await runBackupLocally(
        { targets: five, components: ['artifacts'], force: true },
        {
          config: fleet,
          aws: local,
          runtime: () => ({ env: {} }),
          synthesized,
          retryIntervalMs: 0,
          runTask: async (request) => {
            if (targetOf(request) === broken)
              throw Object.assign(new Error('storage unreadable'), { exitCode: 6 });
            await runTask(request);
          },
        },
      );
      expect(partial.status).toBe('FAILED');
      expect(partial.cause).toMatch(
        new RegExp(
          `1 of 5 target\\(s\\) failed, 4 backed up\\n- ${broken}: Backup of ${broken} failed at CopyArtifacts`,
        ),
      );
      const reportState = partial.history.find(
        (e) => e.type === 'StateExited' && (e.state as { name: string }).name === 'Report',
      )?.state as { output: { report: { succeeded: string[] } } };
      expect(new Set(reportState.output.report.succeeded)).toEqual(new Set(five.filter((t) => t !== broken)));
      const backupId = /^(infrahub_backup_\d{8}_\d{6}):/.exec(partial.cause ?? '')?.[1] ?? '';
      for (const t of five) {
        const manifest = await readManifest(local.s3, local.bucket, t, backupId);
        expect(manifest === undefined, t).toBe(t === broken);
      }
    },
    scaled(300_000),
  );

  it(
    'reports every target even when their child executions die outright (here: past a lowered history quota)',
    async () => {
      // Nothing in a child catches its own history quota; the parent tolerates every failed child and
      // the Report names each target from the child's input, with the child's error.
      const three = fleet.targets.slice(0, 3).map((t) => t.name);
      const run = await runBackupLocally(
        { targets: three, components: ['artifacts'], force: true },
        {
          config: fleet,
          aws: local,
          runtime: () => ({ env: {} }),
          synthesized,
          retryIntervalMs: 0,
          runTask,
          maxHistoryEvents: 40,
        },
      );
      const parent = run.executions.find((e) => e.executionArn === run.executionArn);
      expect(parent?.historyEvents).toBeLessThanOrEqual(40);
      expect(
        run.executions.filter((e) => e.parentArn === run.executionArn && e.status === 'FAILED'),
      ).toHaveLength(3);
      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('BackupFailed');
      for (const t of three)
        expect(run.cause).toMatch(
          new RegExp(
            `- ${t}: Backup of ${t} did not finish: its execution \\S+ ended FAILED \\(States.Runtime: ExecutionLimitExceeded`,
          ),
        );
    },
    scaled(300_000),
  );
});
