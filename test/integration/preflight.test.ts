import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitForIdle } from '../../core/infrahub/gate.js';
import { listTasks } from '../../core/infrahub/tasks.js';
import { type FakeInfrahub, startFakeInfrahub, task } from '../../harness/fake-infrahub-api.js';
import { fakeClock } from '../helpers/clock.js';

describe('preflight gate against a fake Infrahub API (real HTTP on 127.0.0.1)', () => {
  let api: FakeInfrahub | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  it('passes at once when no task is pending or running', async () => {
    api = await startFakeInfrahub({ script: () => [task(1, 'COMPLETED'), task(2, 'FAILED')] });
    const result = await waitForIdle(api, {
      maxWaitSeconds: 600,
      pollIntervalSeconds: 15,
      clock: fakeClock(),
    });
    expect(result).toEqual({ waitedSeconds: 0, polls: 1 });
    expect(api.requests[0]).toMatchObject({ token: api.token, states: ['PENDING', 'RUNNING'], offset: 0 });
  });

  it('waits, polling, while tasks run, and passes once they finish', async () => {
    api = await startFakeInfrahub({
      script: (poll) => (poll < 3 ? [task(1, 'RUNNING'), task(2, 'PENDING')] : [task(1, 'COMPLETED')]),
    });
    const clock = fakeClock();
    const result = await waitForIdle(api, { maxWaitSeconds: 600, pollIntervalSeconds: 15, clock });
    expect(result).toEqual({ waitedSeconds: 45, polls: 4 });
    expect(clock.slept).toEqual([15_000, 15_000, 15_000]);
  });

  it('fails after the bound, naming the tasks that never finish', async () => {
    api = await startFakeInfrahub({
      script: () => [task(7, 'RUNNING', 'Merge branch feature-x'), task(8, 'PENDING', 'Sync git repository')],
    });
    const attempt = waitForIdle(api, { maxWaitSeconds: 60, pollIntervalSeconds: 15, clock: fakeClock() });
    await expect(attempt).rejects.toMatchObject({
      name: 'InfrahubBusy',
      message: expect.stringMatching(
        /2 task\(s\) pending or running after 60 s .*"Merge branch feature-x" \(RUNNING, branch main, id task-7\), "Sync git repository" \(PENDING/,
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

  it('reports HTTP 422 as an API error that names the page limit', async () => {
    api = await startFakeInfrahub({ script: () => [], failWith: 422 });
    await expect(waitForIdle(api, { maxWaitSeconds: 60, pollIntervalSeconds: 15 })).rejects.toMatchObject({
      name: 'InfrahubApiError',
      message: expect.stringMatching(
        /HTTP 422 \(the query was rejected; Infrahub allows at most 200 tasks per page\)/,
      ),
    });
  });

  it('reports a refused token as an API error', async () => {
    api = await startFakeInfrahub({ script: () => [] });
    await expect(listTasks({ address: api.address, token: 'wrong' })).rejects.toMatchObject({
      name: 'InfrahubApiError',
      status: 401,
      message: expect.stringMatching(/HTTP 401 \(the API token was refused\)/),
    });
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
});
