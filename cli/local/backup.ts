/**
 * The local mode of the backup, restore and drill: the synthesized state machine's ASL, run by
 * aws-local-stepfunctions, with
 * - Lambda states calling the same function cores in-process (the deployed handlers are thin shells
 *   around them), with local clients: S3, Secrets Manager, SNS and EventBridge of a local server;
 * - ECS states running the runner's real entrypoint as a child process with the environment the task
 *   definition gives it (its environment, its ECS secrets read from the local Secrets Manager, the
 *   state's overrides), plus what the runner image itself provides (tool paths, the Neo4j store that
 *   the task mounts from EFS) and the local S3 endpoint;
 * - the DBMS state (scaling a Community Neo4j's ECS service) served by a local stand-in that stops
 *   and starts the local Neo4j: the only step whose AWS call has no local equivalent.
 */
import { randomUUID } from 'node:crypto';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { ExecutionStatusReader } from '../../core/backup/lock.js';
import { parseInput } from '../../core/config/load.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { DbmsEventSchema, type DbmsResult } from '../../core/ecs/dbms.js';
import { DbmsControlError } from '../../core/errors.js';
import { createLogger, type Logger } from '../../core/log.js';
import type { EmfSink } from '../../core/metrics.js';
import { redactText } from '../../core/redact.js';
import { putObject } from '../../core/s3/objects.js';
import { readSecret } from '../../core/secrets.js';
import { lambdaHandler, type StateMachineLambda, stepEvents, steps } from '../../functions/steps.js';
import { LocalEcsServices } from './ecs-endpoint.js';
import { localExecutionStatus, recordLocalExecution } from './executions.js';
import { runRunner } from './runner-process.js';
import {
  allStates,
  type ExecutionEvent,
  type ExecutionSummary,
  type LocalExecutionStarter,
  runLocally,
  type TaskState,
} from './state-machine.js';
import { LOCAL_ACCOUNT, type MachineKind, type SynthesizedBackup, synthesizeBackup } from './synth.js';
import { LocalTaskTokenEndpoint } from './task-token-endpoint.js';

/**
 * The local AWS stand-ins: one moto server serves S3, Secrets Manager, SNS and EventBridge (and
 * CloudWatch, which the notices no longer call: their metrics are EMF log lines, see onMetrics).
 */
export interface LocalAws {
  endpoint: string;
  /** AWS_* variables that point a child process's SDK at the local server. */
  env(): Record<string, string>;
  s3: S3Client;
  secrets: SecretsManagerClient;
  sns: SNSClient;
  events: EventBridgeClient;
  cloudwatch: CloudWatchClient;
  bucket: string;
  topicArn: string;
}

/** What a target's runner gets locally from its image and its EFS mounts, and its DBMS stand-in. */
export interface LocalTargetRuntime {
  /** For example PG_BINDIR, NEO4J_ADMIN and the Neo4j home whose store the task would mount. */
  env: Record<string, string>;
  /** Community: stops and starts the local Neo4j, as scaling its ECS service does on AWS. */
  dbms?: { stop(): Promise<void>; start(): Promise<void> };
}

/** An ECS runTask request, after the state's Parameters were applied. */
export interface RunTaskRequest {
  family: string;
  /** The target whose task definition this is (its TARGET variable). */
  target: string;
  subcommand: string;
  environment: Record<string, string>;
}

