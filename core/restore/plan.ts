/**
 * The restore execution's input, and the checks that run before anything touches the target: the
 * backup is resolved (`latest` = newest complete), its manifest and every file are verified, and
 * the backup is checked against the target for compatibility. Any problem refuses the whole restore,
 * naming what is wrong.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { describeFutureBackups, isComplete, latestValidBackup, listBackupIds } from '../backup/catalog.js';
import { BackupIdSchema, parseBackupId } from '../backup/layout.js';
import {
  ComponentSchema,
  locationProblems,
  type Manifest,
  readManifest,
  structuralProblems,
} from '../backup/manifest.js';
import { archivedStatus, describeArchived } from '../backup/thaw.js';
import { describeProblems, verifyAgainst } from '../backup/verify.js';
import { parseInput } from '../config/load.js';
import {
  configuredTarget,
  type DeploymentConfig,
  MAX_TARGETS,
  notConfigured,
  refreshProblem,
  type Target,
  targetName,
  targetSelection,
} from '../config/schema.js';
import { DRILL_FLEET_DEFAULT_CONCURRENCY, fleetBoundProblem } from '../config/timeouts.js';
import { BackupArchivedError, IncompatibleBackupError, InvalidInputError, ManifestError } from '../errors.js';
import { RestoreDatabaseNameSchema } from '../neo4j-names.js';

export const RestoreExecutionInputSchema = z
  .strictObject({
    /** The target restored into (its databases, artifacts and services; its lock). */
    target: targetName,
    /**
     * The target whose backup is restored; default `target` itself (a restore). Another target
     * makes it a refresh (production into staging): `target` must not be `production` and must list
     * it in its `refreshFrom` (core/config/schema.ts refreshProblem), and the graph's deployment id
     * (Infrahub's `Root` node) is set back to `target`'s own after the load.
     */
    sourceTarget: targetName.optional(),
    /** A backup id of the source target, or "latest" for its newest complete backup. */
    backupId: z.union([z.literal('latest'), BackupIdSchema]).default('latest'),
    /** Components to restore; by default every component the backup holds. */
    components: z
      .array(ComponentSchema)
      .min(1, 'must name at least one component')
      .refine((c) => new Set(c).size === c.length, 'must not name a component twice')
      .optional(),
    /**
     * `in-place` replaces the target's databases. `new-database` (Neo4j Enterprise) seeds the graph
     * into `newDatabaseName` and, once it is proven equal to the backup, moves the alias `alias` to
     * it: the blue/green pattern.
     */
    mode: z.enum(['in-place', 'new-database']).default('in-place'),
    /**
     * new-database: the database created. Never one of the target's configured databases
     * (`neo4j.databases`: checkCompatibility refuses it), nor `system`: a blue/green restore never
     * replaces the database Infrahub uses.
     */
    newDatabaseName: RestoreDatabaseNameSchema.optional(),
    /**
     * new-database: the alias switched to the restored database; Infrahub must connect through it.
     * Aliases follow the databases' naming rule and share their namespace (Neo4j refuses an alias
     * named like a database), so it differs from newDatabaseName and the configured databases.
     */
    alias: RestoreDatabaseNameSchema.default('infrahub'),
    /**
     * Neo4j Community: what happens to the target's `system` database (users, passwords, roles,
     * privileges, the other databases' definitions). `keep` (default) loads only the data databases
     * and leaves the target's `system`, as Neo4j documents for restoring a database into a running
     * standalone instance (Operations Manual 5, "Restore a database dump": a database that is not
     * replaced is created with `CREATE DATABASE` against the target's `system`; Upgrade and Migration
     * Guide, "Back up and restore a single database in a single instance": users and roles are
     * recreated on the target). `restore` loads the backup's `system.dump` too: users, roles and
     * passwords become the backup's, so the target's Neo4j credentials secret (used to validate) must
     * be valid in the backup's `system`. An Enterprise restore seeds user databases only and never
     * replaces `system` (the target's users and roles stay), so `restore` is refused there.
     */
    neo4jSystem: z.enum(['keep', 'restore']).default('keep'),
    /** Print the plan and change nothing. */
    dryRun: z.boolean().default(false),
    /** Restore although the Infrahub version recorded in the backup differs from the running one. */
    allowInfrahubVersionMismatch: z.boolean().default(false),
    reason: z.string().max(500).optional(),
  })
  .superRefine((input, ctx) => {
    if (input.mode === 'new-database' && !input.newDatabaseName) {
      ctx.addIssue({
        code: 'custom',
        path: ['newDatabaseName'],
        message: 'is required when mode is "new-database"',
      });
    }
    if (input.mode === 'in-place' && input.newDatabaseName) {
      ctx.addIssue({
        code: 'custom',
        path: ['newDatabaseName'],
        message: 'is only used when mode is "new-database"',
      });
    }
    if (input.newDatabaseName !== undefined && input.alias === input.newDatabaseName) {
      ctx.addIssue({
        code: 'custom',
        path: ['alias'],
        message: `must differ from newDatabaseName ("${input.newDatabaseName}"): an alias and a database never share a name in Neo4j`,
      });
    }
  });
