/**
 * A real Infrahub deployment as local processes, every one on 127.0.0.1 and a free port: Neo4j
 * Community (harness/neo4j.ts), PostgreSQL for Prefect (harness/postgres.ts, locale en_US.UTF-8 as on
 * RDS and Infrahub's image), Redis, RabbitMQ, the Prefect server (Infrahub's task manager), the
 * Infrahub API server (gunicorn) and one task worker; artifact storage on a local path.
 *
 * How each runs follows Infrahub's own deployment (opsmill/infrahub docker-compose.yml and
 * backend/infrahub/config.py, release 1.11): the INFRAHUB_* settings, `uvicorn --factory
 * infrahub.prefect_server.app:create_infrahub_prefect` for the task manager, gunicorn with
 * infrahub/serve/gunicorn_config.py for the server, `prefect worker start --type infrahubasync` for
 * the worker. The Python side comes from the virtual environment scripts/setup.sh builds with
 * infrahub-server pinned (harness/infrahub-requirements.txt; Python 3.12+).
 *
 * Each process logs to its own file under `logsDir`; a process that dies or never becomes ready fails
 * the start with the tail of its log. Everything is stopped by PID with a grace period (SIGKILL
 * after it), and killed by the harness's exit handler if the test process ends first.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HarnessStartError } from './errors.js';
import { infrahubFetch } from './infrahub-http.js';
import { type Neo4jServer, startNeo4j } from './neo4j.js';
import { cacheDir, neo4jVersion } from './paths.js';
import { type PostgresServer, startPostgres } from './postgres.js';
import {
  freePort,
  harnessTempDir,
  releaseHarnessDir,
  removeHarnessDir,
  type Spawned,
  spawnLogged,
  stopGroup,
  stopPid,
  tail,
  waitUntil,
} from './processes.js';
import { scaled } from './time-scale.js';

/** The Python environment holding infrahub-server (scripts/setup.sh). */
export const infrahubVenv = join(cacheDir, 'infrahub-venv');

/** The locale of the task manager's cluster: RDS's and the official PostgreSQL image's default. */
export const PREFECT_LOCALE = 'en_US.UTF-8';

/** What a stopped stack leaves for the next one to start from (see saveStores / fromStores). */
interface StoresRecord {
  neo4jVersion: string;
  neo4jPassword: string;
  postgresPassword: string;
  adminToken: string;
  agentToken: string;
  secretKey: string;
}

export interface InfrahubStackOptions {
  /** The Neo4j version (default: the harness's, HARNESS_NEO4J_VERSION or the pom's). */
  neo4jVersion?: string;
  /**
   * A folder written by `saveStores`: the stack starts from copies of its Neo4j and PostgreSQL
   * stores, artifact storage and git repositories (the folder itself is left as it is).
   */
  fromStores?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Upper bound on the Infrahub server's start (its first start builds the schema): default 600 s. */
  startTimeoutMs?: number;
}

/** One of the stack's Infrahub processes (task manager, server, worker). */
interface Service {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  pid(): number | undefined;
}

export interface InfrahubStack {
  /** Infrahub's API, such as http://127.0.0.1:43123 (no trailing slash). */
  readonly address: string;
  /** The admin account's API token (INFRAHUB_INITIAL_ADMIN_TOKEN). */
  readonly adminToken: string;
  /** The task worker's account's token (INFRAHUB_INITIAL_AGENT_TOKEN). */
  readonly agentToken: string;
  readonly neo4j: Neo4jServer;
  /** The task manager's PostgreSQL (database `prefect`). */
  readonly postgres: PostgresServer;
  readonly redisPort: number;
  readonly rabbitmqPort: number;
  /** The Prefect server's API (http://127.0.0.1:P/api). */
  readonly prefectApi: string;
  /** Infrahub's artifact storage (INFRAHUB_STORAGE_LOCAL_PATH). */
  readonly storagePath: string;
  /** Where Infrahub clones git repositories (INFRAHUB_GIT_REPOSITORIES_DIRECTORY). */
  readonly gitDirectory: string;
  /** One log file per process. */
  readonly logsDir: string;
  /** The PIDs of the running processes by name, for tests that must prove they stop. */
  pids(): Record<string, number | undefined>;
  /** Stops the worker, the API server and the task manager (the databases keep running). */
  stopInfrahub(): Promise<void>;
  /** Starts the task manager, the API server and the worker again, each waited for. */
  startInfrahub(): Promise<void>;
  /** Empties Redis (FLUSHALL), as a wipe or a restore into fresh stores would find it. */
  flushRedis(): void;
  /**
   * A lost deployment, as a restore into fresh stores finds it: stops Infrahub (worker, server, task
   * manager), then empties every store it keeps state in: Neo4j (every database, system included,
   * started again empty with the same password, as a new server from the same secret), the task
   * manager's database (dropped), the artifact storage folder and Redis. The git clones stay (they
   * are not backed up; Infrahub clones again on demand).
   */
  wipe(): Promise<void>;
  /**
   * Stops everything and copies the stores (Neo4j's data folder, PostgreSQL's cluster, artifact
   * storage, git repositories) and the credentials that go with them into `dir`, for `fromStores`.
   */
  saveStores(dir: string): Promise<void>;
  /** Stops every process by PID; removes the folders unless `keepLogs` (then only the logs stay). */
  stop(options?: { keepLogs?: boolean }): Promise<void>;
}

