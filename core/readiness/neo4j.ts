/**
 * Waits until a Neo4j DBMS answers over Bolt and the databases a step needs are online.
 *
 * Ready means: `SHOW DATABASES YIELD name, currentStatus` on the `system` database lists every named
 * database with currentStatus `online` (Neo4j Operations Manual, "Manage databases: Listing
 * databases": currentStatus is one of online, offline, starting, stopping, store copying, initial,
 * deallocating, dirty, quarantined, unknown). Both editions answer it (Community 5.26 checked in
 * test/integration/readiness.test.ts).
 *
 * Retried ("not ready yet"): the driver's retryable errors (neo4j-driver `isRetryableError`:
 * ServiceUnavailable, which covers a refused or reset connection, SessionExpired, and every
 * `Neo.TransientError.*` such as `Neo.TransientError.General.DatabaseUnavailable` while a database
 * starts), and a database listed with another status than `online`.
 * Also retried: a connection acquisition timeout (the port accepted TCP but never answered the Bolt
 * handshake), reported as such when the bound runs out. Each attempt has its own time limit within
 * what is left of the bound (core/readiness/wait.ts).
 * Not retried: a refused login (`Neo.ClientError.Security.*`), a database the DBMS does not list, a
 * quarantined database, and any other error.
 */
import neo4j, { type Driver } from 'neo4j-driver';
import type { Logger } from '../log.js';
import { boltDriverSettings, describeBoltTlsError, type Neo4jTls, openBoltDriver } from './neo4j-tls.js';
import { firstLine, type Probe, type ReadinessOptions, waitUntilReady } from './wait.js';

export interface Neo4jEndpoint {
  /** bolt://, bolt+s:// or bolt+ssc:// (or neo4j…) URI, its scheme agreeing with `tls` (core/readiness/neo4j-tls.ts). */
  uri: string;
  username: string;
  password: string;
  /** Bolt TLS (neo4j.tls); unset only for a loopback server the runner started itself. */
  tls?: Neo4jTls;
}

export interface Neo4jReadiness {
  /** currentStatus per database, all `online`. */
  statuses: Record<string, string>;
}

/**
 * Sorts one attempt's error into retry / fatal (exported for the unit test of the rule). A
 * certificate the client refuses (untrusted CA, another host name) is fatal: waiting cannot fix it. A
 * plain connection closed by a server that requires TLS stays retried (a restarting server closes
 * connections too), its reason saying what TLS may have to do with it.
 */
export function classifyNeo4jError(err: unknown, tls?: Neo4jTls): { retry: boolean; reason: string } {
  const code = String((err as { code?: unknown })?.code ?? '');
  const reason = code ? `${code}: ${firstLine(err)}` : firstLine(err);
  if (code.startsWith('Neo.ClientError.Security.'))
    return { retry: false, reason: `login refused: ${reason}` };
  const tlsProblem = describeBoltTlsError(err, tls);
  if (tlsProblem?.startsWith("TLS: the server's certificate")) return { retry: false, reason: tlsProblem };
  if (tlsProblem) return { retry: neo4j.isRetryableError(err as never), reason: `${reason} (${tlsProblem})` };
  // The probe's driver opens one connection: its acquisition times out only when the connection was
  // made (a refused or unroutable port fails sooner with ServiceUnavailable) and the Bolt handshake
  // never completed: a server still starting, or something else listening on the port.
  if (/Connection acquisition timed out/i.test(reason))
    return {
      retry: true,
      reason: `the port accepted TCP connections but never answered the Bolt handshake (${reason})`,
    };
  if (neo4j.isRetryableError(err as never)) return { retry: true, reason };
  return { retry: false, reason };
}