export type RestoreExecutionInput = z.input<typeof RestoreExecutionInputSchema>;

/** Which backup a drill rehearses: `latest`, the newest complete one; `random`, any complete one within `windowDays`. */
const drillBackup = z.enum(['latest', 'random']).default('latest');
const drillWindowDays = z.number().int().min(1).max(3650).default(30);
const drillReason = z.string().max(500);

/**
 * The key Step Functions reads to link an execution to the one that started it from a Task state
 * (AWS Step Functions Developer Guide, "Start workflow executions from a task state": a parameter
 * named AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID in the input, the starter's `$$.Execution.Id`).
 * It stays in the started execution's input, so the drill's input accepts it.
 */
export const STARTED_BY_EXECUTION_ID = 'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID';

/**
 * The drill execution's input for one target: rehearses that target's backup in one execution.
 * A fleet drill (DrillFleetInputSchema) starts one such execution per target, with the fleet's
 * execution (its Map child) as `AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID`.
 */
export const DrillExecutionInputSchema = z.strictObject({
  target: targetName,
  /** `latest`: the newest complete backup; `random`: any complete backup taken within `windowDays`. */
  backup: drillBackup,
  windowDays: drillWindowDays,
  reason: drillReason.optional(),
  /** The execution that started this one (an execution ARN), set by a fleet drill; see STARTED_BY_EXECUTION_ID. */
  [STARTED_BY_EXECUTION_ID]: z.string().min(1).max(2048).optional(),
});
export type DrillExecutionInput = z.input<typeof DrillExecutionInputSchema>;

/** The most drills a fleet runs at once (as the backup fleet's maxConcurrency: 40). */
export const DRILL_FLEET_MAX_CONCURRENCY = 40;
export { DRILL_FLEET_DEFAULT_CONCURRENCY };

/**
 * A fleet drill's input: one execution rehearses many targets, each as its own drill execution
 * (DrillExecutionInputSchema; its own history and notice). `targets` is "*" for every configured
 * target or a list of 1 to MAX_TARGETS distinct names (targetSelection); names that are not
 * configured are refused by planDrillFleet, naming them. Strict: a `target` beside `targets` is
 * refused (one input is one kind).
 */
export const DrillFleetInputSchema = z.strictObject({
  targets: targetSelection({
    count: MAX_TARGETS,
    message: `must name at most ${MAX_TARGETS} targets (a deployment holds at most ${MAX_TARGETS})`,
  }),
  backup: drillBackup,
  windowDays: drillWindowDays,
  reason: drillReason.optional(),
  /** Drills run at once, 1 to 40 (default DRILL_FLEET_DEFAULT_CONCURRENCY). */
  maxConcurrency: z
    .number()
    .int()
    .min(1)
    .max(DRILL_FLEET_MAX_CONCURRENCY)
    .default(DRILL_FLEET_DEFAULT_CONCURRENCY),
});
export type DrillFleetInput = z.input<typeof DrillFleetInputSchema>;

