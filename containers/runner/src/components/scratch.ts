/**
 * Disposable databases for a restore drill, started inside the runner task from the programs its
 * image carries (PostgreSQL server binaries of PG_BINDIR, the Neo4j server of NEO4J_HOME), on
 * 127.0.0.1 with free ports and their data in a scratch folder, and torn down with it. Nothing of the
 * deployment is touched: the drill proves that a backup restores, not that a server is configured.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, cp, mkdir, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { InsufficientScratchSpaceError, RunnerConfigError } from '../../../../core/errors.js';
import { waitForNeo4j } from '../../../../core/readiness/neo4j.js';
import { readyTimeoutFromEnv } from '../../../../core/readiness/wait.js';
import { runTool } from '../../../../core/tools/run-tool.js';
import type { Neo4jAdmin } from './neo4j.js';
import type { BoltConnection } from './neo4j-counts.js';
import { type PostgresConnection, toolPath } from './postgres.js';

export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no free port')),
      );
    });
  });
}

/**
 * Writes `<confDir>/neo4j.conf` for a disposable Neo4j the runner starts for itself (a drill's scratch
 * server, the offline count's read-only server): listening on 127.0.0.1:`port` only, Bolt without TLS
 * (and without authentication unless `authEnabled`), HTTP off, usage reports off, `memory.heap` as
 * initial and maximum heap and `memory.pageCache` as page cache (Neo4j size strings such as `512m`), logs and run files in
 * `workDir/logs` and `workDir/run`, plus `extra`. `authEnabled: true` turns Bolt authentication on
 * (`dbms.security.auth_enabled=true`; the caller sets the password with `neo4j-admin dbms
 * set-initial-password` before the first start: the redacted export); the runner's own servers,
 * unreachable from outside their task, keep it off. The lines of `baseConfFile` (the image's or the
 * DBMS's own `neo4j.conf`: plugins, JVM, data directory) come first, less every setting set here,
 * because Neo4j refuses a setting given twice (Operations Manual, "The neo4j.conf file").
 *
 * @param comment one line written above the settings, saying what the server is for
 * @returns the settings written (without the base file's)
 */
export async function writeDisposableNeo4jConf(options: {
  baseConfFile: string;
  confDir: string;
  workDir: string;
  port: number;
  memory: { heap: string; pageCache: string };
  extra?: Record<string, string>;
  comment: string;
  authEnabled?: boolean;
}): Promise<Record<string, string>> {
  const { workDir, port, memory } = options;
  const settings: Record<string, string> = {
    ...options.extra,
    'server.directories.logs': join(workDir, 'logs'),
    'server.directories.run': join(workDir, 'run'),
    'server.default_listen_address': '127.0.0.1',
    'server.bolt.enabled': 'true',
    'server.bolt.listen_address': `127.0.0.1:${port}`,
    'server.bolt.advertised_address': `127.0.0.1:${port}`,
    'server.http.enabled': 'false',
    'server.https.enabled': 'false',
    'dbms.security.auth_enabled': options.authEnabled ? 'true' : 'false',
    'dbms.usage_report.enabled': 'false',
    'server.memory.heap.initial_size': memory.heap,
    'server.memory.heap.max_size': memory.heap,
    'server.memory.pagecache.size': memory.pageCache,
  };
  const base = existsSync(options.baseConfFile)
    ? readFileSync(options.baseConfFile, 'utf8')
        .split('\n')
        .filter((line) => !((line.split('=')[0] ?? '').trim() in settings))
    : [];
  await writeFile(
    join(options.confDir, 'neo4j.conf'),
    [...base, `# ${options.comment}`, ...Object.entries(settings).map(([k, v]) => `${k}=${v}`), ''].join(
      '\n',
    ),
  );
  return settings;
}

/**
 * Fails before anything is downloaded when the file system holding `dir` (created if absent) has
 * less than `bytes` free for this process (statfs `bavail` × `bsize`: the blocks an unprivileged
 * user may still use, as `df` shows them). `what` names the files in the message. On Fargate the
 * scratch space is the task's ephemeral storage (20 GiB unless the task definition asks for more,
 * up to 200 GiB: AWS ECS "Fargate task ephemeral storage").
 *
 * @param bytes the bytes that must fit, from the manifest's `sizes` (exact sizes of the stored files)
 * @returns the bytes free before the download
 * @throws InsufficientScratchSpaceError naming the folder, the bytes needed and the bytes free
 */
