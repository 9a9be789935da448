/**
 * The deployment configuration: one zod schema for everything `cdk deploy` needs to know about the
 * Infrahub deployments it protects. Objects are strict, so a misspelt key (or a `password` pasted
 * where a secret *name* belongs) is an error rather than silently ignored.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import {
  ARCHIVE_STORAGE_CLASSES,
  ColdStorageClasses,
  coldStorageProblems,
  RetentionClasses,
} from '../backup/retention.js';
import { InvalidInputError } from '../errors.js';
import { Neo4jDatabaseNameSchema } from '../neo4j-names.js';
import {
  canonicalTimeZone,
  isTimeZone,
  normalizeScheduleExpression,
  parseScheduleExpression,
  ScheduleSyntaxError,
} from './schedule.js';
import {
  DEFAULT_HEARTBEAT_SECONDS,
  DRILL_FLEET_DEFAULT_CONCURRENCY,
  fleetBoundProblem,
  RunnerTimeoutsSchema,
} from './timeouts.js';

/** AWS region code such as `eu-west-1` or `us-gov-west-1`. */
const awsRegion = z
  .string()
  .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region code such as "eu-west-1"');

/**
 * The one validator for path-like and name-like fields: a value that reaches S3 keys, file paths,
 * ECS or Secrets Manager names must not climb out of where it is put. Refuses "." and ".." segments
 * (so "../" anywhere), empty segments ("//"), control characters and backslashes, then checks
 * `pattern` (the field's own allowed characters). Each message names the problem; zod adds the field.
 */
export function safeName(pattern: RegExp, message: string, options: { segments?: boolean } = {}) {
  return z.string().superRefine((value, ctx) => {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    if (/[\u0000-\u001f\u007f\\]/.test(value)) {
      ctx.addIssue({ code: 'custom', message: 'must not contain control characters or "\\"' });
      return;
    }
    if (options.segments !== false) {
      const segments = value.split('/');
      // ":" too: the name inside an ARN ("...:secret:../x") is a segment of its own.
      if (value.split(/[/:]/).some((seg) => seg === '.' || seg === '..')) {
        ctx.addIssue({
          code: 'custom',
          message: `must not contain "." or ".." path segments (got "${value}")`,
        });
        return;
      }
      if (segments.slice(1, -1).some((seg) => seg === '')) {
        ctx.addIssue({
          code: 'custom',
          message: `must not contain empty path segments ("//") (got "${value}")`,
        });
        return;
      }
    }
    if (!pattern.test(value)) ctx.addIssue({ code: 'custom', message });
  });
}

/** A target name becomes part of S3 keys, resource names and lock keys, so it is a DNS-like slug. */
export const targetName = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,38}[a-z0-9]$/,
    'must be 2-40 characters of lowercase letters, digits and "-", starting with a letter and not ending with "-"',
  );

/** "null", "an array", "the string \"x…\"" (bounded): what a refused value is, for messages. */
export function describeGot(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return value.length > 40
      ? `a string of ${value.length} characters`
      : `the string ${JSON.stringify(value)}`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The message for a target selection that is neither "*" nor a list (a union: zod says only "Invalid input"). */
const TARGETS_SELECTION_MESSAGE = (input: unknown) =>
  `must be "*" (every configured target) or a list of target names such as ["infrahub-prod"], got ${describeGot(input)}`;

/**
 * Which targets a schedule or an execution works on: "*" for every configured target, or a list of
 * 1..`max` target names. Anything else is refused saying what is expected and what it got.
 */
export function targetSelection(max?: { count: number; message: string }) {
  const names = z.array(targetName).min(1, 'must name at least one target');
  // A target named twice would be backed up (or drilled) twice at once, and a drill schedule's
  // per-target schedules would share one name (a failed deploy).
  const list = (max ? names.max(max.count, max.message) : names).superRefine((targets, ctx) => {
    targets.forEach((t, i) => {
      if (targets.indexOf(t) !== i)
        ctx.addIssue({ code: 'custom', path: [i], message: `names target "${t}" a second time` });
    });
  });
  return z.union([z.literal('*'), list], {
    error: (issue) => TARGETS_SELECTION_MESSAGE(issue.input),
  });
}

/**
 * A Secrets Manager secret, by name or ARN. Only the reference lives in configuration; the values
 * reach the runner as ECS secrets and never appear in configuration, execution input or logs.
 * Names (Secrets Manager API reference, CreateSecret `Name`): 1-512 ASCII letters, digits and
 * `/_+=.@-`; here without "." or ".." segments. ARNs: the complete ARN, ending in the name and the
 * "-" plus six characters Secrets Manager appends (the CDK app imports it with fromSecretCompleteArn).
 */
const secretRefPattern = safeName(
  /^(arn:aws(-[a-z]+)*:secretsmanager:[a-z]{2}(-[a-z]+)+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}-[A-Za-z0-9]{6}|[A-Za-z0-9/_+=.@-]{1,512})$/,
  'must be a Secrets Manager secret name or ARN: a name of 1-512 ASCII letters, digits and "/_+=.@-", or a complete secret ARN (the secret itself never goes in the configuration)',
);
export const secretRef = z.string().superRefine((value, ctx) => {
  // An ARN without the "-" and six characters Secrets Manager appends (a partial ARN) is named as such.
  const partial =
    /^arn:aws(-[a-z]+)*:secretsmanager:[a-z]{2}(-[a-z]+)+-\d:\d{12}:secret:([A-Za-z0-9/_+=.@-]{1,512})$/.exec(
      value,
    );
  if (partial && !/-[A-Za-z0-9]{6}$/.test(partial[3] ?? '')) {
    ctx.addIssue({
      code: 'custom',
      message:
        'is a partial secret ARN: a complete ARN ends in "-" and the six characters Secrets Manager appends to the name (such as "...:secret:infrahub-prod/neo4j-AbCdEf"); copy the ARN from the console, or give the secret\'s name instead',
    });
    return;
  }
  const result = secretRefPattern.safeParse(value);
  if (!result.success) {
    for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', message: issue.message });
    return;
  }
  if (!value.startsWith('arn:') && AMBIGUOUS_SECRET_NAME.test(value)) {
    ctx.addIssue({
      code: 'custom',
      message: `is a secret name ending in "-" and six characters ("${value.slice(-7)}"), which Secrets Manager reads as the suffix of a complete ARN, so ECS could not find the secret from the name; give the secret's complete ARN instead (it ends in "-" and the six characters Secrets Manager appended, such as "arn:aws:secretsmanager:eu-west-1:123456789012:secret:${value}-AbCdEf")`,
    });
  }
});

/**
 * A secret name that ends like the suffix of a complete ARN ("-" and six letters or digits). The
 * stack refers to a secret given by name through its partial ARN (CDK fromSecretNameV2; ECS secrets
 * need an ARN), and Secrets Manager takes a partial ARN whose name ends like this for a complete one
 * and fails to find it (Secrets Manager User Guide, "Find secrets from a partial ARN"). Such names
 * must be given as complete ARNs.
 */
export const AMBIGUOUS_SECRET_NAME = /-[A-Za-z0-9]{6}$/;

/**
 * A customer-managed KMS key, by key ARN (`arn:aws:kms:<region>:<account>:key/<key id>`): what IAM
 * policies name (an alias ARN does not authorize use of the key it points to).
 */
export const kmsKeyArn = z
  .string()
  .regex(
    /^arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key\/(mrk-)?[0-9a-f-]{32,36}$/,
    'must be a KMS key ARN such as "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" (not an alias)',
  );

const port = z.number().int().min(1).max(65535);

/** An ECS cluster or service, by name (1-255 letters, digits, "-", "_") or ARN. */
const ecsName = (what: 'cluster' | 'service') =>
  safeName(
    /^([A-Za-z0-9_-]{1,255}|arn:aws(-[a-z]+)*:ecs:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[a-z]+\/[A-Za-z0-9_/-]{1,512})$/,
    `must be an ECS ${what} name (letters, digits, "-" and "_") or ARN`,
  );

const efsFileSystemId = z
  .string()
  .regex(/^fs-[0-9a-f]{8,17}$/, 'must be an EFS file system id such as "fs-0123abcd"');

/**
 * An absolute path (a mount point, a directory on an EFS file system): "/" or "/"-separated segments
 * of letters, digits and "._-+@=,~", no trailing "/", no "." or ".." segments.
 */
/**
 * Where the runner mounts a Community target's store (the neo4j image's data directory); the runner
 * construct (infra/constructs/backup-runner.ts NEO4J_DATA_MOUNT) mounts it here.
 */
export const RUNNER_NEO4J_DATA_MOUNT = '/data';

/**
 * Why an artifact storage mount point would hide what the runner needs, or undefined: `/` covers the
 * whole image, and `/data` (or below it) covers a Community target's store, mounted there for the dump.
 */
export function artifactsMountProblem(path: string): string | undefined {
  if (path === '/') return 'must not be "/": the mount would hide the whole runner image';
  if (path === RUNNER_NEO4J_DATA_MOUNT || path.startsWith(`${RUNNER_NEO4J_DATA_MOUNT}/`))
    return `must not be ${RUNNER_NEO4J_DATA_MOUNT} or below it: the runner mounts a Community target's Neo4j store there`;
  return undefined;
}

/** Why a path cannot be an EFS access point's root directory (at most 100 characters, 4 levels), or undefined. */
export function accessPointRootProblem(path: string): string | undefined {
  const levels = path.split('/').filter(Boolean).length;
  if (path.length > 100)
    return `is ${path.length} characters long; an EFS access point's root directory (posixUser) holds at most 100`;
  if (levels > 4)
    return `has ${levels} directory levels; an EFS access point's root directory (posixUser) has at most 4`;
  return undefined;
}

const absolutePath = safeName(
  /^(\/|(\/[A-Za-z0-9._+@=,~-]+)+)$/,
  'must be an absolute path ("/" then segments of letters, digits and "._-+@=,~") without a trailing "/"',
);

/**
 * Why `h` is not a host name, IPv4 address or IPv6 literal (`fd00::1`, without brackets) written
 * without scheme, port or trailing dot, or undefined when it is one. A name whose last label is a
 * number (`127.1`, `999.1.1.1`, `010.0.0.1`, `0x7f.0.0.1`) is an IPv4 address to the WHATWG URL
 * parser that Node's fetch and the SDK use ("ends in a number", https://url.spec.whatwg.org/#host-parsing:
 * `010` is octal there, `127.1` is 127.0.0.1), so it must be an address in dotted-decimal form, four
 * numbers 0-255 without leading zeros, or it would name another host than it seems to (and another
 * backup member than its dotted spelling). An IPv4-mapped IPv6 address (`::ffff:10.0.0.5`) is
 * refused for the same reason: write the IPv4 address.
 */
