import { describe, expect, it } from 'vitest';
import {
  databasesToExport,
  LEFT_OUT_REASONS,
  leftOutFiles,
  redactedManifest,
} from '../../cli/ops/redacted-export.js';
import type { Manifest } from '../../core/backup/manifest.js';
import {
  type GraphShape,
  type RedactedCopyReport,
  shapeDifferences,
} from '../../core/redaction/graph-copy.js';
import { communityDumpManifest } from '../helpers/manifest.js';

const sha = (c: string) => c.repeat(64);

/** A complete backup of the three components as the manifest step writes it (the fields that matter here). */
function fullManifest(): Manifest {
  const base = communityDumpManifest(['neo4j', 'system']);
  const paths = ['database/neo4j.dump', 'database/system.dump', 'prefect.dump', 'artifacts/a/config.txt'];
  return {
    ...base,
    components: ['database', 'task-manager-db', 'artifacts'],
    target: 'infrahub-prod',
    execution_id: 'arn:aws:states:eu-west-1:123456789012:execution:infrahub-backup-backup:x',
    warnings: ['task "Generate artifact device-01" (id 1) running for 30 hours'],
    retention_class: 'daily',
    checksums: Object.fromEntries(paths.map((p, i) => [p, sha(String(i))])),
    sizes: Object.fromEntries(paths.map((p) => [p, 10])),
    s3: Object.fromEntries(
      paths.map((p) => [
        p,
        { key: `infrahub-prod/${base.backup_id}/${p}`, version_id: 'v1', checksum_sha256: 'x' },
      ]),
    ),
    counts: {
      neo4j: { neo4j: { nodes: 10, relationships: 20 } },
      postgres: { database: 'prefect', tables: { flow_run: 3 } },
    },
    counts_basis: {
      neo4j: { describes_dump: 'verified', counted_tx: 7, dumped_tx: 7, counted_from: 'dumped-store' },
    },
    artifacts: { source: 'path:/srv/storage', objects: 1 },
    durations_ms: { database: 1000 },
    versions: {
      neo4j: { edition: 'community', server: '5.26.26', tool: '5.26.26' },
      postgres: { server: '15.18', tool: '15.18' },
    },
  };
}

const report: RedactedCopyReport = {
  database: 'neo4j',
  nodes: 10,
  relationships: 20,
  labels: { Node: 4 },
  types: { HAS_VALUE: 20 },
  schemaStrings: 5,
  redactedProperties: { value: 7, description: 1 },
  kept: { keptSchema: 2, keptEmpty: 1, keptTimestamp: 3 },
  indexes: ['node_range_node_uuid_uuid'],
  constraints: [],
};

describe('databasesToExport', () => {
  it('takes every user database and its one file, never system', () => {
    expect(databasesToExport(fullManifest(), 'x')).toEqual([{ name: 'neo4j', file: 'database/neo4j.dump' }]);
  });

  it('refuses a backup without a Neo4j database besides system', () => {
    const m = { ...communityDumpManifest(['system']) };
    expect(() => databasesToExport(m, 't/b')).toThrow(/t\/b holds no Neo4j database besides system/);
    const postgresOnly = { ...fullManifest(), components: ['task-manager-db'], neo4j: undefined };
    expect(() => databasesToExport(postgresOnly, 't/b')).toThrow(/holds no Neo4j database besides system/);
  });

  it('refuses an Enterprise chain of several files, naming the database and what to export instead', () => {
    const chain: Manifest = {
      ...communityDumpManifest(),
      neo4j: {
        method: 'backup',
        databases: [
          {
            name: 'neo4j',
            files: ['database/neo4j-2026-11-21T02-00-00.backup', 'database/neo4j-2026-11-22T02-00-00.backup'],
          },
        ],
      },
    };
    expect(() => databasesToExport(chain, 't/b')).toThrow(
      /a chain of 2 backup files for neo4j .* NEO4J_AGGREGATE=true or a full one/,
    );
    const full: Manifest = {
      ...chain,
      neo4j: {
        method: 'backup',
        databases: [{ name: 'neo4j', files: ['database/neo4j-2026-11-21T02-00-00.backup'] }],
      },
    };
    expect(databasesToExport(full, 't/b')).toEqual([
      { name: 'neo4j', file: 'database/neo4j-2026-11-21T02-00-00.backup' },
    ]);
  });
});

