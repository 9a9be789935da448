/**
 * Issue 16, parts 1+2, end to end: the synthesized backup state machine run locally, its runner
 * states served by real runner processes that answer their task tokens on the local loopback
 * endpoint (cli/local/task-token-endpoint.ts), against real PostgreSQL and moto.
 * - liveness: a pg_dump that hangs without a byte (a half-open connection) is stopped by the runner
 *   itself (`Stalled`, before HeartbeatSeconds) or by the state's heartbeat bound, so the backup ends
 *   in seconds, not at the step's TimeoutSeconds: target failed, lock released, notice naming it;
 * - named errors: a runner's StorageError (S3 refusing every connection) reaches Retry by name and
 *   is attempted three times (runnerTransientRetry: MaxAttempts 2), a ToolFailed once.
 */
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LocalBackupOptions, LocalExecution } from '../../cli/local/backup.js';
import { runBackupLocally } from '../../cli/local/backup.js';
import { processAlive } from '../../cli/local/proc-stat.js';
import { type LocalStack, startLocalStack } from '../../harness/local-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { captureNotices, type Notices } from '../helpers/notices.js';
import { exists } from '../helpers/s3.js';

const bucket = 'infrahub-backups-token';
/** Every runner state's HeartbeatSeconds here (the runner's stall bound: 3/4 of it, 7.5 s). */
const HEARTBEAT_SECONDS = 10;

/** One runner state's attempts: each one's Error and how long it ran (StateEntered/StateRetried → StateFailed). */
function attempts(run: LocalExecution, state: string): Array<{ error: string; ms: number }> {
  const out: Array<{ error: string; ms: number }> = [];
  let since: number | undefined;
  // The target's states run in its child execution (the Distributed Map): `events` has them.
  for (const e of run.events) {
    const name = (e.state as { name?: string } | undefined)?.name;
    if (name !== state) continue;
    if (e.type === 'StateEntered' || e.type === 'StateRetried') since = e.timestamp;
    if (e.type === 'StateFailed') {
      out.push({ error: String(e.Error), ms: e.timestamp - (since ?? e.timestamp) });
      since = e.timestamp;
    }
  }
  return out;
}

const retries = (run: LocalExecution, state: string) =>
  run.events.filter((e) => e.type === 'StateRetried' && (e.state as { name?: string }).name === state).length;

/** Whether a process runs: a zombie (exited, reaped later by whoever adopted it) does not. */
const alive = processAlive;