export interface LocalBackupOptions {
  config: DeploymentConfig;
  aws: LocalAws;
  runtime: (target: string) => LocalTargetRuntime;
  /**
   * Serves the ECS states instead of the runner (only the fleet-size test does this, to back up 200
   * targets without 600 processes). It must write what the runner writes.
   */
  runTask?: (request: RunTaskRequest) => Promise<void>;
  /** Retry pauses in ms (0 in tests); by default the definition's own intervals. */
  retryIntervalMs?: number;
  /** Each execution's history quota in AWS events (default 25,000, as on AWS; tests lower it). */
  maxHistoryEvents?: number;
  /** Wait states' pauses in ms by state name (tests: the preflight loop's PreflightWait); see runLocally. */
  waitTimeOverrides?: Record<string, number>;
  /**
   * Every runner state's HeartbeatSeconds, in place of the work item's or plan's (tests: a stalled
   * runner is stopped in seconds; the configuration's minimum, 300 s, covers a Fargate task's
   * start-up, which a local process does not have). The runner gets it as TASK_HEARTBEAT_SECONDS and
   * derives its stall bound from it, as on AWS.
   */
  heartbeatSecondsOverride?: number;
  onEvent?: (event: ExecutionEvent) => void;
  /** The runners' output, line by line (the demo prints progress from it). */
  onRunnerExit?: (run: { target: string; subcommand: string; code: number | null; stderr: string }) => void;
  /**
   * Each CloudWatch embedded metric format line the notices write (a Lambda writes them to its log
   * output, where CloudWatch extracts the metrics). Default: the logger, at debug level.
   */
  onMetrics?: EmfSink;
  /** A runner process started (its PID: the fault tests kill it, as ECS stops a task). */
  onRunnerStart?: (run: { target: string; subcommand: string; pid: number }) => void;
  logger?: Logger;
  /** Start time (the backup id derives from it). */
  startTime?: Date;
  /** A definition synthesized earlier for the same configuration. */
  synthesized?: SynthesizedBackup;
  /** ECS for the Services states (quiescing Infrahub); none locally unless a test provides one. */
  ecs?: Pick<ECSClient, 'send'>;
  /**
   * Whether a lock's holder still runs (Step Functions' DescribeExecution on AWS). Default: the
   * local runner's own record of the executions it runs (cli/local/executions.ts).
   */
  executionStatus?: ExecutionStatusReader;
}

export interface LocalExecution {
  executionArn: string;
  status: 'SUCCEEDED' | 'FAILED';
  output?: unknown;
  error?: string;
  cause?: string;
  /**
   * The events of this execution and of its child executions (a Distributed Map's items: each such
   * event carries its child's `executionArn`), in the order they came.
   */
  events: ExecutionEvent[];
  /** This execution's own history (the parent's, without its children's). */
  history: ExecutionEvent[];
  /** This execution and each child execution: status and history size in AWS events (the quota is 25,000 each). */
  executions: ExecutionSummary[];
}

/** A Lambda error as lambda:invoke reports it: the error type as Error, a JSON Cause. */
function lambdaError(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const failure = new Error(JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: [] }));
  failure.name = e.name === 'Error' ? 'Error' : e.name;
  return failure;
}

/** An error a Retry or Catch matches by `name` (the runner's error name, or States.*), `cause` its Cause. */
function stateError(name: string, cause: string): Error {
  const failure = new Error(cause);
  failure.name = name;
  return failure;
}

/** The placeholder `$$.Task.Token` resolves to locally (see the context in runStateMachineLocally). */
export const LOCAL_TASK_TOKEN_PLACEHOLDER = 'local-task-token';

/**
 * One local run of an ECS task under a waitForTaskToken state: `token` is the run's own task token
 * (handed to the runner in place of the placeholder), `answer` ends the state (the runner's
 * SendTaskSuccess output, or its SendTaskFailure as an Error whose name is the error's), `beat`
 * resets the heartbeat clock. The returned promise settles when the task's process ended.
 */
type LocalRunTask = (
  request: RunTaskRequest,
  token: {
    value: string;
    answer: (outcome: { output: unknown } | { error: Error }) => void;
    beat: () => void;
  },
) => Promise<{ exited: Promise<string | undefined>; stop: () => void }>;

/** A test's runTask (no runner process) as a task answering its token: resolved = success, thrown = its error's name. */
function fakeRunTask(run: (request: RunTaskRequest) => Promise<void>): LocalRunTask {
  return async (request, token) => {
    const exited = run(request).then(
      () => token.answer({ output: {} }),
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        token.answer({
          error: stateError(e.name === 'Error' ? 'States.TaskFailed' : e.name, redactText(e.message)),
        });
      },
    );
    return { exited: exited.then(() => undefined), stop: () => undefined };
  };
}

