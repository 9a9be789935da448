import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Driver } from 'neo4j-driver';
import { boltUri, type Neo4jTls, openBoltDriver } from '../core/readiness/neo4j-tls.js';
import { HarnessStartError } from './errors.js';
import { cacheDir, isNeo4jInstalled, neo4jEntryPoint, neo4jLibDir, neo4jVersion } from './paths.js';
import { generateTestCa, issueTestCertificate } from './postgres.js';
import {
  freePort,
  harnessTempDir,
  releaseHarnessDir,
  removeHarnessDir,
  type Spawned,
  spawnLogged,
  stopPid,
  tail,
  waitUntil,
} from './processes.js';
import { scaled } from './time-scale.js';

const SERVICE = 'Neo4j';

/** JVM flags of Neo4j's own launcher that matter on Java 17+ (module access for Netty and the page cache). */
const JVM_FLAGS = [
  '-XX:+UseG1GC',
  '-XX:-OmitStackTraceInFastThrow',
  '-XX:+UnlockExperimentalVMOptions',
  '-XX:+TrustFinalNonStaticFields',
  '-XX:+DisableExplicitGC',
  '-Djdk.nio.maxCachedBufferSize=1024',
  '-Dio.netty.tryReflectionSetAccessible=true',
  '-Dlog4j2.disable.jmx=true',
  '-Dfile.encoding=UTF-8',
  '--add-opens=java.base/java.nio=ALL-UNNAMED',
  '--add-opens=java.base/java.io=ALL-UNNAMED',
  '--add-opens=java.base/sun.nio.ch=ALL-UNNAMED',
];

/**
 * Shorter JVM starts for the test suite, where harness instances start Neo4j and neo4j-admin
 * hundreds of times on two cores (a neo4j-admin run took 6.1 s and 4.2 s with these, on a loaded
 * machine). Two JVM options that change how fast the JVM starts, never what Neo4j does:
 * - `-XX:TieredStopAtLevel=1`: the C1 compiler only, which costs far less CPU at start (not for a
 *   server started with `longRunning`, whose load C1-only code serves more slowly);
 * - an application class-data-sharing archive: the classes a first run loaded, mapped by the next
 *   runs instead of parsed and verified again (a dynamic archive, `-XX:ArchiveClassesAtExit` then
 *   `-XX:SharedArchiveFile`: Java SE "Class Data Sharing", JDK 13 and later). One per Neo4j version,
 *   tool, java and class path, in .cache/jvm-cds. A run writes it under a name of its own, renamed
 *   into place only after that JVM exited by itself, so no run maps a half-written archive;
 *   `-XX:+VerifySharedSpaces` checks the archive's checksums before use, and a JVM that finds it
 *   unusable runs without it (`-Xshare:auto`). `-Xlog:cds*=off` keeps the JVM's CDS messages out of
 *   neo4j-admin's output, which the runner parses.
 * Only under vitest (VITEST is set) and unless HARNESS_JVM_QUICK_START=0: the benchmarks (bench/)
 * and the demo time Neo4j's own JVM settings.
 */
interface QuickStart {
  /** Options for a JVM of this tool. */
  readonly flags: string[];
  /** When the archive is still missing: the file this run writes, for adoptArchive once it exited. */
  readonly writes?: string;
  /** The archive; a wrapper script uses it when it exists at the time it runs. */
  readonly archive: string;
}

