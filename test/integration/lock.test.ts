import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { localExecutionStatus, recordLocalExecution } from '../../cli/local/executions.js';
import { acquireLock, lockKey, releaseLock } from '../../core/backup/lock.js';
import { createLogger } from '../../core/log.js';
import { createS3Client } from '../../core/s3/client.js';
import { CONDITIONAL_WRITE_ATTEMPTS } from '../../core/s3/objects.js';
import { type FaultProxy, startFaultProxy } from '../../harness/index.js';
import { scaled } from '../../harness/time-scale.js';
import { useLocalS3 } from '../helpers/s3.js';
import { testTempDir } from '../helpers/temp.js';

const Bucket = 'backups-lock-test';

describe('target lock (S3 conditional writes on the real S3 server)', () => {
  const local = useLocalS3(Bucket);

  /** Runs `use` with a fault proxy in front of the local S3 server and a client through it; both closed after. */
  const throughProxy = async (use: (proxy: FaultProxy, client: S3Client) => Promise<void>) => {
    const proxy = await startFaultProxy(local.server.endpoint);
    const client = createS3Client({
      endpoint: proxy.endpoint,
      region: local.server.region,
      forcePathStyle: true,
      credentials: local.server.credentials,
    });
    try {
      await use(proxy, client);
    } finally {
      client.destroy();
      await proxy.stop();
    }
  };

  it('lets exactly one of two racing executions take a target', async () => {
    const results = await Promise.allSettled([
      acquireLock(local.s3, Bucket, 'race', 'exec-a', { ttlSeconds: 3600 }),
      acquireLock(local.s3, Bucket, 'race', 'exec-b', { ttlSeconds: 3600 }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({
      name: 'TargetLocked',
      message: expect.stringMatching(/target race is locked by exec-[ab] since /),
    });
  });

  it('lets exactly one of four racing executions take a target, 200 times over (S3 conditional writes are atomic)', async () => {
    // S3 lets only one of concurrent conditional writes to a key succeed (S3 User Guide, "How to
    // prevent object overwrites with conditional writes"); a race lost here once in a full run, when
    // the local server checked If-None-Match and stored the object in two steps.
    for (let round = 0; round < 200; round += 1) {
      const target = `race-${round}`;
      const results = await Promise.allSettled(
        ['a', 'b', 'c', 'd'].map((who) =>
          acquireLock(local.s3, Bucket, target, `exec-${who}`, { ttlSeconds: 3600 }),
        ),
      );
      const taken = results.filter((r) => r.status === 'fulfilled');
      expect(taken, `round ${round}: ${JSON.stringify(results.map((r) => r.status))}`).toHaveLength(1);
      for (const r of results)
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ name: 'TargetLocked' });
    }
  });

  it("takes the lock through S3's 409 ConditionalRequestConflict (sent again, as S3 asks), and fails StorageError when it persists", async () => {
    // What S3 answers a conditional write that met a concurrent operation on the key (S3 API
    // Reference, PutObject: "On a 409 failure you should retry the upload"); the SDK does not retry it.
    await throughProxy(async (proxy, client) => {
      const conflict = (times: number) =>
        proxy.add({
          match: { method: 'PUT', path: /\/locks\// },
          fault: { kind: 'status', status: 409, code: 'ConditionalRequestConflict' },
          times,
        });
      const once = conflict(2);
      expect((await acquireLock(client, Bucket, 'conflict', 'exec-1', { ttlSeconds: 3600 })).owner).toBe(
        'exec-1',
      );
      expect(once.hits).toBe(2);
      once.remove();
      // Held now: the next conditional write, after one conflict, gets the precondition's own answer.
      const again = conflict(1);
      await expect(
        acquireLock(client, Bucket, 'conflict', 'exec-2', { ttlSeconds: 3600 }),
      ).rejects.toMatchObject({
        name: 'TargetLocked',
      });
      again.remove();
      expect(await releaseLock(client, Bucket, 'conflict', 'exec-1')).toBe(true);
      const always = conflict(100);
      await expect(
        acquireLock(client, Bucket, 'conflict', 'exec-3', { ttlSeconds: 3600 }),
      ).rejects.toMatchObject({
        name: 'StorageError',
        message: expect.stringMatching(/locking target conflict/),
      });
      expect(always.hits).toBe(CONDITIONAL_WRITE_ATTEMPTS);
      always.remove();
    });
  });

  it('takes over an expired lock whose answer was lost (the resent write meets our own), and one released between the read and the take-over', async () => {
    await throughProxy(async (proxy, client) => {
      const expired = async (target: string) =>
        acquireLock(local.s3, Bucket, target, 'exec-old', {
          ttlSeconds: 60,
          now: () => new Date(Date.now() - 7_200_000),
        });
      const getText = async (key: string) =>
        (await (await local.s3.send(new GetObjectCommand({ Bucket, Key: key }))).Body?.transformToString()) ??
        '';
      /** Matches the n-th PUT of `target`'s lock through the proxy (the first is the If-None-Match that meets the lock). */
      const nthPut = (target: string, n: number) => {
        let puts = 0;
        return ({ method, path }: { method: string; path: string }) =>
          method === 'PUT' && path.endsWith(`/locks/${target}.json`) && ++puts === n;
      };
      // The take-over (If-Match) lands, its answer is lost, the SDK sends it again: 412, against our own write.
      await expired('lost');
      const lost = proxy.add({ match: { test: nthPut('lost', 2) }, fault: { kind: 'drop-response' } });
      const taken = await acquireLock(client, Bucket, 'lost', 'exec-new', { ttlSeconds: 3600 });
      expect(lost.hits).toBe(1);
      expect(taken.owner).toBe('exec-new');
      expect(JSON.parse(await getText('locks/lost.json')).owner).toBe('exec-new');
      lost.remove();

      // The expired lock is deleted while the take-over is on its way: If-Match meets no object (404).
      await expired('released');
      let release: () => void = () => undefined;
      const held = proxy.add({
        match: { test: nthPut('released', 2) },
        fault: {
          kind: 'hold',
          until: new Promise<void>((r) => {
            release = r;
          }),
        },
      });
      const taking = acquireLock(client, Bucket, 'released', 'exec-new', { ttlSeconds: 3600 });
      const deadline = Date.now() + scaled(30_000);
      while (held.hits === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(held.hits).toBe(1);
      expect(await releaseLock(local.s3, Bucket, 'released', 'exec-old')).toBe(true);
      release();
      expect((await taking).owner).toBe('exec-new');
      expect(JSON.parse(await getText('locks/released.json')).owner).toBe('exec-new');
      held.remove();
    });
  });

  it('refuses a second run while the first holds the lock, and allows it after release', async () => {
    await acquireLock(local.s3, Bucket, 'prod', 'exec-1', { ttlSeconds: 3600 });
    await expect(acquireLock(local.s3, Bucket, 'prod', 'exec-2', { ttlSeconds: 3600 })).rejects.toMatchObject(
      {
        name: 'TargetLocked',
      },
    );
    expect(await releaseLock(local.s3, Bucket, 'prod', 'exec-2')).toBe(false);
    expect(await releaseLock(local.s3, Bucket, 'prod', 'exec-1')).toBe(true);
    expect((await acquireLock(local.s3, Bucket, 'prod', 'exec-2', { ttlSeconds: 3600 })).owner).toBe(
      'exec-2',
    );
  });

  it('is re-entrant for the execution that holds it (a retried step)', async () => {
    const first = await acquireLock(local.s3, Bucket, 'retry', 'exec-1', { ttlSeconds: 3600 });
    expect(await acquireLock(local.s3, Bucket, 'retry', 'exec-1', { ttlSeconds: 3600 })).toEqual(first);
  });

  it('takes over a lock whose holder died and let it expire', async () => {
    const t0 = new Date('2026-11-21T02:00:00Z');
    await acquireLock(local.s3, Bucket, 'stale', 'dead-exec', { ttlSeconds: 60, now: () => t0 });
    const later = new Date(t0.getTime() + 61_000);
    const lock = await acquireLock(local.s3, Bucket, 'stale', 'exec-new', {
      ttlSeconds: 60,
      now: () => later,
    });
    expect(lock.owner).toBe('exec-new');
    await expect(
      acquireLock(local.s3, Bucket, 'stale', 'exec-third', { ttlSeconds: 60, now: () => later }),
    ).rejects.toMatchObject({ name: 'TargetLocked' });
  });

  const arn = (name: string) =>
    `arn:aws:states:us-east-1:000000000000:execution:infrahub-backup-backup:${name}`;
  const captureLog = () => {
    const lines: Array<Record<string, unknown>> = [];
    return { lines, logger: createLogger({}, { write: (l) => lines.push(JSON.parse(l)) }) };
  };
  const currentLock = async (target: string) => {
    const out = await local.s3.send(new GetObjectCommand({ Bucket, Key: lockKey(target) }));
    return JSON.parse((await out.Body?.transformToString()) ?? '') as { owner: string };
  };

  it('takes over a lock left by an execution that has ended, long before it expires', async () => {
    const dir = testTempDir('lock-executions-');
    const status = localExecutionStatus(dir);
    // The first execution takes the lock and ends without releasing it (S3 was down at its end).
    const ended = recordLocalExecution(arn('first'), dir);
    await acquireLock(local.s3, Bucket, 'left', arn('first'), {
      ttlSeconds: 12 * 3600,
      executionStatus: status,
    });
    const running = recordLocalExecution(arn('second'), dir);
    // While the first still runs, the second is refused, naming the holder and that it runs.
    await expect(
      acquireLock(local.s3, Bucket, 'left', arn('second'), {
        ttlSeconds: 12 * 3600,
        executionStatus: status,
      }),
    ).rejects.toMatchObject({
      name: 'TargetLocked',
      message: expect.stringContaining(`locked by ${arn('first')}`),
    });
    ended('FAILED');
    const { lines, logger } = captureLog();
    const lock = await acquireLock(local.s3, Bucket, 'left', arn('second'), {
      ttlSeconds: 12 * 3600,
      executionStatus: status,
      logger,
    });
    expect(lock.owner).toBe(arn('second'));
    expect((await currentLock('left')).owner).toBe(arn('second'));
    expect(lines.map((l) => l.message)).toContainEqual(expect.stringMatching(/has ended \(FAILED\)/));
    // The new holder runs: a third is refused.
    await expect(
      acquireLock(local.s3, Bucket, 'left', arn('third'), { ttlSeconds: 60, executionStatus: status }),
    ).rejects.toMatchObject({ name: 'TargetLocked', message: expect.stringMatching(/still running/) });
    running('SUCCEEDED');
  });

  it('counts an execution whose local process is gone as ended', async () => {
    const dir = testTempDir('lock-executions-');
    // A record written by a process that has exited without recording its end (killed).
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const deadPid = Number(child.stdout);
    recordLocalExecution(arn('killed'), dir);
    const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.json')) as string);
    const record = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...record, pid: deadPid }));
    expect(await localExecutionStatus(dir)(arn('killed'))).toEqual({
      running: false,
      status: expect.stringMatching(/^ABORTED/),
    });
    expect(await localExecutionStatus(dir)(arn('never-ran-here'))).toBeUndefined();
  });

  // Review item 4: a reused PID (in a container the runner is PID 1 on every run) is not the execution's process.
  it('counts an execution whose PID now belongs to another process (start time differs) as ended', async () => {
    const dir = testTempDir('lock-executions-');
    const running = recordLocalExecution(arn('reused'), dir);
    const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.json')) as string);
    const record = JSON.parse(readFileSync(file, 'utf8'));
    expect(record.pidStartTime).toMatch(/^\d+$/);
    // The same, live process: running.
    expect(await localExecutionStatus(dir)(arn('reused'))).toEqual({ running: true, status: 'RUNNING' });
    // The crashed run's record names a PID that a later process (this one) now has.
    writeFileSync(file, JSON.stringify({ ...record, pidStartTime: String(Number(record.pidStartTime) - 1) }));
    expect(await localExecutionStatus(dir)(arn('reused'))).toEqual({
      running: false,
      status: expect.stringMatching(/^ABORTED .*another process/),
    });
    // And its lock is taken over at once, long before it expires.
    await acquireLock(local.s3, Bucket, 'reused-pid', arn('reused'), { ttlSeconds: 12 * 3600 });
    const lock = await acquireLock(local.s3, Bucket, 'reused-pid', arn('after'), {
      ttlSeconds: 3600,
      executionStatus: localExecutionStatus(dir),
    });
    expect(lock.owner).toBe(arn('after'));
    running('FAILED');
  });

  // Review item 7: a huge lock is neither read whole nor quoted whole.
  it('reads at most 64 KiB of a lock: a larger object is stale, and long names are clipped in messages', async () => {
    const huge = JSON.stringify({
      target: 'huge',
      owner: `x${'y'.repeat(30 * 1024 * 1024)}`,
      acquiredAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    });
    await local.s3.send(new PutObjectCommand({ Bucket, Key: lockKey('huge'), Body: huge }));
    const { lines, logger } = captureLog();
    const lock = await acquireLock(local.s3, Bucket, 'huge', arn('next'), { ttlSeconds: 3600, logger });
    expect(lock.owner).toBe(arn('next'));
    const warning = lines.find((l) => l.level === 'WARN');
    expect(warning).toMatchObject({
      message: expect.stringMatching(/it is not a valid lock \(\d+ bytes, larger than any lock/),
      bytes: Buffer.byteLength(huge),
    });
    expect(JSON.stringify(lines).length).toBeLessThan(10_000);
    // A valid lock whose owner is long (under the cap): the refusal quotes it clipped.
    const longOwner = `exec-${'z'.repeat(50_000)}`;
    await acquireLock(local.s3, Bucket, 'long-owner', longOwner, { ttlSeconds: 3600 });
    const refused = await acquireLock(local.s3, Bucket, 'long-owner', arn('other'), {
      ttlSeconds: 3600,
    }).catch((e: unknown) => e as Error);
    expect(refused).toMatchObject({ name: 'TargetLocked' });
    expect((refused as Error).message.length).toBeLessThan(1_000);
    expect((refused as Error).message).toMatch(/\(50005 characters\)/);
  });

  it('takes two racing take-overs of an ended lock for exactly one execution', async () => {
    const dir = testTempDir('lock-executions-');
    const status = localExecutionStatus(dir);
    recordLocalExecution(arn('gone'), dir)('FAILED');
    await acquireLock(local.s3, Bucket, 'race-over', arn('gone'), { ttlSeconds: 3600 });
    const results = await Promise.allSettled(
      ['a', 'b', 'c'].map((n) =>
        acquireLock(local.s3, Bucket, 'race-over', arn(n), { ttlSeconds: 3600, executionStatus: status }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected'))
      expect((r as PromiseRejectedResult).reason).toMatchObject({ name: 'TargetLocked' });
  });

  describe('a lock object that is not a lock', () => {
    const malformed: Record<string, string> = {
      'truncated JSON': `{"target":"bad","owner":"${arn('x')}","acquiredAt":"2026-11-21T02:00:00.000Z","expi`,
      'invalid dates': JSON.stringify({
        target: 'bad',
        owner: 'someone',
        acquiredAt: 'yesterday',
        expiresAt: '2026-13-45',
      }),
      'wrong shape (an array)': '[1,2,3]',
      'wrong shape (unknown keys)': JSON.stringify({ holder: 'me', until: 'later' }),
      'empty object body': '',
      null: 'null',
    };
    for (const [name, body] of Object.entries(malformed)) {
      it(`is taken over as stale, with a warning naming its key and size: ${name}`, async () => {
        const target = `bad-${Object.keys(malformed).indexOf(name)}`;
        await local.s3.send(new PutObjectCommand({ Bucket, Key: lockKey(target), Body: body }));
        const { lines, logger } = captureLog();
        const lock = await acquireLock(local.s3, Bucket, target, arn('next'), {
          ttlSeconds: 3600,
          executionStatus: localExecutionStatus(testTempDir('lock-executions-')),
          logger,
        });
        expect(lock.owner).toBe(arn('next'));
        expect((await currentLock(target)).owner).toBe(arn('next'));
        const warning = lines.find((l) => l.level === 'WARN');
        expect(warning).toMatchObject({
          message: expect.stringContaining(`s3://${Bucket}/${lockKey(target)}: it is not a valid lock`),
          key: lockKey(target),
          bytes: Buffer.byteLength(body),
        });
        // Released normally afterwards.
        expect(await releaseLock(local.s3, Bucket, target, arn('next'))).toBe(true);
      });
    }

    // Review 12 item 3: well-formed objects that no execution of ours can have written.
    const impossible: Record<string, (now: Date) => Record<string, string>> = {
      'a hand-written hold until 9999 (not an execution)': () => ({
        target: 'odd-0',
        owner: 'manual-hold',
        acquiredAt: '2026-01-01T00:00:00Z',
        expiresAt: '9999-12-31T23:59:59Z',
      }),
      'a lock of another target stored under this key': (now) => ({
        target: 'infrahub-prod',
        owner: 'manual',
        acquiredAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + 3600_000).toISOString(),
      }),
      'expiresAt before acquiredAt, both in the future': () => ({
        target: 'odd-2',
        owner: 'manual',
        acquiredAt: '2099-01-01T00:00:00Z',
        expiresAt: '2098-01-01T00:00:00Z',
      }),
      'taken in the future': (now) => ({
        target: 'odd-3',
        owner: 'manual',
        acquiredAt: new Date(now.getTime() + 3600_000).toISOString(),
        expiresAt: new Date(now.getTime() + 2 * 3600_000).toISOString(),
      }),
      'lasting longer than the 12 h execution timeout': (now) => ({
        target: 'odd-4',
        owner: arn('unknown-to-anyone'),
        acquiredAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + 13 * 3600_000).toISOString(),
      }),
    };
    for (const [name, make] of Object.entries(impossible)) {
      it(`is taken over with a warning naming its key when it cannot be ours: ${name}`, async () => {
        const target = `odd-${Object.keys(impossible).indexOf(name)}`;
        await local.s3.send(
          new PutObjectCommand({ Bucket, Key: lockKey(target), Body: JSON.stringify(make(new Date())) }),
        );
        const { lines, logger } = captureLog();
        const lock = await acquireLock(local.s3, Bucket, target, arn('next'), {
          ttlSeconds: 12 * 3600,
          executionStatus: localExecutionStatus(testTempDir('lock-executions-')),
          logger,
        });
        expect(lock.owner).toBe(arn('next'));
        expect((await currentLock(target)).owner).toBe(arn('next'));
        expect(lines.find((l) => l.level === 'WARN')).toMatchObject({
          message: expect.stringContaining(`s3://${Bucket}/${lockKey(target)}: it is not a valid lock (it `),
          key: lockKey(target),
        });
      });
    }

    it('a lock of ours lasting the execution timeout is honoured, and the refusal names the key and what to do', async () => {
      await acquireLock(local.s3, Bucket, 'full-term', arn('holder'), { ttlSeconds: 12 * 3600 });
      const refused = await acquireLock(local.s3, Bucket, 'full-term', arn('next'), {
        ttlSeconds: 12 * 3600,
      }).catch((e: unknown) => e as Error);
      expect(refused).toMatchObject({ name: 'TargetLocked' });
      expect((refused as Error).message).toContain(`The lock is s3://${Bucket}/${lockKey('full-term')}`);
      expect((refused as Error).message).toContain(`aws s3 rm s3://${Bucket}/${lockKey('full-term')}`);
      // While its holder runs: wait for it or stop it, named.
      const dir = testTempDir('lock-executions-');
      const running = recordLocalExecution(arn('runs'), dir);
      await acquireLock(local.s3, Bucket, 'held-running', arn('runs'), { ttlSeconds: 3600 });
      await expect(
        acquireLock(local.s3, Bucket, 'held-running', arn('next'), {
          ttlSeconds: 3600,
          executionStatus: localExecutionStatus(dir),
        }),
      ).rejects.toMatchObject({
        name: 'TargetLocked',
        message: expect.stringContaining(
          `s3://${Bucket}/${lockKey('held-running')}: wait for that execution to end or stop it (aws stepfunctions stop-execution --execution-arn ${arn('runs')})`,
        ),
      });
      running('SUCCEEDED');
    });

    it('is not taken over while the execution it names still runs', async () => {
      const dir = testTempDir('lock-executions-');
      const running = recordLocalExecution(arn('alive'), dir);
      const body = JSON.stringify({
        target: 'bad-alive',
        owner: arn('alive'),
        acquiredAt: 'now',
        expiresAt: 'later',
      });
      await local.s3.send(new PutObjectCommand({ Bucket, Key: lockKey('bad-alive'), Body: body }));
      await expect(
        acquireLock(local.s3, Bucket, 'bad-alive', arn('next'), {
          ttlSeconds: 3600,
          executionStatus: localExecutionStatus(dir),
        }),
      ).rejects.toMatchObject({ name: 'TargetLocked', message: expect.stringContaining(arn('alive')) });
      // A malformed lock is never released by anyone: only taken over.
      expect(await releaseLock(local.s3, Bucket, 'bad-alive', arn('alive'))).toBe(false);
      running('SUCCEEDED');
      expect(
        (
          await acquireLock(local.s3, Bucket, 'bad-alive', arn('next'), {
            ttlSeconds: 3600,
            executionStatus: localExecutionStatus(dir),
          })
        ).owner,
      ).toBe(arn('next'));
    });
  });
});
