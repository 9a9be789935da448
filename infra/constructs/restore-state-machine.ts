import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { RESTORE_RUNNER_STEPS } from '../../core/backup/runner-steps.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { DRILL_EXECUTION_TIMEOUT_SECONDS, EXECUTION_TIMEOUT_SECONDS } from '../../core/config/timeouts.js';
import { ErrorNames } from '../../core/errors.js';
import { STARTED_BY_EXECUTION_ID } from '../../core/restore/plan.js';
import type { BackupFunctions } from './backup-functions.js';
import type { BackupRunner } from './backup-runner.js';
import { fleetResultsPrefix, grantFleetResults, ScopedResultWriterMap } from './fleet-map.js';
import { caught, StateBuilder } from './state-machine/builder.js';
import { componentBranch } from './state-machine/component-branch.js';
import { dbmsStartAdvice, dbmsWindow, statesFormat } from './state-machine/dbms-window.js';

export interface RestoreStateMachinesProps {
  readonly config: DeploymentConfig;
  readonly functions: BackupFunctions;
  readonly runner: BackupRunner;
  readonly timeout?: Duration;
}

/** The runner subcommand behind each ECS state of the restore and drill state machines. */
export const RestoreRunnerSteps = RESTORE_RUNNER_STEPS;

type Step = keyof typeof RestoreRunnerSteps;
type Builder = StateBuilder<Step>;

/**
 * A builder for the restore or drill machine: its runner states read the plan (`$.plan`: per-target
 * `timeouts` raised for the backup's size, core/config/timeouts.ts; task definition; environment).
 */
function restoreBuilder(scope: Construct, props: RestoreStateMachinesProps): Builder {
  return new StateBuilder(scope, {
    config: props.config,
    runner: props.runner,
    runnerSteps: {
      steps: RestoreRunnerSteps,
      boundsPath: '$.plan.timeouts',
      taskDefinitionPath: '$.plan.taskDefinition',
      environment: { path: '$.plan.environment' },
      // A database restore that failed part-way, or whose heartbeats stopped (States.HeartbeatTimeout),
      // is for an operator to judge (the notice names the error): not started again. The other steps
      // are safe to run again (copies, counts, a disposable drill).
      transient: (step) =>
        !(step === 'RestoreNeo4j' || step === 'RestoreNeo4jOnline' || step === 'RestorePostgres'),
      // Restores run the target's runner under the target's restore role; drills have their own
      // definition and drill role.
      taskRoleArn: (step) =>
        step === 'RunDrill'
          ? undefined
          : { expression: props.runner.restoreRoleArnExpression('$.plan.target') },
    },
  });
}

/**
 * The last state of both machines: the report (per-step timings, metrics, notice), then succeed
 * with it, or fail with its summary as the cause.
 */
function reportState(
  b: Builder,
  fns: BackupFunctions,
  kind: 'restore' | 'drill',
  names: { report: string; ok: string; succeeded: string; failed: string; error: string },
  payload: Record<string, unknown>,
): sfn.IChainable {
  const task = b.invoke(names.report, {
    fn: fns.restoreReport,
    payload: {
      kind,
      'executionId.$': '$$.Execution.Id',
      'startedAt.$': '$$.Execution.StartTime',
      'input.$': '$$.Execution.Input',
      'plan.$': '$.plan',
      'failures.$': '$.failures',
      ...payload,
    },
    resultPath: '$.report',
    resultSelector: { 'ok.$': '$.Payload.ok', 'summary.$': '$.Payload.summary' },
    retries: ['storage', 'notification'],
  });
  task
    .addCatch(
      new sfn.Fail(b.scope, `${names.report}Failed`, {
        errorPath: '$.error.Error',
        causePath: '$.error.Cause',
      }),
      caught,
    )
    .next(
      new sfn.Choice(b.scope, names.ok)
        .when(
          sfn.Condition.booleanEquals('$.report.ok', true),
          new sfn.Succeed(b.scope, names.succeeded, { outputPath: '$.report' }),
        )
        .otherwise(
          new sfn.Fail(b.scope, names.failed, { error: names.error, causePath: '$.report.summary' }),
        ),
    );
  return task;
}

