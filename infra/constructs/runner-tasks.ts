/**
 * What the backup, restore and drill state machines share about running the runner: the ECS task
 * state (`ecs:runTask.sync` of a task definition chosen at run time) and the permissions to run it.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { acknowledgeWildcards } from '../nag.js';
import { type BackupRunner, RUNNER_CONTAINER } from './backup-runner.js';

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
 * configuration to fix, not retried. A task that ECS accepted but that stopped before its container
 * started (`StopCode` TaskFailedToStart) arrives as States.TaskFailed: see startFailureRetry.
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
 * A runner task that ECS accepted but stopped before its container started (`StopCode`
 * `TaskFailedToStart`) for a reason a later attempt can cure is started again: Step Functions reports
 * it as States.TaskFailed with the DescribeTasks task as its Cause (a JSON string), which a Retry
 * cannot look into, so a Choice on the Cause does (wildcard StringMatches, which never fails on an
 * odd Cause). The transient reasons are those Amazon ECS documents for tasks that fail to start
 * (Amazon ECS Developer Guide, "Amazon ECS stopped task error codes": ResourceInitializationError
 * for secrets, registry auth or log setup unreachable, CannotPullContainerError, network interface
 * provisioning timeouts, capacity). Other failures, and the last attempt's, go to the state's own
 * catcher unchanged.
 */
export const startFailureRetry = {
  /** StoppedReason patterns (Step Functions StringMatches, `*` any text) treated as transient. */
  transientReasons: [
    '*ResourceInitializationError*',
    '*CannotPullContainerError*',
    '*network interface provisioning*',
    '*apacity*',
  ],
  /** Starts after the first: attempts = 1 + maxRetries. */
  maxRetries: 2,
  wait: Duration.seconds(60),
} as const;

/**
 * The runner's ECS Task state. Its first catcher of States.ALL or States.TaskFailed (with a JSONPath
 * ResultPath, as every caller gives) is preceded by a States.TaskFailed catcher into a Choice
 * (`<name>StartFailed?`) that starts the task again after a pause when it failed to start for a
 * transient reason (startFailureRetry), counting its retries in `$.startRetries<name>.n`; any other
 * failure, and the last retry's, goes on to the given handler with the input it would have had.
 */
class RunnerTaskState extends sfn.CustomState {
  private startRetryWired = false;

  override addCatch(handler: sfn.IChainable, props: sfn.CatchProps = {}): RunnerTaskState {
    const errors = props.errors ?? [sfn.Errors.ALL];
    const resultPath = props.resultPath;
    if (
      !this.startRetryWired &&
      (errors.includes(sfn.Errors.ALL) || errors.includes(sfn.Errors.TASKS_FAILED)) &&
      typeof resultPath === 'string' &&
      resultPath.startsWith('$.')
    ) {
      this.startRetryWired = true;
      const name = this.node.id;
      const scope = this.node.scope as Construct;
      const cause = `${resultPath}.Cause`;
      const counter = `$.startRetries${name}`;
      const again = new sfn.Wait(scope, `${name}StartAgain`, {
        comment: `${name} failed to start for a transient reason: start it again`,
        time: sfn.WaitTime.duration(startFailureRetry.wait),
      }).next(this);
      const first = new sfn.Pass(scope, `${name}FirstStartRetry`, {
        resultPath: counter,
        result: sfn.Result.fromObject({ n: 1 }),
      }).next(again);
      const later = new sfn.Pass(scope, `${name}NextStartRetry`, {
        resultPath: counter,
        parameters: { 'n.$': `States.MathAdd(${counter}.n, 1)` },
      }).next(again);
      // Nested Choices: a rule never reads a path that may be missing (that would fail the execution).
      const retriesLeft = new sfn.Choice(scope, `${name}StartRetriesLeft?`)
        // Not(IsPresent), not IsPresent false: aws-local-stepfunctions 3 (the local mode) reads
        // "IsPresent": false as never matching (build/main.node.esm.js, testChoiceRule), AWS as absent.
        .when(sfn.Condition.not(sfn.Condition.isPresent(counter)), first)
        .when(sfn.Condition.numberLessThan(`${counter}.n`, startFailureRetry.maxRetries), later)
        .otherwise(handler);
      const transient = new sfn.Choice(scope, `${name}StartFailedTransient?`)
        .when(
          sfn.Condition.and(
            sfn.Condition.isString(cause),
            sfn.Condition.stringMatches(cause, '*TaskFailedToStart*'),
            sfn.Condition.or(
              ...startFailureRetry.transientReasons.map((pattern) =>
                sfn.Condition.stringMatches(cause, pattern),
              ),
            ),
          ),
          retriesLeft,
        )
        .otherwise(handler);
      const choice = new sfn.Choice(scope, `${name}StartFailed?`, {
        comment: 'Failed to start for a transient reason? Then start again (a Retry cannot read the Cause)',
      })
        .when(sfn.Condition.isPresent(cause), transient)
        .otherwise(handler);
      super.addCatch(choice, { errors: [sfn.Errors.TASKS_FAILED], resultPath });
    }
    super.addCatch(handler, props);
    return this;
  }
}

/**
 * An ECS runner task (`ecs:runTask.sync`) of the task definition named at `taskDefinitionPath`, with
 * the subcommand and environment overrides (a list, or a JSONPath to one). A CustomState because the
 * task definition is chosen at run time, which the EcsRunTask construct does not allow. The task
 * description is large and the results are in S3, so none is kept in the state.
 */
export function runnerTask(
  scope: Construct,
  name: string,
  props: {
    runner: BackupRunner;
    config: DeploymentConfig;
    timeout: Duration;
    subcommand: string;
    taskDefinitionPath: string;
    environment: Array<Record<string, string>> | { path: string };
    retry: sfn.RetryProps;
    /**
     * Run under this role instead of the task definition's: an ARN, or `{ expression }`, an intrinsic
     * function evaluated at run time (restores: the target's restore role, BackupRunner.restoreRoleArnExpression).
     */
    taskRoleArn?: string | { expression: string };
  },
): sfn.CustomState {
  const { runner, config } = props;
  const environment =
    'path' in props.environment
      ? { 'Environment.$': props.environment.path }
      : { Environment: props.environment };
  const state = new RunnerTaskState(scope, name, {
    stateJson: {
      Type: 'Task',
      Comment: `runner ${props.subcommand}`,
      Resource: `arn:${Stack.of(scope).partition}:states:::ecs:runTask.sync`,
      TimeoutSeconds: props.timeout.toSeconds(),
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
          ContainerOverrides: [{ Name: RUNNER_CONTAINER, Command: [props.subcommand], ...environment }],
        },
      },
      ResultPath: null,
    },
  });
  state.addRetry(props.retry);
  return state;
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
      resources: [...taskRoleArns, runner.executionRole.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    }),
  );
  // runTask.sync learns that a task stopped from an EventBridge rule that Step Functions manages.
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
      resources: [
        stack.formatArn({
          service: 'events',
          resource: 'rule',
          resourceName: 'StepFunctionsGetEventsForECSTaskRule',
        }),
      ],
    }),
  );
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
