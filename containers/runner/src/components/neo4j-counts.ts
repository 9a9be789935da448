/**
 * Node and relationship counts per database, read over Bolt while the DBMS runs. For Community they
 * are taken right before the DBMS is stopped for the dump, for Enterprise beside the online backup.
 * A write can still come in between, so each database's counts carry the transaction id they
 * describe where the server reports one; the manifest step ties them to the dumped store's id
 * (core/backup/manifest.ts `counts_basis`), and a restore compares only counts that can describe
 * the dump. The `system` database holds users and roles, not a graph, and is not counted.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import neo4j, { type Driver } from 'neo4j-driver';
import type { Neo4jCountsResult } from '../../../../core/backup/results.js';
import { DatabaseUnreachableError } from '../../../../core/errors.js';
import type { Logger } from '../../../../core/log.js';
import { waitForNeo4j } from '../../../../core/readiness/neo4j.js';
import { type Neo4jTls, openBoltDriver } from '../../../../core/readiness/neo4j-tls.js';
import { readyTimeoutFromEnv } from '../../../../core/readiness/wait.js';
import { type RunContext, resultStamp } from '../context.js';
import { freeLoopbackPort, writeDisposableNeo4jConf } from './scratch.js';

export interface BoltConnection {
  /** bolt+s:// (verify-full), bolt+ssc:// (require) or bolt:// (disable), agreeing with `tls`. */
  uri: string;
  username: string;
  password: string;
  /**
   * Bolt TLS of the target's Neo4j (neo4j.tls, read by main.ts from NEO4J_TLS_MODE / NEO4J_TLS_CA /
   * NEO4J_TLS_CA_PEM). Unset only for a loopback server the runner starts itself (core/readiness/neo4j-tls.ts).
   */
  tls?: Neo4jTls;
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

