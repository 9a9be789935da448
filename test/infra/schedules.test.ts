/**
 * Issue 13: EventBridge Scheduler names (1-64 characters of [0-9a-zA-Z-_.], unique per group) for
 * long deployment, schedule and target names: drills of two targets that share their first 64
 * characters, a backup schedule whose name would exceed 64. One synthesized stack for the file.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import {
  BackupSchedules,
  MAX_SCHEDULE_NAME,
  ScheduleNameError,
  scheduleName,
} from '../../infra/constructs/backup-schedules.js';
import { testApp } from '../helpers/cdk.js';

const WEST = 'infrahub-prod-eu-west';
const CENTRAL = 'infrahub-prod-eu-central';
const LONG_BACKUP = 'nightly-backup-of-every-infrahub-target';

/** The reviewer's inputs: deployment "infrahub-backup-production", drill "monthly-restore-drill". */
function reviewerConfig(): DeploymentConfig {
  const raw = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));
  raw.name = 'infrahub-backup-production';
  raw.targets[0].name = WEST;
  raw.targets[1].name = CENTRAL;
  raw.schedules = [
    { name: LONG_BACKUP, kind: 'backup', expression: 'cron(0 2 * * ? *)', targets: '*' },
    { name: 'nightly', kind: 'backup', expression: 'cron(0 3 * * ? *)', targets: [WEST] },
    { name: 'monthly-restore-drill', kind: 'restore-drill', expression: 'cron(0 6 1 * ? *)', targets: '*' },
  ];
  return parseDeploymentConfig(raw, 'test');
}

/** A stack with only the schedules, starting two placeholder state machines. */
function schedulesStack(config: DeploymentConfig): Stack {
  const stack = new Stack(testApp(), 'Schedules', {
    env: { account: '123456789012', region: config.region },
  });
  const machine = (id: string) =>
    new sfn.StateMachine(stack, id, {
      definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(stack, `${id}Pass`)),
    });
  new BackupSchedules(stack, 'Schedules', {
    config,
    stateMachine: machine('Backup'),
    drillStateMachine: machine('Drill'),
  });
  return stack;
}

describe('schedule names (template)', () => {
  let names: string[];

  beforeAll(() => {
    const template = Template.fromStack(schedulesStack(reviewerConfig()));
    names = (
      Object.values(template.findResources('AWS::Scheduler::Schedule')) as Array<{
        Properties: { Name: string };
      }>
    ).map((r) => r.Properties.Name);
  }, 120_000);

  it('gives every schedule a distinct valid name of at most 64 characters', () => {
    expect(names).toHaveLength(4);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) {
      expect(name.length, name).toBeLessThanOrEqual(MAX_SCHEDULE_NAME);
      expect(name, name).toMatch(/^[0-9a-zA-Z_.-]{1,64}$/);
    }
  });

  it('keeps short names as they are and cuts long ones to a readable prefix and a hash of the full name', () => {
    expect(names).toContain('infrahub-backup-production-nightly');
    const drills = names.filter((n) => n.startsWith('infrahub-backup-production-monthly-restore-drill-'));
    expect(drills).toHaveLength(2);
    for (const drill of drills) expect(drill).toMatch(/-[0-9a-f]{8}$/);
    expect(drills).toContain(scheduleName('infrahub-backup-production', 'monthly-restore-drill', WEST));
    expect(drills).toContain(scheduleName('infrahub-backup-production', 'monthly-restore-drill', CENTRAL));
    const backup = scheduleName('infrahub-backup-production', LONG_BACKUP);
    expect(`infrahub-backup-production-${LONG_BACKUP}`.length).toBeGreaterThan(MAX_SCHEDULE_NAME);
    expect(names).toContain(backup);
    expect(backup).toMatch(/^infrahub-backup-production-nightly-backup-of-every-[0-9a-z-]*-[0-9a-f]{8}$/);
  });

  it('bounds the longest names the configuration allows (40-character slugs)', () => {
    const slug = (c: string) => `${c}${'x'.repeat(38)}${c}`;
    const a = scheduleName(slug('a'), slug('b'), `${slug('c').slice(0, 39)}1`);
    const b = scheduleName(slug('a'), slug('b'), `${slug('c').slice(0, 39)}2`);
    expect(a.length).toBe(MAX_SCHEDULE_NAME);
    expect(a).not.toBe(b);
    expect(a).not.toMatch(/--/);
  });

  it('refuses two schedules that would get the same name', () => {
    const raw = JSON.parse(JSON.stringify(reviewerConfig()));
    // "<name>-weekly-infrahub-prod-eu-west" as a backup schedule and as a drill of a target.
    raw.schedules = [
      { name: `weekly-${WEST}`, kind: 'backup', expression: 'cron(0 2 * * ? *)', targets: '*' },
      { name: 'weekly', kind: 'restore-drill', expression: 'cron(0 6 * * ? *)', targets: [WEST] },
    ];
    expect(() => schedulesStack(parseDeploymentConfig(raw, 'test'))).toThrow(ScheduleNameError);
  });
});