export function hostProblem(h: string): string | undefined {
  if (isIPv6(h)) {
    if (h.includes('%'))
      return `has a zone id (${h.slice(h.indexOf('%'))}), which a URL, a Bolt address or neo4j-admin's --from cannot carry`;
    const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(new URL(`http://[${h}]`).hostname);
    if (!mapped) return undefined;
    const [high, low] = [Number.parseInt(mapped[1] as string, 16), Number.parseInt(mapped[2] as string, 16)];
    return `is an IPv4-mapped IPv6 address: write the IPv4 address it maps, ${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  if (h.endsWith('.') && h.length > 1)
    return 'ends with "."; write the name without the trailing dot (the certificate and the member list use that spelling)';
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(h))
    return 'must be a host name, IPv4 address or IPv6 address (such as "fd00::1", without brackets), without scheme or port';
  if (h.includes('..')) return 'must be a host name or IP address (no empty labels "..")';
  const last = h.slice(h.lastIndexOf('.') + 1);
  if (/^(\d+|0[xX][0-9A-Fa-f]*)$/.test(last) && !isIPv4(h))
    return 'ends in a number, so it is read as an IPv4 address, but it is not one in dotted-decimal form (four numbers 0-255 without leading zeros, such as "10.0.0.5")';
  return undefined;
}

/** A host name, IPv4 address or IPv6 literal (`fd00::1`, without brackets), without scheme or port (hostProblem). */
const host = z.string().superRefine((h, ctx) => {
  const problem = hostProblem(h);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Neo4j 5.x (for example 5.26.26) or calendar versions 2025.x / 2026.x (for example 2025.10.1). */
const neo4jVersion = z
  .string()
  .regex(/^(5\.\d+\.\d+|20\d{2}\.\d{2}\.\d+)$/, 'must be a Neo4j version such as "5.26.26" or "2025.10.1"');

/** Neo4j's naming rules for databases: one rule, shared with manifests and the runner (core/backup/layout.ts). */
const neo4jDatabaseName = Neo4jDatabaseNameSchema;

/** `host:port` as Neo4j's tools and URIs write it: an IPv6 address in brackets (`[fd00::1]:6362`). */
export function hostPortOf(address: string, port: number): string {
  return `${isIPv6(address) ? `[${address}]` : address}:${port}`;
}

/**
 * The member a `host:port` names, in one spelling (host name lower-cased; an IPv6 address in its
 * shortest form, as the WHATWG URL parser writes it: `[fd00:0::1]` and `[FD00::1]` are `[fd00::1]`),
 * or undefined when it is not a host:port: a DNS name or IPv4 address, or an IPv6 address in
 * brackets without a zone id (`%eth0`, which a URL or `--from` cannot carry), and a port 1-65535.
 * One rule for the configuration and the runner (NEO4J_BACKUP_FROM).
 */
export function canonicalHostPort(value: string): string | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined)
    return isIPv6(m[1]) && hostProblem(m[1]) === undefined
      ? `${new URL(`http://[${m[1]}]`).hostname}:${port}`
      : undefined;
  return hostProblem(m[2] as string) === undefined ? `${(m[2] as string).toLowerCase()}:${port}` : undefined;
}

/** `host:port` of a Neo4j member's backup listener (`[fd00::1]:6362` for IPv6); a bad host is named by hostProblem. */
const hostPort = z.string().superRefine((value, ctx) => {
  if (canonicalHostPort(value) !== undefined) return;
  const host = /^(?:\[([^\]]*)\]|([^:]*)):\d{1,5}$/.exec(value);
  const problem = host ? hostProblem((host[1] ?? host[2]) as string) : undefined;
  ctx.addIssue({
    code: 'custom',
    message: problem
      ? `has the host "${host?.[1] ?? host?.[2]}", which ${problem}`
      : 'must be host:port such as "neo4j-1.internal:6362" (an IPv6 address in brackets, without a zone id: "[fd00::1]:6362")',
  });
});

/**
 * An IAM role ARN (`arn:aws:iam::123456789012:role/name`, with an optional path `/a/b/`): the name is
 * 1-64 of letters, digits and `+=,.@_-`, a path segment the same characters (IAM User Guide, "IAM
 * identifiers" and "IAM and AWS STS quotas": role names 64 characters, paths 512).
 */
const iamRoleArn = z.string().superRefine((arn, ctx) => {
  const m = /^arn:aws[a-z-]*:iam::\d{12}:role(\/(?:[\w+=,.@-]+\/)*)([\w+=,.@-]{1,64})$/.exec(arn);
  if (!m)
    ctx.addIssue({
      code: 'custom',
      message:
        'must be an IAM role ARN such as "arn:aws:iam::123456789012:role/neo4j-server" (an optional path "/a/b/" before the name, no empty segment; the name 1-64 characters)',
    });
  else if ((m[1] as string).length > 512)
    ctx.addIssue({
      code: 'custom',
      message: `has a path of ${(m[1] as string).length} characters; IAM allows 512`,
    });
});

/**
 * The CA rules shared by `neo4j.tls` and `postgres.tls`: `ca` or `caSecret`, not both, and either
 * only with mode `verify-full` (the other modes do not verify the certificate).
 */
function tlsCaProblems(
  tls: { mode: string; ca?: string | undefined; caSecret?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if (tls.ca !== undefined && tls.caSecret !== undefined)
    ctx.addIssue({ code: 'custom', path: ['caSecret'], message: 'give either ca or caSecret, not both' });
  if (tls.mode !== 'verify-full')
    for (const field of ['ca', 'caSecret'] as const)
      if (tls[field] !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: `is used by mode "verify-full" only; mode "${tls.mode}" does not verify the server's certificate`,
        });
}

/**
 * TLS of every Bolt connection to the target's Neo4j (the runner's counts, restores and validation,
 * the DBMS readiness Lambda). Modes as PostgreSQL's: `verify-full` (default; `bolt+s`: encrypted,
 * the certificate chain verified against `ca`/`caSecret` or the system trust store, the host name
 * checked), `require` (`bolt+ssc`: encrypted, any certificate accepted) and `disable` (plain Bolt:
 * the credentials travel in the clear, so this must be said explicitly). The server side is
 * `dbms.ssl.policy.bolt.*` with `server.bolt.tls_level=REQUIRED` (Neo4j Operations Manual, "SSL
 * framework"). `ca`: the absolute path of a PEM bundle inside the runner image; `caSecret`: a
 * Secrets Manager secret whose value is the PEM text (the runner and the Lambdas read it).
 */
export const Neo4jTlsSchema = z
  .strictObject({
    mode: z.enum(['disable', 'require', 'verify-full']).default('verify-full'),
    ca: absolutePath.optional(),
    caSecret: secretRef.optional(),
  })
  .superRefine(tlsCaProblems);
export type Neo4jTlsConfig = z.output<typeof Neo4jTlsSchema>;

/**
 * Enterprise restores seed databases from the backup bucket (Neo4j Operations Manual, "Create a
 * database from a URI", CloudSeedProvider): the runner stages the verified backup chain under
 * `.restore-seeds/<target>/<restore id>/` of the backup bucket and the Neo4j servers download it
 * themselves, with their own IAM role and region.
 */
export const Neo4jSeedSchema = z.strictObject({
  /**
   * The IAM roles the Neo4j servers run as: the bucket policy lets them list and read the staged
   * seeds, and the backup key's policy lets them decrypt through S3. Empty: grant it yourself.
   */
  serverRoleArns: z
    .array(iamRoleArn)
    .default([])
    .refine((arns) => new Set(arns).size === arns.length, 'must not name a role twice'),
  /**
   * How long a seeded database may take to be online on every member that hosts it (seconds), per
   * wait. An in-place restore with `rehearse` waits twice per database (its throwaway copy, then the
   * live one), so N databases may wait up to 2N times this; the restore step's own timeout ends
   * whatever exceeds it (the restore task fails, naming the step). At most 5 hours.
   */
  onlineTimeoutSeconds: z.number().int().min(30).max(18_000).default(3600),
  /**
   * In-place restores: seed and validate a throwaway database from the same staged chain first, so
   * the live database is replaced only once seeding is proven to work (seed provider, IAM, region).
   */
  rehearse: z.boolean().default(true),
});
export type Neo4jSeedConfig = z.output<typeof Neo4jSeedSchema>;

/**
 * Enterprise differential backups: a task's disk is empty at every run, so the previous backup's
 * chain is fetched from the bucket (verified against its manifest) as the base of a differential
 * backup; a full backup is taken when there is none, or after `maxDifferentials` differentials.
 */
export const Neo4jBackupChainSchema = z.strictObject({
  base: z.enum(['previous-backup', 'none']).default('previous-backup'),
  maxDifferentials: z.number().int().min(0).max(100).default(6),
});

