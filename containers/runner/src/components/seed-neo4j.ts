/**
 * Restores Neo4j Enterprise the way a remote, managed server takes a backup: the Neo4j servers seed
 * the database themselves from the backup bucket. The runner never touches a server's store (it has
 * none: `neo4j-admin database restore` in the runner's container would restore into the container's
 * own empty store).
 *
 * 1. Checks that change nothing: the server is Enterprise and at least 5.26, `s3://` seeds reach
 *    its CloudSeedProvider (seedProviderProblem), and the names are free (new-database).
 * 2. Stage: each backup chain file is streamed from its exact S3 version, hashed as it passes, into
 *    `.restore-seeds/TARGET/RESTORE_ID/<db>/` (core/backup/layout.ts seedStagingPrefix); an upload
 *    whose SHA-256 or size differs from the manifest's is aborted, and the staged object's S3
 *    checksum is read back. The seed URI names the chain's last file: the CloudSeedProvider finds the
 *    chain ending at it in the same folder (Neo4j Operations Manual, "Create a database from a URI").
 * 3. new-database (blue/green): `CREATE DATABASE <new> OPTIONS {existingData: 'use', seedURI: ...}`,
 *    waited for until `SHOW DATABASE` says online on every member hosting it (a bounded wait; a
 *    member that reports a statusMessage fails it at once), proven equal to the backup (every
 *    member ends at the transaction the chain restores to, and the counts compare: proveSeeded),
 *    and only then `CREATE OR REPLACE ALIAS <alias> FOR DATABASE <new>`. The
 *    database the alias pointed to before is kept: the operator drops it.
 * 4. in-place: with `rehearse` (the default) each staged chain is first seeded into a throwaway
 *    database `seedcheck-<n>-<restore id's last 20 letters and digits>`, proven and dropped, so the
 *    live database is replaced only once seeding is proven to work (seed provider, the servers' IAM
 *    role and region, the chain). Then the live database is recreated from the seed keeping its
 *    privileges: `CALL dbms.recreateDatabase(...)` (Neo4j 2025.04+) or
 *    `CALL dbms.cluster.recreateDatabase(...)` (5.26 to 2025.03) (Operations Manual, "Recreate a
 *    database"), waited for until every member has started it anew, and proven the same way.
 * 5. The staged copies are deleted (their exact versions) once the restore succeeded; a failed
 *    restore leaves them for investigation (a new restore stages its own copy under its own restore
 *    id), and the bucket's lifecycle rule removes them after two days.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { seedStagingPrefix } from '../../../../core/backup/layout.js';
import type { Manifest } from '../../../../core/backup/manifest.js';
import {
  IncompatibleBackupError,
  ManifestError,
  Neo4jSeedError,
  RestoreValidationError,
} from '../../../../core/errors.js';
import type { Logger } from '../../../../core/log.js';
import { neo4jAtLeast } from '../../../../core/restore/plan.js';
import { hashing } from '../../../../core/s3/download.js';
import { headObject, openObject, sameS3Checksum } from '../../../../core/s3/objects.js';
import { uploadStream } from '../../../../core/s3/upload-stream.js';
import { backupName } from '../context.js';
import { describesTarget, noteTargetState } from '../stop-guard.js';
import { toNumber } from './neo4j-counts.js';
import {
  type CypherSession,
  compareCounts,
  cypherString,
  type GraphValidation,
  quotedName,
  storedFile,
  type VerifiedFile,
} from './restore-neo4j.js';
import type { RestoreContext } from './restore-postgres.js';

export interface SeedOptions {
  mode: 'in-place' | 'new-database';
  /** new-database: the database created from the seed. */
  newDatabaseName?: string;
  /** new-database: the alias moved to the new database once it is validated (Infrahub connects through it). */
  alias?: string;
  /** How long a seeded database may take to be online on every member, in milliseconds. */
  onlineTimeoutMs: number;
  /** Pause between `SHOW DATABASE` polls, in milliseconds (default 5,000). */
  pollMs?: number;
  /** in-place: seed and validate a throwaway database first (default true). */
  rehearse?: boolean;
  /** Delete the staged copies after a successful restore (default true). */
  removeStaged?: boolean;
}

/** One member's view of a database, as `SHOW DATABASE` reports it. */
export interface MemberStatus {
  address: string;
  serverId?: string;
  requestedStatus: string;
  currentStatus: string;
  statusMessage: string;
  /** When the member last started the database (`lastStartTime`); null while it never ran. */
  lastStartTime?: string;
  /** The last transaction the member's copy holds (`lastCommittedTxn`); only while online. */
  lastCommittedTxn?: number;
}

