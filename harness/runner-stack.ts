/**
 * The servers a runner test (the runner's real entrypoint, a child process) backs up from and to:
 * PostgreSQL and/or Neo4j Community, seeded, and the S3 server (moto) with a versioned bucket,
 * optionally behind the fault proxy. Started together, stopped together by PID.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { HarnessStartError } from './errors.js';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';
import { type Neo4jServer, startNeo4j } from './neo4j.js';
import { type PostgresServer, startPostgres } from './postgres.js';
import { createVersionedBucket, type S3Server, startS3 } from './s3.js';
import { type GraphCounts, seedGraph, seedPrefect, type TableCounts } from './sample-data.js';

export interface RunnerStackOptions {
  /** The versioned bucket created on the S3 server. */
  bucket: string;
  /**
   * Start PostgreSQL with a `prefect` database of this many flow runs (seedPrefect). `bulkRows`
   * adds a table `blob` of that many rows of 96 hex characters each (about 100 bytes a row
   * uncompressed: 400 000 rows make a dump of about 40 MiB, many 5 MiB parts).
   */
  postgres?: { flowRuns: number; bulkRows?: number };
  /** Start Neo4j Community with a graph of this many devices (seedGraph). */
  neo4j?: { devices: number };
  /** Put the fault proxy in front of the S3 server. */
  faultProxy?: boolean;
}

/**
 * The started servers. A server not asked for in the options throws HarnessStartError when read,
 * so a test that uses it without starting it fails with a clear message.
 */
export interface RunnerStack {
  postgres: PostgresServer;
  neo4j: Neo4jServer;
  /** The S3 server (moto). */
  server: S3Server;
  /** A client of the S3 server (not through the proxy). */
  s3: S3Client;
  proxy: FaultProxy;
  /** What was seeded: the Prefect tables' row counts and the graph's counts (throw when not seeded). */
  seeded: { readonly tables: TableCounts; readonly graph: GraphCounts };
  /** Stops the proxy and the servers; never throws. */
  stop(): Promise<void>;
}

/**
 * Starts the servers asked for in parallel, then the proxy, creates the bucket and seeds the
 * databases. Anything started is stopped again when a later step fails (the error is rethrown).
 * Starting Neo4j takes tens of seconds: call it from a beforeAll with a generous time limit.
 */
export async function startRunnerStack(options: RunnerStackOptions): Promise<RunnerStack> {
  let postgres: PostgresServer | undefined;
  let neo4j: Neo4jServer | undefined;
  let server: S3Server | undefined;
  let proxy: FaultProxy | undefined;
  const stop = async () => {
    await proxy?.stop().catch(() => undefined);
    await Promise.allSettled([postgres?.stop(), neo4j?.stop(), server?.stop()]);
  };
  try {
    const started = await Promise.allSettled([
      options.postgres ? startPostgres() : undefined,
      options.neo4j ? startNeo4j() : undefined,
      startS3(),
    ] as const);
    const [pgStart, neo4jStart, s3Start] = started;
    if (pgStart.status === 'fulfilled') postgres = pgStart.value;
    if (neo4jStart.status === 'fulfilled') neo4j = neo4jStart.value;
    if (s3Start.status === 'fulfilled') server = s3Start.value;
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    if (!server) throw new HarnessStartError('S3 (moto)', 'no server was returned');
    if (options.faultProxy) proxy = await startFaultProxy(server.endpoint);
    const s3 = server.client();
    await createVersionedBucket(s3, options.bucket);
    let tables: TableCounts | undefined;
    let graph: GraphCounts | undefined;
    if (postgres && options.postgres) {
      tables = await seedPrefect(postgres, { flowRuns: options.postgres.flowRuns });
      if (options.postgres.bulkRows) await seedBulkTable(postgres, options.postgres.bulkRows);
    }
    if (neo4j && options.neo4j) graph = await seedGraph(neo4j, { devices: options.neo4j.devices });
    const required = <T>(value: T | undefined, what: string): T => {
      if (value === undefined)
        throw new HarnessStartError(what, 'not started: ask startRunnerStack for it in its options');
      return value;
    };
    const s3Server = server;
    return {
      get postgres() {
        return required(postgres, 'PostgreSQL');
      },
      get neo4j() {
        return required(neo4j, 'Neo4j');
      },
      server: s3Server,
      s3,
      get proxy() {
        return required(proxy, 'the fault proxy');
      },
      seeded: {
        get tables() {
          return required(tables, 'PostgreSQL (seeded)');
        },
        get graph() {
          return required(graph, 'Neo4j (seeded)');
        },
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Adds table `blob` (id, v: 96 hex characters) of `rows` rows to the `prefect` database. */
async function seedBulkTable(server: PostgresServer, rows: number): Promise<void> {
  // CREATE TABLE AS takes no bind parameters: the count is checked, then written into the statement.
  if (!Number.isSafeInteger(rows) || rows < 0) throw new RangeError(`bulk rows must be a count, not ${rows}`);
  const client = new pg.Client({ connectionString: server.url('prefect') });
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE blob AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) AS v FROM generate_series(1, ${rows}) g`,
    );
  } finally {
    await client.end();
  }
}