export async function ensureFreeSpace(dir: string, bytes: number, what: string): Promise<number> {
  await mkdir(dir, { recursive: true });
  const fs = await statfs(dir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (free < bytes) {
    throw new InsufficientScratchSpaceError(
      `${dir} has ${free} bytes free; ${what} need ${bytes} bytes staged there before they are verified and loaded ` +
        '(give the runner task more ephemeral storage, or point RESTORE_WORK_DIR at a larger volume)',
    );
  }
  return free;
}

export interface ScratchPostgres {
  connection: PostgresConnection;
  stop(): Promise<void>;
}

/**
 * The account a root process runs the scratch cluster as (initdb refuses root). The runner image runs
 * as "neo4j", so this matters only where the runner runs as root (a developer's machine, CI).
 */
function clusterAccount(name: string | undefined): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const account = name ?? 'postgres';
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, account], { encoding: 'utf8' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    throw new RunnerConfigError([
      `DRILL_PG_USER: running as root, and the account "${account}" to run the disposable PostgreSQL as does not exist`,
    ]);
  }
}

/** initdb + pg_ctl start: a throwaway cluster, trust authentication on loopback, fsync off. */
export async function startScratchPostgres(
  binDir: string | undefined,
  dir: string,
  runAs?: string,
): Promise<ScratchPostgres> {
  const data = join(dir, 'pgdata');
  const user = clusterAccount(runAs);
  await rm(dir, { recursive: true, force: true });
  // Parents stay traversable (the cluster's account must reach its folder); the folder is its own.
  await mkdir(dirname(dir), { recursive: true });
  await mkdir(dir, { mode: 0o700 });
  if (user) await chown(dir, user.uid, user.gid);
  await runTool(
    toolPath(binDir, 'initdb'),
    ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'],
    { stdout: 'ignore', user },
  ).done;
  const port = await freeLoopbackPort();
  await runTool(
    toolPath(binDir, 'pg_ctl'),
    [
      '-D',
      data,
      '-l',
      join(dir, 'postgres.log'),
      '-w',
      '-t',
      '120',
      '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c full_page_writes=off`,
      'start',
    ],
    { stdout: 'ignore', user },
  ).done;
  return {
    connection: { host: '127.0.0.1', port, user: 'postgres', password: 'drill', database: 'postgres' },
    async stop() {
      await runTool(toolPath(binDir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], {
        stdout: 'ignore',
        user,
      }).done.catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ScratchNeo4j {
  /** neo4j-admin pointed at the scratch store (load the dumps with it before `start`). */
  admin: Neo4jAdmin;
  /** Its NEO4J_HOME and configuration folder (restoreNeo4jCommunity's `store`: where a staged load goes). */
  store: { home: string; conf: string };
  start(): Promise<BoltConnection>;
  stop(): Promise<void>;
}

/**
 * A Neo4j configuration of its own (data, logs and run folders in `dir`, Bolt on a free loopback
 * port, HTTP off, authentication off) for the server of `home`; the server runs as
 * `<home>/bin/neo4j console`, as in the official image.
 *
 * @param options.edition `enterprise`: the licenses directory (`server.directories.licenses`,
 *   default `<home>/licenses`: Operations Manual 5, "Default file locations", Licenses) is the
 *   scratch folder's own too, with a copy of what the image's holds, so the licence agreement a
 *   drill accepts (acceptNeo4jLicence) stays with the disposable server and goes with it.
 */
export async function prepareScratchNeo4j(
  home: string,
  adminPath: string,
  dir: string,
  memory: { heap: string; pageCache: string },
  options: { edition?: 'community' | 'enterprise' } = {},
): Promise<ScratchNeo4j> {
  await rm(dir, { recursive: true, force: true });
  const conf = join(dir, 'conf');
  for (const sub of ['conf', 'data/databases', 'data/transactions', 'logs', 'run', 'import', 'plugins'])
    await mkdir(join(dir, sub), { recursive: true });
  const enterprise = options.edition === 'enterprise';
  if (enterprise) {
    await mkdir(join(dir, 'licenses'));
    if (existsSync(join(home, 'licenses')))
      await cp(join(home, 'licenses'), join(dir, 'licenses'), { recursive: true });
  }
  const port = await freeLoopbackPort();
  await writeDisposableNeo4jConf({
    baseConfFile: join(home, 'conf', 'neo4j.conf'),
    confDir: conf,
    workDir: dir,
    port,
    memory,
    extra: {
      'server.directories.data': join(dir, 'data'),
      'server.directories.import': join(dir, 'import'),
      ...(enterprise ? { 'server.directories.licenses': join(dir, 'licenses') } : {}),
    },
    comment: 'restore drill: a disposable instance',
  });
  const env = { ...process.env, NEO4J_HOME: home, NEO4J_CONF: conf, HEAP_SIZE: memory.heap };
  // Plain Bolt, no `tls`: the drill's disposable server, started by this runner on loopback with
  // authentication off. No credential of the target goes anywhere, and nothing outside the task can
  // reach 127.0.0.1, so this is not "credentials in the clear" to a remote host; core/readiness/neo4j-tls.ts
  // allows a plain URI without `tls` for loopback hosts only.
  const connection: BoltConnection = {
    uri: `bolt://127.0.0.1:${port}`,
    username: 'neo4j',
    password: 'drill',
  };
  let server: ChildProcess | undefined;
  let exited = false;
  return {
    admin: { path: adminPath, env },
    store: { home, conf },
    async start() {
      server = spawn(join(home, 'bin', 'neo4j'), ['console'], { env, stdio: 'ignore', detached: false });
      server.once('exit', () => {
        exited = true;
      });
      // Bounded like every other wait for a server (core/readiness), and given up when the process exits.
      await waitForNeo4j(connection, ['neo4j', 'system'], {
        timeoutSeconds: readyTimeoutFromEnv('NEO4J_READY_TIMEOUT_SECONDS'),
        pollMs: 500,
        stopIf: () => (exited ? "the drill's Neo4j process exited (see its log)" : undefined),
      });
      return connection;
    },
    async stop() {
      if (server && !exited) {
        const gone = new Promise((r) => server?.once('exit', r));
        server.kill('SIGTERM');
        const timer = setTimeout(() => server?.kill('SIGKILL'), 60_000);
        await gone;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The Neo4j Enterprise licence agreement a deployment runs under (config `neo4j.licence`). */
export type Neo4jLicence = 'commercial' | 'evaluation';

/**
 * Accepts the Neo4j Enterprise licence agreement for a disposable server before it starts: Neo4j
 * 5.4 and later refuse to start Enterprise until it is accepted, and the official image's
 * entrypoint, which accepts it from NEO4J_ACCEPT_LICENSE_AGREEMENT, does not run in the runner
 * (its entrypoint is ours). Runs `neo4j-admin server license --accept-commercial` or
 * `--accept-evaluation` (Operations Manual 5, "Linux installation" / tarball: "Accept either the
 * commercial or the evaluation license agreement before running the Neo4j Enterprise Edition")
 * under `admin.env`, the disposable server's own NEO4J_HOME and NEO4J_CONF, so the acceptance is
 * recorded where that server looks for it (its scratch licenses directory, prepareScratchNeo4j).
 * Where that command records the acceptance is not documented, so the other documented way is taken
 * too: `NEO4J_ACCEPT_LICENSE_AGREEMENT` (`yes` or `eval`, same page) is set in `admin.env`, the
 * environment the disposable server is started with.
 *
 * @returns the arguments run (the drill reports them)
 * @throws ToolFailedError when neo4j-admin refuses or fails (the server is then never started)
 */
export async function acceptNeo4jLicence(admin: Neo4jAdmin, licence: Neo4jLicence): Promise<string[]> {
  const args = [
    'server',
    'license',
    licence === 'commercial' ? '--accept-commercial' : '--accept-evaluation',
  ];
  await runTool(admin.path, args, { env: admin.env ?? process.env, stdout: 'ignore' }).done;
  if (admin.env) admin.env.NEO4J_ACCEPT_LICENSE_AGREEMENT = licence === 'commercial' ? 'yes' : 'eval';
  return args;
}

/**
 * Runs `work` in a new folder under `base` (created when missing) that this run alone creates, and
 * removes that folder afterwards, whatever happens. Restore steps never delete a folder they did
 * not create: a scratch setting (RESTORE_WORK_DIR) that points at existing data, such as the Neo4j
 * store itself, cannot have that data removed by a failed or finished restore.
 */
export async function inOwnScratch<T>(
  base: string,
  purpose: string,
  work: (dir: string) => Promise<T>,
): Promise<T> {
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(join(base, `infrahub-${purpose}-`));
  // mkdtemp makes it 0700; a drill's disposable PostgreSQL runs as another account and must reach
  // its data folder below (as with the plain folder before).
  await chmod(dir, 0o755);
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
