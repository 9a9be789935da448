/**
 * What each runner component reports when it has finished: a small JSON object written to
 * `.runner/<component>.json`. The manifest step reads these; large data never passes through them.
 */
import { z } from 'zod';
import type { UploadedObject } from '../s3/upload-stream.js';
import { BackupIdSchema } from './layout.js';

export const Sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256');

export const FileRecordSchema = z.strictObject({
  /** Relative to the backup folder, as the manifest's `checksums` names it. */
  path: z.string().min(1),
  size: z.number().int().nonnegative(),
  sha256: Sha256HexSchema,
  s3: z.strictObject({
    key: z.string().min(1),
    versionId: z.string().optional(),
    /** What S3 keeps: full-object base64 SHA-256, or the composite `...-N` of a multipart upload. */
    checksumSHA256: z.string().min(1),
  }),
});
export type FileRecord = z.infer<typeof FileRecordSchema>;

/** The record of a file stored in S3, from what the upload (or copy) reported. */
export function fileRecord(
  path: string,
  stored: Pick<UploadedObject, 'key' | 'size' | 'sha256' | 'versionId' | 's3ChecksumSHA256'>,
): FileRecord {
  return {
    path,
    size: stored.size,
    sha256: stored.sha256,
    s3: { key: stored.key, versionId: stored.versionId, checksumSHA256: stored.s3ChecksumSHA256 },
  };
}

const common = {
  target: z.string().min(1),
  backupId: BackupIdSchema,
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
};

export const PostgresResultSchema = z.strictObject({
  ...common,
  component: z.literal('task-manager-db'),
  database: z.string(),
  files: z.array(FileRecordSchema).length(1),
  tool: z.strictObject({ name: z.literal('pg_dump'), version: z.string(), compress: z.string() }),
  server: z.strictObject({ version: z.string(), majorVersion: z.number().int() }),
  /** Exact row counts per table, taken in the snapshot that pg_dump dumped. */
  counts: z.strictObject({ tables: z.record(z.string(), z.number().int().nonnegative()) }),
});

export const GraphCountsSchema = z.strictObject({
  nodes: z.number().int().nonnegative(),
  relationships: z.number().int().nonnegative(),
});
export type GraphCounts = z.infer<typeof GraphCountsSchema>;

/**
 * Community: the counts of the stopped store, taken by a read-only server on it right before the dump
 * (containers/runner/src/components/neo4j-counts.ts countStoreOffline), so they describe exactly the
 * dumped data; or why they were not taken (NEO4J_COUNT_OFFLINE=false, or the counting server failed),
 * in which case the manifest falls back on CountNeo4j's Bolt counts (counts_basis `unknown`).
 * `timings` are the milliseconds the count added to the downtime (server start, count, stop).
 */
export const StoreCountsSchema = z.discriminatedUnion('status', [
  z.strictObject({
    status: z.literal('counted'),
    counts: z.record(z.string(), GraphCountsSchema),
    timings: z.strictObject({
      startMs: z.number().nonnegative(),
      countMs: z.number().nonnegative(),
      stopMs: z.number().nonnegative(),
    }),
  }),
  z.strictObject({ status: z.enum(['disabled', 'failed']), reason: z.string() }),
]);
export type StoreCounts = z.infer<typeof StoreCountsSchema>;

/**
 * Community: where the dump read the store and what the DBMS's downtime held
 * (containers/runner/src/components/neo4j.ts backupNeo4jCommunity). `copy`: the stopped store was
 * copied to the task's disk (`copiedBytes` in `copyMs`), the DBMS started again (`startRequestedMs`
 * after the runner began; `dbmsStart`: running after `waitedMs`, `requested` but not yet running when
 * the dump ended (the state machine's StartDbms waits for it), or `failed`), and the copy dumped; `store`: dumped
 * in place with the DBMS stopped throughout, `reason` saying why when a copy was asked for.
 */
export const DumpWindowSchema = z.discriminatedUnion('dumpFrom', [
  z.strictObject({
    dumpFrom: z.literal('copy'),
    copiedBytes: z.number().int().nonnegative(),
    copyMs: z.number().nonnegative(),
    startRequestedMs: z.number().nonnegative(),
    dbmsStart: z.union([
      z.strictObject({ status: z.literal('running'), waitedMs: z.number().nonnegative() }),
      z.strictObject({ status: z.literal('requested') }),
      z.strictObject({ status: z.literal('failed'), reason: z.string() }),
    ]),
  }),
  z.strictObject({ dumpFrom: z.literal('store'), reason: z.string().optional() }),
]);
export type DumpWindow = z.infer<typeof DumpWindowSchema>;

