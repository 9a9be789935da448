import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive } from '../../harness/processes.js';
import { scaled } from '../../harness/time-scale.js';

// Issue 17, item 1 (and issue 15's note): a test process killed from outside (a runner's time-out,
// SIGKILL) runs no exit handler, and its daemonized PostgreSQL (pg_ctl: parent pid 1) lived on. The
// harness's watchdog kills what the dead process left running.
describe('the harness watchdog', () => {
  let child: ChildProcess | undefined;
  let orphan: number | undefined;

  afterEach(() => {
    child?.kill('SIGKILL');
    if (orphan !== undefined && isAlive(orphan)) process.kill(orphan, 'SIGKILL');
  });

  it(
    'stops the PostgreSQL a SIGKILLed process started, within seconds',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'watchdog-test-'));
      const script = join(dir, 'start-postgres.mts');
      writeFileSync(
        script,
        [
          `import { startPostgres } from ${JSON.stringify(resolve('harness/postgres.ts'))};`,
          'const pg = await startPostgres();',
          "process.stdout.write('pid ' + pg.pid + '\\n');",
          'setInterval(() => {}, 1000);',
        ].join('\n'),
      );
      child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const pid = await new Promise<number>((resolvePid, reject) => {
        let out = '';
        child?.stdout?.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const match = /pid (\d+)/.exec(out);
          if (match) resolvePid(Number(match[1]));
        });
        child?.once('exit', (code) =>
          reject(new Error(`the starter exited (${code}) before PostgreSQL ran: ${out}`)),
        );
      });
      orphan = pid;
      expect(isAlive(pid)).toBe(true);

      child.kill('SIGKILL'); // no exit handler runs
      const deadline = Date.now() + 30_000;
      while (isAlive(pid) && Date.now() < deadline) await sleep(200);
      expect(isAlive(pid), `PostgreSQL ${pid} outlived the process that started it`).toBe(false);
    },
    scaled(180_000),
  );
});
