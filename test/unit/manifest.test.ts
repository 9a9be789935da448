import { describe, expect, it } from 'vitest';
import {
  locationProblems,
  ManifestSchema,
  METADATA_VERSION,
  parseManifest,
  validateManifest,
} from '../../core/backup/manifest.js';
import { buildManifest } from '../../core/backup/manifest-build.js';
import type { Neo4jCountsResult, Neo4jResult, PostgresResult } from '../../core/backup/results.js';
import { ErrorNames } from '../../core/errors.js';

const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261121_020000';
const times = { startedAt: '2026-11-21T02:00:01.000Z', finishedAt: '2026-11-21T02:00:11.500Z' };
const sha = (c: string) => c.repeat(64);

const postgres: PostgresResult = {
  target,
  backupId,
  component: 'task-manager-db',
  ...times,
  database: 'prefect',
  files: [
    {
      path: 'prefect.dump',
      size: 1234,
      sha256: sha('a'),
      s3: { key: `${target}/${backupId}/prefect.dump`, versionId: 'v1', checksumSHA256: 'abc=' },
    },
  ],
  tool: { name: 'pg_dump', version: '15.18', compress: '1' },
  server: { version: '15.18', majorVersion: 15 },
  counts: { tables: { 'public.flow_run': 200 } },
};

const neo4j: Neo4jResult = {
  target,
  backupId,
  component: 'database',
  ...times,
  edition: 'community',
  method: 'dump',
  files: [
    { path: 'database/system.dump', size: 10, sha256: sha('c'), s3: { key: 'k2', checksumSHA256: 'c2=' } },
    { path: 'database/neo4j.dump', size: 20, sha256: sha('b'), s3: { key: 'k1', checksumSHA256: 'c1=-3' } },
  ],
  databases: [
    { name: 'neo4j', files: ['database/neo4j.dump'], lastCommittedTx: 42 },
    { name: 'system', files: ['database/system.dump'] },
  ],
  tool: { name: 'neo4j-admin', version: '5.26.26' },
};

const counts: Neo4jCountsResult = {
  target,
  backupId,
  component: 'database-counts',
  ...times,
  server: { version: '5.26.26', edition: 'community' },
  counts: { neo4j: { nodes: 302, relationships: 301 } },
};

describe('manifest', () => {
  it("writes infrahub-backup's keys, with a lowercase hex SHA-256 for every file", () => {
    const m = buildManifest(
      { target, backupId, components: ['database', 'task-manager-db'], toolVersion: '0.1.0' },
      { database: neo4j, 'database-counts': counts, 'task-manager-db': postgres },
    );
    expect(m.metadata_version).toBe(METADATA_VERSION);
    expect(m.metadata_version).toBe(2025111200);
    expect(m.backup_id).toBe(backupId);
    expect(m.created_at).toBe('2026-11-21T02:00:00Z');
    expect(m.tool_version).toBe('0.1.0');
    expect(m.infrahub_version).toBe('unknown');
    expect(m.components).toEqual(['database', 'task-manager-db']);
    expect(m.checksums).toEqual({
      'database/neo4j.dump': sha('b'),
      'database/system.dump': sha('c'),
      'prefect.dump': sha('a'),
    });
    expect(m.neo4j_edition).toBe('community');
    expect(m.redacted).toBe(false);
    expect(m.encrypted).toBe(false);
    expect(Object.keys(m.checksums)).toEqual(['database/neo4j.dump', 'database/system.dump', 'prefect.dump']);
  });

  it('adds our own keys: sizes, S3 versions, tool and server versions, counts, durations', () => {
    const m = buildManifest(
      {
        target,
        backupId,
        components: ['database', 'task-manager-db'],
        toolVersion: '0.1.0',
        executionId: 'exec-1',
        forced: true,
      },
      { database: neo4j, 'database-counts': counts, 'task-manager-db': postgres },
    );
    expect(m.target).toBe(target);
    expect(m.execution_id).toBe('exec-1');
    expect(m.forced).toBe(true);
    expect(m.sizes?.['prefect.dump']).toBe(1234);
    expect(m.s3?.['prefect.dump']).toEqual({
      key: `${target}/${backupId}/prefect.dump`,
      version_id: 'v1',
      checksum_sha256: 'abc=',
    });
    expect(m.versions).toEqual({
      neo4j: { edition: 'community', tool: '5.26.26', server: '5.26.26' },
      postgres: { server: '15.18', tool: '15.18', compress: '1' },
    });
    expect(m.counts?.neo4j).toEqual({ neo4j: { nodes: 302, relationships: 301 } });
    expect(m.counts?.postgres?.tables).toEqual({ 'public.flow_run': 200 });
    expect(m.neo4j?.databases[0]).toEqual({
      name: 'neo4j',
      files: ['database/neo4j.dump'],
      last_committed_tx: 42,
    });
    expect(m.durations_ms).toEqual({ database: 10_500, 'task-manager-db': 10_500 });
    expect(ManifestSchema.parse(JSON.parse(JSON.stringify(m)))).toEqual(m);
  });

  it('refuses to build a manifest when a requested component has no result', () => {
    expect(() =>
      buildManifest(
        { target, backupId, components: ['database', 'task-manager-db'], toolVersion: '0.1.0' },
        { database: neo4j },
      ),
    ).toThrowError(
      expect.objectContaining({
        name: ErrorNames.IncompleteBackup,
        message: expect.stringMatching(/no result from task-manager-db/),
      }),
    );
  });

  it('refuses a result that belongs to another backup', () => {
    const other = { ...postgres, backupId: 'infrahub_backup_20261120_020000' };
    expect(() =>
      buildManifest(
        { target, backupId, components: ['task-manager-db'], toolVersion: '0.1.0' },
        { 'task-manager-db': other },
      ),
    ).toThrowError(/belongs to infrahub-lab\/infrahub_backup_20261120_020000/);
  });

  it('reads a manifest written by infrahub-backup, which omits empty keys and adds its own', () => {
    const theirs = {
      metadata_version: 2025111200,
      backup_id: 'infrahub_backup_20250929_143022',
      created_at: '2025-09-29T14:30:22Z',
      tool_version: 'v1.4.0',
      infrahub_version: '1.5.2',
      components: ['database', 'task-manager-db'],
      checksums: { 'database/neo4j.dump': sha('d'), 'prefect.dump': sha('e') },
      neo4j_edition: 'community',
      capture_complete: true,
    };
    const m = ManifestSchema.parse(theirs);
    expect(m.redacted).toBe(false);
    expect(m.checksums['prefect.dump']).toBe(sha('e'));
    expect((m as Record<string, unknown>).capture_complete).toBe(true);
  });

  it('rejects a manifest whose checksum is not lowercase hex SHA-256', () => {
    const bad = {
      metadata_version: 2025111200,
      backup_id: backupId,
      created_at: 'x',
      tool_version: 'x',
      infrahub_version: 'x',
      components: [],
      checksums: { 'prefect.dump': 'ABC' },
    };
    expect(ManifestSchema.safeParse(bad).success).toBe(false);
  });
});

