/**
 * `backup_information.json`: the manifest document. It keeps the keys that OpsMill's `infrahub-backup`
 * writes (so either tool reads the other's backups) and adds our own. This module holds its shape,
 * its checks (structural and location problems), parsing and reading it from S3; building it from
 * the runner's results is core/backup/manifest-build.ts, writing it (last: its presence is what marks
 * a backup complete) core/backup/seal.ts, finding the latest complete backup core/backup/catalog.ts.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { ManifestError } from '../errors.js';
import { neo4jDatabaseNameProblem } from '../neo4j-names.js';
import { getJson } from '../s3/objects.js';
import {
  BackupIdSchema,
  backupPathProblem,
  DATABASE_DIR,
  fileKey,
  MANIFEST_FILE,
  manifestKey,
  PREFECT_DUMP,
} from './layout.js';
import { GraphCountsSchema, Sha256HexSchema } from './results.js';
import { RetentionClasses } from './retention.js';

/** infrahub-backup's current metadata version (their `metadataVersion`). */
export const METADATA_VERSION = 2025111200;
export const TOOL_NAME = 'infrahub-backup-aws';

export const ComponentSchema = z.enum(['database', 'task-manager-db', 'artifacts']);
export type Component = z.infer<typeof ComponentSchema>;

/**
 * An ISO 8601 date and time (`2026-11-21T02:00:00Z`, `2026-11-21T02:00:00.123456+01:00`; Python's
 * `isoformat()` without a zone is read as UTC), the form both tools write for `created_at` and
 * `completed_at`: an export uses it as the tar entries' time.
 */
function isTimestamp(value: string): boolean {
  return (
    /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$/.test(value) &&
    !Number.isNaN(Date.parse(value.replace(' ', 'T').replace(/(\.\d{3})\d+/, '$1')))
  );
}
const TIMESTAMP_MESSAGE = 'must be an ISO 8601 date and time, such as 2026-11-21T02:00:00Z';

/**
 * Own keys named `__proto__` anywhere in a parsed manifest (JSON.parse keeps them as data): a record
 * schema would assign them to the prototype and silently drop the entry, so they are refused by path.
 */
function prototypeKeys(value: unknown, at: string[] = [], depth = 0): string[] {
  if (value === null || typeof value !== 'object' || depth > 8) return [];
  const found: string[] = [];
  for (const key of Object.keys(value)) {
    if (key === '__proto__') found.push([...at, key].join('.'));
    else found.push(...prototypeKeys((value as Record<string, unknown>)[key], [...at, key], depth + 1));
  }
  return found;
}

/**
 * The manifest as read: infrahub-backup's keys (several optional, as their writer omits empty ones)
 * and ours, all optional on read so either tool's manifest parses. Unknown keys are kept. Checked
 * beyond the shapes (`structuralProblems`): every path is a safe backup path, the components are
 * known and hold their files, Neo4j database names follow Neo4j's rules.
 */
const ManifestShape = z.looseObject({
  metadata_version: z.number().int(),
  backup_id: BackupIdSchema,
  created_at: z.string().refine(isTimestamp, TIMESTAMP_MESSAGE),
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
  /** What the backup went ahead despite (stale Infrahub tasks the preflight gate let pass), one line each. */
  warnings: z.array(z.string()).optional(),
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
        .strictObject({
          database: z.string(),
          tables: z.record(z.string(), z.number().int().nonnegative()),
        })
        .optional(),
    })
    .optional(),
  /**
   * Whether each database's recorded counts describe exactly the data dumped (ours; absent in older
   * manifests and imported archives): `verified` when the transaction id the counts were taken at
   * equals the dumped store's last committed transaction; `differs` when they differ (a write came
   * between counting and the dump: the counts are kept here as `counted`, not in `counts.neo4j`, so
   * no restore compares with them); `unknown` when either id is missing (Community reports none over
   * Bolt), so a restore reports a difference as a warning instead of failing. Community backups
   * count the stopped store itself before dumping it (`counted_from: dumped-store`, `verified`);
   * they fall back on Bolt counts (`unknown`, `store_count` saying why) only when that is disabled
   * (NEO4J_COUNT_OFFLINE=false) or failed.
   */
  counts_basis: z
    .record(
      z.string(),
      z.strictObject({
        describes_dump: z.enum(['verified', 'differs', 'unknown']),
        counted_tx: z.number().int().optional(),
        dumped_tx: z.number().int().optional(),
        counted: GraphCountsSchema.optional(),
        /**
         * Where the counts come from: `dumped-store` (Community: a read-only server on the stopped
         * store, right before the dump: always `verified`), or `bolt` (CountNeo4j on the running DBMS).
         */
        counted_from: z.enum(['dumped-store', 'bolt']).optional(),
        /** Why the dumped store was not counted, when a Community backup fell back on Bolt counts. */
        store_count: z.string().optional(),
      }),
    )
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
  completed_at: z.string().refine(isTimestamp, TIMESTAMP_MESSAGE).optional(),
});

