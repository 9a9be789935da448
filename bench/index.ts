/**
 * `npm run bench`: benchmarks that compare side by side in one run and print sizes and ratios.
 * Performance is measured here, never by timed assertions in tests.
 *   BENCH_PG_GIB     size of the first generated PostgreSQL database (default 1; the second is 4x)
 *   BENCH_HASH_MIB   size of the hashing benchmark's file (default 512)
 *   BENCH_DECOMPRESS_MIB  decompressed size of the format check's decompression benchmark (default 1024)
 *   BENCH_RESTORE_GIB size of the database the restore benchmark restores (default 1)
 *   BENCH_NEO4J_MIB  store size of the Neo4j Enterprise chain benchmark (fake neo4j-admin; default 256)
 *   BENCH_NEO4J_CHANGE_PCT  its change between the two backups, % of the store (default 2)
 *   BENCH_VERIFY_OBJECTS  artifact object counts of the verification benchmark (default "5000,50000")
 *   BENCH_NEO4J_GIB  store sizes (GiB, comma-separated) of the Neo4j Community backup and restore
 *                    benchmarks on an Infrahub-shaped graph (default "1"; "1,4" adds a 4 GiB store:
 *                    measured on 2 cores, the backup benchmark about 10 minutes for both sizes, the
 *                    restore one about 9 with 3 rounds, plus about 3 minutes to generate each store
 *                    the first time). Stores are generated once with neo4j-admin import and kept under
 *                    .cache/bench-neo4j-<version>-<size>gib/ (or BENCH_NEO4J_CACHE_DIR)
 *   BENCH_NEO4J_VERSION  the Neo4j version of those (default the harness's, HARNESS_NEO4J_VERSION)
 *   BENCH_NEO4J_ROUNDS   interleaved rounds of each (best of; default 2)
 *   BENCH_RUNNER_NODE    the node executable that runs the runner in those two (default this one; the
 *                    runner's image runs Node.js 22, whose node:zlib checks a dump's zstd body natively)
 *   BENCH_MINIO      "0" leaves MinIO out of those two; otherwise, when MinIO is installed
 *                    (scripts/setup.sh --with-minio, or HARNESS_MINIO), the backup benchmark runs ours
 *                    against it too (b') and the restore one its in-place restore from it (b''), beside
 *                    moto: how much of ours is the local S3 server's CPU on the same cores
 *   BENCH_WINDOW_MIB store size of the Community downtime window benchmark (real Neo4j filled over
 *                    Cypher; default 300)
 *   BENCH_WINDOW_GIB sizes (GiB, comma-separated) of Infrahub-shaped stores (those of BENCH_NEO4J_GIB)
 *                    to measure the window on instead, to show how it grows with the store ("1,4":
 *                    about 5 minutes from cached stores)
 *   BENCH_ONLY       "hash", "decompress", "pg", "restore", "neo4j-chain", "verify-scale", "neo4j-backup",
 *                    "neo4j-restore", "neo4j-window" or "infrahub-drill" to run one of them
 * infrahub-drill starts a real Infrahub (harness/infrahub.ts; about 3 GiB of RAM): about 20 minutes
 * the first time (it initialises and seeds Infrahub, then caches the stores under
 * .cache/bench-infrahub-neo4j-<version>/ or BENCH_NEO4J_CACHE_DIR), less from the cached stores.
 */

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { neo4jVersion, startNeo4j } from '../harness/index.js';
import { minioChoiceProblem } from '../harness/minio.js';
import { type DecompressRow, decompressBenchmark, formatDecompress } from './decompress.js';
import { hashOverhead } from './hash-overhead.js';
import { formatInfrahubDrill, infrahubDrillBenchmark } from './infrahub-drill.js';
import { formatNeo4jBackup, neo4jBackupBenchmark, runnerNode, startOnStore } from './neo4j-backup.js';
import { formatNeo4jChain, neo4jChainBenchmark } from './neo4j-chain.js';
import { ensureInfrahubShapedStore } from './neo4j-graph.js';
import { formatNeo4jRestore, neo4jRestoreBenchmark } from './neo4j-restore.js';
import { fillStore, formatNeo4jWindow, neo4jWindowBenchmark } from './neo4j-window.js';
import { formatPgBackup, pgBackupBenchmark } from './pg-backup.js';
import { formatPgRestore, pgRestoreBenchmark } from './pg-restore.js';
import {
  formatThrottledTagging,
  formatVerifyScale,
  throttledTaggingBenchmark,
  verifyScaleBenchmark,
} from './verify-scale.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const only = process.env.BENCH_ONLY;
// A MinIO named but absent stops here, not after the benchmarks before the two that use it.
const minioProblem = process.env.BENCH_MINIO === '0' ? undefined : minioChoiceProblem();
if (minioProblem) {
  console.error(`bench: ${minioProblem}`);
  process.exit(2);
}
const graphVersion = process.env.BENCH_NEO4J_VERSION ?? neo4jVersion();