/** A fleet drill's plan: what the drill state machine's Distributed Map (DrillTargets) runs. */
export interface DrillFleetPlan {
  kind: 'drill-fleet';
  /** Configured target names, in the input's order ("*": the configuration's order). */
  targets: string[];
  backup: 'latest' | 'random';
  windowDays: number;
  /** The input's reason, or one naming this fleet execution: each target's drill carries it. */
  reason: string;
  maxConcurrency: number;
}

/** Whether a drill input is a fleet input: an object with a `targets` key (DrillFleetInputSchema). */
export function isDrillFleetInput(input: unknown): boolean {
  return typeof input === 'object' && input !== null && !Array.isArray(input) && 'targets' in input;
}

/**
 * Validates a fleet drill's input against the configuration: the schema's rules (strict; "*" or 1
 * to MAX_TARGETS names, none twice; maxConcurrency 1-40), then every name configured. Pure.
 *
 * @param input the execution input ($$.Execution.Input)
 * @param config the deployment configuration (its `targets`)
 * @param executionName the fleet execution's name, for the default reason
 * @throws InvalidInputError naming each problem (unknown targets by name, with the known ones)
 */
export function planDrillFleet(
  input: unknown,
  config: DeploymentConfig,
  executionName: string,
): DrillFleetPlan {
  const parsed = parseInput(DrillFleetInputSchema, input, 'drill fleet input');
  const known = config.targets.map((t) => t.name);
  const targets = parsed.targets === '*' ? known : parsed.targets;
  const unknown = targets.filter((t) => !known.includes(t));
  if (unknown.length > 0)
    throw new InvalidInputError('drill fleet input', [`targets: ${notConfigured(unknown, known)}`]);
  // A fleet that cannot end within the drill execution's bound would be timed out with no report.
  const tooLong = fleetBoundProblem(
    targets.map((name) => configuredTarget(config, name, 'target')),
    parsed.maxConcurrency,
    'drill',
  );
  if (tooLong) throw new InvalidInputError('drill fleet input', [`maxConcurrency: ${tooLong}`]);
  return {
    kind: 'drill-fleet',
    targets,
    backup: parsed.backup,
    windowDays: parsed.windowDays,
    reason: parsed.reason ?? `fleet drill ${executionName}`,
    maxConcurrency: parsed.maxConcurrency,
  };
}

/** Picks the backup a drill rehearses. `random` draws among the complete backups within the window. */
export async function pickDrillBackup(
  s3: S3Client,
  bucket: string,
  target: string,
  choice: { backup: 'latest' | 'random'; windowDays: number },
  now: Date,
  random: () => number = Math.random,
): Promise<string> {
  if (choice.backup === 'latest') {
    // A backup dated later than now is never "latest" (latestValidBackup passes it over).
    const latest = (await latestValidBackup(s3, bucket, target, now)).backupId;
    if (!latest) throw new ManifestError(`${target} has no complete backup to rehearse a restore with`);
    return latest;
  }
  const since = new Date(now.getTime() - choice.windowDays * 86_400_000);
  const ids = (await listBackupIds(s3, bucket, target)).filter((id) => {
    const at = parseBackupId(id);
    return at !== undefined && at >= since && at <= now;
  });
  const complete: string[] = [];
  for (const id of ids) if (await isComplete(s3, bucket, target, id)) complete.push(id);
  if (complete.length === 0) {
    throw new ManifestError(
      `${target} has no complete backup within the last ${choice.windowDays} days to rehearse a restore with`,
    );
  }
  return complete[Math.min(complete.length - 1, Math.floor(random() * complete.length))] as string;
}

/** Major and minor of a Neo4j version ("5.26.26" → [5, 26]; "2025.10.1" → [2025, 10]). */
function neo4jRelease(version: string): [number, number] {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return [major, minor];
}
const atLeast = (a: [number, number], b: [number, number]) => a[0] > b[0] || (a[0] === b[0] && a[1] >= b[1]);

/**
 * Whether a Neo4j version ("5.26.26", "2025.10.1") is at least release `minimum` ([major, minor]):
 * releases are compared by major and minor, which is where Neo4j's features and defaults change.
 */
