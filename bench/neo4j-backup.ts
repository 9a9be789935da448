/**
 * Neo4j Community backup, three ways, on the same Infrahub-shaped store (bench/neo4j-graph.ts), in
 * one run, the DBMS stopped as a Community dump needs:
 *   (a) raw     `neo4j-admin database dump <db> --to-path=<local folder>` for neo4j and system: the floor;
 *   (b) ours    the runner's backup-neo4j as the ECS task runs it: `database dump --to-stdout` per
 *               database streamed into a multipart upload to the local S3 server, SHA-256 and the
 *               dump's format check in the same pass, after its `--version` and `database info` checks
 *               (NEO4J_COUNT_OFFLINE=false: the offline count's read-only server is not part of the dump);
 *   (b')        when MinIO is installed (harness/minio.ts; BENCH_MINIO=0 leaves it out): (b) to MinIO
 *               instead of moto; (b) and (b') run in turn, their order swapped every round;
 *   (c) staged  like infrahub-backup: dump both to a folder, sha256sum them, tar+gzip the folder, upload
 *               the archive (the runner's backup-artifacts).
 * The store's files are read once before (a), so all three find them in the page cache. Each is
 * timed (wall clock) and its peak RSS read from /proc/<pid>/status (VmHWM): for (b) the runner's Node
 * process (neo4j-admin is its child, a JVM of its own, as in (a)), for (a) and (c) the largest step.
 * CPU: the whole machine's busy time during (a) and (b), and what each way's own processes used
 * (/proc/<pid>/stat: neo4j-admin; the runner, the neo4j-admin calls it waited for, the S3 server),
 * with that CPU spread perfectly over the cores as a floor no way can beat on this machine.
 * Then the same for every size asked, to show whether the runner's memory grows with the data.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { localRunnerEnv, neo4jRunnerEnv } from '../cli/local/runner-process.js';
import { createVersionedBucket, type Neo4jServer, startNeo4j, startS3 } from '../harness/index.js';
import { type LocalS3Endpoint, minioBinary, startMinio } from '../harness/minio.js';
import { runnerNodePath } from '../harness/paths.js';
import { cpuSeconds, machineCpu } from './cpu.js';
import { inStreamChecksOn } from './in-stream.js';
import { ensureInfrahubShapedStore, type InfrahubShapedStore } from './neo4j-graph.js';
import { flushPageCache, type Measured, measure } from './pg-backup.js';
import { withRunnerBundle } from './runner-bundle.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const DATABASES = ['neo4j', 'system'];
/** The backup (b) and (b') write, emptied after each run. */
const BACKUP_ID = 'infrahub_backup_20261121_020000';

/** One run of the runner's backup-neo4j (b or b'), with its CPU (cpu: runner's own, its children's). */
export interface OursRun extends Measured {
  /** From the runner's log: each database's dump, from "dump started" to its object complete in S3 (ms). */
  dumpMs: Record<string, number>;
  /** CPU seconds the local S3 server (on the same cores) used during it. */
  s3Cpu: number;
  /** The whole machine's busy CPU-seconds during it (as rawBusyCpu). */
  busyCpu: number;
}

export interface Neo4jBackupRow {
  store: InfrahubShapedStore;
  /** Bytes of neo4j.dump and system.dump as (a) wrote them. */
  dumpBytes: number;
  raw: Measured & { steps: Record<string, Measured> };
  /**
   * The whole machine's busy CPU-seconds during (a) (bench/cpu.ts machineCpu: the benchmark's
   * processes and anything else the shared machine ran meanwhile), in the round its time is from.
   */
  rawBusyCpu: number;
  /** (b): ours to moto, its best round. */
  ours: OursRun;
  /** (b'): ours to MinIO (harness/minio.ts) when it is installed, its best round. */
  oursMinio?: OursRun;
  /** The largest peak RSS of the runner over the rounds. */
  oursPeakRssKiB: number;
  rounds: number;
  /** The machine's 1-minute load average before the first round and after each. */
  load: number[];
  /** ms for the runner's in-stream work on neo4j.dump alone, in the runner's Node.js (in-stream.ts). */
  checkMs: number;
  staged: Measured & { steps: Record<string, Measured> };
  /** One `neo4j-admin --version`: the JVM start every neo4j-admin call pays. */
  adminStartMs: number;
}

