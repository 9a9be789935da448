/**
 * Re-reads a backup and reports every file that is missing, unexpected, or whose size or SHA-256
 * differs from the manifest. By default it trusts what S3 can answer (sizes from the listing,
 * checksums and version ids from HeadObject) and downloads nothing; `deep` streams every file
 * through SHA-256 and compares it with the manifest's hex digest.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { ManifestError } from '../errors.js';
import { hashObject, headObject, listAll, sameS3Checksum } from '../s3/objects.js';
import { backupPrefix, MANIFEST_FILE, RESULTS_DIR } from './layout.js';
import { type Manifest, readManifest } from './manifest.js';

export type VerifyProblemKind = 'missing' | 'unexpected' | 'size' | 'checksum' | 'version';

export interface VerifyProblem {
  path: string;
  kind: VerifyProblemKind;
  expected?: string | number;
  actual?: string | number;
}

export interface VerifyReport {
  target: string;
  backupId: string;
  ok: boolean;
  /** Files the manifest lists. */
  files: number;
  /** Files whose content was hashed by downloading them. */
  downloaded: number;
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  /** Download and hash every file instead of trusting what S3 answers. */
  deep?: boolean;
  /** After each file downloaded and hashed (a progress display). */
  onDownloaded?: (file: { path: string; bytes: number; downloaded: number; files: number }) => void;
}

export async function verifyBackup(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const manifest = await readManifest(s3, bucket, target, backupId);
  if (!manifest) {
    throw new ManifestError(
      `${target}/${backupId} has no ${MANIFEST_FILE}: the backup is incomplete or failed`,
    );
  }
  return verifyAgainst(s3, bucket, target, backupId, manifest, options);
}

export async function verifyAgainst(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
  manifest: Manifest,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const prefix = backupPrefix(target, backupId);
  const listed = new Map<string, number>();
  for (const object of await listAll(s3, bucket, prefix)) {
    const path = (object.Key ?? '').slice(prefix.length);
    if (path === MANIFEST_FILE || path.startsWith(RESULTS_DIR) || path === '') continue;
    listed.set(path, object.Size ?? 0);
  }

  const problems: VerifyProblem[] = [];
  let downloaded = 0;
  const expected = Object.entries(manifest.checksums).sort(([a], [b]) => a.localeCompare(b));
  for (const [path, sha256] of expected) {
    const size = listed.get(path);
    listed.delete(path);
    if (size === undefined) {
      problems.push({ path, kind: 'missing', expected: sha256 });
      continue;
    }
    const recordedSize = manifest.sizes?.[path];
    if (recordedSize !== undefined && recordedSize !== size) {
      problems.push({ path, kind: 'size', expected: recordedSize, actual: size });
      continue;
    }
    const recorded = manifest.s3?.[path];
    const key = `${prefix}${path}`;
    if (!options.deep && recorded) {
      const head = await headObject(s3, bucket, key);
      if (recorded.version_id && head?.versionId && head.versionId !== recorded.version_id) {
        problems.push({ path, kind: 'version', expected: recorded.version_id, actual: head.versionId });
      } else if (!sameS3Checksum(head?.checksumSHA256, recorded.checksum_sha256)) {
        problems.push({
          path,
          kind: 'checksum',
          expected: recorded.checksum_sha256,
          actual: head?.checksumSHA256 ?? 'none',
        });
      }
      continue;
    }
    // Deep, or a file S3 cannot vouch for (a backup imported without S3 checksums): hash the content.
    const actual = await hashObject(s3, bucket, key);
    downloaded++;
    options.onDownloaded?.({ path, bytes: size, downloaded, files: expected.length });
    if (actual.sha256 !== sha256)
      problems.push({ path, kind: 'checksum', expected: sha256, actual: actual.sha256 });
  }
  for (const [path, size] of [...listed].sort(([a], [b]) => a.localeCompare(b))) {
    problems.push({ path, kind: 'unexpected', actual: size });
  }
  return { target, backupId, ok: problems.length === 0, files: expected.length, downloaded, problems };
}

/** One line per problem, for logs and error messages. */
export function describeProblems(report: VerifyReport): string[] {
  return report.problems.map((p) => {
    switch (p.kind) {
      case 'missing':
        return `${p.path}: missing`;
      case 'unexpected':
        return `${p.path}: not in the manifest (${p.actual} bytes)`;
      case 'size':
        return `${p.path}: size ${p.actual}, manifest says ${p.expected}`;
      case 'version':
        return `${p.path}: overwritten (version ${p.actual}, manifest recorded ${p.expected})`;
      default:
        return `${p.path}: SHA-256 differs (${p.actual}, manifest says ${p.expected})`;
    }
  });
}