/**
 * The first state of both machines (after Init): the plan Lambda, its payload kept whole at
 * `$.plan`; a refusal is recorded and goes to the report. Returns the plan's first and last states.
 */
function planState(
  b: Builder,
  fns: BackupFunctions,
  kind: 'restore' | 'drill',
  names: { plan: string; refused: string; planned: string },
  report: sfn.IChainable,
): { first: sfn.State; last: sfn.Pass } {
  const task = b
    .invoke(names.plan, {
      fn: fns.restorePlan,
      payload: {
        kind,
        'input.$': '$$.Execution.Input',
        'executionName.$': '$$.Execution.Name',
        'startTime.$': '$$.Execution.StartTime',
      },
      resultPath: '$.plan',
      resultSelector: { 'Payload.$': '$.Payload' },
      retries: ['storage'],
    })
    .addCatch(b.record(names.refused, names.plan, '$.failures.plan').next(report), caught);
  // The plan's fields move up to $.plan (a ResultSelector cannot select the whole payload).
  const planned = new sfn.Pass(b.scope, names.planned, { inputPath: '$.plan.Payload', resultPath: '$.plan' });
  task.next(planned);
  return { first: task, last: planned };
}

/**
 * The restore state machine (docs/architecture.md, "State machines"), for one target per execution:
 *
 *   Init → PlanRestore (verify manifest and every file, check compatibility; refuse naming them)
 *   → dry run? stop with the plan
 *   → AcquireRestoreLock → StopServices (optional, reverse dependency order, counts remembered)
 *   → RestoreComponents (Parallel: graph database, task-manager database, artifacts; each branch
 *     reports instead of failing, and a stopped DBMS is started again)
 *   → StartServices (dependency order; also after a failure) → ReleaseRestoreLock
 *   → RestoreReport (per-step timings, metrics, notice) → succeed, or fail with the report's summary.
 */
export class RestoreStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RestoreStateMachinesProps) {
    super(scope, id);
    const { config, functions: fns } = props;
    const timeout = props.timeout ?? Duration.seconds(EXECUTION_TIMEOUT_SECONDS);
    const b = restoreBuilder(this, props);

    const report = reportState(
      b,
      fns,
      'restore',
      {
        report: 'RestoreReport',
        ok: 'RestoreOk?',
        succeeded: 'RestoreSucceeded',
        failed: 'RestoreFailed',
        error: 'RestoreFailed',
      },
      {
        'branches.$': '$.restored',
        quiesce: { 'stopSeconds.$': '$.quiesced.seconds', 'startSeconds.$': '$.restarted.seconds' },
        // What releasing the lock came to (a lock left is said in the report, notice and event).
        'lockRelease.$': '$.lockRelease',
        lockTtlSeconds: timeout.toSeconds(),
      },
    );

    const release = b
      .invoke('ReleaseRestoreLock', {
        fn: fns.lock,
        payload: { action: 'release', 'target.$': '$.plan.target', 'owner.$': '$$.Execution.Id' },
        resultPath: '$.lockRelease',
        resultSelector: { 'released.$': '$.Payload.released' },
        retries: ['lockRelease'],
      })
      // A lock left behind is taken over by the next run once this execution has ended (AcquireLock
      // asks Step Functions), or expires; the report matters more than a clean release, and says so
      // (its caught {Error, Cause} at $.lockRelease).
      .addCatch(report, { errors: [sfn.Errors.ALL], resultPath: '$.lockRelease' })
      .next(report);

    const startServices = b
      .invoke('StartServices', {
        fn: fns.services,
        payload: {
          action: 'start',
          'target.$': '$.plan.target',
          'cluster.$': '$.plan.quiesce.cluster',
          'services.$': '$.quiesced.services',
        },
        resultPath: '$.restarted',
        resultSelector: { 'seconds.$': '$.Payload.seconds' },
      })
      .addCatch(b.record('StartServicesFailed', 'StartServices', '$.failures.restart').next(release), caught)
      .next(release);
    const restart = new sfn.Choice(this, 'ServicesStopped?')
      .when(sfn.Condition.booleanEquals('$.plan.quiesce.enabled', true), startServices)
      .otherwise(release);

