import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { BACKUP_RUNNER_STEPS } from '../../core/backup/runner-steps.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { stepKeyOf } from '../../core/config/timeouts.js';
import { ErrorNames } from '../../core/errors.js';
import type { BackupFunctions } from './backup-functions.js';
import type { BackupRunner } from './backup-runner.js';
import { fleetResultsPrefix, grantFleetResults, ScopedResultWriterMap } from './fleet-map.js';
import { stateMachineLogsKey } from './notices.js';
import { ecsCapacityRetry, grantRunnerTasks, runnerTask } from './runner-tasks.js';

/**
 * Named Retry policies. Only errors that a second attempt can cure are retried; a bad input, a busy
 * Infrahub (the gate already waited), a held lock or a runner that exited non-zero are not.
 */
export const Retries = {
  /** The Lambda service itself failed or throttled the call; the function did not run or can run again. */
  lambdaService: {
    errors: [
      'Lambda.ServiceException',
      'Lambda.AWSLambdaException',
      'Lambda.SdkClientException',
      'Lambda.TooManyRequestsException',
      'Lambda.ClientExecutionTimeoutException',
    ],
    interval: Duration.seconds(2),
    maxAttempts: 4,
    backoffRate: 2,
    jitterStrategy: sfn.JitterType.FULL,
  },
  /** S3 refused or timed out (our StorageError); the steps that write are idempotent per backup id. */
  storage: {
    errors: [ErrorNames.StorageError],
    interval: Duration.seconds(5),
    maxAttempts: 3,
    backoffRate: 2,
  },
  /**
   * Releasing a target's lock: S3 refused or timed out. Retried long enough to outlast a short S3
   * outage (5 + 10 + 20 + 40 + 60 + 60 s: over three minutes, besides the SDK's own attempts in each
   * call), since a lock left behind blocks the target's next run until that run finds this execution
   * ended (AcquireLock asks Step Functions) or the lock expires.
   */
  lockRelease: {
    errors: [ErrorNames.StorageError],
    interval: Duration.seconds(5),
    maxAttempts: 6,
    backoffRate: 2,
    maxDelay: Duration.seconds(60),
    jitterStrategy: sfn.JitterType.FULL,
  },
  /** Infrahub's API could not be reached; a restart or a network blip passes. */
  infrahubUnreachable: {
    errors: [ErrorNames.InfrahubUnreachable],
    interval: Duration.seconds(30),
    maxAttempts: 3,
    backoffRate: 2,
  },
  /** SNS or EventBridge refused a notice. */
  notification: {
    errors: [ErrorNames.Notification],
    interval: Duration.seconds(5),
    maxAttempts: 3,
    backoffRate: 2,
  },
  /** ECS could not start the runner task (capacity, throttling, a service error). */
  ecsCapacity: ecsCapacityRetry,
  /**
   * Starting a Community DBMS again did not finish within the function's wait (a slow start, ECS
   * placement): scaling to the same count and waiting again is idempotent, so it is worth two more
   * tries before the DBMS is reported down.
   */
  dbmsStart: {
    errors: [ErrorNames.DbmsControl],
    interval: Duration.seconds(30),
    maxAttempts: 2,
    backoffRate: 2,
  },
} satisfies Record<string, sfn.RetryProps>;

/** The runner subcommand behind each ECS state, so logs, notices and the local mode agree. */
export const RunnerSteps = BACKUP_RUNNER_STEPS;

export interface BackupStateMachineProps {
  readonly config: DeploymentConfig;
  readonly functions: BackupFunctions;
  readonly runner: BackupRunner;
  /** The backup bucket and its key: the Distributed Map writes its children's results there. */
  readonly storage: { readonly bucket: s3.IBucket; readonly key: kms.IKey };
  /** The whole execution's bound; a target's lock expires with it. */
  readonly timeout?: Duration;
}

