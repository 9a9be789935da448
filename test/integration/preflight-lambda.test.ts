import { CreateSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PreflightDeps, type PreflightResult, preflight } from '../../core/infrahub/preflight.js';
import { createLogger } from '../../core/log.js';
import { type FakeInfrahub, startFakeInfrahub, task } from '../../harness/fake-infrahub-api.js';
import { type S3Server, startS3 } from '../../harness/index.js';
import { fakeClock } from '../helpers/clock.js';

const logger = createLogger({}, { write: () => undefined });

/**
 * What the backup state machine does with the Lambda (PreflightStart → Preflight ⇄ InfrahubStillBusy?
 * → PreflightWait): call it, and while it answers busy, wait the poll interval (on the test's clock)
 * and call again with the wait's progress it returned.
 */
async function untilDone(
  event: Record<string, unknown>,
  deps: PreflightDeps & { clock: { sleep(ms: number): Promise<void> } },
): Promise<PreflightResult & { calls: number }> {
  let wait: PreflightResult['wait'] | null = null;
  for (let calls = 1; ; calls++) {
    const result = await preflight({ ...event, wait }, deps);
    if (!result.busy) return { ...result, calls };
    await deps.clock.sleep(Number(event.pollIntervalSeconds ?? 15) * 1000);
    wait = result.wait;
  }
}