export const Neo4jDatabaseRecordSchema = z.strictObject({
  name: z.string(),
  /** Files of this database (a dump, or the backup chain: full then differentials). */
  files: z.array(z.string()),
  lastCommittedTx: z.number().int().optional(),
  /** Enterprise: the cluster member the backup was taken from, as neo4j-admin named it. */
  from: z.string().optional(),
  /** Enterprise: what this run added to the chain (a full backup, or a differential on `files`' base). */
  taken: z.enum(['full', 'differential']).optional(),
  /** Enterprise: the complete backup whose chain this one continues (its files copied into this backup). */
  baseBackupId: BackupIdSchema.optional(),
  /** Enterprise: why this run took a full backup although differentials were asked for. */
  fullReason: z.string().optional(),
});

/** Enterprise: a cluster member of `--from`, as the runner's own TCP probe found it before the backup. */
export const Neo4jMemberSchema = z.strictObject({
  address: z.string(),
  reachable: z.boolean(),
  /** Why it did not answer (ECONNREFUSED, a timeout). */
  error: z.string().optional(),
});

/**
 * Enterprise: where the backup chain came from and what it cost. `base` is the configured policy
 * (Neo4jBackupChainSchema); bytes: the chain's base files downloaded from the previous backup,
 * copied server-side into this one (CopyObject), and uploaded through the task (every new artifact,
 * and a base file whose copy could not be used).
 */
export const Neo4jChainSchema = z.strictObject({
  base: z.enum(['previous-backup', 'none']),
  baseBackupId: BackupIdSchema.optional(),
  /** Why no previous backup served as the base (none yet, refused, another edition...). */
  reason: z.string().optional(),
  downloadedBytes: z.number().int().nonnegative(),
  copiedBytes: z.number().int().nonnegative(),
  uploadedBytes: z.number().int().nonnegative(),
  /** Bytes of the artifacts this run's neo4j-admin wrote (read from the server). */
  newBytes: z.number().int().nonnegative(),
});

export const Neo4jResultSchema = z.strictObject({
  ...common,
  component: z.literal('database'),
  edition: z.enum(['community', 'enterprise']),
  method: z.enum(['dump', 'backup']),
  files: z.array(FileRecordSchema).min(1),
  databases: z.array(Neo4jDatabaseRecordSchema).min(1),
  tool: z.strictObject({ name: z.literal('neo4j-admin'), version: z.string() }),
  /** Community dumps only: the graph counted from the dumped store, or why not (StoreCountsSchema). */
  storeCounts: StoreCountsSchema.optional(),
  /** Community dumps only: copied or dumped in place, and the DBMS's start (DumpWindowSchema). */
  window: DumpWindowSchema.optional(),
  /** Enterprise: every member of `--from`, in order, and whether it answered the runner's probe. */
  members: z.array(Neo4jMemberSchema).optional(),
  /** Enterprise: the chain's base and the bytes it moved (Neo4jChainSchema). */
  chain: Neo4jChainSchema.optional(),
});

/** Node and relationship counts read over Bolt while the DBMS runs (before a Community stop). */
export const Neo4jCountsResultSchema = z.strictObject({
  ...common,
  component: z.literal('database-counts'),
  server: z.strictObject({ version: z.string(), edition: z.enum(['community', 'enterprise']) }),
  counts: z.record(z.string(), GraphCountsSchema),
  /**
   * Per database, the last committed transaction id the counts describe: `SHOW DATABASES YIELD
   * lastCommittedTxn`, the same before and after counting. Absent where the server reports none
   * (Neo4j Community 5.26 answers null).
   */
  transactions: z.record(z.string(), z.number().int().nonnegative()).optional(),
});

export const ArtifactsResultSchema = z.strictObject({
  ...common,
  component: z.literal('artifacts'),
  source: z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('s3'), bucket: z.string(), prefix: z.string() }),
    z.strictObject({ type: z.literal('path'), path: z.string() }),
  ]),
  files: z.array(FileRecordSchema),
});

export const ComponentResultSchema = z.discriminatedUnion('component', [
  PostgresResultSchema,
  Neo4jResultSchema,
  Neo4jCountsResultSchema,
  ArtifactsResultSchema,
]);

export type PostgresResult = z.infer<typeof PostgresResultSchema>;
export type Neo4jResult = z.infer<typeof Neo4jResultSchema>;
export type Neo4jMember = z.infer<typeof Neo4jMemberSchema>;
export type Neo4jChain = z.infer<typeof Neo4jChainSchema>;
export type Neo4jCountsResult = z.infer<typeof Neo4jCountsResultSchema>;
export type ArtifactsResult = z.infer<typeof ArtifactsResultSchema>;
export type ComponentResult = z.infer<typeof ComponentResultSchema>;
export type ResultName = ComponentResult['component'];

/** A component that failed writes this instead, so the failure notice can name the cause. */
export const ComponentErrorSchema = z.strictObject({
  target: z.string(),
  backupId: z.string(),
  component: z.string(),
  error: z.strictObject({ name: z.string(), message: z.string() }),
  failedAt: z.iso.datetime(),
});
export type ComponentError = z.infer<typeof ComponentErrorSchema>;
