/**
 * What the backup, restore and drill state machines share about running the runner: the ECS task
 * state (`ecs:runTask.waitForTaskToken` of a task definition chosen at run time, with per-step
 * TimeoutSeconds and HeartbeatSeconds and retries by the runner's error names) and the permissions
 * to run it (AWS Step Functions Developer Guide, "Run Amazon ECS or Fargate tasks with Step
 * Functions" and "Wait for a Callback with Task Token").
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../../core/config/schema.js';
import type { RunnerStepKey } from '../../core/config/timeouts.js';
import { RUNNER_TRANSIENT_ERRORS } from '../../core/errors.js';
import { acknowledgeWildcards } from '../nag.js';
import type { BackupRunner } from './backup-runner.js';

/** The runner's container name in every task definition; the state machine's overrides name it. */
export const RUNNER_CONTAINER = 'runner';

/**
 * ECS could not start the runner task (capacity, throttling, a service error); the task never ran,
 * so starting it again is safe. The error names are those Step Functions raises for `ecs:runTask.sync`:
 * `AmazonECS.Unknown` when RunTask answers HTTP 200 with a non-empty `Failures` list (AWS Step
 * Functions Developer Guide, "Run Amazon ECS or Fargate tasks with Step Functions": "the task is
 * failed with an AmazonECS.Unknown error"), `ECS.AmazonECSException` when Fargate has no capacity
 * (AWS re:Post Knowledge Center, "ECS Fargate RunTask capacity is unavailable": Step Functions
 * records ECS.AmazonECSException), and `ECS.<exception>` for the RunTask API's own errors (Amazon
 * ECS API Reference, RunTask, Errors: ServerException; throttling and limits). Client errors
 * (InvalidParameter, AccessDenied, ClusterNotFound, PlatformTaskDefinitionIncompatibility) are a
 * configuration to fix, not retried. These come from the RunTask call, the same for `.sync` and
 * `.waitForTaskToken`. A task that ECS accepted but that stopped before its container started
 * (`StopCode` TaskFailedToStart) sends no heartbeat: see heartbeatTimeoutRetry.
 */
export const ecsCapacityRetry: sfn.RetryProps = {
  errors: [
    'ECS.AmazonECSException',
    'AmazonECS.Unknown',
    'ECS.ServerException',
    'ECS.ThrottlingException',
    'ECS.LimitExceededException',
  ],
  interval: Duration.seconds(30),
  maxAttempts: 3,
  backoffRate: 2,
  jitterStrategy: sfn.JitterType.FULL,
};

/**
 * The runner's errors worth a new attempt, retried by name (the runner reports its error's name with
 * SendTaskFailure: containers/runner/src/task-token.ts). Chosen from core/errors.ts:
 * - StorageError: S3 refused or timed out ("Often transient"); every upload was aborted, a new
 *   attempt writes the same keys;
 * - DatabaseUnreachable: the connection to the database failed or dropped (a restart, a network
 *   blip, a failover); bad credentials land here too, and cost two short attempts;
 * - Stalled: no data moved for longer than the heartbeat allows (a half-open connection): a new
 *   task gets a new connection;
 * - HeartbeatNotAccepted: Step Functions accepted none of the runner's heartbeats for 3/4 of
 *   HeartbeatSeconds, so the runner stopped its work (when its SendTaskFailure does get through;
 *   otherwise the same runner ends as States.HeartbeatTimeout, heartbeatTimeoutRetry): the same
 *   retries either way, and a new task passes once the task reaches Step Functions again.
 * Not retried (permanent until someone changes something): ConfigError, RunnerConfigError,
 * ToolFailed, IncompatibleTool, Neo4jDatabaseInUse, IncompleteBackup, ManifestError,
 * IncompatibleBackup, RestoreValidation, UnsupportedArtifact, InsufficientScratchSpace,
 * SecretInvalid, DumpFormat, RestoreBlocked, Neo4jStoreCopy, Neo4jStoreSwap, Neo4jStoreSwapUndone, UnexpectedError; RestoreInProgress and
 * Neo4jBackupDegraded wait on another restore or on cluster members, which rarely changes within
 * minutes; Interrupted is an operator's or ECS's stop, not to be undone by the state machine;
 * TaskAbandoned reaches no state (its state had already ended).
 */