export function neo4jAtLeast(version: string, minimum: [number, number]): boolean {
  return atLeast(neo4jRelease(version), minimum);
}

export interface CompatibilityFinding {
  severity: 'refuse' | 'warn';
  message: string;
}

/**
 * Would a Neo4j Community load of these databases fit the target? Pure; shared by the restore plan
 * and the runner (which refuses the same before loading anything). Neo4j Community serves one
 * standard database plus `system` (Neo4j Operations Manual, "Editions": multiple databases are an
 * Enterprise feature), so a backup database the target does not serve would be loaded, then fail
 * validation ("database ... does not exist on this DBMS") after the target's store was overwritten.
 *
 * @param inBackup the backup's database names (manifest `neo4j.databases[].name`)
 * @param configured the target's databases (config `target.neo4j.databases`, default neo4j and system)
 * @param system the restore's `neo4jSystem`: with `keep`, the backup's `system` is not loaded
 * @returns a sentence naming the databases refused, or undefined when the load fits
 */
export function communityLoadProblem(
  inBackup: readonly string[],
  configured: readonly string[],
  system: 'keep' | 'restore',
): string | undefined {
  const loaded = inBackup.filter((name) => name !== 'system' || system === 'restore');
  const foreign = loaded.filter((name) => name !== 'system' && !configured.includes(name));
  const users = loaded.filter((name) => name !== 'system');
  if (foreign.length > 0)
    return `the backup holds Neo4j database(s) ${foreign.join(', ')} that the Community target does not serve (its databases: ${configured.join(', ')}); Neo4j Community serves one database besides system, so loading them would overwrite the target and then fail: restore into a target that serves them, or take a backup of the target's databases only`;
  if (users.length > 1)
    return `the backup holds ${users.length} Neo4j databases besides system (${users.join(', ')}); Neo4j Community serves one: restore into an Enterprise target`;
  return undefined;
}

/**
 * Can this backup be restored into this target? Pure. Refuses what would fail or corrupt; warns about
 * what the operator should know.
 */