/**
 * Serves one `ecs:runTask.waitForTaskToken` state locally, as Step Functions would: the task is
 * started with a token of its own; the state ends with the runner's SendTaskSuccess (its output) or
 * SendTaskFailure (an Error named as the runner's error, its cause the message), or fails with
 * States.HeartbeatTimeout when `heartbeatSeconds` pass without a heartbeat, or States.Timeout after
 * `timeoutSeconds` (aws-local-stepfunctions 3.0.0 implements neither heartbeats nor the callback
 * pattern: enforced here; it also enforces TimeoutSecondsPath itself, with the same error). As on
 * AWS, a state that ends does not stop its task: the runner finds its next heartbeat refused
 * (TaskTimedOut) and stops itself; locally the handler then waits for that (bounded: the task is
 * killed after one heartbeat interval and the runner's 30 s stop bound) so no process outlives the
 * execution. One difference from AWS: a task that exits without answering its token fails the
 * state with States.HeartbeatTimeout at once, where AWS would wait out HeartbeatSeconds.
 */
async function runWithTaskToken(
  request: RunTaskRequest,
  command: string[],
  bounds: { heartbeatSeconds: number; timeoutSeconds: number },
  runTask: LocalRunTask,
  logger: Logger,
): Promise<unknown> {
  if (!(bounds.heartbeatSeconds > 0) || !(bounds.timeoutSeconds > 0))
    throw stateError(
      'States.Runtime',
      `runner ${request.subcommand}: no HeartbeatSeconds or TimeoutSeconds given`,
    );
  const token = `local:${randomUUID()}`;
  // The runner gets the run's own token where the state put `$$.Task.Token`.
  request.environment = Object.fromEntries(
    Object.entries(request.environment).map(([k, v]) => [k, v === LOCAL_TASK_TOKEN_PLACEHOLDER ? token : v]),
  );
  const i = command.indexOf('--task-token');
  if (i > 0) {
    request.environment.TASK_TOKEN = token;
    request.environment.TASK_HEARTBEAT_SECONDS = String(bounds.heartbeatSeconds);
    request.environment.TASK_TIMEOUT_SECONDS = String(bounds.timeoutSeconds);
  }
  let settle!: (outcome: { output: unknown } | { error: Error }) => void;
  const outcome = new Promise<{ output: unknown } | { error: Error }>((resolve) => {
    let done = false;
    settle = (o) => {
      if (done) return;
      done = true;
      resolve(o);
    };
  });
  let lastBeat = Date.now();
  const task = await runTask(request, {
    value: token,
    answer: (o) => settle(o),
    beat: () => {
      lastBeat = Date.now();
    },
  }).catch((err: unknown) => {
    // The task could not be started (a secret ECS could not inject): RunTask's task failed to start.
    throw stateError('States.TaskFailed', redactText(err instanceof Error ? err.message : String(err)));
  });
  const started = Date.now();
  const watch = setInterval(() => {
    const now = Date.now();
    if (now - started >= bounds.timeoutSeconds * 1000)
      settle({
        error: stateError(
          'States.Timeout',
          `runner ${request.subcommand} ran longer than TimeoutSeconds (${bounds.timeoutSeconds} s)`,
        ),
      });
    else if (now - lastBeat >= bounds.heartbeatSeconds * 1000)
      settle({
        error: stateError(
          'States.HeartbeatTimeout',
          `runner ${request.subcommand} sent no heartbeat for HeartbeatSeconds (${bounds.heartbeatSeconds} s)`,
        ),
      });
  }, 200);
  void task.exited.then((how) =>
    // A task that ended without answering its token: AWS would wait out HeartbeatSeconds; here, at
    // once, saying how the process ended (AWS's own cause says nothing of it).
    setTimeout(
      () =>
        settle({
          error: stateError(
            'States.HeartbeatTimeout',
            `runner ${request.subcommand} ${how ?? 'ended'} without answering its task token (no SendTaskSuccess or SendTaskFailure; AWS reports this after HeartbeatSeconds)`,
          ),
        }),
      500,
    ),
  );
  const result = await outcome;
  clearInterval(watch);
  // The state has ended: later calls on the token are refused (TaskTimedOut), which stops a stray runner.
  (task as { endToken?: () => void }).endToken?.();
  // A runner that answered success may still tidy up (restore-neo4j removes the replaced store):
  // it is given the state's whole time; one whose state failed only its stop bound.
  const bound =
    'error' in result
      ? (bounds.heartbeatSeconds * 1000) / 6 + INTERRUPT_WAIT_MS
      : bounds.timeoutSeconds * 1000;
  const killer = setTimeout(() => {
    logger.warn('a runner outlived its state and was killed', { subcommand: request.subcommand });
    task.stop();
  }, bound);
  await task.exited;
  clearTimeout(killer);
  if ('error' in result) throw result.error;
  return result.output;
}

