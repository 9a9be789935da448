/**
 * PostgreSQL backup, three ways, on the same generated database, in one run:
 *   (a) raw      `pg_dump -Fc > /dev/null`: the floor, what the dump alone costs;
 *   (b) ours     the runner's backup-postgres: pg_dump streamed into a multipart upload to the local
 *                S3 server, SHA-256 in the same pass, row counts in the dump's snapshot;
 *   (c) staged   like infrahub-backup: pg_dump to a file, sha256sum it, tar+gzip it, upload the archive.
 * (b) runs twice: with pg_dump's default compression (gzip 6, as (a) and (c) use: like for like) and
 * with the runner's own default (gzip 1, faster for a somewhat larger dump); both dump sizes are printed.
 * Each is timed (wall clock) and its peak RSS read from /proc/<pid>/status (VmHWM): for (b) the
 * runner process, for (a) pg_dump, for (c) the largest of its steps. Then the same on a database
 * four times larger, to show that the runner's memory does not grow with the data.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { localRunnerEnv, postgresRunnerEnv } from '../cli/local/runner-process.js';
import { runTool } from '../core/tools/run-tool.js';
import {
  createVersionedBucket,
  type PostgresServer,
  type S3Server,
  startPostgres,
  startS3,
} from '../harness/index.js';
import { cpuSeconds, processCpu } from './cpu.js';
import { withRunnerBundle } from './runner-bundle.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface Measured {
  wallMs: number;
  peakRssKiB: number;
  /** The last 64 KiB the process wrote to stderr (the runner's JSON log lines). */
  stderr?: string;
  /**
   * CPU-seconds from the last sample of /proc/<pid>/stat before it exited (bench/cpu.ts: up to one
   * 20 ms sample short): `self` its own (utime + stime), `children` that of the children it waited
   * for (cutime + cstime: the runner's neo4j-admin, pg_dump).
   */
  cpu?: { self: number; children: number };
}

/**
 * Runs a command to completion, sampling its peak RSS (VmHWM only grows, so the last sample is the
 * peak). Its standard output goes to `stdoutFile`, to `onStdout` as it comes, or nowhere.
 */
export function measure(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdoutFile?: string; onStdout?: (text: string) => void } = {},
): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const out = options.stdoutFile ? openSync(options.stdoutFile, 'w') : options.onStdout ? 'pipe' : 'ignore';
    const t0 = process.hrtime.bigint();
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['ignore', out, 'pipe'] });
    if (typeof out === 'number') closeSync(out);
    const onStdout = options.onStdout;
    if (onStdout) child.stdout?.on('data', (d: Buffer) => onStdout(d.toString()));
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-65536);
    });
    let peak = 0;
    let cpu: Measured['cpu'];
    const sample = () => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        if (hwm > peak) peak = hwm;
        if (child.pid !== undefined) cpu = processCpu(child.pid);
      } catch {
        // exited between samples
      }
    };
    const timer = setInterval(sample, 20);
    child.once('error', reject);
    // 'close', not 'exit': all of stderr (the runner's log) has been read by then.
    child.once('close', (code) => {
      clearInterval(timer);
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve({ wallMs, peakRssKiB: peak, stderr, ...(cpu ? { cpu } : {}) });
    });
  });
}

/**
 * Writes every dirty page to disk (sync(1)), so the next measured step does not pay for the last
 * one's writes: gigabytes a step wrote sit in the page cache when it ends (up to vm.dirty_ratio of
 * memory) and are written back during whatever runs next.
 */
