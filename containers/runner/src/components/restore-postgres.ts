/**
 * Restores the task-manager database from a backup, atomically: the dump, streamed from the exact S3
 * version the manifest records (nothing staged), is restored by `pg_restore` into a NEW database;
 * every byte fed to it is hashed and compared with the manifest's SHA-256 once pg_restore has
 * consumed them; the new database's row counts are compared with those recorded at backup time (in
 * pg_dump's own snapshot); and only then are names swapped, in one transaction: the current database
 * is renamed aside, the new one renamed into place, and the old one dropped. A failed or interrupted
 * restore leaves the current database serving, untouched, and drops the new one.
 *
 * The new database is created by this module (CREATE DATABASE ... TEMPLATE template0, PostgreSQL
 * docs "pg_restore": "create the database from template0"), not by `pg_restore --create`, so a
 * restore does not depend on what the source server had and the target lacks: the dump's encoding is
 * kept; its locale (provider, LC_COLLATE/LC_CTYPE, ICU locale) is used when the target server has it,
 * else the target's default, else C; tablespaces (`--no-tablespaces`) are not carried over. The
 * database-level properties (owner, ACL, settings, comment, connection limit) are the TARGET's, kept
 * from the database it replaces, never the source's; object owners are kept when the target has
 * those roles (see restorePostgres).
 */

import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { PREFECT_DUMP } from '../../../../core/backup/layout.js';
import type { Manifest } from '../../../../core/backup/manifest.js';
import {
  ManifestError,
  RestoreBlockedError,
  RestoreInProgressError,
  RestoreValidationError,
} from '../../../../core/errors.js';
import type { Logger } from '../../../../core/log.js';
import {
  describeTableCheck,
  tableCountDifferences,
  tablesMissing,
} from '../../../../core/restore/compare.js';
import { openObject } from '../../../../core/s3/objects.js';
import { runTool } from '../../../../core/tools/run-tool.js';
import { bodyError, feedToolVerified } from '../../../../core/tools/stream-from-s3.js';
import { backupName } from '../context.js';
import { noteTargetState, uninterruptible } from '../stop-guard.js';
import {
  connectPostgres,
  countRows,
  dbnameArg,
  type PostgresConnection,
  toolEnv,
  toolPath,
} from './postgres.js';

export interface RestoreContext {
  s3: S3Client;
  bucket: string;
  /** The target restored into: its step reports, seeds and locks are under its name. */
  target: string;
  /**
   * The target whose backup `backupId` is (a refresh restores another target's: SOURCE_TARGET);
   * `target` when unset. The manifest's keys name it; messages name the backup as `source/backupId`.
   */
  source?: string;
  backupId: string;
  /** Names the temporary databases of a PostgreSQL restore; a random one when unset. */
  restoreId?: string;
  logger: Logger;
}

/** How the new database was created: the dump's locale, or what the target server could offer instead. */
export interface CreatedDatabase {
  encoding: string;
  /** `dump`: the dump's own locale; `target-default`: the target lacks it, template0's locale; `C`: neither fits. */
  localeFrom: 'dump' | 'target-default' | 'C';
  provider: string;
  collate: string;
  ctype: string;
  /** Why the dump's locale was not used (the server's message), when it was not. */
  fallbackReason?: string;
}

export interface PostgresRestoreResult {
  component: 'task-manager-db';
  /** The database restored into: the configured one (PGDATABASE). */
  database: string;
  /** The database the dump was taken of. */
  dumpDatabase: string;
  /** Set when `dumpDatabase` differs from `database`: says so. */
  databaseNote?: string;
  /** Who owns the restored database and its objects, and why. */
  ownership: OwnershipPlan;
  tables: number;
  rows: number;
  durationMs: number;
  /** Bytes of the dump fed to pg_restore; their SHA-256 equals the manifest's. */
  verifiedBytes: number;
  /** Lowercase hex, equal to the manifest's `checksums["prefect.dump"]`. */
  sha256: string;
  /** True when row counts were compared with counts recorded at backup time (an imported archive records none). */
  countsCompared: boolean;
  /** One sentence saying what was compared (the restore report quotes it). */
  validation: string;
  /** One sentence saying that the database's owner can read every restored relation (checked with has_table_privilege). */
  access: string;
  created: CreatedDatabase;
  /** Whether a database of that name was there before and has been replaced (false on an empty server). */
  replaced: boolean;
  /** Milliseconds: reading the dump's table of contents, the streamed pg_restore, the row counts, the swap. */
  timings: { 'read-toc': number; 'pg-restore': number; 'count-rows': number; swap: number };
}

/** What the dump says about its database (pg_restore's `--create` output, pre-data section). */
export interface DumpHeader {
  /** The database the dump was taken of. */
  database: string;
  /** `CREATE DATABASE` options as pg_dump wrote them, upper-case keys (ENCODING, LOCALE_PROVIDER, LOCALE, LC_COLLATE, ...). */
  options: Record<string, string>;
  /** Tables the dump defines (`schema.name`, unquoted), attached partitions excluded (as countRows counts them). */
  tables: string[];
  /** The owner of the dumped database (`ALTER DATABASE ... OWNER TO`), when the dump records it. */
  databaseOwner?: string;
  /** Every role that owns an object of the dump (its `ALTER ... OWNER TO` statements), sorted. */
  owners: string[];
}

