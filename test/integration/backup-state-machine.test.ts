import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalAws, type LocalExecution, runBackupLocally } from '../../cli/local/backup.js';
import {
  type LocalTarget,
  localDeploymentConfig,
  localRuntime,
  provisionLocalAws,
} from '../../cli/local/harness-target.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { readManifest } from '../../core/backup/manifest.js';
import { verifyBackup } from '../../core/backup/verify.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { type FakeInfrahub, startFakeInfrahub, task } from '../../harness/fake-infrahub-api.js';
import {
  countGraph,
  type Neo4jServer,
  type PostgresServer,
  type S3Server,
  seedGraph,
  seedPrefect,
  startNeo4j,
  startPostgres,
  startS3,
} from '../../harness/index.js';
import { exists } from '../helpers/s3.js';

const bucket = 'infrahub-backups-sm';

/** The state names an execution entered, in order. */
const entered = (run: LocalExecution) =>
  run.events.flatMap((e) => (e.type === 'StateEntered' ? [(e.state as { name: string }).name] : []));

// The synthesized backup state machine, executed locally against real PostgreSQL, Neo4j and moto.
describe('backup state machine, run locally from the synthesized definition', () => {
  let postgres: PostgresServer;
  let neo4j: Neo4jServer;
  let aws: S3Server;
  let infrahub: FakeInfrahub;
  let local: LocalAws;
  let config: DeploymentConfig;
  let synthesized: SynthesizedBackup;
  let target: LocalTarget;
  let storage: string;
  const busy = false;
  let clock = Date.parse('2026-11-21T02:00:00Z');
  // Each execution starts a second later, so each gets its own backup id.
  const startTime = () => {
    clock += 1000;
    return new Date(clock);
  };

  beforeAll(async () => {
    [postgres, neo4j, aws] = await Promise.all([startPostgres(), startNeo4j(), startS3()]);
    infrahub = await startFakeInfrahub({
      script: () => (busy ? [task(7, 'RUNNING', 'Generate artifacts for branch main')] : []),
    });
    await seedPrefect(postgres, { flowRuns: 50 });
    await seedGraph(neo4j, { devices: 20 });
    storage = mkdtempSync(join(tmpdir(), 'sm-storage-'));
    mkdirSync(join(storage, 'dev-1'));
    writeFileSync(join(storage, 'dev-1', 'config.txt'), 'hostname dev-1\n');
    target = {
      name: 'infrahub-lab',
      postgres,
      neo4j,
      infrahub: { address: infrahub.address, token: infrahub.token },
      storagePath: storage,
    };
    config = localDeploymentConfig([target], { preflight: { maxWaitSeconds: 2, pollIntervalSeconds: 1 } });
    local = await provisionLocalAws(aws, bucket, [target]);
    synthesized = synthesizeBackup(config);
  }, 240_000);

  afterAll(async () => {
    await infrahub?.close();
    await Promise.allSettled([postgres?.stop(), neo4j?.stop(), aws?.stop()]);
    if (storage) rmSync(storage, { recursive: true, force: true });
  });

  const run = (input: unknown, extra: Partial<Parameters<typeof runBackupLocally>[1]> = {}) =>
    runBackupLocally(input, {
      config,
      aws: local,
      runtime: () => localRuntime(target),
      synthesized,
      retryIntervalMs: 0,
      startTime: startTime(),
      ...extra,
    });

  it('backs up every component, writes the manifest last and reports success', async () => {
    const before = await countGraph(neo4j);
    const result = await run({ targets: ['infrahub-lab'], reason: 'test' });
    expect(result.status, result.cause).toBe('SUCCEEDED');
    const report = result.output as { ok: boolean; succeeded: string[]; backupId: string; failed: unknown[] };
    expect(report).toMatchObject({ ok: true, succeeded: ['infrahub-lab'], failed: [] });

    const states = entered(result);
    for (const s of ['Plan', 'AcquireLock', 'Preflight', 'CountNeo4j', 'StopDbms', 'DumpNeo4j', 'StartDbms'])
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
    expect(manifest).toMatchObject({
      backup_id: report.backupId,
      components: ['database', 'task-manager-db', 'artifacts'],
      neo4j_edition: 'community',
      forced: false,
      execution_id: result.executionArn,
    });
    expect(manifest?.counts?.neo4j?.neo4j).toEqual(before);
    const verified = await verifyBackup(local.s3, bucket, 'infrahub-lab', report.backupId, { deep: true });
    expect(verified.ok).toBe(true);
    // The DBMS was started again after its dump, and the lock is free for the next run.
    expect(await countGraph(neo4j)).toEqual(before);
    expect(await exists(local.s3, bucket, 'locks/infrahub-lab.json')).toBe(false);
  }, 240_000);
}, 600_000);
