/**
 * Interoperability with OpsMill's `infrahub-backup`: its tarball is
 * `infrahub_backup_YYYYMMDD_HHMMSS.tar.gz`, every entry under `backup/`, the manifest at
 * `backup/backup_information.json` (docs/architecture.md, "Data layout in S3").
 * - export: each file streamed from its recorded S3 version into the archive (hashed on the way and
 *   checked against the manifest), written under a temporary name and renamed when complete; nothing
 *   is held in memory or on disk beyond the archive itself.
 * - import: the archive streamed entry by entry into S3 (tagged "pending", hashed on the way); then
 *   every checksum checked against its backup_information.json, and only then the manifest written,
 *   last, with the backup's retention class, so a bad archive leaves an incomplete backup, never one
 *   that a restore would use.
 */

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, constants, link, rm, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import tar from 'tar-stream';
import { isComplete, isFutureBackupId } from '../../core/backup/catalog.js';
import {
  dumpFormatError,
  type FormatCheck,
  FormatProblem,
  type FormatVerdict,
  formatCheckFor,
  ZLIB_CHUNK_BYTES,
} from '../../core/backup/formats.js';
import {
  BackupIdSchema,
  backupPathProblem,
  fileKey,
  MANIFEST_FILE,
  parseBackupId,
  resultKey,
} from '../../core/backup/layout.js';
import { listProblems, type Manifest, parseManifest, validateManifest } from '../../core/backup/manifest.js';
import { fileRecord } from '../../core/backup/results.js';
import { PENDING_TAGGING } from '../../core/backup/retention.js';
import { sealBackup } from '../../core/backup/seal.js';
import type { Retention } from '../../core/config/schema.js';
import {
  DumpFormatError,
  IncompatibleBackupError,
  InvalidInputError,
  ManifestError,
} from '../../core/errors.js';
import { hashing } from '../../core/s3/download.js';
import { openObject, putJson } from '../../core/s3/objects.js';
import { uploadStream } from '../../core/s3/upload-stream.js';

/** The largest backup_information.json an import reads (ours are a few KB, even for large artifact stores). */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
export const ARCHIVE_ROOT = 'backup/';

export type Progress = (event: {
  phase: 'file';
  path: string;
  bytes: number;
  done: number;
  total: number;
}) => void;

/**
 * Writes `manifest`'s backup as `<outDir>/<backup id>.tar.gz` (module docstring: each file streamed
 * from its recorded S3 version, held to the manifest's size and SHA-256; the manifest last).
 *
 * @returns the archive's path, its number of files (the manifest not counted) and their bytes
 * @throws ManifestError for an unsafe path or a file without a stored copy; IncompatibleBackupError
 *   when a file read differs from the manifest; InvalidInputError for an `outDir` that is missing or
 *   not writable, or an archive that already exists (writeArchive)
 */
