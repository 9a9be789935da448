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
 * else the target's default, else C; owners (`--no-owner`) and tablespaces (`--no-tablespaces`) are
 * not carried over. What `pg_restore --create` would also have restored and this does not: the
 * database-level `ALTER DATABASE ... SET` settings, comment and ACL of the source database.
 */

import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { PREFECT_DUMP } from '../../../../core/backup/layout.js';
import type { Manifest } from '../../../../core/backup/manifest.js';
import { ManifestError, RestoreValidationError } from '../../../../core/errors.js';
import type { Logger } from '../../../../core/log.js';
import {
  describeTableCheck,
  tableCountDifferences,
  tablesMissing,
} from '../../../../core/restore/compare.js';
import { openObject } from '../../../../core/s3/objects.js';
import { runTool } from '../../../../core/tools/run-tool.js';
import { bodyError, feedToolVerified } from '../../../../core/tools/stream-from-s3.js';
import { connectPostgres, countRows, type PostgresConnection, toolEnv, toolPath } from './postgres.js';

export interface RestoreContext {
  s3: S3Client;
  bucket: string;
  target: string;
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
  database: string;
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
  return { database: unquote(create[1]), options, tables };
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

const SWAP_ATTEMPTS = 5;

/**
 * Puts `fresh` in place of `database` in ONE transaction: sessions of `database` are terminated, it
 * is renamed to `aside`, and `fresh` renamed to `database`. `ALTER DATABASE ... RENAME TO` may run in
 * a transaction block, is refused while another session is connected to the database ("database is
 * being accessed by other users", SQLSTATE 55006: PostgreSQL docs "ALTER DATABASE": "The current
 * database cannot be renamed"; a renamed database must have no other connections), and holds the
 * database's lock until commit, so no session connects in between; a failure rolls both renames
 * back: the old name stays on the old data. Retried when a session connected between the
 * termination and the rename.
 */
async function swapIn(
  admin: pg.Client,
  names: { database: string; fresh: string; aside: string },
  exists: boolean,
  log: Logger,
): Promise<void> {
  const q = (n: string) => admin.escapeIdentifier(n);
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.query('BEGIN');
      if (exists) {
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

/**
 * Restores `prefect.dump` of the backup into `options.database` (default: the database the dump was
 * taken of) on the server of `connection`, atomically (see the module comment). Resolves with what
 * was verified; throws, leaving the current database as it was and no temporary database behind:
 * - ManifestError: the manifest records no dump, or no SHA-256 for it;
 * - RestoreValidationError: the bytes read do not match the manifest's SHA-256 (or size), the dump is
 *   not a database dump, the target cannot create a database for it, tables the dump defines are
 *   missing after the restore, the row counts differ from those recorded, or the swap was refused;
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
    /** The database to restore into; by default the one the dump was taken of. */
    database?: string;
  } = {},
): Promise<PostgresRestoreResult> {
  const started = Date.now();
  const log = ctx.logger.child({ component: 'task-manager-db', step: 'restore' });
  const stored = manifest.s3?.[PREFECT_DUMP];
  // An imported infrahub-backup archive records no counts: the restore is then checked against the
  // tables the dump defines, and says so.
  const expected = manifest.counts?.postgres?.tables;
  const sha256 = manifest.checksums[PREFECT_DUMP];
  if (!stored)
    throw new ManifestError(`${ctx.target}/${ctx.backupId} records no task-manager dump to restore`);
  if (!sha256)
    throw new ManifestError(
      `${ctx.target}/${ctx.backupId} records no SHA-256 for ${PREFECT_DUMP}: it cannot be verified`,
    );
  const what = `s3://${ctx.bucket}/${stored.key}`;
  const size = manifest.sizes?.[PREFECT_DUMP];
  const pgRestore = toolPath(options.binDir, 'pg_restore');

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
  const database = options.database ?? header.database;
  const names = restoreDatabaseNames(database, ctx.restoreId ?? randomUUID());
  const maintenance = database === 'postgres' ? 'template1' : 'postgres';

  const admin = await connectPostgres(connection, 'infrahub-restore', maintenance).catch((err: unknown) => {
    closeBody();
    throw err;
  });
  admin.on('error', () => undefined);
  let dropOnFailure = false;
  try {
    // Leftovers of an interrupted restore: a new database never swapped in, or an old one not dropped.
    const { rows: present } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database');
    const exists = present.some((r) => r.datname === database);
    for (const { datname } of present.filter((r) => names.pattern.test(r.datname))) {
      if (datname.includes('_replaced_') && !exists) {
        log.warn('a replaced database is left and the database is missing: leaving it for an operator', {
          database,
          left: datname,
        });
        continue;
      }
      log.warn('dropping a database left by an interrupted restore', { database: datname });
      await dropDatabase(admin, datname);
    }

    const created = await createDatabase(admin, names.fresh, header, log);
    dropOnFailure = true;
    if (created.localeFrom !== 'dump')
      log.warn("the target server lacks the dump's locale: restored with another", { ...created });
    log.info('pg_restore started', {
      database,
      into: names.fresh,
      key: stored.key,
      versionId: stored.version_id,
    });
    const restore = runTool(
      pgRestore,
      [
        '--no-owner',
        '--no-tablespaces',
        ...(options.noAcl ? ['--no-acl'] : []),
        '--exit-on-error',
        `--dbname=${names.fresh}`,
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
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      actual = await countRows(client, { parallel: true });
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
    const counted = Date.now();
    const rows = Object.values(actual).reduce((a, b) => a + b, 0);
    const validation = describeTableCheck({
      compared: Boolean(expected),
      tables: Object.keys(actual).length,
      rows,
      dumpTables: header.tables.length,
    });
    if (!expected)
      log.warn(
        'the backup records no row counts (an imported archive): restored tables counted, not compared',
        {
          tables: Object.keys(actual).length,
          rows,
        },
      );

    await swapIn(admin, { database, fresh: names.fresh, aside: names.aside }, exists, log);
    dropOnFailure = false; // in place: no longer ours to drop
    if (exists)
      await dropDatabase(admin, names.aside).catch((err: unknown) =>
        log.warn('the replaced database could not be dropped; the next restore drops it', {
          database: names.aside,
          error: err instanceof Error ? err.message : String(err),
        }),
      );
    const finished = Date.now();
    log.info(`restore of ${database} finished: ${validation}`, {
      database,
      tables: Object.keys(actual).length,
      rows,
    });
    return {
      component: 'task-manager-db',
      database,
      tables: Object.keys(actual).length,
      rows,
      durationMs: finished - started,
      verifiedBytes: verified.bytes,
      sha256: verified.sha256,
      countsCompared: Boolean(expected),
      validation,
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
    await admin.end().catch(() => undefined);
  }
}
