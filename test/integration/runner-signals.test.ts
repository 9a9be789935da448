/**
 * The runner's real entrypoint (a child process, as ECS starts it) stopped or cut off mid-backup
 * (issue 12 review, items 1 and 2): ECS's SIGTERM when Step Functions stops the task, and a
 * network to PostgreSQL that goes silent. Either way the runner must end within its bound with a
 * named error, recorded, its tools ended (no `<defunct>` process) and no multipart upload left open.
 */
import { readFileSync } from 'node:fs';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localRunnerEnv, postgresRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { EXIT_CODES } from '../../containers/runner/src/main.js';
import { fileKey, PREFECT_DUMP, resultKey } from '../../core/backup/layout.js';
import { ComponentErrorSchema } from '../../core/backup/results.js';
import { getJson } from '../../core/s3/objects.js';
import type { FaultProxy, PostgresServer, S3Server } from '../../harness/index.js';
import { type RunnerStack, startRunnerStack } from '../../harness/runner-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { descendants } from '../helpers/process-tree.js';
import { exists, openUploads } from '../helpers/s3.js';
import { type SilentTcpProxy, startSilentTcpProxy } from '../helpers/tcp-proxy.js';

const Bucket = 'backups-runner-signals';
const target = 'infrahub-lab';

/** `comm` and state of a process, or undefined when it no longer exists. */
function procState(pid: number): { comm: string; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '';
    return { comm, state };
  } catch {
    return undefined;
  }
}

describe('backup runner: stopped by a signal, or cut off from PostgreSQL, mid-dump (real PostgreSQL, real S3 server)', () => {
  let stack: RunnerStack;
  let postgres: PostgresServer;
  let server: S3Server;
  let proxy: FaultProxy;
  let s3: S3Client;
  let tcp: SilentTcpProxy | undefined;

  beforeAll(async () => {
    // About 40 MiB of dump (uncompressed): many 5 MiB parts, so the signal lands while pg_dump runs.
    stack = await startRunnerStack({
      bucket: Bucket,
      postgres: { flowRuns: 100, bulkRows: 400_000 },
      faultProxy: true,
    });
    ({ postgres, server, proxy, s3 } = stack);
  }, scaled(240_000));

  afterAll(async () => {
    await tcp?.stop();
    await stack?.stop();
  });

  const env = (backupId: string, extra: Record<string, string> = {}) => ({
    ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
    ...postgresRunnerEnv(postgres),
    S3_ENDPOINT: proxy.endpoint,
    S3_PART_SIZE_MIB: '5',
    S3_UPLOAD_CONCURRENCY: '1',
    PG_DUMP_COMPRESS: '0',
    ...extra,
  });
  const errorRecord = (backupId: string) =>
    getJson(s3, Bucket, resultKey(target, backupId, 'task-manager-db.error'), ComponentErrorSchema);

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(
      `on ${signal} mid-dump: ends pg_dump, aborts its upload, records Interrupted and exits ${EXIT_CODES.Interrupted}`,
      async () => {
        proxy.clear();
        // Slow parts: pg_dump is held mid-dump (backpressure) when the signal lands.
        proxy.add({ match: { method: 'PUT', queryHas: 'partNumber' }, fault: { kind: 'delay', ms: 1_000 } });
        const backupId =
          signal === 'SIGTERM' ? 'infrahub_backup_20261122_010000' : 'infrahub_backup_20261122_020000';
        let signalled: number | undefined;
        const tools: number[] = [];
        const run = await runRunner('backup-postgres', env(backupId), (tsxPid) => {
          const poll = setInterval(async () => {
            if (signalled !== undefined) return;
            // The runner's node process (tsx starts it as its child), once the upload is open in S3.
            const node = descendants(tsxPid).find((p) => procState(p)?.comm === 'node');
            const dumps = descendants(tsxPid).filter((p) => procState(p)?.comm === 'pg_dump');
            if (node === undefined || dumps.length === 0) return;
            if ((await openUploads(s3, Bucket).catch(() => [])).length === 0 || signalled !== undefined)
              return;
            clearInterval(poll);
            tools.push(...dumps);
            signalled = node;
            process.kill(node, signal);
          }, 100);
        });
        proxy.clear();
        expect(signalled, run.stderr).toBeDefined();
        expect(run.stderr).not.toMatch(/Node\.js v\d+/);
        expect(run.signal ?? null, run.stderr).toBeNull();
        expect(run.code, run.stderr).toBe(EXIT_CODES.Interrupted);
        expect(run.stderr.trim().split('\n').pop()).toMatch(
          new RegExp(`^Interrupted: the runner received ${signal}`),
        );
        expect(await errorRecord(backupId)).toMatchObject({ error: { name: 'Interrupted' } });
        expect(await openUploads(s3, Bucket)).toEqual([]);
        expect(await exists(s3, Bucket, fileKey(target, backupId, PREFECT_DUMP))).toBe(false);
        // pg_dump was ended and reaped: gone, never a zombie.
        for (const pid of tools) {
          const state = procState(pid);
          if (state?.comm === 'pg_dump') expect(state.state, `pg_dump ${pid}`).not.toBe('Z');
          expect(state?.comm).not.toBe('pg_dump');
        }
      },
      scaled(240_000),
    );
  }

  it(
    'fails with DatabaseUnreachable within its bound, and aborts its upload, when the network to PostgreSQL goes silent mid-dump',
    async () => {
      proxy.clear();
      proxy.add({ match: { method: 'PUT', queryHas: 'partNumber' }, fault: { kind: 'delay', ms: 500 } });
      tcp = await startSilentTcpProxy(postgres.port);
      const backupId = 'infrahub_backup_20261122_030000';
      let silenced = false;
      const poll = setInterval(async () => {
        if (silenced) return;
        if ((await openUploads(s3, Bucket).catch(() => [])).length === 0 || silenced) return;
        silenced = true;
        clearInterval(poll);
        tcp?.silence();
      }, 100);
      const run = await runRunner(
        'backup-postgres',
        env(backupId, { PGPORT: String(tcp.port), PG_STALL_TIMEOUT_SECONDS: '10' }),
      );
      clearInterval(poll);
      proxy.clear();
      expect(silenced, run.stderr).toBe(true);
      expect(run.stderr).not.toMatch(/Node\.js v\d+/);
      expect(run.code, run.stderr).toBe(EXIT_CODES.DatabaseUnreachable);
      expect(run.stderr).toMatch(/^DatabaseUnreachable: .*PG_STALL_TIMEOUT_SECONDS/m);
      expect((await errorRecord(backupId))?.error.name).toBe('DatabaseUnreachable');
      expect(await openUploads(s3, Bucket)).toEqual([]);
      expect(await exists(s3, Bucket, fileKey(target, backupId, PREFECT_DUMP))).toBe(false);
    },
    scaled(240_000),
  );
});
