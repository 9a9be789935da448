/**
 * Verifying a backup of many artifact objects (issue 16, part 4), against a local moto S3 seeded
 * through its backend (harness/moto_server.py). Compares, on the same backup:
 *   (a) the old path: one HeadObject per file, one after another (what verification did before);
 *   (b) the new quick verification (core/backup/verify.ts): ListObjectVersions pages and the upload
 *       record, a HEAD only where they cannot prove a file (none here);
 *   (c) the whole manifest step (core/backup/manifest-step.ts: results, verification as (b), the PUT),
 *       without retention;
 *   (d) the same step with the example configuration's retention, as deployed: the objects seeded
 *       tagged "pending" (as the runner uploads them) are re-tagged with the backup's class, one
 *       PutObjectTagging per object, TAG_CONCURRENCY at once (core/backup/seal.ts); its tagging
 *       time, rate and the objects that rate fits in the deployed function's time are printed.
 * For each: wall time, S3 commands, and the Node process's peak RSS and heap while it ran (what
 * the Lambdas' memory must hold: the manifest, the record and the listing of every file).
 * Then (e), the client that tags, before and now: 2,000 tags with 40 503 SlowDown answers after the
 * first 1,000 (through harness/fault-proxy.ts), with the SDK's adaptive retry mode (the manifest
 * function's client before) and with SEAL_CLIENT (standard mode, five attempts), three rounds each.
 * This server is asked for up to 100,000 versions a page (MOTO_S3_DEFAULT_MAX_KEYS): moto's own
 * ListObjectVersions deep-copied every version of the bucket for each page (15 s a page at 50,000
 * objects on a busy machine; harness/moto_server.py now copies only the page's), and the figures stay
 * comparable with earlier runs. Real S3 returns 1,000 a page, so (b)'s real request count is
 * ceil(files / 1,000) pages, printed beside what moto needed.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { tagObjects } from '../core/backup/catalog.js';
import { backupPrefix } from '../core/backup/layout.js';
import { readManifest } from '../core/backup/manifest.js';
import {
  MANIFEST_FUNCTION_TIMEOUT_SECONDS,
  MANIFEST_MARGIN_SECONDS,
  manifestStep,
} from '../core/backup/manifest-step.js';
import { SEAL_CLIENT, TAG_CONCURRENCY, TAG_TIME_SHARE } from '../core/backup/seal.js';
import { verifyAgainst } from '../core/backup/verify.js';
import { loadDeploymentConfigFile } from '../core/config/load.js';
import { createLogger } from '../core/log.js';
import { createS3Client, FUNCTION_REQUEST_BOUNDS } from '../core/s3/client.js';
import { headObject, listAll } from '../core/s3/objects.js';
import { putArtifactsRecord, type S3Server, startFaultProxy, startS3 } from '../harness/index.js';

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
  /** With retention: PutObjectTagging requests, and from the first one sent to the last answer. */
  tags?: { requests: number; ms: number };
}

