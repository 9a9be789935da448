/**
 * Sealing a backup: what makes its objects a complete backup, done once for every way a backup is
 * made (the manifest step after the runner's components, and the import of an infrahub-backup
 * tarball). The backup is classified against the target's complete backups already present
 * (core/backup/retention.ts), every object it holds re-tagged from "pending" to that class, and only
 * then its manifest written, last: its presence is what marks the backup complete, so a backup
 * interrupted before this point stays incomplete and its "pending" objects expire.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Retention } from '../config/schema.js';
import { IncompleteBackupError, ManifestError } from '../errors.js';
import { putJson } from '../s3/objects.js';
import { completeBackupDatesIn, tagObjects } from './catalog.js';
import { manifestKey, parseBackupId, resultKey } from './layout.js';
import { type Manifest, validateManifest } from './manifest.js';
import { buildManifest, type ComponentResults, type ManifestInput, readResults } from './manifest-build.js';
import { type RetentionClass, retentionClass, retentionTagging } from './retention.js';
import { describeProblems, verifyAgainst } from './verify.js';

/** PutObjectTagging requests at once when a backup's objects are classified. */
export const TAG_CONCURRENCY = 48;

/** An S3 object version of the backup that is not one of the manifest's files (a `.runner/` record). */
export interface SealedRecord {
  key: string;
  versionId?: string | undefined;
}

export interface SealOptions {
  target: string;
  backupId: string;
  /** The deployment's retention policy; without it the backup keeps no class and its objects are not re-tagged. */
  retention?: Retention | undefined;
  /**
   * Objects of the backup besides the manifest's files (`manifest.s3`): the runner's component
   * results or an import's record. They are tagged with the files; anything not listed (a stray
   * failure record) keeps "pending" and expires.
   */
  records?: readonly SealedRecord[];
}

/**
 * Seals a backup whose files are all in S3 and checked: with `retention`, classifies it against the
 * target's complete backups of the same year, tags every file of `manifest.s3` and every record with
 * the class (one PutObjectTagging per object version, TAG_CONCURRENCY at once: no list or batch call
 * sets tags; S3 API Reference, "PutObjectTagging"), records the class as `retention_class`; then writes
 * `TARGET/BACKUP_ID/backup_information.json` with infrahub-backup's formatting (4-space indent),
 * tagged with the class too. The manifest must have been validated for this location
 * (`validateManifest(manifest, …, { target, backupId })`) and its files checked by the caller.
 *
 * @returns the sealed manifest (a copy, with `retention_class` when classified), its key and version id
 * @throws StorageError when S3 cannot be listed, tagged or written (the manifest is then not written)
 */
export async function sealBackup(
  s3: S3Client,
  bucket: string,
  manifest: Manifest,
  options: SealOptions,
): Promise<{ manifest: Manifest; key: string; versionId?: string; retentionClass?: RetentionClass }> {
  const sealed: Manifest = { ...manifest };
  let tagging: string | undefined;
  if (options.retention) {
    const date = parseBackupId(options.backupId);
    if (!date) throw new ManifestError(`${options.backupId} is not a backup id: cannot classify it`);
    const present = await completeBackupDatesIn(s3, bucket, options.target, date.getUTCFullYear());
    const cls = retentionClass(date, present, options.retention);
    sealed.retention_class = cls;
    const files = Object.values(manifest.s3 ?? {}).map((f) => ({ key: f.key, versionId: f.version_id }));
    await tagObjects(s3, bucket, [...files, ...(options.records ?? [])], cls, TAG_CONCURRENCY);
    tagging = retentionTagging(cls);
  }
  const key = manifestKey(options.target, options.backupId);
  const written = await putJson(s3, bucket, key, sealed, 4, tagging);
  return {
    manifest: sealed,
    key,
    ...(written.versionId ? { versionId: written.versionId } : {}),
    ...(sealed.retention_class ? { retentionClass: sealed.retention_class } : {}),
  };
}

/**
 * The manifest step: reads the component results, builds the manifest, validates it as every reader
 * will, checks with S3 (a listing of the backup's versions, not bodies; core/backup/verify.ts) that
 * every recorded file is there as recorded, and only then seals the backup (`sealBackup`: classified,
 * re-tagged, the manifest written last). Nothing is written when anything is missing.
 *
 * @throws IncompleteBackupError naming what is missing, malformed or different from the results
 * @throws StorageError when S3 fails
 */
export async function writeManifest(
  s3: S3Client,
  bucket: string,
  input: ManifestInput,
): Promise<{ manifest: Manifest; key: string; versionId?: string; results: ComponentResults }> {
  const results = await readResults(s3, bucket, input.target, input.backupId);
  const manifest = buildManifest(input, results);
  // What every reader will check, checked before anything is written (an artifact key that makes an
  // unsafe path, a component without its files): no manifest that its own readers would refuse.
  try {
    validateManifest(manifest, `manifest of ${input.target}/${input.backupId}`, input);
  } catch (err) {
    if (err instanceof ManifestError) throw new IncompleteBackupError(`${err.message}\nno manifest written`);
    throw err;
  }
  const report = await verifyAgainst(s3, bucket, input.target, input.backupId, manifest);
  if (!report.ok) {
    throw new IncompleteBackupError(
      `backup ${input.backupId} of ${input.target} does not match its component results; no manifest written:\n` +
        describeProblems(report).join('\n'),
    );
  }
  // The component results just read are part of the backup too.
  const records = Object.keys(results).map((name) => ({
    key: resultKey(input.target, input.backupId, name),
  }));
  const sealed = await sealBackup(s3, bucket, manifest, {
    target: input.target,
    backupId: input.backupId,
    retention: input.retention,
    records,
  });
  return {
    manifest: sealed.manifest,
    key: sealed.key,
    ...(sealed.versionId ? { versionId: sealed.versionId } : {}),
    results,
  };
}