describe('leftOutFiles', () => {
  it('names every file not exported, with why: system, the task database, the artifacts', () => {
    expect(leftOutFiles(fullManifest(), ['database/neo4j.dump'])).toEqual([
      { path: 'database/system.dump', reason: LEFT_OUT_REASONS.system },
      { path: 'prefect.dump', reason: LEFT_OUT_REASONS.prefect },
      { path: 'artifacts/ (1 files)', reason: LEFT_OUT_REASONS.artifacts },
    ]);
  });
});

describe('redactedManifest', () => {
  const made = {
    target: 'infrahub-prod',
    dumps: [{ path: 'database/neo4j.dump', sha256: sha('f'), size: 1234, report }],
    leftOut: leftOutFiles(fullManifest(), ['database/neo4j.dump']),
    server: { version: '2025.10.1', edition: 'community' },
    tool: '2025.10.1',
    now: new Date('2026-12-01T10:00:00Z'),
  };

  it("says it is redacted (infrahub-backup's key), holds only the redacted dump, and what was left out", () => {
    const m = redactedManifest(fullManifest(), made);
    expect(m).toMatchObject({
      metadata_version: 2025111200,
      backup_id: 'infrahub_backup_20261121_020000',
      created_at: '2026-11-21T02:00:00Z',
      redacted: true,
      encrypted: false,
      components: ['database'],
      neo4j_edition: 'community',
      checksums: { 'database/neo4j.dump': sha('f') },
      sizes: { 'database/neo4j.dump': 1234 },
      neo4j: { method: 'dump', databases: [{ name: 'neo4j', files: ['database/neo4j.dump'] }] },
      counts: { neo4j: { neo4j: { nodes: 10, relationships: 20 } } },
      counts_basis: { neo4j: { describes_dump: 'verified', counted_from: 'dumped-store' } },
      versions: { neo4j: { edition: 'community', server: '2025.10.1', tool: '2025.10.1' } },
      redaction: {
        redacted_at: '2026-12-01T10:00:00.000Z',
        from: 'infrahub-prod/infrahub_backup_20261121_020000',
        databases: [{ name: 'neo4j', nodes: 10, relationships: 20, replaced: { value: 7, description: 1 } }],
        left_out: made.leftOut,
      },
    });
  });

  it('drops what names the source AWS resources, task titles, and the sections of files not carried', () => {
    const m = redactedManifest(fullManifest(), made) as Record<string, unknown>;
    for (const key of ['s3', 'execution_id', 'warnings', 'artifacts', 'retention_class', 'durations_ms'])
      expect(m[key], key).toBeUndefined();
    expect((m.counts as Record<string, unknown>).postgres).toBeUndefined();
    expect((m.versions as Record<string, unknown>).postgres).toBeUndefined();
    expect(JSON.stringify(m)).not.toMatch(/123456789012|Generate artifact|counted_tx/);
  });
});

describe('shapeDifferences', () => {
  const shape: GraphShape = { nodes: 3, relationships: 2, labels: { A: 2, B: 1 }, types: { R: 2 } };

  it('finds none between equal shapes, and names each count that differs', () => {
    expect(shapeDifferences(shape, structuredClone(shape))).toEqual([]);
    expect(
      shapeDifferences(shape, { nodes: 3, relationships: 1, labels: { A: 2, C: 1 }, types: { R: 1 } }),
    ).toEqual([
      'relationships: 2 in the backup, 1 in the copy',
      'label B: 1 in the backup, 0 in the copy',
      'label C: 0 in the backup, 1 in the copy',
      'type R: 2 in the backup, 1 in the copy',
    ]);
  });
});
