/**
 * Neo4j Community restore, two ways, on the same dump of an Infrahub-shaped store
 * (bench/neo4j-graph.ts), each until the restored graph answers and is checked:
 *   (a) raw    `neo4j-admin database load neo4j --from-path=<local folder> --overwrite-destination=true`
 *              from a local file (the dump downloaded beforehand, not timed), then the DBMS started
 *              (until Bolt answers on `neo4j`) and the nodes and relationships counted over Bolt;
 *   (b) ours   the runner's restore-neo4j (in-use check, the dump downloaded from the exact S3 version
 *              into scratch space and held to the manifest's SHA-256 and size; beside both, the load
 *              under a staging name from stdin, fed from the file once it is verified, then swapped in) until it reports success (its summary line: SendTaskSuccess on AWS),
 *              the DBMS started the same way while restore-neo4j removes the replaced store, then the
 *              runner's validate-neo4j (its counts over Bolt compared with the backup's);
 *   (b') ours, in place   the same with neo4j.restoreLoad "in-place" (NEO4J_RESTORE_LOAD): every file
 *              verified first, then loaded over `neo4j` (no second store written), reported, started,
 *              validated;
 *   (b'') when MinIO is installed (harness/minio.ts; BENCH_MINIO=0 leaves it out): (b') downloading
 *              from MinIO, the same backup written there too; (b') and (b'') in turn, their order
 *              swapped every round.
 * The dump is the one the runner's own backup wrote (neo4j and system; `system` is kept, as the
 * runner's default NEO4J_SYSTEM=keep does, so both load `neo4j` only). The DBMS is stopped between.
 * Best of `rounds` for each, alternating (a) and (b) so the shared machine's load hits both; the page
 * cache is flushed (sync, not timed) before each, so neither pays for the other's writes.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, createWriteStream, mkdirSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { localRunnerEnv, neo4jRunnerEnv } from '../cli/local/runner-process.js';
import { fileKey, neo4jDumpPath } from '../core/backup/layout.js';
import { writeManifest } from '../core/backup/seal.js';
import { openObject } from '../core/s3/objects.js';
import { countGraph, createVersionedBucket, startS3 } from '../harness/index.js';
import { minioBinary, startMinio } from '../harness/minio.js';
import { cpuSeconds, machineCpu } from './cpu.js';
import { loggedAt, runnerNode, runnerNodeVersion, startOnStore } from './neo4j-backup.js';
import { ensureInfrahubShapedStore, type InfrahubShapedStore } from './neo4j-graph.js';
import { flushPageCache, measure } from './pg-backup.js';
import { withRunnerBundle } from './runner-bundle.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** One side of the restore: its steps (ms) and the peak RSS of its load (or of the runner). */
export interface RestoreSide {
  steps: Record<string, number>;
  /** Phases of restore-neo4j from its log (ms), ours only. */
  phases?: Record<string, number>;
  /**
   * CPU during its load step ((a) neo4j-admin's load, (b) restore-neo4j), in CPU-seconds: the whole
   * machine's busy time, what its cores could give over that wall time, and the local S3 server's own.
   */
  cpu?: { busy: number; available: number; s3: number };
  totalMs: number;
  peakRssKiB: number;
}

export interface Neo4jRestoreRow {
  store: InfrahubShapedStore;
  dumpBytes: number;
  raw: RestoreSide;
  ours: RestoreSide;
  /** (b'): ours with neo4j.restoreLoad "in-place". */
  oursInPlace: RestoreSide;
  /**
   * (b''): (b') downloading from MinIO (harness/minio.ts) instead of moto, when MinIO is installed:
   * the same backup written there too; (b') and (b'') run in turn, their order swapped every round.
   */
  oursInPlaceMinio?: RestoreSide;
  /** (b'') each step's best of the rounds, summed, as rawBest. */
  oursInPlaceMinioBest?: RestoreSide;
  /**
   * Each step's best over the rounds, summed: the DBMS's start (the same work on both sides) varies
   * most from one start to the next (5.7-12.7 s for the 1 GiB store here), and this takes it out.
   */
  rawBest: RestoreSide;
  oursBest: RestoreSide;
  oursInPlaceBest: RestoreSide;
  /**
   * (c), load only, best of the rounds (ms): neo4j-admin loading the same file from standard input
   * (c1) over the existing `neo4j`, as raw does, and (c2) under a new name beside it, as the staged
   * restore does; no runner, no S3. Their ratio is what staging costs in neo4j-admin and the disk alone.
   */
  stdinOver: number;
  stdinBeside: number;
  rounds: number;
  /** The machine's 1-minute load average before the first round and after each. */
  load: number[];
}