export const runnerTransientRetry: sfn.RetryProps = {
  errors: [...RUNNER_TRANSIENT_ERRORS],
  interval: Duration.seconds(60),
  maxAttempts: 2,
  backoffRate: 2,
  jitterStrategy: sfn.JitterType.FULL,
};

/**
 * No heartbeat accepted within HeartbeatSeconds (States.HeartbeatTimeout). The runner sends its first
 * heartbeat as soon as it starts, stops itself with `Stalled` before the heartbeat bound when its
 * work makes no progress, and stops itself with `HeartbeatNotAccepted` when Step Functions accepted
 * none of its heartbeats for 3/4 of HeartbeatSeconds (task-token.ts: no route to the `states`
 * endpoint, AccessDenied, throttling, no answer; its SendTaskFailure may not get through either).
 * So a heartbeat timeout means: the task never started (ECS accepted it but it stopped before its
 * container ran: TaskFailedToStart, an image that could not be pulled, an ENI not provisioned, no
 * capacity; or it is still PENDING), the process died without a word (out of memory, SIGKILL), or
 * it could not reach Step Functions and has stopped its work before this error: a quarter of
 * HeartbeatSeconds before it once a heartbeat was accepted (its clock restarts at the send time of
 * the last accepted one); when none was, its clock runs from the task's PullStartedAt (task
 * metadata endpoint v4) while this one runs from RunTask, so it stopped a quarter of HeartbeatSeconds
 * less the task's provisioning before the pull (75 s less that time with the 300 s minimum:
 * core/config/timeouts.ts, MIN_HEARTBEAT_SECONDS). Step Functions does not stop an ECS task when
 * a waitForTaskToken state ends; what ends a stray runner is the runner itself: that acceptance
 * rule, or a heartbeat refused (TaskTimedOut: a task that starts late exits before any work). No
 * StopTask step, no StartedBy bookkeeping. With waitForTaskToken a task that fails to start no
 * longer arrives as States.TaskFailed with its description (the `.sync` pattern's), so this
 * replaces the former Choice on the stopped task's StoppedReason.
 * Only for steps that may run again (runnerTask's `transient`: backups, counts, copies, the drill):
 * the restores of a database (RestorePostgres, RestoreNeo4j, RestoreNeo4jOnline) are not retried on
 * it, as on none of the runner's errors: a load that may have run part-way is an operator's to judge
 * (docs/runbook.md).
 */
export const heartbeatTimeoutRetry: sfn.RetryProps = {
  errors: [sfn.Errors.HEARTBEAT_TIMEOUT],
  interval: Duration.seconds(30),
  maxAttempts: 2,
  backoffRate: 2,
  jitterStrategy: sfn.JitterType.FULL,
};

/**
 * An ECS runner task (`ecs:runTask.waitForTaskToken`) of the task definition named at
 * `taskDefinitionPath`, with the subcommand and environment overrides (a list, or a JSONPath to one).
 * The task token reaches the runner as TASK_TOKEN, the state's HeartbeatSeconds and TimeoutSeconds
 * as TASK_HEARTBEAT_SECONDS and TASK_TIMEOUT_SECONDS in its environment (a list); with a JSONPath
 * environment, which Amazon States Language cannot append to, as `--task-token`,
 * `--heartbeat-seconds` and `--timeout-seconds` after the
 * subcommand (task-token.ts, taskTokenArgs). TimeoutSecondsPath and HeartbeatSecondsPath read the
 * step's bounds from `<boundsPath>.<step>` (core/config/timeouts.ts: the work item's or plan's
 * `timeouts`, per target, from its configuration and data size). Retries: ECS start errors
 * (ecsCapacityRetry, a task that never ran) and, unless `transient` is false, a task whose heartbeats
 * stopped (heartbeatTimeoutRetry) and the runner's transient errors by name (runnerTransientRetry).
 * A CustomState because the
 * task definition is chosen at run time, which the EcsRunTask construct does not allow. The runner's
 * SendTaskSuccess output is small and the results are in S3, so none is kept in the state.
 */
