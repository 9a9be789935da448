/**
 * The graph database.
 * - Community: `neo4j-admin database dump <db> --to-stdout` per database, streamed into S3, while the
 *   DBMS is stopped, or (neo4j.dumpFrom "copy") from a copy of the stopped store on the task's disk
 *   while the DBMS runs again; the runner refuses, before touching S3, if `database info` says a
 *   database is in use.
 * - Enterprise: `neo4j-admin database backup --from=A:PORT,B:PORT --to-path=DIR` per database
 *   (online; a cluster's members tried in order, each probed and recorded, a run that missed one
 *   never complete), on the chain of the previous complete backup fetched from the bucket (or kept
 *   in DIR), uploading every file of the chain so each backup restores on its own.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { latestValidBackup } from '../../../../core/backup/catalog.js';
import { checkedStream, dumpFormatError, neo4jDumpCheck } from '../../../../core/backup/formats.js';
import {
  DATABASE_DIR,
  fileKey,
  neo4jDumpPath,
  parseBackupId,
  RESTORES_ROOT,
} from '../../../../core/backup/layout.js';
import {
  type DumpWindow,
  type FileRecord,
  fileRecord,
  type Neo4jChain,
  type Neo4jMember,
  type Neo4jResult,
  type StoreCounts,
} from '../../../../core/backup/results.js';
import { PENDING_TAGGING } from '../../../../core/backup/retention.js';
import {
  DatabaseUnreachableError,
  ErrorNames,
  InsufficientScratchSpaceError,
  Neo4jBackupDegradedError,
  Neo4jDatabaseInUseError,
  Neo4jStoreCopyError,
  RUNNER_TRANSIENT_ERRORS,
  RunnerConfigError,
  StorageError,
  ToolFailedError,
} from '../../../../core/errors.js';
import { excerpt } from '../../../../core/redact.js';
import { downloadVerified } from '../../../../core/s3/download.js';
import { listAll } from '../../../../core/s3/objects.js';
import { uploadStream } from '../../../../core/s3/upload-stream.js';
import { type RunningTool, runTool, toolOutput } from '../../../../core/tools/run-tool.js';
import { streamToolToS3 } from '../../../../core/tools/stream-to-s3.js';
import { type RunContext, resultStamp, uploadOptions } from '../context.js';
import type { Neo4jEnv } from '../env.js';
import { copyObject } from './artifacts.js';
import { countStoreOffline, type OfflineStore } from './neo4j-counts.js';
import { copyStore, freeBytes, type StoreCopy, storeBytes, storeDirs } from './neo4j-store-copy.js';

export interface Neo4jAdmin {
  /** The neo4j-admin executable. */
  path: string;
  /** Environment for it (NEO4J_HOME, NEO4J_CONF, ...); the process environment when unset. */
  env?: NodeJS.ProcessEnv;
}

export interface DatabaseInfo {
  inUse: boolean;
  lastCommittedTx?: number;
  /** The store holds no such database (a fresh server); neo4j-admin says "Database does not exist". */
  missing?: boolean;
  /** "Store needs recovery": a store not cleanly shut down (or copied while open). */
  needsRecovery?: boolean;
}

/** Parses `neo4j-admin database info <db>` output ("Database in use: false", "Last committed transaction id:7"). */
export function parseDatabaseInfo(output: string): DatabaseInfo {
  const inUse = /Database in use:\s*(true|false)/i.exec(output)?.[1];
  if (inUse === undefined)
    throw new Error(`unexpected "neo4j-admin database info" output: ${excerpt(output.trim(), 200)}`);
  const tx = /Last committed transaction id:\s*(\d+)/i.exec(output)?.[1];
  const recovery = /Store needs recovery:\s*(true|false)/i.exec(output)?.[1];
  return {
    inUse: inUse.toLowerCase() === 'true',
    ...(tx ? { lastCommittedTx: Number(tx) } : {}),
    ...(recovery ? { needsRecovery: recovery.toLowerCase() === 'true' } : {}),
  };
}

/**
 * `neo4j-admin database info <db>`. Against a running DBMS, 5.26 does not print "in use: true" but
 * fails ("...the database 'neo4j' is in use. Please stop it..."); both mean in use. A database that
 * does not exist yet is not in use.
 */
export async function databaseInfo(admin: Neo4jAdmin, db: string): Promise<DatabaseInfo> {
  try {
    return parseDatabaseInfo(await toolOutput(admin.path, ['database', 'info', db], admin.env));
  } catch (err) {
    if (err instanceof ToolFailedError && /is in use/i.test(err.stderrTail)) return { inUse: true };
    // A fresh store (a new server, a drill's disposable one): nothing there to be in use.
    if (err instanceof ToolFailedError && /Database does not exist/i.test(err.stderrTail))
      return { inUse: false, missing: true };
    throw err;
  }
}

/**
 * Parses `neo4j-admin database info` of every database (no name given: one block per database,
 * each starting "Database name:"), by database name. An empty output is no database (an empty store).
 * @throws Error when a block has no "Database in use" line, or the output is not empty but holds no
 *   block (a shape not known here: not to be read as "no database, none in use")
 */
export function parseDatabaseInfos(output: string): Map<string, DatabaseInfo> {
  const found = new Map<string, DatabaseInfo>();
  for (const block of output.split(/^(?=Database name:)/im)) {
    const name = /Database name:\s*(\S+)/i.exec(block)?.[1];
    if (name) found.set(name, parseDatabaseInfo(block));
  }
  if (found.size === 0 && output.trim() !== '')
    throw new Error(`unexpected "neo4j-admin database info" output: ${excerpt(output.trim(), 200)}`);
  return found;
}

/**
 * `databases` checked with one `neo4j-admin database info` of every database (one JVM start instead
 * of one per database: each is downtime while a Community DBMS is stopped); a database it does not
 * list does not exist (`missing`) and is not in use. A run that fails saying a database is in use marks every one
 * in use; any other failure (another database's store unreadable, say), or an output of a shape not
 * known here (parseDatabaseInfos), falls back on databaseInfo per database.
 */
