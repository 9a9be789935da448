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
/**
 * The backup and restore executions' own bound, 12 hours (their TimeoutSeconds:
 * infra/constructs/backup-state-machine.ts, restore-state-machine.ts): no step may outlast it.
 */
export const EXECUTION_TIMEOUT_SECONDS = 12 * 3600;
/** No step may outlast its execution (EXECUTION_TIMEOUT_SECONDS). */
export const MAX_STEP_TIMEOUT_SECONDS = EXECUTION_TIMEOUT_SECONDS;
/**
 * The drill state machine's bound, 7 days: a fleet drill runs its targets' drills within it
 * (infra/constructs/restore-state-machine.ts).
 */
export const DRILL_EXECUTION_TIMEOUT_SECONDS = 7 * 24 * 3600;
export const MIN_STEP_TIMEOUT_SECONDS = 300;
/**
 * The smallest HeartbeatSeconds a target may set: 300. The runner stops its work when Step Functions
 * accepted none of its heartbeats for 3/4 of HeartbeatSeconds (containers/runner/src/task-token.ts,
 * acceptanceBoundMs), a quarter before the state fails with States.HeartbeatTimeout and a Retry or
 * Catch acts (a retried step, or a restore's lock released and services started). Before any
 * heartbeat was accepted its clock starts at the task's PullStartedAt (task metadata endpoint v4),
 * while the state's started at RunTask: the task's provisioning before the pull (Fargate capacity,
 * the ENI attached; no documented bound, commonly 10-30 s, more under capacity pressure) is taken
 * from that quarter, and the runner's tools need up to 5 s to end. At 120 (the former minimum) the
 * quarter is 30 s, which leaves 25 s for provisioning: too thin. At 300 it is 75 s, which leaves 70 s.
 */
export const MIN_HEARTBEAT_SECONDS = 300;
export const MAX_HEARTBEAT_SECONDS = 3600;
/** What a step is given on top of the transfer time its data needs (start-up, tools, checks). */
export const STEP_OVERHEAD_SECONDS = 900;

const seconds = (min: number, max: number, why: string) =>
  z
    .number({ error: `must be a whole number of seconds between ${min} and ${max}` })
    .int(`must be a whole number of seconds between ${min} and ${max}`)
    .min(min, `must be at least ${min} seconds`)
    .max(max, `must be at most ${max} seconds (${why})`);