export const ManifestSchema = ManifestShape.superRefine((manifest, ctx) => {
  for (const problem of structuralProblems(manifest)) ctx.addIssue({ code: 'custom', ...problem });
});
export type Manifest = z.output<typeof ManifestShape>;

type Problem = { path: Array<string | number>; message: string };

/** Which component a backup file belongs to, from its path. */
export function componentOf(path: string): Component | undefined {
  if (path === PREFECT_DUMP) return 'task-manager-db';
  if (path.startsWith(DATABASE_DIR)) return 'database';
  if (path.startsWith('artifacts/')) return 'artifacts';
  return undefined;
}

/**
 * What is wrong with a manifest beyond its shape, with no I/O and without knowing where it was read
 * from: unsafe paths (as keys of `checksums`, `sizes`, `s3` or in `neo4j.databases[].files`), entries
 * of `sizes`/`s3` without a checksum and (when `sizes`/`s3` is present) checksums without their entry, no component or an unknown or repeated one, a component
 * without its files (`database` needs `database/` files, `task-manager-db` needs `prefect.dump`;
 * `artifacts` may be empty: an empty artifact store is a state to keep), a
 * file of a component the backup does not list, and Neo4j database names
 * outside Neo4j's rules.
 */
export function structuralProblems(manifest: z.output<typeof ManifestShape>): Problem[] {
  const problems: Problem[] = [];
  const paths = Object.keys(manifest.checksums);
  for (const [section, record] of [
    ['checksums', manifest.checksums],
    ['sizes', manifest.sizes ?? {}],
    ['s3', manifest.s3 ?? {}],
  ] as const) {
    for (const path of Object.keys(record)) {
      const unsafe = backupPathProblem(path);
      if (unsafe) problems.push({ path: [section, path], message: `path ${JSON.stringify(path)} ${unsafe}` });
      else if (section !== 'checksums' && !(path in manifest.checksums))
        problems.push({ path: [section, path], message: `${path} has no entry in checksums` });
    }
  }
  // Where `s3` (or `sizes`) is recorded at all, it is recorded for every file: a checksummed file
  // without its stored copy would pass a verification that walks `checksums` and be skipped by a
  // reader that walks `s3` (a restore writing only some of the artifacts and calling it success).
  for (const [section, record] of [
    ['s3', manifest.s3],
    ['sizes', manifest.sizes],
  ] as const) {
    if (!record) continue;
    for (const path of paths)
      if (!(path in record) && !backupPathProblem(path))
        problems.push({ path: ['checksums', path], message: `${path} has no entry in ${section}` });
  }
  if (manifest.components.length === 0) {
    problems.push({ path: ['components'], message: 'lists no component: a backup holds at least one' });
  }
  const seen = new Set<string>();
  manifest.components.forEach((component, i) => {
    if (!ComponentSchema.safeParse(component).success) {
      problems.push({
        path: ['components', i],
        message: `unknown component ${JSON.stringify(component)} (known: ${ComponentSchema.options.join(', ')})`,
      });
    } else if (seen.has(component)) {
      problems.push({ path: ['components', i], message: `${component} is listed twice` });
    }
    seen.add(component);
  });
  const safe = paths.filter((p) => backupPathProblem(p) === undefined);
  if (seen.has('database') && !safe.some((p) => componentOf(p) === 'database'))
    problems.push({ path: ['checksums'], message: `component database has no ${DATABASE_DIR} file` });
  if (seen.has('task-manager-db') && !safe.includes(PREFECT_DUMP))
    problems.push({ path: ['checksums'], message: `component task-manager-db has no ${PREFECT_DUMP}` });
  for (const path of safe) {
    const component = componentOf(path) as Component;
    if (!seen.has(component))
      problems.push({
        path: ['checksums', path],
        message: `${path} belongs to ${component}, which components does not list`,
      });
  }
  manifest.neo4j?.databases.forEach((db, i) => {
    const bad = neo4jDatabaseNameProblem(db.name);
    if (bad)
      problems.push({
        path: ['neo4j', 'databases', i, 'name'],
        message: `${JSON.stringify(db.name)} ${bad}`,
      });
    // A chain is restored from its last file back to its full backup (neo4j-admin database
    // restore, seeding): its files are listed oldest first, as their timestamped names sort.
    if (manifest.neo4j?.method === 'backup' && db.files.length > 1) {
      const sorted = [...db.files].sort();
      if (sorted.some((f, j) => f !== db.files[j]))
        problems.push({
          path: ['neo4j', 'databases', i, 'files'],
          message: `the backup chain of ${db.name} is not listed oldest first (${db.files.join(', ')}): a restore reads it back from its last file`,
        });
    }
    db.files.forEach((file, j) => {
      if (componentOf(file) !== 'database' || backupPathProblem(file))
        problems.push({
          path: ['neo4j', 'databases', i, 'files', j],
          message: `${JSON.stringify(file)} is not a ${DATABASE_DIR} file`,
        });
      else if (!(file in manifest.checksums))
        problems.push({
          path: ['neo4j', 'databases', i, 'files', j],
          message: `${file} has no entry in checksums`,
        });
    });
  });
  problems.push(...databaseFileProblems(manifest, safe));
  for (const name of Object.keys(manifest.counts?.neo4j ?? {})) {
    const bad = neo4jDatabaseNameProblem(name);
    if (bad) problems.push({ path: ['counts', 'neo4j', name], message: `${JSON.stringify(name)} ${bad}` });
  }
  return problems;
}

