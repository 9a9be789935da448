import { Duration } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { BACKUP_RUNNER_STEPS } from '../../core/backup/runner-steps.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { EXECUTION_TIMEOUT_SECONDS } from '../../core/config/timeouts.js';
import type { BackupFunctions } from './backup-functions.js';
import type { BackupRunner } from './backup-runner.js';
import { fleetResultsPrefix, grantFleetResults, ScopedResultWriterMap } from './fleet-map.js';
import { caught, StateBuilder } from './state-machine/builder.js';
import { componentBranch } from './state-machine/component-branch.js';
import { dbmsStartAdvice, dbmsWindow, statesFormat } from './state-machine/dbms-window.js';

/** The runner subcommand behind each ECS state, so logs, notices and the local mode agree. */
export const RunnerSteps = BACKUP_RUNNER_STEPS;
type Step = keyof typeof RunnerSteps;
type Builder = StateBuilder<Step>;

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
 *   The Map failing as a whole → ReportMapFailure → NotifyMapFailure → fail with the Map's error.
 *
 * Its states are built as the restore's are (state-machine/builder.ts); the Community DBMS window is
 * state-machine/dbms-window.ts.
 */
export class BackupStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: BackupStateMachineProps) {
    super(scope, id);
    const { config, functions: fns } = props;
    const timeout = props.timeout ?? Duration.seconds(EXECUTION_TIMEOUT_SECONDS);
    const b: Builder = new StateBuilder(this, {
      config,
      runner: props.runner,
      runnerSteps: {
        steps: RunnerSteps,
        // The step's TimeoutSeconds and HeartbeatSeconds come with the work item (targetWork: timeouts).
        boundsPath: '$.timeouts',
        // An ECS runner task of the target's own task definition (its family is in the work item).
        taskDefinitionPath: '$.taskDefinition',
        environment: [{ Name: 'BACKUP_ID', 'Value.$': '$.backupId' }],
        // The Community dump from a copy starts the DBMS again itself, to the count StopDbms found.
        stepEnvironment: (step) =>
          step === 'DumpNeo4j'
            ? [{ Name: 'DBMS_DESIRED_COUNT', 'Value.$': "States.Format('{}', $.dbmsState.desiredCount)" }]
            : [],
      },
    });

    const perTarget = this.fleet(props, this.target(b, props, timeout));
    // The fleet's Map failing as a whole (its ResultWriter, a Map Run aborted, ...) is reported and
    // noticed too, then fails the execution with the Map's error (mapFailure).
    perTarget.addCatch(this.mapFailure(b, props), { errors: [sfn.Errors.ALL], resultPath: '$.mapError' });

    const aborted = (name: string, step: string) =>
      b.invoke(`Notify${name}`, {
        fn: fns.notify,
        payload: { outcome: 'aborted', step, 'executionId.$': '$$.Execution.Id', 'failure.$': '$.error' },
        retries: ['notification'],
      });
    const raise = (name: string) =>
      new sfn.Fail(this, name, { errorPath: '$.error.Error', causePath: '$.error.Cause' });
    const inputRejected = raise('InputRejected');
    const reportFailed = raise('ReportFailed');

    const report = b
      .invoke('Report', {
        fn: fns.report,
        payload: { 'backupId.$': '$.plan.backupId', 'results.$': '$.results' },
        resultPath: '$.report',
        resultSelector: {
          'backupId.$': '$.Payload.backupId',
          'ok.$': '$.Payload.ok',
          'succeeded.$': '$.Payload.succeeded',
          'failed.$': '$.Payload.failed',
          'summary.$': '$.Payload.summary',
        },
      })
      .addCatch(
        aborted('ReportFailed', 'Report')
          .addCatch(reportFailed, { errors: [sfn.Errors.ALL], resultPath: sfn.JsonPath.DISCARD })
          .next(reportFailed),
        caught,
      );
    const outcome = new sfn.Choice(this, 'AllTargetsBackedUp?')
      .when(
        sfn.Condition.booleanEquals('$.report.ok', true),
        new sfn.Succeed(this, 'BackupSucceeded', { outputPath: '$.report' }),
      )
      .otherwise(
        new sfn.Fail(this, 'BackupFailed', { error: 'BackupFailed', causePath: '$.report.summary' }),
      );

