import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../core/backup/manifest.js';
import { loadDeploymentConfigFile, parseInput } from '../../core/config/load.js';
import { graphCountDifferences, tableCountDifferences } from '../../core/restore/compare.js';
import { checkCompatibility, RestoreExecutionInputSchema } from '../../core/restore/plan.js';

const config = loadDeploymentConfigFile('config/example.json');
const prod = config.targets[0]; // Enterprise 5.26.26, PostgreSQL 18
const lab = config.targets[1]; // Community 5.26.26, PostgreSQL 18
if (!prod || !lab) throw new Error('config/example.json has two targets');
const prodNeo4j = prod.neo4j;
if (prodNeo4j.edition !== 'enterprise') throw new Error('config/example.json: infrahub-prod is Enterprise');

const manifest = (over: Partial<Manifest> = {}): Manifest => ({
  metadata_version: 2025111200,
  backup_id: 'infrahub_backup_20261121_020000',
  created_at: '2026-11-21T02:00:00Z',
  tool_version: '0.1.0',
  infrahub_version: '1.5.0',
  components: ['database', 'task-manager-db', 'artifacts'],
  checksums: {},
  neo4j_edition: 'community',
  redacted: false,
  encrypted: false,
  versions: {
    neo4j: { edition: 'community', server: '5.26.26', tool: '5.26.26' },
    postgres: { server: '18.1', tool: '18.1' },
  },
  ...over,
});
const all = {
  components: ['database', 'task-manager-db', 'artifacts'],
  mode: 'in-place' as const,
  allowInfrahubVersionMismatch: false,
};
const messages = (f: ReturnType<typeof checkCompatibility>) => f.map((x) => `${x.severity}: ${x.message}`);

describe('restore compatibility', () => {
  it('accepts a backup of the same editions and versions', () => {
    expect(checkCompatibility(manifest(), lab, all, '1.5.0')).toEqual([]);
  });

  it.each([
    [
      'an Enterprise backup into Community older than 5.20',
      manifest({
        neo4j_edition: 'enterprise',
        versions: { neo4j: { edition: 'enterprise', tool: '5.19.0', server: '5.19.0' } },
      }),
      { ...lab, neo4j: { ...lab.neo4j, version: '5.19.0' } },
      /refuse: an Enterprise backup loads into Community only from Neo4j 5\.20; the target runs 5\.19\.0/,
    ],
    [
      'a Community dump into Enterprise',
      manifest(),
      prod,
      /refuse: a Community dump is not restored into an Enterprise target/,
    ],
    [
      'a store newer than the Neo4j of the target',
      manifest({ versions: { neo4j: { edition: 'community', server: '2025.10.1', tool: '2025.10.1' } } }),
      lab,
      /refuse: the backup was taken from Neo4j 2025\.10\.1; the target runs 5\.26\.26, which cannot read a newer store/,
    ],
    [
      'a dump from a newer PostgreSQL',
      manifest({ versions: { postgres: { server: '18.1', tool: '18.1' } } }),
      { ...lab, postgres: { ...lab.postgres, majorVersion: 16 } },
      /refuse: the task-manager dump comes from PostgreSQL 18\.1; the target runs 16, older than the dump/,
    ],
    [
      'a component the backup does not hold',
      manifest({ components: ['task-manager-db'] }),
      lab,
      /refuse: the backup holds no database, artifacts \(it holds task-manager-db\)/,
    ],
  ])('refuses %s', (_, m, target, expected) => {
    expect(messages(checkCompatibility(m, target, all, '1.5.0'))).toEqual(
      expect.arrayContaining([expect.stringMatching(expected)]),
    );
  });

  it('allows an Enterprise backup into Community from 5.20', () => {
    const m = manifest({
      neo4j_edition: 'enterprise',
      versions: { neo4j: { edition: 'enterprise', tool: '5.26.26', server: '5.26.26' } },
    });
    expect(checkCompatibility(m, lab, all, '1.5.0')).toEqual([]);
  });

  it('refuses a different Infrahub version unless allowed, then warns', () => {
    expect(messages(checkCompatibility(manifest(), lab, all, '1.6.0'))).toEqual([
      'refuse: the backup was taken with Infrahub 1.5.0; the target runs 1.6.0; set allowInfrahubVersionMismatch to restore anyway',
    ]);
    expect(
      messages(checkCompatibility(manifest(), lab, { ...all, allowInfrahubVersionMismatch: true }, '1.6.0')),
    ).toEqual([
      'warn: the backup was taken with Infrahub 1.5.0; the target runs 1.6.0 (allowed by allowInfrahubVersionMismatch)',
    ]);
    // Unknown on either side: nothing to compare.
    expect(checkCompatibility(manifest({ infrahub_version: 'unknown' }), lab, all, '1.6.0')).toEqual([]);
    expect(checkCompatibility(manifest(), lab, all, undefined)).toEqual([]);
  });

  it('needs Enterprise for the blue/green mode', () => {
    expect(messages(checkCompatibility(manifest(), lab, { ...all, mode: 'new-database' }))).toEqual([
      expect.stringMatching(/refuse: mode "new-database" .* needs Neo4j Enterprise/),
    ]);
  });
});

