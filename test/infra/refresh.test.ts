/**
 * Issue 18, item 1: refreshing an environment from another's backup, in the template. A refresh
 * destination's restore role reads its sources' backups and nothing more of theirs (least
 * privilege: `refreshFrom`); other roles gain nothing; a refresh schedule starts the restore state
 * machine with a valid refresh input; a refresh schedule naming a production destination is refused
 * when the app is synthesized.
 */
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile, parseDeploymentConfig, parseInput } from '../../core/config/load.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { RestoreExecutionInputSchema, restoreSource } from '../../core/restore/plan.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp, ContextKeys, resolveConfig } from '../../infra/app.js';
import { templateWithNestedStacks, testApp } from '../helpers/cdk.js';

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
type Resource = { Type: string; Properties: Record<string, unknown> };

const PROD = 'infrahub-prod';
const LAB = 'infrahub-lab';

/** config/example.json with prod marked production, lab refreshed from it weekly. */
function refreshRaw(): Record<string, unknown> & {
  targets: Array<Record<string, unknown>>;
  schedules: Array<Record<string, unknown>>;
} {
  const raw = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));
  raw.targets[0].production = true;
  raw.targets[1].refreshFrom = [PROD];
  raw.schedules.push({
    name: 'weekly-lab-refresh',
    kind: 'refresh',
    expression: 'cron(0 5 ? * MON *)',
    timezone: 'Europe/Berlin',
    targets: [LAB],
    source: PROD,
  });
  return raw;
}

const flat = (v: unknown): string => JSON.stringify(v);
const actions = (st: Statement) => [st.Action].flat();

