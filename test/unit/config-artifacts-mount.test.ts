import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../core/config/load.js';
import { ConfigError } from '../../core/errors.js';

/** The example configuration with the Community target's (index 1) path artifact storage changed. */
function withArtifacts(change: Record<string, unknown>): unknown {
  const config = JSON.parse(readFileSync('config/example.json', 'utf8'));
  config.targets[1].artifacts = { ...config.targets[1].artifacts, ...change };
  return config;
}

function problems(raw: unknown): string[] {
  try {
    parseDeploymentConfig(raw, 'test', { scheduleCheckFrom: null });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  return [];
}

// Final review of issue 13: mount points and access point roots accepted by the schema that would
// hide the runner's own mounts or fail at `cdk deploy`.
describe('deployment configuration: path artifact storage mounts', () => {
  it('refuses a mount at / or at the Community store /data (or below it), naming the field', () => {
    for (const path of ['/', '/data', '/data/artifacts'])
      expect(problems(withArtifacts({ path })), path).toEqual([
        expect.stringMatching(/^targets\[1\]\.artifacts\.path: must not be/),
      ]);
    for (const path of ['/opt/infrahub/storage', '/database', '/srv/data'])
      expect(problems(withArtifacts({ path })), path).toEqual([]);
  });

  it("refuses an access point root (posixUser) over EFS's 100 characters or 4 levels; without posixUser it is a volume root", () => {
    const posixUser = { uid: 0, gid: 0 };
    const long = `/${'a'.repeat(120)}`;
    expect(problems(withArtifacts({ posixUser, efsRootDirectory: long }))).toEqual([
      expect.stringMatching(
        /^targets\[1\]\.artifacts\.efsRootDirectory: is 121 characters long; .* at most 100/,
      ),
    ]);
    expect(problems(withArtifacts({ posixUser, efsRootDirectory: '/a/b/c/d/e' }))).toEqual([
      expect.stringMatching(
        /^targets\[1\]\.artifacts\.efsRootDirectory: has 5 directory levels; .* at most 4/,
      ),
    ]);
    expect(problems(withArtifacts({ posixUser, efsRootDirectory: '/a/b/c/d' }))).toEqual([]);
    expect(problems(withArtifacts({ efsRootDirectory: '/a/b/c/d/e' }))).toEqual([]);
  });
});

describe('deployment configuration: schedules', () => {
  it('refuses a schedule that names a target twice, naming the entry (it would run twice and share a schedule name)', () => {
    const config = JSON.parse(readFileSync('config/example.json', 'utf8'));
    config.schedules.push({
      name: 'dr',
      kind: 'restore-drill',
      expression: 'cron(0 5 ? * SUN *)',
      targets: ['infrahub-prod', 'infrahub-prod'],
    });
    const found = problems(config);
    expect(
      found.some((p) =>
        /^schedules\[\d+\]\.targets\[1\]: names target "infrahub-prod" a second time/.test(p),
      ),
      found.join('\n'),
    ).toBe(true);
  });
});
