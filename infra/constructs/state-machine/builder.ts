/**
 * The one way the backup, restore and drill state machines build their states: a `StateBuilder` per
 * machine construct makes its Lambda steps (lambda-step.ts, retries by name), its runner steps
 * (runner-tasks.ts, with the machine's rules for bounds, task definition, environment and role), the
 * small Pass states that record a caught error, and at the end the state machine itself with its log
 * group and the permissions to run what its states name.
 */
import { type Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../../../core/config/schema.js';
import { stepKeyOf } from '../../../core/config/timeouts.js';
import type { BackupRunner } from '../backup-runner.js';
import { stateMachineLogsKey } from '../notices.js';
import { ecsCapacityRetry, grantRunnerTasks, runnerTask } from '../runner-tasks.js';
import { type LambdaStepProps, lambdaStep } from './lambda-step.js';

/** Catches every error into `$.error` ({Error, Cause}): the Catch of most steps. */
export const caught: sfn.CatchProps = { errors: [sfn.Errors.ALL], resultPath: '$.error' };

/** How one machine runs the runner: which states it has and where each reads its settings at run time. */
export interface RunnerStepRules<Step extends string> {
  /** The machine's runner states and the subcommand each runs (core/backup/runner-steps.ts). */
  readonly steps: Readonly<Record<Step, string>>;
  /** JSONPath of the per-target `timeouts` (core/config/timeouts.ts): `<path>.<step key>.timeoutSeconds`. */
  readonly boundsPath: string;
  /** JSONPath of the task definition family to run. */
  readonly taskDefinitionPath: string;
  /** Environment overrides: a list (`Value.$` allowed), or a JSONPath to one. */
  readonly environment: Array<Record<string, string>> | { path: string };
  /** With a list `environment`: the entries one state adds to it (default none). */
  readonly stepEnvironment?: (step: Step) => Array<Record<string, string>>;
  /** Whether the runner's transient errors and States.HeartbeatTimeout are retried for this state (default: yes). */
  readonly transient?: (step: Step) => boolean;
  /** The role the state's task runs under, when not its task definition's. */
  readonly taskRoleArn?: (step: Step) => string | { expression: string } | undefined;
}

/** What a builder needs of its machine construct. */
export interface StateBuilderProps<Step extends string> {
  readonly config: DeploymentConfig;
  readonly runner: BackupRunner;
  readonly runnerSteps: RunnerStepRules<Step>;
}

/** The state machine a builder makes at the end (`StateBuilder.machine`). */
export interface MachineProps {
  /** Construct ids of the state machine and of its log group. */
  readonly id: string;
  readonly logsId: string;
  /** The state machine's name, and so its log group's `/aws/vendedlogs/states/<name>`. */
  readonly name: string;
  readonly comment: string;
  readonly definition: sfn.IChainable;
  readonly timeout: Duration;
  /** Which of the runner's task definitions it runs, and the task roles they run under. */
  readonly runnerKind: 'runner' | 'drill';
  readonly taskRoleArns: string[];
}

/** Builds one state machine's states in `scope`, and the machine. See the module's comment. */
export class StateBuilder<Step extends string> {
  /** Every function a Lambda step invokes: the machine's role may invoke these and no other. */
  readonly invoked = new Set<lambda.IFunction>();

  constructor(
    readonly scope: Construct,
    private readonly props: StateBuilderProps<Step>,
  ) {}

  /** A Lambda step (lambda-step.ts): the function is recorded for the machine's grants. */
  invoke(name: string, props: LambdaStepProps): tasks.LambdaInvoke {
    this.invoked.add(props.fn);
    return lambdaStep(this.scope, name, props);
  }

  /**
   * The runner state `step`: an ECS task of the machine's task definition, its bounds, environment
   * and role per the machine's RunnerStepRules, retried by runnerTask's rules (ECS capacity; a task
   * whose heartbeats stopped and the runner's transient errors, unless `transient` says no).
   */
  run(step: Step): sfn.CustomState {
    const rules = this.props.runnerSteps;
    const subcommand = rules.steps[step];
    const role = rules.taskRoleArn?.(step);
    return runnerTask(this.scope, step, {
      runner: this.props.runner,
      config: this.props.config,
      bounds: { path: rules.boundsPath, step: stepKeyOf(subcommand) },
      subcommand,
      taskDefinitionPath: rules.taskDefinitionPath,
      environment:
        'path' in rules.environment
          ? rules.environment
          : [...rules.environment, ...(rules.stepEnvironment?.(step) ?? [])],
      retry: ecsCapacityRetry,
      ...(rules.transient ? { transient: rules.transient(step) } : {}),
      ...(role ? { taskRoleArn: role } : {}),
    });
  }

  /** A caught error (at `$.error`), recorded at `path` as {step, error, cause}. */
  record(name: string, step: string, path = '$.failure'): sfn.Pass {
    return new sfn.Pass(this.scope, name, {
      resultPath: path,
      parameters: { step, 'error.$': '$.error.Error', 'cause.$': '$.error.Cause' },
    });
  }

  /**
   * The state machine and its log group (execution data logged, encrypted with the stack's logs key,
   * a year), with the permissions to run the runner's tasks and invoke the functions of its states.
   */
  machine(props: MachineProps): { stateMachine: sfn.StateMachine; logGroup: logs.LogGroup } {
    const logGroup = new logs.LogGroup(this.scope, props.logsId, {
      logGroupName: `/aws/vendedlogs/states/${props.name}`,
      retention: logs.RetentionDays.ONE_YEAR,
      // Execution data (inputs, outputs, causes) is logged: encrypted with the stack's logs key.
      encryptionKey: stateMachineLogsKey(this.scope),
      // Kept on delete and replacement, but removed when its first creation rolls back: a fixed name
      // left behind by a failed first deploy would fail the retry ("already exists").
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    const stateMachine = new sfn.StateMachine(this.scope, props.id, {
      stateMachineName: props.name,
      comment: props.comment,
      definitionBody: sfn.DefinitionBody.fromChainable(props.definition),
      timeout: props.timeout,
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    grantRunnerTasks(
      stateMachine.role,
      this.props.runner,
      props.runnerKind,
      props.taskRoleArns,
      this.invoked,
    );
    return { stateMachine, logGroup };
  }
}
