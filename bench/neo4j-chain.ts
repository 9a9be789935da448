/**
 * Neo4j Enterprise backups on AWS: a full backup against a differential on the previous backup in S3
 * (neo4j.backupChain.base `previous-backup`), side by side, through the runner's own
 * backupNeo4jEnterprise against the local S3 server (moto) and the FAKE neo4j-admin
 * (test/fakes/fake-neo4j-admin-enterprise.mjs): its full artifact is the store's size
 * (FAKE_NEO4J_BACKUP_BYTES) and its differential the size of the change (FAKE_NEO4J_CHANGED_BYTES),
 * as a real differential holds only the transactions since the chain's last artifact. What is
 * measured is therefore the runner's side (download, verify, copy, upload), not Neo4j's.
 * Also: the base file brought into the new backup by server-side copy against uploading it again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { copyObject } from '../containers/runner/src/components/artifacts.js';
import { backupNeo4jEnterprise } from '../containers/runner/src/components/neo4j.js';
import type { RunContext } from '../containers/runner/src/context.js';
import { fileKey, resultKey } from '../core/backup/layout.js';
import type { Neo4jResult } from '../core/backup/results.js';
import { writeManifest } from '../core/backup/seal.js';
import { createLogger } from '../core/log.js';
import { openObject, putJson } from '../core/s3/objects.js';
import { uploadStream } from '../core/s3/upload-stream.js';
import { createVersionedBucket, repoRoot, startS3 } from '../harness/index.js';

const MiB = 1024 ** 2;
const bucket = 'bench-neo4j-chain';

export interface ChainRow {
  label: string;
  ms: number;
  chainBytes: number;
  readFromServer: number;
  downloaded: number;
  copied: number;
  uploaded: number;
}

export interface ChainBenchmark {
  rows: ChainRow[];
  baseFile: { bytes: number; uploadMs: number; copyMs: number };
}

/**
 * Runs (a) a full backup and (b) a differential on the previous backup fetched from S3, for a store
 * of `storeBytes` with `changedBytes` changed since that backup; then times the chain's full artifact
 * uploaded again through the task against copied server-side.
 */
export async function neo4jChainBenchmark(storeBytes: number, changedBytes: number): Promise<ChainBenchmark> {
  const s3server = await startS3();
  const s3 = s3server.client();
  await createVersionedBucket(s3, bucket);
  const listener = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const from = [`127.0.0.1:${(listener.address() as { port: number }).port}`];
  const admin = {
    path: join(repoRoot, 'test', 'fakes', 'fake-neo4j-admin-enterprise.mjs'),
    env: {
      ...process.env,
      FAKE_NEO4J_BACKUP_BYTES: String(storeBytes),
      FAKE_NEO4J_CHANGED_BYTES: String(changedBytes),
    },
  };
  const logger = createLogger({}, { level: 'error' });
  const ctx = (target: string, backupId: string): RunContext => ({
    s3,
    bucket,
    target,
    backupId,
    partSize: 8 * MiB,
    concurrency: 4,
    logger,
  });
  const dirs: string[] = [];
  const run = async (
    target: string,
    backupId: string,
    base: 'previous-backup' | 'none',
    type: 'FULL' | 'AUTO',
  ) => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-neo4j-'));
    dirs.push(dir);
    const t0 = performance.now();
    const result = await backupNeo4jEnterprise(ctx(target, backupId), admin, ['neo4j'], {
      from,
      backupDir: dir,
      type,
      includeMetadata: 'all',
      aggregate: false,
      chain: { base, maxDifferentials: 6 },
    });
    const ms = performance.now() - t0;
    await putJson(s3, bucket, resultKey(target, backupId, 'database'), result);
    await writeManifest(s3, bucket, { target, backupId, components: ['database'], toolVersion: 'bench' });
    return { ms, result };
  };
  const row = (label: string, ms: number, r: Neo4jResult): ChainRow => ({
    label,
    ms,
    chainBytes: r.files.reduce((n, f) => n + f.size, 0),
    readFromServer: r.chain?.newBytes ?? 0,
    downloaded: r.chain?.downloadedBytes ?? 0,
    copied: r.chain?.copiedBytes ?? 0,
    uploaded: r.chain?.uploadedBytes ?? 0,
  });
  try {
    const full = await run('bench', 'infrahub_backup_20250101_020000', 'none', 'FULL');
    const diff = await run('bench', 'infrahub_backup_20250102_020000', 'previous-backup', 'AUTO');
    // The base file again: uploaded through the task, against copied server-side.
    const base = full.result.files[0];
    if (!base) throw new Error('no base file');
    const t1 = performance.now();
    await uploadStream(s3, Readable.from(await openObject(s3, bucket, base.s3.key, base.s3.versionId)), {
      bucket,
      key: fileKey('bench', 'upload-again', 'database/x.backup'),
      partSize: 8 * MiB,
    });
    const uploadMs = performance.now() - t1;
    const t2 = performance.now();
    await copyObject(
      s3,
      { bucket, key: base.s3.key, size: base.size, versionId: base.s3.versionId },
      { bucket, key: fileKey('bench', 'copy-again', 'database/x.backup') },
      { multipartCopyThreshold: 5 * 1024 ** 3, copyPartSize: 512 * MiB },
    );
    const copyMs = performance.now() - t2;
    return {
      rows: [row('(a) full', full.ms, full.result), row('(b) differential on S3 base', diff.ms, diff.result)],
      baseFile: { bytes: base.size, uploadMs, copyMs },
    };
  } finally {
    listener.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await s3server.stop();
  }
}

export function formatNeo4jChain(b: ChainBenchmark): string[] {
  const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`.padStart(11);
  const lines = [
    `  ${'run'.padEnd(30)} ${'time'.padStart(9)} ${'chain'.padStart(11)} ${'from server'.padStart(11)} ${'downloaded'.padStart(11)} ${'copied S3'.padStart(11)} ${'uploaded'.padStart(11)}`,
  ];
  for (const r of b.rows)
    lines.push(
      `  ${r.label.padEnd(30)} ${`${r.ms.toFixed(0)} ms`.padStart(9)} ${mib(r.chainBytes)} ${mib(r.readFromServer)} ${mib(r.downloaded)} ${mib(r.copied)} ${mib(r.uploaded)}`,
    );
  const [a, d] = b.rows as [ChainRow, ChainRow];
  lines.push(
    `  ratios b/a: read from server ${(d.readFromServer / a.readFromServer).toFixed(3)}, uploaded through the task ${(d.uploaded / a.uploaded).toFixed(3)}, time ${(d.ms / a.ms).toFixed(2)}`,
    `  base file (${(b.baseFile.bytes / MiB).toFixed(1)} MiB) into the new backup: uploaded again ${b.baseFile.uploadMs.toFixed(0)} ms, CopyObject ${b.baseFile.copyMs.toFixed(0)} ms (ratio ${(b.baseFile.copyMs / b.baseFile.uploadMs).toFixed(2)})`,
  );
  return lines;
}