export const RunnerTimeoutsSchema = z
  .strictObject({
    /** HeartbeatSeconds of every runner step (see DEFAULT_HEARTBEAT_SECONDS). */
    heartbeatSeconds: seconds(
      MIN_HEARTBEAT_SECONDS,
      MAX_HEARTBEAT_SECONDS,
      'a runner silent for longer than an hour is treated as lost',
    ).default(DEFAULT_HEARTBEAT_SECONDS),
    /** TimeoutSeconds per step; a step not named gets its default, raised for the data size. */
    steps: z
      .strictObject(
        Object.fromEntries(
          Object.keys(RUNNER_STEP_KEYS).map(
            (k) =>
              [
                k,
                seconds(
                  MIN_STEP_TIMEOUT_SECONDS,
                  MAX_STEP_TIMEOUT_SECONDS,
                  "the execution's own bound is 12 hours",
                ).optional(),
              ] as const,
          ),
        ) as Record<RunnerStepKey, z.ZodOptional<z.ZodNumber>>,
      )
      .default({}),
    /**
     * The target's data size in GiB (its largest database or artifact store, roughly): backup steps
     * without their own value get enough time to move it at `minMiBPerSecond`. A restore knows its
     * backup's size from the manifest and uses that instead.
     */
    dataSizeGiB: z
      .number()
      .positive('must be a positive number of GiB')
      .max(65_536, 'must be at most 65536 GiB (64 TiB): no runner step moves more within 12 hours')
      .optional(),
    /** The slowest transfer rate a step is given time for, in MiB/s (default 10). */
    minMiBPerSecond: z.number().positive('must be a positive number of MiB/s').max(10_000).default(10),
  })
  .superRefine((t, ctx) => {
    // A data size whose transfer alone passes a step's bound would be cut to 12 hours without a
    // word, and every backup of the target would time out.
    // Only for a size and rate their own bounds accept (zod runs this refinement after theirs fail).
    if (
      t.dataSizeGiB !== undefined &&
      t.dataSizeGiB > 0 &&
      t.dataSizeGiB <= 65_536 &&
      t.minMiBPerSecond > 0
    ) {
      const needed = STEP_OVERHEAD_SECONDS + transferSeconds(t.dataSizeGiB * 1024 ** 3, t.minMiBPerSecond);
      if (needed > MAX_STEP_TIMEOUT_SECONDS)
        ctx.addIssue({
          code: 'custom',
          path: ['dataSizeGiB'],
          message: `${t.dataSizeGiB} GiB at minMiBPerSecond ${t.minMiBPerSecond} take about ${hours(needed)} h per data step, beyond a step's 12 hours (the execution's own bound): raise minMiBPerSecond to the slowest rate you really expect (at least ${Math.ceil((t.dataSizeGiB * 1024) / (MAX_STEP_TIMEOUT_SECONDS - STEP_OVERHEAD_SECONDS))} MiB/s for this size)`,
        });
    }
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

/** Seconds to move `bytes` at `mibPerSecond` MiB/s, rounded up. */
function transferSeconds(bytes: number, mibPerSecond: number): number {
  return Math.ceil(bytes / (mibPerSecond * 1024 ** 2));
}

const hours = (seconds: number): string => (seconds / 3600).toFixed(1);

/**
 * Every step's bounds for a target: its configured TimeoutSeconds, else the default raised to
 * STEP_OVERHEAD_SECONDS + the time the larger of `bytes` (a restore's backup size) and `dataSizeGiB`
 * take at `minMiBPerSecond`, capped at the execution's 12 hours; HeartbeatSeconds the same for every
 * step.
 */
export function stepTimeouts(
  timeouts: Partial<RunnerTimeouts> | undefined,
  bytes?: number,
): Record<RunnerStepKey, StepBounds> {
  const t = RunnerTimeoutsSchema.parse(timeouts ?? {});
  // A restore's backup is compressed; its databases are rebuilt at their full size (indexes too), so
  // the configured data size, when larger, still bounds the restore steps.
  const size = Math.max(bytes ?? 0, t.dataSizeGiB !== undefined ? t.dataSizeGiB * 1024 ** 3 : 0);
  const transfer = transferSeconds(size, t.minMiBPerSecond);
  const out = {} as Record<RunnerStepKey, StepBounds>;
  for (const key of Object.keys(RUNNER_STEP_KEYS) as RunnerStepKey[]) {
    const moves = key !== 'countNeo4j' && key !== 'validateNeo4j';
    const derived = Math.max(DEFAULT_STEP_TIMEOUT_SECONDS[key], moves ? STEP_OVERHEAD_SECONDS + transfer : 0);
    const timeoutSeconds = t.steps[key] ?? Math.min(derived, MAX_STEP_TIMEOUT_SECONDS);
    out[key] = { timeoutSeconds, heartbeatSeconds: Math.min(t.heartbeatSeconds, timeoutSeconds - 1) };
  }
  return out;
}

/**
 * How many targets a fleet drill rehearses at once by default. Each drill is its own Fargate task of
 * 2 vCPU and 8 GiB (the drill task definition) running a disposable PostgreSQL and Neo4j: four hold
 * 8 vCPU, which fits beside the backups' runners under a modest account's Fargate On-Demand vCPU
 * quota (per account and Region, shared with every other Fargate task), and keep the S3 reads to
 * four backups at once. It matches the backup fleet's default maxConcurrency. A large fleet must
 * still end within the drill execution's 7 days (fleetBoundProblem: at about half an hour a drill,
 * 1,000 targets need a maxConcurrency of 3 or more).
 */
export const DRILL_FLEET_DEFAULT_CONCURRENCY = 4;
/**
 * How long one target's backup takes, as the fleet bound estimates it (seconds): STEP_OVERHEAD_SECONDS
 * (Fargate start-up of its runner tasks, the preflight gate, a Community DBMS stopped and started,
 * the manifest) plus the time its `dataSizeGiB` takes at `minMiBPerSecond` (the steps move the
 * databases and artifacts in parallel, so the largest bounds it). A drill restores and validates
 * too: twice the overhead (about half an hour for a small deployment) plus the transfer.
 */
export function estimatedTargetSeconds(
  timeouts: Partial<RunnerTimeouts> | undefined,
  kind: 'backup' | 'drill',
): number {
  const parsed = RunnerTimeoutsSchema.safeParse(timeouts ?? {});
  // Invalid timeouts are refused where they stand (targets[i].timeouts): estimated from the overhead.
  const t = parsed.success ? parsed.data : undefined;
  const transfer =
    t?.dataSizeGiB === undefined ? 0 : transferSeconds(t.dataSizeGiB * 1024 ** 3, t.minMiBPerSecond);
  return (kind === 'drill' ? 2 : 1) * STEP_OVERHEAD_SECONDS + transfer;
}

/**
 * How long a fleet execution takes when a Distributed Map runs `estimates` (seconds each, in item
 * order) at most `maxConcurrency` at once, each started as soon as one ends (the Map's
 * MaxConcurrency: AWS Step Functions Developer Guide, "Distributed Map state"), in seconds.
 * @throws RangeError for a maxConcurrency below 1
 */
export function fleetSeconds(estimates: readonly number[], maxConcurrency: number): number {
  if (!(maxConcurrency >= 1))
    throw new RangeError(`maxConcurrency must be at least 1, not ${maxConcurrency}`);
  const slots = new Array<number>(Math.min(maxConcurrency, Math.max(estimates.length, 1))).fill(0);
  for (const seconds of estimates) {
    let first = 0;
    for (let i = 1; i < slots.length; i++) if ((slots[i] as number) < (slots[first] as number)) first = i;
    slots[first] = (slots[first] as number) + seconds;
  }
  return Math.max(...slots);
}

/**
 * Why a fleet of targets cannot end within its execution's bound at `maxConcurrency`, or undefined
 * when it can by fleetSeconds' estimate: an execution that times out cannot be caught, so it ends
 * with no report and no notice, and children still running are aborted (a Community DBMS stopped for
 * its dump may be left down).
 */
export function fleetBoundProblem(
  targets: ReadonlyArray<{ timeouts?: Partial<RunnerTimeouts> | undefined }>,
  maxConcurrency: number,
  kind: 'backup' | 'drill',
): string | undefined {
  // An invalid maxConcurrency is refused where it stands (its own schema); nothing to estimate.
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > 40) return undefined;
  const estimates = targets.map((t) => estimatedTargetSeconds(t.timeouts, kind));
  const total = fleetSeconds(estimates, maxConcurrency);
  const bound = kind === 'backup' ? EXECUTION_TIMEOUT_SECONDS : DRILL_EXECUTION_TIMEOUT_SECONDS;
  if (total <= bound) return undefined;
  const each = kind === 'backup' ? '15 minutes' : '30 minutes';
  let needed = maxConcurrency;
  while (needed < 40 && fleetSeconds(estimates, needed) > bound) needed += 1;
  const fits = fleetSeconds(estimates, needed) <= bound;
  return `${targets.length} targets at maxConcurrency ${maxConcurrency} need about ${hours(total)} h by the estimate (each ${kind} about ${each} plus its timeouts.dataSizeGiB at minMiBPerSecond), beyond the ${kind} execution's ${hours(bound)} h, which ends the execution with no report or notice: ${fits ? `raise maxConcurrency to at least ${needed}` : 'even 40 at once do not fit: split the fleet into several deployments or schedules'}`;
}
