/**
 * A Community load staged beside the target's store, so the target is changed only once every byte
 * is proven and every load succeeded (restore-neo4j.ts):
 *
 * 1. each dump is loaded under a database name of the run's own (`ibh-restore-<run>-<n>`), with
 *    `neo4j-admin database load <staging> --from-stdin`, reading the dump's file in scratch space
 *    (followFile) once the download verified it (restore-neo4j.ts waits for that: fed while the file
 *    still arrived, the load was 2-3 times slower here). Neo4j allows a dump to be loaded under another name
 *    (Operations Manual 5, "Restore a database dump": the database name given to `load` is where it
 *    goes, whatever the dumped database was called), and the load writes only
 *    `<data>/databases/<staging>` and `<transactions root>/<staging>` (neo4j-store-copy.ts storeDirs);
 * 2. only when every download matched the manifest's SHA-256 and size and every load succeeded are
 *    the staged folders swapped in (swapStaged): each target folder renamed aside, the staged one
 *    renamed to the target's name, the old one removed. Renames within one folder, each a single
 *    file-system operation; a failed swap puts back every folder it moved.
 *
 * Anything failing before the swap leaves the target's store as it was (the staged folders are
 * removed: removeStaged). The DBMS is stopped throughout (the state machine stops it; the restore's
 * in-use check refuses it otherwise). Room: the staged store is written beside the target's until
 * the swap (the DBMS's EFS volume grows as needed; a load that does not fit fails staged and the
 * restore loads in place instead, see restore-neo4j.ts).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type FileHandle, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Neo4jStoreSwapError, ToolFailedError } from '../../../../core/errors.js';
import type { Logger } from '../../../../core/log.js';
import { runTool } from '../../../../core/tools/run-tool.js';
import { noteTargetState, uninterruptible } from '../stop-guard.js';
import type { Neo4jAdmin } from './neo4j.js';
import type { StoreDirs } from './neo4j-store-copy.js';

/** The prefix of the names loads are staged under (a valid Neo4j database name starts with a letter). */
export const STAGING_PREFIX = 'ibh-restore-';

/**
 * One staging name per database to load, for this run: `ibh-restore-<8 hex>-<n>` (at most 23
 * characters: Neo4j names are 3-63 characters of letters, digits, dots and dashes, starting with a
 * letter), never the name of a database the target serves.
 */
export function stagingNames(databases: readonly string[]): Map<string, string> {
  const run = randomBytes(4).toString('hex');
  return new Map(databases.map((db, i) => [db, `${STAGING_PREFIX}${run}-${i}`]));
}

/** The folders a database has in a store: its store folder and its transaction logs. */
const foldersOf = (dirs: StoreDirs, name: string) => [
  join(dirs.data, 'databases', name),
  join(dirs.transactions, name),
];

/** How the download of one file is going, for followFile: `done` once the file is whole on disk. */
export interface GrowingFile {
  /** The name the bytes are written under while they arrive (downloadVerified's `.<name>.partial`). */
  partial: string;
  /** The name of the complete file. */
  file: string;
  /** Set (never unset) once every byte is written and the file has its final name. */
  done: boolean;
}

const FOLLOW_CHUNK = 1024 * 1024;
const FOLLOW_POLL_MS = 20;

/**
 * The bytes of a file another task is still writing, in order, from the first: reads what is there,
 * waits (polling every 20 ms) when it reaches the end before `growing.done`, and ends at the end of
 * the file once `done` was set before that read. Opens the partial name, or the final one when the
 * writer already renamed it (an open descriptor survives the rename). `read.bytes` counts the bytes
 * yielded so far.
 * @throws the signal's reason once `signal` aborts; file-system errors other than a file not yet there
 */
export async function* followFile(
  growing: GrowingFile,
  signal: AbortSignal,
  read: { bytes: number } = { bytes: 0 },
): AsyncGenerator<Buffer> {
  // node:timers' sleep rejects with an AbortError: the signal's own reason is what callers see.
  const pause = () =>
    sleep(FOLLOW_POLL_MS, undefined, { signal }).catch((err: unknown) => {
      signal.throwIfAborted();
      throw err;
    });
  let handle: FileHandle | undefined;
  while (!handle) {
    signal.throwIfAborted();
    for (const name of [growing.partial, growing.file]) {
      try {
        handle = await open(name, 'r');
        break;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
      }
    }
    if (!handle) await pause();
  }
  try {
    let position = 0;
    // A new buffer only once the last one was handed on (an empty read while waiting reuses it).
    let buffer = Buffer.allocUnsafe(FOLLOW_CHUNK);
    while (true) {
      signal.throwIfAborted();
      // Read whether the writer had finished before reading: an empty read after that is the end.
      const finished = growing.done;
      const { bytesRead } = await handle.read(buffer, 0, FOLLOW_CHUNK, position);
      if (bytesRead > 0) {
        position += bytesRead;
        read.bytes = position;
        const chunk = buffer.subarray(0, bytesRead);
        buffer = Buffer.allocUnsafe(FOLLOW_CHUNK);
        yield chunk;
      } else if (finished) return;
      else await pause();
    }
  } finally {
    await handle.close();
  }
}