export const Neo4jTargetSchema = z
  .strictObject({
    host,
    boltPort: port.default(7687),
    /** The online-backup listener (Enterprise only). Neo4j binds it to 127.0.0.1:6362 unless told otherwise. */
    backupPort: port.default(6362),
    edition: z.enum(['community', 'enterprise']),
    version: neo4jVersion,
    databases: z
      .array(neo4jDatabaseName)
      .min(1, 'must name at least one database')
      .default(['neo4j', 'system'])
      .refine((dbs) => new Set(dbs).size === dbs.length, 'must not name a database twice'),
    credentialsSecret: secretRef,
    /** TLS of every Bolt connection (Neo4jTlsSchema); default verify-full. */
    tls: Neo4jTlsSchema.prefault({}),
    /**
     * Enterprise cluster: the backup listeners of the members, tried in order by `neo4j-admin
     * database backup --from=a:6362,b:6362` (Operations Manual, "Back up an online database",
     * Targeting multiple servers). Default: `host:backupPort` alone.
     */
    backupFrom: z
      .array(hostPort)
      .min(1, 'must name at least one member')
      // Host names are case-insensitive: "A:6362" and "a:6362" are one member.
      .refine(
        (m) => new Set(m.map((a) => canonicalHostPort(a) ?? a)).size === m.length,
        'must not name a member twice (also not in another spelling)',
      )
      .optional(),
    /**
     * Enterprise, and required there: the licence agreement the deployment runs under. Neo4j 5.4 and
     * later refuse to start Enterprise until it is accepted (Operations Manual, "Linux installation":
     * `neo4j-admin server license --accept-commercial` or `--accept-evaluation`); drills accept it for
     * their disposable server.
     */
    licence: z.enum(['commercial', 'evaluation']).optional(),
    /**
     * Enterprise: how restores seed databases from the bucket (Neo4jSeedSchema; its defaults when
     * left out, refused on Community, whose restores never seed).
     */
    seed: Neo4jSeedSchema.optional(),
    /** Enterprise: where differential backups find their base (Neo4jBackupChainSchema; as `seed`). */
    backupChain: Neo4jBackupChainSchema.optional(),
    /**
     * How long a step that needs the DBMS (counts, validation, the Enterprise online steps) waits for
     * it to answer with its databases online before failing DatabaseUnreachable (seconds).
     */
    readyTimeoutSeconds: z.number().int().min(1).max(3600).default(300),
    /**
     * Community only, and required there: its dump is offline, so the backup stops the DBMS by scaling
     * its ECS service to zero, dumps the store from the EFS file system the service keeps it on, and
     * scales the service back to its previous count, also when the dump fails.
     */
    dbms: z
      .strictObject({
        cluster: ecsName('cluster'),
        service: ecsName('service'),
        dataEfsFileSystemId: efsFileSystemId,
        /** The directory on that file system that Neo4j mounts as /data. */
        dataRootDirectory: absolutePath.default('/'),
      })
      .optional(),
    /**
     * Community only: what the dump reads, and so how long the DBMS (and Infrahub with it) is down.
     * `copy` (the default when left out): the stopped store is copied to the runner task's disk, the
     * DBMS started again, and the copy counted and dumped while the DBMS serves: the downtime is the
     * copy's. `store`: the store is dumped in place, the DBMS stopped for the whole dump. A copy that
     * would not fit the task's disk (sized from timeouts.dataSizeGiB) is dumped in place too.
     */
    dumpFrom: z.enum(['copy', 'store']).optional(),
    /**
     * Community only: how a restore loads the verified dumps into the stopped store. `staged` (the
     * default when left out): each dump loaded under a name of its own beside the target's store and
     * swapped in once every one loaded, so any failure before the swap leaves the target as it was; it
     * needs room for a second store (without it the load falls back to in place). `in-place`: loaded
     * over the target's databases (`neo4j-admin database load --overwrite-destination`) once every file
     * is downloaded and verified: no second store written, but a load that fails part-way leaves the
     * target to be restored again. The restore report's `load` says which ran, and why.
     */
    restoreLoad: z.enum(['staged', 'in-place']).optional(),
  })
  .superRefine((neo4j, ctx) => {
    // A backup's `database` component must hold Infrahub's graph: a manifest whose only database is
    // `system` is refused (core/backup/manifest.ts), so such a target could never complete a backup,
    // and would find out only after stopping the DBMS (Community). Neo4j Community serves one standard
    // database besides `system` (Neo4j Operations Manual, "Editions"; communityLoadProblem in
    // core/restore/plan.ts): a backup of more could never be restored or drilled.
    const users = neo4j.databases.filter((name) => name !== 'system');
    if (users.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['databases'],
        message:
          'must name a database besides system (Infrahub\'s graph, usually "neo4j"): a backup of system alone holds no graph and is refused when its manifest is written',
      });
    } else if (neo4j.edition === 'community' && users.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['databases'],
        message: `names ${users.length} databases besides system (${users.join(', ')}), but Neo4j Community serves one: name the one Infrahub uses (usually "neo4j"), with system if wanted`,
      });
    }
    if (neo4j.edition === 'community' && !neo4j.dbms) {
      ctx.addIssue({
        code: 'custom',
        path: ['dbms'],
        message:
          'is required for a Community target: its dump is offline, so the backup must know the ECS service to stop (cluster, service) and the EFS file system with its store (dataEfsFileSystemId)',
      });
    }
    if (neo4j.edition === 'enterprise' && !neo4j.licence) {
      ctx.addIssue({
        code: 'custom',
        path: ['licence'],
        message:
          'is required for an Enterprise target: "commercial" or "evaluation", the agreement the deployment accepted (Neo4j 5.4+ refuses to start Enterprise until one is accepted, and drills start a disposable Enterprise server)',
      });
    }
    if (neo4j.edition === 'community') {
      if (neo4j.licence)
        ctx.addIssue({
          code: 'custom',
          path: ['licence'],
          message: 'is for Enterprise targets only: Community needs no licence agreement',
        });
      if (neo4j.backupFrom)
        ctx.addIssue({
          code: 'custom',
          path: ['backupFrom'],
          message:
            'is for Enterprise targets only: a Community backup is an offline dump of the stopped DBMS',
        });
      if (neo4j.seed !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['seed'],
          message:
            'is for Enterprise targets only: a Community restore loads a dump into the stopped DBMS; no server seeds from the bucket (remove "seed")',
        });
      if (neo4j.backupChain !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['backupChain'],
          message:
            'is for Enterprise targets only: a Community backup is a full offline dump every time, with no differential chain (remove "backupChain")',
        });
    }
    if (neo4j.edition === 'enterprise' && neo4j.dbms) {
      ctx.addIssue({
        code: 'custom',
        path: ['dbms'],
        message: 'is for Community targets only: an Enterprise backup is online and never stops the DBMS',
      });
    }
    if (neo4j.edition === 'enterprise' && neo4j.restoreLoad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['restoreLoad'],
        message:
          'is for Community targets only: an Enterprise restore seeds its databases online, with no stopped store to load into (remove "restoreLoad")',
      });
    }
    if (neo4j.edition === 'enterprise' && neo4j.dumpFrom !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['dumpFrom'],
        message:
          'is for Community targets only: an Enterprise backup is online, with no stopped store to copy or dump (remove "dumpFrom")',
      });
    }
  })
  // Enterprise: the defaults where left out. Community: none (refused above), so the parsed
  // configuration parses again unchanged (the Lambdas re-read the bundled, parsed file).
  .transform((neo4j) =>
    neo4j.edition === 'enterprise'
      ? {
          ...neo4j,
          edition: 'enterprise' as const,
          seed: neo4j.seed ?? Neo4jSeedSchema.parse({}),
          backupChain: neo4j.backupChain ?? Neo4jBackupChainSchema.parse({}),
        }
      : { ...neo4j, edition: 'community' as const, seed: undefined, backupChain: undefined },
  );

/**
 * TLS to the target's PostgreSQL, for every connection the runner makes (node-postgres and libpq's
 * pg_dump / pg_restore alike; core/readiness/postgres-tls.ts). Modes as libpq's sslmode (PostgreSQL
 * 15 docs, "SSL Support", https://www.postgresql.org/docs/15/libpq-ssl.html): `disable` (no TLS),
 * `require` (encrypted, the certificate not verified), `verify-full` (default: the chain verified
 * against the CA bundle and the host name checked against the certificate). The CA bundle, for
 * verify-full only: `ca`, `"rds"` (the default: the Amazon RDS global bundle the runner image carries)
 * or an absolute path of a PEM file inside the runner image; or `caSecret`, a Secrets Manager secret
 * whose value is the PEM text (injected as an ECS secret). RDS for PostgreSQL 15 and later requires
 * TLS by default (rds.force_ssl = 1; RDS User Guide, "Using SSL with a PostgreSQL DB instance").
 */
export const PostgresTlsSchema = z
  .strictObject({
    mode: z.enum(['disable', 'require', 'verify-full']).default('verify-full'),
    ca: z
      .string()
      .superRefine((value, ctx) => {
        if (value === 'rds') return;
        const path = absolutePath.safeParse(value);
        if (!path.success)
          ctx.addIssue({
            code: 'custom',
            message: `must be "rds" (the Amazon RDS global CA bundle in the runner image) or the absolute path of a PEM file in the runner image: ${path.error.issues[0]?.message}`,
          });
      })
      .optional(),
    caSecret: secretRef.optional(),
  })
  .superRefine(tlsCaProblems)
  // verify-full without a bundle trusts the Amazon RDS one.
  .transform((tls) =>
    tls.mode === 'verify-full' && tls.caSecret === undefined
      ? { ...tls, ca: tls.ca ?? ('rds' as const) }
      : tls,
  );
export type PostgresTlsConfig = z.output<typeof PostgresTlsSchema>;

export const PostgresTargetSchema = z.strictObject({
  host,
  port: port.default(5432),
  database: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a PostgreSQL database name')
    .default('prefect'),
  /** Server major version; the runner's pg_dump must be at least this (Infrahub ships 18 in compose). */
  majorVersion: z.number().int().min(12).max(30),
  credentialsSecret: secretRef,
  /** How long a backup or restore waits for the server to accept connections before failing DatabaseUnreachable (seconds). */
  readyTimeoutSeconds: z.number().int().min(1).max(3600).default(300),
  /** TLS of every connection (PostgresTlsSchema); default verify-full with the Amazon RDS CA bundle. */
  tls: PostgresTlsSchema.prefault({}),
});

/**
 * True when a URL carries userinfo (`scheme://user:password@host`), a query, a fragment or path
 * parameters. Such credentials would travel in
 * every execution payload, history event and failure message that names the URL, so URL-like fields
 * refuse them (the error names the field, never the URL); credentials belong in Secrets Manager.
 */
export function hasUserinfo(value: string): boolean {
  // A query, a fragment or path parameters carry credentials just as well (`?token=...`,
  // `#access_token=...`, `;jsessionid=...`): refused alike; none of our URLs needs them.
  if (/[?#;]/.test(value)) return true;
  try {
    const url = new URL(value);
    return url.username !== '' || url.password !== '';
  } catch {
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value);
  }
}

/** The message for a URL with userinfo, pointing to where the credential belongs. */
export const userinfoMessage = (where: string) =>
  `must not contain a user name or password ("user:password@"), a query ("?..."), a fragment ("#...") or path parameters (";..."): URLs travel in execution payloads and failure messages; ${where}`;

export const InfrahubApiSchema = z.strictObject({
  address: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as "https://infrahub.example.com"' })
    .refine((u) => !hasUserinfo(u), userinfoMessage('put the API token in the secret named by tokenSecret'))
    .transform((u) => u.replace(/\/+$/, '')),
  tokenSecret: secretRef,
});

const bucketName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    'must be an S3 bucket name (3-63 lowercase letters, digits, "." and "-")',
  )
  .refine((b) => !b.includes('..'), 'must be an S3 bucket name (no two adjacent ".")');

/**
 * The longest artifacts.prefix: S3 object keys are at most 1024 bytes of UTF-8 (S3 User Guide,
 * "Naming Amazon S3 objects"); the prefix is ASCII, and 512 leaves the other half for what the backup
 * puts after it.
 */
export const MAX_ARTIFACTS_PREFIX = 512;
/** The longest artifacts.path: Linux's PATH_MAX is 4096 bytes with the terminating NUL; 3072 leaves room for the files below it. */
export const MAX_PATH = 3072;

