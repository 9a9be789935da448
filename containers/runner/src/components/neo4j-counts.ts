/**
 * Node and relationship counts per database, read over Bolt while the DBMS runs. For Community they
 * are taken right before the DBMS is stopped for the dump, for Enterprise beside the online backup.
 * A write can still come in between, so each database's counts carry the transaction id they
 * describe where the server reports one; the manifest step ties them to the dumped store's id
 * (core/backup/manifest.ts `counts_basis`), and a restore compares only counts that can describe
 * the dump. The `system` database holds users and roles, not a graph, and is not counted.
 */
import neo4j, { type Driver } from 'neo4j-driver';
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
): Promise<{
  version: string;
  edition: 'community' | 'enterprise';
  counts: Neo4jCountsResult['counts'];
  transactions?: Record<string, number>;
}> {
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
    // Counts and the transaction id they describe: the id is read before and after counting, and a
    // database is counted again (up to 3 times) when a write moved it in between.
    const counts: Neo4jCountsResult['counts'] = {};
    const transactions: Record<string, number> = {};
    for (const db of databases.filter((d) => d !== 'system')) {
      for (let attempt = 1; ; attempt += 1) {
        const before = await lastCommittedTxn(driver, db);
        counts[db] = await countDatabase(driver, db);
        const after = await lastCommittedTxn(driver, db);
        if (before !== undefined && before === after) {
          transactions[db] = before;
          break;
        }
        // No id (Community answers null): the counts stand without one (manifest counts_basis "unknown").
        if (before === undefined || after === undefined || attempt >= 3) break;
      }
    }
    return { version, edition, counts, ...(Object.keys(transactions).length > 0 ? { transactions } : {}) };
  } finally {
    await driver.close();
  }
}

/** Node and relationship counts of one database, in one read transaction each. */
async function countDatabase(driver: Driver, db: string): Promise<{ nodes: number; relationships: number }> {
  const session = driver.session({ database: db, defaultAccessMode: neo4j.session.READ });
  try {
    const nodes = await session.run('MATCH (n) RETURN count(n) AS c');
    const rels = await session.run('MATCH ()-[r]->() RETURN count(r) AS c');
    return {
      nodes: toNumber(nodes.records[0]?.get('c')),
      relationships: toNumber(rels.records[0]?.get('c')),
    };
  } finally {
    await session.close();
  }
}

/**
 * The database's last committed transaction id, `SHOW DATABASES YIELD name, lastCommittedTxn` on
 * `system` (Neo4j Operations Manual, "Listing databases"); undefined where the server reports null
 * (Neo4j Community 5.26 does, checked in test/integration/counts-describe-dump.test.ts).
 */
export async function lastCommittedTxn(driver: Driver, db: string): Promise<number | undefined> {
  const result = await driver.executeQuery(
    'SHOW DATABASES YIELD name, lastCommittedTxn WHERE name = $db RETURN lastCommittedTxn AS tx',
    { db },
    { database: 'system', routing: neo4j.routing.READ },
  );
  const tx = result.records[0]?.get('tx');
  return tx === null || tx === undefined ? undefined : toNumber(tx);
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
  const { version, edition, counts, transactions } = await readGraph(connection, databases, ctx.logger);
  ctx.logger.info('graph counted', { component: 'database-counts', counts, transactions });
  return {
    ...resultStamp(ctx, startedAt),
    component: 'database-counts',
    server: { version, edition },
    counts,
    ...(transactions ? { transactions } : {}),
  };
}
