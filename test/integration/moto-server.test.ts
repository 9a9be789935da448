import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, venvDir } from '../../harness/paths.js';
import { scaled } from '../../harness/time-scale.js';

// harness/moto_server.py makes moto's ListObjectVersions look only at the keys a page can return
// (moto copies the whole bucket for every request). The harness's S3 is only worth its name if that
// changes no answer: harness/moto_server_check.py asks moto's own implementation and the faster one
// the same questions (every page of many listings, prefixes, delimiters, markers) and compares.
describe('the harness moto server (harness/moto_server.py)', () => {
  it.each([1, 2])('lists object versions exactly as moto does (bucket seed %i)', (seed) => {
    const run = spawnSync(
      join(venvDir, 'bin', 'python'),
      [join(repoRoot, 'harness', 'moto_server_check.py'), String(seed)],
      { encoding: 'utf8', cwd: join(repoRoot, 'harness'), timeout: scaled(120_000) },
    );
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^ok \d{3,}/);
  });
});
