/**
 * The runner's real entrypoint (a child process, as ECS starts it) against faults in the middle of
 * a backup (issue 12, item 13): PostgreSQL stopped with a fast shutdown mid-dump, S3 dropping the
 * connections of an upload under way. Every failure must end as a named error with the tool's or
 * the server's message (printed, recorded in `.runner/<component>.error.json`, as the exit code),
 * never a crash, and no multipart upload may be left open.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  localRunnerEnv,
  neo4jRunnerEnv,
  postgresRunnerEnv,
  runRunner,
} from '../../cli/local/runner-process.js';
import { EXIT_CODES } from '../../containers/runner/src/main.js';
import { fileKey, PREFECT_DUMP, resultKey } from '../../core/backup/layout.js';
import { ComponentErrorSchema } from '../../core/backup/results.js';
import { getJson } from '../../core/s3/objects.js';
import {
  type FaultProxy,
  type Neo4jServer,
  type PostgresServer,
  repoRoot,
  type S3Server,
} from '../../harness/index.js';
import { type RunnerStack, startRunnerStack } from '../../harness/runner-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { exists, openUploads } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'backups-runner-faults';
const target = 'infrahub-lab';

describe('backup runner: faults mid-backup (real PostgreSQL, real S3 server behind the fault proxy)', () => {
  let stack: RunnerStack;
  let postgres: PostgresServer;
  let server: S3Server;
  let proxy: FaultProxy;
  let s3: S3Client;

  beforeAll(async () => {
    // About 40 MiB of dump (uncompressed): many 5 MiB parts, so the fault lands while pg_dump runs.
    stack = await startRunnerStack({
      bucket: Bucket,
      postgres: { flowRuns: 100, bulkRows: 400_000 },
      faultProxy: true,
    });
    ({ postgres, server, proxy, s3 } = stack);
  }, scaled(240_000));

  afterAll(async () => {
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
  const partsSeen = () =>
    proxy.requests.filter((r) => r.method === 'PUT' && r.query.includes('partNumber')).length;

  it(
    'fails with StorageError and aborts its upload when S3 resets the connection mid-upload',
    async () => {
      proxy.clear();
      // The first part goes through; every later one has its connection dropped.
      proxy.add({
        match: { method: 'PUT', test: ({ query }) => Number(query.get('partNumber') ?? 0) >= 2 },
        fault: { kind: 'reset' },
      });
      const backupId = 'infrahub_backup_20261121_010000';
      const run = await runRunner('backup-postgres', env(backupId, { S3_MAX_ATTEMPTS: '2' }));
      proxy.clear();
      expect(run.code, run.stderr).toBe(EXIT_CODES.StorageError);
      expect(run.stderr).toMatch(/^StorageError: .*part \d+/m);
      expect(run.stderr).not.toMatch(/Node\.js v\d+/);
      expect((await errorRecord(backupId))?.error.name).toBe('StorageError');
      expect(await openUploads(s3, Bucket)).toEqual([]);
      expect(await exists(s3, Bucket, fileKey(target, backupId, PREFECT_DUMP))).toBe(false);
    },
    scaled(240_000),
  );

  // The last line of defence itself: the runner's main, with the executable's handlers installed,
  // meets an 'error' event nobody listens to (what node-postgres's was before the fix above) while
  // its upload is under way. Run as its own process, as cli.ts runs it.
  it(
    'aborts its upload, records a named error and exits with its code when an error nothing caught ends it',
    async () => {
      const dir = testTempDir('crashing-runner-');
      const flag = join(dir, 'crash-now');
      // .mts: an ES module like the runner (a CommonJS script would load a second copy of its modules).
      const script = join(dir, 'crashing-runner.mts');
      writeFileSync(
        script,
        `import { existsSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { exitHandledElsewhere, installLastResortHandlers, main } from ${JSON.stringify(join(repoRoot, 'containers/runner/src/main.ts'))};
installLastResortHandlers();
const timer = setInterval(() => {
  if (!existsSync(${JSON.stringify(flag)})) return;
  clearInterval(timer);
  new EventEmitter().emit('error', new Error('socket hang up'));
}, 50);
// As cli.ts: the last line of defence owns the exit once it handles an error.
main(['backup-postgres']).then((code) => { if (!exitHandledElsewhere()) process.exit(code); });
`,
      );
      proxy.clear();
      proxy.add({ match: { method: 'PUT', queryHas: 'partNumber' }, fault: { kind: 'delay', ms: 2_000 } });
      const backupId = 'infrahub_backup_20261121_030000';
      const before = partsSeen();
      const poll = setInterval(() => {
        if (partsSeen() > before) {
          clearInterval(poll);
          writeFileSync(flag, '');
        }
      }, 50);
      const run = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(join(repoRoot, 'node_modules', '.bin', 'tsx'), [script], {
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env(backupId) },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, stderr }));
      });
      clearInterval(poll);
      proxy.clear();
      expect(run.stderr).not.toMatch(/Node\.js v\d+/);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr.trim().split('\n').pop()).toBe(
        'UnexpectedError: Error: socket hang up (uncaughtException)',
      );
      expect(await errorRecord(backupId)).toMatchObject({
        error: { name: 'UnexpectedError', message: 'Error: socket hang up (uncaughtException)' },
      });
      expect(await openUploads(s3, Bucket)).toEqual([]);
      expect(await exists(s3, Bucket, fileKey(target, backupId, PREFECT_DUMP))).toBe(false);
    },
    scaled(240_000),
  );

  // Last: it stops the server.
  it(
    'fails with a named error carrying pg_dump’s message, and aborts its upload, when PostgreSQL stops (fast) mid-dump',
    async () => {
      proxy.clear();
      // Slow parts: pg_dump is held mid-dump (backpressure) while the server is stopped.
      proxy.add({ match: { method: 'PUT', queryHas: 'partNumber' }, fault: { kind: 'delay', ms: 2_000 } });
      const backupId = 'infrahub_backup_20261121_020000';
      let stopped = false;
      const before = partsSeen();
      const run = await runRunner('backup-postgres', env(backupId), () => {
        const poll = setInterval(() => {
          if (stopped || partsSeen() === before) return;
          clearInterval(poll);
          // What `pg_ctl stop -m fast` does: SIGINT to the postmaster, "Fast Shutdown" (PostgreSQL
          // docs, Shutting Down the Server): every session is ended with FATAL 57P01. Sent directly,
          // since pg_ctl refuses to run as root and the harness may run its server as another account.
          process.kill(postgres.pid, 'SIGINT');
          stopped = true;
        }, 50);
      });
      proxy.clear();
      expect(stopped).toBe(true);
      // Named, with the server's message as pg_dump (or the counting connection) saw it; no crash.
      expect(run.stderr).not.toMatch(/Node\.js v\d+/);
      expect([EXIT_CODES.ToolFailed, EXIT_CODES.DatabaseUnreachable], run.stderr).toContain(run.code);
      expect(run.stderr).toMatch(/^(ToolFailed: pg_dump exited with code 1|DatabaseUnreachable): /m);
      expect(run.stderr).toMatch(
        /terminating connection due to administrator command|server closed the connection/,
      );
      const record = await errorRecord(backupId);
      expect(record?.error.name).toMatch(/^(ToolFailed|DatabaseUnreachable)$/);
      expect(record?.error.message).toMatch(/administrator command|server closed the connection/);
      expect(await openUploads(s3, Bucket)).toEqual([]);
      expect(await exists(s3, Bucket, fileKey(target, backupId, PREFECT_DUMP))).toBe(false);
    },
    scaled(240_000),
  );
});

describe('count runner: Neo4j killed while the runner works over Bolt (real Neo4j, real S3 server)', () => {
  let stack: RunnerStack;
  let neo4j: Neo4jServer;
  let server: S3Server;

  beforeAll(async () => {
    stack = await startRunnerStack({ bucket: Bucket, neo4j: { devices: 200 } });
    ({ neo4j, server } = stack);
  }, scaled(300_000));

  afterAll(async () => {
    await stack?.stop();
  });

  /** PIDs of the processes with an established connection to the Bolt port, other than this one. */
  const boltClients = () =>
    [
      ...spawnSync('ss', ['-Htnp', 'state', 'established', `dport = :${neo4j.boltPort}`], {
        encoding: 'utf8',
      }).stdout.matchAll(/pid=(\d+)/g),
    ]
      .map((m) => Number(m[1]))
      .filter((pid) => pid !== process.pid);

  // The kill lands once the runner holds a Bolt connection: during its readiness check or its
  // counts (which one is not under the test's control); either way the runner must end with a named
  // error and its record, not a crash.
  it(
    'fails with DatabaseUnreachable, recorded, when Neo4j is killed (SIGKILL) mid-count',
    async () => {
      const backupId = 'infrahub_backup_20261121_060000';
      let killed = false;
      const run = await runRunner(
        'count-neo4j',
        {
          ...localRunnerEnv(server, { target, backupId, bucket: Bucket }),
          ...neo4jRunnerEnv(neo4j),
          NEO4J_READY_TIMEOUT_SECONDS: '5',
        },
        () => {
          const poll = setInterval(() => {
            const pid = neo4j.pid();
            if (killed || !pid || boltClients().length === 0) return;
            clearInterval(poll);
            process.kill(pid, 'SIGKILL');
            killed = true;
          }, 20);
        },
      );
      expect(killed).toBe(true);
      expect(run.stderr).not.toMatch(/Node\.js v\d+/);
      expect(run.code, run.stderr).toBe(EXIT_CODES.DatabaseUnreachable);
      expect(run.stderr).toMatch(/^DatabaseUnreachable: .*Neo4j/m);
      const record = await getJson(
        server.client(),
        Bucket,
        resultKey(target, backupId, 'database-counts.error'),
        ComponentErrorSchema,
      );
      expect(record?.error.name).toBe('DatabaseUnreachable');
      expect(await exists(server.client(), Bucket, resultKey(target, backupId, 'database-counts'))).toBe(
        false,
      );
    },
    scaled(240_000),
  );
});