export function runnerTask(
  scope: Construct,
  name: string,
  props: {
    runner: BackupRunner;
    config: DeploymentConfig;
    /** The step's bounds: `<path>.<step>.timeoutSeconds` and `.heartbeatSeconds` at run time. */
    bounds: { path: string; step: RunnerStepKey };
    subcommand: string;
    taskDefinitionPath: string;
    environment: Array<Record<string, string>> | { path: string };
    retry: sfn.RetryProps;
    /**
     * Retry the runner's transient errors and States.HeartbeatTimeout (default true; restores of
     * databases say false: a load that may have run part-way is not started again).
     */
    transient?: boolean;
    /**
     * Run under this role instead of the task definition's: an ARN, or `{ expression }`, an intrinsic
     * function evaluated at run time (restores: the target's restore role, BackupRunner.restoreRoleArnExpression).
     */
    taskRoleArn?: string | { expression: string };
  },
): sfn.CustomState {
  const { runner, config } = props;
  const bounds = `${props.bounds.path}.${props.bounds.step}`;
  const heartbeat = `States.Format('{}', ${bounds}.heartbeatSeconds)`;
  const timeout = `States.Format('{}', ${bounds}.timeoutSeconds)`;
  const container =
    'path' in props.environment
      ? {
          'Command.$': `States.Array('${props.subcommand}', '--task-token', $$.Task.Token, '--heartbeat-seconds', ${heartbeat}, '--timeout-seconds', ${timeout})`,
          'Environment.$': props.environment.path,
        }
      : {
          Command: [props.subcommand],
          Environment: [
            ...props.environment,
            { Name: 'TASK_TOKEN', 'Value.$': '$$.Task.Token' },
            { Name: 'TASK_HEARTBEAT_SECONDS', 'Value.$': heartbeat },
            { Name: 'TASK_TIMEOUT_SECONDS', 'Value.$': timeout },
          ],
        };
  const state = new sfn.CustomState(scope, name, {
    stateJson: {
      Type: 'Task',
      Comment: `runner ${props.subcommand}`,
      Resource: `arn:${Stack.of(scope).partition}:states:::ecs:runTask.waitForTaskToken`,
      TimeoutSecondsPath: `${bounds}.timeoutSeconds`,
      HeartbeatSecondsPath: `${bounds}.heartbeatSeconds`,
      Parameters: {
        Cluster: runner.cluster.clusterArn,
        'TaskDefinition.$': props.taskDefinitionPath,
        LaunchType: 'FARGATE',
        PlatformVersion: 'LATEST',
        NetworkConfiguration: {
          AwsvpcConfiguration: {
            Subnets: config.network.subnetIds,
            SecurityGroups: config.network.securityGroupIds,
            AssignPublicIp: 'DISABLED',
          },
        },
        Overrides: {
          ...(typeof props.taskRoleArn === 'string' ? { TaskRoleArn: props.taskRoleArn } : {}),
          ...(typeof props.taskRoleArn === 'object' ? { 'TaskRoleArn.$': props.taskRoleArn.expression } : {}),
          ContainerOverrides: [{ Name: RUNNER_CONTAINER, ...container }],
        },
      },
      ResultPath: null,
    },
  });
  state.addRetry(props.retry);
  if (props.transient !== false) {
    state.addRetry(heartbeatTimeoutRetry);
    state.addRetry(runnerTransientRetry);
  }
  return state;
}

