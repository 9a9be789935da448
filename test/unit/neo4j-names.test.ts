/**
 * The one Neo4j naming rule (core/neo4j-names.ts; Neo4j Operations Manual, "Naming rules for
 * databases") and its users (issue 17, item 4): the configuration, manifests, the restore input and the
 * runner's environment hold names to the same rule, and refusals of an unknown target share one wording.
 */
import { describe, expect, it } from 'vitest';
import { RestoreNeo4jEnvSchema } from '../../containers/runner/src/env.js';
import { configuredTarget, notConfigured } from '../../core/config/schema.js';
import { ErrorNames } from '../../core/errors.js';
import {
  Neo4jDatabaseNameSchema,
  neo4jDatabaseNameProblem,
  RestoreDatabaseNameSchema,
  restoreDatabaseNameProblem,
} from '../../core/neo4j-names.js';

describe("Neo4j's naming rule for databases", () => {
  it('takes 3 to 63 characters', () => {
    expect(neo4jDatabaseNameProblem('ab')).toMatch(/3-63/);
    expect(neo4jDatabaseNameProblem('abc')).toBeUndefined();
    expect(neo4jDatabaseNameProblem(`a${'b'.repeat(62)}`)).toBeUndefined();
    expect(neo4jDatabaseNameProblem(`a${'b'.repeat(63)}`)).toMatch(/3-63/);
  });

  it('starts with an ASCII letter and goes on with letters, digits, dots or dashes', () => {
    for (const ok of ['neo4j', 'infrahub-2', 'blue.db', 'a1-2.b3'])
      expect(neo4jDatabaseNameProblem(ok), ok).toBeUndefined();
    // A digit first is Neo4j 2025.01 and later only; an underscore is reserved; the rest is not ASCII.
    for (const bad of ['1abc', '_abc', '-abc', 'a_b', 'a b', 'abé', 'a/b', 'a`b'])
      expect(neo4jDatabaseNameProblem(bad), bad).toMatch(/must be a Neo4j database name/);
  });

  it('does not end with a dot or a dash', () => {
    expect(neo4jDatabaseNameProblem('neo4j.')).toMatch(/not ending with/);
    expect(neo4jDatabaseNameProblem('neo4j-')).toMatch(/not ending with/);
  });

  it('takes the lowercase form only (Neo4j normalises names to lowercase; a dump is named by it)', () => {
    expect(neo4jDatabaseNameProblem('Neo4j')).toBeDefined();
  });

  it('reserves names starting with "system", except Neo4j\'s own system database', () => {
    expect(neo4jDatabaseNameProblem('system')).toBeUndefined();
    for (const bad of ['system2', 'system.db', 'system-alias'])
      expect(neo4jDatabaseNameProblem(bad), bad).toMatch(/reserved by Neo4j/);
  });

  it('refuses system itself as a name a restore creates or switches', () => {
    expect(restoreDatabaseNameProblem('system')).toMatch(/system database/);
    expect(restoreDatabaseNameProblem('blue')).toBeUndefined();
    expect(restoreDatabaseNameProblem('blue-')).toMatch(/must be a Neo4j database name/);
  });

  it('is the schemas: the issue is the problem', () => {
    expect(Neo4jDatabaseNameSchema.safeParse('system').success).toBe(true);
    expect(RestoreDatabaseNameSchema.safeParse('system').success).toBe(false);
    expect(Neo4jDatabaseNameSchema.safeParse('abc-').error?.issues[0]?.message).toMatch(/not ending with/);
  });

  // The runner held NEO4J_ALIAS to a looser copy (/^[a-z][a-z0-9.-]{2,62}$/): an alias ending with a
  // dash, or a reserved one, got as far as a Cypher command.
  it("is the runner's rule for the alias and the new database it restores to", () => {
    const alias = RestoreNeo4jEnvSchema.shape.NEO4J_ALIAS;
    const created = RestoreNeo4jEnvSchema.shape.NEW_DATABASE_NAME;
    expect(alias.parse(undefined)).toBe('infrahub');
    for (const bad of ['infra-', 'system', 'system-alias', 'Infrahub']) {
      expect(alias.safeParse(bad).success, bad).toBe(false);
      expect(created.safeParse(bad).success, bad).toBe(false);
    }
    expect(alias.safeParse('infrahub.live').success).toBe(true);
  });
});

describe('an unknown target, in one wording', () => {
  const config = { targets: [{ name: 'infrahub-prod' }, { name: 'infrahub-lab' }] } as unknown as Parameters<
    typeof configuredTarget
  >[0];

  it('names the unknown targets and the known ones', () => {
    expect(notConfigured(['a'], ['x', 'y'])).toBe('"a" is not configured (known: x, y)');
    expect(notConfigured(['a', 'b'], ['x'])).toBe('"a", "b" are not configured (known: x)');
    const many = Array.from({ length: 12 }, (_, i) => `t${i}`);
    expect(notConfigured(['a'], many)).toMatch(/known: t0, .*, t9 and 2 more\)$/);
  });

  it('finds a configured target, or refuses naming the input, the field and the known targets', () => {
    expect(configuredTarget(config, 'infrahub-lab', 'restore input').name).toBe('infrahub-lab');
    expect(() => configuredTarget(config, 'nope', 'restore input')).toThrow(
      /Invalid restore input:[\s\S]*target: "nope" is not configured \(known: infrahub-prod, infrahub-lab\)/,
    );
    try {
      configuredTarget(config, 'nope', 'restore input');
    } catch (err) {
      expect((err as Error).name).toBe(ErrorNames.InvalidInput);
    }
  });
});
