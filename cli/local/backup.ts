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
import { DbmsControlError } from '../../core/errors.js';
import { createLogger, type Logger } from '../../core/log.js';
import type { EmfSink } from '../../core/metrics.js';
import { redactText } from '../../core/redact.js';
import { readSecret } from '../../core/secrets.js';
import { DbmsEventSchema, type DbmsResult } from '../../functions/dbms/dbms.js';
import { lambdaHandler } from '../../functions/handler.js';
import { lockStep } from '../../functions/lock/lock.js';
import { manifestStep } from '../../functions/manifest/manifest.js';
import { neo4jReadyStep } from '../../functions/neo4j-ready/neo4j-ready.js';
import { notifyStep } from '../../functions/notify/notify.js';
import { planStep } from '../../functions/plan/plan.js';
import { preflight } from '../../functions/preflight/preflight.js';
import { reportFleet } from '../../functions/report/report.js';
import { restorePlanStep } from '../../functions/restore-plan/restore-plan.js';
import { restoreReportStep } from '../../functions/restore-report/restore-report.js';
import { servicesStep } from '../../functions/services/services.js';
import { localExecutionStatus, recordLocalExecution } from './executions.js';
import { runRunner } from './runner-process.js';
import { type ExecutionEvent, runLocally, type TaskState } from './state-machine.js';
import { LOCAL_ACCOUNT, type MachineKind, type SynthesizedBackup, synthesizeBackup } from './synth.js';

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
  /** Wait states' pauses in ms by state name (tests: the preflight loop's PreflightWait); see runLocally. */
  waitTimeOverrides?: Record<string, number>;
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
  events: ExecutionEvent[];
}

/** A Lambda error as lambda:invoke reports it: the error type as Error, a JSON Cause. */
function lambdaError(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const failure = new Error(JSON.stringify({ errorType: e.name, errorMessage: e.message, trace: [] }));
  failure.name = e.name === 'Error' ? 'Error' : e.name;
  return failure;
}

/** A failed ECS task as runTask.sync reports it: States.TaskFailed, the task description as Cause. */
function taskFailed(task: Record<string, unknown>): Error {
  const failure = new Error(JSON.stringify(task));
  failure.name = 'States.TaskFailed';
  return failure;
}

/** Runs the backup state machine locally (the main job). */
export function runBackupLocally(input: unknown, options: LocalBackupOptions): Promise<LocalExecution> {
  return runStateMachineLocally('backup', input, options);
}

/** Runs the restore state machine locally: the same definition `cdk deploy` deploys. */
export function runRestoreLocally(input: unknown, options: LocalBackupOptions): Promise<LocalExecution> {
  return runStateMachineLocally('restore', input, options);
}

/** Runs the restore drill state machine locally. */
export function runDrillLocally(input: unknown, options: LocalBackupOptions): Promise<LocalExecution> {
  return runStateMachineLocally('drill', input, options);
}