describe('restore compatibility: Enterprise restores by seeding (issue 15)', () => {
  const enterprise = manifest({
    neo4j_edition: 'enterprise',
    versions: { neo4j: { edition: 'enterprise', server: '5.20.0', tool: '5.20.0' } },
  });
  // Quiesced, as an in-place restore should be (the warning without it is tested on its own).
  const at = (version: string, serverRoleArns: string[] = []) => ({
    ...prod,
    quiesce: {
      cluster: 'infrahub-prod',
      taskManagerDb: [],
      taskManager: [],
      server: ['infrahub-server'],
      taskWorkers: [],
    },
    neo4j: { ...prodNeo4j, version, seed: { ...prodNeo4j.seed, serverRoleArns } },
  });

  it('warns of an in-place restore without quiesce: a write before the proof fails it after the live database was replaced', () => {
    const { quiesce: _, ...unquiesced } = at('2025.10.1', ['arn:aws:iam::123456789012:role/neo4j']);
    expect(messages(checkCompatibility(enterprise, unquiesced, all, '1.5.0'))).toEqual([
      expect.stringMatching(
        /^warn: in-place restore of infrahub-prod without quiesce: .*mode "new-database"$/,
      ),
    ]);
  });

  it('refuses a target older than 5.26 in either mode: seeding from a chain needs its CloudSeedProvider', () => {
    for (const mode of ['in-place', 'new-database'] as const)
      expect(
        messages(
          checkCompatibility(
            enterprise,
            at('5.25.1'),
            { ...all, mode, newDatabaseName: 'infrahub-green' },
            '1.5.0',
          ),
        ),
      ).toEqual(
        expect.arrayContaining([
          expect.stringMatching(
            /^refuse: an Enterprise restore is seeded .* Neo4j 5\.26 or later; the target runs 5\.25\.1$/,
          ),
        ]),
      );
    expect(
      messages(checkCompatibility(enterprise, at('5.26.26'), all, '1.5.0')).filter((m) =>
        m.startsWith('refuse'),
      ),
    ).toEqual([]);
  });

  it('warns when the servers are not granted the staged seeds by the stack, on 5.x of its providers default, that privileges do not follow the alias, and that backups follow neo4j.databases', () => {
    const role = 'arn:aws:iam::123456789012:role/neo4j';
    expect(messages(checkCompatibility(enterprise, at('2025.10.1'), all, '1.5.0'))).toEqual([
      expect.stringMatching(
        /^warn: neo4j\.seed\.serverRoleArns is empty: .*\.restore-seeds\/infrahub-prod\/.*AWS_REGION/,
      ),
    ]);
    expect(checkCompatibility(enterprise, at('2025.10.1', [role]), all, '1.5.0')).toEqual([]);
    expect(messages(checkCompatibility(enterprise, at('5.26.26', [role]), all, '1.5.0'))).toEqual([
      expect.stringMatching(
        /^warn: on Neo4j 5\.26\.26 the default dbms\.databases\.seed_from_uri_providers .* set it to "CloudSeedProvider"/,
      ),
    ]);
    const green = {
      ...all,
      mode: 'new-database' as const,
      newDatabaseName: 'infrahub-green',
      alias: 'infrahub',
    };
    expect(messages(checkCompatibility(enterprise, at('2025.10.1', [role]), green, '1.5.0'))).toEqual([
      expect.stringMatching(
        /^warn: privileges granted on the current database do not follow the alias to infrahub-green/,
      ),
      expect.stringMatching(
        /^warn: backups take the databases named in neo4j\.databases \(.*\), not the alias: once the alias has moved, list infrahub-green there/,
      ),
    ]);
  });
});

describe('restore execution input', () => {
  it('defaults to the latest backup, in place, every component it holds, not a dry run', () => {
    expect(RestoreExecutionInputSchema.parse({ target: 'infrahub-lab' })).toEqual({
      target: 'infrahub-lab',
      backupId: 'latest',
      mode: 'in-place',
      alias: 'infrahub',
      // The target's Neo4j users are kept unless asked (core/restore/plan.ts, neo4jSystem).
      neo4jSystem: 'keep',
      dryRun: false,
      allowInfrahubVersionMismatch: false,
    });
  });

  it.each([
    [{}, /target/],
    [{ target: 'infrahub-lab', backupId: 'yesterday' }, /backupId/],
    [
      { target: 'infrahub-lab', mode: 'new-database' },
      /newDatabaseName: is required when mode is "new-database"/,
    ],
    [
      { target: 'infrahub-lab', newDatabaseName: 'neo4j-blue' },
      /newDatabaseName: is only used when mode is "new-database"/,
    ],
    [{ target: 'infrahub-lab', components: ['neo4j'] }, /components\[0\]/],
    [{ target: 'infrahub-lab', password: 'x' }, /unknown key "password"/],
  ])('rejects %j, naming the field', (input, message) => {
    expect(() => parseInput(RestoreExecutionInputSchema, input, 'restore execution input')).toThrowError(
      expect.objectContaining({ name: 'InvalidInput', message: expect.stringMatching(message) }),
    );
  });
});

describe('restore validation counts', () => {
  it('names each table that differs, is missing or is extra', () => {
    expect(
      tableCountDifferences(
        { 'public.a': 1, 'public.b': 2, 'public.c': 3 },
        { 'public.a': 1, 'public.b': 5, 'public.d': 0 },
      ),
    ).toEqual([
      'public.b: 2 at backup, 5 after restore',
      'public.c: 3 at backup, absent after restore',
      'public.d: absent at backup, 0 after restore',
    ]);
    expect(tableCountDifferences({ 'public.a': 1 }, { 'public.a': 1 })).toEqual([]);
  });

  it('names each database whose graph differs or is missing', () => {
    expect(
      graphCountDifferences(
        { neo4j: { nodes: 10, relationships: 9 }, other: { nodes: 1, relationships: 0 } },
        { neo4j: { nodes: 10, relationships: 8 } },
      ),
    ).toEqual([
      'neo4j: 10 nodes and 9 relationships at backup, 10 and 8 after restore',
      'other: 1 nodes and 0 relationships at backup, no database after restore',
    ]);
  });
});
