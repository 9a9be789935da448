import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { ToolFailedError } from '../errors.js';
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
    ...(options.user ?? {}),
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
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
