/**
 * The runner's image runs Node.js 22 (containers/runner/Dockerfile), and part of the runner runs only
 * there: the format check decompresses zstd with node:zlib (22.15+), where Node.js 20 uses fzstd.
 * These tests run test/unit/neo4j-dump-check.test.ts again on that Node.js (scripts/setup.sh installs
 * it into .cache/runner-node/ on x86_64), so the native path is tested too, with none skipped.
 * Issue 19 found that node:zlib's zstd stream alone passes a cut body and ignores what follows the
 * first frame; only a run on Node.js 22 can show the check no longer does.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runnerNodePath } from '../../harness/paths.js';
import { scaled } from '../../harness/time-scale.js';

const node = runnerNodePath();

describe("the runner's Node.js", () => {
  it("is the image's exact Node.js: the Dockerfile's NODE_VERSION is the one setup installs for these tests", () => {
    const image = /^ARG NODE_VERSION=(\S+)$/m.exec(
      readFileSync(join(repoRoot, 'containers/runner/Dockerfile'), 'utf8'),
    );
    const setup = /^runner_node_version="([^"]+)"$/m.exec(
      readFileSync(join(repoRoot, 'scripts/setup.sh'), 'utf8'),
    );
    expect(image?.[1], 'containers/runner/Dockerfile: ARG NODE_VERSION').toMatch(/^22\.\d+\.\d+$/);
    expect(image?.[1]).toBe(setup?.[1]);
    // Every Node.js stage is built FROM that version (a floating node:22 tag would not be what was tested).
    const stages = [
      ...readFileSync(join(repoRoot, 'containers/runner/Dockerfile'), 'utf8').matchAll(/^FROM node:(\S+)/gm),
    ];
    const pinned = ['$', '{NODE_VERSION}-bookworm-slim'].join('');
    expect(stages.map((m) => m[1])).toEqual([pinned, pinned]);
  });

  it.skipIf(arch() !== 'x64')('is installed by scripts/setup.sh', () => {
    expect(node, 'no .cache/runner-node: run bash scripts/setup.sh').toBeDefined();
  });

  it.skipIf(!node)(
    "runs the format check's tests with node:zlib zstd, none skipped",
    () => {
      const run = spawnSync(
        node as string,
        [
          join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'),
          'run',
          '--project',
          'unit',
          'test/unit/neo4j-dump-check.test.ts',
        ],
        { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } },
      );
      const output = `${run.stdout}\n${run.stderr}`;
      expect(run.status, output).toBe(0);
      // Every test of the file ran and passed (on Node.js 20 the node:zlib zstd ones are skipped).
      expect(output).toMatch(/Tests: [1-9]\d* passed, 0 failed, 0 skipped/);
      const version = spawnSync(node as string, ['--version'], { encoding: 'utf8' }).stdout.trim();
      expect(version).toMatch(/^v22\./);
    },
    scaled(120_000),
  );
});