export interface SeededDatabase {
  /** The backup's database name. */
  from: string;
  /** The database now holding it. */
  name: string;
  seedUri: string;
  /** How it was made: `created` (CREATE DATABASE) or `recreated` (dbms.recreateDatabase). */
  how: 'created' | 'recreated';
  members: MemberStatus[];
  validation: GraphValidation;
}

export interface SeededRestoreResult {
  component: 'database';
  edition: 'enterprise';
  mode: 'in-place' | 'new-database';
  server: { version: string };
  databases: SeededDatabase[];
  /**
   * in-place with rehearse: the throwaway databases (names joined) that proved the seeds, dropped
   * afterwards except those in `notDropped` (drop them by hand).
   */
  rehearsal?: { name: string; members: MemberStatus[]; seconds: number; notDropped?: string[] };
  /** new-database: the alias and where it pointed before (kept: drop it once satisfied). */
  alias?: { name: string; database: string; previous?: string };
  /** Every chain file staged, each equal to the manifest's SHA-256 and size. */
  verified: VerifiedFile[];
  verifiedBytes: number;
  staged: { prefix: string; removed: boolean };
  /** `system` is never replaced by an online restore; users and roles stay the target's. */
  system: 'kept' | 'not-in-backup';
  durationMs: number;
}

/**
 * The procedure that recreates a database from a seed while keeping its privileges:
 * `dbms.recreateDatabase` from 2025.04 (when `dbms.cluster.recreateDatabase` was deprecated for it),
 * `dbms.cluster.recreateDatabase` before (Operations Manual, "Recreate a database"; built-in
 * procedures).
 */
export function recreateProcedure(version: string): string {
  return neo4jAtLeast(version, [2025, 4]) ? 'dbms.recreateDatabase' : 'dbms.cluster.recreateDatabase';
}

/**
 * The oldest Neo4j a seeded restore runs against: the CloudSeedProvider seeds from a differential
 * backup, finding its chain in the same folder, from 5.26 (Operations Manual 5, "Create a database
 * from a URI"), and every Enterprise backup of ours may be a chain.
 */
export const MIN_SEEDING_RELEASE: [number, number] = [5, 26];

/** The providers that take `s3:` URIs, and the one we need (Operations Manual, "Create a database from a URI"). */
const S3_SEED_PROVIDERS = ['CloudSeedProvider', 'S3SeedProvider'];

/**
 * The default of `dbms.databases.seed_from_uri_providers`: `S3SeedProvider,CloudSeedProvider` in
 * 5.26, `CloudSeedProvider` from 2025.01 (Operations Manual, "Configuration settings").
 */
export function defaultSeedProviders(version: string): string {
  return neo4jAtLeast(version, [2025, 1]) ? 'CloudSeedProvider' : 'S3SeedProvider,CloudSeedProvider';
}

/**
 * Why a server with this providers setting cannot seed our staged chain, or undefined when it can.
 * "If a seed source (URI scheme) is supported by multiple providers in the list, the first matching
 * provider will be used" (Operations Manual, "Configuration settings"): the first of the list that
 * takes `s3:` must be the CloudSeedProvider. The S3SeedProvider needs `seedConfig` and
 * `seedCredentials` (access keys passed in the Cypher command), which a restore never sends.
 */
export function seedProviderProblem(setting: string): string | undefined {
  const first = setting
    .split(',')
    .map((p) => p.trim())
    .find((p) => S3_SEED_PROVIDERS.includes(p));
  if (first === 'CloudSeedProvider') return undefined;
  return first === undefined
    ? `dbms.databases.seed_from_uri_providers is "${setting}": no provider takes s3:// URIs`
    : `dbms.databases.seed_from_uri_providers is "${setting}": s3:// URIs go to the S3SeedProvider, the first in the list that takes them, which needs access keys in the command (seedCredentials) that a restore never sends`;
}

interface ServerFacts {
  version: string;
  /** `dbms.databases.seed_from_uri_providers`, or `undefined` when the server would not say. */
  seedProviders?: string;
}

/**
 * Reads what can be known before anything changes: edition, version, the seed providers setting.
 * @throws IncompatibleBackupError when the server is not Enterprise, or older than MIN_SEEDING_RELEASE
 * @throws Neo4jSeedError when s3:// seeds would not reach the CloudSeedProvider (seedProviderProblem),
 *   or, on 5.x, when the setting cannot be read (its default sends them to the S3SeedProvider)
 */
