/**
 * How long each runner step may take and how long it may go without a heartbeat: a target's
 * `timeouts` block, its defaults per step, and the values a state gets at run time (the backup
 * work item's and the restore/drill plan's `timeouts`, read by the runner states' TimeoutSecondsPath
 * and HeartbeatSecondsPath: infra/constructs/runner-tasks.ts).
 *
 * Step Functions semantics (AWS Step Functions Developer Guide, "Task workflow state": TimeoutSeconds
 * "If the task runs longer than the specified seconds, this state fails with a States.Timeout error
 * name"; HeartbeatSeconds "If more time than the specified seconds elapses between heartbeats from
 * the task, this state fails with a States.HeartbeatTimeout error name. Must be a positive, non-zero
 * integer less than the number of seconds specified in the TimeoutSeconds field").
 */
import { z } from 'zod';
import type { RunnerSubcommand } from '../runner-subcommands.js';

/** The runner's steps by their key in `timeouts.steps` (camelCase of the runner subcommand). */
export const RUNNER_STEP_KEYS = {
  backupPostgres: 'backup-postgres',
  backupNeo4j: 'backup-neo4j',
  countNeo4j: 'count-neo4j',
  backupArtifacts: 'backup-artifacts',
  restorePostgres: 'restore-postgres',
  restoreNeo4j: 'restore-neo4j',
  validateNeo4j: 'validate-neo4j',
  restoreArtifacts: 'restore-artifacts',
  drill: 'drill',
} as const satisfies Record<string, RunnerSubcommand>;
export type RunnerStepKey = keyof typeof RUNNER_STEP_KEYS;

/**
 * The `timeouts.steps` key of a runner subcommand (`backup-neo4j` → `backupNeo4j`).
 * @throws Error for a subcommand that has no key (a programming error: every runner state's
 *   subcommand is one of RUNNER_STEP_KEYS' values)
 */
export function stepKeyOf(subcommand: string): RunnerStepKey {
  const key = (Object.keys(RUNNER_STEP_KEYS) as RunnerStepKey[]).find(
    (k) => RUNNER_STEP_KEYS[k] === subcommand,
  );
  if (!key) throw new Error(`runner subcommand ${subcommand} has no timeouts.steps key`);
  return key;
}

/**
 * Each step's TimeoutSeconds when the target's configuration names none, for a small deployment: a
 * data step gets more where the data size is known (stepTimeouts).
 */
export const DEFAULT_STEP_TIMEOUT_SECONDS: Record<RunnerStepKey, number> = {
  backupPostgres: 2 * 3600,
  backupNeo4j: 4 * 3600,
  countNeo4j: 1800,
  backupArtifacts: 4 * 3600,
  restorePostgres: 4 * 3600,
  restoreNeo4j: 4 * 3600,
  validateNeo4j: 1800,
  restoreArtifacts: 4 * 3600,
  drill: 6 * 3600,
};

/**
 * The default HeartbeatSeconds: the runner's first heartbeat comes once its task started, so this
 * covers the task's start-up (Fargate provisioning, the ENI, the image pull: usually under two
 * minutes, up to several for a large image or a cold registry) as well as the longest quiet spell
 * of a data step (the runner's own stall bound is 3/4 of it: containers/runner/src/task-token.ts).
 */
export const DEFAULT_HEARTBEAT_SECONDS = 600;
/** The executions' own bound (12 hours, backup-state-machine.ts): no step may outlast it. */
export const MAX_STEP_TIMEOUT_SECONDS = 12 * 3600;
export const MIN_STEP_TIMEOUT_SECONDS = 300;
export const MIN_HEARTBEAT_SECONDS = 120;
export const MAX_HEARTBEAT_SECONDS = 3600;
/** What a step is given on top of the transfer time its data needs (start-up, tools, checks). */
export const STEP_OVERHEAD_SECONDS = 900;