function quickStart(
  version: string,
  java: string,
  classpath: string,
  tool: 'server' | 'admin',
  longRunning = false,
): QuickStart | undefined {
  if (!process.env.VITEST || process.env.HARNESS_JVM_QUICK_START === '0') return undefined;
  const dir = join(cacheDir, 'jvm-cds');
  mkdirSync(dir, { recursive: true });
  // Archives a run was writing when its process died (the suite's files are each under a minute old
  // when adopted): an hour old, they are nobody's.
  for (const name of readdirSync(dir))
    if (/\.jsa\./.test(name) && Date.now() - statSync(join(dir, name)).mtimeMs > 3_600_000)
      rmSync(join(dir, name), { force: true });
  // An archive holds only for the java and class path it was made with (a JVM silently ignores one
  // made for another path, so a checkout moved elsewhere gets archives of its own).
  const id = createHash('sha256').update(`${java}\n${classpath}`).digest('hex').slice(0, 12);
  const archive = join(dir, `neo4j-${version}-${tool}-${id}.jsa`);
  const common = [
    ...(longRunning ? [] : ['-XX:TieredStopAtLevel=1']),
    '-Xshare:auto',
    '-XX:+VerifySharedSpaces',
    '-Xlog:cds*=off',
  ];
  if (existsSync(archive)) return { flags: [...common, `-XX:SharedArchiveFile=${archive}`], archive };
  const writes = `${archive}.${process.pid}-${randomBytes(4).toString('hex')}`;
  return { flags: [...common, `-XX:ArchiveClassesAtExit=${writes}`], writes, archive };
}

/**
 * Puts the archive a JVM wrote in place when that JVM exited by itself (`exitedCleanly`: a SIGTERM
 * the JVM handled counts; a SIGKILL may have cut the file short) and no other run put one there
 * first. Removes it otherwise.
 */
function adoptArchive(quick: QuickStart | undefined, exitedCleanly: boolean): void {
  if (!quick?.writes || !existsSync(quick.writes)) return;
  if (exitedCleanly && !existsSync(quick.archive)) renameSync(quick.writes, quick.archive);
  else rmSync(quick.writes, { force: true });
}

/**
 * The shell lines that set a wrapper script's $QUICK_START (options, no spaces) and $CDS (the
 * archive option, one word however its path is spelt), for `quickWords` to pass to java.
 */
function archiveInScript(quick: QuickStart | undefined): string[] {
  if (!quick) return [];
  const flags = quick.flags.filter(
    (f) => !f.startsWith('-XX:ArchiveClassesAtExit=') && !f.startsWith('-XX:SharedArchiveFile='),
  );
  return [
    // No pathname expansion of the options (-Xlog:cds*=off) when $QUICK_START is expanded below.
    'set -f',
    `QUICK_START='${flags.join(' ')}'`,
    "CDS=''",
    `if [ -f '${quick.archive}' ]; then CDS='-XX:SharedArchiveFile=${quick.archive}';`,
    // The harness's own first run of a tool writes the archive (HARNESS_CDS_WRITE, see quickStart).
    'elif [ -n "$HARNESS_CDS_WRITE" ]; then CDS="-XX:ArchiveClassesAtExit=$HARNESS_CDS_WRITE"; fi',
  ];
}

export interface Neo4jOptions {
  /** Defaults to the version pinned in harness/neo4j/pom.xml. */
  version?: string;
  heap?: string;
  pageCache?: string;
  /** A fixed Bolt port; a free one is chosen when unset. */
  boltPort?: number;
  /** The neo4j user's password; random when unset. With `fromDataDir`, the one that store has. */
  password?: string;
  /**
   * A stopped instance's `data` folder to start from (copied with cp -a) instead of an empty store:
   * its databases and its `system` database (users and passwords) come along.
   */
  fromDataDir?: string;
  /**
   * Lines added to neo4j.conf (`name=value`), after the harness's own: e.g. larger memory or
   * `db.tx_log.preallocate=false`.
   */
  settings?: Record<string, string>;
  /**
   * Bolt over TLS only: a CA is generated for the instance (openssl) and signs the server's
   * certificate for `subjectAltNames` (default `IP:127.0.0.1`, `DNS:localhost`), installed as the
   * `bolt` SSL policy with `server.bolt.tls_level=REQUIRED` (Neo4j Operations Manual 5, "SSL
   * framework", "Configure SSL over Bolt"), so an unencrypted connection is refused. Off by default.
   */
  tls?: boolean | { subjectAltNames?: string[] };
  /**
   * The server serves a real application for minutes (the Infrahub stack, harness/infrahub.ts): under
   * vitest its JVM keeps both of HotSpot's compilers instead of C1 alone (see QuickStart). Measured
   * on this 2-core machine: Infrahub's first start took 87 s instead of 133 and its seeding 109 s
   * instead of 185 with both; for the suite's own short-lived servers, C1 alone starts a server in
   * 6 s instead of 7.5 and runs their few queries no slower.
   */
  longRunning?: boolean;
}

