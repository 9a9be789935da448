/**
 * Re-reads a backup and reports every file that is missing, unexpected, or whose size, SHA-256 or
 * format differs from the manifest. Every mode holds each file to the manifest's SHA-256 (its
 * `checksums`), not only to the S3 checksum the manifest recorded beside it:
 * - quick (default; downloads nothing): sizes and current version ids from the listing
 *   (ListObjectVersions, 1,000 files a request), S3 checksums proved by the listing and the upload
 *   records (`vouchedByListing`) or else read with HeadObject, and then the manifest's hex SHA-256
 *   against what S3 or the upload measured:
 *   - a single-part object: S3 keeps the full-object SHA-256 it computed from the bytes (AWS S3 User
 *     Guide, "Checking object integrity": full-object checksums), so equal base64 and hex digests
 *     prove the bytes are those the manifest describes;
 *   - a multipart object: S3 keeps only a composite checksum (the SHA-256 of the parts' digests, "-N"),
 *     which no whole-object digest can be compared with. Quick mode proves that the object is the one
 *     uploaded (version id and composite checksum) and that the manifest's SHA-256 is the one the upload
 *     computed from the same bytes, as recorded in the backup's `.runner/` records (each runner
 *     component's result, or an import's record); it does not re-hash the bytes. A file without such a
 *     record is listed as not proven (`proof.unproven`); only `deep` proves it.
 * - deep: every file is downloaded and hashed, and each dump's format checked on the same bytes
 *   (core/backup/formats.ts: `pg_restore` reads `prefect.dump`; a Neo4j dump's header).
 */

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { mapLimit } from '../concurrency.js';
import { ManifestError } from '../errors.js';
import {
  getJson,
  headObject,
  type ListedVersion,
  listCurrentVersions,
  openObject,
  sameS3Checksum,
  storageError,
} from '../s3/objects.js';
import { FormatProblem, type FormatVerdict, formatCheckFor } from './formats.js';
import { backupPrefix, MANIFEST_FILE, RESULTS_DIR } from './layout.js';
import { type Manifest, readManifest } from './manifest.js';
import { FileRecordSchema } from './results.js';
import { ARCHIVE_STORAGE_CLASSES } from './retention.js';

export type VerifyProblemKind = 'missing' | 'unexpected' | 'size' | 'checksum' | 'version' | 'format';

export interface VerifyProblem {
  path: string;
  kind: VerifyProblemKind;
  expected?: string | number;
  actual?: string | number;
  /** What is wrong, in words (a checksum problem's source, a format problem). */
  detail?: string;
}

export interface VerifyReport {
  target: string;
  backupId: string;
  ok: boolean;
  /** Files the manifest lists. */
  files: number;
  /** Files whose content was hashed by downloading them. */
  downloaded: number;
  /**
   * HeadObject requests made: quick-mode files whose version and checksum the listing and the upload
   * record could not prove (see `vouchedByListing`); 0 for a backup this tool wrote.
   */
  heads: number;
  problems: VerifyProblem[];
  /** How each file that passed was held to the manifest's SHA-256 (see above). */
  proof: {
    /** Single-part objects: S3's full-object SHA-256 equals the manifest's. */
    s3FullObject: number;
    /** Multipart objects: unchanged since upload, and the manifest's SHA-256 equals the upload's record. */
    uploadRecord: number;
    /** Downloaded and hashed. */
    hashed: number;
    /** Files quick mode could not relate to the manifest's SHA-256 (no upload record); `deep` proves them. */
    unproven: string[];
    /** `.runner/` records that could not be read (not JSON, or not a record of files), with why. */
    brokenRecords?: Array<{ key: string; reason: string }>;
  };
  /** Deep only: dumps whose format was checked, and those that could not be (no pg_restore here). */
  formats?: { checked: number; unchecked: Array<{ path: string; reason: string }> };
  /**
   * Files the listing reports in an archive storage class (GLACIER, DEEP_ARCHIVE: moved there by
   * retention.coldStorage): quick mode proves them as any other (listing and HEAD need no restore),
   * but nothing can read them until they are restored (core/backup/thaw.ts). Absent when none.
   */
  archived?: Array<{ path: string; key: string; versionId?: string; storageClass: string }>;
}

