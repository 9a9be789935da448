/**
 * Artifact storage. From an S3 bucket: server-side copies into the backup (CopyObject, or
 * UploadPartCopy above 5 GiB), so artifact bytes never pass through the runner except to hash a
 * multipart copy. From a mounted path (EFS): each file streamed. Every object's SHA-256 is recorded.
 */
import { createReadStream, type Dirent } from 'node:fs';
import { readdir, readlink, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { artifactPath, backupPathProblem, fileKey } from '../../../../core/backup/layout.js';
import { type ArtifactsResult, type FileRecord, fileRecord } from '../../../../core/backup/results.js';
import { PENDING_TAGGING } from '../../../../core/backup/retention.js';
import { mapLimit } from '../../../../core/concurrency.js';
import { UnsupportedArtifactError } from '../../../../core/errors.js';
import { noteBytes } from '../../../../core/progress.js';
import { hashObject, listAll, storageError } from '../../../../core/s3/objects.js';
import { uploadStream } from '../../../../core/s3/upload-stream.js';
import { type RunContext, resultStamp, uploadOptions } from '../context.js';

const GiB = 1024 ** 3;

export type ArtifactSource = ArtifactsResult['source'];

export interface ArtifactOptions {
  /** Objects copied at once. */
  concurrency?: number;
  /** Above this size a copy is multipart (S3's CopyObject limit is 5 GiB). */
  multipartCopyThreshold?: number;
  copyPartSize?: number;
}

function copySource(bucket: string, key: string, versionId?: string): string {
  const source = `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  return versionId ? `${source}?versionId=${encodeURIComponent(versionId)}` : source;
}

/**
 * Server-side copy of one object (multipart above the threshold), with the copy's SHA-256. Backups
 * tag their copies "pending"; a restore's copies back into artifact storage carry no tag.
 */
export async function copyObject(
  s3: S3Client,
  from: { bucket: string; key: string; size: number; versionId?: string },
  to: { bucket: string; key: string; tagging?: string },
  options: Required<Pick<ArtifactOptions, 'multipartCopyThreshold' | 'copyPartSize'>>,
): Promise<{ versionId?: string; s3ChecksumSHA256: string; sha256: string }> {
  if (from.size <= options.multipartCopyThreshold) {
    const out = await s3.send(
      new CopyObjectCommand({
        Bucket: to.bucket,
        Key: to.key,
        CopySource: copySource(from.bucket, from.key, from.versionId),
        ChecksumAlgorithm: 'SHA256',
        MetadataDirective: 'COPY',
        TaggingDirective: 'REPLACE',
        ...(to.tagging ? { Tagging: to.tagging } : {}),
      }),
    );
    const checksum = out.CopyObjectResult?.ChecksumSHA256;
    // S3 copied the bytes server-side: progress for the task-token heartbeat all the same.
    noteBytes(from.size);
    // A single copy gets a full-object SHA-256 from S3; without one, hash the copy.
    const sha256 =
      checksum && !checksum.includes('-')
        ? Buffer.from(checksum, 'base64').toString('hex')
        : (await hashObject(s3, to.bucket, to.key, out.VersionId)).sha256;
    return {
      versionId: out.VersionId,
      s3ChecksumSHA256: checksum ?? Buffer.from(sha256, 'hex').toString('base64'),
      sha256,
    };
  }

  const created = await s3.send(
    new CreateMultipartUploadCommand({
      Bucket: to.bucket,
      Key: to.key,
      ChecksumAlgorithm: 'SHA256',
      ...(to.tagging ? { Tagging: to.tagging } : {}),
    }),
  );
  const uploadId = created.UploadId;
  try {
    const parts = [];
    for (let start = 0, n = 1; start < from.size; start += options.copyPartSize, n++) {
      const end = Math.min(start + options.copyPartSize, from.size) - 1;
      const part = await s3.send(
        new UploadPartCopyCommand({
          Bucket: to.bucket,
          Key: to.key,
          UploadId: uploadId,
          PartNumber: n,
          CopySource: copySource(from.bucket, from.key, from.versionId),
          CopySourceRange: `bytes=${start}-${end}`,
        }),
      );
      noteBytes(end - start + 1);
      parts.push({
        PartNumber: n,
        ETag: part.CopyPartResult?.ETag,
        ChecksumSHA256: part.CopyPartResult?.ChecksumSHA256,
      });
    }
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: to.bucket,
        Key: to.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
    // S3 keeps a composite checksum for multipart objects; the manifest needs the whole file's SHA-256.
    const { sha256 } = await hashObject(s3, to.bucket, to.key, done.VersionId);
    return {
      versionId: done.VersionId,
      s3ChecksumSHA256: done.ChecksumSHA256 ?? Buffer.from(sha256, 'hex').toString('base64'),
      sha256,
    };
  } catch (err) {
    await s3
      .send(new AbortMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, UploadId: uploadId }))
      .catch(() => undefined);
    throw err;
  }
}

/** How many refused entries an UnsupportedArtifactError names before it summarises the rest. */
const NAMED_ENTRIES = 20;

/**
 * Every regular file under `dir`, sorted. Anything else that holds data or points at data, a
 * symbolic link (to a file, to a directory, or dangling), a FIFO, a socket or a device, cannot be
 * captured faithfully as an object, and leaving it out would make a backup that looks complete but
 * is not: such entries fail the backup with UnsupportedArtifactError, which names each of them
 * (a link with its target), so the operator can replace it by the file itself or remove it.
 * Directories are walked, not captured: an empty directory holds no artifact.
 *
 * @throws UnsupportedArtifactError naming every entry that is not a regular file or a directory.
 */
export async function walkArtifactTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  const files: string[] = [];
  const refused: string[] = [];
  for (const entry of entries) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile()) files.push(path);
    else if (entry.isDirectory()) continue;
    else refused.push(`${relative(dir, path)} (${await describeEntry(entry, path)})`);
  }
  if (refused.length > 0) {
    refused.sort();
    const named = refused.slice(0, NAMED_ENTRIES).map((r) => `  - ${r}`);
    if (refused.length > NAMED_ENTRIES) named.push(`  - and ${refused.length - NAMED_ENTRIES} more`);
    throw new UnsupportedArtifactError(
      `artifact storage ${dir} holds ${refused.length} entr${refused.length === 1 ? 'y' : 'ies'} that ` +
        'a backup cannot capture as files (only regular files and directories are backed up; ' +
        'replace each by the file it stands for, or remove it):\n' +
        named.join('\n'),
    );
  }
  return files.sort();
}

/**
 * Refuses, before anything is copied, artifact names that would give a backup path every manifest
 * reader refuses (core/backup/layout.ts backupPathProblem: `..` or empty segments, backslashes,
 * control characters): such a backup would look complete and be unrestorable. S3 keys may hold any
 * of these; so may file names (a backslash).
 *
 * @throws UnsupportedArtifactError naming each refused name and why.
 */
function refuseUnsafePaths(where: string, relativeNames: readonly string[]): void {
  const refused = relativeNames.flatMap((name) => {
    // artifactPath drops leading slashes, so `p//x` would silently become (and collide with) `p/x`.
    const problem = name.startsWith('/')
      ? 'starts with "/" (an empty segment)'
      : backupPathProblem(artifactPath(name));
    return problem ? [`${JSON.stringify(name)} ${problem}`] : [];
  });
  if (refused.length === 0) return;
  const named = refused.slice(0, NAMED_ENTRIES).map((r) => `  - ${r}`);
  if (refused.length > NAMED_ENTRIES) named.push(`  - and ${refused.length - NAMED_ENTRIES} more`);
  throw new UnsupportedArtifactError(
    `${where} holds ${refused.length} name(s) that cannot be a file's path in a backup ` +
      `(rename them; nothing was copied):\n${named.join('\n')}`,
  );
}