export async function exportBackup(
  s3: S3Client,
  bucket: string,
  target: string,
  /** The backup's manifest, as read by the caller (only complete backups have one). */
  manifest: Manifest,
  outDir: string,
  onProgress?: Progress,
): Promise<{ file: string; files: number; bytes: number }> {
  const backupId = manifest.backup_id;
  // The caller's manifest was validated when read; checked again here because a path becomes a tar
  // entry name that another tool will extract: nothing absolute, no "..", nothing outside backup/.
  const unsafe = Object.keys(manifest.checksums).flatMap((p) => {
    const problem = backupPathProblem(p);
    return problem ? [`${JSON.stringify(p)} ${problem}`] : [];
  });
  if (unsafe.length > 0)
    throw new ManifestError(
      `${target}/${backupId}: refusing to export unsafe paths (no archive written):\n${listProblems(unsafe)}`,
    );
  const file = join(outDir, `${backupId}.tar.gz`);
  await assertWritableOutDir(outDir, file);
  const paths = Object.keys(manifest.checksums).sort();
  const total = paths.reduce((n, p) => n + (manifest.sizes?.[p] ?? 0), 0);
  let done = 0;
  const mtime = new Date(manifest.created_at);
  await writeArchive(file, async (pack) => {
    for (const path of paths) {
      const stored = manifest.s3?.[path];
      const size = manifest.sizes?.[path];
      if (!stored || size === undefined)
        throw new ManifestError(`${target}/${backupId}: no stored copy of ${path}`);
      const body = await openObject(s3, bucket, stored.key, stored.version_id);
      const hash = createHash('sha256');
      const entry = pack.entry({ name: `${ARCHIVE_ROOT}${path}`, size, mode: 0o644, mtime });
      let read = 0;
      try {
        await pipeline(
          body,
          hashing(hash, (n) => {
            read += n;
            done += n;
          }),
          entry,
        );
      } catch (err) {
        // tar-stream ends an entry whose bytes differ from its header's size with a bare "size mismatch".
        if (read !== size)
          throw new IncompatibleBackupError(
            `${path} read from S3 (${stored.key}) has ${read} bytes, the manifest records ${size}: no archive written`,
          );
        throw err;
      }
      if (read !== size)
        throw new IncompatibleBackupError(
          `${path} read from S3 (${stored.key}) has ${read} bytes, the manifest records ${size}: no archive written`,
        );
      const sha256 = hash.digest('hex');
      if (sha256 !== manifest.checksums[path])
        throw new IncompatibleBackupError(
          `${path} read from S3 hashes to ${sha256}, the manifest records ${manifest.checksums[path]}`,
        );
      onProgress?.({ phase: 'file', path, bytes: size, done, total });
    }
    addManifestEntry(pack, manifest, mtime);
  });
  return { file, files: paths.length, bytes: total };
}

/** `backup/backup_information.json`: the manifest as infrahub-backup writes it (4-space indented). */
export function addManifestEntry(pack: tar.Pack, manifest: Manifest, mtime: Date): void {
  const json = Buffer.from(`${JSON.stringify(manifest, null, 4)}\n`);
  pack.entry({ name: `${ARCHIVE_ROOT}${MANIFEST_FILE}`, size: json.length, mode: 0o644, mtime }, json);
}

/**
 * Writes the gzip-compressed tar `file` with the entries `fill` adds: under the temporary name
 * `<file>.partial`, then linked to `file` once complete (link() fails when the name exists, so an
 * archive written meanwhile is never replaced) and the temporary name removed. Whatever fails, no
 * `file` and no `.partial` is left.
 *
 * @throws InvalidInputError when `file` appeared meanwhile; what `fill` throws
 */
