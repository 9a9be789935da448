/**
 * `infrahub-backup export --redact`: an infrahub-backup tarball of a backup whose Neo4j attribute
 * values are replaced, for sharing with support, made without touching the source deployment or the
 * stored backup. OpsMill's `infrahub-backup create --redact` rewrites the live database before its
 * backup (its src/internal/app/backup_neo4j.go redactDatabase: every AttributeValue's value set to a
 * random UUID, "destructive and irreversible"); this export reads the stored backup only.
 *
 * 1. The backup's Neo4j files (each user database's dump, or an Enterprise full backup) are
 *    downloaded from their recorded S3 versions into a scratch folder, each held to the manifest's
 *    SHA-256 and size (core/s3/download.ts downloadVerified): S3 is only read.
 * 2. Per database, two disposable Neo4j servers are started from the operator's Neo4j installation
 *    (`--neo4j-home`, never the deployment's), each with its own configuration, data and logs in the
 *    scratch folder, Bolt on a free 127.0.0.1 port only, HTTP off, no usage report (the runner's
 *    writeDisposableNeo4jConf), authentication on with a random password of its own set by
 *    `neo4j-admin dbms set-initial-password` before the first start (Operations Manual, "Set an
 *    initial password"), so no other local user can read the backup or write into the copy: the source, with the backup loaded
 *    (`neo4j-admin database load`) and every database read-only
 *    (`server.databases.default_to_read_only`); the target, empty. core/redaction/graph-copy.ts
 *    copies the graph from one to the other, redacting on the way (core/redaction/values.ts), and
 *    checks the counts per label and relationship type. Both are stopped, and the target's database
 *    dumped (`neo4j-admin database dump`) and its format checked (core/backup/formats.ts).
 * 3. The archive (`infrahub_backup_YYYYMMDD_HHMMSS.tar.gz`, entries under `backup/`) holds the
 *    redacted dumps and a manifest (redactedManifest) with `"redacted": true` (infrahub-backup's own
 *    key: OpsMill's tool marks its redacted backups so), the new files' checksums and sizes, and a
 *    `redaction` section saying what was replaced and what was left out.
 *
 * SIGINT or SIGTERM while it runs stops the disposable servers and the tools it started, removes the
 * scratch folder (it holds the unredacted dump) and ends the process with 130 or 143.
 *
 * Left out: the task manager's database (`prefect.dump`: Prefect's flow runs carry parameters,
 * results and log lines, free text that no rule can redact), the artifacts (rendered
 * configurations: all data), and Neo4j's `system` database (its users and password hashes). A
 * restore of the archive keeps the target's own `system` and starts Prefect empty.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { access, constants, mkdir, mkdtemp, rm, statfs } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import neo4j from 'neo4j-driver';
import {
  freeLoopbackPort,
  writeDisposableNeo4jConf,
} from '../../containers/runner/src/components/scratch.js';
import {
  dumpFormatError,
  FormatProblem,
  type FormatVerdict,
  neo4jDumpCheck,
} from '../../core/backup/formats.js';
import { backupPathProblem } from '../../core/backup/layout.js';
import { type Manifest, validateManifest } from '../../core/backup/manifest.js';
import {
  IncompatibleBackupError,
  InsufficientScratchSpaceError,
  InvalidInputError,
  ManifestError,
} from '../../core/errors.js';
import { neo4jDatabaseNameProblem } from '../../core/neo4j-names.js';
import { waitForNeo4j } from '../../core/readiness/neo4j.js';
import { openBoltDriver } from '../../core/readiness/neo4j-tls.js';
import { readyTimeoutFromEnv } from '../../core/readiness/wait.js';
import { copyRedacted, type RedactedCopyReport, readSchemaStrings } from '../../core/redaction/graph-copy.js';
import { REDACTION_KEY_BYTES, valueRedactor } from '../../core/redaction/values.js';
import { downloadVerified } from '../../core/s3/download.js';
import { runTool, stopRunningTools, toolOutput } from '../../core/tools/run-tool.js';
import { TOOL_VERSION } from '../../core/version.js';
import { ARCHIVE_ROOT, addManifestEntry, assertWritableOutDir, writeArchive } from './tarball.js';

export interface RedactedExportOptions {
  /**
   * A Neo4j installation (NEO4J_HOME) with `bin/neo4j` and `bin/neo4j-admin`, of the backup's Neo4j
   * version or a later one, and the Java it needs (its own scripts find it: JAVA_HOME or PATH; Java
   * 21 for 2025.x). Community: Enterprise refuses to start before its licence is accepted.
   */
  neo4jHome: string;
  /** neo4j-admin (default `<neo4jHome>/bin/neo4j-admin`). */
  neo4jAdmin?: string;
  /** Where the scratch folder is made (a new `infrahub-redact-*` folder, removed afterwards). */
  workDir: string;
  /** Heap and page cache of each of the two disposable servers (default 512m and 256m). */
  memory?: { heap: string; pageCache: string };
  /** The per-export key (default: 32 random bytes, never stored). Tests give their own. */
  key?: Uint8Array;
  /** Progress lines for people (standard error). */
  onProgress?: (line: string) => void;
}