export const ArtifactStorageSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('s3'),
      bucket: bucketName,
      /** S3 key prefix: empty, or segments of S3's safe characters (letters, digits, "!-_.*'()"), ending in "/". */
      prefix: safeName(
        /^([A-Za-z0-9!_.*'()-]+\/)*$/,
        'must be empty or segments of letters, digits and "!-_.*\'()" each ending in "/" (and not start with "/")',
      )
        .refine((p) => p.length <= MAX_ARTIFACTS_PREFIX, {
          error: (issue) =>
            `is ${String(issue.input).length} characters long; at most ${MAX_ARTIFACTS_PREFIX}: S3 keys hold at most 1024 bytes, and the backup's own path (target, backup id, component and file names) needs the rest`,
        })
        .default(''),
      /**
       * The customer-managed KMS key of the bucket's default encryption (SSE-KMS), by key ARN: backups
       * get kms:Decrypt to copy artifacts out, restores kms:Decrypt and kms:GenerateDataKey to write
       * them back, both through S3 only. Not needed for SSE-S3 or the aws/s3 key.
       */
      kmsKeyArn: kmsKeyArn.optional(),
    }),
    z
      .strictObject({
        type: z.literal('path'),
        /** Where the storage is mounted in the runner (Infrahub's default is /opt/infrahub/storage). */
        path: absolutePath
          .refine((p) => p.length <= MAX_PATH, {
            error: (issue) =>
              `is ${String(issue.input).length} characters long; a path holds at most ${MAX_PATH} (Linux PATH_MAX, with the file names below it)`,
          })
          .refine((p) => artifactsMountProblem(p) === undefined, {
            error: (issue) => artifactsMountProblem(String(issue.input)),
          }),
        /** The EFS file system that holds it; the runner can only read a path it can mount. */
        efsFileSystemId,
        /**
         * The POSIX user the runner reads and writes the artifact storage as. The runner's image runs as
         * `neo4j` (uid 7474), so a tree that Infrahub wrote as root cannot be restored into (EACCES);
         * with posixUser the stack creates an EFS access point that enforces this uid/gid for every
         * file operation through the artifacts mount (for root, {uid: 0, gid: 0}; the roles then get
         * elasticfilesystem:ClientRootAccess through that access point only).
         */
        posixUser: z
          .strictObject({
            uid: z.number().int().min(0).max(4294967295),
            gid: z.number().int().min(0).max(4294967295),
          })
          .optional(),
        /**
         * The artifact storage's directory on the EFS file system (an absolute path on the file
         * system, not in the runner; default "/", the whole file system): the runner mounts it at
         * `path`. With `posixUser` it is the access point's root directory, so the mount reaches
         * nothing outside it; EFS creates it, owned by posixUser with mode 0755, if it does not exist
         * (Amazon EFS User Guide, "Enforcing a root directory with an access point").
         */
        efsRootDirectory: absolutePath.default('/'),
      })
      // CloudFormation's AWS::EFS::AccessPoint RootDirectory.Path: at most 100 characters and 4
      // directory levels (AWS CloudFormation User Guide, AWS::EFS::AccessPoint RootDirectory).
      .refine((a) => !a.posixUser || accessPointRootProblem(a.efsRootDirectory) === undefined, {
        path: ['efsRootDirectory'],
        error: (issue) =>
          accessPointRootProblem(
            String((issue.input as { efsRootDirectory?: unknown } | undefined)?.efsRootDirectory ?? ''),
          ),
      }),
  ],
  { error: 'must have "type" set to "s3" or "path"' },
);

const ecsServiceNames = z.array(ecsName('service')).default([]);

/**
 * The ECS services of the Infrahub deployment that a restore scales to zero and back, by role. They
 * are stopped in reverse dependency order (task workers, Infrahub server, task manager, and the task
 * manager's database only when PostgreSQL is not being restored: it must be up to receive the
 * restore) and started in dependency order (task manager database, task manager, Infrahub server,
 * task workers), each at the desired count it had.
 */
export const QuiesceSchema = z
  .strictObject({
    cluster: ecsName('cluster'),
    taskManagerDb: ecsServiceNames,
    taskManager: ecsServiceNames,
    server: ecsServiceNames,
    taskWorkers: ecsServiceNames,
  })
  .refine(
    (q) => q.taskManagerDb.length + q.taskManager.length + q.server.length + q.taskWorkers.length > 0,
    'must name at least one service (taskManagerDb, taskManager, server or taskWorkers)',
  );
export type Quiesce = z.output<typeof QuiesceSchema>;

export const TargetSchema = z.strictObject({
  name: targetName,
  neo4j: Neo4jTargetSchema,
  postgres: PostgresTargetSchema,
  infrahub: InfrahubApiSchema,
  artifacts: ArtifactStorageSchema,
  /** Optional: the deployment's ECS services to scale to zero during a restore (see QuiesceSchema). */
  quiesce: QuiesceSchema.optional(),
  /**
   * Customer-managed KMS keys that encrypt this target's secrets (credentials and API token), by key
   * ARN; the roles that read the secrets get kms:Decrypt on them through Secrets Manager only. Not
   * needed for the default key (aws/secretsmanager).
   */
  secretsKmsKeyArns: z.array(kmsKeyArn).default([]),
  /** The runner steps' TimeoutSeconds and HeartbeatSeconds (core/config/timeouts.ts); defaults per step. */
  timeouts: RunnerTimeoutsSchema.default({
    heartbeatSeconds: DEFAULT_HEARTBEAT_SECONDS,
    steps: {},
    minMiBPerSecond: 10,
  }),
  /**
   * A production deployment (default false). A production target is never a refresh destination
   * (another target's backup restored into it): the restore plan refuses it, and so does the
   * configuration when it names it in a refresh schedule or gives it `refreshFrom`. A production
   * target may be a refresh SOURCE. Its own restores are unaffected.
   */
  production: z.boolean().default(false),
  /**
   * The targets whose backups may be restored into this one (a refresh: production into staging,
   * restore input `sourceTarget`). Each must be another configured target; this target's restore
   * role is granted reading their backups (`<source>/infrahub_backup_*`) and nothing else of
   * theirs. Refused on a production target. Default none: a target's restore reads only its own
   * backups.
   */
  refreshFrom: z
    .array(targetName)
    .superRefine((names, ctx) => {
      names.forEach((n, i) => {
        if (names.indexOf(n) !== i)
          ctx.addIssue({ code: 'custom', path: [i], message: `names target "${n}" a second time` });
      });
    })
    .default([]),
});

/**
 * EventBridge Scheduler expressions: `cron(min hour dom month dow year)`, `rate(n unit)` or
 * `at(yyyy-mm-ddThh:mm:ss)`, parsed field by field (core/config/schedule.ts); nothing else (no
 * shell text, no extra characters) is accepted.
 */
const scheduleExpression = z
  .string()
  .superRefine((value, ctx) => {
    try {
      parseScheduleExpression(value);
    } catch (err) {
      if (!(err instanceof ScheduleSyntaxError)) throw err;
      const shown = value.length > 80 ? `${value.slice(0, 80)}…" (${value.length} characters)` : `${value}"`;
      ctx.addIssue({
        code: 'custom',
        message: `"${shown} is not an EventBridge Scheduler expression: ${err.message} (for example "cron(0 2 * * ? *)" or "rate(12 hours)")`,
      });
    }
  })
  // A cron's fields with single spaces between them, as Scheduler is given it.
  .transform(normalizeScheduleExpression);

/**
 * An IANA time zone name that Node's ICU knows (Scheduler's ScheduleExpressionTimezone), in its IANA
 * spelling: Intl accepts any case ("europe/berlin"), Scheduler is given "Europe/Berlin".
 */
const timeZone = z
  .string()
  .refine((zone) => zone.length <= 64 && isTimeZone(zone), {
    error: (issue) =>
      `"${String(issue.input).slice(0, 64)}" is not an IANA time zone name (such as "UTC" or "Europe/Berlin"; see Intl.supportedValuesOf("timeZone"))`,
  })
  .transform((zone) => canonicalTimeZone(zone) ?? zone);

const ScheduleObjectSchema = z.strictObject({
  name: targetName,
  /**
   * `backup`; `restore-drill`; `refresh`: restores `source`'s newest complete backup into the one
   * target named in `targets` (the restore state machine, RestoreExecutionInputSchema's
   * `sourceTarget`), which must list `source` in its `refreshFrom` and must not be `production`.
   */
  kind: z.enum(['backup', 'restore-drill', 'refresh']),
  expression: scheduleExpression,
  timezone: timeZone.default('UTC'),
  /** Target names, or "*" for every configured target. A refresh: its one destination. */
  targets: targetSelection(),
  /** refresh: the target whose newest complete backup is restored (refused for other kinds). */
  source: targetName.optional(),
  enabled: z.boolean().default(true),
  /** restore-drill: which backup to rehearse, the newest complete one or a random one within `windowDays`. */
  backup: z.enum(['latest', 'random']).optional(),
  /** restore-drill with `backup` "random": how many days back the backup may be (default 30). */
  windowDays: z.number().int().min(1).max(3650).optional(),
  /**
   * restore-drill over several targets: how many drills run at once (each a 2 vCPU, 8 GiB Fargate
   * task). Unset: the drill plan's default (4). A fleet of N targets whose drills take D minutes
   * each needs about N x D / maxConcurrency minutes, within the drill state machine's 7 days.
   */
  maxConcurrency: z.number().int().min(1).max(40).optional(),
});

/** What a restore-drill schedule rehearses when it does not say: the newest complete backup (`windowDays` 30 for `random`). */
export const DRILL_SCHEDULE_DEFAULTS = { backup: 'latest', windowDays: 30 } as const;

/**
 * A schedule. `backup` and `windowDays` are a restore drill's: filled with DRILL_SCHEDULE_DEFAULTS
 * for a drill, and refused on other kinds (DeploymentConfigSchema), where they would be ignored
 * silently. Never filled in on other kinds, so a parsed configuration parses again unchanged.
 */
export const ScheduleSchema = ScheduleObjectSchema.transform((schedule) =>
  schedule.kind === 'restore-drill'
    ? {
        ...schedule,
        backup: schedule.backup ?? DRILL_SCHEDULE_DEFAULTS.backup,
        windowDays: schedule.windowDays ?? DRILL_SCHEDULE_DEFAULTS.windowDays,
      }
    : schedule,
);

/** The classes `retention.coldStorage` moves when it names none: the long-kept ones, those with a count above 0. */
export const COLD_STORAGE_DEFAULT_CLASSES = ['monthly', 'yearly'] as const;