export async function writeArchive(file: string, fill: (pack: tar.Pack) => Promise<void>): Promise<void> {
  const partial = `${file}.partial`;
  const pack = tar.pack();
  const written = pipeline(
    pack,
    createGzip({ level: 6, chunkSize: ZLIB_CHUNK_BYTES }),
    createWriteStream(partial),
  );
  try {
    await fill(pack);
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy();
    await written.catch(() => undefined);
    await rm(partial, { force: true });
    throw err;
  }
  try {
    await link(partial, file);
  } catch (err) {
    await rm(partial, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new InvalidInputError('export destination', [
        `${file} already exists: remove it or choose another --out`,
      ]);
    throw err;
  }
  await unlink(partial);
}

/**
 * Refuses, before anything is read from S3, an output folder that is missing, not a folder or not
 * writable by this process, and an archive name that already exists (an export never replaces a file).
 *
 * @throws InvalidInputError naming the folder or file and the problem
 */
export async function assertWritableOutDir(outDir: string, file: string): Promise<void> {
  const info = await stat(outDir).catch(() => undefined);
  if (!info)
    throw new InvalidInputError('export destination', [`--out ${outDir} does not exist: create it first`]);
  if (!info.isDirectory())
    throw new InvalidInputError('export destination', [`--out ${outDir} is not a folder`]);
  try {
    await access(outDir, constants.W_OK);
  } catch {
    throw new InvalidInputError('export destination', [`--out ${outDir} is not writable by this user`]);
  }
  if (await stat(file).catch(() => undefined))
    throw new InvalidInputError('export destination', [
      `${file} already exists: remove it or choose another --out`,
    ]);
}

export interface ImportResult {
  target: string;
  backupId: string;
  files: number;
  bytes: number;
  retentionClass?: string;
  /** Dumps whose format could not be checked (no usable pg_restore here), with why. */
  formatsUnchecked?: Array<{ path: string; reason: string }>;
}

/** The backup id a tarball's name carries (`infrahub_backup_YYYYMMDD_HHMMSS.tar.gz`). */
export function backupIdOfArchive(file: string): string | undefined {
  const name = basename(file).replace(/\.tar\.gz$|\.tgz$/, '');
  return BackupIdSchema.safeParse(name).success ? name : undefined;
}

export async function importTarball(
  s3: S3Client,
  bucket: string,
  file: string,
  target: string,
  options: {
    retention?: Retention;
    partSize?: number;
    onProgress?: Progress;
    /** The pg_restore that checks `prefect.dump` (default `$PG_BINDIR/pg_restore`, else `pg_restore` on PATH). */
    pgRestore?: string;
    /** The time an archive's date is checked against (default the clock). */
    now?: Date;
  },
): Promise<ImportResult> {
  const named = backupIdOfArchive(file);
  if (!named)
    throw new ManifestError(
      `${basename(file)}: the archive's name must be infrahub_backup_YYYYMMDD_HHMMSS.tar.gz`,
    );
  // No backup can have been taken later than now: such an archive would be "latest" for every
  // restore and drill and keep the RPO alarm quiet until its date (clock skew allowed: CLOCK_SKEW_MS).
  const now = options.now ?? new Date();
  if (isFutureBackupId(named, now))
    throw new ManifestError(
      `${basename(file)} is dated ${parseBackupId(named)?.toISOString()}, later than now (${now.toISOString()}): no backup can have been taken then; nothing was imported (rename the archive to the time it was taken)`,
    );
  if (await isComplete(s3, bucket, target, named))
    throw new IncompatibleBackupError(`${target}/${named} already exists: an import never replaces a backup`);

  const uploaded = new Map<
    string,
    { key: string; size: number; sha256: string; versionId?: string; s3ChecksumSHA256: string }
  >();
  let metadata: Manifest | undefined;
  const unexpected: string[] = [];
  const extract = tar.extract();
  let done = 0;
  const pgRestore =
    options.pgRestore ?? (process.env.PG_BINDIR ? join(process.env.PG_BINDIR, 'pg_restore') : 'pg_restore');
  const formatsUnchecked: Array<{ path: string; reason: string }> = [];
  const formatProblems: string[] = [];
  /** Passes an entry's bytes through while feeding its format check; the verdict is recorded at the end. */
  async function* fedTo(source: AsyncIterable<Buffer>, check: FormatCheck, path: string) {
    let verdict: FormatVerdict | undefined;
    let feeding = true;
    try {
      for await (const chunk of source) {
        if (feeding)
          await check.write(chunk).catch((err: unknown) => {
            if (!(err instanceof FormatProblem)) throw err;
            verdict = { status: 'problem', format: check.format, problem: err.problem };
            feeding = false;
            check.abort();
          });
        yield chunk;
      }
      if (feeding) verdict = await check.end();
      feeding = false;
    } finally {
      if (feeding) check.abort();
    }
    if (verdict?.status === 'unchecked') formatsUnchecked.push({ path, reason: verdict.reason });
    const error = verdict?.status === 'problem' ? dumpFormatError(path, verdict, '') : undefined;
    if (error) formatProblems.push(error.message.replace(/; $/, ''));
  }
  extract.on('entry', (header, stream, next) => {
    const handle = async () => {
      const name = header.name.replace(/^\.\//, '');
      // Directories carry nothing (tar-stream applies PAX headers itself). Links, devices and FIFOs
      // cannot be a backup file, and an archive holding one is refused rather than imported without it.
      if (header.type === 'directory') return stream.resume();
      if (header.type !== 'file')
        throw new ManifestError(
          `${name} in ${basename(file)} is a ${header.type}${header.linkname ? ` (to ${header.linkname})` : ''}, not a file: an archive with links or devices is not imported; nothing was made a backup (objects already uploaded stay "pending" and expire)`,
        );
      if (!name.startsWith(ARCHIVE_ROOT)) {
        unexpected.push(name);
        return stream.resume();
      }
      const path = name.slice(ARCHIVE_ROOT.length);
      if (path === MANIFEST_FILE) {
        const chunks: Buffer[] = [];
        let size = 0;
        // A manifest is kilobytes; past the bound the entry is read to its end (the archive goes
        // on) but not kept, so a compressed "bomb" cannot fill memory.
        for await (const chunk of stream) {
          size += (chunk as Buffer).length;
          if (size <= MAX_MANIFEST_BYTES) chunks.push(chunk as Buffer);
        }
        if (size > MAX_MANIFEST_BYTES)
          throw new ManifestError(
            `${name} in ${basename(file)} is larger than ${MAX_MANIFEST_BYTES / 1024 / 1024} MiB: not a manifest`,
          );
        // Validated like our own manifests: shape, safe paths, components with their files, Neo4j
        // database names (ManifestError naming the archive and each problem).
        let text: string;
        try {
          text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
        } catch {
          throw new ManifestError(`${name} in ${basename(file)} is not valid UTF-8: not a manifest`);
        }
        metadata = parseManifest(text, `${name} in ${basename(file)}`);
        return;
      }
      const unsafe = backupPathProblem(path);
      if (unsafe)
        throw new ManifestError(
          `${name} in ${basename(file)}: ${unsafe}; nothing was made a backup (objects already uploaded stay "pending" and expire)`,
        );
      const key = fileKey(target, named, path);
      // tar-stream's entries are streamx streams; a PassThrough makes one a Node.js Readable.
      // pipe() passes no error on: an archive cut inside this entry fails the entry's stream, which
      // must fail the upload (and not be an unhandled error) while the import is refused as a whole.
      const source = stream.pipe(new PassThrough());
      stream.on('error', (err: Error) => source.destroy(err));
      // Dumps are checked on the bytes uploaded, as at backup time (core/backup/formats.ts). The
      // upload goes on after a problem (tagged "pending", it expires) so that its SHA-256 is still
      // compared; a malformed dump refuses the import below, naming it.
      const check = formatCheckFor(path, { pgRestore });
      const stored = await uploadStream(s3, check ? Readable.from(fedTo(source, check, path)) : source, {
        bucket,
        key,
        tagging: PENDING_TAGGING,
        ...(options.partSize ? { partSize: options.partSize } : {}),
      });
      uploaded.set(path, stored);
      done += stored.size;
      options.onProgress?.({ phase: 'file', path, bytes: stored.size, done, total: 0 });
    };
    handle().then(
      () => next(),
      (err: unknown) => next(err as Error),
    );
  });
  try {
    await pipeline(createReadStream(file), createGunzip({ chunkSize: ZLIB_CHUNK_BYTES }), extract);
  } catch (err) {
    // zlib and tar-stream name no file ("incorrect header check", "unexpected end of file"): a
    // malformed archive is refused naming it; our own named errors pass as they are.
    if (err instanceof Error && !('name' in err && err.name !== 'Error')) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw err;
      throw new ManifestError(
        `${basename(file)} is not a readable .tar.gz archive (${err.message}); nothing was made a backup (objects already uploaded stay "pending" and expire)`,
      );
    }
    throw err;
  }

  const info = metadata as Manifest | undefined;
  if (!info) throw new ManifestError(`${basename(file)} holds no ${ARCHIVE_ROOT}${MANIFEST_FILE}`);
  if (info.backup_id !== named)
    throw new ManifestError(
      `${basename(file)} is named ${named}, but its ${MANIFEST_FILE} says ${info.backup_id}`,
    );
  const problems: string[] = [];
  // Validated like our own manifests when read; an archive must also hold something to restore
  // (our own backups may keep an empty artifact store, an import of nothing is no backup).
  if (Object.keys(info.checksums).length === 0)
    throw new ManifestError(
      `${ARCHIVE_ROOT}${MANIFEST_FILE} in ${basename(file)} lists no file: an archive of nothing is not imported as a backup`,
    );
  for (const [path, sha256] of Object.entries(info.checksums)) {
    const got = uploaded.get(path);
    if (!got) problems.push(`${path}: missing from the archive`);
    else if (got.sha256 !== sha256)
      problems.push(`${path}: sha256 ${got.sha256}, backup_information.json says ${sha256}`);
  }
  for (const path of uploaded.keys())
    if (!(path in info.checksums)) problems.push(`${path}: in the archive but not in its checksums`);
  for (const name of unexpected) problems.push(`${name}: outside backup/`);
  if (problems.length > 0) {
    problems.push(...formatProblems);
    throw new IncompatibleBackupError(
      `${basename(file)} does not match its ${MANIFEST_FILE}; nothing was made a backup (the uploaded objects stay "pending" and expire):\n${listProblems(problems)}`,
    );
  }

  const assembled = {
    ...info,
    // What our restore needs and infrahub-backup does not record: which database each file holds.
    ...(info.neo4j ? {} : neo4jFromPaths(Object.keys(info.checksums))),
    target,
    sizes: Object.fromEntries([...uploaded].map(([p, u]) => [p, u.size])),
    s3: Object.fromEntries(
      [...uploaded].map(([p, u]) => [
        p,
        {
          key: u.key,
          ...(u.versionId ? { version_id: u.versionId } : {}),
          checksum_sha256: u.s3ChecksumSHA256,
        },
      ]),
    ),
    imported_from: basename(file),
  };
  // The manifest as every reader will see it (the Neo4j database names derived from file names
  // included), checked before anything is written.
  const manifest: Manifest = validateManifest(
    assembled,
    `${MANIFEST_FILE} of ${basename(file)} imported as ${target}/${named}`,
    { target, backupId: named },
  );
  // The files are what the manifest says; a dump among them that is not its format refuses the import.
  if (formatProblems.length > 0)
    throw new DumpFormatError(
      `${basename(file)} holds a malformed dump; nothing was made a backup (the uploaded objects stay "pending" and expire):\n${listProblems(formatProblems)}`,
    );
  // What the upload measured, kept beside the backup like a runner's result: quick verification
  // holds the manifest's SHA-256 of a multipart object to this record (core/backup/verify.ts).
  const recordKey = resultKey(target, named, 'import');
  const record = await putJson(
    s3,
    bucket,
    recordKey,
    {
      target,
      backupId: named,
      component: 'import',
      files: [...uploaded].map(([p, u]) => fileRecord(p, u)),
    },
    2,
    PENDING_TAGGING,
  );
  // Sealed as the manifest step seals a backup: classified, every object re-tagged, the manifest last.
  const sealed = await sealBackup(s3, bucket, manifest, {
    target,
    backupId: named,
    retention: options.retention,
    records: [{ key: recordKey, versionId: record.versionId }],
  });
  return {
    target,
    backupId: named,
    files: uploaded.size,
    bytes: [...uploaded.values()].reduce((n, u) => n + u.size, 0),
    ...(sealed.retentionClass ? { retentionClass: sealed.retentionClass } : {}),
    ...(formatsUnchecked.length > 0 ? { formatsUnchecked } : {}),
  };
}

/**
 * The `neo4j` section our manifest keeps (method and files per database), from the file names an
 * infrahub-backup archive holds: `database/<db>.dump` (Community dump) or
 * `database/<db>-<timestamp>.backup` (Enterprise backup chain, oldest first).
 */
export function neo4jFromPaths(paths: readonly string[]): Pick<Manifest, 'neo4j'> {
  const files = paths.filter((p) => p.startsWith('database/')).sort();
  if (files.length === 0) return {};
  const dumps = files.filter((p) => p.endsWith('.dump'));
  const method = dumps.length > 0 ? 'dump' : 'backup';
  const byDatabase = new Map<string, string[]>();
  for (const path of method === 'dump' ? dumps : files.filter((p) => p.endsWith('.backup'))) {
    const name = path.slice('database/'.length);
    const db =
      method === 'dump'
        ? name.replace(/\.dump$/, '')
        : name.replace(/-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.backup$/, '').replace(/\.backup$/, '');
    byDatabase.set(db, [...(byDatabase.get(db) ?? []), path]);
  }
  return { neo4j: { method, databases: [...byDatabase].map(([name, f]) => ({ name, files: f })) } };
}
