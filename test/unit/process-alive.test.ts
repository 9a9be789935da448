import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { localExecutionStatus, processStartTime, recordLocalExecution } from '../../cli/local/executions.js';
import { processAlive } from '../../cli/local/proc-stat.js';
import { isAlive } from '../../harness/processes.js';
import { scaled } from '../../harness/time-scale.js';
import { testTempDir } from '../helpers/temp.js';

/**
 * Runs `test` with the PID of a process that becomes a zombie about 1 s in: the shell starts a 1 s
 * sleep in the background, prints its PID, then becomes a 30 s sleep, which never waits for
 * children (a child that ended before the exec would be reaped by the shell itself).
 */
async function withZombie(test: (pid: number) => Promise<void>): Promise<void> {
  const parent = spawn('sh', ['-c', 'sleep 1 & echo $!; exec sleep 30'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const [line] = (await once(parent.stdout, 'data')) as [Buffer];
    const pid = Number(line.toString().trim());
    expect(pid).toBeGreaterThan(0);
    await test(pid);
  } finally {
    parent.kill('SIGKILL');
  }
}

describe('processAlive (cli/local/proc-stat.ts; the harness isAlive is the same)', () => {
  it('is true for a running process and false once it has exited and been reaped', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pid = child.pid ?? 0;
    expect(isAlive(pid)).toBe(true);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(isAlive(pid)).toBe(false);
  });

  it.skipIf(process.platform !== 'linux')(
    'counts a zombie (exited, its parent never reaps it) as exited, unlike a bare signal-0 probe',
    async () => {
      await withZombie(async (zombie) => {
        // Wait until it has exited (a zombie shows as state Z); bounded by the test's time-out.
        while (isAlive(zombie)) await sleep(50);
        expect(() => process.kill(zombie, 0)).not.toThrow();
        expect(processAlive(zombie)).toBe(false);
      });
    },
    scaled(10_000),
  );

  it.skipIf(process.platform !== 'linux')(
    'a local execution whose process exited but was never reaped (a zombie) is ABORTED, not RUNNING (so its lock counts as ended)',
    async () => {
      await withZombie(async (pid) => {
        const started = processStartTime(pid);
        expect(started).toMatch(/^\d+$/);
        const dir = testTempDir('executions-zombie-');
        const executionArn = 'arn:aws:states:local:000000000000:execution:backup:zombie';
        // The record its process writes at start, as if the zombie had written it.
        recordLocalExecution(executionArn, dir);
        const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.json')) as string);
        const record = JSON.parse(readFileSync(file, 'utf8'));
        writeFileSync(file, JSON.stringify({ ...record, pid, pidStartTime: started }));
        expect(await localExecutionStatus(dir)(executionArn)).toEqual({ running: true, status: 'RUNNING' });
        while (processAlive(pid)) await sleep(50);
        expect(await localExecutionStatus(dir)(executionArn)).toEqual({
          running: false,
          status: `ABORTED (its local process ${pid} is gone)`,
        });
      });
    },
    scaled(10_000),
  );

  it('answers for a process group given as -pgid (the harness stopGroup waits on it): alive while a member lives', async () => {
    const leader = spawn('sleep', ['30'], { stdio: 'ignore', detached: true });
    const pgid = leader.pid ?? 0;
    try {
      expect(processAlive(-pgid)).toBe(true);
      expect(isAlive(-pgid)).toBe(true);
    } finally {
      process.kill(-pgid, 'SIGKILL');
    }
    await once(leader, 'exit');
    expect(processAlive(-pgid)).toBe(false);
  });
});
