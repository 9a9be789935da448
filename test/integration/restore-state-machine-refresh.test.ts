/**
 * Issue 18, item 1: refreshing one environment from another's backup, through the synthesized
 * restore state machine run locally, against two targets with real PostgreSQL and Neo4j Community
 * servers of their own: `infrahub-lab` (marked production, the source) and `infrahub-staging`
 * (refreshed from it). The refreshed target holds the source's backup, keeps its own Infrahub
 * deployment id (the Root node's uuid), and the source's backup is left as it was; a refresh into the
 * production target is refused before anything is stopped.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EXIT, run } from '../../cli/infrahub-backup.js';
import { runBackupLocally, runRestoreLocally } from '../../cli/local/backup.js';
import { restoreStepKey } from '../../core/backup/layout.js';
import { RestoreStepResultSchema } from '../../core/restore/steps.js';
import { getJson, listAll } from '../../core/s3/objects.js';
import { countGraph, countTables, type Neo4jServer } from '../../harness/index.js';
import { enteredStates as entered, type LocalStack, startLocalStack } from '../../harness/local-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { fakeEcsServices } from '../helpers/ecs.js';
import { testTempDir } from '../helpers/temp.js';

const bucket = 'infrahub-backups-refresh';
const PROD = 'infrahub-lab';
const STAGING = 'infrahub-staging';
/** The deployment ids (Root uuids) the two Infrahub graphs are seeded with. */
const PROD_ID = '6f1b2a3c-0000-4000-8000-00000000a001';
const STAGING_ID = '6f1b2a3c-0000-4000-8000-00000000b002';

