/**
 * The Community downtime window (issue 19, item 2), side by side on one store: how long the DBMS is
 * down (from the stop to the DBMS serving again) when the backup dumps the stopped store in place
 * (neo4j.dumpFrom "store") against when it copies the store to the task's disk, starts the DBMS
 * again and dumps the copy (neo4j.dumpFrom "copy", the default). Both run the runner's own
 * backupNeo4jCommunity against a harness Neo4j (real neo4j-admin, real server start) and the local
 * S3 server (moto), the stopped store counted offline as the runner does by default. The DBMS's stop
 * and start are the harness's (the process, not an ECS task: on AWS both windows also hold the
 * ECS task's stop and start, about the same in either way).
 *
 * Printed: the store's size, each way's window and dump, the copy's time, and the ratios
 * window(copy)/copy (the target: at most 1.5) and window(store)/window(copy).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backupNeo4jCommunity } from '../containers/runner/src/components/neo4j.js';
import { storeBytes, storeDirs } from '../containers/runner/src/components/neo4j-store-copy.js';
import type { RunContext } from '../containers/runner/src/context.js';
import type { Neo4jResult } from '../core/backup/results.js';
import { createLogger } from '../core/log.js';
import { createVersionedBucket, type Neo4jServer, startS3 } from '../harness/index.js';

const MiB = 1024 ** 2;
const bucket = 'bench-neo4j-window';

/** One way's measurements, in milliseconds from the stop's start. */
export interface WindowRun {
  /** `store` (dumped in place) or `copy`. */
  dumpFrom: 'store' | 'copy';
  /** The DBMS's stop (process ended). */
  stopMs: number;
  /** Stop → serving again: the downtime. */
  windowMs: number;
  /** The backup (checks, count, copy if any, dumps, uploads), from the end of the stop. */
  backupMs: number;
  /** The copy of the store (copy only; the runner's own measure). */
  copyMs?: number;
  /** Stop → the runner asked for the start (copy only): the part of the window the runner decides. */
  startRequestedMs?: number;
  /** Bytes the dumps hold (compressed). */
  dumpBytes: number;
}

export interface WindowBenchmark {
  /** Bytes of the dumped databases' store folders and transaction logs (what a copy moves). */
  storeBytes: number;
  store: WindowRun;
  copy: WindowRun;
}

/**
 * Measures both ways on `neo4j` (a running harness instance whose store is the one to back up;
 * it is stopped and started twice and left running), dumping `databases`.
 * @param options.copyDir parent of the copy's folder (default: a fresh folder under the OS's tmp)
 * @param options.countOffline count the stopped store as the runner does by default (default true)
 * @throws whatever backupNeo4jCommunity or the DBMS's start throws (the DBMS is started again first)
 */
export async function neo4jWindowBenchmark(
  neo4j: Neo4jServer,
  options: { databases?: readonly string[]; copyDir?: string; countOffline?: boolean } = {},
): Promise<WindowBenchmark> {
  const databases = options.databases ?? ['neo4j', 'system'];
  const scratch = mkdtempSync(join(tmpdir(), 'bench-neo4j-window-'));
  const copyDir = options.copyDir ?? join(scratch, 'copy');
  const s3server = await startS3();
  const s3 = s3server.client();
  await createVersionedBucket(s3, bucket);
  const admin = { path: neo4j.adminPath, env: { ...process.env, ...neo4j.adminEnv() } };
  const offline =
    options.countOffline === false
      ? (false as const)
      : { home: neo4j.home, workDir: join(scratch, 'count'), memory: { heap: '512m', pageCache: '128m' } };
  const ctx = (backupId: string): RunContext => ({
    s3,
    bucket,
    target: 'bench',
    backupId,
    partSize: 8 * MiB,
    concurrency: 4,
    logger: createLogger({}, { level: 'error' }),
  });
  const dumpBytes = (r: Neo4jResult) => r.files.reduce((n, f) => n + f.size, 0);
  try {
    const size = await storeBytes(storeDirs(neo4j.home, join(neo4j.home, 'conf')), databases);

    // (a) In place: stop, check, count, dump, start.
    let t0 = performance.now();
    await neo4j.stopDbms();
    const stoppedA = performance.now();
    let result: Neo4jResult;
    let backupA = 0;
    try {
      result = await backupNeo4jCommunity(ctx('infrahub_backup_20260101_010000'), admin, databases, offline);
      backupA = performance.now();
    } finally {
      await neo4j.startDbms();
    }
    const servingA = performance.now();
    const store: WindowRun = {
      dumpFrom: 'store',
      stopMs: stoppedA - t0,
      windowMs: servingA - t0,
      backupMs: backupA - stoppedA,
      dumpBytes: dumpBytes(result),
    };

    // (b) From a copy: stop, check, copy, start (while the copy is counted and dumped).
    t0 = performance.now();
    await neo4j.stopDbms();
    const stoppedB = performance.now();
    let servingAt = 0;
    let started: Promise<void> | undefined;
    try {
      result = await backupNeo4jCommunity(ctx('infrahub_backup_20260101_020000'), admin, databases, offline, {
        home: neo4j.home,
        dir: copyDir,
        headroomBytes: 0,
        startDbms: () => {
          started = neo4j.startDbms().then(() => {
            servingAt = performance.now();
          });
          return started;
        },
      });
    } finally {
      if (started) await started;
      else await neo4j.startDbms();
    }
    const backupB = performance.now();
    if (result.window?.dumpFrom !== 'copy')
      throw new Error(`the copy was not made: ${JSON.stringify(result.window)}`);
    const copy: WindowRun = {
      dumpFrom: 'copy',
      stopMs: stoppedB - t0,
      windowMs: servingAt - t0,
      backupMs: backupB - stoppedB,
      copyMs: result.window.copyMs,
      startRequestedMs: stoppedB - t0 + result.window.startRequestedMs,
      dumpBytes: dumpBytes(result),
    };
    return { storeBytes: size, store, copy };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await s3server.stop();
  }
}