async function serverFacts(cypher: CypherSession, log: Logger): Promise<ServerFacts> {
  const [component] = await cypher.run(
    'system',
    'CALL dbms.components() YIELD versions, edition RETURN versions[0] AS version, edition',
  );
  const edition = String(component?.edition ?? 'unknown');
  const version = String(component?.version ?? 'unknown');
  if (edition !== 'enterprise')
    throw new IncompatibleBackupError(
      `the target's Neo4j is ${edition} ${version}: seeding a database from a URI is an Enterprise feature (Operations Manual, "Create a database from a URI")`,
    );
  if (!neo4jAtLeast(version, MIN_SEEDING_RELEASE))
    throw new IncompatibleBackupError(
      `the target's Neo4j is ${version}: seeding from a backup chain in S3 needs the CloudSeedProvider of Neo4j 5.26 or later (Operations Manual 5, "Create a database from a URI"); upgrade the target, or restore into a newer one`,
    );
  let seedProviders: string | undefined;
  let hidden = '';
  try {
    const [setting] = await cypher.run(
      'system',
      'SHOW SETTINGS YIELD name, value WHERE name = $name RETURN value',
      { name: 'dbms.databases.seed_from_uri_providers' },
    );
    // A user without the SHOW SETTING privilege on it is shown no row (Operations Manual, "DBMS
    // setting privileges": settings are listed as far as the privilege's name-globbing matches).
    if (setting) seedProviders = String(setting.value ?? '');
    else hidden = 'SHOW SETTINGS returned no row for it';
  } catch (err) {
    hidden = err instanceof Error ? err.message : String(err);
  }
  if (seedProviders === undefined) {
    // Unreadable: only the version's default can be judged.
    if (seedProviderProblem(defaultSeedProviders(version)))
      throw new Neo4jSeedError(
        `cannot read dbms.databases.seed_from_uri_providers (${hidden}), and on Neo4j ${version} its default sends s3:// seeds to the S3SeedProvider: grant the restore's user SHOW SETTING, and set the setting to "CloudSeedProvider" on every server; nothing was changed`,
      );
    log.warn(
      'could not read dbms.databases.seed_from_uri_providers: its default (CloudSeedProvider) is assumed',
      {
        error: hidden,
      },
    );
  }
  const problem = seedProviders === undefined ? undefined : seedProviderProblem(seedProviders);
  if (problem)
    throw new Neo4jSeedError(
      `the target's Neo4j cannot seed from the staged backup: ${problem}. Put CloudSeedProvider first (or alone) in dbms.databases.seed_from_uri_providers on every server (Operations Manual, "Create a database from a URI"); nothing was changed`,
    );
  return { version, ...(seedProviders !== undefined ? { seedProviders } : {}) };
}

/** Every member's status of `name` (`SHOW DATABASE`, one row per server hosting it). */
export async function memberStatuses(cypher: CypherSession, name: string): Promise<MemberStatus[]> {
  const rows = await cypher.run(
    'system',
    `SHOW DATABASE ${quotedName(name)} YIELD name, address, serverID, requestedStatus, currentStatus, statusMessage, lastStartTime, lastCommittedTxn RETURN address, serverID, requestedStatus, currentStatus, statusMessage, lastStartTime, lastCommittedTxn`,
  );
  return rows.map((r) => ({
    // A member whose server is unavailable reports no address: named by its server id then.
    address: r.address ? String(r.address) : `server ${String(r.serverID ?? 'unknown')} (no address)`,
    ...(r.serverID ? { serverId: String(r.serverID) } : {}),
    requestedStatus: String(r.requestedStatus ?? ''),
    currentStatus: String(r.currentStatus ?? ''),
    statusMessage: String(r.statusMessage ?? ''),
    ...(r.lastStartTime !== null && r.lastStartTime !== undefined
      ? { lastStartTime: String(r.lastStartTime) }
      : {}),
    ...(r.lastCommittedTxn !== null && r.lastCommittedTxn !== undefined
      ? { lastCommittedTxn: toNumber(r.lastCommittedTxn) }
      : {}),
  }));
}

const describeMembers = (members: MemberStatus[]) =>
  members
    .map(
      (m) =>
        `${m.address}: ${m.currentStatus || 'no status'}${m.statusMessage ? ` ("${m.statusMessage}")` : ''}`,
    )
    .join('; ');

/**
 * Waits until `name` is online on every member hosting it. `SHOW DATABASES` reports one row per
 * member; seeding downloads and validates the seed only as the database starts, and a failed seed
 * leaves it offline with a statusMessage such as "Unable to start database" (Operations Manual,
 * "Create a database from a URI"; "Monitor databases": currentStatus, requestedStatus,
 * statusMessage). A member whose currentStatus is not online while a statusMessage says why fails the
 * wait at once (after a recreate: once it has started again, or says something it did not say
 * before, so a database that was already failing is not judged on its old message); a member that stays offline or unknown without one (a server without AWS_REGION,
 * a member that is down) fails it when the bound runs out.
 *
 * @param timeoutMs the bound, in milliseconds
 * @param before the members' statuses before a recreate: each must have started again since
 * @returns the members' final statuses, all online
 * @throws Neo4jSeedError naming each member's status and message
 */
