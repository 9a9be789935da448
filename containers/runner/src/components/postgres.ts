/**
 * Prefect's PostgreSQL database: `pg_dump -Fc` streamed into S3, with exact row counts taken in
 * the very snapshot that pg_dump dumps (pg_export_snapshot + pg_dump --snapshot), so a restore can
 * be checked against them.
 */
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { checkedStream, dumpFormatError, pgCustomDumpCheck } from '../../../../core/backup/formats.js';
import { fileKey, PREFECT_DUMP } from '../../../../core/backup/layout.js';
import { fileRecord, type PostgresResult } from '../../../../core/backup/results.js';
import {
  DatabaseUnreachableError,
  IncompatibleToolError,
  NamedError,
  ToolFailedError,
} from '../../../../core/errors.js';
import { waitForPostgres } from '../../../../core/readiness/postgres.js';
import {
  endClient,
  libpqConnParams,
  pgClientBounds,
  postgresNetworkBounds,
  stallGuard,
} from '../../../../core/readiness/postgres-network.js';
import {
  describeTlsError,
  libpqTlsEnv,
  type PostgresTls,
  pgSslOption,
} from '../../../../core/readiness/postgres-tls.js';
import { readyTimeoutFromEnv } from '../../../../core/readiness/wait.js';
import { type RunningTool, runTool, toolOutput } from '../../../../core/tools/run-tool.js';
import { streamToolToS3 } from '../../../../core/tools/stream-to-s3.js';
import { type RunContext, resultStamp, uploadOptions } from '../context.js';

export interface PostgresConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /**
   * How long a connect waits for the server to accept it before giving up, in seconds
   * (core/readiness/postgres.ts). Default: PG_READY_TIMEOUT_SECONDS, else 300.
   */
  readyTimeoutSeconds?: number;
  /**
   * TLS of every connection to this server, node-postgres and libpq alike (postgres.tls; see
   * core/readiness/postgres-tls.ts). None is no TLS: the drill's disposable server on loopback.
   */
  tls?: PostgresTls;
}

/** `pg_dump (PostgreSQL) 15.18 (Debian ...)` → { version: '15.18', major: 15 }. */
export function parseToolVersion(output: string): { version: string; major: number } {
  const m = /\(PostgreSQL\)\s+(\d+)(\.\d+)?/.exec(output);
  if (!m?.[1]) throw new IncompatibleToolError(`cannot read a PostgreSQL version from "${output.trim()}"`);
  return { version: `${m[1]}${m[2] ?? ''}`, major: Number(m[1]) };
}

export function toolPath(binDir: string | undefined, tool: string): string {
  return binDir ? join(binDir, tool) : tool;
}

/**
 * The environment pg_dump and pg_restore connect with (the password never on a command line), with
 * libpq's TLS variables for the connection's `tls` (PGSSLMODE, PGSSLROOTCERT: libpq docs, "SSL
 * Support", https://www.postgresql.org/docs/15/libpq-ssl.html): an inherited PGSSLROOTCERT is removed
 * unless the mode is verify-full.
 */
export function toolEnv(connection: PostgresConnection, appName: string): NodeJS.ProcessEnv {
  const tls = libpqTlsEnv(connection.tls);
  const { PGSSLROOTCERT: _inherited, ...inherited } = process.env;
  return {
    ...inherited,
    PGSSLMODE: tls.PGSSLMODE,
    ...(tls.PGSSLROOTCERT ? { PGSSLROOTCERT: tls.PGSSLROOTCERT } : {}),
    PGHOST: connection.host,
    PGPORT: String(connection.port),
    PGUSER: connection.user,
    PGPASSWORD: connection.password,
    PGAPPNAME: appName,
    // Bounded connects (the other network bounds are in dbnameArg's connection string).
    PGCONNECT_TIMEOUT: String(postgresNetworkBounds().connectTimeoutSeconds),
  };
}

/**
 * A `--dbname` argument for pg_dump and pg_restore that names `database` exactly, whatever it holds:
 * libpq reads a `--dbname` value containing `=` (or starting with a URI prefix) as a connection
 * string (PostgreSQL docs, "Connection Strings"), and one starting with `-` as an option; so the name
 * is always passed as a connection string, `dbname='...'`, its backslashes and single quotes escaped with a backslash
 * (the libpq keyword/value syntax). Other connection parameters still come from the environment.
 */
export function dbnameArg(database: string): string {
  // With the network bounds every connection carries (keepalives, tcp_user_timeout: libpq has no
  // environment variables for them; core/readiness/postgres-network.ts).
  return `--dbname=dbname='${database.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}' ${libpqConnParams()}`;
}

/**
 * A connected client, once the server accepts connections to `database` (waited for, bounded: a
 * server that is starting up, `57P03`, or not listening yet is retried; see waitForPostgres).
 * @throws DatabaseUnreachableError on a refused login or a missing database at once, or after the bound.
 */
