import { createHash } from 'node:crypto';
import { TimeZone } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { BackupExecutionInput } from '../../core/backup/plan.js';
import type { DeploymentConfig, Schedule } from '../../core/config/schema.js';
import type { DrillExecutionInput } from '../../core/restore/plan.js';

export interface BackupSchedulesProps {
  readonly config: DeploymentConfig;
  readonly stateMachine: sfn.IStateMachine;
  /** Started by "restore-drill" schedules, once per target of the schedule. */
  readonly drillStateMachine?: sfn.IStateMachine;
}

/** The execution input a schedule sends: its targets, and its name as the reason (audit trail). */
export function scheduledBackupInput(schedule: Schedule): BackupExecutionInput {
  return { targets: schedule.targets, reason: `schedule ${schedule.name} (${schedule.expression})` };
}

/** The drill input a restore-drill schedule sends for one target. */
export function scheduledDrillInput(schedule: Schedule, target: string): DrillExecutionInput {
  return {
    target,
    backup: schedule.backup,
    windowDays: schedule.windowDays,
    reason: `schedule ${schedule.name} (${schedule.expression})`,
  };
}

/** EventBridge Scheduler's bound on a schedule name (Scheduler API Reference, CreateSchedule: Name, 1-64 of [0-9a-zA-Z-_.]). */
export const MAX_SCHEDULE_NAME = 64;

/** Two schedules of the stack would get the same name. */
export class ScheduleNameError extends Error {
  override name = 'ScheduleNameError';
}

/**
 * The name of a schedule made of `parts` (the deployment's, the schedule's and, for a drill, the
 * target's name: slugs of lowercase letters, digits and "-"), joined with "-". Kept as is when it
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
 * EventBridge Scheduler schedules. "backup": one per configured schedule, starting the backup state
 * machine with a valid execution input. "restore-drill": one per schedule and target (a drill
 * rehearses one target per execution), starting the drill state machine. Names come from
 * `scheduleName` (at most 64 characters); two equal names throw `ScheduleNameError` at synth.
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
          description: `Infrahub backup of ${schedule.targets === '*' ? 'every target' : schedule.targets.join(', ')}`,
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
      const names = schedule.targets === '*' ? props.config.targets.map((t) => t.name) : schedule.targets;
      for (const target of names) {
        this.schedules.push(
          new scheduler.Schedule(this, `${schedule.name}-${target}`, {
            scheduleName: this.uniqueName(props.config.name, schedule.name, target),
            description: `Infrahub restore drill of ${target} (${schedule.backup} backup)`,
            schedule: scheduler.ScheduleExpression.expression(
              schedule.expression,
              TimeZone.of(schedule.timezone),
            ),
            enabled: schedule.enabled,
            target: new targets.StepFunctionsStartExecution(props.drillStateMachine as sfn.IStateMachine, {
              input: scheduler.ScheduleTargetInput.fromObject(scheduledDrillInput(schedule, target)),
              retryAttempts: 3,
            }),
          }),
        );
      }
    }
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