    const restoreComponents = new sfn.Parallel(this, 'RestoreComponents', {
      resultPath: '$.restored',
      comment: 'Each branch ends with {component, ok} or {component, ok: false, failure}',
    });
    restoreComponents.branch(this.databaseBranch(b, fns));
    for (const [component, flag, step] of [
      ['task-manager-db', '$.plan.restore.taskManagerDb', 'RestorePostgres'],
      ['artifacts', '$.plan.restore.artifacts', 'RestoreArtifacts'],
    ] as const)
      restoreComponents.branch(
        componentBranch(b, {
          component,
          flag,
          step,
          names: { choice: `${step}?`, done: `${step}Done`, skipped: `${step}Skipped` },
        }),
      );
    restoreComponents
      .addCatch(
        b.record('RestoreComponentsFailed', 'RestoreComponents', '$.failures.restore').next(restart),
        caught,
      )
      .next(restart);

    const stopServices = b
      .invoke('StopServices', {
        fn: fns.services,
        payload: {
          action: 'stop',
          'target.$': '$.plan.target',
          'cluster.$': '$.plan.quiesce.cluster',
          'services.$': '$.plan.quiesce.stop',
        },
        resultPath: '$.quiesced',
        resultSelector: { 'services.$': '$.Payload.services', 'seconds.$': '$.Payload.seconds' },
      })
      // The services function starts again what it stopped before failing; nothing is restored.
      .addCatch(b.record('StopServicesFailed', 'StopServices', '$.failures.quiesce').next(release), caught)
      .next(restoreComponents);
    const quiesce = new sfn.Choice(this, 'QuiesceServices?')
      .when(sfn.Condition.booleanEquals('$.plan.quiesce.enabled', true), stopServices)
      .otherwise(restoreComponents);

    const lock = b
      .invoke('AcquireRestoreLock', {
        fn: fns.lock,
        payload: {
          action: 'acquire',
          'target.$': '$.plan.target',
          'backupId.$': '$.plan.backupId',
          'components.$': '$.plan.components',
          force: false,
          'owner.$': '$$.Execution.Id',
          ttlSeconds: timeout.toSeconds(),
        },
        retries: ['storage'],
      })
      // No lock is held when taking it failed (a backup or another restore runs): report, release nothing.
      .addCatch(b.record('RestoreLockFailed', 'AcquireRestoreLock', '$.failures.lock').next(report), caught)
      .next(quiesce);

    const plan = planState(
      b,
      fns,
      'restore',
      { plan: 'PlanRestore', refused: 'RestoreRefused', planned: 'Planned' },
      report,
    );
    plan.last.next(
      new sfn.Choice(this, 'DryRun?')
        .when(
          sfn.Condition.booleanEquals('$.plan.dryRun', true),
          new sfn.Succeed(this, 'RestorePlanned', {
            outputPath: '$.plan',
            comment: 'Dry run: the plan, nothing changed',
          }),
        )
        .otherwise(lock),
    );

    // Every field the report reads exists from the start, whatever path the execution takes.
    const init = new sfn.Pass(this, 'Init', {
      parameters: {
        plan: {},
        restored: [],
        failures: {},
        quiesced: { services: [], seconds: 0 },
        restarted: { seconds: 0 },
        // No lock is held until AcquireRestoreLock takes it; the release replaces this.
        lockRelease: { notHeld: true },
      },
    }).next(plan.first);

