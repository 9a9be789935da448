/**
 * The runner's task-token session (containers/runner/src/task-token.ts) against the local mode's
 * loopback Step Functions endpoint (cli/local/task-token-endpoint.ts, 127.0.0.1), through a real
 * SFNClient: heartbeats only when data moved (data steps) or on the timer (other steps); Stalled
 * after 3/4 of HeartbeatSeconds without progress, before Step Functions' own heartbeat bound; a
 * heartbeat refused with TaskTimedOut (the state ended) stops the run as TaskAbandoned and nothing
 * more is sent; SendTaskFailure's error at most 256 characters, its cause at most 32,768, redacted.
 * Real timers and a loopback server: an integration test (the pure parts: test/unit/task-token-fields.test.ts).
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalTaskTokenEndpoint } from '../../cli/local/task-token-endpoint.js';
import {
  MAX_CAUSE_LENGTH,
  MAX_ERROR_LENGTH,
  startTaskToken,
  TaskTokenSession,
} from '../../containers/runner/src/task-token.js';
import { noteBytes, noteToolOutput, resetProgress } from '../../core/progress.js';
import { registerSecret } from '../../core/redact.js';

let endpoint: LocalTaskTokenEndpoint;
let client: SFNClient;

beforeAll(async () => {
  endpoint = await LocalTaskTokenEndpoint.start();
  expect(endpoint.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  client = new SFNClient({
    endpoint: endpoint.url,
    region: 'eu-west-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client?.destroy();
  await endpoint?.close();
});

/** What the endpoint heard on one token. */
interface Heard {
  heartbeats: number;
  success: string[];
  failure: Array<{ error: string; cause: string }>;
}

