/**
 * Issue 19 review: the runner's NEO4J_DATABASES names each database once. Twice, the Community
 * backup dumped one database into one S3 key twice at the same time (DUMP_CONCURRENCY 2) and its
 * store copy failed on a folder already copied; the configuration refuses it (neo4j.databases),
 * but a runner started by hand reads the variable alone.
 */
import { describe, expect, it } from 'vitest';
import { Neo4jEnvSchema, parseEnv } from '../../containers/runner/src/env.js';

const base = {
  TARGET: 'prod',
  BACKUP_BUCKET: 'bucket',
  BACKUP_ID: 'infrahub_backup_20261121_020000',
  NEO4J_EDITION: 'community',
};

describe('NEO4J_DATABASES (issue 19 review)', () => {
  it('refuses a database named twice, naming it', () => {
    expect(() => parseEnv(Neo4jEnvSchema, { ...base, NEO4J_DATABASES: 'neo4j,system,neo4j' })).toThrow(
      /NEO4J_DATABASES: must not name a database twice \("neo4j"\)/,
    );
  });

  it('accepts each database once (the control)', () => {
    expect(parseEnv(Neo4jEnvSchema, { ...base, NEO4J_DATABASES: 'neo4j, system' }).NEO4J_DATABASES).toEqual([
      'neo4j',
      'system',
    ]);
  });
});