describe('refresh: a target restored from another target’s backup, run locally from the synthesized restore state machine', () => {
  let stack: LocalStack;
  let backupId: string;
  let prodAtBackup: { tables: Record<string, number>; graph: { nodes: number; relationships: number } };
  let prodObjects: string[];
  const ecs = fakeEcsServices({ 'staging-server': 2, 'staging-worker': 3 });

  const graphOf = (name: string): Neo4jServer => {
    const t = stack.targets.find((x) => x.name === name);
    if (!t) throw new Error(`no target ${name}`);
    return t.neo4j;
  };
  const state = async (name: string) => {
    const t = stack.targets.find((x) => x.name === name);
    if (!t) throw new Error(`no target ${name}`);
    return { tables: await countTables(t.postgres, 'prefect'), graph: await countGraph(t.neo4j) };
  };
  const rootUuids = async (name: string): Promise<string[]> => {
    const session = graphOf(name).driver().session({ database: 'neo4j' });
    try {
      return (await session.run('MATCH (n:Root) RETURN n.uuid AS uuid')).records.map((r) =>
        String(r.get('uuid')),
      );
    } finally {
      await session.close();
    }
  };
  /** Every version of every object under the source's backups: key, version id and ETag. */
  const sourceBackupVersions = async (): Promise<string[]> => {
    const out = await stack.local.s3.send(
      new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `${PROD}/` }),
    );
    return [...(out.Versions ?? []), ...(out.DeleteMarkers ?? [])]
      .map((v) => `${v.Key} ${v.VersionId} ${'ETag' in v ? v.ETag : 'delete-marker'}`)
      .sort();
  };
  const options = () => ({ ...stack.runOptions(), ecs });

  beforeAll(async () => {
    stack = await startLocalStack({
      bucket,
      infrahub: { script: () => [], version: '1.5.2' },
      flowRuns: 30,
      devices: 12,
      rootUuid: PROD_ID,
      storagePrefix: 'refresh-prod-storage-',
      storageFiles: { 'dev-1/config.txt': 'hostname prod-1\n', 'dev-2/config.txt': 'hostname prod-2\n' },
      moreTargets: [
        {
          name: STAGING,
          flowRuns: 5,
          devices: 3,
          rootUuid: STAGING_ID,
          storageFiles: { 'dev-9/config.txt': 'hostname staging-9\n' },
        },
      ],
      // The source is production; staging may be refreshed from it, and quiesces its services.
      configure: (base) => ({
        ...base,
        targets: base.targets.map((t) =>
          t.name === PROD
            ? { ...t, production: true }
            : {
                ...t,
                refreshFrom: [PROD],
                quiesce: {
                  cluster: 'staging',
                  taskManagerDb: [],
                  taskManager: [],
                  server: ['staging-server'],
                  taskWorkers: ['staging-worker'],
                },
              },
        ),
      }),
      clockStart: Date.parse('2026-11-22T02:00:00Z'),
    });
    const backup = await runBackupLocally({ targets: [PROD] }, stack.runOptions());
    expect(backup.status, backup.cause).toBe('SUCCEEDED');
    backupId = (backup.output as { backupId: string }).backupId;
    prodAtBackup = await state(PROD);
    prodObjects = await sourceBackupVersions();
    expect(prodObjects.length).toBeGreaterThan(3);
  }, scaled(420_000));

  afterAll(async () => {
    await stack?.stop();
  });

  it(
    'refuses a refresh into the production target before anything is stopped, naming the target and the field',
    async () => {
      const before = await state(PROD);
      const refused = await runRestoreLocally({ target: PROD, sourceTarget: STAGING }, options());
      expect(refused.status).toBe('FAILED');
      expect(refused.error).toBe('RestoreFailed');
      expect(refused.cause).toMatch(
        /target: "infrahub-lab" is marked production \(targets\[0\]\.production is true\): a production target can never be a refresh destination/,
      );
      const states = entered(refused);
      expect(states).toContain('RestoreRefused');
      for (const s of ['AcquireRestoreLock', 'StopServices', 'RestoreComponents', 'StopDbmsForRestore'])
        expect(states).not.toContain(s);
      expect(ecs.updates).toEqual([]);
      expect(await state(PROD)).toEqual(before);
      expect(await rootUuids(PROD)).toEqual([PROD_ID]);
    },
    scaled(120_000),
  );

  it(
    "refreshes staging from production's latest backup: its data equals the backup, its deployment id stays its own, the backup is untouched",
    async () => {
      expect(await state(STAGING)).not.toEqual(prodAtBackup);
      const refreshed = await runRestoreLocally(
        { target: STAGING, sourceTarget: PROD, backupId: 'latest', reason: 'weekly staging refresh' },
        options(),
      );
      expect(refreshed.status, refreshed.cause).toBe('SUCCEEDED');
      expect((refreshed.output as { summary: string }).summary).toMatch(
        new RegExp(`^Refresh of ${STAGING} from ${PROD}/${backupId} passed`),
      );

      // Staging's data is production's backup: rows per table, nodes and relationships, artifacts.
      expect(await state(STAGING)).toEqual(prodAtBackup);
      const stagingStorage = stack.targets.find((t) => t.name === STAGING)?.storagePath ?? '';
      expect(await readFile(join(stagingStorage, 'dev-1', 'config.txt'), 'utf8')).toBe('hostname prod-1\n');
      expect(await readFile(join(stagingStorage, 'dev-2', 'config.txt'), 'utf8')).toBe('hostname prod-2\n');

      // ... but it keeps its own Infrahub identity: one Root node, with staging's uuid, not production's.
      expect(await rootUuids(STAGING)).toEqual([STAGING_ID]);
      expect(await rootUuids(PROD)).toEqual([PROD_ID]);

      // Production's backup is untouched (every version, ETag and key as before), and so is production.
      expect(await sourceBackupVersions()).toEqual(prodObjects);
      expect(await state(PROD)).toEqual(prodAtBackup);

      // The reset happened after the load, before validation and before the services started again.
      const states = entered(refreshed);
      expect(states.indexOf('RestoreNeo4j')).toBeLessThan(states.indexOf('ValidateNeo4j'));
      expect(states.indexOf('StartServices')).toBeGreaterThan(states.lastIndexOf('ValidateNeo4j'));
      expect(ecs.updates).toEqual([
        'staging-worker=0',
        'staging-server=0',
        'staging-server=2',
        'staging-worker=3',
      ]);

      // The reports are staging's, and say where the backup came from and which id the graph holds.
      const reports = (await listAll(stack.local.s3, bucket, '.restores/')).map((o) => o.Key ?? '');
      expect(reports.filter((k) => k.startsWith(`.restores/${PROD}/`))).toEqual([]);
      const restoreId = reports.find((k) => k.endsWith('/report.json'))?.split('/')[2] ?? '';
      const loaded = await getJson(
        stack.local.s3,
        bucket,
        restoreStepKey(STAGING, restoreId, 'restore-neo4j'),
        RestoreStepResultSchema,
      );
      expect(loaded).toMatchObject({
        target: STAGING,
        sourceTarget: PROD,
        backupId,
        details: {
          deploymentId: { database: 'neo4j', previous: STAGING_ID, value: STAGING_ID, how: 'kept' },
        },
      });
      const validated = await getJson(
        stack.local.s3,
        bucket,
        restoreStepKey(STAGING, restoreId, 'validate-neo4j'),
        RestoreStepResultSchema,
      );
      expect(validated?.details.deploymentId).toEqual({
        database: 'neo4j',
        restored: PROD_ID,
        value: STAGING_ID,
        how: 'kept',
        action: 'set',
      });
      // The counts were compared with the backup's after the reset (one property changed, no count).
      expect(validated?.details.validation).toMatch(/graph counts equal those at backup time/);
      const report = await getJson(
        stack.local.s3,
        bucket,
        restoreStepKey(STAGING, restoreId, 'report'),
        z.looseObject({ ok: z.boolean(), source: z.string(), deploymentId: z.unknown() }),
      );
      expect(report).toMatchObject({
        ok: true,
        source: PROD,
        deploymentId: { restored: PROD_ID, value: STAGING_ID, how: 'kept' },
      });
    },
    scaled(420_000),
  );

  it(
    'the CLI takes --from-target: refuses a production destination before any AWS call, and plans a refresh with --local',
    async () => {
      const configFile = join(testTempDir('refresh-cli-'), 'deployment.json');
      writeFileSync(configFile, JSON.stringify(stack.config));
      const out: string[] = [];
      const err: string[] = [];
      const saved = { ...process.env };
      Object.assign(process.env, stack.aws.env());
      try {
        const refused = await run(
          ['--config', configFile, 'restore', '--target', PROD, '--from-target', STAGING, '--dry-run'],
          (l) => out.push(l),
          (l) => err.push(l),
        );
        expect(refused).toBe(EXIT.usage);
        expect(err.join('\n')).toMatch(
          /--target: "infrahub-lab" is marked production \(targets\[0\]\.production is true\)/,
        );
        out.length = 0;
        const planned = await run(
          [
            '--config',
            configFile,
            '--endpoint',
            stack.aws.endpoint,
            '--bucket',
            bucket,
            '--json',
            'restore',
            '--target',
            STAGING,
            '--from-target',
            PROD,
            '--dry-run',
            '--local',
          ],
          (l) => out.push(l),
          (l) => err.push(l),
        );
        expect(planned, err.join('\n')).toBe(EXIT.ok);
        const outcome = JSON.parse(out.join('\n')) as { status: string; output: Record<string, unknown> };
        expect(outcome.status).toBe('SUCCEEDED');
        expect(outcome.output).toMatchObject({
          kind: 'restore',
          dryRun: true,
          target: STAGING,
          source: PROD,
          backupId,
          refresh: { source: PROD, deploymentId: { action: 'reset' } },
        });
      } finally {
        process.env = saved;
      }
    },
    scaled(300_000),
  );
});