let counter = 0;
function register(): { token: string; heard: Heard } {
  const token = `unit-token-${++counter}-${Date.now()}`;
  const heard: Heard = { heartbeats: 0, success: [], failure: [] };
  endpoint.register(token, {
    heartbeat: () => {
      heard.heartbeats += 1;
    },
    success: (output) => heard.success.push(output),
    failure: (error, cause) => heard.failure.push({ error, cause }),
  });
  return { token, heard };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `check` holds (polled every 20 ms), or fails after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

const sessions: TaskTokenSession[] = [];
function session(options: Omit<ConstructorParameters<typeof TaskTokenSession>[0], 'client'>) {
  const s = new TaskTokenSession({ client, ...options });
  sessions.push(s);
  return s;
}

beforeEach(() => resetProgress());
afterEach(async () => {
  // Ends every session's timer (a success on a closed token is refused and only logged).
  for (const s of sessions.splice(0)) await s.succeed({}).catch(() => undefined);
});

describe('heartbeats', () => {
  it('a data step beats at start, then only when bytes moved or a tool wrote output', async () => {
    const { token, heard } = register();
    const stops: Error[] = [];
    const s = session({
      token,
      heartbeatSeconds: 600,
      watchProgress: true,
      stop: (e) => stops.push(e),
      beatEveryMs: 50,
    });
    await s.start();
    expect(heard.heartbeats).toBe(1);
    // Ten ticks without progress: no heartbeat (and far from the stall bound of 450 s).
    await sleep(500);
    expect(heard.heartbeats).toBe(1);
    noteBytes(5 * 1024 * 1024);
    await until(() => heard.heartbeats === 2, 2_000, 'a heartbeat after bytes moved');
    await sleep(300);
    expect(heard.heartbeats).toBe(2);
    noteToolOutput();
    await until(() => heard.heartbeats === 3, 2_000, 'a heartbeat after tool output');
    await sleep(300);
    expect(heard.heartbeats).toBe(3);
    expect(s.beats).toBe(3);
    expect(stops).toEqual([]);
  });

  it('a step that moves no data beats on the timer', async () => {
    const { token, heard } = register();
    const s = session({
      token,
      heartbeatSeconds: 600,
      watchProgress: false,
      stop: () => undefined,
      beatEveryMs: 50,
    });
    await s.start();
    await until(() => heard.heartbeats >= 5, 3_000, 'five heartbeats without progress');
  });

  it('the default beat interval is HeartbeatSeconds / 6, at least 1 s', async () => {
    const { token, heard } = register();
    const s = session({ token, heartbeatSeconds: 12, watchProgress: false, stop: () => undefined });
    await s.start();
    const t0 = Date.now();
    await until(() => heard.heartbeats === 2, 4_000, 'the second heartbeat');
    // 12 s / 6 = 2 s (timers may run late on a loaded machine, never early).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_900);
  });
});

describe('stall bound', () => {
  it('stops a data step with Stalled after 3/4 of HeartbeatSeconds without progress, before the heartbeat bound', async () => {
    const { token, heard } = register();
    const stops: Array<{ error: Error; at: number }> = [];
    const s = session({
      token,
      heartbeatSeconds: 4,
      watchProgress: true,
      stop: (error) => stops.push({ error, at: Date.now() }),
      beatEveryMs: 50,
    });
    await s.start();
    // Progress for 4.5 s (more than the heartbeat bound): no stall, heartbeats go on.
    const moving = setInterval(() => noteBytes(1024), 100);
    await sleep(4_500);
    clearInterval(moving);
    const quietFrom = Date.now();
    expect(stops).toEqual([]);
    // The tick right after the last bytes may still beat; none after that.
    await sleep(300);
    const beatsWhileMoving = heard.heartbeats;
    expect(beatsWhileMoving).toBeGreaterThan(5);
    await until(() => stops.length === 1, 6_000, 'Stalled');
    const stall = stops[0] as { error: Error; at: number };
    expect(stall.error.name).toBe('Stalled');
    expect(stall.error.message).toMatch(/no progress for \d+ s .*HeartbeatSeconds \(4 s\)/);
    // 3/4 of 4 s = 3 s after the last byte (at most 100 ms before quietFrom), before Step
    // Functions' own 4 s heartbeat bound.
    expect(stall.at - quietFrom).toBeGreaterThanOrEqual(2_850);
    expect(stall.at - quietFrom).toBeLessThan(4_000);
    // No heartbeat went out during the quiet spell, and none after the stop.
    await sleep(300);
    expect(heard.heartbeats).toBe(beatsWhileMoving);
    // The runner then reports the stall by name.
    await s.fail(stall.error);
    expect(heard.failure).toEqual([{ error: 'Stalled', cause: stall.error.message }]);
  });

  it('does not stall a step that moves no data through the runner', async () => {
    const { token } = register();
    const stops: Error[] = [];
    const s = session({
      token,
      heartbeatSeconds: 1,
      watchProgress: false,
      stop: (e) => stops.push(e),
      beatEveryMs: 50,
    });
    await s.start();
    await sleep(1_500);
    expect(stops).toEqual([]);
  });
});

describe('refused heartbeats', () => {
  it('TaskTimedOut on a heartbeat stops the run as TaskAbandoned, and nothing more is sent', async () => {
    const { token, heard } = register();
    const stops: Error[] = [];
    const s = session({
      token,
      heartbeatSeconds: 600,
      watchProgress: false,
      stop: (e) => stops.push(e),
      beatEveryMs: 50,
    });
    await s.start();
    await until(() => heard.heartbeats >= 2, 2_000, 'heartbeats');
    // The state timed out (or its execution was stopped): the endpoint answers TaskTimedOut now.
    endpoint.end(token);
    await until(() => stops.length === 1, 2_000, 'TaskAbandoned');
    expect(stops[0]?.name).toBe('TaskAbandoned');
    expect(stops[0]?.message).toMatch(/refused the heartbeat \(TaskTimedOut\)/);
    const beats = heard.heartbeats;
    await s.fail(stops[0] as Error);
    await s.succeed({ late: true });
    await sleep(200);
    expect(heard).toEqual({ heartbeats: beats, success: [], failure: [] });
    expect(stops).toHaveLength(1);
  });

  it('a first heartbeat refused (TaskDoesNotExist) stops the run before any work and starts no timer', async () => {
    const stops: Error[] = [];
    const s = session({
      token: 'never-handed-out',
      heartbeatSeconds: 600,
      watchProgress: true,
      stop: (e) => stops.push(e),
      beatEveryMs: 20,
    });
    await s.start();
    expect(stops.map((e) => e.name)).toEqual(['TaskAbandoned']);
    expect(stops[0]?.message).toMatch(/TaskDoesNotExist/);
    await sleep(200);
    expect(stops).toHaveLength(1);
    expect(s.beats).toBe(0);
  });
});

describe('the end of a run', () => {
  it('SendTaskSuccess once with the output; a later failure sends nothing', async () => {
    const { token, heard } = register();
    const s = session({ token, heartbeatSeconds: 600, watchProgress: true, stop: () => undefined });
    await s.start();
    await s.succeed({ component: 'artifacts', files: 3 });
    await s.fail({ name: 'StorageError', message: 'too late' });
    expect(heard.success).toEqual(['{"component":"artifacts","files":3}']);
    expect(heard.failure).toEqual([]);
  });

  it('SendTaskFailure: error at most 256 characters, cause at most 32,768, redacted; accepted by the API bounds', async () => {
    const secret = 'pg-Secret-Value-7f3a9c1e';
    registerSecret(secret);
    const { token, heard } = register();
    const s = session({ token, heartbeatSeconds: 600, watchProgress: true, stop: () => undefined });
    await s.start();
    const name = `Storage${'E'.repeat(400)}`;
    const message = `pg_dump: connection to postgresql://backup:${secret}@db.internal:5432/prefect failed; password=${secret}; ${'x'.repeat(40_000)}`;
    await s.fail({ name, message });
    expect(heard.failure).toHaveLength(1);
    const sent = heard.failure[0] as { error: string; cause: string };
    expect(sent.error).toHaveLength(MAX_ERROR_LENGTH);
    expect(sent.error).toBe(name.slice(0, 256));
    expect(sent.cause.length).toBeLessThanOrEqual(MAX_CAUSE_LENGTH);
    expect(sent.cause.length).toBeGreaterThan(32_000);
    expect(sent.cause).toMatch(/\[truncated\]$/);
    expect(sent.cause).toContain('pg_dump: connection to postgresql://');
    expect(sent.cause).not.toContain(secret);
    expect(sent.cause.toLowerCase()).not.toContain(secret.slice(0, 12).toLowerCase());
  });
});

describe('startTaskToken', () => {
  it('does nothing without TASK_TOKEN (the runner run by hand)', async () => {
    expect(await startTaskToken({}, 'backup-postgres', () => undefined, undefined, client)).toBeUndefined();
  });

  it('refuses a token without a valid TASK_HEARTBEAT_SECONDS, naming it', async () => {
    for (const value of [undefined, '0', 'ten', '-5']) {
      await expect(
        startTaskToken(
          { TASK_TOKEN: 'x', ...(value !== undefined ? { TASK_HEARTBEAT_SECONDS: value } : {}) },
          'backup-postgres',
          () => undefined,
          undefined,
          client,
        ),
      ).rejects.toMatchObject({
        name: 'RunnerConfigError',
        message: expect.stringMatching(/TASK_HEARTBEAT_SECONDS/),
      });
    }
  });

  it('starts a session that heartbeats on the token given (data steps watch progress)', async () => {
    const { token, heard } = register();
    const s = await startTaskToken(
      { TASK_TOKEN: token, TASK_HEARTBEAT_SECONDS: '600' },
      'backup-postgres',
      () => undefined,
      undefined,
      client,
    );
    expect(s).toBeInstanceOf(TaskTokenSession);
    if (s) sessions.push(s);
    expect(heard.heartbeats).toBe(1);
    await s?.fail({ name: 'ToolFailed', message: 'pg_dump: error: query failed' });
    expect(heard.failure).toEqual([{ error: 'ToolFailed', cause: 'pg_dump: error: query failed' }]);
  });
});