async function emptyBucket(s3: S3Client, bucket: string): Promise<void> {
  const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
  for (const v of versions.Versions ?? [])
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key, VersionId: v.VersionId }));
}

/** Steps run one after the other: their total time and CPU (summed), and the largest peak RSS. */
export function total(steps: Record<string, Measured>): Measured & { steps: Record<string, Measured> } {
  const all = Object.values(steps);
  const sum = (f: (m: Measured) => number) => all.reduce((n, m) => n + f(m), 0);
  return {
    wallMs: sum((m) => m.wallMs),
    peakRssKiB: Math.max(...all.map((m) => m.peakRssKiB)),
    cpu: { self: sum((m) => m.cpu?.self ?? 0), children: sum((m) => m.cpu?.children ?? 0) },
    steps,
  };
}

/** Epoch ms of the runner's first log line whose message is `message` (for `database`, if given); NaN if none. */
export function loggedAt(stderr: string, message: string, database?: string): number {
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { message?: string; timestamp?: string; database?: string };
      if (entry.message === message && (!database || entry.database === database))
        return Date.parse(entry.timestamp ?? '');
    } catch {
      // not a log line
    }
  }
  return Number.NaN;
}

/** Milliseconds between the first log lines of the runner carrying `from` and `to` in their message. */
export function loggedSpan(stderr: string, from: string, to: string, database?: string): number {
  return loggedAt(stderr, to, database) - loggedAt(stderr, from, database);
}

/** Reads every file of `dir` once (into the page cache). */
export function warm(dir: string): void {
  spawnSync('sh', ['-c', 'find "$1" -type f -exec cat {} + > /dev/null', 'warm', dir]);
}

/** The harness instance on a copy of the cached store, stopped (a Community dump needs it so). */
export async function startOnStore(version: string, store: InfrahubShapedStore): Promise<Neo4jServer> {
  return startNeo4j({
    version,
    fromDataDir: store.dataDir,
    password: store.password,
    heap: '1g',
    pageCache: '512m',
    settings: { 'db.tx_log.preallocate': 'false' },
  });
}

