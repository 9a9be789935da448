import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { METRICS_NAMESPACE, MetricNames } from '../../core/metrics.js';

export interface BackupMonitoringProps {
  readonly config: DeploymentConfig;
  readonly topic: sns.ITopic;
  /**
   * Keys whose deletion or disabling loses data (the backup key): scheduling their deletion or
   * disabling them sends a notice at once (keyDeletionGuard). The topic's own key policy for the
   * alarms is set where the topic is made (notices.ts, allowServicePublishers).
   */
  readonly guardedKeys?: kms.IKey[];
  readonly stateMachine: sfn.IStateMachine;
  /**
   * The restore drill state machine: a fleet drill that fails, times out or is aborted before its
   * report (its targets not yet started send no notice) alarms too.
   */
  readonly drillStateMachine?: sfn.IStateMachine;
  /** Publishes the age of each target's last complete backup; run hourly. */
  readonly freshness: lambda.IFunction;
}

/** The alarms, by the name the runbook (docs/runbook.md) gives each a section under. */
export const AlarmNames = {
  backupFailed: 'BackupFailed',
  executionFailed: 'BackupExecutionFailed',
  noRecentBackup: 'NoRecentBackup',
  restoreDrillFailed: 'RestoreDrillFailed',
  drillExecutionFailed: 'DrillExecutionFailed',
} as const;

/**
 * Operators hear about failures and about silence (docs/architecture.md, "Storage, replication and
 * monitoring"): alarms to the notice topic,
 * fleet-wide so their number does not grow with the targets (the notices and the dashboard name the
 * target), and a dashboard of durations, sizes and backup ages per target.
 */
export class BackupMonitoring extends Construct {
  readonly alarms: Partial<Record<keyof typeof AlarmNames, cloudwatch.Alarm>> &
    Record<Exclude<keyof typeof AlarmNames, 'drillExecutionFailed'>, cloudwatch.Alarm>;
  readonly dashboard: cloudwatch.Dashboard;
  /** The rule that reports ScheduleKeyDeletion and DisableKey on the guarded keys. */
  readonly keyDeletionGuard?: events.Rule;