describe('manifest validation: every reader is protected (issue 12, items 3 and 19)', () => {
  const good = () => ({
    metadata_version: 2025111200,
    backup_id: backupId,
    created_at: '2026-11-21T02:00:00Z',
    tool_version: 'x',
    infrahub_version: '1.5.2',
    components: ['database', 'task-manager-db'],
    checksums: { 'database/neo4j.dump': sha('d'), 'prefect.dump': sha('e') } as Record<string, string>,
    target,
    sizes: { 'database/neo4j.dump': 1, 'prefect.dump': 2 } as Record<string, number>,
    s3: {
      'database/neo4j.dump': { key: `${target}/${backupId}/database/neo4j.dump`, checksum_sha256: 'a=' },
      'prefect.dump': { key: `${target}/${backupId}/prefect.dump`, checksum_sha256: 'b=' },
    } as Record<string, { key: string; checksum_sha256: string }>,
    neo4j: { method: 'dump', databases: [{ name: 'neo4j', files: ['database/neo4j.dump'] }] },
  });
  const source = 'backup_information.json in test.tar.gz';
  const refused = (value: unknown, problem: RegExp) =>
    expect(() => validateManifest(value, source, { target, backupId })).toThrowError(
      expect.objectContaining({
        name: ErrorNames.ManifestError,
        message: expect.stringMatching(problem),
      }),
    );

  it('accepts a well-formed manifest at its own place', () => {
    expect(validateManifest(good(), source, { target, backupId }).checksums).toEqual(good().checksums);
  });

  it.each([
    'artifacts/../../../../tmp/x',
    '/etc/passwd',
    'artifacts\\..\\x',
    'artifacts/a\u0000b',
    'artifacts/a\nb',
    'artifacts//x',
    'artifacts/./x',
    '',
    'tmp/x',
    'backup_information.json',
    '.runner/database.json',
    'database/a/b.dump',
  ])('refuses the unsafe path %j wherever the manifest names it', (path) => {
    const inChecksums = good();
    inChecksums.checksums[path] = sha('f');
    refused(inChecksums, /checksums\..*: path .* (is|has|contains)/s);
    const inS3 = good();
    inS3.s3[path] = { key: `${target}/${backupId}/${path}`, checksum_sha256: 'x=' };
    refused(inS3, /s3\./);
  });

  it("refuses a key outside the backup's own prefix, naming it", () => {
    const other = good();
    other.s3['prefect.dump'] = { key: `infrahub-prod/${backupId}/prefect.dump`, checksum_sha256: 'b=' };
    refused(
      other,
      /s3\.prefect\.dump: key "infrahub-prod\/infrahub_backup_20261121_020000\/prefect\.dump" is not this backup's object/,
    );
    const older = good();
    older.s3['prefect.dump'] = {
      key: `${target}/infrahub_backup_20261120_020000/prefect.dump`,
      checksum_sha256: 'b=',
    };
    refused(older, /is not this backup's object/);
    expect(locationProblems(validateManifest(other, source), 'infrahub-prod', backupId)).toEqual([
      expect.stringMatching(/^target is "infrahub-lab", but it is stored under infrahub-prod/),
      expect.stringMatching(/s3\.database\/neo4j\.dump: key/),
    ]);
    refused(
      { ...good(), backup_id: 'infrahub_backup_20261120_020000' },
      /backup_id is "infrahub_backup_20261120_020000"/,
    );
  });

  it('refuses a backup of nothing, a component without its files, and unknown components', () => {
    refused(
      { ...good(), components: [], checksums: {}, sizes: {}, s3: {}, neo4j: undefined },
      /components: lists no component/,
    );
    refused(
      { ...good(), components: ['database'], checksums: {}, sizes: {}, s3: {}, neo4j: undefined },
      /component database has no database\/ file/,
    );
    const noDump = good();
    delete noDump.checksums['prefect.dump'];
    delete noDump.sizes['prefect.dump'];
    delete noDump.s3['prefect.dump'];
    refused(noDump, /component task-manager-db has no prefect\.dump/);
    refused(
      { ...good(), components: ['database', 'task-manager-db', 'graph'] },
      /components\.2: unknown component "graph"/,
    );
    refused(
      { ...good(), components: ['database'] },
      /prefect\.dump belongs to task-manager-db, which components does not list/,
    );
    // An empty artifact store is a state a backup keeps.
    const emptyStore = {
      ...good(),
      components: ['artifacts'],
      checksums: {},
      sizes: {},
      s3: {},
      neo4j: undefined,
    };
    expect(() => validateManifest(emptyStore, source)).not.toThrow();
  });

  it("refuses Neo4j database names outside Neo4j's rules (no option reaches neo4j-admin)", () => {
    for (const name of ['--help', '-v', 'ab', 'Neo4j', 'a_b', 'db.', 'systemx', `a${'b'.repeat(63)}`]) {
      const bad = good();
      bad.neo4j = { method: 'dump', databases: [{ name, files: ['database/neo4j.dump'] }] };
      refused(bad, /neo4j\.databases\.0\.name: .* (must be a Neo4j database name|is reserved)/);
    }
    // Valid names at the edges of the rules, each database with its own dump.
    const ok = good();
    for (const name of ['system', 'infrahub-2.db']) {
      const file = `database/${name}.dump`;
      ok.checksums[file] = sha('f');
      ok.sizes[file] = 3;
      ok.s3[file] = { key: `${target}/${backupId}/${file}`, checksum_sha256: 'c=' };
    }
    ok.neo4j = {
      method: 'dump',
      databases: [
        { name: 'neo4j', files: ['database/neo4j.dump'] },
        { name: 'system', files: ['database/system.dump'] },
        { name: 'infrahub-2.db', files: ['database/infrahub-2.db.dump'] },
      ],
    };
    expect(() => validateManifest(ok, source)).not.toThrow();
  });

  // Issue 15 review: a restore (seeding, a drill's `database restore`) reads a chain back from its
  // last listed file, so a chain listed out of order would restore an older state.
  it('refuses an Enterprise backup chain not listed oldest first, and accepts it in order', () => {
    const chained = (files: string[]) => {
      const m = good();
      m.checksums = { 'prefect.dump': sha('e') };
      m.sizes = { 'prefect.dump': 2 };
      m.s3 = { 'prefect.dump': m.s3['prefect.dump'] as { key: string; checksum_sha256: string } };
      for (const file of files) {
        m.checksums[file] = sha('f');
        m.sizes[file] = 3;
        m.s3[file] = { key: `${target}/${backupId}/${file}`, checksum_sha256: 'c=' };
      }
      m.neo4j = { method: 'backup', databases: [{ name: 'neo4j', files }] };
      return m;
    };
    const full = 'database/neo4j-2026-11-20T02-00-00.backup';
    const diff = 'database/neo4j-2026-11-21T02-00-00.backup';
    expect(() => validateManifest(chained([full, diff]), source, { target, backupId })).not.toThrow();
    refused(
      chained([diff, full]),
      /neo4j\.databases\.0\.files: the backup chain of neo4j is not listed oldest first/,
    );
  });

  it('names the file and the problem for malformed JSON and wrong shapes', () => {
    expect(() => parseManifest('{"metadata_version": 2025111200,', source)).toThrowError(
      expect.objectContaining({
        name: ErrorNames.ManifestError,
        message: expect.stringMatching(/^backup_information\.json in test\.tar\.gz is not valid JSON: /),
      }),
    );
    expect(() => parseManifest('[]', source)).toThrowError(
      /^backup_information\.json in test\.tar\.gz is not a valid backup_information\.json:\n {2}- /,
    );
  });
});
