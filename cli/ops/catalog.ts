/**
 * What the operator CLI shows about backups: per target, each backup with its age, size per
 * component, retention class, whether it is complete, and when it was last verified (the CLI's
 * `verify` records that under `.verified/TARGET/BACKUP_ID.json`, beside the backups, never in them).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { isFutureBackupId, listBackupIds } from '../../core/backup/catalog.js';
import {
  ARTIFACTS_DIR,
  backupPrefix,
  DATABASE_DIR,
  PREFECT_DUMP,
  parseBackupId,
} from '../../core/backup/layout.js';
import { type Manifest, readManifest } from '../../core/backup/manifest.js';
import type { VerifyReport } from '../../core/backup/verify.js';
import { mapLimit } from '../../core/concurrency.js';
import { targetName } from '../../core/config/schema.js';
import { ManifestError } from '../../core/errors.js';
import { getJson, listAll, listPages, putJson } from '../../core/s3/objects.js';

export const VERIFIED_ROOT = '.verified/';

export const VerificationSchema = z.strictObject({
  target: z.string(),
  backupId: z.string(),
  verifiedAt: z.iso.datetime(),
  ok: z.boolean(),
  deep: z.boolean(),
  files: z.number().int().nonnegative(),
  problems: z.number().int().nonnegative(),
});
export type Verification = z.output<typeof VerificationSchema>;

export interface BackupEntry {
  target: string;
  backupId: string;
  createdAt: string;
  ageHours: number;
  /** The id names a time later than now (+ clock skew): never `latest`, never fresh. */
  future?: true;
  complete: boolean;
  /** Bytes per component (complete backups: from the manifest; incomplete ones: all objects so far). */
  sizes: Record<string, number>;
  bytes: number;
  retentionClass?: string;
  /** Why a backup with a manifest is not usable (the manifest failed validation). */
  problem?: string;
  lastVerified?: Pick<Verification, 'verifiedAt' | 'ok' | 'deep'>;
}

const verificationKey = (target: string, backupId: string) => `${VERIFIED_ROOT}${target}/${backupId}.json`;

/** Records a verification's outcome for `list`. */
export async function recordVerification(
  s3: S3Client,
  bucket: string,
  report: VerifyReport,
  deep: boolean,
  now = new Date(),
): Promise<void> {
  const record: Verification = {
    target: report.target,
    backupId: report.backupId,
    verifiedAt: now.toISOString(),
    ok: report.ok,
    deep,
    files: report.files,
    problems: report.problems.length,
  };
  await putJson(s3, bucket, verificationKey(report.target, report.backupId), record);
}

/** Bytes per component, from the manifest's sizes. */
export function componentSizes(manifest: Manifest): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const [path, size] of Object.entries(manifest.sizes ?? {})) {
    const component = path.startsWith(DATABASE_DIR)
      ? 'database'
      : path === PREFECT_DUMP
        ? 'task-manager-db'
        : path.startsWith(ARTIFACTS_DIR)
          ? 'artifacts'
          : 'other';
    sizes[component] = (sizes[component] ?? 0) + size;
  }
  return sizes;
}

/** The targets with backups in the bucket (top-level folders that are target names). */
export async function listTargets(s3: S3Client, bucket: string): Promise<string[]> {
  const targets: string[] = [];
  const input = { Bucket: bucket, Delimiter: '/' };
  for await (const page of listPages(s3, input, `listing the targets in s3://${bucket}`))
    for (const p of page.CommonPrefixes ?? []) {
      const name = (p.Prefix ?? '').slice(0, -1);
      if (targetName.safeParse(name).success && name !== 'locks') targets.push(name);
    }
  return targets.sort();
}

/**
 * The last verification recorded for a backup, or undefined when there is none. A record that is
 * not JSON or not of its shape (written by hand, cut short) is skipped: `warn` gets one line naming
 * its key and what is wrong, and the backup is listed as never verified instead of the whole
 * listing failing.
 *
 * @throws StorageError when S3 cannot be read
 */
export async function readVerification(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
  warn: (line: string) => void = () => undefined,
): Promise<Verification | undefined> {
  const key = verificationKey(target, backupId);
  try {
    return await getJson(s3, bucket, key, VerificationSchema);
  } catch (err) {
    if (!(err instanceof SyntaxError) && !(err instanceof z.ZodError)) throw err;
    const why =
      err instanceof z.ZodError
        ? err.issues.map((i) => `${i.path.map(String).join('.') || '(record)'}: ${i.message}`).join('; ')
        : `not valid JSON: ${err.message}`;
    warn(
      `warning: verification record s3://${bucket}/${key} skipped (${why}); ${target}/${backupId} is listed as never verified until the next verify rewrites it`,
    );
    return undefined;
  }
}

/**
 * Every backup of `targets`, newest first per target, with age (hours; a backup id later than `now`
 * has a negative age and is `future`), sizes, retention class, completeness (a refused manifest is
 * listed as not complete with its `problem`) and last verification (an unreadable record: `warn`).
 *
 * @throws StorageError when S3 cannot be listed or read
 */
export async function describeBackups(
  s3: S3Client,
  bucket: string,
  targets: readonly string[],
  now = new Date(),
  warn: (line: string) => void = () => undefined,
): Promise<BackupEntry[]> {
  const entries: BackupEntry[] = [];
  for (const target of targets) {
    const ids = await listBackupIds(s3, bucket, target);
    entries.push(
      ...(await mapLimit(ids, 8, async (backupId): Promise<BackupEntry> => {
        const created = parseBackupId(backupId) as Date;
        // A manifest that fails validation (an unsafe path, a key outside its prefix, ...) makes the
        // backup unusable: listed as not complete, with the reason, instead of failing the listing.
        let unreadable: string | undefined;
        const manifest = await readManifest(s3, bucket, target, backupId).catch((err: unknown) => {
          if (!(err instanceof ManifestError)) throw err;
          unreadable = err.message;
          return undefined;
        });
        let sizes: Record<string, number>;
        if (manifest) sizes = componentSizes(manifest);
        else {
          const objects = await listAll(s3, bucket, backupPrefix(target, backupId));
          sizes = { incomplete: objects.reduce((n, o) => n + (o.Size ?? 0), 0) };
        }
        const verified = await readVerification(s3, bucket, target, backupId, warn);
        return {
          target,
          backupId,
          createdAt: created.toISOString(),
          ageHours: Math.round(((now.getTime() - created.getTime()) / 3_600_000) * 10) / 10,
          ...(isFutureBackupId(backupId, now) ? { future: true as const } : {}),
          complete: manifest !== undefined,
          ...(unreadable ? { problem: unreadable } : {}),
          sizes,
          bytes: Object.values(sizes).reduce((a, b) => a + b, 0),
          ...(manifest?.retention_class ? { retentionClass: manifest.retention_class } : {}),
          ...(verified
            ? { lastVerified: { verifiedAt: verified.verifiedAt, ok: verified.ok, deep: verified.deep } }
            : {}),
        };
      })),
    );
  }
  return entries.sort((a, b) => a.target.localeCompare(b.target) || b.backupId.localeCompare(a.backupId));
}