/** The database a `database/` file holds and its kind, or undefined for a file of no known kind. */
function databaseFileOf(path: string): { db: string; kind: 'dump' | 'backup' } | undefined {
  const name = path.slice(DATABASE_DIR.length);
  const dump = /^([^/]+)\.dump$/.exec(name);
  if (dump?.[1] && !neo4jDatabaseNameProblem(dump[1])) return { db: dump[1], kind: 'dump' };
  const backup = /^([^/]+?)(-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}[^/]*)?\.backup$/.exec(name);
  if (backup?.[1] && !neo4jDatabaseNameProblem(backup[1])) return { db: backup[1], kind: 'backup' };
  return undefined;
}

/**
 * The `database/` files must be restorable as recorded (issue 12 review 6, items 3 and 4): each is a
 * Community dump `database/<db>.dump` or an Enterprise backup `database/<db>[-<timestamp>].backup` of
 * a valid database name; a `database` component holds at least one database other than `system`
 * (a restore replaces PostgreSQL first, so a component that cannot load Neo4j must be refused before);
 * and the `neo4j` section, when present, names exactly these files: every file listed once, under
 * its database's name and of its method's kind (a `.dump` in an Enterprise `backup` section is refused).
 */
function databaseFileProblems(manifest: z.output<typeof ManifestShape>, safe: readonly string[]): Problem[] {
  const problems: Problem[] = [];
  const files = safe.filter((p) => componentOf(p) === 'database');
  const kinds = new Map<string, { db: string; kind: 'dump' | 'backup' }>();
  for (const path of files) {
    const kind = databaseFileOf(path);
    if (!kind)
      problems.push({
        path: ['checksums', path],
        message: `${path} is neither a Neo4j dump (${DATABASE_DIR}<database>.dump) nor an Enterprise backup (${DATABASE_DIR}<database>-<timestamp>.backup)`,
      });
    else kinds.set(path, kind);
  }
  if (files.length > 0 && ![...kinds.values()].some((k) => k.db !== 'system'))
    problems.push({
      path: ['checksums'],
      message: `component database holds no database other than system to load (${files.join(', ')}): nothing of Infrahub's graph would be restored`,
    });
  const section = manifest.neo4j;
  if (!section) return problems;
  const listed = new Map<string, string>();
  section.databases.forEach((db, i) => {
    db.files.forEach((file, j) => {
      const kind = kinds.get(file);
      if (!kind) return;
      const where = ['neo4j', 'databases', i, 'files', j];
      if (listed.has(file))
        problems.push({ path: where, message: `${file} is listed for ${listed.get(file)} and ${db.name}` });
      listed.set(file, db.name);
      if (kind.db !== db.name)
        problems.push({ path: where, message: `${file} holds database ${kind.db}, not ${db.name}` });
      if (kind.kind !== section.method)
        problems.push({
          path: where,
          message: `${file} is ${kind.kind === 'dump' ? 'a dump' : 'an Enterprise backup'}, but the neo4j method is ${section.method}`,
        });
    });
  });
  for (const path of kinds.keys())
    if (!listed.has(path))
      problems.push({
        path: ['neo4j', 'databases'],
        message: `${path} is in checksums but no database of the neo4j section lists it: it would never be restored`,
      });
  return problems;
}