export async function waitSeededOnline(
  cypher: CypherSession,
  name: string,
  timeoutMs: number,
  pollMs = 5000,
  log?: Logger,
  before: readonly MemberStatus[] = [],
): Promise<MemberStatus[]> {
  const deadline = Date.now() + timeoutMs;
  // A recreated database is online again only once it has started since the call: the procedure
  // returns while the old store may still answer (Operations Manual, "Recreate a database": "verify
  // that all allocations have been started").
  // Keyed by server id: a member on a server that is down reports no address.
  const key = (m: MemberStatus) => m.serverId ?? m.address;
  const startedBefore = new Map(before.map((m) => [key(m), m.lastStartTime]));
  const restarted = (m: MemberStatus) =>
    !startedBefore.has(key(m)) ||
    (m.lastStartTime !== undefined && m.lastStartTime !== startedBefore.get(key(m)));
  // A member still showing the state it had before the recreate (a live database that was already
  // offline with "Unable to start database", the case the recreate exists for) has not answered the
  // recreate yet: its old message is no verdict on the seed. Its failure counts once it has started
  // again since the call, or reports a message it did not have before.
  const messageBefore = new Map(before.map((m) => [key(m), m.statusMessage]));
  const answered = (m: MemberStatus) => restarted(m) || (messageBefore.get(key(m)) ?? '') !== m.statusMessage;
  let members: MemberStatus[] = [];
  for (;;) {
    members = await memberStatuses(cypher, name);
    if (members.length > 0 && members.every((m) => m.currentStatus === 'online' && restarted(m)))
      return members;
    const failed = members.filter(
      (m) =>
        m.requestedStatus === 'online' &&
        m.statusMessage !== '' &&
        ['offline', 'quarantined', 'dirty'].includes(m.currentStatus) &&
        answered(m),
    );
    if (failed.length > 0) {
      throw new Neo4jSeedError(
        `database ${name} was created from the seed but is not online: ${describeMembers(members)}. The seed could not be downloaded or validated by the server(s) named; their debug.log says why (Operations Manual, "Create a database from a URI")`,
      );
    }
    if (Date.now() >= deadline) {
      const silent = members.filter((m) => m.currentStatus !== 'online');
      throw new Neo4jSeedError(
        `database ${name} was created from the seed but is not online on every member after ${Math.round(timeoutMs / 1000)} s: ${
          members.length ? describeMembers(members) : 'SHOW DATABASE lists no member hosting it'
        }.${
          silent.some((m) => m.currentStatus === 'offline' && m.statusMessage === '')
            ? " A database that stays offline without a message is what a server without AWS_REGION (or without access to the bucket) does: check the servers' region and IAM role."
            : ''
        }${silent.some((m) => m.currentStatus === 'unknown') ? ' A member reported "unknown" is unreachable: the database is not on every member.' : ''}`,
      );
    }
    log?.info('waiting for the seeded database to be online on every member', {
      database: name,
      members: describeMembers(members),
    });
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
  }
}

/**
 * Why the live database `name` must not be recreated now, from its members' `SHOW DATABASE` rows
 * (empty when it may). A quarantined member must be dealt with first (Operations Manual, "Recreate a
 * database": "Before recreating a database, any eventual quarantined states need to be addressed";
 * "Standard databases -> Error handling": lifted with `dbms.unquarantineDatabase` from 2025.01,
 * `dbms.quarantineDatabase(server, database, false)` before). A member on a server that is
 * unavailable (currentStatus `unknown`) could never be seen starting the seed: the recreate would
 * replace the data and then fail after the whole online wait. A live database that is merely offline
 * with a message (it no longer starts) is what the recreate is for, and passes.
 *
 * @param version the server's version (which quarantine procedure to name)
 * @returns one sentence per member that blocks the recreate
 */
