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
