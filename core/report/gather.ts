/**
 * Reads what the audit report (core/report/audit.ts) needs from the backup bucket, for a period:
 * per target, every backup whose id falls in it (its manifest, the retention tag of its manifest
 * object, or, without a manifest, its objects and the runners' failure records) and every restore
 * and drill whose id falls in it (its report.json, or the runner steps' failure records). Listings
 * go through the SDK's paginator (core/s3/objects.ts listPages); nothing is written.
 *
 * Requests per backup with a manifest: GetObject of the manifest, GetObjectTagging of it, and
 * GetObject of its verification record when the caller reads them; without a manifest, one listing
 * of its folder, GetObjectTagging of one object and GetObject of each failure record. Per restore or
 * drill, GetObject of report.json (plus a listing when it has none). The IAM principal needs
 * s3:ListBucket, s3:GetObject and s3:GetObjectTagging on the bucket.
 */
import { GetObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { listBackupIds } from '../backup/catalog.js';
import {
  backupPrefix,
  manifestKey,
  parseBackupId,
  RESTORES_ROOT,
  RESULTS_DIR,
  RestoreIdSchema,
  restorePrefix,
  restoreStepKey,
} from '../backup/layout.js';
import { type Manifest, readManifest } from '../backup/manifest.js';
import { type ComponentError, ComponentErrorSchema } from '../backup/results.js';
import { RETENTION_TAG } from '../backup/retention.js';
import { mapLimit } from '../concurrency.js';
import { type DeploymentConfig, targetName } from '../config/schema.js';
import { ManifestError } from '../errors.js';
import { type RestoreStepError, RestoreStepErrorSchema } from '../restore/steps.js';
import { getJson, isNotFound, listAll, listPages, storageError } from '../s3/objects.js';
import {
  type AuditBackup,
  type AuditPeriod,
  type AuditRecovery,
  type AuditReport,
  assembleReport,
  backupRecord,
  inPeriod,
  parseRestoreId,
  recoveryRecord,
  StoredRecoveryReportSchema,
} from './audit.js';

/** A backup's last verification, as `infrahub-backup verify` records it (cli/ops/catalog.ts readVerification). */
export type VerificationReader = (
  target: string,
  backupId: string,
) => Promise<{ verifiedAt: string; ok: boolean; deep: boolean; problems: number } | undefined>;

export interface GatherOptions {
  period: AuditPeriod;
  /** The targets to report on (see auditTargets for the usual choice). */
  targets: readonly string[];
  /** The deployment configuration and its file: the policy in force, and the objective of old reports. */
  config?: { config: DeploymentConfig; file: string } | undefined;
  /** Reads a backup's last verification; without it every backup shows as never verified. */
  lastVerification?: VerificationReader | undefined;
  /** One line per record skipped as unreadable (a malformed failure record), for standard error. */
  warn?: ((line: string) => void) | undefined;
  /** Backups and reports read at once (default 16). */
  concurrency?: number;
  now?: Date;
}

/**
 * The targets with restore or drill reports (`.restores/<target>/`), by one delimited listing: with
 * the targets holding backups, the targets an audit covers when none are named.
 * @throws StorageError when S3 cannot be listed
 */
export async function listRestoreTargets(s3: S3Client, bucket: string): Promise<string[]> {
  const targets: string[] = [];
  const input = { Bucket: bucket, Prefix: RESTORES_ROOT, Delimiter: '/' };
  for await (const page of listPages(s3, input, `listing s3://${bucket}/${RESTORES_ROOT}`))
    for (const p of page.CommonPrefixes ?? []) {
      const name = (p.Prefix ?? '').slice(RESTORES_ROOT.length, -1);
      if (targetName.safeParse(name).success) targets.push(name);
    }
  return targets.sort();
}

/**
 * The `retention` tag of an object's current version (S3 API Reference, "GetObjectTagging"),
 * undefined when it has none or the object is gone.
 * @throws StorageError when S3 refuses or cannot be reached
 */
export async function retentionTagOf(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const out = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
    return out.TagSet?.find((t) => t.Key === RETENTION_TAG)?.Value;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw storageError(err, `reading the tags of s3://${bucket}/${key}`);
  }
}

/** A JSON record that is not what its schema says is skipped with a warning, never fatal to the report. */
async function readRecord<T extends z.ZodType>(
  s3: S3Client,
  bucket: string,
  key: string,
  schema: T,
  warn: (line: string) => void,
): Promise<z.output<T> | undefined> {
  try {
    return await getJson(s3, bucket, key, schema);
  } catch (err) {
    if (!(err instanceof SyntaxError) && !(err instanceof z.ZodError)) throw err;
    warn(
      `warning: s3://${bucket}/${key} skipped: ${err instanceof z.ZodError ? 'not a record of its kind' : `not valid JSON: ${err.message}`}`,
    );
    return undefined;
  }
}