export async function databaseInfos(
  admin: Neo4jAdmin,
  databases: readonly string[],
): Promise<Map<string, DatabaseInfo>> {
  let all: Map<string, DatabaseInfo>;
  try {
    all = parseDatabaseInfos(await toolOutput(admin.path, ['database', 'info'], admin.env));
  } catch (err) {
    if (err instanceof ToolFailedError && /is in use/i.test(err.stderrTail))
      return new Map(databases.map((db) => [db, { inUse: true }]));
    const one = new Map<string, DatabaseInfo>();
    for (const db of databases) one.set(db, await databaseInfo(admin, db));
    return one;
  }
  return new Map(databases.map((db) => [db, all.get(db) ?? { inUse: false, missing: true }]));
}

export async function neo4jAdminVersion(admin: Neo4jAdmin): Promise<string> {
  return (await toolOutput(admin.path, ['--version'], admin.env)).trim().split(/\s+/).pop() ?? 'unknown';
}

/**
 * How a Community backup counts the graph it dumps: from the stopped store (a read-only server on it,
 * neo4j-counts.ts countStoreOffline), or not at all (`false`: NEO4J_COUNT_OFFLINE=false), in which
 * case the manifest keeps CountNeo4j's Bolt counts with counts_basis `unknown`.
 */
export type OfflineCountOption = OfflineStore | false;

/**
 * Community, neo4j.dumpFrom "copy" (NEO4J_DUMP_FROM=copy): the stopped store is copied to the task's
 * own disk and the DBMS started again before the count and the dump, which read the copy.
 */
export interface StoreCopyOption {
  /** NEO4J_HOME of the DBMS's installation (a relative data directory resolves from it). */
  home: string;
  /** The DBMS's configuration folder (its neo4j.conf names the store); default `<home>/conf`. */
  conf?: string;
  /** Parent of the copy's own folder on the task's disk (NEO4J_COPY_DIR); the copy is removed afterwards. */
  dir: string;
  /**
   * Bytes kept free beyond the store's size on that disk; less free: the dump reads the store in place,
   * the DBMS stopped throughout (`window.reason` says so). Default 1 GiB.
   */
  headroomBytes?: number;
  /**
   * Scales the DBMS's service back to its count (core/ecs/dbms.ts dbmsStep, as the state machine's
   * StartDbms) and resolves once it runs; `stopWaiting` fires when the dump has ended, and the wait
   * (not the request) then ends with a rejection. Its failure does not fail the backup: the state
   * machine's StartDbms after the runner starts it again, or reports it down.
   */
  startDbms: (stopWaiting: AbortSignal) => Promise<unknown>;
}

/** neo4j.dumpFrom "copy" that does not apply to this run: the store is dumped in place, and the result's `window.reason` says why. */
export interface DumpInPlace {
  inPlace: string;
}

/**
 * Community backup: every database of `databases` is checked stopped (`neo4j-admin database info`).
 * With `copy`, the store folders of those databases are copied to the task's disk (neo4j-store-copy.ts)
 * while that check runs, the copy checked complete and the store unchanged while it was copied (every
 * file's stamps the same before and after), then the DBMS is started again (`copy.startDbms`, not
 * awaited), the copy checked at the store's last committed transaction and needing no recovery, and
 * everything after reads the copy; when the copy would not fit on the disk (store size + headroom), the store is dumped in
 * place as without `copy`. Then the store (or copy) is counted (unless `offlineCount` is false; a
 * counting server that fails is recorded as `storeCounts.status: failed` and the backup goes on with
 * Bolt counts), checked stopped again (the counting server released the store lock, and its last
 * committed transaction is unchanged), then each database is dumped with `neo4j-admin database dump
 * <db> --to-stdout` streamed to S3. The result's `window` says which was dumped and how the DBMS's
 * start went.
 * @throws Neo4jDatabaseInUseError before anything is written when a database is in use (the DBMS runs)
 * @throws RunnerConfigError before anything is written when the store does not hold a database of `databases`
 * @throws InsufficientScratchSpaceError when the disk filled up during the copy (ENOSPC)
 * @throws Neo4jStoreCopyError when the copy failed or differs from the store; or, once the runner
 *   started the DBMS, in place of an error the state machine would retry (a new task would find the
 *   DBMS running and no copy), naming it
 * @throws DumpFormat / ToolFailedError / StorageError from the dump and its upload
 */