function counting(server: S3Server): {
  s3: S3Client;
  calls: () => number;
  tags: () => { requests: number; ms: number };
} {
  const s3 = server.client();
  let n = 0;
  let tags = 0;
  let first = 0;
  let last = 0;
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      n++;
      if (context.commandName !== 'PutObjectTaggingCommand') return next(args);
      tags++;
      first ||= Date.now();
      try {
        return await next(args);
      } finally {
        last = Date.now();
      }
    },
    { step: 'initialize', name: 'countCommands' },
  );
  return { s3, calls: () => n, tags: () => ({ requests: tags, ms: last - first }) };
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
          objects: [
            {
              prefix: `${prefix}artifacts/store/`,
              count: objects,
              body: 'artifact ',
              tags: { retention: 'pending' },
            },
          ],
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
    await putArtifactsRecord(setup, Bucket, target, backupId, server.seeded);

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

    // (d) The step again, now with retention: it seals the same backup as the deployed function
    // would, within the time that function gives it.
    const d = counting(server);
    const { retention } = loadDeploymentConfigFile('config/example.json');
    const sealed = await measure(() =>
      manifestStep(
        { target, backupId, components: ['artifacts'], retention },
        {
          s3: d.s3,
          bucket: Bucket,
          logger: createLogger({}, { write: () => undefined }),
          secondsLeft: () => MANIFEST_FUNCTION_TIMEOUT_SECONDS - MANIFEST_MARGIN_SECONDS,
        },
      ),
    );
    if (!sealed.value.retentionClass) throw new Error('the manifest step with retention gave no class');
    rows.push({
      path: `(d) + retention`,
      objects,
      ms: sealed.ms,
      cpuMs: sealed.cpuMs,
      commands: d.calls(),
      realCommands: d.calls() - 1 + pages,
      peakRssMiB: mib(sealed.rss),
      peakHeapMiB: mib(sealed.heap),
      tags: d.tags(),
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
  const step = rows.find((r) => r.path.startsWith('(c)'));
  const sealed = rows.find((r) => r.path.startsWith('(d)'));
  if (step && sealed?.tags) {
    const perSecond = sealed.tags.ms > 0 ? (sealed.tags.requests * 1000) / sealed.tags.ms : 0;
    const budget = (MANIFEST_FUNCTION_TIMEOUT_SECONDS - MANIFEST_MARGIN_SECONDS) * TAG_TIME_SHARE;
    lines.push(
      `  (d) - (c): ${sealed.commands - step.commands} more commands, ${sealed.tags.requests} of them PutObjectTagging (${TAG_CONCURRENCY} at once), +${((sealed.ms - step.ms) / 1000).toFixed(1)} s; tagging ${(sealed.tags.ms / 1000).toFixed(1)} s, ${perSecond.toFixed(0)}/s`,
      `  at that rate the function's ${MANIFEST_FUNCTION_TIMEOUT_SECONDS} s (tagging bound ${budget.toFixed(0)} s, less the rest of the step) re-tags about ${Math.floor((perSecond * (budget - (sealed.ms - sealed.tags.ms) / 1000)) / 1000) * 1000} objects; real S3 answers a tag in tens of ms, so about ${TAG_CONCURRENCY} / latency a second`,
    );
  }
  return lines;
}

export interface ThrottledTaggingRow {
  mode: string;
  /** Milliseconds of each round. */
  rounds: number[];
  failed: number;
}

/**
 * (e) Tags `objects` objects, TAG_CONCURRENCY at once, through the fault proxy, which answers 40
 * PutObjectTagging requests with 503 SlowDown once `after` have passed; with the SDK's adaptive retry
 * mode (the manifest function's client before) and with SEAL_CLIENT (now), `rounds` rounds each,
 * interleaved. Both clients have the function's request bounds.
 */
export async function throttledTaggingBenchmark(
  objects = 2_000,
  after = 1_000,
  rounds = 3,
): Promise<ThrottledTaggingRow[]> {
  const bucket = 'bench-throttled-tags';
  const server = await startS3({
    seed: {
      buckets: [{ name: bucket, versioned: true, objects: [{ prefix: 't/', count: objects, body: 'a' }] }],
    },
  });
  const proxy = await startFaultProxy(server.endpoint);
  const modes = [
    { mode: 'adaptive (before)', options: { retryMode: 'adaptive' as const } },
    { mode: 'standard, 5 attempts (SEAL_CLIENT)', options: SEAL_CLIENT },
  ];
  const rows: ThrottledTaggingRow[] = modes.map((m) => ({ mode: m.mode, rounds: [], failed: 0 }));
  try {
    const list = server.seeded.map((o) => ({ key: o.key, versionId: o.versionId }));
    for (let round = 0; round < rounds; round++)
      for (const [i, m] of modes.entries()) {
        const s3 = createS3Client({
          ...FUNCTION_REQUEST_BOUNDS,
          ...m.options,
          endpoint: proxy.endpoint,
          region: server.region,
          forcePathStyle: true,
          credentials: server.credentials,
        });
        proxy.clear();
        let seen = 0;
        proxy.add({
          match: { test: (r) => r.method === 'PUT' && r.query.has('tagging') && ++seen > after },
          fault: { kind: 'status', status: 503, code: 'SlowDown' },
          times: 40,
        });
        const run = await tagObjects(s3, bucket, list, `round-${round}`, {
          concurrency: TAG_CONCURRENCY,
          keepGoing: true,
        });
        s3.destroy();
        const row = rows[i] as ThrottledTaggingRow;
        row.rounds.push(run.ms);
        row.failed += run.failed;
      }
  } finally {
    await proxy.stop();
    await server.stop();
  }
  return rows;
}

export function formatThrottledTagging(rows: readonly ThrottledTaggingRow[]): string[] {
  return rows.map(
    (r) =>
      `  ${r.mode.padEnd(36)} ${r.rounds.map((ms) => `${(ms / 1000).toFixed(1)} s`.padStart(8)).join(' ')}   failed tags: ${r.failed}`,
  );
}