    const plan = b
      .invoke('Plan', {
        fn: fns.plan,
        payload: { 'input.$': '$$.Execution.Input', 'startTime.$': '$$.Execution.StartTime' },
        resultPath: '$.plan',
        resultSelector: {
          'backupId.$': '$.Payload.backupId',
          'components.$': '$.Payload.components',
          'force.$': '$.Payload.force',
          'targets.$': '$.Payload.targets',
        },
      })
      .addCatch(
        aborted('InputRejected', 'Plan')
          .addCatch(inputRejected, { errors: [sfn.Errors.ALL], resultPath: sfn.JsonPath.DISCARD })
          .next(inputRejected),
        caught,
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

    ({ stateMachine: this.stateMachine, logGroup: this.logGroup } = b.machine({
      id: 'Resource',
      logsId: 'Logs',
      name: `${config.name}-backup`,
      comment: 'Backs up Infrahub targets: Neo4j, Prefect PostgreSQL and artifacts, manifest last',
      definition: sfn.Chain.start(start).next(plan),
      timeout,
      runnerKind: 'runner',
      taskRoleArns: [props.runner.targetRoleArnPattern('backup')],
    }));
    // The Distributed Map's ResultWriter writes under .fleet-results/backup/ only, with the bucket's
    // key; CDK's DistributedMapPolicy covers its children (fleet-map.ts).
    grantFleetResults(this.stateMachine, {
      bucket: props.storage.bucket,
      key: props.storage.key,
      kind: 'backup',
      label: 'BackupTargets',
    });
  }

  /**
   * The fleet: a Distributed Map that runs `perTarget` for each of the plan's targets.
   *
   * Each target is a child execution with its own history (about 85 events a target; an inline Map
   * put them all in this execution's, whose 25,000-event quota ended a fleet near 290 targets with no
   * catch and no report). STANDARD children, since a target's work runs ECS tasks for hours (an
   * EXPRESS child ends at 5 minutes). ItemsPath: the plan's names are a small part of the state (no
   * ItemReader). Every failed child is tolerated (100 %): the Report names it, and the other targets
   * carry on. The children's outputs go to the backup bucket (ResultWriter), not into this state,
   * whose 256 KiB quota 1,000 targets' outcomes could pass; Report reads them from there. The owner
   * of each target's lock is this (parent) execution. (AWS Step Functions Developer Guide, "Using Map
   * state in Distributed mode", "ResultWriter (Map)", "IAM policies for using Distributed Map states".)
   */
  private fleet(props: BackupStateMachineProps, perTarget: sfn.IChainable): sfn.DistributedMap {
    const map = new ScopedResultWriterMap(this, 'BackupTargets', {
      comment: 'One child execution per target; a failed target does not fail or roll back the others',
      itemsPath: '$.plan.targets',
      itemSelector: {
        'target.$': '$$.Map.Item.Value',
        'backupId.$': '$.plan.backupId',
        'components.$': '$.plan.components',
        'force.$': '$.plan.force',
        'owner.$': '$$.Execution.Id',
      },
      maxConcurrency: props.config.maxConcurrency,
      mapExecutionType: sfn.StateMachineType.STANDARD,
      label: 'BackupTargets',
      toleratedFailurePercentage: 100,
      resultPath: '$.results',
    });
    map.resultWriterTo(props.storage.bucket.bucketName, fleetResultsPrefix('backup'));
    map.itemProcessor(perTarget);
    return map;
  }

