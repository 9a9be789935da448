/**
 * Restores the graph database from a backup.
 * - Community, staged (the runner's restore and drills: `options.store` given, a backup of dumps):
 *   with the DBMS stopped, every dump is downloaded into scratch space (free space checked against
 *   the manifest's sizes) and hashed while it is written; beside it one `database info` refuses a
 *   running DBMS, and beside it (a refresh: once it passed) each database is loaded under a staging
 *   name of the run's own (`neo4j-admin database load <staging> --from-stdin`), fed from its file
 *   once that file is verified (neo4j-staged-load.ts). Only when every file equals the manifest's SHA-256 and size and every
 *   load succeeded are the staged stores swapped in for the target's (folder renames, undone on
 *   failure): a flipped bit in a GetObject body (multipart objects carry composite S3 checksums the
 *   SDK does not validate), a failed load or a refused store leaves the target's store as it was; so
 *   does a DBMS found running again just before the swap, and a swap undone (Neo4jStoreSwapUndone).
 *   The old store is removed after the swap (by the runner once the step has reported, also when
 *   the step then fails). README, "Benchmarks", says what staging costs on a disk.
 * - Community, in place (no `store`, a full Enterprise backup, or a staged load that did not fit
 *   beside the store): every file downloaded and verified first, then
 *   `neo4j-admin database load <db> --from-path=<dir> --overwrite-destination=true`, once per
 *   database (`system` first when it is restored). From Neo4j 5.20 an Enterprise full backup loads
 *   this way: the plan refuses an older target.
 * - Enterprise: restored by seeding, by the servers themselves, from the bucket (seed-neo4j.ts).
 * After that, `validateGraph` compares node and relationship counts over Bolt with those recorded at
 * backup time.
 *
 * `neo4j-admin database load --from-path` reads `<database>.dump` (or a full backup artifact) from the
 * folder given: Neo4j Operations Manual 5, "Restore a database dump"
 * (https://neo4j.com/docs/operations-manual/current/backup-restore/restore-dump/).
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { restorePrefix, restoreStepKey } from '../../../../core/backup/layout.js';
import type { Manifest } from '../../../../core/backup/manifest.js';
import {
  appendSentence,
  DatabaseUnreachableError,
  IncompatibleBackupError,
  ManifestError,
  NamedError,
  Neo4jDatabaseInUseError,
  Neo4jStoreSwapError,
  RestoreValidationError,
  RunnerConfigError,
  ToolFailedError,
} from '../../../../core/errors.js';
import type { Logger } from '../../../../core/log.js';
import { neo4jDatabaseNameProblem } from '../../../../core/neo4j-names.js';
import { openBoltDriver } from '../../../../core/readiness/neo4j-tls.js';
import { excerpt, excerptTail } from '../../../../core/redact.js';
import { graphCountDifferences } from '../../../../core/restore/compare.js';
import { communityLoadProblem } from '../../../../core/restore/plan.js';
import { RestoreStepResultSchema } from '../../../../core/restore/steps.js';
import { downloadVerified, partialPathOf } from '../../../../core/s3/download.js';
import { getJson, putJson } from '../../../../core/s3/objects.js';
import { runTool } from '../../../../core/tools/run-tool.js';
import { backupName } from '../context.js';
import { describesTarget, noteTargetState, stopRequested } from '../stop-guard.js';
import {
  type CypherRun,
  type DeploymentIdReset,
  type DestinationDeploymentId,
  DestinationDeploymentIdSchema,
  destinationDeploymentId,
  driverCypher,
  resetDeploymentId,
} from './deployment-id.js';
import { databaseInfos, type Neo4jAdmin } from './neo4j.js';
import {
  type BoltConnection,
  type OfflineStore,
  queryStoreOffline,
  readGraphCounts,
  waitForGraph,
} from './neo4j-counts.js';
import {
  type GrowingFile,
  leftoverStaging,
  loadStaged,
  removeStaged,
  stagingNames,
  swapStaged,
} from './neo4j-staged-load.js';
import { loadDirsProblems, type StoreDirs, storeDirs } from './neo4j-store-copy.js';
import type { RestoreContext } from './restore-postgres.js';
import { ensureFreeSpace, inOwnScratch } from './scratch.js';

/**
 * What happens to the target's `system` database (users, passwords, roles, privileges, the other
 * databases' definitions) in a Community restore: `keep` (the default) leaves the target's own;
 * `restore` loads the backup's `system.dump`, so users and passwords become those of the backup.
 * Neo4j's own restore instructions load only the database restored into a running standalone
 * instance and keep its `system` (Operations Manual 5, "Restore a database dump": "If you are not
 * replacing an existing database, you must create the database (using CREATE DATABASE against the
 * system database)"; Upgrade and Migration Guide, "Back up and restore a single database in a single
 * instance": users and roles are recreated on the target rather than copied with the data).
 */
export type Neo4jSystemChoice = 'keep' | 'restore';

/** One file read from S3 and held to the manifest before anything used it. */
export interface VerifiedFile {
  /** The manifest's path (`database/neo4j.dump`). */
  file: string;
  bytes: number;
  /** Equal to the manifest's `checksums[file]`. */
  sha256: string;
}

export interface Neo4jRestoreResult {
  component: 'database';
  /**
   * A refresh: the destination's deployment id read before the load (or the plan's new one when it
   * had none), which validate-neo4j writes into the restored graph (deployment-id.ts).
   */
  deploymentId?: DestinationDeploymentId;
  databases: Array<{ name: string; file: string }>;
  /** `system`: loaded from the backup (`restored`), left as it was (`kept`), or not in the backup. */
  system: 'restored' | 'kept' | 'not-in-backup';
  /** Every file loaded, each verified against the manifest's SHA-256 and size before any load. */
  verified: VerifiedFile[];
  /** The sum of `verified[].bytes`: every byte that reached neo4j-admin. */
  verifiedBytes: number;
  /**
   * How the databases were loaded: `staged` (under other names, each once its file verified, swapped in once
   * all was verified: neo4j-staged-load.ts) or `in-place` (`--overwrite-destination` from the verified
   * files, after the download), with `reason` when a staged restore fell back to it.
   */
  load: { how: 'staged' | 'in-place'; reason?: string };
  /**
   * With `options.keepReplaced`, after a staged swap: the target's old store folders, renamed aside
   * and not removed yet (absolute paths), for the caller to remove (neo4j-staged-load.ts removeReplaced).
   */
  replaced?: string[];
  durationMs: number;
}

/**
 * A file of the manifest with its stored version, checksum and (when recorded) size.
 * @throws ManifestError when the manifest records no stored copy or no checksum of `file`
 */
export function storedFile(manifest: Manifest, what: string, file: string) {
  const stored = manifest.s3?.[file];
  const sha256 = manifest.checksums[file];
  if (!stored || !sha256) throw new ManifestError(`${what} records no stored copy of ${file}`);
  return { file, stored, sha256, size: manifest.sizes?.[file] };
}

