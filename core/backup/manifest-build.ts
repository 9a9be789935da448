/**
 * From the runner's component results (`.runner/<component>.json`) to a manifest: reading and
 * validating the results, and building the manifest document (core/backup/manifest.ts) from them,
 * with the counts tied to the dumped data (`counts_basis`). No S3 writes.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { Retention } from '../config/schema.js';
import { IncompleteBackupError } from '../errors.js';
import { getJson } from '../s3/objects.js';
import { TOOL_VERSION } from '../version.js';
import { parseBackupId, RESULTS_DIR, resultKey } from './layout.js';
import { type Component, type Manifest, METADATA_VERSION, TOOL_NAME } from './manifest.js';
import {
  ArtifactsResultSchema,
  type ComponentResult,
  type FileRecord,
  type GraphCounts,
  Neo4jCountsResultSchema,
  Neo4jResultSchema,
  PostgresResultSchema,
} from './results.js';

export interface ManifestInput {
  target: string;
  backupId: string;
  /** Components this backup was asked to capture; each must have reported a result. */
  components: readonly Component[];
  /** Defaults to this tool's version. */
  toolVersion?: string;
  infrahubVersion?: string;
  executionId?: string;
  forced?: boolean;
  /** Recorded as `warnings` when not empty (stale Infrahub tasks the preflight gate let pass). */
  warnings?: readonly string[];
  /** When the backup started (defaults to the time in the backup id). */
  createdAt?: Date;
  completedAt?: Date;
  /** With a retention policy, the backup gets its class: objects tagged, the class in the manifest. */
  retention?: Retention;
}

/** Where each component's result comes from, by its name in `.runner/`. */
const resultSchemas = {
  database: Neo4jResultSchema,
  'database-counts': Neo4jCountsResultSchema,
  'task-manager-db': PostgresResultSchema,
  artifacts: ArtifactsResultSchema,
} as const;

export type ComponentResults = { [K in keyof typeof resultSchemas]?: z.output<(typeof resultSchemas)[K]> };

const ms = (r: { startedAt: string; finishedAt: string }) =>
  Date.parse(r.finishedAt) - Date.parse(r.startedAt);

/**
 * Ties each database's counts (CountNeo4j, over Bolt, while the DBMS ran) to the data dumped: the
 * transaction id the counts were taken at against the dumped store's last committed transaction
 * (`neo4j-admin database info` on the stopped store, recorded by the dump). See `counts_basis`.
 */
export function countsBasis(
  counts: z.infer<typeof Neo4jCountsResultSchema>,
  dumped: { databases: ReadonlyArray<{ name: string; lastCommittedTx?: number | undefined }> },
): NonNullable<Manifest['counts_basis']> {
  const basis: NonNullable<Manifest['counts_basis']> = {};
  for (const [db, graph] of Object.entries(counts.counts)) {
    const countedTx = counts.transactions?.[db];
    const dumpedTx = dumped.databases.find((d) => d.name === db)?.lastCommittedTx;
    const ids = {
      ...(countedTx !== undefined ? { counted_tx: countedTx } : {}),
      ...(dumpedTx !== undefined ? { dumped_tx: dumpedTx } : {}),
    };
    if (countedTx === undefined || dumpedTx === undefined) basis[db] = { describes_dump: 'unknown', ...ids };
    else if (countedTx === dumpedTx) basis[db] = { describes_dump: 'verified', ...ids };
    else basis[db] = { describes_dump: 'differs', ...ids, counted: graph };
  }
  return basis;
}

/** Counts taken from the stopped store right before it was dumped: `verified` by construction. */
function storeCountsBasis(
  counts: Record<string, GraphCounts>,
  dumped: { databases: ReadonlyArray<{ name: string; lastCommittedTx?: number | undefined }> },
): NonNullable<Manifest['counts_basis']> {
  return Object.fromEntries(
    Object.keys(counts).map((db) => {
      const tx = dumped.databases.find((d) => d.name === db)?.lastCommittedTx;
      return [
        db,
        {
          describes_dump: 'verified' as const,
          counted_from: 'dumped-store' as const,
          ...(tx !== undefined ? { counted_tx: tx, dumped_tx: tx } : {}),
        },
      ];
    }),
  );
}

/** Bolt counts of a Community dump whose store was not counted: each basis says so, and why. */
function withStoreCountReason(
  basis: NonNullable<Manifest['counts_basis']>,
  store: { status: string; reason?: string } | undefined,
): NonNullable<Manifest['counts_basis']> {
  return Object.fromEntries(
    Object.entries(basis).map(([db, b]) => [
      db,
      {
        ...b,
        counted_from: 'bolt' as const,
        ...(store?.reason ? { store_count: `${store.status}: ${store.reason}` } : {}),
      },
    ]),
  );
}

/** The counts a restore may compare with: those of databases whose counts are not known to differ from the dump. */
function comparableCounts(
  counts: Record<string, GraphCounts>,
  basis: NonNullable<Manifest['counts_basis']> | undefined,
): Record<string, GraphCounts> {
  return Object.fromEntries(
    Object.entries(counts).filter(([db]) => basis?.[db]?.describes_dump !== 'differs'),
  );
}

/**
 * Builds the manifest from the component results. Pure: no I/O.
 * @throws IncompleteBackupError naming what is missing, when a requested component has no result,
 *   a result belongs to another backup or two components wrote the same file.
 */