/**
 * `neo4j-admin database load <staging> --from-stdin --overwrite-destination=true`, fed the dump's file
 * (followFile: restore-neo4j.ts hands it a verified file; it also follows one still being written). `signal` ends it (the tool is sent SIGTERM) with the signal's reason.
 * @returns when neo4j-admin exited 0 after reading the whole file
 * @throws ToolFailedError when neo4j-admin fails (its standard error in the message); the signal's
 *   reason when aborted
 */
export async function loadStaged(
  admin: Neo4jAdmin,
  staging: string,
  growing: GrowingFile,
  signal: AbortSignal,
): Promise<void> {
  signal.throwIfAborted();
  const tool = runTool(
    admin.path,
    ['database', 'load', staging, '--from-stdin', '--overwrite-destination=true'],
    { env: admin.env ?? process.env, stdin: 'pipe', stdout: 'ignore', name: 'neo4j-admin' },
  );
  // Its whole process group (runTool starts each tool in its own): neo4j-admin's JVM too; SIGKILL
  // after 10 s if it is still there.
  const signalGroup = (name: NodeJS.Signals) => {
    const pid = tool.child.pid;
    if (tool.child.exitCode !== null || tool.child.signalCode !== null) return;
    try {
      if (pid !== undefined) process.kill(-pid, name);
    } catch {
      tool.child.kill(name);
    }
  };
  const stop = () => {
    signalGroup('SIGTERM');
    setTimeout(() => signalGroup('SIGKILL'), 10_000).unref();
  };
  signal.addEventListener('abort', stop, { once: true });
  try {
    // neo4j-admin failing closes its end of the pipe (EPIPE here): its exit status says why.
    const read = { bytes: 0 };
    const fed = pipeline(followFile(growing, signal, read), tool.stdin);
    const [feeding, exited] = await Promise.allSettled([fed, tool.done]);
    signal.throwIfAborted();
    if (exited.status === 'rejected') throw exited.reason;
    if (feeding.status === 'rejected') {
      const code = (feeding.reason as { code?: unknown } | null)?.code;
      if (code !== 'EPIPE' && code !== 'ERR_STREAM_PREMATURE_CLOSE') throw feeding.reason;
      // Exited 0 with its standard input closed: fine if it had been given every byte of the file
      // (it may end at the archive's end before the follower saw the download finish), else not.
      while (!growing.done) {
        await sleep(FOLLOW_POLL_MS, undefined, { signal }).catch(() => signal.throwIfAborted());
      }
      const whole = (await stat(growing.file)).size;
      if (read.bytes !== whole)
        throw new ToolFailedError(
          'neo4j-admin',
          { code: 0, signal: null },
          `it ended before it had read the whole dump (${read.bytes} of ${whole} bytes)`,
        );
    }
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/**
 * Removes the staged folders of `staging` (database and transaction logs), which only this run
 * created. Never throws: what cannot be removed is returned, to be named in the error or a warning.
 */
export async function removeStaged(dirs: StoreDirs, staging: Iterable<string>): Promise<string[]> {
  const left: string[] = [];
  for (const name of staging) {
    for (const folder of foldersOf(dirs, name)) {
      await rm(folder, { recursive: true, force: true }).catch(() => left.push(folder));
    }
  }
  return left;
}

/**
 * Staged folders an earlier run left (a runner stopped between its load and its swap, or while it
 * removed the replaced store after reporting): folders named `ibh-restore-*` under the store's
 * databases and transaction logs. They are never removed here (a swap cut short may have left a
 * target's old store under such a name): the restore warns of them.
 */
export async function leftoverStaging(dirs: StoreDirs): Promise<string[]> {
  const found: string[] = [];
  for (const parent of [join(dirs.data, 'databases'), dirs.transactions]) {
    const names = await readdir(parent).catch(() => [] as string[]);
    for (const name of names) if (name.startsWith(STAGING_PREFIX)) found.push(join(parent, name));
  }
  return found;
}

/**
 * Puts each staged database in place of the target's: per database and per folder (store, then
 * transaction logs), the target's folder (if any) is renamed to `<staging>-replaced`, then the staged
 * folder to the target's name; once all are in place the replaced folders are removed (removeReplaced),
 * unless `options.keepReplaced`: then the caller removes them (the runner does once it has reported
 * the step's success, beside the DBMS's start). A staged database must have both folders (a load
 * always writes its transaction logs): one missing fails the swap, undone. The renames (and their
 * undo) are one uninterruptible section (stop-guard.ts): a stop signal waits for them to end. Once
 * they are done, every failure the runner reports says the target holds the backup's databases.
 * @param staged target database name → its staging name
 * @returns the replaced folders (`<staging>-replaced`), absolute paths: removed already unless
 *   `options.keepReplaced`
 * @throws Neo4jStoreSwapError when a rename fails; every rename done is undone first (in reverse), and
 *   `restored` is false only when that undo failed too, the message then naming each folder to move back
 * @throws the stop's error (Interrupted...) when a stop was asked for before the swap (nothing is
 *   renamed) or during it (every rename done: the stop's handling then reports the target's state)
 */
export async function swapStaged(
  dirs: StoreDirs,
  staged: Map<string, string>,
  log: Logger,
  options: { keepReplaced?: boolean } = {},
): Promise<string[]> {
  // A stop (stopWork) waits for the renames and their undo: cut between two of them, the target's
  // store would sit under its `-replaced` name, and the DBMS be started without it.
  const replaced = await uninterruptible(
    () => renameStaged(dirs, staged),
    // Still under way once the stop stops waiting (a hung volume): the folders may be anywhere, so
    // the DBMS must stay stopped (Neo4jStoreSwap) until someone has looked.
    (stop, waitedMs) =>
      new Neo4jStoreSwapError(
        `the runner was stopped (${stop.name}: ${stop.message.trimEnd()}) while the staged stores were renamed into place, and the renames had not ended ${Math.round(waitedMs / 1000)} s later (a hung volume?): the target's store folders may not all be in place. The DBMS must stay stopped until then (the restore state machine leaves it stopped after this error): for each database, if ${join(dirs.data, 'databases', '<db>')} or ${join(dirs.transactions, '<db>')} is missing, rename its folder ending in -replaced back (${[...staged].map(([db, s]) => `${db}: ${s}-replaced`).join(', ')}), start the DBMS, then restore again`,
        false,
      ),
  );
  log.info('the staged stores were renamed into place', {
    replaced,
    removal: options.keepReplaced ? 'once the step has reported' : 'now',
  });
  if (!options.keepReplaced) await removeReplaced(replaced, log);
  return replaced;
}

/**
 * swapStaged's renames, and their undo when one fails. Once all are done, every failure reported
 * after this says the target holds the backup's databases (noteTargetState).
 */
async function renameStaged(dirs: StoreDirs, staged: Map<string, string>): Promise<string[]> {
  const done: Array<{ from: string; to: string }> = [];
  const move = async (from: string, to: string) => {
    await rename(from, to);
    done.push({ from, to });
  };
  const replaced: string[] = [];
  try {
    for (const [db, staging] of staged) {
      const targets = foldersOf(dirs, db);
      const stagedFolders = foldersOf(dirs, staging);
      for (let i = 0; i < targets.length; i++) {
        const target = targets[i] as string;
        const from = stagedFolders[i] as string;
        const aside = `${from}-replaced`;
        if (existsSync(target)) {
          await move(target, aside);
          replaced.push(aside);
        }
        // Both staged folders must be there (restoreStaged checked them after the load): a load
        // always writes its transaction logs, and the target's are never replaced by none.
        if (!existsSync(from)) throw new Error(`${from} does not exist`);
        await move(from, target);
      }
    }
  } catch (err) {
    const stuck: string[] = [];
    for (const { from, to } of done.reverse()) {
      await rename(to, from).catch(() => stuck.push(`${to} → ${from}`));
    }
    const why = err instanceof Error ? err.message : String(err);
    if (stuck.length === 0)
      throw new Neo4jStoreSwapError(
        `the staged load could not be put in place (${why}); every folder moved was put back`,
        true,
        { cause: err },
      );
    throw new Neo4jStoreSwapError(
      `the staged load could not be put in place (${why}), and these folders could not be moved back: ${stuck.join('; ')}. The DBMS must stay stopped until then (the restore state machine leaves it stopped after this error): move each folder back by hand (mv), start the DBMS, then restore again`,
      false,
      { cause: err },
    );
  }
  noteTargetState(
    `The backup's databases (${[...staged.keys()].join(', ')}) had been put in place of the target's before this: the target's store holds the backup's graph, not yet validated (validate it, or restore again).`,
  );
  return replaced;
}

/**
 * Removes the target's old store folders a successful swap renamed aside (swapStaged's result), one
 * after the other. Never throws: the restore is done; what cannot be removed is logged, to be removed
 * by hand (a later restore warns of it: leftoverStaging).
 * @param replaced absolute paths of `<staging>-replaced` folders
 */
export async function removeReplaced(replaced: readonly string[], log: Logger): Promise<void> {
  const started = Date.now();
  for (const folder of replaced) {
    await rm(folder, { recursive: true, force: true }).catch((err: unknown) =>
      log.warn('a replaced store folder could not be removed after the restore: remove it by hand', {
        folder,
        error: err instanceof Error ? err.message : String(err),
      }),
    );
  }
  if (replaced.length > 0)
    log.info('the replaced store folders were removed', {
      folders: replaced.length,
      ms: Date.now() - started,
    });
}
