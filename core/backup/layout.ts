/**
 * Where a backup's objects live. Every key derives from the target and the backup id, so a retried
 * step overwrites its own output (a new version) and never duplicates it.
 *
 *   TARGET/infrahub_backup_YYYYMMDD_HHMMSS/
 *       backup_information.json      written last: its presence marks the backup complete
 *       database/<db>.dump           Neo4j Community (neo4j-admin database dump)
 *       database/<db>-<ts>.backup    Neo4j Enterprise (neo4j-admin database backup chain)
 *       prefect.dump                 PostgreSQL custom format (pg_dump -Fc)
 *       artifacts/...                artifact storage objects
 *       .runner/<component>.json     component results, read by the manifest step (not backup files)
 */
import { z } from 'zod';

export const MANIFEST_FILE = 'backup_information.json';
export const RESULTS_DIR = '.runner/';
export const PREFECT_DUMP = 'prefect.dump';
export const DATABASE_DIR = 'database/';
export const ARTIFACTS_DIR = 'artifacts/';

const BACKUP_ID = /^infrahub_backup_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/;

export const BackupIdSchema = z
  .string()
  .regex(BACKUP_ID, 'must look like "infrahub_backup_YYYYMMDD_HHMMSS"')
  .refine((id) => parseBackupId(id) !== undefined, 'must hold a real date and time');

/** `infrahub_backup_YYYYMMDD_HHMMSS` for a moment, in UTC. */
export function backupIdFor(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `infrahub_backup_${date.getUTCFullYear()}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}` +
    `_${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}`
  );
}

/** The UTC moment a backup id names, or undefined if it names none. */
export function parseBackupId(id: string): Date | undefined {
  const m = BACKUP_ID.exec(id);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  const valid =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second;
  return valid ? date : undefined;
}

/** `TARGET/BACKUP_ID/`: the folder of one backup. */
export function backupPrefix(target: string, backupId: string): string {
  return `${target}/${backupId}/`;
}

/** Key of a backup file, from its path relative to the backup folder (as the manifest names it). */
export function fileKey(target: string, backupId: string, relativePath: string): string {
  return `${backupPrefix(target, backupId)}${relativePath}`;
}

export function manifestKey(target: string, backupId: string): string {
  return fileKey(target, backupId, MANIFEST_FILE);
}

export function resultKey(target: string, backupId: string, resultName: string): string {
  return fileKey(target, backupId, `${RESULTS_DIR}${resultName}.json`);
}

/**
 * Why a path (relative to the backup folder, as the manifest names files) is unsafe, or undefined
 * when it is a path a backup may hold: `prefect.dump`, `database/<file>` or `artifacts/<path>`.
 * Refused: empty, absolute, backslashes, NUL or other C0/C1 control characters, bidirectional text
 * controls (overrides, isolates, marks), other invisible format characters (zero-width, BOM), line
 * and paragraph separators, lone UTF-16 surrogates, empty, `.` or `..`
 * segments, the manifest and `.runner/` themselves, and anything outside those three entries. Every
 * reader of a manifest relies on this before a path becomes an S3 key, a file name or a tar entry.
 */
export function backupPathProblem(path: string): string | undefined {
  if (path === '') return 'is empty';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f-\u009f]/.test(path)) return 'contains a control character';
  // Bidirectional overrides and isolates (Unicode TR9) make a listed name read as another one.
  if (/[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/.test(path))
    return 'contains a bidirectional text control';
  // Invisible characters that make a name look like another or break a line when it is listed:
  // format characters (zero-width, BOM U+FEFF, soft hyphen), line and paragraph separators (U+2028,
  // U+2029), and a lone UTF-16 surrogate (no character at all; it cannot be written as UTF-8).
  if (/[\p{Cs}]/u.test(path)) return 'contains a lone UTF-16 surrogate (not a character)';
  if (/[\p{Zl}\p{Zp}]/u.test(path)) return 'contains a line or paragraph separator';
  if (/[\p{Cf}]/u.test(path)) return 'contains an invisible format character (zero-width, BOM)';
  if (path.includes('\\')) return 'contains a backslash';
  if (path.startsWith('/')) return 'is absolute';
  const segments = path.split('/');
  if (segments.some((s) => s === '')) return 'has an empty segment';
  if (segments.some((s) => s === '.' || s === '..')) return 'has a "." or ".." segment';
  if (path.length > 1024) return 'is longer than 1024 characters';
  if (path === PREFECT_DUMP) return undefined;
  if (`${segments[0]}/` === DATABASE_DIR && segments.length === 2) return undefined;
  if (`${segments[0]}/` === ARTIFACTS_DIR && segments.length >= 2) return undefined;
  return `is not a backup file (${PREFECT_DUMP}, ${DATABASE_DIR}<file> or ${ARTIFACTS_DIR}<path>)`;
}