export function flushPageCache(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

export async function generate(
  server: PostgresServer,
  database: string,
  targetBytes: number,
): Promise<number> {
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const client = new pg.Client({ connectionString: server.url(database) });
  await client.connect();
  try {
    // Shaped like Prefect's task-manager data: flow runs with JSON parameters, and many log lines.
    await client.query(`
      CREATE TABLE flow_run (id bigint PRIMARY KEY, name text, state_type text, parameters jsonb, created timestamptz);
      CREATE TABLE log (id bigserial PRIMARY KEY, flow_run_id bigint, level int, message text, created timestamptz);
      INSERT INTO flow_run SELECT g, 'generate-artifacts-' || g, (ARRAY['COMPLETED','FAILED','CANCELLED'])[1 + g % 3],
             jsonb_build_object('branch', 'branch-' || (g % 50), 'definition', md5(g::text), 'attempt', g % 4),
             now() - g * interval '1 minute'
        FROM generate_series(1, 50000) g;`);
    let next = 1;
    // About a tenth of the target per batch (a log row is ~200 bytes on disk), so small targets are met too.
    const batch = Math.max(50_000, Math.min(1_000_000, Math.round(targetBytes / 2000)));
    for (;;) {
      const size = Number(
        (await client.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s')).rows[0]?.s,
      );
      if (size >= targetBytes) break;
      await client.query(
        `INSERT INTO log (flow_run_id, level, message, created)
         SELECT 1 + g % 50000, (ARRAY[10,20,20,20,30,40])[1 + g % 6],
                'Task run ' || md5(g::text) || ' of flow run ' || (1 + g % 50000) || ' finished in state ' ||
                (ARRAY['COMPLETED','FAILED','CRASHED'])[1 + g % 3] || ': ' || md5((g * 7919)::text),
                now() - g * interval '1 second'
           FROM generate_series($1::bigint, $2::bigint) g`,
        [next, next + batch - 1],
      );
      next += batch;
    }
    await client.query('VACUUM ANALYZE');
    return Number(
      (await client.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s')).rows[0]?.s,
    );
  } finally {
    await client.end();
  }
}

async function emptyBucket(s3: S3Client, bucket: string): Promise<void> {
  const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
  for (const v of versions.Versions ?? []) {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key, VersionId: v.VersionId }));
  }
}

/** pg_dump streamed through SHA-256 into a discard sink: our pipeline without any storage. */
async function streamedNoStorage(
  pgDump: string,
  database: string,
  env: NodeJS.ProcessEnv,
): Promise<Measured> {
  const t0 = process.hrtime.bigint();
  const tool = runTool(pgDump, ['-Fc', `--dbname=${database}`], { env });
  const hash = createHash('sha256');
  for await (const chunk of tool.stdout) hash.update(chunk as Buffer);
  await tool.done;
  hash.digest();
  return { wallMs: Number(process.hrtime.bigint() - t0) / 1e6, peakRssKiB: 0 };
}

export interface PgBackupRow {
  databaseBytes: number;
  dumpBytes: number;
  raw: Measured;
  streamedOnly: Measured;
  /** The runner with pg_dump's own default compression (gzip 6), like (a) and (c). */
  ours: Measured;
  /** The runner with its default compression (gzip 1), and the size of that dump. */
  oursDefault: Measured;
  oursDefaultDumpBytes: number;
  s3ServerCpuDuringOurs: number;
  /** From pg_dump's exit to the object being complete in S3 (last part and CompleteMultipartUpload). */
  completionTailMs: number;
  staged: Measured & { steps: Record<string, Measured> };
}