export const RetentionSchema = z
  .strictObject({
    daily: z.number().int().min(1, 'must keep at least one daily backup').max(366),
    weekly: z.number().int().min(0).max(520),
    monthly: z.number().int().min(0).max(1200),
    yearly: z.number().int().min(0).max(100).default(0),
    /**
     * Days before an overwritten or deleted object version is removed for good: the undo window for a
     * deletion. Every backup the retention classes expire also stays this long as a noncurrent version
     * (S3 lifecycle expiration of a versioned object adds a delete marker), so it is billed for its
     * class's days plus these: 7 keeps a week's undo window at about a third of the daily class's cost
     * of 30 (README, "Cost").
     */
    noncurrentVersionDays: z.number().int().min(1).max(3650).default(7),
    /** Days before the objects of a backup that never completed (still tagged "pending") expire. */
    incompleteDays: z.number().int().min(1).max(365).default(7),
    /**
     * Colder storage for the long-kept classes: the lifecycle rules of `classes` also move their
     * objects to `storageClass` `afterDays` days after they were written (core/backup/retention.ts,
     * coldStorageProblems, says which combinations S3 refuses or bills beyond their use). Unset: every
     * backup stays in S3 Standard until it expires.
     */
    coldStorage: z
      .strictObject({
        /**
         * The retention classes whose backups move (each must have a count above 0). Default: those
         * of `monthly` and `yearly` whose count is above 0 (COLD_STORAGE_DEFAULT_CLASSES).
         */
        classes: z
          .array(z.enum(RetentionClasses))
          .min(1, 'must name at least one retention class')
          .refine((c) => new Set(c).size === c.length, 'names a class twice')
          .optional(),
        /** Days after an object's creation (S3 lifecycle "Days", counted from creation). */
        afterDays: z.number().int().min(0).max(36500),
        /** The S3 storage class they move to (a lifecycle Transition's StorageClass). */
        storageClass: z.enum(ColdStorageClasses).default('GLACIER_IR'),
      })
      .optional(),
  })
  .transform(({ coldStorage, ...counts }) => ({
    ...counts,
    ...(coldStorage
      ? {
          coldStorage: {
            ...coldStorage,
            classes: coldStorage.classes ?? COLD_STORAGE_DEFAULT_CLASSES.filter((c) => counts[c] > 0),
          },
        }
      : {}),
  }))
  .superRefine((retention, ctx) => {
    if (retention.coldStorage?.classes.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['coldStorage', 'classes'],
        message: `is not given, and its default (the ${COLD_STORAGE_DEFAULT_CLASSES.join(' and ')} backups) moves nothing: ${COLD_STORAGE_DEFAULT_CLASSES.map((c) => `retention.${c}`).join(' and ')} are 0; name the classes to move, or remove coldStorage`,
      });
    for (const problem of coldStorageProblems(retention))
      ctx.addIssue({ code: 'custom', path: ['coldStorage', ...problem.path], message: problem.message });
  });

export const ReplicationSchema = z.strictObject({
  region: awsRegion,
  /** S3 Replication Time Control: 15-minute replication SLA, at extra cost. */
  replicationTimeControl: z.boolean().default(false),
});

export const ObjectLockSchema = z.strictObject({
  mode: z.enum(['GOVERNANCE', 'COMPLIANCE']),
  /** Default retention applied to every new object version. */
  days: z.number().int().min(1).max(36500),
});

/**
 * How the Lambdas that read the targets' secrets (Preflight and RestorePlan read the Infrahub tokens,
 * Neo4jReady the Community targets' Neo4j credentials) are granted them. By default each secret is
 * listed in the function's role. A role holds at most 10,240 characters of inline policy and 10
 * managed policies of 6,144 (IAM User Guide, "IAM and AWS STS quotas"), so a large fleet's listed
 * secrets pass them (listedSecretsFit: about 300, 550 with `account` set). With `tag`, the roles
 * read any secret of the account and region that carries that tag instead
 * (`secretsmanager:GetSecretValue` on `secret:*` with the condition `aws:ResourceTag/<key>` =
 * `<value>`: Secrets Manager User Guide, "Attribute-based access control (ABAC)"): tag every
 * target's secrets with it. The runner's task definitions always list their own targets' secrets.
 */
export const SecretsAccessSchema = z.strictObject({
  tag: z
    .strictObject({
      /** Tag keys: 1-128 characters, not starting with `aws:` (Secrets Manager API Reference, Tag). */
      key: z
        .string()
        .min(1)
        .max(128)
        .regex(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$/u, 'may hold only letters, digits, spaces and _ . : / = + - @')
        .refine((k) => !k.toLowerCase().startsWith('aws:'), 'must not start with "aws:" (reserved by AWS)'),
      value: z
        .string()
        .min(1)
        .max(256)
        .regex(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$/u, 'may hold only letters, digits, spaces and _ . : / = + - @'),
    })
    .optional(),
});

/** aws-cdk-lib's size estimate of an ARN that holds a token (its DEFAULT_ARN_SIZE_ESTIMATE). */
export const CDK_TOKEN_ARN_ESTIMATE = 150;
/**
 * The most characters (as aws-cdk-lib estimates them) of ARNs one listed statement holds: more than
 * CDK's 2,000 up to which it merges statements, so it keeps ours as they are, and two of them fill
 * one of its 6,000-character managed policies.
 */
export const STATEMENT_ARN_CHARACTERS = 2_700;

/** aws-cdk-lib's size estimate of one listed ARN: its length (a token's CDK_TOKEN_ARN_ESTIMATE) and 3 for quotes and comma. */
function arnCharacters(name: string, region: string, account?: string): number {
  return (secretArnFor(name, region, account)?.length ?? CDK_TOKEN_ARN_ESTIMATE) + 3;
}

/**
 * `names` (de-duplicated, in order) cut into the statements a role lists them in: each at most
 * STATEMENT_ARN_CHARACTERS of ARNs (infra/constructs/backup-functions.ts grants them so).
 */
export function statementChunks(names: readonly string[], region: string, account?: string): string[][] {
  const chunks: string[][] = [];
  let size = STATEMENT_ARN_CHARACTERS;
  for (const name of new Set(names)) {
    const characters = arnCharacters(name, region, account);
    if (size + characters > STATEMENT_ARN_CHARACTERS) {
      chunks.push([]);
      size = 0;
    }
    (chunks[chunks.length - 1] as string[]).push(name);
    size += characters;
  }
  return chunks;
}

/**
 * The IAM quotas of one role, as aws-cdk-lib fills them (Role.splitLargePolicy; checked by
 * test/infra/fleet-limit.test.ts): its inline policy up to 10,000 characters (IAM's 10,240), of
 * which about 1,500 go to the function's other statements (logs, X-Ray, its bucket); then managed
 * policies of up to 6,000 (IAM's 6,144); at most 10 managed policies per role (IAM User Guide, "IAM
 * and AWS STS quotas"), two of them the AWS-managed Lambda execution and VPC access policies.
 */
const ROLE_POLICY = { inline: 10_000 - 1_500, managedPolicies: 10 - 2 };

/**
 * A secret's partition by region (a name becomes an ARN in the deployment's partition).
 */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/**
 * The ARN a role lists for a secret: a complete ARN as is; a name as
 * `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-??????` (a secret's ARN ends in
 * "-" and six random characters: Secrets Manager User Guide, "Secret ARN"), literal when the
 * deployment names its account, else with the account as a CloudFormation token.
 */
export function secretArnFor(name: string, region: string, account?: string): string | undefined {
  if (name.startsWith('arn:')) return name;
  if (!account) return undefined;
  return `arn:${partitionOf(region)}:secretsmanager:${region}:${account}:secret:${name}-??????`;
}

/**
 * Whether one role can list `names` (secrets, and KMS key ARNs, which go to statements of their
 * own), packed as aws-cdk-lib packs a role's statements (Role.splitLargePolicy): each statement
 * (statementChunks; its size estimated as CDK does, 200 for its action and condition) stays in the
 * inline policy while that holds it (10,000 characters, less ROLE_POLICY's other statements), else
 * goes to the first managed policy of 6,000 with room, else to a new one. Returns the managed
 * policies needed; `fits` false past the role's quota (ROLE_POLICY.managedPolicies).
 */
export function listedSecretsFit(
  names: readonly string[],
  region: string,
  account?: string,
): { secrets: number; managedPolicies: number; fits: boolean } {
  const unique = [...new Set(names)];
  const isKey = (name: string) => name.startsWith('arn:') && name.split(':')[2] === 'kms';
  const statements = [
    ...statementChunks(
      unique.filter((n) => !isKey(n)),
      region,
      account,
    ),
    ...statementChunks(unique.filter(isKey), region, account),
  ].map((chunk) => 200 + chunk.reduce((sum, name) => sum + arnCharacters(name, region, account), 0));
  let inline = 10_000 - ROLE_POLICY.inline;
  const managed: number[] = [];
  for (const size of statements) {
    if (inline + size < 10_000) {
      inline += size;
      continue;
    }
    const index = managed.findIndex((used) => used + size <= 6_000);
    if (index >= 0) managed[index] = (managed[index] as number) + size;
    else managed.push(size);
  }
  return {
    secrets: unique.length,
    managedPolicies: managed.length,
    fits: managed.length <= ROLE_POLICY.managedPolicies,
  };
}

/**
 * What the Enterprise targets' `neo4j.seed.serverRoleArns` add to the backup bucket's policy and the
 * backup key's policy, in characters (measured on synthesized templates, tokens unresolved, so an
 * over-estimate: per target three statements, the bucket's two about 490 characters and the key's
 * about 200 besides the roles' ARNs, which the bucket's two name twice and the key's once), against S3's 20 KB per bucket policy (Amazon
 * S3 User Guide, "Bucket policies") and KMS's 32 KB per key policy (AWS KMS Developer Guide, "Key
 * policies"), less what their other statements take (3,000 and 4,000).
 */
export function seedGrantPolicySizes(
  targets: ReadonlyArray<{ neo4j: { edition: string; seed?: { serverRoleArns: readonly string[] } } }>,
): { bucket: number; key: number; bucketLimit: number; keyLimit: number } {
  let bucket = 0;
  let key = 0;
  for (const t of targets) {
    const roles = t.neo4j.edition === 'enterprise' ? (t.neo4j.seed?.serverRoleArns ?? []) : [];
    if (roles.length === 0) continue;
    const arns = roles.reduce((sum, arn) => sum + arn.length + 6, 0);
    bucket += 490 + 2 * arns;
    key += 200 + arns;
  }
  return { bucket, key, bucketLimit: 20_480 - 3_000, keyLimit: 32_768 - 4_000 };
}

/**
 * The configured target names for a message about an unknown one: "known: a, b, c", at most 10
 * names and then how many more, so a message (and an execution's cause or notice made of it) stays
 * short in a fleet of 1,000.
 */
export function knownTargets(names: Iterable<string>): string {
  const all = [...names];
  const shown = all.slice(0, 10).join(', ');
  return `known: ${all.length > 10 ? `${shown} and ${all.length - 10} more` : shown}`;
}

/**
 * The one wording of every refusal of a target the configuration does not hold (the backup and
 * drill inputs, the restore input, schedules, the CLI): `"a" is not configured (known: …)`, or
 * `"a", "b" are not configured (known: …)` (the known names as `knownTargets` gives them).
 */
export function notConfigured(unknown: readonly string[], known: Iterable<string>): string {
  const names = unknown.map((n) => JSON.stringify(n)).join(', ');
  return `${names} ${unknown.length > 1 ? 'are' : 'is'} not configured (${knownTargets(known)})`;
}

/**
 * The configured target named `name`.
 * @throws InvalidInputError for `what` (the input being read), naming `field` and the known targets
 *   when the configuration holds no target of that name.
 */
export function configuredTarget(
  config: Pick<DeploymentConfig, 'targets'>,
  name: string,
  what: string,
  field = 'target',
): Target {
  const target = config.targets.find((t) => t.name === name);
  if (!target)
    throw new InvalidInputError(what, [
      `${field}: ${notConfigured(
        [name],
        config.targets.map((t) => t.name),
      )}`,
    ]);
  return target;
}

