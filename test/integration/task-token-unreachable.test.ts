/**
 * Regression (issue 16, item 1, review rev16): a runner whose heartbeats never reach Step Functions
 * (no route to the `states` endpoint, a private subnet without NAT or VPC endpoint, an IAM denial,
 * an endpoint that never answers) must not go on working after its state has given up on it. Step
 * Functions fails the state with States.HeartbeatTimeout after HeartbeatSeconds and, by
 * heartbeatTimeoutRetry, starts a second task of the same step; Step Functions never stops the first
 * one (runner-tasks.ts says so). Only a REFUSED heartbeat (TaskTimedOut) used to stop the runner, and
 * an unreachable endpoint never refuses: the work went on beside its own retry (two pg_dumps, or a
 * Community dump still reading the store when StartDbmsAfterFailure starts the DBMS again).
 *
 * Now: once heartbeats were sent and none was accepted for 3/4 of HeartbeatSeconds, the runner
 * stops its work itself as `HeartbeatNotAccepted`, before the state's own bound, and its final
 * SendTaskFailure is bounded so that it exits even when the endpoint never answers.
 * - the session (containers/runner/src/task-token.ts) with a real SFNClient against 127.0.0.1: a port
 *   nothing listens on (connection refused), a server that denies every call (AccessDeniedException),
 *   a server that accepts the connection and never answers, and one that accepts heartbeats first;
 * - the runner's real entrypoint (backup-postgres, real PostgreSQL and moto, a pg_dump that keeps
 *   writing progress lines): it exits with HeartbeatNotAccepted's code, its tool ended, no upload
 *   left open, its failure record naming the reason, and a SendTaskFailure attempted by that name.
 * The pure timing rule is unit-tested in test/unit/task-token-fields.test.ts.
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
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SFNClient } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { processAlive } from '../../cli/local/proc-stat.js';
import { localRunnerEnv, postgresRunnerEnv, runRunner } from '../../cli/local/runner-process.js';
import { EXIT_CODES } from '../../containers/runner/src/main.js';
import { TaskTokenSession } from '../../containers/runner/src/task-token.js';
import { resultKey } from '../../core/backup/layout.js';
import { ComponentErrorSchema } from '../../core/backup/results.js';
import { noteBytes, resetProgress } from '../../core/progress.js';
import { getJson } from '../../core/s3/objects.js';
import { type RunnerStack, startRunnerStack } from '../../harness/runner-stack.js';
import { scaled } from '../../harness/time-scale.js';
import { openUploads } from '../helpers/s3.js';

/** A free loopback port, closed again: every request to it is refused. */
function closedPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** What a fake Step Functions endpoint does with each call. */
type Mode = 'accept' | 'deny' | 'silent';

/**
 * A loopback Step Functions endpoint (awsJson1_0, as the SDK speaks it) that accepts every call
 * (`{}`), denies it (HTTP 400 AccessDeniedException, as IAM answers a missing
 * states:SendTaskHeartbeat), or reads it and never answers; it records each call's operation and body.
 */
