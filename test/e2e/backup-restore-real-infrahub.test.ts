import { createHash } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalAws,
  runBackupLocally,
  runDrillLocally,
  runRestoreLocally,
} from '../../cli/local/backup.js';
import {
  infrahubStackTarget,
  type LocalTarget,
  localDeploymentConfig,
  localRuntime,
  provisionLocalAws,
} from '../../cli/local/harness-target.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { waitForIdle } from '../../core/infrahub/gate.js';
import type { InfrahubTask } from '../../core/infrahub/tasks.js';
import { type InfrahubStack, startInfrahub } from '../../harness/infrahub.js';
import {
  type InfrahubSnapshot,
  infrahubGraphql,
  SEED,
  type SeedSummary,
  seedInfrahub,
  snapshotInfrahub,
  waitForInfrahub,
} from '../../harness/infrahub-data.js';
import { infrahubFetch } from '../../harness/infrahub-http.js';
import { enteredStates } from '../../harness/local-stack.js';
import { type S3Server, startS3 } from '../../harness/s3.js';

const bucket = 'infrahub-backups-e2e';
const targetName = 'infrahub-e2e';
const log = (line: string) => console.log(`[e2e ${new Date().toISOString().slice(11, 19)}] ${line}`);

// The product's main job against a real Infrahub 1.11 (harness/infrahub.ts: Neo4j, PostgreSQL,
// Redis, RabbitMQ, the Prefect task manager, the API server and a task worker, all real), seeded
// with real data (a schema, objects on two branches, a git repository whose transform renders
// artifacts, the task history that made them): the synthesized backup state machine, run locally
// (its preflight gate against Infrahub's real GraphQL API), then every store wiped, then the
// restore state machine, then Infrahub started again must serve exactly what it served before.
describe(`backup → wipe → restore of a real Infrahub (Neo4j ${process.env.HARNESS_NEO4J_VERSION ?? 'default'})`, () => {
  let stack: InfrahubStack | undefined;
  let aws: S3Server | undefined;
  let local: LocalAws;
  let config: DeploymentConfig;
  let synthesized: SynthesizedBackup;
  let target: LocalTarget;
  let seeded: SeedSummary;
  let failed = false;
  let restored: { snapshot: InfrahubSnapshot; cutoff: Date } | undefined;

  const options = () => ({
    config,
    aws: local,
    runtime: () => localRuntime(target),
    synthesized,
    onEvent: (event: { type: string; state?: unknown }) => {
      const state = event.state as { name: string; type: string } | undefined;
      if (event.type === 'StateEntered' && state?.type === 'Task') log(`  ${state.name}`);
    },
  });

  beforeAll(async () => {
    const t0 = Date.now();
    [stack, aws] = await Promise.all([startInfrahub({ log }), startS3()]);
    log(
      `Infrahub ${stack.address} started in ${Math.round((Date.now() - t0) / 1000)} s (logs: ${stack.logsDir})`,
    );
    seeded = await seedInfrahub(stack, { log });
    log(`seeded: ${JSON.stringify(seeded)}`);
    target = infrahubStackTarget(stack, targetName);
    // 3 s: the preflight loop may pass at most 240 Wait states (600 / 3 = 200; core/config/schema.ts).
    config = localDeploymentConfig([target], { preflight: { maxWaitSeconds: 600, pollIntervalSeconds: 3 } });
    local = await provisionLocalAws(aws, bucket, [target]);
    synthesized = synthesizeBackup(config);
  });

  afterEach((context) => {
    if (context.task.result?.state === 'fail') failed = true;
  });

  afterAll(async () => {
    await aws?.stop();
    // A failing run keeps each process's log for reading; the path is printed.
    await stack?.stop({ keepLogs: failed });
    if (failed && stack) console.log(`[e2e] the logs of the Infrahub processes are kept in ${stack.logsDir}`);
  });

  it('the preflight gate waits while a real Infrahub task runs, names it, and passes once it ends', async () => {
    if (!stack) throw new Error('no stack');
    const api = { address: stack.address, token: stack.adminToken };
    const seen: InfrahubTask[][] = [];
    // Regenerating the artifacts is a task the worker runs for seconds (a git worktree, the
    // transform, a file per device): the gate must see it pending or running, then see it end.
    const definition = await artifactDefinitionId(stack);
    const started = await infrahubFetch(`${stack.address}/api/artifact/generate/${definition}`, {
      method: 'POST',
      headers: { 'X-INFRAHUB-KEY': stack.adminToken },
    });
    expect(started.status, await started.text()).toBeLessThan(300);
    const result = await waitForIdle(api, {
      maxWaitSeconds: 600,
      pollIntervalSeconds: 1,
      onPoll: (tasks) => seen.push([...tasks]),
    });
    const busy = seen.find((tasks) => tasks.length > 0);
    expect(busy, 'the first poll saw no pending or running task').toBeDefined();
    expect(busy?.some((t) => /artifact/i.test(`${t.title} ${t.workflow ?? ''}`))).toBe(true);
    for (const task of busy ?? []) {
      expect(task.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(['PENDING', 'RUNNING', 'SCHEDULED']).toContain(task.state);
    }
    expect(seen.at(-1)).toEqual([]);
    expect(result.polls).toBeGreaterThan(1);
    await waitForArtifactsReady(stack);
  });

  it('restores every object, branch, artifact, account and task-history row after the stores are wiped', async () => {
    if (!stack) throw new Error('no stack');
    // Flow runs that ended before this instant are the history compared; recurring jobs that
    // start later are left out of both snapshots (SnapshotOptions).
    const cutoff = new Date();
    const before = await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff });
    expectSeeded(before, seeded, stack.storagePath);
    // Read twice without a change in between: the snapshot is stable.
    expect(await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff })).toEqual(before);

    const t0 = Date.now();
    const backup = await runBackupLocally({ targets: [targetName], reason: 'e2e' }, options());
    expect(backup.status, `${backup.error}: ${backup.cause}`).toBe('SUCCEEDED');
    const backupId = (backup.output as { backupId: string }).backupId;
    log(`backup ${backupId} in ${Math.round((Date.now() - t0) / 1000)} s`);
    // The Community dump stopped Neo4j: the backup reported success only once Bolt answered again,
    // and Infrahub itself comes back (503 "Database Service unavailable" for a short while).
    await waitForInfrahub(stack.address, stack.adminToken, 300_000);
    expect(await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff })).toEqual(before);

    await stack.wipe();
    log('stores wiped');
    const restore = await runRestoreLocally({ target: targetName, backupId, reason: 'e2e' }, options());
    expect(restore.status, `${restore.error}: ${restore.cause}`).toBe('SUCCEEDED');
    expect(enteredStates(restore)).toEqual(
      expect.arrayContaining(['RestorePostgres', 'RestoreNeo4j', 'RestoreArtifacts', 'ValidateNeo4j']),
    );
    log(`restored: ${(restore.output as { summary: string }).summary}`);

    await stack.startInfrahub();
    await waitForInfrahub(stack.address, stack.adminToken, 300_000);
    const after = await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff });
    expect(after).toEqual(before);
    restored = { snapshot: after, cutoff };
  });

  it('a restore drill of the latest backup passes', async () => {
    const drill = await runDrillLocally({ target: targetName, backup: 'latest', reason: 'e2e' }, options());
    expect(drill.status, `${drill.error}: ${drill.cause}`).toBe('SUCCEEDED');
    expect((drill.output as { ok: boolean }).ok).toBe(true);
  });

  // The comparison above can fail: a lost object, artifact file, task-history row or branch shows.
  it('the snapshot tells apart a lost device, artifact file, flow-run row and branch', async () => {
    if (!stack || !restored) throw new Error('no restored stack');
    const { snapshot: base, cutoff } = restored;
    const snap = () => snapshotInfrahub(stack as InfrahubStack, { flowRunsEndedBefore: cutoff });

    const artifact = base.data.main?.artifacts.find((a) => a.storage_id);
    const file = join(stack.storagePath, String(artifact?.storage_id));
    renameSync(file, `${file}.away`);
    try {
      const lost = await snap();
      expect(lost.data.main?.artifacts.find((a) => a.id === artifact?.id)?.file_sha256).toBeNull();
      expect(lost).not.toEqual(base);
    } finally {
      renameSync(`${file}.away`, file);
    }

    const flowRun = base.flowRuns[0];
    const client = new pg.Client({ connectionString: stack.postgres.url('prefect') });
    await client.connect();
    try {
      await client.query('DELETE FROM flow_run WHERE id = $1', [flowRun?.id]);
    } finally {
      await client.end();
    }
    const withoutRun = await snap();
    expect(withoutRun.flowRuns).toHaveLength(base.flowRuns.length - 1);

    const device = base.data.main?.devices.find((d) => d.name !== SEED.changedDevice);
    await infrahubGraphql(
      stack,
      `mutation { ${SEED.deviceKind}Delete(data: { id: "${device?.id}" }) { ok } }`,
    );
    const withoutDevice = await snap();
    expect(withoutDevice.data.main?.devices).toHaveLength((base.data.main?.devices.length ?? 0) - 1);

    await infrahubGraphql(
      stack,
      `mutation { BranchDelete(data: { name: "${SEED.branch}" }, wait_until_completion: true) { ok } }`,
    );
    const withoutBranch = await snap();
    expect(withoutBranch.branches.map((b) => b.name)).toEqual(['main']);
  });
});