/** Why a refresh is refused: the field at fault (`target`: the destination, `sourceTarget`) and why. */
export interface RefreshProblem {
  field: 'target' | 'sourceTarget';
  message: string;
}

/**
 * Whether `source`'s backups may be restored into `destination` (a refresh), by the configuration:
 * the destination is configured and not `production` (a production target is never a refresh
 * destination), the source is configured, and the destination lists it in `refreshFrom` (its
 * restore role reads only those targets' backups besides its own: infra/constructs/
 * runner-target-group.ts). A source equal to the destination is a plain restore, never a problem.
 * Pure; the one wording of these refusals (the restore plan, refresh schedules, the CLI).
 *
 * @returns the first problem (destination before source), or undefined when the refresh may run
 */
export function refreshProblem(
  config: { readonly targets: readonly Target[] },
  destination: string,
  source: string,
): RefreshProblem | undefined {
  const known = config.targets.map((t) => t.name);
  const index = config.targets.findIndex((t) => t.name === destination);
  const dest = config.targets[index];
  if (!dest) return { field: 'target', message: notConfigured([destination], known) };
  if (source === destination) return undefined;
  if (dest.production)
    return {
      field: 'target',
      message: `"${destination}" is marked production (targets[${index}].production is true): a production target can never be a refresh destination, so ${source}'s backup is not restored into it; refresh a non-production target from it instead (a production target may be a source)`,
    };
  if (!known.includes(source)) return { field: 'sourceTarget', message: notConfigured([source], known) };
  if (!dest.refreshFrom.includes(source))
    return {
      field: 'sourceTarget',
      message: `"${source}" is not in targets[${index}].refreshFrom of "${destination}" (${dest.refreshFrom.length > 0 ? dest.refreshFrom.join(', ') : 'empty'}): the restore role of ${destination} may read only its own backups and those of the targets listed there; add "${source}" to it and deploy again`,
    };
  return undefined;
}

/** The secrets a target's runner task definition reads (its execution role lists them). */
export function runnerSecretNames(target: Pick<Target, 'neo4j' | 'postgres'>): string[] {
  return [
    target.neo4j.credentialsSecret,
    target.postgres.credentialsSecret,
    ...(target.neo4j.tls.caSecret ? [target.neo4j.tls.caSecret] : []),
    ...(target.postgres.tls.caSecret ? [target.postgres.tls.caSecret] : []),
  ];
}

/** The real length of a name-given secret's ARN (`arn:<partition>:secretsmanager:<region>:<12 digits>:secret:<name>-??????`). */
export function tokenSecretArnLength(name: string, region: string): number {
  return secretArnFor(name, region, '123456789012')?.length ?? 0;
}

/**
 * What each secret-reading Lambda's role lists: its secrets (with secretsAccess.tag, only those
 * given by complete ARN: the tag grants the rest) and every customer-managed key of the targets'
 * secrets (infra/constructs/backup-functions.ts grants them so).
 */
export function lambdaListedArns(config: {
  targets: ReadonlyArray<
    Pick<Target, 'infrahub' | 'neo4j' | 'secretsKmsKeyArns'> & { neo4j: { dbms?: unknown } }
  >;
  secretsAccess?: { tag?: unknown };
}): Record<'Preflight' | 'RestorePlan' | 'Neo4jReady', { secrets: string[]; keys: string[] }> {
  const keys = [...new Set(config.targets.flatMap((t) => t.secretsKmsKeyArns))];
  const tagged = config.secretsAccess?.tag !== undefined;
  // With `tag`, a secret given by its complete ARN may live in another region or account, outside
  // the tag's "secret:*" of this one: those are listed still.
  const listed = (names: string[], keysOf = keys) => ({
    secrets: [...new Set(tagged ? names.filter((n) => n.startsWith('arn:')) : names)],
    keys: keysOf,
  });
  // Neo4jReady reads the Community targets' secrets only, so only their keys.
  const communityKeys = [
    ...new Set(config.targets.filter((t) => t.neo4j.dbms).flatMap((t) => t.secretsKmsKeyArns)),
  ];
  const names = lambdaSecretNames(config);
  return {
    Preflight: listed(names.Preflight),
    RestorePlan: listed(names.RestorePlan),
    // Neo4jReady reads secrets only with Community targets.
    Neo4jReady:
      names.Neo4jReady.length > 0 ? listed(names.Neo4jReady, communityKeys) : { secrets: [], keys: [] },
  };
}

/** The secrets each secret-reading Lambda lists (infra/constructs/backup-functions.ts grants them). */
export function lambdaSecretNames(config: {
  targets: ReadonlyArray<Pick<Target, 'infrahub' | 'neo4j'>>;
}): Record<'Preflight' | 'RestorePlan' | 'Neo4jReady', string[]> {
  const tokens = config.targets.map((t) => t.infrahub.tokenSecret);
  return {
    Preflight: tokens,
    RestorePlan: tokens,
    Neo4jReady: config.targets
      .filter((t) => t.neo4j.dbms)
      .flatMap((t) => [t.neo4j.credentialsSecret, ...(t.neo4j.tls.caSecret ? [t.neo4j.tls.caSecret] : [])]),
  };
}

export const NotificationsSchema = z.strictObject({
  emails: z.array(z.email({ error: 'must be an e-mail address' })).default([]),
  /** Existing SNS topics to publish to as well (for example a chat integration). */
  topicArns: z
    .array(
      z
        .string()
        .regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/, 'must be an SNS topic ARN'),
    )
    .default([]),
  /**
   * Customer-managed KMS keys of the topics in `topicArns` that are encrypted with one: the notice
   * functions are granted kms:GenerateDataKey and kms:Decrypt on them, which publishing to an
   * encrypted topic needs (AWS SNS Developer Guide, "Encryption at rest": publishers need those two
   * permissions on the topic's key). Each key's policy must also allow this account. Keys of topics
   * encrypted with the AWS-managed key `alias/aws/sns` need nothing here. Key ARNs as everywhere
   * else (`kmsKeyArn`: a key id or `mrk-` id, never an alias).
   */
  topicKeyArns: z.array(kmsKeyArn).default([]),
});

/**
 * What the monitoring publishes beyond the fleet-wide alarm metrics. Per-target metrics (dimension
 * `Target`) feed the dashboard's per-target graphs; CloudWatch bills each custom metric by the hour
 * in which it is published (see the README's cost section).
 */
export const MonitoringSchema = z.strictObject({
  /** Publish per-target metrics (durations, sizes, backup age per target); fleet-wide ones always. */
  perTargetMetrics: z.boolean().default(true),
});

export const NetworkSchema = z.strictObject({
  vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/, 'must be a VPC id such as "vpc-0123abcd"'),
  subnetIds: z
    .array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'must be a subnet id such as "subnet-0123abcd"'))
    .min(1, 'must list at least one subnet'),
  availabilityZones: z.array(
    z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'must be an availability zone'),
  ),
  /** Security groups for the runner tasks; they must allow egress to the Neo4j and PostgreSQL hosts. */
  securityGroupIds: z
    .array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'must be a security group id such as "sg-0123abcd"'))
    .default([]),
  /**
   * Subnets of the Lambdas that call a target's Infrahub API (preflight gate, restore plan); the
   * runner's `subnetIds` when unset. They need a route to the Infrahub addresses and to Secrets
   * Manager and S3 (NAT or VPC endpoints: docs/deployment.md).
   */
  lambdaSubnetIds: z
    .array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'must be a subnet id such as "subnet-0123abcd"'))
    .min(1, 'must list at least one subnet (or leave it out to use subnetIds)')
    .optional(),
  /**
   * Security groups of those Lambdas; the runner's `securityGroupIds` when unset, and when both are
   * empty, a group the stack creates (outbound only; its id is the stack output LambdaSecurityGroupId).
   */
  lambdaSecurityGroupIds: z
    .array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'must be a security group id such as "sg-0123abcd"'))
    .min(1, 'must list at least one security group (or leave it out to use securityGroupIds)')
    .optional(),
  /**
   * Creates the VPC endpoints the runner tasks and the in-VPC Lambdas need without a NAT gateway:
   * interface endpoints for ECR (api, dkr), Secrets Manager and CloudWatch Logs, and the S3 gateway
   * endpoint on `routeTableIds` (infra/constructs/network-endpoints.ts). Leave false when the VPC
   * has a NAT gateway or these endpoints already (a second endpoint with private DNS fails).
   */
  createEndpoints: z.boolean().default(false),
  /** Route tables of the runner's and the Lambdas' subnets: the S3 gateway endpoint's routes. */
  routeTableIds: z
    .array(z.string().regex(/^rtb-[0-9a-f]{8,17}$/, 'must be a route table id such as "rtb-0123abcd"'))
    .default([]),
});

/**
 * The longest preflight wait. The wait is the backup state machine's (a Wait state between checks,
 * each check one short preflight Lambda call: infra/constructs/backup-state-machine.ts), so no
 * function timeout bounds it; an hour is what a backup should wait before it fails and is retried.
 */
export const MAX_PREFLIGHT_WAIT_SECONDS = 3600;
/**
 * The most Wait states one preflight wait may pass through: floor(maxWaitSeconds /
 * pollIntervalSeconds). Each adds 9 events to the execution's history (Wait entered and exited, the
 * Lambda task's entered, scheduled, started, succeeded and exited, the Choice entered and exited),
 * so 240 waits are about 2,200 events, under a tenth of Step Functions' 25,000 events per execution
 * (Step Functions Developer Guide, "Step Functions service quotas": maximum execution history size).
 */
export const MAX_PREFLIGHT_WAITS = 240;
/** History events one Wait state of the preflight loop adds (see MAX_PREFLIGHT_WAITS). */
export const PREFLIGHT_EVENTS_PER_WAIT = 9;