    ({ stateMachine: this.stateMachine, logGroup: this.logGroup } = b.machine({
      id: 'Resource',
      logsId: 'ResourceLogs',
      name: `${config.name}-restore`,
      comment:
        'Restores an Infrahub target from a verified backup: quiesce, restore, validate, restart, report',
      definition: init,
      timeout,
      runnerKind: 'runner',
      taskRoleArns: [props.runner.targetRoleArnPattern('restore')],
    }));
  }

  /** The graph database: Community load with the DBMS stopped (and always started again), or Enterprise online. */
  private databaseBranch(b: Builder, fns: BackupFunctions): sfn.IChainable {
    const result = (name: string, ok: boolean) =>
      new sfn.Pass(this, name, {
        parameters: ok
          ? { component: 'database', ok: true }
          : { component: 'database', ok: false, 'failure.$': '$.failure' },
      });
    const validate = b
      .run('ValidateNeo4j')
      .addCatch(
        b.record('ValidateNeo4jFailed', 'ValidateNeo4j').next(result('DatabaseNotValidated', false)),
        caught,
      )
      .next(result('DatabaseRestored', true));
    // Said with every failure that leaves the DBMS stopped: DOWN, and how to start it.
    const advice = dbmsStartAdvice('$.plan.dbms');
    const community = dbmsWindow(b, {
      fn: fns.dbms,
      targetPath: '$.plan.target',
      dbmsPath: '$.plan.dbms',
      work: 'RestoreNeo4j',
      names: {
        assume: 'AssumeDbmsRunningForRestore',
        stop: 'StopDbmsForRestore',
        start: 'StartDbmsAfterRestore',
        restart: 'StartDbmsAfterRestoreFailure',
      },
      next: validate,
      startFailure: {
        cause: statesFormat(`DOWN: the Neo4j DBMS of {} is stopped. ${advice.text}. Cause: {}`, [
          '$.plan.target',
          ...advice.args,
          '$.error.Cause',
        ]),
        result: result('DatabaseDbmsDown', false),
      },
      // After a failed load: bring the DBMS back before reporting (its own failure is then the one reported).
      down: {
        name: 'DbmsDownAfterRestoreFailure',
        parameters: {
          'cause.$': statesFormat(
            `DOWN: the Neo4j DBMS of {} is stopped: it could not be started again ({}) after {} failed ({}: {}). ${advice.text}`,
            [
              '$.plan.target',
              '$.error.Cause',
              '$.failure.step',
              '$.failure.error',
              '$.failure.cause',
              ...advice.args,
            ],
          ),
        },
        result: result('DatabaseFailedDbmsDown', false),
      },
      restarted: { result: result('DatabaseFailedDbmsRestarted', false) },
      // A staged load's swap that could not be undone: the target's store folders are not in place,
      // and a start would bring its databases up without them. Left stopped; the cause names the folders.
      leaveStopped: {
        errors: [ErrorNames.Neo4jStoreSwap],
        name: 'DbmsLeftStoppedAfterSwapFailure',
        cause: statesFormat(
          `DOWN: the Neo4j DBMS of {} was left stopped on purpose: its store folders must be moved back by hand first ({}). Once they are back: ${advice.text}`,
          ['$.plan.target', '$.error.Cause', ...advice.args],
        ),
        result: result('DatabaseSwapFailedDbmsDown', false),
      },
    });

    const onlineValidate = b
      .run('ValidateNeo4jOnline')
      .addCatch(
        b
          .record('ValidateNeo4jOnlineFailed', 'ValidateNeo4j')
          .next(result('DatabaseOnlineNotValidated', false)),
        caught,
      )
      .next(result('DatabaseRestoredOnline', true));
    const online = b
      .run('RestoreNeo4jOnline')
      .addCatch(
        b.record('RestoreNeo4jOnlineFailed', 'RestoreNeo4j').next(result('DatabaseOnlineFailed', false)),
        caught,
      )
      .next(onlineValidate);

    return new sfn.Choice(this, 'RestoreDatabase?')
      .when(
        sfn.Condition.booleanEquals('$.plan.restore.database', true),
        new sfn.Choice(this, 'TargetEdition?')
          .when(sfn.Condition.stringEquals('$.plan.edition', 'community'), community)
          .otherwise(online),
      )
      .otherwise(
        new sfn.Pass(this, 'DatabaseNotRestored', {
          parameters: { component: 'database', ok: true, skipped: true },
        }),
      );
  }
}

