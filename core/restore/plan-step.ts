/**
 * The first state of the restore and drill state machines: validate the input, resolve the backup,
 * verify it against its manifest and check it against the target (core/restore/plan.ts), all before
 * anything is touched. Returns what the rest of the execution needs: the restore id, which
 * components to restore, the target's task definition and the runner's environment overrides, the
 * services to quiesce in order. A dry run stops after this state with this plan as its output.
 * A drill input naming `targets` (a fleet drill) is planned as a fleet instead: its validated
 * target names and options, which the drill state machine's Distributed Map runs one drill
 * execution each (DrillFleetPlan); nothing is read from S3 for it.
 */
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { restoreIdFor } from '../backup/layout.js';
import { drillFamily, runnerFamily } from '../backup/plan.js';
import { parseInput } from '../config/load.js';
import { configuredTarget, type DeploymentConfig, type Target } from '../config/schema.js';
import { type RunnerStepKey, type StepBounds, stepTimeouts } from '../config/timeouts.js';
import { infrahubVersion } from '../infrahub/tasks.js';
import type { Logger } from '../log.js';
import { readSecret } from '../secrets.js';
import {
  DrillExecutionInputSchema,
  type DrillFleetPlan,
  isDrillFleetInput,
  type Neo4jSystemPlan,
  pickDrillBackup,
  planDrillFleet,
  planRestore,
  RestoreExecutionInputSchema,
  restoreSource,
} from './plan.js';

export const RestorePlanEventSchema = z.strictObject({
  /** `drill` plans a single-target drill input, or a fleet drill input (one with `targets`). */
  kind: z.enum(['restore', 'drill']),
  /** The execution input ($$.Execution.Input). */
  input: z.unknown(),
  /** $$.Execution.Name and $$.Execution.StartTime: the restore id derives from them. */
  executionName: z.string().min(1),
  startTime: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 timestamp' }),
});
export type RestorePlanEvent = z.input<typeof RestorePlanEventSchema>;

type EnvOverride = { Name: string; Value: string };

export interface RestoreStatePlan {
  kind: 'restore';
  restoreId: string;
  target: string;
  /** The target whose backup is restored: `target` itself, or another for a refresh. */
  source: string;
  /** A refresh (`source` is another target): what becomes of the deployment id the source's graph carries. */
  refresh?: RefreshPlan;
  backupId: string;
  components: string[];
  mode: 'in-place' | 'new-database';
  newDatabaseName?: string;
  alias: string;
  dryRun: boolean;
  /** What happens to the target's Neo4j `system` database (kept, or restored with the backup's users). */
  neo4jSystem: Neo4jSystemPlan;
  warnings: string[];
  files: { count: number; bytes: number; largest: Array<{ path: string; size: number }> };
  /** Per component, the files and bytes the manifest records: the report holds what was restored to them. */
  expected: ExpectedRestore;
  restore: { database: boolean; taskManagerDb: boolean; artifacts: boolean };
  edition: 'community' | 'enterprise';
  /** Community: the DBMS service stopped around the load. */
  dbms?: { cluster: string; service: string };
  /** Services scaled to zero, in stop order (start runs them in reverse). */
  quiesce: { enabled: boolean; cluster: string; stop: string[] };
  taskDefinition: string;
  environment: EnvOverride[];
  /** Each runner step's TimeoutSeconds and HeartbeatSeconds, raised for the backup's size (core/config/timeouts.ts). */
  timeouts: Record<RunnerStepKey, StepBounds>;
  infrahubVersion: { recorded: string; running: string };
}

/**
 * A refresh's plan for Infrahub's deployment id, the `uuid` of the graph's single `Root` node
 * (Infrahub 1.11: infrahub/core/initialization.py get_root_node, reset_deployment_id). The source's
 * graph carries the source's id; a refreshed target must not report it (Infrahub's /api/info and
 * InfrahubInfo `deployment_id`). restore-neo4j reads the destination's own id before the load;
 * validate-neo4j writes it back (or `fallback`, when the destination had none) before it compares
 * the counts, with the query of Infrahub's own `infrahub db reset-deployment-id`; the services
 * restarted afterwards read it at start-up.
 */