export const PreflightSchema = z
  .strictObject({
    /**
     * How long the gate waits for running Infrahub tasks to finish before it fails the backup,
     * counted from its first check. At most MAX_PREFLIGHT_WAIT_SECONDS, and at most
     * MAX_PREFLIGHT_WAITS times pollIntervalSeconds (the history's budget).
     */
    maxWaitSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_PREFLIGHT_WAIT_SECONDS, {
        error: () =>
          `must be at most ${MAX_PREFLIGHT_WAIT_SECONDS} (an hour): a backup that waits longer for Infrahub's tasks should fail and be started again later`,
      })
      .default(600),
    /** Seconds between two checks (the state machine's Wait state). */
    pollIntervalSeconds: z.number().int().min(1).max(300).default(15),
    /**
     * A task RUNNING (or PENDING) for longer than this many hours is stale (Infrahub leaves tasks
     * RUNNING when a worker restarts): it no longer blocks the backup, which goes ahead and reports it
     * as a warning (its id, title and age) in the manifest and the success notice.
     */
    staleTaskHours: z
      .number()
      .min(1)
      .max(24 * 30)
      .default(6),
    /** The most pages of tasks one poll reads (pages of 100); more fails the gate naming the bound. */
    maxTaskPages: z.number().int().min(1).max(1000).default(50),
  })
  .superRefine((p, ctx) => {
    const waits = Math.floor(p.maxWaitSeconds / p.pollIntervalSeconds);
    if (waits > MAX_PREFLIGHT_WAITS) {
      ctx.addIssue({
        code: 'custom',
        path: ['pollIntervalSeconds'],
        message:
          `with maxWaitSeconds ${p.maxWaitSeconds}, the preflight gate would check Infrahub up to ${waits + 1} times ` +
          `(maxWaitSeconds / pollIntervalSeconds + 1), each wait adding ${PREFLIGHT_EVENTS_PER_WAIT} events to the execution's history; ` +
          `at most ${MAX_PREFLIGHT_WAITS} waits are allowed: raise preflight.pollIntervalSeconds to at least ${Math.ceil(p.maxWaitSeconds / MAX_PREFLIGHT_WAITS)} ` +
          `or lower preflight.maxWaitSeconds to at most ${MAX_PREFLIGHT_WAITS * p.pollIntervalSeconds}`,
      });
    }
  });

/**
 * The most targets one deployment holds: the fleet the local fleet test runs through the deployed
 * backup definition (test/integration/backup-fleet.test.ts: one Distributed Map child execution per
 * target, every history and payload far below Step Functions' quotas). One execution's input names
 * at most as many (BackupExecutionInputSchema, sharing this constant). The stack holds them: the
 * per-target task definitions and roles live in nested stacks of 50 targets each
 * (infra/constructs/runner-target-group.ts), so 1,000 targets make 20 nested stacks and the parent
 * stays far below CloudFormation's 500 resources (test/infra/fleet-limit.test.ts). Each target has
 * two IAM roles: above about 480 targets a deployment needs more than IAM's default 1,000 roles per
 * account (IAM User Guide, "IAM and AWS STS quotas"; adjustable to 5,000), as docs/deployment.md says.
 */
export const MAX_TARGETS = 1000;
const MAX_TARGETS_REASON =
  'the largest fleet the backup state machine is tested with (one Distributed Map child execution per target)';

/** CloudFormation's limit on the resources of one stack. */
export const MAX_STACK_RESOURCES = 500;

/**
 * The resources of a stack with no target, no schedule, no replication, no e-mail subscription and
 * no network resources, measured (a synthesis with one target, less what that target and its
 * options add): the storage (backup key and alias, bucket and access-log bucket with their
 * policies), the notices (topic, its policy, its key and alias), the state-machine logs key, the
 * key-deletion guard rule, the freshness check's rule and its invoke permission, twelve Lambdas with
 * their log groups, roles and policies, three state machines with theirs, the runner's cluster, log
 * group, the drills' execution role and policy, the drill role, the two Distributed Maps' policies
 * (backup and drill fleets), five alarms and the dashboard.
 */
export const FIXED_STACK_RESOURCES = 86;

/** Targets per nested stack of runner resources (infra/constructs/runner-target-group.ts, which says why). */
export const TARGETS_PER_RUNNER_GROUP = 50;

/**
 * The parent stack's resources as the configuration shapes them: FIXED_STACK_RESOURCES; one nested
 * stack per TARGETS_PER_RUNNER_GROUP targets (their task definitions, roles and access points are
 * the nested stacks' own); per backup schedule one schedule; per restore-drill schedule one schedule
 * per target it names; per kind of schedule used (backup, restore-drill) the scheduler's role and
 * its policy (one per state machine); one drill task definition per distinct image; the overflow
 * managed policies of the Lambdas that list the targets' secrets (listedSecretsFit); with
 * `replication`, the replication role and its policy; one subscription per notification e-mail; the
 * network's resources. An estimate: within 3 of the syntheses test/infra/fleet-limit.test.ts measures
 * (1,000 targets, the largest listed fleets); a configuration with many options may differ by a few
 * more. Used to refuse, at validation, a configuration `cdk deploy` would fail on.
 */
export function estimateStackResources(config: {
  region: string;
  account?: string | undefined;
  secretsAccess?: { tag?: unknown };
  targets: ReadonlyArray<Pick<Target, 'name' | 'neo4j' | 'postgres' | 'infrahub' | 'secretsKmsKeyArns'>>;
  schedules: ReadonlyArray<Pick<Schedule, 'kind' | 'targets'>>;
  network?: Pick<
    z.output<typeof NetworkSchema>,
    'createEndpoints' | 'securityGroupIds' | 'lambdaSecurityGroupIds'
  >;
  replication?: unknown;
  notifications?: { readonly emails?: ReadonlyArray<string> };
}): number {
  const images = new Set(
    config.targets.map((t) => `${t.neo4j.edition}-${t.neo4j.version}-${t.postgres.majorVersion}`),
  );
  // One EventBridge Scheduler schedule per configured schedule (a drill schedule starts one fleet drill).
  const scheduleResources = config.schedules.length;
  const schedulerRoles = 2 * new Set(config.schedules.map((s) => s.kind)).size;
  // Listed secrets past a role's inline policy: CDK's overflow managed policies (listedSecretsFit).
  const overflowPolicies = Object.values(lambdaListedArns(config)).reduce(
    (sum, { secrets, keys }) =>
      sum + listedSecretsFit([...secrets, ...keys], config.region, config.account).managedPolicies,
    0,
  );
  return (
    FIXED_STACK_RESOURCES +
    overflowPolicies +
    Math.ceil(config.targets.length / TARGETS_PER_RUNNER_GROUP) +
    images.size +
    scheduleResources +
    schedulerRoles +
    (config.replication ? 2 : 0) +
    (config.notifications?.emails?.length ?? 0) +
    networkResources(config.network)
  );
}

/**
 * The AWS services `network.createEndpoints` gives interface endpoints (PrivateLink) in the runner
 * subnets: why each is needed is written beside their construct (infra/constructs/network-endpoints.ts).
 */
export const INTERFACE_ENDPOINT_SERVICES = [
  'ecr.api',
  'ecr.dkr',
  'secretsmanager',
  'logs',
  'states',
] as const;

/**
 * The network's resources (infra/constructs/network-endpoints.ts, backup-functions.ts): with
 * `createEndpoints`, a security group, the INTERFACE_ENDPOINT_SERVICES' endpoints and the S3 gateway
 * endpoint; a security group for the in-VPC Lambdas when the configuration names none.
 */
function networkResources(
  network?: Pick<
    z.output<typeof NetworkSchema>,
    'createEndpoints' | 'securityGroupIds' | 'lambdaSecurityGroupIds'
  >,
): number {
  if (!network) return 0;
  const lambdaGroup = (network.lambdaSecurityGroupIds ?? network.securityGroupIds).length === 0 ? 1 : 0;
  return (network.createEndpoints ? INTERFACE_ENDPOINT_SERVICES.length + 2 : 0) + lambdaGroup;
}