if (!only || only === 'hash') {
  const sizeMiB = Number(process.env.BENCH_HASH_MIB ?? 512);
  console.log('Benchmark: SHA-256 in the streaming pass');
  console.log(
    `  compares: (a) streamed read of a ${sizeMiB} MiB file, (b) the same read hashed with SHA-256`,
  );
  const r = await hashOverhead(sizeMiB);
  const mibps = (ms: number) => (r.sizeMiB / (ms / 1000)).toFixed(0);
  console.log(
    `  (a) plain read   ${r.plainMs.toFixed(0).padStart(7)} ms  ${mibps(r.plainMs).padStart(6)} MiB/s`,
  );
  console.log(
    `  (b) read+sha256  ${r.hashedMs.toFixed(0).padStart(7)} ms  ${mibps(r.hashedMs).padStart(6)} MiB/s`,
  );
  console.log(`  ratio b/a = ${r.ratio.toFixed(2)}  (best of 3 interleaved rounds)\n`);
}

if (!only || only === 'decompress') {
  const mib = Number(process.env.BENCH_DECOMPRESS_MIB ?? 1024);
  console.log("\nBenchmark: the format check's decompression, by output chunk size");
  console.log(
    `  compares: (a) node:zlib's default 16 KiB output chunk, (b) the check's 1 MiB (ZLIB_CHUNK_BYTES); ${mib} MiB of Infrahub-like JSON lines, gzip and zstd`,
  );
  // In the runner's Node.js (BENCH_RUNNER_NODE), whose node:zlib has zstd; this file needs only node: built-ins.
  const run = spawnSync(runnerNode(), [join(import.meta.dirname, 'decompress.ts'), String(mib)], {
    encoding: 'utf8',
    maxBuffer: 1024 * 1024,
  });
  const rows =
    run.status === 0
      ? (JSON.parse(run.stdout) as DecompressRow[])
      : await (async () => {
          console.log(
            `  (${runnerNode()} cannot run bench/decompress.ts itself: ${run.stderr.split('\n')[0]}; measured in this Node.js)`,
          );
          return decompressBenchmark(mib);
        })();
  for (const line of formatDecompress(rows)) console.log(line);
}

if (!only || only === 'pg') {
  const gib = Number(process.env.BENCH_PG_GIB ?? 1);
  console.log('Benchmark: PostgreSQL backup (real pg_dump, local S3 server)');
  console.log(
    '  compares: (a) raw pg_dump -Fc > /dev/null, (b) our streamed backup, (c) a staged pipeline like infrahub-backup',
  );
  const rows = await pgBackupBenchmark(gib * 1024 ** 3, (line) => console.log(line));
  for (const line of formatPgBackup(rows)) console.log(line);
}

if (!only || only === 'restore') {
  const gib = Number(process.env.BENCH_RESTORE_GIB ?? 1);
  console.log('\nBenchmark: PostgreSQL restore (real pg_restore, local S3 server)');
  console.log(
    '  compares: (a) raw pg_restore --clean --create from a local file, (b) our restore-postgres streamed from S3 with row-count validation, same dump',
  );
  const result = await pgRestoreBenchmark(gib * 1024 ** 3, 2, (line) => console.log(line));
  for (const line of formatPgRestore(result)) console.log(line);
}

if (!only || only === 'neo4j-chain') {
  const store = Number(process.env.BENCH_NEO4J_MIB ?? 256) * 1024 ** 2;
  const changed = Math.round((store * Number(process.env.BENCH_NEO4J_CHANGE_PCT ?? 2)) / 100);
  console.log(
    '\nBenchmark: Neo4j Enterprise backup, full vs differential on the previous backup in S3 (FAKE neo4j-admin, local S3 server)',
  );
  console.log(
    `  compares: (a) a full backup, (b) a differential: base chain downloaded and verified, copied server-side, the change uploaded; store ${(store / 1024 ** 2).toFixed(0)} MiB, change ${(changed / 1024 ** 2).toFixed(1)} MiB (the fake's differential is the size of the change)`,
  );
  for (const line of formatNeo4jChain(await neo4jChainBenchmark(store, changed))) console.log(line);
}

