/**
 * Verifying a backup of many artifact objects (issue 16, part 4), against a local moto S3 seeded
 * through its backend (harness/moto_seeded.py). Compares, on the same backup:
 *   (a) the old path: one HeadObject per file, one after another (what verification did before);
 *   (b) the new quick verification (core/backup/verify.ts): ListObjectVersions pages and the upload
 *       record, a HEAD only where they cannot prove a file (none here);
 *   (c) the whole manifest step (functions/manifest core: results, verification as (b), the PUT).
 * For each: wall time, S3 commands, and the Node process's peak RSS and heap while it ran (what
 * the Lambdas' memory must hold: the manifest, the record and the listing of every file).
 * moto's ListObjectVersions deep-copies every version of the bucket for each page (15 s a page at
 * 50,000 objects on a busy machine), so this server is asked for up to 100,000 versions a page
 * (MOTO_S3_DEFAULT_MAX_KEYS); real S3 returns 1,000 a page, so (b)'s real request count is
 * ceil(files / 1,000) pages, printed beside what moto needed.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { backupPrefix, resultKey } from '../core/backup/layout.js';
import { readManifest } from '../core/backup/manifest.js';
import { manifestStep } from '../core/backup/manifest-step.js';
import { verifyAgainst } from '../core/backup/verify.js';
import { createLogger } from '../core/log.js';
import { headObject, listAll, putJson } from '../core/s3/objects.js';
import { type S3Server, startS3 } from '../harness/index.js';

const Bucket = 'bench-verify-scale';
const target = 'infrahub-lab';
const backupId = 'infrahub_backup_20261120_020000';

export interface VerifyScaleRow {
  path: string;
  objects: number;
  ms: number;
  /** CPU time of this Node process (user + system): what a Lambda's vCPU share must supply. */
  cpuMs: number;
  commands: number;
  /** What real S3 would need for the same work (1,000 versions a list page). */
  realCommands: number;
  peakRssMiB: number;
  peakHeapMiB: number;
}

function counting(server: S3Server): { s3: S3Client; calls: () => number } {
  const s3 = server.client();
  let n = 0;
  s3.middlewareStack.add(
    (next) => async (args) => {
      n++;
      return next(args);
    },
    { step: 'initialize', name: 'countCommands' },
  );
  return { s3, calls: () => n };
}

/** Runs `fn`, sampling the process's RSS and heap every 20 ms; returns time and peaks. */
async function measure<T>(
  fn: () => Promise<T>,
): Promise<{ ms: number; cpuMs: number; rss: number; heap: number; value: T }> {
  global.gc?.();
  let rss = process.memoryUsage().rss;
  let heap = process.memoryUsage().heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  }, 20);
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  try {
    const value = await fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    const m = process.memoryUsage();
    return {
      ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      rss: Math.max(rss, m.rss),
      heap: Math.max(heap, m.heapUsed),
      value,
    };
  } finally {
    clearInterval(timer);
  }
}

/** The old verification's S3 work: the listing, then a HEAD of every recorded file, in turn. */
async function perObjectHeads(s3: S3Client, keys: readonly string[]): Promise<void> {
  await listAll(s3, Bucket, backupPrefix(target, backupId));
  for (const key of keys) await headObject(s3, Bucket, key);
}