/**
 * The Python 3.12+ environment with infrahub-server, or a HarnessStartError that says how to get it.
 * @returns the folder of its programs (`bin`).
 */
export function infrahubBin(): string {
  const bin = join(infrahubVenv, 'bin');
  if (!existsSync(join(bin, 'infrahub')) || !existsSync(join(infrahubVenv, '.setup-stamp')))
    throw new HarnessStartError(
      'Infrahub',
      `no infrahub-server in ${infrahubVenv} (run "npm run setup"; it needs Python 3.12 or later)`,
    );
  return bin;
}

function sitePackages(): string {
  const lib = join(infrahubVenv, 'lib');
  const python = readdirSync(lib).find((d) => d.startsWith('python3'));
  if (!python) throw new HarnessStartError('Infrahub', `no python3.* folder in ${lib}`);
  return join(lib, python, 'site-packages');
}

/** A TCP port that answers an HTTP GET with 2xx within `timeoutMs`. */
async function httpOk(url: string, timeoutMs = 5_000): Promise<boolean> {
  const response = await infrahubFetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await response.body?.cancel();
  return response.ok;
}

/** Starts a process and waits until `ready`; fails with its log's tail when it dies or times out. */
async function startProcess(
  name: string,
  command: string,
  args: string[],
  options: {
    logsDir: string;
    env: NodeJS.ProcessEnv;
    cwd?: string;
    ready: () => Promise<boolean>;
    timeoutMs: number;
    attemptTimeoutMs?: number;
    /** Start it as a process group's leader, stopped as a group (see spawnLogged). */
    group?: boolean;
  },
): Promise<Spawned> {
  const logFile = join(options.logsDir, `${name}.log`);
  const spawned = spawnLogged(command, args, {
    logFile,
    env: options.env,
    cwd: options.cwd,
    group: options.group ?? false,
  });
  const failure = await waitUntil(options.ready, {
    timeoutMs: options.timeoutMs,
    alive: () => spawned.alive(),
    intervalMs: 1000,
    attemptTimeoutMs: options.attemptTimeoutMs ?? 10_000,
  });
  if (failure) {
    if (options.group) await stopGroup(spawned.pid, 'SIGTERM', 10_000);
    else if (spawned.alive()) await stopPid(spawned.pid, 'SIGTERM', 10_000);
    throw new HarnessStartError(name, `${failure} (log: ${logFile})`, tail(logFile, 30));
  }
  return spawned;
}

async function startRedis(logsDir: string, dir: string) {
  const port = await freePort();
  const redis = await startProcess(
    'redis',
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir],
    {
      logsDir,
      env: process.env,
      ready: async () =>
        spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG',
      timeoutMs: 30_000,
    },
  );
  return { port, process: redis };
}

/**
 * RabbitMQ with a node of its own: its own HOME (Erlang cookie), node name, distribution port and
 * epmd port, all on 127.0.0.1 (RabbitMQ docs, "Networking" and "Configuration"), no plugins, the
 * user Infrahub logs in with defined in rabbitmq.conf. Ready when `rabbitmqctl await_startup` returns.
 */