if (!only || only === 'neo4j-window') {
  const mib = Number(process.env.BENCH_WINDOW_MIB ?? 300);
  console.log(
    '\nBenchmark: Neo4j Community downtime window, dump in place vs dump of a copy (real Neo4j, local S3 server)',
  );
  console.log(
    '  compares: (a) stop -> count and dump the store -> start -> serving, (b) stop -> copy the store -> start -> serving (the copy counted and dumped meanwhile)',
  );
  const print = (line: string) => console.log(line);
  const windowGib = process.env.BENCH_WINDOW_GIB;
  if (windowGib) {
    for (const gib of windowGib.split(',').map(Number)) {
      const store = await ensureInfrahubShapedStore({
        neo4jVersion: graphVersion,
        targetBytes: gib * 1024 ** 3,
        print,
      });
      print(`  an Infrahub-shaped store of ${gib} GiB (bench/neo4j-graph.ts; ${store.nodes} nodes)`);
      const neo4j = await startOnStore(graphVersion, store);
      try {
        for (const line of formatNeo4jWindow(await neo4jWindowBenchmark(neo4j))) print(line);
      } finally {
        await neo4j.stop();
      }
    }
  } else {
    const neo4j = await startNeo4j({ heap: '1g', pageCache: '256m' });
    try {
      await fillStore(neo4j, mib * 1024 ** 2, print);
      for (const line of formatNeo4jWindow(await neo4jWindowBenchmark(neo4j))) print(line);
    } finally {
      await neo4j.stop();
    }
  }
}

if (!only || only === 'verify-scale') {
  const counts = (process.env.BENCH_VERIFY_OBJECTS ?? '5000,50000').split(',').map(Number);
  console.log('\nBenchmark: verifying a backup of many artifact objects (local moto S3)');
  console.log(
    '  compares: (a) a HEAD per file in turn (before), (b) quick verification from ListObjectVersions and the upload record, (c) the whole manifest step, (d) the same with retention (a tag per object)',
  );
  for (const objects of counts) {
    const rows = await verifyScaleBenchmark(objects, (line) => console.log(line));
    for (const line of formatVerifyScale(rows)) console.log(line);
  }
  console.log(
    '  (e) the client that tags: 2,000 tags, 40 answered 503 SlowDown after the first 1,000, three rounds each',
  );
  for (const line of formatThrottledTagging(await throttledTaggingBenchmark())) console.log(line);
}

const neo4jSizes = (process.env.BENCH_NEO4J_GIB ?? '1').split(',').map((g) => Number(g) * 1024 ** 3);
const neo4jRounds = Number(process.env.BENCH_NEO4J_ROUNDS ?? 2);

if (!only || only === 'neo4j-backup') {
  console.log(
    `\nBenchmark: Neo4j ${graphVersion} Community backup on an Infrahub-shaped graph (real neo4j-admin, local S3 server)`,
  );
  console.log(
    '  compares: (a) raw neo4j-admin database dump --to-path to local disk, (b) our runner streaming dump --to-stdout to S3 (moto), ' +
      "(b') the same to MinIO when installed, (c) staged: dump to disk, sha256sum, tar+gzip, upload",
  );
  const rows = await neo4jBackupBenchmark(graphVersion, neo4jSizes, neo4jRounds, (line) => console.log(line));
  for (const line of formatNeo4jBackup(rows)) console.log(line);
}

if (!only || only === 'neo4j-restore') {
  console.log(
    `\nBenchmark: Neo4j ${graphVersion} Community restore on an Infrahub-shaped graph (real neo4j-admin, local S3 server)`,
  );
  console.log(
    `  compares: (a) raw neo4j-admin database load from a local file + start + count, (b) our runner: restore-neo4j from S3 (SHA-256 verified) + start + validate-neo4j, staged (the default), (b') the same with neo4j.restoreLoad "in-place", (b'') (b') from MinIO when installed`,
  );
  const rows = await neo4jRestoreBenchmark(graphVersion, neo4jSizes, neo4jRounds, (line) =>
    console.log(line),
  );
  for (const line of formatNeo4jRestore(rows)) console.log(line);
}

if (!only || only === 'infrahub-drill') {
  console.log(
    `\nBenchmark: recovery of a real Infrahub 1.11 (Neo4j ${graphVersion}), through the local state machines, as npm run demo`,
  );
  console.log(
    '  measures: backup, then restore start -> Infrahub serving and validated (its objects compared field by field), then a restore drill and its report',
  );
  for (const line of formatInfrahubDrill(
    await infrahubDrillBenchmark(graphVersion, (line) => console.log(line)),
  ))
    console.log(line);
}