export async function connectPostgres(
  connection: PostgresConnection,
  appName: string,
  database = connection.database,
): Promise<pg.Client> {
  const { readyTimeoutSeconds, ...endpoint } = connection;
  await waitForPostgres(
    { ...endpoint, database },
    { appName, timeoutSeconds: readyTimeoutSeconds ?? readyTimeoutFromEnv('PG_READY_TIMEOUT_SECONDS') },
  );
  const { tls, ...plain } = endpoint;
  const client = new pg.Client({
    ...plain,
    database,
    ssl: pgSslOption(tls, endpoint.host),
    // Bounded connect, TCP keepalives and a client-side bound on each query (a silent network).
    ...pgClientBounds(),
    application_name: appName,
  });
  // The server can end the connection at any time (a fast shutdown sends FATAL 57P01 to every
  // session): node-postgres then emits 'error', and an 'error' event without a listener ends the
  // process with an uncaught exception (the runner's crash with a bare "Node.js v20" as its cause).
  // A query under way still rejects with that error; later ones reject as the client is closed.
  client.on('error', () => undefined);
  await client.connect().catch((err: unknown) => {
    throw new DatabaseUnreachableError(
      `cannot connect to PostgreSQL at ${connection.host}:${connection.port} (database ${database}): ${describeTlsError(err, tls) ?? (err instanceof Error ? err.message : String(err))}`,
    );
  });
  return client;
}

/** Exact row counts of every ordinary and partitioned table (partitions counted through their parent). */
export async function countRows(
  client: pg.Client,
  options: { parallel?: boolean } = {},
): Promise<Record<string, number>> {
  // One core for counting beside pg_dump (parallel workers would take the server's cores from its
  // COPY); after a restore nothing else runs, and the server may use its parallel workers.
  if (!options.parallel) await client.query('SET LOCAL max_parallel_workers_per_gather = 0');
  const { rows } = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
      ORDER BY 1, 2`,
  );
  const counts: Record<string, number> = {};
  for (const { schema, name } of rows) {
    const ident = `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(name)}`;
    const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident}`);
    counts[`${schema}.${name}`] = Number(result.rows[0]?.n ?? 0);
  }
  return counts;
}

/**
 * Waits for both the dump and the count, never one alone: with Promise.all a failed count would
 * be reported while pg_dump still streams into its multipart upload, and the process would exit
 * with that upload open. A count that fails while pg_dump runs on gives pg_dump a few seconds to
 * fail on its own (a server shutdown ends both, and pg_dump's message is the better cause), then
 * stops it, so its upload is aborted (streamToolToS3).
 */
async function settleBoth<T, U>(
  dump: RunningTool,
  stopped: { byUs: boolean },
  [dumping, counting]: [Promise<T>, Promise<U>],
): Promise<[PromiseSettledResult<T>, PromiseSettledResult<U>]> {
  const stopDump = counting.then(
    () => undefined,
    () => {
      const timer = setTimeout(() => {
        if (dump.child.exitCode === null && dump.child.signalCode === null) {
          stopped.byUs = true;
          dump.child.kill('SIGTERM');
        }
      }, 5_000);
      dump.done.then(
        () => clearTimeout(timer),
        () => clearTimeout(timer),
      );
    },
  );
  const settled = await Promise.allSettled([dumping, counting]);
  await stopDump;
  return settled as [PromiseSettledResult<T>, PromiseSettledResult<U>];
}

/**
 * A PostgreSQL error during the backup as a named error: a connection the server ended (shutdown:
 * 57P01..57P03, or the socket closed: class 08, "Connection terminated") is DatabaseUnreachable,
 * naming the server and what was under way; named errors pass unchanged; anything else is left for
 * the runner to name (UnexpectedError).
 */
function connectionLost(err: unknown, connection: PostgresConnection, doing: string): unknown {
  if (err instanceof NamedError) return err;
  const code = String((err as { code?: unknown })?.code ?? '');
  const message = err instanceof Error ? err.message : String(err);
  if (
    code.startsWith('57P') ||
    code.startsWith('08') ||
    /Connection terminated|ECONNRESET|ETIMEDOUT|not queryable|Query read timeout/i.test(message)
  )
    return new DatabaseUnreachableError(
      `lost the connection to PostgreSQL at ${connection.host}:${connection.port} (database ${connection.database}) while ${doing}: ${code ? `${code} ` : ''}${message}${/Query read timeout/i.test(message) ? ' (no answer within PG_QUERY_TIMEOUT_SECONDS)' : ''}`,
    );
  return err;
}

