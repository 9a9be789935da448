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

/**
 * EventBridge Scheduler schedules. "backup": one per configured schedule, starting the backup state
 * machine with a valid execution input. "restore-drill": one per schedule and target (a drill
 * rehearses one target per execution), starting the drill state machine.
 */
export class BackupSchedules extends Construct {
  readonly schedules: scheduler.Schedule[] = [];

  constructor(scope: Construct, id: string, props: BackupSchedulesProps) {
    super(scope, id);
    for (const schedule of props.config.schedules.filter((s) => s.kind === 'backup')) {
      this.schedules.push(
        new scheduler.Schedule(this, schedule.name, {
          scheduleName: `${props.config.name}-${schedule.name}`,
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
            scheduleName: `${props.config.name}-${schedule.name}-${target}`.slice(0, 64),
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
}