/**
 * The backup state machine (docs/architecture.md, "State machines"):
 *
 *   Plan (validate input) → Map over targets (bounded concurrency), each independently:
 *     AcquireLock → Preflight (one check per call, a Wait state between checks) → Capture (Parallel: graph database, task-manager database,
 *     artifacts; each an ECS runner task, each branch reporting instead of failing so the others
 *     finish) → WriteManifest (last) → ReleaseLock → NotifySuccess
 *     any failure → ReleaseLockAfterFailure → NotifyFailure (target, step, cause); no manifest
 *   → Report → succeed, or fail naming each failed target.
 */
export class BackupStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;
  private readonly invokedFunctions = new Set<lambda.IFunction>();

  constructor(scope: Construct, id: string, props: BackupStateMachineProps) {
    super(scope, id);
    const { config, functions: fns, runner } = props;
    const timeout = props.timeout ?? Duration.hours(12);

    const invoke = (
      name: string,
      fn: lambda.IFunction,
      payload: Record<string, unknown>,
      output: { resultPath?: string; resultSelector?: Record<string, unknown>; outputPath?: string },
      retries: sfn.RetryProps[] = [],
    ) => {
      this.invokedFunctions.add(fn);
      const task = new tasks.LambdaInvoke(this, name, {
        lambdaFunction: fn,
        payload: sfn.TaskInput.fromObject(payload),
        retryOnServiceExceptions: false,
        ...output,
      });
      for (const retry of [Retries.lambdaService, ...retries]) task.addRetry(retry);
      return task;
    };
    const catchAll = { errors: [sfn.Errors.ALL], resultPath: '$.error' };
    /** A failed step's record: what NotifyFailure needs, built from the state and the caught error. */
    const failed = (name: string, step: string, extra: Record<string, unknown> = {}) =>
      new sfn.Pass(this, name, {
        parameters: {
          'target.$': '$.target',
          'backupId.$': '$.backupId',
          'owner.$': '$.owner',
          failure: { step, 'error.$': '$.error.Error', 'cause.$': '$.error.Cause' },
          ...extra,
        },
      });
    // What releasing the lock came to, for the notices: {released} or, when it failed after its
    // retries, the caught {Error, Cause} (the notice then says the lock was left and what happens to it).
    const lockRelease = {
      resultPath: '$.lockRelease',
      resultSelector: { 'released.$': '$.Payload.released' },
    };
    const lockNotice = { 'lockRelease.$': '$.lockRelease', lockTtlSeconds: timeout.toSeconds() };

    // ---- failure path of one target -------------------------------------------------------
    const targetFailed = new sfn.Pass(this, 'TargetFailed', {
      parameters: {
        'target.$': '$.target',
        'backupId.$': '$.backupId',
        status: 'failed',
        'step.$': '$.notice.step',
        'error.$': '$.notice.error',
        'summary.$': '$.notice.summary',
      },
    });
    const targetFailedUnnotified = new sfn.Pass(this, 'TargetFailedUnnotified', {
      parameters: {
        'target.$': '$.target',
        'backupId.$': '$.backupId',
        status: 'failed',
        'step.$': '$.failure.step',
        'error.$': '$.failure.error',
        summary: 'the backup failed and its failure notice could not be sent; see the execution history',
      },
    });
    const notifyFailure = invoke(
      'NotifyFailure',
      fns.notify,
      {
        outcome: 'failed',
        'target.$': '$.target',
        'backupId.$': '$.backupId',
        'executionId.$': '$$.Execution.Id',
        'startedAt.$': '$$.Execution.StartTime',
        'failure.$': '$.failure',
        ...lockNotice,
      },
      {
        resultPath: '$.notice',
        resultSelector: {
          'step.$': '$.Payload.step',
          'error.$': '$.Payload.error',
          'summary.$': '$.Payload.summary',
        },
      },
      [Retries.notification],
    )
      .addCatch(targetFailedUnnotified, { errors: [sfn.Errors.ALL], resultPath: '$.notifyError' })
      .next(targetFailed);
    const releaseAfterFailure = invoke(
      'ReleaseLockAfterFailure',
      fns.lock,
      { action: 'release', 'target.$': '$.target', 'owner.$': '$.owner' },
      lockRelease,
      [Retries.lockRelease],
    )
      // A lock left behind is taken over by the next run (this execution will have ended) or expires;
      // the failure notice, which says so, matters more than a clean release.
      .addCatch(notifyFailure, { errors: [sfn.Errors.ALL], resultPath: '$.lockRelease' })
      .next(notifyFailure);

    // ---- success path of one target -------------------------------------------------------
    const targetSucceeded = new sfn.Pass(this, 'TargetSucceeded', {
      parameters: {
        'target.$': '$.target',
        'backupId.$': '$.backupId',
        status: 'succeeded',
        'manifest.$': '$.manifest.manifest',
        'bytes.$': '$.manifest.bytes',
      },
    });
    const notifySuccess = invoke(
      'NotifySuccess',
      fns.notify,
      {
        outcome: 'succeeded',
        'target.$': '$.target',
        'backupId.$': '$.backupId',
        'executionId.$': '$$.Execution.Id',
        'startedAt.$': '$$.Execution.StartTime',
        'forced.$': '$.preflight.forced',
        'warnings.$': '$.preflight.warnings',
        'manifest.$': '$.manifest',
        ...lockNotice,
      },
      { resultPath: sfn.JsonPath.DISCARD },
      [Retries.notification],
    )
      // The backup is complete and its manifest written; a lost notice does not undo it.
      .addCatch(targetSucceeded, { errors: [sfn.Errors.ALL], resultPath: '$.notifyError' })
      .next(targetSucceeded);
    const releaseLock = invoke(
      'ReleaseLock',
      fns.lock,
      { action: 'release', 'target.$': '$.target', 'owner.$': '$.owner' },
      lockRelease,
      [Retries.lockRelease],
    )
      .addCatch(notifySuccess, { errors: [sfn.Errors.ALL], resultPath: '$.lockRelease' })
      .next(notifySuccess);
    const writeManifest = invoke(
      'WriteManifest',
      fns.manifest,
      {
        'target.$': '$.target',
        'backupId.$': '$.backupId',
        'components.$': '$.components',
        'executionId.$': '$$.Execution.Id',
        'forced.$': '$.preflight.forced',
        'infrahubVersion.$': '$.preflight.infrahubVersion',
        'warnings.$': '$.preflight.warnings',
        retention: config.retention,
      },
      {
        resultPath: '$.manifest',
        resultSelector: {
          'manifest.$': '$.Payload.manifest',
          'files.$': '$.Payload.files',
          'bytes.$': '$.Payload.bytes',
          'componentBytes.$': '$.Payload.componentBytes',
          'retentionClass.$': '$.Payload.retentionClass',
        },
      },
      [Retries.storage],
    )
      .addCatch(failed('ManifestFailed', 'WriteManifest').next(releaseAfterFailure), catchAll)
      .next(releaseLock);

    // ---- capture: one Parallel branch per component ---------------------------------------
    const capture = new sfn.Parallel(this, 'Capture', {
      resultPath: '$.captured',
      comment: 'Each branch ends with {ok} or {ok: false, failure}, so one failing does not stop the others',
    });
    capture.branch(this.databaseBranch(props, timeout));
    capture.branch(
      this.componentBranch(props, 'TaskManagerDb', '$.capture.taskManagerDb', 'DumpPostgres', timeout),
    );
    capture.branch(this.componentBranch(props, 'Artifacts', '$.capture.artifacts', 'CopyArtifacts', timeout));
    const captureFailed = (index: number, name: string) =>
      new sfn.Pass(this, name, {
        parameters: {
          'target.$': '$.target',
          'backupId.$': '$.backupId',
          'owner.$': '$.owner',
          'failure.$': `$.captured[${index}].failure`,
        },
      }).next(releaseAfterFailure);
    const captureFailedOther = failed('CaptureFailed', 'Capture').next(releaseAfterFailure);
    capture.addCatch(captureFailedOther, catchAll);
    const checkCapture = new sfn.Choice(this, 'AllComponentsCaptured?')
      .when(sfn.Condition.booleanEquals('$.captured[0].ok', false), captureFailed(0, 'DatabaseFailed'))
      .when(sfn.Condition.booleanEquals('$.captured[1].ok', false), captureFailed(1, 'TaskManagerDbFailed'))
      .when(sfn.Condition.booleanEquals('$.captured[2].ok', false), captureFailed(2, 'ArtifactsFailed'))
      .otherwise(writeManifest);

    // ---- the preflight gate: PreflightStart → Preflight ⇄ (InfrahubStillBusy? → PreflightWait) --
    // One Lambda call checks Infrahub once; the waiting between checks is this loop's Wait state, so
    // preflight.maxWaitSeconds is the bound (a wait inside the Lambda was cut off by its timeout).
    // The bound counts from the first check (its time kept in $.preflight.wait, handed to each call):
    // the call fails InfrahubBusy (or InfrahubUnreachable) itself, with the gate's message, when the
    // next check would fall past it, so the loop passes at most floor(maxWaitSeconds /
    // pollIntervalSeconds) waits of 9 history events each (core/config/schema.ts MAX_PREFLIGHT_WAITS).
    const preflightStart = new sfn.Pass(this, 'PreflightStart', {
      comment: 'No check yet: the first one starts the wait bound',
      result: sfn.Result.fromObject({ wait: null }),
      resultPath: '$.preflight',
    });
    const preflight = invoke(
      'Preflight',
      fns.preflight,
      {
        'target.$': '$.target',
        'backupId.$': '$.backupId',
        'infrahub.$': '$.infrahub',
        'force.$': '$.force',
        maxWaitSeconds: config.preflight.maxWaitSeconds,
        pollIntervalSeconds: config.preflight.pollIntervalSeconds,
        staleTaskHours: config.preflight.staleTaskHours,
        maxTaskPages: config.preflight.maxTaskPages,
        'wait.$': '$.preflight.wait',
      },
      {
        resultPath: '$.preflight',
        resultSelector: {
          'busy.$': '$.Payload.busy',
          'wait.$': '$.Payload.wait',
          'forced.$': '$.Payload.forced',
          'waitedSeconds.$': '$.Payload.waitedSeconds',
          'infrahubVersion.$': '$.Payload.infrahubVersion',
          'warnings.$': '$.Payload.warnings',
        },
      },
      [Retries.infrahubUnreachable],
    ).addCatch(failed('PreflightFailed', 'Preflight').next(releaseAfterFailure), catchAll);
    // Wait state: "Seconds ... to wait before beginning the state specified in the Next field"
    // (Step Functions Developer Guide, "Wait workflow state").
    const preflightWait = new sfn.Wait(this, 'PreflightWait', {
      comment: 'preflight.pollIntervalSeconds between two checks of the Infrahub tasks',
      time: sfn.WaitTime.duration(Duration.seconds(config.preflight.pollIntervalSeconds)),
    });
    preflight.next(
      new sfn.Choice(this, 'InfrahubStillBusy?')
        .when(sfn.Condition.booleanEquals('$.preflight.busy', true), preflightWait.next(preflight))
        .otherwise(capture.next(checkCapture)),
    );
    preflightStart.next(preflight);

    const acquireLock = invoke(
      'AcquireLock',
      fns.lock,
      {
        action: 'acquire',
        'target.$': '$.target',
        'backupId.$': '$.backupId',
        'components.$': '$.components',
        'force.$': '$.force',
        'owner.$': '$.owner',
        // The lock outlives no execution: it expires when the execution would have timed out.
        ttlSeconds: timeout.toSeconds(),
      },
      // The target's work item replaces the Map item as this iteration's state.
      { outputPath: '$.Payload' },
      [Retries.storage],
    )
      // Taking it failed, yet S3 may have stored it (its answer lost, the retries then refused): try
      // a release, which deletes only a lock this execution holds (someone else's stays), so the
      // notice tells the truth: released, not ours ({released: false}), or left (its error).
      .addCatch(failed('LockFailed', 'AcquireLock').next(releaseAfterFailure), catchAll)
      .next(preflightStart);

    // ---- the fleet ------------------------------------------------------------------------
    // A Distributed Map: each target is a child execution with its own history (about 85 events a
    // target; an inline Map put them all in this execution's, whose 25,000-event quota ended a fleet
    // near 290 targets with no catch and no report). STANDARD children, since a target's work runs
    // ECS tasks for hours (an EXPRESS child ends at 5 minutes). ItemsPath: the plan's names are a
    // small part of the state (no ItemReader). Every failed child is tolerated (100 %): the Report
    // names it, and the other targets carry on. The children's outputs go to the backup bucket
    // (ResultWriter), not into this state, whose 256 KiB quota 1,000 targets' outcomes could pass;
    // Report reads them from there. The owner of each target's lock is this (parent) execution.
    // (AWS Step Functions Developer Guide, "Using Map state in Distributed mode", "ResultWriter (Map)",
    // "IAM policies for using Distributed Map states".)
    const perTarget = new ScopedResultWriterMap(this, 'BackupTargets', {
      comment: 'One child execution per target; a failed target does not fail or roll back the others',
      itemsPath: '$.plan.targets',
      itemSelector: {
        'target.$': '$$.Map.Item.Value',
        'backupId.$': '$.plan.backupId',
        'components.$': '$.plan.components',
        'force.$': '$.plan.force',
        'owner.$': '$$.Execution.Id',
      },
      maxConcurrency: config.maxConcurrency,
      mapExecutionType: sfn.StateMachineType.STANDARD,
      label: 'BackupTargets',
      toleratedFailurePercentage: 100,
      resultPath: '$.results',
    });
    perTarget.resultWriterTo(props.storage.bucket.bucketName, fleetResultsPrefix('backup'));
    perTarget.itemProcessor(acquireLock);

    const aborted = (name: string, step: string) =>
      invoke(
        `Notify${name}`,
        fns.notify,
        {
          outcome: 'aborted',
          step,
          'executionId.$': '$$.Execution.Id',
          'failure.$': '$.error',
        },
        { resultPath: sfn.JsonPath.DISCARD },
        [Retries.notification],
      );
    const raise = (name: string) =>
      new sfn.Fail(this, name, { errorPath: '$.error.Error', causePath: '$.error.Cause' });
    const inputRejected = raise('InputRejected');
    const reportFailed = raise('ReportFailed');

    const report = invoke(
      'Report',
      fns.report,
      { 'backupId.$': '$.plan.backupId', 'results.$': '$.results' },
      {
        resultPath: '$.report',
        resultSelector: {
          'backupId.$': '$.Payload.backupId',
          'ok.$': '$.Payload.ok',
          'succeeded.$': '$.Payload.succeeded',
          'failed.$': '$.Payload.failed',
          'summary.$': '$.Payload.summary',
        },
      },
    ).addCatch(
      aborted('ReportFailed', 'Report')
        .addCatch(reportFailed, { errors: [sfn.Errors.ALL], resultPath: sfn.JsonPath.DISCARD })
        .next(reportFailed),
      catchAll,
    );
    const outcome = new sfn.Choice(this, 'AllTargetsBackedUp?')
      .when(
        sfn.Condition.booleanEquals('$.report.ok', true),
        new sfn.Succeed(this, 'BackupSucceeded', { outputPath: '$.report' }),
      )
      .otherwise(
        new sfn.Fail(this, 'BackupFailed', { error: 'BackupFailed', causePath: '$.report.summary' }),
      );

    const plan = invoke(
      'Plan',
      fns.plan,
      { 'input.$': '$$.Execution.Input', 'startTime.$': '$$.Execution.StartTime' },
      {
        resultPath: '$.plan',
        resultSelector: {
          'backupId.$': '$.Payload.backupId',
          'components.$': '$.Payload.components',
          'force.$': '$.Payload.force',
          'targets.$': '$.Payload.targets',
        },
      },
    )
      .addCatch(
        aborted('InputRejected', 'Plan')
          .addCatch(inputRejected, { errors: [sfn.Errors.ALL], resultPath: sfn.JsonPath.DISCARD })
          .next(inputRejected),
        catchAll,
      )
      .next(perTarget)
      .next(report)
      .next(outcome);

    // Step Functions accepts any JSON as execution input; a ResultPath such as "$.plan" cannot be
    // added to null, an array or a string (States.ResultPathMatchFailure, no notice). The first state
    // wraps whatever came into an object, so Plan always runs and refuses a non-object input as
    // InvalidInput, with its notice (Plan reads the input itself from $$.Execution.Input).
    const start = new sfn.Pass(this, 'Start', {
      comment: 'Wraps any execution input into an object, so Plan can refuse a non-object with a notice',
      // The context object's copy of the input: "$" does not point to a value when the input is null.
      parameters: { 'input.$': '$$.Execution.Input' },
    });

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${config.name}-backup`,
      retention: logs.RetentionDays.ONE_YEAR,
      // Execution data (inputs, outputs, causes) is logged: encrypted with the stack's logs key.
      encryptionKey: stateMachineLogsKey(this),
      // Kept on delete and replacement, but removed when its first creation rolls back: a fixed name
      // left behind by a failed first deploy would fail the retry ("already exists").
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    this.stateMachine = new sfn.StateMachine(this, 'Resource', {
      stateMachineName: `${config.name}-backup`,
      comment: 'Backs up Infrahub targets: Neo4j, Prefect PostgreSQL and artifacts, manifest last',
      definitionBody: sfn.DefinitionBody.fromChainable(sfn.Chain.start(start).next(plan)),
      timeout,
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    grantRunnerTasks(
      this.stateMachine.role,
      runner,
      'runner',
      [runner.targetRoleArnPattern('backup')],
      this.invokedFunctions,
    );
    // The Distributed Map's ResultWriter writes under .fleet-results/backup/ only, with the bucket's
    // key; CDK's DistributedMapPolicy covers its children (fleet-map.ts).
    grantFleetResults(this.stateMachine, {
      bucket: props.storage.bucket,
      key: props.storage.key,
      kind: 'backup',
      label: 'BackupTargets',
    });
  }

  /** The graph database: counts, then the Community offline dump (DBMS stopped) or the Enterprise online backup. */
  private databaseBranch(props: BackupStateMachineProps, timeout: Duration): sfn.IChainable {
    const { functions: fns } = props;
    const ok = new sfn.Pass(this, 'DatabaseCaptured', { parameters: { component: 'database', ok: true } });
    const skipped = new sfn.Pass(this, 'DatabaseSkipped', {
      parameters: { component: 'database', ok: true, skipped: true },
    });
    const failedResult = (name: string) =>
      new sfn.Pass(this, name, {
        parameters: { component: 'database', ok: false, 'failure.$': '$.failure' },
      });
    const recordFailure = (name: string, step: string) =>
      new sfn.Pass(this, name, {
        resultPath: '$.failure',
        parameters: { step, 'error.$': '$.error.Error', 'cause.$': '$.error.Cause' },
      });

    const dbmsPayload = (action: 'stop' | 'start') => ({
      action,
      'target.$': '$.target',
      'cluster.$': '$.dbms.cluster',
      'service.$': '$.dbms.service',
      ...(action === 'start' ? { 'desiredCount.$': '$.dbmsState.desiredCount' } : {}),
    });
    // After a failure: bring the DBMS back before reporting (its own failure is then the one reported).
    // Either way the failure notice and the execution's cause say what became of the DBMS
    // (`failure.dbms`): running again, or DOWN with the command and console action that start it.
    const restartAfterFailure = this.invokeDbms(
      fns,
      'StartDbmsAfterFailure',
      dbmsPayload('start'),
      undefined,
      [Retries.dbmsStart],
    )
      .addCatch(
        // The DBMS is down: that is the failure to report, with what led to it and how to start it.
        new sfn.Pass(this, 'DbmsRestartFailed', {
          resultPath: '$.failure',
          parameters: {
            step: 'StartDbmsAfterFailure',
            'error.$': '$.error.Error',
            'cause.$':
              "States.Format('the DBMS is down: it could not be started again ({}) after {} failed ({}: {})', $.error.Cause, $.failure.step, $.failure.error, $.failure.cause)",
            'dbms.$':
              "States.Format('DOWN: the Neo4j DBMS of {} was stopped for its dump and is still stopped. Start it: aws ecs update-service --cluster {} --service {} --desired-count {} (or in the ECS console: cluster {}, service {}, Update service, Desired tasks {})', $.target, $.dbms.cluster, $.dbms.service, $.dbmsState.desiredCount, $.dbms.cluster, $.dbms.service, $.dbmsState.desiredCount)",
          },
        }).next(failedResult('DatabaseFailedDbmsDown')),
        { errors: [sfn.Errors.ALL], resultPath: '$.error' },
      )
      .next(
        new sfn.Pass(this, 'DbmsRunningAgain', {
          resultPath: '$.failure.dbms',
          result: sfn.Result.fromString(
            'running again: the DBMS, stopped for the dump, was started again after the failure',
          ),
        }).next(failedResult('DatabaseFailedDbmsRestarted')),
      );
    // The dump is complete but the DBMS did not come back: start it once more (StartDbmsAfterFailure)
    // before reporting, so a failed start never silently leaves it down.
    // ECS runs the DBMS's task again, but Neo4j opens its databases for a while after (Infrahub answers
    // 503 meanwhile): the database is reported captured only once Neo4j answers over Bolt with them
    // online. If it never does, the dump is kept but the step fails, saying the DBMS does not answer.
    this.invokedFunctions.add(fns.neo4jReady);
    const waitForNeo4j = new tasks.LambdaInvoke(this, 'WaitForNeo4j', {
      lambdaFunction: fns.neo4jReady,
      payload: sfn.TaskInput.fromObject({
        'target.$': '$.target',
        'host.$': '$.neo4j.host',
        'boltPort.$': '$.neo4j.boltPort',
        'credentialsSecret.$': '$.neo4j.credentialsSecret',
        'databases.$': '$.neo4j.databases',
        // Bolt TLS (neo4j.tls): the Lambda connects over bolt+s unless the configuration disables it.
        'tls.$': '$.neo4j.tls',
      }),
      retryOnServiceExceptions: false,
      resultPath: sfn.JsonPath.DISCARD,
    });
    waitForNeo4j.addRetry(Retries.lambdaService);
    waitForNeo4j
      .addCatch(
        recordFailure('WaitForNeo4jFailed', 'WaitForNeo4j').next(
          new sfn.Pass(this, 'DbmsNotAnswering', {
            resultPath: '$.failure.dbms',
            result: sfn.Result.fromString(
              'NOT ANSWERING: the DBMS, stopped for the dump, was started again (ECS runs its task) but Neo4j did not answer over Bolt with its databases online; Infrahub answers 503 until it does: check the DBMS service and its log',
            ),
          }).next(failedResult('DatabaseFailedNeo4jNotAnswering')),
        ),
        { errors: [sfn.Errors.ALL], resultPath: '$.error' },
      )
      .next(ok);
    const startDbms = this.invokeDbms(fns, 'StartDbms', dbmsPayload('start'), undefined, [Retries.dbmsStart])
      .addCatch(recordFailure('StartDbmsFailed', 'StartDbms').next(restartAfterFailure), {
        errors: [sfn.Errors.ALL],
        resultPath: '$.error',
      })
      .next(waitForNeo4j);
    const dump = this.runTask('DumpNeo4j', props, timeout)
      .addCatch(recordFailure('DumpNeo4jFailed', 'DumpNeo4j').next(restartAfterFailure), {
        errors: [sfn.Errors.ALL],
        resultPath: '$.error',
      })
      .next(startDbms);
    const stopDbms = this.invokeDbms(fns, 'StopDbms', dbmsPayload('stop'), {
      resultPath: '$.dbmsState',
      resultSelector: { 'desiredCount.$': '$.Payload.desiredCount' },
    })
      .addCatch(recordFailure('StopDbmsFailed', 'StopDbms').next(restartAfterFailure), {
        errors: [sfn.Errors.ALL],
        resultPath: '$.error',
      })
      .next(dump);
    // Community Neo4j runs one instance; if stopping fails before it reports, restart to one.
    const assumeRunning = new sfn.Pass(this, 'AssumeDbmsRunning', {
      resultPath: '$.dbmsState',
      result: sfn.Result.fromObject({ desiredCount: 1 }),
    }).next(stopDbms);
    const online = this.runTask('BackupNeo4j', props, timeout)
      .addCatch(
        recordFailure('BackupNeo4jFailed', 'BackupNeo4j').next(failedResult('DatabaseFailedOnline')),
        {
          errors: [sfn.Errors.ALL],
          resultPath: '$.error',
        },
      )
      .next(
        new sfn.Pass(this, 'DatabaseCapturedOnline', { parameters: { component: 'database', ok: true } }),
      );
    const edition = new sfn.Choice(this, 'Neo4jEdition?')
      .when(sfn.Condition.stringEquals('$.neo4j.edition', 'community'), assumeRunning)
      .otherwise(online);
    const count = this.runTask('CountNeo4j', props, timeout)
      .addCatch(recordFailure('CountNeo4jFailed', 'CountNeo4j').next(failedResult('DatabaseFailedToCount')), {
        errors: [sfn.Errors.ALL],
        resultPath: '$.error',
      })
      .next(edition);
    return new sfn.Choice(this, 'CaptureDatabase?')
      .when(sfn.Condition.booleanEquals('$.capture.database', true), count)
      .otherwise(skipped);
  }

  /** A component captured by one runner task. */
  private componentBranch(
    props: BackupStateMachineProps,
    component: string,
    flag: string,
    step: keyof typeof RunnerSteps,
    timeout: Duration,
  ): sfn.IChainable {
    const run = this.runTask(step, props, timeout)
      .addCatch(
        new sfn.Pass(this, `${step}Failed`, {
          parameters: {
            component,
            ok: false,
            failure: { step, 'error.$': '$.error.Error', 'cause.$': '$.error.Cause' },
          },
        }),
        { errors: [sfn.Errors.ALL], resultPath: '$.error' },
      )
      .next(new sfn.Pass(this, `${component}Captured`, { parameters: { component, ok: true } }));
    return new sfn.Choice(this, `Capture${component}?`)
      .when(sfn.Condition.booleanEquals(flag, true), run)
      .otherwise(
        new sfn.Pass(this, `${component}Skipped`, { parameters: { component, ok: true, skipped: true } }),
      );
  }

  private invokeDbms(
    fns: BackupFunctions,
    name: string,
    payload: Record<string, unknown>,
    output: { resultPath?: string; resultSelector?: Record<string, unknown> } = {
      resultPath: sfn.JsonPath.DISCARD,
    },
    retries: sfn.RetryProps[] = [],
  ) {
    this.invokedFunctions.add(fns.dbms);
    const task = new tasks.LambdaInvoke(this, name, {
      lambdaFunction: fns.dbms,
      payload: sfn.TaskInput.fromObject(payload),
      retryOnServiceExceptions: false,
      ...output,
    });
    task.addRetry(Retries.lambdaService);
    for (const retry of retries) task.addRetry(retry);
    return task;
  }

  /** An ECS runner task of the target's own task definition (its family is in the work item). */
  private runTask(name: keyof typeof RunnerSteps, props: BackupStateMachineProps, timeout: Duration) {
    // The step's TimeoutSeconds and HeartbeatSeconds come with the work item (targetWork: timeouts).
    void timeout;
    return runnerTask(this, name, {
      runner: props.runner,
      config: props.config,
      bounds: { path: '$.timeouts', step: stepKeyOf(RunnerSteps[name]) },
      subcommand: RunnerSteps[name],
      taskDefinitionPath: '$.taskDefinition',
      environment: [{ Name: 'BACKUP_ID', 'Value.$': '$.backupId' }],
      retry: Retries.ecsCapacity,
    });
  }
}
