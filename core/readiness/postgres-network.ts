/**
 * How every PostgreSQL connection of the runner is bounded against a network that goes silent (a
 * peer that vanished without a FIN or RST, a stateful firewall that dropped the flow): one place for
 * pg_dump / pg_restore (libpq) and node-postgres, so both sides of a backup or restore give up alike.
 *
 * Settings (runner environment; positive integers):
 * - `PGCONNECT_TIMEOUT` (s, default 15): libpq's connect_timeout, node-postgres's connectionTimeoutMillis.
 * - `PG_TCP_KEEPALIVES_IDLE_SECONDS` (30), `PG_TCP_KEEPALIVES_INTERVAL_SECONDS` (10),
 *   `PG_TCP_KEEPALIVES_COUNT` (6): TCP keepalives on every connection (libpq `keepalives=1`,
 *   `keepalives_idle`, `keepalives_interval`, `keepalives_count`; node-postgres `keepAlive` with
 *   `keepAliveInitialDelayMillis`; Node.js sets the interval and count from the kernel defaults):
 *   an idle connection to a vanished peer ends after about idle + interval × count (90 s).
 * - `PG_TCP_USER_TIMEOUT_MS` (60000): libpq's `tcp_user_timeout` (Linux TCP_USER_TIMEOUT): data sent
 *   and left unacknowledged that long ends the connection (pg_restore sending to a vanished server).
 * - `PG_STALL_TIMEOUT_SECONDS` (600): pg_dump that sends no byte for that long while the runner waits
 *   for one is stopped (DatabaseUnreachable). It also covers what TCP cannot see: a peer (a proxy, a
 *   load balancer) that keeps the connection open and acknowledged but forwards nothing.
 * - `PG_QUERY_TIMEOUT_SECONDS` (3600): node-postgres's `query_timeout` (client side: it holds when
 *   the server cannot answer at all, unlike the server's statement_timeout) for each query the
 *   runner sends (counts, catalogue reads, the snapshot transaction).
 *
 * The libpq keywords are documented in the PostgreSQL manual, "Database Connection Control
 * Functions" / "Parameter Key Words"; only connect_timeout has an environment variable
 * (PGCONNECT_TIMEOUT, "Environment Variables"), so the others are passed in the `--dbname`
 * connection string (libpqConnParams). node-postgres's options: node-postgres docs, "Client".
 */
import { RunnerConfigError } from '../errors.js';

export interface PostgresNetworkBounds {
  connectTimeoutSeconds: number;
  keepalivesIdleSeconds: number;
  keepalivesIntervalSeconds: number;
  keepalivesCount: number;
  tcpUserTimeoutMs: number;
  stallTimeoutSeconds: number;
  queryTimeoutSeconds: number;
}

const SETTINGS: Record<keyof PostgresNetworkBounds, [string, number]> = {
  connectTimeoutSeconds: ['PGCONNECT_TIMEOUT', 15],
  keepalivesIdleSeconds: ['PG_TCP_KEEPALIVES_IDLE_SECONDS', 30],
  keepalivesIntervalSeconds: ['PG_TCP_KEEPALIVES_INTERVAL_SECONDS', 10],
  keepalivesCount: ['PG_TCP_KEEPALIVES_COUNT', 6],
  tcpUserTimeoutMs: ['PG_TCP_USER_TIMEOUT_MS', 60_000],
  stallTimeoutSeconds: ['PG_STALL_TIMEOUT_SECONDS', 600],
  queryTimeoutSeconds: ['PG_QUERY_TIMEOUT_SECONDS', 3_600],
};

/**
 * The bounds from `env` (the runner's environment), defaults for what is unset.
 * @throws RunnerConfigError naming each variable that is set but not a positive integer.
 */
export function postgresNetworkBounds(env: NodeJS.ProcessEnv = process.env): PostgresNetworkBounds {
  const problems: string[] = [];
  const out = {} as PostgresNetworkBounds;
  for (const [field, [name, fallback]] of Object.entries(SETTINGS) as [
    keyof PostgresNetworkBounds,
    [string, number],
  ][]) {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') {
      out[field] = fallback;
      continue;
    }
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) {
      problems.push(`${name}: must be a positive integer (got "${raw.slice(0, 40)}")`);
      continue;
    }
    out[field] = Number(raw);
  }
  if (problems.length > 0) throw new RunnerConfigError(problems);
  return out;
}

/** The libpq connection-string parameters (keyword=value, space-separated) for pg_dump / pg_restore's `--dbname`. */
export function libpqConnParams(bounds: PostgresNetworkBounds = postgresNetworkBounds()): string {
  return [
    `connect_timeout=${bounds.connectTimeoutSeconds}`,
    'keepalives=1',
    `keepalives_idle=${bounds.keepalivesIdleSeconds}`,
    `keepalives_interval=${bounds.keepalivesIntervalSeconds}`,
    `keepalives_count=${bounds.keepalivesCount}`,
    `tcp_user_timeout=${bounds.tcpUserTimeoutMs}`,
  ].join(' ');
}

/** node-postgres Client options carrying the same bounds (ms). */
export function pgClientBounds(bounds: PostgresNetworkBounds = postgresNetworkBounds()) {
  return {
    connectionTimeoutMillis: bounds.connectTimeoutSeconds * 1000,
    keepAlive: true,
    keepAliveInitialDelayMillis: bounds.keepalivesIdleSeconds * 1000,
    query_timeout: bounds.queryTimeoutSeconds * 1000,
  };
}

/**
 * Wraps a tool's output so that a wait for the next chunk longer than `seconds` fails with the
 * error `onStall` returns (after it has stopped the tool). Only time spent waiting for the tool
 * counts: while the consumer holds back (S3 is slow, backpressure) the clock does not run.
 */
export async function* stallGuard<T>(
  source: AsyncIterable<T>,
  seconds: number,
  onStall: () => Error,
): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  try {
    while (true) {
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(onStall()), seconds * 1000);
      });
      let next: IteratorResult<T>;
      try {
        next = await Promise.race([it.next(), stalled]);
      } finally {
        clearTimeout(timer);
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Ends the source's iteration (a readable is destroyed) without waiting on a silent producer.
    void it.return?.()?.catch?.(() => undefined);
  }
}

/**
 * Ends a node-postgres client without waiting on a silent peer: `end()` waits for the server to
 * close the socket, which a vanished server never does; after `ms` the socket is destroyed instead.
 */
export async function endClient(
  client: { end(): Promise<void>; connection?: { stream?: { destroy(): void } } },
  ms = 2_000,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    client.end().then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  if (!ended) client.connection?.stream?.destroy();
}
