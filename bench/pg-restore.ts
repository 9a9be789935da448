/**
 * PostgreSQL restore, two ways, on the same dump, interleaved in one run:
 *   (a) raw    `pg_restore --clean --if-exists --create --no-owner --exit-on-error -d postgres <file>`
 *              from a local file (the dump downloaded beforehand, not timed): the floor;
 *   (b) ours   the runner's restore-postgres: the same pg_restore fed from the exact S3 version on
 *              the local S3 server, then exact row counts of every table compared with the backup's.
 * The dump is the one the runner's own backup wrote (gzip 1). Each restore drops and creates the
 * database again; best of `rounds` for each, alternating (a) and (b) so drift hits both.
 */
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { localRunnerEnv, postgresRunnerEnv } from '../cli/local/runner-process.js';
import { buildRunner } from '../containers/runner/build.js';
import { fileKey, PREFECT_DUMP, restoreStepKey } from '../core/backup/layout.js';
import { writeManifest } from '../core/backup/seal.js';
import { RestoreStepResultSchema } from '../core/restore/steps.js';
import { getJson, openObject } from '../core/s3/objects.js';
import { createVersionedBucket, startPostgres, startS3 } from '../harness/index.js';
import { generate, type Measured, measure } from './pg-backup.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface PgRestoreResult {
  databaseBytes: number;
  dumpBytes: number;
  rows: number;
  raw: Measured;
  ours: Measured;
  /** The runner's split of (b): streamed pg_restore, then the row counts (ms). */
  oursTimings: Record<string, number>;
  rounds: number;
}

export async function pgRestoreBenchmark(
  databaseBytes: number,
  rounds: number,
  print: (line: string) => void,
): Promise<PgRestoreResult> {
  const work = mkdtempSync(join(tmpdir(), 'bench-restore-'));
  const bundle = join(work, 'runner.mjs');
  await buildRunner(bundle);
  const [postgres, s3Server] = await Promise.all([startPostgres(), startS3()]);
  const s3 = s3Server.client();
  const bucket = 'bench-restores';
  const target = 'bench';
  const backupId = 'infrahub_backup_20261122_020000';
  const database = 'bench_restore';
  try {
    await createVersionedBucket(s3, bucket);
    print(`  generating a database of about ${(databaseBytes / GiB).toFixed(1)} GiB ...`);
    const size = await generate(postgres, database, databaseBytes);
    const runnerEnv = {
      PATH: process.env.PATH ?? '',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...localRunnerEnv(s3Server, { target, backupId, bucket }),
      ...postgresRunnerEnv(postgres, database),
    };
    print('  backing it up with the runner (its default gzip 1) ...');
    await measure(process.execPath, [bundle, 'backup-postgres'], { env: runnerEnv });
    const { manifest } = await writeManifest(s3, bucket, {
      target,
      backupId,
      components: ['task-manager-db'],
    });
    const rows = Object.values(manifest.counts?.postgres?.tables ?? {}).reduce((a, b) => a + b, 0);
    const stored = manifest.s3?.[PREFECT_DUMP];
    const file = join(work, PREFECT_DUMP);
    const body = await openObject(s3, bucket, fileKey(target, backupId, PREFECT_DUMP), stored?.version_id);
    await pipeline(body, createWriteStream(file));
    const dumpBytes = statSync(file).size;

    const rawArgs = [
      '--clean',
      '--if-exists',
      '--create',
      '--no-owner',
      '--exit-on-error',
      '--dbname=postgres',
      file,
    ];
    const rawEnv = { ...process.env, ...postgres.env('postgres') };
    const restoreId = 'restore_20261122_030000_bench';
    const restoreEnv = { ...runnerEnv, RESTORE_ID: restoreId, RESTORE_WORK_DIR: work };
    let oursTimings: Record<string, number> = {};
    let raw: Measured | undefined;
    let ours: Measured | undefined;
    for (let round = 1; round <= rounds; round++) {
      print(`  round ${round} of ${rounds}: (a) raw pg_restore, then (b) ours ...`);
      const a = await measure(postgres.tool('pg_restore'), rawArgs, { env: rawEnv });
      const b = await measure(process.execPath, [bundle, 'restore-postgres'], { env: restoreEnv });
      if (!raw || a.wallMs < raw.wallMs) raw = a;
      if (!ours || b.wallMs < ours.wallMs) {
        ours = b;
        // The runner's own split of its time, from its step report.
        const step = await getJson(
          s3,
          bucket,
          restoreStepKey(target, restoreId, 'restore-postgres'),
          RestoreStepResultSchema,
        );
        oursTimings = step?.timings ?? {};
      }
    }
    return {
      databaseBytes: size,
      dumpBytes,
      rows,
      raw: raw as Measured,
      ours: ours as Measured,
      oursTimings,
      rounds,
    };
  } finally {
    await Promise.all([postgres.stop(), s3Server.stop()]);
    rmSync(work, { recursive: true, force: true });
  }
}

export function formatPgRestore(r: PgRestoreResult): string[] {
  const s = (m: Measured) =>
    `${(m.wallMs / 1000).toFixed(1).padStart(7)} s  ${(m.peakRssKiB / 1024).toFixed(0).padStart(5)} MiB peak RSS`;
  return [
    `  database ${(r.databaseBytes / GiB).toFixed(2)} GiB, ${r.rows} rows; dump ${(r.dumpBytes / MiB).toFixed(0)} MiB (custom format, gzip 1)`,
    `  (a) raw pg_restore from a local file       ${s(r.raw)}`,
    `  (b) ours: streamed from S3 + row counts    ${s(r.ours)}`,
    `      of which: ${Object.entries(r.oursTimings)
      .map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`)
      .join(', ')}; the rest is the process start, reading the manifest and writing the report`,
    `  ratio b/a = ${(r.ours.wallMs / r.raw.wallMs).toFixed(2)}  (target <= 1.2; best of ${r.rounds} interleaved rounds each)`,
  ];
}