/**
 * The restore drill state machine. One target per execution (`{target, backup, windowDays, reason}`):
 *
 *   Init → PlanDrill (latest, or random within a window; verified and checked like a restore)
 *   → RunDrill (ECS: disposable PostgreSQL and Neo4j inside the task, restore, validate, tear down)
 *   → DrillReport (recovery time and success or failure as metrics, the alarm's input; notice)
 *   → succeed, or fail with the report's summary.
 *
 * Or a fleet in one execution (`{targets: [names] | "*", backup, windowDays, reason, maxConcurrency}`):
 * PlanDrill validates it (restore-plan: planDrillFleet; a refusal goes to DrillReport like a
 * single target's, with its notice), then
 *
 *   DrillTargets (a STANDARD Distributed Map, maxConcurrency from the plan, every failure
 *   tolerated, results to .fleet-results/drill/): per target, DrillTarget starts THIS state
 *   machine with that target's single-target input (states:startExecution.sync:2, linked to its
 *   starter by AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID) and waits for it: each target's drill is
 *   its own execution, with its own history, report, metrics and notice
 *   → DrillFleetReport (the Report function: every target named, passed or failed and why)
 *   → succeed only if every target's drill passed, else fail naming each failed target.
 *   DrillTargets failing as a whole → ReportDrillMapFailure → NotifyDrillMapFailure → fail with
 *   the Map's error (drillMapFailure).
 */
export class DrillStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: DrillStateMachineProps) {
    super(scope, id);
    const { config, functions: fns } = props;
    // A fleet drill runs its targets' drills maxConcurrency at a time: 7 days hold, for example, 1,000
    // targets of 30 minutes each at 4 at once (about 5.2 days). A single drill is bounded by its own
    // steps' timeouts long before. The alarm DrillExecutionFailed reports a fleet that passes it.
    const timeout = props.timeout ?? Duration.seconds(DRILL_EXECUTION_TIMEOUT_SECONDS);
    const { storage } = props;
    const b = restoreBuilder(this, props);
    const name = `${config.name}-restore-drill`;

    const report = reportState(
      b,
      fns,
      'drill',
      {
        report: 'DrillReport',
        ok: 'DrillOk?',
        succeeded: 'DrillSucceeded',
        failed: 'DrillFailed',
        error: 'RestoreDrillFailed',
      },
      {},
    );
    const drill = b
      .run('RunDrill')
      .addCatch(b.record('RunDrillFailed', 'RunDrill', '$.failures.drill').next(report), caught)
      .next(report);
    const plan = planState(
      b,
      fns,
      'drill',
      { plan: 'PlanDrill', refused: 'DrillRefused', planned: 'DrillPlanned' },
      report,
    );
    plan.last.next(
      new sfn.Choice(this, 'DrillFleet?', {
        comment: 'A fleet input (targets) was planned as a fleet: one drill execution per target',
      })
        .when(sfn.Condition.stringEquals('$.plan.kind', 'drill-fleet'), this.fleet(b, fns, storage, name))
        .otherwise(drill),
    );
    const init = new sfn.Pass(this, 'Init', { parameters: { plan: {}, failures: {} } }).next(plan.first);