export interface VerifyOptions {
  /** Download and hash every file instead of trusting what S3 answers. */
  deep?: boolean;
  /** After each file downloaded and hashed (a progress display). */
  onDownloaded?: (file: { path: string; bytes: number; downloaded: number; files: number }) => void;
  /** Deep: the pg_restore that checks `prefect.dump` (default `$PG_BINDIR/pg_restore`, else `pg_restore` on PATH). */
  pgRestore?: string;
}

/**
 * Reads the backup's manifest (validated: core/backup/manifest.ts) and verifies against it.
 * @throws ManifestError when the backup has no manifest or its manifest is refused; StorageError when S3 fails
 */
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

/** The hex SHA-256 as S3 writes a full-object checksum (base64 of the digest). */
export function hexToBase64(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}

const isComposite = (checksum: string) => /-\d+$/.test(checksum);

const RecordSchema = z.looseObject({ files: z.array(FileRecordSchema) });

/** What a file's upload measured, from the backup's `.runner/` records. */
interface UploadRecord {
  sha256: string;
  checksumSHA256: string;
  versionId?: string;
}

/**
 * What the backup's own `.runner/` records say each file's upload measured (path → SHA-256, S3
 * checksum and version id), read a few at a time (one GET per record: a handful per backup). A
 * record that is unreadable or of another shape contributes nothing and is listed in `broken` with
 * why, so a report never lets a file pass as "not proven" without saying its record is broken.
 */
async function uploadRecords(
  s3: S3Client,
  bucket: string,
  keys: readonly string[],
  broken: Array<{ key: string; reason: string }>,
): Promise<Map<string, UploadRecord>> {
  const records = new Map<string, UploadRecord>();
  const read = await mapLimit(keys, 4, (key) =>
    getJson(s3, bucket, key, RecordSchema).catch((err: unknown) => {
      if (err instanceof SyntaxError) broken.push({ key, reason: `not valid JSON: ${err.message}` });
      else if (err instanceof z.ZodError)
        broken.push({
          key,
          reason: `not a record of files: ${err.issues.map((i) => `${i.path.map(String).join('.') || '(record)'}: ${i.message}`).join('; ')}`,
        });
      else throw err;
      return undefined;
    }),
  );
  for (const record of read)
    for (const f of record?.files ?? [])
      records.set(f.path, {
        sha256: f.sha256,
        checksumSHA256: f.s3.checksumSHA256,
        ...(f.s3.versionId ? { versionId: f.s3.versionId } : {}),
      });
  broken.sort((a, b) => a.key.localeCompare(b.key));
  return records;
}

/** Downloads a file, hashing it and (deep) checking its format on the same bytes. */
async function hashAndCheck(
  s3: S3Client,
  bucket: string,
  key: string,
  path: string,
  versionId: string | undefined,
  pgRestore: string,
): Promise<{ sha256: string; verdict?: FormatVerdict }> {
  const check = formatCheckFor(path, { pgRestore });
  const body = await openObject(s3, bucket, key, versionId);
  const hash = createHash('sha256');
  let verdict: FormatVerdict | undefined;
  let feeding = check !== undefined;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      if (feeding && check) {
        // Once the format is known to be wrong, the rest is only hashed.
        await check.write(chunk).catch((err: unknown) => {
          if (!(err instanceof FormatProblem)) throw err;
          verdict = { status: 'problem', format: check.format, problem: err.problem };
          feeding = false;
          check.abort();
        });
      }
    }
  } catch (err) {
    check?.abort();
    throw storageError(err, `reading s3://${bucket}/${key}`);
  }
  if (feeding && check) verdict = await check.end();
  return { sha256: hash.digest('hex'), ...(verdict ? { verdict } : {}) };
}

/** HeadObject requests at once, for the files a listing cannot vouch for (see `verifyAgainst`). */
export const HEAD_CONCURRENCY = 32;
/** Deep: files downloaded and hashed at once (each a stream; memory stays a few chunks per file). */
export const DOWNLOAD_CONCURRENCY = 4;

type Recorded = NonNullable<Manifest['s3']>[string];

