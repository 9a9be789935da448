import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { allStates } from '../../cli/local/state-machine.js';
import { type AslDefinition, type CfnTemplate, resolveTokens } from '../../cli/local/synth.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { testApp } from '../helpers/cdk.js';

type State = Record<string, unknown> & {
  Type: string;
  Next?: string;
  Default?: string;
  Choices?: Array<Record<string, unknown> & { Next: string }>;
  Retry?: Array<{ ErrorEquals: string[] }>;
  Catch?: Array<{ ErrorEquals: string[]; Next: string }>;
};
type Statement = { Action: string | string[]; Resource: unknown; Effect: string };
type Resource = { Type: string; Properties: Record<string, unknown> };

// Issue 16, item 3: the drill state machine runs a fleet in one execution (a Distributed Map whose
// children each start one drill execution of the same state machine), with its IAM scoped to that.
describe('drill state machine: the fleet path (template)', () => {
  const config = loadDeploymentConfigFile('config/example.json');
  const name = `${config.name}-restore-drill`;
  let resources: Record<string, Resource>;
  let states: Map<string, State>;
  let drillId: string;
  const json = (v: unknown) => JSON.stringify(v);
  /** The statements of the policies attached to a state machine's role (its default policy, the Map's). */
  const statementsOf = (machinePrefix: string): Statement[] =>
    Object.entries(resources)
      .filter(([id, r]) => r.Type === 'AWS::IAM::Policy' && id.startsWith(machinePrefix))
      .flatMap(([, r]) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  const withAction = (statements: Statement[], action: string) =>
    statements.filter((s) => [s.Action].flat().includes(action));

  beforeAll(() => {
    const template = Template.fromStack(
      buildApp(testApp({ 'aws:cdk:bundling-stacks': [] }), config).backup,
    ).toJSON() as CfnTemplate & {
      Resources: Record<string, Resource>;
    };
    resources = template.Resources;
    const found = Object.entries(resources).find(
      ([, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && r.Properties.StateMachineName === name,
    );
    if (!found) throw new Error(`no state machine ${name}`);
    drillId = found[0];
    const definition = JSON.parse(
      String(resolveTokens(found[1].Properties.DefinitionString, template, config)),
    ) as AslDefinition;
    states = new Map(allStates(definition) as Array<[string, State]>);
  }, scaled(120_000));

  it('plans first, then sends a planned fleet to DrillTargets and a single target to RunDrill as before', () => {
    expect(states.get('Init')?.Next).toBe('PlanDrill');
    expect(states.get('PlanDrill')?.Next).toBe('DrillPlanned');
    expect(states.get('DrillPlanned')?.Next).toBe('DrillFleet?');
    const choice = states.get('DrillFleet?');
    expect(choice?.Choices).toEqual([
      { Variable: '$.plan.kind', StringEquals: 'drill-fleet', Next: 'DrillTargets' },
    ]);
    expect(choice?.Default).toBe('RunDrill');
    expect(states.get('RunDrill')?.Next).toBe('DrillReport');
    // A refused fleet input is a drill refusal: the report, its notice and metrics, then a failure.
    expect(states.get('PlanDrill')?.Catch?.[0]?.Next).toBe('DrillRefused');
  });

  it('runs the targets as a STANDARD Distributed Map, concurrency from the plan, every failure tolerated, results to .fleet-results/drill/', () => {
    const map = states.get('DrillTargets') as State & {
      ItemProcessor: { ProcessorConfig: unknown; StartAt: string };
      ResultWriter: { Resource: string; Parameters: { Bucket: string; Prefix: string } };
    };
    expect(map).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.plan.targets',
      ItemSelector: {
        'target.$': '$$.Map.Item.Value',
        'backup.$': '$.plan.backup',
        'windowDays.$': '$.plan.windowDays',
        'reason.$': '$.plan.reason',
      },
      MaxConcurrencyPath: '$.plan.maxConcurrency',
      ToleratedFailurePercentage: 100,
      Label: 'DrillTargets',
      ResultPath: '$.results',
      Next: 'DrillFleetReport',
    });
    expect(map).not.toHaveProperty('MaxConcurrency');
    expect(map.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    expect(map.ItemProcessor.StartAt).toBe('DrillTarget');
    // The backup bucket (its Ref, resolved locally to its logical id).
    expect(map.ResultWriter).toEqual({
      Resource: 'arn:aws:states:::s3:putObject',
      Parameters: { Bucket: expect.stringMatching(/^StorageBucket/), Prefix: '.fleet-results/drill' },
    });
  });

  it('starts this state machine per target with the single-target input, linked to its starter, and reports each outcome', () => {
    const task = states.get('DrillTarget');
    expect(task).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::states:startExecution.sync:2',
      Parameters: {
        StateMachineArn: `arn:aws:states:${config.region}:000000000000:stateMachine:${name}`,
        Input: {
          'target.$': '$.target',
          'backup.$': '$.backup',
          'windowDays.$': '$.windowDays',
          'reason.$': '$.reason',
          'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id',
        },
      },
      ResultSelector: { 'executionArn.$': '$.ExecutionArn' },
      Next: 'DrillTargetPassed',
    });
    // Only a start refused for too many executions is retried; a drill that ran and failed is not.
    expect(task?.Retry?.flatMap((r) => r.ErrorEquals)).toEqual(['StepFunctions.ExecutionLimitExceeded']);
    expect(task?.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'DrillTargetFailed' },
    ]);
    expect(states.get('DrillTargetPassed')?.Parameters).toEqual({
      'target.$': '$.target',
      ok: true,
      'executionArn.$': '$.drill.executionArn',
    });
    expect(states.get('DrillTargetFailed')?.Parameters).toEqual({
      'target.$': '$.target',
      ok: false,
      'error.$': '$.error.Error',
      'cause.$': '$.error.Cause',
    });
    const report = states.get('DrillFleetReport');
    expect(report?.Parameters).toMatchObject({
      FunctionName: expect.stringMatching(/:function:FunctionsReport/),
      Payload: { kind: 'drill-fleet', 'results.$': '$.results' },
    });
    expect(report?.Catch?.[0]).toMatchObject({ ErrorEquals: ['States.ALL'], Next: 'DrillFleetReportFailed' });
    expect(states.get('AllTargetsDrilled?')?.Choices?.[0]).toMatchObject({
      Variable: '$.report.ok',
      BooleanEquals: true,
      Next: 'DrillFleetSucceeded',
    });
    expect(states.get('DrillFleetFailed')).toEqual({
      Type: 'Fail',
      Error: 'RestoreDrillFleetFailed',
      CausePath: '$.report.summary',
    });
  });

  // Issue 16 review: DrillTargets failing as a whole is caught, reported, noticed as a failed drill
  // (its metric and notice), and fails the execution with the Map's own error.
  it("catches the DrillTargets Map's own failure: report, drill notice, then fail with the Map's error; the happy path unchanged", () => {
    const map = states.get('DrillTargets');
    expect(map?.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.mapError', Next: 'ReportDrillMapFailure' },
    ]);
    expect(map?.Next).toBe('DrillFleetReport');
    const report = states.get('ReportDrillMapFailure');
    expect(report).toMatchObject({
      Parameters: {
        FunctionName: expect.stringMatching(/:function:FunctionsReport/),
        Payload: {
          kind: 'drill-fleet',
          'executionId.$': '$$.Execution.Id',
          'targets.$': '$.plan.targets',
          'mapFailure.$': '$.mapError',
        },
      },
      ResultPath: '$.report',
      Next: 'NotifyDrillMapFailure',
    });
    expect(report?.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.report', Next: 'DrillMapReportUnavailable' },
    ]);
    expect(states.get('DrillMapReportUnavailable')).toMatchObject({
      Type: 'Pass',
      Parameters: {
        'summary.$': expect.stringMatching(
          /^States\.Format\('Restore drill of the fleet: .*', \$\.mapError\.Error, \$\.report\.Error\)$/,
        ),
      },
      ResultPath: '$.report',
      Next: 'NotifyDrillMapFailure',
    });
    // Two error names (at most 256 each) in a short text: below a Fail state's Cause bound (32,768).
    const summary = String(
      (states.get('DrillMapReportUnavailable') as unknown as { Parameters: Record<string, string> })
        .Parameters['summary.$'],
    );
    expect(summary).not.toContain('JsonToString');
    expect(summary.length + 2 * 256).toBeLessThan(32_768);
    const notify = states.get('NotifyDrillMapFailure');
    expect(notify).toMatchObject({
      Parameters: {
        FunctionName: expect.stringMatching(/:function:FunctionsRestoreReport/),
        Payload: {
          kind: 'drill',
          'plan.$': '$.plan',
          fleet: { step: 'DrillTargets', 'failure.$': '$.mapError', 'report.$': '$.report.summary' },
        },
      },
      Next: 'DrillMapFailed',
    });
    expect(notify?.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: null, Next: 'DrillMapFailed' },
    ]);
    expect(states.get('DrillMapFailed')).toEqual({
      Type: 'Fail',
      ErrorPath: '$.mapError.Error',
      CausePath: '$.report.summary',
    });
  });

  it('grants the drill role its own executions, the .sync rule and the drill results prefix only', () => {
    const drill = statementsOf('RestoreDrill');
    const self = { Ref: drillId };
    expect(withAction(drill, 'states:StartExecution').map((s) => s.Resource)).toEqual([self]);
    const executions = withAction(drill, 'states:DescribeExecution');
    expect(executions).toHaveLength(1);
    expect(withAction(drill, 'states:StopExecution')).toEqual(executions);
    expect(json(executions[0]?.Resource)).toMatch(
      /":execution:",\{"Fn::Select":\[6,\{"Fn::Split":\[":",\{"Ref":"RestoreDrill[0-9A-F]+"\}\]\}\]\},":\*"\]/,
    );
    expect(withAction(drill, 'states:RedriveExecution').map((s) => json(s.Resource))).toEqual([
      expect.stringContaining('"/DrillTargets:*"'),
    ]);
    const events = drill.filter((s) => [s.Action].flat().some((a) => a.startsWith('events:')));
    expect(events).toHaveLength(1);
    expect([events[0]?.Action].flat().sort()).toEqual([
      'events:DescribeRule',
      'events:PutRule',
      'events:PutTargets',
    ]);
    expect(json(events[0]?.Resource)).toMatch(
      /:rule\/StepFunctionsGetEventsForStepFunctionsExecutionRule"\]\]\}$/,
    );
    // S3: the Map's results under .fleet-results/drill/ and nothing else in the bucket.
    const s3 = drill.filter((s) => [s.Action].flat().some((a) => a.startsWith('s3:')));
    expect(s3).toHaveLength(1);
    expect([s3[0]?.Action].flat().sort()).toEqual([
      's3:AbortMultipartUpload',
      's3:GetObject',
      's3:ListMultipartUploadParts',
      's3:PutObject',
    ]);
    expect(json(s3[0]?.Resource)).toMatch(/"\/\.fleet-results\/drill\/\*"\]\]\}$/);
    expect(json(withAction(drill, 'kms:GenerateDataKey').map((s) => s.Resource))).toMatch(/StorageKey/);
    // No other state machine's executions, no wildcard StartExecution.
    expect(json(drill)).not.toMatch(/"states:\*"|stateMachine:\*/);
    // The backup state machine's role keeps its own prefix, and nothing of the drill's.
    const backup = statementsOf('Backup');
    expect(json(backup)).toMatch(/\.fleet-results\/backup\/\*/);
    expect(json(backup)).not.toMatch(
      /\.fleet-results\/drill|StepFunctionsGetEventsForStepFunctionsExecutionRule/,
    );
  });
});