  /**
   * What follows the fleet Map's Catch (its caught error at `$.mapError`): ReportMapFailure (the
   * Report function: the Map's error and cause, which targets are known to have been backed up or
   * to have failed, from whatever its Map Run wrote) → NotifyMapFailure (the aborted notice, with
   * the report; the BackupFailed metric) → BackupMapFailed, the execution failing with the Map's
   * error and the report as its cause. A report that cannot be made is replaced by a sentence
   * (MapReportUnavailable); a notice that cannot be sent does not keep the execution from failing.
   * A Catch catches every error a Map raises but States.Runtime (and States.DataLimitExceeded),
   * which no Catch can (AWS Step Functions Developer Guide, "Handling errors in Step Functions
   * workflows", States.ALL). Returns its first state.
   */
  private mapFailure(b: Builder, props: BackupStateMachineProps): sfn.IChainable {
    const fns = props.functions;
    const failed = new sfn.Fail(this, 'BackupMapFailed', {
      errorPath: '$.mapError.Error',
      causePath: '$.report.summary',
    });
    const notify = b
      .invoke('NotifyMapFailure', {
        fn: fns.notify,
        payload: {
          outcome: 'aborted',
          step: 'BackupTargets',
          'executionId.$': '$$.Execution.Id',
          'failure.$': '$.mapError',
          'report.$': '$.report.summary',
        },
        retries: ['notification'],
      })
      .addCatch(failed, { errors: [sfn.Errors.ALL], resultPath: sfn.JsonPath.DISCARD })
      .next(failed);
    // Only the two error NAMES are quoted, not their causes: each Cause may be up to 32,768 characters,
    // and this summary becomes the Fail state's Cause, which the execution's failure holds to 32,768
    // (Step Functions API Reference, ExecutionFailedEventDetails: cause "Maximum length of 32768";
    // error names at most 256: TaskFailedEventDetails). No JSONPath intrinsic can cut a string
    // (States.Format, States.JsonToString, States.ArrayGetItem, ... : Developer Guide, "Intrinsic
    // functions"), so the summary is bounded by what it quotes: ~300 characters of text, the backup id
    // and two names of at most 256. The causes stay in the execution's history (the Map's and
    // ReportMapFailure's failed events) and the Map's whole error goes to the notice (`failure`).
    // Every caught error has an `Error` (a Catch's output: Error and, not always, Cause).
    const unavailable = new sfn.Pass(this, 'MapReportUnavailable', {
      comment: 'The report of the failed Map could not be made: its summary says so',
      parameters: {
        'summary.$': statesFormat(
          '{}: the fleet Map BackupTargets failed ({}) and its report could not be made ({}): which targets were backed up is not known here; each target that ran sent its own notice; the causes are in the execution history (BackupTargets, ReportMapFailure)',
          ['$.plan.backupId', '$.mapError.Error', '$.report.Error'],
        ),
      },
      resultPath: '$.report',
    }).next(notify);
    return b
      .invoke('ReportMapFailure', {
        fn: fns.report,
        payload: {
          'backupId.$': '$.plan.backupId',
          'executionId.$': '$$.Execution.Id',
          'targets.$': '$.plan.targets',
          'mapFailure.$': '$.mapError',
        },
        resultPath: '$.report',
        resultSelector: {
          'backupId.$': '$.Payload.backupId',
          'ok.$': '$.Payload.ok',
          'succeeded.$': '$.Payload.succeeded',
          'failed.$': '$.Payload.failed',
          'summary.$': '$.Payload.summary',
        },
        retries: ['storage'],
      })
      .addCatch(unavailable, { errors: [sfn.Errors.ALL], resultPath: '$.report' })
      .next(notify);
  }

