import { describe, expect, it } from 'vitest';
import { renamedForNewDatabase } from '../../containers/runner/src/components/restore-neo4j.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { loadDeploymentConfigFile, parseInput } from '../../core/config/load.js';
import { checkCompatibility, RestoreExecutionInputSchema } from '../../core/restore/plan.js';

const config = loadDeploymentConfigFile('config/example.json');
const prod = config.targets[0]; // Enterprise, databases neo4j and system
if (prod?.neo4j.edition !== 'enterprise') throw new Error('config/example.json: targets[0] is Enterprise');

const parse = (input: Record<string, unknown>) =>
  parseInput(
    RestoreExecutionInputSchema,
    { target: 'infrahub-prod', mode: 'new-database', ...input },
    'restore',
  );

const manifest: Manifest = {
  metadata_version: 2025111200,
  backup_id: 'infrahub_backup_20261121_020000',
  created_at: '2026-11-21T02:00:00Z',
  tool_version: '0.1.0',
  infrahub_version: '1.5.0',
  components: ['database'],
  checksums: {},
  neo4j_edition: 'enterprise',
  redacted: false,
  encrypted: false,
  versions: { neo4j: { edition: 'enterprise', server: '5.26.26', tool: '5.26.26' } },
};
const refusals = (input: { newDatabaseName?: string; alias?: string }) =>
  checkCompatibility(manifest, prod, {
    components: ['database'],
    mode: 'new-database',
    allowInfrahubVersionMismatch: false,
    ...input,
  })
    .filter((f) => f.severity === 'refuse')
    .map((f) => f.message);

// Review 12 item 8: the restore input used a looser rule than Neo4j's (neo4jDatabaseNameProblem), so
// names the runner refuses only after services were scaled down, or system itself, got through.
describe('restore input: new-database names follow the shared Neo4j rule', () => {
  for (const [field, name, why] of [
    ['newDatabaseName', 'system', /newDatabaseName: is Neo4j's system database/],
    [
      'newDatabaseName',
      'systemfoo',
      /newDatabaseName: is reserved by Neo4j \(names starting with "system"\)/,
    ],
    ['newDatabaseName', 'neo4j-', /newDatabaseName: must be a Neo4j database name/],
    ['newDatabaseName', 'blue.', /newDatabaseName: must be a Neo4j database name/],
    ['alias', 'system', /alias: is Neo4j's system database/],
    ['alias', 'system-alias', /alias: is reserved by Neo4j/],
    ['alias', 'infra-', /alias: must be a Neo4j database name/],
  ] as const) {
    it(`refuses ${field} ${JSON.stringify(name)} at input validation`, () => {
      const input = field === 'alias' ? { newDatabaseName: 'blue', alias: name } : { newDatabaseName: name };
      expect(() => parse(input)).toThrow(why);
    });
  }

  it('refuses an alias equal to newDatabaseName', () => {
    expect(() => parse({ newDatabaseName: 'blue', alias: 'blue' })).toThrow(
      /alias: must differ from newDatabaseName/,
    );
  });

  it('accepts good names', () => {
    expect(parse({ newDatabaseName: 'blue', alias: 'infrahub' })).toMatchObject({
      newDatabaseName: 'blue',
      alias: 'infrahub',
    });
    expect(parse({ newDatabaseName: 'green.2026-11' })).toMatchObject({ alias: 'infrahub' });
  });

  it('refuses, before touching the target, newDatabaseName or alias equal to a configured database', () => {
    expect(refusals({ newDatabaseName: 'neo4j', alias: 'infrahub' })).toEqual([
      expect.stringMatching(
        /^newDatabaseName "neo4j" is one of the target's databases .* a new-database restore never replaces a database/,
      ),
    ]);
    expect(refusals({ newDatabaseName: 'blue', alias: 'neo4j' })).toEqual([
      expect.stringMatching(/^alias "neo4j" is one of the target's databases/),
    ]);
    expect(refusals({ newDatabaseName: 'blue', alias: 'infrahub' })).toEqual([]);
  });
});

describe('validate-neo4j after a new-database restore: the backup database it compares with', () => {
  const holding = (databases: string[]) =>
    ({
      ...manifest,
      neo4j: { method: 'backup', databases: databases.map((name) => ({ name, files: [] })) },
    }) as Manifest;

  it("maps the backup's one user database, whatever its name, to newDatabaseName (system keeps its own)", () => {
    expect(renamedForNewDatabase(holding(['graph', 'system']), 'green')).toEqual({ graph: 'green' });
    expect(renamedForNewDatabase(holding(['neo4j']), 'green')).toEqual({ neo4j: 'green' });
    expect(
      renamedForNewDatabase(
        { ...manifest, counts: { neo4j: { infra: { nodes: 1, relationships: 0 } } } } as Manifest,
        'green',
      ),
    ).toEqual({ infra: 'green' });
  });

  it('refuses a backup of several user databases, or none, naming them', () => {
    expect(() => renamedForNewDatabase(holding(['neo4j', 'graph', 'system']), 'green')).toThrow(
      /takes a backup of one user database; this one holds neo4j, graph/,
    );
    expect(() => renamedForNewDatabase(holding(['system']), 'green')).toThrow(/this one holds none/);
  });
});
