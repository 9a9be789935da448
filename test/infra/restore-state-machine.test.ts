import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { allStates } from '../../cli/local/state-machine.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { buildApp } from '../../infra/app.js';
import { testApp } from '../helpers/cdk.js';

type State = Record<string, unknown> & {
  Type: string;
  Next?: string;
  Default?: string;
  Choices?: Array<{ Next: string }>;
  Retry?: Array<{ ErrorEquals: string[] }>;
  Catch?: Array<{ ErrorEquals: string[]; Next: string }>;
};

describe('restore and drill state machines (template)', () => {
  const config = loadDeploymentConfigFile('config/example.json');
  let synthesized: SynthesizedBackup;
  let template: Template;
  const states = (kind: 'restore' | 'drill') =>
    new Map(allStates(synthesized.machines[kind].definition) as Array<[string, State]>);

  beforeAll(() => {
    synthesized = synthesizeBackup(config);
    template = Template.fromStack(buildApp(testApp(), config).backup);
  }, 120_000);

  it('plans (verify and check) before anything else, and a dry run ends there', () => {
    const restore = states('restore');
    expect(synthesized.machines.restore.definition.StartAt).toBe('Init');
    expect(restore.get('Init')?.Next).toBe('PlanRestore');
    expect(restore.get('PlanRestore')?.Next).toBe('Planned');
    expect(restore.get('Planned')?.Next).toBe('DryRun?');
    const dryRun = restore.get('DryRun?');
    expect(dryRun?.Choices?.[0]?.Next).toBe('RestorePlanned');
    expect(restore.get('RestorePlanned')?.Type).toBe('Succeed');
    expect(dryRun?.Default).toBe('AcquireRestoreLock');
    // A refusal goes straight to the report: no lock, no service, no runner.
    expect(restore.get('PlanRestore')?.Catch?.[0]?.Next).toBe('RestoreRefused');
    expect(restore.get('RestoreRefused')?.Next).toBe('RestoreReport');
  });

  it('gives every task a Retry for transient errors and a Catch for everything', () => {
    for (const kind of ['restore', 'drill'] as const) {
      const tasks = [...states(kind)].filter(([, s]) => s.Type === 'Task');
      expect(tasks.length).toBeGreaterThan(kind === 'restore' ? 12 : 2);
      for (const [name, s] of tasks) {
        expect(s.Retry?.length, `${name} Retry`).toBeGreaterThan(0);
        expect(
          s.Retry?.flatMap((r) => r.ErrorEquals),
          `${name}`,
        ).not.toContain('States.ALL');
        expect(
          s.Catch?.some((c) => c.ErrorEquals.includes('States.ALL')),
          `${name} Catch`,
        ).toBe(true);
      }
    }
  });

  it('starts the services again after the restore, whether it succeeded or not', () => {
    const restore = states('restore');
    const parallel = restore.get('RestoreComponents');
    expect(parallel?.Next).toBe('ServicesStopped?');
    expect(parallel?.Catch?.[0]?.Next).toBe('RestoreComponentsFailed');
    expect(restore.get('RestoreComponentsFailed')?.Next).toBe('ServicesStopped?');
    expect(restore.get('ServicesStopped?')?.Choices?.[0]?.Next).toBe('StartServices');
    // After the database load, the DBMS is started on both paths.
    expect(restore.get('RestoreNeo4j')?.Next).toBe('StartDbmsAfterRestore');
    expect(restore.get('RestoreNeo4jFailed')?.Next).toBe('StartDbmsAfterRestoreFailure');
  });

  it('runs restore steps as the target runner under the restore role and drills as the drill definition', () => {
    const ecs = (kind: 'restore' | 'drill') =>
      [...states(kind)].filter(([, s]) => String(s.Resource).endsWith(':states:::ecs:runTask.sync'));
    expect(
      ecs('restore')
        .map(([name]) => name)
        .sort(),
    ).toEqual([
      'RestoreArtifacts',
      'RestoreNeo4j',
      'RestoreNeo4jOnline',
      'RestorePostgres',
      'ValidateNeo4j',
      'ValidateNeo4jOnline',
    ]);
    expect(ecs('drill').map(([name]) => name)).toEqual(['RunDrill']);
    for (const [, s] of [...ecs('restore'), ...ecs('drill')]) {
      expect(s.Parameters).toMatchObject({
        'TaskDefinition.$': '$.plan.taskDefinition',
        Overrides: { ContainerOverrides: [{ 'Environment.$': '$.plan.environment' }] },
      });
    }
    // Restores run the target's runner under the read-only restore role, never the backup role.
    for (const [name, s] of ecs('restore')) {
      expect((s.Parameters as { Overrides: { TaskRoleArn?: string } }).Overrides.TaskRoleArn, name).toMatch(
        /RunnerRestoreTaskRole/,
      );
    }
    const policies = JSON.stringify(template.findResources('AWS::IAM::Policy'));
    expect(policies).toContain('-drill-*:*');
  });
});