/** What one manifest file needs after the listing: nothing more, a HEAD, or a download. */
interface FileCheck {
  path: string;
  sha256: string;
  size: number;
  key: string;
  recorded?: Recorded;
  /** Problems found from the listing alone. */
  problems: VerifyProblem[];
  /** The S3 checksum of the recorded version, when the listing and the upload record prove it. */
  vouched?: string;
  step: 'done' | 'quick' | 'hash';
}

/**
 * Whether the listing and the backup's own upload record prove, without a HEAD, that the object
 * stored at the key now is the version recorded and that S3 keeps `recorded.checksum_sha256` as its
 * SHA-256 checksum — what `HeadObject` with `ChecksumMode: ENABLED` on that key would have shown:
 * - the listing's current version id equals the recorded one (a real id, not "null"). In a
 *   versioned bucket every write makes a new version with a new id and an existing version is never
 *   changed in place (S3 User Guide, "Retaining multiple versions of objects with S3 Versioning": an
 *   overwrite "results in a new object version"); changing an object's checksum also means writing
 *   a copy, i.e. a new version (User Guide, "Checking object integrity for data uploads");
 * - the upload record (`.runner/<component>.json`, written by the runner from the upload itself)
 *   names the same version id and the same S3 checksum as the manifest. The runner sent that
 *   SHA-256 with each PUT (or part: the composite of a multipart upload is the SHA-256 of those part
 *   checksums, core/s3/upload-stream.ts), and "if the checksum value calculated by S3 matches your
 *   provided value, the request is accepted. If the values don't match, the request is rejected";
 *   S3 "stores both the checksum value as object metadata and the object itself" (User Guide,
 *   "Checking object integrity for data uploads"). A server-side copy's checksum is the one S3
 *   returned for the new version (CopyObjectResult);
 * - where the listing reports checksum algorithms (ObjectVersion.ChecksumAlgorithm, API Reference,
 *   "ObjectVersion"; real S3 does, moto does not), SHA256 is among them. A copy for which S3 returned
 *   no checksum (the runner then hashed the copy itself) lists none, and is HEADed as before.
 * So the version S3 holds as current carries, as immutable metadata, the checksum S3 itself validated
 * against the bytes at upload: the proof is the one a HEAD gives (a HEAD re-reads that metadata, not
 * the bytes). Anything short of all three (no upload record, an unversioned bucket, a record that
 * disagrees with the manifest) is HEADed.
 */
function vouchedByListing(
  recorded: Recorded,
  listed: ListedVersion,
  upload: UploadRecord | undefined,
): boolean {
  return (
    recorded.version_id !== undefined &&
    recorded.version_id !== 'null' &&
    listed.versionId === recorded.version_id &&
    (listed.checksumAlgorithms === undefined || listed.checksumAlgorithms.includes('SHA256')) &&
    upload !== undefined &&
    upload.versionId === recorded.version_id &&
    upload.checksumSHA256 === recorded.checksum_sha256
  );
}

/**
 * Verifies the objects under `TARGET/BACKUP_ID/` against a manifest already read (see the top of
 * this file for what each mode proves). Problems are returned, not thrown: the report's `ok` is false
 * when any file is missing, unexpected, resized, overwritten, differs from the manifest's SHA-256 or
 * (deep) is a malformed dump.
 *
 * S3 requests, for a backup of N files: ListObjectVersions pages (N/1,000), one GET per `.runner/`
 * record, and a HeadObject only for a file the listing cannot vouch for (`vouchedByListing`: none
 * for a backup this tool wrote into a versioned bucket), at most HEAD_CONCURRENCY at once; deep
 * mode downloads every file, DOWNLOAD_CONCURRENCY at once. Before, every recorded file was HEADed
 * one after another: 50,000 artifacts exceeded a Lambda's 5 minutes.
 * @throws StorageError when S3 fails
 */
