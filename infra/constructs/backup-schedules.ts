import { createHash } from 'node:crypto';
import { TimeZone } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { BackupExecutionInput } from '../../core/backup/plan.js';
import { type DeploymentConfig, DRILL_SCHEDULE_DEFAULTS, type Schedule } from '../../core/config/schema.js';
import type { DrillExecutionInput, DrillFleetInput, RestoreExecutionInput } from '../../core/restore/plan.js';

export interface BackupSchedulesProps {
  readonly config: DeploymentConfig;
  readonly stateMachine: sfn.IStateMachine;
  /** Started by "restore-drill" schedules: one execution per schedule run, whatever its targets. */
  readonly drillStateMachine?: sfn.IStateMachine;
  /** Started by "refresh" schedules: one restore execution per run, into the schedule's one target. */
  readonly restoreStateMachine?: sfn.IStateMachine;
}

/** The execution input a schedule sends: its targets, and its name as the reason (audit trail). */
export function scheduledBackupInput(schedule: Schedule): BackupExecutionInput {
  return { targets: schedule.targets, reason: `schedule ${schedule.name} (${schedule.expression})` };
}

/**
 * The drill input a restore-drill schedule sends, one execution per run: a schedule naming one
 * target sends that target's drill input (DrillExecutionInputSchema: one drill execution, as
 * before fleets); any other (several names, or "*", kept as "*" so the drill plans the configured
 * targets when it runs) sends a fleet input (DrillFleetInputSchema), which the drill state machine
 * runs as one drill execution per target, at the fleet default's concurrency.
 */
export function scheduledDrillInput(schedule: Schedule): DrillExecutionInput | DrillFleetInput {
  const reason = `schedule ${schedule.name} (${schedule.expression})`;
  const common = {
    backup: schedule.backup ?? DRILL_SCHEDULE_DEFAULTS.backup,
    windowDays: schedule.windowDays ?? DRILL_SCHEDULE_DEFAULTS.windowDays,
    reason,
  };
  const [only, ...others] = schedule.targets === '*' ? [] : schedule.targets;
  return only !== undefined && others.length === 0
    ? { target: only, ...common }
    : {
        targets: schedule.targets,
        ...common,
        ...(schedule.maxConcurrency !== undefined ? { maxConcurrency: schedule.maxConcurrency } : {}),
      };
}

/**
 * The restore input a refresh schedule sends, one execution per run: the source's newest complete
 * backup restored into the schedule's one target (RestoreExecutionInputSchema `sourceTarget`;
 * the configuration checked that the target is not production and lists the source in its
 * refreshFrom, and the restore plan checks it again when it runs).
 * @throws Error for a schedule that is not a valid refresh schedule (the configuration refuses it first)
 */
export function scheduledRefreshInput(schedule: Schedule): RestoreExecutionInput {
  const [target, ...others] = schedule.targets === '*' ? [] : schedule.targets;
  if (schedule.kind !== 'refresh' || !schedule.source || target === undefined || others.length > 0)
    throw new Error(`schedule ${schedule.name} is not a refresh of one target from a source`);
  return {
    target,
    sourceTarget: schedule.source,
    backupId: 'latest',
    reason: `schedule ${schedule.name} (${schedule.expression}): refresh of ${target} from ${schedule.source}`,
  };
}

/** EventBridge Scheduler's bound on a schedule's description (Scheduler API Reference, CreateSchedule: Description, 0-512). */
export const MAX_SCHEDULE_DESCRIPTION = 512;

/** The most characters of target names a description lists: the rest of its 512 holds the words around them. */
const DESCRIBED_NAMES = MAX_SCHEDULE_DESCRIPTION - 112;

/**
 * A schedule's targets in words for its description: "every target", the names, or their count
 * when the names would not fit Scheduler's 512-character description (a deploy would fail).
 */
export function describeScheduleTargets(selection: Schedule['targets']): string {
  if (selection === '*') return 'every target';
  const names = selection.join(', ');
  return names.length <= DESCRIBED_NAMES ? names : `${selection.length} targets`;
}

/** EventBridge Scheduler's bound on a schedule name (Scheduler API Reference, CreateSchedule: Name, 1-64 of [0-9a-zA-Z-_.]). */
export const MAX_SCHEDULE_NAME = 64;

/** Two schedules of the stack would get the same name. */
export class ScheduleNameError extends Error {
  override name = 'ScheduleNameError';
}

/**
 * The name of a schedule made of `parts` (the deployment's and the schedule's name: slugs of
 * lowercase letters, digits and "-"), joined with "-". Kept as is when it
 * fits EventBridge Scheduler's 64 characters; otherwise a readable prefix cut to 55 characters
 * (no trailing "-") plus "-" and the first 8 hex digits of the SHA-256 of the full name, so two
 * long names that share their first 64 characters still differ. Always 1-64 characters of
 * [a-z0-9-], so a configuration of valid slugs cannot yield an invalid schedule name.
 */
