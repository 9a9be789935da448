/**
 * What `infrahub-backup retention` reads from the bucket and the policy files: each backup's
 * retention facts (its manifest's `retention` tag and recorded class) for the pure planning in
 * core/backup/retention-plan.ts, and a proposed policy given as a file.
 */
import { readFileSync } from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import { listBackupIds, manifestRetentionTag } from '../../core/backup/catalog.js';
import { backupPrefix, parseBackupId } from '../../core/backup/layout.js';
import { readManifest } from '../../core/backup/manifest.js';
import type { BackupRetentionFacts } from '../../core/backup/retention-plan.js';
import { mapLimit } from '../../core/concurrency.js';
import { describeIssues, loadDeploymentConfigFile } from '../../core/config/load.js';
import { type Retention, RetentionSchema } from '../../core/config/schema.js';
import { ConfigError, ManifestError } from '../../core/errors.js';
import { listCurrentVersions } from '../../core/s3/objects.js';

/**
 * Every backup of `targets`, oldest first per target, with what the lifecycle sees: a complete
 * backup's manifest tag (GetObjectTagging) and recorded class (the manifest, read and validated);
 * an incomplete one (no manifest) carries `pending`; an imported one also when its objects were
 * written (the import: firstWritten). Two requests per complete backup (three for an import), one per
 * incomplete one, besides a listing per target; 8 backups at once. A manifest that is refused keeps
 * its tag and loses its class, and `warn` gets a line naming it.
 * @throws StorageError when S3 cannot be listed or read
 */
export async function retentionFacts(
  s3: S3Client,
  bucket: string,
  targets: readonly string[],
  warn: (line: string) => void = () => undefined,
): Promise<BackupRetentionFacts[]> {
  const facts: BackupRetentionFacts[] = [];
  for (const target of targets) {
    const ids = await listBackupIds(s3, bucket, target);
    facts.push(
      ...(await mapLimit(ids, 8, async (backupId): Promise<BackupRetentionFacts> => {
        const created = parseBackupId(backupId) as Date;
        const tag = await manifestRetentionTag(s3, bucket, target, backupId);
        if (tag === undefined) return { target, backupId, created, complete: false };
        const manifest = await readManifest(s3, bucket, target, backupId).catch((err: unknown) => {
          if (!(err instanceof ManifestError)) throw err;
          warn(`warning: ${target}/${backupId}: its manifest is refused, its class unknown: ${err.message}`);
          return undefined;
        });
        // An imported backup's objects were created by the import, later than its id's time.
        const written = manifest?.imported_from
          ? await firstWritten(s3, bucket, target, backupId)
          : undefined;
        return {
          target,
          backupId,
          created,
          complete: true,
          tag,
          ...(manifest?.retention_class ? { retentionClass: manifest.retention_class } : {}),
          ...(written ? { written } : {}),
        };
      })),
    );
  }
  return facts;
}

/**
 * When the first current object of a backup was written (the earliest LastModified below its prefix:
 * one ListObjectVersions request per 1,000 objects), or undefined when S3 reports none.
 * @throws StorageError when S3 cannot be listed
 */
async function firstWritten(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
): Promise<Date | undefined> {
  let first: Date | undefined;
  for (const v of (await listCurrentVersions(s3, bucket, backupPrefix(target, backupId))).values())
    if (v.lastModified && (!first || v.lastModified < first)) first = v.lastModified;
  return first;
}

/**
 * A retention policy from a JSON file: a whole deployment configuration (its `retention`, the file
 * validated as `cdk synth` would, its calendar problems passed to `warn`), an object holding only
 * `retention`, or the `retention` object itself. Validated by RetentionSchema (coldStorage included).
 * @throws ConfigError naming the file and each problem (unreadable, not JSON, invalid)
 */
export function loadRetentionPolicy(file: string, warn: (line: string) => void = () => undefined): Retention {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [
      `cannot be read${code === 'ENOENT' ? ': no such file' : code === 'EISDIR' ? ': it is a directory' : `: ${err instanceof Error ? err.message : String(err)}`}`,
    ]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [`is not JSON: ${err instanceof Error ? err.message : String(err)}`]);
  }
  const record =
    raw !== null && typeof raw === 'object' && !Array.isArray(raw)
      ? (raw as Record<string, unknown>)
      : undefined;
  if (!record)
    throw new ConfigError(file, [
      `must be a JSON object (a deployment configuration, {"retention": {...}} or the retention object itself), got ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : `a ${typeof raw}`}`,
    ]);
  if ('targets' in record)
    return loadDeploymentConfigFile(file, {
      onScheduleProblems: (problems) => {
        for (const p of problems) warn(`warning: ${file}: ${p}`);
      },
    }).retention;
  if ('retention' in record && Object.keys(record).length > 1)
    throw new ConfigError(file, [
      `holds "retention" beside ${Object.keys(record)
        .filter((k) => k !== 'retention')
        .map((k) => `"${k}"`)
        .join(
          ', ',
        )} but no "targets": give a whole deployment configuration, {"retention": {...}} alone, or the retention object itself`,
    ]);
  const policy = 'retention' in record ? record.retention : record;
  const parsed = RetentionSchema.safeParse(policy);
  if (!parsed.success)
    throw new ConfigError(
      file,
      describeIssues(parsed.error).map((p) =>
        p.startsWith('(root)') ? `retention${p.slice('(root)'.length)}` : `retention.${p}`,
      ),
    );
  return parsed.data;
}
