import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { processAlive } from '../cli/local/proc-stat.js';

/**
 * PIDs this process started and has not stopped yet; killed if the process exits first. A negative
 * number is a process group (a program started with `group`, whose children go with it).
 */
const live = new Set<number>();

/**
 * Folders directly under the OS temp folder that services of this process own (harnessTempDir) and
 * that are not removed yet: the watchdog removes them once the services' processes are gone.
 */
const folders = new Set<string>();

/**
 * Where the watchdog (harness/watchdog.mjs) reads what to clean up when this process dies without
 * its exit handler running (SIGKILL from a test runner's time-out, a crash), one entry per line:
 * a PID to kill (`123`, `-123` for a group), a PID already killed to wait for (`wait 123`), or a
 * folder to remove after those are gone (`dir /tmp/ibh-pg-AbC123`).
 */
let registry: string | undefined;

/** The registry's lines for `pids` (to kill, or with `wait` to wait for) and the owned folders. */
function registryText(pids: Iterable<number>, prefix = ''): string {
  return [...[...pids].map((pid) => `${prefix}${pid}`), ...[...folders].map((dir) => `dir ${dir}`)].join(
    '\n',
  );
}

/**
 * Replaces the registry whole (a new file renamed over it), so the watchdog never reads half of
 * one: a PID cut short would be another process's.
 */
function writeRegistry(text: string): void {
  if (!registry) return;
  const next = `${registry}.next`;
  writeFileSync(next, text);
  renameSync(next, registry);
}

/** Writes `live` and `folders` to the registry, starting the watchdog the first time. */
function guardLive(): void {
  if (!registry) {
    registry = join(tmpdir(), `infrahub-harness-${process.pid}-${Date.now()}.pids`);
    writeFileSync(registry, '');
    const watchdog = spawn(
      process.execPath,
      [fileURLToPath(new URL('./watchdog.mjs', import.meta.url)), String(process.pid), registry],
      { detached: true, stdio: 'ignore' },
    );
    watchdog.unref();
  }
  writeRegistry(registryText(live));
}

process.once('exit', () => {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (!registry) return;
  if (folders.size === 0) {
    // Stopped here: the watchdog, finding its parent gone, has nothing left to do.
    rmSync(registry, { force: true });
    return;
  }
  // The folders wait until what was just killed is gone (a dying server may still write to its
  // folder): the watchdog waits for those PIDs, kills none (one may be reused by then), then removes them.
  try {
    writeRegistry(registryText(live, 'wait '));
  } catch {
    // the registry is gone (its folder cleaned): nothing more can be done from an exit handler
  }
});

/**
 * Records a PID (negative: a process group) this process started, to be killed when the process
 * exits, or by the watchdog when it dies without exiting (harness/watchdog.mjs); stopPid forgets it.
 */
export function track(pid: number): void {
  live.add(pid);
  guardLive();
}

/** Forgets a PID that is gone (stopped, or reaped). */
function untrack(pid: number): void {
  if (live.delete(pid)) writeRegistry(registryText(live));
}

/**
 * Creates a folder for a service directly under the OS temp folder (`mkdtemp`, `<tmpdir>/<prefix>XXXXXX`)
 * and records it, so the watchdog (harness/watchdog.mjs) removes it once the service's processes are
 * gone when this process dies without stopping the service (a PostgreSQL cluster is ~47 MB), or when
 * it exits with the service still running. The service's stop removes it with {@link removeHarnessDir},
 * or keeps it with {@link releaseHarnessDir}.
 *
 * @param prefix the folder name's start: letters, digits, `.`, `_`, `-` (e.g. `ibh-pg-`).
 * @returns the folder's absolute path.
 * @throws Error when `prefix` is empty or holds any other character (a `/` would leave the temp folder).
 */
export function harnessTempDir(prefix: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(prefix) || prefix.startsWith('.'))
    throw new Error(
      `harnessTempDir: the prefix ${JSON.stringify(prefix)} must be letters, digits, ".", "_" or "-", not starting with "."`,
    );
  const dir = mkdtempSync(join(tmpdir(), prefix));
  folders.add(dir);
  guardLive();
  return dir;
}

/**
 * Removes a folder made by {@link harnessTempDir} (recursively; symbolic links inside are removed,
 * not followed) and forgets it. Call it once the processes using it are stopped.
 */
export function removeHarnessDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  releaseHarnessDir(dir);
}

/** Forgets a folder made by {@link harnessTempDir} without removing it (a test keeps the files). */
export function releaseHarnessDir(dir: string): void {
  if (folders.delete(dir)) writeRegistry(registryText(live));
}

/** Asks the OS for a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

/** Whether process `pid` exists and has not exited; a zombie counts as exited (see {@link processAlive}). */
export const isAlive = processAlive;

/**
 * Polls `ready` until it answers true. Fails early when `alive` says the process has died, or
 * after `timeoutMs`. Returns the reason for a failure, or undefined once ready.
 */
export async function waitUntil(
  ready: () => Promise<boolean>,
  options: { timeoutMs: number; alive?: () => boolean; intervalMs?: number; attemptTimeoutMs?: number },
): Promise<string | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    if (options.alive && !options.alive()) return 'the process exited during start-up';
    // One probe may hang (a port that accepts but never answers); bound it so a death is noticed.
    const attempt = ready().catch(() => false);
    const timedOut = sleep(options.attemptTimeoutMs ?? 3000, false);
    if (await Promise.race([attempt, timedOut])) return undefined;
    await sleep(options.intervalMs ?? 250);
  }
  return `not ready after ${Math.round(options.timeoutMs / 1000)} s`;
}

/**
 * Sends `signal`, waits for the PID to disappear, then SIGKILLs it after `graceMs`. A negative PID
 * is a process group (kill(2)): every member gets the signal, and the wait lasts until none is left.
 */
export async function stopPid(
  pid: number,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 30_000,
): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    untrack(pid);
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(50);
  }
  untrack(pid);
}

/** Stops the process group a program started with `group` leads (see stopPid for a negative PID). */
export async function stopGroup(
  leader: number,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 30_000,
): Promise<void> {
  await stopPid(-leader, signal, graceMs);
}

/** The last `lines` lines of a log file, or '' when there is none. */
export function tail(path: string, lines = 25): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

export interface Spawned {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Whether the process is still running (a reaped child reports its exit at once). */
  alive(): boolean;
}

/** Starts a long-running program with stdout and stderr appended to `logFile`. */
export function spawnLogged(
  command: string,
  args: readonly string[],
  options: {
    logFile: string;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    uid?: number;
    gid?: number;
    /**
     * Starts the program as the leader of a process group of its own, which the exit handler and
     * `stopGroup` signal whole: for launchers whose server outlives them (RabbitMQ's script and beam.smp).
     */
    group?: boolean;
  },
): Spawned {
  const fd = openSync(options.logFile, 'a');
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', fd, fd],
    uid: options.uid,
    gid: options.gid,
    detached: options.group ?? false,
  });
  closeSync(fd);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  child.once('error', () => {
    exited = true;
  });
  if (child.pid === undefined) {
    return { child, pid: -1, alive: () => false };
  }
  const pid = child.pid;
  track(options.group ? -pid : pid);
  return { child, pid, alive: () => !exited && isAlive(pid) };
}