export function checkCompatibility(
  manifest: Manifest,
  target: Target,
  input: {
    components: readonly string[];
    mode: 'in-place' | 'new-database';
    allowInfrahubVersionMismatch: boolean;
    /** RestoreExecutionInputSchema's `neo4jSystem`; `keep` when unset. */
    neo4jSystem?: 'keep' | 'restore';
    /** new-database: the database created and the alias switched (RestoreExecutionInputSchema). */
    newDatabaseName?: string;
    alias?: string;
    /** A refresh: the source target whose backup this is (RestoreExecutionInputSchema's `sourceTarget`). */
    refreshFrom?: string;
  },
  runningInfrahubVersion?: string,
): CompatibilityFinding[] {
  const findings: CompatibilityFinding[] = [];
  const refuse = (message: string) => findings.push({ severity: 'refuse', message });
  const warn = (message: string) => findings.push({ severity: 'warn', message });

  if (input.components.includes('database') && input.neo4jSystem === 'restore') {
    if (input.refreshFrom !== undefined) {
      refuse(
        `neo4jSystem "restore" in a refresh from ${input.refreshFrom}: the source's system database would give ${target.name} the Neo4j users, roles and password hashes of ${input.refreshFrom}, and the credentials in ${target.neo4j.credentialsSecret} would no longer be valid (validation fails after the data was replaced); a refresh keeps the destination's system: use "keep"`,
      );
    } else if (target.neo4j.edition === 'enterprise') {
      refuse(
        'neo4jSystem "restore" applies to Neo4j Community loads; an Enterprise restore seeds user databases only and never replaces system (the target\'s users, roles and privileges stay): use "keep"',
      );
    } else if (!manifest.neo4j?.databases.some((d) => d.name === 'system')) {
      refuse('neo4jSystem "restore": the backup holds no system database');
    } else {
      warn(
        `neo4jSystem "restore": the backup's system database replaces the target's: users, roles, privileges and passwords will be those of the backup, and the Neo4j credentials in ${target.neo4j.credentialsSecret} (used to validate the restore, and by Infrahub) must be valid in the backup's system database, or validation fails after the data was replaced`,
      );
    }
  }

  const missing = input.components.filter((c) => !manifest.components.includes(c));
  if (missing.length > 0)
    refuse(`the backup holds no ${missing.join(', ')} (it holds ${manifest.components.join(', ')})`);

  if (input.components.includes('database')) {
    const from = manifest.neo4j_edition;
    const to = target.neo4j.edition;
    const backupVersion = manifest.versions?.neo4j?.server ?? manifest.versions?.neo4j?.tool;
    if (
      from === 'enterprise' &&
      to === 'community' &&
      !atLeast(neo4jRelease(target.neo4j.version), [5, 20])
    ) {
      refuse(
        `an Enterprise backup loads into Community only from Neo4j 5.20; the target runs ${target.neo4j.version}`,
      );
    }
    if (from === 'community' && to === 'enterprise') {
      refuse(
        'a Community dump is not restored into an Enterprise target; restore it into Community, then migrate',
      );
    }
    if (backupVersion && !atLeast(neo4jRelease(target.neo4j.version), neo4jRelease(backupVersion))) {
      refuse(
        `the backup was taken from Neo4j ${backupVersion}; the target runs ${target.neo4j.version}, which cannot read a newer store`,
      );
    }
    if (to === 'community' && manifest.neo4j) {
      const problem = communityLoadProblem(
        manifest.neo4j.databases.map((d) => d.name),
        target.neo4j.databases,
        input.neo4jSystem ?? 'keep',
      );
      if (problem) refuse(problem);
      if (target.neo4j.edition === 'community' && target.neo4j.restoreLoad === 'in-place')
        warn(
          `neo4j.restoreLoad is "in-place": the databases are loaded over ${target.name}'s once every file is verified, so a load that fails part-way leaves it to be restored again ("staged", the default, keeps its store as it was until every database has loaded)`,
        );
    }
    if (to === 'enterprise' && from === 'enterprise') {
      // Seeded restores (containers/runner/src/components/seed-neo4j.ts): what the plan can tell.
      if (!atLeast(neo4jRelease(target.neo4j.version), [5, 26])) {
        refuse(
          `an Enterprise restore is seeded from the backup chain in S3, which needs the CloudSeedProvider of Neo4j 5.26 or later; the target runs ${target.neo4j.version}`,
        );
      }
      if (neo4jRelease(target.neo4j.version)[0] === 5) {
        warn(
          `on Neo4j ${target.neo4j.version} the default dbms.databases.seed_from_uri_providers is "S3SeedProvider,CloudSeedProvider", which sends s3:// seeds to the S3SeedProvider: the restore refuses that before changing anything; set it to "CloudSeedProvider" on every server`,
        );
      }
      if (target.neo4j.seed.serverRoleArns.length === 0) {
        warn(
          `neo4j.seed.serverRoleArns is empty: the Neo4j servers of ${target.name} must already be allowed to list and read s3 prefix .restore-seeds/${target.name}/ of the backup bucket and to decrypt with its key, and run with AWS_REGION set, or the seeded database stays offline (docs/deployment.md, "Neo4j Enterprise restores")`,
        );
      }
      if (input.mode === 'in-place' && !target.quiesce) {
        warn(
          `in-place restore of ${target.name} without quiesce: Infrahub keeps running, and a write to a recreated database before it is proven (it must end at the backup's last transaction) fails the restore after the live database was replaced; configure quiesce, or restore with mode "new-database"`,
        );
      }
      if (input.mode === 'new-database') {
        warn(
          `privileges granted on the current database do not follow the alias to ${input.newDatabaseName ?? 'the new database'}: unless Infrahub's Neo4j user has access to all databases, grant its role access to the new database before the alias moves`,
        );
        warn(
          `backups take the databases named in neo4j.databases (${target.neo4j.databases.join(', ')}), not the alias: once the alias has moved, list ${input.newDatabaseName ?? 'the new database'} there in place of the database Infrahub used before and deploy again, or the next backups keep taking the old database`,
        );
      }
    }
    if (input.mode === 'new-database' && to !== 'enterprise') {
      refuse('mode "new-database" (restore under a new name and switch the alias) needs Neo4j Enterprise');
    }
    if (input.mode === 'new-database') {
      const configured = target.neo4j.databases;
      if (input.newDatabaseName !== undefined && configured.includes(input.newDatabaseName)) {
        refuse(
          `newDatabaseName "${input.newDatabaseName}" is one of the target's databases (neo4j.databases: ${configured.join(', ')}): a new-database restore never replaces a database; name a database the target does not have, or restore in place`,
        );
      }
      if (input.alias !== undefined && configured.includes(input.alias)) {
        refuse(
          `alias "${input.alias}" is one of the target's databases (neo4j.databases: ${configured.join(', ')}): Neo4j refuses an alias named like a database; choose another alias (default "infrahub")`,
        );
      }
    }
  }

  if (input.components.includes('task-manager-db')) {
    const server = manifest.versions?.postgres?.server;
    const major = server ? Number(server.split('.')[0]) : undefined;
    if (major !== undefined && target.postgres.majorVersion < major) {
      refuse(
        `the task-manager dump comes from PostgreSQL ${server}; the target runs ${target.postgres.majorVersion}, older than the dump`,
      );
    }
  }

  const recorded = manifest.infrahub_version;
  if (runningInfrahubVersion && recorded !== 'unknown' && recorded !== runningInfrahubVersion) {
    const message = `the backup was taken with Infrahub ${recorded}; the target runs ${runningInfrahubVersion}`;
    if (input.allowInfrahubVersionMismatch) warn(`${message} (allowed by allowInfrahubVersionMismatch)`);
    else refuse(`${message}; set allowInfrahubVersionMismatch to restore anyway`);
  }
  return findings;
}

