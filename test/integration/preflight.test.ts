import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorNames } from '../../core/errors.js';
import { formatAge, staleTaskWarnings, waitForIdle } from '../../core/infrahub/gate.js';
import { listTasks } from '../../core/infrahub/tasks.js';
import {
  type FakeInfrahub,
  pythonIsoformat,
  startFakeInfrahub,
  task,
} from '../../harness/fake-infrahub-api.js';
import { fakeClock } from '../helpers/clock.js';

/** The fake clock starts at the real time: the fake's tasks are, by default, a minute old by it. */
const T0 = Date.now();

describe('preflight gate against a fake Infrahub API (real HTTP on 127.0.0.1)', () => {
  let api: FakeInfrahub | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  it('passes at once when no task is scheduled, pending, running or cancelling', async () => {
    api = await startFakeInfrahub({ script: () => [task(1, 'COMPLETED'), task(2, 'FAILED')] });
    const result = await waitForIdle(api, {
      maxWaitSeconds: 600,
      pollIntervalSeconds: 15,
      clock: fakeClock(T0),
    });
    expect(result).toEqual({ waitedSeconds: 0, polls: 1, staleTasks: [] });
    expect(api.requests[0]).toMatchObject({
      token: api.token,
      states: ['SCHEDULED', 'PENDING', 'RUNNING', 'CANCELLING'],
      offset: 0,
    });
  });

  // A real Infrahub 1.11 shows a task it just submitted (regenerating artifacts, say) as SCHEDULED
  // for a few seconds until a worker takes it, then PENDING, then RUNNING (measured against the real
  // server: test/e2e); a cancelled task is CANCELLING until it stops. The gate saw only PENDING and
  // RUNNING, so a backup started in that first moment passed while the task was about to write.
  it.each([
    ['SCHEDULED', 'Trigger Generation of Artifacts for device_config_artifact'],
    ['CANCELLING', 'Merge branch feature-x'],
  ] as const)(
    'waits for a task that is %s (submitted, or being cancelled: it still writes)',
    async (state, title) => {
      api = await startFakeInfrahub({
        script: (poll) => (poll < 2 ? [task(1, state, title)] : [task(1, 'COMPLETED', title)]),
      });
      const seen: string[] = [];
      const result = await waitForIdle(api, {
        maxWaitSeconds: 600,
        pollIntervalSeconds: 15,
        clock: fakeClock(T0),
        onPoll: (tasks) => seen.push(...tasks.map((t) => `${t.state} ${t.title}`)),
      });
      expect(result).toMatchObject({ waitedSeconds: 30, polls: 3 });
      expect(seen).toEqual([`${state} ${title}`, `${state} ${title}`]);
    },
  );

  it('waits, polling, while tasks run, and passes once they finish', async () => {
    api = await startFakeInfrahub({
      script: (poll) => (poll < 3 ? [task(1, 'RUNNING'), task(2, 'PENDING')] : [task(1, 'COMPLETED')]),
    });
    const clock = fakeClock(T0);
    const result = await waitForIdle(api, { maxWaitSeconds: 600, pollIntervalSeconds: 15, clock });
    expect(result).toEqual({ waitedSeconds: 45, polls: 4, staleTasks: [] });
    expect(clock.slept).toEqual([15_000, 15_000, 15_000]);
  });

  it('fails after the bound, naming the tasks that never finish', async () => {
    api = await startFakeInfrahub({
      script: () => [task(7, 'RUNNING', 'Merge branch feature-x'), task(8, 'PENDING', 'Sync git repository')],
    });
    const attempt = waitForIdle(api, { maxWaitSeconds: 60, pollIntervalSeconds: 15, clock: fakeClock(T0) });
    await expect(attempt).rejects.toMatchObject({
      name: 'InfrahubBusy',
      message: expect.stringMatching(
        /2 task\(s\) scheduled, pending, running or cancelling after 60 s .*"Merge branch feature-x" \(RUNNING for 2 min, last update 2 min ago, branch main, id task-7\), "Sync git repository" \(PENDING for 2 min/,
      ),
    });
    expect(api.polls()).toBe(5);
  });

  it('reads every page of a long task list, never asking for more than 200 at a time', async () => {
    const many = Array.from({ length: 450 }, (_, i) => task(i, i % 2 ? 'RUNNING' : 'PENDING'));
    api = await startFakeInfrahub({ script: () => many });
    const tasks = await listTasks(api, ['PENDING', 'RUNNING'], 200);
    expect(tasks).toHaveLength(450);
    expect(api.requests.map((r) => [r.offset, r.limit])).toEqual([
      [0, 200],
      [200, 200],
      [400, 200],
    ]);
    await expect(listTasks(api, ['RUNNING'], 201)).rejects.toThrow(RangeError);
  });

  // Issue 14: what a real Infrahub 1.11.9 answers, measured against a real Infrahub 1.11.9 (test/e2e runs one).
  const post = (address: string, body: unknown, key?: string) =>
    fetch(`${address}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(key === undefined ? {} : { 'X-INFRAHUB-KEY': key }),
      },
      body: JSON.stringify(body),
    });
  const taskQuery = (limit: number) => ({
    query:
      'query { InfrahubTask(state: [RUNNING], offset: $offset, limit: $limit) { count edges { node { id title state } } } }',
    variables: { offset: 0, limit },
  });

  it('stand-in: a page above 200 is HTTP 200 with data null and a GraphQL error quoting the 422, not HTTP 422', async () => {
    api = await startFakeInfrahub({ script: () => [] });
    const response = await post(api.address, taskQuery(201), api.token);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { data: unknown; errors: Array<{ message: string }> };
    expect(body.data).toBeNull();
    expect(body.errors[0]?.message).toMatch(/422 Unprocessable Entity/);
  });

  it('reports a GraphQL error inside HTTP 200 (a page above 200) as an API error quoting it', async () => {
    api = await startFakeInfrahub({ script: () => [task(1)] });
    // A client that asks for 201 whatever listTasks says (listTasks itself never does: RangeError above).
    const asks201: typeof fetch = (url, init) => {
      const body = JSON.parse(String(init?.body)) as { variables: Record<string, unknown> };
      body.variables.limit = 201;
      return fetch(url, { ...init, body: JSON.stringify(body) });
    };
    await expect(listTasks({ address: api.address, token: api.token, fetch: asks201 })).rejects.toMatchObject(
      {
        name: 'InfrahubApiError',
        status: 200,
        message: expect.stringMatching(
          /answered HTTP 200 with a GraphQL error and no data \(the task server refused the query; Infrahub allows at most 200 tasks per page\): Client error '422 Unprocessable Entity'/,
        ),
      },
    );
  });

  it("stand-in: a wrong token is HTTP 401 with Infrahub's body; no token or an empty one is answered (anonymous)", async () => {
    api = await startFakeInfrahub({ script: () => [task(1)] });
    const wrong = await post(api.address, taskQuery(10), 'wrong-token');
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({
      data: null,
      errors: [{ message: 'Invalid token', extensions: { code: 'AUTHENTICATION_REQUIRED' } }],
    });
    for (const key of [undefined, '']) {
      const anonymous = await post(api.address, taskQuery(10), key);
      expect(anonymous.status, String(key)).toBe(200);
      expect(await anonymous.json(), String(key)).toMatchObject({ data: { InfrahubTask: { count: 1 } } });
    }
  });

  it('reports a refused token as an API error naming the secret, never the token', async () => {
    api = await startFakeInfrahub({ script: () => [] });
    const err = (await listTasks({
      address: api.address,
      token: 'wrong-token-value',
      tokenSecret: 'lab/infrahub-api-token',
    }).catch((e: unknown) => e)) as Error & { status?: number };
    expect(err).toMatchObject({ name: 'InfrahubApiError', status: 401 });
    expect(err.message).toMatch(
      /HTTP 401 \(the API token was refused\): check the token in the secret "lab\/infrahub-api-token" \(infrahub\.tokenSecret\); the answer is not shown, beyond Infrahub's own "Invalid token"/,
    );
    expect(err.message).not.toContain('wrong-token-value');
  });

  it('refuses an empty or whitespace token before any request (Infrahub would answer it as anonymous)', async () => {
    api = await startFakeInfrahub({ script: () => [task(1, 'RUNNING')] });
    for (const token of ['', '   ', '\n']) {
      await expect(
        waitForIdle(
          { address: api.address, token, tokenSecret: 'lab/infrahub-api-token' },
          { maxWaitSeconds: 60, pollIntervalSeconds: 15, clock: fakeClock(T0) },
        ),
        JSON.stringify(token),
      ).rejects.toMatchObject({
        name: ErrorNames.SecretInvalid,
        message: expect.stringMatching(
          /no Infrahub API token: the secret "lab\/infrahub-api-token" \(infrahub\.tokenSecret\) holds an empty one.*anonymous account/,
        ),
      });
    }
    expect(api.requests).toEqual([]);
    expect(api.infoRequests()).toBe(0);
  });

  it('reports an unreachable API as such', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    await expect(listTasks({ address: `http://127.0.0.1:${port}`, token: 't' })).rejects.toMatchObject({
      name: 'InfrahubUnreachable',
      message: expect.stringMatching(
        new RegExp(`127\\.0\\.0\\.1:${port}/graphql is unreachable: .*ECONNREFUSED`),
      ),
    });
  });

  // Issue 14 review: a real Infrahub answers 503 "Database Service unavailable" for a short while
  // after its Neo4j restarts (a Community backup's stop/start) and recovers by itself: not an API
  // error (which nothing retries) but InfrahubUnreachable, and the gate waits through it.
  it.each([502, 503, 504])(
    'reports HTTP %i as InfrahubUnreachable (transient), naming the status',
    async (status) => {
      api = await startFakeInfrahub({ script: () => [], failWith: status });
      await expect(listTasks(api)).rejects.toMatchObject({
        name: ErrorNames.InfrahubUnreachable,
        message: expect.stringMatching(
          new RegExp(
            `answered HTTP ${status} \\([A-Za-z ]+\\): Infrahub may be starting, or its database restarting`,
          ),
        ),
      });
    },
  );

  it('polls on through 503 "Database Service unavailable" within its wait, and passes once Infrahub answers', async () => {
    api = await startFakeInfrahub({
      unavailableFirst: 3,
      script: (poll) => (poll < 1 ? [task(1, 'RUNNING', 'Merge branch feature-x')] : []),
    });
    const clock = fakeClock(T0);
    const unreachable: string[] = [];
    const result = await waitForIdle(api, {
      maxWaitSeconds: 600,
      pollIntervalSeconds: 15,
      clock,
      onUnreachable: (err) => unreachable.push(err.message),
    });
    // Three unanswered polls, one that sees the task, one that passes.
    expect(result).toEqual({ waitedSeconds: 60, polls: 5, staleTasks: [] });
    expect(clock.slept).toEqual([15_000, 15_000, 15_000, 15_000]);
    expect(unreachable).toHaveLength(3);
    expect(unreachable[0]).toMatch(/HTTP 503 \(Service Unavailable\).*Database Service unavailable/);
  });

  it('polls on through 429 "Server is shedding load" (Infrahub 1.11 admission control), and passes once admitted', async () => {
    api = await startFakeInfrahub({ shedFirst: 2, script: () => [] });
    const clock = fakeClock(T0);
    const unreachable: string[] = [];
    const result = await waitForIdle(api, {
      maxWaitSeconds: 600,
      pollIntervalSeconds: 15,
      clock,
      onUnreachable: (err) => unreachable.push(err.message),
    });
    expect(result).toEqual({ waitedSeconds: 30, polls: 3, staleTasks: [] });
    expect(unreachable).toHaveLength(2);
    expect(unreachable[0]).toMatch(
      /HTTP 429 \(Too Many Requests\): Infrahub is shedding load and did not run the request \(retry after 1 s\).*shedding load; retry later/,
    );
  });

  it('fails InfrahubUnreachable after its bound when Infrahub keeps answering 503, naming the last answer', async () => {
    api = await startFakeInfrahub({ unavailableFirst: 100, script: () => [] });
    const attempt = waitForIdle(api, { maxWaitSeconds: 45, pollIntervalSeconds: 15, clock: fakeClock(T0) });
    await expect(attempt).rejects.toMatchObject({
      name: ErrorNames.InfrahubUnreachable,
      message: expect.stringMatching(
        /did not answer the preflight gate's task poll after 45 s \(4 poll\(s\); the gate waits up to 45 s\); the last answer: .*HTTP 503 \(Service Unavailable\): Infrahub may be starting.*Database Service unavailable/,
      ),
    });
    expect(api.requests).toHaveLength(4);
  });

  it('still fails at once on an API error that waiting cannot fix (HTTP 500)', async () => {
    api = await startFakeInfrahub({ script: () => [], failWith: 500 });
    const clock = fakeClock(T0);
    const attempt = waitForIdle(api, { maxWaitSeconds: 600, pollIntervalSeconds: 15, clock });
    await expect(attempt).rejects.toMatchObject({ name: ErrorNames.InfrahubApiError, status: 500 });
    expect(clock.slept).toEqual([]);
  });

  // Issue 12, item 14: a task left RUNNING for days by a restarted worker.
  const hoursAgo = (h: number) => new Date(T0 - h * 3_600_000);

  it('refuses while a task left RUNNING for days blocks (no stale bound), showing its age and id', async () => {
    api = await startFakeInfrahub({
      script: () => [task(9, 'RUNNING', 'Generate artifacts for branch main', { createdAt: hoursAgo(76) })],
    });
    const attempt = waitForIdle(api, { maxWaitSeconds: 30, pollIntervalSeconds: 15, clock: fakeClock(T0) });
    await expect(attempt).rejects.toMatchObject({
      name: ErrorNames.InfrahubBusy,
      message: expect.stringMatching(
        /"Generate artifacts for branch main" \(RUNNING for 3 d 4 h, last update 3 d 4 h ago, branch main, id task-9\)/,
      ),
    });
  });

  it('lets a stale task pass and returns it (id, title, age), while fresh tasks still block', async () => {
    let fresh = true;
    api = await startFakeInfrahub({
      script: () => [
        task(9, 'RUNNING', 'Generate artifacts for branch main', { createdAt: hoursAgo(76) }),
        ...(fresh ? [task(10, 'RUNNING', 'Merge branch feature-x', { createdAt: hoursAgo(0.1) })] : []),
      ],
    });
    const clock = fakeClock(T0);
    const busy = waitForIdle(api, { maxWaitSeconds: 30, pollIntervalSeconds: 15, staleTaskHours: 6, clock });
    await expect(busy).rejects.toMatchObject({
      name: ErrorNames.InfrahubBusy,
      message: expect.stringMatching(
        /1 task\(s\) scheduled, pending, running or cancelling .*"Merge branch feature-x" \(RUNNING for [67] min.*Tasks created and last updated more than 6 h ago \(preflight.staleTaskHours\) would not block; 1 such task\(s\) were let pass: "Generate artifacts for branch main" \(RUNNING for 3 d 4 h/,
      ),
    });
    fresh = false;
    const result = await waitForIdle(api, {
      maxWaitSeconds: 30,
      pollIntervalSeconds: 15,
      staleTaskHours: 6,
      clock: fakeClock(T0),
    });
    expect(result).toEqual({
      waitedSeconds: 0,
      polls: 1,
      staleTasks: [
        {
          id: 'task-9',
          title: 'Generate artifacts for branch main',
          state: 'RUNNING',
          ageHours: 76,
          idleHours: 76,
          createdAt: pythonIsoformat(hoursAgo(76)),
        },
      ],
    });
  });

  it('keeps blocking an old task that Infrahub updated recently (still working), and one without a creation time', async () => {
    api = await startFakeInfrahub({
      script: () => [
        task(11, 'RUNNING', 'Long import', { createdAt: hoursAgo(30), updatedAt: hoursAgo(1) }),
        { ...task(12, 'PENDING', 'Unknown age'), created_at: null },
      ],
    });
    const attempt = waitForIdle(api, {
      maxWaitSeconds: 0,
      pollIntervalSeconds: 15,
      staleTaskHours: 6,
      clock: fakeClock(T0),
    });
    await expect(attempt).rejects.toThrow(
      /2 task\(s\) scheduled, pending, running or cancelling .*"Long import" \(RUNNING for 30 h, last update 1 h ago.*"Unknown age" \(PENDING, creation time not reported, last update [0-9] min ago, branch main/,
    );
  });

  // Issue 12 review: ages rounded once (no "2 d 24 h"), both ages shown, and the update time used
  // when Infrahub reports no creation time.
  it.each([
    [71.6, '3 d'],
    [95.5, '4 d'],
    [76.2, '3 d 4 h'],
    [47.96, '2 d'],
    [47.94, '47.9 h'],
    [0.9999, '1 h'],
    [0.1, '6 min'],
    [-0.01, '0 min'],
  ])('formatAge(%s) is "%s"', (hours, text) => {
    expect(formatAge(hours)).toBe(text);
  });

  it('shows both ages of a task created days ago but updated minutes ago, so "would not block" reads true', async () => {
    api = await startFakeInfrahub({
      script: () => [
        task(13, 'RUNNING', 'Busy import', { createdAt: hoursAgo(80), updatedAt: hoursAgo(0.1) }),
      ],
    });
    const attempt = waitForIdle(api, {
      maxWaitSeconds: 0,
      pollIntervalSeconds: 15,
      staleTaskHours: 6,
      clock: fakeClock(T0),
    });
    await expect(attempt).rejects.toThrow(
      /"Busy import" \(RUNNING for 3 d 8 h, last update [67] min ago, branch main, id task-13\)\. Tasks created and last updated more than 6 h ago/,
    );
  });

  it('judges a task without a creation time by its last update, and says so', async () => {
    api = await startFakeInfrahub({
      script: () => [{ ...task(14, 'RUNNING', 'Orphan', { updatedAt: hoursAgo(80) }), created_at: null }],
    });
    const result = await waitForIdle(api, {
      maxWaitSeconds: 0,
      pollIntervalSeconds: 15,
      staleTaskHours: 6,
      clock: fakeClock(T0),
    });
    expect(result.staleTasks).toEqual([
      { id: 'task-14', title: 'Orphan', state: 'RUNNING', ageHours: 80, idleHours: 80, createdAt: '' },
    ]);
    expect(staleTaskWarnings(result.staleTasks, 6)).toEqual([
      expect.stringMatching(
        /^Infrahub task "Orphan" \(id task-14\) has been RUNNING since at least its last update 3 d 8 h ago \(Infrahub did not report its creation time\): older than preflight.staleTaskHours \(6 h\)/,
      ),
    ]);
  });

  it('fails with InfrahubPagination, naming the bound, when the API answers full pages forever', async () => {
    api = await startFakeInfrahub({ script: () => [], endlessPages: true });
    const attempt = waitForIdle(api, {
      maxWaitSeconds: 600,
      pollIntervalSeconds: 15,
      maxPages: 5,
      clock: fakeClock(T0),
    });
    await expect(attempt).rejects.toMatchObject({
      name: ErrorNames.InfrahubPagination,
      message: expect.stringMatching(
        /still answered full pages of tasks after 5 pages of 100 \(500 tasks read; it reports 600 in all\): the listing is bounded at 5 pages \(preflight.maxTaskPages\)/,
      ),
    });
    expect(api.requests.map((r) => r.offset)).toEqual([0, 100, 200, 300, 400]);
    // The default bound applies without one.
    api.requests.length = 0;
    await expect(listTasks(api)).rejects.toMatchObject({ name: ErrorNames.InfrahubPagination });
    expect(api.requests).toHaveLength(50);
  });

  // Issue 12 review: 5,001 real tasks are not a broken server.
  it('says "too many tasks to list within maxTaskPages" (raise it, or Infrahub is busy) for a steady count above the bound', async () => {
    api = await startFakeInfrahub({
      script: () => Array.from({ length: 5001 }, (_, i) => task(100 + i, 'PENDING')),
    });
    const attempt = listTasks(api, ['PENDING', 'RUNNING'], 100, 50);
    await expect(attempt).rejects.toMatchObject({
      name: ErrorNames.InfrahubPagination,
      message: expect.stringMatching(
        /^Infrahub reports 5001 scheduled, pending, running or cancelling tasks, more than preflight.maxTaskPages \(50 pages of 100\) lets one poll list \(5000 read, each page new\): raise preflight.maxTaskPages to at least 51, or let Infrahub work through its queue first/,
      ),
    });
    // The same tasks within a raised bound are listed.
    expect(await listTasks(api, ['PENDING', 'RUNNING'], 100, 51)).toHaveLength(5001);
  });

  it('fails with InfrahubPagination at once when the API ignores the offset and repeats its page', async () => {
    const many = Array.from({ length: 450 }, (_, i) => task(i, 'RUNNING'));
    api = await startFakeInfrahub({ script: () => many, ignoreOffset: true });
    await expect(listTasks(api)).rejects.toMatchObject({
      name: ErrorNames.InfrahubPagination,
      message: expect.stringMatching(
        /answered the same 100 tasks at offset 100 as at offset 0: it does not page/,
      ),
    });
    expect(api.requests).toHaveLength(2);
  });

  it("asks only for fields Infrahub's task type has (the fake refuses others, as Infrahub would)", async () => {
    api = await startFakeInfrahub({ script: () => [task(1)] });
    const [one] = await listTasks(api, ['RUNNING']);
    expect(one).toMatchObject({
      id: 'task-1',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/),
      updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/),
    });
    const bad = await fetch(`${api.address}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-INFRAHUB-KEY': api.token },
      body: JSON.stringify({
        query:
          'query { InfrahubTask(state: [RUNNING], offset: 0, limit: 10) { count edges { node { id age } } } }',
      }),
    });
    expect(await bad.json()).toEqual({
      errors: [{ message: "Cannot query field 'age' on type 'TaskNode'." }],
    });
  });

  it("stops paging, named, when the listing outlasts the gate's time (a slow endless API), before the Lambda would time out", async () => {
    api = await startFakeInfrahub({ script: () => [], endlessPages: true });
    // Each look at the clock finds 5 s gone: as if every page took that long.
    let now = Date.parse('2026-11-21T02:00:00Z');
    const slow = { now: () => (now += 5_000), sleep: async () => undefined };
    const attempt = waitForIdle(api, {
      maxWaitSeconds: 30,
      pollIntervalSeconds: 15,
      maxPages: 1000,
      clock: slow,
    });
    await expect(attempt).rejects.toMatchObject({
      name: ErrorNames.InfrahubPagination,
      message: expect.stringMatching(
        /still answering pages of tasks when the preflight's time ran out \(\d+ pages of 100/,
      ),
    });
    expect(api.requests.length).toBeLessThan(20);
  });
});
