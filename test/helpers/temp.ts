import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Folders made by {@link testTempDir} in this process and not removed yet. */
const made = new Set<string>();

/**
 * A fresh folder `<OS temp folder>/<prefix>XXXXXX` (mkdtemp) for a test, removed with everything in
 * it after the test file's last test (test/helpers/temp-cleanup.ts, a setup file of every project in
 * vitest.config.ts), or when the process exits (for the helpers' command-line users).
 *
 * @param prefix the folder name's start, e.g. `runner-bundle-`.
 * @returns the folder's absolute path.
 */
export function testTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Removes every folder {@link testTempDir} made and has not removed yet. Never throws. */
export function removeTestTempDirs(): void {
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // left for the OS's temp cleaning
    }
  }
  made.clear();
}

process.once('exit', removeTestTempDirs);
