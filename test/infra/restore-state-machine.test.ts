import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { allStates } from '../../cli/local/state-machine.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { templateWithNestedStacks, testApp } from '../helpers/cdk.js';

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
    template = templateWithNestedStacks(buildApp(testApp(), config).backup);
  }, scaled(120_000));

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
      [...states(kind)].filter(([, s]) =>
        String(s.Resource).endsWith(':states:::ecs:runTask.waitForTaskToken'),
      );
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
        Overrides: {
          ContainerOverrides: [
            {
              'Environment.$': '$.plan.environment',
              // The token and bounds after the subcommand: a JSONPath list cannot be appended to.
              'Command.$': expect.stringMatching(
                /^States\.Array\('[a-z0-9-]+', '--task-token', \$\$\.Task\.Token, '--heartbeat-seconds', States\.Format\('\{\}', \$\.plan\.timeouts\.\w+\.heartbeatSeconds\), '--timeout-seconds', /,
              ),
            },
          ],
        },
      });
    }
    // Restores run the target's runner under that target's restore role, never a backup role: the
    // role's ARN is built at run time from the plan's target, and names, for every target, the
    // restore role the template creates for it (fixed name, under the deployment's path).
    type Overrides = { TaskRoleArn?: string; 'TaskRoleArn.$'?: string };
    const roles = Object.values(
      template.findResources('AWS::IAM::Role') as Record<string, { Properties: Record<string, unknown> }>,
    ).map((r) => r.Properties);
    for (const [name, s] of ecs('restore')) {
      const overrides = (s.Parameters as { Overrides: Overrides }).Overrides;
      expect(overrides.TaskRoleArn, name).toBeUndefined();
      const format =
        /^States\.Format\('arn:aws:iam::\d{12}:role\/([^']+)\{\}(-restore-[0-9a-f]{8})', \$\.plan\.target\)$/.exec(
          overrides['TaskRoleArn.$'] ?? '',
        );
      expect(format, `${name}: ${overrides['TaskRoleArn.$']}`).not.toBeNull();
      const [, path, suffix] = format as RegExpExecArray;
      for (const target of config.targets) {
        const role = roles.find((r) => r.RoleName === `${target.name}${suffix}`);
        expect(role, `${name}: restore role of ${target.name}`).toBeDefined();
        expect(role?.Path, name).toBe(`/${path}`);
        // A restore role, not a backup role: it writes nothing under the backups.
        const statements = (
          (role?.Policies ?? []) as Array<{ PolicyDocument: { Statement: unknown[] } }>
        ).flatMap(
          (p) => p.PolicyDocument.Statement as Array<{ Action: string | string[]; Resource: unknown }>,
        );
        const backupWrites = statements.filter(
          (st) =>
            JSON.stringify(st.Resource).includes('infrahub_backup_') &&
            [st.Action].flat().some((a) => /^s3:(Put|Delete)/.test(a)),
        );
        expect(backupWrites, name).toEqual([]);
      }
    }
    // Drills keep the drill definition's own role (the drill role): no override.
    for (const [name, s] of ecs('drill'))
      expect(Object.keys((s.Parameters as { Overrides: Overrides }).Overrides), name).toEqual([
        'ContainerOverrides',
      ]);
    const policies = JSON.stringify(template.findResources('AWS::IAM::Policy'));
    expect(policies).toContain('-drill-*:*');
  });
});