/** A TLS instance's files: the CA that signed its Bolt certificate. */
export interface Neo4jTlsFiles {
  /** The CA certificate to trust (PEM). */
  caFile: string;
  /** The subjectAltName entries of the server's certificate (`IP:…`, `DNS:…`). */
  subjectAltNames: string[];
}

export interface Neo4jServer {
  readonly version: string;
  readonly edition: 'community';
  readonly boltPort: number;
  /**
   * `bolt://127.0.0.1:<port>`; with `tls`, `bolt+s://<host>:<port>` where host is 127.0.0.1 when the
   * certificate lists it, else the first DNS name it lists.
   */
  readonly boltUrl: string;
  /** The TLS the harness connects with: `disable`, or with `tls` verify-full against its CA. */
  readonly boltTls: Neo4jTls;
  /** Set when started with `tls`. */
  readonly tls?: Neo4jTlsFiles;
  readonly user: 'neo4j';
  readonly password: string;
  /** NEO4J_HOME of this instance (conf/, data/, logs/). */
  readonly home: string;
  /** An executable `neo4j-admin` bound to this instance's home and configuration, like the real one. */
  readonly adminPath: string;
  /** PID of the running DBMS, or undefined while stopped. */
  pid(): number | undefined;
  /** The environment under which `adminPath` finds this instance (NEO4J_HOME, NEO4J_CONF). */
  adminEnv(): Record<string, string>;
  driver(): Driver;
  /** Stops the DBMS (needed before a Community dump or load); the instance can be started again. */
  stopDbms(): Promise<void>;
  startDbms(): Promise<void>;
  /**
   * Stops the DBMS, deletes every database and transaction log (system included: users and
   * passwords go too), sets the same initial password again, as a freshly deployed server with the
   * same credentials would have, and starts it: an empty DBMS with only the default databases.
   */
  wipeStores(): Promise<void>;
  /** The folder of the instance's stores (`<home>/data`). */
  readonly dataDir: string;
  /** Stops the DBMS and removes the instance, unless `keepFiles` (then `home` stays). */
  stop(options?: { keepFiles?: boolean }): Promise<void>;
}

