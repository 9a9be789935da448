import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../core/config/load.js';
import { ConfigError } from '../../core/errors.js';

/** The example configuration with `neo4j.databases` of target `index` (0 Enterprise, 1 Community) set. */
function withDatabases(index: number, databases: string[]): unknown {
  const config = JSON.parse(readFileSync('config/example.json', 'utf8'));
  config.targets[index].neo4j.databases = databases;
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

// Review 12 item 6: databases a target could back up but never restore, or never back up at all.
describe('deployment configuration: neo4j.databases', () => {
  it('refuses more than one database besides system on a Community target (it serves one), naming the field', () => {
    expect(problems(withDatabases(1, ['neo4j', 'second', 'system']))).toEqual([
      expect.stringMatching(
        /^targets\[1\]\.neo4j\.databases: names 2 databases besides system \(neo4j, second\), but Neo4j Community serves one/,
      ),
    ]);
    expect(problems(withDatabases(1, ['neo4j', 'second']))).toHaveLength(1);
  });

  it('refuses system alone, on either edition: such a backup holds no graph and its manifest is refused', () => {
    for (const index of [0, 1])
      expect(problems(withDatabases(index, ['system']))).toEqual([
        expect.stringMatching(
          new RegExp(`^targets\\[${index}\\]\\.neo4j\\.databases: must name a database besides system`),
        ),
      ]);
  });

  it('accepts one database (with or without system) on Community, and several on Enterprise', () => {
    expect(problems(withDatabases(1, ['neo4j', 'system']))).toEqual([]);
    expect(problems(withDatabases(1, ['graph']))).toEqual([]);
    expect(problems(withDatabases(0, ['neo4j', 'second', 'system']))).toEqual([]);
  });

  it('still refuses a database named twice', () => {
    expect(problems(withDatabases(1, ['neo4j', 'system', 'system']))).toEqual([
      expect.stringMatching(/databases: must not name a database twice/),
    ]);
  });
});
