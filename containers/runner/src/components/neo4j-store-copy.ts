/**
 * The stopped Community store copied to the task's own disk, so the DBMS can be started again before
 * the dump (neo4j.dumpFrom "copy"; backupNeo4jCommunity in neo4j.ts). Per dumped database the copy
 * holds what `neo4j-admin database dump` reads: its store folder `<data>/databases/<db>` and its
 * transaction logs `<transactions root>/<db>` (Neo4j Operations Manual 5, "Default file locations"
 * and "Transaction logging": the logs of a database are at `server.directories.transaction.logs.root`
 * /<db>, by default `data/transactions`, a relative value resolved from `server.directories.data`).
 * A configuration folder beside the copy keeps the DBMS's neo4j.conf with both directory settings
 * pointed at the copy, so neo4j-admin (NEO4J_CONF) and the counting server open the copy, never the
 * store. The copy is checked complete (the same files with the same sizes) before it is used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cp, lstat, mkdir, mkdtemp, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { Neo4jStoreCopyError } from '../../../../core/errors.js';

/** Where a DBMS keeps its stores, absolute. */
export interface StoreDirs {
  /** `server.directories.data` (default `<home>/data`). */
  data: string;
  /** `server.directories.transaction.logs.root` (default `<data>/transactions`). */
  transactions: string;
}

const DATA = 'server.directories.data';
const TRANSACTIONS = 'server.directories.transaction.logs.root';

/** The last value of `key` in a neo4j.conf text (later lines win), trimmed; undefined when unset. */
function confValue(text: string, key: string): string | undefined {
  let found: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed.startsWith('#')) continue;
    const eq = trimmed.indexOf('=');
    if (eq > 0 && trimmed.slice(0, eq).trim() === key) found = trimmed.slice(eq + 1).trim();
  }
  return found;
}

/**
 * The store directories of the DBMS whose configuration folder is `conf` (its neo4j.conf; none: the
 * defaults) and whose NEO4J_HOME is `home`: a relative data directory resolves from `home`, a
 * relative transaction log root from the data directory (Operations Manual, "Transaction logging").
 */
export function storeDirs(home: string, conf: string): StoreDirs {
  const file = join(conf, 'neo4j.conf');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const dataSetting = confValue(text, DATA) ?? 'data';
  // resolve() also normalises an absolute path (a trailing slash, `//`, `/./`).
  const data = resolve(home, dataSetting);
  const txSetting = confValue(text, TRANSACTIONS) ?? 'transactions';
  return { data, transactions: resolve(data, txSetting) };
}

/**
 * Where `neo4j-admin database load` puts a store, and where `neo4j-admin database info` (the in-use
 * check) looks, when either differs from the DBMS's (storeDirs): neo4j-admin reads neo4j.conf, then
 * neo4j-admin.conf, then neo4j-admin-<command>.conf, all in NEO4J_CONF, each overriding the one before
 * (Operations Manual, "Configuration", neo4j-admin). Returns one line per setting that names another
 * folder, naming the file; none: []. A load there would write a store, or its logs, where the DBMS
 * does not read them, and a check there would look at another store than the one swapped.
 */