  /**
   * One target's work, a child execution of the fleet Map: AcquireLock → preflight gate → Capture →
   * WriteManifest → ReleaseLock → NotifySuccess; any failure → ReleaseLockAfterFailure → NotifyFailure.
   * Returns its first state.
   */
  private target(b: Builder, props: BackupStateMachineProps, timeout: Duration): sfn.IChainable {
    const { config, functions: fns } = props;
    const { releaseAfterFailure, failed } = this.failurePath(b, props, timeout);
    const releaseLock = this.successPath(b, props, timeout);

    const writeManifest = b
      .invoke('WriteManifest', {
        fn: fns.manifest,
        payload: {
          'target.$': '$.target',
          'backupId.$': '$.backupId',
          'components.$': '$.components',
          'executionId.$': '$$.Execution.Id',
          'forced.$': '$.preflight.forced',
          'infrahubVersion.$': '$.preflight.infrahubVersion',
          'warnings.$': '$.preflight.warnings',
        },
        resultPath: '$.manifest',
        resultSelector: {
          'manifest.$': '$.Payload.manifest',
          'files.$': '$.Payload.files',
          'bytes.$': '$.Payload.bytes',
          'componentBytes.$': '$.Payload.componentBytes',
          'retentionClass.$': '$.Payload.retentionClass',
          'retentionWarnings.$': '$.Payload.retentionWarnings',
        },
        retries: ['storage'],
      })
      .addCatch(failed('ManifestFailed', 'WriteManifest').next(releaseAfterFailure), caught)
      .next(releaseLock);

    const capture = this.capture(b, props, failed, releaseAfterFailure, writeManifest);

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
    const preflight = b
      .invoke('Preflight', {
        fn: fns.preflight,
        // The target's Infrahub API and the gate's bounds: the function's bundled configuration.
        payload: {
          'target.$': '$.target',
          'backupId.$': '$.backupId',
          'force.$': '$.force',
          'wait.$': '$.preflight.wait',
        },
        resultPath: '$.preflight',
        resultSelector: {
          'busy.$': '$.Payload.busy',
          'wait.$': '$.Payload.wait',
          'forced.$': '$.Payload.forced',
          'waitedSeconds.$': '$.Payload.waitedSeconds',
          'infrahubVersion.$': '$.Payload.infrahubVersion',
          'warnings.$': '$.Payload.warnings',
        },
        retries: ['infrahubUnreachable'],
      })
      .addCatch(failed('PreflightFailed', 'Preflight').next(releaseAfterFailure), caught);
    // Wait state: "Seconds ... to wait before beginning the state specified in the Next field"
    // (Step Functions Developer Guide, "Wait workflow state").
    const preflightWait = new sfn.Wait(this, 'PreflightWait', {
      comment: 'preflight.pollIntervalSeconds between two checks of the Infrahub tasks',
      time: sfn.WaitTime.duration(Duration.seconds(config.preflight.pollIntervalSeconds)),
    });
    preflight.next(
      new sfn.Choice(this, 'InfrahubStillBusy?')
        .when(sfn.Condition.booleanEquals('$.preflight.busy', true), preflightWait.next(preflight))
        .otherwise(capture),
    );
    preflightStart.next(preflight);

    return (
      b
        .invoke('AcquireLock', {
          fn: fns.lock,
          payload: {
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
          outputPath: '$.Payload',
          retries: ['storage'],
        })
        // Taking it failed, yet S3 may have stored it (its answer lost, the retries then refused): try
        // a release, which deletes only a lock this execution holds (someone else's stays), so the
        // notice tells the truth: released, not ours ({released: false}), or left (its error).
        .addCatch(failed('LockFailed', 'AcquireLock').next(releaseAfterFailure), caught)
        .next(preflightStart)
    );
  }

  /**
   * What releasing the lock came to, for the notices: {released} or, when it failed after its
   * retries, the caught {Error, Cause} (the notice then says the lock was left and what happens to it).
   */
  private releaseLock(b: Builder, props: BackupStateMachineProps, name: string) {
    return b.invoke(name, {
      fn: props.functions.lock,
      payload: { action: 'release', 'target.$': '$.target', 'owner.$': '$.owner' },
      resultPath: '$.lockRelease',
      resultSelector: { 'released.$': '$.Payload.released' },
      retries: ['lockRelease'],
    });
  }

  /** The notices' word on the lock: how its release went, and when a lock left behind expires. */
  private lockNotice(timeout: Duration) {
    return { 'lockRelease.$': '$.lockRelease', lockTtlSeconds: timeout.toSeconds() };
  }

  /**
   * A target's failure path: ReleaseLockAfterFailure → NotifyFailure → TargetFailed (or
   * TargetFailedUnnotified). Returns its first state and `failed`, the Pass that makes a caught
   * error the record NotifyFailure needs.
   */
  private failurePath(b: Builder, props: BackupStateMachineProps, timeout: Duration) {
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
    const notifyFailure = b
      .invoke('NotifyFailure', {
        fn: props.functions.notify,
        payload: {
          outcome: 'failed',
          'target.$': '$.target',
          'backupId.$': '$.backupId',
          'executionId.$': '$$.Execution.Id',
          'startedAt.$': '$$.Execution.StartTime',
          'failure.$': '$.failure',
          ...this.lockNotice(timeout),
        },
        resultPath: '$.notice',
        resultSelector: {
          'step.$': '$.Payload.step',
          'error.$': '$.Payload.error',
          'summary.$': '$.Payload.summary',
        },
        retries: ['notification'],
      })
      .addCatch(targetFailedUnnotified, { errors: [sfn.Errors.ALL], resultPath: '$.notifyError' })
      .next(targetFailed);
    const releaseAfterFailure = this.releaseLock(b, props, 'ReleaseLockAfterFailure')
      // A lock left behind is taken over by the next run (this execution will have ended) or expires;
      // the failure notice, which says so, matters more than a clean release.
      .addCatch(notifyFailure, { errors: [sfn.Errors.ALL], resultPath: '$.lockRelease' })
      .next(notifyFailure);
    /** A failed step's record: what NotifyFailure needs, built from the state and the caught error. */
    const failed = (name: string, step: string) =>
      new sfn.Pass(this, name, {
        parameters: {
          'target.$': '$.target',
          'backupId.$': '$.backupId',
          'owner.$': '$.owner',
          failure: { step, 'error.$': '$.error.Error', 'cause.$': '$.error.Cause' },
        },
      });
    return { releaseAfterFailure, failed };
  }

  /** A target's success path: ReleaseLock → NotifySuccess → TargetSucceeded. Returns ReleaseLock. */
  private successPath(b: Builder, props: BackupStateMachineProps, timeout: Duration) {
    const targetSucceeded = new sfn.Pass(this, 'TargetSucceeded', {
      parameters: {
        'target.$': '$.target',
        'backupId.$': '$.backupId',
        status: 'succeeded',
        'manifest.$': '$.manifest.manifest',
        'bytes.$': '$.manifest.bytes',
      },
    });
    const notifySuccess = b
      .invoke('NotifySuccess', {
        fn: props.functions.notify,
        payload: {
          outcome: 'succeeded',
          'target.$': '$.target',
          'backupId.$': '$.backupId',
          'executionId.$': '$$.Execution.Id',
          'startedAt.$': '$$.Execution.StartTime',
          'forced.$': '$.preflight.forced',
          'warnings.$': '$.preflight.warnings',
          'manifest.$': '$.manifest',
          ...this.lockNotice(timeout),
        },
        retries: ['notification'],
      })
      // The backup is complete and its manifest written; a lost notice does not undo it.
      .addCatch(targetSucceeded, { errors: [sfn.Errors.ALL], resultPath: '$.notifyError' })
      .next(targetSucceeded);
    return this.releaseLock(b, props, 'ReleaseLock')
      .addCatch(notifySuccess, { errors: [sfn.Errors.ALL], resultPath: '$.lockRelease' })
      .next(notifySuccess);
  }

  /**
   * Capture: one Parallel branch per component, each ending with {ok} or {ok: false, failure}; then
   * AllComponentsCaptured? sends a failed component's record to the failure path, else `next`.
   */
  private capture(
    b: Builder,
    props: BackupStateMachineProps,
    failed: (name: string, step: string) => sfn.Pass,
    releaseAfterFailure: sfn.IChainable,
    next: sfn.IChainable,
  ): sfn.IChainable {
    const capture = new sfn.Parallel(this, 'Capture', {
      resultPath: '$.captured',
      comment: 'Each branch ends with {ok} or {ok: false, failure}, so one failing does not stop the others',
    });
    capture.branch(this.databaseBranch(b, props));
    for (const [component, flag, step] of [
      ['TaskManagerDb', '$.capture.taskManagerDb', 'DumpPostgres'],
      ['Artifacts', '$.capture.artifacts', 'CopyArtifacts'],
    ] as const)
      capture.branch(
        componentBranch(b, {
          component,
          flag,
          step,
          names: {
            choice: `Capture${component}?`,
            done: `${component}Captured`,
            skipped: `${component}Skipped`,
          },
        }),
      );
    const captureFailed = (index: number, name: string) =>
      new sfn.Pass(this, name, {
        parameters: {
          'target.$': '$.target',
          'backupId.$': '$.backupId',
          'owner.$': '$.owner',
          'failure.$': `$.captured[${index}].failure`,
        },
      }).next(releaseAfterFailure);
    capture.addCatch(failed('CaptureFailed', 'Capture').next(releaseAfterFailure), caught);
    return capture.next(
      new sfn.Choice(this, 'AllComponentsCaptured?')
        .when(sfn.Condition.booleanEquals('$.captured[0].ok', false), captureFailed(0, 'DatabaseFailed'))
        .when(sfn.Condition.booleanEquals('$.captured[1].ok', false), captureFailed(1, 'TaskManagerDbFailed'))
        .when(sfn.Condition.booleanEquals('$.captured[2].ok', false), captureFailed(2, 'ArtifactsFailed'))
        .otherwise(next),
    );
  }

  /** The graph database: counts, then the Community offline dump (DBMS stopped) or the Enterprise online backup. */
  private databaseBranch(b: Builder, props: BackupStateMachineProps): sfn.IChainable {
    const fns = props.functions;
    const result = (name: string, ok: boolean) =>
      new sfn.Pass(this, name, {
        parameters: ok
          ? { component: 'database', ok: true }
          : { component: 'database', ok: false, 'failure.$': '$.failure' },
      });

    // The dump is complete and the DBMS running again (ECS runs its task), but Neo4j opens its
    // databases for a while after (Infrahub answers 503 meanwhile): the database is reported captured
    // only once Neo4j answers over Bolt with them online. If it never does, the dump is kept but the
    // step fails, saying the DBMS does not answer.
    const waitForNeo4j = b
      .invoke('WaitForNeo4j', {
        fn: fns.neo4jReady,
        // The target's Neo4j address, credentials secret, databases and Bolt TLS (bolt+s unless the
        // configuration disables it): the function's bundled configuration.
        payload: { 'target.$': '$.target' },
      })
      .addCatch(
        b.record('WaitForNeo4jFailed', 'WaitForNeo4j').next(
          new sfn.Pass(this, 'DbmsNotAnswering', {
            resultPath: '$.failure.dbms',
            result: sfn.Result.fromString(
              'NOT ANSWERING: the DBMS, stopped for the dump, was started again (ECS runs its task) but Neo4j did not answer over Bolt with its databases online; Infrahub answers 503 until it does: check the DBMS service and its log',
            ),
          }).next(result('DatabaseFailedNeo4jNotAnswering', false)),
        ),
        caught,
      )
      .next(result('DatabaseCaptured', true));
    // Either way the failure notice and the execution's cause say what became of the DBMS
    // (`failure.dbms`): running again, or DOWN with the command and console action that start it.
    // The dump is complete but the DBMS did not come back: start it once more (StartDbmsAfterFailure)
    // before reporting, so a failed start never silently leaves it down.
    const advice = dbmsStartAdvice('$.dbms');
    const offline = dbmsWindow(b, {
      fn: fns.dbms,
      targetPath: '$.target',
      dbmsPath: '$.dbms',
      work: 'DumpNeo4j',
      names: {
        assume: 'AssumeDbmsRunning',
        stop: 'StopDbms',
        start: 'StartDbms',
        restart: 'StartDbmsAfterFailure',
      },
      next: waitForNeo4j,
      startFailure: 'restart',
      down: {
        // The DBMS is down: that is the failure to report, with what led to it and how to start it.
        name: 'DbmsRestartFailed',
        parameters: {
          'cause.$': statesFormat(
            'the DBMS is down: it could not be started again ({}) after {} failed ({}: {})',
            ['$.error.Cause', '$.failure.step', '$.failure.error', '$.failure.cause'],
          ),
          'dbms.$': statesFormat(
            `DOWN: the Neo4j DBMS of {} was stopped for its dump and is still stopped. ${advice.text}`,
            ['$.target', ...advice.args],
          ),
        },
        result: result('DatabaseFailedDbmsDown', false),
      },
      restarted: {
        note: {
          name: 'DbmsRunningAgain',
          text: 'running again: the DBMS, stopped for the dump, was started again after the failure',
        },
        result: result('DatabaseFailedDbmsRestarted', false),
      },
    });
    const online = b
      .run('BackupNeo4j')
      .addCatch(
        b.record('BackupNeo4jFailed', 'BackupNeo4j').next(result('DatabaseFailedOnline', false)),
        caught,
      )
      .next(result('DatabaseCapturedOnline', true));
    const edition = new sfn.Choice(this, 'Neo4jEdition?')
      .when(sfn.Condition.stringEquals('$.edition', 'community'), offline)
      .otherwise(online);
    const count = b
      .run('CountNeo4j')
      .addCatch(
        b.record('CountNeo4jFailed', 'CountNeo4j').next(result('DatabaseFailedToCount', false)),
        caught,
      )
      .next(edition);
    return new sfn.Choice(this, 'CaptureDatabase?')
      .when(sfn.Condition.booleanEquals('$.capture.database', true), count)
      .otherwise(
        new sfn.Pass(this, 'DatabaseSkipped', {
          parameters: { component: 'database', ok: true, skipped: true },
        }),
      );
  }
}