export async function backupNeo4jCommunity(
  ctx: RunContext,
  admin: Neo4jAdmin,
  databases: readonly string[],
  offlineCount: OfflineCountOption = false,
  copyOption?: StoreCopyOption | DumpInPlace,
): Promise<Neo4jResult> {
  const copy = copyOption && 'inPlace' in copyOption ? undefined : copyOption;
  const startedAt = new Date().toISOString();
  const began = Date.now();
  const log = ctx.logger.child({ component: 'database', edition: 'community' });
  // Beside the first check rather than before it: every JVM start before the copy is downtime.
  const versionRead = neo4jAdminVersion(admin);
  versionRead.catch(() => undefined);

  // Check every database first: refuse before anything is written.
  const checkStopped = async (tool: Neo4jAdmin) => {
    const found = await databaseInfos(tool, databases);
    for (const [db, info] of found) if (info.inUse) throw new Neo4jDatabaseInUseError(db);
    return found;
  };

  // With a copy: everything below reads it (`source`, `counted`), and the DBMS starts meanwhile.
  let source = admin;
  let counted = offlineCount;
  let window: DumpWindow =
    copyOption && 'inPlace' in copyOption
      ? { dumpFrom: 'store', reason: copyOption.inPlace }
      : { dumpFrom: 'store' };
  let copied: StoreCopy | undefined;
  let dbmsStart: Promise<Extract<DumpWindow, { dumpFrom: 'copy' }>['dbmsStart']> | undefined;
  let startRequestedMs = 0;
  const stopWaiting = new AbortController();
  const dbmsStarted = async () => {
    stopWaiting.abort();
    return dbmsStart ? await dbmsStart : undefined;
  };
  // The same last committed transaction, and no more need of recovery (a copy of an open store would).
  const sameTx = (a: Map<string, DatabaseInfo>, b: Map<string, DatabaseInfo>, what: string) => {
    for (const db of databases) {
      const [x, y] = [a.get(db), b.get(db)];
      if (x?.lastCommittedTx !== y?.lastCommittedTx || (y?.needsRecovery && !x?.needsRecovery))
        throw new Neo4jStoreCopyError(
          `${db}: ${what} (last committed transaction ${x?.lastCommittedTx} before, ${y?.lastCommittedTx} after${y?.needsRecovery ? '; it needs recovery' : ''})`,
        );
    }
  };
  let infos: Map<string, DatabaseInfo>;
  let copyMs = 0;
  try {
    // A database the store does not hold is refused here, before the DBMS is started again or
    // anything uploaded (it would only fail in its dump, with neo4j-admin's own words).
    const firstCheck = checkStopped(admin).then((found) => {
      const absent = databases.filter((db) => found.get(db)?.missing);
      if (absent.length > 0)
        throw new RunnerConfigError([
          `NEO4J_DATABASES: the stopped store does not hold ${absent.map((db) => `"${db}"`).join(', ')} (neo4j-admin database info lists no such database): name the databases the DBMS has (neo4j.databases)`,
        ]);
      return found;
    });
    if (!copy) infos = await firstCheck;
    else {
      // The first check beside the copy, not before it (each JVM start before the DBMS's start is
      // downtime): a database in use is reported first, and the copy removed. What the copy read
      // is proven by the store's file stamps, the same before and after the copy (copyStore), and
      // by the copy's own check (same transaction, no recovery needed, as of a store not open).
      const conf = copy.conf ?? join(copy.home, 'conf');
      const dirs = storeDirs(copy.home, conf);
      const copying = (async () => {
        const { need, free } = await (async () => ({
          need: await storeBytes(dirs, databases),
          free: await freeBytes(copy.dir),
        }))().catch((err: unknown) => {
          throw new Neo4jStoreCopyError(
            `the store could not be measured, or ${copy.dir} not used, for its copy: ${err instanceof Error ? `${err.name}: ${excerpt(err.message, 300)}` : String(err)}`,
            { cause: err },
          );
        });
        const headroom = copy.headroomBytes ?? 1024 ** 3;
        if (free < need + headroom) {
          log.warn('the store copy would not fit the task disk: dumping in place', { need, free, headroom });
          return {
            reason: `the store (${need} bytes) and ${headroom} bytes of headroom do not fit the ${free} bytes free in ${copy.dir}: dumped in place, the DBMS stopped throughout (give the runner task more ephemeral storage: timeouts.dataSizeGiB sizes it)`,
          };
        }
        const t0 = Date.now();
        log.info('copying the stopped store to the task disk', {
          bytes: need,
          from: dirs.data,
          to: copy.dir,
        });
        const made = await copyStore(dirs, conf, databases, copy.dir).catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC')
            throw new InsufficientScratchSpaceError(
              `${copy.dir} filled up while the stopped store (${need} bytes) was copied there: the DBMS is started again by the state machine (give the runner task more ephemeral storage, or set neo4j.dumpFrom to "store")`,
            );
          if (err instanceof Error && err.name === ErrorNames.Neo4jStoreCopy) throw err;
          throw new Neo4jStoreCopyError(
            `the stopped store could not be copied to ${copy.dir}: ${err instanceof Error ? `${err.name}: ${excerpt(err.message, 300)}` : String(err)}`,
            { cause: err },
          );
        });
        copyMs = Date.now() - t0;
        return { made };
      })();
      const [checked, outcome] = await Promise.allSettled([firstCheck, copying]);
      if (outcome.status === 'fulfilled' && 'made' in outcome.value) copied = outcome.value.made;
      if (checked.status === 'rejected') throw checked.reason;
      infos = checked.value;
      if (outcome.status === 'rejected') throw outcome.reason;
      if ('reason' in outcome.value) window = { dumpFrom: 'store', reason: outcome.value.reason };
    }
    if (copied && copy) {
      // The store was stopped (the check beside the copy) and unchanged while it was copied (copyStore
      // compares every file's stamps before and after, no JVM inside the window); the copy's own
      // check below proves it is at the store's transaction and needs no recovery.
      source = { path: admin.path, env: { ...(admin.env ?? process.env), NEO4J_CONF: copied.conf } };
      counted = offlineCount === false ? false : { ...offlineCount, conf: copied.conf };
      startRequestedMs = Date.now() - began;
      log.info('store copied and checked: starting the DBMS again', {
        bytes: copied.bytes,
        files: copied.files,
        copyMs,
      });
      const asked = Date.now();
      dbmsStart = copy.startDbms(stopWaiting.signal).then(
        () => ({ status: 'running' as const, waitedMs: Date.now() - asked }),
        (err: unknown) => {
          // The dump ended first: the start is asked for; the state machine's StartDbms waits for it.
          if (stopWaiting.signal.aborted) return { status: 'requested' as const };
          const reason = err instanceof Error ? `${err.name}: ${excerpt(err.message, 300)}` : String(err);
          log.warn('the runner could not start the DBMS again: the state machine starts it after the dump', {
            reason,
          });
          return { status: 'failed' as const, reason };
        },
      );
      // The copy is at the store's transaction (read from the copy alone, while the DBMS starts).
      sameTx(infos, await checkStopped(source), "the copy is not at the store's transaction");
      window = {
        dumpFrom: 'copy',
        copiedBytes: copied.bytes,
        copyMs,
        startRequestedMs,
        dbmsStart: { status: 'running', waitedMs: 0 },
      };
    }

    // The graph counted from the very store dumped: nothing can write between this count and the dump.
    let storeCounts: StoreCounts;
    if (counted === false) {
      storeCounts = { status: 'disabled', reason: 'NEO4J_COUNT_OFFLINE=false' };
    } else {
      try {
        const result = await countStoreOffline(counted, databases, log);
        storeCounts = { status: 'counted', counts: result.counts, timings: result.timings };
        log.info('dumped store counted', { counts: result.counts, ...result.timings });
      } catch (err) {
        const reason = err instanceof Error ? `${err.name}: ${excerpt(err.message, 300)}` : String(err);
        storeCounts = { status: 'failed', reason };
        log.warn(
          'the stopped store could not be counted: the manifest keeps the Bolt counts taken before the stop',
          {
            reason,
          },
        );
      }
      const after = await checkStopped(source);
      for (const [db, info] of after) {
        const before = infos.get(db)?.lastCommittedTx;
        if (before !== info.lastCommittedTx) {
          // Our read-only server must not commit; if the store moved, the counts no longer vouch for it.
          log.warn('the store moved while it was counted: counts not recorded as the dumped ones', {
            database: db,
            before,
            after: info.lastCommittedTx,
          });
          storeCounts = {
            status: 'failed',
            reason: `${db}: last committed transaction ${before} before counting, ${info.lastCommittedTx} after`,
          };
        }
      }
      infos = after;
    }

    const files = await dumpDatabases(ctx, source, databases, window.dumpFrom, log);

    const started = await dbmsStarted();
    if (started && window.dumpFrom === 'copy') window = { ...window, dbmsStart: started };
    return {
      ...resultStamp(ctx, startedAt),
      component: 'database',
      edition: 'community',
      method: 'dump',
      files,
      databases: databases.map((name) => {
        const tx = infos.get(name)?.lastCommittedTx;
        return { name, files: [neo4jDumpPath(name)], ...(tx !== undefined ? { lastCommittedTx: tx } : {}) };
      }),
      tool: { name: 'neo4j-admin', version: await versionRead },
      storeCounts,
      window,
    };
  } catch (err) {
    // Once the DBMS was asked to start, a retry by the state machine would find it running and no copy.
    if (
      dbmsStart &&
      err instanceof Error &&
      (RUNNER_TRANSIENT_ERRORS as readonly string[]).includes(err.name)
    ) {
      await dbmsStarted();
      throw new Neo4jStoreCopyError(
        `the dump of the store's copy failed after the DBMS was started again (${err.name}: ${excerpt(err.message, 300)}); not retried in this execution, as a new attempt would find the DBMS running: the next backup stops it again`,
        { cause: err },
      );
    }
    // The start asked for is not left behind unobserved (its failure was logged).
    await dbmsStarted();
    throw err;
  } finally {
    if (copied) await rm(copied.root, { recursive: true, force: true });
  }
}

