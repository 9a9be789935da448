import { createHash } from 'node:crypto';
import { ListObjectVersionsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  recreateProcedure,
  restoreNeo4jSeeded,
  type SeedOptions,
  seedProviderProblem,
} from '../../containers/runner/src/components/seed-neo4j.js';
import { resetStopGuard, withTargetState } from '../../containers/runner/src/stop-guard.js';
import { fileKey, RESTORE_SEEDS_ROOT } from '../../core/backup/layout.js';
import type { Manifest } from '../../core/backup/manifest.js';
import { createLogger } from '../../core/log.js';
import { type FakeDbmsOptions, FakeEnterpriseDbms } from '../fakes/fake-enterprise-dbms.js';
import { useLocalS3 } from '../helpers/s3.js';

// Neo4j Enterprise cannot run here: the seeded restore runs against real S3 (moto) and a FAKE
// Enterprise DBMS (test/fakes/fake-enterprise-dbms.ts) that follows the documented contracts of
// seeding from a URI, SHOW DATABASES, recreateDatabase and aliases, and refuses anything else.
const Bucket = 'backups-seeded-restore';
const target = 'infrahub-prod';
const backupId = 'infrahub_backup_20261122_020000';
const logger = createLogger({}, { write: () => undefined });
const GRAPH = { nodes: 1234, relationships: 5678 };

/** A fake backup artifact as test/fakes/fake-neo4j-admin-enterprise.mjs writes it: a JSON header line, then bytes. */
function artifact(header: { database: string; full: boolean; lowestTx: number; highestTx: number }) {
  return Buffer.concat([
    Buffer.from(`${JSON.stringify({ fake: true, ...header, metadata: 'all' })}\n`),
    createHash('sha256').update(JSON.stringify(header)).digest(),
  ]);
}

/** Stores a chain (full + differential by default) under the backup and returns its manifest. */
async function storeChain(
  s3: import('@aws-sdk/client-s3').S3Client,
  id: string,
  links: Array<{ name: string; full: boolean; lowestTx: number; highestTx: number }>,
): Promise<Manifest> {
  const checksums: Record<string, string> = {};
  const sizes: Record<string, number> = {};
  const stored: Record<string, { key: string; version_id?: string }> = {};
  for (const link of links) {
    const body = artifact({
      database: 'neo4j',
      full: link.full,
      lowestTx: link.lowestTx,
      highestTx: link.highestTx,
    });
    const file = `database/${link.name}`;
    const key = fileKey(target, id, file);
    const put = await s3.send(new PutObjectCommand({ Bucket, Key: key, Body: body }));
    checksums[file] = createHash('sha256').update(body).digest('hex');
    sizes[file] = body.length;
    stored[file] = { key, ...(put.VersionId ? { version_id: put.VersionId } : {}) };
  }
  // As the backup records it: the transaction the chain restores to (neo4j-admin --inspect-path),
  // and counts taken at that transaction (counts_basis verified).
  const lastTx = links.at(-1)?.highestTx as number;
  return {
    checksums,
    sizes,
    s3: stored,
    counts: { neo4j: { neo4j: GRAPH } },
    counts_basis: { neo4j: { describes_dump: 'verified', counted_tx: lastTx, dumped_tx: lastTx } },
    neo4j: {
      method: 'backup',
      databases: [
        { name: 'neo4j', files: links.map((l) => `database/${l.name}`), last_committed_tx: lastTx },
        { name: 'system', files: [] },
      ],
    },
  } as unknown as Manifest;
}

const CHAIN = [
  { name: 'neo4j-2026-11-21T02-00-00.backup', full: true, lowestTx: 1, highestTx: 10 },
  { name: 'neo4j-2026-11-22T02-00-00.backup', full: false, lowestTx: 11, highestTx: 20 },
];

