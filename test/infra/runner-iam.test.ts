/**
 * Issue 13, items 4-7 and 11: the runner's IAM and EFS access as a real account enforces them —
 * customer-managed keys, secrets by name, reading back a multipart copy, restoring into a root-owned
 * EFS tree, and one set of roles per target (drills with their own).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { addNagChecks } from '../../infra/nag.js';
import { templateWithNestedStacks, testApp } from '../helpers/cdk.js';

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
type Resource = { Type: string; Properties: Record<string, unknown> };

const SECRETS_KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const ARTIFACTS_KEY = 'arn:aws:kms:eu-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef';
/** A key of secrets kept in another region than the stack's (eu-west-1). */
const CENTRAL_SECRETS_KEY = 'arn:aws:kms:eu-central-1:123456789012:key/abcd1234-ab12-cd34-ef56-abcdef123456';
const NEO4J_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:infrahub-prod/neo4j-AbCdEf';

const example = () => JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));

/** The example with every option of items 4-7 set: keys, a secret by ARN, a posix user. */
function fullConfig(): DeploymentConfig {
  const raw = example();
  const [prod, lab] = raw.targets;
  prod.secretsKmsKeyArns = [SECRETS_KEY];
  prod.neo4j.credentialsSecret = NEO4J_ARN;
  prod.artifacts = {
    type: 's3',
    bucket: 'infrahub-prod-artifacts',
    prefix: 'storage/',
    kmsKeyArn: ARTIFACTS_KEY,
  };
  lab.secretsKmsKeyArns = [CENTRAL_SECRETS_KEY];
  lab.artifacts = { ...lab.artifacts, posixUser: { uid: 0, gid: 0 }, efsRootDirectory: '/infrahub/storage' };
  return parseDeploymentConfig(raw, 'test');
}

const flat = (v: unknown): string => JSON.stringify(v);
const actions = (st: Statement) => [st.Action].flat();

