import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  type _Object,
  GetObjectCommand,
  HeadObjectCommand,
  type ListObjectsV2CommandOutput,
  ListObjectVersionsCommand,
  PutObjectCommand,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { z } from 'zod';
import { BackupArchivedError, StorageError } from '../errors.js';

export interface PutResult {
  versionId?: string;
  size: number;
  /** Lowercase hex, as the manifest records it. */
  sha256: string;
  /** Base64, as S3 stores and returns it for a single PUT (a full-object checksum). */
  checksumSHA256: string;
}

/** One PUT with the body's SHA-256 sent along, so S3 checks it and keeps it as the object's checksum. */
export async function putObject(
  s3: S3Client,
  bucket: string,
  key: string,
  body: Buffer,
  contentType?: string,
  /** Object tags in the URL query form ("retention=pending"). */
  tagging?: string,
): Promise<PutResult> {
  const digest = createHash('sha256').update(body).digest();
  const checksumSHA256 = digest.toString('base64');
  try {
    const out = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ContentType: contentType,
        ChecksumAlgorithm: 'SHA256',
        ChecksumSHA256: checksumSHA256,
        ...(tagging ? { Tagging: tagging } : {}),
      }),
    );
    return { versionId: out.VersionId, size: body.length, sha256: digest.toString('hex'), checksumSHA256 };
  } catch (err) {
    throw storageError(err, `writing s3://${bucket}/${key}`);
  }
}

/** Writes a small JSON object (see putObject). */
export function putJson(
  s3: S3Client,
  bucket: string,
  key: string,
  value: unknown,
  indent: number | string = 2,
  tagging?: string,
): Promise<PutResult> {
  return putObject(
    s3,
    bucket,
    key,
    Buffer.from(`${JSON.stringify(value, null, indent)}\n`),
    'application/json',
    tagging,
  );
}

/** Reads a JSON object and validates it; undefined when there is no such key. */
export async function getJson<T extends z.ZodType>(
  s3: S3Client,
  bucket: string,
  key: string,
  schema: T,
): Promise<z.output<T> | undefined> {
  let text: string;
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    text = (await out.Body?.transformToString()) ?? '';
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw storageError(err, `reading s3://${bucket}/${key}`);
  }
  return schema.parse(JSON.parse(text));
}

/**
 * Every page of a ListObjectsV2 listing (`Prefix`, `Delimiter` as given), through the SDK's
 * paginator (paginateListObjectsV2, which follows NextContinuationToken).
 * @param what what is being listed, for the error ("listing s3://bucket/prefix")
 * @throws StorageError naming `what` when S3 fails on any page
 */
export async function* listPages(
  s3: S3Client,
  input: { Bucket: string; Prefix?: string; Delimiter?: string },
  what: string,
): AsyncGenerator<ListObjectsV2CommandOutput> {
  try {
    for await (const page of paginateListObjectsV2({ client: s3 }, input)) yield page;
  } catch (err) {
    throw storageError(err, what);
  }
}

/** Every object below a prefix (all pages). */
export async function listAll(s3: S3Client, bucket: string, prefix: string): Promise<_Object[]> {
  const objects: _Object[] = [];
  for await (const page of listPages(
    s3,
    { Bucket: bucket, Prefix: prefix },
    `listing s3://${bucket}/${prefix}`,
  ))
    objects.push(...(page.Contents ?? []));
  return objects;
}

/**
 * The current version of one key, as ListObjectVersions reports it (AWS S3 API Reference,
 * "ObjectVersion": Key, VersionId, IsLatest, Size, ETag, ChecksumAlgorithm, ChecksumType).
 */
export interface ListedVersion {
  key: string;
  /** Bytes. */
  size: number;
  /** S3's version id; "null" for an object written while the bucket was unversioned. */
  versionId?: string;
  etag?: string;
  /**
   * The algorithms S3 keeps a checksum with for this version (e.g. ["SHA256"]); undefined when the
   * server does not report them (moto's ListObjectVersions does not, real S3 does).
   */
  checksumAlgorithms?: string[];
  /** FULL_OBJECT or COMPOSITE, where reported. */
  checksumType?: string;
  /** Its S3 storage class (STANDARD, GLACIER_IR, GLACIER, DEEP_ARCHIVE, ...), where reported. */
  storageClass?: string;
  /** When this version was written (LastModified): its creation, which S3 Lifecycle counts from. */
  lastModified?: Date;
}

/**
 * The current version of every key below a prefix, from ListObjectVersions: one request per 1,000
 * versions (S3 returns at most 1,000 per page), instead of one HeadObject per key. A key whose latest
 * version is a delete marker is absent (as ListObjectsV2 would leave it out); noncurrent versions are
 * skipped. Pages come in key order, each key's versions newest first (API Reference,
 * "ListObjectVersions"), and `IsLatest` marks the current one.
 * @returns key → its current version
 * @throws StorageError when S3 fails
 */
