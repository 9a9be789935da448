/**
 * Copies a backup's artifacts back into the target's artifact storage: to an S3 bucket by
 * server-side copy of the exact versions the manifest records, or to a mounted path (EFS) by
 * streaming each file into a temporary name beside it and renaming it once its SHA-256 equals the
 * manifest's (core/s3/download.ts). Objects the backup does not hold are left alone (artifact storage is append-mostly,
 * and deleting is not a restore's business).
 */
import { resolve, sep } from 'node:path';
import { ARTIFACTS_DIR } from '../../../../core/backup/layout.js';
import type { Manifest } from '../../../../core/backup/manifest.js';
import { mapLimit } from '../../../../core/concurrency.js';
import { ManifestError, RestoreValidationError } from '../../../../core/errors.js';
import { downloadVerified } from '../../../../core/s3/download.js';
import { storageError } from '../../../../core/s3/objects.js';
import { backupName } from '../context.js';
import { type ArtifactSource, copyObject } from './artifacts.js';
import type { RestoreContext } from './restore-postgres.js';

const GiB = 1024 ** 3;

export interface ArtifactsRestoreResult {
  component: 'artifacts';
  destination: ArtifactSource;
  files: number;
  bytes: number;
}

/**
 * The artifact files a manifest records, with where each is stored and what it must hash to: every
 * `artifacts/` path of `checksums` (what the backup holds and verification checks), never only those
 * that happen to have an `s3` entry, so no file the manifest lists is silently left out.
 *
 * @throws ManifestError naming the first file without its stored copy (`s3` entry) or size
 */
export function artifactFiles(manifest: Manifest, what: string) {
  return Object.entries(manifest.checksums)
    .filter(([path]) => path.startsWith(ARTIFACTS_DIR))
    .map(([path, sha256]) => {
      const stored = manifest.s3?.[path];
      if (!stored)
        throw new ManifestError(
          `${what}: ${path} is in the manifest's checksums but has no stored copy (s3)`,
        );
      const size = manifest.sizes?.[path];
      if (size === undefined)
        throw new ManifestError(`${what}: ${path} is in the manifest's checksums but has no size`);
      return { relative: path.slice(ARTIFACTS_DIR.length), path, stored, sha256, size };
    });
}

export async function restoreArtifacts(
  ctx: RestoreContext,
  destination: ArtifactSource,
  manifest: Manifest,
  options: { concurrency?: number } = {},
): Promise<ArtifactsRestoreResult> {
  const what = backupName(ctx);
  if (!manifest.components.includes('artifacts'))
    throw new ManifestError(`${what} holds no artifacts to restore`);
  const files = artifactFiles(manifest, what);
  const log = ctx.logger.child({ component: 'artifacts', step: 'restore', destination: destination.type });
  log.info('restoring artifacts', { files: files.length });
  const concurrency = options.concurrency ?? 8;

  await mapLimit(files, concurrency, async (file) => {
    if (destination.type === 's3') {
      const key = `${destination.prefix}${file.relative}`;
      let copied: { sha256: string };
      try {
        copied = await copyObject(
          ctx.s3,
          { bucket: ctx.bucket, key: file.stored.key, size: file.size, versionId: file.stored.version_id },
          { bucket: destination.bucket, key },
          { multipartCopyThreshold: 5 * GiB, copyPartSize: 1 * GiB },
        );
      } catch (err) {
        throw storageError(err, `copying ${file.path} to s3://${destination.bucket}/${key}`);
      }
      if (copied.sha256 !== file.sha256) {
        throw new RestoreValidationError(
          `artifact ${file.path} copied to s3://${destination.bucket}/${key} hashes to ${copied.sha256}, the manifest records ${file.sha256}`,
        );
      }
      return;
    }
    const root = resolve(destination.path);
    const target = resolve(root, file.relative);
    // A path in a manifest is data: it must not climb out of the artifact storage.
    if (!target.startsWith(root + sep))
      throw new ManifestError(`${what}: artifact path ${file.path} leaves the artifact storage`);
    await downloadVerified(
      ctx.s3,
      { bucket: ctx.bucket, key: file.stored.key, versionId: file.stored.version_id },
      file.sha256,
      target,
    );
  });
  const bytes = files.reduce((n, f) => n + f.size, 0);
  log.info('artifacts restored; every checksum equals the manifest', { files: files.length, bytes });
  return { component: 'artifacts', destination, files: files.length, bytes };
}