async function gatherBackup(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
  options: GatherOptions,
  warn: (line: string) => void,
): Promise<AuditBackup> {
  let refused: string | undefined;
  const manifest: Manifest | undefined = await readManifest(s3, bucket, target, backupId).catch(
    (err: unknown) => {
      if (!(err instanceof ManifestError)) throw err;
      refused = err.message;
      return undefined;
    },
  );
  let tag: string | undefined;
  let stored: { objects: number; bytes: number } | undefined;
  const errors: ComponentError[] = [];
  const finished: string[] = [];
  if (manifest || refused !== undefined) {
    tag = await retentionTagOf(s3, bucket, manifestKey(target, backupId));
  }
  if (!manifest) {
    const objects = await listAll(s3, bucket, backupPrefix(target, backupId));
    stored = { objects: objects.length, bytes: objects.reduce((n, o) => n + (o.Size ?? 0), 0) };
    const records = backupPrefix(target, backupId) + RESULTS_DIR;
    for (const o of objects) {
      const key = o.Key ?? '';
      if (!key.startsWith(records) || !key.endsWith('.json')) continue;
      const name = key.slice(records.length, -'.json'.length);
      if (name.endsWith('.error')) {
        const record = await readRecord(s3, bucket, key, ComponentErrorSchema, warn);
        if (record) errors.push(record);
      } else if (!name.includes('/')) finished.push(name);
    }
    const first = objects[0]?.Key;
    if (tag === undefined && first) tag = await retentionTagOf(s3, bucket, first);
  }
  const verification = manifest ? await options.lastVerification?.(target, backupId) : undefined;
  return backupRecord({
    target,
    backupId,
    manifest,
    refused,
    stored,
    finished: finished.sort(),
    errors,
    tag,
    verification,
  });
}

async function gatherRecovery(
  s3: S3Client,
  bucket: string,
  target: string,
  restoreId: string,
  configObjective: number | undefined,
  warn: (line: string) => void,
): Promise<AuditRecovery | undefined> {
  const key = restoreStepKey(target, restoreId, 'report');
  let unreadable: string | undefined;
  let report: z.output<typeof StoredRecoveryReportSchema> | undefined;
  try {
    report = await getJson(s3, bucket, key, StoredRecoveryReportSchema);
  } catch (err) {
    if (!(err instanceof SyntaxError) && !(err instanceof z.ZodError)) throw err;
    unreadable = `s3://${bucket}/${key} is not a restore report (${err instanceof z.ZodError ? err.issues.map((i) => `${i.path.map(String).join('.') || '(report)'}: ${i.message}`).join('; ') : `not valid JSON: ${err.message}`})`;
    warn(`warning: ${unreadable}`);
  }
  const stepErrors: RestoreStepError[] = [];
  if (!report) {
    for (const o of await listAll(s3, bucket, restorePrefix(target, restoreId))) {
      if (!o.Key?.endsWith('.error.json')) continue;
      const record = await readRecord(s3, bucket, o.Key, RestoreStepErrorSchema, warn);
      if (record) stepErrors.push(record);
    }
  }
  return recoveryRecord({ target, restoreId, report, unreadable, stepErrors }, configObjective);
}

/** The restore and drill ids of a target, from one delimited listing of `.restores/<target>/`. */
async function listRestoreIds(s3: S3Client, bucket: string, target: string): Promise<string[]> {
  const ids: string[] = [];
  const prefix = `${RESTORES_ROOT}${target}/`;
  for await (const page of listPages(
    s3,
    { Bucket: bucket, Prefix: prefix, Delimiter: '/' },
    `listing s3://${bucket}/${prefix}`,
  ))
    for (const p of page.CommonPrefixes ?? []) {
      const id = (p.Prefix ?? '').slice(prefix.length, -1);
      if (RestoreIdSchema.safeParse(id).success) ids.push(id);
    }
  return ids.sort();
}

/**
 * Gathers the audit report (AuditReport, core/report/audit.ts) for `options.period` and
 * `options.targets` from the bucket: backups by the time in their id, restores and drills by the
 * time in theirs, each in the period when it started on one of its days (UTC).
 * @throws StorageError when S3 cannot be listed or read (a record that is not of its shape is
 *   skipped with a warning instead)
 */
export async function gatherAuditReport(
  s3: S3Client,
  bucket: string,
  options: GatherOptions,
): Promise<AuditReport> {
  const warn = options.warn ?? (() => undefined);
  const limit = options.concurrency ?? 16;
  const configObjective = options.config ? options.config.config.rtoMinutes * 60 : undefined;
  const backups: AuditBackup[] = [];
  const recoveries: AuditRecovery[] = [];
  for (const target of options.targets) {
    const ids = (await listBackupIds(s3, bucket, target)).filter((id) =>
      inPeriod(options.period, parseBackupId(id)),
    );
    backups.push(
      ...(await mapLimit(ids, limit, (id) => gatherBackup(s3, bucket, target, id, options, warn))),
    );
    const runs = (await listRestoreIds(s3, bucket, target)).filter((id) =>
      inPeriod(options.period, parseRestoreId(id)?.at),
    );
    const read = await mapLimit(runs, limit, (id) =>
      gatherRecovery(s3, bucket, target, id, configObjective, warn),
    );
    recoveries.push(...read.filter((r): r is AuditRecovery => r !== undefined));
  }
  return assembleReport({
    bucket,
    period: options.period,
    targets: options.targets,
    backups,
    recoveries,
    config: options.config,
    now: options.now ?? new Date(),
  });
}