export async function listCurrentVersions(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<Map<string, ListedVersion>> {
  const current = new Map<string, ListedVersion>();
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  do {
    try {
      const page = await s3.send(
        new ListObjectVersionsCommand({
          Bucket: bucket,
          Prefix: prefix,
          ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
          ...(versionIdMarker !== undefined ? { VersionIdMarker: versionIdMarker } : {}),
        }),
      );
      for (const v of page.Versions ?? []) {
        if (!v.IsLatest || v.Key === undefined) continue;
        current.set(v.Key, {
          key: v.Key,
          size: v.Size ?? 0,
          ...(v.VersionId ? { versionId: v.VersionId } : {}),
          ...(v.ETag ? { etag: v.ETag } : {}),
          ...(v.ChecksumAlgorithm?.length ? { checksumAlgorithms: [...v.ChecksumAlgorithm] } : {}),
          ...(v.ChecksumType ? { checksumType: v.ChecksumType } : {}),
          ...(v.StorageClass ? { storageClass: v.StorageClass } : {}),
          ...(v.LastModified ? { lastModified: v.LastModified } : {}),
        });
      }
      if (page.IsTruncated) {
        keyMarker = page.NextKeyMarker;
        versionIdMarker = page.NextVersionIdMarker;
        if (keyMarker === undefined)
          throw new StorageError(
            `listing the versions of s3://${bucket}/${prefix} failed: a truncated page gave no NextKeyMarker`,
          );
      } else keyMarker = undefined;
    } catch (err) {
      throw storageError(err, `listing the versions of s3://${bucket}/${prefix}`);
    }
  } while (keyMarker !== undefined);
  return current;
}

export interface ObjectHead {
  size: number;
  versionId?: string;
  checksumSHA256?: string;
  /** Its storage class when not STANDARD (S3 leaves the header out for STANDARD). */
  storageClass?: string;
  /**
   * An archived object's restore, as S3's x-amz-restore header says it: `ongoing-request="true"`
   * while it is being restored, `ongoing-request="false", expiry-date="..."` once it can be read.
   */
  restore?: string;
}

/** HeadObject with the checksum asked for (ChecksumMode ENABLED); undefined when there is no such key. */
export async function headObject(
  s3: S3Client,
  bucket: string,
  key: string,
  /** That version's head, instead of the current one. */
  versionId?: string,
): Promise<ObjectHead | undefined> {
  try {
    const out = await s3.send(
      new HeadObjectCommand({
        Bucket: bucket,
        Key: key,
        ChecksumMode: 'ENABLED',
        ...(versionId ? { VersionId: versionId } : {}),
      }),
    );
    return {
      size: out.ContentLength ?? 0,
      versionId: out.VersionId,
      checksumSHA256: out.ChecksumSHA256,
      ...(out.StorageClass ? { storageClass: out.StorageClass } : {}),
      ...(out.Restore ? { restore: out.Restore } : {}),
    };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw storageError(err, `reading the head of s3://${bucket}/${key}`);
  }
}

/**
 * An object's body as a stream: the exact version when one is given, else the current one.
 * `abortSignal` stops the request (the SDK's per-call `abortSignal` option) while it waits for S3.
 */
export async function openObject(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId?: string,
  abortSignal?: AbortSignal,
): Promise<Readable> {
  try {
    const out = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }),
      abortSignal ? { abortSignal } : {},
    );
    return out.Body as Readable;
  } catch (err) {
    throw storageError(err, `reading s3://${bucket}/${key}`);
  }
}

/** Streams an object through SHA-256 (nothing kept in memory) and returns its hex digest and size. */
export async function hashObject(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId?: string,
): Promise<{ sha256: string; size: number }> {
  const body = await openObject(s3, bucket, key, versionId);
  try {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of body) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return { sha256: hash.digest('hex'), size };
  } catch (err) {
    throw storageError(err, `reading s3://${bucket}/${key}`);
  }
}

/** S3 compares a composite checksum as `base64-N`; some servers omit the suffix. */
export function sameS3Checksum(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  return a.replace(/-\d+$/, '') === b.replace(/-\d+$/, '');
}

export function isAwsError(err: unknown): err is Error & { $metadata: { httpStatusCode?: number } } {
  return err instanceof Error && '$metadata' in err;
}

export function isNotFound(err: unknown): boolean {
  return (
    isAwsError(err) &&
    (err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404)
  );
}

/**
 * S3's own errors become StorageError (which the state machine retries), naming what was being
 * done; any other error keeps its name. InvalidObjectState, S3's answer to reading an archived
 * object that is not restored (S3 API Reference, "GetObject"), becomes BackupArchived instead, which
 * no retry can help: it names the storage class and how to restore the backup.
 */
export function storageError(err: unknown, doing: string): unknown {
  if (isAwsError(err) && err.name === 'InvalidObjectState') {
    const cls = (err as { StorageClass?: string }).StorageClass ?? 'an archive storage class';
    return new BackupArchivedError(
      `${doing} failed: the object is in ${cls} (moved there by retention.coldStorage) and S3 refuses to read it until it is restored (InvalidObjectState): restore the backup's archived objects first with "infrahub-backup thaw <backup id> --target <target>" (or aws s3api restore-object for each), wait until they are restored (hours), then try again`,
      { cause: err },
    );
  }
  if (isAwsError(err))
    return new StorageError(`${doing} failed: ${err.name}: ${err.message}`, { cause: err });
  return err;
}

/**
 * S3's answer to a conditional write that met a concurrent operation on the same key: 409
 * ConditionalRequestConflict, "retry the upload" (S3 API Reference, PutObject, If-None-Match and
 * If-Match). The SDK's retry strategy does not retry a 409.
 */
const isConditionalConflict = (err: unknown) =>
  isAwsError(err) && (err.name === 'ConditionalRequestConflict' || err.$metadata.httpStatusCode === 409);

/** How many times a conditional write is sent in all while S3 answers ConditionalRequestConflict. */
export const CONDITIONAL_WRITE_ATTEMPTS = 4;

/**
 * Sends `write` (a conditional PutObject) again while S3 answers 409 ConditionalRequestConflict, at
 * most CONDITIONAL_WRITE_ATTEMPTS times in all, 50-250 ms apart (jittered): the retried write then
 * gets the precondition's own answer (success, or 412 once the concurrent write has landed).
 * @throws what the last attempt threw
 */
export async function conditionalWrite<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await write();
    } catch (err) {
      if (!isConditionalConflict(err) || attempt >= CONDITIONAL_WRITE_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
    }
  }
}