export interface RedactedExportResult {
  file: string;
  /** Files in the archive besides the manifest. */
  files: number;
  bytes: number;
  databases: RedactedCopyReport[];
  /** Backup files not in the archive, each with why. */
  leftOut: Array<{ path: string; reason: string }>;
}

/** Why each kind of file stays out of a redacted export (the manifest and the output say it). */
export const LEFT_OUT_REASONS = {
  prefect:
    "the task manager's database: Prefect's flow runs keep parameters, results and log lines, free text that cannot be redacted; a restore starts Prefect empty",
  artifacts: 'artifacts are rendered from the data (configurations): every byte is data',
  system:
    "Neo4j's system database: its users and password hashes; a restore keeps the target's own system database",
} as const;

/**
 * Writes the redacted archive of `manifest`'s backup into `outDir` (module docstring).
 *
 * @throws InvalidInputError naming `--neo4j-home` when it holds no runnable Neo4j (its neo4j-admin
 *   fails: no Java, the wrong Java), or `--out` when the folder is missing, not writable or already
 *   holds the archive
 * @throws ManifestError when the backup has no Neo4j database to export
 * @throws IncompatibleBackupError for an Enterprise backup chain (a full backup and differentials:
 *   Community loads a full backup only) or a dump the given Neo4j cannot load
 * @throws RestoreValidationError when a file differs from its checksum, or the redacted copy does
 *   not have the backup's counts; DumpFormatError when the dump written is not a valid dump
 */