export function recreateProblems(name: string, members: readonly MemberStatus[], version: string): string[] {
  const liftFor = (server: string) =>
    neo4jAtLeast(version, [2025, 1])
      ? `CALL dbms.unquarantineDatabase(${cypherString(server)}, ${cypherString(name)}, 'keepStateKeepStore')`
      : `CALL dbms.quarantineDatabase(${cypherString(server)}, ${cypherString(name)}, false)`;
  const problems: string[] = [];
  for (const m of members) {
    const lift = liftFor(m.serverId ?? '<server id>');
    // memberStatuses names a member without an address by its server id already.
    const who =
      m.serverId && !m.address.endsWith('(no address)') ? `${m.address} (server ${m.serverId})` : m.address;
    if (m.currentStatus === 'quarantined')
      problems.push(
        `member ${who} is quarantined${m.statusMessage ? ` ("${m.statusMessage}")` : ''}: lift the quarantine first (${lift}), as Neo4j requires before a recreate`,
      );
    else if (m.currentStatus === 'unknown')
      problems.push(
        `member ${who} is unknown (its server is unavailable): the recreate could not be proven on it; bring the server back or deallocate the database from it first`,
      );
  }
  return problems;
}

/** Node and relationship counts of `databases`, read through the Cypher session. */
export async function countsThrough(
  cypher: CypherSession,
  databases: readonly string[],
): Promise<Record<string, { nodes: number; relationships: number }>> {
  const counts: Record<string, { nodes: number; relationships: number }> = {};
  for (const db of databases) {
    const [n] = await cypher.run(db, 'MATCH (n) RETURN count(n) AS c');
    const [r] = await cypher.run(db, 'MATCH ()-[r]->() RETURN count(r) AS c');
    counts[db] = { nodes: toNumber(n?.c), relationships: toNumber(r?.c) };
  }
  return counts;
}

/**
 * Proves a seeded database equal to the backup. The backup records the transaction its chain
 * restores to (`last_committed_tx`, from `neo4j-admin database backup --inspect-path`: "if you
 * restore <artifact>, your database will have <HIGHEST TX> as the last transaction ID", Operations
 * Manual, "Restore a database backup"); every member's copy must end exactly there, and the counts
 * are then compared as counts_basis allows (strictly when taken at that transaction). A backup that
 * records no transaction (an older or imported one) is held to its counts strictly, whatever their
 * basis: then nothing else proves it.
 *
 * @throws RestoreValidationError when a member ends at another transaction, the counts differ, or
 *   the backup records neither a transaction nor counts
 */
async function proveSeeded(
  ctx: RestoreContext,
  cypher: CypherSession,
  manifest: Manifest,
  from: string,
  name: string,
  members: readonly MemberStatus[],
): Promise<GraphValidation> {
  const read = (dbs: string[]) => countsThrough(cypher, dbs);
  const backupTx = manifest.neo4j?.databases.find((d) => d.name === from)?.last_committed_tx;
  if (backupTx !== undefined) {
    const off = members.filter((m) => m.lastCommittedTxn !== backupTx);
    if (off.length > 0)
      throw new RestoreValidationError(
        `the seeded database ${name} does not end at the backup's last transaction ${backupTx}: ${off
          .map((m) => `${m.address} holds up to ${m.lastCommittedTxn ?? 'unknown'}`)
          .join('; ')}`,
      );
    const counted = await compareCounts(ctx, read, manifest, { [from]: name }, [from]);
    return {
      ...counted,
      validation: `ends at the backup's last transaction ${backupTx} on every member; ${counted.validation}`,
    };
  }
  if (!manifest.counts?.neo4j?.[from])
    throw new RestoreValidationError(
      `nothing proves the seeded database ${name} equal to the backup: it records neither the transaction its chain restores to nor counts of ${from}`,
    );
  return compareCounts(ctx, read, { ...manifest, counts_basis: undefined }, { [from]: name }, [from]);
}

interface StagedChain {
  database: string;
  prefix: string;
  seedUri: string;
  objects: Array<{ key: string; versionId?: string }>;
}

/**
 * Copies one database's chain into the staging prefix, every byte hashed on the way: an upload whose
 * SHA-256 or size differs from the manifest's is aborted before it completes (nothing half staged),
 * and the stored copy's S3 checksum is read back and compared with the one uploaded.
 *
 * @throws ManifestError when the manifest records no stored copy of a file
 * @throws RestoreValidationError when a file differs from the manifest, or the staged copy from the upload
 * @throws StorageError when S3 fails
 */