const seconds = (min: number, max: number) =>
  z
    .number({ error: `must be a whole number of seconds between ${min} and ${max}` })
    .int(`must be a whole number of seconds between ${min} and ${max}`)
    .min(min, `must be at least ${min} seconds`)
    .max(max, `must be at most ${max} seconds (the execution's own bound is 12 hours)`);

export const RunnerTimeoutsSchema = z
  .strictObject({
    /** HeartbeatSeconds of every runner step (see DEFAULT_HEARTBEAT_SECONDS). */
    heartbeatSeconds: seconds(MIN_HEARTBEAT_SECONDS, MAX_HEARTBEAT_SECONDS).default(
      DEFAULT_HEARTBEAT_SECONDS,
    ),
    /** TimeoutSeconds per step; a step not named gets its default, raised for the data size. */
    steps: z
      .strictObject(
        Object.fromEntries(
          Object.keys(RUNNER_STEP_KEYS).map(
            (k) => [k, seconds(MIN_STEP_TIMEOUT_SECONDS, MAX_STEP_TIMEOUT_SECONDS).optional()] as const,
          ),
        ) as Record<RunnerStepKey, z.ZodOptional<z.ZodNumber>>,
      )
      .default({}),
    /**
     * The target's data size in GiB (its largest database or artifact store, roughly): backup steps
     * without their own value get enough time to move it at `minMiBPerSecond`. A restore knows its
     * backup's size from the manifest and uses that instead.
     */
    dataSizeGiB: z.number().positive('must be a positive number of GiB').max(65_536).optional(),
    /** The slowest transfer rate a step is given time for, in MiB/s (default 10). */
    minMiBPerSecond: z.number().positive('must be a positive number of MiB/s').max(10_000).default(10),
  })
  .superRefine((t, ctx) => {
    for (const [key, value] of Object.entries(t.steps)) {
      if (value !== undefined && value <= t.heartbeatSeconds)
        ctx.addIssue({
          code: 'custom',
          path: ['steps', key],
          message: `must be more than heartbeatSeconds (${t.heartbeatSeconds}): Step Functions requires HeartbeatSeconds below TimeoutSeconds`,
        });
    }
  });
export type RunnerTimeouts = z.output<typeof RunnerTimeoutsSchema>;

/** One state's bounds, as its TimeoutSecondsPath and HeartbeatSecondsPath read them. */
export interface StepBounds {
  timeoutSeconds: number;
  heartbeatSeconds: number;
}

/**
 * Every step's bounds for a target: its configured TimeoutSeconds, else the default raised to
 * STEP_OVERHEAD_SECONDS + the time `bytes` (the restore's backup size, else `dataSizeGiB`) take at
 * `minMiBPerSecond`, capped at the execution's 12 hours; HeartbeatSeconds the same for every step.
 */
export function stepTimeouts(
  timeouts: Partial<RunnerTimeouts> | undefined,
  bytes?: number,
): Record<RunnerStepKey, StepBounds> {
  const t = RunnerTimeoutsSchema.parse(timeouts ?? {});
  const size = bytes ?? (t.dataSizeGiB !== undefined ? t.dataSizeGiB * 1024 ** 3 : 0);
  const transfer = Math.ceil(size / (t.minMiBPerSecond * 1024 ** 2));
  const out = {} as Record<RunnerStepKey, StepBounds>;
  for (const key of Object.keys(RUNNER_STEP_KEYS) as RunnerStepKey[]) {
    const moves = key !== 'countNeo4j' && key !== 'validateNeo4j';
    const derived = Math.max(DEFAULT_STEP_TIMEOUT_SECONDS[key], moves ? STEP_OVERHEAD_SECONDS + transfer : 0);
    const timeoutSeconds = t.steps[key] ?? Math.min(derived, MAX_STEP_TIMEOUT_SECONDS);
    out[key] = { timeoutSeconds, heartbeatSeconds: Math.min(t.heartbeatSeconds, timeoutSeconds - 1) };
  }
  return out;
}