async function runOne(
  postgres: PostgresServer,
  s3Server: S3Server,
  s3: S3Client,
  bundle: string,
  database: string,
  databaseBytes: number,
): Promise<PgBackupRow> {
  const bucket = 'bench-backups';
  const pgEnv = { ...process.env, ...postgres.env(database) };
  const work = mkdtempSync(join(tmpdir(), 'bench-pg-'));
  try {
    // (a) raw pg_dump to /dev/null
    const raw = await measure(postgres.tool('pg_dump'), ['-Fc', `--dbname=${database}`], {
      env: pgEnv,
      stdoutFile: '/dev/null',
    });

    // (a') the same dump streamed through SHA-256, without storage: the cost of our pipeline itself
    const streamedOnly = await streamedNoStorage(postgres.tool('pg_dump'), database, pgEnv);

    // (b) the runner, as the ECS task runs it
    const runnerEnv = {
      PATH: process.env.PATH ?? '',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...localRunnerEnv(s3Server, { target: 'bench', backupId: 'infrahub_backup_20261121_020000', bucket }),
      ...postgresRunnerEnv(postgres, database),
    };
    const s3Cpu = cpuSeconds(s3Server.pid);
    const ours = await measure(process.execPath, [bundle, 'backup-postgres'], {
      env: { ...runnerEnv, PG_DUMP_COMPRESS: '6' },
    });
    const s3ServerCpuDuringOurs = cpuSeconds(s3Server.pid) - s3Cpu;
    // From the runner's own log: how long after pg_dump exited the object was complete in S3.
    const logged = (message: string, field: string) =>
      (ours.stderr ?? '')
        .split('\n')
        .filter((l) => l.includes(`"message":"${message}"`))
        .map((l) => Number(JSON.parse(l)[field]))[0] ?? Number.NaN;
    const completionTailMs =
      logged('pg_dump finished', 'storedAfterMs') - logged('pg_dump exited', 'exitedAfterMs');
    await emptyBucket(s3, bucket);

    // (b1) the runner with its own default compression (gzip level 1)
    const oursDefault = await measure(process.execPath, [bundle, 'backup-postgres'], { env: runnerEnv });
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'bench/' }));
    const oursDefaultDumpBytes = versions.Versions?.find((v) => v.Key?.endsWith('/prefect.dump'))?.Size ?? 0;
    await emptyBucket(s3, bucket);

    // (c) staged, like infrahub-backup: dump to a file, hash it, tar+gzip it, upload the archive
    const dir = join(work, 'backup');
    mkdirSync(dir);
    const dumpFile = join(dir, 'prefect.dump');
    const steps: Record<string, Measured> = {};
    steps.dump = await measure(
      postgres.tool('pg_dump'),
      ['-Fc', `--dbname=${database}`, `--file=${dumpFile}`],
      { env: pgEnv },
    );
    const dumpBytes = statSync(dumpFile).size;
    steps.sha256 = await measure('sha256sum', [dumpFile]);
    const upload = join(work, 'upload');
    mkdirSync(upload);
    const archive = join(upload, 'infrahub_backup_20261121_020000.tar.gz');
    steps.targz = await measure('tar', ['-czf', archive, '-C', work, 'backup']);
    rmSync(dir, { recursive: true });
    steps.upload = await measure(process.execPath, [bundle, 'backup-artifacts'], {
      env: {
        ...runnerEnv,
        BACKUP_ID: 'infrahub_backup_20261121_030000',
        ARTIFACTS_SOURCE: 'path',
        ARTIFACTS_PATH: upload,
      },
    });
    await emptyBucket(s3, bucket);
    const staged = {
      wallMs: Object.values(steps).reduce((n, m) => n + m.wallMs, 0),
      peakRssKiB: Math.max(...Object.values(steps).map((m) => m.peakRssKiB)),
      steps,
    };
    return {
      databaseBytes,
      dumpBytes,
      raw,
      streamedOnly,
      ours,
      oursDefault,
      oursDefaultDumpBytes,
      s3ServerCpuDuringOurs,
      completionTailMs,
      staged,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function pgBackupBenchmark(
  baseBytes: number,
  print: (line: string) => void,
): Promise<PgBackupRow[]> {
  return withRunnerBundle((bundle) => backupRows(baseBytes, bundle, print));
}

async function backupRows(
  baseBytes: number,
  bundle: string,
  print: (line: string) => void,
): Promise<PgBackupRow[]> {
  const [postgres, s3Server] = await Promise.all([startPostgres(), startS3()]);
  const s3 = s3Server.client();
  try {
    await createVersionedBucket(s3, 'bench-backups');
    const rows: PgBackupRow[] = [];
    for (const [i, factor] of [1, 4].entries()) {
      const database = `bench_${i}`;
      print(`  generating a database of about ${((baseBytes * factor) / GiB).toFixed(1)} GiB ...`);
      const size = await generate(postgres, database, baseBytes * factor);
      print(`  measuring on ${(size / GiB).toFixed(2)} GiB ...`);
      rows.push(await runOne(postgres, s3Server, s3, bundle, database, size));
      const admin = new pg.Client({ connectionString: postgres.url() });
      await admin.connect();
      await admin.query(`DROP DATABASE ${database}`);
      await admin.end();
    }
    return rows;
  } finally {
    await Promise.all([postgres.stop(), s3Server.stop()]);
  }
}

export function formatPgBackup(rows: readonly PgBackupRow[]): string[] {
  const s = (m: Measured) =>
    `${(m.wallMs / 1000).toFixed(1).padStart(7)} s  ${(m.peakRssKiB / 1024).toFixed(0).padStart(5)} MiB`;
  const lines: string[] = [];
  for (const r of rows) {
    lines.push(
      `  database ${(r.databaseBytes / GiB).toFixed(2)} GiB; custom-format dump ${(r.dumpBytes / MiB).toFixed(0)} MiB ` +
        `at pg_dump's default compression (gzip 6), ${(r.oursDefaultDumpBytes / MiB).toFixed(0)} MiB at gzip 1`,
    );
    const secs = (m: Measured) => `${(m.wallMs / 1000).toFixed(1).padStart(7)} s`;
    lines.push(`    (a)  raw pg_dump -Fc > /dev/null (gzip 6)            ${s(r.raw)}`);
    lines.push(`    (a') pg_dump -Fc through SHA-256, no storage          ${secs(r.streamedOnly)}`);
    lines.push(`    (b)  ours: runner to S3, gzip 6 like (a) and (c)      ${s(r.ours)}`);
    lines.push(
      `         the local S3 server used ${r.s3ServerCpuDuringOurs.toFixed(1)} CPU-s during (b) on the same 2 cores; ` +
        `the object was complete ${(r.completionTailMs / 1000).toFixed(1)} s after pg_dump exited`,
    );
    lines.push(`    (b1) ours: runner to S3, its default gzip 1           ${s(r.oursDefault)}`);
    lines.push(`    (c)  staged: dump, sha256, tar.gz, upload (gzip 6)    ${s(r.staged)}`);
    const st = r.staged.steps;
    lines.push(
      `        steps: ${Object.entries(st)
        .map(([k, m]) => `${k} ${(m.wallMs / 1000).toFixed(1)} s`)
        .join(', ')}`,
    );
    const ratio = (x: Measured, y: Measured) => (x.wallMs / y.wallMs).toFixed(2);
    lines.push(
      `    ratios: b/a = ${ratio(r.ours, r.raw)} (target <= 1.15), c/b = ${ratio(r.staged, r.ours)} (target >= 2), ` +
        `a'/a = ${ratio(r.streamedOnly, r.raw)}; with the runner's default: b1/a = ${ratio(r.oursDefault, r.raw)}, c/b1 = ${ratio(r.staged, r.oursDefault)}`,
    );
  }
  const first = rows[0];
  const last = rows.at(-1);
  if (first && last && first !== last) {
    const peak = (r: PgBackupRow) => Math.max(r.ours.peakRssKiB, r.oursDefault.peakRssKiB);
    lines.push(
      `  runner peak RSS: ${(peak(first) / 1024).toFixed(0)} MiB at ${(first.databaseBytes / GiB).toFixed(2)} GiB, ` +
        `${(peak(last) / 1024).toFixed(0)} MiB at ${(last.databaseBytes / GiB).toFixed(2)} GiB ` +
        `(x${(peak(last) / peak(first)).toFixed(2)}; targets <= 200 MiB, within 10 %)`,
    );
  }
  return lines;
}