export interface RestorePlan {
  target: string;
  /** The target whose backup is restored: `target` for a restore, another for a refresh. */
  source: string;
  /** Whether this is a refresh (`source` differs from `target`). */
  refresh: boolean;
  backupId: string;
  components: string[];
  mode: 'in-place' | 'new-database';
  newDatabaseName?: string;
  dryRun: boolean;
  neo4jEdition?: 'community' | 'enterprise';
  alias: string;
  /** Files that will be read, with sizes, from the verified manifest. */
  files: Array<{ path: string; size: number }>;
  /** What happens to the target's Neo4j `system` database, in words the dry run shows. */
  neo4jSystem: Neo4jSystemPlan;
  warnings: string[];
  infrahubVersion: { recorded: string; running: string };
}

export interface Neo4jSystemPlan {
  /** The input's `neo4jSystem`. */
  choice: 'keep' | 'restore';
  /** `kept`: the target's users stay; `restored`: the backup's replace them; `untouched`: no graph restore. */
  action: 'kept' | 'restored' | 'untouched';
  message: string;
}

/** The plan's sentence about `system` (see RestoreExecutionInputSchema's `neo4jSystem`). Pure. */
export function describeNeo4jSystem(
  manifest: Manifest,
  target: Target,
  components: readonly string[],
  choice: 'keep' | 'restore',
): Neo4jSystemPlan {
  if (!components.includes('database'))
    return {
      choice,
      action: 'untouched',
      message: 'Neo4j is not restored: its system database is untouched',
    };
  const inBackup = manifest.neo4j?.databases.some((d) => d.name === 'system') ?? false;
  if (choice === 'restore') {
    return {
      choice,
      action: 'restored',
      message: `system is RESTORED from the backup: the target's Neo4j users, roles, privileges and passwords are replaced by the backup's; the credentials in ${target.neo4j.credentialsSecret} must be valid in the backup's system database`,
    };
  }
  return {
    choice,
    action: 'kept',
    message:
      target.neo4j.edition === 'enterprise'
        ? "system is kept: an Enterprise restore seeds user databases only (the target's users, roles and passwords stay; recreating in place keeps the database's privileges)"
        : `system is kept: the target's Neo4j users, roles and passwords stay${inBackup ? ' (the backup\'s system.dump is not loaded; neo4jSystem "restore" would load it)' : ''}`,
  };
}