async function startRabbitMq(logsDir: string, dir: string) {
  const [port, distPort, epmdPort, ctlPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const user = 'infrahub';
  const password = randomBytes(12).toString('hex');
  mkdirSync(join(dir, 'home'), { recursive: true });
  writeFileSync(
    join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.default = 127.0.0.1:${port}`,
      `default_user = ${user}`,
      `default_pass = ${password}`,
      'loopback_users = none',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: join(dir, 'home'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_LOGS: '-',
    RABBITMQ_NODENAME: 'infrahub@localhost',
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CTL_DIST_PORT_MIN: String(ctlPort),
    RABBITMQ_CTL_DIST_PORT_MAX: String(ctlPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_EPMD_PORT: String(epmdPort),
    // The distribution listener binds every interface unless told one (Erlang kernel's
    // inet_dist_use_interface); RABBITMQ_DIST_PORT fixes only its port.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  const sbin = existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server') ? '/usr/lib/rabbitmq/bin' : undefined;
  const program = (name: string) => (sbin ? join(sbin, name) : name);
  // Our own epmd, in the foreground and tracked by PID: one the node started itself would daemonize
  // and outlive it. Erlang finds it on ERL_EPMD_PORT and starts none.
  const epmd = await startProcess('epmd', 'epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], {
    logsDir,
    env,
    ready: async () =>
      spawnSync('epmd', ['-port', String(epmdPort), '-names'], { env, timeout: 5_000 }).status === 0,
    timeoutMs: 30_000,
  });
  const stopEpmd = () => stopPid(epmd.pid, 'SIGTERM', 5_000);
  try {
    // The launcher script starts beam.smp, which outlives it on a signal: a process group, stopped whole.
    const rabbit = await startProcess('rabbitmq', program('rabbitmq-server'), [], {
      group: true,
      logsDir,
      env,
      ready: async () =>
        spawnSync(program('rabbitmqctl'), ['-n', 'infrahub@localhost', 'await_startup', '--timeout', '5'], {
          env,
          timeout: 20_000,
        }).status === 0,
      timeoutMs: scaled(180_000),
      attemptTimeoutMs: 25_000,
    });
    return { port, user, password, process: rabbit, stopEpmd };
  } catch (error) {
    await stopEpmd();
    throw error;
  }
}

/**
 * Starts a real Infrahub deployment (see the module's comment); first start initialises the stores:
 * the core schema, the admin and agent accounts with their tokens, Prefect's deployments (about two
 * minutes on two cores, three-fold under load). Stop it with `stop()`.
 * @throws HarnessStartError naming the service that did not start, with its log's tail; everything
 *   started before it is stopped again.
 */
export async function startInfrahub(options: InfrahubStackOptions = {}): Promise<InfrahubStack> {
  const log = options.log ?? (() => undefined);
  const bin = infrahubBin();
  const root = harnessTempDir('ibh-infrahub-');
  const logsDir = harnessTempDir('ibh-infrahub-logs-');
  const storagePath = join(root, 'storage');
  const gitDirectory = join(root, 'repositories');
  const record: StoresRecord | undefined = options.fromStores
    ? (JSON.parse(readFileSync(join(options.fromStores, 'stores.json'), 'utf8')) as StoresRecord)
    : undefined;
  const version = record?.neo4jVersion ?? options.neo4jVersion ?? neo4jVersion();
  if (options.neo4jVersion && record && record.neo4jVersion !== options.neo4jVersion)
    throw new HarnessStartError(
      'Infrahub',
      `the saved stores in ${options.fromStores} are of Neo4j ${record.neo4jVersion}, not ${options.neo4jVersion}`,
    );
  if (options.fromStores) {
    cpSync(join(options.fromStores, 'storage'), storagePath, { recursive: true });
    cpSync(join(options.fromStores, 'repositories'), gitDirectory, { recursive: true });
  } else {
    mkdirSync(storagePath);
    mkdirSync(gitDirectory);
  }
  const adminToken = record?.adminToken ?? randomUUID();
  const agentToken = record?.agentToken ?? randomUUID();
  const secretKey = record?.secretKey ?? randomUUID();

  const stoppers: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop().catch(() => undefined);
  };
  try {
    log(`starting Neo4j ${version}, PostgreSQL (${PREFECT_LOCALE}), Redis and RabbitMQ`);
    const [neo4jStart, postgresStart, redisStart, rabbitStart] = await Promise.allSettled([
      startNeo4j({
        version,
        heap: '1g',
        pageCache: '256m',
        // Infrahub's load for the stack's whole life: both JIT compilers (Neo4jOptions.longRunning).
        longRunning: true,
        // Otherwise each database's transaction log preallocates 256 MB.
        settings: { 'db.tx_log.preallocate': 'false' },
        ...(record
          ? { password: record.neo4jPassword, fromDataDir: join(options.fromStores as string, 'neo4j') }
          : {}),
      }),
      startPostgres({
        locale: PREFECT_LOCALE,
        ...(record
          ? { password: record.postgresPassword, fromDataDir: join(options.fromStores as string, 'postgres') }
          : {}),
      }),
      startRedis(logsDir, root),
      startRabbitMq(logsDir, join(root, 'rabbitmq')),
    ]);
    if (neo4jStart.status === 'fulfilled') stoppers.push(() => neo4jStart.value.stop());
    if (postgresStart.status === 'fulfilled') stoppers.push(() => postgresStart.value.stop());
    if (redisStart.status === 'fulfilled')
      stoppers.push(() => stopPid(redisStart.value.process.pid, 'SIGTERM', 10_000));
    if (rabbitStart.status === 'fulfilled')
      stoppers.push(async () => {
        await stopGroup(rabbitStart.value.process.pid, 'SIGTERM', 30_000);
        await rabbitStart.value.stopEpmd();
      });
    for (const s of [neo4jStart, postgresStart, redisStart, rabbitStart])
      if (s.status === 'rejected') throw s.reason;
    const neo4j = (neo4jStart as PromiseFulfilledResult<Neo4jServer>).value;
    const postgres = (postgresStart as PromiseFulfilledResult<PostgresServer>).value;
    const redis = (redisStart as PromiseFulfilledResult<Awaited<ReturnType<typeof startRedis>>>).value;
    const rabbit = (rabbitStart as PromiseFulfilledResult<Awaited<ReturnType<typeof startRabbitMq>>>).value;

    if (!record) {
      const created = spawnSync(
        postgres.tool('psql'),
        [
          '-v',
          'ON_ERROR_STOP=1',
          '-c',
          `CREATE DATABASE prefect TEMPLATE template0 LOCALE '${PREFECT_LOCALE}'`,
        ],
        { encoding: 'utf8', env: { ...process.env, ...postgres.env() } },
      );
      if (created.status !== 0)
        throw new HarnessStartError('PostgreSQL', `creating the database prefect failed: ${created.stderr}`);
    }

    const [prefectPort, serverPort, workerPort, metricsPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const address = `http://127.0.0.1:${serverPort}`;
    const prefectApi = `http://127.0.0.1:${prefectPort}/api`;
    const prefectHome = join(root, 'prefect-home');
    mkdirSync(prefectHome);
    const gitConfig = join(root, 'gitconfig');
    writeFileSync(
      gitConfig,
      '[user]\n\tname = Infrahub\n\temail = infrahub@example.com\n[safe]\n\tdirectory = *\n',
    );
    // Infrahub's settings (backend/infrahub/config.py), as its docker-compose.yml sets them.
    const env: NodeJS.ProcessEnv = {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: root,
      LANG: 'C.UTF-8',
      PREFECT_HOME: prefectHome,
      PREFECT_API_URL: prefectApi,
      PREFECT_SERVER_ANALYTICS_ENABLED: 'false',
      PREFECT_UI_ENABLED: 'false',
      DO_NOT_TRACK: '1',
      INFRAHUB_ADDRESS: address,
      INFRAHUB_INTERNAL_ADDRESS: address,
      INFRAHUB_PRODUCTION: 'false',
      INFRAHUB_LOG_LEVEL: 'INFO',
      INFRAHUB_TELEMETRY_OPTOUT: 'true',
      INFRAHUB_ANALYTICS_ENABLE: 'false',
      INFRAHUB_DB_TYPE: 'neo4j',
      INFRAHUB_DB_ADDRESS: '127.0.0.1',
      INFRAHUB_DB_PORT: String(neo4j.boltPort),
      INFRAHUB_DB_USERNAME: 'neo4j',
      INFRAHUB_DB_PASSWORD: neo4j.password,
      INFRAHUB_BROKER_DRIVER: 'rabbitmq',
      INFRAHUB_BROKER_ADDRESS: '127.0.0.1',
      INFRAHUB_BROKER_PORT: String(rabbit.port),
      INFRAHUB_BROKER_USERNAME: rabbit.user,
      INFRAHUB_BROKER_PASSWORD: rabbit.password,
      INFRAHUB_CACHE_DRIVER: 'redis',
      INFRAHUB_CACHE_ADDRESS: '127.0.0.1',
      INFRAHUB_CACHE_PORT: String(redis.port),
      INFRAHUB_WORKFLOW_DRIVER: 'worker',
      INFRAHUB_WORKFLOW_ADDRESS: '127.0.0.1',
      INFRAHUB_WORKFLOW_PORT: String(prefectPort),
      INFRAHUB_STORAGE_DRIVER: 'local',
      INFRAHUB_STORAGE_LOCAL_PATH: storagePath,
      INFRAHUB_GIT_REPOSITORIES_DIRECTORY: gitDirectory,
      INFRAHUB_GIT_GLOBAL_CONFIG_FILE: gitConfig,
      INFRAHUB_INITIAL_ADMIN_TOKEN: adminToken,
      INFRAHUB_INITIAL_AGENT_TOKEN: agentToken,
      INFRAHUB_SECURITY_SECRET_KEY: secretKey,
      INFRAHUB_DOCS_INDEX_PATH: join(root, 'docs-index.json'),
    };
    const prefectUrl = `postgresql+asyncpg://${postgres.user}:${encodeURIComponent(postgres.password)}@127.0.0.1:${postgres.port}/prefect`;
    const startTimeoutMs = options.startTimeoutMs ?? scaled(600_000);

    const service = (
      name: string,
      command: string,
      args: string[],
      extraEnv: NodeJS.ProcessEnv,
      ready: () => Promise<boolean>,
      graceMs: number,
    ): Service => {
      let running: Spawned | undefined;
      return {
        name,
        async start() {
          if (running?.alive()) return;
          running = await startProcess(name, command, args, {
            logsDir,
            env: { ...env, ...extraEnv },
            cwd: root,
            ready,
            timeoutMs: startTimeoutMs,
          });
        },
        async stop() {
          const r = running;
          running = undefined;
          if (r?.alive()) await stopPid(r.pid, 'SIGTERM', graceMs);
        },
        pid: () => (running?.alive() ? running.pid : undefined),
      };
    };
    const services: Service[] = [
      service(
        'task-manager',
        join(bin, 'uvicorn'),
        [
          '--factory',
          'infrahub.prefect_server.app:create_infrahub_prefect',
          '--host',
          '127.0.0.1',
          '--port',
          String(prefectPort),
        ],
        {
          PREFECT_API_DATABASE_CONNECTION_URL: prefectUrl,
          // Infrahub passes the whole schema as a flow-run parameter, over Prefect's 512 KB default:
          // without this a schema load fails with HTTP 500.
          PREFECT_SERVER_API_MAX_PARAMETER_SIZE: '0',
        },
        () => httpOk(`${prefectApi}/health`),
        20_000,
      ),
      service(
        'infrahub-server',
        join(bin, 'gunicorn'),
        [
          '--config',
          join(sitePackages(), 'infrahub', 'serve', 'gunicorn_config.py'),
          '-w',
          '1',
          '-b',
          `127.0.0.1:${serverPort}`,
          '--logger-class',
          'infrahub.serve.log.GunicornLogger',
          'infrahub.server:app',
        ],
        {},
        // gunicorn holds requests while the app starts: each probe has its own time limit.
        () => httpOk(`${address}/api/config`, 8_000),
        30_000,
      ),
      service(
        'task-worker',
        join(bin, 'prefect'),
        ['worker', 'start', '--type', 'infrahubasync', '--pool', 'infrahub-worker', '--with-healthcheck'],
        {
          INFRAHUB_API_TOKEN: agentToken,
          PREFECT_WORKER_WEBSERVER_HOST: '127.0.0.1',
          PREFECT_WORKER_WEBSERVER_PORT: String(workerPort),
          // Its Prometheus listener (prometheus_client.start_http_server in
          // infrahub/workers/infrahub_async.py) binds 0.0.0.0, port 8000 unless told: Infrahub offers
          // no address setting, so it gets a free port here; it serves metrics only, no traffic leaves.
          INFRAHUB_METRICS_PORT: String(metricsPort),
        },
        () => httpOk(`http://127.0.0.1:${workerPort}/health`),
        // It ignores SIGTERM at times: SIGKILL after the grace period.
        15_000,
      ),
    ];
    // In reverse dependency order: the worker, the API server, then the task manager.
    const stopInfrahubServices = async () => {
      for (const s of [...services].reverse()) await s.stop();
    };
    stoppers.push(stopInfrahubServices);
    const startInfrahubServices = async () => {
      for (const s of services) {
        const t0 = Date.now();
        await s.start();
        log(`${s.name} ready after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      }
    };
    await startInfrahubServices();

    const flushRedis = () => {
      const flushed = spawnSync('redis-cli', ['-p', String(redis.port), 'FLUSHALL'], { encoding: 'utf8' });
      if (flushed.stdout.trim() !== 'OK')
        throw new Error(`redis-cli FLUSHALL failed: ${flushed.stdout}${flushed.stderr}`);
    };
    let stopped = false;
    const stop = async (stopOptions?: { keepLogs?: boolean }) => {
      if (stopped) return;
      stopped = true;
      if (stopOptions?.keepLogs) {
        // Neo4j's and PostgreSQL's logs live in their own folders, which stopping removes.
        for (const [from, to] of [
          [join(neo4j.home, 'logs'), join(logsDir, 'neo4j')],
          [join(dirname(postgres.dataDir), 'postgres.log'), join(logsDir, 'postgres.log')],
        ] as const)
          if (existsSync(from)) cpSync(from, to, { recursive: true });
      }
      await stopAll();
      removeHarnessDir(root);
      if (stopOptions?.keepLogs) releaseHarnessDir(logsDir);
      else removeHarnessDir(logsDir);
    };
    return {
      address,
      adminToken,
      agentToken,
      neo4j,
      postgres,
      redisPort: redis.port,
      rabbitmqPort: rabbit.port,
      prefectApi,
      storagePath,
      gitDirectory,
      logsDir,
      pids: () => ({
        neo4j: neo4j.pid(),
        postgres: postgres.pid,
        redis: redis.process.alive() ? redis.process.pid : undefined,
        rabbitmq: rabbit.process.alive() ? rabbit.process.pid : undefined,
        ...Object.fromEntries(services.map((s) => [s.name, s.pid()])),
      }),
      stopInfrahub: stopInfrahubServices,
      startInfrahub: startInfrahubServices,
      flushRedis,
      async wipe() {
        await stopInfrahubServices();
        await neo4j.wipeStores();
        const dropped = spawnSync(
          postgres.tool('psql'),
          ['-v', 'ON_ERROR_STOP=1', '-c', 'DROP DATABASE IF EXISTS prefect WITH (FORCE)'],
          { encoding: 'utf8', env: { ...process.env, ...postgres.env() } },
        );
        if (dropped.status !== 0) throw new Error(`dropping the database prefect failed: ${dropped.stderr}`);
        for (const entry of readdirSync(storagePath))
          rmSync(join(storagePath, entry), { recursive: true, force: true });
        flushRedis();
      },
      async saveStores(dir: string) {
        await stopInfrahubServices();
        await neo4j.stopDbms();
        await postgres.stop({ keepFiles: true });
        // Only the stack's own entries are replaced: a folder may hold more (the demo keeps the
        // git repository its data was seeded from there, at a path the stores refer to).
        mkdirSync(dir, { recursive: true });
        for (const entry of ['neo4j', 'postgres', 'storage', 'repositories', 'stores.json'])
          rmSync(join(dir, entry), { recursive: true, force: true });
        cpSync(neo4j.dataDir, join(dir, 'neo4j'), { recursive: true });
        cpSync(postgres.dataDir, join(dir, 'postgres'), { recursive: true });
        rmSync(join(dir, 'postgres', 'postmaster.pid'), { force: true });
        cpSync(storagePath, join(dir, 'storage'), { recursive: true });
        cpSync(gitDirectory, join(dir, 'repositories'), { recursive: true });
        const saved: StoresRecord = {
          neo4jVersion: version,
          neo4jPassword: neo4j.password,
          postgresPassword: postgres.password,
          adminToken,
          agentToken,
          secretKey,
        };
        writeFileSync(join(dir, 'stores.json'), `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600 });
        await stop({ keepLogs: false });
      },
      stop,
    };
  } catch (error) {
    await stopAll();
    removeHarnessDir(root);
    // The logs stay for the reader of the error.
    releaseHarnessDir(logsDir);
    throw error;
  }
}