export interface RefreshPlan {
  source: string;
  deploymentId: {
    /** `reset`: the graph is restored and its id is set back; `untouched`: the graph is not restored. */
    action: 'reset' | 'untouched';
    /** A new random UUID, written when the destination's graph holds no Root node before the load. */
    fallback: string;
    message: string;
  };
}

/** Files and bytes the manifest records for the components whose restore reports them (artifacts, task-manager-db). */
export type ExpectedRestore = Partial<
  Record<'artifacts' | 'task-manager-db', { files: number; bytes: number }>
>;

/**
 * What the manifest (its `sizes`, as the plan lists them) says the restored components hold: the
 * artifacts' file count and bytes, and `prefect.dump`'s bytes. Components not restored, or a manifest
 * without sizes, have no entry (nothing to compare).
 */
export function expectedRestore(
  components: readonly string[],
  files: ReadonlyArray<{ path: string; size: number }>,
): ExpectedRestore {
  const expected: ExpectedRestore = {};
  const sum = (fs: ReadonlyArray<{ size: number }>) => fs.reduce((n, f) => n + f.size, 0);
  const artifacts = files.filter((f) => f.path.startsWith('artifacts/'));
  if (components.includes('artifacts') && files.length > 0)
    expected.artifacts = { files: artifacts.length, bytes: sum(artifacts) };
  const dump = files.filter((f) => f.path === 'prefect.dump');
  if (components.includes('task-manager-db') && dump.length === 1)
    expected['task-manager-db'] = { files: 1, bytes: sum(dump) };
  return expected;
}

export interface DrillStatePlan {
  kind: 'drill';
  restoreId: string;
  target: string;
  backupId: string;
  components: string[];
  bytes: number;
  /** Per component, the files and bytes the manifest records: the report holds what was restored to them. */
  expected: ExpectedRestore;
  taskDefinition: string;
  environment: EnvOverride[];
  /** Each runner step's TimeoutSeconds and HeartbeatSeconds, raised for the backup's size (core/config/timeouts.ts). */
  timeouts: Record<RunnerStepKey, StepBounds>;
}

export interface RestorePlanDeps {
  s3: S3Client;
  bucket: string;
  secrets: SecretsManagerClient;
  config: DeploymentConfig;
  logger: Logger;
  random?: () => number;
  /** A new deployment id for a refresh whose destination has none (default crypto.randomUUID). */
  uuid?: () => string;
}

/** Stop order: task workers, Infrahub server, task manager, then its database unless it receives the restore. */
export function quiesceOrder(target: Target, restoringPostgres: boolean): string[] {
  const q = target.quiesce;
  if (!q) return [];
  return [...q.taskWorkers, ...q.server, ...q.taskManager, ...(restoringPostgres ? [] : q.taskManagerDb)];
}

/**
 * The plan step (the RestorePlan Lambda): a restore's plan, a single-target drill's plan, or a fleet
 * drill's plan (kind `drill` with an input naming `targets`: planDrillFleet in core/restore/plan.ts).
 *
 * @param input `{kind, input, executionName, startTime}` (RestorePlanEventSchema)
 * @throws InvalidInputError for an event or execution input that does not validate (naming each
 *   problem); ManifestError or IncompatibleBackupError for a backup that is missing, unreadable or
 *   does not fit the target (restores and single-target drills)
 */