/**
 * The source and destination of a restore execution input, once the configuration allows them:
 * `sourceTarget` (default `target`) and whether it is a refresh. Pure; no S3 call: a refused
 * refresh is refused before any backup is read.
 *
 * @throws InvalidInputError naming `target` when it is not configured or is `production` (a
 *   production target is never a refresh destination), or `sourceTarget` when it is not configured
 *   or not in the destination's `refreshFrom` (refreshProblem in core/config/schema.ts)
 */
export function restoreSource(
  parsed: { target: string; sourceTarget?: string | undefined },
  config: Pick<DeploymentConfig, 'targets'>,
): { target: Target; source: string; refresh: boolean } {
  const target = configuredTarget(config, parsed.target, 'restore execution input');
  const source = parsed.sourceTarget ?? target.name;
  const problem = refreshProblem(config, target.name, source);
  if (problem)
    throw new InvalidInputError('restore execution input', [`${problem.field}: ${problem.message}`]);
  return { target, source, refresh: source !== target.name };
}

/**
 * Validates the input, resolves the backup, verifies every file against the manifest (S3 checksums,
 * sizes and version ids; `deep` hashes every byte), checks that no file is archived unrestored
 * (GLACIER, DEEP_ARCHIVE: a HEAD of each archived one) and checks compatibility. Reads only. A
 * refresh (`sourceTarget` another target) is allowed by the configuration first (restoreSource:
 * refused before anything is read), reads and verifies the SOURCE's backup (`latest`: the source's
 * newest complete one) and checks it against the DESTINATION (`target`): its Neo4j edition and
 * version, PostgreSQL major, databases and the Infrahub version it runs.
 * @throws BackupArchivedError when files are archived and not restored, naming their class, the
 *   `infrahub-backup thaw` command and its AWS CLI equivalent (core/backup/thaw.ts)
 * @throws IncompatibleBackupError, ManifestError, InvalidInput as the checks find; StorageError
 */