/** `database/neo4j.dump` for a Community dump of a database. */
export function neo4jDumpPath(database: string): string {
  return `${DATABASE_DIR}${database}.dump`;
}

/** `artifacts/<path>`: an artifact object's place in the backup, from its key below the source prefix. */
export function artifactPath(relative: string): string {
  return `${ARTIFACTS_DIR}${relative.replace(/^\/+/, '')}`;
}

/**
 * Restores and drills leave their reports beside the backups, under a root that no target name can
 * take (target names start with a letter): `.restores/TARGET/RESTORE_ID/<step>.json`.
 */
export const RESTORES_ROOT = '.restores/';

/**
 * The notices' per-channel markers (deliverNotice, core/notices/deliver.ts): `.notices/<request id>/<channel>.json`,
 * one small object per channel a notice was sent on, so that a retried notice skips it. Expired by
 * the bucket's lifecycle (infra/constructs/backup-bucket.ts).
 */
export const NOTICES_ROOT = '.notices/';

/**
 * Where the backup state machine's Distributed Map writes its child executions' results
 * (ResultWriter: `<root>backup/<map run id>/manifest.json` and its result files), for the Report
 * step to read; never under a target's prefix.
 */
export const FLEET_RESULTS_ROOT = '.fleet-results/';

const RESTORE_ID = /^(restore|drill)_\d{8}_\d{6}_[a-z0-9]{1,12}$/;
export const RestoreIdSchema = z
  .string()
  .regex(RESTORE_ID, 'must look like "restore_YYYYMMDD_HHMMSS_<suffix>" or "drill_YYYYMMDD_HHMMSS_<suffix>"');

/** `restore_YYYYMMDD_HHMMSS_<suffix>` (or `drill_...`): the moment a run started, and a suffix from its execution name. */
export function restoreIdFor(kind: 'restore' | 'drill', date: Date, executionName: string): string {
  const suffix =
    executionName
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(0, 8) || 'local';
  return `${kind}${backupIdFor(date).slice('infrahub_backup'.length)}_${suffix}`;
}

export function restorePrefix(target: string, restoreId: string): string {
  return `${RESTORES_ROOT}${target}/${restoreId}/`;
}

/** A restore step's report (`restore-postgres`, `validate-neo4j`, ..., or `report`). */
export function restoreStepKey(target: string, restoreId: string, step: string): string {
  return `${restorePrefix(target, restoreId)}${step}.json`;
}

/**
 * Where an Enterprise restore stages the verified backup chain its Neo4j servers seed from (Neo4j
 * Operations Manual, "Create a database from a URI": a `s3://` seed URI may name the last file of a
 * chain, found in the same folder): `.restore-seeds/TARGET/RESTORE_ID/<database>/`. A root of its own,
 * outside every target's backups, so the servers' read grant covers nothing else and a lifecycle rule
 * removes what a failed restore left.
 */
export const RESTORE_SEEDS_ROOT = '.restore-seeds/';

export function seedStagingPrefix(target: string, restoreId: string, database: string): string {
  return `${RESTORE_SEEDS_ROOT}${target}/${restoreId}/${database}/`;
}
