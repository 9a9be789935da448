/**
 * The graph database.
 * - Community: `neo4j-admin database dump <db> --to-stdout` per database, streamed into S3, while the
 *   DBMS is stopped; the runner refuses, before touching S3, if `database info` says a database is in use.
 * - Enterprise: `neo4j-admin database backup --from=HOST:PORT --to-path=DIR` per database (online),
 *   keeping the chain in DIR between runs (full, then differentials; optionally aggregated), and
 *   uploading every file of the chain so each backup restores on its own.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { checkedStream, dumpFormatError, neo4jDumpCheck } from '../../../../core/backup/formats.js';
import { DATABASE_DIR, fileKey, neo4jDumpPath } from '../../../../core/backup/layout.js';
import {
  type FileRecord,
  fileRecord,
  type Neo4jResult,
  type StoreCounts,
} from '../../../../core/backup/results.js';
import { Neo4jDatabaseInUseError, ToolFailedError } from '../../../../core/errors.js';
import { excerpt } from '../../../../core/redact.js';
import { uploadStream } from '../../../../core/s3/upload-stream.js';
import { runTool, toolOutput } from '../../../../core/tools/run-tool.js';
import { streamToolToS3 } from '../../../../core/tools/stream-to-s3.js';
import { type RunContext, resultStamp, uploadOptions } from '../context.js';
import type { Neo4jEnv } from '../env.js';
import { countStoreOffline, type OfflineStore } from './neo4j-counts.js';

export interface Neo4jAdmin {
  /** The neo4j-admin executable. */
  path: string;
  /** Environment for it (NEO4J_HOME, NEO4J_CONF, ...); the process environment when unset. */
  env?: NodeJS.ProcessEnv;
}

export interface DatabaseInfo {
  inUse: boolean;
  lastCommittedTx?: number;
}

/** Parses `neo4j-admin database info <db>` output ("Database in use: false", "Last committed transaction id:7"). */
export function parseDatabaseInfo(output: string): DatabaseInfo {
  const inUse = /Database in use:\s*(true|false)/i.exec(output)?.[1];
  if (inUse === undefined)
    throw new Error(`unexpected "neo4j-admin database info" output: ${excerpt(output.trim(), 200)}`);
  const tx = /Last committed transaction id:\s*(\d+)/i.exec(output)?.[1];
  return { inUse: inUse.toLowerCase() === 'true', ...(tx ? { lastCommittedTx: Number(tx) } : {}) };
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
      return { inUse: false };
    throw err;
  }
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
 * Community backup: every database of `databases` is checked stopped (`neo4j-admin database info`),
 * the stopped store is counted (unless `offlineCount` is false; a counting server that fails is
 * recorded as `storeCounts.status: failed` and the backup goes on with Bolt counts), checked stopped
 * again (the counting server released the store lock, and its last committed transaction is
 * unchanged), then each database is dumped with `neo4j-admin database dump <db> --to-stdout`
 * streamed to S3.
 * @throws Neo4jDatabaseInUseError before anything is written when a database is in use (the DBMS runs)
 * @throws DumpFormat / ToolFailedError / StorageError from the dump and its upload
 */