/**
 * The runner's task-token callbacks (SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat) for a
 * task role. These actions support no resource-level permissions: in the Service Authorization
 * Reference, "Actions, resources, and condition keys for AWS Step Functions" (Actions defined by AWS
 * Step Functions), their Resource types column is empty, and "If there is no value for this column,
 * you must specify all resources ("*") to which the policy applies in the Resource element of your
 * policy statement" (the task token, not an ARN, names the task). So the statement names `*` and the
 * wildcard is acknowledged for cdk-nag with that reason (acknowledgeTaskToken). A task can only
 * answer for a token it was given. No KMS permission is needed with it: the state machines use no
 * customer managed key (SendTaskFailure, SendTaskSuccess: a KMS key of the execution is used only
 * "For an execution with encryption enabled", Step Functions API Reference).
 */
export function taskTokenStatement(): iam.PolicyStatement {
  return new iam.PolicyStatement({
    actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
    resources: ['*'],
  });
}

/** Acknowledges taskTokenStatement's wildcard on `role` (cdk-nag AwsSolutions-IAM5). */
export function acknowledgeTaskToken(role: iam.IRole): void {
  acknowledgeWildcards(
    role,
    ['*'],
    // Service Authorization Reference, "Actions, resources, and condition keys for AWS Step
    // Functions": these three actions list no resource type, so a policy must name "*".
    'states:SendTaskSuccess/SendTaskFailure/SendTaskHeartbeat support no resource-level permissions (Service Authorization Reference, "Actions, resources, and condition keys for AWS Step Functions": no resource type, so Resource "*"): the task token given to this task identifies the state it answers.',
  );
}

/**
 * Lets a state machine run one kind of the runner's task definitions (and pass their roles), follow
 * the tasks to their end, and invoke its functions; the wildcards are acknowledged with their reasons.
 */
export function grantRunnerTasks(
  role: iam.IRole,
  runner: BackupRunner,
  kind: 'runner' | 'drill',
  /** ARNs (or ARN patterns) of the task roles its tasks run under. */
  taskRoleArns: string[],
  invokedFunctions: Iterable<lambda.IFunction>,
): void {
  const stack = Stack.of(runner);
  const taskArns = stack.formatArn({
    service: 'ecs',
    resource: 'task',
    resourceName: `${runner.cluster.clusterName}/*`,
  });
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['ecs:RunTask'],
      resources: [runner.taskDefinitionArnPattern(kind)],
      conditions: { ArnEquals: { 'ecs:cluster': runner.cluster.clusterArn } },
    }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['ecs:StopTask', 'ecs:DescribeTasks'], resources: [taskArns] }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['iam:PassRole'],
      resources: [...taskRoleArns, ...runner.executionRoleArns(kind)],
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    }),
  );
  // No events:PutRule for StepFunctionsGetEventsForECSTaskRule: only runTask.sync follows the task
  // through it; with waitForTaskToken the runner itself reports its end.
  acknowledgeWildcards(
    role,
    [runner.taskDefinitionArnPattern(kind), taskArns],
    `Runner task definitions are chosen per target at run time (every revision of ${kind === 'runner' ? '<deployment>-*-runner' : '<deployment>-drill-*'}); tasks are named by ECS when they start.`,
  );
  acknowledgeWildcards(
    role,
    taskRoleArns.filter((arn) => arn.includes('*')),
    'iam:PassRole on the per-target task roles of this kind (<deployment path>/<target>-<kind>-<suffix>): the target, and so its role, is chosen at run time.',
  );
  acknowledgeWildcards(
    role,
    ['*'],
    'X-Ray trace segments and sampling rules cannot be scoped to a resource (tracing is on).',
  );
  acknowledgeWildcards(
    role,
    [...invokedFunctions].map((fn) => `${fn.functionArn}:*`),
    'lambda:InvokeFunction on the functions of this state machine and their versions (CDK grants "<arn>:*" for versions).',
  );
}