async function stageChain(
  ctx: RestoreContext & { restoreId: string },
  what: string,
  manifest: Manifest,
  database: string,
  files: readonly string[],
  verified: VerifiedFile[],
): Promise<StagedChain> {
  const prefix = seedStagingPrefix(ctx.target, ctx.restoreId, database);
  const objects: StagedChain['objects'] = [];
  let last = '';
  for (const file of files) {
    const { stored, sha256, size } = storedFile(manifest, what, file);
    const name = file.split('/').pop() as string;
    const key = `${prefix}${name}`;
    const hash = createHash('sha256');
    let bytes = 0;
    const body = await openObject(ctx.s3, ctx.bucket, stored.key, stored.version_id);
    const source = Readable.from(
      hashing(hash, (n) => {
        bytes += n;
      })(body as AsyncIterable<Buffer>),
    );
    const uploaded = await uploadStream(ctx.s3, source, {
      bucket: ctx.bucket,
      key,
      contentType: 'application/octet-stream',
      beforeComplete: async () => {
        const got = hash.digest('hex');
        if (got !== sha256 || (size !== undefined && bytes !== size)) {
          throw new RestoreValidationError(
            `s3://${ctx.bucket}/${stored.key} (${file}) does not match the manifest (SHA-256 ${got}, ${bytes} bytes; the manifest records ${sha256}${size !== undefined ? `, ${size} bytes` : ''}): nothing was staged or seeded`,
          );
        }
      },
    });
    const head = await headObject(ctx.s3, ctx.bucket, key);
    if (
      head?.checksumSHA256 !== undefined &&
      !sameS3Checksum(head.checksumSHA256, uploaded.s3ChecksumSHA256)
    ) {
      throw new RestoreValidationError(
        `the staged copy s3://${ctx.bucket}/${key} has S3 checksum ${head.checksumSHA256}, the upload ${uploaded.s3ChecksumSHA256}: nothing was seeded`,
      );
    }
    objects.push({ key, ...(uploaded.versionId ? { versionId: uploaded.versionId } : {}) });
    verified.push({ file, bytes, sha256 });
    last = name;
  }
  return { database, prefix, seedUri: `s3://${ctx.bucket}/${prefix}${last}`, objects };
}

