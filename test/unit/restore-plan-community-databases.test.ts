import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../core/backup/manifest.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { checkCompatibility } from '../../core/restore/plan.js';
import { communityDumpManifest } from '../helpers/manifest.js';

const config = loadDeploymentConfigFile('config/example.json');
const lab = config.targets[1]; // Community, databases neo4j and system (the default)
if (lab?.neo4j.edition !== 'community') throw new Error('config/example.json: targets[1] is Community');

const manifest = communityDumpManifest;
const input = (neo4jSystem: 'keep' | 'restore' = 'keep') => ({
  components: ['database'],
  mode: 'in-place' as const,
  allowInfrahubVersionMismatch: false,
  neo4jSystem,
});
const refusals = (m: Manifest, target = lab, system: 'keep' | 'restore' = 'keep') =>
  checkCompatibility(m, target, input(system))
    .filter((f) => f.severity === 'refuse')
    .map((f) => f.message);

// Review of issue 12, item 2: a manifest with `extradb` (a copy of neo4j.dump) was planned, loaded both,
// overwrote neo4j, then validation failed "database extradb does not exist on this DBMS".
describe('a Community restore of databases the target does not serve is refused by the plan', () => {
  it('refuses extradb, naming it, with system kept or restored', () => {
    for (const system of ['keep', 'restore'] as const) {
      const found = refusals(manifest(['neo4j', 'extradb', 'system']), lab, system);
      expect(found).toEqual([
        expect.stringMatching(
          /database\(s\) extradb that the Community target does not serve \(its databases: neo4j, system\)/,
        ),
      ]);
    }
  });

  it("accepts the target's own databases, and a backup without system", () => {
    expect(refusals(manifest(['neo4j', 'system']))).toEqual([]);
    expect(refusals(manifest(['neo4j']))).toEqual([]);
  });

  it('follows target.neo4j.databases, and still refuses two databases besides system', () => {
    const graph = { ...lab, neo4j: { ...lab.neo4j, databases: ['graph', 'system'] } };
    expect(refusals(manifest(['graph', 'system']), graph)).toEqual([]);
    expect(refusals(manifest(['neo4j', 'system']), graph)).toEqual([
      expect.stringMatching(/neo4j that the Community target/),
    ]);
    const two = { ...lab, neo4j: { ...lab.neo4j, databases: ['neo4j', 'extradb', 'system'] } };
    expect(refusals(manifest(['neo4j', 'extradb']), two)).toEqual([
      expect.stringMatching(
        /2 Neo4j databases besides system \(neo4j, extradb\); Neo4j Community serves one/,
      ),
    ]);
  });
});

describe('neo4j.restoreLoad in the plan', () => {
  const warnings = (target: typeof lab) =>
    checkCompatibility(manifest(['neo4j', 'system']), target, input())
      .filter((f) => f.severity === 'warn')
      .map((f) => f.message);

  it('warns that an in-place load which fails part-way leaves the target to be restored again; staged says nothing', () => {
    const inPlace = { ...lab, neo4j: { ...lab.neo4j, restoreLoad: 'in-place' as const } };
    expect(warnings(inPlace)).toContainEqual(
      expect.stringMatching(
        /^neo4j\.restoreLoad is "in-place": the databases are loaded over infrahub-lab's once every file is verified, so a load that fails part-way leaves it to be restored again/,
      ),
    );
    for (const staged of [lab, { ...lab, neo4j: { ...lab.neo4j, restoreLoad: 'staged' as const } }])
      expect(warnings(staged).filter((w) => w.includes('restoreLoad'))).toEqual([]);
  });
});