    ({ stateMachine: this.stateMachine, logGroup: this.logGroup } = b.machine({
      id: 'Resource',
      logsId: 'ResourceLogs',
      name,
      comment:
        'Rehearses a restore: a backup restored into disposable databases, validated, timed, torn down; a fleet runs one such execution per target',
      definition: init,
      timeout,
      runnerKind: 'drill',
      taskRoleArns: [props.runner.drillTaskRole.roleArn],
    }));
    grantFleetResults(this.stateMachine, { ...storage, kind: 'drill', label: 'DrillTargets' });
    // DrillTarget (states:startExecution.sync:2) starts executions of this state machine and follows
    // them: StartExecution on it and Describe/StopExecution on its executions are the Distributed
    // Map's own policy already (CDK's DistributedMapPolicy); the .sync pattern also needs the managed
    // EventBridge rule through which Step Functions learns that an execution ended (AWS Step
    // Functions Developer Guide, "IAM policies for AWS Step Functions", synchronous StartExecution).
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [
          Stack.of(this).formatArn({
            service: 'events',
            resource: 'rule',
            resourceName: 'StepFunctionsGetEventsForStepFunctionsExecutionRule',
          }),
        ],
      }),
    );
  }

  /**
   * The fleet path after PlanDrill: DrillTargets (a drill execution of this state machine per
   * target) → DrillFleetReport → succeed, or fail naming each failed target.
   */
  private fleet(
    b: Builder,
    fns: BackupFunctions,
    storage: { bucket: s3.IBucket },
    name: string,
  ): sfn.IChainable {
    const stack = Stack.of(this);
    // Its own ARN from its fixed name: the state machine's Ref in its own definition would be a
    // circular reference.
    const self = stack.formatArn({
      service: 'states',
      resource: 'stateMachine',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      resourceName: name,
    });
    // One target's drill, as its own execution of this state machine (AWS Step Functions Developer
    // Guide, "Start workflow executions from a task state"; ".sync:2": the task waits for it and
    // returns DescribeExecution's fields with its Output as JSON; a drill that fails fails the task
    // with States.TaskFailed, its cause that description as JSON text). Only the start is retried
    // (too many executions at once): a drill that ran and failed is reported, not run again.
    const drillTarget = new sfn.CustomState(this, 'DrillTarget', {
      stateJson: {
        Type: 'Task',
        Comment: "This target's drill: an execution of this state machine with the single-target input",
        Resource: `arn:${stack.partition}:states:::states:startExecution.sync:2`,
        Parameters: {
          StateMachineArn: self,
          Input: {
            'target.$': '$.target',
            'backup.$': '$.backup',
            'windowDays.$': '$.windowDays',
            'reason.$': '$.reason',
            // Links the drill's execution to this one in the console (the same guide, "Associate
            // Workflow Executions"); the drill's input schema accepts it.
            [`${STARTED_BY_EXECUTION_ID}.$`]: '$$.Execution.Id',
          },
        },
        ResultSelector: { 'executionArn.$': '$.ExecutionArn' },
        ResultPath: '$.drill',
      },
    });
    drillTarget.addRetry({
      errors: ['StepFunctions.ExecutionLimitExceeded'],
      interval: Duration.seconds(30),
      maxAttempts: 5,
      backoffRate: 2,
      jitterStrategy: sfn.JitterType.FULL,
    });
    drillTarget
      .addCatch(
        new sfn.Pass(this, 'DrillTargetFailed', {
          parameters: {
            'target.$': '$.target',
            ok: false,
            'error.$': '$.error.Error',
            'cause.$': '$.error.Cause',
          },
        }),
        caught,
      )
      .next(
        new sfn.Pass(this, 'DrillTargetPassed', {
          parameters: { 'target.$': '$.target', ok: true, 'executionArn.$': '$.drill.executionArn' },
        }),
      );

    // Each target a STANDARD child execution (a drill runs for up to hours); every failure tolerated,
    // so every target is drilled and reported; the children's outcomes go to the bucket, not into
    // this state (ResultWriter; the same as the backup's BackupTargets).
    const targets = new ScopedResultWriterMap(this, 'DrillTargets', {
      comment: "One child per target, which runs that target's drill as its own execution",
      itemsPath: '$.plan.targets',
      itemSelector: {
        'target.$': '$$.Map.Item.Value',
        'backup.$': '$.plan.backup',
        'windowDays.$': '$.plan.windowDays',
        'reason.$': '$.plan.reason',
      },
      maxConcurrencyPath: '$.plan.maxConcurrency',
      mapExecutionType: sfn.StateMachineType.STANDARD,
      label: 'DrillTargets',
      toleratedFailurePercentage: 100,
      resultPath: '$.results',
    });
    targets.resultWriterTo(storage.bucket.bucketName, fleetResultsPrefix('drill'));
    targets.itemProcessor(drillTarget);
    // The Map failing as a whole is reported and noticed too, then fails with its error (mapFailure).
    targets.addCatch(drillMapFailure(b, fns), { errors: [sfn.Errors.ALL], resultPath: '$.mapError' });

    const fleetReport = b
      .invoke('DrillFleetReport', {
        fn: fns.report,
        payload: { kind: 'drill-fleet', 'results.$': '$.results' },
        resultPath: '$.report',
        resultSelector: {
          'ok.$': '$.Payload.ok',
          'passed.$': '$.Payload.passed',
          'failed.$': '$.Payload.failed',
          'summary.$': '$.Payload.summary',
        },
        retries: ['storage'],
      })
      .addCatch(
        new sfn.Fail(this, 'DrillFleetReportFailed', {
          errorPath: '$.error.Error',
          causePath: '$.error.Cause',
        }),
        caught,
      );
    return targets.next(fleetReport).next(
      new sfn.Choice(this, 'AllTargetsDrilled?')
        .when(
          sfn.Condition.booleanEquals('$.report.ok', true),
          new sfn.Succeed(this, 'DrillFleetSucceeded', { outputPath: '$.report' }),
        )
        .otherwise(
          new sfn.Fail(this, 'DrillFleetFailed', {
            error: 'RestoreDrillFleetFailed',
            causePath: '$.report.summary',
          }),
        ),
    );
  }
}