const side = (steps: Record<string, number>, peakRssKiB: number): RestoreSide => ({
  steps,
  totalMs: Object.values(steps).reduce((n, ms) => n + ms, 0),
  peakRssKiB,
});

/** `next`'s steps and phases each kept where faster than `best`'s (the first round: `next`). */
function bestOfEach(best: RestoreSide | undefined, next: RestoreSide): RestoreSide {
  if (!best) return next;
  const min = (a: Record<string, number> = {}, b: Record<string, number> = {}) =>
    Object.fromEntries(Object.entries(b).map(([k, ms]) => [k, Math.min(ms, a[k] ?? ms)]));
  const steps = min(best.steps, next.steps);
  return {
    ...side(steps, Math.max(best.peakRssKiB, next.peakRssKiB)),
    ...(next.phases ? { phases: min(best.phases, next.phases) } : {}),
  };
}

const timed = async (f: () => Promise<unknown>) => {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
};

async function runOne(
  version: string,
  store: InfrahubShapedStore,
  bundle: string,
  rounds: number,
  print: (line: string) => void,
): Promise<Neo4jRestoreRow> {
  const withMinio = process.env.BENCH_MINIO !== '0' && minioBinary() !== undefined;
  const started = await Promise.allSettled([
    startOnStore(version, store),
    startS3(),
    withMinio ? startMinio() : Promise.resolve(undefined),
  ] as const);
  const [neo4jStart, s3Start, minioStart] = started;
  if (neo4jStart.status === 'rejected' || s3Start.status === 'rejected' || minioStart.status === 'rejected') {
    // Stop what did start before passing the first failure on.
    await Promise.allSettled(started.map((p) => (p.status === 'fulfilled' ? p.value?.stop() : undefined)));
    throw [neo4jStart, s3Start, minioStart].find((p) => p.status === 'rejected')?.reason;
  }
  const [neo4j, s3Server, minio] = [neo4jStart.value, s3Start.value, minioStart.value];
  const work = mkdtempSync(join(tmpdir(), 'bench-neo4j-restore-'));
  const s3 = s3Server.client();
  const bucket = 'bench-neo4j-restores';
  const target = 'bench';
  const backupId = 'infrahub_backup_20261122_020000';
  try {
    await createVersionedBucket(s3, bucket);
    const runnerEnv = {
      PATH: process.env.PATH ?? '',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...localRunnerEnv(s3Server, { target, backupId, bucket }),
      ...neo4jRunnerEnv(neo4j),
      NEO4J_COUNT_OFFLINE: 'false',
    };
    const minioEnv = minio ? localRunnerEnv(minio, { target, backupId, bucket }) : {};
    const minioS3 = minio?.client();
    if (minioS3) await createVersionedBucket(minioS3, bucket);
    print(
      `    backing the store up with the runner (Bolt counts, then the dump; not timed)${minio ? ', to moto and to MinIO' : ''} ...`,
    );
    await measure(runnerNode(), [bundle, 'count-neo4j'], { env: runnerEnv });
    if (minio) await measure(runnerNode(), [bundle, 'count-neo4j'], { env: { ...runnerEnv, ...minioEnv } });
    await neo4j.stopDbms();
    await measure(runnerNode(), [bundle, 'backup-neo4j'], { env: runnerEnv });
    const { manifest } = await writeManifest(s3, bucket, { target, backupId, components: ['database'] });
    if (minioS3) {
      await measure(runnerNode(), [bundle, 'backup-neo4j'], { env: { ...runnerEnv, ...minioEnv } });
      await writeManifest(minioS3, bucket, { target, backupId, components: ['database'] });
    } else
      print(
        `    (b'') in place from MinIO: skipped (${process.env.BENCH_MINIO === '0' ? 'BENCH_MINIO=0' : 'not installed: scripts/setup.sh --with-minio'})`,
      );
    const path = neo4jDumpPath('neo4j');
    const rawDir = join(work, 'raw');
    mkdirSync(rawDir);
    const file = join(rawDir, 'neo4j.dump');
    await pipeline(
      await openObject(s3, bucket, fileKey(target, backupId, path), manifest.s3?.[path]?.version_id),
      createWriteStream(file),
    );
    const dumpBytes = statSync(file).size;
    // The machine's CPU and the S3 server's, read before and after a step.
    const cpuNow = (pid = s3Server.pid) => ({
      at: Date.now(),
      machine: machineCpu(),
      s3: cpuSeconds(pid),
      pid,
    });
    const cpuSince = (from: ReturnType<typeof cpuNow>) => {
      const now = cpuNow(from.pid);
      return {
        busy: now.machine.busy - from.machine.busy,
        available: ((now.at - from.at) / 1000) * cpus().length,
        s3: now.s3 - from.s3,
      };
    };
    const adminEnv = { ...process.env, ...neo4j.adminEnv() };

    const restoreEnv = {
      ...runnerEnv,
      RESTORE_ID: 'restore_20261122_030000_bench',
      RESTORE_WORK_DIR: join(work, 'scratch'),
      NEO4J_SYSTEM: 'keep',
    };
    /**
     * (b) or (b'): restore-neo4j with NEO4J_RESTORE_LOAD=`how` until it reports success (its summary
     * line on standard output; on AWS its SendTaskSuccess, when the state machine goes on to start the
     * DBMS), the DBMS's start (beside the removal of the replaced store, staged), then validate-neo4j.
     */
    const oursSide = async (
      how: 'staged' | 'in-place',
      from: 'moto' | 'MinIO' = 'moto',
    ): Promise<RestoreSide> => {
      const serverEnv = from === 'MinIO' ? minioEnv : {};
      flushPageCache();
      const restoreStart = Date.now();
      const cpuBeforeOurs = cpuNow(from === 'MinIO' && minio ? minio.pid : s3Server.pid);
      let printed = '';
      let markReported: (at: number) => void = () => undefined;
      const reported = new Promise<number>((resolve) => {
        markReported = resolve;
      });
      const running = measure(runnerNode(), [bundle, 'restore-neo4j'], {
        env: { ...restoreEnv, ...serverEnv, NEO4J_RESTORE_LOAD: how },
        onStdout: (text) => {
          printed += text;
          if (printed.includes('"step":"restore-neo4j"')) markReported(Date.now());
        },
      });
      const reportedAt = await Promise.race([
        reported,
        running.then(() => {
          throw new Error('restore-neo4j exited without printing its summary line');
        }),
      ]);
      const restoreCpu = cpuSince(cpuBeforeOurs);
      const oursStart = await timed(() => neo4j.startDbms());
      const validateStart = Date.now();
      const validated = await measure(runnerNode(), [bundle, 'validate-neo4j'], {
        env: { ...restoreEnv, ...serverEnv },
      });
      const restored = await running;
      await neo4j.stopDbms();
      const b = side(
        { 'restore-neo4j': reportedAt - restoreStart, start: oursStart, 'validate-neo4j': validated.wallMs },
        Math.max(restored.peakRssKiB, validated.peakRssKiB),
      );
      b.cpu = restoreCpu;
      // Where restore-neo4j's time went, from its log, as times from its start.
      const log = restored.stderr ?? '';
      const at = (message: string) => loggedAt(log, message) - restoreStart;
      const validatePhase = {
        // validate-neo4j: from its start until the counts were compared (the rest writes its report).
        'validate: counted':
          loggedAt(validated.stderr ?? '', 'graph counts equal the backup') - validateStart,
      };
      b.phases =
        how === 'staged'
          ? {
              'load started at': at('neo4j-admin database load started (staged), from its verified file'),
              'download verified at': at('Neo4j files downloaded and verified against the manifest'),
              'load finished at': at('neo4j-admin database load finished (staged)'),
              'renamed into place at': at('the staged stores were renamed into place'),
              'reported at': reportedAt - restoreStart,
              'replaced stores removed at (after the report, beside the start)': at(
                'the replaced store folders were removed',
              ),
              'exited at': restored.wallMs,
              ...validatePhase,
            }
          : {
              'download verified at': at('Neo4j files downloaded and verified against the manifest'),
              'load started at': at('neo4j-admin database load started'),
              'load finished at': at('neo4j-admin database load finished'),
              'reported at': reportedAt - restoreStart,
              'exited at': restored.wallMs,
              ...validatePhase,
            };
      return b;
    };
    let raw: RestoreSide | undefined;
    let ours: RestoreSide | undefined;
    let oursInPlace: RestoreSide | undefined;
    let rawBest: RestoreSide | undefined;
    let oursBest: RestoreSide | undefined;
    let oursInPlaceBest: RestoreSide | undefined;
    let oursInPlaceMinio: RestoreSide | undefined;
    let oursInPlaceMinioBest: RestoreSide | undefined;
    const load = [loadavg()[0] ?? 0];
    let stdinOver = Number.POSITIVE_INFINITY;
    let stdinBeside = Number.POSITIVE_INFINITY;
    for (let round = 1; round <= rounds; round++) {
      print(
        `    round ${round} of ${rounds}: (a) raw load + start + count, (b) ours from S3 + start + validate, staged, (b') the same in place${minio ? ", (b'') in place from MinIO" : ''} ...`,
      );
      // Each side starts with no dirty pages (sync, not timed): a load's 4 GiB of writes otherwise
      // sit in the page cache when it ends and are written back during the next side's run, which
      // then pays for them (on this machine's virtual disk ours ran 2-3 times slower right after raw).
      flushPageCache();
      const cpuBefore = cpuNow();
      const loaded = await measure(
        neo4j.adminPath,
        ['database', 'load', 'neo4j', `--from-path=${rawDir}`, '--overwrite-destination=true'],
        { env: adminEnv },
      );
      const rawCpu = cpuSince(cpuBefore);
      const rawStart = await timed(() => neo4j.startDbms());
      const rawCount = await timed(() => countGraph(neo4j));
      await neo4j.stopDbms();
      const a = side({ load: loaded.wallMs, start: rawStart, count: rawCount }, loaded.peakRssKiB);
      // (c): the same file into neo4j-admin's standard input, over the existing database and under a
      // new name beside it (then removed, not timed).
      const stdinLoad = (database: string) => {
        flushPageCache();
        const input = openSync(file, 'r');
        const t0 = process.hrtime.bigint();
        const run = spawnSync(
          neo4j.adminPath,
          ['database', 'load', database, '--from-stdin', '--overwrite-destination=true'],
          { env: adminEnv, stdio: [input, 'ignore', 'pipe'], encoding: 'utf8' },
        );
        closeSync(input);
        if (run.status !== 0) throw new Error(`neo4j-admin load ${database} from stdin: ${run.stderr}`);
        return Number(process.hrtime.bigint() - t0) / 1e6;
      };
      const over = stdinLoad('neo4j');
      const beside = stdinLoad('ibh-bench-beside');
      for (const root of ['databases', 'transactions'])
        rmSync(join(neo4j.home, 'data', root, 'ibh-bench-beside'), { recursive: true, force: true });
      stdinOver = Math.min(stdinOver, over);
      stdinBeside = Math.min(stdinBeside, beside);
      a.cpu = rawCpu;

      const b = await oursSide('staged');
      // (b') and (b'') in turn, their order swapped every round so neither always runs second.
      const b3First = minio && round % 2 === 0 ? await oursSide('in-place', 'MinIO') : undefined;
      const b2 = await oursSide('in-place');
      if (minio) {
        const b3 = b3First ?? (await oursSide('in-place', 'MinIO'));
        if (!oursInPlaceMinio || b3.totalMs < oursInPlaceMinio.totalMs) oursInPlaceMinio = b3;
        oursInPlaceMinioBest = bestOfEach(oursInPlaceMinioBest, b3);
      }
      if (!raw || a.totalMs < raw.totalMs) raw = a;
      if (!ours || b.totalMs < ours.totalMs) ours = b;
      if (!oursInPlace || b2.totalMs < oursInPlace.totalMs) oursInPlace = b2;
      rawBest = bestOfEach(rawBest, a);
      oursBest = bestOfEach(oursBest, b);
      oursInPlaceBest = bestOfEach(oursInPlaceBest, b2);
      load.push(loadavg()[0] ?? 0);
    }
    if (!raw || !ours || !oursInPlace || !rawBest || !oursBest || !oursInPlaceBest)
      throw new Error('rounds must be at least 1');
    return {
      store,
      dumpBytes,
      raw,
      ours,
      oursInPlace,
      rawBest,
      oursBest,
      oursInPlaceBest,
      ...(oursInPlaceMinio && oursInPlaceMinioBest ? { oursInPlaceMinio, oursInPlaceMinioBest } : {}),
      stdinOver,
      stdinBeside,
      rounds,
      load,
    };
  } finally {
    await Promise.allSettled([neo4j.stop(), s3Server.stop(), minio?.stop()]);
    rmSync(work, { recursive: true, force: true });
  }
}