/**
 * Writes Infrahub-like vertices (a `Node` with its kind's label, 4 `Attribute` vertices each with an
 * `AttributeValue`, edges carrying branch and status) into `neo4j`'s `neo4j` database in batches
 * until its store files (`databases/neo4j`, without the transaction logs, which Neo4j preallocates
 * at 256 MiB each: db.tx_log.preallocate) hold at least `targetBytes`: the
 * store the window benchmark stops, copies and dumps, until bench/neo4j-graph.ts (issue 19, item 1)
 * gives a generated Infrahub-shaped one.
 * @returns the bytes reached
 */
export async function fillStore(
  neo4j: Neo4jServer,
  targetBytes: number,
  print: (line: string) => void = () => undefined,
): Promise<number> {
  const dirs = storeDirs(neo4j.home, join(neo4j.home, 'conf'));
  const files = { data: dirs.data, transactions: join(dirs.data, 'no-transactions') };
  const session = neo4j.driver().session({ database: 'neo4j' });
  try {
    let bytes = await storeBytes(files, ['neo4j']);
    for (let batch = 0; bytes < targetBytes; batch += 1) {
      await session.run(
        `UNWIND range(1, 5000) AS i
         CREATE (n:Node:InfraDevice {uuid: randomUUID(), kind: 'InfraDevice', namespace: 'Infra', branch_support: 'aware'})
         WITH n, i
         UNWIND ['name', 'description', 'role', 'status'] AS attr
         CREATE (n)-[:HAS_ATTRIBUTE {branch: 'main', branch_level: 1, from: '2026-11-21T02:00:00Z', status: 'active'}]->
                (a:Attribute {uuid: randomUUID(), name: attr, branch_support: 'aware'})
                -[:HAS_VALUE {branch: 'main', branch_level: 1, from: '2026-11-21T02:00:00Z', status: 'active'}]->
                (:AttributeValue {value: attr + '-' + toString($batch) + '-' + toString(i) + '-' + randomUUID() + randomUUID(), is_default: false})`,
        { batch },
      );
      bytes = await storeBytes(files, ['neo4j']);
      if (batch % 5 === 0)
        print(`  filling the store: ${(bytes / MiB).toFixed(0)} MiB of ${(targetBytes / MiB).toFixed(0)}`);
    }
    return bytes;
  } finally {
    await session.close();
  }
}

/** The benchmark's lines: sizes, both ways side by side, and the ratios. */
export function formatNeo4jWindow(b: WindowBenchmark): string[] {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`.padStart(8);
  const copyMs = b.copy.copyMs ?? 0;
  return [
    `  store: ${(b.storeBytes / MiB).toFixed(0)} MiB copied (store files and transaction logs of neo4j and system); dumps ${(b.copy.dumpBytes / MiB).toFixed(1)} MiB`,
    `  (a) dumpFrom store   window ${s(b.store.windowMs)}  (stop ${s(b.store.stopMs)}; backup ${s(b.store.backupMs)}, all inside the window)`,
    `  (b) dumpFrom copy    window ${s(b.copy.windowMs)}  (stop ${s(b.copy.stopMs)}; copy ${s(copyMs)}; start asked at ${s(b.copy.startRequestedMs ?? 0)}, serving ${s(b.copy.windowMs - (b.copy.startRequestedMs ?? 0))} later; backup ${s(b.copy.backupMs)}, its count and dump after the start)`,
    `  ratio window(b)/copy = ${(b.copy.windowMs / Math.max(copyMs, 1)).toFixed(2)}  (target <= 1.5; includes the DBMS's own start, the same in (a))`,
    `  ratio (stop -> start asked)/copy = ${((b.copy.startRequestedMs ?? 0) / Math.max(copyMs, 1)).toFixed(2)}  (the part of the window the runner decides)`,
    `  ratio window(a)/window(b) = ${(b.store.windowMs / Math.max(b.copy.windowMs, 1)).toFixed(2)}`,
  ];
}