/** How long a stray runner is given to stop itself after its heartbeat is refused (its own bound is 30 s). */
const INTERRUPT_WAIT_MS = 35_000;

/**
 * A copy of `definition` whose `ecs:runTask.waitForTaskToken` states leave their bounds to
 * runWithTaskToken: their TimeoutSecondsPath and HeartbeatSecondsPath are removed. Step Functions
 * resolves these reference paths against the state's input ("Path for this timeout ... in the state
 * input", AWS CDK API Reference, aws_stepfunctions.Timeout.at; AWS Step Functions Developer Guide,
 * "Task workflow state": TimeoutSecondsPath, HeartbeatSecondsPath); aws-local-stepfunctions 3.0.0
 * resolves TimeoutSecondsPath against the state's Parameters' output instead (TaskStateAction.
 * getTimeoutMs is handed the processed input), where `$.timeouts.<step>` points to nothing, so every
 * runner state failed with "does not point to a value"; it ignores HeartbeatSecondsPath. The same
 * Parameters hand the runner both values, resolved from the state's input
 * (TASK_TIMEOUT_SECONDS / TASK_HEARTBEAT_SECONDS, or `--timeout-seconds` / `--heartbeat-seconds`),
 * and runWithTaskToken enforces both with Step Functions' error names. The definition given is not
 * modified.
 */
export function withLocalTaskTokenBounds<T extends { States: Record<string, Record<string, unknown>> }>(
  definition: T,
): T {
  const copy = structuredClone(definition);
  for (const [, state] of allStates(copy)) {
    if (state.Type !== 'Task' || !String(state.Resource).endsWith(':states:::ecs:runTask.waitForTaskToken'))
      continue;
    delete state.TimeoutSecondsPath;
    delete state.HeartbeatSecondsPath;
  }
  return copy;
}

/** Runs the backup state machine locally (the main job). */
export function runBackupLocally(input: unknown, options: LocalBackupOptions): Promise<LocalExecution> {
  return runStateMachineLocally('backup', input, options);
}

/** Runs the restore state machine locally: the same definition `cdk deploy` deploys. */
export function runRestoreLocally(input: unknown, options: LocalBackupOptions): Promise<LocalExecution> {
  return runStateMachineLocally('restore', input, options);
}

/**
 * Runs the restore drill state machine locally: a single-target input (`{target, ...}`) as one
 * drill, or a fleet input (`{targets, ...}`) as one execution whose Distributed Map starts a drill
 * execution per target (states:startExecution.sync:2, each run here as its own local execution,
 * with its own history and notice; their events come tagged with their `executionArn`, and each is
 * in `executions` with `startedBy`). The fleet's results are written to the local bucket under
 * `.fleet-results/drill/`.
 */
export function runDrillLocally(input: unknown, options: LocalBackupOptions): Promise<LocalExecution> {
  return runStateMachineLocally('drill', input, options);
}

/** An execution started by another one's Task state (startExecution.sync:2): its name and starter. */
interface NestedStart {
  executionName: string;
  startedBy?: string;
}

/**
 * Runs one of the synthesized state machines locally (see the module's comment), to its end.
 * Executions it starts from Task states (states:startExecution.sync:2: a fleet drill's per-target
 * drills) run the same way, each as an execution of its own; their events and summaries are part
 * of the returned execution's `events` and `executions`.
 */