/** How many `database dump`s run at once: Infrahub's two databases (neo4j, system) together. */
export const DUMP_CONCURRENCY = 2;

/**
 * Dumps `databases` with `neo4j-admin database dump <db> --to-stdout`, each streamed into its own
 * multipart upload with its SHA-256 and format check, DUMP_CONCURRENCY at a time (each dump is a JVM
 * of its own, 2-4 s to start: run side by side, the system database's dump hides in the graph's). A
 * Community dump reads a stopped store, which the databases' own locks keep apart. The first failure
 * stops the dumps still running (their uploads are aborted) and is the one thrown.
 * @returns the file records in the order of `databases`
 * @throws DumpFormat / ToolFailedError / StorageError from the first dump that failed
 */
async function dumpDatabases(
  ctx: RunContext,
  source: Neo4jAdmin,
  databases: readonly string[],
  from: DumpWindow['dumpFrom'],
  log: RunContext['logger'],
): Promise<FileRecord[]> {
  const running = new Set<RunningTool>();
  let first: { error: unknown } | undefined;
  const dumpOne = async (db: string): Promise<FileRecord> => {
    const path = neo4jDumpPath(db);
    const key = fileKey(ctx.target, ctx.backupId, path);
    log.info('neo4j-admin database dump started', { database: db, key, from });
    const dump = runTool(source.path, ['database', 'dump', db, '--to-stdout'], {
      env: source.env,
      name: 'neo4j-admin database dump',
    });
    running.add(dump);
    try {
      // The dump is checked on the bytes uploaded (core/backup/formats.ts): stray output before it (a
      // banner, a log line) or a body that does not decompress (or whose zstd checksum fails) aborts
      // the upload with DumpFormat, with bounded memory (the 2 MiB zstd window).
      const formatCheck = checkedStream(dump.stdout, neo4jDumpCheck(), dump.done);
      const uploaded = await streamToolToS3(
        ctx.s3,
        { ...dump, stdout: Readable.from(formatCheck.stream) },
        uploadOptions(ctx, key),
      ).catch((err: unknown) => {
        throw dumpFormatError(path, formatCheck.verdict()) ?? err;
      });
      log.info('neo4j-admin database dump finished', {
        database: db,
        size: uploaded.size,
        sha256: uploaded.sha256,
      });
      return fileRecord(path, uploaded);
    } catch (err) {
      if (!first) {
        first = { error: err };
        // The others cannot make a complete backup now: their tools end, their uploads abort.
        for (const other of running) if (other !== dump) other.child.kill('SIGTERM');
      }
      throw err;
    } finally {
      running.delete(dump);
    }
  };
  const queue = [...databases.keys()];
  const files: FileRecord[] = new Array(databases.length);
  const lane = async () => {
    for (let i = queue.shift(); i !== undefined && !first; i = queue.shift())
      files[i] = await dumpOne(databases[i] as string);
  };
  await Promise.allSettled(Array.from({ length: Math.min(DUMP_CONCURRENCY, databases.length) }, lane));
  if (first) throw first.error;
  return files;
}

/** Backup artifact files of a database: `<db>-YYYY-MM-DDTHH-mm-ss.backup`, oldest first. */
export function chainFiles(names: readonly string[], database: string): string[] {
  const escaped = database.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^${escaped}-\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}-\\d{2}.*\\.backup$`);
  return names.filter((n) => pattern.test(n)).sort();
}

/** One artifact as `neo4j-admin database backup --inspect-path` lists it. */
export interface ArtifactInfo {
  /** The artifact's file name. */
  file: string;
  database: string;
  full: boolean;
  lowestTx: number;
  highestTx: number;
}

/**
 * Parses the table `neo4j-admin database backup --inspect-path=<folder>` prints: a header row
 * (FILE, DATABASE, DATABASE ID, TIME, FULL, COMPRESSED, LOWEST TX, HIGHEST TX) and one `|`-separated
 * row per artifact, FILE a `file://` URI (Operations Manual, "Restore a database backup": "if you
 * restore neo4j-2023-06-29T14-50-45.backup, your database will have 14 as the last transaction ID").
 * Columns are found by their header, so their order does not matter.
 * @throws Error naming the output when a needed column or value is missing
 */