export async function verifyScaleBenchmark(
  objects: number,
  log: (line: string) => void,
): Promise<VerifyScaleRow[]> {
  const prefix = backupPrefix(target, backupId);
  const t0 = Date.now();
  const server = await startS3({
    seed: {
      buckets: [
        {
          name: Bucket,
          versioned: true,
          objects: [{ prefix: `${prefix}artifacts/store/`, count: objects, body: 'artifact ' }],
        },
      ],
    },
    env: { MOTO_S3_DEFAULT_MAX_KEYS: '100000' },
  });
  log(
    `  seeded ${objects} objects into moto in ${((Date.now() - t0) / 1000).toFixed(1)} s (through its backend)`,
  );
  const rows: VerifyScaleRow[] = [];
  const mib = (b: number) => b / 1024 ** 2;
  const pages = Math.ceil((objects + 2) / 1000);
  try {
    const setup = server.client();
    await putJson(setup, Bucket, resultKey(target, backupId, 'artifacts'), {
      target,
      backupId,
      component: 'artifacts',
      startedAt: '2026-11-20T02:00:00.000Z',
      finishedAt: '2026-11-20T02:10:00.000Z',
      source: { type: 's3', bucket: 'infrahub-artifacts', prefix: 'store/' },
      files: server.seeded.map((o) => ({
        path: o.key.slice(prefix.length),
        size: o.size,
        sha256: o.sha256,
        s3: { key: o.key, versionId: o.versionId, checksumSHA256: o.checksumSHA256 },
      })),
    });

    const c = counting(server);
    const step = await measure(() =>
      manifestStep(
        { target, backupId, components: ['artifacts'] },
        { s3: c.s3, bucket: Bucket, logger: createLogger({}, { write: () => undefined }) },
      ),
    );
    const stepCalls = c.calls();
    const manifest = await readManifest(setup, Bucket, target, backupId);
    if (!manifest) throw new Error('the manifest step wrote no manifest');

    const b = counting(server);
    const quick = await measure(() => verifyAgainst(b.s3, Bucket, target, backupId, manifest));
    if (!quick.value.ok || quick.value.heads !== 0) throw new Error('quick verification did not pass');
    const quickCalls = b.calls();
    rows.push({
      path: '(b) list + record',
      objects,
      ms: quick.ms,
      cpuMs: quick.cpuMs,
      commands: quickCalls,
      realCommands: quickCalls - 1 + pages,
      peakRssMiB: mib(quick.rss),
      peakHeapMiB: mib(quick.heap),
    });
    rows.push({
      path: '(c) manifest step',
      objects,
      ms: step.ms,
      cpuMs: step.cpuMs,
      commands: stepCalls,
      realCommands: stepCalls - 1 + pages,
      peakRssMiB: mib(step.rss),
      peakHeapMiB: mib(step.heap),
    });

    const a = counting(server);
    const old = await measure(() =>
      perObjectHeads(
        a.s3,
        Object.values(manifest.s3 ?? {}).map((f) => f.key),
      ),
    );
    rows.unshift({
      path: '(a) HEAD per file',
      objects,
      ms: old.ms,
      cpuMs: old.cpuMs,
      commands: a.calls(),
      realCommands: a.calls() - 1 + pages,
      peakRssMiB: mib(old.rss),
      peakHeapMiB: mib(old.heap),
    });
  } finally {
    await server.stop();
  }
  return rows;
}

export function formatVerifyScale(rows: readonly VerifyScaleRow[]): string[] {
  const lines = [
    `  ${'path'.padEnd(20)} ${'objects'.padStart(8)} ${'time'.padStart(10)} ${'Node CPU'.padStart(9)} ${'commands'.padStart(9)} ${'(real S3)'.padStart(10)} ${'peak RSS'.padStart(10)} ${'peak heap'.padStart(10)}`,
  ];
  for (const r of rows)
    lines.push(
      `  ${r.path.padEnd(20)} ${String(r.objects).padStart(8)} ${`${(r.ms / 1000).toFixed(1)} s`.padStart(10)} ${`${(r.cpuMs / 1000).toFixed(1)} s`.padStart(9)} ${String(r.commands).padStart(9)} ${String(r.realCommands).padStart(10)} ${`${r.peakRssMiB.toFixed(0)} MiB`.padStart(10)} ${`${r.peakHeapMiB.toFixed(0)} MiB`.padStart(10)}`,
    );
  const old = rows.find((r) => r.path.startsWith('(a)'));
  const quick = rows.find((r) => r.path.startsWith('(b)'));
  if (old && quick)
    lines.push(
      `  ratio a/b: time ${(old.ms / quick.ms).toFixed(1)}x, commands ${(old.realCommands / quick.realCommands).toFixed(0)}x (real S3 page size)`,
    );
  return lines;
}
