import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildRunner } from '../../containers/runner/build.js';
import { testTempDir } from '../helpers/temp.js';

// The image runs this bundle (containers/runner/Dockerfile); Docker itself is not available here.
describe('runner bundle (what the image runs)', () => {
  const bundle = join(testTempDir('runner-bundle-'), 'runner.mjs');
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [bundle, ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', ...env },
    });

  beforeAll(async () => {
    await buildRunner(bundle);
  });

  it('starts and prints its usage', () => {
    const result = run(['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(
      /backup-postgres[\s\S]*backup-neo4j[\s\S]*count-neo4j[\s\S]*backup-artifacts/,
    );
  });

  it('exits 2 naming every missing variable', () => {
    const result = run(['backup-neo4j']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/TARGET: is required[\s\S]*BACKUP_ID: is required[\s\S]*NEO4J_EDITION: /);
  });

  it('exits 2 on an unknown subcommand', () => {
    const result = run(['backup-everything']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/unknown subcommand "backup-everything"/);
  });

  it('is what the Dockerfile builds and runs, with configurable Neo4j and PostgreSQL versions', () => {
    const dockerfile = readFileSync('containers/runner/Dockerfile', 'utf8');
    expect(dockerfile).toMatch(/^ARG NEO4J_VERSION=5\.26\.\d+$/m);
    expect(dockerfile).toMatch(/^ARG NEO4J_EDITION=community$/m);
    expect(dockerfile).toMatch(/^FROM neo4j:\$\{NEO4J_VERSION\}-\$\{NEO4J_EDITION\}$/m);
    expect(dockerfile).toMatch(/"postgresql-\$\{PG_MAJOR\}"/);
    expect(dockerfile).toMatch(/RUN npx tsx containers\/runner\/build\.ts \/out\/runner\.mjs/);
    expect(dockerfile).toMatch(/ENTRYPOINT \["node", "\/opt\/runner\/runner\.mjs"\]/);
  });
});