export function parseInspection(output: string): ArtifactInfo[] {
  const rows = output
    .split(/\r?\n/)
    .filter((l) => l.trim().startsWith('|'))
    .map((l) =>
      l
        .trim()
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((c) => c.trim()),
    );
  const [header, ...data] = rows;
  const column = (name: string) => {
    const i = header?.findIndex((h) => h.toUpperCase() === name) ?? -1;
    if (i < 0)
      throw new Error(
        `no ${name} column in "neo4j-admin database backup --inspect-path" output: ${excerpt(output.trim(), 200)}`,
      );
    return i;
  };
  const [file, database, full, lowest, highest] = ['FILE', 'DATABASE', 'FULL', 'LOWEST TX', 'HIGHEST TX'].map(
    column,
  ) as [number, number, number, number, number];
  return data.map((r) => {
    const info = {
      file: (r[file] ?? '').split('/').pop() ?? '',
      database: r[database] ?? '',
      full: (r[full] ?? '').toLowerCase() === 'true',
      lowestTx: Number(r[lowest]),
      highestTx: Number(r[highest]),
    };
    if (!info.file || !Number.isInteger(info.lowestTx) || !Number.isInteger(info.highestTx))
      throw new Error(
        `unexpected "neo4j-admin database backup --inspect-path" row: ${excerpt(r.join(' | '), 200)}`,
      );
    return info;
  });
}

/**
 * The chain a restore of `database`'s newest artifact reads: back from it to the newest full
 * artifact, each differential starting where the one before ended. Artifacts before that full one
 * (a base the server could not continue: "if the required transaction logs are not available on the
 * backup server, then the backup client falls back on performing a full backup", Operations Manual,
 * "Backup modes") are not part of it.
 *
 * @param names the database's artifact files, oldest first (chainFiles)
 * @returns the chain's files, oldest first, and the last transaction a restore of it ends at
 * @throws ToolFailedError when an artifact is not listed, or the chain has no full backup or a gap
 */
export function restorableChain(
  names: readonly string[],
  inspected: ReadonlyMap<string, ArtifactInfo>,
  database: string,
): { files: string[]; highestTx: number } {
  const broken = (why: string) =>
    new ToolFailedError(
      'neo4j-admin database backup --inspect-path',
      { code: 0, signal: null },
      `the backup chain of '${database}' ${why}`,
    );
  const chain: ArtifactInfo[] = [];
  for (let i = names.length - 1; i >= 0; i -= 1) {
    const info = inspected.get(names[i] as string);
    if (!info || info.database !== database) throw broken(`lists no ${names[i]} of this database`);
    const next = chain[0];
    if (next && info.highestTx + 1 !== next.lowestTx)
      throw broken(
        `has a gap: ${info.file} ends at transaction ${info.highestTx}, ${next.file} starts at ${next.lowestTx}`,
      );
    chain.unshift(info);
    if (info.full) break;
  }
  if (!chain[0]?.full) throw broken(`has no full backup before ${names.at(-1)}`);
  return { files: chain.map((c) => c.file), highestTx: chain.at(-1)?.highestTx as number };
}

/**
 * The first restore of the target (not a drill: drills restore into disposable servers) started
 * after `backupId` was taken, from the restore reports' keys (`.restores/<target>/restore_<date>_...`,
 * core/backup/layout.ts restoreIdFor); undefined when there is none. Any restore counts, a failed
 * one too: it may have replaced the database before failing.
 */
async function restoreSince(ctx: RunContext, backupId: string): Promise<string | undefined> {
  const taken = parseBackupId(backupId)?.getTime() ?? 0;
  const prefix = `${RESTORES_ROOT}${ctx.target}/restore_`;
  for (const object of await listAll(ctx.s3, ctx.bucket, prefix)) {
    const id = (object.Key ?? '').slice(`${RESTORES_ROOT}${ctx.target}/`.length).split('/')[0] ?? '';
    const at = parseBackupId(`infrahub_backup${id.slice('restore'.length, 'restore'.length + 16)}`);
    if (at && at.getTime() > taken) return id;
  }
  return undefined;
}

/** Runs `--inspect-path` on a folder: its artifacts by file name. */
async function inspectBackups(admin: Neo4jAdmin, dir: string): Promise<Map<string, ArtifactInfo>> {
  const output = await toolOutput(admin.path, ['database', 'backup', `--inspect-path=${dir}`], admin.env);
  return new Map(parseInspection(output).map((a) => [a.file, a]));
}

/** A member's backup listener, as `--from` names it. */
export type MemberAddress = string;

/**
 * Whether each member's backup listener accepts a TCP connection within `timeoutMs`, all at once,
 * in the order given. A TCP answer is all the runner can check itself: whether the member hosts a
 * database, only neo4j-admin finds out.
 */
export async function probeMembers(
  addresses: readonly MemberAddress[],
  timeoutMs = 5_000,
): Promise<Neo4jMember[]> {
  return Promise.all(
    addresses.map(
      (address) =>
        new Promise<Neo4jMember>((resolve) => {
          const at = address.lastIndexOf(':');
          // `[::1]:6362`: an IPv6 address in brackets, as --from and the configuration write it.
          const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
          const socket = connect({ host, port: Number(address.slice(at + 1)) });
          const done = (member: Neo4jMember) => {
            socket.destroy();
            resolve(member);
          };
          socket.setTimeout(timeoutMs, () =>
            done({ address, reachable: false, error: `no answer within ${timeoutMs} ms` }),
          );
          socket.once('connect', () => done({ address, reachable: true }));
          socket.once('error', (err: NodeJS.ErrnoException) =>
            done({ address, reachable: false, error: err.code ?? err.message }),
          );
        }),
    ),
  );
}

export interface EnterpriseOptions {
  /** The members' backup listeners (host:port), tried in order by neo4j-admin. */
  from: readonly MemberAddress[];
  /**
   * Where neo4j-admin writes. With `chain.base` `none` the chain kept there between runs is used as
   * it is (an EFS mount); with `previous-backup` a folder of this run under it, removed afterwards.
   */
  backupDir: string;
  type: Neo4jEnv['NEO4J_BACKUP_TYPE'];
  includeMetadata: Neo4jEnv['NEO4J_INCLUDE_METADATA'];
  aggregate: boolean;
  /** Where a differential finds its base (neo4j.backupChain); default `{ base: 'none' }`. */
  chain?: { base: 'previous-backup' | 'none'; maxDifferentials: number };
  /** The runner's own TCP probe of each member (ms); default 5000. */
  probeTimeoutMs?: number;
  /** Above this size a base file is copied with UploadPartCopy (CopyObject's limit is 5 GiB). */
  multipartCopyThreshold?: number;
}

/** One file of a previous backup's chain, as its manifest records it. */
interface BaseFile {
  path: string;
  name: string;
  sha256: string;
  size: number;
  key: string;
  versionId?: string;
}