/**
 * What follows the DrillTargets Map's Catch (its caught error at `$.mapError`):
 * ReportDrillMapFailure (the Report function: the Map's error and cause, which targets' drills are
 * known to have passed or failed, from whatever its Map Run wrote) → NotifyDrillMapFailure (the
 * RestoreReport function, kind drill: the notice and the RestoreDrillFailed metric, as any failed
 * drill) → DrillMapFailed, the execution failing with the Map's error and the report as its cause.
 * A report that cannot be made is replaced by a sentence (DrillMapReportUnavailable); a notice that
 * cannot be sent does not keep the execution from failing. No Catch catches States.Runtime (AWS Step
 * Functions Developer Guide, "Handling errors in Step Functions workflows", States.ALL).
 */
function drillMapFailure(b: Builder, fns: BackupFunctions): sfn.IChainable {
  const failed = new sfn.Fail(b.scope, 'DrillMapFailed', {
    errorPath: '$.mapError.Error',
    causePath: '$.report.summary',
  });
  const notify = b
    .invoke('NotifyDrillMapFailure', {
      fn: fns.restoreReport,
      payload: {
        kind: 'drill',
        'executionId.$': '$$.Execution.Id',
        'startedAt.$': '$$.Execution.StartTime',
        'input.$': '$$.Execution.Input',
        'plan.$': '$.plan',
        fleet: { step: 'DrillTargets', 'failure.$': '$.mapError', 'report.$': '$.report.summary' },
      },
      retries: ['storage', 'notification'],
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
  // ReportDrillMapFailure's failed events) and the Map's whole error goes to the notice (`failure`).
  // Every caught error has an `Error` (a Catch's output: Error and, not always, Cause).
  const unavailable = new sfn.Pass(b.scope, 'DrillMapReportUnavailable', {
    comment: 'The report of the failed Map could not be made: its summary says so',
    parameters: {
      'summary.$': statesFormat(
        'Restore drill of the fleet: its Map DrillTargets failed ({}) and its report could not be made ({}): which drills passed is not known here; each drill that ran is an execution of its own, with its notice; the causes are in the execution history (DrillTargets, ReportDrillMapFailure)',
        ['$.mapError.Error', '$.report.Error'],
      ),
    },
    resultPath: '$.report',
  }).next(notify);
  return b
    .invoke('ReportDrillMapFailure', {
      fn: fns.report,
      payload: {
        kind: 'drill-fleet',
        'executionId.$': '$$.Execution.Id',
        'targets.$': '$.plan.targets',
        'mapFailure.$': '$.mapError',
      },
      resultPath: '$.report',
      resultSelector: {
        'ok.$': '$.Payload.ok',
        'passed.$': '$.Payload.passed',
        'failed.$': '$.Payload.failed',
        'summary.$': '$.Payload.summary',
      },
      retries: ['storage'],
    })
    .addCatch(unavailable, { errors: [sfn.Errors.ALL], resultPath: '$.report' })
    .next(notify);
}

/** The drill state machine's props: the restore's, and the backup bucket and key its fleet's Map writes to. */
export interface DrillStateMachineProps extends RestoreStateMachinesProps {
  /**
   * Where the fleet's Distributed Map writes its results (`.fleet-results/drill/`), and the key
   * they are encrypted with: the backup bucket and its key.
   */
  readonly storage: { readonly bucket: s3.IBucket; readonly key: kms.IKey };
}
