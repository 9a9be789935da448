import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { HarnessStartError } from './errors.js';
import { repoRoot } from './paths.js';
import {
  freePort,
  harnessTempDir,
  isAlive,
  releaseHarnessDir,
  removeHarnessDir,
  stopPid,
  tail,
  track,
  waitUntil,
} from './processes.js';
import { scaled } from './time-scale.js';

const SERVICE = 'PostgreSQL';

export interface PostgresOptions {
  /** Folder holding initdb, pg_ctl, postgres, pg_dump and pg_restore; found automatically if unset. */
  binDir?: string;
  /** When running as root, the unprivileged account that owns and runs the cluster. */
  runAs?: string;
  /** Extra server settings (`-c name=value`). */
  settings?: Record<string, string>;
  /**
   * TLS: the server starts with `ssl=on` and a certificate for 127.0.0.1 and localhost signed by a
   * CA generated for it (openssl), and pg_hba.conf accepts TCP logins only over TLS (`hostssl`), so
   * an unencrypted connection is refused ("no pg_hba.conf entry ... no encryption"). Off by default.
   */
  tls?: boolean;
  /**
   * The cluster's locale (initdb --locale), `C` by default. A locale the system lacks (Debian's
   * minimal images have only C.UTF-8) is compiled once with localedef into .cache/locales and the
   * server runs with LOCPATH pointing there (glibc reads locales from LOCPATH).
   */
  locale?: string;
  /** The superuser's password (random when unset); needed with `fromDataDir`, whose roles it keeps. */
  password?: string;
  /**
   * A stopped cluster's data folder to start from instead of initdb: copied (cp -a) first, so the
   * copy is what the server changes. Its superuser must be `postgres` with `password`.
   */
  fromDataDir?: string;
}

/** A server's TLS material (PEM files): the CA that signed its certificate. */
export interface PostgresTlsFiles {
  /** The CA certificate to trust (libpq sslrootcert, node-postgres `ssl.ca`). */
  caFile: string;
}

export interface PostgresServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly binDir: string;
  /** The server's major version, as `postgres --version` reports it. */
  readonly majorVersion: number;
  readonly pid: number;
  readonly dataDir: string;
  /** A libpq URL for a database of this server (with TLS: `?sslmode=verify-full&sslrootcert=<CA>`). */
  url(database?: string): string;
  /** libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD) for the tools. */
  env(database?: string): Record<string, string>;
  /** Path of one of the server's programs (pg_dump, pg_restore, psql, ...). */
  tool(name: string): string;
  /** Set when started with `tls`: its CA. env() then carries PGSSLMODE=verify-full and PGSSLROOTCERT. */
  readonly tls?: PostgresTlsFiles;
  /** Stops the server (fast shutdown) and removes its folder, unless `keepFiles` (dataDir stays). */
  stop(options?: { keepFiles?: boolean }): Promise<void>;
}

/** The newest PostgreSQL installation of Debian's layout, else what pg_config reports. */
export function findPostgresBinDir(): string | undefined {
  const fromEnv = process.env.PG_BINDIR;
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (existsSync(join(dir, 'initdb'))) return dir;
  } catch {
    // no pg_config on PATH
  }
  return undefined;
}

/**
 * The environment under which a program has `locale`: empty when the system has it (`locale -a`),
 * else LOCPATH naming .cache/locales, where localedef compiled it from Debian's sources
 * (/usr/share/i18n; the package `locales`).
 * @throws HarnessStartError when the locale can be neither found nor compiled.
 */
export function localeEnv(locale: string): Record<string, string> {
  const normalise = (name: string) => name.toLowerCase().replace('utf-8', 'utf8');
  if (['c', 'posix', 'c.utf8'].includes(normalise(locale))) return {};
  const installed = spawnSync('locale', ['-a'], { encoding: 'utf8' }).stdout ?? '';
  if (installed.split('\n').some((l) => normalise(l.trim()) === normalise(locale))) return {};
  const dir = join(repoRoot, '.cache', 'locales');
  if (!existsSync(join(dir, locale, 'LC_COLLATE'))) {
    const [name, charset = 'UTF-8'] = locale.split('.');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const made = spawnSync('localedef', ['-i', name as string, '-f', charset, join(dir, locale)], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    // localedef exits 1 on warnings while still writing the locale.
    if (!existsSync(join(dir, locale, 'LC_COLLATE')))
      throw new HarnessStartError(
        SERVICE,
        `the locale ${locale} is not installed and localedef could not compile it (exit ${made.status}): ${made.stderr || made.error?.message} (install the Debian package "locales")`,
      );
  }
  return { LOCPATH: dir };
}

function lookupAccount(name: string): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new HarnessStartError(
      SERVICE,
      `running as root, and the unprivileged account "${name}" that should own the cluster does not exist ` +
        '(initdb refuses to run as root; set HARNESS_PG_USER to an existing account)',
    );
  }
}

