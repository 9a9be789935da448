/**
 * `backup_information.json`: the manifest. It keeps the keys that OpsMill's `infrahub-backup` writes
 * (so either tool reads the other's backups) and adds our own. Written last: its presence is what
 * marks a backup complete.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { Retention } from '../config/schema.js';
import { IncompleteBackupError, ManifestError } from '../errors.js';
import { getJson, putJson } from '../s3/objects.js';
import { TOOL_VERSION } from '../version.js';
import { completeBackupDatesIn, tagObjects } from './catalog.js';
import { BackupIdSchema, manifestKey, parseBackupId, RESULTS_DIR, resultKey } from './layout.js';
import {
  ArtifactsResultSchema,
  type ComponentResult,
  type FileRecord,
  GraphCountsSchema,
  Neo4jCountsResultSchema,
  Neo4jResultSchema,
  PostgresResultSchema,
  Sha256HexSchema,
} from './results.js';
import { RetentionClasses, retentionClass, retentionTagging } from './retention.js';
import { describeProblems, verifyAgainst } from './verify.js';

/** infrahub-backup's current metadata version (their `metadataVersion`). */
export const METADATA_VERSION = 2025111200;
export const TOOL_NAME = 'infrahub-backup-aws';

export const ComponentSchema = z.enum(['database', 'task-manager-db', 'artifacts']);
export type Component = z.infer<typeof ComponentSchema>;

/**
 * The manifest as read: infrahub-backup's keys (several optional, as their writer omits empty ones)
 * and ours, all optional on read so either tool's manifest parses. Unknown keys are kept.
 */
export const ManifestSchema = z.looseObject({
  metadata_version: z.number().int(),
  backup_id: BackupIdSchema,
  created_at: z.string(),
  tool_version: z.string(),
  infrahub_version: z.string(),
  components: z.array(z.string()),
  checksums: z.record(z.string(), Sha256HexSchema).default({}),
  neo4j_edition: z.enum(['community', 'enterprise']).optional(),
  redacted: z.boolean().default(false),
  encrypted: z.boolean().default(false),
  // Ours.
  tool: z.string().optional(),
  target: z.string().optional(),
  execution_id: z.string().optional(),
  forced: z.boolean().optional(),
  /** Grandfather-father-son class (core/backup/retention.ts); every object of the backup carries it as a tag. */
  retention_class: z.enum(RetentionClasses).optional(),
  sizes: z.record(z.string(), z.number().int().nonnegative()).optional(),
  s3: z
    .record(
      z.string(),
      z.strictObject({ key: z.string(), version_id: z.string().optional(), checksum_sha256: z.string() }),
    )
    .optional(),
  versions: z
    .strictObject({
      neo4j: z
        .strictObject({ edition: z.string(), server: z.string().optional(), tool: z.string() })
        .optional(),
      postgres: z
        .strictObject({ server: z.string(), tool: z.string(), compress: z.string().optional() })
        .optional(),
    })
    .optional(),
  counts: z
    .strictObject({
      neo4j: z.record(z.string(), GraphCountsSchema).optional(),
      postgres: z
        .strictObject({ database: z.string(), tables: z.record(z.string(), z.number().int()) })
        .optional(),
    })
    .optional(),
  neo4j: z
    .strictObject({
      method: z.enum(['dump', 'backup']),
      databases: z.array(
        z.strictObject({
          name: z.string(),
          files: z.array(z.string()),
          last_committed_tx: z.number().int().optional(),
        }),
      ),
    })
    .optional(),
  artifacts: z.strictObject({ source: z.string(), objects: z.number().int().nonnegative() }).optional(),
  durations_ms: z.record(z.string(), z.number().nonnegative()).optional(),
  completed_at: z.string().optional(),
});
export type Manifest = z.output<typeof ManifestSchema>;

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
 * Builds the manifest from the component results. Pure: no I/O. Refuses, naming what is missing,
 * when a requested component has no result or a result belongs to another backup.
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
      ...(neo4j && counts ? { neo4j: counts.counts } : {}),
      ...(postgres ? { postgres: { database: postgres.database, tables: postgres.counts.tables } } : {}),
    },
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

/**
 * The manifest step: reads the results, builds the manifest, checks with S3 (heads, not bodies)
 * that every recorded file is there as recorded, and only then writes it, last, with
 * infrahub-backup's formatting (4-space indent). Nothing is written when anything is missing.
 */
export async function writeManifest(
  s3: S3Client,
  bucket: string,
  input: ManifestInput,
): Promise<{ manifest: Manifest; key: string; versionId?: string; results: ComponentResults }> {
  const results = await readResults(s3, bucket, input.target, input.backupId);
  const manifest = buildManifest(input, results);
  const report = await verifyAgainst(s3, bucket, input.target, input.backupId, manifest);
  if (!report.ok) {
    throw new IncompleteBackupError(
      `backup ${input.backupId} of ${input.target} does not match its component results; no manifest written:\n` +
        describeProblems(report).join('\n'),
    );
  }
  let tagging: string | undefined;
  if (input.retention) {
    // Classified against the complete backups already present, then every object re-tagged from
    // "pending" to its class; the manifest, written last, carries the class too.
    const date = parseBackupId(input.backupId) as Date;
    const present = await completeBackupDatesIn(s3, bucket, input.target, date.getUTCFullYear());
    const cls = retentionClass(date, present, input.retention);
    manifest.retention_class = cls;
    const files = Object.values(manifest.s3 ?? {}).map((f) => ({ key: f.key, versionId: f.version_id }));
    // The component results just read are part of the backup too (a stray failure record is not:
    // it keeps "pending" and expires).
    const records = Object.keys(results).map((name) => ({
      key: resultKey(input.target, input.backupId, name),
    }));
    await tagObjects(s3, bucket, [...files, ...records], cls);
    tagging = retentionTagging(cls);
  }
  const key = manifestKey(input.target, input.backupId);
  const written = await putJson(s3, bucket, key, manifest, 4, tagging);
  return { manifest, key, versionId: written.versionId, results };
}

/** Reads and validates a backup's manifest; undefined when the backup has none (incomplete or failed). */
export async function readManifest(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
): Promise<Manifest | undefined> {
  try {
    return await getJson(s3, bucket, manifestKey(target, backupId), ManifestSchema);
  } catch (err) {
    if (err instanceof z.ZodError || err instanceof SyntaxError) {
      throw new ManifestError(`manifest of ${target}/${backupId} is unreadable: ${err.message}`);
    }
    throw err;
  }
}