export async function verifyAgainst(
  s3: S3Client,
  bucket: string,
  target: string,
  backupId: string,
  manifest: Manifest,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const prefix = backupPrefix(target, backupId);
  const listed = new Map<string, ListedVersion>();
  const recordKeys: string[] = [];
  for (const [key, version] of await listCurrentVersions(s3, bucket, prefix)) {
    const path = key.slice(prefix.length);
    if (path.startsWith(RESULTS_DIR)) {
      if (path.endsWith('.json') && !path.endsWith('.error.json')) recordKeys.push(key);
      continue;
    }
    if (path === MANIFEST_FILE || path === '') continue;
    listed.set(path, version);
  }
  const pgRestore =
    options.pgRestore ?? (process.env.PG_BINDIR ? join(process.env.PG_BINDIR, 'pg_restore') : 'pg_restore');
  const brokenRecords: Array<{ key: string; reason: string }> = [];
  // Quick mode relates files to the runner's records (a few GETs: one per component).
  const records = options.deep
    ? new Map<string, UploadRecord>()
    : await uploadRecords(s3, bucket, recordKeys.sort(), brokenRecords);

  const proof: VerifyReport['proof'] = { s3FullObject: 0, uploadRecord: 0, hashed: 0, unproven: [] };
  const formats: NonNullable<VerifyReport['formats']> = { checked: 0, unchecked: [] };
  const expected = Object.entries(manifest.checksums).sort(([a], [b]) => a.localeCompare(b));
  const archived: NonNullable<VerifyReport['archived']> = [];

  // 1. What the listing says, file by file.
  const checks: FileCheck[] = expected.map(([path, sha256]) => {
    const check: FileCheck = { path, sha256, size: 0, key: `${prefix}${path}`, problems: [], step: 'done' };
    const version = listed.get(path);
    listed.delete(path);
    if (version === undefined) {
      check.problems.push({ path, kind: 'missing', expected: sha256 });
      return check;
    }
    check.size = version.size;
    if (version.storageClass && ARCHIVE_STORAGE_CLASSES.has(version.storageClass))
      archived.push({
        path,
        key: version.key,
        ...(version.versionId ? { versionId: version.versionId } : {}),
        storageClass: version.storageClass,
      });
    const recordedSize = manifest.sizes?.[path];
    if (recordedSize !== undefined && recordedSize !== version.size) {
      check.problems.push({ path, kind: 'size', expected: recordedSize, actual: version.size });
      return check;
    }
    const recorded = manifest.s3?.[path];
    if (recorded) check.recorded = recorded;
    if (recorded?.version_id && version.versionId && version.versionId !== recorded.version_id) {
      check.problems.push({
        path,
        kind: 'version',
        expected: recorded.version_id,
        actual: version.versionId,
      });
      return check;
    }
    if (options.deep || !recorded) {
      check.step = 'hash';
      return check;
    }
    check.step = 'quick';
    if (vouchedByListing(recorded, version, records.get(path))) check.vouched = recorded.checksum_sha256;
    return check;
  });

  // 2. A HEAD (of the recorded version) only where the listing could not vouch.
  const toHead = checks.filter((c) => c.step === 'quick' && c.vouched === undefined);
  const heads = await mapLimit(toHead, HEAD_CONCURRENCY, (c) =>
    headObject(s3, bucket, c.key, c.recorded?.version_id),
  );
  const headed = new Map(toHead.map((c, i) => [c, heads[i]]));

  // 3. Deep, or a file S3 cannot vouch for (a backup imported without S3 checksums): hash the content.
  // Exactly the recorded version, as a restore reads it (an overwritten file was reported above).
  const toHash = checks.filter((c) => c.step === 'hash');
  let downloaded = 0;
  const hashes = await mapLimit(toHash, DOWNLOAD_CONCURRENCY, async (c) => {
    const actual = await hashAndCheck(s3, bucket, c.key, c.path, c.recorded?.version_id, pgRestore);
    downloaded++;
    options.onDownloaded?.({ path: c.path, bytes: c.size, downloaded, files: expected.length });
    return actual;
  });
  const hashed = new Map(toHash.map((c, i) => [c, hashes[i]]));

  // 4. The verdicts, in path order.
  for (const c of checks) {
    const { path, sha256, recorded } = c;
    if (c.step === 'quick' && recorded) {
      const s3Checksum = c.vouched ?? headed.get(c)?.checksumSHA256;
      if (!sameS3Checksum(s3Checksum, recorded.checksum_sha256)) {
        c.problems.push({
          path,
          kind: 'checksum',
          expected: recorded.checksum_sha256,
          actual: s3Checksum ?? 'none',
          detail: "S3's checksum differs from the one the manifest recorded",
        });
        continue;
      }
      // The object is the one recorded; now the manifest's own SHA-256.
      if (!isComposite(recorded.checksum_sha256)) {
        if (hexToBase64(sha256) === recorded.checksum_sha256) proof.s3FullObject++;
        else
          c.problems.push({
            path,
            kind: 'checksum',
            expected: sha256,
            actual: Buffer.from(recorded.checksum_sha256, 'base64').toString('hex'),
            detail: "the manifest's SHA-256 differs from S3's full-object SHA-256 of the stored bytes",
          });
        continue;
      }
      const upload = records.get(path);
      if (!upload || !sameS3Checksum(upload.checksumSHA256, recorded.checksum_sha256)) {
        proof.unproven.push(path);
      } else if (upload.sha256 === sha256) {
        proof.uploadRecord++;
      } else {
        c.problems.push({
          path,
          kind: 'checksum',
          expected: sha256,
          actual: upload.sha256,
          detail: "the manifest's SHA-256 differs from the one its upload computed (.runner/ record)",
        });
      }
      continue;
    }
    const actual = hashed.get(c);
    if (c.step !== 'hash' || !actual) continue;
    if (actual.sha256 !== sha256) {
      c.problems.push({ path, kind: 'checksum', expected: sha256, actual: actual.sha256 });
      continue;
    }
    proof.hashed++;
    if (actual.verdict?.status === 'ok') formats.checked++;
    else if (actual.verdict?.status === 'unchecked')
      formats.unchecked.push({ path, reason: actual.verdict.reason });
    else if (actual.verdict?.status === 'problem') {
      formats.checked++;
      c.problems.push({ path, kind: 'format', detail: actual.verdict.problem });
    }
  }
  const problems: VerifyProblem[] = checks.flatMap((c) => c.problems);
  for (const [path, version] of [...listed].sort(([a], [b]) => a.localeCompare(b))) {
    problems.push({ path, kind: 'unexpected', actual: version.size });
  }
  if (brokenRecords.length > 0) proof.brokenRecords = brokenRecords;
  return {
    target,
    backupId,
    ok: problems.length === 0,
    files: expected.length,
    downloaded,
    heads: toHead.length,
    problems,
    proof,
    ...(options.deep ? { formats } : {}),
    ...(archived.length > 0 ? { archived } : {}),
  };
}