export function scheduleName(...parts: string[]): string {
  const full = parts.join('-');
  if (full.length <= MAX_SCHEDULE_NAME) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  return `${full.slice(0, MAX_SCHEDULE_NAME - hash.length - 1).replace(/-+$/, '')}-${hash}`;
}

/**
 * EventBridge Scheduler schedules, one per configured schedule. "backup" starts the backup state
 * machine with a valid execution input; "restore-drill" starts the drill state machine with
 * `scheduledDrillInput` (a fleet of targets in one execution, each target's drill its own child
 * execution); "refresh" starts the restore state machine with `scheduledRefreshInput`. Names come from `scheduleName` (at most 64 characters); two equal names throw
 * `ScheduleNameError` at synth.
 */
export class BackupSchedules extends Construct {
  readonly schedules: scheduler.Schedule[] = [];
  private readonly names = new Map<string, string>();

  constructor(scope: Construct, id: string, props: BackupSchedulesProps) {
    super(scope, id);
    for (const schedule of props.config.schedules.filter((s) => s.kind === 'backup')) {
      this.schedules.push(
        new scheduler.Schedule(this, schedule.name, {
          scheduleName: this.uniqueName(props.config.name, schedule.name),
          description: `Infrahub backup of ${describeScheduleTargets(schedule.targets)}`,
          schedule: scheduler.ScheduleExpression.expression(
            schedule.expression,
            TimeZone.of(schedule.timezone),
          ),
          enabled: schedule.enabled,
          target: new targets.StepFunctionsStartExecution(props.stateMachine, {
            input: scheduler.ScheduleTargetInput.fromObject(scheduledBackupInput(schedule)),
            // A missed start is retried for an hour; a backup much later than planned helps nobody.
            retryAttempts: 3,
          }),
        }),
      );
    }
    const drills = props.config.schedules.filter((s) => s.kind === 'restore-drill');
    if (drills.length > 0 && !props.drillStateMachine)
      throw new Error('restore-drill schedules need the drill state machine');
    for (const schedule of drills) {
      const input = scheduledDrillInput(schedule);
      this.schedules.push(
        new scheduler.Schedule(this, schedule.name, {
          scheduleName: this.uniqueName(props.config.name, schedule.name),
          description: `Infrahub restore drill of ${describeScheduleTargets(schedule.targets)} (${schedule.backup ?? DRILL_SCHEDULE_DEFAULTS.backup} backup)`,
          schedule: scheduler.ScheduleExpression.expression(
            schedule.expression,
            TimeZone.of(schedule.timezone),
          ),
          enabled: schedule.enabled,
          target: new targets.StepFunctionsStartExecution(props.drillStateMachine as sfn.IStateMachine, {
            input: scheduler.ScheduleTargetInput.fromObject(input),
            retryAttempts: 3,
          }),
        }),
      );
    }
    const refreshes = props.config.schedules.filter((s) => s.kind === 'refresh');
    if (refreshes.length > 0 && !props.restoreStateMachine)
      throw new Error('refresh schedules need the restore state machine');
    for (const schedule of refreshes)
      this.addRefresh(props.config, schedule, props.restoreStateMachine as sfn.IStateMachine);
  }

  /** One refresh schedule: starts the restore state machine with scheduledRefreshInput. */
  private addRefresh(config: DeploymentConfig, schedule: Schedule, machine: sfn.IStateMachine): void {
    const input = scheduledRefreshInput(schedule);
    this.schedules.push(
      new scheduler.Schedule(this, schedule.name, {
        scheduleName: this.uniqueName(config.name, schedule.name),
        description: `Infrahub refresh of ${input.target} from the latest backup of ${input.sourceTarget}`,
        schedule: scheduler.ScheduleExpression.expression(
          schedule.expression,
          TimeZone.of(schedule.timezone),
        ),
        enabled: schedule.enabled,
        target: new targets.StepFunctionsStartExecution(machine, {
          input: scheduler.ScheduleTargetInput.fromObject(input),
          retryAttempts: 3,
        }),
      }),
    );
  }

  /** The schedule's name (`scheduleName`), refused if another schedule of the stack has it. */
  private uniqueName(...parts: string[]): string {
    const name = scheduleName(...parts);
    const full = parts.join('-');
    const other = this.names.get(name);
    if (other !== undefined)
      throw new ScheduleNameError(
        `schedules "${other}" and "${full}" would both be named "${name}" in EventBridge Scheduler; rename one`,
      );
    this.names.set(name, full);
    return name;
  }
}