export async function restorePlanStep(
  input: unknown,
  deps: RestorePlanDeps,
): Promise<RestoreStatePlan | DrillStatePlan | DrillFleetPlan> {
  const event = parseInput(RestorePlanEventSchema, input, 'restore plan event');
  const startTime = new Date(event.startTime);
  if (event.kind === 'drill' && isDrillFleetInput(event.input)) {
    const plan = planDrillFleet(event.input, deps.config, event.executionName);
    deps.logger.info('fleet drill planned', {
      targets: plan.targets.length,
      backup: plan.backup,
      maxConcurrency: plan.maxConcurrency,
    });
    return plan;
  }
  if (event.kind === 'drill') return planDrill(event.input, event.executionName, startTime, deps);

  const parsed = parseInput(
    RestoreExecutionInputSchema,
    event.input === undefined ? {} : event.input,
    'restore execution input',
  );
  // A refused refresh (a production destination, a source the destination may not read) is
  // refused here, before the Infrahub API or S3 is asked anything.
  const { target, source, refresh: isRefresh } = restoreSource(parsed, deps.config);
  const log = deps.logger.child({ target: target.name, step: 'restore-plan' });
  // The running version, to compare with the backup's; Infrahub may be down (that may be why we restore).
  // infrahubVersion refuses an answer that is not a version string (core/infrahub/tasks.ts), so the
  // server's text never reaches the plan, the report or the notice.
  const running = await readSecret(deps.secrets, target.infrahub.tokenSecret, 'token', {
    publicNames: [target.name],
    warn: (message) => log.warn(message),
  })
    .then((token) =>
      infrahubVersion({ address: target.infrahub.address, token, tokenSecret: target.infrahub.tokenSecret }),
    )
    .catch((err: unknown) => {
      log.warn('could not read the running Infrahub version', { error: String(err) });
      return undefined;
    });
  const plan = await planRestore(event.input, {
    s3: deps.s3,
    bucket: deps.bucket,
    config: deps.config,
    ...(running ? { runningInfrahubVersion: running } : {}),
  });
  const warnings = [...plan.warnings];
  if (!running && plan.infrahubVersion.recorded !== 'unknown') {
    warnings.push(
      `the running Infrahub version could not be read, so the backup's (${plan.infrahubVersion.recorded}) was not compared with it`,
    );
  }
  const restoreId = restoreIdFor('restore', startTime, event.executionName);
  const restore = {
    database: plan.components.includes('database'),
    taskManagerDb: plan.components.includes('task-manager-db'),
    artifacts: plan.components.includes('artifacts'),
  };
  const bytes = plan.files.reduce((n, f) => n + f.size, 0);
  const refresh = isRefresh ? refreshPlan(target.name, source, restore.database, deps.uuid) : undefined;
  const result: RestoreStatePlan = {
    kind: 'restore',
    restoreId,
    target: target.name,
    source,
    ...(refresh ? { refresh } : {}),
    backupId: plan.backupId,
    components: plan.components,
    mode: plan.mode,
    ...(plan.newDatabaseName ? { newDatabaseName: plan.newDatabaseName } : {}),
    alias: plan.alias,
    dryRun: plan.dryRun,
    neo4jSystem: plan.neo4jSystem,
    warnings,
    expected: expectedRestore(plan.components, plan.files),
    // The payload stays small: counts, and the largest files by name.
    files: {
      count: plan.files.length,
      bytes,
      largest: [...plan.files].sort((a, b) => b.size - a.size).slice(0, 20),
    },
    restore,
    edition: target.neo4j.edition,
    ...(target.neo4j.dbms
      ? { dbms: { cluster: target.neo4j.dbms.cluster, service: target.neo4j.dbms.service } }
      : {}),
    quiesce: {
      enabled: quiesceOrder(target, restore.taskManagerDb).length > 0,
      cluster: target.quiesce?.cluster ?? '',
      stop: quiesceOrder(target, restore.taskManagerDb),
    },
    // The target's runner task definition; the state machine runs it under the restore role.
    taskDefinition: runnerFamily(deps.config.name, target.name),
    environment: [
      { Name: 'BACKUP_ID', Value: plan.backupId },
      { Name: 'RESTORE_ID', Value: restoreId },
      { Name: 'RESTORE_MODE', Value: plan.mode },
      { Name: 'NEO4J_ALIAS', Value: plan.alias },
      { Name: 'NEO4J_SYSTEM', Value: plan.neo4jSystem.choice },
      ...(plan.newDatabaseName ? [{ Name: 'NEW_DATABASE_NAME', Value: plan.newDatabaseName }] : []),
      // A refresh: the runner reads the source's backup, and resets the graph's deployment id.
      ...(refresh
        ? [
            { Name: 'SOURCE_TARGET', Value: source },
            { Name: 'DEPLOYMENT_ID_FALLBACK', Value: refresh.deploymentId.fallback },
          ]
        : []),
    ],
    timeouts: stepTimeouts(target.timeouts, bytes),
    infrahubVersion: plan.infrahubVersion,
  };
  log.info(plan.dryRun ? 'restore planned (dry run: nothing will change)' : 'restore planned', {
    ...(refresh ? { source, deploymentId: refresh.deploymentId.message } : {}),
    backupId: plan.backupId,
    restoreId,
    components: plan.components,
    files: plan.files.length,
    bytes,
    neo4jSystem: plan.neo4jSystem.message,
    warnings,
  });
  return result;
}

