import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { allStates } from '../../cli/local/state-machine.js';
import { type AslDefinition, type CfnTemplate, resolveTokens } from '../../cli/local/synth.js';
import { planBackup, targetWork } from '../../core/backup/plan.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { DrillExecutionInputSchema } from '../../core/restore/plan.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { templateWithNestedStacks, testApp } from '../helpers/cdk.js';

type State = Record<string, unknown> & {
  Type: string;
  Retry?: Array<{ ErrorEquals: string[] }>;
  Catch?: Array<{ ErrorEquals: string[]; Next: string }>;
};

describe('backup state machine (template)', () => {
  const config = loadDeploymentConfigFile('config/example.json');
  let template: Template;
  let definition: AslDefinition;
  let states: Map<string, State>;

  beforeAll(() => {
    const app = testApp();
    const { backup } = buildApp(app, config);
    template = templateWithNestedStacks(backup);
    const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    const json = template.toJSON() as CfnTemplate;
    definition = JSON.parse(
      String(
        resolveTokens(
          (machine as { Properties: { DefinitionString: unknown } }).Properties.DefinitionString,
          json,
          config,
        ),
      ),
    ) as AslDefinition;
    states = new Map(allStates(definition) as Array<[string, State]>);
  }, scaled(120_000));

  it('validates the input first, then maps over the targets with the configured concurrency', () => {
    // Any JSON is accepted first (a non-object input cannot take a ResultPath), then Plan validates it.
    expect(definition.StartAt).toBe('Start');
    expect(states.get('Start')).toEqual({
      Type: 'Pass',
      Comment: expect.any(String),
      Parameters: { 'input.$': '$$.Execution.Input' },
      Next: 'Plan',
    });
    expect(states.get('Plan')).toMatchObject({
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { Payload: { 'input.$': '$$.Execution.Input', 'startTime.$': '$$.Execution.StartTime' } },
      Next: 'BackupTargets',
    });
    // A Distributed Map: each target a STANDARD child execution (its own 25,000-event history), every
    // failed child tolerated (the Report names it), results written to the bucket, not the state.
    expect(states.get('BackupTargets')).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.plan.targets',
      MaxConcurrency: config.maxConcurrency,
      ItemSelector: { 'target.$': '$$.Map.Item.Value', 'owner.$': '$$.Execution.Id' },
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' } },
      ToleratedFailurePercentage: 100,
      ResultWriter: {
        Resource: 'arn:aws:states:::s3:putObject',
        Parameters: { Prefix: '.fleet-results/backup' },
      },
      ResultPath: '$.results',
    });
    expect(states.get('Report')).toMatchObject({
      Parameters: { Payload: { 'results.$': '$.results' } },
    });
    // The results the children wrote expire with the bucket's lifecycle.
    const rules = Object.values(template.findResources('AWS::S3::Bucket')).flatMap(
      (b) =>
        ((b.Properties as { LifecycleConfiguration?: { Rules?: unknown[] } }).LifecycleConfiguration?.Rules ??
          []) as Array<Record<string, unknown>>,
    );
    expect(rules).toContainEqual(
      expect.objectContaining({
        Id: 'expire-fleet-results',
        Prefix: '.fleet-results/',
        ExpirationInDays: 30,
      }),
    );
  });

  // Issue 16 review: the fleet Map failing as a whole (its ResultWriter, a Map Run aborted) is
  // caught, reported, noticed, and fails the execution with the Map's own error.
  it("catches the fleet Map's own failure: report, notice, then fail with the Map's error; the happy path unchanged", () => {
    const functionOf = (name: string) =>
      (states.get(name)?.Parameters as { FunctionName?: unknown } | undefined)?.FunctionName;
    expect(functionOf('Report')).toBeDefined();
    const map = states.get('BackupTargets');
    expect(map?.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.mapError', Next: 'ReportMapFailure' },
    ]);
    expect(map?.Next).toBe('Report');
    expect(states.get('Report')?.Parameters).toEqual({
      FunctionName: expect.anything(),
      Payload: { 'backupId.$': '$.plan.backupId', 'results.$': '$.results' },
    });

    const report = states.get('ReportMapFailure');
    expect(report).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: {
        FunctionName: functionOf('Report'),
        Payload: {
          'backupId.$': '$.plan.backupId',
          'executionId.$': '$$.Execution.Id',
          'targets.$': '$.plan.targets',
          'mapFailure.$': '$.mapError',
        },
      },
      ResultPath: '$.report',
      Next: 'NotifyMapFailure',
    });
    expect(report?.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.report', Next: 'MapReportUnavailable' },
    ]);
    // A report that could not be made: a sentence of its own, quoting both errors by name only, so
    // that it stays below the Fail state's Cause bound (32,768) whatever the causes hold.
    expect(states.get('MapReportUnavailable')).toMatchObject({
      Type: 'Pass',
      Parameters: {
        'summary.$': expect.stringMatching(
          /^States\.Format\('\{\}: the fleet Map BackupTargets failed .*', \$\.plan\.backupId, \$\.mapError\.Error, \$\.report\.Error\)$/,
        ),
      },
      ResultPath: '$.report',
      Next: 'NotifyMapFailure',
    });
    // Bounded by construction: its text, the backup id (31 characters) and two error names of at
    // most 256 each (Step Functions' bound on an error name), far below a Cause's 32,768.
    const summary = String(
      (states.get('MapReportUnavailable') as unknown as { Parameters: Record<string, string> }).Parameters[
        'summary.$'
      ],
    );
    const text = /^States\.Format\('((?:[^'\\]|\\.)*)'/.exec(summary)?.[1] ?? '';
    expect(text.length + 31 + 2 * 256).toBeLessThan(32_768);
    expect(summary).not.toContain('Cause');
    expect(summary).not.toContain('JsonToString');
    const notify = states.get('NotifyMapFailure');
    expect(notify).toMatchObject({
      Parameters: {
        FunctionName: functionOf('NotifyInputRejected'),
        Payload: {
          outcome: 'aborted',
          step: 'BackupTargets',
          'executionId.$': '$$.Execution.Id',
          'failure.$': '$.mapError',
          'report.$': '$.report.summary',
        },
      },
      Next: 'BackupMapFailed',
    });
    expect(notify?.Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: null, Next: 'BackupMapFailed' },
    ]);
    expect(states.get('BackupMapFailed')).toEqual({
      Type: 'Fail',
      ErrorPath: '$.mapError.Error',
      CausePath: '$.report.summary',
    });
  });

  it('lets the Report function list the Map Runs of the backup and drill executions only, and list .fleet-results/ only', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify(p).includes('states:ListMapRuns'),
    );
    expect(policies).toHaveLength(1);
    const statements = (
      policies[0] as { Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> } } }
    ).Properties.PolicyDocument.Statement;
    const listMapRuns = statements.filter((s) => s.Action === 'states:ListMapRuns');
    expect(listMapRuns).toHaveLength(1);
    const resources = JSON.stringify(listMapRuns[0]?.Resource);
    expect(resources).toContain(`:execution:${config.name}-backup:*`);
    expect(resources).toContain(`:execution:${config.name}-restore-drill:*`);
    expect(listMapRuns[0]?.Resource).toHaveLength(2);
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: 's3:ListBucket',
        Condition: { StringLike: { 's3:prefix': ['.fleet-results/*'] } },
      }),
    );
    // The Report function's own policy (its role's name says so).
    expect(JSON.stringify(policies[0])).toMatch(/FunctionsReport/);
  });

  it('captures the three components in a Parallel, each with ecs:runTask.waitForTaskToken of the target’s runner', () => {
    const capture = states.get('Capture') as unknown as { Branches: unknown[] };
    expect(capture.Branches).toHaveLength(3);
    const ecs = [...states].filter(([, s]) =>
      String(s.Resource).endsWith(':states:::ecs:runTask.waitForTaskToken'),
    );
    expect(ecs.map(([name]) => name).sort()).toEqual([
      'BackupNeo4j',
      'CopyArtifacts',
      'CountNeo4j',
      'DumpNeo4j',
      'DumpPostgres',
    ]);
    for (const [name, s] of ecs) {
      // The Community dump from a copy starts the DBMS again itself, to the count StopDbms found.
      const dbmsCount =
        name === 'DumpNeo4j'
          ? [{ Name: 'DBMS_DESIRED_COUNT', 'Value.$': "States.Format('{}', $.dbmsState.desiredCount)" }]
          : [];
      expect(s.Parameters).toMatchObject({
        'TaskDefinition.$': '$.taskDefinition',
        LaunchType: 'FARGATE',
        NetworkConfiguration: {
          AwsvpcConfiguration: { Subnets: config.network.subnetIds, AssignPublicIp: 'DISABLED' },
        },
        Overrides: {
          ContainerOverrides: [
            {
              Name: 'runner',
              Environment: [
                { Name: 'BACKUP_ID', 'Value.$': '$.backupId' },
                ...dbmsCount,
                // The task token and the step's bounds: the runner heartbeats and answers with them.
                { Name: 'TASK_TOKEN', 'Value.$': '$$.Task.Token' },
                {
                  Name: 'TASK_HEARTBEAT_SECONDS',
                  'Value.$': expect.stringMatching(/^States\.Format\('\{\}', \$\.timeouts\./),
                },
                {
                  Name: 'TASK_TIMEOUT_SECONDS',
                  'Value.$': expect.stringMatching(/^States\.Format\('\{\}', \$\.timeouts\./),
                },
              ],
            },
          ],
        },
      });
    }
    expect(states.get('DumpPostgres')?.Parameters).toMatchObject({
      Overrides: { ContainerOverrides: [{ Command: ['backup-postgres'] }] },
    });
  });

  // Issue 17, item 7: the work item (AcquireLock's output, each child's state) carries what the
  // states read and nothing else; a Lambda's settings come from its bundled configuration.
  it('reads every field of the per-target work item in a state, and passes no configuration literal', () => {
    const processor = JSON.stringify(
      (definition.States.BackupTargets as { ItemProcessor: unknown }).ItemProcessor,
    );
    const plan = planBackup({}, config, new Date('2026-11-21T02:00:00Z'));
    for (const target of config.targets) {
      const work = targetWork(config, { ...plan, owner: 'o' }, target.name) as unknown as Record<
        string,
        unknown
      >;
      // Each leaf (timeouts: per step key, read as <step>.timeoutSeconds) appears as a JSONPath.
      const leaves = (value: unknown, path: string): string[] =>
        value !== null && typeof value === 'object' && !Array.isArray(value) && path !== '$.timeouts'
          ? Object.entries(value).flatMap(([k, v]) => leaves(v, `${path}.${k}`))
          : [path];
      const unread = leaves(work, '$').filter(
        (path) => !new RegExp(`${path.replace(/[.$]/g, '\\$&')}\\b`).test(processor),
      );
      expect(unread, target.name).toEqual([]);
    }
    // The Lambda steps send run-time values only (the settings: core/config/bundled.ts).
    for (const [name, payload] of [
      [
        'Preflight',
        {
          'target.$': '$.target',
          'backupId.$': '$.backupId',
          'force.$': '$.force',
          'wait.$': '$.preflight.wait',
        },
      ],
      ['WaitForNeo4j', { 'target.$': '$.target' }],
    ] as const)
      expect((states.get(name)?.Parameters as { Payload?: unknown })?.Payload, name).toEqual(payload);
    expect(JSON.stringify(states.get('WriteManifest')?.Parameters)).not.toContain('retention');
  });

  it('gives every task a named Retry for transient errors and a Catch for everything', () => {
    const tasks = [...states].filter(([, s]) => s.Type === 'Task');
    expect(tasks.length).toBeGreaterThanOrEqual(15);
    for (const [name, s] of tasks) {
      expect(s.Retry?.length, `${name} Retry`).toBeGreaterThan(0);
      expect(
        s.Retry?.flatMap((r) => r.ErrorEquals),
        `${name} retries all errors`,
      ).not.toContain('States.ALL');
      expect(
        s.Catch?.some((c) => c.ErrorEquals.includes('States.ALL')),
        `${name} Catch`,
      ).toBe(true);
    }
    // Never retried: a bad input, a busy Infrahub (the gate already waited), a held lock.
    const retried = tasks.flatMap(([, s]) => s.Retry?.flatMap((r) => r.ErrorEquals) ?? []);
    for (const error of ['InvalidInput', 'InfrahubBusy', 'TargetLocked'])
      expect(retried).not.toContain(error);
    expect(states.get('Preflight')?.Retry).toEqual(
      expect.arrayContaining([expect.objectContaining({ ErrorEquals: ['InfrahubUnreachable'] })]),
    );
  });

  it('never writes a manifest after a failure: every failure path ends at TargetFailed via the notice', () => {
    const next = (name: string) => {
      const s = states.get(name);
      return [s?.Next, ...(s?.Catch?.map((c) => c.Next) ?? [])].filter(Boolean) as string[];
    };
    // Follow every path from each failure record; none reaches WriteManifest.
    for (const start of [
      'LockFailed',
      'PreflightFailed',
      'DatabaseFailed',
      'TaskManagerDbFailed',
      'ArtifactsFailed',
      'CaptureFailed',
      'ManifestFailed',
    ]) {
      const seen = new Set<string>();
      const queue = [start];
      while (queue.length) {
        const name = queue.shift() as string;
        if (seen.has(name)) continue;
        seen.add(name);
        queue.push(...next(name));
      }
      expect(seen.has('WriteManifest'), start).toBe(false);
      expect(seen.has('NotifyFailure'), start).toBe(true);
    }
    expect(states.get('AllComponentsCaptured?')).toMatchObject({ Type: 'Choice', Default: 'WriteManifest' });
  });

  it('retries a lock release for minutes, then notifies saying what became of the lock', () => {
    for (const name of ['ReleaseLock', 'ReleaseLockAfterFailure']) {
      const state = states.get(name) as State & { ResultPath?: string };
      type Retrier = {
        ErrorEquals: string[];
        IntervalSeconds: number;
        MaxAttempts: number;
        BackoffRate: number;
        MaxDelaySeconds?: number;
      };
      const retriers = (state.Retry ?? []) as Retrier[];
      const storage = retriers.find((r) => r.ErrorEquals.includes('StorageError'));
      expect(storage, name).toMatchObject({
        IntervalSeconds: 5,
        MaxAttempts: 6,
        BackoffRate: 2,
        MaxDelaySeconds: 60,
      });
      // The retries' pauses add up to minutes: enough to outlast a short S3 outage.
      const pauses = Array.from({ length: storage?.MaxAttempts ?? 0 }, (_, i) =>
        Math.min(5 * 2 ** i, storage?.MaxDelaySeconds ?? Number.POSITIVE_INFINITY),
      );
      expect(pauses.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(180);
      // Released or not, the outcome goes to the notice (never a failed execution without one).
      expect(state.ResultPath).toBe('$.lockRelease');
      expect(state.Catch).toEqual([
        expect.objectContaining({ ErrorEquals: ['States.ALL'], ResultPath: '$.lockRelease' }),
      ]);
    }
    expect(states.get('NotifyFailure')).toMatchObject({
      Parameters: { Payload: { 'lockRelease.$': '$.lockRelease', lockTtlSeconds: 12 * 3600 } },
    });
    // Taking the lock failed, yet S3 may have stored it (an answer lost): the failure path releases
    // what this execution holds (review item 5), so the notice says what became of it.
    expect(states.get('LockFailed')).toMatchObject({ Next: 'ReleaseLockAfterFailure' });
    // The lock function may ask Step Functions whether a lock's holder still runs, and nothing more.
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (p) =>
        (
          p as {
            Properties: { PolicyDocument: { Statement: Array<{ Action: unknown; Resource: unknown }> } };
          }
        ).Properties.PolicyDocument.Statement,
    );
    // Besides it, only the backup and drill state machines' roles, for their Distributed Maps' child
    // executions: DescribeExecution and StopExecution on their own executions (CDK's DistributedMap
    // grants them), one statement each.
    const all = statements.filter((st) => [st.Action].flat().includes('states:DescribeExecution'));
    const children = all.filter((st) => [st.Action].flat().includes('states:StopExecution'));
    expect(children).toHaveLength(2);
    for (const child of children) expect(JSON.stringify(child.Resource)).toContain(':execution:');
    const describe = all.filter((st) => !children.includes(st));
    expect(describe).toHaveLength(1);
    const resources = JSON.stringify(describe[0]?.Resource);
    expect(resources).toContain(`:execution:${config.name}-backup:*`);
    expect(resources).toContain(`:execution:${config.name}-restore:*`);
  });

  it('has a timeout, logs at ALL with execution data, and tracing', () => {
    expect(definition.TimeoutSeconds).toBe(12 * 3600);
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true },
      TracingConfiguration: { Enabled: true },
    });
  });

  it('lets the state machine run only the runner task definitions, on its cluster, and pass only their roles', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'ecs:RunTask',
            Condition: { ArnEquals: { 'ecs:cluster': Match.anyValue() } },
            Resource: Match.objectLike({
              'Fn::Join': Match.arrayWith([Match.arrayWith([':task-definition/infrahub-backup-*-runner:*'])]),
            }),
          }),
          Match.objectLike({
            Action: 'iam:PassRole',
            Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
          }),
        ]),
      },
    });
  });

  it('defines one runner task definition per target, credentials as ECS secrets only', () => {
    const defs = Object.values(template.findResources('AWS::ECS::TaskDefinition')) as Array<{
      Properties: {
        Family: string;
        RuntimePlatform: unknown;
        ContainerDefinitions: Array<{
          Environment: Array<{ Name: string }>;
          Secrets: Array<{ Name: string }>;
        }>;
        Volumes?: Array<{ EFSVolumeConfiguration: { FilesystemId: string } }>;
      };
    }>;
    // One runner per target (backups, and restores under the restore role), one drill per image.
    expect(defs.map((d) => d.Properties.Family).sort()).toEqual([
      'infrahub-backup-drill-community-5-26-26-pg18',
      'infrahub-backup-drill-enterprise-5-26-26-pg18',
      'infrahub-backup-infrahub-lab-runner',
      'infrahub-backup-infrahub-prod-runner',
    ]);
    for (const d of defs) {
      const [container] = d.Properties.ContainerDefinitions;
      const env = container?.Environment.map((e) => e.Name) ?? [];
      expect(env.filter((n) => /PASSWORD|TOKEN|SECRET/.test(n))).toEqual([]);
      // A drill never reaches the deployment: no credentials at all. The example's targets keep their
      // Neo4j Bolt CA in Secrets Manager (neo4j.tls.caSecret): NEO4J_TLS_CA_PEM, not a credential.
      expect(container?.Secrets?.map((s) => s.Name).sort() ?? []).toEqual(
        d.Properties.Family.includes('-drill-')
          ? []
          : ['NEO4J_PASSWORD', 'NEO4J_TLS_CA_PEM', 'NEO4J_USERNAME', 'PGPASSWORD', 'PGUSER'],
      );
      expect(d.Properties.RuntimePlatform).toEqual({
        CpuArchitecture: 'ARM64',
        OperatingSystemFamily: 'LINUX',
      });
    }
    // The Community target mounts its DBMS's store and its artifact storage from EFS.
    const lab = defs.find((d) => d.Properties.Family === 'infrahub-backup-infrahub-lab-runner');
    expect(lab?.Properties.Volumes?.map((v) => v.EFSVolumeConfiguration.FilesystemId).sort()).toEqual([
      'fs-0a1b2c3d',
      'fs-0b1c2d3e',
    ]);
  });

  it('starts the state machine from each backup schedule with a valid execution input', () => {
    const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule')) as Array<{
      Properties: {
        ScheduleExpression: string;
        ScheduleExpressionTimezone: string;
        Target: { Input: string; Arn: unknown };
      };
    }>;
    const backups = config.schedules.filter((s) => s.kind === 'backup');
    const drills = schedules.filter((s) => JSON.stringify(s.Properties.Target.Arn).includes('RestoreDrill'));
    const backupSchedules = schedules.filter((s) => !drills.includes(s));
    expect(backupSchedules).toHaveLength(backups.length);
    // One drill schedule per target of each restore-drill schedule, each input valid for the drill.
    const drillTargets = config.schedules
      .filter((s) => s.kind === 'restore-drill')
      .flatMap((s) => (s.targets === '*' ? config.targets.map((t) => t.name) : s.targets));
    expect(drills).toHaveLength(drillTargets.length);
    for (const d of drills) {
      const input = DrillExecutionInputSchema.parse(JSON.parse(d.Properties.Target.Input));
      expect(drillTargets).toContain(input.target);
    }
    for (const [i, s] of backupSchedules.entries()) {
      expect(s.Properties.ScheduleExpression).toBe(backups[i]?.expression);
      expect(s.Properties.ScheduleExpressionTimezone).toBe(backups[i]?.timezone);
      const input = JSON.parse(s.Properties.Target.Input) as unknown;
      // The same validation the first state applies.
      expect(() => planBackup(input, config, new Date())).not.toThrow();
    }
  });
});