function openssl(args: string[], cwd: string): void {
  const run = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0)
    throw new HarnessStartError(
      SERVICE,
      `openssl ${args[0]} failed (exit ${run.status}): ${run.stderr || run.error?.message}`,
    );
}

/**
 * A self-signed CA generated with openssl in `dir` (`<name>.crt`, `<name>.key`, RSA 2048, valid two
 * days): for a TLS test server, or as the wrong CA a client must refuse.
 * @returns the certificate and key files.
 * @throws HarnessStartError when openssl fails (not installed, ...).
 */
export function generateTestCa(dir: string, name = 'ca'): { certFile: string; keyFile: string } {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=infrahub-backup test ${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    dir,
  );
  return { certFile, keyFile };
}

/**
 * A server certificate signed by `ca` (generateTestCa), generated with openssl in `dir`:
 * `<name>.crt` and `<name>.key` (RSA 2048, PKCS#8 PEM, valid two days), its subjectAltName entries
 * `subjectAltNames` (`IP:127.0.0.1`, `DNS:localhost`, ...), CN the first of them, for TLS serverAuth.
 * @returns the certificate and key files (the key readable by its owner only).
 * @throws HarnessStartError when openssl fails.
 */
export function issueTestCertificate(
  dir: string,
  ca: { certFile: string; keyFile: string },
  name: string,
  subjectAltNames: string[],
): { certFile: string; keyFile: string } {
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(
    extFile,
    `subjectAltName=${subjectAltNames.join(',')}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`,
  );
  const cn = (subjectAltNames[0] ?? 'localhost').replace(/^(IP|DNS):/, '');
  openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', keyFile, '-out', csrFile],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csrFile,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      extFile,
      '-out',
      certFile,
    ],
    dir,
  );
  chmodSync(keyFile, 0o600);
  return { certFile, keyFile };
}

/**
 * The server's TLS files in `dir`: a CA and a server certificate it signs for 127.0.0.1 and
 * localhost (subjectAltName IP and DNS, CN 127.0.0.1), the key readable by its owner only (PostgreSQL
 * refuses a key others can read).
 */
function serverTlsFiles(dir: string, account?: { uid: number; gid: number }) {
  const ca = generateTestCa(dir, 'ca');
  const { certFile, keyFile } = issueTestCertificate(dir, ca, 'server', ['IP:127.0.0.1', 'DNS:localhost']);
  if (account) for (const f of [keyFile, certFile]) chownSync(f, account.uid, account.gid);
  return { caFile: ca.certFile, certFile, keyFile };
}