export async function exportRedacted(
  s3: S3Client,
  bucket: string,
  target: string,
  manifest: Manifest,
  outDir: string,
  options: RedactedExportOptions,
): Promise<RedactedExportResult> {
  const backupId = manifest.backup_id;
  const what = `${target}/${backupId}`;
  const say = options.onProgress ?? (() => undefined);
  const databases = databasesToExport(manifest, what);
  const file = join(outDir, `${backupId}.tar.gz`);
  await assertWritableOutDir(outDir, file);
  const neo4jTool = await checkNeo4jHome(options.neo4jHome, options.neo4jAdmin);
  const key = options.key ?? randomBytes(REDACTION_KEY_BYTES);
  const memory = options.memory ?? { heap: '512m', pageCache: '256m' };

  // The scratch folder holds the unredacted files: mkdtemp makes it 0700, this user's alone.
  await mkdir(options.workDir, { recursive: true });
  const scratch = await mkdtemp(join(options.workDir, 'infrahub-redact-'));
  // A signal must not leave the unredacted files or the servers behind (exportSignalHandlers).
  const live = new Set<DisposableNeo4j>();
  const signals = exportSignalHandlers(scratch, live, say);
  try {
    await enoughScratch(
      scratch,
      databases.reduce((n, d) => n + (manifest.sizes?.[d.file] ?? 0), 0),
      what,
    );
    const dumps: Array<{
      path: string;
      file: string;
      sha256: string;
      size: number;
      report: RedactedCopyReport;
    }> = [];
    let server = { version: neo4jTool.version, edition: 'community' };
    for (const db of databases) {
      const dir = join(scratch, db.name);
      const stored = manifest.s3?.[db.file];
      const sha256 = manifest.checksums[db.file];
      if (!stored || !sha256) throw new ManifestError(`${what} records no stored copy of ${db.file}`);
      say(`${db.file}: downloading s3://${bucket}/${stored.key} and checking it against the manifest`);
      const loadDir = join(dir, 'load');
      const local = join(loadDir, db.file.endsWith('.dump') ? `${db.name}.dump` : basename(db.file));
      const { bytes } = await downloadVerified(
        s3,
        { bucket, key: stored.key, ...(stored.version_id ? { versionId: stored.version_id } : {}) },
        sha256,
        local,
      );
      const size = manifest.sizes?.[db.file];
      if (size !== undefined && bytes !== size)
        throw new IncompatibleBackupError(`${db.file} has ${bytes} bytes, the manifest records ${size}`);

      const source = await disposableNeo4j(neo4jTool, join(dir, 'source'), db.name, memory, true);
      live.add(source);
      const copy = await disposableNeo4j(neo4jTool, join(dir, 'copy'), db.name, memory, false);
      live.add(copy);
      try {
        say(`${db.file}: loading it into a disposable Neo4j ${neo4jTool.version} (read-only, 127.0.0.1)`);
        await loadInto(neo4jTool, source, db.name, loadDir, db.file);
        await Promise.all([source.start(), copy.start()]);
        const from = source.driver();
        const to = copy.driver();
        try {
          // One key for the whole export: a value has the same placeholder in every database.
          const schema = await readSchemaStrings(from, db.name);
          say(
            `${db.file}: copying the graph into an empty disposable Neo4j, every value redacted on the way`,
          );
          const report = await copyRedacted(from, to, db.name, valueRedactor(key, schema), {
            schemaStrings: schema.size,
            onProgress: ({ phase, done, total }) => say(`${db.file}: ${phase} ${done}/${total}`),
          });
          server = await serverOf(to);
          await copy.stop();
          const outFile = join(dir, 'dump', `${db.name}.dump`);
          await mkdir(join(dir, 'dump'), { recursive: true });
          say(`${db.file}: dumping the redacted copy (neo4j-admin database dump)`);
          await runTool(neo4jTool.admin, ['database', 'dump', db.name, `--to-path=${join(dir, 'dump')}`], {
            env: copy.env,
            stdout: 'ignore',
          }).done;
          const written = await checkedDump(outFile, `database/${db.name}.dump`);
          dumps.push({ path: `database/${db.name}.dump`, file: outFile, ...written, report });
        } finally {
          await Promise.allSettled([from.close(), to.close()]);
        }
      } finally {
        await Promise.allSettled([source.stop(), copy.stop()]);
        live.delete(source);
        live.delete(copy);
      }
    }

    const leftOut = leftOutFiles(
      manifest,
      databases.map((d) => d.file),
    );
    const redacted = redactedManifest(manifest, {
      target,
      dumps: dumps.map(({ path, sha256, size, report }) => ({ path, sha256, size, report })),
      leftOut,
      server,
      tool: neo4jTool.version,
    });
    say(`writing ${file}`);
    const mtime = new Date(manifest.created_at);
    await writeArchive(file, async (pack) => {
      for (const d of dumps) {
        const entry = pack.entry({ name: `${ARCHIVE_ROOT}${d.path}`, size: d.size, mode: 0o644, mtime });
        await pipeline(createReadStream(d.file), entry);
      }
      addManifestEntry(pack, redacted, mtime);
    });
    return {
      file,
      files: dumps.length,
      bytes: dumps.reduce((n, d) => n + d.size, 0),
      databases: dumps.map((d) => d.report),
      leftOut,
    };
  } finally {
    // After a signal the handler cleans up and exits; the work failing under it must not race it.
    if (signals.stopping) await signals.stopping;
    signals.remove();
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Installs SIGINT and SIGTERM handlers for one redacted export: on either, the disposable servers of
 * `live` (SIGTERM, SIGKILL after 5 s) and every tool runTool started (core/tools/run-tool.ts
 * stopRunningTools: neo4j-admin load or dump, with its process group) are stopped, `scratch` (the
 * unredacted download and stores) is removed, and the process exits 130 (SIGINT) or 143 (SIGTERM),
 * the shell's 128 + signal number. `remove` takes the handlers off when the export ends;
 * `stopping` is set once a signal arrived (it never resolves: the process exits).
 */
function exportSignalHandlers(
  scratch: string,
  live: Set<DisposableNeo4j>,
  say: (line: string) => void,
): { remove(): void; stopping: Promise<never> | undefined } {
  const state: { remove(): void; stopping: Promise<never> | undefined } = {
    stopping: undefined,
    remove: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
  const stop = (signal: 'SIGINT' | 'SIGTERM') => {
    if (state.stopping) return;
    say(`${signal}: stopping the disposable Neo4j servers and tools, removing ${scratch}`);
    state.stopping = Promise.allSettled([...[...live].map((s) => s.stop(5_000)), stopRunningTools(5_000)])
      .then(() => rm(scratch, { recursive: true, force: true }))
      .catch(() => undefined)
      .then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return state;
}

/**
 * The user databases of a backup and the one file each is exported from: a Community dump, or an
 * Enterprise full backup (`neo4j-admin database load` reads both; Neo4j Operations Manual 5,
 * "Restore a database dump"). `system` is left out (LEFT_OUT_REASONS).
 *
 * @throws ManifestError when the backup records no Neo4j database besides system, a database without
 *   a file, an unsafe path or a name outside Neo4j's rules
 * @throws IncompatibleBackupError for a backup chain of more than one file
 */
export function databasesToExport(manifest: Manifest, what: string): Array<{ name: string; file: string }> {
  const recorded = manifest.neo4j?.databases.filter((d) => d.name !== 'system') ?? [];
  if (!manifest.components.includes('database') || recorded.length === 0)
    throw new ManifestError(`${what} holds no Neo4j database besides system: nothing to export redacted`);
  return recorded.map((db) => {
    const badName = neo4jDatabaseNameProblem(db.name);
    if (badName) throw new ManifestError(`${what}: database name ${JSON.stringify(db.name)} ${badName}`);
    if (db.files.length === 0) throw new ManifestError(`${what} records no file for database ${db.name}`);
    if (db.files.length > 1)
      throw new IncompatibleBackupError(
        `${what} holds a chain of ${db.files.length} backup files for ${db.name} (a full backup and differentials): a redacted export loads one file into Neo4j Community, a dump or a full backup; export a backup taken with NEO4J_AGGREGATE=true or a full one`,
      );
    const file = db.files[0] as string;
    const unsafe = backupPathProblem(file);
    if (unsafe) throw new ManifestError(`${what}: ${JSON.stringify(file)} ${unsafe}`);
    return { name: db.name, file };
  });
}

/** Every file of the backup that the redacted archive does not carry, with why. */
export function leftOutFiles(
  manifest: Manifest,
  exported: readonly string[],
): Array<{ path: string; reason: string }> {
  const out: Array<{ path: string; reason: string }> = [];
  const artifacts = Object.keys(manifest.checksums).filter((p) => p.startsWith('artifacts/'));
  for (const path of Object.keys(manifest.checksums).sort()) {
    if (exported.includes(path) || path.startsWith('artifacts/')) continue;
    if (path === 'prefect.dump') out.push({ path, reason: LEFT_OUT_REASONS.prefect });
    else if (path.startsWith('database/system')) out.push({ path, reason: LEFT_OUT_REASONS.system });
    else out.push({ path, reason: 'not a file a redacted export can redact' });
  }
  if (artifacts.length > 0 || manifest.components.includes('artifacts'))
    out.push({ path: `artifacts/ (${artifacts.length} files)`, reason: LEFT_OUT_REASONS.artifacts });
  return out;
}

/**
 * The manifest of a redacted archive, from the backup's: infrahub-backup's keys and ours, with
 * `redacted: true` (infrahub-backup's key for this), `components: ["database"]`, `checksums` and
 * `sizes` of the redacted dumps only, `neo4j_edition` and `neo4j` of a Community dump (what the
 * archive holds, whatever the backup's edition), the copies' counts (`counts_basis`: `verified`,
 * counted on the copy that was dumped), `versions.neo4j` of the Neo4j that wrote the dumps, and a
 * `redaction` section (tool and version, time, per database what was replaced and kept, what was
 * left out and why). Left out of it: `s3` (the source bucket's keys and version ids), `execution_id`
 * (an ARN naming the AWS account), `warnings` (Infrahub task titles), the PostgreSQL and artifact
 * sections, `retention_class` and `durations_ms` (the stored backup's, not this archive's).
 *
 * @throws ManifestError when the result is not a valid manifest (a bug: the archive is not written)
 */
export function redactedManifest(
  manifest: Manifest,
  made: {
    target: string;
    dumps: Array<{ path: string; sha256: string; size: number; report: RedactedCopyReport }>;
    leftOut: Array<{ path: string; reason: string }>;
    server: { version: string; edition: string };
    tool: string;
    now?: Date;
  },
): Manifest {
  const {
    s3: _s3,
    execution_id: _execution,
    warnings: _warnings,
    artifacts: _artifacts,
    retention_class: _retention,
    durations_ms: _durations,
    counts: _counts,
    counts_basis: _basis,
    neo4j: _neo4j,
    versions: _versions,
    checksums: _checksums,
    sizes: _sizes,
    ...kept
  } = manifest;
  const value = {
    ...kept,
    components: ['database'],
    checksums: Object.fromEntries(made.dumps.map((d) => [d.path, d.sha256])),
    sizes: Object.fromEntries(made.dumps.map((d) => [d.path, d.size])),
    neo4j_edition: 'community',
    redacted: true,
    neo4j: {
      method: 'dump',
      databases: made.dumps.map((d) => ({ name: d.report.database, files: [d.path] })),
    },
    counts: {
      neo4j: Object.fromEntries(
        made.dumps.map((d) => [
          d.report.database,
          { nodes: d.report.nodes, relationships: d.report.relationships },
        ]),
      ),
    },
    counts_basis: Object.fromEntries(
      made.dumps.map((d) => [
        d.report.database,
        { describes_dump: 'verified', counted_from: 'dumped-store' },
      ]),
    ),
    versions: { neo4j: { edition: made.server.edition, server: made.server.version, tool: made.tool } },
    redaction: {
      tool: `infrahub-backup-aws ${TOOL_VERSION}`,
      redacted_at: (made.now ?? new Date()).toISOString(),
      from: `${made.target}/${manifest.backup_id}`,
      rules:
        'every Neo4j property value replaced except the schema, Infrahub structure (ids, kinds, names of schema elements, branch names, statuses, timestamps), booleans, numbers, empty and NULL values and timestamps; strings by keyed hashes, IP addresses prefix-preserving, MAC addresses and JSON in shape; the key is random and not kept',
      databases: made.dumps.map((d) => ({
        name: d.report.database,
        nodes: d.report.nodes,
        relationships: d.report.relationships,
        replaced: d.report.redactedProperties,
        kept: d.report.kept,
        schema_strings: d.report.schemaStrings,
      })),
      left_out: made.leftOut,
    },
  };
  return validateManifest(value, `the redacted manifest of ${made.target}/${manifest.backup_id}`);
}

/**
 * Refuses, before the download, a scratch folder whose file system has less free space than the
 * backup's Neo4j files (statfs: the blocks this user may use). The two stores and the redacted dump
 * need more besides: a store is often several times its compressed dump.
 * @throws InsufficientScratchSpaceError naming the folder, the bytes needed and free, and --work-dir
 */
async function enoughScratch(dir: string, bytes: number, what: string): Promise<void> {
  const fs = await statfs(dir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (free < bytes)
    throw new InsufficientScratchSpaceError(
      `${dir} has ${free} bytes free; the Neo4j files of ${what} alone are ${bytes} bytes, and their stores and redacted copy need several times that: choose a larger --work-dir`,
    );
}

// ---------------------------------------------------------------------------------------------
// The disposable Neo4j servers
// ---------------------------------------------------------------------------------------------

interface Neo4jTool {
  home: string;
  admin: string;
  version: string;
}

/**
 * The Neo4j installation of `--neo4j-home`, checked before anything is downloaded: `bin/neo4j` and
 * neo4j-admin exist and are executable, and `neo4j-admin --version` runs (it needs the Java its
 * version needs: 17 or 21 for 5.x, 21 or later for 2025.x; Neo4j Operations Manual, "System
 * requirements").
 * @throws InvalidInputError naming --neo4j-home and what is missing or what neo4j-admin said
 */
async function checkNeo4jHome(home: string, adminPath?: string): Promise<Neo4jTool> {
  const flag = `--neo4j-home ${home}`;
  const admin = adminPath ?? join(home, 'bin', 'neo4j-admin');
  for (const program of [join(home, 'bin', 'neo4j'), admin]) {
    try {
      await access(program, constants.X_OK);
    } catch {
      throw new InvalidInputError('export --redact', [
        `${flag}: ${program} ${existsSync(program) ? 'is not executable' : 'does not exist'}; a redacted export loads the backup into a disposable Neo4j of its own and needs a Neo4j installation (Community, of the backup's version or later) with bin/neo4j and bin/neo4j-admin`,
      ]);
    }
  }
  try {
    const version = (await toolOutput(admin, ['--version'], { ...process.env, NEO4J_HOME: home }))
      .trim()
      .split(/\s+/)
      .pop();
    return { home, admin, version: version || 'unknown' };
  } catch (err) {
    throw new InvalidInputError('export --redact', [
      `${flag}: ${admin} --version failed (${err instanceof Error ? err.message : String(err)}); Neo4j 2025.x needs Java 21 or later and 5.x Java 17 or 21: set JAVA_HOME to one`,
    ]);
  }
}

interface DisposableNeo4j {
  env: NodeJS.ProcessEnv;
  start(): Promise<void>;
  driver(): ReturnType<typeof openBoltDriver>;
  /** SIGTERM, then SIGKILL after `graceMs` (default 60 s); resolves when the server has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * A Neo4j server of `tool` in `dir` (conf, data, logs, run), serving `database` as its default
 * database on a free loopback port, read-only when `readOnly`, with authentication on: user `neo4j`
 * with a random password (24 random bytes, hex), set by `neo4j-admin dbms set-initial-password`
 * under the server's own NEO4J_CONF before its first start (Neo4j Operations Manual 5 and 2025.x,
 * "Set an initial password"; at least 8 characters by default). Nothing runs until `start`; `stop`
 * ends it (SIGTERM, SIGKILL after 60 s).
 * @throws ToolFailedError when neo4j-admin refuses to set the password
 */
async function disposableNeo4j(
  tool: Neo4jTool,
  dir: string,
  database: string,
  memory: { heap: string; pageCache: string },
  readOnly: boolean,
): Promise<DisposableNeo4j> {
  for (const sub of ['conf', 'data', 'logs', 'run']) await mkdir(join(dir, sub), { recursive: true });
  const port = await freeLoopbackPort();
  await writeDisposableNeo4jConf({
    baseConfFile: join(tool.home, 'conf', 'neo4j.conf'),
    confDir: join(dir, 'conf'),
    workDir: dir,
    port,
    memory,
    // Over the installation's own neo4j.conf: a copy runs as long as it takes, and plain Bolt on
    // loopback even where the installation requires TLS.
    extra: {
      'server.directories.data': join(dir, 'data'),
      'initial.dbms.default_database': database,
      'server.databases.default_to_read_only': readOnly ? 'true' : 'false',
      'db.transaction.timeout': '0s',
      'server.bolt.tls_level': 'DISABLED',
    },
    comment: `redacted export: the ${readOnly ? 'backup, read-only' : 'redacted copy'}, disposable`,
    authEnabled: true,
  });
  const env = {
    ...process.env,
    NEO4J_HOME: tool.home,
    NEO4J_CONF: join(dir, 'conf'),
    HEAP_SIZE: memory.heap,
  };
  // Authentication on: other local users can reach 127.0.0.1 too. The password is set before the
  // first start and kept in this process only (Neo4j keeps its hash in the scratch data folder).
  const password = randomBytes(24).toString('hex');
  await runTool(tool.admin, ['dbms', 'set-initial-password', password], { env, stdout: 'ignore' }).done;
  // Plain Bolt on loopback (core/readiness/neo4j-tls.ts allows a plain URI for loopback hosts only).
  const connection = { uri: `bolt://127.0.0.1:${port}`, username: 'neo4j', password };
  let server: ChildProcess | undefined;
  let exited = false;
  let gone: Promise<void> = Promise.resolve();
  return {
    env,
    async start() {
      server = spawn(join(tool.home, 'bin', 'neo4j'), ['console'], { env, stdio: 'ignore' });
      gone = new Promise<void>((resolve) => {
        server?.once('exit', () => {
          exited = true;
          resolve();
        });
        server?.once('error', () => {
          exited = true;
          resolve();
        });
      });
      await waitForNeo4j(connection, [database, 'system'], {
        timeoutSeconds: readyTimeoutFromEnv('NEO4J_READY_TIMEOUT_SECONDS'),
        pollMs: 500,
        stopIf: () =>
          exited ? `the disposable Neo4j exited (its log is in ${join(dir, 'logs')})` : undefined,
      });
    },
    driver: () => openBoltDriver(connection, { connectionTimeout: 15_000 }),
    async stop(graceMs = 60_000) {
      if (server && !exited) {
        server.kill('SIGTERM');
        const timer = setTimeout(() => server?.kill('SIGKILL'), graceMs);
        await gone;
        clearTimeout(timer);
      }
    },
  };
}

/**
 * `neo4j-admin database load <database> --from-path=<dir> --overwrite-destination=true` into the
 * (stopped) disposable server of `env`.
 * @throws IncompatibleBackupError naming the file when neo4j-admin refuses it (a dump of a later
 *   Neo4j than the installation's, a damaged file)
 */
async function loadInto(
  tool: Neo4jTool,
  server: DisposableNeo4j,
  database: string,
  dir: string,
  file: string,
): Promise<void> {
  try {
    await runTool(
      tool.admin,
      ['database', 'load', database, `--from-path=${dir}`, '--overwrite-destination=true'],
      { env: server.env, stdout: 'ignore' },
    ).done;
  } catch (err) {
    throw new IncompatibleBackupError(
      `${file} did not load into a disposable Neo4j ${tool.version} of ${tool.home} (a Neo4j older than the backup's cannot read its dump): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/** The version and edition of a running server (`CALL dbms.components()`). */
async function serverOf(
  driver: ReturnType<typeof openBoltDriver>,
): Promise<{ version: string; edition: string }> {
  const result = await driver.executeQuery(
    'CALL dbms.components() YIELD versions, edition RETURN versions[0] AS v, edition AS e',
    {},
    { database: 'system', routing: neo4j.routing.READ },
  );
  const r = result.records[0];
  return { version: String(r?.get('v') ?? 'unknown'), edition: String(r?.get('e') ?? 'community') };
}

/**
 * The SHA-256 and size of a dump just written, its whole body checked as a backup's dumps are
 * (core/backup/formats.ts neo4jDumpCheck).
 * @throws DumpFormatError when it is not a valid Neo4j dump
 */
async function checkedDump(file: string, path: string): Promise<{ sha256: string; size: number }> {
  const check = neo4jDumpCheck();
  const hash = createHash('sha256');
  let size = 0;
  let verdict: FormatVerdict;
  try {
    for await (const chunk of createReadStream(file)) {
      const bytes = chunk as Buffer;
      hash.update(bytes);
      size += bytes.length;
      await check.write(bytes);
    }
    verdict = await check.end();
  } catch (err) {
    check.abort();
    if (!(err instanceof FormatProblem)) throw err;
    verdict = { status: 'problem', format: check.format, problem: err.problem };
  }
  const problem = dumpFormatError(path, verdict, 'no archive written');
  if (problem) throw problem;
  return { sha256: hash.digest('hex'), size };
}
