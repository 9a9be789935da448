import neo4j from 'neo4j-driver';
import pg from 'pg';
import type { GraphCounts } from '../core/backup/results.js';
import type { Neo4jServer } from './neo4j.js';
import type { PostgresServer } from './postgres.js';

/** Row counts per table of the sample task-manager database. */
export type TableCounts = Record<string, number>;

/**
 * Creates a `prefect` database shaped like Prefect's (flow runs, task runs, logs) with
 * deterministic contents, so a restore can be checked against known counts.
 */
export async function seedPrefect(
  server: PostgresServer,
  options: { database?: string; flowRuns?: number } = {},
): Promise<TableCounts> {
  const database = options.database ?? 'prefect';
  const flowRuns = options.flowRuns ?? 200;
  const admin = new pg.Client({ connectionString: server.url('postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${database}"`);
  } finally {
    await admin.end();
  }
  const client = new pg.Client({ connectionString: server.url(database) });
  await client.connect();
  try {
    await client.query(`
      CREATE TABLE flow_run (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        state_type text NOT NULL,
        created timestamptz NOT NULL DEFAULT now(),
        parameters jsonb NOT NULL DEFAULT '{}'
      );
      CREATE TABLE task_run (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        flow_run_id uuid NOT NULL REFERENCES flow_run(id) ON DELETE CASCADE,
        task_key text NOT NULL,
        state_type text NOT NULL
      );
      CREATE TABLE log (
        id bigserial PRIMARY KEY,
        flow_run_id uuid REFERENCES flow_run(id) ON DELETE CASCADE,
        level int NOT NULL,
        message text NOT NULL
      );
      CREATE INDEX log_flow_run_id ON log (flow_run_id);
    `);
    await client.query(
      `INSERT INTO flow_run (name, state_type, parameters)
       SELECT 'git-repository-sync-' || g, (ARRAY['COMPLETED','FAILED','CANCELLED'])[1 + g % 3],
              jsonb_build_object('branch', 'main', 'attempt', g)
       FROM generate_series(1, $1::int) AS g`,
      [flowRuns],
    );
    await client.query(
      `INSERT INTO task_run (flow_run_id, task_key, state_type)
       SELECT f.id, 'generate-artifact-' || t, 'COMPLETED' FROM flow_run f, generate_series(1, 3) AS t`,
    );
    await client.query(
      `INSERT INTO log (flow_run_id, level, message)
       SELECT f.id, 20, 'step ' || l || ' of ' || f.name FROM flow_run f, generate_series(1, 5) AS l`,
    );
    return await countTables(server, database);
  } finally {
    await client.end();
  }
}

/**
 * Exact row counts of every table in the public schema, keyed `public.<table>` as the manifest keys
 * them. Written independently of the runner's counting, so tests check one against the other.
 */
export async function countTables(server: PostgresServer, database: string): Promise<TableCounts> {
  const client = new pg.Client({ connectionString: server.url(database) });
  await client.connect();
  try {
    const { rows } = await client.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    const counts: TableCounts = {};
    for (const { table_name } of rows) {
      const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${table_name}"`);
      counts[`public.${table_name}`] = Number(result.rows[0]?.n ?? 0);
    }
    return counts;
  } finally {
    await client.end();
  }
}

export type { GraphCounts };

/**
 * Creates a small graph shaped like Infrahub's (branches, nodes, attributes, relationships), with
 * its single `Root` node, whose `uuid` is Infrahub's deployment id (`rootUuid`, default "root").
 */
export async function seedGraph(
  server: Neo4jServer,
  options: { devices?: number; rootUuid?: string } = {},
): Promise<GraphCounts> {
  const devices = options.devices ?? 100;
  const session = server.driver().session({ database: 'neo4j' });
  try {
    await session.run(
      `CREATE (root:Root {uuid: $rootUuid})
       CREATE (main:Branch {name: 'main', is_default: true})-[:IS_PART_OF]->(root)
       WITH main
       UNWIND range(1, $devices) AS i
       CREATE (d:Node {kind: 'InfraDevice', uuid: 'device-' + i})-[:IS_PART_OF {branch: 'main'}]->(main)
       CREATE (d)-[:HAS_ATTRIBUTE {branch: 'main'}]->(:Attribute {name: 'name', value: 'switch-' + i})
       CREATE (d)-[:HAS_ATTRIBUTE {branch: 'main'}]->(:Attribute {name: 'role', value: 'leaf'})`,
      // The driver sends JS numbers as floats; range() needs an integer.
      { devices: neo4j.int(devices), rootUuid: options.rootUuid ?? 'root' },
    );
  } finally {
    await session.close();
  }
  return countGraph(server);
}

export async function countGraph(server: Neo4jServer, database = 'neo4j'): Promise<GraphCounts> {
  const session = server.driver().session({ database });
  try {
    const nodes = await session.run('MATCH (n) RETURN count(n) AS n');
    const relationships = await session.run('MATCH ()-[r]->() RETURN count(r) AS n');
    return {
      nodes: toNumber(nodes.records[0]?.get('n')),
      relationships: toNumber(relationships.records[0]?.get('n')),
    };
  } finally {
    await session.close();
  }
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (value && typeof value === 'object' && 'toNumber' in value)
    return (value as { toNumber(): number }).toNumber();
  throw new Error(`not a number: ${String(value)}`);
}
