import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../harness/index.js';

/** A demo process and the end of its run: exit code and everything it printed (stdout and stderr). */
export interface DemoRun {
  child: ChildProcess;
  done: Promise<{ code: number | null; out: string }>;
}

/** Starts `tsx cli/demo.ts <args>` in the repository, with `env` added to this process's environment. */
export function startDemo(args: readonly string[], env: NodeJS.ProcessEnv = {}): DemoRun {
  const child = spawn(
    join(repoRoot, 'node_modules', '.bin', 'tsx'),
    [join(repoRoot, 'cli', 'demo.ts'), ...args],
    {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const collect = (d: Buffer) => {
    out += d.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, out })),
  );
  return { child, done };
}

/** Stops a demo still running when its test ends (its time limit): on SIGTERM it stops what it started. */
export function stopDemo(run: DemoRun | undefined): void {
  const child = run?.child;
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}
