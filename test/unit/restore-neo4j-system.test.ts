import { describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile, parseInput } from '../../core/config/load.js';
import {
  checkCompatibility,
  describeNeo4jSystem,
  RestoreExecutionInputSchema,
} from '../../core/restore/plan.js';
import { communityDumpManifest } from '../helpers/manifest.js';

const config = loadDeploymentConfigFile('config/example.json');
const prod = config.targets[0]; // Enterprise
const lab = config.targets[1]; // Community
if (!prod || !lab) throw new Error('config/example.json has two targets');

const manifest = communityDumpManifest;
const input = (neo4jSystem?: 'keep' | 'restore') => ({
  components: ['database'],
  mode: 'in-place' as const,
  allowInfrahubVersionMismatch: false,
  ...(neo4jSystem ? { neo4jSystem } : {}),
});

// Item 6 of issue 12: restoring system.dump replaced the target's users without a word in the plan.
describe('the Neo4j system database in the restore plan', () => {
  it("keeps the target's system by default, and says so", () => {
    const parsed = parseInput(RestoreExecutionInputSchema, { target: 'infrahub-lab' }, 'input');
    expect(parsed.neo4jSystem).toBe('keep');
    expect(checkCompatibility(manifest(), lab, input(parsed.neo4jSystem))).toEqual([]);
    const plan = describeNeo4jSystem(manifest(), lab, ['database'], 'keep');
    expect(plan).toMatchObject({ choice: 'keep', action: 'kept' });
    expect(plan.message).toMatch(/system is kept: the target's Neo4j users, roles and passwords stay/);
    expect(plan.message).toMatch(/system\.dump is not loaded/);
  });

  it("restores system only when asked, warning that users and passwords become the backup's", () => {
    const findings = checkCompatibility(manifest(), lab, input('restore'));
    expect(findings).toEqual([
      {
        severity: 'warn',
        message: expect.stringMatching(
          new RegExp(
            `users, roles, privileges and passwords will be those of the backup.*${lab.neo4j.credentialsSecret}.*must be valid in the backup's system database`,
          ),
        ),
      },
    ]);
    const plan = describeNeo4jSystem(manifest(), lab, ['database'], 'restore');
    expect(plan).toMatchObject({ choice: 'restore', action: 'restored' });
    expect(plan.message).toMatch(/system is RESTORED from the backup/);
  });

  it('refuses "restore" when the backup holds no system, or the target is Enterprise', () => {
    expect(checkCompatibility(manifest(['neo4j']), lab, input('restore'))).toEqual([
      { severity: 'refuse', message: 'neo4jSystem "restore": the backup holds no system database' },
    ]);
    const enterprise = checkCompatibility(
      {
        ...manifest(),
        neo4j_edition: 'enterprise',
        versions: { neo4j: { edition: 'enterprise', server: '5.26.26', tool: '5.26.26' } },
      },
      prod,
      input('restore'),
    );
    expect(enterprise.map((f) => `${f.severity}: ${f.message}`)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^refuse: neo4jSystem "restore" applies to Neo4j Community loads/),
      ]),
    );
  });

  it('refuses "restore" in a refresh: the source\'s users and password hashes would replace the destination\'s', () => {
    // Review of issue 18, item 1: staging would get production's Neo4j users, and its own secret
    // would fail validation after the data was replaced.
    const findings = checkCompatibility(manifest(), lab, {
      ...input('restore'),
      refreshFrom: 'infrahub-prod',
    });
    expect(findings).toEqual([
      {
        severity: 'refuse',
        message: expect.stringMatching(
          /^neo4jSystem "restore" in a refresh from infrahub-prod: the source's system database would give infrahub-lab the Neo4j users, roles and password hashes of infrahub-prod.*use "keep"$/,
        ),
      },
    ]);
    expect(checkCompatibility(manifest(), lab, { ...input('keep'), refreshFrom: 'infrahub-prod' })).toEqual(
      [],
    );
  });

  it('says system is untouched when the graph is not restored', () => {
    expect(describeNeo4jSystem(manifest(), lab, ['artifacts'], 'restore')).toMatchObject({
      action: 'untouched',
    });
    const both = { ...manifest(), components: ['database', 'artifacts'] };
    expect(checkCompatibility(both, lab, { ...input('restore'), components: ['artifacts'] })).toEqual([]);
  });

  it('refuses an unknown choice, naming the field', () => {
    expect(() =>
      parseInput(
        RestoreExecutionInputSchema,
        { target: 'infrahub-lab', neo4jSystem: 'merge' },
        'restore execution input',
      ),
    ).toThrow(/neo4jSystem/);
  });
});