/**
 * The seeded data is all there and as seeded, so a snapshot that lost some of it cannot compare
 * equal by chance: both branches and what differs between them, the group's members, the artifacts
 * (Ready, Infrahub's checksum being the MD5 of the stored file), the git-imported objects, accounts
 * and the task history that made them.
 */
function expectSeeded(snapshot: InfrahubSnapshot, seeded: SeedSummary, storagePath: string): void {
  expect(snapshot.branches.map((b) => b.name).sort()).toEqual([SEED.branch, 'main'].sort());
  expect(snapshot.accounts.map((a) => a.name)).toEqual(expect.arrayContaining(['admin', 'agent']));
  expect(snapshot.repositories).toEqual([
    expect.objectContaining({
      kind: 'CoreRepository',
      name: SEED.repositoryName,
      commit: seeded.repository.commit,
    }),
  ]);
  const main = snapshot.data.main;
  const branch = snapshot.data[SEED.branch];
  if (!main || !branch) throw new Error(`no data for main or ${SEED.branch}`);
  expect(main.sites).toHaveLength(seeded.sites);
  expect(main.devices).toHaveLength(seeded.devices);
  const group = main.groups.find((g) => g.name === SEED.groupName);
  expect(group?.members).toEqual(main.devices.map((d) => d.id).sort());
  expect(branch.devices).toHaveLength(seeded.branchDevices);
  expect(branch.devices.find((d) => d.name === SEED.changedDevice)?.description).toBe(
    SEED.changedDescription,
  );
  expect(main.devices.find((d) => d.name === SEED.changedDevice)?.description).not.toBe(
    SEED.changedDescription,
  );
  expect(main.artifacts).toHaveLength(seeded.artifacts);
  for (const artifact of main.artifacts) {
    expect(artifact.status).toBe('Ready');
    const content = readFileSync(join(storagePath, String(artifact.storage_id)));
    expect(createHash('md5').update(content).digest('hex')).toBe(artifact.checksum);
    expect(snapshot.storage[String(artifact.storage_id)]).toBe(artifact.file_sha256);
  }
  expect(main.transforms.map((t) => t.name)).toEqual([SEED.transformName]);
  const flows = snapshot.flowRuns.map((r) => r.flow);
  expect(flows).toContain('git-repository-add-read-write');
  expect(flows.filter((f) => f === 'artifact-generate').length).toBeGreaterThanOrEqual(seeded.artifacts);
}

async function artifactDefinitionId(stack: InfrahubStack): Promise<string> {
  const snapshot = await snapshotInfrahub(stack);
  const id = snapshot.data.main?.artifactDefinitions[0]?.id;
  if (!id) throw new Error('the seeded data has no artifact definition');
  return id;
}

/** Waits until no artifact is being generated, so the next snapshot sees settled artifacts. */
async function waitForArtifactsReady(stack: InfrahubStack): Promise<void> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const artifacts = (await snapshotInfrahub(stack)).data.main?.artifacts ?? [];
    if (artifacts.length > 0 && artifacts.every((a) => a.status === 'Ready' && a.file_sha256)) return;
    if (Date.now() > deadline)
      throw new Error(`artifacts not Ready after 300 s: ${JSON.stringify(artifacts.map((a) => a.status))}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}