/**
 * What a verification proved, in words, for the CLI and logs: how many files were held to the
 * manifest's SHA-256 and how, which could not be in quick mode, and (deep) the dumps' formats.
 */
export function describeProof(report: VerifyReport): string[] {
  const p = report.proof;
  const lines: string[] = [];
  if (p.hashed > 0) lines.push(`${p.hashed} downloaded and hashed against the manifest's SHA-256`);
  if (p.s3FullObject > 0)
    lines.push(
      `${p.s3FullObject} held to the manifest's SHA-256 by S3's full-object SHA-256 (nothing downloaded)`,
    );
  if (p.uploadRecord > 0)
    lines.push(
      `${p.uploadRecord} multipart: unchanged since upload (version, composite checksum) and the manifest's SHA-256 equals the upload's record; bytes not re-hashed (--deep does)`,
    );
  if (p.unproven.length > 0)
    lines.push(
      `${p.unproven.length} multipart without an upload record: S3's composite checksum matches, but only --deep can hold them to the manifest's SHA-256: ${p.unproven.join(', ')}`,
    );
  for (const b of p.brokenRecords ?? [])
    lines.push(
      `upload record ${b.key} is broken (${b.reason}): the files it recorded could not be held to the manifest's SHA-256 without downloading them; --deep does`,
    );
  if (report.formats) {
    lines.push(`${report.formats.checked} dump format(s) checked`);
    for (const u of report.formats.unchecked) lines.push(`${u.path}: format not checked: ${u.reason}`);
  }
  return lines;
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
      case 'format':
        return `${p.path}: malformed: ${p.detail}`;
      default:
        return `${p.path}: SHA-256 differs (${p.actual}, manifest says ${p.expected})${p.detail ? `: ${p.detail}` : ''}`;
    }
  });
}