export async function backupPostgres(
  ctx: RunContext,
  connection: PostgresConnection,
  options: { binDir?: string; compress?: string } = {},
): Promise<PostgresResult> {
  const compress = options.compress ?? '1';
  const startedAt = new Date().toISOString();
  const log = ctx.logger.child({ component: 'task-manager-db' });
  const pgDump = toolPath(options.binDir, 'pg_dump');
  const tool = parseToolVersion(await toolOutput(pgDump, ['--version']));

  const client = await connectPostgres(connection, 'infrahub-backup');
  try {
    const { rows } = await client.query<{ num: string; version: string }>(
      "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
    );
    const versionNum = Number(rows[0]?.num);
    if (!Number.isInteger(versionNum))
      throw new IncompatibleToolError(`cannot read the server version (got "${rows[0]?.num}")`);
    const serverVersion = (rows[0]?.version ?? '').split(' ')[0] || String(versionNum);
    const serverMajor = Math.floor(versionNum / 10000);
    if (tool.major < serverMajor) {
      throw new IncompatibleToolError(
        `pg_dump ${tool.version} is older than the server (PostgreSQL ${serverVersion}); the runner image needs ` +
          `PostgreSQL client tools ${serverMajor} or newer`,
      );
    }

    // The snapshot stays valid while this transaction is open: until pg_dump has finished.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]?.id;
    if (!snapshot) throw new Error('pg_export_snapshot returned nothing');

    const key = fileKey(ctx.target, ctx.backupId, PREFECT_DUMP);
    log.info('pg_dump started', {
      database: connection.database,
      key,
      serverVersion,
      toolVersion: tool.version,
    });
    const dump = runTool(
      pgDump,
      [
        '--format=custom',
        `--compress=${compress}`,
        `--snapshot=${snapshot}`,
        '--no-password',
        dbnameArg(connection.database),
      ],
      { env: toolEnv(connection, 'infrahub-backup') },
    );
    const formatCheck = checkedStream(
      dump.stdout,
      pgCustomDumpCheck(toolPath(options.binDir, 'pg_restore')),
      dump.done,
    );
    const dumpStarted = Date.now();
    dump.done.then(
      () => log.info('pg_dump exited', { exitedAfterMs: Date.now() - dumpStarted }),
      () => undefined,
    );
    let storedAfterMs = 0;
    const stopped = { byUs: false };
    const stallSeconds = postgresNetworkBounds().stallTimeoutSeconds;
    const onStall = () => {
      stopped.byUs = true;
      dump.child.kill('SIGKILL');
      return new DatabaseUnreachableError(
        `pg_dump sent nothing for ${stallSeconds} s (PG_STALL_TIMEOUT_SECONDS) while dumping ${connection.database} from ${connection.host}:${connection.port}: the connection to PostgreSQL went silent; pg_dump was stopped`,
      );
    };
    // Count while pg_dump streams; both read the same snapshot.
    const [dumped, counted] = await settleBoth(dump, stopped, [
      // The dump's format is checked on the very bytes uploaded (core/backup/formats.ts: pg_restore
      // reads every block as it streams); a dump it cannot read aborts the upload: DumpFormat.
      streamToolToS3(
        ctx.s3,
        // pg_dump silent too long while we wait for it: the network to the server went silent.
        { ...dump, stdout: Readable.from(stallGuard(formatCheck.stream, stallSeconds, onStall)) },
        uploadOptions(ctx, key),
      ).then(
        (u) => {
          storedAfterMs = Date.now() - dumpStarted;
          const unreadable = dumpFormatError(PREFECT_DUMP, formatCheck.verdict());
          if (unreadable) throw unreadable; // unchecked (no pg_restore in the image): not a backup either
          return u;
        },
        (err: unknown) => {
          // A format problem found first is the cause: pg_dump's ToolFailed is then our stopping it.
          // pg_dump's own failure (the server went away mid-dump) leaves no verdict, because the check
          // awaits pg_dump's exit before judging a truncated archive, and is thrown as itself.
          throw dumpFormatError(PREFECT_DUMP, formatCheck.verdict()) ?? err;
        },
      ),
      countRows(client).catch((err: unknown) => {
        throw connectionLost(err, connection, 'counting rows beside pg_dump');
      }),
    ]);
    // pg_dump's own failure (its stderr: the server's message) explains the rest; a count that
    // failed on its own stopped the dump, whose upload was aborted.
    if (dumped.status === 'rejected') {
      if (counted.status === 'rejected' && dumped.reason instanceof ToolFailedError && stopped.byUs)
        throw counted.reason;
      throw dumped.reason;
    }
    if (counted.status === 'rejected') throw counted.reason;
    const uploaded = dumped.value;
    const tables = counted.value;
    await client.query('COMMIT').catch((err: unknown) => {
      throw connectionLost(err, connection, 'ending the snapshot transaction');
    });
    log.info('pg_dump finished', {
      key,
      size: uploaded.size,
      sha256: uploaded.sha256,
      parts: uploaded.parts,
      // Since pg_dump started; with exitedAfterMs it shows how long S3 completion trailed the dump.
      storedAfterMs,
    });

    return {
      ...resultStamp(ctx, startedAt),
      component: 'task-manager-db',
      database: connection.database,
      files: [fileRecord(PREFECT_DUMP, uploaded)],
      tool: { name: 'pg_dump', version: tool.version, compress },
      server: { version: serverVersion, majorVersion: serverMajor },
      counts: { tables },
    };
  } finally {
    await endClient(client as unknown as Parameters<typeof endClient>[0]);
  }
}