/**
 * Downloads `files` into `dir` (one name each), hashing while writing; every file must equal the
 * manifest's SHA-256 and size. Free space is checked first against the manifest's sizes. On any
 * failure the folder is removed and nothing is returned, so no tool ever reads an unverified byte.
 *
 * @throws InsufficientScratchSpaceError before the first byte when the files cannot fit
 * @throws RestoreValidationError when a file's SHA-256 or size differs from the manifest's
 * @throws StorageError when S3 cannot be read
 */
async function downloadAllVerified(
  ctx: RestoreContext,
  what: string,
  root: string,
  files: ReadonlyArray<ReturnType<typeof storedFile> & { to: string }>,
  signal?: AbortSignal,
  /** Told each file's index once it is whole under its name and verified (a staged load follows it). */
  onVerified?: (index: number) => void,
): Promise<VerifiedFile[]> {
  await rm(root, { recursive: true, force: true });
  const needed = files.reduce((n, f) => n + (f.size ?? 0), 0);
  await ensureFreeSpace(root, needed, `the ${files.length} Neo4j file(s) of ${what}`);
  const verified: VerifiedFile[] = [];
  try {
    for (const f of files) {
      const { bytes } = await downloadVerified(
        ctx.s3,
        { bucket: ctx.bucket, key: f.stored.key, versionId: f.stored.version_id },
        f.sha256,
        f.to,
        signal,
      ).catch((err: unknown) => {
        // The SDK validates a full-object checksum S3 returns (not a multipart object's composite
        // one) and fails the body's stream with a plain Error: the same finding as our hash.
        if (!(err instanceof NamedError) && err instanceof Error && /checksum/i.test(err.message)) {
          throw new RestoreValidationError(
            `s3://${ctx.bucket}/${f.stored.key} (${f.file}) failed the S3 checksum check on download, nothing was loaded: ${err.message}`,
          );
        }
        throw err;
      });
      if (f.size !== undefined && bytes !== f.size) {
        throw new RestoreValidationError(
          `s3://${ctx.bucket}/${f.stored.key} is ${bytes} bytes, the manifest records ${f.size} for ${f.file}`,
        );
      }
      verified.push({ file: f.file, bytes, sha256: f.sha256 });
      onVerified?.(verified.length - 1);
    }
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return verified;
}

/**
 * A Community refresh: how the destination's deployment id is read from its stopped store before
 * the load (a read-only server, neo4j-counts.ts queryStoreOffline) and the id written when it has
 * none (the plan's DEPLOYMENT_ID_FALLBACK).
 */
export interface CommunityRefresh {
  store: OfflineStore;
  fallback: string;
}

/** Community restore options (restoreNeo4jCommunity). */
export interface CommunityRestoreOptions {
  workDir: string;
  system?: Neo4jSystemChoice;
  databases?: readonly string[];
  /** A refresh: read the destination's deployment id before the load (see CommunityRefresh). */
  refresh?: CommunityRefresh;
  /**
   * The DBMS's NEO4J_HOME and configuration folder (default `<home>/conf`), whose neo4j.conf names
   * its store folders (neo4j-store-copy.ts storeDirs): given, a backup of dumps is loaded staged
   * (restoreStaged); without it, when that store has no `databases` folder, or for a full Enterprise
   * backup, in place after the download.
   */
  store?: { home: string; conf?: string };
  /**
   * `staged` (default): with `store`, each dump is loaded beside the target's store and swapped in
   * (restoreStaged). `in-place` (config neo4j.restoreLoad): loaded over the target's databases after
   * the whole download, as without `store`; the result's `load.reason` says it was asked for.
   */
  load?: 'staged' | 'in-place';
  /**
   * After a staged swap, leave the target's old store folders renamed aside (returned in `replaced`)
   * for the caller to remove, instead of removing them before returning: the runner removes them
   * once it has reported the step's success, so the DBMS starts meanwhile (4 GiB took 2-6 s here).
   */
  keepReplaced?: boolean;
}

/**
 * Community load (DBMS stopped). With `options.store`, a backup of dumps and `options.load` not
 * "in-place", staged (restoreStaged:
 * each load under a name of its own once its file verified, swapped in once all loaded). Otherwise in
 * two phases: every file downloaded and verified (see the module docstring), then
 * `neo4j-admin database load --from-path`. `system` is loaded only with
 * `options.system: "restore"`. The download runs beside the check of the stopped store (one
 * `database info`) and, for a refresh (`options.refresh`), the read of the destination's deployment
 * id from that store, before anything is loaded: from the first user database to be replaced that
 * exists and holds a Root node (deployment-id.ts).
 *
 * @param options.workDir scratch folder for the verified files, removed afterwards
 * @param options.system `keep` (default) or `restore` the target's `system` database
 * @param options.databases the target's databases (config `target.neo4j.databases`; default neo4j
 *   and system): a backup holding others is refused with IncompatibleBackupError before anything is
 *   downloaded or loaded (see communityLoadProblem in core/restore/plan.ts)
 * @throws ManifestError when the manifest records no Neo4j backup, no stored copy of a file, a chain
 *   Community cannot load, or no `system` while `restore` was asked for
 * @throws Neo4jDatabaseInUseError when a database to load is in use (the DBMS runs): the download
 *   is stopped and its files removed, nothing loaded into the target's store (staged loads begun
 *   beside the check are stopped and their folders removed); in place, also when neo4j-admin refuses
 *   a load whose database's lock is held (a DBMS started during the restore): that database and those
 *   after it not changed, the message naming any loaded before it (system: partly restored)
 * @throws InsufficientScratchSpaceError, RestoreValidationError, StorageError (download phase: the
 *   target untouched)
 * @throws ToolFailedError when neo4j-admin fails; a failed `database load` says in its message which
 *   databases were already loaded, which failed (its store overwritten) and which were not loaded
 * @throws DatabaseUnreachableError (a refresh) when the read-only server cannot open the stopped
 *   store, RestoreValidationError when it holds more than one Root node: nothing loaded yet
 */
export async function restoreNeo4jCommunity(
  ctx: RestoreContext,
  admin: Neo4jAdmin,
  manifest: Manifest,
  options: CommunityRestoreOptions = { workDir: '/tmp/neo4j-restore' },
): Promise<Neo4jRestoreResult> {
  // options.workDir is only where scratch goes: the files land in a folder of this run's own.
  return inOwnScratch(options.workDir, 'neo4j-restore', (workDir) =>
    restoreCommunityIn(ctx, admin, manifest, { ...options, workDir }),
  );
}

async function restoreCommunityIn(
  ctx: RestoreContext,
  admin: Neo4jAdmin,
  manifest: Manifest,
  options: CommunityRestoreOptions,
): Promise<Neo4jRestoreResult> {
  const started = Date.now();
  const log = ctx.logger.child({ component: 'database', step: 'restore', edition: 'community' });
  const what = backupName(ctx);
  const recorded = manifest.neo4j;
  if (!recorded) throw new ManifestError(`${what} holds no Neo4j backup to load`);
  const choice = options.system ?? 'keep';
  const inBackup = recorded.databases.some((db) => db.name === 'system');
  if (choice === 'restore' && !inBackup)
    throw new ManifestError(`${what} holds no system database to restore (neo4jSystem "restore")`);
  const loads = recorded.databases
    .filter((db) => choice === 'restore' || db.name !== 'system')
    .map((db) => {
      // The name becomes a neo4j-admin argument and a directory: Neo4j's rule, checked here too
      // (manifests are validated when read; this holds for any manifest object handed in).
      const badName = neo4jDatabaseNameProblem(db.name);
      if (badName) throw new ManifestError(`${what}: database name ${JSON.stringify(db.name)} ${badName}`);
      const files = db.files.map((file) => storedFile(manifest, what, file));
      if (files.length === 0) throw new ManifestError(`${what} records no file for database ${db.name}`);
      if (recorded.method === 'backup' && files.length > 1) {
        throw new ManifestError(
          `${what} holds a chain of ${files.length} backup files for ${db.name}; Community loads only a full backup (set NEO4J_AGGREGATE=true on the Enterprise backups to fold each chain into one)`,
        );
      }
      const f = files[0] as (typeof files)[number];
      const dir = join(options.workDir, db.name);
      // --from-path reads <database>.dump; a full backup artifact keeps its own name.
      const name = recorded.method === 'dump' ? `${db.name}.dump` : (f.file.split('/').pop() as string);
      return { name: db.name, dir, ...f, to: join(dir, name) };
    });
  if (loads.length === 0) throw new ManifestError(`${what} holds no database to load besides system`);
  // Defence in depth (the restore plan refuses the same): nothing touched yet.
  const unfit = communityLoadProblem(
    recorded.databases.map((db) => db.name),
    options.databases ?? ['neo4j', 'system'],
    choice,
  );
  if (unfit) throw new IncompatibleBackupError(`${what}: ${unfit}`);
  // system first: it holds the users and roles the data database is then opened with.
  loads.sort((a, b) => (a.name === 'system' ? -1 : b.name === 'system' ? 1 : 0));

  // The store is checked before anything of it changes: refused while the DBMS runs (the state
  // machine stops it first), with one `database info` for every database (one JVM start, not one per
  // database); a refresh then reads the destination's own deployment id, before anything is replaced.
  const notInUse = async () => {
    const infos = await databaseInfos(
      admin,
      loads.map(({ name }) => name),
    );
    for (const { name } of loads) if (infos.get(name)?.inUse) throw new Neo4jDatabaseInUseError(name, 'load');
    return infos;
  };
  const checkStore = async () => {
    const infos = await notInUse();
    const present = loads
      .map(({ name }) => name)
      .filter((name) => !infos.get(name)?.missing && name !== 'system');
    return options.refresh ? await communityDeploymentId(options.refresh, present, log) : undefined;
  };
  const base = {
    component: 'database' as const,
    databases: loads.map(({ name, file }) => ({ name, file })),
    system: !inBackup
      ? ('not-in-backup' as const)
      : choice === 'restore'
        ? ('restored' as const)
        : ('kept' as const),
  };
  let inPlaceReason: string | undefined;
  if (options.store) {
    // Before anything: a load (staged or in place) where neo4j-admin's own configuration puts the
    // store or its logs elsewhere than the DBMS reads them would restore nothing it serves.
    const elsewhere = loadDirsProblems(
      options.store.home,
      options.store.conf ?? join(options.store.home, 'conf'),
    );
    if (elsewhere.length > 0)
      throw new RunnerConfigError(
        elsewhere.map(
          (p) =>
            `neo4j-admin would load the backup elsewhere than the DBMS reads it: ${p}. Remove the setting from neo4j-admin's configuration, or make it name the DBMS's folder; nothing was loaded`,
        ),
      );
  }
  if (options.store && recorded.method === 'dump' && options.load === 'in-place') {
    inPlaceReason = IN_PLACE_ASKED;
    log.info('the load is not staged', { reason: inPlaceReason });
  } else if (options.store && recorded.method === 'dump') {
    const dirs = storeDirs(options.store.home, options.store.conf ?? join(options.store.home, 'conf'));
    const databasesDir = join(dirs.data, 'databases');
    if (existsSync(databasesDir)) {
      const staged = await restoreStaged(ctx, admin, log, what, loads, options.workDir, dirs, {
        checkStore,
        notInUse,
        loadAfterCheck: options.refresh !== undefined,
        keepReplaced: options.keepReplaced === true,
      });
      return { ...base, ...staged, durationMs: Date.now() - started };
    }
    // No store where NEO4J_HOME and NEO4J_CONF point (a DBMS never started, or settings naming
    // another store than neo4j-admin's): nothing to stage beside, and no staged folder left anywhere.
    inPlaceReason = `${databasesDir} (the store NEO4J_HOME and NEO4J_CONF name) does not exist: loaded in place`;
    log.warn('the load is not staged', { reason: inPlaceReason });
  }

  // In place, two phases. Phase 1, two things side by side, neither touching the target (only
  // scratch space is written): the store checked (checkStore), and every byte from S3 verified into
  // scratch space. A refused store stops the download (its files removed); a failed download waits
  // for the check's JVM to end. Nothing is loaded before both have finished.
  const stopDownload = new AbortController();
  const checked = checkStore();
  checked.catch((err: unknown) => stopDownload.abort(err));
  const [check, download] = await Promise.allSettled([
    checked,
    downloadAllVerified(ctx, what, options.workDir, loads, stopDownload.signal),
  ]);
  if (check.status === 'rejected') {
    await rm(options.workDir, { recursive: true, force: true });
    throw check.reason;
  }
  if (download.status === 'rejected') throw download.reason;
  const deploymentId = check.value;
  const verified = download.value;
  const verifiedBytes = verifiedTotal(log, verified);
  try {
    // Phase 2: load the verified files. A DBMS started since the check (while the download went on,
    // or between two loads) is found by neo4j-admin itself as each load begins: it refuses a
    // database in use before it removes anything (loadInPlace), up to the moment of that load, which
    // a second `database info` after the download (a JVM, 2 s and more) covered only up to its own.
    await loadInPlace(admin, loads, log);
  } finally {
    await rm(options.workDir, { recursive: true, force: true });
  }
  return {
    ...base,
    ...(deploymentId ? { deploymentId } : {}),
    verified,
    verifiedBytes,
    load: { how: 'in-place', ...(inPlaceReason ? { reason: inPlaceReason } : {}) },
    durationMs: Date.now() - started,
  };
}

/** The restore report's `load.reason` when neo4j.restoreLoad chose the in-place load. */
export const IN_PLACE_ASKED =
  'neo4j.restoreLoad is "in-place": loaded over the target\'s databases once every file was verified';

/** The bytes of `verified`, summed, logged as downloaded and verified (both ways of loading log it alike). */
function verifiedTotal(log: Logger, verified: readonly VerifiedFile[]): number {
  const verifiedBytes = verified.reduce((n, v) => n + v.bytes, 0);
  log.info('Neo4j files downloaded and verified against the manifest', {
    files: verified.length,
    verifiedBytes,
  });
  return verifiedBytes;
}

/** A database to load: its name, the manifest's file, and where its verified copy goes in scratch space. */
type DatabaseLoad = ReturnType<typeof storedFile> & { name: string; dir: string; to: string };

/**
 * `neo4j-admin database load <db> --from-path=<dir> --overwrite-destination=true` for each of `loads`
 * in order, from the verified files in scratch space.
 * @throws Neo4jDatabaseInUseError when neo4j-admin refuses a load because the database is in use (a
 *   DBMS started during the restore): that database was not changed, since neo4j-admin takes the
 *   database's lock before it removes the old store (seen with Neo4j 5.26 and 2025.10: "The database
 *   is in use. Stop database 'neo4j' and try again.", the store's files untouched; the Operations
 *   Manual, "Restore a database dump", asks for the database to be stopped); the message says which
 *   databases were loaded before it, none: the target's store not changed
 * @throws ToolFailedError (and what runTool throws) with the message partlyRestored gives it
 */
async function loadInPlace(admin: Neo4jAdmin, loads: readonly DatabaseLoad[], log: Logger): Promise<void> {
  const env = admin.env ?? process.env;
  const loaded: string[] = [];
  for (const { name, file, dir, stored } of loads) {
    // A stop asked for already (while the files downloaded, or the staged folders were removed): its
    // handling may have recorded the target as unchanged and be about to exit. No load begins then:
    // it would overwrite the target's store under a stop that says nothing of it.
    const stop = stopRequested();
    if (stop) {
      if (loaded.length > 0)
        noteTargetState(
          `The target is partly restored: ${loaded.map((n) => `${n} loaded from the backup`).join(', ')}; the runner was stopped before it loaded ${loads
            .map((l) => l.name)
            .filter((n) => !loaded.includes(n))
            .join(', ')}.${systemReplaced(loaded)} ${RESTORE_AGAIN}`,
        );
      throw stop;
    }
    // A stop from here on (the tool ended under it) must not be reported as a bare Interrupted: the
    // state machine would start the DBMS on a store it knows nothing about.
    noteTargetState(
      `T${partlyRestoredState(loaded, name).slice(1)}: it was stopped before it ended, so the ${name} store may be empty or damaged.${systemReplaced(loaded)}${notLoaded(
        loads.map((l) => l.name),
        loaded,
        name,
      )} ${RESTORE_AGAIN}`,
    );
    log.info('neo4j-admin database load started', {
      database: name,
      key: stored.key,
      versionId: stored.version_id,
    });
    try {
      await runTool(
        admin.path,
        ['database', 'load', name, `--from-path=${dir}`, '--overwrite-destination=true'],
        { env, stdout: 'ignore' },
      ).done;
    } catch (err) {
      if (err instanceof ToolFailedError && LOAD_REFUSED_IN_USE.test(err.stderrTail))
        throw refusedInUse(
          name,
          loaded,
          loads.map((l) => l.name),
          err.stderrTail,
        );
      throw partlyRestored(
        err,
        loaded,
        name,
        loads.map((l) => l.name),
      );
    }
    loaded.push(name);
    log.info('neo4j-admin database load finished', { database: name, file });
  }
  noteTargetState(
    `The backup's databases (${loaded.join(', ')}) had been loaded in place of the target's before this: the target's store holds the backup's graph, not yet validated (validate it, or restore again).`,
  );
}

/**
 * neo4j-admin's refusal of a load into a database the DBMS holds: "Failed to load database 'neo4j':
 * The database is in use. Stop database 'neo4j' and try again." (Neo4j 5.26 and 2025.10, seen here).
 */
const LOAD_REFUSED_IN_USE = /The database is in use\. Stop database/;

/**
 * An in-place load neo4j-admin refused because the database's lock is held (a DBMS started during the
 * restore, or another neo4j-admin on the store): the refused database and those after it were not
 * changed, `loaded` (in load order) already were. The target's state noted for a stop
 * (noteTargetState) is set to the same words, so a stop that reports in its place says the same.
 * @param stderrTail the end of neo4j-admin's standard error, quoted in the message
 * @returns Neo4jDatabaseInUseError, e.g. "Neo4j database "neo4j" is in use: ... neo4j-admin refused the
 *   in-place load (...): its lock is held, by a DBMS started during the restore or another neo4j-admin.
 *   Nothing was loaded in place: the target's store was not changed. Stop the DBMS (or let the other
 *   neo4j-admin end) and restore again."
 */
function refusedInUse(
  name: string,
  loaded: readonly string[],
  all: readonly string[],
  stderrTail: string,
): Neo4jDatabaseInUseError {
  const error = new Neo4jDatabaseInUseError(name, 'load');
  const refusal = excerpt(stderrTail.split('\n').find((l) => LOAD_REFUSED_IN_USE.test(l)) ?? stderrTail, 300);
  const found = `neo4j-admin refused the in-place load (${refusal.trim()}): its lock is held, by a DBMS started during the restore or another neo4j-admin`;
  const again = 'Stop the DBMS (or let the other neo4j-admin end) and restore again.';
  const state = loaded.length
    ? `The target is partly restored: ${loaded.map((n) => `${n} loaded from the backup`).join(', ')}; ${name} was not changed.${systemReplaced(loaded)}${notLoaded(all, loaded, name)} ${again}`
    : `Nothing was loaded in place: the target's store was not changed. ${again}`;
  error.message = `${error.message}. ${found}. ${state}`;
  // A stop reporting in this error's place (the note is what it says) must not say "may be damaged".
  noteTargetState(state);
  return describesTarget(error);
}

/** neo4j-admin's words for a full disk (or quota), in a failed load's standard error. */
const NO_SPACE = /No space left on device|Disk quota exceeded/i;

/**
 * The staged restore (neo4j-staged-load.ts): the check of the store, the verified download of every
 * file and each database's load under a staging name, fed from its file once verified, all side by
 * side (a refresh's loads only once the check passed: `checks.loadAfterCheck`); the staged stores
 * are swapped in only when all of it succeeded. A staged
 * load that runs out of room falls back to the in-place load from the verified files (the reason in
 * `load.reason` and the log); a swap that cannot be made is undone and fails the restore
 * (Neo4jStoreSwapUndone, the target unchanged), and one that cannot be undone is Neo4jStoreSwap.
 * The in-use check runs again just before the swap: a DBMS started meanwhile fails the restore,
 * nothing swapped.
 * @throws what checkStore, the download and the loads throw; once a staged load had started, the
 *   message adds that the target's store was not changed (the staged folders removed)
 */
async function restoreStaged(
  ctx: RestoreContext,
  admin: Neo4jAdmin,
  log: Logger,
  what: string,
  loads: readonly DatabaseLoad[],
  workDir: string,
  dirs: StoreDirs,
  checks: {
    /** The store's check, before the swap (in use: refused; a refresh's deployment id). */
    checkStore: () => Promise<DestinationDeploymentId | undefined>;
    /**
     * Whether the loads wait for checkStore: a refresh's does (its read-only server opens the
     * target's store); otherwise the first load starts beside the in-use check, at once.
     */
    loadAfterCheck: boolean;
    /** The in-use check alone, again just before the swap. */
    notInUse: () => Promise<unknown>;
    /** Leave the replaced folders for the caller (returned in `replaced`) instead of removing them. */
    keepReplaced: boolean;
  },
): Promise<Omit<Neo4jRestoreResult, 'component' | 'databases' | 'system' | 'durationMs'>> {
  const leftovers = await leftoverStaging(dirs);
  if (leftovers.length > 0)
    log.warn(
      'folders of an earlier staged restore are in the store (a runner stopped before its swap, or, for `-replaced` folders, after it while removing the old store): check and remove them by hand',
      {
        folders: leftovers,
      },
    );
  const staging = stagingNames(loads.map((l) => l.name));
  const growing: GrowingFile[] = loads.map((l) => ({
    partial: partialPathOf(l.to),
    file: l.to,
    done: false,
  }));
  const stop = new AbortController();
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown): never => {
    failure ??= { error };
    stop.abort(error);
    throw error;
  };
  let loadStarted = false;
  let noRoom: string | undefined;
  const checked = checks.checkStore().catch(fail);
  // Each file's verdict: settled once the file is verified, or once the download has ended (failed).
  const verdicts = loads.map(() => {
    const verdict: { settled?: Promise<void>; settle: () => void } = { settle: () => undefined };
    verdict.settled = new Promise<void>((resolve) => {
      verdict.settle = resolve;
    });
    return verdict;
  });
  // Logged when the download ends (the loads may still run): the time is the download's own.
  let verifiedBytes = 0;
  const downloaded = downloadAllVerified(ctx, what, workDir, loads, stop.signal, (i) => {
    (growing[i] as GrowingFile).done = true;
    verdicts[i]?.settle();
  })
    .then((verified) => {
      verifiedBytes = verifiedTotal(log, verified);
      return verified;
    })
    .catch(fail)
    .finally(() => {
      for (const v of verdicts) v.settle();
    });
  const loaded = (async () => {
    // The loads write only folders named for this run (stagingNames), never the target's, so they
    // need not wait for the in-use check's JVM (about 2-5 s): a DBMS found running stops them, and
    // their folders are removed, before anything is swapped. A refresh waits: its check starts a
    // read-only server on the store, and a second JVM beside it would only slow both.
    if (checks.loadAfterCheck) await checked;
    for (const [i, { name, stored }] of loads.entries()) {
      const as = staging.get(name) as string;
      // Each load reads only verified bytes: it starts once its own file matched the manifest (the
      // next file may still be downloading). Fed while its file still arrived, the load of a 4 GiB
      // store took 2-3 times as long as from the whole file (bench/neo4j-restore.ts, 2026-12-03).
      await verdicts[i]?.settled;
      stop.signal.throwIfAborted();
      log.info('neo4j-admin database load started (staged), from its verified file', {
        database: name,
        staging: as,
        key: stored.key,
        versionId: stored.version_id,
      });
      loadStarted = true;
      try {
        await loadStaged(admin, as, growing[i] as GrowingFile, stop.signal);
      } catch (err) {
        // The store's check comes first: a DBMS found running is the cause to report (fail records
        // the first error), not what neo4j-admin made of it.
        await Promise.allSettled([checked]);
        if (!stop.signal.aborted && err instanceof ToolFailedError && NO_SPACE.test(err.stderrTail)) {
          // The store's volume cannot hold the staged store beside the target's: loaded in place
          // once the download is verified, as without staging.
          // The end of its standard error: the JVM's own warnings come first, the reason last.
          noRoom = `the staged load of ${name} did not fit beside the target's store (${excerptTail(err.stderrTail, 300)})`;
          log.warn('the staged load ran out of room: loading in place once the download is verified', {
            reason: noRoom,
          });
          return;
        }
        throw err;
      }
      // neo4j-admin loads into the store of its own NEO4J_HOME and NEO4J_CONF: the swap needs it here.
      const landed = join(dirs.data, 'databases', as);
      if (!existsSync(landed))
        throw new RunnerConfigError([
          `neo4j-admin loaded ${name} as ${as}, but not into ${landed}, the store that NEO4J_HOME and NEO4J_CONF name: set both to the DBMS's (and remove the ${as} folder neo4j-admin wrote elsewhere)`,
        ]);
      // A load always writes the database's transaction logs (a checkpoint at least): under another
      // root (neo4j-admin.conf can set its own server.directories.transaction.logs.root), a swap would
      // put a store without its logs in place of the target's and remove the target's logs.
      const logs = join(dirs.transactions, as);
      if (!existsSync(logs))
        throw new RunnerConfigError([
          `neo4j-admin loaded ${name} as ${as}, but wrote its transaction logs elsewhere than ${logs}, under the transaction log root that the neo4j.conf of NEO4J_CONF names: neo4j-admin's own configuration (neo4j-admin.conf, neo4j-admin-database-load.conf) must not set another server.directories.transaction.logs.root than the DBMS's (and remove the ${as} folder neo4j-admin wrote there)`,
        ]);
      log.info('neo4j-admin database load finished (staged)', { database: name, staging: as });
    }
  })().catch(fail);
  const [check, download] = await Promise.allSettled([checked, downloaded, loaded]);
  try {
    if (failure || check.status === 'rejected' || download.status === 'rejected') {
      const error =
        failure?.error ??
        (check.status === 'rejected' ? check.reason : (download as PromiseRejectedResult).reason);
      const left = await removeStaged(dirs, staging.values());
      if (loadStarted && error instanceof Error) {
        appendSentence(
          error,
          left.length === 0
            ? "The target's store was not changed (the load was staged under another name, and removed)."
            : `The target's store was not changed; staged folders of this run could not be removed: ${left.join(', ')}.`,
        );
      }
      throw error;
    }
    const deploymentId = check.value;
    const verified = download.value;
    const reason = noRoom;
    // The DBMS may have been started since the first check (by hand, or its service scaled up): a
    // swap under it would replace the files it serves, and its writes be lost at its next start; an
    // in-place load (no room to stage) would overwrite them. Checked again just before either.
    const stillStopped = await checks.notInUse().then(
      () => undefined,
      (err: unknown) => err,
    );
    if (stillStopped !== undefined) {
      const left = await removeStaged(dirs, staging.values());
      const error = stillStopped instanceof Error ? stillStopped : new Error(String(stillStopped));
      const next = reason ? 'the in-place load' : 'the swap';
      const kept = `Nothing was ${reason ? 'loaded in place' : 'swapped'}: the target's store was not changed${left.length > 0 ? `; staged folders of this run could not be removed: ${left.join(', ')}` : ' (the staged folders were removed)'}`;
      error.message =
        error instanceof Neo4jDatabaseInUseError
          ? `${error.message.trimEnd()}. Found just before ${reason ? 'the in-place load (the staged load had no room)' : 'the staged stores were to be put in place'}: the DBMS was started during the restore. ${kept}. Stop the DBMS and restore again.`
          : `the in-use check just before ${next} failed (${error.message.trimEnd()}). ${kept}.`;
      throw error;
    }
    if (!reason) {
      try {
        const replaced = await swapStaged(dirs, staging, log, { keepReplaced: checks.keepReplaced });
        log.info("the staged databases were put in place of the target's", {
          databases: [...staging.keys()],
        });
        return {
          ...(deploymentId ? { deploymentId } : {}),
          verified,
          verifiedBytes,
          load: { how: 'staged' },
          ...(checks.keepReplaced ? { replaced } : {}),
        };
      } catch (err) {
        if (!(err instanceof Neo4jStoreSwapError) || !err.restored) throw err;
        // Every folder is back: the target unchanged. No in-place load now: it would first delete
        // the target's store, on a volume that has just failed a rename (read-only, failing, full).
        const left = await removeStaged(dirs, staging.values());
        err.message = `${err.message}: the target's store was not changed${left.length > 0 ? `; staged folders of this run could not be removed: ${left.join(', ')}` : ' (the staged folders were removed)'}. Nothing was loaded in place (it would delete the target's store first, on the volume that failed); fix the cause and restore again`;
        throw err;
      }
    }
    const left = await removeStaged(dirs, staging.values());
    if (left.length > 0)
      log.warn(
        'staged folders of this run could not be removed before the in-place load: remove them by hand',
        {
          folders: left,
        },
      );
    await loadInPlace(admin, loads, log);
    return {
      ...(deploymentId ? { deploymentId } : {}),
      verified,
      verifiedBytes,
      load: { how: 'in-place', reason },
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * The deployment id of a stopped Community store: a read-only server on it (queryStoreOffline)
 * reads the Root node of each of `present` (the user databases the load replaces that exist), the
 * first holding one wins; none (a new, empty target): `refresh.fallback`, without starting a server.
 * A store that cannot be read (the server does not start or answer, more than one Root node) also
 * gets `refresh.fallback`, with `unreadable` saying why: a refresh is often what repairs a broken
 * destination, and the report names the new id and the reason. Never throws for the store's state.
 */
export async function communityDeploymentId(
  refresh: CommunityRefresh,
  present: readonly string[],
  log: Logger,
): Promise<DestinationDeploymentId> {
  if (present.length === 0) return destinationDeploymentId(async () => [], [], refresh.fallback);
  let read: Awaited<ReturnType<typeof queryStoreOffline<DestinationDeploymentId>>>;
  try {
    read = await queryStoreOffline(
      refresh.store,
      present,
      (driver) => destinationDeploymentId(driverCypher(driver), present, refresh.fallback),
      { phase: 'deployment-id', server: 'read-only server reading the deployment id', logger: log },
    );
  } catch (err) {
    // A destination whose store will not start (corrupted, another version) is often the reason for
    // the refresh: it gets the plan's new id, and the report says why, instead of failing the refresh.
    const unreadable = excerpt(err instanceof Error ? `${err.name}: ${err.message}` : String(err), 500);
    log.warn("the destination's deployment id could not be read from its stopped store: it gets a new one", {
      unreadable,
      deploymentId: refresh.fallback,
    });
    return { previous: null, value: refresh.fallback, how: 'generated', unreadable };
  }
  const { result, timings } = read;
  log.info("the destination's deployment id was read from its stopped store", {
    deploymentId: result,
    ...timings,
  });
  return result;
}

/**
 * A load failed after the target's stores began to be overwritten: the error keeps its class and
 * `name` (the state machine's Catch and the restore report match on it) and its message now says,
 * first, what of the target was already replaced. `neo4j-admin database load --overwrite-destination`
 * removes the destination store before it writes the new one (Neo4j Operations Manual, "Restore a
 * database dump"), so the failed database may be empty or half written.
 *
 * @param err the load's error (ToolFailedError, InsufficientScratchSpaceError, ...)
 * @param loaded databases loaded from the backup before the failure, in load order
 * @param failed the database whose load failed
 * @param all every database this restore was to load
 * @returns `err` with its message prefixed, e.g. "the target is partly restored: system loaded from
 *   the backup, neo4j failed: ...; ..."
 */
function partlyRestored(err: unknown, loaded: string[], failed: string, all: string[]): Error {
  const error = err instanceof Error ? err : new Error(String(err));
  error.message =
    `${partlyRestoredState(loaded, failed)}: ${error.message}; the ${failed} store was overwritten and may be empty or damaged.${systemReplaced(loaded)}${notLoaded(all, loaded, failed)}` +
    ` ${RESTORE_AGAIN}`;
  return describesTarget(error);
}

/** What an in-place load leaves: which databases were loaded before `failed` failed. */
const partlyRestoredState = (loaded: readonly string[], failed: string) =>
  loaded.length
    ? `the target is partly restored: ${loaded.map((n) => `${n} loaded from the backup`).join(', ')}, ${failed} failed`
    : `the target is partly restored: nothing was loaded before ${failed}, and ${failed} failed`;

/** A sentence when the backup's system database (users, roles) is already in the target. */
const systemReplaced = (loaded: readonly string[]) =>
  loaded.includes('system')
    ? " The backup's system database (its users, passwords and roles) already replaced the target's."
    : '';

/** A sentence naming the databases an in-place load had not reached yet. */
const notLoaded = (all: readonly string[], loaded: readonly string[], failed: string) => {
  const pending = all.filter((n) => n !== failed && !loaded.includes(n));
  return pending.length ? ` Not loaded: ${pending.join(', ')}.` : '';
};

const RESTORE_AGAIN =
  'Keep the DBMS stopped and restore this backup again once the cause is fixed (or restore another backup).';

/** A Neo4j identifier in backticks (names are validated upstream; this guards the syntax only). */
export const quotedName = (name: string) => `\`${name.replace(/`/g, '``')}\``;

/** A Cypher string literal: single quotes, with backslashes and quotes escaped. */
export const cypherString = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** Cypher against the running DBMS (Enterprise administration commands go to `system`). */
export interface CypherSession {
  run(
    database: string,
    query: string,
    params?: Record<string, unknown>,
  ): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export function boltCypher(connection: BoltConnection): CypherSession {
  const driver = openBoltDriver(connection, { connectionTimeout: 15_000 });
  // The first statement waits (bounded) until the DBMS answers with `system` online (waitForGraph).
  let ready: Promise<void> | undefined;
  return {
    async run(database, query, params = {}) {
      ready ??= waitForGraph(connection, ['system']);
      await ready;
      const session = driver.session({ database });
      try {
        const result = await session.run(query, params);
        return result.records.map((r) => r.toObject());
      } catch (err) {
        const code = String((err as { code?: unknown }).code ?? '');
        if (code === 'ServiceUnavailable' || code.startsWith('Neo.ClientError.Security.'))
          throw new DatabaseUnreachableError(`cannot connect to Neo4j at ${connection.uri}: ${String(err)}`);
        throw err;
      } finally {
        await session.close();
      }
    },
    close: () => driver.close(),
  };
}

/**
 * new-database: which name each of the backup's databases has on the target. A new-database restore
 * takes a backup of exactly one user database (seed-neo4j.ts) and restores it as `newDatabaseName`,
 * whatever the backup called it ("neo4j", "graph", ...); `system` keeps its name.
 *
 * @returns `{ <the backup's user database>: newDatabaseName }`
 * @throws ManifestError when the backup does not hold exactly one user database
 */
export function renamedForNewDatabase(manifest: Manifest, newDatabaseName: string): Record<string, string> {
  const names = new Set([
    ...(manifest.neo4j?.databases ?? []).map((d) => d.name),
    ...Object.keys(manifest.counts?.neo4j ?? {}),
  ]);
  names.delete('system');
  if (names.size !== 1)
    throw new ManifestError(
      `a new-database restore takes a backup of one user database; this one holds ${names.size ? [...names].join(', ') : 'none'}`,
    );
  return { [[...names][0] as string]: newDatabaseName };
}

/**
 * After the DBMS is back: node and relationship counts per database equal those at backup time.
 *
 * @param options.system the restore's `neo4jSystem` choice. With `restore`, the users and passwords
 *   are the backup's, so `connection` (the target's credentials secret) must be valid in the
 *   backup's `system`; an authentication failure then says so instead of only "cannot connect".
 * @throws RestoreValidationError when counts differ (naming each database)
 * @throws DatabaseUnreachableError when Bolt cannot connect or the credentials are refused
 */
export async function validateGraph(
  ctx: RestoreContext,
  connection: BoltConnection,
  manifest: Manifest,
  /** The backup's database name → the name it was restored under (new-database mode). */
  renamed: Record<string, string> = {},
  options: { system?: Neo4jSystemChoice } = {},
): Promise<Record<string, { nodes: number; relationships: number }>> {
  return (await checkGraph(ctx, connection, manifest, renamed, options)).counts;
}

/** The restored graph's counts and one sentence saying what they were compared with (the restore report quotes it). */
export interface GraphValidation {
  counts: Record<string, { nodes: number; relationships: number }>;
  /**
   * "graph counts equal those at backup time (counted from the dumped store)", "no graph counts
   * recorded at backup time; restored databases have N nodes, M relationships", or "counts differ but
   * were not tied to the dump: warning ..." (a difference that did not fail the step).
   */
  validation: string;
}

/** validateGraph, with the sentence saying what was compared (GraphValidation). Same errors. */
export async function checkGraph(
  ctx: RestoreContext,
  connection: BoltConnection,
  manifest: Manifest,
  renamed: Record<string, string> = {},
  options: { system?: Neo4jSystemChoice } = {},
): Promise<GraphValidation> {
  if (options.system === 'restore') {
    try {
      return await compareCounts(ctx, (dbs) => readGraphCounts(connection, dbs), manifest, renamed);
    } catch (err) {
      if (err instanceof DatabaseUnreachableError && /Security|auth|credentials/i.test(err.message)) {
        throw new DatabaseUnreachableError(
          `the backup's system database was restored (neo4jSystem "restore"), so its users and passwords now apply, and user "${connection.username}" of the target's credentials secret is refused by them: set the secret to a user and password of the backup, or restore with neo4jSystem "keep". ${err.message}`,
        );
      }
      throw err;
    }
  }
  return compareCounts(ctx, (dbs) => readGraphCounts(connection, dbs), manifest, renamed);
}

const totals = (counts: Record<string, { nodes: number; relationships: number }>) => {
  const all = Object.values(counts);
  return `${all.reduce((n, c) => n + c.nodes, 0)} nodes, ${all.reduce((n, c) => n + c.relationships, 0)} relationships`;
};

/**
 * The restored databases' counts compared with those recorded at backup time, as `counts_basis`
 * allows (see below), read through `readCounts` (Bolt for Community, the Cypher session of a seeded
 * Enterprise restore).
 *
 * @param readCounts counts per database name, for the names asked
 * @param renamed the backup's database name → the name it now has (new-database, rehearsals)
 * @param only compare only these databases of the backup (default: all it recorded)
 * @throws RestoreValidationError when counts differ (naming each database)
 */
export async function compareCounts(
  ctx: RestoreContext,
  readCounts: (databases: string[]) => Promise<Record<string, { nodes: number; relationships: number }>>,
  manifest: Manifest,
  renamed: Record<string, string>,
  only?: readonly string[],
): Promise<GraphValidation> {
  const keep = <T>(entries: Record<string, T> | undefined): Record<string, T> | undefined =>
    entries && only
      ? Object.fromEntries(Object.entries(entries).filter(([db]) => only.includes(db)))
      : entries;
  const recorded = keep(manifest.counts?.neo4j);
  if (!recorded) {
    // An imported infrahub-backup archive records no counts: the graph must answer, and its counts are reported.
    const databases = (manifest.neo4j?.databases ?? [])
      .filter((d) => !only || only.includes(d.name))
      .map((d) => renamed[d.name] ?? d.name)
      .filter((d) => d !== 'system');
    const actual = await readCounts(databases);
    ctx.logger.warn(
      'the backup records no graph counts (an imported archive): the graph answers; counts not compared',
      {
        step: 'validate',
        counts: actual,
      },
    );
    return {
      counts: actual,
      validation: `no graph counts recorded at backup time; restored databases have ${totals(actual)}`,
    };
  }
  // counts_basis (core/backup/manifest.ts) says whether the counts describe the dumped data: a
  // database whose counts differ from it ("differs") is only read, not compared; one where that is
  // unknown (Community: no transaction id over Bolt) reports a difference as a warning, since the
  // bytes loaded were verified against the manifest and a write between counting and the dump
  // cannot be told apart from it; "verified" (and manifests without counts_basis) fail on any difference.
  const basis = keep(manifest.counts_basis) ?? {};
  const strict = Object.fromEntries(
    Object.entries(recorded)
      .filter(([db]) => basis[db]?.describes_dump !== 'unknown')
      .map(([db, c]) => [renamed[db] ?? db, c]),
  );
  const lenient = Object.fromEntries(
    Object.entries(recorded)
      .filter(([db]) => basis[db]?.describes_dump === 'unknown')
      .map(([db, c]) => [renamed[db] ?? db, c]),
  );
  const notComparable = Object.entries(basis)
    .filter(([db, b]) => b.describes_dump === 'differs' && !(db in recorded))
    .map(([db]) => renamed[db] ?? db);
  const databases = [...Object.keys(strict), ...Object.keys(lenient), ...notComparable];
  const actual = await readCounts(databases);
  const differences = graphCountDifferences(strict, actual);
  if (differences.length > 0) {
    throw new RestoreValidationError(
      `restored graph does not match the backup's counts:\n${differences.map((d) => `  - ${d}`).join('\n')}`,
    );
  }
  const unproven = graphCountDifferences(lenient, actual);
  if (unproven.length > 0) {
    ctx.logger.warn(
      'graph counts differ from those taken before the dump, which cannot be tied to the dumped transaction (no transaction id at counting time); the loaded bytes matched the manifest: not failed',
      { step: 'validate', differences: unproven, counts: actual },
    );
  }
  if (notComparable.length > 0) {
    ctx.logger.warn('graph counts not compared: they were taken at another transaction than the one dumped', {
      step: 'validate',
      databases: notComparable,
      basis,
    });
  }
  ctx.logger.info('graph counts equal the backup', { step: 'validate', counts: actual });
  // What was compared, in one sentence: a warning is said here too, so the report and notice carry it.
  const strictDbs = Object.keys(recorded).filter((db) => basis[db]?.describes_dump !== 'unknown');
  const fromStore = strictDbs.every((db) => basis[db]?.counted_from === 'dumped-store');
  const parts: string[] = [];
  if (unproven.length > 0)
    parts.push(
      `counts differ but were not tied to the dump: warning (the loaded bytes matched the manifest): ${unproven.join('; ')}`,
    );
  if (strictDbs.length > 0)
    parts.push(
      `graph counts equal those at backup time${fromStore ? ' (counted from the dumped store)' : ''}`,
    );
  if (unproven.length === 0 && Object.keys(lenient).length > 0)
    parts.push(
      `graph counts equal those taken before the dump (not tied to the dumped transaction): ${totals(actual)}`,
    );
  if (notComparable.length > 0)
    parts.push(
      `counts of ${notComparable.join(', ')} not compared (taken at another transaction than the one dumped): ${totals(Object.fromEntries(notComparable.map((db) => [db, actual[db] ?? { nodes: 0, relationships: 0 }])))}`,
    );
  if (parts.length === 0)
    parts.push(`no graph counts recorded at backup time; restored databases have ${totals(actual)}`);
  return { counts: actual, validation: parts.join('; ') };
}

/**
 * For a drill's restore of Enterprise backup chains (drill.ts): each of the manifest's `files`
 * (paths such as `database/neo4j/neo4j-2026-11-22T02-00-00.backup`) downloaded to its `to` path
 * under `root`, exactly as every restore downloads (downloadAllVerified: free space checked first,
 * each file held to the manifest's SHA-256 and size, `root` removed on any failure).
 *
 * @throws ManifestError when the manifest records no stored copy of a file
 * @throws InsufficientScratchSpaceError, RestoreValidationError, StorageError as downloadAllVerified
 */
export async function downloadManifestFilesVerified(
  ctx: RestoreContext,
  manifest: Manifest,
  root: string,
  files: ReadonlyArray<{ file: string; to: string }>,
): Promise<VerifiedFile[]> {
  const what = backupName(ctx);
  return downloadAllVerified(
    ctx,
    what,
    root,
    files.map((f) => ({ ...storedFile(manifest, what, f.file), to: f.to })),
  );
}

/** The user databases (not `system`) of the backup, under the names they have on the target. */
export function restoredUserDatabases(manifest: Manifest, renamed: Record<string, string> = {}): string[] {
  return (manifest.neo4j?.databases ?? [])
    .map((d) => d.name)
    .filter((name) => name !== 'system')
    .map((name) => renamed[name] ?? name);
}

/**
 * An Enterprise refresh, before anything is seeded: the destination's deployment id, read over
 * Bolt from the databases Infrahub uses now: in place, the backup's user databases that exist on
 * the target (the ones replaced); new-database, the database the alias points to (Infrahub
 * connects through it), then those same databases. None holding a Root node: `fallback`.
 *
 * @throws RestoreValidationError when a database holds more than one Root node
 */
export async function enterpriseDeploymentId(
  cypher: CypherSession,
  manifest: Manifest,
  options: { mode: 'in-place' | 'new-database'; alias: string },
  fallback: string,
): Promise<DestinationDeploymentId> {
  const existing = new Set(
    (await cypher.run('system', 'SHOW DATABASES YIELD name RETURN DISTINCT name')).map((r) => String(r.name)),
  );
  const aliased =
    options.mode === 'new-database'
      ? (
          await cypher.run(
            'system',
            'SHOW ALIASES FOR DATABASE YIELD name, database WHERE name = $alias RETURN database',
            { alias: options.alias },
          )
        ).map((r) => String(r.database))
      : [];
  const candidates = [...new Set([...aliased, ...restoredUserDatabases(manifest)])].filter((db) =>
    existing.has(db),
  );
  return destinationDeploymentId((db, q, p) => cypher.run(db, q, p), candidates, fallback);
}

/** What restore-neo4j recorded for validate-neo4j (its step report's `details.deploymentId`). */
const RecordedDeploymentIdSchema = DestinationDeploymentIdSchema.pick({
  value: true,
  how: true,
  unreadable: true,
}).loose();
/** What an attempt of validate-neo4j saw before it wrote (deployment-id.ts RestoredDeploymentId). */
const SeenDeploymentIdSchema = z.strictObject({ database: z.string(), restored: z.string() });

/** The key of validate-neo4j's record of the id the restored graph came with, beside the step reports. */
export function seenDeploymentIdKey(target: string, restoreId: string): string {
  return `${restorePrefix(target, restoreId)}validate-neo4j.deployment-id`;
}

/**
 * validate-neo4j of a refresh, before the counts: the restored graph's deployment id set to the
 * destination's own (resetDeploymentId in deployment-id.ts), as restore-neo4j recorded it in its
 * step report (`.restores/<target>/<restore id>/restore-neo4j.json`). The id the graph came with is
 * kept at seenDeploymentIdKey before the write, so a retried attempt reports it and finds the id set.
 *
 * @param run Cypher against the DBMS (a driver with write routing)
 * @param renamed the backup's database name → its name on the target (new-database)
 * @param fallback the plan's new id (DEPLOYMENT_ID_FALLBACK)
 * @throws RestoreValidationError when restore-neo4j recorded no deployment id, or the reset fails
 * @throws StorageError when the step reports cannot be read or the record written
 */
export async function resetRefreshedDeploymentId(
  ctx: RestoreContext & { restoreId: string },
  run: CypherRun,
  manifest: Manifest,
  renamed: Record<string, string>,
  fallback: string,
): Promise<DeploymentIdReset> {
  const loaded = await getJson(
    ctx.s3,
    ctx.bucket,
    restoreStepKey(ctx.target, ctx.restoreId, 'restore-neo4j'),
    RestoreStepResultSchema,
  );
  const kept = RecordedDeploymentIdSchema.safeParse(loaded?.details.deploymentId);
  if (!kept.success)
    throw new RestoreValidationError(
      `this refresh of ${ctx.target} from ${backupName(ctx)} cannot reset the graph's deployment id: the restore-neo4j step recorded none in ${restoreStepKey(ctx.target, ctx.restoreId, 'restore-neo4j')}, so the graph may carry ${ctx.source ?? 'the source'}'s identity; restore again`,
    );
  const seenKey = seenDeploymentIdKey(ctx.target, ctx.restoreId);
  const earlier = await getJson(ctx.s3, ctx.bucket, seenKey, SeenDeploymentIdSchema);
  const reset = await resetDeploymentId(run, restoredUserDatabases(manifest, renamed), kept.data, fallback, {
    ...(earlier ? { earlier } : {}),
    remember: async (seen) => {
      await putJson(ctx.s3, ctx.bucket, seenKey, seen);
    },
  });
  ctx.logger.info('refresh: the deployment id of the restored graph was reset', {
    step: 'validate',
    deploymentId: reset,
  });
  return reset;
}