describe('runner states on task tokens (local execution, real runners, PostgreSQL and moto)', () => {
  let stack: LocalStack;
  let notices: Notices;
  let fakeBin: string;
  let mode: string;
  let pids: string;

  beforeAll(async () => {
    stack = await startLocalStack({
      bucket,
      flowRuns: 20,
      storagePrefix: 'token-storage-',
      preflight: { maxWaitSeconds: 2, pollIntervalSeconds: 1 },
      clockStart: Date.parse('2026-11-23T02:00:00Z'),
    });
    notices = await captureNotices(stack.local);
    // The target's PostgreSQL tools, with a pg_dump that answers --version but then does what
    // `mode` says: hang without a byte (a connection gone silent), or fail at once.
    const realBin = stack.runOptions().runtime('infrahub-lab').env.PG_BINDIR ?? '';
    expect(realBin).not.toBe('');
    fakeBin = mkdtempSync(join(tmpdir(), 'token-pgbin-'));
    for (const tool of readdirSync(realBin))
      if (tool !== 'pg_dump') symlinkSync(join(realBin, tool), join(fakeBin, tool));
    mode = join(fakeBin, 'mode');
    pids = join(fakeBin, 'pids');
    writeFileSync(
      join(fakeBin, 'pg_dump'),
      `#!/bin/sh
if [ "$1" = "--version" ]; then exec ${JSON.stringify(join(realBin, 'pg_dump'))} --version; fi
echo $$ >> ${JSON.stringify(pids)}
if [ "$(cat ${JSON.stringify(mode)})" = "fail" ]; then
  echo "pg_dump: error: query failed: ERROR:  permission denied for table flow_run" >&2
  exit 1
fi
exec sleep 600
`,
    );
    chmodSync(join(fakeBin, 'pg_dump'), 0o755);
  }, scaled(240_000));

  afterAll(async () => {
    await stack?.stop();
    if (fakeBin) rmSync(fakeBin, { recursive: true, force: true });
  }, scaled(120_000));

  beforeEach(async () => {
    await notices.sns();
    await notices.events();
    writeFileSync(pids, '');
  });

  /** Runs a backup of the task-manager database only, with `change` applied to the options. */
  const backup = (change: (o: LocalBackupOptions) => LocalBackupOptions = (o) => o) => {
    const base = stack.runOptions();
    return runBackupLocally(
      { targets: ['infrahub-lab'], components: ['task-manager-db'], force: true },
      change({ ...base, heartbeatSecondsOverride: HEARTBEAT_SECONDS }),
    );
  };
  const withFakePgDump = (o: LocalBackupOptions): LocalBackupOptions => ({
    ...o,
    runtime: (t) => {
      const r = o.runtime(t);
      return { ...r, env: { ...r.env, PG_BINDIR: fakeBin } };
    },
  });

  it(
    'a pg_dump that hangs without a byte: each attempt ends within the heartbeat bound, the target fails, the lock is released, the notice names the stall',
    async () => {
      writeFileSync(mode, 'hang');
      const started = Date.now();
      const result = await backup(withFakePgDump);
      const took = Date.now() - started;
      expect(result.status).toBe('FAILED');
      expect(result.error).toBe('BackupFailed');
      expect(result.cause).toMatch(/infrahub-lab: Backup of infrahub-lab failed at DumpPostgres: /);

      const tries = attempts(result, 'DumpPostgres');
      // Stalled (the runner's own bound) or, if the runner's answer came too late, the state's heartbeat
      // bound; both retried (runnerTransientRetry, heartbeatTimeoutRetry: two retries each at most).
      expect(tries.length).toBeGreaterThanOrEqual(3);
      for (const t of tries) {
        expect(['Stalled', 'States.HeartbeatTimeout']).toContain(t.error);
        // The runner process's start (a few seconds locally; the heartbeat clock starts with the task)
        // plus at most HeartbeatSeconds without a heartbeat: never the step's TimeoutSeconds (2 h).
        expect(t.ms).toBeLessThan((HEARTBEAT_SECONDS + 30) * 1000);
      }
      expect(took).toBeLessThan(tries.length * (HEARTBEAT_SECONDS + 40) * 1000);

      // Every hanging pg_dump was ended with its runner.
      const started_ = readFileSync(pids, 'utf8').trim().split('\n').filter(Boolean).map(Number);
      expect(started_.length).toBe(tries.length);
      for (const pid of started_) expect(alive(pid), `pg_dump ${pid}`).toBe(false);

      expect(await exists(stack.local.s3, bucket, 'locks/infrahub-lab.json')).toBe(false);
      const [notice] = await notices.sns();
      expect(notice?.Subject).toBe('Infrahub backup FAILED: infrahub-lab at DumpPostgres');
      const last = tries.at(-1)?.error ?? '';
      expect(notice?.Message).toContain(`Error:      ${last}`);
      expect(notice?.Message).toMatch(
        last === 'Stalled'
          ? /Cause: .*Stalled: no progress for \d+ s .*HeartbeatSeconds \(10 s\)/
          : /Cause: .*States\.HeartbeatTimeout: runner backup-postgres sent no heartbeat for HeartbeatSeconds \(10 s\)/,
      );
      const [event] = await notices.events();
      expect(event?.detail).toMatchObject({ outcome: 'failed', step: 'DumpPostgres', error: last });
    },
    scaled(600_000),
  );

  it(
    "a runner's StorageError (S3 refusing every connection) reaches Retry by name: three attempts",
    async () => {
      const result = await backup((o) => ({
        ...o,
        // Nothing listens on port 1: every S3 request of the runner is refused at once.
        aws: { ...o.aws, endpoint: 'http://127.0.0.1:1' },
        runtime: (t) => {
          const r = o.runtime(t);
          return { ...r, env: { ...r.env, S3_MAX_ATTEMPTS: '1' } };
        },
      }));
      expect(result.status).toBe('FAILED');
      expect(result.error).toBe('BackupFailed');
      const tries = attempts(result, 'DumpPostgres');
      expect(tries.map((t) => t.error)).toEqual(['StorageError', 'StorageError', 'StorageError']);
      expect(retries(result, 'DumpPostgres')).toBe(2);
      const [notice] = await notices.sns();
      expect(notice?.Message).toContain('Error:      StorageError');
      expect(notice?.Message).toMatch(/Cause: .*StorageError: /);
      expect(await exists(stack.local.s3, bucket, 'locks/infrahub-lab.json')).toBe(false);
    },
    scaled(600_000),
  );

  it(
    'a permanent error (ToolFailed) is not retried: one attempt, named in the notice',
    async () => {
      writeFileSync(mode, 'fail');
      const result = await backup(withFakePgDump);
      expect(result.status).toBe('FAILED');
      expect(result.error).toBe('BackupFailed');
      expect(attempts(result, 'DumpPostgres').map((t) => t.error)).toEqual(['ToolFailed']);
      expect(retries(result, 'DumpPostgres')).toBe(0);
      const [notice] = await notices.sns();
      expect(notice?.Message).toContain('Error:      ToolFailed');
      expect(notice?.Message).toContain('permission denied for table flow_run');
      expect(await exists(stack.local.s3, bucket, 'locks/infrahub-lab.json')).toBe(false);
    },
    scaled(600_000),
  );
});
