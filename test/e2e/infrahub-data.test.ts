import { createHash } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InfrahubStack, startInfrahub } from '../../harness/infrahub.js';
import {
  type InfrahubSnapshot,
  infrahubGraphql,
  SEED,
  type SeedSummary,
  seedInfrahub,
  snapshotInfrahub,
} from '../../harness/infrahub-data.js';

// A real Infrahub 1.11 (harness/infrahub.ts), seeded with real data, and the snapshot the end-to-end
// backup/restore test compares: stable while nothing changes, complete, and sensitive to a change.
describe('real Infrahub data: seed and snapshot', () => {
  let stack: InfrahubStack | undefined;
  let summary: SeedSummary;
  let first: InfrahubSnapshot;
  // The cutoff for Prefect's flow runs, shared by the snapshots compared (see SnapshotOptions).
  let cutoff: Date;

  beforeAll(async () => {
    const t0 = Date.now();
    stack = await startInfrahub({ log: (line) => console.log(`[infrahub] ${line}`) });
    console.log(`[infrahub] stack started in ${Math.round((Date.now() - t0) / 1000)} s`);
    summary = await seedInfrahub(stack, { log: (line) => console.log(`[infrahub] ${line}`) });
    console.log(`[infrahub] seed summary ${JSON.stringify(summary)}`);
  });

  afterAll(async () => {
    await stack?.stop({ keepLogs: false });
  });

  it('seeds the schema, objects, a group, a branch, a repository, artifacts and task history', () => {
    expect(summary.version).toBe('1.11.9');
    expect(summary.kinds).toEqual(['TestingSite', 'TestingDevice']);
    expect(summary.sites).toBe(3);
    expect(summary.devices).toBe(10);
    expect(summary.groupMembers).toBe(10);
    expect(summary.branchDevices).toBe(11);
    expect(summary.artifacts).toBe(10);
    expect(summary.storageFiles).toBeGreaterThanOrEqual(10);
    expect(summary.repository.commit).toMatch(/^[0-9a-f]{40}$/);
    // Schema load, repository import, artifact generation and branch creation are all Prefect flows.
    expect(summary.flowRuns).toBeGreaterThan(20);
  });

  it('takes a stable snapshot holding what was seeded', async () => {
    if (!stack) throw new Error('no stack');
    cutoff = new Date();
    first = await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff });
    const second = await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff });
    expect(second).toEqual(first);

    expect(first.branches.map((b) => b.name).sort()).toEqual([SEED.branch, 'main'].sort());
    expect(first.accounts.map((a) => a.name)).toEqual(expect.arrayContaining(['admin', 'agent']));
    expect(first.repositories).toEqual([
      expect.objectContaining({
        kind: 'CoreRepository',
        name: SEED.repositoryName,
        commit: summary.repository.commit,
      }),
    ]);

    const main = first.data.main;
    const branch = first.data[SEED.branch];
    if (!main || !branch) throw new Error(`no data for main or ${SEED.branch}`);
    expect(main.sites).toHaveLength(3);
    expect(main.devices.map((d) => d.name).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `device-${String(i + 1).padStart(2, '0')}`),
    );
    const group = main.groups.find((g) => g.name === SEED.groupName);
    expect(group?.kind).toBe('CoreStandardGroup');
    expect(group?.members).toEqual(main.devices.map((d) => d.id).sort());

    // The branch: one device more, one description changed there and not on main.
    expect(branch.devices).toHaveLength(11);
    expect(branch.devices.find((d) => d.name === SEED.branchDevice)).toBeDefined();
    expect(main.devices.find((d) => d.name === SEED.branchDevice)).toBeUndefined();
    expect(branch.devices.find((d) => d.name === SEED.changedDevice)?.description).toBe(
      SEED.changedDescription,
    );
    expect(main.devices.find((d) => d.name === SEED.changedDevice)?.description).toBe('Device 1');

    // The artifacts: one per device, Ready, and Infrahub's checksum (MD5) is that of the stored file.
    expect(main.artifacts).toHaveLength(10);
    expect(new Set(main.artifacts.map((a) => a.object))).toEqual(new Set(main.devices.map((d) => d.id)));
    for (const artifact of main.artifacts) {
      expect(artifact.status).toBe('Ready');
      expect(artifact.file_sha256).toMatch(/^[0-9a-f]{64}$/);
      const content = readFileSync(join(stack.storagePath, String(artifact.storage_id)));
      expect(createHash('md5').update(content).digest('hex')).toBe(artifact.checksum);
      expect(first.storage[String(artifact.storage_id)]).toBe(artifact.file_sha256);
    }
    expect(main.artifactDefinitions.map((d) => d.name)).toEqual([SEED.artifactDefinitionName]);
    expect(main.transforms.map((t) => t.name)).toEqual([SEED.transformName]);
    expect(main.queries.map((q) => q.name)).toEqual([SEED.queryName]);

    // Prefect's history: final runs only, including the repository import and the artifacts.
    const flows = first.flowRuns.map((r) => r.flow);
    expect(flows).toContain('git-repository-add-read-write');
    expect(flows.filter((f) => f === 'artifact-generate').length).toBeGreaterThanOrEqual(10);
    for (const run of first.flowRuns)
      expect(['COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED']).toContain(run.state_type);
  });

  it('tells a changed attribute and a lost artifact file apart from an unchanged Infrahub', async () => {
    if (!stack) throw new Error('no stack');
    const main = first.data.main;
    const device = main?.devices.find((d) => d.name === 'device-02');
    if (!device) throw new Error('device-02 missing from the snapshot');

    await infrahubGraphql(
      stack,
      `mutation Update($data: ${SEED.deviceKind}UpdateInput!) { ${SEED.deviceKind}Update(data: $data) { ok } }`,
      { variables: { data: { id: device.id, description: { value: 'changed after the snapshot' } } } },
    );
    const changed = await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff });
    expect(changed).not.toEqual(first);
    expect(changed.data.main?.devices.find((d) => d.id === device.id)?.description).toBe(
      'changed after the snapshot',
    );
    // Only that device differs on main.
    expect(changed.data.main?.devices.filter((d) => d.id !== device.id)).toEqual(
      main?.devices.filter((d) => d.id !== device.id),
    );

    // A lost artifact file shows in the artifact's file hash and in the storage listing (another
    // device's artifact: device-02's may be regenerated after its change).
    const artifact = changed.data.main?.artifacts.find((a) => a.object !== device.id && a.storage_id);
    if (!artifact?.storage_id) throw new Error('no artifact with a stored file in the snapshot');
    const file = join(stack.storagePath, artifact.storage_id as string);
    renameSync(file, `${file}.away`);
    try {
      const lost = await snapshotInfrahub(stack, { flowRunsEndedBefore: cutoff });
      expect(lost.data.main?.artifacts.find((a) => a.id === artifact.id)?.file_sha256).toBeNull();
      expect(lost.storage[artifact.storage_id as string]).toBeUndefined();
    } finally {
      renameSync(`${file}.away`, file);
    }
  });
});