/** Per database: the base chain to continue, or why a full backup is taken. */
type DatabasePlan = { files: BaseFile[]; fullReason?: undefined } | { files: []; fullReason: string };

/**
 * The previous complete backup of this target as the base of this run's differentials (Operations
 * Manual, "Back up an online database": a differential continues the chain found in --to-path).
 * A base is usable for a database when the manifest is an Enterprise backup chain taken with this
 * very neo4j-admin version, records the database's chain (full first) with each file's SHA-256,
 * size and object, and holds fewer than `maxDifferentials` differentials; otherwise the database
 * gets a full backup, and `fullReason` says why.
 * @throws StorageError when the bucket cannot be listed or read (ManifestError of a refused
 *   manifest is not thrown: that backup is passed over, core/backup/manifest.ts latestValidBackup)
 */
export async function planChains(
  ctx: RunContext,
  databases: readonly string[],
  version: string,
  maxDifferentials: number,
): Promise<{ baseBackupId?: string; reason?: string; plans: Map<string, DatabasePlan> }> {
  const plans = new Map<string, DatabasePlan>();
  const allFull = (reason: string) => {
    for (const db of databases) plans.set(db, { files: [], fullReason: reason });
    return { reason, plans };
  };
  const latest = await latestValidBackup(ctx.s3, ctx.bucket, ctx.target);
  const { backupId, manifest } = latest;
  if (!backupId || !manifest || backupId >= ctx.backupId) {
    const refused = latest.refused.length
      ? ` (${latest.refused.length} refused manifest(s) passed over)`
      : '';
    return allFull(`no complete earlier backup of ${ctx.target}${refused}`);
  }
  if (manifest.neo4j_edition !== 'enterprise' || manifest.neo4j?.method !== 'backup')
    return allFull(`${backupId} is not an Enterprise backup chain`);
  // A restore since the base replaced the database: its history may no longer continue the chain.
  const restoredAfter = await restoreSince(ctx, backupId);
  if (restoredAfter)
    return allFull(
      `${restoredAfter} ran after ${backupId}: the restored database's history may not continue that chain`,
    );
  const tool = manifest.versions?.neo4j?.tool;
  if (tool !== version)
    return allFull(
      `${backupId} was taken with neo4j-admin ${tool ?? '(unrecorded)'}, this run has ${version}: a chain is continued with the same version only`,
    );
  for (const db of databases) {
    const record = manifest.neo4j.databases.find((d) => d.name === db);
    const names = record?.files.map((p) => p.slice(DATABASE_DIR.length)) ?? [];
    if (!record || record.files.length === 0) {
      plans.set(db, { files: [], fullReason: `${backupId} holds no chain of database ${db}` });
      continue;
    }
    const unlisted = record.files.find(
      (p) =>
        !p.startsWith(DATABASE_DIR) ||
        chainFiles([p.slice(DATABASE_DIR.length)], db).length !== 1 ||
        !manifest.checksums[p] ||
        manifest.sizes?.[p] === undefined ||
        !manifest.s3?.[p],
    );
    if (unlisted) {
      plans.set(db, {
        files: [],
        fullReason: `${backupId}: ${unlisted} is not a backup artifact of ${db} with a recorded checksum, size and object`,
      });
      continue;
    }
    const differentials = record.files.length - 1;
    if (differentials >= maxDifferentials) {
      plans.set(db, {
        files: [],
        fullReason: `the chain of ${db} in ${backupId} already holds ${differentials} differential(s) (maxDifferentials ${maxDifferentials})`,
      });
      continue;
    }
    plans.set(db, {
      files: record.files.map((path, i) => {
        const stored = manifest.s3?.[path] as { key: string; version_id?: string };
        return {
          path,
          name: names[i] as string,
          sha256: manifest.checksums[path] as string,
          size: manifest.sizes?.[path] as number,
          key: stored.key,
          ...(stored.version_id ? { versionId: stored.version_id } : {}),
        };
      }),
    });
  }
  return { baseBackupId: backupId, plans };
}

/** What one `neo4j-admin database backup` of one database did. */
interface BackupOutcome {
  database: string;
  exitCode: number;
  /** Artifacts it wrote (new `<db>-*.backup` files). */
  written: string[];
  /** The member it says it backed up from, when its output names one. */
  from?: string;
  stderr: string;
}

const describeMembers = (members: readonly Neo4jMember[]) =>
  members.map((m) => (m.reachable ? `${m.address} (answered)` : `${m.address} (${m.error})`)).join(', ');

/**
 * Enterprise online backup (Operations Manual, "Back up an online database",
 * modules/ROOT/pages/backup-restore/online-backup.adoc): `neo4j-admin database backup
 * --from=<every member> --to-path=DIR --type=...` per database, then every file of the database's
 * chain uploaded, so each backup restores on its own (its manifest lists the whole chain).
 *
 * Clusters: every member of `from` is probed first (TCP) and recorded in the result (`members`).
 * neo4j-admin tries them in order and exits 1 both when a backup failed and when it "succeeded but
 * encountered problems such as some servers being uncontactable"; the two are told apart by the
 * artifact it wrote or not. A database with no new artifact fails the run before anything is
 * uploaded: DatabaseUnreachableError when no member answered the probe, else ToolFailedError, each
 * naming the members. When every database has its artifact but a member did not answer (the probe,
 * or neo4j-admin's exit 1), the artifacts are uploaded and the run fails Neo4jBackupDegradedError:
 * never reported complete.
 *
 * Differentials (`chain.base` `previous-backup`): the previous complete backup's chain of each
 * database is downloaded into a folder of this run (each file verified against that manifest's
 * SHA-256 and size, core/s3/download.ts downloadVerified), so `--type=AUTO` takes a differential on
 * it; a full backup is taken where there is no usable base (planChains says why). The base files
 * enter this backup by server-side copy from their exact recorded version (CopyObject; checked
 * against the manifest's SHA-256, else uploaded from the verified local copy): only the new
 * artifact passes through the task. The result's `chain` records the base and the bytes moved.
 *
 * @throws ToolFailedError, DatabaseUnreachableError (a database without an artifact: nothing uploaded)
 * @throws Neo4jBackupDegradedError (artifacts uploaded, the backup not complete)
 * @throws StorageError from S3
 */