export async function runStateMachineLocally(
  kind: MachineKind,
  input: unknown,
  options: LocalBackupOptions,
  nested?: NestedStart,
): Promise<LocalExecution> {
  const { config, aws } = options;
  const logger = options.logger ?? createLogger({}, { write: () => undefined });
  const synthesized = options.synthesized ?? synthesizeBackup(config);
  const machine = synthesized.machines[kind];
  const executionName = nested?.executionName ?? randomUUID();
  const executionArn = `arn:aws:states:${config.region}:${LOCAL_ACCOUNT}:execution:${machine.name}:${executionName}`;
  const startTime = options.startTime ?? new Date();

  // The Map Runs each execution of this run started (its Distributed Maps'), by execution ARN.
  const mapRuns = new Map<string, string[]>();
  // What the notice-sending functions (Notify, RestoreReport) are given.
  const notices = {
    s3: aws.s3,
    bucket: aws.bucket,
    sns: aws.sns,
    events: aws.events,
    topicArns: [aws.topicArn],
    // Metrics are log lines (embedded metric format), as in the Lambda: no CloudWatch call.
    emf:
      options.onMetrics ??
      ((line: string) => logger.debug('metrics (embedded metric format)', { emf: line })),
    perTargetMetrics: config.monitoring.perTargetMetrics,
    logger,
  };
  // Every Lambda a state machine invokes, served by its step (functions/steps.ts) with local clients.
  // The Community DBMS services (neo4j.dbms), scaled by the Dbms states and by a runner that copied
  // its store: each stops and starts its target's local DBMS (runtime().dbms).
  const dbmsServices = new LocalEcsServices((cluster, service) => {
    const target = config.targets.find(
      (t) => t.neo4j.dbms?.cluster === cluster && t.neo4j.dbms?.service === service,
    );
    return target ? options.runtime(target.name).dbms : undefined;
  });
  const lambdas: Record<StateMachineLambda, (payload: unknown) => Promise<unknown>> = {
    Plan: async (p) => steps.Plan(p, { config, logger }),
    Lock: (p) =>
      steps.Lock(p, {
        s3: aws.s3,
        bucket: aws.bucket,
        config,
        logger,
        executionStatus: options.executionStatus ?? localExecutionStatus(),
      }),
    // As the deployed handlers: the state's run-time values plus the target's settings from the
    // deployment configuration (functions/steps.ts stepEvents; core/config/bundled.ts).
    Preflight: (p) => steps.Preflight(stepEvents.Preflight(p, config), { secrets: aws.secrets, logger }),
    // The same Bolt wait as on AWS, against the local target's Neo4j (120 s: a local DBMS is small).
    Neo4jReady: (p) =>
      steps.Neo4jReady(stepEvents.Neo4jReady(p, config), {
        secrets: aws.secrets,
        logger,
        maxWaitSeconds: 120,
        pollMs: 500,
      }),
    Manifest: (p) =>
      steps.Manifest(stepEvents.Manifest(p, config), { s3: aws.s3, bucket: aws.bucket, logger }),
    Notify: (p) => steps.Notify(p, notices),
    // A backup fleet's report, or a fleet drill's (kind drill-fleet); after a failed Map, its Map
    // Runs as ListMapRuns would list them (this run's record of them, mapRuns below).
    Report: (p) =>
      steps.Report(p, {
        s3: aws.s3,
        bucket: aws.bucket,
        mapRuns: async (arn) => mapRuns.get(arn) ?? [],
      }),
    RestorePlan: (p) =>
      steps.RestorePlan(p, { s3: aws.s3, bucket: aws.bucket, secrets: aws.secrets, config, logger }),
    // As the deployed handler: the recovery time objective from the deployment configuration.
    RestoreReport: (p) => steps.RestoreReport(p, { ...notices, rtoMinutes: config.rtoMinutes }),
    Services: async (p) => {
      // The deployment's ECS services: locally there are none unless a test hands in an ECS client.
      if (!options.ecs) {
        throw new DbmsControlError(
          'cannot scale the Infrahub services locally: no ECS endpoint (remove "quiesce" from the local configuration)',
        );
      }
      return steps.Services(p, { ecs: options.ecs, logger, pollIntervalSeconds: 0 });
    },
    Dbms: async (p): Promise<DbmsResult> => {
      const event = parseInput(DbmsEventSchema, p, 'DBMS event');
      const before = dbmsServices.describe(event.cluster, event.service);
      if (!before)
        throw new DbmsControlError(
          `cannot stop the DBMS of "${event.target}" locally: no stop and start commands are given (backup:local reads NEO4J_STOP_COMMAND and NEO4J_START_COMMAND)`,
        );
      const desiredCount = event.action === 'stop' ? before.desired : event.desiredCount;
      // One record per service, shared with the runner's own start (ecs-endpoint.ts).
      // Every stop and start runs its control, as before this record; a start to zero (the DBMS was
      // stopped before the backup) leaves it as it is.
      await dbmsServices.update(
        event.cluster,
        event.service,
        event.action === 'stop' ? 0 : desiredCount,
        event.action === 'stop' || desiredCount > 0,
      );
      const runningCount = dbmsServices.describe(event.cluster, event.service)?.running ?? 0;
      return { target: event.target, service: event.service, desiredCount, runningCount, waitedSeconds: 0 };
    },
  };

  // The runners answer their task tokens on a loopback endpoint (task-token-endpoint.ts).
  const tokens = await LocalTaskTokenEndpoint.start();
  // A Community runner that copied its store starts the DBMS again through ECS (ecs-endpoint.ts).
  const ecsUrl = await dbmsServices.listen();
  const runTask: LocalRunTask = options.runTask
    ? fakeRunTask(options.runTask)
    : (request, token) => runRunnerTask(request, options, synthesized, token, tokens, ecsUrl);

  const handlerFor = (state: TaskState) => {
    if (state.resource.endsWith(':states:::lambda:invoke')) {
      const fnArn = String((state.parameters as { FunctionName?: unknown }).FunctionName);
      const name = synthesized.functions.get(fnArn);
      const fn = name && name in lambdas ? lambdas[name as StateMachineLambda] : undefined;
      if (!fn) throw new Error(`state ${state.name}: no local handler for function ${fnArn}`);
      return async (params: unknown) => {
        try {
          // The deployed handlers' own wrapper: errors and outputs redacted as on AWS.
          const payload = await lambdaHandler(fn)((params as { Payload: unknown }).Payload);
          return { Payload: payload, StatusCode: 200, ExecutedVersion: '$LATEST' };
        } catch (err) {
          throw lambdaError(err);
        }
      };
    }
    if (state.resource.endsWith(':states:::ecs:runTask.waitForTaskToken')) {
      return async (params: unknown) => {
        const p = params as {
          TaskDefinition: string;
          Overrides: {
            ContainerOverrides: Array<{
              Name: string;
              Command: string[];
              Environment?: Array<{ Name: string; Value: string }>;
            }>;
          };
        };
        const override = p.Overrides.ContainerOverrides[0];
        const family = p.TaskDefinition.replace(/^.*:task-definition\//, '').replace(/:\d+$/, '');
        const command = override?.Command ?? [];
        const environment = Object.fromEntries((override?.Environment ?? []).map((e) => [e.Name, e.Value]));
        // The bounds come as TASK_* variables, or as arguments after the subcommand (runner-tasks.ts).
        const arg = (flag: string) => {
          const i = command.indexOf(flag);
          return i > 0 ? command[i + 1] : undefined;
        };
        const heartbeatSeconds =
          options.heartbeatSecondsOverride ??
          Number(environment.TASK_HEARTBEAT_SECONDS ?? arg('--heartbeat-seconds'));
        if (environment.TASK_HEARTBEAT_SECONDS !== undefined)
          environment.TASK_HEARTBEAT_SECONDS = String(heartbeatSeconds);
        const timeoutSeconds = Number(environment.TASK_TIMEOUT_SECONDS ?? arg('--timeout-seconds'));
        const request: RunTaskRequest = {
          family,
          // A drill's definition serves several targets: its TARGET comes with the overrides.
          target: environment.TARGET ?? synthesized.taskDefinitions.get(family)?.environment.TARGET ?? '',
          subcommand: command[0] ?? '',
          environment,
        };
        return runWithTaskToken(request, command, { heartbeatSeconds, timeoutSeconds }, runTask, logger);
      };
    }
    throw new Error(`state ${state.name}: no local handler for ${state.resource}`);
  };

  const events: ExecutionEvent[] = [];
  const history: ExecutionEvent[] = [];
  const executions: ExecutionSummary[] = [];

  // states:startExecution.sync:2: the named synthesized state machine, run here as an execution of
  // its own (its own history, task-token endpoint and notices), started at this execution's clock
  // (a test's startTime moves on with real time) and recorded with its starter.
  const machineArn = (name: string) =>
    `arn:aws:states:${config.region}:${LOCAL_ACCOUNT}:stateMachine:${name}`;
  const kinds = new Map(
    (Object.entries(synthesized.machines) as Array<[MachineKind, { name: string }]>).map(([k, m]) => [
      machineArn(m.name),
      k,
    ]),
  );
  const startedAt = Date.now();
  const startExecution: LocalExecutionStarter = async (request) => {
    const started = kinds.get(request.stateMachineArn);
    if (!started)
      throw Object.assign(new Error(`State Machine Does Not Exist: '${request.stateMachineArn}'`), {
        name: 'StepFunctions.StateMachineDoesNotExistException',
      });
    const name = request.name ?? randomUUID();
    const arn = `arn:aws:states:${config.region}:${LOCAL_ACCOUNT}:execution:${synthesized.machines[started].name}:${name}`;
    const startDate = new Date(startTime.getTime() + (Date.now() - startedAt));
    const run = await runStateMachineLocally(
      started,
      request.input,
      {
        ...options,
        synthesized,
        startTime: startDate,
        onEvent: (event) => {
          const tagged = event.executionArn ? event : { ...event, executionArn: arn };
          events.push(tagged);
          options.onEvent?.(tagged);
        },
      },
      { executionName: name, ...(request.startedBy ? { startedBy: request.startedBy } : {}) },
    );
    executions.push(...run.executions);
    return {
      executionArn: run.executionArn,
      stateMachineArn: request.stateMachineArn,
      name,
      startDate,
      stopDate: new Date(startTime.getTime() + (Date.now() - startedAt)),
      status: run.status,
      ...(run.status === 'SUCCEEDED'
        ? { output: run.output }
        : { ...(run.error !== undefined ? { error: run.error } : {}), cause: run.cause ?? '' }),
    };
  };
  // Recorded so a later run can tell that this one ended (a lock it could not release is taken over).
  const ended = recordLocalExecution(executionArn);
  let outcome: 'SUCCEEDED' | 'FAILED' = 'FAILED';
  try {
    const output = await runLocally(withLocalTaskTokenBounds(machine.definition), input, handlerFor, {
      context: {
        Execution: {
          Id: executionArn,
          Name: executionName,
          Input: input,
          StartTime: startTime.toISOString(),
          RoleArn: `arn:aws:iam::${LOCAL_ACCOUNT}:role/local`,
        },
        StateMachine: {
          Id: `arn:aws:states:${config.region}:${LOCAL_ACCOUNT}:stateMachine:${machine.name}`,
          Name: machine.name,
        },
        // aws-local-stepfunctions has no task tokens: `$$.Task.Token` resolves to this placeholder,
        // which the ECS handler replaces with a token of its own per run (runWithTaskToken).
        Task: { Token: LOCAL_TASK_TOKEN_PLACEHOLDER },
      },
      ...(options.retryIntervalMs !== undefined ? { retryIntervalMs: options.retryIntervalMs } : {}),
      ...(options.waitTimeOverrides ? { waitTimeOverrides: options.waitTimeOverrides } : {}),
      onEvent: (event) => {
        events.push(event);
        history.push(event);
        options.onEvent?.(event);
      },
      onChildEvent: (child, event) => {
        const tagged = { ...event, executionArn: child.executionArn };
        events.push(tagged);
        options.onEvent?.(tagged);
      },
      onExecutionEnd: (summary) =>
        executions.push(
          summary.executionArn === executionArn && nested?.startedBy
            ? { ...summary, startedBy: nested.startedBy }
            : summary,
        ),
      startExecution,
      onMapRun: (run) =>
        mapRuns.set(run.executionArn, [...(mapRuns.get(run.executionArn) ?? []), run.mapRunArn]),
      ...(options.maxHistoryEvents !== undefined ? { maxHistoryEvents: options.maxHistoryEvents } : {}),
      // A Distributed Map's ResultWriter: the template's bucket reference is the local bucket.
      writeResult: async (_bucket, key, body) => {
        await putObject(aws.s3, aws.bucket, key, Buffer.from(body), 'application/json');
      },
    });
    outcome = 'SUCCEEDED';
    return { executionArn, status: 'SUCCEEDED', output, events, history, executions };
  } catch (err) {
    // The execution failed (a Fail state, or an error nothing caught): its Error and Cause, as on AWS.
    const failed = [...history].reverse().find((e) => e.type === 'ExecutionFailed') as
      | { Error?: string; Cause?: string }
      | undefined;
    if (!failed) throw err;
    return {
      executionArn,
      status: 'FAILED',
      error: failed.Error,
      cause: failed.Cause,
      events,
      history,
      executions,
    };
  } finally {
    ended(outcome);
    await tokens.close();
    await dbmsServices.close();
  }
}

/** One ECS state: the runner's entrypoint with the task definition's contract, answering its task token on `tokens`. */
async function runRunnerTask(
  request: RunTaskRequest,
  options: LocalBackupOptions,
  synthesized: SynthesizedBackup,
  token: Parameters<LocalRunTask>[1],
  tokens: LocalTaskTokenEndpoint,
  ecsUrl: string,
): Promise<{ exited: Promise<string | undefined>; stop: () => void; endToken: () => void }> {
  const taskDefinition = synthesized.taskDefinitions.get(request.family);
  if (!taskDefinition) throw new Error(`no task definition with family "${request.family}"`);
  const target = request.target;
  const secrets: Record<string, string> = {};
  for (const [name, ref] of Object.entries(taskDefinition.secrets)) {
    // ECS injects these before the container starts; a missing secret stops the task the same way.
    secrets[name] = await readSecret(options.aws.secrets, ref.secretId, ref.jsonKey ?? '');
  }
  const env = {
    ...taskDefinition.environment,
    ...secrets,
    ...options.runtime(target).env,
    ...options.aws.env(),
    // The template's bucket reference, resolved to the local bucket.
    BACKUP_BUCKET: options.aws.bucket,
    S3_ENDPOINT: options.aws.endpoint,
    S3_FORCE_PATH_STYLE: 'true',
    // The runner's task-token calls go to the loopback endpoint (the SDK's service-specific endpoint).
    AWS_ENDPOINT_URL_SFN: tokens.url,
    // Its ECS calls (a Community runner starting its DBMS again) to the local services' stand-in.
    AWS_ENDPOINT_URL_ECS: ecsUrl,
    ...request.environment,
  };
  tokens.register(token.value, {
    heartbeat: token.beat,
    success: (output) => token.answer({ output: JSON.parse(output) }),
    failure: (error, cause) => token.answer({ error: stateError(error || 'States.TaskFailed', cause) }),
  });
  let pid: number | undefined;
  const exited = runRunner(request.subcommand, env, (p) => {
    pid = p;
    options.onRunnerStart?.({ target, subcommand: request.subcommand, pid: p });
  }).then(
    (run) => {
      options.onRunnerExit?.({ target, subcommand: request.subcommand, code: run.code, stderr: run.stderr });
      const last = redactText(run.stderr.trim().split('\n').pop() ?? '').slice(0, 300);
      return run.code === null
        ? `was killed (${run.signal ?? 'signal'})`
        : `exited with ${run.code}${last ? ` (${last})` : ''}`;
    },
    () => undefined,
  );
  return {
    exited,
    endToken: () => tokens.end(token.value),
    stop: () => {
      if (pid === undefined) return;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}