describe('restore: Neo4j Enterprise seeded from the bucket (real S3, fake Enterprise DBMS)', () => {
  const local = useLocalS3(Bucket);
  let manifest: Manifest;
  let restoreCount = 0;

  beforeAll(async () => {
    manifest = await storeChain(local.s3, backupId, CHAIN);
  });

  const ctx = () => ({
    s3: local.s3,
    bucket: Bucket,
    target,
    backupId,
    restoreId: `restore_20261130_120000_t${++restoreCount}`,
    logger,
  });
  const dbms = (options: Partial<FakeDbmsOptions> = {}) =>
    new FakeEnterpriseDbms({
      s3: local.s3,
      awsRegion: 'eu-west-1',
      existing: { neo4j: { nodes: 1, relationships: 0 }, 'infrahub-blue': { nodes: 1, relationships: 0 } },
      aliases: { infrahub: 'infrahub-blue' },
      countsFor: () => GRAPH,
      ...options,
    });
  const fast = { onlineTimeoutMs: 3000, pollMs: 20 };
  const green: SeedOptions = {
    mode: 'new-database',
    newDatabaseName: 'infrahub-green',
    alias: 'infrahub',
    ...fast,
  };
  const stagedKeys = async () =>
    (
      (
        await local.s3.send(
          new ListObjectVersionsCommand({ Bucket, Prefix: `${RESTORE_SEEDS_ROOT}${target}/` }),
        )
      ).Versions ?? []
    ).map((v) => v.Key as string);

  it('blue/green: seeds the new database from the staged chain, validates it, then moves the alias and keeps the old one', async () => {
    const server = dbms();
    const c = ctx();
    const result = await restoreNeo4jSeeded(c, server, manifest, green);
    const seedUri = `s3://${Bucket}/${RESTORE_SEEDS_ROOT}${target}/${c.restoreId}/neo4j/${CHAIN[1]?.name}`;
    expect(result.databases).toEqual([
      expect.objectContaining({ from: 'neo4j', name: 'infrahub-green', how: 'created', seedUri }),
    ]);
    expect(result.databases[0]?.validation.validation).toContain('graph counts equal those at backup time');
    expect(result.alias).toEqual({ name: 'infrahub', database: 'infrahub-green', previous: 'infrahub-blue' });
    expect(result.verified.map((v) => v.file)).toEqual(CHAIN.map((l) => `database/${l.name}`));
    // The seed URI names the chain's last file; the server found the full backup beside it.
    const created = server.statements.findIndex((s) =>
      s.startsWith('system: CREATE DATABASE `infrahub-green`'),
    );
    const moved = server.statements.findIndex((s) => s.startsWith('system: CREATE OR REPLACE ALIAS'));
    const counted = server.statements.findIndex((s) => s.startsWith('infrahub-green: MATCH (n)'));
    expect(server.statements[created]).toBe(
      `system: CREATE DATABASE \`infrahub-green\` OPTIONS {existingData: 'use', seedURI: '${seedUri}'}`,
    );
    // Order: created, waited for online, counted, and only then the alias moved.
    expect(created).toBeGreaterThan(-1);
    expect(counted).toBeGreaterThan(created);
    expect(moved).toBeGreaterThan(counted);
    expect(
      server.statements
        .slice(created + 1, counted)
        .every((s) => s.startsWith('system: SHOW DATABASE `infrahub-green`')),
    ).toBe(true);
    expect(server.aliases.get('infrahub')).toBe('infrahub-green');
    // The old database is kept for the operator to drop; nothing else was dropped or recreated.
    expect(server.databases.has('infrahub-blue')).toBe(true);
    expect(server.statements.some((s) => /DROP|recreateDatabase/.test(s))).toBe(false);
    // The staged copies are gone once the restore succeeded.
    expect(result.staged.removed).toBe(true);
    expect(await stagedKeys()).toEqual([]);
  });

  it('in place, rehearsed: a throwaway database proves the seed first; then the live one is recreated (2025.x: dbms.recreateDatabase)', async () => {
    const server = dbms({ version: '2025.10.1' });
    const result = await restoreNeo4jSeeded(ctx(), server, manifest, { mode: 'in-place', ...fast });
    expect(result.rehearsal?.name).toMatch(/^seedcheck-/);
    expect(result.databases).toEqual([expect.objectContaining({ name: 'neo4j', how: 'recreated' })]);
    const rehearsal = server.statements.findIndex((s) =>
      s.includes(`CREATE DATABASE \`${result.rehearsal?.name}\``),
    );
    const dropped = server.statements.findIndex((s) =>
      s.includes(`DROP DATABASE \`${result.rehearsal?.name}\` IF EXISTS`),
    );
    const recreated = server.statements.findIndex((s) =>
      s.startsWith('system: CALL dbms.recreateDatabase($name, {seedURI: $seedURI})'),
    );
    expect(rehearsal).toBeGreaterThan(-1);
    expect(
      server.statements.slice(rehearsal).some((s) => s.startsWith(`${result.rehearsal?.name}: MATCH (n)`)),
    ).toBe(true);
    expect(dropped).toBeGreaterThan(rehearsal);
    expect(recreated).toBeGreaterThan(dropped);
    expect(server.databases.get('neo4j')?.counts).toEqual(GRAPH);
    expect(server.databases.has(result.rehearsal?.name as string)).toBe(false);
  });

  // Review of issue 19: once the server accepted an in-place recreate, a stop (ECS stopping the task)
  // was reported as a bare Interrupted, though the live database had been replaced.
  it('in place: once the live database is replaced, a failure reported later says so, and its own error is not said twice', async () => {
    resetStopGuard();
    try {
      const server = dbms({ version: '2025.10.1' });
      await restoreNeo4jSeeded(ctx(), server, manifest, { mode: 'in-place', rehearse: false, ...fast });
      expect(withTargetState(new Error('writing the report: AccessDenied')).message).toBe(
        'writing the report: AccessDenied. The live database(s) neo4j had been seeded from the backup and proven equal to it before this.',
      );
      resetStopGuard();
      // Accepted, then the seeded store is not the backup's: the restore's own error names the
      // replaced database; a stop meanwhile would have said it too.
      const wrong = dbms({ version: '2025.10.1', countsFor: () => ({ nodes: 1, relationships: 0 }) });
      const failed = (await restoreNeo4jSeeded(ctx(), wrong, manifest, {
        mode: 'in-place',
        rehearse: false,
        ...fast,
      }).catch((e: unknown) => e)) as Error;
      expect(failed.message).toMatch(
        /^the live database neo4j was replaced from the seed and is not proven equal/,
      );
      expect(withTargetState(failed).message).toBe(failed.message);
      expect(withTargetState(new Error('the runner received SIGTERM')).message).toBe(
        "the runner received SIGTERM. The live database neo4j had been replaced from the backup's seed before this, and is not proven equal to the backup yet. Restore again.",
      );
    } finally {
      resetStopGuard();
    }
  });

  it('in place on Neo4j 5.26 recreates with dbms.cluster.recreateDatabase, once s3:// seeds reach the CloudSeedProvider; before 5.26 it refuses', async () => {
    const server = dbms({ version: '5.26.26', seedProviders: 'CloudSeedProvider,S3SeedProvider' });
    await restoreNeo4jSeeded(ctx(), server, manifest, { mode: 'in-place', rehearse: false, ...fast });
    expect(server.statements.some((s) => s.startsWith('system: CALL dbms.cluster.recreateDatabase('))).toBe(
      true,
    );
    expect(recreateProcedure('2025.04.0')).toBe('dbms.recreateDatabase');
    expect(recreateProcedure('2025.03.0')).toBe('dbms.cluster.recreateDatabase');
    expect(recreateProcedure('5.26.26')).toBe('dbms.cluster.recreateDatabase');

    const old = dbms({ version: '5.25.1', seedProviders: 'CloudSeedProvider' });
    await expect(restoreNeo4jSeeded(ctx(), old, manifest, green)).rejects.toMatchObject({
      name: 'IncompatibleBackup',
      message: expect.stringContaining('Neo4j 5.26 or later'),
    });
    expect(old.statements.some((s) => /CREATE|DROP|recreate/.test(s))).toBe(false);
  });

  // Issue 15 review: in 5.26 the default providers list is "S3SeedProvider,CloudSeedProvider", and
  // "the first matching provider will be used": s3:// seeds would go to the S3SeedProvider, which
  // needs access keys the command never carries. The fake fails such a seed as the server would.
  it("refuses a 5.26 server whose providers send s3:// seeds to the S3SeedProvider (the version's default), before anything changes", async () => {
    for (const seedProviders of [
      undefined,
      'S3SeedProvider',
      'S3SeedProvider,CloudSeedProvider',
      'FileSeedProvider',
    ]) {
      const server = dbms({ version: '5.26.26', ...(seedProviders ? { seedProviders } : {}) });
      await expect(restoreNeo4jSeeded(ctx(), server, manifest, green)).rejects.toMatchObject({
        name: 'Neo4jSeed',
        message: expect.stringContaining('CloudSeedProvider first'),
      });
      expect(server.statements.some((s) => /CREATE|DROP|recreate/.test(s))).toBe(false);
    }
    // Unreadable on 5.26 (no row for a user without SHOW SETTING, or the command refused): its
    // default would send the seed to the S3SeedProvider, so refused.
    for (const hidden of [
      dbms({ version: '5.26.26', seedProviders: null }),
      dbms({ version: '5.26.26', denied: /^SHOW SETTINGS/ }),
    ]) {
      await expect(restoreNeo4jSeeded(ctx(), hidden, manifest, green)).rejects.toMatchObject({
        name: 'Neo4jSeed',
        message: expect.stringContaining("grant the restore's user SHOW SETTING"),
      });
      expect(hidden.statements.some((s) => /CREATE|DROP|recreate/.test(s))).toBe(false);
    }
    expect(seedProviderProblem('CloudSeedProvider, S3SeedProvider')).toBeUndefined();
    expect(seedProviderProblem('FileSeedProvider,CloudSeedProvider')).toBeUndefined();
    expect(seedProviderProblem('')).toMatch(/no provider takes s3/);
  });

  it('in place: a recreate returns while the old store still answers; the restore waits until every member started it anew', async () => {
    const server = dbms({ stalePolls: 3, members: ['neo4j-1:7687', 'neo4j-2:7687'] });
    const result = await restoreNeo4jSeeded(ctx(), server, manifest, {
      mode: 'in-place',
      rehearse: false,
      ...fast,
    });
    expect(result.databases[0]?.members.map((m) => [m.currentStatus, m.lastCommittedTxn])).toEqual([
      ['online', 20],
      ['online', 20],
    ]);
    expect(server.databases.get('neo4j')?.counts).toEqual(GRAPH);
    const call = server.statements.findIndex((s) => s.includes('recreateDatabase'));
    const counted = server.statements.findIndex((s) => s.startsWith('neo4j: MATCH (n)'));
    // The old store's online answers right after the call were not taken for the restored database.
    expect(
      server.statements.slice(call + 1, counted).filter((s) => s.includes('SHOW DATABASE `neo4j`')).length,
    ).toBeGreaterThan(4);
  });

  it('in place over a live database that no longer starts: its old "Unable to start" message is no verdict on the seed', async () => {
    const unable = {
      status: 'offline' as const,
      message: 'Unable to start database `DatabaseId{1234[neo4j]}`',
    };
    const server = dbms({
      stalePolls: 2,
      members: ['neo4j-1:7687', 'neo4j-2:7687'],
      states: { neo4j: { 'neo4j-1:7687': unable, 'neo4j-2:7687': unable } },
    });
    const result = await restoreNeo4jSeeded(ctx(), server, manifest, { mode: 'in-place', ...fast });
    expect(result.databases[0]).toMatchObject({ name: 'neo4j', how: 'recreated' });
    expect(result.databases[0]?.members.map((m) => m.currentStatus)).toEqual(['online', 'online']);
    expect(server.databases.get('neo4j')?.counts).toEqual(GRAPH);
  });

  it('in place: refuses, before staging or changing anything, a live database with a quarantined or unavailable member', async () => {
    const quarantined = dbms({
      members: ['neo4j-1:7687', 'neo4j-2:7687'],
      states: {
        neo4j: {
          'neo4j-2:7687': {
            status: 'quarantined',
            message: 'By neo4j at 2026-11-30T10:00:00Z: No reason given',
          },
        },
      },
    });
    const staged = (await stagedKeys()).length;
    await expect(
      restoreNeo4jSeeded(ctx(), quarantined, manifest, { mode: 'in-place', ...fast }),
    ).rejects.toMatchObject({
      name: 'IncompatibleBackup',
      message: expect.stringMatching(
        /^database neo4j cannot be recreated safely, so nothing was changed: member neo4j-2:7687 \(server server-2\) is quarantined .*CALL dbms\.unquarantineDatabase\('server-2', 'neo4j', 'keepStateKeepStore'\)/,
      ),
    });
    const down = dbms({ members: ['neo4j-1:7687', 'neo4j-2:7687'], down: ['neo4j-2:7687'] });
    await expect(
      restoreNeo4jSeeded(ctx(), down, manifest, { mode: 'in-place', ...fast }),
    ).rejects.toMatchObject({
      name: 'IncompatibleBackup',
      message: expect.stringContaining(
        'member server server-2 (no address) is unknown (its server is unavailable)',
      ),
    });
    for (const server of [quarantined, down]) {
      expect(server.statements.some((st) => /recreateDatabase|CREATE DATABASE/.test(st))).toBe(false);
      expect([...server.databases.keys()].some((n) => n.startsWith('seedcheck-'))).toBe(false);
    }
    expect((await stagedKeys()).length).toBe(staged);
  });

  it('in place: a failed rehearsal whose database cannot be dropped names it, to drop by hand', async () => {
    const server = dbms({ awsRegion: undefined, denied: /^DROP DATABASE/ });
    const error = (await restoreNeo4jSeeded(ctx(), server, manifest, { mode: 'in-place', ...fast }).catch(
      (e: unknown) => e,
    )) as Error;
    expect(error.message).toMatch(/^rehearsal \(the live database is untouched\)/);
    const left = [...server.databases.keys()].find((n) => n.startsWith('seedcheck-')) as string;
    expect(left).toBeDefined();
    expect(error.message).toContain(
      `The rehearsal database ${left} could not be dropped and is still on the server: drop it (DROP DATABASE \`${left}\`)`,
    );
    expect(server.statements.some((st) => st.includes('recreateDatabase'))).toBe(false);
  });

  it('the seeded database must end at the transaction the backup restores to: another one fails, the alias stays', async () => {
    const server = dbms({ txOffset: 3 });
    await expect(restoreNeo4jSeeded(ctx(), server, manifest, green)).rejects.toMatchObject({
      name: 'RestoreValidation',
      message: expect.stringContaining(
        "does not end at the backup's last transaction 20: neo4j-1:7687 holds up to 23",
      ),
    });
    expect(server.aliases.get('infrahub')).toBe('infrahub-blue');
  });

  it('counts taken at another transaction are not compared when the transaction proves the seed; without one, counts must equal', async () => {
    // Counts taken during the online backup, at transaction 25: "differs", kept aside.
    const differs = {
      ...manifest,
      counts: { neo4j: {} },
      counts_basis: {
        neo4j: {
          describes_dump: 'differs',
          counted_tx: 25,
          dumped_tx: 20,
          counted: { nodes: 1, relationships: 1 },
        },
      },
    } as unknown as Manifest;
    const proven = await restoreNeo4jSeeded(ctx(), dbms(), differs, green);
    expect(proven.databases[0]?.validation.validation).toContain(
      "ends at the backup's last transaction 20 on every member",
    );
    // An older or imported backup: no transaction, counts of unknown basis. They must equal now
    // (before, a difference only warned and the alias moved).
    const unproven = {
      ...manifest,
      counts_basis: { neo4j: { describes_dump: 'unknown' } },
      neo4j: {
        ...manifest.neo4j,
        databases: manifest.neo4j?.databases.map(({ last_committed_tx: _, ...d }) => d),
      },
    } as unknown as Manifest;
    const wrong = dbms({ countsFor: () => ({ nodes: 1, relationships: 1 }) });
    await expect(restoreNeo4jSeeded(ctx(), wrong, unproven, green)).rejects.toMatchObject({
      name: 'RestoreValidation',
    });
    expect(wrong.aliases.get('infrahub')).toBe('infrahub-blue');
    // Neither a transaction nor counts: nothing proves it.
    const bare = { ...unproven, counts: undefined, counts_basis: undefined } as unknown as Manifest;
    const none = dbms();
    await expect(restoreNeo4jSeeded(ctx(), none, bare, green)).rejects.toMatchObject({
      name: 'RestoreValidation',
      message: expect.stringContaining(
        'nothing proves the seeded database infrahub-green equal to the backup',
      ),
    });
    expect(none.aliases.get('infrahub')).toBe('infrahub-blue');
  });

  it('in place, several databases: a failure on the second says which were already replaced', async () => {
    const second = await storeChain(local.s3, 'infrahub_backup_20261124_020000', [
      { name: 'other-2026-11-24T02-00-00.backup', full: true, lowestTx: 1, highestTx: 20 },
    ]);
    const both = {
      ...manifest,
      checksums: { ...manifest.checksums, ...second.checksums },
      sizes: { ...manifest.sizes, ...second.sizes },
      s3: { ...manifest.s3, ...second.s3 },
      counts: { neo4j: { neo4j: GRAPH, other: GRAPH } },
      counts_basis: { ...manifest.counts_basis, other: manifest.counts_basis?.neo4j },
      neo4j: {
        method: 'backup',
        databases: [manifest.neo4j?.databases[0], { ...second.neo4j?.databases[0], name: 'other' }],
      },
    } as unknown as Manifest;
    const server = dbms({ denied: /^CREATE DATABASE `other`/ });
    await expect(
      restoreNeo4jSeeded(ctx(), server, both, { mode: 'in-place', rehearse: false, ...fast }),
    ).rejects.toMatchObject({
      message: expect.stringMatching(
        /^the server refused to create other from the seed, so it is untouched: .*Already replaced from this backup and proven: neo4j\./s,
      ),
    });
    expect(server.databases.get('neo4j')?.counts).toEqual(GRAPH);
  });

  it('in place: a recreate the server refuses (a missing privilege) says the live database is untouched', async () => {
    const server = dbms({ denied: /recreateDatabase/ });
    await expect(
      restoreNeo4jSeeded(ctx(), server, manifest, { mode: 'in-place', ...fast }),
    ).rejects.toMatchObject({
      message: expect.stringMatching(
        /^the server refused to recreate neo4j from the seed, so it is untouched: Permission denied/,
      ),
    });
    expect(server.databases.get('neo4j')?.counts).toEqual({ nodes: 1, relationships: 0 });
  });

  it('a seed that never comes online (servers without AWS_REGION) fails after the bound, naming the cause; the alias is not moved', async () => {
    const server = dbms({ awsRegion: undefined });
    const error = await restoreNeo4jSeeded(ctx(), server, manifest, green).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'Neo4jSeed' });
    expect((error as Error).message).toMatch(
      /infrahub-green was created from the seed but is not online on every member after 3 s/,
    );
    expect((error as Error).message).toContain('AWS_REGION');
    expect(server.aliases.get('infrahub')).toBe('infrahub-blue');
    // A failed restore keeps its staged seed for a retry (the lifecycle rule removes it later).
    expect((await stagedKeys()).length).toBeGreaterThan(0);
  });

  it('in place: a seed that fails in the rehearsal leaves the live database untouched', async () => {
    const server = dbms({ awsRegion: undefined });
    await expect(
      restoreNeo4jSeeded(ctx(), server, manifest, { mode: 'in-place', ...fast }),
    ).rejects.toMatchObject({
      name: 'Neo4jSeed',
      message: expect.stringMatching(/^rehearsal \(the live database is untouched\)/),
    });
    expect(server.statements.some((s) => s.includes('recreateDatabase'))).toBe(false);
    expect(server.databases.get('neo4j')?.counts).toEqual({ nodes: 1, relationships: 0 });
    // The throwaway database was dropped again.
    expect([...server.databases.keys()].some((n) => n.startsWith('seedcheck-'))).toBe(false);
  });

  it('a broken chain makes the server report "Unable to start database": failed at once with that statusMessage', async () => {
    const broken = await storeChain(local.s3, 'infrahub_backup_20261123_020000', [
      { name: 'neo4j-2026-11-21T02-00-00.backup', full: true, lowestTx: 1, highestTx: 10 },
      { name: 'neo4j-2026-11-23T02-00-00.backup', full: false, lowestTx: 15, highestTx: 20 },
    ]);
    const server = dbms();
    const started = Date.now();
    await expect(
      restoreNeo4jSeeded({ ...ctx(), backupId: 'infrahub_backup_20261123_020000' }, server, broken, {
        ...green,
        onlineTimeoutMs: 60_000,
      }),
    ).rejects.toMatchObject({
      name: 'Neo4jSeed',
      message: expect.stringContaining('Unable to start database'),
    });
    // Not the bound: the statusMessage ends the wait.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(server.aliases.get('infrahub')).toBe('infrahub-blue');
  });

  it('a cluster member that is down keeps the database off that member: failed, naming the member', async () => {
    const server = dbms({
      members: ['neo4j-1:7687', 'neo4j-2:7687', 'neo4j-3:7687'],
      down: ['neo4j-2:7687'],
    });
    const error = (await restoreNeo4jSeeded(ctx(), server, manifest, green).catch(
      (e: unknown) => e,
    )) as Error;
    expect(error).toMatchObject({ name: 'Neo4jSeed' });
    expect(error.message).toContain('server server-2 (no address): unknown ("Server is unavailable")');
    expect(error.message).toContain('neo4j-1:7687: online');
    expect(server.aliases.get('infrahub')).toBe('infrahub-blue');
  });

  it('counts that differ from the backup fail validation: the alias is not moved, and the new database is named to drop', async () => {
    const server = dbms({ countsFor: () => ({ nodes: 1, relationships: 1 }) });
    await expect(restoreNeo4jSeeded(ctx(), server, manifest, green)).rejects.toMatchObject({
      name: 'RestoreValidation',
      message: expect.stringContaining(
        'The alias infrahub was not moved. Database infrahub-green is left on the server for investigation: drop it (DROP DATABASE `infrahub-green`)',
      ),
    });
    expect(server.aliases.get('infrahub')).toBe('infrahub-blue');
    expect(server.statements.some((s) => s.includes('CREATE OR REPLACE ALIAS'))).toBe(false);
  });

  it('refuses before staging anything: no S3 seed provider, an existing new database, a Community server', async () => {
    const before = (await stagedKeys()).length;
    const noProvider = dbms({ seedProviders: 'FileSeedProvider,URLConnectionSeedProvider' });
    await expect(restoreNeo4jSeeded(ctx(), noProvider, manifest, green)).rejects.toMatchObject({
      name: 'Neo4jSeed',
      message: expect.stringContaining('CloudSeedProvider'),
    });
    const taken = dbms();
    await expect(
      restoreNeo4jSeeded(ctx(), taken, manifest, { ...green, newDatabaseName: 'infrahub-blue' }),
    ).rejects.toMatchObject({
      name: 'IncompatibleBackup',
      message: expect.stringContaining('already exists'),
    });
    const community = dbms({ edition: 'community' });
    await expect(restoreNeo4jSeeded(ctx(), community, manifest, green)).rejects.toMatchObject({
      name: 'IncompatibleBackup',
      message: expect.stringContaining('Enterprise feature'),
    });
    for (const server of [noProvider, taken, community])
      expect(server.statements.some((s) => /CREATE|DROP|ALIAS `/.test(s))).toBe(false);
    expect((await stagedKeys()).length).toBe(before);
  });

  it('SHOW SETTINGS refused (no privilege) on 2025.x: its default (CloudSeedProvider) is assumed, and the restore proceeds', async () => {
    const server = dbms({ seedProviders: null });
    const result = await restoreNeo4jSeeded(ctx(), server, manifest, green);
    expect(result.alias?.database).toBe('infrahub-green');
  });

  it('a chain file that differs from the manifest is never staged, and nothing is created', async () => {
    const [first] = manifest.neo4j?.databases[0]?.files ?? [];
    const tampered = await local.s3.send(
      new PutObjectCommand({ Bucket, Key: fileKey(target, backupId, first as string), Body: 'not a backup' }),
    );
    const forged = {
      ...manifest,
      s3: {
        ...manifest.s3,
        [first as string]: {
          key: fileKey(target, backupId, first as string),
          version_id: tampered.VersionId,
        },
      },
    } as Manifest;
    const server = dbms();
    const c = ctx();
    await expect(restoreNeo4jSeeded(c, server, forged, green)).rejects.toMatchObject({
      name: 'RestoreValidation',
      message: expect.stringContaining('does not match the manifest'),
    });
    expect(server.statements.some((s) => /CREATE|ALIAS `/.test(s))).toBe(false);
    expect((await stagedKeys()).filter((k) => k.includes(c.restoreId))).toEqual([]);
  });
});