export async function backupNeo4jCommunity(
  ctx: RunContext,
  admin: Neo4jAdmin,
  databases: readonly string[],
  offlineCount: OfflineCountOption = false,
): Promise<Neo4jResult> {
  const startedAt = new Date().toISOString();
  const log = ctx.logger.child({ component: 'database', edition: 'community' });
  const version = await neo4jAdminVersion(admin);

  // Check every database first: refuse before anything is written.
  const checkStopped = async () => {
    const found = new Map<string, DatabaseInfo>();
    for (const db of databases) {
      const info = await databaseInfo(admin, db);
      if (info.inUse) throw new Neo4jDatabaseInUseError(db);
      found.set(db, info);
    }
    return found;
  };
  let infos = await checkStopped();

  // The graph counted from the very store dumped: nothing can write between this count and the dump.
  let storeCounts: StoreCounts;
  if (offlineCount === false) {
    storeCounts = { status: 'disabled', reason: 'NEO4J_COUNT_OFFLINE=false' };
  } else {
    try {
      const counted = await countStoreOffline(offlineCount, databases, log);
      storeCounts = { status: 'counted', counts: counted.counts, timings: counted.timings };
      log.info('dumped store counted', { counts: counted.counts, ...counted.timings });
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
    const after = await checkStopped();
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

  const files: FileRecord[] = [];
  for (const db of databases) {
    const path = neo4jDumpPath(db);
    const key = fileKey(ctx.target, ctx.backupId, path);
    log.info('neo4j-admin database dump started', { database: db, key });
    const dump = runTool(admin.path, ['database', 'dump', db, '--to-stdout'], {
      env: admin.env,
      name: 'neo4j-admin database dump',
    });
    // The dump is checked on the bytes uploaded (core/backup/formats.ts): stray output before it (a
    // banner, a log line) or a body that does not decompress (or whose zstd checksum fails) aborts
    // the upload with DumpFormat. Decompressing in the same pass costs about 1 s of CPU per 270 MB of
    // store on the harness dump (13 KB compressed), and bounded memory (the 2 MiB zstd window).
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
    files.push(fileRecord(path, uploaded));
  }

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
    tool: { name: 'neo4j-admin', version },
    storeCounts,
  };
}

/** Backup artifact files of a database: `<db>-YYYY-MM-DDTHH-mm-ss.backup`, oldest first. */
export function chainFiles(names: readonly string[], database: string): string[] {
  const escaped = database.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^${escaped}-\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}-\\d{2}.*\\.backup$`);
  return names.filter((n) => pattern.test(n)).sort();
}

export interface EnterpriseOptions {
  from: string;
  backupDir: string;
  type: Neo4jEnv['NEO4J_BACKUP_TYPE'];
  includeMetadata: Neo4jEnv['NEO4J_INCLUDE_METADATA'];
  aggregate: boolean;
}

export async function backupNeo4jEnterprise(
  ctx: RunContext,
  admin: Neo4jAdmin,
  databases: readonly string[],
  options: EnterpriseOptions,
): Promise<Neo4jResult> {
  const startedAt = new Date().toISOString();
  const log = ctx.logger.child({ component: 'database', edition: 'enterprise' });
  const version = await neo4jAdminVersion(admin);
  await mkdir(options.backupDir, { recursive: true });

  const records: Neo4jResult['databases'] = [];
  const files: FileRecord[] = [];
  for (const db of databases) {
    const args = [
      'database',
      'backup',
      `--from=${options.from}`,
      `--to-path=${options.backupDir}`,
      `--type=${options.type}`,
      // Neo4j refuses --include-metadata for the system database itself.
      ...(db === 'system' ? [] : [`--include-metadata=${options.includeMetadata}`]),
      db,
    ];
    log.info('neo4j-admin database backup started', { database: db, from: options.from, type: options.type });
    await runTool(admin.path, args, { env: admin.env, stdout: 'ignore', name: 'neo4j-admin database backup' })
      .done;
    if (options.aggregate) {
      await runTool(admin.path, ['database', 'aggregate-backup', `--from-path=${options.backupDir}`, db], {
        env: admin.env,
        stdout: 'ignore',
        name: 'neo4j-admin database aggregate-backup',
      }).done;
    }
    const chain = chainFiles(await readdir(options.backupDir), db);
    if (chain.length === 0) {
      throw new ToolFailedError(
        'neo4j-admin database backup',
        { code: 0, signal: null },
        `no ${db}-*.backup file in ${options.backupDir}`,
      );
    }
    for (const name of chain) {
      const path = `${DATABASE_DIR}${name}`;
      const key = fileKey(ctx.target, ctx.backupId, path);
      const uploaded = await uploadStream(
        ctx.s3,
        createReadStream(join(options.backupDir, name)),
        uploadOptions(ctx, key),
      );
      files.push(fileRecord(path, uploaded));
    }
    log.info('neo4j-admin database backup finished', { database: db, chain });
    records.push({ name: db, files: chain.map((n) => `${DATABASE_DIR}${n}`) });
  }

  return {
    ...resultStamp(ctx, startedAt),
    component: 'database',
    edition: 'enterprise',
    method: 'backup',
    files,
    databases: records,
    tool: { name: 'neo4j-admin', version },
  };
}