export async function runStateMachineLocally(
  kind: MachineKind,
  input: unknown,
  options: LocalBackupOptions,
): Promise<LocalExecution> {
  const { config, aws } = options;
  const logger = options.logger ?? createLogger({}, { write: () => undefined });
  const synthesized = options.synthesized ?? synthesizeBackup(config);
  const machine = synthesized.machines[kind];
  const executionName = randomUUID();
  const executionArn = `arn:aws:states:${config.region}:${LOCAL_ACCOUNT}:execution:${machine.name}:${executionName}`;
  const startTime = options.startTime ?? new Date();

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
    logger,
  };
  const lambdas: Record<string, (payload: unknown) => Promise<unknown>> = {
    Plan: async (p) => planStep(p, { config, logger }),
    Lock: (p) =>
      lockStep(p, {
        s3: aws.s3,
        bucket: aws.bucket,
        config,
        logger,
        executionStatus: options.executionStatus ?? localExecutionStatus(),
      }),
    Preflight: (p) => preflight(p, { secrets: aws.secrets, logger }),
    // The same Bolt wait as on AWS, against the local target's Neo4j (120 s: a local DBMS is small).
    Neo4jReady: (p) => neo4jReadyStep(p, { secrets: aws.secrets, logger, maxWaitSeconds: 120, pollMs: 500 }),
    Manifest: (p) => manifestStep(p, { s3: aws.s3, bucket: aws.bucket, logger }),
    Notify: (p) => notifyStep(p, notices),
    Report: async (p) => reportFleet(p),
    RestorePlan: (p) =>
      restorePlanStep(p, { s3: aws.s3, bucket: aws.bucket, secrets: aws.secrets, config, logger }),
    RestoreReport: (p) => restoreReportStep(p, notices),
    Services: async (p) => {
      // The deployment's ECS services: locally there are none unless a test hands in an ECS client.
      if (!options.ecs) {
        throw new DbmsControlError(
          'cannot scale the Infrahub services locally: no ECS endpoint (remove "quiesce" from the local configuration)',
        );
      }
      return servicesStep(p, { ecs: options.ecs, logger, pollIntervalSeconds: 0 });
    },
    Dbms: async (p): Promise<DbmsResult> => {
      const event = parseInput(DbmsEventSchema, p, 'DBMS event');
      const dbms = options.runtime(event.target).dbms;
      if (!dbms)
        throw new DbmsControlError(
          `cannot stop the DBMS of "${event.target}" locally: no stop and start commands are given (backup:local reads NEO4J_STOP_COMMAND and NEO4J_START_COMMAND)`,
        );
      if (event.action === 'stop') await dbms.stop();
      else if (event.desiredCount > 0) await dbms.start();
      const desiredCount = event.action === 'stop' ? 1 : event.desiredCount;
      const runningCount = event.action === 'stop' ? 0 : desiredCount;
      return { target: event.target, service: event.service, desiredCount, runningCount, waitedSeconds: 0 };
    },
  };

  const runTask =
    options.runTask ?? ((request: RunTaskRequest) => runRunnerTask(request, options, synthesized));

  const handlerFor = (state: TaskState) => {
    if (state.resource.endsWith(':states:::lambda:invoke')) {
      const fnArn = String((state.parameters as { FunctionName?: unknown }).FunctionName);
      const name = synthesized.functions.get(fnArn);
      const fn = name ? lambdas[name] : undefined;
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
    if (state.resource.endsWith(':states:::ecs:runTask.sync')) {
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
        const taskArn = `arn:aws:ecs:${config.region}:${LOCAL_ACCOUNT}:task/local/${randomUUID().replace(/-/g, '')}`;
        const request: RunTaskRequest = {
          family,
          // A drill's definition serves several targets: its TARGET comes with the overrides.
          target:
            (override?.Environment ?? []).find((e) => e.Name === 'TARGET')?.Value ??
            synthesized.taskDefinitions.get(family)?.environment.TARGET ??
            '',
          subcommand: override?.Command[0] ?? '',
          environment: Object.fromEntries((override?.Environment ?? []).map((e) => [e.Name, e.Value])),
        };
        const described = (exitCode: number, reason: string) => ({
          TaskArn: taskArn,
          TaskDefinitionArn: `arn:aws:ecs:${config.region}:${LOCAL_ACCOUNT}:task-definition/${family}:1`,
          LastStatus: 'STOPPED',
          StopCode: 'EssentialContainerExited',
          StoppedReason: 'Essential container in task exited',
          Containers: [{ Name: override?.Name, ExitCode: exitCode, Reason: reason, LastStatus: 'STOPPED' }],
          Overrides: p.Overrides,
        });
        try {
          await runTask(request);
        } catch (err) {
          const exit = (err as { exitCode?: number }).exitCode ?? 1;
          throw taskFailed(described(exit, redactText(err instanceof Error ? err.message : String(err))));
        }
        return described(0, '');
      };
    }
    throw new Error(`state ${state.name}: no local handler for ${state.resource}`);
  };

  const events: ExecutionEvent[] = [];
  // Recorded so a later run can tell that this one ended (a lock it could not release is taken over).
  const ended = recordLocalExecution(executionArn);
  let outcome: 'SUCCEEDED' | 'FAILED' = 'FAILED';
  try {
    const output = await runLocally(machine.definition, input, handlerFor, {
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
      },
      ...(options.retryIntervalMs !== undefined ? { retryIntervalMs: options.retryIntervalMs } : {}),
      ...(options.waitTimeOverrides ? { waitTimeOverrides: options.waitTimeOverrides } : {}),
      onEvent: (event) => {
        events.push(event);
        options.onEvent?.(event);
      },
    });
    outcome = 'SUCCEEDED';
    return { executionArn, status: 'SUCCEEDED', output, events };
  } catch (err) {
    // The execution failed (a Fail state, or an error nothing caught): its Error and Cause, as on AWS.
    const failed = [...events].reverse().find((e) => e.type === 'ExecutionFailed') as
      | { Error?: string; Cause?: string }
      | undefined;
    if (!failed) throw err;
    return { executionArn, status: 'FAILED', error: failed.Error, cause: failed.Cause, events };
  } finally {
    ended(outcome);
  }
}

/** One ECS state: the runner's entrypoint with the task definition's contract. */
async function runRunnerTask(
  request: RunTaskRequest,
  options: LocalBackupOptions,
  synthesized: SynthesizedBackup,
): Promise<void> {
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
    ...request.environment,
  };
  const run = await runRunner(request.subcommand, env, (pid) =>
    options.onRunnerStart?.({ target, subcommand: request.subcommand, pid }),
  );
  options.onRunnerExit?.({ target, subcommand: request.subcommand, code: run.code, stderr: run.stderr });
  if (run.code !== 0) {
    const last = run.stderr.trim().split('\n').pop() ?? '';
    const how = run.code === null ? `was killed (${run.signal ?? 'signal'})` : `exited with ${run.code}`;
    throw Object.assign(new Error(`runner ${request.subcommand} ${how}: ${last}`), {
      exitCode: run.code ?? 1,
    });
  }
}