const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)`;
const QNAME = new RegExp(String.raw`(${IDENT})\.(${IDENT})`);
const unquote = (ident: string) => (ident.startsWith('"') ? ident.slice(1, -1).replaceAll('""', '"') : ident);
const qualified = (text: string): string | undefined => {
  const m = QNAME.exec(text);
  return m?.[1] && m[2] ? `${unquote(m[1])}.${unquote(m[2])}` : undefined;
};

/**
 * Reads the SQL that `pg_restore --create --section=pre-data --file=-` prints for a dump: the
 * `CREATE DATABASE` statement pg_dump recorded (PostgreSQL's pg_dump.c `dumpDatabase`: `CREATE
 * DATABASE name WITH TEMPLATE = template0 ENCODING = '...' LOCALE_PROVIDER = libc LOCALE = '...'`)
 * and the tables it creates. Throws RestoreValidationError when there is no CREATE DATABASE.
 */
export function parseDumpHeader(sql: string): DumpHeader {
  const create = new RegExp(`^CREATE DATABASE (${IDENT}) WITH (.*);$`, 'm').exec(sql);
  if (!create?.[1] || create[2] === undefined)
    throw new RestoreValidationError(
      'the dump has no CREATE DATABASE entry: it is not a pg_dump of a database',
    );
  const options: Record<string, string> = {};
  for (const m of create[2].matchAll(/([A-Z_]+) = ('(?:[^']|'')*'|[\w$]+)/g)) {
    const [, key, value] = m;
    if (key && value) options[key] = value.startsWith("'") ? value.slice(1, -1).replaceAll("''", "'") : value;
  }
  const attached = new Set(
    [...sql.matchAll(/ ATTACH PARTITION (\S.*?) (?:FOR VALUES|DEFAULT)/g)].flatMap((m) => {
      const name = m[1] ? qualified(m[1]) : undefined;
      return name ? [name] : [];
    }),
  );
  const tables = [...sql.matchAll(/^CREATE (?:UNLOGGED )?TABLE (\S.*)$/gm)]
    .flatMap((m) => {
      const name = m[1] ? qualified(m[1]) : undefined;
      return name && !attached.has(name) ? [name] : [];
    })
    .sort();
  const database = unquote(create[1]);
  let databaseOwner: string | undefined;
  const owners = new Set<string>();
  for (const m of sql.matchAll(new RegExp(`^ALTER (.+) OWNER TO (${IDENT});$`, 'gm'))) {
    if (!m[1] || !m[2]) continue;
    const owner = unquote(m[2]);
    const dbMatch = new RegExp(`^DATABASE (${IDENT})$`).exec(m[1]);
    if (dbMatch?.[1] && unquote(dbMatch[1]) === database) databaseOwner = owner;
    else owners.add(owner);
  }
  return {
    database,
    options,
    tables,
    ...(databaseOwner ? { databaseOwner } : {}),
    owners: [...owners].sort(),
  };
}

/** Truncates to at most `max` bytes of UTF-8 without splitting a character. */
function truncateBytes(text: string, max: number): string {
  let out = '';
  for (const ch of text) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}

/**
 * The temporary names of an atomic restore of `database`: `fresh` (restored into), `aside` (the
 * replaced database, between the swap and its drop). Derived from the database name and the restore
 * id, and within PostgreSQL's 63-byte identifier limit (NAMEDATALEN - 1; PostgreSQL docs "Identifiers
 * and Key Words": longer names are truncated): the name is cut to 45 bytes, whole characters kept.
 * `pattern` describes what such names look like; it never decides what is dropped (names of other
 * databases match it: dates are hex, cut names overlap): a leftover is dropped only by its marker
 * comment (restoreMarker).
 */
export function restoreDatabaseNames(
  database: string,
  restoreId: string,
): { fresh: string; aside: string; pattern: RegExp } {
  const tag = createHash('sha256').update(restoreId).digest('hex').slice(0, 8);
  const base = truncateBytes(database, 63 - '_replaced_'.length - tag.length);
  const escaped = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    fresh: `${base}_restore_${tag}`,
    aside: `${base}_replaced_${tag}`,
    pattern: new RegExp(`^${escaped}_(restore|replaced)_[0-9a-f]{8}$`),
  };
}

const TOC_LIMIT = 256 * 1024 * 1024;

/**
 * Reads the dump's table of contents from the head of `body` with `pg_restore --create
 * --section=pre-data --file=-` (which reads the TOC and exits without reading data). Returns the
 * chunks read (to be fed again, in order, to the restoring pg_restore) and the SQL it printed.
 */
async function readToc(
  body: AsyncIterator<Buffer>,
  pgRestore: string,
): Promise<{ head: Buffer[]; sql: string; ended: boolean; failure?: unknown }> {
  const tool = runTool(pgRestore, ['--create', '--section=pre-data', '--file=-'], {
    stdin: 'pipe',
    stdout: 'pipe',
    name: 'pg_restore (reading the table of contents)',
  });
  let sql = '';
  tool.stdout.setEncoding('utf8');
  tool.stdout.on('data', (chunk: string) => {
    sql += chunk;
  });
  let exited = false;
  const done = tool.done.then(
    () => undefined,
    (err: unknown) => err,
  );
  void done.then(() => {
    exited = true;
  });
  tool.stdin.on('error', () => undefined);
  const head: Buffer[] = [];
  let size = 0;
  let ended = false;
  try {
    while (!exited) {
      const next = await body.next();
      if (next.done) {
        ended = true;
        break;
      }
      head.push(next.value);
      size += next.value.length;
      if (size > TOC_LIMIT) {
        tool.child.kill('SIGTERM');
        await done;
        throw new RestoreValidationError(
          `the dump's table of contents is not within its first ${TOC_LIMIT} bytes: pg_restore kept reading (${tool.stderrTail() || 'no message'})`,
        );
      }
      if (!tool.stdin.destroyed && !tool.stdin.write(next.value))
        await Promise.race([once(tool.stdin, 'drain').catch(() => undefined), done]);
    }
  } catch (err) {
    tool.child.kill('SIGTERM');
    await done;
    throw err;
  }
  if (!tool.stdin.destroyed) tool.stdin.end();
  const failure = await done;
  return { head, sql, ended, ...(failure ? { failure } : {}) };
}