export function loadDirsProblems(home: string, conf: string): string[] {
  const dbms = storeDirs(home, conf);
  const read = (name: string) => {
    const file = join(conf, name);
    return { file, text: existsSync(file) ? readFileSync(file, 'utf8') : '' };
  };
  const problems = new Set<string>();
  for (const command of ['database-load', 'database-info']) {
    const texts = ['neo4j.conf', 'neo4j-admin.conf', `neo4j-admin-${command}.conf`].map(read);
    // The last file that sets each key wins.
    const effective = (key: string) => {
      let found: { value: string; file: string } | undefined;
      for (const { file, text } of texts) {
        const value = confValue(text, key);
        if (value !== undefined) found = { value, file };
      }
      return found;
    };
    const dataSet = effective(DATA);
    const data = dataSet ? resolve(home, dataSet.value) : dbms.data;
    if (data !== dbms.data)
      problems.add(
        `${dataSet?.file} sets ${DATA}=${dataSet?.value} (${data}): the DBMS's data directory is ${dbms.data}`,
      );
    // The in-use check reads a database's lock in the data directory: only that must agree for it.
    if (command === 'database-info') continue;
    const txSet = effective(TRANSACTIONS);
    const tx = resolve(data, txSet?.value ?? 'transactions');
    // A log root neo4j.conf sets (or the default), when only the data directory above moved: that
    // line is the cause, and says so already (an absolute one in neo4j.conf never differs).
    const fromDbmsConf = txSet === undefined || txSet.file === texts[0]?.file;
    if (tx !== dbms.transactions && !(data !== dbms.data && fromDbmsConf))
      problems.add(
        `${txSet ? `${txSet.file} sets ${TRANSACTIONS}=${txSet.value}` : "neo4j-admin's transaction log root"} (${tx}): the DBMS's is ${dbms.transactions}`,
      );
  }
  return [...problems];
}

/** The folders of `databases` a dump reads: each database's store and its transaction logs. */
export function storeFolders(dirs: StoreDirs, databases: readonly string[]): string[] {
  return databases.flatMap((db) => [join(dirs.data, 'databases', db), join(dirs.transactions, db)]);
}

/** A file as the copy's proof compares it: bytes, and when and how it last changed (lstat, nanoseconds). */
interface FileStamp {
  size: number;
  /** Last modification of the content (mtime) and of the inode (ctime), and the inode number. */
  changed: string;
}

/** Every regular file under `dir` (relative path → its stamp); a missing folder is empty. */
async function filesUnder(dir: string): Promise<Map<string, FileStamp>> {
  const found = new Map<string, FileStamp>();
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else {
        const st = await lstat(path, { bigint: true });
        found.set(relative(dir, path), {
          size: Number(st.size),
          changed: `${st.mtimeNs}/${st.ctimeNs}/${st.ino}`,
        });
      }
    }
  };
  if (existsSync(dir)) await walk(dir);
  return found;
}

/** The bytes of the store folders of `databases` (what a copy needs on the task's disk). */
export async function storeBytes(dirs: StoreDirs, databases: readonly string[]): Promise<number> {
  let bytes = 0;
  for (const folder of storeFolders(dirs, databases))
    for (const { size } of (await filesUnder(folder)).values()) bytes += size;
  return bytes;
}

/** Free bytes for this process on the file system holding `dir` (created if absent): statfs bavail × bsize, as `df`. */
export async function freeBytes(dir: string): Promise<number> {
  await mkdir(dir, { recursive: true });
  const fs = await statfs(dir);
  return Number(fs.bavail) * Number(fs.bsize);
}

/** A copy made by copyStore. */
export interface StoreCopy {
  /** The copy's own folder (remove it when done). */
  root: string;
  /** Its configuration folder: NEO4J_CONF for neo4j-admin and the counting server on the copy. */
  conf: string;
  /** The copy's store directories. */
  dirs: StoreDirs;
  /** Bytes copied. */
  bytes: number;
  /** Files copied. */
  files: number;
}

/**
 * Copies the store folders of `databases` (storeFolders) from `source` into a fresh folder under
 * `parent`, checks that the source did not change while it was copied (every file's size, mtime,
 * ctime and inode the same before the first folder's copy and after the last's, no file added or
 * removed) and that the copy has exactly
 * the source's files with the same sizes, and writes the
 * copy's configuration folder (a copy of `conf`, its neo4j.conf's data and transaction log
 * directories pointed at the copy). The DBMS must be stopped (the caller checks it with `database
 * info` beside the copy, and the copy's own transaction after it).
 * @throws Neo4jStoreCopyError when the source changed while it was copied, or the copy differs from
 *   it (naming the first difference)
 * @throws the file system's error (ENOSPC, EIO, ...) when copying fails
 * Whatever it throws, the copy's folder it made is removed first (the caller is handed none to remove).
 */
