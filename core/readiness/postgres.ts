/**
 * Waits until a PostgreSQL server accepts a connection to a database and answers a query.
 *
 * Retried ("not ready yet"): connection errors from the socket (ECONNREFUSED, ECONNRESET,
 * ETIMEDOUT, EHOSTUNREACH, ENOTFOUND while DNS catches up, EAI_AGAIN), the client's own connection
 * timeout, and the server's SQLSTATEs for a server that is starting or shutting down: 57P03
 * cannot_connect_now ("the database system is starting up"), 57P01 admin_shutdown, 57P02
 * crash_shutdown, 53300 too_many_connections, and class 08 (connection exception)
 * (PostgreSQL documentation, Appendix A, "PostgreSQL Error Codes").
 * Not retried: 28P01 / 28000 (authentication), 3D000 (the database does not exist), TLS problems
 * (a certificate the CA bundle refuses, a server without TLS, a server refusing unencrypted logins:
 * core/readiness/postgres-tls.ts), anything else.
 */
import pg from 'pg';
import { describeTlsError, type PostgresTls, pgSslOption } from './postgres-tls.js';
import { firstLine, type Probe, type ReadinessOptions, waitUntilReady } from './wait.js';

export interface PostgresEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** TLS of the connection (postgres.tls); none is no TLS. */
  tls?: PostgresTls;
}

const RETRY_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  '57P03',
  '57P01',
  '57P02',
  '53300',
]);

/** Sorts one attempt's error into retry / fatal (exported for the unit test of the rule). */
export function classifyPostgresError(err: unknown, tls?: PostgresTls): { retry: boolean; reason: string } {
  const code = String((err as { code?: unknown })?.code ?? '');
  const message = firstLine(err);
  const reason = code ? `${code}: ${message}` : message;
  const tlsProblem = describeTlsError(err, tls);
  if (tlsProblem) return { retry: false, reason: tlsProblem };
  if (code === '28P01' || code === '28000') return { retry: false, reason: `login refused: ${reason}` };
  if (RETRY_CODES.has(code) || code.startsWith('08')) return { retry: true, reason };
  // node-postgres's own timeout and a socket closed during the startup handshake carry no code.
  if (/timeout expired|Connection terminated|Query read timeout/i.test(message))
    return { retry: true, reason };
  return { retry: false, reason };
}

async function probeOnce(
  endpoint: PostgresEndpoint,
  appName: string,
): Promise<Probe<{ serverVersion: string }>> {
  // query_timeout: a server (or a network) that accepted the connection and went silent is a
  // failed probe, retried until the readiness bound, never a wait without end.
  const { tls, ...connection } = endpoint;
  const client = new pg.Client({
    ...connection,
    ssl: pgSslOption(tls, endpoint.host),
    connectionTimeoutMillis: 5_000,
    query_timeout: 10_000,
    keepAlive: true,
    application_name: appName,
  });
  // An error after connect (the server going down) must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return { ready: true, value: { serverVersion: String(rows[0]?.v ?? '') } };
  } catch (err) {
    const { retry, reason } = classifyPostgresError(err, tls);
    return retry ? { ready: false, reason } : { ready: false, fatal: true, reason };
  } finally {
    // end() waits for the server to close the socket: a silent one never does (bounded).
    await Promise.race([
      client.end().catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, 2_000).unref()),
    ]);
  }
}

/**
 * Waits (bounded) until PostgreSQL at host:port accepts `endpoint.user` on `endpoint.database` and answers.
 * @param options timeoutSeconds (default 300), pollMs (1000), logger.
 * @returns the server's version string.
 * @throws DatabaseUnreachableError at once on a refused login or a missing database; after the bound,
 *   with how long it waited and the last answer.
 */
export async function waitForPostgres(
  endpoint: PostgresEndpoint,
  options: ReadinessOptions & { appName?: string } = {},
): Promise<{ serverVersion: string }> {
  return waitUntilReady(
    `PostgreSQL at ${endpoint.host}:${endpoint.port} (database ${endpoint.database})`,
    () => probeOnce(endpoint, options.appName ?? 'infrahub-backup'),
    options,
  );
}