describe('refresh (template)', () => {
  let config: DeploymentConfig;
  let resources: Record<string, Resource>;

  beforeAll(() => {
    config = parseDeploymentConfig(refreshRaw(), 'test');
    const { backup } = buildApp(testApp(), config);
    const template: Template = templateWithNestedStacks(backup);
    resources = template.toJSON().Resources as Record<string, Resource>;
  }, scaled(300_000));

  /** The inline statements of the role whose logical id contains `name`. */
  const statementsOf = (name: string): Statement[] => {
    const entry = Object.entries(resources).find(
      ([id, r]) => r.Type === 'AWS::IAM::Role' && id.includes(name),
    );
    if (!entry) throw new Error(`no role ${name}`);
    const [id, r] = entry;
    const statements = (
      (r.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>) ?? []
    ).flatMap((p) => p.PolicyDocument.Statement);
    for (const p of Object.values(resources))
      if (p.Type === 'AWS::IAM::Policy' && flat(p.Properties.Roles).includes(`"${id}"`))
        statements.push(...(p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    return statements;
  };
  /** The object key patterns (after the bucket ARN) a role's statements grant `action` on. */
  const keysGranted = (statements: Statement[], action: string): string[] =>
    statements
      .filter((s) => s.Effect === 'Allow' && actions(s).includes(action))
      .flatMap((s) => [s.Resource].flat())
      .map((r) => flat(r).match(/"\/([^"]*)"\]\]\}$/)?.[1] ?? flat(r));

  it("grants the destination's restore role reading the source's backups and its own step reports, nothing more", () => {
    const lab = statementsOf('RestoreRoleinfrahublab');
    expect(keysGranted(lab, 's3:GetObject').sort()).toEqual(
      [
        '.restores/infrahub-lab/*',
        'infrahub-lab/infrahub_backup_*',
        'infrahub-prod/infrahub_backup_*',
      ].sort(),
    );
    expect(keysGranted(lab, 's3:GetObjectVersion').sort()).toEqual(
      ['infrahub-lab/infrahub_backup_*', 'infrahub-prod/infrahub_backup_*'].sort(),
    );
    // It writes only its own reports (and, Community, nothing of the source's at all).
    expect(keysGranted(lab, 's3:PutObject')).toEqual(['.restores/infrahub-lab/*']);
    expect(flat(lab)).not.toMatch(/\.restores\/infrahub-prod|\.restore-seeds\/infrahub-prod|locks\//);
    for (const action of ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutObjectTagging'])
      expect(keysGranted(lab, action), action).toEqual([]);
  });

  it("gives the production source's roles, and every backup role, nothing of the other target", () => {
    const prod = statementsOf('RestoreRoleinfrahubprod');
    expect(keysGranted(prod, 's3:GetObject')).not.toContain('infrahub-lab/infrahub_backup_*');
    // A target refreshed from no other does not read its own reports back either.
    expect(keysGranted(prod, 's3:GetObject')).not.toContain('.restores/infrahub-prod/*');
    expect(flat(statementsOf('BackupRoleinfrahublab'))).not.toContain('infrahub-prod/');
    expect(flat(statementsOf('BackupRoleinfrahubprod'))).not.toContain('infrahub-lab/');
  });

  it('starts the restore state machine from the refresh schedule with a valid refresh input', () => {
    const schedules = Object.values(resources).filter((r) => r.Type === 'AWS::Scheduler::Schedule');
    const refresh = schedules.find((s) => flat(s.Properties.Name).includes('weekly-lab-refresh'));
    expect(refresh).toBeDefined();
    const props = refresh?.Properties as {
      Description: string;
      ScheduleExpression: string;
      ScheduleExpressionTimezone: string;
      Target: { Arn: unknown; Input: string; RoleArn: unknown };
    };
    expect(props.ScheduleExpression).toBe('cron(0 5 ? * MON *)');
    expect(props.ScheduleExpressionTimezone).toBe('Europe/Berlin');
    expect(props.Description).toBe(
      'Infrahub refresh of infrahub-lab from the latest backup of infrahub-prod',
    );
    // The restore state machine (not the backup or drill machine).
    const restoreMachine = Object.entries(resources).find(
      ([id, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && /^Restore/.test(id),
    )?.[0];
    expect(restoreMachine).toBeDefined();
    expect(flat(props.Target.Arn)).toContain(`"${restoreMachine}"`);
    const input = JSON.parse(props.Target.Input);
    expect(input).toEqual({
      target: LAB,
      sourceTarget: PROD,
      backupId: 'latest',
      reason: 'schedule weekly-lab-refresh (cron(0 5 ? * MON *)): refresh of infrahub-lab from infrahub-prod',
    });
    // What the restore plan makes of it: a valid input, a refresh the configuration allows.
    const parsed = parseInput(RestoreExecutionInputSchema, input, 'restore execution input');
    expect(restoreSource(parsed, config)).toMatchObject({ source: PROD, refresh: true });
    // Its role may start that machine.
    const roleId = flat(props.Target.RoleArn).match(/"(\w+)","Arn"/)?.[1] ?? '';
    const starts = Object.values(resources)
      .filter((r) => r.Type === 'AWS::IAM::Policy' && flat(r.Properties.Roles).includes(`"${roleId}"`))
      .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
      .filter((s) => actions(s).includes('states:StartExecution'));
    expect(flat(starts)).toContain(`"${restoreMachine}"`);
  });

  it('refuses, at synthesis, a refresh schedule into a production target, naming the target and the field', () => {
    const raw = refreshRaw();
    (raw.targets[0] as Record<string, unknown>).refreshFrom = [LAB];
    (raw.schedules.at(-1) as Record<string, unknown>).targets = [PROD];
    (raw.schedules.at(-1) as Record<string, unknown>).source = LAB;
    const app = testApp({ [ContextKeys.config]: raw });
    expect(() => resolveConfig(app)).toThrow(
      /targets\[0\]\.refreshFrom: is refused on "infrahub-prod", which is marked production[\s\S]*schedules\[2\]\.targets\[0\]: "infrahub-prod" is marked production \(targets\[0\]\.production is true\): a production target can never be a refresh destination/,
    );
  });
});