export async function backupNeo4jEnterprise(
  ctx: RunContext,
  admin: Neo4jAdmin,
  databases: readonly string[],
  options: EnterpriseOptions,
): Promise<Neo4jResult> {
  const startedAt = new Date().toISOString();
  const log = ctx.logger.child({ component: 'database', edition: 'enterprise' });
  const version = await neo4jAdminVersion(admin);
  const chainPolicy = options.chain ?? { base: 'none' as const, maxDifferentials: 0 };
  const fromS3 = chainPolicy.base === 'previous-backup';
  // A chain fetched from S3 is assembled in a folder of this run only: nothing else may join it.
  const dir = fromS3 ? join(options.backupDir, ctx.backupId) : options.backupDir;
  if (fromS3) await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });

  const members = await probeMembers(options.from, options.probeTimeoutMs);
  const unreachable = members.filter((m) => !m.reachable);
  if (unreachable.length > 0)
    log.warn('cluster members did not answer the probe', { members: describeMembers(members) });
  else log.info('every member answered the probe', { members: options.from.join(',') });

  try {
    // 1. The base: the previous backup's chain per database, downloaded and verified.
    let chainInfo: Neo4jChain = {
      base: chainPolicy.base,
      downloadedBytes: 0,
      copiedBytes: 0,
      uploadedBytes: 0,
      newBytes: 0,
    };
    const plans = new Map<string, DatabasePlan>();
    if (fromS3 && options.type === 'FULL') {
      chainInfo.reason = 'NEO4J_BACKUP_TYPE=FULL';
    } else if (fromS3) {
      // A base that cannot be looked up costs a full backup, never the backup.
      const planned = await planChains(ctx, databases, version, chainPolicy.maxDifferentials).catch(
        (err: unknown) => {
          if (err instanceof Error && err.name === ErrorNames.Interrupted) throw err;
          const reason = `the previous backup could not be looked up: ${err instanceof Error ? `${err.name}: ${excerpt(err.message, 300)}` : String(err)}`;
          return {
            reason,
            baseBackupId: undefined,
            plans: new Map<string, DatabasePlan>(
              databases.map((db) => [db, { files: [], fullReason: reason }]),
            ),
          };
        },
      );
      chainInfo = {
        ...chainInfo,
        ...(planned.baseBackupId ? { baseBackupId: planned.baseBackupId } : {}),
        ...(planned.reason ? { reason: planned.reason } : {}),
      };
      for (const db of databases) {
        const plan = planned.plans.get(db) as DatabasePlan;
        if (plan.files.length === 0) {
          plans.set(db, plan);
          continue;
        }
        try {
          for (const f of plan.files) {
            const { bytes } = await downloadVerified(
              ctx.s3,
              { bucket: ctx.bucket, key: f.key, ...(f.versionId ? { versionId: f.versionId } : {}) },
              f.sha256,
              join(dir, f.name),
            );
            if (bytes !== f.size)
              throw new StorageError(`${f.key} holds ${bytes} bytes, the manifest records ${f.size}`);
            chainInfo.downloadedBytes += bytes;
          }
          plans.set(db, plan);
        } catch (err) {
          if (err instanceof Error && err.name === ErrorNames.Interrupted) throw err;
          for (const f of plan.files) await rm(join(dir, f.name), { force: true });
          const fullReason = `the chain of ${db} in ${chainInfo.baseBackupId} is unusable: ${err instanceof Error ? `${err.name}: ${excerpt(err.message, 300)}` : String(err)}`;
          plans.set(db, { files: [], fullReason });
        }
      }
    }
    for (const db of databases) {
      const plan = plans.get(db);
      if (plan?.fullReason)
        log.warn('full backup: no usable base', { database: db, reason: plan.fullReason });
      else if (plan)
        log.info('differential on the previous backup', {
          database: db,
          base: chainInfo.baseBackupId,
          chain: plan.files.map((f) => f.name),
        });
    }

    // 2. The backups.
    const outcomes: BackupOutcome[] = [];
    for (const db of databases) {
      const plan = plans.get(db);
      const type = fromS3 && plan?.fullReason ? 'FULL' : options.type;
      const before = new Set(chainFiles(await readdir(dir), db));
      const args = [
        'database',
        'backup',
        `--from=${options.from.join(',')}`,
        `--to-path=${dir}`,
        `--type=${type}`,
        // Neo4j refuses --include-metadata for the system database itself.
        ...(db === 'system' ? [] : [`--include-metadata=${options.includeMetadata}`]),
        db,
      ];
      log.info('neo4j-admin database backup started', { database: db, from: options.from.join(','), type });
      const outcome = await runBackup(admin, args, db);
      outcome.written = chainFiles(await readdir(dir), db).filter((n) => !before.has(n));
      outcomes.push(outcome);
      if (outcome.written.length === 0) {
        // Failed: no artifact, whatever the exit code said. Nothing is uploaded.
        const summary = `no new backup artifact of database '${db}' in ${dir}; members: ${describeMembers(members)}`;
        if (unreachable.length === members.length)
          throw new DatabaseUnreachableError(
            `neo4j-admin database backup of '${db}' reached no member of ${options.from.join(',')}: ${describeMembers(members)}${outcome.stderr ? `; neo4j-admin: ${excerpt(outcome.stderr, 500)}` : ''}`,
          );
        throw new ToolFailedError(
          'neo4j-admin database backup',
          { code: outcome.exitCode, signal: null },
          `${outcome.stderr ? `${outcome.stderr}\n` : ''}${summary}`,
        );
      }
      for (const name of outcome.written) chainInfo.newBytes += (await stat(join(dir, name))).size;
      if (options.aggregate) {
        await runTool(admin.path, ['database', 'aggregate-backup', `--from-path=${dir}`, db], {
          env: admin.env,
          stdout: 'ignore',
          name: 'neo4j-admin database aggregate-backup',
        }).done;
      }
      log.info('neo4j-admin database backup finished', {
        database: db,
        exitCode: outcome.exitCode,
        from: outcome.from,
        written: outcome.written,
      });
    }

    // 3. The chains into this backup, as neo4j-admin itself describes them (the last transaction
    // each restores to; a base it could not continue left out): base files copied server-side, new
    // artifacts uploaded.
    const inspected = await inspectBackups(admin, dir);
    const records: Neo4jResult['databases'] = [];
    const files: FileRecord[] = [];
    for (const outcome of outcomes) {
      const db = outcome.database;
      const plan = plans.get(db);
      const { files: chain, highestTx } = restorableChain(chainFiles(await readdir(dir), db), inspected, db);
      const base = new Map((plan?.files ?? []).filter((f) => chain.includes(f.name)).map((f) => [f.name, f]));
      const fullReason =
        plan?.fullReason ??
        (plan && plan.files.length > 0 && base.size === 0
          ? 'the server no longer had the transactions since the base: neo4j-admin took a full backup (Operations Manual, "Backup modes")'
          : undefined);
      for (const name of chain) {
        const path = `${DATABASE_DIR}${name}`;
        const key = fileKey(ctx.target, ctx.backupId, path);
        const from = base.get(name);
        const copied = from ? await copyBaseFile(ctx, from, key, options, log) : undefined;
        if (copied) {
          chainInfo.copiedBytes += copied.size;
          files.push(fileRecord(path, copied));
          continue;
        }
        const uploaded = await uploadStream(
          ctx.s3,
          createReadStream(join(dir, name)),
          uploadOptions(ctx, key),
        );
        chainInfo.uploadedBytes += uploaded.size;
        files.push(fileRecord(path, uploaded));
      }
      records.push({
        name: db,
        files: chain.map((n) => `${DATABASE_DIR}${n}`),
        // The transaction a restore of this chain ends at: ties the counts to it (counts_basis).
        lastCommittedTx: highestTx,
        ...(outcome.from ? { from: outcome.from } : {}),
        taken: chain.length > 1 ? 'differential' : 'full',
        ...(fromS3 && base.size > 0 && chainInfo.baseBackupId
          ? { baseBackupId: chainInfo.baseBackupId }
          : {}),
        ...(fullReason ? { fullReason } : {}),
      });
    }
    log.info('backup chains stored', { ...chainInfo });

    // 4. Complete only when every member answered and neo4j-admin reported no problem.
    const problems = outcomes.filter((o) => o.exitCode !== 0);
    if (unreachable.length > 0 || problems.length > 0) {
      const sources = outcomes
        .map(
          (o) =>
            `'${o.database}' from ${
              o.from ??
              `one of ${
                members
                  .filter((m) => m.reachable)
                  .map((m) => m.address)
                  .join(', ') || '(none answered the probe)'
              } (neo4j-admin did not say which)`
            }`,
        )
        .join(', ');
      const down = unreachable.length
        ? `unreachable: ${unreachable.map((m) => `${m.address} (${m.error})`).join(', ')}`
        : 'every member answered the probe';
      const exits = problems.length
        ? `; neo4j-admin exited 1 for ${problems.map((o) => `'${o.database}'`).join(', ')} after writing the artifact ("succeeded but encountered problems such as some servers being uncontactable")${problems[0]?.stderr ? `: ${excerpt(problems[0].stderr, 300)}` : ''}`
        : '';
      throw new Neo4jBackupDegradedError(
        `Neo4j online backup reached only some cluster members: ${sources}; ${down}${exits}. ` +
          `The artifacts are uploaded under s3://${ctx.bucket}/${fileKey(ctx.target, ctx.backupId, DATABASE_DIR)} for inspection, ` +
          'but the backup is not marked complete (no manifest is written): bring every member back, or remove it from neo4j.backupFrom, and back up again',
      );
    }

    return {
      ...resultStamp(ctx, startedAt),
      component: 'database',
      edition: 'enterprise',
      method: 'backup',
      files,
      databases: records,
      tool: { name: 'neo4j-admin', version },
      members,
      chain: chainInfo,
    };
  } finally {
    if (fromS3) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs one `neo4j-admin database backup`: exit 0 or 1 is an outcome to judge by the artifacts
 * (exit 1 also means "succeeded with problems"); any other exit or a signal throws ToolFailedError.
 */
async function runBackup(admin: Neo4jAdmin, args: string[], database: string): Promise<BackupOutcome> {
  const tool = runTool(admin.path, args, { env: admin.env, name: 'neo4j-admin database backup' });
  let out = '';
  tool.stdout.setEncoding('utf8');
  tool.stdout.on('data', (chunk: string) => {
    out = (out + chunk).slice(-65_536);
  });
  let exitCode = 0;
  try {
    await tool.done;
  } catch (err) {
    if (!(err instanceof ToolFailedError) || err.exit.code !== 1) throw err;
    exitCode = 1;
  }
  // "... from <host:port>": the member neo4j-admin names in its output, when it names one.
  const from = /\bfrom\s+((?:\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+):\d{1,5})/.exec(out)?.[1];
  return { database, exitCode, written: [], ...(from ? { from } : {}), stderr: tool.stderrTail().trim() };
}

/**
 * A base file into this backup by server-side copy of its exact recorded version, tagged pending
 * like an upload; undefined (the caller uploads the verified local copy instead) when the copy fails
 * or its SHA-256 or size is not the manifest's.
 */
async function copyBaseFile(
  ctx: RunContext,
  from: BaseFile,
  key: string,
  options: EnterpriseOptions,
  log: RunContext['logger'],
) {
  try {
    const copied = await copyObject(
      ctx.s3,
      {
        bucket: ctx.bucket,
        key: from.key,
        size: from.size,
        ...(from.versionId ? { versionId: from.versionId } : {}),
      },
      { bucket: ctx.bucket, key, tagging: PENDING_TAGGING },
      {
        multipartCopyThreshold: options.multipartCopyThreshold ?? 5 * 1024 ** 3,
        copyPartSize: 512 * 1024 ** 2,
      },
    );
    if (copied.sha256 !== from.sha256) {
      log.warn('a copied base file does not hash as its manifest records: uploading it instead', {
        key,
        sha256: copied.sha256,
        expected: from.sha256,
      });
      return undefined;
    }
    return {
      key,
      size: from.size,
      sha256: copied.sha256,
      versionId: copied.versionId,
      s3ChecksumSHA256: copied.s3ChecksumSHA256,
    };
  } catch (err) {
    if (err instanceof Error && err.name === ErrorNames.Interrupted) throw err;
    log.warn('a base file could not be copied server-side: uploading it instead', {
      key,
      error: err instanceof Error ? `${err.name}: ${excerpt(err.message, 300)}` : String(err),
    });
    return undefined;
  }
}