async function describeEntry(entry: Dirent, path: string): Promise<string> {
  if (entry.isSymbolicLink()) {
    const target = await readlink(path).catch(() => '?');
    return `symbolic link to ${target}`;
  }
  if (entry.isFIFO()) return 'named pipe';
  if (entry.isSocket()) return 'socket';
  if (entry.isBlockDevice() || entry.isCharacterDevice()) return 'device';
  return 'not a regular file';
}

export async function backupArtifacts(
  ctx: RunContext,
  source: ArtifactSource,
  options: ArtifactOptions = {},
): Promise<ArtifactsResult> {
  const startedAt = new Date().toISOString();
  const log = ctx.logger.child({ component: 'artifacts', source: source.type });
  const concurrency = options.concurrency ?? 8;
  const copyOptions = {
    multipartCopyThreshold: options.multipartCopyThreshold ?? 5 * GiB,
    copyPartSize: options.copyPartSize ?? 1 * GiB,
  };

  let files: FileRecord[];
  try {
    if (source.type === 's3') {
      const objects = (await listAll(ctx.s3, source.bucket, source.prefix)).filter(
        (o) => o.Key && !o.Key.endsWith('/'),
      );
      log.info('copying artifacts', {
        bucket: source.bucket,
        prefix: source.prefix,
        objects: objects.length,
      });
      refuseUnsafePaths(
        `artifact bucket s3://${source.bucket}/${source.prefix}`,
        objects.map((o) => (o.Key as string).slice(source.prefix.length)),
      );
      files = await mapLimit(objects, concurrency, async (object) => {
        const path = artifactPath((object.Key as string).slice(source.prefix.length));
        const key = fileKey(ctx.target, ctx.backupId, path);
        const size = object.Size ?? 0;
        const copied = await copyObject(
          ctx.s3,
          { bucket: source.bucket, key: object.Key as string, size },
          { bucket: ctx.bucket, key, tagging: PENDING_TAGGING },
          copyOptions,
        );
        return fileRecord(path, { key, size, ...copied });
      });
    } else {
      const paths = await walkArtifactTree(source.path);
      refuseUnsafePaths(
        `artifact storage ${source.path}`,
        paths.map((p) => relative(source.path, p).split(sep).join('/')),
      );
      log.info('uploading artifacts', { path: source.path, files: paths.length });
      const upload = async (file: string): Promise<FileRecord> => {
        const path = artifactPath(relative(source.path, file).split(sep).join('/'));
        const key = fileKey(ctx.target, ctx.backupId, path);
        const uploaded = await uploadStream(ctx.s3, createReadStream(file), uploadOptions(ctx, key));
        return fileRecord(path, uploaded);
      };
      // Memory stays bounded: small files (one PUT each, filling a fraction of one part buffer) go
      // several at a time, large files (each with all its part buffers in use) one after another.
      const sizes = await Promise.all(paths.map(async (p) => ({ p, size: (await stat(p)).size })));
      const small = sizes.filter((f) => f.size < ctx.partSize).map((f) => f.p);
      const large = sizes.filter((f) => f.size >= ctx.partSize).map((f) => f.p);
      files = [...(await mapLimit(small, concurrency, upload)), ...(await mapLimit(large, 1, upload))].sort(
        (a, b) => a.path.localeCompare(b.path),
      );
    }
  } catch (err) {
    throw storageError(err, 'copying artifacts');
  }
  log.info('artifacts captured', { objects: files.length, bytes: files.reduce((n, f) => n + f.size, 0) });
  return {
    ...resultStamp(ctx, startedAt),
    component: 'artifacts',
    source,
    files,
  };
}
