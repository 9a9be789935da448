import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalAws, runBackupLocally } from '../../cli/local/backup.js';
import { type LocalTarget, localRuntime } from '../../cli/local/harness-target.js';
import { readManifest } from '../../core/backup/manifest.js';
import { verifyBackup } from '../../core/backup/verify.js';
import { METRICS_NAMESPACE } from '../../core/metrics.js';
import { task } from '../../harness/fake-infrahub-api.js';
import { countGraph, type Neo4jServer } from '../../harness/index.js';
import { enteredStates as entered, type LocalStack, startLocalStack } from '../../harness/local-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { holdTool } from '../helpers/held-tool.js';
import { captureNotices, emfMetricNames, type Notices } from '../helpers/notices.js';
import { exists, retentionTag } from '../helpers/s3.js';

const bucket = 'infrahub-backups-sm';

// The synthesized backup state machine, executed locally against real PostgreSQL, Neo4j and moto.
describe(
  'backup state machine, run locally from the synthesized definition',
  () => {
    let stack: LocalStack;
    let neo4j: Neo4jServer;
    let local: LocalAws;
    let target: LocalTarget;
    let busy = false;
    let notices: Notices;

    beforeAll(async () => {
      stack = await startLocalStack({
        bucket,
        infrahub: { script: () => (busy ? [task(7, 'RUNNING', 'Generate artifacts for branch main')] : []) },
        flowRuns: 50,
        devices: 20,
        storagePrefix: 'sm-storage-',
        storageFiles: { 'dev-1/config.txt': 'hostname dev-1\n' },
        preflight: { maxWaitSeconds: 2, pollIntervalSeconds: 1 },
      });
      ({ neo4j, local, target } = stack);
      notices = await captureNotices(local);
    }, scaled(240_000));

    afterAll(async () => {
      await stack?.stop();
    });

    /**
     * The metrics written so far, as "Name Dim=value ...": the notices write them as embedded metric
     * format lines to their log output (no CloudWatch call), and every line is in the namespace.
     */
    const metricNames = async () => {
      for (const line of stack.metrics)
        expect(JSON.parse(line)._aws.CloudWatchMetrics[0].Namespace).toBe(METRICS_NAMESPACE);
      return emfMetricNames(stack.metrics);
    };

    // Each test sees only its own notices.
    beforeEach(async () => {
      await notices.sns();
      await notices.events();
    });

    const run = (input: unknown, extra: Partial<Parameters<typeof runBackupLocally>[1]> = {}) =>
      runBackupLocally(input, { ...stack.runOptions(), ...extra });

    it(
      'backs up every component, writes the manifest last and reports success',
      async () => {
        const before = await countGraph(neo4j);
        const result = await run({ targets: ['infrahub-lab'], reason: 'test' });
        expect(result.status, result.cause).toBe('SUCCEEDED');
        const report = result.output as {
          ok: boolean;
          succeeded: string[];
          backupId: string;
          failed: unknown[];
        };
        expect(report).toMatchObject({ ok: true, succeeded: ['infrahub-lab'], failed: [] });

        const states = entered(result);
        for (const s of [
          'Plan',
          'AcquireLock',
          'Preflight',
          'CountNeo4j',
          'StopDbms',
          'DumpNeo4j',
          'StartDbms',
        ])
          expect(states).toContain(s);
        for (const s of [
          'DumpPostgres',
          'CopyArtifacts',
          'WriteManifest',
          'ReleaseLock',
          'NotifySuccess',
          'Report',
        ])
          expect(states).toContain(s);
        // The manifest is written after every component, and the lock released after the manifest.
        expect(states.indexOf('WriteManifest')).toBeGreaterThan(states.lastIndexOf('StartDbms'));
        expect(states.indexOf('ReleaseLock')).toBeGreaterThan(states.indexOf('WriteManifest'));

        const manifest = await readManifest(local.s3, bucket, 'infrahub-lab', report.backupId);
        // The manifest names the target's own execution (a child of the fleet's Distributed Map), whose
        // history holds this backup's steps.
        const child = result.executions.find((e) => e.parentArn === result.executionArn);
        expect(child?.status).toBe('SUCCEEDED');
        expect(manifest).toMatchObject({
          backup_id: report.backupId,
          components: ['database', 'task-manager-db', 'artifacts'],
          neo4j_edition: 'community',
          forced: false,
          execution_id: child?.executionArn,
        });
        expect(manifest?.counts?.neo4j?.neo4j).toEqual(before);
        const verified = await verifyBackup(local.s3, bucket, 'infrahub-lab', report.backupId, {
          deep: true,
        });
        expect(verified.ok).toBe(true);
        // The DBMS was started again after its dump, and the lock is free for the next run.
        expect(await countGraph(neo4j)).toEqual(before);
        expect(await exists(local.s3, bucket, 'locks/infrahub-lab.json')).toBe(false);

        // The first complete backup of the month (the local policy keeps no yearly ones), and the
        // target's newest: every object of it, the manifest included, is re-tagged from "pending" to
        // "newest" (no lifecycle rule expires it), its class recorded in the manifest.
        expect(manifest?.retention_class).toBe('monthly');
        for (const path of [
          ...Object.keys(manifest?.checksums ?? {}),
          'backup_information.json',
          '.runner/task-manager-db.json',
        ])
          expect(await retentionTag(local.s3, bucket, `infrahub-lab/${report.backupId}/${path}`), path).toBe(
            'newest',
          );

        const [notice] = await notices.sns();
        expect(notice?.Subject).toBe('Infrahub backup succeeded: infrahub-lab');
        expect(notice?.Message).toContain('Retention:  monthly');
        expect(await metricNames()).toEqual(
          expect.arrayContaining([
            'BackupSucceeded Target=infrahub-lab',
            'BackupDurationSeconds Target=infrahub-lab',
            'BackupBytes Target=infrahub-lab',
            'BackupBytes Target=infrahub-lab Component=task-manager-db',
            'BackupBytes Target=infrahub-lab Component=database',
          ]),
        );
        expect(notice?.Message).toContain(`Backup id:  ${report.backupId}`);
        expect(notice?.Message).toMatch(/task-manager-db +\d/);
        const [event] = await notices.events();
        expect(event).toMatchObject({
          source: 'infrahub-backup',
          'detail-type': 'Infrahub Backup Succeeded',
          detail: { target: 'infrahub-lab', backupId: report.backupId, outcome: 'succeeded' },
        });
        // Ten minutes: a Community backup starts seven JVMs in a row (neo4j-admin --version, database
        // info before and after the offline count, two dumps) and a read-only Neo4j server to count the
        // stopped store, then starts the DBMS again. At load 13-18 on the shared 2-core machine each
        // neo4j-admin took 15-20 s and the whole execution about 300 s (CountNeo4j 35 s, backup-neo4j
        // 3.5 min); alone it takes well under half of that.
      },
      scaled(600_000),
    );

    it(
      'fails the target when one component fails: no manifest, the failure notice names step and cause, the DBMS runs again',
      async () => {
        const before = await countGraph(neo4j);
        // The runner of the task-manager database gets a port where nothing listens: it fails for real.
        // A refused connection is "not ready yet" to the readiness wait (a server starting up refuses
        // too), retried up to the target's readyTimeoutSeconds (PG_READY_TIMEOUT_SECONDS in its task
        // definition, 300 s by default): this target's is 3 s, so it fails quickly.
        const broken = {
          ...localRuntime(target),
          env: { ...localRuntime(target).env, PGPORT: '1', PG_READY_TIMEOUT_SECONDS: '3' },
        };
        const result = await run({ targets: ['infrahub-lab'] }, { runtime: () => broken });
        expect(result.status).toBe('FAILED');
        expect(result.error).toBe('BackupFailed');
        expect(result.cause).toMatch(/1 of 1 target\(s\) failed/);
        expect(result.cause).toMatch(
          /infrahub-lab: Backup of infrahub-lab failed at DumpPostgres: runner task-manager-db: DatabaseUnreachable: PostgreSQL at 127\.0\.0\.1:1 .*was not ready after waiting \d+ s \(bound 3 s, \d+ attempts\): ECONNREFUSED/,
        );

        const states = entered(result);
        expect(states).toContain('TaskManagerDbFailed');
        expect(states).not.toContain('WriteManifest');
        expect(states).toContain('ReleaseLockAfterFailure');
        // The other components finished: the Neo4j branch still dumped and restarted its DBMS.
        expect(states).toContain('StartDbms');
        expect(await countGraph(neo4j)).toEqual(before);

        // The failed execution's cause starts with its backup id.
        const backupId = /^(infrahub_backup_\d{8}_\d{6}):/.exec(result.cause ?? '')?.[1] ?? 'missing';
        expect(await readManifest(local.s3, bucket, 'infrahub-lab', backupId)).toBeUndefined();
        // What the failed backup left stays tagged "pending", for the lifecycle to expire.
        expect(await retentionTag(local.s3, bucket, `infrahub-lab/${backupId}/database/neo4j.dump`)).toBe(
          'pending',
        );
        expect(await exists(local.s3, bucket, 'locks/infrahub-lab.json')).toBe(false);

        const [notice] = await notices.sns();
        expect(notice?.Subject).toBe('Infrahub backup FAILED: infrahub-lab at DumpPostgres');
        expect(notice?.Message).toMatch(/Step: +DumpPostgres \(runner backup-postgres\)/);
        expect(notice?.Message).toMatch(
          /Cause: +runner task-manager-db: DatabaseUnreachable: .*ECONNREFUSED/,
        );
        expect(notice?.Message).toContain('No manifest was written');
        expect(await metricNames()).toEqual(
          expect.arrayContaining(['BackupFailed', 'BackupFailed Target=infrahub-lab']),
        );
        const [event] = await notices.events();
        expect(event).toMatchObject({
          'detail-type': 'Infrahub Backup Failed',
          detail: {
            target: 'infrahub-lab',
            step: 'DumpPostgres',
            error: 'DatabaseUnreachable',
            outcome: 'failed',
          },
        });
        // The Neo4j branch runs in full here too (see the first test's bound).
      },
      scaled(600_000),
    );

    // Issue 14: a real Infrahub answers 503 after the DBMS's stop/start until Neo4j opens its databases.
    // A start that returns before Neo4j answers (as `backup:local`'s NEO4J_START_COMMAND may, or ECS
    // once the task runs) is followed by WaitForNeo4j: success is reported only once Bolt answers.
    it(
      'reports success only after WaitForNeo4j saw Neo4j answer over Bolt, when the start returns at once',
      async () => {
        const runtime = localRuntime(target);
        let starting: Promise<void> | undefined;
        const quick = {
          env: runtime.env,
          dbms: {
            stop: () => target.neo4j.stopDbms(),
            // Starts the DBMS in the background and returns at once, before Bolt answers.
            start: async () => {
              starting = target.neo4j.startDbms();
            },
          },
        };
        try {
          const result = await run(
            { targets: ['infrahub-lab'], components: ['database'], force: true },
            { runtime: () => quick },
          );
          expect(result.status, result.cause).toBe('SUCCEEDED');
          const states = entered(result);
          expect(states.indexOf('WaitForNeo4j')).toBeGreaterThan(states.lastIndexOf('StartDbms'));
          expect(states.indexOf('DatabaseCaptured')).toBeGreaterThan(states.indexOf('WaitForNeo4j'));
          // When the execution reports, Neo4j answers at once (no wait of ours here).
          const session = target.neo4j.driver().session();
          try {
            await session.run('RETURN 1');
          } finally {
            await session.close();
          }
          expect(starting).toBeDefined();
        } finally {
          await starting;
        }
      },
      scaled(600_000),
    );

    it(
      'reports a DBMS left down, with what led to it, when it cannot be started again',
      async () => {
        const runtime = localRuntime(target);
        const broken = {
          env: runtime.env,
          dbms: {
            stop: async () => {
              throw new Error('scaling to zero was refused');
            },
            start: async () => {
              throw new Error('no capacity to start the service');
            },
          },
        };
        const result = await run(
          { targets: ['infrahub-lab'], components: ['database'], force: true },
          { runtime: () => broken },
        );
        expect(result.status).toBe('FAILED');
        expect(entered(result)).toEqual(
          expect.arrayContaining(['StopDbmsFailed', 'StartDbmsAfterFailure', 'DbmsRestartFailed']),
        );
        expect(entered(result)).not.toContain('DumpNeo4j');
        expect(result.cause).toMatch(
          /failed at StartDbmsAfterFailure, and its DBMS is DOWN: .*aws ecs update-service --cluster local --service infrahub-lab-neo4j --desired-count 1.*Cause: the DBMS is down: it could not be started again \(.*no capacity to start the service.*\) after StopDbms failed \(Error: .*scaling to zero was refused/,
        );
      },
      scaled(120_000),
    );

    it(
      'refuses while Infrahub runs tasks: fails at the preflight gate naming them, before any runner starts',
      async () => {
        busy = true;
        try {
          const result = await run({ targets: ['infrahub-lab'] });
          expect(result.status).toBe('FAILED');
          expect(result.cause).toMatch(
            /failed at Preflight: InfrahubBusy: .*Generate artifacts for branch main/,
          );
          const states = entered(result);
          expect(states).toContain('PreflightFailed');
          expect(states.filter((s) => ['CountNeo4j', 'DumpPostgres', 'CopyArtifacts'].includes(s))).toEqual(
            [],
          );
          expect(await exists(local.s3, bucket, 'locks/infrahub-lab.json')).toBe(false);
          const [notice] = await notices.sns();
          expect(notice?.Subject).toBe('Infrahub backup FAILED: infrahub-lab at Preflight');
          await notices.events();
        } finally {
          busy = false;
        }
      },
      scaled(120_000),
    );

    it(
      'skips the gate with force and records it in the manifest',
      async () => {
        busy = true;
        try {
          const result = await run({
            targets: ['infrahub-lab'],
            components: ['task-manager-db'],
            force: true,
          });
          expect(result.status, result.cause).toBe('SUCCEEDED');
          const { backupId } = result.output as { backupId: string };
          const manifest = await readManifest(local.s3, bucket, 'infrahub-lab', backupId);
          // A later backup in the same week and month: daily.
          expect(manifest).toMatchObject({
            forced: true,
            components: ['task-manager-db'],
            retention_class: 'daily',
          });
          expect(entered(result)).toEqual(expect.arrayContaining(['DatabaseSkipped', 'ArtifactsSkipped']));
          await notices.sns();
          await notices.events();
        } finally {
          busy = false;
        }
      },
      scaled(120_000),
    );

    it(
      'refuses a second execution on the same target while the first runs',
      async () => {
        // The first execution's pg_dump is held until the second was refused: both started together
        // before, and a first run of a second or two could end (its lock released) before the second
        // asked for the lock.
        const held = holdTool(target.postgres.binDir, 'pg_dump');
        let first: ReturnType<typeof run> | undefined;
        let winner: Awaited<ReturnType<typeof run>>;
        let refused: Awaited<ReturnType<typeof run>>;
        try {
          const runtime = localRuntime(target);
          first = run(
            { targets: ['infrahub-lab'], components: ['task-manager-db'] },
            { runtime: () => ({ ...runtime, env: { ...runtime.env, PG_BINDIR: held.dir } }) },
          );
          first.catch(() => undefined);
          expect(await held.untilHolding(first, scaled(120_000)), "the first execution's pg_dump began").toBe(
            true,
          );
          refused = await run({ targets: ['infrahub-lab'], components: ['task-manager-db'] });
          // The first still held its lock through the whole of the second.
          expect(held.stillHeld(), "the first execution's pg_dump still held").toBe(true);
          held.release();
          winner = await first;
        } finally {
          held.release();
          await first?.catch(() => undefined);
          held.remove();
        }
        expect(winner.status, winner.cause).toBe('SUCCEEDED');
        expect(refused.status).toBe('FAILED');
        expect(refused.cause).toMatch(/failed at AcquireLock: TargetLocked: .*locked by/);
        expect(refused.cause).toContain(winner.executionArn);
        // The refused run ran no runner. Its failure path tries a release (S3 may have stored a lock whose
        // answer was lost), which deletes only a lock this execution holds: the winner's was not its own,
        // so it released nothing.
        expect(entered(refused)).not.toContain('DumpPostgres');
        const release = refused.events.find(
          (e) => e.type === 'StateExited' && (e.state as { name: string }).name === 'ReleaseLockAfterFailure',
        ) as { state: { output?: { lockRelease?: unknown } } } | undefined;
        expect(release?.state.output?.lockRelease).toEqual({ released: false });
        await notices.sns();
        await notices.events();
      },
      scaled(240_000),
    );

    it(
      "rejects a bad input in the first state with the schema's message, before any side effect",
      async () => {
        const result = await run({ targets: ['infrahub-stage'], components: ['neo4j'] });
        expect(result.status).toBe('FAILED');
        expect(result.error).toBe('InvalidInput');
        expect(result.cause).toMatch(/components\[0\]: Invalid option/);
        expect(entered(result)).toEqual(['Start', 'Plan', 'NotifyInputRejected', 'InputRejected']);
        const [notice] = await notices.sns();
        expect(notice?.Subject).toBe('Infrahub backup FAILED: input rejected');
        await notices.events();
      },
      scaled(60_000),
    );
  },
  scaled(600_000),
);