/** Runs (a) and (b) on an Infrahub-shaped store of each size in `sizesBytes`, in order. */
export async function neo4jRestoreBenchmark(
  version: string,
  sizesBytes: readonly number[],
  rounds: number,
  print: (line: string) => void,
): Promise<Neo4jRestoreRow[]> {
  return withRunnerBundle(async (bundle) => {
    const rows: Neo4jRestoreRow[] = [];
    for (const targetBytes of sizesBytes) {
      const store = await ensureInfrahubShapedStore({ neo4jVersion: version, targetBytes, print });
      print(
        `  store ${(store.storeBytes / GiB).toFixed(2)} GiB (${store.reused ? 'reused from the cache' : 'generated'})`,
      );
      rows.push(await runOne(version, store, bundle, rounds, print));
    }
    return rows;
  });
}

export function formatNeo4jRestore(rows: readonly Neo4jRestoreRow[]): string[] {
  const s = (r: RestoreSide) =>
    `${(r.totalMs / 1000).toFixed(1).padStart(7)} s  (${Object.entries(r.steps)
      .map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`)
      .join(', ')}; peak RSS ${(r.peakRssKiB / 1024).toFixed(0)} MiB)`;
  const lines: string[] = [];
  for (const r of rows) {
    lines.push(
      `  store ${(r.store.storeBytes / GiB).toFixed(2)} GiB, ${r.store.nodes} nodes, ${r.store.relationships} relationships; ` +
        `neo4j.dump ${(r.dumpBytes / MiB).toFixed(0)} MiB`,
    );
    lines.push(`    (a) raw load from a local file + start + count   ${s(r.raw)}`);
    lines.push(
      `    (b) ours: from S3, verified + start + validate   ${s(r.ours)}  (runner on Node.js ${runnerNodeVersion()})`,
    );
    const phases = (p: RestoreSide['phases'], how: string) =>
      p
        ? [
            `        from the runner's log: ${Object.entries(p)
              .map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`)
              .join(
                ', ',
              )} (restore-neo4j: from its start; ${how}; validate-neo4j: until the counts were compared)`,
          ]
        : [];
    lines.push(...phases(r.ours.phases, 'the load staged once its file verified, then swapped in'));
    lines.push(
      `    (b') ours in place (neo4j.restoreLoad): the same   ${s(r.oursInPlace)}`,
      ...phases(r.oursInPlace.phases, 'every file verified, then loaded over the database'),
    );
    const fromMinio = r.oursInPlaceMinio;
    if (fromMinio)
      lines.push(
        `    (b'') (b') downloading from MinIO                  ${s(fromMinio)}`,
        ...phases(fromMinio.phases, "as (b'), the S3 server MinIO"),
      );
    lines.push(
      `    (c) neo4j-admin alone, the same file on standard input: over the existing database ${(r.stdinOver / 1000).toFixed(1)} s, ` +
        `under a new name beside it (as the staged restore loads) ${(r.stdinBeside / 1000).toFixed(1)} s: ${(r.stdinBeside / r.stdinOver).toFixed(2)}x`,
    );
    const cpu = (c: RestoreSide['cpu'], server = 'moto') =>
      c
        ? `${c.busy.toFixed(1)} of ${c.available.toFixed(1)} CPU-s busy (the local S3 server, ${server}, ${c.s3.toFixed(1)})`
        : 'not measured';
    lines.push(
      `        CPU during the load step, in the rows above: (a) ${cpu(r.raw.cpu)}; (b) ${cpu(r.ours.cpu)}; (b') ${cpu(r.oursInPlace.cpu)}` +
        (fromMinio ? `; (b'') ${cpu(fromMinio.cpu, 'MinIO')}` : ''),
    );
    const secs = (ms: number) => (ms / 1000).toFixed(1);
    lines.push(
      `    each step's best of the rounds, summed: (a) ${secs(r.rawBest.totalMs)} s, (b) ${secs(r.oursBest.totalMs)} s, (b') ${secs(r.oursInPlaceBest.totalMs)} s ` +
        `(start ${secs(r.rawBest.steps.start ?? 0)}, ${secs(r.oursBest.steps.start ?? 0)} and ${secs(r.oursInPlaceBest.steps.start ?? 0)} s): ` +
        `b/a = ${(r.oursBest.totalMs / r.rawBest.totalMs).toFixed(2)}, b'/a = ${(r.oursInPlaceBest.totalMs / r.rawBest.totalMs).toFixed(2)}` +
        (r.oursInPlaceMinioBest
          ? `, b''/a = ${(r.oursInPlaceMinioBest.totalMs / r.rawBest.totalMs).toFixed(2)} (${secs(r.oursInPlaceMinioBest.totalMs)} s)`
          : ''),
    );
    lines.push(
      `    ratio b/a = ${(r.ours.totalMs / r.raw.totalMs).toFixed(2)}, b'/a = ${(r.oursInPlace.totalMs / r.raw.totalMs).toFixed(2)}` +
        (fromMinio ? `, b''/a = ${(fromMinio.totalMs / r.raw.totalMs).toFixed(2)}` : '') +
        ` (target <= 1.2); best of ${r.rounds} interleaved rounds each; ` +
        `load average ${r.load.map((l) => l.toFixed(1)).join(' -> ')} on ${cpus().length} cores`,
    );
  }
  return lines;
}