/** Deletes the staged copies (their exact versions); reports whether every one went. */
async function removeStaged(ctx: RestoreContext, chains: StagedChain[], log: Logger): Promise<boolean> {
  let all = true;
  for (const { key, versionId } of chains.flatMap((c) => c.objects)) {
    try {
      await ctx.s3.send(
        new DeleteObjectCommand({
          Bucket: ctx.bucket,
          Key: key,
          ...(versionId ? { VersionId: versionId } : {}),
        }),
      );
    } catch (err) {
      all = false;
      log.warn('a staged seed could not be deleted; the bucket lifecycle rule removes it', {
        key,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  return all;
}

const seedOptions = (uri: string) => `{existingData: 'use', seedURI: ${cypherString(uri)}}`;

/**
 * Restores a Neo4j Enterprise backup by seeding (see the module docstring for the steps).
 *
 * @param ctx restore context; `restoreId` names the staging prefix
 * @param cypher administration and count queries against the target DBMS (`system` for administration)
 * @param manifest the backup's manifest: method `backup` (an Enterprise chain per database)
 * @param options mode, names, bounds (SeedOptions)
 * @returns what was seeded, where it is online, how it validated, and where the alias points
 * @throws ManifestError when the manifest holds no Enterprise backup or no stored copy of a file
 * @throws IncompatibleBackupError when the target is not Enterprise, too old for in-place seeding,
 *   or new-database would overwrite an existing database or alias
 * @throws Neo4jSeedError when the server has no S3 seed provider, or a seeded database does not come
 *   online on every member (statusMessage, or the bound)
 * @throws RestoreValidationError when a staged file or a seeded database's counts differ from the backup
 * @throws StorageError when S3 fails
 */
export async function restoreNeo4jSeeded(
  ctx: RestoreContext,
  cypher: CypherSession,
  manifest: Manifest,
  options: SeedOptions,
): Promise<SeededRestoreResult> {
  const started = Date.now();
  const log = ctx.logger.child({ component: 'database', step: 'restore', edition: 'enterprise' });
  const what = backupName(ctx);
  const restoreId = ctx.restoreId ?? `restore_${Date.now()}`;
  const recorded = manifest.neo4j;
  if (recorded?.method !== 'backup') {
    throw new ManifestError(
      `${what} holds no Enterprise backup to seed from (method ${recorded?.method ?? 'none'}); a Community dump loads into Community`,
    );
  }
  // `system` is never seeded: users, roles and the other databases' definitions stay the target's.
  const databases = recorded.databases.filter((db) => db.name !== 'system');
  if (databases.length === 0) throw new ManifestError(`${what} holds no user database to restore`);
  for (const db of databases)
    if (db.files.length === 0) throw new ManifestError(`${what} records no file for database ${db.name}`);
  if (options.mode === 'new-database' && (databases.length !== 1 || !options.newDatabaseName)) {
    throw new ManifestError(
      `mode "new-database" restores one database under a new name; ${what} holds ${databases.map((d) => d.name).join(', ')}`,
    );
  }

  // 1. Checks that change nothing.
  const facts = await serverFacts(cypher, log);
  const procedure = recreateProcedure(facts.version);
  const existing = new Set(
    (await cypher.run('system', 'SHOW DATABASES YIELD name RETURN DISTINCT name')).map((r) => String(r.name)),
  );
  const aliases = new Map(
    (await cypher.run('system', 'SHOW ALIASES FOR DATABASE YIELD name, database RETURN name, database')).map(
      (r) => [String(r.name), String(r.database)],
    ),
  );
  const alias = options.alias ?? 'infrahub';
  if (options.mode === 'new-database') {
    const name = options.newDatabaseName as string;
    if (existing.has(name) || aliases.has(name))
      throw new IncompatibleBackupError(
        `database ${name} already exists on the target: a new-database restore never replaces a database; choose another newDatabaseName or drop it first`,
      );
    if (existing.has(alias))
      throw new IncompatibleBackupError(
        `alias ${alias} is the name of a database on the target: an alias and a database never share a name in Neo4j`,
      );
  }
  if (options.mode === 'in-place') {
    for (const db of databases) {
      if (!existing.has(db.name)) continue;
      const problems = recreateProblems(db.name, await memberStatuses(cypher, db.name), facts.version);
      if (problems.length > 0)
        throw new IncompatibleBackupError(
          `database ${db.name} cannot be recreated safely, so nothing was changed: ${problems.join('; ')}`,
        );
    }
  }
  log.info('target checked: Enterprise, seeding possible', {
    version: facts.version,
    seedProviders: facts.seedProviders ?? 'not readable',
    procedure,
  });

  // 2. Stage every chain, every byte verified.
  const verified: VerifiedFile[] = [];
  const chains: StagedChain[] = [];
  for (const db of databases)
    chains.push(await stageChain({ ...ctx, restoreId }, what, manifest, db.name, db.files, verified));
  const verifiedBytes = verified.reduce((n, v) => n + v.bytes, 0);
  log.info('backup chains staged for seeding, each file equal to the manifest', {
    files: verified.length,
    verifiedBytes,
    prefix: chains[0]?.prefix,
  });

  /**
   * Seeds `name` from the staged chain (CREATE DATABASE, or the recreate procedure on a database
   * that exists), waits until it is online, started anew, on every member, and proves it equal to
   * the backup. `onCall` runs once the server has accepted the command.
   */
  const seed = async (from: string, name: string, seedUri: string, recreate: boolean, onCall = () => {}) => {
    const before = recreate ? await memberStatuses(cypher, name) : [];
    log.info(
      recreate ? 'recreating the database from the staged seed' : 'CREATE DATABASE from the staged seed',
      {
        database: name,
        seedUri,
        ...(recreate ? { procedure } : {}),
      },
    );
    if (recreate)
      await cypher.run('system', `CALL ${procedure}($name, {seedURI: $seedURI})`, { name, seedURI: seedUri });
    else await cypher.run('system', `CREATE DATABASE ${quotedName(name)} OPTIONS ${seedOptions(seedUri)}`);
    onCall();
    const members = await waitSeededOnline(
      cypher,
      name,
      options.onlineTimeoutMs,
      options.pollMs,
      log,
      before,
    );
    return { members, validation: await proveSeeded(ctx, cypher, manifest, from, name, members) };
  };

  const result: SeededDatabase[] = [];
  let rehearsal: SeededRestoreResult['rehearsal'];
  let aliasMove: SeededRestoreResult['alias'];
  if (options.mode === 'new-database') {
    // 3. Blue/green: the alias moves only to a database proven equal to the backup.
    const chain = chains[0] as StagedChain;
    const name = options.newDatabaseName as string;
    let created = false;
    const { members, validation } = await seed(chain.database, name, chain.seedUri, false, () => {
      created = true;
    }).catch((err: unknown) => {
      // The alias was not moved; the new database stays for investigation and blocks its name.
      if (created && err instanceof Error)
        err.message = `${err.message}. The alias ${alias} was not moved. Database ${name} is left on the server for investigation: drop it (DROP DATABASE ${quotedName(name)}) before restoring under that name again`;
      throw err;
    });
    result.push({ from: chain.database, name, seedUri: chain.seedUri, how: 'created', members, validation });
    const previous = aliases.get(alias);
    await cypher.run(
      'system',
      `CREATE OR REPLACE ALIAS ${quotedName(alias)} FOR DATABASE ${quotedName(name)}`,
    );
    const now = (
      await cypher.run(
        'system',
        'SHOW ALIASES FOR DATABASE YIELD name, database WHERE name = $alias RETURN database',
        {
          alias,
        },
      )
    )[0]?.database;
    if (String(now) !== name)
      throw new Neo4jSeedError(
        `alias ${alias} should point to ${name} after CREATE OR REPLACE ALIAS, but points to ${String(now)}`,
      );
    aliasMove = { name: alias, database: name, ...(previous ? { previous } : {}) };
    log.info('alias moved to the validated database; the previous one is kept', {
      alias,
      database: name,
      previous: previous ?? 'none',
    });
  } else {
    // 4. In place: each chain rehearsed on a throwaway database, then the live ones replaced.
    if (options.rehearse ?? true) {
      const t0 = Date.now();
      const suffix = restoreId.replace(/[^a-z0-9]/g, '').slice(-20);
      const names: string[] = [];
      const left: string[] = [];
      let members: MemberStatus[] = [];
      for (const [i, chain] of chains.entries()) {
        const name = `seedcheck-${i + 1}-${suffix}`;
        names.push(name);
        let failure: unknown;
        try {
          ({ members } = await seed(chain.database, name, chain.seedUri, false));
        } catch (err) {
          failure = err;
        }
        const dropped = await cypher.run('system', `DROP DATABASE ${quotedName(name)} IF EXISTS`).then(
          () => true,
          (err: unknown) => {
            left.push(name);
            log.warn('the rehearsal database could not be dropped: drop it by hand', {
              database: name,
              error: err instanceof Error ? err.message : String(err),
            });
            return false;
          },
        );
        if (failure !== undefined) {
          if (failure instanceof Error)
            failure.message = `rehearsal (the live database is untouched): ${failure.message}${
              dropped
                ? ''
                : `. The rehearsal database ${name} could not be dropped and is still on the server: drop it (DROP DATABASE ${quotedName(name)})`
            }`;
          throw failure;
        }
      }
      rehearsal = {
        name: names.join(', '),
        members,
        seconds: Math.round((Date.now() - t0) / 100) / 10,
        ...(left.length > 0 ? { notDropped: left } : {}),
      };
      log.info('rehearsal passed: the servers seed from the bucket and the data validates', rehearsal);
    }
    const replaced: string[] = [];
    for (const chain of chains) {
      const name = chain.database;
      const recreate = existing.has(name);
      let accepted = false;
      try {
        const { members, validation } = await seed(name, name, chain.seedUri, recreate, () => {
          accepted = true;
          // A stop from here on (ECS stopping the task) must say the live database was replaced.
          noteTargetState(
            `The live database ${name} had been ${recreate ? 'replaced' : 'created'} from the backup's seed before this, and is not proven equal to the backup yet.${provenSentence(replaced)} Restore again.`,
          );
        });
        result.push({
          from: name,
          name,
          seedUri: chain.seedUri,
          how: recreate ? 'recreated' : 'created',
          members,
          validation,
        });
        replaced.push(name);
        noteTargetState(
          `The live database(s) ${replaced.join(', ')} had been seeded from the backup and proven equal to it before this.`,
        );
      } catch (err) {
        if (err instanceof Error) {
          // Its own words say what of the target changed: not said twice (withTargetState).
          describesTarget(err);
          const before = provenSentence(replaced);
          err.message = accepted
            ? `the live database ${name} was replaced from the seed and is not proven equal to the backup: ${err.message}.${before} Restore again once the cause is fixed; the seed the servers were given stays under s3://${ctx.bucket}/${chain.prefix} for investigation (removed by the bucket's lifecycle rule after two days)`
            : `the server refused to ${recreate ? 'recreate' : 'create'} ${name} from the seed, so it is untouched: ${err.message}.${before}`;
        }
        throw err;
      }
    }
  }

  // 5. The staged copies are no longer needed once every database is online and validated.
  const removed = options.removeStaged === false ? false : await removeStaged(ctx, chains, log);
  return {
    component: 'database',
    edition: 'enterprise',
    mode: options.mode,
    server: { version: facts.version },
    databases: result,
    ...(rehearsal ? { rehearsal } : {}),
    ...(aliasMove ? { alias: aliasMove } : {}),
    verified,
    verifiedBytes,
    staged: { prefix: chains[0]?.prefix ?? '', removed },
    system: recorded.databases.some((db) => db.name === 'system') ? 'kept' : 'not-in-backup',
    durationMs: Date.now() - started,
  };
}

/** A sentence naming the live databases already seeded from this backup and proven, or ''. */
const provenSentence = (replaced: readonly string[]) =>
  replaced.length ? ` Already replaced from this backup and proven: ${replaced.join(', ')}.` : '';
