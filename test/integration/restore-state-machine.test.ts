import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type LocalAws,
  runBackupLocally,
  runDrillLocally,
  runRestoreLocally,
} from '../../cli/local/backup.js';
import { type LocalTarget, localRuntime } from '../../cli/local/harness-target.js';
import { fileKey, restoreStepKey } from '../../core/backup/layout.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { Neo4jStoreSwapError } from '../../core/errors.js';
import { RestoreStepResultSchema } from '../../core/restore/steps.js';
import { getJson } from '../../core/s3/objects.js';
import { countGraph, countTables, type Neo4jServer, type PostgresServer } from '../../harness/index.js';
import { enteredStates as entered, type LocalStack, startLocalStack } from '../../harness/local-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { fakeEcsServices } from '../helpers/ecs.js';
import { captureNotices, emfMetricNames, type Notices } from '../helpers/notices.js';

const bucket = 'infrahub-backups-restore-sm';

// The synthesized restore and drill state machines, executed locally against real PostgreSQL,
// Neo4j Community (neo4j-admin load) and moto, after a backup taken by the backup state machine.
describe('restore and drill state machines, run locally from the synthesized definitions', () => {
  let stack: LocalStack;
  let postgres: PostgresServer;
  let neo4j: Neo4jServer;
  let local: LocalAws;
  let config: DeploymentConfig;
  let target: LocalTarget;
  let storage: string;
  let notices: Notices;
  let backupId: string;
  let atBackup: { tables: Record<string, number>; graph: { nodes: number; relationships: number } };
  const ecs = fakeEcsServices({ 'task-manager': 1, 'infrahub-server': 2, 'task-worker': 3 });

  const sql = async (text: string) => {
    const client = new pg.Client({ connectionString: postgres.url('prefect') });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  const cypher = async (text: string) => {
    const session = neo4j.driver().session({ database: 'neo4j' });
    try {
      await session.run(text);
    } finally {
      await session.close();
    }
  };
  const state = async () => ({
    tables: await countTables(postgres, 'prefect'),
    graph: await countGraph(neo4j),
  });

  beforeAll(async () => {
    stack = await startLocalStack({
      bucket,
      infrahub: { script: () => [], version: '1.5.2' },
      flowRuns: 40,
      devices: 15,
      storagePrefix: 'restore-sm-storage-',
      storageFiles: { 'dev-1/config.txt': 'hostname dev-1\n', 'dev-1/acl.txt': 'permit any\n' },
      // The deployment's services, quiesced by the restore (served by the fake ECS above).
      configure: (base) => ({
        ...base,
        targets: base.targets.map((t) => ({
          ...t,
          quiesce: {
            cluster: 'infrahub',
            taskManagerDb: [],
            taskManager: ['task-manager'],
            server: ['infrahub-server'],
            taskWorkers: ['task-worker'],
          },
        })),
      }),
      clockStart: Date.parse('2026-11-22T02:00:00Z'),
    });
    ({ postgres, neo4j, local, config, target, storage } = stack);
    notices = await captureNotices(local);

    const backup = await runBackupLocally({ targets: ['infrahub-lab'] }, stack.runOptions());
    expect(backup.status, backup.cause).toBe('SUCCEEDED');
    backupId = (backup.output as { backupId: string }).backupId;
    atBackup = await state();
  }, scaled(300_000));

  afterAll(async () => {
    await stack?.stop();
  });

  beforeEach(async () => {
    await notices.sns();
    await notices.events();
  });

  const options = (extra: Partial<Parameters<typeof runRestoreLocally>[1]> = {}) => ({
    ...stack.runOptions(),
    ecs,
    ...extra,
  });

  /** Data changed, deleted and added after the backup, in every component. */
  const changeEverything = async () => {
    await sql(
      "DELETE FROM log WHERE ctid IN (SELECT ctid FROM log LIMIT 5); INSERT INTO flow_run (name, state_type) VALUES ('after-backup', 'RUNNING')",
    );
    await cypher("MATCH (a:Attribute {name: 'role'}) WITH a LIMIT 4 DETACH DELETE a");
    await cypher("CREATE (:Node {kind: 'InfraDevice', uuid: 'after-backup'})");
    writeFileSync(join(storage, 'dev-1', 'config.txt'), 'hostname changed\n');
    rmSync(join(storage, 'dev-1', 'acl.txt'));
  };

  it(
    'a dry run prints the plan and changes nothing',
    async () => {
      await changeEverything();
      const changed = await state();
      expect(changed).not.toEqual(atBackup);
      const run = await runRestoreLocally({ target: 'infrahub-lab', dryRun: true }, options());
      expect(run.status, run.cause).toBe('SUCCEEDED');
      expect(run.output).toMatchObject({
        kind: 'restore',
        dryRun: true,
        backupId,
        components: ['database', 'task-manager-db', 'artifacts'],
        quiesce: { enabled: true, stop: ['task-worker', 'infrahub-server', 'task-manager'] },
        infrahubVersion: { recorded: '1.5.2', running: '1.5.2' },
      });
      expect(entered(run)).not.toContain('AcquireRestoreLock');
      expect(entered(run)).not.toContain('StopServices');
      expect(ecs.updates).toEqual([]);
      expect(await state()).toEqual(changed);
    },
    scaled(120_000),
  );

  it(
    'restores every component to the backup-time state, quiescing and restarting in dependency order',
    async () => {
      const run = await runRestoreLocally(
        { target: 'infrahub-lab', backupId: 'latest', reason: 'test' },
        options(),
      );
      expect(run.status, run.cause).toBe('SUCCEEDED');
      const out = run.output as { ok: boolean; summary: string };
      expect(out.ok).toBe(true);

      // Data equals the backup-time state: rows per table, nodes and relationships, artifact bytes.
      expect(await state()).toEqual(atBackup);
      expect(readFileSync(join(storage, 'dev-1', 'config.txt'), 'utf8')).toBe('hostname dev-1\n');
      expect(readFileSync(join(storage, 'dev-1', 'acl.txt'), 'utf8')).toBe('permit any\n');

      // Workers, server, task manager stopped; started back in the reverse (dependency) order, at their counts.
      expect(ecs.updates).toEqual([
        'task-worker=0',
        'infrahub-server=0',
        'task-manager=0',
        'task-manager=1',
        'infrahub-server=2',
        'task-worker=3',
      ]);
      const states = entered(run);
      expect(states.indexOf('StopServices')).toBeLessThan(states.indexOf('RestoreComponents'));
      expect(states.indexOf('StartServices')).toBeGreaterThan(states.lastIndexOf('ValidateNeo4j'));
      for (const s of [
        'StopDbmsForRestore',
        'RestoreNeo4j',
        'StartDbmsAfterRestore',
        'RestorePostgres',
        'RestoreArtifacts',
      ])
        expect(states).toContain(s);

      // The report: per-step timings, in S3 and in the notice; the metric.
      const restoreId = await findRestoreId();
      const report = await getJson(
        local.s3,
        bucket,
        restoreStepKey('infrahub-lab', restoreId, 'report'),
        z.looseObject({
          ok: z.boolean(),
          backupId: z.string(),
          steps: z.array(z.object({ step: z.string(), seconds: z.number() })),
        }),
      );
      expect(report).toMatchObject({ ok: true, backupId });
      expect(report?.steps.map((s) => s.step).sort()).toEqual([
        'restore-artifacts',
        'restore-neo4j',
        'restore-postgres',
        'validate-neo4j',
      ]);
      const steps = await Promise.all(
        ['restore-postgres', 'restore-neo4j', 'validate-neo4j', 'restore-artifacts'].map((step) =>
          getJson(local.s3, bucket, restoreStepKey('infrahub-lab', restoreId, step), RestoreStepResultSchema),
        ),
      );
      for (const step of steps) expect(step?.durationMs).toBeGreaterThan(0);
      expect(steps[0]?.details).toMatchObject({
        database: 'prefect',
        rows: Object.values(atBackup.tables).reduce((a, b) => a + b, 0),
      });
      const [notice] = await notices.sns();
      expect(notice?.Subject).toBe('Infrahub restore passed: infrahub-lab');
      expect(notice?.Message).toMatch(/restore-postgres\s+\d+(\.\d+)? s/);
      // Written as embedded metric format lines to the report's log output (no CloudWatch call).
      expect(emfMetricNames(stack.metrics)).toEqual(
        expect.arrayContaining([
          'RestoreSucceeded Target=infrahub-lab',
          'RestoreSeconds Target=infrahub-lab',
        ]),
      );
    },
    scaled(300_000),
  );

  /** The restore id of the newest report (the summary does not name it). */
  async function findRestoreId(): Promise<string> {
    const { listAll } = await import('../../core/s3/objects.js');
    const keys = (await listAll(local.s3, bucket, '.restores/infrahub-lab/')).map((o) => o.Key ?? '').sort();
    const last = keys.filter((k) => k.endsWith('/report.json')).pop() ?? '';
    return last.split('/')[2] ?? '';
  }

  it(
    'refuses a backup with a corrupted object before touching the target, naming the file',
    async () => {
      await sql("INSERT INTO flow_run (name, state_type) VALUES ('must-survive', 'RUNNING')");
      const before = await state();
      // A new version of the dump replaces the one the manifest records (S3 versioning keeps both).
      const key = fileKey('infrahub-lab', backupId, 'prefect.dump');
      const corrupted = await local.s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'corrupted' }),
      );
      const run = await runRestoreLocally({ target: 'infrahub-lab', backupId }, options());
      expect(run.status).toBe('FAILED');
      expect(run.error).toBe('RestoreFailed');
      expect(run.cause).toMatch(/refused before touching the target/);
      expect(run.cause).toMatch(/prefect\.dump/);
      const states = entered(run);
      expect(states).toContain('RestoreRefused');
      expect(states).not.toContain('AcquireRestoreLock');
      expect(states).not.toContain('RestoreComponents');
      expect(await state()).toEqual(before);
      const [notice] = await notices.sns();
      expect(notice?.Subject).toBe('Infrahub restore FAILED: infrahub-lab');
      // Put things back for the next tests: the recorded version is current again.
      await local.s3.send(
        new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: corrupted.VersionId }),
      );
    },
    scaled(120_000),
  );

  it(
    'refuses an incompatible target with a clear message',
    async () => {
      const older = {
        ...config,
        targets: config.targets.map((t) => ({ ...t, neo4j: { ...t.neo4j, version: '5.19.0' } })),
      };
      const run = await runRestoreLocally(
        { target: 'infrahub-lab', components: ['database'] },
        options({ config: older }),
      );
      expect(run.status).toBe('FAILED');
      expect(run.cause).toMatch(/the target runs 5\.19\.0, which cannot read a newer store/);
      expect(entered(run)).not.toContain('RestoreComponents');
    },
    scaled(120_000),
  );

  it(
    'a drill restores the latest backup into disposable databases, validates it and reports the recovery time',
    async () => {
      const before = await state();
      const run = await runDrillLocally({ target: 'infrahub-lab' }, options());
      expect(run.status, run.cause).toBe('SUCCEEDED');
      const out = run.output as { ok: boolean; summary: string };
      expect(out.summary).toMatch(/recovery time \d+(\.\d+)? s/);
      const drillKey = await (async () => {
        const { listAll } = await import('../../core/s3/objects.js');
        const keys = (await listAll(local.s3, bucket, '.restores/infrahub-lab/drill_')).map(
          (o) => o.Key ?? '',
        );
        return keys.find((k) => k.endsWith('/drill.json')) ?? '';
      })();
      const drill = await getJson(local.s3, bucket, drillKey, RestoreStepResultSchema);
      expect(drill?.details.recoverySeconds).toBeGreaterThan(0);
      expect(Object.keys(drill?.timings ?? {})).toEqual(
        expect.arrayContaining([
          'start-postgres',
          'restore-postgres',
          'load-neo4j',
          'start-neo4j',
          'validate-neo4j',
          'restore-artifacts',
          'teardown',
        ]),
      );
      // The live target was not touched, and the disposable databases are gone.
      expect(await state()).toEqual(before);
      const scratch = localRuntime(target).env.RESTORE_WORK_DIR ?? '';
      expect(
        existsSync(scratch) ? readdirSync(scratch).filter((f) => f.startsWith('infrahub-drill-')) : [],
      ).toEqual([]);
      expect(emfMetricNames(stack.metrics)).toEqual(
        expect.arrayContaining([
          'RestoreDrillSeconds Target=infrahub-lab',
          'RestoreDrillFailed Target=infrahub-lab',
          // Fleet-wide (no dimensions): what the RestoreDrillFailed alarm watches.
          'RestoreDrillFailed',
        ]),
      );
    },
    scaled(300_000),
  );

  it(
    "a staged load's swap that could not be undone leaves the DBMS stopped, saying DOWN and which folders to move back (a start would bring the databases up without their store)",
    async () => {
      // The runner's Neo4jStoreSwap (restored: false) as SendTaskFailure reports it; the other
      // runner states do nothing. What is tested is the state machine's answer to that error.
      const cause =
        'the staged load could not be put in place (EIO), and these folders could not be moved back: /data/databases/ibh-restore-0000aaaa-1-replaced → /data/databases/neo4j';
      const subcommands: string[] = [];
      const run = await runRestoreLocally(
        { target: 'infrahub-lab', backupId, components: ['database'] },
        options({
          runTask: async (request) => {
            subcommands.push(request.subcommand);
            if (request.subcommand === 'restore-neo4j') throw new Neo4jStoreSwapError(cause, false);
          },
        }),
      );
      try {
        expect(subcommands).toEqual(['restore-neo4j']);
        expect(run.status).toBe('FAILED');
        const states = entered(run);
        expect(states).toContain('StopDbmsForRestore');
        expect(states).toContain('DbmsLeftStoppedAfterSwapFailure');
        expect(states).not.toContain('StartDbmsAfterRestore');
        expect(states).not.toContain('StartDbmsAfterRestoreFailure');
        expect(states).not.toContain('ValidateNeo4j');
        // Left stopped: nothing answers on Bolt.
        await expect(countGraph(neo4j)).rejects.toThrow();
        expect(run.cause).toMatch(/DOWN: the Neo4j DBMS of infrahub-lab was left stopped on purpose/);
        expect(run.cause).toContain('ibh-restore-0000aaaa-1-replaced → /data/databases/neo4j');
        const [notice] = await notices.sns();
        expect(notice?.Subject).toBe('Infrahub restore FAILED: infrahub-lab');
        expect(notice?.Message).toMatch(/left stopped on purpose/);
      } finally {
        await neo4j.startDbms();
      }
    },
    scaled(180_000),
  );
});