export async function planRestore(
  input: unknown,
  deps: {
    s3: S3Client;
    bucket: string;
    config: DeploymentConfig;
    runningInfrahubVersion?: string;
    deep?: boolean;
    /** The time `latest` is resolved at (default the clock): a backup dated later is passed over. */
    now?: () => Date;
  },
): Promise<RestorePlan> {
  const parsed = parseInput(
    RestoreExecutionInputSchema,
    input === undefined ? {} : input,
    'restore execution input',
  );
  const { target, source, refresh } = restoreSource(parsed, deps.config);
  // `latest` is the newest backup with a valid manifest: a refused one is passed over and named.
  const latest =
    parsed.backupId === 'latest'
      ? await latestValidBackup(deps.s3, deps.bucket, source, deps.now?.() ?? new Date())
      : undefined;
  const backupId = latest ? latest.backupId : parsed.backupId;
  if (!backupId) throw new ManifestError(`${source} has no complete backup to restore`);
  const what = refresh
    ? `refresh of ${target.name} from ${source}/${backupId}`
    : `restore of ${target.name}/${backupId}`;
  const refusedBefore = `${what} refused before touching the target`;
  // readManifest refuses a manifest with an unsafe path, a key outside this backup's prefix or a
  // component without its files (core/backup/manifest.ts); the plan says so as a refusal.
  const manifest = await readManifest(deps.s3, deps.bucket, source, backupId).catch((err: unknown) => {
    if (err instanceof ManifestError) throw new IncompatibleBackupError(`${refusedBefore}: ${err.message}`);
    throw err;
  });
  if (!manifest) {
    throw new ManifestError(
      `${source}/${backupId} has no manifest: the backup is incomplete, failed or absent`,
    );
  }
  // Checked again on the object itself, whatever produced it: every path safe, every key this
  // backup's own (`SOURCE/BACKUP_ID/<path>`), before any file is read or anything touched.
  const unsafe = [
    ...structuralProblems(manifest).map((p) => `${p.path.join('.')}: ${p.message}`),
    ...locationProblems(manifest, source, backupId),
  ];
  if (unsafe.length > 0) {
    throw new IncompatibleBackupError(
      `${refusedBefore}: its manifest is unsafe:\n${unsafe.map((u) => `  - ${u}`).join('\n')}`,
    );
  }
  const report = await verifyAgainst(deps.s3, deps.bucket, source, backupId, manifest, {
    deep: deps.deep,
  });
  if (!report.ok) {
    throw new IncompatibleBackupError(
      `${refusedBefore}: the backup does not match its manifest:\n${describeProblems(report).join('\n')}`,
    );
  }
  // Files moved to GLACIER or DEEP_ARCHIVE (retention.coldStorage) are read only once restored: a
  // HEAD of each says whether it is; one that is not refuses the whole restore, naming how to thaw.
  const archived = report.archived
    ? await archivedStatus(
        deps.s3,
        deps.bucket,
        report.archived.map((a) => ({
          key: a.key,
          ...(a.versionId ? { versionId: a.versionId } : {}),
          storageClass: a.storageClass,
        })),
      )
    : [];
  const frozen = archived.filter((a) => a.state !== 'restored');
  if (frozen.length > 0)
    throw new BackupArchivedError(
      `${refusedBefore}: ${describeArchived(deps.bucket, source, backupId, frozen)}`,
    );
  const thawedUntil = archived
    .map((a) => a.expires)
    .filter((e): e is string => e !== undefined)
    .sort()[0];
  const components = parsed.components ?? manifest.components;
  const findings = checkCompatibility(
    manifest,
    target,
    {
      components,
      mode: parsed.mode,
      allowInfrahubVersionMismatch: parsed.allowInfrahubVersionMismatch,
      neo4jSystem: parsed.neo4jSystem,
      ...(parsed.newDatabaseName !== undefined ? { newDatabaseName: parsed.newDatabaseName } : {}),
      alias: parsed.alias,
      ...(refresh ? { refreshFrom: source } : {}),
    },
    deps.runningInfrahubVersion,
  );
  const refused = findings.filter((f) => f.severity === 'refuse');
  if (refused.length > 0) {
    throw new IncompatibleBackupError(
      `${refusedBefore}:\n${refused.map((f) => `  - ${f.message}`).join('\n')}`,
    );
  }
  return {
    target: target.name,
    source,
    refresh,
    backupId,
    components,
    mode: parsed.mode,
    ...(parsed.newDatabaseName ? { newDatabaseName: parsed.newDatabaseName } : {}),
    dryRun: parsed.dryRun,
    ...(manifest.neo4j_edition ? { neo4jEdition: manifest.neo4j_edition } : {}),
    alias: parsed.alias,
    files: Object.entries(manifest.sizes ?? {}).map(([path, size]) => ({ path, size })),
    neo4jSystem: describeNeo4jSystem(manifest, target, components, parsed.neo4jSystem),
    warnings: [
      ...(latest?.future.length
        ? [describeFutureBackups(source, latest.future, deps.now?.() ?? new Date())]
        : []),
      ...(latest?.refused ?? []).map(
        (r) =>
          `newer backup ${r.backupId} was passed over for "latest": its manifest is refused: ${r.reason}`,
      ),
      ...findings.filter((f) => f.severity === 'warn').map((f) => f.message),
      ...(archived.length > 0
        ? [
            `${archived.length} file(s) are archived (${[...new Set(archived.map((a) => a.storageClass))].join(', ')}) and restored for reading${thawedUntil ? ` until ${thawedUntil}` : ''}: run the restore before then`,
          ]
        : []),
      // Quick verification could not hold these to the manifest's SHA-256 (core/backup/verify.ts);
      // the restore steps hash every byte they read and refuse a mismatch.
      ...(report.proof.unproven.length > 0
        ? [
            `${report.proof.unproven.length} multipart file(s) without an upload record were held to S3's composite checksum only; the restore hashes their bytes against the manifest as it reads them: ${report.proof.unproven.join(', ')}`,
          ]
        : []),
    ],
    infrahubVersion: {
      recorded: manifest.infrahub_version,
      running: deps.runningInfrahubVersion ?? 'unknown',
    },
  };
}