async function probeOnce(
  driver: Driver,
  databases: readonly string[],
  tls: Neo4jTls | undefined,
): Promise<Probe<Neo4jReadiness>> {
  let rows: Array<{ name: string; currentStatus: string }>;
  try {
    const result = await driver.executeQuery(
      'SHOW DATABASES YIELD name, currentStatus',
      {},
      { database: 'system', routing: neo4j.routing.READ },
    );
    rows = result.records.map((r) => ({
      name: String(r.get('name')),
      currentStatus: String(r.get('currentStatus')),
    }));
  } catch (err) {
    const { retry, reason } = classifyNeo4jError(err, tls);
    return retry ? { ready: false, reason } : { ready: false, fatal: true, reason };
  }
  const statuses: Record<string, string> = {};
  for (const db of databases) {
    const row = rows.find((r) => r.name === db);
    if (!row) {
      return {
        ready: false,
        fatal: true,
        reason: `database "${db}" does not exist on this DBMS (it lists ${rows.map((r) => r.name).join(', ') || 'none'})`,
      };
    }
    if (row.currentStatus === 'quarantined') {
      return { ready: false, fatal: true, reason: `database "${db}" is quarantined (see the DBMS log)` };
    }
    statuses[db] = row.currentStatus;
  }
  const waiting = Object.entries(statuses).filter(([, status]) => status !== 'online');
  if (waiting.length > 0) {
    return { ready: false, reason: waiting.map(([db, s]) => `database "${db}" is ${s}`).join(', ') };
  }
  return { ready: true, value: { statuses } };
}

/**
 * Waits (bounded) until Neo4j at `endpoint.uri` answers and every database in `databases` is online.
 * @param databases names to wait for (`system` included if listed; an empty list waits for `system`).
 * @param options timeoutSeconds (default 300), pollMs (1000), logger.
 * @returns the databases' statuses (all `online`).
 * @throws ConfigError before connecting when `endpoint.uri` and `endpoint.tls` disagree or would send
 *   the credentials unencrypted to a non-loopback host without `tls.mode` "disable"
 *   (core/readiness/neo4j-tls.ts); DatabaseUnreachableError at once on a refused login, a server
 *   certificate refused by TLS or a missing database; after the bound, with how long it waited and
 *   the last answer.
 */
export async function waitForNeo4j(
  endpoint: Neo4jEndpoint,
  databases: readonly string[],
  options: ReadinessOptions = {},
): Promise<Neo4jReadiness> {
  // A URI and TLS setting that cannot be used (credentials in the clear) are refused before any attempt.
  boltDriverSettings(endpoint);
  const wanted = databases.length > 0 ? databases : ['system'];
  return waitUntilReady(
    `Neo4j at ${endpoint.uri}`,
    async (budgetMs) => {
      // A driver per attempt, its timeouts within the attempt's share of the bound (neo4j-driver
      // Config: connectionTimeout bounds opening the socket, connectionAcquisitionTimeout getting a
      // usable connection, handshake included), so a hung handshake cannot outlast the bound.
      const acquisition = Math.min(10_000, Math.max(500, budgetMs - 100));
      const driver = openBoltDriver(endpoint, {
        connectionTimeout: Math.min(5_000, acquisition),
        connectionAcquisitionTimeout: acquisition,
        // One attempt per probe: the wait loop is the retry.
        maxTransactionRetryTime: 0,
      });
      try {
        return await probeOnce(driver, wanted, endpoint.tls);
      } finally {
        // Not awaited without end: closing a connection whose handshake hangs must not hold the wait.
        await Promise.race([
          driver.close().catch(() => undefined),
          new Promise((r) => setTimeout(r, 1000).unref()),
        ]);
      }
    },
    options,
  ).catch((err: unknown) => {
    // Explicitly unencrypted (neo4j.tls.mode "disable") and never answered: say what TLS may have to do with it.
    const hint = endpoint.tls?.mode === 'disable' ? describeBoltTlsError(err, endpoint.tls) : undefined;
    if (hint && err instanceof Error && !err.message.includes(hint)) err.message = `${err.message} (${hint})`;
    throw err;
  });
}

export type { Logger };