  constructor(scope: Construct, id: string, props: BackupMonitoringProps) {
    super(scope, id);
    const { config } = props;
    const name = (alarm: string) => `${config.name}-${alarm}`;
    const metric = (metricName: string, statistic: string, period: Duration) =>
      new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName, statistic, period });

    new events.Rule(this, 'FreshnessSchedule', {
      description: "Hourly: the age of each target's last complete backup",
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [new eventTargets.LambdaFunction(props.freshness, { retryAttempts: 2 })],
    });

    /** An alarm at one or more in a period, to the notice topic (and back to OK), with its runbook section. */
    const alarm = (
      alarmName: (typeof AlarmNames)[keyof typeof AlarmNames],
      description: string,
      watched: cloudwatch.IMetric,
      missing: cloudwatch.TreatMissingData,
    ) => {
      const created = new cloudwatch.Alarm(this, `${alarmName}Alarm`, {
        alarmName: name(alarmName),
        alarmDescription: `${description} Runbook: docs/runbook.md#${alarmName.toLowerCase()}`,
        metric: watched,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: missing,
      });
      created.addAlarmAction(new actions.SnsAction(props.topic));
      created.addOkAction(new actions.SnsAction(props.topic));
      return created;
    };
    const { NOT_BREACHING, BREACHING } = cloudwatch.TreatMissingData;
    /** Failed, timed-out and aborted executions of a state machine, per 5 minutes. */
    const endedBadly = (machine: sfn.IStateMachine) =>
      new cloudwatch.MathExpression({
        expression: 'failed + timedOut + aborted',
        usingMetrics: {
          failed: machine.metricFailed({ statistic: 'Sum' }),
          timedOut: machine.metricTimedOut({ statistic: 'Sum' }),
          aborted: machine.metricAborted({ statistic: 'Sum' }),
        },
        period: Duration.minutes(5),
      });
    this.alarms = {
      backupFailed: alarm(
        AlarmNames.backupFailed,
        "A target's backup failed (see the failure notice).",
        metric(MetricNames.BackupFailed, 'Sum', Duration.minutes(5)),
        NOT_BREACHING,
      ),
      executionFailed: alarm(
        AlarmNames.executionFailed,
        'A backup execution failed, timed out or was aborted.',
        endedBadly(props.stateMachine),
        NOT_BREACHING,
      ),
      // Silence is a failure: no data (the freshness check itself broken) alarms too.
      noRecentBackup: alarm(
        AlarmNames.noRecentBackup,
        `A target has no complete backup within the RPO (${config.rpoHours} h), or the freshness check stopped reporting. How old its newest backup is (kept while it is the newest, never expired): metric ${MetricNames.OldestBackupAgeHours}, and the Freshness function's log line naming each target.`,
        metric(MetricNames.TargetsWithoutRecentBackup, 'Maximum', Duration.hours(1)),
        BREACHING,
      ),
      restoreDrillFailed: alarm(
        AlarmNames.restoreDrillFailed,
        'A scheduled restore drill failed.',
        metric(MetricNames.RestoreDrillFailed, 'Sum', Duration.hours(1)),
        NOT_BREACHING,
      ),
      ...(props.drillStateMachine
        ? {
            drillExecutionFailed: alarm(
              AlarmNames.drillExecutionFailed,
              'A restore drill execution (a single drill or a fleet drill) failed, timed out or was aborted.',
              endedBadly(props.drillStateMachine),
              NOT_BREACHING,
            ),
          }
        : {}),
    };

    if (props.guardedKeys?.length)
      this.keyDeletionGuard = keyDeletionGuard(this, props.topic, props.guardedKeys);

    const search = (metricName: string, stat: string, label: string) =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${METRICS_NAMESPACE},Target} MetricName="${metricName}"', '${stat}', 3600)`,
        label,
        period: Duration.hours(1),
      });
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${config.name}-backups`,
      widgets: [
        [
          new cloudwatch.AlarmStatusWidget({
            title: 'Alarms',
            alarms: Object.values(this.alarms),
            width: 24,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: `Hours since the last complete backup (RPO ${config.rpoHours} h)`,
            left: [
              search(MetricNames.LastBackupAgeHours, 'Maximum', ''),
              metric(MetricNames.OldestBackupAgeHours, 'Maximum', Duration.hours(1)).with({
                label: 'oldest newest backup (fleet)',
              }),
            ],
            leftAnnotations: [{ value: config.rpoHours, label: 'RPO', color: '#d62728' }],
            width: 12,
          }),
          new cloudwatch.GraphWidget({
            title: 'Backup duration per target (s)',
            left: [search(MetricNames.BackupDurationSeconds, 'Maximum', '')],
            width: 12,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Bytes per backup, per target',
            left: [search(MetricNames.BackupBytes, 'Maximum', '')],
            width: 12,
          }),
          new cloudwatch.GraphWidget({
            title: 'Backup executions',
            left: [
              props.stateMachine.metricSucceeded({ statistic: 'Sum', period: Duration.hours(1) }),
              props.stateMachine.metricFailed({ statistic: 'Sum', period: Duration.hours(1) }),
            ],
            right: [metric(MetricNames.BackupFailed, 'Sum', Duration.hours(1))],
            width: 12,
          }),
        ],
      ],
    });
  }
}

/** The KMS API calls that make a guarded key's data unreadable: the key-deletion guard reports them. */
export const GuardedKeyEvents = ['ScheduleKeyDeletion', 'DisableKey'] as const;

/**
 * An EventBridge rule on the CloudTrail management events `ScheduleKeyDeletion` and `DisableKey`
 * (detail-type "AWS API Call via CloudTrail", source `aws.kms`) for the given keys, matched by the
 * key ARN in the event's `resources` or the `keyId` the caller passed, that publishes a notice to the
 * topic (the topic policy allows this account's rules: notices.ts). EventBridge receives these
 * events only while a CloudTrail trail logs management events in the region (Amazon EventBridge User
 * Guide, "Events from AWS services": events delivered via AWS CloudTrail); docs/deployment.md says
 * so. The notice names the caller and the commands that undo the call (within the pending window).
 * Every `<name>` in the notice's input template must be an input path the transformer defines (here
 * the `EventField.fromPath` fields) or an `aws.events.*` built-in: EventBridge refuses a target whose
 * template has any other placeholder ("InputTemplate ... contains invalid placeholder"), so the
 * notice's text has no other angle brackets.
 */
export function keyDeletionGuard(scope: Construct, topic: sns.ITopic, keys: kms.IKey[]): events.Rule {
  const arns = keys.map((k) => k.keyArn);
  const rule = new events.Rule(scope, 'KeyDeletionGuard', {
    description: 'Notice when a backup key is scheduled for deletion or disabled (CloudTrail)',
    eventPattern: {
      source: ['aws.kms'],
      detailType: ['AWS API Call via CloudTrail'],
      detail: {
        eventSource: ['kms.amazonaws.com'],
        eventName: [...GuardedKeyEvents],
        $or: [
          { resources: { ARN: arns } },
          { requestParameters: { keyId: [...arns, ...keys.map((k) => k.keyId)] } },
        ],
      },
    },
  });
  const field = events.EventField.fromPath;
  rule.addTarget({
    bind: () => ({
      arn: topic.topicArn,
      input: events.RuleTargetInput.fromText(
        `ALERT: ${field('$.detail.eventName')} was called on a backup key (${field('$.detail.requestParameters.keyId')}) by ${field('$.detail.userIdentity.arn')} at ${field('$.time')}. Backups encrypted with it become unreadable when it is deleted or while it is disabled. Undo it: aws kms cancel-key-deletion --region ${field('$.region')} --key-id ${field('$.detail.requestParameters.keyId')} and aws kms enable-key --region ${field('$.region')} --key-id ${field('$.detail.requestParameters.keyId')}. Runbook: docs/runbook.md`,
      ),
    }),
  });
  return rule;
}
