/**
 * The backup execution's input, and its plan. The input is what a user types in the Step Functions
 * console, what a schedule sends, and what the CLI sends. The plan, made by the first state, is the
 * backup id, the options and the target names only: each iteration of the fleet Map resolves its own
 * target's work item (`targetWork`: what the state machine reads, no settings and no secrets), so the
 * state payload stays a few KiB even for 1,000 targets, far below Step Functions' 256 KiB.
 */
import { z } from 'zod';
import { parseInput } from '../config/load.js';
import {
  configuredTarget,
  type DeploymentConfig,
  MAX_TARGETS,
  notConfigured,
  type Target,
  targetSelection,
} from '../config/schema.js';
import { type RunnerStepKey, type StepBounds, stepTimeouts } from '../config/timeouts.js';
import { InvalidInputError } from '../errors.js';
import { backupIdFor } from './layout.js';
import { ComponentSchema } from './manifest.js';

export const BackupExecutionInputSchema = z.strictObject({
  /** Target names from the deployment configuration, or "*" for all of them. */
  targets: targetSelection({
    count: MAX_TARGETS,
    message: `must name at most ${MAX_TARGETS} targets (a deployment holds at most ${MAX_TARGETS})`,
  }).default('*'),
  components: z
    .array(ComponentSchema)
    .min(1, 'must name at least one component')
    .refine((c) => new Set(c).size === c.length, 'must not name a component twice')
    .default([...ComponentSchema.options]),
  /** Skip the preflight gate (recorded in the manifest as "forced"). */
  force: z.boolean().default(false),
  /** Free text kept with the execution, for the audit trail ("before upgrade to 1.5"). */
  reason: z.string().max(500).optional(),
});
export type BackupExecutionInput = z.input<typeof BackupExecutionInputSchema>;

type Component = z.infer<typeof ComponentSchema>;

/**
 * One target's work item, the state of its child execution in the fleet Map (made by AcquireLock):
 * what the backup state machine itself reads, and nothing else. Settings only a Lambda needs (the
 * target's Infrahub API, its Neo4j address and credentials secret, the retention policy, the
 * preflight bounds) are not here: each function reads them from its bundled deployment configuration
 * (core/config/bundled.ts); the runner has its connection details in its task definition. Every field
 * is read by a state (test/infra/state-machine.test.ts checks it), and the item stays small for a
 * fleet of 1,000 (the Map's items are only names).
 */
export interface TargetWork {
  target: string;
  backupId: string;
  components: Component[];
  force: boolean;
  /** The execution that holds the target's lock ($$.Execution.Id). */
  owner: string;
  /** The target's runner task definition family (its environment and ECS secrets are the target's). */
  taskDefinition: string;
  /** Which components to capture, as flags the state machine's Choice states can test. */
  capture: { database: boolean; taskManagerDb: boolean; artifacts: boolean };
  /** Neo4jEdition? chooses the offline dump (community, the DBMS stopped) or the online backup. */
  edition: Target['neo4j']['edition'];
  /**
   * Community: the ECS service to scale to zero for the offline dump; the dbms function is given it,
   * and a failure that leaves it stopped names it with the command that starts it.
   */
  dbms?: { cluster: string; service: string };
  /** Each runner step's TimeoutSeconds and HeartbeatSeconds (the states' TimeoutSecondsPath/HeartbeatSecondsPath). */
  timeouts: Record<RunnerStepKey, StepBounds>;
}

export interface BackupPlan {
  backupId: string;
  components: TargetWork['components'];
  force: boolean;
  reason?: string;
  targets: string[];
}

/** Validates the input (InvalidInput names each field) and resolves it against the configuration. */
export function planBackup(input: unknown, config: DeploymentConfig, now: Date): BackupPlan {
  // No input at all is {} (everything); null, an array, a string or a number is refused, naming it.
  const parsed = parseInput(
    BackupExecutionInputSchema,
    input === undefined ? {} : input,
    'backup execution input',
  );
  const known = new Map(config.targets.map((t) => [t.name, t]));
  const names = parsed.targets === '*' ? [...known.keys()] : parsed.targets;
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new InvalidInputError('backup execution input', [
      `targets: ${notConfigured(unknown, known.keys())}`,
    ]);
  }
  // A target named twice is refused by the input's schema (targetSelection in core/config/schema.ts).
  // Every fleet fits the execution's 12 hours: the configuration's check (fleetBoundProblem) holds
  // for all its targets at its maxConcurrency, so for any of them.
  return {
    backupId: backupIdFor(now),
    components: parsed.components,
    force: parsed.force,
    ...(parsed.reason ? { reason: parsed.reason } : {}),
    targets: names,
  };
}

/** One target's work item for an iteration of the fleet Map. */
export function targetWork(
  config: DeploymentConfig,
  plan: Omit<BackupPlan, 'targets' | 'reason'> & { owner: string },
  name: string,
): TargetWork {
  const t = configuredTarget(config, name, 'target');
  return {
    target: name,
    backupId: plan.backupId,
    components: plan.components,
    force: plan.force,
    owner: plan.owner,
    taskDefinition: runnerFamily(config.name, name),
    capture: {
      database: plan.components.includes('database'),
      taskManagerDb: plan.components.includes('task-manager-db'),
      artifacts: plan.components.includes('artifacts'),
    },
    edition: t.neo4j.edition,
    ...(t.neo4j.dbms ? { dbms: { cluster: t.neo4j.dbms.cluster, service: t.neo4j.dbms.service } } : {}),
    timeouts: stepTimeouts(t.timeouts),
  };
}

/** The ECS task definition family of a target's runner: `<deployment>-<target>-runner`. */
export function runnerFamily(deployment: string, target: string): string {
  return `${deployment}-${target}-runner`;
}

/**
 * The drill task definition for a target's image (its Neo4j version and edition, its PostgreSQL
 * major): shared by the targets that run the same versions, so a large fleet does not multiply task
 * definitions (a stack holds at most 500 resources). The target is passed at run time.
 */
export function drillFamily(
  deployment: string,
  target: { neo4j: { version: string; edition: string }; postgres: { majorVersion: number } },
): string {
  const neo4j = `${target.neo4j.edition}-${target.neo4j.version.replace(/\./g, '-')}`;
  return `${deployment}-drill-${neo4j}-pg${target.postgres.majorVersion}`;
}
