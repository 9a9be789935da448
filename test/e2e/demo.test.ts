import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { neo4jVersion } from '../../harness/index.js';
import { startInfrahub } from '../../harness/infrahub.js';
import { snapshotInfrahub, waitForInfrahub } from '../../harness/infrahub-data.js';
import { scaled } from '../../harness/time-scale.js';
import { type DemoRun, startDemo, stopDemo } from '../helpers/demo.js';

// The README's first quick-start command: `npm run demo` backs up a real Infrahub, wipes it,
// restores it and shows it serves the same objects. The first run initialises Infrahub and caches
// its stores; a later one starts from them.
describe('npm run demo (a real Infrahub)', () => {
  const stores = mkdtempSync(join(tmpdir(), 'demo-stores-'));
  let run: DemoRun | undefined;

  afterEach(() => stopDemo(run));
  afterAll(() => rmSync(stores, { recursive: true, force: true }));

  const demo = () => {
    run = startDemo([], { DEMO_STORES_DIR: stores });
    return run.done;
  };

  const expectTheJobDone = (out: string) => {
    expect(out).toMatch(/infrahub_backup_\d{8}_\d{6}: all 1 target\(s\) backed up/);
    expect(out).toMatch(/\d+ files downloaded again and hashed: all SHA-256 match/);
    expect(out).toMatch(/Restore of infrahub-demo from infrahub_backup_\d{8}_\d{6} passed/);
    expect(out).toMatch(/equal to before the backup, field by field/);
    expect(out).toMatch(/Restore drill of infrahub-demo from infrahub_backup_\d{8}_\d{6} passed/);
    // What Infrahub serves, printed before and after: the same lines.
    const served = (heading: string) => {
      const start = out.indexOf(heading);
      return out
        .slice(start, out.indexOf('\n== ', start + 1))
        .split('\n')
        .slice(1)
        .join('\n');
    };
    const before = served('== What Infrahub serves before the backup');
    expect(before).toMatch(/main: 3 sites, 10 devices/);
    expect(served('== What Infrahub serves after the restore')).toContain(before.split('\n')[0]);
    const states = [...out.matchAll(/^ +\d+\.\d s {2}(\w+)$/gm)].map((m) => m[1]);
    expect(states).toEqual(
      expect.arrayContaining(['Preflight', 'StopDbms', 'DumpNeo4j', 'StartDbms', 'WriteManifest']),
    );
    expect(states).toEqual(
      expect.arrayContaining(['PlanRestore', 'RestoreNeo4j', 'RestorePostgres', 'ValidateNeo4j']),
    );
    expect(states).toEqual(expect.arrayContaining(['PlanDrill', 'RunDrill', 'DrillReport']));
    expect(out).toMatch(/Demo complete in \d+ s/);
  };

  it(
    'initialises and seeds a real Infrahub, backs it up, wipes, restores, and caches the stores',
    async () => {
      const { code, out } = await demo();
      expect(code, out).toBe(0);
      expect(out).toMatch(/a first start initialises it/);
      expect(out).toMatch(/3 sites, 10 devices \(11 on change-1\), 10 artifacts/);
      expectTheJobDone(out);
      expect(existsSync(join(stores, `neo4j-${neo4jVersion()}`, 'stores.json'))).toBe(true);
      // About 12 min on a quiet 2-core machine (README), 20 min seen under heavy load.
    },
    scaled(2_400_000),
  );

  it('leaves stores a later stack starts from, serving the restored data', async () => {
    // What the second `npm run demo` does first (startInfrahub with fromStores): cheaper than a
    // second demo, and the rest of the job is the same as in the first run.
    const dir = join(stores, `neo4j-${neo4jVersion()}`);
    const stack = await startInfrahub({ fromStores: dir });
    try {
      await waitForInfrahub(stack.address, stack.adminToken, 300_000);
      const snapshot = await snapshotInfrahub(stack);
      expect(snapshot.branches.map((b) => b.name).sort()).toEqual(['change-1', 'main']);
      expect(snapshot.data.main?.devices).toHaveLength(10);
      expect(snapshot.data['change-1']?.devices).toHaveLength(11);
      expect(snapshot.data.main?.artifacts.every((a) => /^[0-9a-f]{64}$/.test(String(a.file_sha256)))).toBe(
        true,
      );
      expect(snapshot.flowRuns.length).toBeGreaterThan(0);
    } finally {
      await stack.stop();
    }
  });
});
