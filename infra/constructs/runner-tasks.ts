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

/** ECS could not start the runner task (capacity, throttling, a service error). */
export const ecsCapacityRetry: sfn.RetryProps = {
  errors: [
    'ECS.AmazonECSException',
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
  const state = new sfn.CustomState(scope, name, {
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
