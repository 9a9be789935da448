import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/**
 * PIDs this process started and has not stopped yet; killed if the process exits first. A negative
 * number is a process group (a program started with `group`, whose children go with it).
 */
const live = new Set<number>();

/**
 * Where the watchdog (harness/watchdog.mjs) reads the PIDs to kill when this process dies without
 * its exit handler running (SIGKILL from a test runner's time-out, a crash): one per line.
 */
let registry: string | undefined;

/** Writes `live` to the registry, starting the watchdog the first time. */
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
  writeFileSync(registry, [...live].join('\n'));
}

process.once('exit', () => {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // Stopped here: the watchdog, finding its parent gone, has nothing left to kill (no PID reused since).
  if (registry) rmSync(registry, { force: true });
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
  if (live.delete(pid) && registry) writeFileSync(registry, [...live].join('\n'));
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

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

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
