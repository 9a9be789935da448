/**
 * FAKE Neo4j Enterprise DBMS behind a recording Cypher session. Enterprise cannot run here, so the
 * seeded restore (containers/runner/src/components/seed-neo4j.ts) is tested against this stand-in,
 * which follows the documented contracts and refuses any statement outside them:
 *
 * - `CALL dbms.components()` (version, edition); `SHOW SETTINGS ... dbms.databases.seed_from_uri_providers`
 *   (default per version: `S3SeedProvider,CloudSeedProvider` in 5.26, `CloudSeedProvider` from
 *   2025.01; "the first matching provider will be used": an s3:// seed that reaches the
 *   S3SeedProvider fails, as it would without seedConfig and seedCredentials).
 * - `CREATE DATABASE x OPTIONS {existingData: 'use', seedURI: 's3://...'}` (Operations Manual, "Create
 *   a database from a URI"): the command returns at once; every member hosting the database then
 *   downloads the seed as the database starts. A URI naming a `.backup` file is seeded from the chain
 *   ending at it, found in the same S3 folder (CloudSeedProvider). A seed that cannot be read or whose
 *   chain is broken leaves the database offline with statusMessage "Unable to start database ...";
 *   a server without a region leaves it offline without a message (the documented credentials and
 *   region prerequisites); a member that is down reports currentStatus "unknown".
 * - `CALL dbms.recreateDatabase(name, {seedURI})` from 2025.04, `CALL dbms.cluster.recreateDatabase`
 *   before (Operations Manual, "Recreate a database"): the database must exist; it is reseeded, and
 *   its old store keeps answering `online` for `stalePolls` polls after the call returns.
 * - `SHOW DATABASE x YIELD ...` one row per member, with `lastStartTime` (moves at each start) and
 *   `lastCommittedTxn` (only while online: a seeded copy ends at its chain's highest transaction,
 *   "if you restore <artifact>, your database will have <HIGHEST TX> as the last transaction ID",
 *   Operations Manual, "Restore a database backup"); `SHOW DATABASES YIELD name`; `DROP DATABASE x IF EXISTS`.
 * - `SHOW ALIASES FOR DATABASE YIELD name, database ...`; `CREATE OR REPLACE ALIAS a FOR DATABASE x`
 *   (refused when `a` names a database).
 * - Counts per database (`MATCH (n) RETURN count(n) AS c`, `MATCH ()-[r]->() RETURN count(r) AS c`),
 *   refused while the database is not online.
 *
 * What is fake: there is no store. A seeded database's counts come from `countsFor(chain)`, the test's
 * model of what the seed holds (by default the fake artifact header's `highestTx` decides).
 * Seeding progresses by one step per `SHOW DATABASE` poll (`pollsToOnline`), not by time.
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { CypherSession } from '../../containers/runner/src/components/restore-neo4j.js';

export interface ChainLink {
  key: string;
  header: { database: string; full: boolean; lowestTx: number; highestTx: number };
}

export interface FakeDbmsOptions {
  s3: S3Client;
  version?: string;
  /** What dbms.components() reports (default enterprise). */
  edition?: 'enterprise' | 'community';
  /** Members (addresses) hosting every database. */
  members?: string[];
  /** Members that are down: they report currentStatus "unknown" and never come online. */
  down?: string[];
  /** The servers' AWS region; undefined: seeds never start, silently (offline, no message). */
  awsRegion?: string;
  /**
   * `dbms.databases.seed_from_uri_providers`; default the version's (`S3SeedProvider,CloudSeedProvider`
   * in 5.26, `CloudSeedProvider` from 2025.01: Operations Manual, "Configuration settings");
   * `null`: the restore's user may not see it (SHOW SETTINGS lists no row), the default still applies.
   */
  seedProviders?: string | null;
  /** Added to the transaction a seeded database ends at (a seed that is not what was staged). */
  txOffset?: number;
  /** SHOW DATABASE polls after a recreate during which the old store still answers (default 1). */
  stalePolls?: number;
  /** Statements the restore's user may not run (refused with Neo4j's security error). */
  denied?: RegExp;
  /** The counts a database seeded from `chain` holds. */
  countsFor?: (chain: ChainLink[]) => { nodes: number; relationships: number };
  /** SHOW DATABASE polls until a seeded database is online (default 2). */
  pollsToOnline?: number;
  /** Databases (with their counts) that exist before the restore. */
  existing?: Record<string, { nodes: number; relationships: number }>;
  aliases?: Record<string, string>;
  /**
   * Member states of databases that exist before the restore, by database and member address (a
   * live database that no longer starts: offline with "Unable to start database"; quarantined).
   */
  states?: Record<string, Record<string, Hosted>>;
}