export function buildManifest(input: ManifestInput, results: ComponentResults): Manifest {
  const missing = input.components.filter((c) => !results[c]);
  if (missing.length > 0) {
    throw new IncompleteBackupError(
      `backup ${input.backupId} of ${input.target} is incomplete: no result from ${missing.join(', ')}; no manifest written`,
    );
  }
  const all: ComponentResult[] = Object.values(results).filter((r): r is ComponentResult => r !== undefined);
  for (const r of all) {
    if (r.target !== input.target || r.backupId !== input.backupId) {
      throw new IncompleteBackupError(
        `result of ${r.component} belongs to ${r.target}/${r.backupId}, not ${input.target}/${input.backupId}`,
      );
    }
  }

  const files: FileRecord[] = input.components.flatMap((c) => results[c]?.files ?? []);
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new IncompleteBackupError(`two components wrote ${f.path}`);
    seen.add(f.path);
  }
  const sorted = [...files].sort((a, b) => a.path.localeCompare(b.path));
  const created = input.createdAt ?? parseBackupId(input.backupId) ?? new Date();

  const neo4j = input.components.includes('database') ? results.database : undefined;
  const counts = results['database-counts'];
  const postgres = input.components.includes('task-manager-db') ? results['task-manager-db'] : undefined;
  const artifacts = input.components.includes('artifacts') ? results.artifacts : undefined;

  const store = neo4j?.storeCounts;
  // Counts of the dumped store itself (Community) describe the dump by construction; otherwise the
  // Bolt counts are tied to the dump by transaction id where the server reports one.
  const graphCounts = store?.status === 'counted' ? store.counts : counts?.counts;
  const basis = !neo4j
    ? undefined
    : store?.status === 'counted'
      ? storeCountsBasis(store.counts, neo4j)
      : counts
        ? withStoreCountReason(countsBasis(counts, neo4j), store)
        : undefined;

  const durations: Record<string, number> = {};
  if (neo4j) durations.database = ms(neo4j);
  if (postgres) durations['task-manager-db'] = ms(postgres);
  if (artifacts) durations.artifacts = ms(artifacts);

  return {
    metadata_version: METADATA_VERSION,
    backup_id: input.backupId,
    created_at: created.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    tool_version: input.toolVersion ?? TOOL_VERSION,
    infrahub_version: input.infrahubVersion ?? 'unknown',
    components: [...input.components],
    checksums: Object.fromEntries(sorted.map((f) => [f.path, f.sha256])),
    ...(neo4j ? { neo4j_edition: neo4j.edition } : {}),
    redacted: false,
    encrypted: false,
    tool: TOOL_NAME,
    target: input.target,
    ...(input.executionId ? { execution_id: input.executionId } : {}),
    forced: input.forced ?? false,
    ...(input.warnings?.length ? { warnings: [...input.warnings] } : {}),
    sizes: Object.fromEntries(sorted.map((f) => [f.path, f.size])),
    s3: Object.fromEntries(
      sorted.map((f) => [
        f.path,
        {
          key: f.s3.key,
          ...(f.s3.versionId ? { version_id: f.s3.versionId } : {}),
          checksum_sha256: f.s3.checksumSHA256,
        },
      ]),
    ),
    versions: {
      ...(neo4j
        ? {
            neo4j: {
              edition: neo4j.edition,
              tool: neo4j.tool.version,
              ...(counts ? { server: counts.server.version } : {}),
            },
          }
        : {}),
      ...(postgres
        ? {
            postgres: {
              server: postgres.server.version,
              tool: postgres.tool.version,
              compress: postgres.tool.compress,
            },
          }
        : {}),
    },
    counts: {
      ...(neo4j && graphCounts ? { neo4j: comparableCounts(graphCounts, basis) } : {}),
      ...(postgres ? { postgres: { database: postgres.database, tables: postgres.counts.tables } } : {}),
    },
    ...(basis ? { counts_basis: basis } : {}),
    ...(neo4j
      ? {
          neo4j: {
            method: neo4j.method,
            databases: neo4j.databases.map((d) => ({
              name: d.name,
              files: d.files,
              ...(d.lastCommittedTx !== undefined ? { last_committed_tx: d.lastCommittedTx } : {}),
            })),
          },
        }
      : {}),
    ...(artifacts
      ? {
          artifacts: {
            source:
              artifacts.source.type === 's3'
                ? `s3://${artifacts.source.bucket}/${artifacts.source.prefix}`
                : artifacts.source.path,
            objects: artifacts.files.length,
          },
        }
      : {}),
    durations_ms: durations,
    completed_at: (input.completedAt ?? new Date()).toISOString(),
  };
}

/** Reads the component results of a backup from `.runner/`, validating each. */
export async function readResults(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
): Promise<ComponentResults> {
  const read = async ([name, schema]: [string, z.ZodType]) => {
    try {
      return [name, await getJson(s3, bucket, resultKey(target, backupId, name), schema)] as const;
    } catch (err) {
      if (err instanceof z.ZodError) {
        throw new IncompleteBackupError(
          `result ${RESULTS_DIR}${name}.json of ${backupId} is malformed: ${err.message}`,
        );
      }
      throw err;
    }
  };
  const entries = await Promise.all(Object.entries(resultSchemas).map(read));
  return Object.fromEntries(entries.filter(([, value]) => value !== undefined)) as ComponentResults;
}
