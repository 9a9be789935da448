import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRunner } from '../containers/runner/build.js';

/**
 * Builds the runner's bundle (containers/runner/build.ts) into a fresh temporary folder, runs
 * `use(bundlePath)` and removes the folder afterwards, also when `use` throws (about 14 MB a run).
 */
export async function withRunnerBundle<T>(use: (bundle: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-runner-'));
  try {
    const bundle = join(dir, 'runner.mjs');
    await buildRunner(bundle);
    return await use(bundle);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