export interface Hosted {
  status: 'starting' | 'online' | 'offline' | 'unknown' | 'quarantined';
  message: string;
}

interface Database {
  members: Map<string, Hosted>;
  counts: { nodes: number; relationships: number };
  /** The last transaction the database holds (shown while online). */
  tx: number;
  /** How many times it was started: `lastStartTime` moves with it. */
  starts: number;
  seedUri?: string;
  pending?: {
    /** Polls during which the old store still answers (a recreate). */
    stale: number;
    polls: number;
    started: boolean;
    outcome:
      | { ok: true; counts: { nodes: number; relationships: number }; tx: number }
      | { ok: false; message: string }
      | { ok: false; silent: true };
  };
}

/** An error as the driver raises it: a message and a Neo4j status code. */
class Neo4jError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const SHOW_DATABASE =
  /^SHOW DATABASE `([^`]+)` YIELD name, address, serverID, requestedStatus, currentStatus, statusMessage, lastStartTime, lastCommittedTxn RETURN address, serverID, requestedStatus, currentStatus, statusMessage, lastStartTime, lastCommittedTxn$/;
const CREATE_SEEDED =
  /^CREATE DATABASE `([^`]+)` OPTIONS \{existingData: 'use', seedURI: '((?:[^'\\]|\\.)*)'\}$/;
const RECREATE =
  /^CALL (dbms\.recreateDatabase|dbms\.cluster\.recreateDatabase)\(\$name, \{seedURI: \$seedURI\}\)$/;