/** A count or id as the driver returns it (a number, or its 64-bit Integer). @throws Error for anything else */
export function toNumber(value: unknown): number {
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
  const driver = openBoltDriver(connection, { connectionTimeout: 15_000 });
  try {
    const system = driver.session({ database: 'system', defaultAccessMode: neo4j.session.READ });
    let version = 'unknown';
    let edition: 'community' | 'enterprise' = 'community';
    try {
      const r = await system
        .run('CALL dbms.components() YIELD versions, edition RETURN versions[0] AS v, edition AS e')
        .catch((err: unknown) => {
          // The first query is where an unreachable server or a refused login shows.
          throw unreachable(connection, err);
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

/**
 * Node and relationship counts per database (`system` skipped), what a restore is validated with:
 * the two count queries of countDatabase per database and nothing else. A restore is validated
 * before anything else writes to the DBMS (the services start after it), so neither the server's
 * version nor the transaction ids that readGraph pairs with the counts are read, and the counts are
 * tried before any wait: on a DBMS just started each distinct query is planned on its first run,
 * and `SHOW DATABASES` (waitForGraph's probe) alone took 1.5-1.9 s there on two cores, the version
 * and transaction reads as much again: validate-neo4j took 3-5 s where the counts alone take under
 * 1 s (issue 19, `npm run bench` neo4j-restore). Only when that first try fails (the DBMS not
 * answering yet, a database not online or not there) is the DBMS waited for (waitForGraph: bounded,
 * its errors name the database and its state) and counted again.
 *
 * @returns `{ <database>: { nodes, relationships } }`
 * @throws DatabaseUnreachableError when the DBMS does not answer (within the readiness bound),
 *   refuses the credentials, or a database is missing or quarantined; a query's own failure after
 *   the wait as the driver reports it
 */
export async function readGraphCounts(
  connection: BoltConnection,
  databases: readonly string[],
  logger?: Logger,
): Promise<Neo4jCountsResult['counts']> {
  const driver = openBoltDriver(connection, { connectionTimeout: 15_000 });
  const countAll = async () => {
    const counts: Neo4jCountsResult['counts'] = {};
    for (const db of databases.filter((d) => d !== 'system')) counts[db] = await countDatabase(driver, db);
    return counts;
  };
  try {
    try {
      return await countAll();
    } catch (err) {
      if (String((err as { code?: unknown }).code ?? '').startsWith('Neo.ClientError.Security.'))
        throw unreachable(connection, err);
      logger?.info('Neo4j did not answer the counts at once: waiting for its databases', {
        databases,
        error: err instanceof Error ? err.message.split('\n')[0] : String(err),
      });
    }
    await waitForGraph(connection, databases, logger);
    return await countAll().catch((err: unknown) => {
      throw unreachable(connection, err);
    });
  } finally {
    await driver.close();
  }
}

/**
 * A refused login or an unreachable server as DatabaseUnreachableError naming the URI; any other
 * error as it is.
 */
function unreachable(connection: BoltConnection, err: unknown): unknown {
  const code = String((err as { code?: unknown }).code ?? '');
  if (code === 'ServiceUnavailable' || code.startsWith('Neo.ClientError.Security.')) {
    return new DatabaseUnreachableError(
      `cannot connect to Neo4j at ${connection.uri}: ${err instanceof Error ? err.message.split('. ')[0] : String(err)}`,
    );
  }
  return err;
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

/** Where a Community DBMS's store is, for counting it while the DBMS is stopped (countStoreOffline). */
export interface OfflineStore {
  /** NEO4J_HOME of the installation: `<home>/bin/neo4j console` runs the counting server (as in the official image). */
  home: string;
  /**
   * The DBMS's configuration folder (NEO4J_CONF; default `<home>/conf`): its neo4j.conf is kept, so
   * the counting server opens the very store the DBMS uses (`server.directories.data`) and the dump reads.
   */
  conf?: string;
  /**
   * Parent folder of the counting server's own scratch folder (a fresh `count-*` one per run, for its
   * configuration, logs and run files; removed afterwards unless the server failed before counting).
   */
  workDir: string;
  /** JVM heap and page cache of the counting server (default 512m / 128m: it only counts). */
  memory?: { heap: string; pageCache: string };
  /** Bound on the wait for its databases to come online, in seconds (default NEO4J_READY_TIMEOUT_SECONDS, else 300). */
  readyTimeoutSeconds?: number;
}

/** What countStoreOffline measured: the counts and the milliseconds of each phase (the added downtime). */
export interface OfflineCounts {
  counts: Neo4jCountsResult['counts'];
  timings: { startMs: number; countMs: number; stopMs: number };
}

/**
 * Counts nodes and relationships per database (`system` skipped) of a stopped Community DBMS's store,
 * the very store `neo4j-admin database dump` then reads: a disposable server is started on it with
 * the DBMS's own configuration plus, overriding it, every database read-only
 * (`server.databases.default_to_read_only=true`: "all existing and new databases will be in read only
 * mode, and so will prevent write queries", Neo4j Operations Manual 5, "Manage databases:
 * Configuration parameters"), Bolt on a free 127.0.0.1 port only, HTTP and HTTPS off, authentication
 * off (nothing but this process can reach loopback inside the task), no usage report, small memory,
 * and its logs and run files in `workDir`. It is waited for (core/readiness/neo4j.ts), counted with
 * the queries CountNeo4j uses, and stopped (SIGTERM, SIGKILL after 60 s) before this returns, so the
 * store lock is released for the dump; its exit is awaited even when counting fails.
 * No server can write between this count and the dump (the DBMS is stopped and this one is
 * read-only), so the counts describe exactly the dumped data; test/integration/counts-offline.test.ts
 * checks with `neo4j-admin database info` that the store's last committed transaction is unchanged.
 * Neo4j has no offline command that prints a store's counts (`neo4j-admin database info` prints
 * the store format and last committed transaction only), hence the server.
 *
 * @throws DatabaseUnreachableError when the server does not come online within the bound or exits
 * (its log is in `workDir`/logs until removed; the message names the reason)
 */
export async function countStoreOffline(
  store: OfflineStore,
  databases: readonly string[],
  logger?: Logger,
): Promise<OfflineCounts> {
  const graphs = databases.filter((d) => d !== 'system');
  const { result, timings } = await queryStoreOffline(
    store,
    graphs,
    async (driver) => {
      const counts: Neo4jCountsResult['counts'] = {};
      for (const db of graphs) counts[db] = await countDatabase(driver, db);
      return counts;
    },
    { phase: 'count', server: 'counting server', ...(logger ? { logger } : {}) },
  );
  return {
    counts: result,
    timings: { startMs: timings.startMs, countMs: timings.queryMs, stopMs: timings.stopMs },
  };
}

/**
 * Runs `query` against a stopped Community DBMS's store through a disposable read-only server (as
 * countStoreOffline describes: the DBMS's own configuration, every database read-only, Bolt on a
 * free loopback port without authentication, stopped before this returns, its exit awaited even when
 * the query fails). `databases` (besides `system`) must come online before the query runs.
 *
 * @param options.phase names its scratch folder (`<phase>-*` in workDir) and its log lines' phase
 * @param options.server the server in words, for messages ("counting server")
 * @returns the query's result and the milliseconds of each phase (start, query, stop: added downtime)
 * @throws DatabaseUnreachableError when the server does not come online within the bound or exits
 * (its log is in `workDir`/logs until removed; the message names the reason); whatever `query` throws
 */
export async function queryStoreOffline<T>(
  store: OfflineStore,
  databases: readonly string[],
  query: (driver: Driver) => Promise<T>,
  options: { phase: string; server: string; logger?: Logger },
): Promise<{ result: T; timings: { startMs: number; queryMs: number; stopMs: number } }> {
  const memory = store.memory ?? { heap: '512m', pageCache: '128m' };
  const conf = store.conf ?? join(store.home, 'conf');
  await mkdir(store.workDir, { recursive: true });
  const workDir = await mkdtemp(join(store.workDir, `${options.phase}-`));
  for (const sub of ['conf', 'logs', 'run']) await mkdir(join(workDir, sub));
  const port = await freeLoopbackPort();
  // The DBMS's own settings (data directory, store options, plugins) stay; relative directory
  // settings still resolve against NEO4J_HOME.
  await writeDisposableNeo4jConf({
    baseConfFile: join(conf, 'neo4j.conf'),
    confDir: join(workDir, 'conf'),
    workDir,
    port,
    memory,
    extra: { 'server.databases.default_to_read_only': 'true' },
    comment: `${options.server} of the stopped store: read-only, loopback`,
  });
  const env = {
    ...process.env,
    NEO4J_HOME: store.home,
    NEO4J_CONF: join(workDir, 'conf'),
    HEAP_SIZE: memory.heap,
  };
  // Plain Bolt on loopback, no `tls`: a server this task started itself, with authentication off,
  // that nothing outside the task can reach (core/readiness/neo4j-tls.ts allows exactly that).
  const connection: BoltConnection = {
    uri: `bolt://127.0.0.1:${port}`,
    username: 'neo4j',
    password: 'offline-count',
    readyTimeoutSeconds: store.readyTimeoutSeconds ?? readyTimeoutFromEnv('NEO4J_READY_TIMEOUT_SECONDS'),
  };
  const log = options.logger?.child({
    component: 'database',
    phase: options.phase === 'count' ? 'offline-count' : options.phase,
  });
  const started = Date.now();
  const server = spawn(join(store.home, 'bin', 'neo4j'), ['console'], { env, stdio: 'ignore' });
  let exited = false;
  const gone = new Promise<void>((resolve) => {
    server.once('exit', () => {
      exited = true;
      resolve();
    });
    server.once('error', () => {
      exited = true;
      resolve();
    });
  });
  const stop = async () => {
    if (!exited) {
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 60_000);
      await gone;
      clearTimeout(timer);
    }
  };
  let startMs = 0;
  let queryMs = 0;
  let stopMs = 0;
  let done = false;
  let result: T;
  try {
    const graphs = databases.filter((d) => d !== 'system');
    await waitForNeo4j(connection, [...graphs, 'system'], {
      timeoutSeconds: connection.readyTimeoutSeconds ?? 300,
      pollMs: 500,
      stopIf: () =>
        exited ? `the ${options.server} exited (see its log in ${join(workDir, 'logs')})` : undefined,
      ...(log ? { logger: log } : {}),
    });
    startMs = Date.now() - started;
    const queryStarted = Date.now();
    const driver = openBoltDriver(connection, { connectionTimeout: 15_000 });
    try {
      result = await query(driver);
      done = true;
    } finally {
      await driver.close();
    }
    queryMs = Date.now() - queryStarted;
  } finally {
    const stopStarted = Date.now();
    await stop();
    stopMs = Date.now() - stopStarted;
    log?.info(`${options.server} stopped`, { startMs, queryMs, stopMs });
    // The folder (its log says why) is kept only when the server failed before the query was done.
    if (done) await rm(workDir, { recursive: true, force: true });
  }
  return { result, timings: { startMs, queryMs, stopMs } };
}
