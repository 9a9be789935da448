import { describe, expect, it } from 'vitest';
import { planBackup, targetWork } from '../../core/backup/plan.js';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { MAX_TARGETS } from '../../core/config/schema.js';

const config = loadDeploymentConfigFile('config/example.json');
const now = new Date('2026-11-21T02:00:00Z');
const owner = 'arn:aws:states:eu-west-1:123456789012:execution:backup:run-1';

describe('backup execution input and plan', () => {
  it('backs up every target and every component by default', () => {
    const plan = planBackup({}, config, now);
    expect(plan).toEqual({
      backupId: 'infrahub_backup_20261121_020000',
      components: ['database', 'task-manager-db', 'artifacts'],
      force: false,
      targets: ['infrahub-prod', 'infrahub-lab'],
    });
    expect(targetWork(config, { ...plan, owner }, 'infrahub-prod')).toMatchObject({
      target: 'infrahub-prod',
      backupId: 'infrahub_backup_20261121_020000',
      components: ['database', 'task-manager-db', 'artifacts'],
      force: false,
      edition: 'enterprise',
      owner,
      taskDefinition: 'infrahub-backup-infrahub-prod-runner',
      capture: { database: true, taskManagerDb: true, artifacts: true },
    });
    expect(targetWork(config, { ...plan, owner }, 'infrahub-prod')).not.toHaveProperty('dbms');
    expect(targetWork(config, { ...plan, owner }, 'infrahub-lab')).toMatchObject({
      edition: 'community',
      dbms: { cluster: 'infrahub-lab', service: 'neo4j' },
    });
    // Settings only a Lambda reads are not in the work item: the functions read them from their
    // bundled configuration (core/config/bundled.ts); the runner has them in its task definition.
    expect(Object.keys(targetWork(config, { ...plan, owner }, 'infrahub-lab')).sort()).toEqual([
      'backupId',
      'capture',
      'components',
      'dbms',
      'edition',
      'force',
      'owner',
      'target',
      'taskDefinition',
      'timeouts',
    ]);
  });

  it('takes a subset of targets and components, force, and a reason', () => {
    const plan = planBackup(
      { targets: ['infrahub-lab'], components: ['task-manager-db'], force: true, reason: 'before upgrade' },
      config,
      now,
    );
    expect(plan).toMatchObject({
      reason: 'before upgrade',
      targets: ['infrahub-lab'],
      components: ['task-manager-db'],
      force: true,
    });
    expect(targetWork(config, { ...plan, owner }, 'infrahub-lab')).toMatchObject({
      components: ['task-manager-db'],
      force: true,
      capture: { database: false, taskManagerDb: true, artifacts: false },
    });
  });

  it.each([
    [
      { targets: ['infrahub-stage'] },
      /targets: "infrahub-stage" is not configured \(known: infrahub-prod, infrahub-lab\)/,
    ],
    [{ targets: [] }, /targets: must name at least one target/],
    [{ components: ['database', 'database'] }, /components: must not name a component twice/],
    [{ components: ['neo4j'] }, /components\[0\]: Invalid option/],
    [{ force: 'yes' }, /force: Invalid input: expected boolean/],
    [{ password: 'x' }, /\(root\): has unknown key "password"/],
    [
      { targets: ['infrahub-lab', 'infrahub-lab'] },
      /targets\[1\]: names target "infrahub-lab" a second time/,
    ],
  ])('rejects %j with a message naming the field', (input, message) => {
    expect(() => planBackup(input, config, now)).toThrowError(
      expect.objectContaining({ name: 'InvalidInput', message: expect.stringMatching(message) }),
    );
  });

  it(`keeps the largest fleet's plan (${MAX_TARGETS} targets) and each work item far below the 256 KiB state payload limit`, () => {
    const raw = JSON.parse(JSON.stringify(config)) as {
      targets: Array<Record<string, unknown>>;
      schedules: unknown[];
    };
    const template = raw.targets[0] ?? {};
    raw.targets = Array.from({ length: MAX_TARGETS }, (_, i) => ({
      ...template,
      name: `infrahub-site-${String(i).padStart(3, '0')}`,
    }));
    raw.schedules = [];
    (raw as { maxConcurrency?: number }).maxConcurrency = 40; // the 12 hours' bound (fleetBoundProblem)
    const fleet = parseDeploymentConfig(raw, 'fleet');
    const plan = planBackup({}, fleet, now);
    expect(plan.targets).toHaveLength(MAX_TARGETS);
    const planBytes = Buffer.byteLength(JSON.stringify(plan));
    const itemBytes = Math.max(
      ...plan.targets.map((t) => Buffer.byteLength(JSON.stringify(targetWork(fleet, { ...plan, owner }, t)))),
    );
    expect(planBytes).toBeLessThan(64 * 1024);
    expect(itemBytes).toBeLessThan(2 * 1024);
    console.info(
      `${MAX_TARGETS}-target plan: ${(planBytes / 1024).toFixed(1)} KiB; largest work item ${itemBytes} B (limit 256 KiB)`,
    );
  });

  it('names a target that is not configured when resolving its work', () => {
    expect(() => targetWork(config, { ...planBackup({}, config, now), owner }, 'nope')).toThrowError(
      /Invalid target:[\s\S]*"nope" is not configured/,
    );
  });

  // Issue 12, item 20: Step Functions passes any JSON; only an object is an execution input.
  it.each([
    [null, 'null'],
    [[], 'an array'],
    ['infrahub-prod', 'a string'],
    [42, 'a number'],
    [true, 'a boolean'],
  ])('refuses %j as InvalidInput, saying it must be an object and what it got', (input, kind) => {
    expect(() => planBackup(input, config, now)).toThrow(
      expect.objectContaining({
        name: 'InvalidInput',
        message: expect.stringContaining(`(root): must be a JSON object such as {}, got ${kind}`),
      }),
    );
  });

  it('reads no input at all (undefined) as {}', () => {
    expect(planBackup(undefined, config, now).targets).toEqual(['infrahub-prod', 'infrahub-lab']);
  });
});