const DROP = /^DROP DATABASE `([^`]+)` IF EXISTS$/;
const ALIAS = /^CREATE OR REPLACE ALIAS `([^`]+)` FOR DATABASE `([^`]+)`$/;

export class FakeEnterpriseDbms implements CypherSession {
  readonly statements: string[] = [];
  readonly databases = new Map<string, Database>();
  readonly aliases = new Map<string, string>();
  private readonly version: string;
  private readonly members: string[];

  constructor(private readonly options: FakeDbmsOptions) {
    this.version = options.version ?? '2025.10.1';
    this.members = options.members ?? ['neo4j-1:7687'];
    for (const [name, counts] of Object.entries({
      system: { nodes: 0, relationships: 0 },
      ...options.existing,
    }))
      this.databases.set(name, { members: this.hosted('online', ''), counts, tx: 5, starts: 1 });
    for (const [alias, db] of Object.entries(options.aliases ?? {})) this.aliases.set(alias, db);
    for (const [name, states] of Object.entries(options.states ?? {}))
      for (const [member, hosted] of Object.entries(states))
        this.databases.get(name)?.members.set(member, hosted);
  }

  private hosted(status: Hosted['status'], message: string): Map<string, Hosted> {
    return new Map(
      this.members.map((m) => [
        m,
        this.options.down?.includes(m)
          ? { status: 'unknown', message: 'Server is unavailable' }
          : { status, message },
      ]),
    );
  }

  async close(): Promise<void> {}

  async run(
    database: string,
    query: string,
    params: Record<string, unknown> = {},
  ): Promise<Array<Record<string, unknown>>> {
    this.statements.push(
      `${database}: ${query}${Object.keys(params).length ? ` ${JSON.stringify(params)}` : ''}`,
    );
    if (this.options.denied?.test(query))
      throw new Neo4jError(
        `Permission denied for: ${query.split(' ').slice(0, 3).join(' ')}`,
        'Neo.ClientError.Security.Forbidden',
      );
    if (database !== 'system') return this.count(database, query);
    if (query === 'CALL dbms.components() YIELD versions, edition RETURN versions[0] AS version, edition')
      return [{ version: this.version, edition: this.options.edition ?? 'enterprise' }];
    if (query === 'SHOW SETTINGS YIELD name, value WHERE name = $name RETURN value') {
      // Without the SHOW SETTING privilege, the setting is simply not listed.
      if (this.options.seedProviders === null) return [];
      return params.name === 'dbms.databases.seed_from_uri_providers' ? [{ value: this.providers() }] : [];
    }
    if (query === 'SHOW DATABASES YIELD name RETURN DISTINCT name')
      return [...this.databases.keys()].map((name) => ({ name }));
    if (query === 'SHOW ALIASES FOR DATABASE YIELD name, database RETURN name, database')
      return [...this.aliases].map(([name, db]) => ({ name, database: db }));
    if (query === 'SHOW ALIASES FOR DATABASE YIELD name, database WHERE name = $alias RETURN database') {
      const db = this.aliases.get(String(params.alias));
      return db ? [{ database: db }] : [];
    }
    const show = SHOW_DATABASE.exec(query);
    if (show) return this.show(show[1] as string);
    const create = CREATE_SEEDED.exec(query);
    if (create) {
      const name = create[1] as string;
      if (this.databases.has(name) || this.aliases.has(name))
        throw new Neo4jError(
          `Failed to create the specified database '${name}': Database already exists.`,
          'Neo.ClientError.Database.ExistingDatabaseFound',
        );
      await this.seed(name, (create[2] as string).replace(/\\(.)/g, '$1'));
      return [];
    }
    const recreate = RECREATE.exec(query);
    if (recreate) {
      // dbms.cluster.recreateDatabase from 5.24 (deprecated in 2025.04), dbms.recreateDatabase from 2025.04.
      const [sinceMajor, sinceMinor] = recreate[1] === 'dbms.recreateDatabase' ? [2025, 4] : [5, 24];
      const [major = 0, minor = 0] = this.version.split('.').map(Number);
      if (major < sinceMajor || (major === sinceMajor && minor < sinceMinor))
        throw new Neo4jError(
          `There is no procedure with the name \`${recreate[1]}\` registered for this database instance.`,
          'Neo.ClientError.Procedure.ProcedureNotFound',
        );
      const name = String(params.name);
      if (!this.databases.has(name))
        throw new Neo4jError(
          `Database '${name}' does not exist.`,
          'Neo.ClientError.Database.DatabaseNotFound',
        );
      await this.seed(name, String(params.seedURI));
      return [];
    }
    const drop = DROP.exec(query);
    if (drop) {
      this.databases.delete(drop[1] as string);
      return [];
    }
    const alias = ALIAS.exec(query);
    if (alias) {
      if (this.databases.has(alias[1] as string))
        throw new Neo4jError(
          `Failed to create the specified database alias '${alias[1]}': Database name or alias already exists.`,
          'Neo.ClientError.Database.ExistingDatabaseFound',
        );
      this.aliases.set(alias[1] as string, alias[2] as string);
      return [];
    }
    throw new Error(`fake Enterprise DBMS: "${query}" is not part of the faked contract`);
  }
  private count(database: string, query: string) {
    const db = this.databases.get(this.aliases.get(database) ?? database);
    if (!db || [...db.members.values()].some((h) => h.status !== 'online' && h.status !== 'unknown'))
      throw new Neo4jError(
        `Database '${database}' is unavailable.`,
        'Neo.TransientError.General.DatabaseUnavailable',
      );
    if (query === 'MATCH (n) RETURN count(n) AS c') return [{ c: db.counts.nodes }];
    if (query === 'MATCH ()-[r]->() RETURN count(r) AS c') return [{ c: db.counts.relationships }];
    throw new Error(`fake Enterprise DBMS: "${query}" on ${database} is not part of the faked contract`);
  }

  /** The providers setting in force: the given one, or the version's default. */
  private providers(): string {
    if (typeof this.options.seedProviders === 'string') return this.options.seedProviders;
    return this.version.startsWith('5.') ? 'S3SeedProvider,CloudSeedProvider' : 'CloudSeedProvider';
  }

  private show(name: string) {
    const db = this.databases.get(name);
    if (!db) return [];
    const pending = db.pending;
    if (pending && pending.stale > 0) pending.stale -= 1;
    else if (pending) {
      if (!pending.started) {
        // The old store stops; each member starts the database anew from the seed.
        for (const [address, hosted] of db.members)
          if (hosted.status !== 'unknown') db.members.set(address, { status: 'starting', message: '' });
        pending.started = true;
      }
      pending.polls -= 1;
      if (pending.polls <= 0) {
        const outcome = pending.outcome;
        for (const [address, hosted] of db.members) {
          if (hosted.status === 'unknown') continue;
          if (outcome.ok) db.members.set(address, { status: 'online', message: '' });
          else if ('silent' in outcome) db.members.set(address, { status: 'offline', message: '' });
          else db.members.set(address, { status: 'offline', message: outcome.message });
        }
        if (outcome.ok) {
          db.counts = outcome.counts;
          db.tx = outcome.tx;
          db.starts += 1;
        }
        db.pending = undefined;
      }
    }
    return [...db.members].map(([address, h], i) => ({
      name,
      // A member on a server that is down reports no address (Operations Manual, "Listing databases").
      address: h.status === 'unknown' ? null : address,
      serverID: `server-${i + 1}`,
      requestedStatus: 'online',
      currentStatus: h.status,
      statusMessage: h.message,
      lastStartTime: db.starts > 0 ? `2026-11-30T12:00:${String(db.starts).padStart(2, '0')}Z` : null,
      lastCommittedTxn: h.status === 'online' ? db.tx : null,
    }));
  }

  /**
   * Starts seeding `name` from `uri`: the outcome is decided now (the S3 read), shown after some
   * polls; a database that exists (a recreate) keeps answering from its old store for `stalePolls`.
   */
  private async seed(name: string, uri: string) {
    const polls = this.options.pollsToOnline ?? 2;
    const old = this.databases.get(name);
    const db: Database = old ?? {
      members: this.hosted('starting', ''),
      counts: { nodes: 0, relationships: 0 },
      tx: 0,
      starts: 0,
    };
    db.seedUri = uri;
    this.databases.set(name, db);
    const pending = (outcome: NonNullable<Database['pending']>['outcome']) => {
      db.pending = { stale: old ? (this.options.stalePolls ?? 1) : 0, polls, started: !old, outcome };
    };
    const unable = `Unable to start database \`DatabaseId{3fe1a59b[${name}]}\``;
    // The first provider of the list that takes s3: is used; the S3SeedProvider needs seedConfig and
    // seedCredentials, which the command does not carry.
    const provider = this.providers()
      .split(',')
      .map((p) => p.trim())
      .find((p) => p === 'CloudSeedProvider' || p === 'S3SeedProvider');
    if (provider !== 'CloudSeedProvider') return pending({ ok: false, message: unable });
    if (!this.options.awsRegion) return pending({ ok: false, silent: true });
    const chain = await this.chainOf(uri).catch(() => undefined);
    if (!chain) return pending({ ok: false, message: unable });
    const counts = this.options.countsFor?.(chain) ?? {
      nodes: chain.at(-1)?.header.highestTx ?? 0,
      relationships: 0,
    };
    pending({ ok: true, counts, tx: (chain.at(-1)?.header.highestTx ?? 0) + (this.options.txOffset ?? 0) });
  }

  /** The chain ending at the URI's file, from its S3 folder (CloudSeedProvider); undefined when unusable. */
  private async chainOf(uri: string): Promise<ChainLink[] | undefined> {
    const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
    if (!m) return undefined;
    const [, bucket, key] = m as unknown as [string, string, string];
    const folder = key.slice(0, key.lastIndexOf('/') + 1);
    const listed = await this.options.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: folder }));
    const keys = (listed.Contents ?? [])
      .map((o) => o.Key as string)
      .filter((k) => k.endsWith('.backup') && k <= key)
      .sort();
    if (!keys.includes(key)) return undefined;
    const links: ChainLink[] = [];
    for (const k of keys) {
      const body = await (
        await this.options.s3.send(new GetObjectCommand({ Bucket: bucket, Key: k }))
      ).Body?.transformToString('latin1');
      const header = JSON.parse((body ?? '').split('\n')[0] ?? '');
      links.push({ key: k, header });
    }
    // The chain: the last full backup at or before the file, then continuous differentials.
    const start = links.map((l) => l.header.full).lastIndexOf(true);
    if (start < 0) return undefined;
    const chain = links.slice(start);
    for (let i = 1; i < chain.length; i += 1)
      if (chain[i]?.header.lowestTx !== (chain[i - 1]?.header.highestTx ?? 0) + 1) return undefined;
    return chain;
  }
}