/**
 * A refresh's plan (RefreshPlan): the deployment id set back to the destination's own after the
 * graph is loaded, or `fallback` (a new random UUID) when the destination has none. Pure but for
 * `uuid`.
 */
export function refreshPlan(
  target: string,
  source: string,
  graphRestored: boolean,
  uuid: () => string = randomUUID,
): RefreshPlan {
  const fallback = uuid();
  return {
    source,
    deploymentId: graphRestored
      ? {
          action: 'reset',
          fallback,
          message: `the graph restored from ${source} carries ${source}'s Infrahub deployment id (the Root node's uuid); ${target}'s own id is read before the load and written back after it (a new id, ${fallback}, if ${target} has none), before validation and before the services start again`,
        }
      : {
          action: 'untouched',
          fallback,
          message: `the graph is not restored: ${target} keeps its own Infrahub deployment id`,
        },
  };
}

async function planDrill(
  input: unknown,
  executionName: string,
  startTime: Date,
  deps: RestorePlanDeps,
): Promise<DrillStatePlan> {
  const parsed = parseInput(
    DrillExecutionInputSchema,
    input === undefined ? {} : input,
    'drill execution input',
  );
  const target = configuredTarget(deps.config, parsed.target, 'drill execution input');
  const backupId = await pickDrillBackup(deps.s3, deps.bucket, target.name, parsed, startTime, deps.random);
  // The same verification and compatibility checks as a restore (the disposable databases run the
  // target's versions); the running Infrahub is not involved.
  const plan = await planRestore(
    { target: target.name, backupId },
    {
      s3: deps.s3,
      bucket: deps.bucket,
      config: deps.config,
    },
  );
  const restoreId = restoreIdFor('drill', startTime, executionName);
  deps.logger.info('restore drill planned', {
    target: target.name,
    backupId,
    restoreId,
    pick: parsed.backup,
  });
  const bytes = plan.files.reduce((n, f) => n + f.size, 0);
  return {
    kind: 'drill',
    restoreId,
    target: target.name,
    backupId,
    components: plan.components,
    bytes,
    timeouts: stepTimeouts(target.timeouts, bytes),
    expected: expectedRestore(plan.components, plan.files),
    taskDefinition: drillFamily(deps.config.name, target),
    environment: [
      { Name: 'TARGET', Value: target.name },
      { Name: 'BACKUP_ID', Value: backupId },
      { Name: 'RESTORE_ID', Value: restoreId },
      // The drill task definition is shared by the targets of an image: the licence an Enterprise
      // target's disposable server is started under comes with the run (config neo4j.licence).
      ...(target.neo4j.edition === 'enterprise' && target.neo4j.licence
        ? [{ Name: 'NEO4J_LICENCE', Value: target.neo4j.licence }]
        : []),
    ],
  };
}