async function runOne(
  version: string,
  store: InfrahubShapedStore,
  bundle: string,
  s3Server: Awaited<ReturnType<typeof startS3>>,
  s3: S3Client,
  minio: { server: LocalS3Endpoint; s3: S3Client } | undefined,
  bucket: string,
  rounds: number,
  print: (line: string) => void,
): Promise<Neo4jBackupRow> {
  const work = mkdtempSync(join(tmpdir(), 'bench-neo4j-backup-'));
  const neo4j = await startOnStore(version, store);
  try {
    await neo4j.stopDbms();
    const adminEnv = { ...process.env, ...neo4j.adminEnv() };
    warm(join(neo4j.dataDir, 'databases'));
    const adminStartMs = (await measure(neo4j.adminPath, ['--version'], { env: adminEnv })).wallMs;

    const runnerEnv = {
      PATH: process.env.PATH ?? '',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...localRunnerEnv(s3Server, { target: 'bench', backupId: BACKUP_ID, bucket }),
      ...neo4jRunnerEnv(neo4j),
      NEO4J_COUNT_OFFLINE: 'false',
    };
    let best: Omit<Neo4jBackupRow, 'store' | 'adminStartMs' | 'rounds' | 'load' | 'checkMs'> | undefined;
    let checkMs = 0;
    const load = [loadavg()[0] ?? 0];
    /** The runner's backup-neo4j to `server` (then its bucket emptied): time, memory, CPU, each dump's span. */
    const oursTo = async (server: LocalS3Endpoint, client: S3Client): Promise<OursRun> => {
      flushPageCache();
      const s3Cpu = cpuSeconds(server.pid);
      const busy = machineCpu().busy;
      const run = await measure(runnerNode(), [bundle, 'backup-neo4j'], {
        env: { ...runnerEnv, ...localRunnerEnv(server, { target: 'bench', backupId: BACKUP_ID, bucket }) },
      });
      const after = { s3Cpu: cpuSeconds(server.pid) - s3Cpu, busyCpu: machineCpu().busy - busy };
      await emptyBucket(client, bucket);
      const dumpMs = Object.fromEntries(
        DATABASES.map((db) => [
          db,
          loggedSpan(
            run.stderr ?? '',
            'neo4j-admin database dump started',
            'neo4j-admin database dump finished',
            db,
          ),
        ]),
      );
      return { ...run, dumpMs, ...after };
    };
    for (let round = 1; round <= rounds; round++) {
      print(
        `    round ${round} of ${rounds}: (a) raw dump --to-path, (b) ours to S3${minio ? ", (b') ours to MinIO" : ''}, (c) staged ...`,
      );
      const rawDir = join(work, 'raw');
      mkdirSync(rawDir);
      const rawSteps: Record<string, Measured> = {};
      // Each way starts with no dirty pages (not timed), so none pays for another's writes.
      flushPageCache();
      const rawCpu = machineCpu().busy;
      for (const db of DATABASES)
        rawSteps[db] = await measure(neo4j.adminPath, ['database', 'dump', db, `--to-path=${rawDir}`], {
          env: adminEnv,
        });
      const rawBusy = machineCpu().busy - rawCpu;
      const dumpBytes = DATABASES.reduce((n, db) => n + statSync(join(rawDir, `${db}.dump`)).size, 0);
      if (round === 1) checkMs = await inStreamChecksOn(runnerNode(), join(rawDir, 'neo4j.dump'));
      rmSync(rawDir, { recursive: true });

      // (b) and (b') in turn, their order swapped every round so neither always runs second.
      const servers = minio ? [s3Server, minio.server] : [s3Server];
      const runs = new Map<LocalS3Endpoint, OursRun>();
      for (const server of round % 2 === 0 ? [...servers].reverse() : servers)
        runs.set(server, await oursTo(server, server === s3Server ? s3 : (minio?.s3 as S3Client)));
      const ours = runs.get(s3Server) as OursRun;
      const oursMinio = minio ? runs.get(minio.server) : undefined;

      const dir = join(work, 'backup');
      mkdirSync(dir);
      const steps: Record<string, Measured> = {};
      const dumps: Record<string, Measured> = {};
      flushPageCache();
      for (const db of DATABASES)
        dumps[db] = await measure(neo4j.adminPath, ['database', 'dump', db, `--to-path=${dir}`], {
          env: adminEnv,
        });
      steps.dump = total(dumps);
      steps.sha256 = await measure(
        'sha256sum',
        DATABASES.map((db) => join(dir, `${db}.dump`)),
      );
      const upload = join(work, 'upload');
      mkdirSync(upload);
      steps.targz = await measure('tar', [
        '-czf',
        join(upload, 'infrahub_backup_20261121_030000.tar.gz'),
        '-C',
        work,
        'backup',
      ]);
      rmSync(dir, { recursive: true });
      steps.upload = await measure(runnerNode(), [bundle, 'backup-artifacts'], {
        env: {
          ...runnerEnv,
          BACKUP_ID: 'infrahub_backup_20261121_030000',
          ARTIFACTS_SOURCE: 'path',
          ARTIFACTS_PATH: upload,
        },
      });
      rmSync(upload, { recursive: true });
      await emptyBucket(s3, bucket);
      const raw = total(rawSteps);
      const staged = total(steps);
      // Best of the rounds for each way on its own (the machine is shared: its load varies).
      const rawBetter = !best || raw.wallMs < best.raw.wallMs;
      best = {
        dumpBytes,
        raw: rawBetter || !best ? raw : best.raw,
        rawBusyCpu: rawBetter || !best ? rawBusy : best.rawBusyCpu,
        ours: !best || ours.wallMs < best.ours.wallMs ? ours : best.ours,
        oursMinio:
          oursMinio && (!best?.oursMinio || oursMinio.wallMs < best.oursMinio.wallMs)
            ? oursMinio
            : best?.oursMinio,
        staged: best && best.staged.wallMs <= staged.wallMs ? best.staged : staged,
        // The largest of the rounds: memory, unlike time, is not helped by a quiet moment.
        oursPeakRssKiB: Math.max(best?.oursPeakRssKiB ?? 0, ours.peakRssKiB, oursMinio?.peakRssKiB ?? 0),
      };
      load.push(loadavg()[0] ?? 0);
    }
    if (!best) throw new Error('rounds must be at least 1');
    return { store, adminStartMs, rounds, load, checkMs, ...best };
  } finally {
    await neo4j.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Runs (a), (b) and (c) on an Infrahub-shaped store of each size in `sizesBytes` (generated or
 * reused from the cache: ensureInfrahubShapedStore), in order.
 */
export async function neo4jBackupBenchmark(
  version: string,
  sizesBytes: readonly number[],
  rounds: number,
  print: (line: string) => void,
): Promise<Neo4jBackupRow[]> {
  return withRunnerBundle((bundle) => backupRows(version, sizesBytes, rounds, bundle, print));
}

async function backupRows(
  version: string,
  sizesBytes: readonly number[],
  rounds: number,
  bundle: string,
  print: (line: string) => void,
): Promise<Neo4jBackupRow[]> {
  const s3Server = await startS3();
  const s3 = s3Server.client();
  const bucket = 'bench-neo4j-backups';
  let minio: { server: LocalS3Endpoint; s3: S3Client } | undefined;
  try {
    await createVersionedBucket(s3, bucket);
    if (process.env.BENCH_MINIO !== '0' && minioBinary()) {
      const server = await startMinio();
      minio = { server, s3: server.client() };
      await createVersionedBucket(minio.s3, bucket);
    } else
      print(
        `  (b') against MinIO: skipped (${process.env.BENCH_MINIO === '0' ? 'BENCH_MINIO=0' : 'not installed: scripts/setup.sh --with-minio'})`,
      );
    const rows: Neo4jBackupRow[] = [];
    for (const targetBytes of sizesBytes) {
      const store = await ensureInfrahubShapedStore({ neo4jVersion: version, targetBytes, print });
      print(
        `  store ${(store.storeBytes / GiB).toFixed(2)} GiB (${store.reused ? 'reused from the cache' : 'generated'}): ` +
          `${store.nodes} nodes, ${store.relationships} relationships`,
      );
      rows.push(await runOne(version, store, bundle, s3Server, s3, minio, bucket, rounds, print));
    }
    return rows;
  } finally {
    await Promise.all([s3Server.stop(), minio?.server.stop()]);
  }
}

/**
 * The Node.js that runs the runner: BENCH_RUNNER_NODE, else the runner image's Node.js 22 that
 * scripts/setup.sh installs (.cache/runner-node: its node:zlib decompresses zstd natively), else
 * this process's.
 */
export function runnerNode(): string {
  return process.env.BENCH_RUNNER_NODE || runnerNodePath() || process.execPath;
}

/** `node --version` of runnerNode(). */
export function runnerNodeVersion(): string {
  return spawnSync(runnerNode(), ['--version'], { encoding: 'utf8' }).stdout.trim();
}

export function formatNeo4jBackup(rows: readonly Neo4jBackupRow[]): string[] {
  const s = (m: Measured) =>
    `${(m.wallMs / 1000).toFixed(1).padStart(7)} s  ${(m.peakRssKiB / 1024).toFixed(0).padStart(5)} MiB`;
  const lines: string[] = [];
  for (const r of rows) {
    const l = r.store.labels;
    lines.push(
      `  store ${(r.store.storeBytes / GiB).toFixed(2)} GiB: ${r.store.nodes} nodes (Attribute ${l.Attribute}, ` +
        `AttributeValue ${l.AttributeValue}, Node ${l.Node}, Relationship ${l.Relationship}), ` +
        `${r.store.relationships} relationships; dumps (neo4j + system) ${(r.dumpBytes / MiB).toFixed(0)} MiB`,
    );
    lines.push(`    (a) raw dump --to-path, neo4j and system            ${s(r.raw)}`);
    lines.push(
      `    (b) ours: runner, dump --to-stdout streamed to S3    ${s(r.ours)}  (runner's Node process, Node.js ${runnerNodeVersion()})`,
    );
    lines.push(
      `        of which each dump streamed to S3: ${Object.entries(r.ours.dumpMs)
        .map(([db, ms]) => `${db} ${(ms / 1000).toFixed(1)} s`)
        .join(', ')} (raw: ${Object.entries(r.raw.steps)
        .map(([db, m]) => `${db} ${(m.wallMs / 1000).toFixed(1)} s`)
        .join(
          ', ',
        )}; raw one after the other, ours side by side); the rest is the process start and its checks: ` +
        `every neo4j-admin call starts a JVM (${(r.adminStartMs / 1000).toFixed(1)} s for --version alone), raw makes 2 ` +
        `one after the other, ours 4 in two rounds (--version beside one database info for both databases, then the two dumps)`,
    );
    lines.push(
      `        the local S3 server (moto) used ${r.ours.s3Cpu.toFixed(1)} CPU-s during (b), on the same cores as neo4j-admin`,
    );
    const m = r.oursMinio;
    if (m) {
      lines.push(`    (b') ours again, to MinIO (a Go S3 server)           ${s(m)}`);
      lines.push(
        `        of which each dump streamed to S3: ${Object.entries(m.dumpMs)
          .map(([db, ms]) => `${db} ${(ms / 1000).toFixed(1)} s`)
          .join(', ')}; MinIO used ${m.s3Cpu.toFixed(1)} CPU-s during (b'), on the same cores`,
      );
    }
    lines.push(
      `        the runner's in-stream work on neo4j.dump alone (format check decompressing the zstd body, SHA-256), ` +
        `without neo4j-admin or S3: ${(r.checkMs / 1000).toFixed(1)} s on Node.js ${runnerNodeVersion()} ` +
        `(${/^v(2[3-9]|22\.(1[5-9]|[2-9]\d))/.test(runnerNodeVersion()) ? 'native zstd, as in the runner image' : 'fzstd in JavaScript; the runner image runs Node.js 22, with native zstd from 22.15'})`,
    );
    lines.push(`    (c) staged: dump, sha256, tar.gz, upload             ${s(r.staged)}`);
    lines.push(
      `        steps: ${Object.entries(r.staged.steps)
        .map(([k, m]) => `${k} ${(m.wallMs / 1000).toFixed(1)} s`)
        .join(', ')}`,
    );
    const ratio = (x: Measured, y: Measured) => (x.wallMs / y.wallMs).toFixed(2);
    const cores = cpus().length;
    const ofA = (cpuS: number) =>
      `${(cpuS / cores).toFixed(1)} s, ${(cpuS / cores / (r.raw.wallMs / 1000)).toFixed(2)}x (a)`;
    const adminA = r.raw.cpu ? r.raw.cpu.self + r.raw.cpu.children : Number.NaN;
    // What each way's own processes used: (a) neo4j-admin; (b) the runner, the neo4j-admin calls it
    // waited for, the S3 server. The floor: that CPU spread perfectly over the cores.
    const attributed = (x: OursRun) => (x.cpu ? x.cpu.self + x.cpu.children + x.s3Cpu : Number.NaN);
    const split = (x: OursRun, server: string) =>
      x.cpu
        ? `runner ${x.cpu.self.toFixed(1)} + its neo4j-admin calls ${x.cpu.children.toFixed(1)} + ${server} ${x.s3Cpu.toFixed(1)} ` +
          `= ${attributed(x).toFixed(1)} (other processes ${(x.busyCpu - attributed(x)).toFixed(1)}); ` +
          `spread over the ${cores} cores: ${ofA(attributed(x))}, without the S3 server's ${ofA(attributed(x) - x.s3Cpu)}`
        : 'not sampled';
    lines.push(
      `    CPU-s used: (a) neo4j-admin ${adminA.toFixed(1)} (other processes ${(r.rawBusyCpu - adminA).toFixed(1)}; ` +
        `${(adminA / (r.raw.wallMs / 1000)).toFixed(2)} of ${cores} cores)`,
      `        (b) ${split(r.ours, 'moto')}`,
      ...(m ? [`        (b') ${split(m, 'MinIO')}`] : []),
    );
    lines.push(
      `    ratios: b/a = ${ratio(r.ours, r.raw)} (target <= 1.15)${m ? `, b'/a = ${ratio(m, r.raw)} (to MinIO)` : ''}, ` +
        `c/b = ${ratio(r.staged, r.ours)} (target >= 2); ` +
        `best of ${r.rounds} interleaved rounds each; load average ${r.load.map((l) => l.toFixed(1)).join(' -> ')} on ${cpus().length} cores`,
    );
  }
  if (rows.length > 1) {
    lines.push(
      `  runner peak RSS per store size: ${rows
        .map(
          (r) =>
            `${(r.ours.peakRssKiB / 1024).toFixed(0)} MiB at ${(r.store.storeBytes / GiB).toFixed(2)} GiB`,
        )
        .join(', ')}`,
    );
  }
  return lines;
}