async function fakeSfn(): Promise<{
  url: string;
  mode: Mode;
  calls: Array<{ operation: string; body: Record<string, unknown> }>;
  close(): Promise<void>;
}> {
  const sockets = new Set<import('node:net').Socket>();
  const state = {
    mode: 'deny' as Mode,
    calls: [] as Array<{ operation: string; body: Record<string, unknown> }>,
  };
  const server: Server = createHttpServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      text += c;
    });
    req.on('end', () => {
      const operation = String(req.headers['x-amz-target'] ?? '').replace(/^AWSStepFunctions\./, '');
      state.calls.push({ operation, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
      if (state.mode === 'silent') return;
      if (state.mode === 'accept') {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{}');
        return;
      }
      res
        .writeHead(400, {
          'content-type': 'application/x-amz-json-1.0',
          'x-amzn-errortype': 'AccessDeniedException',
        })
        .end(
          JSON.stringify({
            __type: 'AccessDeniedException',
            message: `User: arn:aws:sts::123456789012:assumed-role/runner/task is not authorized to perform: states:${operation}`,
          }),
        );
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    set mode(m: Mode) {
      state.mode = m;
    },
    calls: state.calls,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

const client = (endpoint: string) =>
  new SFNClient({
    endpoint,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  });

/** The step's HeartbeatSeconds in these tests: the runner's bound is 3/4 of it, 3 s. */
const HEARTBEAT_SECONDS = 4;
/**
 * The entrypoint test's HeartbeatSeconds: the runner process's own start-up counts against its bound
 * (12 s on a quiet machine, stretched with the load: at a load of 10-12 on two cores tsx's start-up
 * used up the 9 s of acceptance before pg_dump started, and the test saw no pg_dump to have ended).
 */
const ENTRYPOINT_HEARTBEAT_SECONDS = Math.ceil(scaled(12_000) / 1000);

describe('a runner that cannot reach Step Functions (the session)', () => {
  let sfn: Awaited<ReturnType<typeof fakeSfn>>;
  let refusedUrl: string;

  beforeAll(async () => {
    sfn = await fakeSfn();
    refusedUrl = `http://127.0.0.1:${await closedPort()}`;
  });
  afterAll(() => sfn?.close());
  beforeEach(() => {
    resetProgress();
    sfn.calls.length = 0;
  });

  /**
   * Runs a data step that makes progress all along (a dump that streams: only the heartbeats fail)
   * against `endpoint` until the session stops it; returns the stop and when it came (ms after start()).
   */
  async function runUntilStopped(endpoint: string, mode: Mode, acceptFirstMs = 0) {
    sfn.mode = acceptFirstMs > 0 ? 'accept' : mode;
    const sfnClient = client(endpoint);
    const stops: Array<{ error: Error; at: number }> = [];
    const t0 = Date.now();
    const session = new TaskTokenSession({
      token: 'unreachable-token',
      heartbeatSeconds: HEARTBEAT_SECONDS,
      watchProgress: true,
      client: sfnClient,
      stop: (error) => stops.push({ error, at: Date.now() - t0 }),
      beatEveryMs: 200,
      finalCallTimeoutMs: 1_000,
    });
    const moving = setInterval(() => noteBytes(4096), 50);
    let lastAcceptedAt = 0;
    try {
      await session.start();
      if (acceptFirstMs > 0) {
        await sleep(acceptFirstMs);
        sfn.mode = mode;
        // The heartbeats accepted until now: the bound runs from the last of them.
        lastAcceptedAt = Date.now() - t0;
      }
      await until(() => stops.length > 0, (HEARTBEAT_SECONDS + 5) * 1000, 'the session stopping the work');
    } finally {
      clearInterval(moving);
    }
    // Nothing more is stopped, and no heartbeat goes out after the stop.
    const calls = sfn.calls.length;
    await sleep(500);
    expect(stops).toHaveLength(1);
    expect(sfn.calls.length).toBe(calls);
    const stop = stops[0] as { error: Error; at: number };
    // The final report: one SendTaskFailure by the stop's name, bounded even when nobody answers.
    const failStarted = Date.now();
    await session.fail(stop.error);
    const failMs = Date.now() - failStarted;
    sfnClient.destroy();
    return { stop, session, failMs, lastAcceptedAt };
  }

  const expectStopWithinBound = (stop: { error: Error; at: number }, from = 0) => {
    expect(
      stop.error.name,
      'the runner was never stopped, or not by name: it keeps working beside the task its retry started',
    ).toBe('HeartbeatNotAccepted');
    // 3/4 of HeartbeatSeconds after the last accepted heartbeat (or the start), before the state's own bound.
    expect(stop.at - from).toBeGreaterThanOrEqual(HEARTBEAT_SECONDS * 750 - 250);
    expect(stop.at - from).toBeLessThan(HEARTBEAT_SECONDS * 1000);
    expect(stop.error.message).toMatch(
      /^Step Functions accepted no heartbeat for \d+(\.\d)? s \(\d+ sent since the task started; .*\), past the bound of 3 s \(3\/4 of the step's HeartbeatSeconds, 4 s\): the state fails with States\.HeartbeatTimeout/,
    );
  };

  it(
    'connection refused: stops the work as HeartbeatNotAccepted at 3/4 of HeartbeatSeconds, naming the network error',
    async () => {
      const { stop, session, failMs } = await runUntilStopped(refusedUrl, 'deny');
      expect(session.beats).toBe(0);
      expectStopWithinBound(stop);
      expect(stop.error.message).toMatch(/the last failed: .*ECONNREFUSED/);
      expect(failMs).toBeLessThan(1_500);
    },
    scaled(30_000),
  );

  it(
    'AccessDenied on every call: stopped the same way, the denial named; the final SendTaskFailure carries the name',
    async () => {
      const { stop, session } = await runUntilStopped(sfn.url, 'deny');
      expect(session.beats).toBe(0);
      expectStopWithinBound(stop);
      expect(stop.error.message).toMatch(
        /the last failed: AccessDeniedException: User: .* states:SendTaskHeartbeat/,
      );
      const heartbeats = sfn.calls.filter((c) => c.operation === 'SendTaskHeartbeat');
      // The first at start, then one every 200 ms while the bytes moved, none after the stop.
      expect(heartbeats.length).toBeGreaterThan(5);
      expect(sfn.calls.at(-1)).toEqual({
        operation: 'SendTaskFailure',
        body: { taskToken: 'unreachable-token', error: 'HeartbeatNotAccepted', cause: stop.error.message },
      });
    },
    scaled(30_000),
  );

  it(
    'an endpoint that never answers: the stop still comes at the bound, and the final SendTaskFailure does not hang',
    async () => {
      // The SFNClient here has no request timeout: without the session's own bounds, start() itself
      // would wait for the first heartbeat forever.
      const { stop, session, failMs } = await runUntilStopped(sfn.url, 'silent');
      expect(session.beats).toBe(0);
      expectStopWithinBound(stop);
      expect(sfn.calls.at(-1)?.operation).toBe('SendTaskFailure');
      // finalCallTimeoutMs (1 s here; FINAL_CALL_TIMEOUT_MS, 15 s, in the runner).
      expect(failMs).toBeGreaterThanOrEqual(950);
      expect(failMs).toBeLessThan(2_500);
    },
    scaled(30_000),
  );

  it(
    'the bound runs from the last accepted heartbeat, not from the start',
    async () => {
      const { stop, session, lastAcceptedAt } = await runUntilStopped(sfn.url, 'deny', 2_000);
      expect(session.beats).toBeGreaterThan(3);
      expect(stop.error.name).toBe('HeartbeatNotAccepted');
      // Not at 3 s after the start (the heartbeats were accepted until 2 s): 3 s after the last accepted one.
      expect(stop.at).toBeGreaterThanOrEqual(lastAcceptedAt + HEARTBEAT_SECONDS * 750 - 500);
      expect(stop.at).toBeLessThan(lastAcceptedAt + HEARTBEAT_SECONDS * 1000);
      expect(stop.error.message).toMatch(
        /sent since the last accepted one; the last failed: AccessDeniedException/,
      );
    },
    scaled(30_000),
  );
});

describe('a runner that cannot reach Step Functions (the real entrypoint, PostgreSQL, moto)', () => {
  const Bucket = 'backups-token-unreachable';
  const target = 'infrahub-lab';
  let stack: RunnerStack;
  let sfn: Awaited<ReturnType<typeof fakeSfn>>;
  let fakeBin: string;
  let pids: string;
  let runnerPid: number | undefined;

  beforeAll(async () => {
    sfn = await fakeSfn();
    stack = await startRunnerStack({ bucket: Bucket, postgres: { flowRuns: 10 } });
    // The server's PostgreSQL tools, with a pg_dump that answers --version, then writes a progress
    // line every 200 ms forever (the heartbeats' progress) and no dump: only Step Functions fails.
    const realBin = stack.postgres.binDir;
    fakeBin = mkdtempSync(join(tmpdir(), 'unreachable-pgbin-'));
    for (const tool of readdirSync(realBin))
      if (tool !== 'pg_dump') symlinkSync(join(realBin, tool), join(fakeBin, tool));
    pids = join(fakeBin, 'pids');
    writeFileSync(pids, '');
    writeFileSync(
      join(fakeBin, 'pg_dump'),
      `#!/bin/sh
if [ "$1" = "--version" ]; then exec ${JSON.stringify(join(realBin, 'pg_dump'))} --version; fi
echo $$ >> ${JSON.stringify(pids)}
while true; do echo "pg_dump: dumping contents of table public.log" >&2; sleep 0.2; done
`,
    );
    chmodSync(join(fakeBin, 'pg_dump'), 0o755);
  }, scaled(240_000));

  afterAll(async () => {
    // A runner that never stopped (the fault this file is about) and its pg_dump: ended here.
    const kill = (pid: number, signal: NodeJS.Signals) => {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    };
    if (runnerPid) kill(runnerPid, 'SIGKILL');
    if (pids)
      for (const pid of readFileSync(pids, 'utf8').split('\n').filter(Boolean).map(Number))
        kill(-pid, 'SIGKILL'); // its own process group (run-tool.ts starts tools detached)
    await stack?.stop();
    await sfn?.close();
    if (fakeBin) rmSync(fakeBin, { recursive: true, force: true });
  }, scaled(120_000));

  it(
    'exits with HeartbeatNotAccepted: its tool ended, no upload open, the record and the report naming the reason',
    async () => {
      sfn.mode = 'silent';
      const backupId = 'infrahub_backup_20261124_020000';
      const started = Date.now();
      const run = await runRunner(
        'backup-postgres',
        {
          ...localRunnerEnv(stack.server, { target, backupId, bucket: Bucket }),
          ...postgresRunnerEnv(stack.postgres),
          PG_BINDIR: fakeBin,
          AWS_REGION: 'eu-west-1',
          AWS_ENDPOINT_URL_SFN: sfn.url,
          TASK_TOKEN: 'runner-unreachable-token',
          // Its own bound (12 s, 9 s of acceptance, on a quiet machine): the clock runs from the process's start (no task
          // metadata here), and the runner's start-up (tsx, imports) must not use up the bound, or
          // it stops before pg_dump starts (task-token.ts start()), as it should on AWS.
          TASK_HEARTBEAT_SECONDS: String(ENTRYPOINT_HEARTBEAT_SECONDS),
        },
        (pid) => {
          runnerPid = pid;
        },
      );
      const took = Date.now() - started;
      expect(run.code, run.stderr).toBe(EXIT_CODES.HeartbeatNotAccepted);
      expect(EXIT_CODES.HeartbeatNotAccepted).toBe(15);
      const lastLine = run.stderr.trim().split('\n').at(-1) ?? '';
      expect(lastLine).toMatch(/^HeartbeatNotAccepted: Step Functions accepted no heartbeat for /);
      // The process start, 9 s of the bound, 5 s at most for the tools, the final call's 15 s: never
      // the step's TimeoutSeconds, and within the runner's own stop bound (30 s) after the stop.
      expect(took).toBeLessThan(scaled(60_000));

      // pg_dump was ended with the work.
      const started_ = readFileSync(pids, 'utf8').trim().split('\n').filter(Boolean).map(Number);
      expect(started_.length).toBe(1);
      for (const pid of started_) expect(processAlive(pid), `pg_dump ${pid}`).toBe(false);
      expect(await openUploads(stack.s3, Bucket)).toEqual([]);

      // The failure record names the reason (the failure notice quotes it).
      const record = await getJson(
        stack.s3,
        Bucket,
        resultKey(target, backupId, 'task-manager-db.error'),
        ComponentErrorSchema,
      );
      expect(record?.error.name).toBe('HeartbeatNotAccepted');
      // The bound is 3/4 of the HeartbeatSeconds given (12 s quiet, stretched with the load).
      const h = ENTRYPOINT_HEARTBEAT_SECONDS;
      const bound = Math.round(h * 7.5) / 10;
      expect(record?.error.message).toContain(
        `past the bound of ${bound} s (3/4 of the step's HeartbeatSeconds, ${h} s): the state fails with States.HeartbeatTimeout at ${h} s and its retry may start this step again, so the runner stopped its work`,
      );
      // The report was attempted by name, though nobody answered it.
      const failure = sfn.calls.find((c) => c.operation === 'SendTaskFailure');
      expect(failure?.body).toMatchObject({
        taskToken: 'runner-unreachable-token',
        error: 'HeartbeatNotAccepted',
      });
      expect(sfn.calls.filter((c) => c.operation === 'SendTaskHeartbeat').length).toBeGreaterThan(0);
    },
    scaled(90_000),
  );
});
