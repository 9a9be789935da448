/**
 * Issue 13: EventBridge Scheduler names (1-64 characters of [0-9a-zA-Z-_.], unique per group) for
 * long deployment and schedule names: a backup schedule whose name would exceed 64. Issue 16, item
 * 3: a restore-drill schedule is ONE schedule, whatever its targets, starting the drill state
 * machine with a fleet input (several targets or "*"), or the single-target input for one target.
 * One synthesized stack for the file.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { DrillExecutionInputSchema, planDrillFleet } from '../../core/restore/plan.js';
import { scaled } from '../../harness/time-scale.js';
import {
  BackupSchedules,
  describeScheduleTargets,
  MAX_SCHEDULE_NAME,
  ScheduleNameError,
  scheduledDrillInput,
  scheduleName,
} from '../../infra/constructs/backup-schedules.js';
import { testApp } from '../helpers/cdk.js';

const WEST = 'infrahub-prod-eu-west';
const CENTRAL = 'infrahub-prod-eu-central';
const LONG_BACKUP = 'nightly-backup-of-every-infrahub-target';
const LONG_DRILL = 'monthly-restore-drill-of-all-the-fleet';

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
    {
      name: LONG_DRILL,
      kind: 'restore-drill',
      expression: 'cron(0 7 1 * ? *)',
      targets: [WEST, CENTRAL],
      backup: 'random',
      windowDays: 14,
    },
    { name: 'weekly-drill', kind: 'restore-drill', expression: 'cron(0 8 ? * MON *)', targets: [CENTRAL] },
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

type ScheduleResource = {
  Properties: { Name: string; Description: string; Target: { Arn: unknown; Input: string } };
};

describe('schedule names (template)', () => {
  let names: string[];
  let schedules: ScheduleResource[];

  beforeAll(() => {
    const template = Template.fromStack(schedulesStack(reviewerConfig()));
    schedules = Object.values(template.findResources('AWS::Scheduler::Schedule')) as ScheduleResource[];
    names = schedules.map((r) => r.Properties.Name);
  }, scaled(120_000));

  it('gives every schedule a distinct valid name of at most 64 characters', () => {
    // Two backup schedules and three restore-drill schedules: one each, whatever their targets.
    expect(names).toHaveLength(5);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) {
      expect(name.length, name).toBeLessThanOrEqual(MAX_SCHEDULE_NAME);
      expect(name, name).toMatch(/^[0-9a-zA-Z_.-]{1,64}$/);
    }
  });

  it('keeps short names as they are and cuts long ones to a readable prefix and a hash of the full name', () => {
    expect(names).toContain('infrahub-backup-production-nightly');
    expect(names).toContain('infrahub-backup-production-monthly-restore-drill');
    expect(names).toContain('infrahub-backup-production-weekly-drill');
    const backup = scheduleName('infrahub-backup-production', LONG_BACKUP);
    expect(`infrahub-backup-production-${LONG_BACKUP}`.length).toBeGreaterThan(MAX_SCHEDULE_NAME);
    expect(names).toContain(backup);
    expect(backup).toMatch(/^infrahub-backup-production-nightly-backup-of-every-[0-9a-z-]*-[0-9a-f]{8}$/);
    const drill = scheduleName('infrahub-backup-production', LONG_DRILL);
    expect(names).toContain(drill);
    expect(drill).toMatch(/^infrahub-backup-production-monthly-restore-drill-of-[0-9a-z-]*-[0-9a-f]{8}$/);
  });

  it("starts the drill state machine once per restore-drill schedule: a fleet input, or one target's input", () => {
    const drills = schedules.filter((s) => JSON.stringify(s.Properties.Target.Arn).includes('Drill'));
    expect(drills).toHaveLength(3);
    const input = (name: string) =>
      JSON.parse(
        drills.find((s) => s.Properties.Name === name)?.Properties.Target.Input ?? 'null',
      ) as unknown;
    expect(input('infrahub-backup-production-monthly-restore-drill')).toEqual({
      targets: '*',
      backup: 'latest',
      windowDays: 30,
      reason: 'schedule monthly-restore-drill (cron(0 6 1 * ? *))',
    });
    expect(input(scheduleName('infrahub-backup-production', LONG_DRILL))).toEqual({
      targets: [WEST, CENTRAL],
      backup: 'random',
      windowDays: 14,
      reason: `schedule ${LONG_DRILL} (cron(0 7 1 * ? *))`,
    });
    expect(input('infrahub-backup-production-weekly-drill')).toEqual({
      target: CENTRAL,
      backup: 'latest',
      windowDays: 30,
      reason: 'schedule weekly-drill (cron(0 8 ? * MON *))',
    });
    // What the drill's plan accepts: the fleet's schema, or the single target's.
    const config = reviewerConfig();
    for (const s of drills) {
      const given = JSON.parse(s.Properties.Target.Input) as Record<string, unknown>;
      if ('targets' in given) expect(() => planDrillFleet(given, config, 'scheduled')).not.toThrow();
      else expect(DrillExecutionInputSchema.safeParse(given).success).toBe(true);
    }
    expect(new Set(drills.map((s) => s.Properties.Description))).toEqual(
      new Set([
        'Infrahub restore drill of every target (latest backup)',
        `Infrahub restore drill of ${WEST}, ${CENTRAL} (random backup)`,
        `Infrahub restore drill of ${CENTRAL} (latest backup)`,
      ]),
    );
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
    // A long name is cut to 55 characters and a hash; another schedule may be named exactly so
    // (the configuration refuses only equal schedule names): a drill and a backup here.
    const long = 'a'.repeat(40);
    const cut = scheduleName('infrahub-backup-production', long);
    expect(cut).toHaveLength(MAX_SCHEDULE_NAME);
    raw.schedules = [
      { name: long, kind: 'backup', expression: 'cron(0 2 * * ? *)', targets: '*' },
      {
        name: cut.slice('infrahub-backup-production-'.length),
        kind: 'restore-drill',
        expression: 'cron(0 6 * * ? *)',
        targets: [WEST],
      },
    ];
    expect(() => schedulesStack(parseDeploymentConfig(raw, 'test'))).toThrow(ScheduleNameError);
  });
});

describe('restore-drill schedules: one execution per run', () => {
  const example = loadDeploymentConfigFile('config/example.json');
  const schedule = (targets: '*' | string[]) => ({
    name: 'monthly',
    kind: 'restore-drill' as const,
    expression: 'cron(0 6 1 * ? *)',
    timezone: 'UTC',
    targets,
    enabled: true,
    backup: 'random' as const,
    windowDays: 14,
  });

  it('sends a fleet input for several targets or "*", and the single-target input for one', () => {
    const reason = 'schedule monthly (cron(0 6 1 * ? *))';
    expect(scheduledDrillInput(schedule('*'))).toEqual({
      targets: '*',
      backup: 'random',
      windowDays: 14,
      reason,
    });
    expect(scheduledDrillInput(schedule(['infrahub-prod', 'infrahub-lab']))).toEqual({
      targets: ['infrahub-prod', 'infrahub-lab'],
      backup: 'random',
      windowDays: 14,
      reason,
    });
    expect(scheduledDrillInput(schedule(['infrahub-prod']))).toEqual({
      target: 'infrahub-prod',
      backup: 'random',
      windowDays: 14,
      reason,
    });
    // A schedule's maxConcurrency travels with its fleet input (a fleet of hundreds needs more than
    // the default 4 to finish within the drill state machine's bound).
    expect(scheduledDrillInput({ ...schedule('*'), maxConcurrency: 25 })).toEqual({
      targets: '*',
      backup: 'random',
      windowDays: 14,
      reason,
      maxConcurrency: 25,
    });
    expect(
      planDrillFleet(scheduledDrillInput({ ...schedule('*'), maxConcurrency: 25 }), example, 'x')
        .maxConcurrency,
    ).toBe(25);
    // Each is what the drill plan accepts.
    expect(planDrillFleet(scheduledDrillInput(schedule('*')), example, 'x').targets).toEqual(
      example.targets.map((t) => t.name),
    );
    expect(
      DrillExecutionInputSchema.safeParse(scheduledDrillInput(schedule(['infrahub-prod']))).success,
    ).toBe(true);
  });

  it("names a long list's count in the description instead (Scheduler keeps 512 characters)", () => {
    expect(describeScheduleTargets('*')).toBe('every target');
    expect(describeScheduleTargets(['infrahub-prod', 'infrahub-lab'])).toBe('infrahub-prod, infrahub-lab');
    // 20 names of 40 characters: 818 characters, past the description's 512.
    const many = Array.from(
      { length: 20 },
      (_, i) => `infrahub-site-${String(i).padStart(3, '0')}-${'x'.repeat(22)}`,
    );
    expect(describeScheduleTargets(many)).toBe('20 targets');
    expect(
      `Infrahub restore drill of ${describeScheduleTargets(many.slice(0, 9))} (random backup)`.length,
    ).toBeLessThanOrEqual(512);
  });
});
