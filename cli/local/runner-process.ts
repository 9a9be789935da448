import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../harness/paths.js';

export interface RunnerRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');
const cli = join(repoRoot, 'containers', 'runner', 'src', 'cli.ts');

/**
 * Runs the runner's real entrypoint as a local process with exactly `env` (plus PATH and HOME), the
 * way the ECS task definition starts it in the cloud. `onStart` receives the child's PID.
 */
export function runRunner(
  subcommand: string,
  env: Record<string, string>,
  onStart?: (pid: number) => void,
): Promise<RunnerRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, [cli, subcommand], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', reject);
    if (child.pid !== undefined) onStart?.(child.pid);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