function javaMajor(java: string): number {
  const run = spawnSync(java, ['-version'], { encoding: 'utf8' });
  if (run.error || run.status !== 0) return 0;
  return Number(/version "(\d+)/.exec(run.stderr)?.[1] ?? 0);
}

/**
 * The java that runs a Neo4j version: 5.x supports Java 17 and 21, 2025.x Java 21 or later only
 * (Neo4j Operations Manual, "System requirements"). Looks at NEO4J_JAVA_HOME, JAVA_HOME, `java` on
 * PATH and the JDKs under /usr/lib/jvm, and takes the first whose major version fits.
 * @returns the path of the java executable.
 * @throws HarnessStartError when none fits, naming what was found.
 */
export function javaFor(version: string): string {
  const calendar = Number(version.split('.')[0]) >= 2025;
  const fits = (major: number) => (calendar ? major >= 21 : major >= 17 && major <= 21);
  const homes = [process.env.NEO4J_JAVA_HOME, process.env.JAVA_HOME].filter((h): h is string => !!h);
  const jvms = existsSync('/usr/lib/jvm')
    ? readdirSync('/usr/lib/jvm')
        .sort()
        .map((d) => join('/usr/lib/jvm', d))
    : [];
  const candidates = [
    ...homes.map((h) => join(h, 'bin', 'java')),
    'java',
    ...jvms.map((h) => join(h, 'bin', 'java')),
  ];
  const seen: string[] = [];
  for (const java of candidates) {
    if (java !== 'java' && !existsSync(java)) continue;
    const major = javaMajor(java);
    if (fits(major)) return java;
    seen.push(`${java} (${major || 'not runnable'})`);
  }
  throw new HarnessStartError(
    SERVICE,
    `Neo4j ${version} needs Java ${calendar ? '21 or later' : '17 or 21'}; found ${seen.join(', ') || 'no java'} (set NEO4J_JAVA_HOME to a fitting JDK)`,
  );
}

/**
 * Starts Neo4j Community from the classpath that scripts/setup.sh resolved from Maven Central
 * (org.neo4j:neo4j and its dependencies: the server entry point and neo4j-admin in one), on the
 * java its version needs (javaFor). The instance's `bin/neo4j-admin` and `bin/neo4j` carry their
 * own java and classpath, so a runner started with only its task environment runs the right ones
 * (a 5.26 neo4j-admin refuses a 2025.x store with UnsupportedLogVersionException).
 * @throws HarnessStartError when the jars or a fitting java are missing, or the server does not
 *   answer Bolt within 120 s (with the tail of its logs).
 */
export async function startNeo4j(options: Neo4jOptions = {}): Promise<Neo4jServer> {
  const version = options.version ?? neo4jVersion();
  if (!isNeo4jInstalled(version)) {
    throw new HarnessStartError(
      SERVICE,
      `the Neo4j ${version} jars are not in ${neo4jLibDir(version)} (run "npm run setup" to fetch them from Maven Central)`,
    );
  }
  const java = javaFor(version);
  const entryPoint = neo4jEntryPoint(version);
  const classpath = `${neo4jLibDir(version)}/*`;

  const home = harnessTempDir('ibh-neo4j-');
  for (const sub of ['conf', 'logs', 'run', 'plugins', 'import', 'bin']) mkdirSync(join(home, sub));
  const dataDir = join(home, 'data');
  if (options.fromDataDir) {
    const copied = spawnSync('cp', ['-a', options.fromDataDir, dataDir], { encoding: 'utf8' });
    if (copied.status !== 0) {
      removeHarnessDir(home);
      throw new HarnessStartError(SERVICE, `copying ${options.fromDataDir} failed: ${copied.stderr}`);
    }
  } else mkdirSync(dataDir);
  const boltPort = options.boltPort ?? (await freePort());
  let tlsFiles: Neo4jTlsFiles | undefined;
  const tlsSettings: string[] = [];
  if (options.tls) {
    const sans = (typeof options.tls === 'object' ? options.tls.subjectAltNames : undefined) ?? [
      'IP:127.0.0.1',
      'DNS:localhost',
    ];
    const certs = join(home, 'certificates', 'bolt');
    for (const sub of ['trusted', 'revoked']) mkdirSync(join(certs, sub), { recursive: true });
    try {
      const ca = generateTestCa(certs, 'ca');
      const server = issueTestCertificate(certs, ca, 'public', sans);
      renameSync(server.keyFile, join(certs, 'private.key'));
      copyFileSync(ca.certFile, join(certs, 'trusted', 'ca.crt'));
      tlsFiles = { caFile: ca.certFile, subjectAltNames: sans };
    } catch (err) {
      removeHarnessDir(home);
      throw err;
    }
    tlsSettings.push(
      'dbms.ssl.policy.bolt.enabled=true',
      `dbms.ssl.policy.bolt.base_directory=${certs}`,
      'dbms.ssl.policy.bolt.private_key=private.key',
      'dbms.ssl.policy.bolt.public_certificate=public.crt',
      'dbms.ssl.policy.bolt.trusted_dir=trusted',
      'dbms.ssl.policy.bolt.revoked_dir=revoked',
      'dbms.ssl.policy.bolt.client_auth=NONE',
      'server.bolt.tls_level=REQUIRED',
    );
  }
  writeFileSync(
    join(home, 'conf', 'neo4j.conf'),
    [
      'server.default_listen_address=127.0.0.1',
      `server.bolt.listen_address=127.0.0.1:${boltPort}`,
      'server.http.enabled=false',
      'server.https.enabled=false',
      // Never phone home: the harness sends traffic to loopback only.
      'dbms.usage_report.enabled=false',
      // Netty's graceful shutdown otherwise idles 10 s per stop (Bolt quiet period), and tests stop often.
      'internal.dbms.bolt.netty_server_shutdown_quiet_period=0',
      'internal.dbms.bolt.netty_server_shutdown_timeout=5',
      `server.memory.pagecache.size=${options.pageCache ?? '128m'}`,
      `server.memory.heap.initial_size=${options.heap ?? '512m'}`,
      `server.memory.heap.max_size=${options.heap ?? '512m'}`,
      ...tlsSettings,
      ...Object.entries(options.settings ?? {}).map(([k, v]) => `${k}=${v}`),
      '',
    ].join('\n'),
  );

  const adminPath = join(home, 'bin', 'neo4j-admin');
  const adminQuick = quickStart(version, java, classpath, 'admin');
  const serverQuick = quickStart(version, java, classpath, 'server', options.longRunning);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion ($CDS as one word when set)
  const quickWords = (quick: QuickStart | undefined) => (quick ? ' $QUICK_START ${CDS:+"$CDS"}' : '');
  writeFileSync(
    adminPath,
    [
      '#!/bin/sh',
      '# neo4j-admin for this harness instance: the AdminTool of the same classpath as the server.',
      `: "\${NEO4J_HOME:=${home}}"`,
      `: "\${NEO4J_CONF:=${join(home, 'conf')}}"`,
      'export NEO4J_HOME NEO4J_CONF',
      ...archiveInScript(adminQuick),
      `exec '${java}' -Xmx\${HEAP_SIZE:-512m} ${JVM_FLAGS.join(' ')}${quickWords(adminQuick)} -cp '${classpath}' org.neo4j.cli.AdminTool "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(adminPath, 0o755);
  // The server launcher, as `<home>/bin/neo4j console` runs it in the official image (a restore
  // drill starts a disposable instance with it, under a configuration folder of its own).
  const serverPath = join(home, 'bin', 'neo4j');
  writeFileSync(
    serverPath,
    [
      '#!/bin/sh',
      '# neo4j console for this harness installation: the server entry point of the same classpath.',
      `: "\${NEO4J_HOME:=${home}}"`,
      `: "\${NEO4J_CONF:=${join(home, 'conf')}}"`,
      ...archiveInScript(serverQuick),
      `exec '${java}' -Xms\${HEAP_SIZE:-512m} -Xmx\${HEAP_SIZE:-512m} ${JVM_FLAGS.join(' ')}${quickWords(serverQuick)} -cp '${classpath}' ${entryPoint} --home-dir="$NEO4J_HOME" --config-dir="$NEO4J_CONF"`,
      '',
    ].join('\n'),
  );
  chmodSync(serverPath, 0o755);
  const adminEnv = () => ({ NEO4J_HOME: home, NEO4J_CONF: join(home, 'conf') });

  if (options.fromDataDir && !options.password) {
    removeHarnessDir(home);
    throw new HarnessStartError(SERVICE, 'fromDataDir needs the password its system database holds');
  }
  const password = options.password ?? randomBytes(18).toString('base64url');
  // "--" ends the options: a password may start with "-" (base64url does, one time in 64).
  const setPassword = options.fromDataDir
    ? { status: 0, stderr: '' }
    : spawnSync(adminPath, ['dbms', 'set-initial-password', '--', password], {
        encoding: 'utf8',
        env: {
          ...process.env,
          ...adminEnv(),
          ...(adminQuick?.writes ? { HARNESS_CDS_WRITE: adminQuick.writes } : {}),
        },
      });
  adoptArchive(adminQuick, setPassword.status === 0);
  if (setPassword.status !== 0) {
    removeHarnessDir(home);
    throw new HarnessStartError(
      SERVICE,
      `neo4j-admin dbms set-initial-password failed: ${setPassword.stderr}`,
    );
  }

  // The harness connects as a client must: verify-full against its CA, by a name the certificate lists.
  const certHost = tlsFiles?.subjectAltNames.includes('IP:127.0.0.1')
    ? '127.0.0.1'
    : (tlsFiles?.subjectAltNames.find((s) => s.startsWith('DNS:'))?.slice(4) ?? '127.0.0.1');
  const boltTls: Neo4jTls = tlsFiles ? { mode: 'verify-full', caFile: tlsFiles.caFile } : { mode: 'disable' };
  const boltUrl = boltUri(tlsFiles ? certHost : '127.0.0.1', boltPort, boltTls.mode);
  const logFile = join(home, 'logs', 'console.log');
  let process_: Spawned | undefined;
  let driver_: Driver | undefined;

  const driver = () => {
    driver_ ??= openBoltDriver(
      { uri: boltUrl, username: 'neo4j', password, tls: boltTls },
      { connectionTimeout: 5_000, maxConnectionPoolSize: 10 },
    );
    return driver_;
  };
  const closeDriver = async () => {
    const d = driver_;
    driver_ = undefined;
    await d?.close();
  };

  let startQuick: QuickStart | undefined;
  const startDbms = async () => {
    if (process_?.alive()) return;
    startQuick = quickStart(version, java, classpath, 'server', options.longRunning);
    process_ = spawnLogged(
      java,
      [
        `-Xms${options.heap ?? '512m'}`,
        `-Xmx${options.heap ?? '512m'}`,
        ...JVM_FLAGS,
        ...(startQuick?.flags ?? []),
        '-cp',
        classpath,
        entryPoint,
        `--home-dir=${home}`,
        `--config-dir=${join(home, 'conf')}`,
      ],
      { logFile, cwd: home },
    );
    const started = process_;
    const notReady = await waitUntil(
      async () => {
        const session = driver().session({ database: 'neo4j' });
        try {
          await session.run('RETURN 1');
          return true;
        } finally {
          await session.close();
        }
      },
      { timeoutMs: scaled(120_000), alive: () => started.alive(), intervalMs: 500 },
    );
    if (notReady) {
      await closeDriver();
      if (started.alive()) await stopPid(started.pid);
      throw new HarnessStartError(
        SERVICE,
        `${notReady} (bolt ${boltUrl})`,
        [tail(logFile, 10), tail(join(home, 'logs', 'neo4j.log'), 15)].filter(Boolean).join('\n'),
      );
    }
  };

  const stopDbms = async () => {
    await closeDriver();
    const stopping = process_;
    if (stopping?.alive()) await stopPid(stopping.pid, 'SIGTERM', scaled(60_000));
    // A JVM that ended on SIGTERM (its own shutdown) finished writing its archive; a SIGKILL may not have.
    adoptArchive(startQuick, stopping?.child.signalCode === null);
    startQuick = undefined;
    process_ = undefined;
  };

  try {
    await startDbms();
  } catch (err) {
    removeHarnessDir(home);
    throw err;
  }

  return {
    version,
    edition: 'community',
    boltPort,
    boltUrl,
    boltTls,
    ...(tlsFiles ? { tls: tlsFiles } : {}),
    user: 'neo4j',
    password,
    home,
    adminPath,
    pid: () => (process_?.alive() ? process_.pid : undefined),
    adminEnv,
    driver,
    stopDbms,
    startDbms,
    dataDir,
    async wipeStores() {
      await stopDbms();
      for (const sub of ['databases', 'transactions', 'dbms'])
        rmSync(join(dataDir, sub), { recursive: true, force: true });
      const reset = spawnSync(adminPath, ['dbms', 'set-initial-password', '--', password], {
        encoding: 'utf8',
        env: { ...process.env, ...adminEnv() },
      });
      if (reset.status !== 0)
        throw new HarnessStartError(SERVICE, `neo4j-admin dbms set-initial-password failed: ${reset.stderr}`);
      await startDbms();
    },
    async stop(stopOptions) {
      await stopDbms();
      if (stopOptions?.keepFiles) releaseHarnessDir(home);
      else removeHarnessDir(home);
    },
  };
}