// The Lambda core with a real Secrets Manager API (moto) and a fake Infrahub API, both on loopback.
describe('preflight Lambda core', () => {
  let aws: S3Server;
  let secrets: SecretsManagerClient;
  let infrahub: FakeInfrahub;
  let busy = false;
  let stale = false;

  beforeAll(async () => {
    aws = await startS3();
    secrets = aws.secretsManager();
    infrahub = await startFakeInfrahub({
      token: 'tok-123',
      script: () => [
        ...(busy ? [task(1, 'RUNNING', 'Rebase branch')] : []),
        // Left RUNNING by a restarted worker, three days before the fake clock's 02:00.
        ...(stale
          ? [task(2, 'RUNNING', 'Generate artifacts', { createdAt: new Date('2026-11-18T01:00:00Z') })]
          : []),
      ],
    });
    await secrets.send(
      new CreateSecretCommand({ Name: 'lab/infrahub-json', SecretString: '{"token": "tok-123"}' }),
    );
    await secrets.send(new CreateSecretCommand({ Name: 'lab/infrahub-plain', SecretString: 'tok-123\n' }));
  });

  afterAll(async () => {
    await infrahub?.close();
    await aws?.stop();
  });

  const event = (extra: Record<string, unknown> = {}) => ({
    target: 'infrahub-lab',
    backupId: 'infrahub_backup_20261121_020000',
    infrahub: { address: infrahub.address, tokenSecret: 'lab/infrahub-json' },
    ...extra,
  });

  it('reads the token from Secrets Manager (JSON or plain text) and passes when Infrahub is idle', async () => {
    busy = false;
    expect(await preflight(event(), { secrets, logger, clock: fakeClock() })).toEqual({
      target: 'infrahub-lab',
      backupId: 'infrahub_backup_20261121_020000',
      forced: false,
      busy: false,
      wait: { startedAt: '2026-11-21T02:00:00.000Z', deadline: '2026-11-21T02:10:00.000Z', polls: 1 },
      waitedSeconds: 0,
      polls: 1,
      infrahubVersion: '1.5.0',
      staleTasks: [],
      warnings: [],
    });
    const plain = event({ infrahub: { address: infrahub.address, tokenSecret: 'lab/infrahub-plain' } });
    expect((await preflight(plain, { secrets, logger })).polls).toBe(1);
    expect(infrahub.requests.every((r) => r.token === 'tok-123')).toBe(true);
  });

  // Issue 16, part 6: a wait inside the Lambda was cut off by its timeout (900 s at most). One call
  // checks once and answers busy with the wait's progress; the state machine does the waiting.
  it('checks once per call and answers busy with the progress (no sleep inside the Lambda), until the bound', async () => {
    busy = true;
    const clock = fakeClock();
    const first = await preflight(event({ maxWaitSeconds: 1800, pollIntervalSeconds: 15 }), {
      secrets,
      logger,
      clock,
    });
    expect(first).toMatchObject({
      busy: true,
      forced: false,
      polls: 1,
      waitedSeconds: 0,
      wait: { startedAt: '2026-11-21T02:00:00.000Z', deadline: '2026-11-21T02:30:00.000Z', polls: 1 },
    });
    expect(clock.slept).toEqual([]);
    // The next call, 15 s later, counts from the first check; the bound is the configuration's 1800 s.
    await clock.sleep(15_000);
    const second = await preflight(
      event({ maxWaitSeconds: 1800, pollIntervalSeconds: 15, wait: first.wait }),
      { secrets, logger, clock },
    );
    expect(second).toMatchObject({
      busy: true,
      polls: 2,
      waitedSeconds: 15,
      wait: { polls: 2 },
    });
    expect(second.wait.startedAt).toBe(first.wait.startedAt);
    const attempt = untilDone(event({ maxWaitSeconds: 1800, pollIntervalSeconds: 15 }), {
      secrets,
      logger,
      clock: fakeClock(),
    });
    await expect(attempt).rejects.toMatchObject({
      name: 'InfrahubBusy',
      message: expect.stringMatching(/after 1800 s \(the gate waits up to 1800 s\): "Rebase branch"/),
    });
  });

  // Wait states that take no time (the local mode's tests) still end the loop: each call counts at
  // least one poll interval per earlier check.
  it('bounds the checks by maxWaitSeconds / pollIntervalSeconds even when no time passes between calls', async () => {
    busy = true;
    const frozen = { now: () => Date.parse('2026-11-21T02:00:00Z'), sleep: async () => undefined };
    const before = infrahub.requests.length;
    const attempt = untilDone(event({ maxWaitSeconds: 60, pollIntervalSeconds: 15 }), {
      secrets,
      logger,
      clock: frozen,
    });
    await expect(attempt).rejects.toMatchObject({
      name: 'InfrahubBusy',
      message: expect.stringMatching(/after 60 s \(the gate waits up to 60 s\)/),
    });
    expect(infrahub.requests.length - before).toBe(5);
  });

  it("cuts one call's listing to the cap the Lambda gives it", async () => {
    busy = false;
    // An endless API: the listing stops, named, at the cap (20 s), not at the wait's bound (600 s).
    const endless = await startFakeInfrahub({ token: 'tok-123', script: () => [], endlessPages: true });
    try {
      let now = Date.parse('2026-11-21T02:00:00Z');
      const slow = { now: () => (now += 5_000), sleep: async () => undefined };
      const attempt = preflight(
        event({
          maxWaitSeconds: 600,
          maxTaskPages: 1000,
          infrahub: { address: endless.address, tokenSecret: 'lab/infrahub-json' },
        }),
        { secrets, logger, listingSecondsCap: 20, clock: slow },
      );
      await expect(attempt).rejects.toMatchObject({ name: 'InfrahubPagination' });
      expect(endless.requests.length).toBeLessThan(8);
    } finally {
      await endless.close();
    }
  });

  // Issue 12 review, item 4: the Lambda's remaining time is asked for after the token secret is
  // read (it takes time out of the same budget), not when the handler starts.
  it('asks the cap after the secret read, so its time comes out of the listing', async () => {
    busy = true;
    const order: string[] = [];
    // The same Secrets Manager client, recording when the token secret is read.
    const recording = {
      send: (command: unknown) => {
        order.push('secret');
        return secrets.send(command as Parameters<typeof secrets.send>[0]);
      },
    } as unknown as typeof secrets;
    const before = infrahub.requests.length;
    const attempt = preflight(event({ maxWaitSeconds: 600, pollIntervalSeconds: 10 }), {
      secrets: recording,
      logger,
      listingSecondsCap: () => {
        order.push(`cap, ${infrahub.requests.length - before} task polls`);
        return 20;
      },
      clock: fakeClock(),
    });
    await expect(attempt).resolves.toMatchObject({ busy: true, polls: 1 });
    expect(order).toEqual(['secret', 'cap, 0 task polls']);
  });

  // Issue 14 review: the log said only how many tasks blocked; an operator needs to see which.
  it('logs which tasks it waits for (title, state, age, id), not just how many', async () => {
    busy = true;
    const lines: string[] = [];
    const capturing = createLogger({}, { write: (line) => lines.push(line) });
    const attempt = untilDone(event({ maxWaitSeconds: 10, pollIntervalSeconds: 10 }), {
      secrets,
      logger: capturing,
      clock: fakeClock(),
    });
    await expect(attempt).rejects.toMatchObject({ name: 'InfrahubBusy' });
    const polls = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry.message === 'Infrahub tasks in flight');
    expect(polls).toHaveLength(2);
    expect(polls[0]).toMatchObject({
      count: 1,
      tasks: expect.stringMatching(/^"Rebase branch" \(RUNNING for .*, branch main, id task-1\)$/),
    });
  });

  // Issue 14 review: a real Infrahub answers 503 for a short while after its Neo4j restarts.
  it('waits through 503 "Database Service unavailable", logging it, and reads the version once the gate passed', async () => {
    const restarting = await startFakeInfrahub({
      token: 'tok-123',
      unavailableFirst: 2,
      version: '1.11.9',
      script: () => [],
    });
    try {
      const lines: string[] = [];
      const capturing = createLogger({}, { write: (line) => lines.push(line) });
      const result = await untilDone(
        event({ infrahub: { address: restarting.address, tokenSecret: 'lab/infrahub-json' } }),
        { secrets, logger: capturing, clock: fakeClock() },
      );
      expect(result).toMatchObject({
        forced: false,
        polls: 3,
        calls: 3,
        waitedSeconds: 30,
        infrahubVersion: '1.11.9',
      });
      // Read once, after the gate passed (a busy check reads no version).
      expect(restarting.infoRequests()).toBe(1);
      const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(
        entries.filter(
          (e) => e.message === 'Infrahub did not answer the task poll; polling again within the wait',
        ),
      ).toEqual([
        expect.objectContaining({
          level: 'WARN',
          error: expect.stringMatching(/HTTP 503 \(Service Unavailable\)/),
        }),
        expect.objectContaining({ level: 'WARN', waitedSeconds: 15 }),
      ]);
      expect(entries.some((e) => String(e.message).includes('could not read the Infrahub version'))).toBe(
        false,
      );
    } finally {
      await restarting.close();
    }
  });

  it('skips the gate with force, without reading the secret', async () => {
    busy = true;
    const forced = event({
      force: true,
      infrahub: { address: infrahub.address, tokenSecret: 'no/such/secret' },
    });
    expect(await preflight(forced, { secrets, logger })).toMatchObject({
      forced: true,
      polls: 0,
      infrahubVersion: 'unknown',
    });
  });

  // Issue 14: Infrahub answers a request without a token (or with an empty one) as its anonymous
  // account, which sees no task: the gate would pass silently. It refuses such a secret instead.
  it('refuses a secret without a token (empty, whitespace, no "token" key) before any request, naming the secret', async () => {
    busy = true;
    const blank: Record<string, string> = {
      'lab/token-empty-field': '{"token": ""}',
      'lab/token-blank-field': '{"token": "   "}',
      'lab/token-no-field': '{"api_token": "tok-123"}',
      'lab/token-blank-string': '"  "',
      'lab/token-blank-text': '  \n',
    };
    for (const [Name, SecretString] of Object.entries(blank))
      await secrets.send(new CreateSecretCommand({ Name, SecretString }));
    const before = { polls: infrahub.requests.length, info: infrahub.infoRequests() };
    for (const name of Object.keys(blank)) {
      const attempt = preflight(event({ infrahub: { address: infrahub.address, tokenSecret: name } }), {
        secrets,
        logger,
        clock: fakeClock(),
      });
      await expect(attempt, name).rejects.toMatchObject({
        name: 'SecretInvalid',
        message: expect.stringContaining(`secret ${name} `),
      });
    }
    expect(infrahub.requests.length).toBe(before.polls);
    expect(infrahub.infoRequests()).toBe(before.info);
  });

  it('a forced backup skips the gate even when the token secret is empty (force reads no token)', async () => {
    busy = true;
    await secrets.send(
      new CreateSecretCommand({ Name: 'lab/token-empty-forced', SecretString: '{"token": ""}' }),
    );
    const before = infrahub.requests.length;
    const forced = event({
      force: true,
      infrahub: { address: infrahub.address, tokenSecret: 'lab/token-empty-forced' },
    });
    expect(await preflight(forced, { secrets, logger })).toMatchObject({ forced: true, polls: 0 });
    expect(infrahub.requests.length).toBe(before);
  });

  it('rejects a malformed event, naming the fields', async () => {
    const attempt = preflight(
      { target: 'Infrahub Lab', infrahub: { address: 'ftp://x' } },
      { secrets, logger },
    );
    await expect(attempt).rejects.toMatchObject({ name: 'InvalidInput' });
    await expect(attempt).rejects.toThrow(
      /target: must be 2-40 characters[\s\S]*backupId: is required[\s\S]*infrahub\.address: must be an http\(s\) URL[\s\S]*infrahub\.tokenSecret: is required/,
    );
  });

  it('lets a task RUNNING for days pass after staleTaskHours, and returns it as a warning with its id, title and age', async () => {
    busy = false;
    stale = true;
    try {
      const result = await preflight(event({ staleTaskHours: 24 }), { secrets, logger, clock: fakeClock() });
      expect(result.staleTasks).toEqual([
        expect.objectContaining({
          id: 'task-2',
          title: 'Generate artifacts',
          state: 'RUNNING',
          ageHours: 73,
        }),
      ]);
      expect(result.warnings).toEqual([
        'Infrahub task "Generate artifacts" (id task-2) has been RUNNING for 3 d 1 h (last update 3 d 1 h ago): older than preflight.staleTaskHours (24 h), so it did not block this backup; it is probably left over from a restarted worker: cancel it in Infrahub if so',
      ]);
      // Under a longer bound the same task blocks, and the refusal shows its age.
      const attempt = preflight(event({ staleTaskHours: 96, maxWaitSeconds: 0 }), {
        secrets,
        logger,
        clock: fakeClock(),
      });
      await expect(attempt).rejects.toThrow(
        /"Generate artifacts" \(RUNNING for 3 d 1 h, last update 3 d 1 h ago, branch main, id task-2\)/,
      );
    } finally {
      stale = false;
    }
  });
});
