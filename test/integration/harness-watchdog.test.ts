import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../../harness/paths.js';
import { isAlive } from '../../harness/processes.js';
import { scaled } from '../../harness/time-scale.js';

// Issue 17, item 1 (and issue 15's note): a test process killed from outside (a runner's time-out,
// SIGKILL) runs no exit handler, and its daemonized PostgreSQL (pg_ctl: parent pid 1) lived on. The
// harness's watchdog kills what the dead process left running.
describe('the harness watchdog', () => {
  let child: ChildProcess | undefined;
  let orphan: number | undefined;
  const made: string[] = [];

  afterEach(() => {
    child?.kill('SIGKILL');
    if (orphan !== undefined && isAlive(orphan)) process.kill(orphan, 'SIGKILL');
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  // SIGKILLed: no exit handler runs, the watchdog kills the server. Exited: the exit handler kills
  // it and leaves its folder to the watchdog, which removes it once the server is gone.
  it.each(['is SIGKILLed', 'exits without stopping it'] as const)(
    'stops the PostgreSQL of a process that %s, within seconds, and removes its folder',
    async (end) => {
      const dir = mkdtempSync(join(tmpdir(), 'watchdog-test-'));
      made.push(dir);
      const script = join(dir, 'start-postgres.mts');
      writeFileSync(
        script,
        [
          `import { startPostgres } from ${JSON.stringify(resolve('harness/postgres.ts'))};`,
          'const pg = await startPostgres();',
          "process.stdout.write('pid ' + pg.pid + ' dir ' + pg.dataDir + '\\n');",
          "process.stdin.once('data', () => process.exit(0));",
        ].join('\n'),
      );
      child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['pipe', 'pipe', 'inherit'] });
      const [pid, dataDir] = await new Promise<[number, string]>((resolvePid, reject) => {
        let out = '';
        child?.stdout?.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const match = /pid (\d+) dir (\S+)\n/.exec(out);
          if (match) resolvePid([Number(match[1]), String(match[2])]);
        });
        child?.once('exit', (code) =>
          reject(new Error(`the starter exited (${code}) before PostgreSQL ran: ${out}`)),
        );
      });
      orphan = pid;
      // The cluster's folder (data, log, socket): <tmpdir>/ibh-pg-XXXXXX.
      const clusterDir = dirname(dataDir);
      made.push(clusterDir);
      expect(dirname(clusterDir)).toBe(tmpdir());
      expect(existsSync(dataDir)).toBe(true);
      expect(isAlive(pid)).toBe(true);

      if (end === 'is SIGKILLed')
        child.kill('SIGKILL'); // no exit handler runs
      else child.stdin?.write('exit\n'); // the exit handler runs, the service never stopped
      const deadline = Date.now() + 30_000;
      while (isAlive(pid) && Date.now() < deadline) await sleep(200);
      expect(isAlive(pid), `PostgreSQL ${pid} outlived the process that started it`).toBe(false);
      // Then its folder goes too (about 47 MB a cluster), once the server is gone.
      const folderDeadline = Date.now() + 30_000;
      while (existsSync(clusterDir) && Date.now() < folderDeadline) await sleep(200);
      expect(existsSync(clusterDir), `${clusterDir} outlived the PostgreSQL that used it`).toBe(false);
    },
    scaled(180_000),
  );

  it(
    'removes only real folders directly in the temp folder: no symbolic link followed, nothing elsewhere',
    async () => {
      const owned = mkdtempSync(join(tmpdir(), 'ibh-watchdog-owned-'));
      const target = mkdtempSync(join(tmpdir(), 'ibh-watchdog-target-'));
      const outside = mkdtempSync(join(repoRoot, '.cache', 'watchdog-outside-'));
      const nested = join(target, 'nested');
      mkdirSync(nested);
      const link = join(tmpdir(), `ibh-watchdog-link-${process.pid}`);
      symlinkSync(target, link);
      // A link inside an owned folder is removed as a link; what it points to stays.
      symlinkSync(target, join(owned, 'to-target'));
      writeFileSync(join(target, 'keep'), 'kept');
      made.push(owned, target, outside, link);
      const registry = join(tmpdir(), `ibh-watchdog-registry-${process.pid}.pids`);
      writeFileSync(
        registry,
        [
          `dir ${owned}`,
          `dir ${link}`,
          `dir ${outside}`,
          `dir ${nested}`,
          `dir ${tmpdir()}/../tmp`,
          `dir ${join(tmpdir(), 'ibh-watchdog-owned-x', '..')}`,
        ].join('\n'),
      );
      // A parent that is already gone: the watchdog cleans up at its first poll.
      const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
        encoding: 'utf8',
      });
      const watchdog = spawnSync(process.execPath, [resolve('harness/watchdog.mjs'), gone.stdout, registry], {
        encoding: 'utf8',
        timeout: scaled(20_000),
      });
      expect(watchdog.status, watchdog.stderr).toBe(0);
      expect(existsSync(owned)).toBe(false);
      expect(existsSync(registry)).toBe(false);
      expect(existsSync(join(target, 'keep')), 'the link was followed').toBe(true);
      expect(existsSync(nested)).toBe(true);
      expect(existsSync(outside)).toBe(true);
      expect(existsSync(link)).toBe(true);
      expect(watchdog.stderr).toContain(`not removing ${JSON.stringify(link)}`);
      expect(watchdog.stderr).toContain(`not removing ${JSON.stringify(outside)}`);
      expect(watchdog.stderr).toContain(`not removing ${JSON.stringify(nested)}`);
    },
    scaled(60_000),
  );

  // Review: the registry lists process groups as negative PIDs. The watchdog's liveness check read
  // /proc/<pid>/stat for zombies, found none for -pgid and took a live group for gone at once.
  it(
    'waits for a process group (a negative PID in the registry) to end before removing its folder',
    async () => {
      const owned = mkdtempSync(join(tmpdir(), 'ibh-watchdog-group-'));
      made.push(owned);
      const leader = spawn('sleep', [String(scaled(3_000) / 1000)], { stdio: 'ignore', detached: true });
      const groupEnded = new Promise<number>((done) => leader.once('exit', () => done(Date.now())));
      const registry = join(tmpdir(), `ibh-watchdog-registry-group-${process.pid}.pids`);
      writeFileSync(registry, [`wait -${leader.pid}`, `dir ${owned}`].join('\n'));
      const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
        encoding: 'utf8',
      });
      const watchdog = spawn(process.execPath, [resolve('harness/watchdog.mjs'), gone.stdout, registry], {
        stdio: 'ignore',
      });
      const watchdogEnded = await new Promise<number>((done) =>
        watchdog.once('exit', () => done(Date.now())),
      );
      expect(watchdogEnded).toBeGreaterThanOrEqual(await groupEnded);
      expect(existsSync(owned)).toBe(false);
    },
    scaled(60_000),
  );
});