export async function copyStore(
  source: StoreDirs,
  conf: string,
  databases: readonly string[],
  parent: string,
): Promise<StoreCopy> {
  await mkdir(parent, { recursive: true });
  const root = await mkdtemp(join(parent, 'store-'));
  try {
    return await copyInto(root, source, conf, databases);
  } catch (err) {
    // A refused or partial copy is as big as the store: not left on the task's disk (or, locally, the host's).
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/** copyStore's work, into its fresh folder `root`. */
async function copyInto(
  root: string,
  source: StoreDirs,
  conf: string,
  databases: readonly string[],
): Promise<StoreCopy> {
  const dirs = { data: join(root, 'data'), transactions: join(root, 'data', 'transactions') };
  const from = storeFolders(source, databases);
  const to = storeFolders(dirs, databases);
  let bytes = 0;
  let files = 0;
  // Every folder stamped before the first copy and again after the last (not each around its own
  // copy): a file written, replaced, added or removed anywhere in that span (the DBMS started,
  // another task) shows in its size, mtime, ctime or inode, so the copy is of one unchanged store,
  // also when the change falls between two folders' copies (a store folder copied before it, its
  // transaction logs after: two instants). This needs no JVM (a second `database info` inside the
  // downtime window).
  const expected: Map<string, FileStamp>[] = [];
  for (const src of from) expected.push(await filesUnder(src));
  for (const [i, src] of from.entries()) {
    const dst = to[i] as string;
    await mkdir(dst, { recursive: true });
    if (existsSync(src))
      await cp(src, dst, { recursive: true, errorOnExist: true, force: false, preserveTimestamps: true });
  }
  for (const [i, src] of from.entries()) {
    const before = expected[i] as Map<string, FileStamp>;
    const copied = await filesUnder(to[i] as string);
    const after = await filesUnder(src);
    for (const [path, stamp] of before) {
      const now = after.get(path);
      if (now?.size !== stamp.size || now.changed !== stamp.changed)
        throw new Neo4jStoreCopyError(
          `the store changed while it was copied: ${join(src, path)} ${now === undefined ? 'was removed' : now.size !== stamp.size ? `went from ${stamp.size} to ${now.size} bytes` : 'was written to'}`,
        );
      const got = copied.get(path)?.size;
      if (got !== stamp.size)
        throw new Neo4jStoreCopyError(
          `the copy of ${join(src, path)} is ${got === undefined ? 'missing' : `${got} bytes, the store's ${stamp.size}`}`,
        );
      bytes += stamp.size;
      files += 1;
    }
    const added = [...after.keys()].find((path) => !before.has(path));
    if (added !== undefined)
      throw new Neo4jStoreCopyError(`the store changed while it was copied: ${join(src, added)} appeared`);
    if (copied.size !== before.size)
      throw new Neo4jStoreCopyError(
        `the copy of ${src} holds ${copied.size} files, the store ${before.size}: the store changed while it was copied`,
      );
  }
  // The DBMS's whole configuration folder (neo4j-admin.conf, log settings), its neo4j.conf rewritten.
  const confDir = join(root, 'conf');
  if (existsSync(conf)) await cp(conf, confDir, { recursive: true });
  else await mkdir(confDir);
  const file = join(conf, 'neo4j.conf');
  const base = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split(/\r?\n/)
        .filter((line) => ![DATA, TRANSACTIONS].includes((line.split('=')[0] ?? '').trim()))
    : [];
  await writeFile(
    join(confDir, 'neo4j.conf'),
    [
      ...base,
      '# the stopped store copied to the runner task (neo4j.dumpFrom "copy"): dumped and counted here',
      `${DATA}=${dirs.data}`,
      `${TRANSACTIONS}=${dirs.transactions}`,
      '',
    ].join('\n'),
  );
  return { root, conf: confDir, dirs, bytes, files };
}