export const DeploymentConfigSchema = z
  .strictObject({
    /** Prefix of stack and resource names; several deployments of this app may share an account. */
    name: targetName.default('infrahub-backup'),
    account: z
      .string()
      .regex(/^\d{12}$/, 'must be a 12-digit AWS account id')
      .optional(),
    region: awsRegion,
    network: NetworkSchema,
    targets: z
      .array(TargetSchema)
      .min(1, 'must configure at least one Infrahub target')
      .max(MAX_TARGETS, {
        error: (issue) =>
          `configures ${Array.isArray(issue.input) ? issue.input.length : 'too many'} targets; one deployment holds at most ${MAX_TARGETS}: ${MAX_TARGETS_REASON}. Split the fleet into several deployments (each with its own "name")`,
      }),
    schedules: z.array(ScheduleSchema).default([]),
    retention: RetentionSchema,
    replication: ReplicationSchema.optional(),
    objectLock: ObjectLockSchema.optional(),
    notifications: NotificationsSchema.prefault({}),
    secretsAccess: SecretsAccessSchema.prefault({}),
    monitoring: MonitoringSchema.prefault({}),
    preflight: PreflightSchema.prefault({}),
    /**
     * Recovery point objective in hours: a target without a complete backup for longer raises the
     * silence alarm. The default allows a nightly schedule some slack.
     */
    rpoHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 31)
      .default(26),
    /**
     * Recovery time objective in minutes: the longest a recovery may take. Each restore drill's report
     * compares its recovery time (the disposable databases started, restored and validated) with it,
     * and so does the audit report (`infrahub-backup report`). A drill past it still passes or fails on
     * its restore; the report says the objective was missed. The default, 4 hours, is a common RTO.
     */
    rtoMinutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .default(240),
    /** Fleet backups: how many targets one execution works on at once. */
    maxConcurrency: z.number().int().min(1).max(40).default(4),
  })
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    config.targets.forEach((target, i) => {
      if (names.has(target.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i, 'name'],
          message: `duplicates target name "${target.name}"; target names must be unique`,
        });
      }
      names.add(target.name);
    });
    // Refresh sources: other configured targets; never into a production target.
    config.targets.forEach((target, i) => {
      if (target.refreshFrom.length > 0 && target.production)
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i, 'refreshFrom'],
          message: `is refused on "${target.name}", which is marked production (targets[${i}].production is true): a production target can never be a refresh destination; remove refreshFrom, or production if ${target.name} is not production`,
        });
      target.refreshFrom.forEach((source, j) => {
        if (source === target.name)
          ctx.addIssue({
            code: 'custom',
            path: ['targets', i, 'refreshFrom', j],
            message: `names "${source}" itself: a target's restore always reads its own backups; list other targets only`,
          });
        else if (!names.has(source))
          ctx.addIssue({
            code: 'custom',
            path: ['targets', i, 'refreshFrom', j],
            message: `target ${notConfigured([source], names)}`,
          });
      });
    });

    const scheduleNames = new Set<string>();
    config.schedules.forEach((schedule, i) => {
      if (scheduleNames.has(schedule.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['schedules', i, 'name'],
          message: `duplicates schedule name "${schedule.name}"`,
        });
      }
      scheduleNames.add(schedule.name);
      if (schedule.kind !== 'restore-drill' && schedule.maxConcurrency !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['schedules', i, 'maxConcurrency'],
          message:
            schedule.kind === 'backup'
              ? "is for restore-drill schedules only: a backup runs the deployment's maxConcurrency targets at once"
              : 'is for restore-drill schedules only: a refresh restores one target',
        });
      for (const field of ['backup', 'windowDays'] as const)
        if (schedule.kind !== 'restore-drill' && schedule[field] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['schedules', i, field],
            message:
              schedule.kind === 'backup'
                ? 'is for restore-drill schedules only: a backup schedule takes a new backup'
                : "is for restore-drill schedules only: a refresh always restores the source's newest complete backup",
          });
      if (schedule.kind !== 'refresh' && schedule.source !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['schedules', i, 'source'],
          message: `is for refresh schedules only (kind "refresh"); a ${schedule.kind} schedule works on its own targets' backups`,
        });
      if (schedule.kind === 'refresh') refreshScheduleProblems(config, schedule, i, ctx);
      // A restore-drill schedule's fleet must end within the drill execution's bound (the backup
      // fleet's is checked below, for every target).
      if (schedule.kind === 'restore-drill') {
        const selected = config.targets.filter(
          (t) => schedule.targets === '*' || schedule.targets.includes(t.name),
        );
        const tooLong = fleetBoundProblem(
          selected,
          schedule.maxConcurrency ?? DRILL_FLEET_DEFAULT_CONCURRENCY,
          'drill',
        );
        if (tooLong)
          ctx.addIssue({ code: 'custom', path: ['schedules', i, 'maxConcurrency'], message: tooLong });
      }
      if (schedule.targets === '*') return;
      schedule.targets.forEach((name, j) => {
        if (!names.has(name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['schedules', i, 'targets', j],
            message: `target ${notConfigured([name], names)}`,
          });
        }
      });
    });

    // Every target backed up in one execution ("*", as on demand) must end within its 12 hours.
    const backupTooLong = fleetBoundProblem(config.targets, config.maxConcurrency, 'backup');
    if (backupTooLong) ctx.addIssue({ code: 'custom', path: ['maxConcurrency'], message: backupTooLong });

    if (config.replication && config.replication.region === config.region) {
      ctx.addIssue({
        code: 'custom',
        path: ['replication', 'region'],
        message: `must differ from the primary region "${config.region}": an off-region copy in the same region protects against nothing regional`,
      });
    }

    if (config.objectLock) {
      // A locked version cannot be removed before its lock ends, whatever the lifecycle says.
      const { days, mode } = config.objectLock;
      const shortest = [
        ['retention.daily', config.retention.daily, 'a daily backup'],
        ['retention.incompleteDays', config.retention.incompleteDays, 'the leftovers of a failed backup'],
      ] as const;
      for (const [path, keep, what] of shortest) {
        if (days > keep) {
          ctx.addIssue({
            code: 'custom',
            path: ['objectLock', 'days'],
            message: `(${days}) contradicts ${path} (${keep}): the lifecycle would expire ${what} after ${keep} days, but ${mode} Object Lock keeps every version for ${days}; lower objectLock.days to at most ${keep} or raise ${path} to at least ${days}`,
          });
        }
      }
    }

    // A random drill must find backups it can read: one older than coldStorage.afterDays may be in
    // an archive class, which no drill reads without a restore of hours (core/backup/thaw.ts).
    const cold = config.retention.coldStorage;
    if (cold && ARCHIVE_STORAGE_CLASSES.has(cold.storageClass))
      config.schedules.forEach((schedule, i) => {
        if (
          schedule.kind === 'restore-drill' &&
          schedule.backup === 'random' &&
          (schedule.windowDays ?? DRILL_SCHEDULE_DEFAULTS.windowDays) > cold.afterDays
        )
          ctx.addIssue({
            code: 'custom',
            path: ['schedules', i, 'windowDays'],
            message: `(${schedule.windowDays ?? DRILL_SCHEDULE_DEFAULTS.windowDays}) reaches past retention.coldStorage.afterDays (${cold.afterDays}): a random drill could pick a ${cold.classes.join(' or ')} backup whose files are in ${cold.storageClass}, which cannot be read without a restore of hours (infrahub-backup thaw); lower windowDays to at most ${cold.afterDays}, drill backup "latest", or use storageClass GLACIER_IR`,
          });
      });

    // What each role lists (secrets and their customer-managed keys) within IAM's quotas for one
    // role (listedSecretsFit): the secret-reading Lambdas (with secretsAccess.tag, only secrets given
    // by complete ARN, and the keys), and each runner group's execution role.
    const tagged = config.secretsAccess.tag !== undefined;
    for (const [fn, { secrets, keys }] of Object.entries(lambdaListedArns(config))) {
      const fit = listedSecretsFit([...secrets, ...keys], config.region, config.account);
      if (!fit.fits)
        ctx.addIssue({
          code: 'custom',
          path: ['secretsAccess'],
          message: `the ${fn} Lambda would list ${secrets.length} secrets${tagged ? ' (given by complete ARN)' : ''} and ${keys.length} customer-managed keys (secretsKmsKeyArns) in its role, which needs ${fit.managedPolicies} managed policies of its own, ${fit.managedPolicies + 2} with the two AWS-managed Lambda policies: IAM attaches at most 10 to a role (IAM User Guide, "IAM and AWS STS quotas"); ${tagged ? 'share secretsKmsKeyArns between targets (one key for many secrets) and name fewer secrets by complete ARN' : `tag the targets' secrets and set secretsAccess.tag ({"key": ..., "value": ...})${config.account ? '' : ', or set "account" (its secret ARNs then take fewer characters)'}, and share secretsKmsKeyArns between targets`}, or split the fleet into several deployments`,
        });
    }
    for (let i = 0; i < config.targets.length; i += TARGETS_PER_RUNNER_GROUP) {
      const group = config.targets.slice(i, i + TARGETS_PER_RUNNER_GROUP);
      const fit = listedSecretsFit(
        [...group.flatMap(runnerSecretNames), ...group.flatMap((t) => t.secretsKmsKeyArns)],
        config.region,
        config.account,
      );
      if (!fit.fits)
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i],
          message: `targets ${i + 1}-${i + group.length} (one runner execution role) list ${fit.secrets} secrets and keys, which need ${fit.managedPolicies} managed policies besides the role's inline policy: IAM attaches at most 10 to a role (IAM User Guide, "IAM and AWS STS quotas"); shorten the secrets' names${config.account ? '' : ' or set "account"'}, or share secretsKmsKeyArns between targets`,
        });
    }
    // A name-given secret's ARN holds the account as a token without "account": CDK then sizes it at
    // 150 characters, so a longer real ARN could make a policy IAM refuses.
    if (!config.account)
      config.targets.forEach((t, i) => {
        for (const name of [...runnerSecretNames(t), t.infrahub.tokenSecret])
          if (!name.startsWith('arn:') && tokenSecretArnLength(name, config.region) > CDK_TOKEN_ARN_ESTIMATE)
            ctx.addIssue({
              code: 'custom',
              path: ['targets', i],
              message: `secret "${name.length > 40 ? `${name.slice(0, 40)}…` : name}" (${name.length} characters) makes an ARN longer than the ${CDK_TOKEN_ARN_ESTIMATE} characters CDK assumes for an ARN whose account is not known: set "account" (its ARNs are then literal and sized as they are), or give the secret's complete ARN`,
            });
      });

    const seeds = seedGrantPolicySizes(config.targets);
    if (seeds.bucket > seeds.bucketLimit || seeds.key > seeds.keyLimit)
      ctx.addIssue({
        code: 'custom',
        path: ['targets'],
        message: `the Enterprise targets' neo4j.seed.serverRoleArns would add about ${seeds.bucket} characters to the backup bucket's policy (S3 allows 20 KB per bucket policy) and ${seeds.key} to the backup key's policy (KMS allows 32 KB): each Enterprise target with seed roles adds about 600 characters to the bucket's policy whatever its roles (about 30 such targets fit): leave serverRoleArns empty and grant the servers' roles s3:GetObject and s3:GetObjectVersion under .restore-seeds/<target>/, s3:ListBucket for that prefix and kms:Decrypt through S3 in their own IAM policies, or split the fleet into several deployments`,
      });

    const resources = estimateStackResources(config);
    if (resources > MAX_STACK_RESOURCES && config.targets.length <= MAX_TARGETS) {
      ctx.addIssue({
        code: 'custom',
        path: ['schedules'],
        message: `would make the stack hold about ${resources} resources, more than CloudFormation's ${MAX_STACK_RESOURCES} per stack (${config.targets.length} targets, ${config.schedules.length} schedules, ${config.notifications.emails.length} e-mail subscriptions); use fewer schedules (one schedule may name many targets) or split the fleet into several deployments`,
      });
    }

    const { availabilityZones, subnetIds } = config.network;
    if (availabilityZones.length !== subnetIds.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['network', 'availabilityZones'],
        message: `must list one availability zone per subnet (${subnetIds.length} subnets, ${availabilityZones.length} zones)`,
      });
    }
    if (config.network.createEndpoints) {
      // The S3 gateway endpoint is a route; the interface endpoints admit 443 from named groups only.
      if (config.network.routeTableIds.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['network', 'routeTableIds'],
          message:
            'must list the route tables of the runner and Lambda subnets when createEndpoints is true: the S3 gateway endpoint adds its route to them',
        });
      }
      if (config.network.securityGroupIds.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['network', 'securityGroupIds'],
          message:
            "must name the runner tasks' security groups when createEndpoints is true: the endpoints admit HTTPS (443) from them (without any, tasks run in the VPC's default group, which the stack cannot name)",
        });
      }
    }
  });

/**
 * A refresh schedule's own rules, checked at synthesis: a `source`, one destination in `targets`
 * (the restore state machine restores one target per execution), the newest backup only (`backup`
 * "latest"), and the refresh itself allowed (refreshProblem: the destination not production, the
 * source in its refreshFrom). Names that are not configured are reported by the caller's check.
 */
function refreshScheduleProblems(
  config: { targets: readonly Target[] },
  schedule: Schedule,
  i: number,
  ctx: z.RefinementCtx,
): void {
  const issue = (path: Array<string | number>, message: string) =>
    ctx.addIssue({ code: 'custom', path: ['schedules', i, ...path], message });
  if (schedule.source === undefined)
    issue(['source'], 'is required for a refresh schedule: the target whose newest backup is restored');
  if (schedule.targets === '*' || schedule.targets.length !== 1) {
    issue(
      ['targets'],
      'must name exactly one destination for a refresh schedule (one restore per execution); give each destination a schedule of its own',
    );
    return;
  }
  const destination = schedule.targets[0] as string;
  const configured = config.targets.map((t) => t.name);
  if (schedule.source === undefined || !configured.includes(destination)) return;
  if (schedule.source === destination) {
    issue(
      ['source'],
      `names the destination "${destination}" itself: a refresh restores another target's backup (use a restore for a target's own)`,
    );
    return;
  }
  const problem = refreshProblem(config, destination, schedule.source);
  if (problem) issue(problem.field === 'target' ? ['targets', 0] : ['source'], problem.message);
}

/** The configuration as written (defaults optional). */
export type DeploymentConfigInput = z.input<typeof DeploymentConfigSchema>;
/** The configuration after parsing (defaults applied). */
export type DeploymentConfig = z.output<typeof DeploymentConfigSchema>;
export type Target = z.output<typeof TargetSchema>;
export type Schedule = z.output<typeof ScheduleSchema>;
export type Retention = z.output<typeof RetentionSchema>;
