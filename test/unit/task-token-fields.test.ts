/**
 * The pure parts of the runner's task-token session (containers/runner/src/task-token.ts) and of the
 * local mode's bounds (cli/local/backup.ts), and the session's timing rules on fake timers with a
 * stand-in client; the session against a loopback Step Functions endpoint, on real timers, is
 * test/integration/task-token.test.ts (and task-token-unreachable.test.ts).
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
} from '@aws-sdk/client-sfn';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { withLocalTaskTokenBounds } from '../../cli/local/backup.js';
import { METADATA_READ_BOUND_MS, taskStartedAt } from '../../containers/runner/src/task-metadata.js';
import {
  acceptanceBoundMs,
  FINAL_CALL_TIMEOUT_MS,
  FIRST_BEAT_MIN_MS,
  failureFields,
  type SfnSender,
  startTaskToken,
  TaskTokenSession,
  unacceptedFor,
} from '../../containers/runner/src/task-token.js';
import { createLogger } from '../../core/log.js';
import { noteBytes, resetProgress } from '../../core/progress.js';

describe('failureFields', () => {
  it('failureFields leaves a short error and cause as they are (but redacted)', () => {
    expect(failureFields({ name: 'ToolFailed', message: 'pg_dump exited with 1' })).toEqual({
      error: 'ToolFailed',
      cause: 'pg_dump exited with 1',
    });
    const f = failureFields({
      name: 'DatabaseUnreachable',
      message: 'at postgresql://u:hunter2hunter2@h/db',
    });
    expect(f.cause).not.toContain('hunter2hunter2');
  });
});

describe('withLocalTaskTokenBounds', () => {
  it("leaves a runner state's bounds to the local ECS handler (the library would resolve TimeoutSecondsPath against Parameters)", () => {
    const runner = {
      Type: 'Task',
      Resource: 'arn:aws:states:::ecs:runTask.waitForTaskToken',
      TimeoutSecondsPath: '$.timeouts.backupPostgres.timeoutSeconds',
      HeartbeatSecondsPath: '$.timeouts.backupPostgres.heartbeatSeconds',
      Parameters: { Cluster: 'c' },
      End: true,
    };
    const lambda = {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      TimeoutSecondsPath: '$.t',
      Next: 'Branches',
    };
    const definition = {
      StartAt: 'Lambda',
      States: {
        Lambda: lambda,
        Branches: { Type: 'Parallel', Branches: [{ StartAt: 'Dump', States: { Dump: runner } }], End: true },
      },
    };
    const local = withLocalTaskTokenBounds(definition);
    const dump = (local.States.Branches as unknown as { Branches: Array<{ States: { Dump: object } }> })
      .Branches[0]?.States.Dump;
    expect(dump).not.toHaveProperty('TimeoutSecondsPath');
    expect(dump).not.toHaveProperty('HeartbeatSecondsPath');
    expect(dump).toMatchObject({ Parameters: { Cluster: 'c' } });
    // Other tasks keep theirs, and the definition given is not modified.
    expect(local.States.Lambda).toHaveProperty('TimeoutSecondsPath', '$.t');
    expect(runner).toHaveProperty('TimeoutSecondsPath');
  });
});

describe('acceptanceBoundMs and unacceptedFor (the acceptance rule)', () => {
  it('is 3/4 of HeartbeatSeconds, as the stall bound: 225 s at the smallest HeartbeatSeconds (300), 450 s at the default (600)', () => {
    expect(acceptanceBoundMs(120)).toBe(90_000);
    expect(acceptanceBoundMs(300)).toBe(225_000);
    expect(acceptanceBoundMs(600)).toBe(450_000);
    expect(acceptanceBoundMs(3600)).toBe(2_700_000);
    for (const bad of [0, -5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => acceptanceBoundMs(bad)).toThrow(/HeartbeatSeconds must be a positive number/);
  });

  it('holds once heartbeats were sent and none was accepted for the bound; not before, and not when none was sent', () => {
    const at = (now: number, unanswered: number) =>
      unacceptedFor({ now, lastAcceptedAt: 1_000, unanswered, boundMs: 450_000 });
    expect(at(1_000 + 449_999, 3)).toBeUndefined();
    expect(at(1_000 + 450_000, 3)).toBe(450_000);
    expect(at(1_000 + 600_000, 1)).toBe(600_000);
    // A progress-watched step that sent nothing (nothing moved) is the stall rule's to judge.
    expect(at(1_000 + 600_000, 0)).toBeUndefined();
  });
});

describe('the session on fake timers (HeartbeatSeconds 600: beats every 100 s, bound 450 s)', () => {
  type Answer = 'accept' | 'slow' | 'fail' | 'deny' | 'hang' | 'refuse';
  /** A stand-in SFN client: answers each call as `answer()` says at the time, and records it. */
  function sender(answer: () => Answer) {
    const calls: Array<{ op: string; at: number; input: Record<string, unknown> }> = [];
    const client: SfnSender = {
      send: ((command: { input: Record<string, unknown> }) => {
        const op =
          command instanceof SendTaskHeartbeatCommand
            ? 'heartbeat'
            : command instanceof SendTaskFailureCommand
              ? 'failure'
              : command instanceof SendTaskSuccessCommand
                ? 'success'
                : 'other';
        calls.push({ op, at: Date.now(), input: command.input });
        const a = answer();
        if (a === 'accept') return Promise.resolve({});
        // Accepted, its answer 4 s after the request (Step Functions reset its clock at the request).
        if (a === 'slow') return new Promise((resolve) => setTimeout(() => resolve({}), 4_000));
        // Never settles, and ignores its abort signal: only the session's own bound ends the wait.
        if (a === 'hang') return new Promise(() => undefined);
        const error = new Error(
          a === 'fail'
            ? 'connect ETIMEDOUT 10.0.0.1:443'
            : a === 'deny'
              ? 'User: arn:aws:sts::1:assumed-role/r/t is not authorized to perform: states:SendTaskHeartbeat'
              : 'Task Timed Out',
        );
        error.name = a === 'fail' ? 'TimeoutError' : a === 'deny' ? 'AccessDeniedException' : 'TaskTimedOut';
        return Promise.reject(error);
      }) as unknown as SfnSender['send'],
    };
    return { client, calls };
  }

  let t0: number;
  beforeEach(() => {
    vi.useFakeTimers();
    t0 = Date.now();
    resetProgress();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function session(client: SfnSender, watchProgress = false, startedAt?: number) {
    const stops: Array<{ name: string; message: string; at: number }> = [];
    const s = new TaskTokenSession({
      token: 't',
      heartbeatSeconds: 600,
      watchProgress,
      client,
      ...(startedAt !== undefined ? { startedAt } : {}),
      stop: (e) => stops.push({ name: e.name, message: e.message, at: Date.now() - t0 }),
    });
    return { s, stops };
  }

  it('heartbeats that fail from the start: stopped as HeartbeatNotAccepted at exactly 450 s, not at the next beat (500 s)', async () => {
    const { client, calls } = sender(() => 'fail');
    const { s, stops } = session(client);
    await s.start();
    await vi.advanceTimersByTimeAsync(449_999);
    expect(stops).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(stops.map((x) => [x.name, x.at])).toEqual([['HeartbeatNotAccepted', 450_000]]);
    expect(stops[0]?.message).toMatch(
      /^Step Functions accepted no heartbeat for 450 s \(5 sent since the task started; the last failed: TimeoutError: connect ETIMEDOUT 10\.0\.0\.1:443\), past the bound of 450 s \(3\/4 of the step's HeartbeatSeconds, 600 s\)/,
    );
    // No heartbeat after the stop; the final report is one SendTaskFailure by that name.
    await vi.advanceTimersByTimeAsync(1_000_000);
    expect(calls.map((c) => c.op)).toEqual(['heartbeat', 'heartbeat', 'heartbeat', 'heartbeat', 'heartbeat']);
    await s.fail(stops[0] as { name: string; message: string });
    expect(calls.at(-1)).toMatchObject({ op: 'failure', input: { error: 'HeartbeatNotAccepted' } });
    expect(stops).toHaveLength(1);
  });

  it('an accepted heartbeat restarts the bound: accepted until 200 s, denied after, stopped at 650 s', async () => {
    const { client } = sender(() => (Date.now() - t0 <= 200_000 ? 'accept' : 'deny'));
    const { s, stops } = session(client);
    await s.start();
    await vi.advanceTimersByTimeAsync(649_999);
    expect(s.beats).toBe(3); // at 0, 100 s and 200 s
    expect(stops).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(stops.map((x) => [x.name, x.at])).toEqual([['HeartbeatNotAccepted', 650_000]]);
    expect(stops[0]?.message).toMatch(
      /\(4 sent since the last accepted one; the last failed: AccessDeniedException: User: .* states:SendTaskHeartbeat\)/,
    );
  });

  it('heartbeats accepted all along never trip the rule (a long step)', async () => {
    const { client } = sender(() => 'accept');
    const { s, stops } = session(client);
    await s.start();
    await vi.advanceTimersByTimeAsync(5 * 3_600_000);
    expect(stops).toEqual([]);
    expect(s.beats).toBe(181);
    await s.succeed({});
  });

  it('a short outage below the bound changes nothing', async () => {
    // Failing from 150 s to 500 s (the beats at 200, 300 and 400 s): the last accepted one at 100 s,
    // the next at 500 s, before the bound (100 + 450 = 550 s).
    const { client } = sender(() => {
      const t = Date.now() - t0;
      return t > 150_000 && t < 500_000 ? 'fail' : 'accept';
    });
    const { s, stops } = session(client);
    await s.start();
    await vi.advanceTimersByTimeAsync(2_000_000);
    expect(stops).toEqual([]);
  });

  it('a heartbeat that never answers does not hold the stop: stopped at 450 s; the final call ends after FINAL_CALL_TIMEOUT_MS', async () => {
    const { client, calls } = sender(() => 'hang');
    const { s, stops } = session(client);
    // The first heartbeat is awaited by start() within its bound (one beat interval, 100 s here).
    const started = s.start();
    await vi.advanceTimersByTimeAsync(100_000);
    await started;
    await vi.advanceTimersByTimeAsync(350_000);
    expect(stops.map((x) => [x.name, x.at])).toEqual([['HeartbeatNotAccepted', 450_000]]);
    let done = false;
    const failing = s.fail(stops[0] as { name: string; message: string }).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(FINAL_CALL_TIMEOUT_MS - 1);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await failing;
    expect(done).toBe(true);
    expect(calls.at(-1)?.op).toBe('failure');
  });

  it('a quiet data step whose heartbeats were accepted stops as Stalled, not HeartbeatNotAccepted', async () => {
    const { client } = sender(() => 'accept');
    const { s, stops } = session(client, true);
    await s.start();
    await vi.advanceTimersByTimeAsync(1_000_000);
    expect(stops.map((x) => x.name)).toEqual(['Stalled']);
  });

  it('a data step moving bytes while every heartbeat fails stops as HeartbeatNotAccepted at 450 s', async () => {
    const { client } = sender(() => 'fail');
    const { s, stops } = session(client, true);
    const moving = setInterval(() => noteBytes(1024), 10_000);
    await s.start();
    await vi.advanceTimersByTimeAsync(500_000);
    clearInterval(moving);
    expect(stops.map((x) => [x.name, x.at])).toEqual([['HeartbeatNotAccepted', 450_000]]);
  });

  it('a refused heartbeat is still TaskAbandoned at once, and no final call follows', async () => {
    const { client, calls } = sender(() => (Date.now() - t0 < 250_000 ? 'accept' : 'refuse'));
    const { s, stops } = session(client);
    await s.start();
    await vi.advanceTimersByTimeAsync(1_000_000);
    expect(stops.map((x) => [x.name, x.at])).toEqual([['TaskAbandoned', 300_000]]);
    await s.fail(stops[0] as { name: string; message: string });
    expect(calls.map((c) => c.op)).toEqual(['heartbeat', 'heartbeat', 'heartbeat', 'heartbeat']);
  });

  it("the clock starts at the task's start, not the runner's: 60 s of start-up, every heartbeat failing, stopped at 390 s of the runner (450 s of the task)", async () => {
    const { client } = sender(() => 'fail');
    const { s, stops } = session(client, false, t0 - 60_000);
    expect(s.startedAt).toBe(t0 - 60_000);
    await s.start();
    await vi.advanceTimersByTimeAsync(389_999);
    expect(stops).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(stops.map((x) => [x.name, x.at])).toEqual([['HeartbeatNotAccepted', 390_000]]);
    expect(stops[0]?.message).toMatch(
      /^Step Functions accepted no heartbeat for 450 s \(4 sent since the task started;/,
    );
  });

  it('a start-up that used up the bound: the first heartbeat is still sent; failing, the run stops at once, before start() returns and before any other call', async () => {
    const { client, calls } = sender(() => 'fail');
    const { s, stops } = session(client, false, t0 - 500_000);
    let returned = false;
    await s.start().then(() => {
      returned = true;
    });
    expect(stops.map((x) => [x.name, x.at])).toEqual([['HeartbeatNotAccepted', 0]]);
    expect(returned).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000_000);
    expect(calls.map((c) => c.op)).toEqual(['heartbeat']);
    expect(stops).toHaveLength(1);
  });

  it('a start-up that used up the bound and a first heartbeat without an answer: stopped after FIRST_BEAT_MIN_MS, inside start()', async () => {
    const { client } = sender(() => 'hang');
    const { s, stops } = session(client, false, t0 - 500_000);
    let returned = false;
    const started = s.start().then(() => {
      returned = true;
    });
    await vi.advanceTimersByTimeAsync(FIRST_BEAT_MIN_MS - 1);
    expect(stops).toEqual([]);
    expect(returned).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(stops.map((x) => [x.name, x.at])).toEqual([['HeartbeatNotAccepted', FIRST_BEAT_MIN_MS]]);
    expect(returned).toBe(true);
    await started;
  });

  it('a start-up that used up the bound and an accepted first heartbeat: the run goes on, its clock from that heartbeat (denied after 200 s: stopped at 650 s)', async () => {
    const { client } = sender(() => (Date.now() - t0 <= 200_000 ? 'accept' : 'deny'));
    const { s, stops } = session(client, false, t0 - 500_000);
    await s.start();
    await vi.advanceTimersByTimeAsync(649_999);
    expect(stops).toEqual([]);
    expect(s.beats).toBe(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(stops.map((x) => [x.name, x.at])).toEqual([['HeartbeatNotAccepted', 650_000]]);
  });

  it('the clock restarts at the time an accepted heartbeat was sent, not when its answer came: sent at 204 s, answered at 208 s, stopped at 654 s', async () => {
    // Answers come 4 s late: beats at 0 (answered at 4 s, the interval starts then), 104 s and 204 s;
    // denied from 250 s.
    const { client, calls } = sender(() => (Date.now() - t0 < 250_000 ? 'slow' : 'deny'));
    const { s, stops } = session(client);
    const started = s.start();
    await vi.advanceTimersByTimeAsync(4_000);
    await started;
    await vi.advanceTimersByTimeAsync(649_999);
    expect(
      calls
        .filter((c) => c.op === 'heartbeat')
        .map((c) => c.at - t0)
        .slice(0, 3),
    ).toEqual([0, 104_000, 204_000]);
    expect(s.beats).toBe(3);
    expect(stops).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(stops.map((x) => [x.name, x.at])).toEqual([['HeartbeatNotAccepted', 654_000]]);
  });
});

describe('the task start for the acceptance clock (task metadata endpoint v4, real timers, a fake endpoint on 127.0.0.1)', () => {
  type Reply = { status: number; body: unknown } | 'silent';
  let server: Server;
  let base: string;
  let reply: Reply;
  const paths: string[] = [];
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    server = createServer((req, res) => {
      paths.push(req.url ?? '');
      if (reply === 'silent') return; // reads the request, never answers
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v4/0123456789abcdef-1234`;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    paths.length = 0;
  });

  /** A PullStartedAt as ECS writes it (RFC 3339 with nanoseconds), `ago` ms before now. */
  const pullStartedAt = (ago: number) => new Date(Date.now() - ago).toISOString().replace('Z', '123456Z');

  it("takes the task's PullStartedAt from <ECS_CONTAINER_METADATA_URI_V4>/task", async () => {
    const pulled = pullStartedAt(90_000);
    reply = { status: 200, body: { TaskARN: 'arn:aws:ecs:eu-west-1:1:task/c/x', PullStartedAt: pulled } };
    const started = await taskStartedAt({ ECS_CONTAINER_METADATA_URI_V4: base });
    expect(paths).toEqual(['/v4/0123456789abcdef-1234/task']);
    expect(started).toEqual({ at: Date.parse(pulled), source: 'task-metadata' });
  });

  it('startTaskToken starts the session clock there, and logs the source', async () => {
    const pulled = pullStartedAt(90_000);
    reply = { status: 200, body: { PullStartedAt: pulled } };
    const logs: string[] = [];
    const session = await startTaskToken(
      { TASK_TOKEN: 't', TASK_HEARTBEAT_SECONDS: '600', ECS_CONTAINER_METADATA_URI_V4: base },
      'count-neo4j',
      () => undefined,
      createLogger({ service: 'test' }, { write: (line) => logs.push(line) }),
      { send: (() => Promise.resolve({})) as unknown as SfnSender['send'] },
    );
    expect(session?.startedAt).toBe(Date.parse(pulled));
    expect(logs.map((l) => JSON.parse(l))).toContainEqual(
      expect.objectContaining({ message: 'acceptance clock started', source: 'task-metadata' }),
    );
    await session?.succeed({});
  });

  it("without ECS_CONTAINER_METADATA_URI_V4: the process's start, said so", async () => {
    const before = Date.now() - process.uptime() * 1000;
    const started = await taskStartedAt({});
    expect(started.source).toBe('process-start');
    expect(started.problem).toBe('ECS_CONTAINER_METADATA_URI_V4 is not set');
    expect(Math.abs(started.at - before)).toBeLessThan(50);
    expect(paths).toEqual([]);
  });

  it("an endpoint that fails, answers without a date or with one in the future: the process's start", async () => {
    for (const [r, problem] of [
      [{ status: 500, body: 'oops' }, /answered HTTP 500/],
      [{ status: 200, body: { TaskARN: 'x' } }, /no PullStartedAt date/],
      [{ status: 200, body: 'not json' }, /could not be read/],
      [{ status: 200, body: { PullStartedAt: pullStartedAt(-3_600_000) } }, /is in the future/],
    ] as Array<[Reply, RegExp]>) {
      reply = r;
      const started = await taskStartedAt({ ECS_CONTAINER_METADATA_URI_V4: base });
      expect(started.source).toBe('process-start');
      expect(started.problem).toMatch(problem);
    }
    const closed = await taskStartedAt({ ECS_CONTAINER_METADATA_URI_V4: 'http://127.0.0.1:1/v4/x' });
    expect(closed).toMatchObject({ source: 'process-start', problem: /could not be read/ });
  });

  it("an endpoint that never answers holds the runner no longer than the bound: the process's start", async () => {
    reply = 'silent';
    const t = Date.now();
    const started = await taskStartedAt({ ECS_CONTAINER_METADATA_URI_V4: base }, { boundMs: 300 });
    const took = Date.now() - t;
    expect(started).toMatchObject({
      source: 'process-start',
      problem: 'the task metadata endpoint did not answer within 300 ms',
    });
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2_000);
    expect(METADATA_READ_BOUND_MS).toBeLessThanOrEqual(2_000);
  });
});
