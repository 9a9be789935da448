/**
 * Node and relationship counts per database, read over Bolt while the DBMS runs. For Community they
 * are taken right before the DBMS is stopped for the dump (nothing writes then: the preflight gate
 * holds Infrahub's tasks), for Enterprise beside the online backup. A restore is checked against them.
 * The `system` database holds users and roles, not a graph, and is not counted.
 */
import neo4j from 'neo4j-driver';
import type { Neo4jCountsResult } from '../../../../core/backup/results.js';
import { DatabaseUnreachableError } from '../../../../core/errors.js';
import type { Logger } from '../../../../core/log.js';
import { waitForNeo4j } from '../../../../core/readiness/neo4j.js';
import { readyTimeoutFromEnv } from '../../../../core/readiness/wait.js';
import { type RunContext, resultStamp } from '../context.js';

export interface BoltConnection {
  uri: string;
  username: string;
  password: string;
  /**
   * How long a step waits for the DBMS to answer with its databases online before it gives up, in
   * seconds (core/readiness/neo4j.ts). Default: NEO4J_READY_TIMEOUT_SECONDS, else 300.
   */
  readyTimeoutSeconds?: number;
}

/**
 * Waits (bounded) until the DBMS answers and `databases` are online: every step that talks to Neo4j
 * over Bolt calls this first, so a DBMS that ECS reports RUNNING but that is still opening its
 * databases is waited for, not reported unreachable.
 * @throws DatabaseUnreachableError (refused login at once; otherwise after the bound, naming it).
 */
export async function waitForGraph(
  connection: BoltConnection,
  databases: readonly string[],
  logger?: Logger,
): Promise<void> {
  await waitForNeo4j(connection, databases, {
    timeoutSeconds: connection.readyTimeoutSeconds ?? readyTimeoutFromEnv('NEO4J_READY_TIMEOUT_SECONDS'),
    ...(logger ? { logger } : {}),
  });
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (neo4j.isInt(value)) return value.toNumber();
  throw new Error(`not a count: ${String(value)}`);
}

/**
 * Server version and edition, and counts per database (`system` skipped), over Bolt, once the DBMS
 * answers with those databases online (waitForGraph).
 */
export async function readGraph(
  connection: BoltConnection,
  databases: readonly string[],
  logger?: Logger,
): Promise<{ version: string; edition: 'community' | 'enterprise'; counts: Neo4jCountsResult['counts'] }> {
  await waitForGraph(connection, databases, logger);
  const driver = neo4j.driver(connection.uri, neo4j.auth.basic(connection.username, connection.password), {
    connectionTimeout: 15_000,
  });
  try {
    const system = driver.session({ database: 'system', defaultAccessMode: neo4j.session.READ });
    let version = 'unknown';
    let edition: 'community' | 'enterprise' = 'community';
    try {
      const r = await system
        .run('CALL dbms.components() YIELD versions, edition RETURN versions[0] AS v, edition AS e')
        .catch((err: unknown) => {
          // The first query is where an unreachable server or a refused login shows.
          const code = String((err as { code?: unknown }).code ?? '');
          if (code === 'ServiceUnavailable' || code.startsWith('Neo.ClientError.Security.')) {
            throw new DatabaseUnreachableError(
              `cannot connect to Neo4j at ${connection.uri}: ${err instanceof Error ? err.message.split('. ')[0] : String(err)}`,
            );
          }
          throw err;
        });
      version = String(r.records[0]?.get('v') ?? 'unknown');
      edition = r.records[0]?.get('e') === 'enterprise' ? 'enterprise' : 'community';
    } finally {
      await system.close();
    }
    const counts: Neo4jCountsResult['counts'] = {};
    for (const db of databases.filter((d) => d !== 'system')) {
      const session = driver.session({ database: db, defaultAccessMode: neo4j.session.READ });
      try {
        const nodes = await session.run('MATCH (n) RETURN count(n) AS c');
        const rels = await session.run('MATCH ()-[r]->() RETURN count(r) AS c');
        counts[db] = {
          nodes: toNumber(nodes.records[0]?.get('c')),
          relationships: toNumber(rels.records[0]?.get('c')),
        };
      } finally {
        await session.close();
      }
    }
    return { version, edition, counts };
  } finally {
    await driver.close();
  }
}

/** Counts per database only (what a restore is validated with). */
export async function readGraphCounts(
  connection: BoltConnection,
  databases: readonly string[],
  logger?: Logger,
): Promise<Neo4jCountsResult['counts']> {
  return (await readGraph(connection, databases, logger)).counts;
}

export async function countGraph(
  ctx: RunContext,
  connection: BoltConnection,
  databases: readonly string[],
): Promise<Neo4jCountsResult> {
  const startedAt = new Date().toISOString();
  const { version, edition, counts } = await readGraph(connection, databases, ctx.logger);
  ctx.logger.info('graph counted', { component: 'database-counts', counts });
  return {
    ...resultStamp(ctx, startedAt),
    component: 'database-counts',
    server: { version, edition },
    counts,
  };
}
