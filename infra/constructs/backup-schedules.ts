import { TimeZone } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { BackupExecutionInput } from '../../core/backup/plan.js';
import type { DeploymentConfig, Schedule } from '../../core/config/schema.js';

export interface BackupSchedulesProps {
  readonly config: DeploymentConfig;
  readonly stateMachine: sfn.IStateMachine;
}

/** The execution input a schedule sends: its targets, and its name as the reason (audit trail). */
export function scheduledBackupInput(schedule: Schedule): BackupExecutionInput {
  return { targets: schedule.targets, reason: `schedule ${schedule.name} (${schedule.expression})` };
}

/**
 * EventBridge Scheduler schedules of kind "backup", one per configured schedule, each starting the
 * backup state machine with a valid execution input. (Restore-drill schedules start the drill state
 * machine, which the restore stack adds.)
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
  }
}