async function hashAll(source: AsyncIterable<Buffer>): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

async function* replay(head: Buffer[], rest: AsyncIterator<Buffer>, ended: boolean): AsyncGenerator<Buffer> {
  yield* head;
  if (ended) return;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

/** Creates `name` from template0 with the dump's encoding, and its locale when the server has it. */
async function createDatabase(
  admin: pg.Client,
  name: string,
  header: DumpHeader,
  log: Logger,
): Promise<CreatedDatabase> {
  const o = header.options;
  const lit = (v: string) => admin.escapeLiteral(v);
  const version = Number(
    (await admin.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v,
  );
  const providers = version >= 150000;
  const encoding = o.ENCODING ? ` ENCODING = ${lit(o.ENCODING)}` : '';
  const dumpLocale = [
    providers && o.LOCALE_PROVIDER
      ? ` LOCALE_PROVIDER = ${o.LOCALE_PROVIDER === 'icu' ? 'icu' : o.LOCALE_PROVIDER === 'builtin' ? 'builtin' : 'libc'}`
      : '',
    o.LOCALE !== undefined ? ` LC_COLLATE = ${lit(o.LOCALE)} LC_CTYPE = ${lit(o.LOCALE)}` : '',
    o.LC_COLLATE !== undefined ? ` LC_COLLATE = ${lit(o.LC_COLLATE)}` : '',
    o.LC_CTYPE !== undefined ? ` LC_CTYPE = ${lit(o.LC_CTYPE)}` : '',
    providers && o.ICU_LOCALE !== undefined ? ` ICU_LOCALE = ${lit(o.ICU_LOCALE)}` : '',
    version >= 160000 && o.ICU_RULES !== undefined ? ` ICU_RULES = ${lit(o.ICU_RULES)}` : '',
    version >= 170000 && o.BUILTIN_LOCALE !== undefined ? ` BUILTIN_LOCALE = ${lit(o.BUILTIN_LOCALE)}` : '',
  ].join('');
  const attempts: Array<{ from: CreatedDatabase['localeFrom']; locale: string }> = [
    ...(dumpLocale ? [{ from: 'dump' as const, locale: dumpLocale }] : []),
    { from: 'target-default', locale: '' },
    { from: 'C', locale: `${providers ? ' LOCALE_PROVIDER = libc' : ''} LC_COLLATE = 'C' LC_CTYPE = 'C'` },
  ];
  const refused: string[] = [];
  for (const attempt of attempts) {
    try {
      await admin.query(
        `CREATE DATABASE ${admin.escapeIdentifier(name)} WITH TEMPLATE = template0${encoding}${attempt.locale}`,
      );
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      refused.push(
        `${attempt.from === 'dump' ? "the dump's locale" : attempt.from === 'C' ? 'locale C' : "the server's default locale"}: ${message}`,
      );
      log.warn('the target server cannot create the database with this locale; trying the next', {
        localeFrom: attempt.from,
        error: message,
      });
      continue;
    }
    const { rows } = await admin.query<{
      provider: string;
      collate: string;
      ctype: string;
      encoding: string;
    }>(
      `SELECT ${providers ? 'datlocprovider' : "'c'"} AS provider, datcollate AS collate, datctype AS ctype,
              pg_encoding_to_char(encoding) AS encoding
         FROM pg_database WHERE datname = $1`,
      [name],
    );
    const row = rows[0];
    const provider = { c: 'libc', i: 'icu', b: 'builtin' }[row?.provider ?? 'c'] ?? String(row?.provider);
    return {
      encoding: row?.encoding ?? o.ENCODING ?? '',
      localeFrom: attempt.from,
      provider,
      collate: row?.collate ?? '',
      ctype: row?.ctype ?? '',
      ...(refused.length > 0 ? { fallbackReason: refused.join('; ') } : {}),
    };
  }
  throw new RestoreValidationError(
    `cannot create a database for the dump of ${header.database} (encoding ${o.ENCODING ?? 'unknown'}) on the target server:\n${refused.map((r) => `  - ${r}`).join('\n')}`,
  );
}

/** Drops a database, closing its sessions (PostgreSQL 13+: `DROP DATABASE ... WITH (FORCE)`). */
async function dropDatabase(admin: pg.Client, name: string): Promise<void> {
  const version = Number(
    (await admin.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v,
  );
  const ident = admin.escapeIdentifier(name);
  if (version >= 130000) await admin.query(`DROP DATABASE IF EXISTS ${ident} WITH (FORCE)`);
  else {
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
    await admin.query(`DROP DATABASE IF EXISTS ${ident}`);
  }
}

/** Every comment on a database this product creates or sets aside starts with this. */
export const RESTORE_MARKER = 'infrahub-backup-aws restore ';

/** What a marked database is: the restore that made it, the database it restores, and its part. */
export interface RestoreMarker {
  database: string;
  restoreId: string;
  role: 'fresh' | 'aside';
}

/** The comment put on a database a restore creates (`fresh`) or sets aside (`aside`). */
export function restoreMarker(marker: RestoreMarker): string {
  return `${RESTORE_MARKER}${JSON.stringify({ database: marker.database, restoreId: marker.restoreId, role: marker.role })}`;
}

/** The marker a database's comment carries, or undefined when it is not one of ours. */
export function parseRestoreMarker(comment: string | null | undefined): RestoreMarker | undefined {
  if (!comment?.startsWith(RESTORE_MARKER)) return undefined;
  try {
    const m = JSON.parse(comment.slice(RESTORE_MARKER.length)) as Partial<RestoreMarker>;
    if (
      typeof m.database === 'string' &&
      typeof m.restoreId === 'string' &&
      (m.role === 'fresh' || m.role === 'aside')
    )
      return { database: m.database, restoreId: m.restoreId, role: m.role };
  } catch {
    // not ours
  }
  return undefined;
}

/**
 * The advisory-lock key (a signed 64-bit integer, as text) that serialises restores of `database`:
 * the first 8 bytes of SHA-256("infrahub-backup-aws restore:" + name). Advisory locks are scoped to
 * the database the session is connected to (PostgreSQL docs "Advisory Locks"; pg_locks.database):
 * every restore of one target database holds it on the same maintenance database (see restorePostgres).
 */
export function restoreLockKey(database: string): string {
  return createHash('sha256')
    .update(`infrahub-backup-aws restore:${database}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}

/** Database-level properties a restore keeps from the database it replaces. */
export interface DatabaseProperties {
  owner: string;
  /** aclexplode(datacl) rows; `null` grantee is PUBLIC. Undefined when the ACL is the default (NULL). */
  acl?: Array<{ grantee: string | null; privilege: string; grantable: boolean }>;
  /** -1: no limit. */
  connectionLimit: number;
  comment: string | null;
  /** pg_db_role_setting rows of the database: `role` null is the database's own `ALTER DATABASE ... SET`. */
  settings: Array<{ role: string | null; config: string[] }>;
}

/** Reads `name`'s owner, ACL, connection limit, comment and settings; undefined when there is no such database. */
async function readDatabaseProperties(
  admin: pg.Client,
  name: string,
): Promise<DatabaseProperties | undefined> {
  const { rows } = await admin.query<{
    owner: string;
    connlimit: number;
    default_acl: boolean;
    comment: string | null;
  }>(
    `SELECT pg_get_userbyid(datdba) AS owner, datconnlimit AS connlimit, datacl IS NULL AS default_acl,
            shobj_description(oid, 'pg_database') AS comment
       FROM pg_database WHERE datname = $1`,
    [name],
  );
  const row = rows[0];
  if (!row) return undefined;
  const acl = row.default_acl
    ? undefined
    : (
        await admin.query<{ grantee: string | null; privilege: string; grantable: boolean }>(
          `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee,
                  a.privilege_type AS privilege, a.is_grantable AS grantable
             FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1`,
          [name],
        )
      ).rows;
  const settings = (
    await admin.query<{ role: string | null; config: string[] }>(
      `SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END AS role, s.setconfig AS config
         FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
        WHERE d.datname = $1 ORDER BY 1 NULLS FIRST`,
      [name],
    )
  ).rows;
  return {
    owner: row.owner,
    ...(acl ? { acl } : {}),
    connectionLimit: Number(row.connlimit),
    comment: row.comment,
    settings,
  };
}

/** Settings whose value is a list pg_dump quotes element by element (dumputils.c, variable_is_guc_list_quote). */
const LIST_QUOTED = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/** Splits a list setting's stored value (`"$user", public`) into its elements (as SplitGUCList does). */
function splitGucList(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (value[i] === ' ' || value[i] === ',') i++;
    if (i >= value.length) break;
    let item = '';
    if (value[i] === '"') {
      i++;
      while (i < value.length) {
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            item += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        item += value[i++];
      }
    } else {
      while (i < value.length && value[i] !== ',') item += value[i++];
      item = item.trim();
    }
    out.push(item);
    while (i < value.length && value[i] !== ',') i++;
  }
  return out;
}

/**
 * The statements that give `database` the properties read from the database it replaces, as
 * pg_dumpall writes them (GRANT/REVOKE from aclexplode, `ALTER DATABASE|ROLE ... IN DATABASE ...
 * SET` from pg_db_role_setting, COMMENT, CONNECTION LIMIT). The owner is set separately, before
 * pg_restore (the schema `public` belongs to pg_database_owner from PostgreSQL 15).
 */
export function propertyStatements(
  database: string,
  p: Pick<DatabaseProperties, 'owner' | 'acl' | 'connectionLimit' | 'comment' | 'settings'>,
  quote: { ident: (s: string) => string; literal: (s: string) => string },
): string[] {
  const db = quote.ident(database);
  const out: string[] = [];
  if (p.acl) {
    out.push(
      `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`,
      `REVOKE ALL ON DATABASE ${db} FROM ${quote.ident(p.owner)}`,
    );
    for (const a of p.acl)
      out.push(
        `GRANT ${a.privilege} ON DATABASE ${db} TO ${a.grantee === null ? 'PUBLIC' : quote.ident(a.grantee)}${a.grantable ? ' WITH GRANT OPTION' : ''}`,
      );
  }
  if (p.connectionLimit !== -1)
    out.push(`ALTER DATABASE ${db} CONNECTION LIMIT ${Math.trunc(p.connectionLimit)}`);
  for (const { role, config } of p.settings)
    for (const entry of config) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const name = entry.slice(0, eq);
      const value = entry.slice(eq + 1);
      const rendered = LIST_QUOTED.has(name.toLowerCase())
        ? splitGucList(value).map(quote.literal).join(', ') || "''"
        : quote.literal(value);
      out.push(
        `ALTER ${role === null ? 'DATABASE' : `ROLE ${quote.ident(role)} IN DATABASE`} ${db} SET ${quote.ident(name)} TO ${rendered}`,
      );
    }
  out.push(`COMMENT ON DATABASE ${db} IS ${p.comment === null ? 'NULL' : quote.literal(p.comment)}`);
  return out;
}

const SWAP_ATTEMPTS = 5;

/**
 * Puts `fresh` in place of `database` in ONE transaction: sessions of `database` are terminated, it
 * is marked and renamed to `aside`, `fresh` renamed to `database`, and the statements of `apply` (the
 * replaced database's properties) run on it. `ALTER DATABASE ... RENAME TO` may run in a transaction
 * block, is refused while another session is connected to the database ("database is being accessed
 * by other users", SQLSTATE 55006: PostgreSQL docs "ALTER DATABASE"), and holds the database's lock
 * until commit, so no session connects in between; a failure rolls everything back: the old name
 * stays on the old data. Retried when a session connected between the termination and the rename.
 */
async function swapIn(
  admin: pg.Client,
  names: { database: string; fresh: string; aside: string },
  exists: boolean,
  asideMarker: string,
  apply: string[],
  log: Logger,
): Promise<void> {
  const q = (n: string) => admin.escapeIdentifier(n);
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.query('BEGIN');
      if (exists) {
        await admin.query(`COMMENT ON DATABASE ${q(names.database)} IS ${admin.escapeLiteral(asideMarker)}`);
        const { rowCount } = await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [names.database],
        );
        if (rowCount)
          log.warn('closed sessions still connected to the database', {
            database: names.database,
            sessions: rowCount,
          });
        await admin.query(`ALTER DATABASE ${q(names.database)} RENAME TO ${q(names.aside)}`);
      }
      await admin.query(`ALTER DATABASE ${q(names.fresh)} RENAME TO ${q(names.database)}`);
      for (const statement of apply) await admin.query(statement);
      await admin.query('COMMIT');
      return;
    } catch (err) {
      await admin.query('ROLLBACK').catch(() => undefined);
      const code = (err as { code?: string }).code;
      if (code === '55006' && attempt < SWAP_ATTEMPTS) {
        log.warn('sessions reconnected during the swap; trying again', { attempt });
        continue;
      }
      throw new RestoreValidationError(
        `could not swap the restored database into place as ${names.database} (the current database keeps its name and data): ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
}

/** What the connecting user may do on the server (pg_roles, pg_has_role). */
interface Rights {
  user: string;
  superuser: boolean;
  createdb: boolean;
  createrole: boolean;
}

async function readRights(admin: pg.Client): Promise<Rights> {
  const { rows } = await admin.query<Rights>(
    `SELECT current_user AS user, rolsuper AS superuser, rolcreatedb AS createdb, rolcreaterole AS createrole
       FROM pg_roles WHERE rolname = current_user`,
  );
  const r = rows[0];
  if (!r) throw new RestoreBlockedError('cannot read the connecting role from pg_roles');
  return r;
}

/** Roles of `names` that exist on the server, and those the connecting user is a member of. */
async function rolesOf(
  admin: pg.Client,
  names: string[],
): Promise<{ existing: Set<string>; member: Set<string> }> {
  const { rows } = await admin.query<{ name: string; member: boolean }>(
    `SELECT rolname AS name, pg_has_role(current_user, oid, 'MEMBER') AS member
       FROM pg_roles WHERE rolname = ANY($1::text[])`,
    [names],
  );
  return {
    existing: new Set(rows.map((r) => r.name)),
    member: new Set(rows.filter((r) => r.member).map((r) => r.name)),
  };
}

/**
 * Refuses, before any restore work, what would fail at the swap: sessions on the target this user
 * may not terminate (a non-superuser cannot terminate a superuser's session; others need membership
 * in the session's role or in pg_signal_backend: PostgreSQL docs "Server Signaling Functions"), a
 * target it may not rename (owner and CREATEDB: "ALTER DATABASE"), an owner it may not give the new
 * database (membership), or per-role settings it may not copy ("ALTER ROLE": CREATEROLE, non-superuser
 * roles only).
 */
async function checkPreconditions(
  admin: pg.Client,
  database: string,
  current: DatabaseProperties | undefined,
  owner: string,
  rights: Rights,
): Promise<void> {
  if (rights.superuser) return;
  const what = `restoring database ${database} as ${rights.user} (not a superuser)`;
  if (!rights.createdb)
    throw new RestoreBlockedError(
      `${what}: the role lacks CREATEDB; run the restore as a superuser (or the RDS master user) or ALTER ROLE ${rights.user} CREATEDB`,
    );
  const { member } = await rolesOf(admin, [owner]);
  if (!member.has(owner))
    throw new RestoreBlockedError(
      `${what}: it is not a member of ${owner}, the owner of the database, so it can neither rename the current database nor give the restored one that owner; GRANT ${owner} TO ${rights.user} (as a superuser), or run the restore as a superuser`,
    );
  if (!current) return;
  const blocking = (
    await admin.query<{ pid: number; usename: string | null; superuser: boolean }>(
      `SELECT a.pid, a.usename, coalesce(r.rolsuper, false) AS superuser
         FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
        WHERE a.datname = $1 AND a.pid <> pg_backend_pid()
          AND (coalesce(r.rolsuper, false)
               OR NOT (pg_has_role(current_user, a.usesysid, 'MEMBER')
                       OR pg_has_role(current_user, 'pg_signal_backend', 'MEMBER')))`,
      [database],
    )
  ).rows;
  if (blocking.length > 0)
    throw new RestoreBlockedError(
      `${what}: ${blocking.length} session(s) on ${database} cannot be terminated by this role (${blocking
        .slice(0, 10)
        .map((b) => `pid ${b.pid} of ${b.usename ?? 'unknown'}${b.superuser ? ', a superuser' : ''}`)
        .join(
          '; ',
        )}), and the swap must close every session; nothing was restored. Close those sessions (or run the restore as a superuser), then restore again`,
    );
  const roleSettings = current.settings.filter((s) => s.role !== null).map((s) => s.role as string);
  if (roleSettings.length > 0) {
    const { rows } = await admin.query<{ name: string; superuser: boolean }>(
      'SELECT rolname AS name, rolsuper AS superuser FROM pg_roles WHERE rolname = ANY($1::text[])',
      [roleSettings],
    );
    const refused = rows.filter((r) => r.superuser || (!rights.createrole && r.name !== rights.user));
    if (refused.length > 0)
      throw new RestoreBlockedError(
        `${what}: ${database} has per-role settings (ALTER ROLE ... IN DATABASE ... SET) for ${refused.map((r) => r.name).join(', ')} that this role may not set again on the restored database; run the restore as a superuser`,
      );
  }
}

/** How objects of the dump get their owners (said in the step result). */
export interface OwnershipPlan {
  /** The restored database's owner. */
  databaseOwner: string;
  /** `dump`: every object keeps its owner from the dump; `database-owner`: restored as the database's owner (pg_restore --no-owner --role). */
  objects: 'dump' | 'database-owner';
  /** Owners in the dump that the target server lacks (or the connecting role may not act as). */
  missingOwners: string[];
  /** One sentence for the report. */
  note: string;
}

/**
 * Restores `prefect.dump` of the backup into the configured database (`connection.database`, i.e.
 * PGDATABASE; `options.database` overrides it; `options.useDumpDatabaseName` restores into the
 * database the dump was taken of, as a drill's empty server does), atomically (see the module
 * comment). The dump's own database name is reported (`dumpDatabase`), and the result says when it
 * differs.
 *
 * The restored database keeps the TARGET's database-level properties (owner, ACL, connection limit,
 * comment, `ALTER DATABASE ... SET` and `ALTER ROLE ... IN DATABASE ... SET` settings), read from the
 * current database before the swap and applied to the new one in the swap's transaction. Objects keep
 * their owners from the dump when every owner role exists on the target (and the connecting role is a
 * member of each); otherwise they are restored as the database's owner (`pg_restore --no-owner
 * --role=owner`, PostgreSQL docs "pg_restore"), and the result says so. With no database on the
 * target yet, the database's owner is the dump's when that role exists, else the connecting role.
 * Validation checks that the database's owner can read every restored table and sequence.
 *
 * Restores of one database are serialised by a session-level advisory lock on the maintenance
 * database (restoreLockKey); a second one fails at once. Temporary databases carry a marker comment
 * (restoreMarker); leftovers of an interrupted restore are dropped only when their marker names this
 * database, while this restore holds the lock.
 *
 * Resolves with what was verified; throws, leaving the current database as it was and no temporary
 * database behind:
 * - ManifestError: the manifest records no dump, or no SHA-256 for it;
 * - RestoreInProgressError: another restore of the database is running on this server;
 * - RestoreBlockedError: the connecting role could not finish the restore (sessions it may not close,
 *   no CREATEDB, not a member of the owner role); checked before any restore work;
 * - RestoreValidationError: the bytes read do not match the manifest's SHA-256 (or size), or the S3
 *   client's checksum check failed, the dump is not a database dump, the target cannot create a
 *   database for it, tables are missing, the row counts differ, the owner cannot read a restored
 *   table, or the swap was refused;
 * - ToolFailedError: pg_restore failed (its last lines of standard error);
 * - StorageError: S3 failed while the dump was read; DatabaseUnreachableError: no connection.
 */
export async function restorePostgres(
  ctx: RestoreContext,
  connection: PostgresConnection,
  manifest: Manifest,
  options: {
    binDir?: string;
    /** Skip GRANTs (a disposable drill server has none of the deployment's roles). */
    noAcl?: boolean;
    /** The database to restore into; by default the connection's (PGDATABASE). */
    database?: string;
    /** Restore into the database the dump was taken of (a drill's empty server). */
    useDumpDatabaseName?: boolean;
  } = {},
): Promise<PostgresRestoreResult> {
  const started = Date.now();
  const log = ctx.logger.child({ component: 'task-manager-db', step: 'restore' });
  const stored = manifest.s3?.[PREFECT_DUMP];
  // An imported infrahub-backup archive records no counts: the restore is then checked against the
  // tables the dump defines, and says so.
  const expected = manifest.counts?.postgres?.tables;
  const sha256 = manifest.checksums[PREFECT_DUMP];
  if (!stored) throw new ManifestError(`${backupName(ctx)} records no task-manager dump to restore`);
  if (!sha256)
    throw new ManifestError(
      `${backupName(ctx)} records no SHA-256 for ${PREFECT_DUMP}: it cannot be verified`,
    );
  const what = `s3://${ctx.bucket}/${stored.key}`;
  const size = manifest.sizes?.[PREFECT_DUMP];
  const pgRestore = toolPath(options.binDir, 'pg_restore');
  const restoreId = ctx.restoreId ?? randomUUID();

  const body = await openObject(ctx.s3, ctx.bucket, stored.key, stored.version_id);
  const chunks = (body as Readable)[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const closeBody = () => (body as Readable).destroy();
  let toc: Awaited<ReturnType<typeof readToc>>;
  try {
    toc = await readToc(chunks, pgRestore);
  } catch (err) {
    closeBody();
    throw bodyError(err, what);
  }
  const tocRead = Date.now();
  let header: DumpHeader;
  try {
    if (toc.failure) throw toc.failure;
    header = parseDumpHeader(toc.sql);
  } catch (err) {
    // Hash the rest, so damaged bytes are named as such rather than as pg_restore's complaint.
    const read = await hashAll(replay(toc.head, chunks, toc.ended)).catch(() => undefined);
    if (read && (read.sha256 !== sha256 || (size !== undefined && read.bytes !== size)))
      throw new RestoreValidationError(
        `${what} does not match its manifest: ${read.bytes} bytes hashing to sha256 ${read.sha256}, the manifest records sha256 ${sha256}; nothing was restored (${err instanceof Error ? err.message : String(err)})`,
      );
    throw err;
  }
  const database = options.database ?? (options.useDumpDatabaseName ? header.database : connection.database);
  const names = restoreDatabaseNames(database, restoreId);
  // One maintenance database per target name, so the advisory lock (scoped to it) is always the same.
  const maintenance = database === 'postgres' ? 'template1' : 'postgres';

  const admin = await connectPostgres(connection, 'infrahub-restore', maintenance).catch((err: unknown) => {
    closeBody();
    throw err;
  });
  admin.on('error', () => undefined);
  let dropOnFailure = false;
  try {
    const { rows: locked } = await admin.query<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock($1::bigint) AS ok',
      [restoreLockKey(database)],
    );
    if (!locked[0]?.ok)
      throw new RestoreInProgressError(
        `another restore of database ${database} is running on this server (${connection.host}:${connection.port}); nothing was changed. Wait for it to end, then restore again`,
      );
    const rights = await readRights(admin);
    const current = await readDatabaseProperties(admin, database);
    const exists = current !== undefined;

    // Who owns the restored database and its objects.
    const { existing, member } = await rolesOf(admin, [
      ...header.owners,
      ...(header.databaseOwner ? [header.databaseOwner] : []),
    ]);
    let databaseOwner: string;
    let ownerNote: string;
    if (current) {
      databaseOwner = current.owner;
      ownerNote = `the database keeps its owner ${databaseOwner}`;
    } else if (
      header.databaseOwner &&
      existing.has(header.databaseOwner) &&
      member.has(header.databaseOwner)
    ) {
      databaseOwner = header.databaseOwner;
      ownerNote = `no database ${database} on the target: owned by the dump's owner ${databaseOwner}`;
    } else {
      databaseOwner = rights.user;
      ownerNote = `no database ${database} on the target and the dump's owner ${header.databaseOwner ?? '(unrecorded)'} ${header.databaseOwner && !existing.has(header.databaseOwner) ? 'does not exist here' : 'cannot be given by this role'}: owned by the connecting role ${databaseOwner}`;
    }
    await checkPreconditions(admin, database, current, databaseOwner, rights);
    const missingOwners = header.owners.filter((o) => !existing.has(o) || !member.has(o));
    const ownership: OwnershipPlan = {
      databaseOwner,
      objects: missingOwners.length === 0 ? 'dump' : 'database-owner',
      missingOwners,
      note:
        missingOwners.length === 0
          ? `${ownerNote}; objects keep their owners from the dump (${header.owners.join(', ') || 'none recorded'})`
          : `${ownerNote}; the target lacks (or this role cannot act as) the dump's owner(s) ${missingOwners.join(', ')}: every object restored as ${databaseOwner}`,
    };
    if (missingOwners.length > 0) log.warn("objects restored as the database's owner", { ...ownership });

    // Leftovers of an interrupted restore of THIS database: only databases our marker names, and
    // none in use by a running restore (this one holds the database's lock).
    const { rows: present } = await admin.query<{ datname: string; comment: string | null }>(
      "SELECT datname, shobj_description(oid, 'pg_database') AS comment FROM pg_database",
    );
    for (const { datname, comment } of present) {
      const marker = parseRestoreMarker(comment);
      if (!marker || marker.database !== database || datname === database) continue;
      if (marker.role === 'aside' && !exists) {
        log.warn('a replaced database is left and the database is missing: leaving it for an operator', {
          database,
          left: datname,
        });
        continue;
      }
      log.warn('dropping a database left by an interrupted restore', { database: datname, marker });
      await dropDatabase(admin, datname);
    }

    const created = await createDatabase(admin, names.fresh, header, log);
    dropOnFailure = true;
    await admin.query(
      `COMMENT ON DATABASE ${admin.escapeIdentifier(names.fresh)} IS ${admin.escapeLiteral(restoreMarker({ database, restoreId, role: 'fresh' }))}`,
    );
    if (databaseOwner !== rights.user)
      await admin.query(
        `ALTER DATABASE ${admin.escapeIdentifier(names.fresh)} OWNER TO ${admin.escapeIdentifier(databaseOwner)}`,
      );
    if (created.localeFrom !== 'dump')
      log.warn("the target server lacks the dump's locale: restored with another", { ...created });
    log.info('pg_restore started', {
      database,
      dumpDatabase: header.database,
      into: names.fresh,
      key: stored.key,
      versionId: stored.version_id,
      ownership: ownership.note,
    });
    const restore = runTool(
      pgRestore,
      [
        ...(ownership.objects === 'dump'
          ? []
          : ['--no-owner', ...(databaseOwner !== rights.user ? [`--role=${databaseOwner}`] : [])]),
        '--no-tablespaces',
        ...(options.noAcl ? ['--no-acl'] : []),
        '--exit-on-error',
        dbnameArg(names.fresh),
      ],
      { env: toolEnv(connection, 'infrahub-restore'), stdin: 'pipe', stdout: 'ignore' },
    );
    const verified = await feedToolVerified(replay(toc.head, chunks, toc.ended), restore, {
      sha256,
      bytes: size,
      what,
    });
    const restoredAt = Date.now();
    log.info('pg_restore finished, every byte matches the manifest; counting rows', {
      database: names.fresh,
      bytes: verified.bytes,
      sha256: verified.sha256,
      ms: restoredAt - tocRead,
    });

    const client = await connectPostgres(connection, 'infrahub-restore', names.fresh);
    let actual: Record<string, number>;
    let lockedOut: string[];
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      actual = await countRows(client, { parallel: true });
      // The application connects as the database's owner: it must be able to read what was restored.
      lockedOut = (
        await client.query<{ name: string }>(
          `SELECT n.nspname || '.' || c.relname AS name
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm')
              AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
              AND (NOT has_schema_privilege($1, n.oid, 'USAGE') OR NOT has_table_privilege($1, c.oid, 'SELECT'))
            ORDER BY 1`,
          [databaseOwner],
        )
      ).rows.map((r) => r.name);
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    const missing = tablesMissing(header.tables, actual);
    if (missing.length > 0)
      throw new RestoreValidationError(
        `restored ${database} lacks ${missing.length} of the ${header.tables.length} tables the dump defines: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', ...' : ''}`,
      );
    const differences = expected ? tableCountDifferences(expected, actual) : [];
    if (differences.length > 0)
      throw new RestoreValidationError(
        `restored ${database} does not match the backup's row counts:\n${differences.map((d) => `  - ${d}`).join('\n')}`,
      );
    if (lockedOut.length > 0)
      throw new RestoreValidationError(
        `restored ${database} would lock its owner ${databaseOwner} out: it cannot read ${lockedOut.length} restored relation(s): ${lockedOut.slice(0, 20).join(', ')}${lockedOut.length > 20 ? ', ...' : ''} (${ownership.note}); the current database keeps serving`,
      );
    const counted = Date.now();
    const rows = Object.values(actual).reduce((a, b) => a + b, 0);
    const validation = describeTableCheck({
      compared: Boolean(expected),
      tables: Object.keys(actual).length,
      rows,
      dumpTables: header.tables.length,
    });
    const access = `the database's owner ${databaseOwner} can read every restored table and sequence`;
    if (!expected)
      log.warn(
        'the backup records no row counts (an imported archive): restored tables counted, not compared',
        {
          tables: Object.keys(actual).length,
          rows,
        },
      );

    const properties: DatabaseProperties = current ?? {
      owner: databaseOwner,
      connectionLimit: -1,
      comment: null,
      settings: [],
    };
    const apply = propertyStatements(database, properties, {
      ident: (v) => admin.escapeIdentifier(v),
      literal: (v) => admin.escapeLiteral(v),
    });
    /** What a failure reported after the swap says of the target (noteTargetState). */
    const swapped = (replaced: 'none' | 'kept' | 'dropped') =>
      `The backup's task-manager database had been put in place of the target's ${database} before this (its row counts ${expected ? 'compared with those at backup time' : 'counted'}): ${database} holds the backup's data${
        replaced === 'kept'
          ? `; the database it replaced is still on the server as ${names.aside} (the next restore of ${database} drops it)`
          : replaced === 'dropped'
            ? `; the database it replaced (${names.aside}) was dropped`
            : ''
      }.`;
    // One section (stop-guard.ts): a stop during the swap's transaction waits for its COMMIT (or
    // ROLLBACK), so what the stop reports says which database now serves. Once committed, every
    // failure reported (a stop, a report that cannot be written) says the target was replaced.
    await uninterruptible(async () => {
      await swapIn(
        admin,
        { database, fresh: names.fresh, aside: names.aside },
        exists,
        restoreMarker({ database, restoreId, role: 'aside' }),
        apply,
        log,
      );
      dropOnFailure = false; // in place: no longer ours to drop
      noteTargetState(swapped(exists ? 'kept' : 'none'));
    });
    if (exists) {
      const dropped = await dropDatabase(admin, names.aside).then(
        () => true,
        (err: unknown) => {
          log.warn('the replaced database could not be dropped; the next restore drops it', {
            database: names.aside,
            error: err instanceof Error ? err.message : String(err),
          });
          return false;
        },
      );
      if (dropped) noteTargetState(swapped('dropped'));
    }
    const finished = Date.now();
    const dumpNote =
      header.database === database
        ? undefined
        : `the dump was taken of database ${header.database}; restored into the configured database ${database}`;
    if (dumpNote) log.warn(dumpNote);
    log.info(`restore of ${database} finished: ${validation}`, {
      database,
      tables: Object.keys(actual).length,
      rows,
    });
    return {
      component: 'task-manager-db',
      database,
      dumpDatabase: header.database,
      ...(dumpNote ? { databaseNote: dumpNote } : {}),
      ownership,
      tables: Object.keys(actual).length,
      rows,
      durationMs: finished - started,
      verifiedBytes: verified.bytes,
      sha256: verified.sha256,
      countsCompared: Boolean(expected),
      validation,
      access,
      created,
      replaced: exists,
      timings: {
        'read-toc': tocRead - started,
        'pg-restore': restoredAt - tocRead,
        'count-rows': counted - restoredAt,
        swap: finished - counted,
      },
    };
  } catch (err) {
    closeBody();
    if (dropOnFailure)
      await dropDatabase(admin, names.fresh).catch((dropErr: unknown) =>
        log.error('could not drop the database of the failed restore', {
          database: names.fresh,
          error: dropErr instanceof Error ? dropErr.message : String(dropErr),
        }),
      );
    throw err;
  } finally {
    // Ending the session releases the advisory lock.
    await admin.end().catch(() => undefined);
  }
}