/**
 * What is wrong with a manifest read from `TARGET/BACKUP_ID/`: its `backup_id` and `target` must be
 * those, and every S3 key it records must be the key of that very file inside this backup's prefix
 * (`TARGET/BACKUP_ID/<path>`), so no reader (verify, the restore plan and steps, export) ever reads
 * an object of another backup or another target through it. One line per problem, naming the key.
 */
export function locationProblems(manifest: Manifest, target: string, backupId: string): string[] {
  const problems: string[] = [];
  if (manifest.backup_id !== backupId)
    problems.push(`backup_id is ${JSON.stringify(manifest.backup_id)}, but it is stored as ${backupId}`);
  if (manifest.target !== undefined && manifest.target !== target)
    problems.push(`target is ${JSON.stringify(manifest.target)}, but it is stored under ${target}`);
  for (const [path, stored] of Object.entries(manifest.s3 ?? {})) {
    const expected = fileKey(target, backupId, path);
    if (stored.key !== expected)
      problems.push(
        `s3.${path}: key ${JSON.stringify(stored.key)} is not this backup's object (${expected}); a backup reads only objects inside its own prefix`,
      );
  }
  return problems;
}

/** How many problems an error message lists before it says how many more there are. */
export const LISTED_PROBLEMS = 20;

/**
 * Problems as the lines of an error message, `  - <problem>` each: the first `max`, then one line
 * saying how many more (a manifest listing 180,000 missing files makes a message of 21 lines, not
 * of 180,000).
 */
export function listProblems(problems: readonly string[], max = LISTED_PROBLEMS): string {
  const shown = problems.slice(0, max).map((p) => `  - ${p}`);
  if (problems.length > max) shown.push(`  … and ${problems.length - max} more`);
  return shown.join('\n');
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const at = issue.path.map(String).join('.');
    return at ? `${at}: ${issue.message}` : issue.message;
  });
}

/**
 * Parses a manifest's text (from S3 or an archive), naming `source` and every problem: malformed
 * JSON, then as `validateManifest`. Throws ManifestError; returns the validated manifest.
 */
export function parseManifest(
  text: string,
  source: string,
  location?: { target: string; backupId: string },
): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(
      `${source} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return validateManifest(value, source, location);
}

/**
 * Validates a parsed manifest: its shape, the structural problems (`structuralProblems`) and, given
 * where it was read from (`location`), the location problems (`locationProblems`). Throws
 * ManifestError naming `source` and one line per problem.
 */
export function validateManifest(
  value: unknown,
  source: string,
  location?: { target: string; backupId: string },
): Manifest {
  const forbidden = prototypeKeys(value);
  if (forbidden.length > 0)
    throw new ManifestError(
      `${source} is not a valid ${MANIFEST_FILE}:\n${listProblems(forbidden.map((p) => `${p}: the key "__proto__" is not allowed`))}`,
    );
  const parsed = ManifestSchema.safeParse(value);
  const problems = parsed.success
    ? location
      ? locationProblems(parsed.data, location.target, location.backupId)
      : []
    : describeIssues(parsed.error);
  if (!parsed.success || problems.length > 0) {
    throw new ManifestError(`${source} is not a valid ${MANIFEST_FILE}:\n${listProblems(problems)}`);
  }
  return parsed.data;
}

/**
 * Reads and validates a backup's manifest (`validateManifest`, with its location): undefined when the
 * backup has none (incomplete or failed). Throws ManifestError naming the key and each problem when
 * it is malformed, unsafe (a path outside the backup's entries) or points outside its own prefix.
 */
export async function readManifest(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
): Promise<Manifest | undefined> {
  const key = manifestKey(target, backupId);
  let value: unknown;
  try {
    value = await getJson(s3, bucket, key, z.unknown());
  } catch (err) {
    if (err instanceof SyntaxError)
      throw new ManifestError(`manifest of ${target}/${backupId} (${key}) is not valid JSON: ${err.message}`);
    throw err;
  }
  if (value === undefined) return undefined;
  return validateManifest(value, `manifest of ${target}/${backupId} (${key})`, { target, backupId });
}
