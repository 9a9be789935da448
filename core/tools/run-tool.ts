import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { ToolFailedError } from '../errors.js';
import { noteToolOutput } from '../progress.js';
import { redactText } from '../redact.js';

export interface RunningTool {
  readonly child: ChildProcess;
  /** The tool's standard output, for streaming (present when `stdout: 'pipe'`). */
  readonly stdout: Readable;
  /** The tool's standard input (present when `stdin: 'pipe'`). */
  readonly stdin: Writable;
  /** Resolves when the tool has exited; rejects with ToolFailedError unless it exited 0. */
  readonly done: Promise<void>;
  /** The last lines the tool wrote to standard error. */
  stderrTail(): string;
}

const STDERR_KEEP = 64 * 1024;

/** Every tool started by runTool that has not exited yet (stopRunningTools ends them on a signal). */
const running = new Set<ChildProcess>();

/**
 * Ends every tool runTool started that is still running: SIGTERM to each tool's process group (a
 * tool runs in its own group, so pg_dump's or neo4j-admin's own children end too), then SIGKILL to
 * the groups still alive after `graceMs`; resolves once each has exited and been reaped (no
 * `<defunct>` process is left), or after `graceMs` more at the latest. Never throws.
 */
export async function stopRunningTools(graceMs = 5_000): Promise<number> {
  const children = [...running];
  if (children.length === 0) return 0;
  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signalGroup = (child: ChildProcess, signal: NodeJS.Signals) => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
  };
  const within = (ms: number, p: Promise<unknown>) =>
    Promise.race([p, new Promise((resolve) => setTimeout(resolve, ms).unref())]);
  for (const child of children) signalGroup(child, 'SIGTERM');
  await within(graceMs, Promise.all(children.map(exited)));
  for (const child of children) signalGroup(child, 'SIGKILL');
  await within(graceMs, Promise.all(children.map(exited)));
  return children.length;
}

/**
 * Starts a database tool (pg_dump, neo4j-admin, ...). Standard error is kept, bounded, for the
 * error message; progress noise (lines of dots, percentages) is dropped from it. The environment is
 * passed to the tool and never logged: it carries the credentials.
 */
export function runTool(
  command: string,
  args: readonly string[],
  options: {
    env?: NodeJS.ProcessEnv;
    stdin?: 'pipe' | 'ignore';
    stdout?: 'pipe' | 'ignore';
    name?: string;
    /** Run as this account (only root may; initdb and pg_ctl refuse to run as root). */
    user?: { uid: number; gid: number };
  } = {},
): RunningTool {
  const name = options.name ?? command.split('/').pop() ?? command;
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    stdio: [options.stdin ?? 'ignore', options.stdout ?? 'pipe', 'pipe'],
    // Its own process group, so stopRunningTools can end the tool and whatever it started at once.
    detached: true,
    ...(options.user ?? {}),
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    // A tool's output is progress for the task-token heartbeat (core/progress.ts).
    noteToolOutput();
    stderr += chunk;
    // Redacted before it is cut (core/redact.ts), so the window's edge cannot keep half a secret.
    if (stderr.length > 2 * STDERR_KEEP) stderr = redactText(stderr).slice(-STDERR_KEEP);
  });
  const stderrTail = () =>
    redactText(stderr)
      .split(/\r?\n|\r/)
      .filter((line) => line.trim() !== '' && !/^(Files: \d+\/\d+, data:|\.+$|\d+%)/.test(line.trim()))
      .slice(-12)
      .join('\n');
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err) =>
      reject(new ToolFailedError(name, { code: null, signal: null }, err.message)),
    );
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new ToolFailedError(name, { code, signal }, stderrTail()));
    });
  });
  // Callers attach their own handlers; this keeps an unobserved failure from crashing the process.
  done.catch(() => undefined);
  return {
    child,
    stdout: child.stdout as Readable,
    stdin: child.stdin as Writable,
    done,
    stderrTail,
  };
}

/** Runs a tool to completion and returns its standard output as text. */
export async function toolOutput(
  command: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
): Promise<string> {
  const tool = runTool(command, args, { env });
  let out = '';
  tool.stdout.setEncoding('utf8');
  tool.stdout.on('data', (chunk: string) => {
    out += chunk;
  });
  await tool.done;
  return out;
}