/**
 * Creates a throw-away cluster with initdb and starts it with pg_ctl on 127.0.0.1 and a free
 * port. Password authentication over TCP, as against a real deployment.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const binDir = options.binDir ?? findPostgresBinDir();
  if (!binDir || !existsSync(join(binDir, 'initdb'))) {
    throw new HarnessStartError(
      SERVICE,
      `initdb not found${binDir ? ` in ${binDir}` : ''} (install the server packages, e.g. "apt-get install postgresql", or set PG_BINDIR)`,
    );
  }
  const isRoot = process.getuid?.() === 0;
  const account = isRoot
    ? lookupAccount(options.runAs ?? process.env.HARNESS_PG_USER ?? 'postgres')
    : undefined;

  const dir = harnessTempDir('ibh-pg-');
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  const pwFile = join(dir, 'pwfile');
  const user = 'postgres';
  const password = options.password ?? randomBytes(18).toString('base64url');
  if (options.fromDataDir && !options.password)
    throw new HarnessStartError(SERVICE, 'fromDataDir needs the password of the cluster it copies');
  const extraEnv = localeEnv(options.locale ?? 'C');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (account) {
    chownSync(dir, account.uid, account.gid);
    chownSync(pwFile, account.uid, account.gid);
  }
  chmodSync(dir, 0o700);

  const asAccount = account ? { uid: account.uid, gid: account.gid } : {};
  const run = (program: string, args: string[]) =>
    spawnSync(join(binDir, program), args, {
      encoding: 'utf8',
      cwd: dir,
      ...asAccount,
      env: { ...process.env, ...extraEnv },
      timeout: 120_000,
    });

  const version = run('postgres', ['--version']);
  const majorVersion = Number(/(\d+)(\.\d+)?/.exec(version.stdout ?? '')?.[1] ?? Number.NaN);
  if (version.status !== 0 || Number.isNaN(majorVersion)) {
    removeHarnessDir(dir);
    throw new HarnessStartError(
      SERVICE,
      `"postgres --version" failed: ${version.stderr || version.error?.message}`,
    );
  }

  const init = options.fromDataDir
    ? spawnSync('cp', ['-a', options.fromDataDir, dataDir], { encoding: 'utf8' })
    : run('initdb', [
        '-D',
        dataDir,
        '-U',
        user,
        `--pwfile=${pwFile}`,
        '--auth-host=scram-sha-256',
        '--auth-local=scram-sha-256',
        '--encoding=UTF8',
        `--locale=${options.locale ?? 'C'}`,
        '--no-sync',
      ]);
  if (options.fromDataDir && account) spawnSync('chown', ['-R', `${account.uid}:${account.gid}`, dataDir]);
  // A copied cluster's stale postmaster.pid would stop pg_ctl from starting it.
  if (options.fromDataDir) rmSync(join(dataDir, 'postmaster.pid'), { force: true });
  rmSync(pwFile, { force: true });
  if (init.status !== 0) {
    removeHarnessDir(dir);
    throw new HarnessStartError(
      SERVICE,
      `${options.fromDataDir ? `copying ${options.fromDataDir}` : 'initdb'} failed (exit ${init.status}): ${init.stderr || init.error?.message}`,
    );
  }

  let tlsFiles: ReturnType<typeof serverTlsFiles> | undefined;
  if (options.tls) {
    try {
      tlsFiles = serverTlsFiles(dir, account);
      // TCP logins over TLS only; the unix socket (pg_ctl, pg_isready's own checks) as initdb set it.
      writeFileSync(
        join(dataDir, 'pg_hba.conf'),
        'local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n',
      );
    } catch (err) {
      removeHarnessDir(dir);
      throw err;
    }
  }

  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    // A throw-away cluster: durability buys nothing here and costs seconds per test.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...(tlsFiles ? { ssl: 'on', ssl_cert_file: tlsFiles.certFile, ssl_key_file: tlsFiles.keyFile } : {}),
    ...options.settings,
  };
  const serverOptions = [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  const start = run('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', serverOptions, '-w', '-t', '60', 'start']);
  const pidFile = join(dataDir, 'postmaster.pid');
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : Number.NaN;
  if (start.status !== 0 || Number.isNaN(pid)) {
    if (!Number.isNaN(pid)) await stopPid(pid, 'SIGINT');
    const logTail = tail(logFile);
    removeHarnessDir(dir);
    throw new HarnessStartError(
      SERVICE,
      `pg_ctl start failed (exit ${start.status}): ${start.stderr || start.stdout || start.error?.message}`,
      logTail,
    );
  }
  track(pid);

  const pgIsReady = join(binDir, 'pg_isready');
  const notReady = await waitUntil(
    async () => spawnSync(pgIsReady, ['-h', '127.0.0.1', '-p', String(port)]).status === 0,
    { timeoutMs: scaled(30_000), alive: () => isAlive(pid) },
  );
  if (notReady) {
    await stopPid(pid, 'SIGINT');
    const logTail = tail(logFile);
    removeHarnessDir(dir);
    throw new HarnessStartError(SERVICE, notReady, logTail);
  }

  // With TLS the URL verifies the server (libpq and node-postgres both read sslmode and sslrootcert).
  const tlsQuery = tlsFiles ? `?sslmode=verify-full&sslrootcert=${encodeURIComponent(tlsFiles.caFile)}` : '';
  const url = (database = 'postgres') =>
    `postgresql://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}${tlsQuery}`;
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    binDir,
    majorVersion,
    pid,
    dataDir,
    url,
    env: (database = 'postgres') => ({
      PGHOST: '127.0.0.1',
      PGPORT: String(port),
      PGUSER: user,
      PGPASSWORD: password,
      PGDATABASE: database,
      ...(tlsFiles ? { PGSSLMODE: 'verify-full', PGSSLROOTCERT: tlsFiles.caFile } : {}),
    }),
    tool: (name) => join(binDir, name),
    ...(tlsFiles ? { tls: { caFile: tlsFiles.caFile } } : {}),
    async stop(stopOptions) {
      // SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit.
      await stopPid(pid, 'SIGINT');
      if (stopOptions?.keepFiles) releaseHarnessDir(dir);
      else removeHarnessDir(dir);
    },
  };
}