describe('runner IAM (template)', () => {
  let template: Template;
  let resources: Record<string, Resource>;
  let nagFindings: string[];

  beforeAll(() => {
    const app = testApp();
    const { backup } = buildApp(app, fullConfig());
    template = templateWithNestedStacks(backup);
    resources = template.toJSON().Resources as Record<string, Resource>;
    // cdk-nag over the same app (synthesized again with its checks).
    addNagChecks(app);
    try {
      app.synth({ force: true });
    } catch (err) {
      if ((err as Error).name !== 'ValidationFailed') throw err;
    }
    const report = JSON.parse(readFileSync(join(app.outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: Array<{
        violations: Array<{ ruleName: string; violatingConstructs: Array<{ constructPath: string }> }>;
      }>;
    };
    nagFindings = report.pluginReports.flatMap((r) =>
      r.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} ${c.constructPath}`)),
    );
  }, scaled(600_000));

  /** The role whose logical id starts with `prefix`, and its inline statements. */
  const role = (prefix: string) => {
    const entry = Object.entries(resources).find(
      ([id, r]) => r.Type === 'AWS::IAM::Role' && id.includes(prefix),
    );
    if (!entry) throw new Error(`no role ${prefix}`);
    const [id, r] = entry;
    const statements = (
      (r.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>) ?? []
    ).flatMap((p) => p.PolicyDocument.Statement);
    // Anything attached later as a separate AWS::IAM::Policy counts too.
    for (const p of Object.values(resources)) {
      if (p.Type === 'AWS::IAM::Policy' && flat(p.Properties.Roles).includes(`"${id}"`))
        statements.push(...(p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    }
    return { id, props: r.Properties, statements };
  };
  const granting = (statements: Statement[], action: string) =>
    statements.filter((s) => actions(s).includes(action));

  it("passes cdk-nag with every option set (the runner's roles and the state machines' PassRole)", () => {
    // Findings of the runner and of the state machine roles (which pass the runner's roles).
    expect(nagFindings.filter((f) => /\/Runner\/|\/(Backup|Restore)\/.*Role\/DefaultPolicy/.test(f))).toEqual(
      [],
    );
  });

  // Item 4.
  it('grants the customer-managed keys: secrets to the execution role, artifact buckets to the task roles, each through its service only', () => {
    const exec = role('RunnerTargets1ExecutionRole');
    const secretKey = granting(exec.statements, 'kms:Decrypt').find((s) =>
      flat(s.Resource).includes(SECRETS_KEY),
    );
    expect(secretKey?.Condition).toEqual({
      StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' },
    });
    const backupKey = role('BackupRoleinfrahubprod').statements.find((s) =>
      flat(s.Resource).includes(ARTIFACTS_KEY),
    );
    expect(actions(backupKey as Statement)).toEqual(['kms:Decrypt']);
    expect(backupKey?.Condition).toEqual({
      StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' },
    });
    const restoreKey = role('RestoreRoleinfrahubprod').statements.find((s) =>
      flat(s.Resource).includes(ARTIFACTS_KEY),
    );
    expect(actions(restoreKey as Statement).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    // The other target uses no such key: its roles name none.
    expect(flat(role('RestoreRoleinfrahublab').statements)).not.toContain(ARTIFACTS_KEY);
  });

  it("grants the secrets' customer-managed keys to every function that reads a target's secret, through Secrets Manager only", () => {
    // Preflight and the restore plan read the Infrahub API token: GetSecretValue on a secret under a
    // customer-managed key also needs kms:Decrypt on the key.
    for (const fn of ['Preflight', 'RestorePlan']) {
      const { statements } = role(`${fn}ServiceRole`);
      expect(granting(statements, 'secretsmanager:GetSecretValue'), fn).not.toEqual([]);
      const decrypt = granting(statements, 'kms:Decrypt').find((s) => flat(s.Resource).includes(SECRETS_KEY));
      expect(decrypt, fn).toBeDefined();
      expect(actions(decrypt as Statement)).toEqual(['kms:Decrypt']);
      expect(decrypt?.Condition).toEqual({
        StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' },
      });
    }
    // Functions that read no secret get no secrets key.
    for (const fn of ['Manifest', 'Lock', 'Notify'])
      expect(flat(role(`${fn}ServiceRole`).statements), fn).not.toContain(SECRETS_KEY);
  });

  it("scopes each key's kms:ViaService to the key's own region, not the stack's", () => {
    // A secret under a key of eu-central-1 lives in eu-central-1: Secrets Manager there decrypts it.
    const roles = ['RunnerTargets1ExecutionRole', 'PreflightServiceRole', 'RestorePlanServiceRole'];
    for (const name of roles) {
      const statements = granting(role(name).statements, 'kms:Decrypt');
      const central = statements.find((s) => flat(s.Resource).includes(CENTRAL_SECRETS_KEY));
      expect(central?.Condition, name).toEqual({
        StringEquals: { 'kms:ViaService': 'secretsmanager.eu-central-1.amazonaws.com' },
      });
      const west = statements.find((s) => flat(s.Resource).includes(SECRETS_KEY));
      expect(west?.Condition, name).toEqual({
        StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' },
      });
    }
  });

  it('refuses KMS aliases where a key ARN is needed', () => {
    const raw = example();
    raw.targets[0].secretsKmsKeyArns = ['arn:aws:kms:eu-west-1:123456789012:alias/secrets'];
    expect(() => parseDeploymentConfig(raw, 'test')).toThrow(/secretsKmsKeyArns.*must be a KMS key ARN/s);
  });

  // Item 5.
  it('references a secret given by name through its partial ARN (ECS) and name-?????? (IAM), a complete ARN as is', () => {
    const [task] = Object.values(
      template.findResources('AWS::ECS::TaskDefinition', {
        Properties: { Family: 'infrahub-backup-infrahub-prod-runner' },
      }),
    ) as Resource[];
    const secrets =
      (
        (task as Resource).Properties.ContainerDefinitions as Array<{
          Secrets: Array<{ Name: string; ValueFrom: unknown }>;
        }>
      )[0]?.Secrets ?? [];
    const valueFrom = (name: string) => flat(secrets.find((s) => s.Name === name)?.ValueFrom);
    expect(valueFrom('NEO4J_PASSWORD')).toBe(JSON.stringify(`${NEO4J_ARN}:password::`));
    expect(valueFrom('PGPASSWORD')).toContain(':secret:infrahub-prod/prefect-postgres:password::');
    const exec = flat(role('RunnerTargets1ExecutionRole').statements);
    expect(exec).toContain(NEO4J_ARN);
    expect(exec).toContain(':secret:infrahub-prod/prefect-postgres-??????');
  });

  it('refuses a secret name that Secrets Manager would read as a complete ARN, asking for the ARN', () => {
    const raw = example();
    raw.targets[0].postgres.credentialsSecret = 'infrahub-prod/pg-abc123';
    expect(() => parseDeploymentConfig(raw, 'test')).toThrow(
      /credentialsSecret: is a secret name ending in "-" and six characters.*give the secret's complete ARN/s,
    );
    raw.targets[0].postgres.credentialsSecret =
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:infrahub-prod/pg-abc123-XyZ123';
    expect(parseDeploymentConfig(raw, 'test').targets[0]?.postgres.credentialsSecret).toContain('XyZ123');
  });

  // Item 6.
  it('lets a backup read back what it wrote under its own prefix, and restores read artifact versions', () => {
    const reads = granting(role('BackupRoleinfrahubprod').statements, 's3:GetObjectVersion');
    expect(flat(reads)).toMatch(/infrahub-prod\/infrahub_backup_\*/);
    expect(
      granting(role('BackupRoleinfrahubprod').statements, 's3:GetObject').some((s) =>
        flat(s.Resource).includes('infrahub-prod/infrahub_backup_*'),
      ),
    ).toBe(true);
    const restoreArtifacts = granting(role('RestoreRoleinfrahubprod').statements, 's3:PutObject').find((s) =>
      flat(s.Resource).includes('infrahub-prod-artifacts/storage/*'),
    );
    expect(actions(restoreArtifacts as Statement)).toContain('s3:GetObjectVersion');
  });

  // Item 7.
  it('mounts path artifacts through an EFS access point with the configured posix user and directory, root only through it', () => {
    const points = Object.entries(template.findResources('AWS::EFS::AccessPoint')) as Array<
      [string, Resource]
    >;
    expect(points).toHaveLength(1);
    const [pointId, point] = points[0] as [string, Resource];
    expect(point.Properties).toMatchObject({
      FileSystemId: 'fs-0a1b2c3d',
      PosixUser: { Uid: '0', Gid: '0' },
      // Confined to the artifacts' directory (not the whole file system), created for that user if missing.
      RootDirectory: {
        Path: '/infrahub/storage',
        CreationInfo: { OwnerUid: '0', OwnerGid: '0', Permissions: '755' },
      },
    });
    const [lab] = Object.values(
      template.findResources('AWS::ECS::TaskDefinition', {
        Properties: { Family: 'infrahub-backup-infrahub-lab-runner' },
      }),
    ) as Resource[];
    const volume = (
      (lab as Resource).Properties.Volumes as Array<{
        Name: string;
        EFSVolumeConfiguration: Record<string, unknown>;
      }>
    ).find((v) => v.Name === 'artifacts');
    expect(volume?.EFSVolumeConfiguration.AuthorizationConfig).toEqual({
      IAM: 'ENABLED',
      AccessPointId: { 'Fn::GetAtt': [pointId, 'AccessPointId'] },
    });
    // The access point sets the root: ECS refuses a volume root directory beside it.
    expect(volume?.EFSVolumeConfiguration.RootDirectory).toBeUndefined();
    for (const r of ['BackupRoleinfrahublab', 'RestoreRoleinfrahublab']) {
      const root = granting(role(r).statements, 'elasticfilesystem:ClientRootAccess');
      expect(root).toHaveLength(1);
      expect(root[0]?.Condition).toEqual({
        StringEquals: { 'elasticfilesystem:AccessPointArn': { 'Fn::GetAtt': [pointId, 'Arn'] } },
      });
    }
    expect(flat(role('RestoreRoleinfrahubprod').statements)).not.toContain('ClientRootAccess');
  });

  // Item 11.
  it('gives each target its own backup role: writes only under its own prefix, tags only untagged objects, deletes nothing', () => {
    for (const [mine, other] of [
      ['infrahubprod', 'infrahub-lab'],
      ['infrahublab', 'infrahub-prod'],
    ]) {
      const { statements } = role(`BackupRole${mine}`);
      const writes = granting(statements, 's3:PutObject').filter((s) => s.Effect === 'Allow');
      expect(writes).toHaveLength(1);
      expect(flat(writes[0]?.Resource)).toContain(
        `/${mine === 'infrahubprod' ? 'infrahub-prod' : 'infrahub-lab'}/infrahub_backup_*`,
      );
      // The Allow's wildcard covers <target>/infrahub_backup_<id>/backup_information.json: the
      // manifest (the manifest function's alone) is denied explicitly, writes and tags alike.
      const denied = statements.filter((s) => s.Effect === 'Deny');
      const manifestDeny = denied.find((s) =>
        flat(s.Resource).includes('/*/infrahub_backup_*/backup_information.json'),
      );
      expect(manifestDeny).toBeDefined();
      expect(actions(manifestDeny as Statement)).toEqual(
        expect.arrayContaining(['s3:PutObject', 's3:PutObjectTagging']),
      );
      expect(manifestDeny?.Condition).toBeUndefined();
      expect(flat(statements)).not.toContain(`/${other}/`);
      const tagging = granting(statements, 's3:PutObjectTagging').filter((s) => s.Effect === 'Allow');
      expect(tagging).toHaveLength(1);
      expect(tagging[0]?.Condition).toEqual({ Null: { 's3:ExistingObjectTag/retention': 'true' } });
      for (const forbidden of [
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        's3:PutObjectVersionTagging',
        's3:PutObjectRetention',
        's3:BypassGovernanceRetention',
      ])
        expect(granting(statements, forbidden).filter((s) => s.Effect === 'Allow')).toEqual([]);
    }
    const [prod] = Object.values(
      template.findResources('AWS::ECS::TaskDefinition', {
        Properties: { Family: 'infrahub-backup-infrahub-prod-runner' },
      }),
    ) as Resource[];
    expect(prod?.Properties.TaskRoleArn).toEqual({
      'Fn::GetAtt': [role('BackupRoleinfrahubprod').id, 'Arn'],
    });
  });

  it("gives each target its own restore role, reading only its target's backups, chosen per target at run time", () => {
    const { statements, props } = role('RestoreRoleinfrahubprod');
    expect(flat(granting(statements, 's3:GetObject'))).not.toContain('infrahub-lab');
    // Its step reports go under .restores/<target>/<restore id>/ (core/backup/layout.ts restorePrefix):
    // it writes under its own target's only, not another target's reports.
    const reports = granting(statements, 's3:PutObject').filter((s) =>
      flat(s.Resource).includes('.restores'),
    );
    expect(reports).toHaveLength(1);
    expect(flat(reports[0]?.Resource)).toContain('/.restores/infrahub-prod/*');
    expect(flat(statements)).not.toContain('/.restores/*');
    expect(flat(statements)).not.toContain('fs-0a1b2c3d');
    expect(props.RoleName).toMatch(/^infrahub-prod-restore-[0-9a-f]{8}$/);
    expect(props.Path).toBe('/infrahub-backup/');
    const [restoreMachine] = Object.values(
      template.findResources('AWS::StepFunctions::StateMachine', {
        Properties: { StateMachineName: 'infrahub-backup-restore' },
      }),
    ) as Resource[];
    const definition = flat(restoreMachine?.Properties.DefinitionString);
    const suffix = String(props.RoleName).slice(-8);
    expect(definition).toMatch(/TaskRoleArn\.\$\\+":\\+"States\.Format\('arn:/);
    expect(definition).toContain(`:role/infrahub-backup/{}-restore-${suffix}', $.plan.target)`);
  });

  it('runs drills under their own role: reads backups, writes .restores/ only, no artifact storage, no EFS', () => {
    const { id, statements } = role('DrillTaskRole');
    const writes = granting(statements, 's3:PutObject');
    expect(flat(writes.map((s) => s.Resource))).toContain('/.restores/*');
    expect(writes).toHaveLength(1);
    expect(flat(statements)).not.toMatch(/artifacts|elasticfilesystem/);
    for (const t of Object.values(template.findResources('AWS::ECS::TaskDefinition')) as Resource[]) {
      if (String(t.Properties.Family).includes('-drill-'))
        expect(t.Properties.TaskRoleArn).toEqual({ 'Fn::GetAtt': [id, 'Arn'] });
    }
  });

  it('lets each state machine pass only its own kind of task role', () => {
    const passRoles = (machine: string) =>
      Object.values(resources)
        .filter((p) => p.Type === 'AWS::IAM::Policy' && flat(p.Properties.Roles).includes(machine))
        .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
        .filter((s) => actions(s).includes('iam:PassRole'))
        .map((s) => flat(s.Resource));
    const byName = (name: string) =>
      Object.entries(resources).find(
        ([, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && r.Properties.StateMachineName === name,
      )?.[1].Properties.RoleArn as { 'Fn::GetAtt': [string] };
    const backupPass = passRoles(byName('infrahub-backup-backup')['Fn::GetAtt'][0]).join();
    expect(backupPass).toMatch(/role\/infrahub-backup\/\*-backup-[0-9a-f]{8}/);
    expect(backupPass).not.toContain('-restore-');
    const restorePass = passRoles(byName('infrahub-backup-restore')['Fn::GetAtt'][0]).join();
    expect(restorePass).toMatch(/role\/infrahub-backup\/\*-restore-[0-9a-f]{8}/);
    expect(restorePass).not.toContain('-backup-');
  });
});
