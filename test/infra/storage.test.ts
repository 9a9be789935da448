import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { buildApp } from '../../infra/app.js';
import { templateWithNestedStacks, testApp } from '../helpers/cdk.js';

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

const example = () => loadDeploymentConfigFile('config/example.json');
const withChanges = (edit: (c: Record<string, unknown>) => void): DeploymentConfig => {
  const raw = JSON.parse(JSON.stringify(example())) as Record<string, unknown>;
  edit(raw);
  return parseDeploymentConfig(raw, 'test');
};

function synth(config: DeploymentConfig) {
  const app = testApp();
  const stacks = buildApp(app, config);
  return {
    backup: templateWithNestedStacks(stacks.backup),
    replica: stacks.replica ? Template.fromStack(stacks.replica) : undefined,
    stacks,
  };
}

/**
 * Every IAM statement of a template, with the logical id of the policy it is in: managed policies
 * (AWS::IAM::Policy) and the inline policies of roles (the runner's task roles), named by the role.
 */
function statements(template: Template): Array<Statement & { policy: string }> {
  const withPolicy = (policy: string, doc: unknown) =>
    ((doc as { Statement?: Statement[] }).Statement ?? []).map((st) => ({ ...st, policy }));
  const managed = Object.entries(template.findResources('AWS::IAM::Policy') as Resources).flatMap(
    ([policy, p]) => withPolicy(policy, p.Properties.PolicyDocument),
  );
  const inline = Object.entries(template.findResources('AWS::IAM::Role') as Resources).flatMap(([role, r]) =>
    ((r.Properties.Policies as Array<{ PolicyDocument: unknown }> | undefined) ?? []).flatMap((p) =>
      withPolicy(role, p.PolicyDocument),
    ),
  );
  return [...managed, ...inline];
}
const actions = (st: Statement) => [st.Action].flat();

describe('backup storage (template)', () => {
  let backup: Template;
  let replica: Template;

  beforeAll(() => {
    const built = synth(example());
    backup = built.backup;
    replica = built.replica as Template;
  });

  // Versioning, encryption, Block Public Access, access logs, the TLS-only policy and the
  // noncurrent and multipart rules of the bucket are asserted in app.test.ts.

  it('expires each retention class after its count, and incomplete backups', () => {
    const [bucket] = Object.values(
      backup.findResources('AWS::S3::Bucket', {
        Properties: { ReplicationConfiguration: Match.anyValue() },
      }) as Resources,
    );
    const lifecycle = bucket?.Properties.LifecycleConfiguration as
      | { Rules: Array<Record<string, unknown>> }
      | undefined;
    const rules = lifecycle?.Rules ?? [];
    expect(rules.length).toBeGreaterThan(0);
    const byId = Object.fromEntries(rules.map((r) => [r.Id, r]));
    // config/example.json: 7 daily, 4 weekly, 12 monthly, no yearly.
    expect(byId['expire-daily-backups']).toMatchObject({
      ExpirationInDays: 7,
      TagFilters: [{ Key: 'retention', Value: 'daily' }],
    });
    expect(byId['expire-weekly-backups']).toMatchObject({ ExpirationInDays: 28 });
    expect(byId['expire-monthly-backups']).toMatchObject({ ExpirationInDays: 372 });
    expect(byId['expire-yearly-backups']).toBeUndefined();
    expect(byId['expire-incomplete-backups']).toMatchObject({
      ExpirationInDays: 7,
      TagFilters: [{ Key: 'retention', Value: 'pending' }],
    });
  });

  it('has no rule for the tag "newest" (the newest backup of a target never expires) and, without coldStorage, no transition', () => {
    for (const template of [backup, replica]) {
      const buckets = Object.values(template.findResources('AWS::S3::Bucket') as Resources);
      const rules = buckets.flatMap(
        (b) =>
          (b.Properties.LifecycleConfiguration as { Rules?: Array<Record<string, unknown>> } | undefined)
            ?.Rules ?? [],
      );
      expect(rules.length).toBeGreaterThan(0);
      const tagValues = rules.flatMap((r) =>
        ((r.TagFilters ?? []) as Array<{ Value: string }>).map((t) => t.Value),
      );
      expect(tagValues).toContain('daily');
      expect(tagValues).not.toContain('newest');
      expect(JSON.stringify(rules)).not.toContain('Transition');
    }
  });

  it("moves the coldStorage classes' files (retention=<class> and backup-part=file) to the storage class after afterDays, in both buckets", () => {
    const built = synth(
      withChanges((c) => {
        (c.retention as Record<string, unknown>).coldStorage = {
          classes: ['monthly'],
          afterDays: 30,
          storageClass: 'GLACIER',
        };
      }),
    );
    for (const template of [built.backup, built.replica as Template]) {
      const [bucket] = Object.values(
        template.findResources('AWS::S3::Bucket', {
          Properties: { LifecycleConfiguration: Match.anyValue(), VersioningConfiguration: Match.anyValue() },
        }) as Resources,
      ).filter((b) => JSON.stringify(b.Properties.LifecycleConfiguration).includes('expire-daily-backups'));
      const config = bucket?.Properties.LifecycleConfiguration as {
        Rules: Array<Record<string, unknown>>;
        TransitionDefaultMinimumObjectSize?: string;
      };
      // Objects under 128 KB never move: said, not left to S3's default.
      expect(config.TransitionDefaultMinimumObjectSize).toBe('all_storage_classes_128K');
      const byId = Object.fromEntries(config.Rules.map((r) => [r.Id, r]));
      expect(byId['move-monthly-backups-to-glacier']).toEqual({
        Id: 'move-monthly-backups-to-glacier',
        Status: 'Enabled',
        TagFilters: [
          { Key: 'retention', Value: 'monthly' },
          { Key: 'backup-part', Value: 'file' },
        ],
        Transitions: [{ StorageClass: 'GLACIER', TransitionInDays: 30 }],
      });
      // The expiry rules are unchanged; only monthly moves.
      expect(byId['expire-monthly-backups']).toMatchObject({ ExpirationInDays: 372 });
      expect(byId['expire-monthly-backups']?.Transitions).toBeUndefined();
      expect(config.Rules.filter((r) => r.Transitions)).toHaveLength(1);
    }
  });

  it('replicates to the replica stack in the other region, re-encrypted with its key, without delete markers', () => {
    backup.hasResourceProperties('AWS::S3::Bucket', {
      ReplicationConfiguration: {
        Rules: [
          Match.objectLike({
            Status: 'Enabled',
            DeleteMarkerReplication: { Status: 'Disabled' },
            SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
            Destination: Match.objectLike({
              Bucket: {
                'Fn::Join': [
                  '',
                  ['arn:aws:s3:::infrahub-backup-replica-', { Ref: 'AWS::AccountId' }, '-eu-central-1'],
                ],
              },
              EncryptionConfiguration: { ReplicaKmsKeyID: Match.anyValue() },
            }),
          }),
        ],
      },
    });
    // No Replication Time Control unless configured.
    const rule = JSON.stringify(backup.findResources('AWS::S3::Bucket'));
    expect(rule).not.toContain('ReplicationTime');
    // The replica: its own rotated key and a versioned, encrypted bucket with the same retention rules.
    replica.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    replica.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/infrahub-backup/backups-replica' });
    replica.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: {
        'Fn::Join': ['', ['infrahub-backup-replica-', { Ref: 'AWS::AccountId' }, '-eu-central-1']],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-daily-backups', ExpirationInDays: 7 })]),
      },
    });
  });

  it('gives the replication role only what replication needs, and never a delete', () => {
    const replication = statements(backup).filter((st) => st.policy.startsWith('StorageReplicationRole'));
    expect(replication.flatMap(actions).sort()).toEqual([
      'kms:Decrypt',
      'kms:Encrypt',
      'kms:GenerateDataKey',
      's3:GetObjectVersionAcl',
      's3:GetObjectVersionForReplication',
      's3:GetObjectVersionTagging',
      's3:GetReplicationConfiguration',
      's3:ListBucket',
      's3:ReplicateObject',
      's3:ReplicateTags',
    ]);
    const encrypt = replication.find((st) => actions(st).includes('kms:Encrypt'));
    expect(encrypt?.Condition).toMatchObject({
      'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/infrahub-backup/backups-replica' },
    });
  });

  it('adds Replication Time Control when configured', () => {
    const { backup: rtc } = synth(
      withChanges((c) => {
        (c.replication as Record<string, unknown>).replicationTimeControl = true;
      }),
    );
    rtc.hasResourceProperties('AWS::S3::Bucket', {
      ReplicationConfiguration: {
        Rules: [
          Match.objectLike({
            Destination: Match.objectLike({
              ReplicationTime: { Status: 'Enabled', Time: { Minutes: 15 } },
              Metrics: { Status: 'Enabled', EventThreshold: { Minutes: 15 } },
            }),
          }),
        ],
      },
    });
  });

  it('locks new object versions by default when Object Lock is configured, on both buckets', () => {
    const { backup: locked, replica: lockedReplica } = synth(
      withChanges((c) => {
        c.objectLock = { mode: 'COMPLIANCE', days: 7 };
      }),
    );
    for (const t of [locked, lockedReplica as Template]) {
      t.hasResourceProperties('AWS::S3::Bucket', {
        ObjectLockEnabled: true,
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 7 } },
        },
      });
    }
    expect(JSON.stringify(backup.findResources('AWS::S3::Bucket'))).not.toContain('ObjectLockConfiguration');
  });

  it('deploys no replica stack without replication', () => {
    const { stacks } = synth(
      withChanges((c) => {
        delete c.replication;
      }),
    );
    expect(stacks.replica).toBeUndefined();
  });
});

describe('least privilege (template)', () => {
  let template: Template;
  let all: Array<Statement & { policy: string }>;

  beforeAll(() => {
    template = synth(example()).backup;
    all = statements(template);
  });

  it('grants no wildcard action on data', () => {
    for (const st of all) {
      for (const action of actions(st)) {
        expect(action, st.policy).not.toBe('*');
        expect(action, st.policy).not.toMatch(/^(s3|kms|secretsmanager|dynamodb):\*$/);
        expect(action, st.policy).not.toMatch(/^s3:(Get|Put|Delete)\*$/);
      }
    }
  });

  /** The targets of config/example.json, and the one whose artifacts (and Community store) are on EFS. */
  const targets = ['infrahub-prod', 'infrahub-lab'];

  /** The statements of a target's backup or restore role, found by its fixed name `<target>-<kind>-<suffix>`. */
  const roleStatements = (target: string, kind: 'backup' | 'restore') => {
    const ids = Object.entries(template.findResources('AWS::IAM::Role') as Resources)
      .filter(([, r]) => String(r.Properties.RoleName ?? '').startsWith(`${target}-${kind}-`))
      .map(([id]) => id);
    expect(ids, `${kind} role of ${target}`).toHaveLength(1);
    return all.filter((st) => st.policy === ids[0]);
  };

  it('lets the runner write only under backup prefixes, and never delete', () => {
    for (const target of targets) {
      const all = roleStatements(target, 'backup');
      // The explicit Deny (its backups' manifests, backup_information.json) is runner-iam.test.ts's.
      const runner = all.filter((st) => st.Effect !== 'Deny');
      expect(all.filter((st) => st.Effect === 'Deny').flatMap(actions), target).not.toContain('s3:GetObject');
      const s3 = runner.filter((st) => actions(st).some((a) => a.startsWith('s3:')));
      // Its writes (objects, their retention tag) go under its own target's backup prefix only.
      const writes = s3.filter((st) => actions(st).some((a) => /^s3:Put/.test(a)));
      expect(writes.length, target).toBeGreaterThan(0);
      for (const st of writes)
        expect(JSON.stringify(st.Resource), target).toContain(`/${target}/infrahub_backup_*`);
      expect(
        runner.flatMap(actions).filter((a) => /Delete/.test(a)),
        target,
      ).toEqual([]);
      // It reads back only what it wrote (its own prefix: a multipart copy is hashed) and the
      // configured artifact storage (to copy it), never another target's backups.
      const reads = s3.filter((st) => actions(st).includes('s3:GetObject'));
      const expected = [
        expect.stringContaining(`/${target}/infrahub_backup_*`),
        // infrahub-prod keeps its artifacts in S3; infrahub-lab on EFS (mounted, not read over S3).
        ...(target === 'infrahub-prod' ? [expect.stringContaining('infrahub-prod-artifacts/*')] : []),
      ];
      const readResources = reads.map((st) => JSON.stringify(st.Resource));
      expect(readResources, target).toHaveLength(expected.length);
      expect(readResources, target).toEqual(expect.arrayContaining(expected));
      expect(JSON.stringify(runner), target).not.toContain('/*/infrahub_backup_*');
    }
  });

  it('restores under a separate role that reads backups and cannot write or delete them', () => {
    for (const target of targets) {
      const restore = roleStatements(target, 'restore');
      expect(restore.length, target).toBeGreaterThan(0);
      // An Enterprise target's restore stages the chain its servers seed from under its own
      // .restore-seeds/<target>/ (written, read back, removed by version); nothing else is written
      // or deleted there, and a Community target has no such statement.
      const seeds = restore.filter((st) => JSON.stringify(st.Resource).includes('/.restore-seeds/'));
      expect(
        seeds.map((st) => JSON.stringify(st.Resource)),
        target,
      ).toEqual(target === 'infrahub-prod' ? [expect.stringContaining(`/.restore-seeds/${target}/*`)] : []);
      const onBackups = restore.filter(
        (st) => JSON.stringify(st.Resource).includes('Storage') && !seeds.includes(st),
      );
      // Reads on its own target's backups only; its only write is its step reports under
      // .restores/<target>/ (encrypted: a data key).
      const writes = onBackups.filter((st) => actions(st).some((a) => /^s3:(Put|Delete)/.test(a)));
      expect(writes.flatMap(actions), target).toEqual(['s3:PutObject']);
      expect(
        writes.map((st) => JSON.stringify(st.Resource)),
        target,
      ).toEqual([expect.stringContaining(`/.restores/${target}/*`)]);
      const reads = onBackups.filter((st) => actions(st).includes('s3:GetObject'));
      expect(
        reads.map((st) => JSON.stringify(st.Resource)),
        target,
      ).toEqual([expect.stringContaining(`/${target}/infrahub_backup_*`)]);
      expect(onBackups.flatMap(actions).sort(), target).toEqual([
        'kms:Decrypt',
        'kms:GenerateDataKey',
        's3:GetObject',
        's3:GetObjectVersion',
        's3:ListBucket',
        's3:PutObject',
      ]);
      expect(
        restore
          .filter((st) => !seeds.includes(st))
          .flatMap(actions)
          .filter((a) => /Delete/.test(a)),
        target,
      ).toEqual([]);
    }
  });

  it('lets backups write only a Community store on EFS, restores also the artifact storage', () => {
    const writes = (target: string, kind: 'backup' | 'restore') =>
      roleStatements(target, kind)
        .filter((st) => actions(st).includes('elasticfilesystem:ClientWrite'))
        .flatMap((st) => [st.Resource].flat().map((r) => JSON.stringify(r)));
    // infrahub-lab: a Community store and path artifacts, each on its own file system.
    const store = 'fs-0b1c2d3e';
    const artifacts = 'fs-0a1b2c3d';
    expect(writes('infrahub-lab', 'backup').join()).toContain(store);
    expect(writes('infrahub-lab', 'backup').join()).not.toContain(artifacts);
    expect(writes('infrahub-lab', 'restore').join()).toContain(artifacts);
    // Neither is writable by the other target's roles, nor by drills.
    for (const kind of ['backup', 'restore'] as const) expect(writes('infrahub-prod', kind)).toEqual([]);
    const drill = all.filter(
      (st) =>
        st.policy.startsWith('RunnerDrillTaskRole') &&
        actions(st).some((a) => a.startsWith('elasticfilesystem:')),
    );
    expect(drill).toEqual([]);
  });

  it('grants the backup key only to the roles that need it', () => {
    const kmsUsers = [
      ...new Set(
        all
          .filter((st) => actions(st).some((a) => a.startsWith('kms:')))
          .map((st) => st.policy.replace(/[0-9A-F]{8}$/, '')),
      ),
    ].sort();
    expect(kmsUsers).toEqual([
      // The backup state machine's Distributed Map writes its results (ResultWriter) with the key.
      'BackupRoleDefaultPolicy',
      'FunctionsFreshnessServiceRoleDefaultPolicy',
      'FunctionsLockServiceRoleDefaultPolicy',
      'FunctionsManifestServiceRoleDefaultPolicy',
      'FunctionsNotifyServiceRoleDefaultPolicy',
      // Report reads those results.
      'FunctionsReportServiceRoleDefaultPolicy',
      'FunctionsRestorePlanServiceRoleDefaultPolicy',
      'FunctionsRestoreReportServiceRoleDefaultPolicy',
      // The drill state machine's fleet Map writes its results (ResultWriter) with the key.
      'RestoreDrillRoleDefaultPolicy',
      'RunnerDrillTaskRole',
      // One backup and one restore role per target (config/example.json), in the runner's nested stack.
      'RunnerTargets1BackupRoleinfrahublab',
      'RunnerTargets1BackupRoleinfrahubprod',
      'RunnerTargets1RestoreRoleinfrahublab',
      'RunnerTargets1RestoreRoleinfrahubprod',
      'StorageReplicationRoleDefaultPolicy',
    ]);
  });
});

describe('alarms and dashboard (template)', () => {
  let template: Template;

  beforeAll(() => {
    template = synth(example()).backup;
  });

  it('alarms on failed backups, failed executions (backup and drill), silence and failed restore drills, to the notice topic', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Resources).map(
      (a) => a.Properties,
    );
    expect(alarms.map((a) => a.AlarmName).sort()).toEqual([
      'infrahub-backup-BackupExecutionFailed',
      'infrahub-backup-BackupFailed',
      'infrahub-backup-DrillExecutionFailed',
      'infrahub-backup-NoRecentBackup',
      'infrahub-backup-RestoreDrillFailed',
    ]);
    for (const a of alarms) {
      expect(a.AlarmActions, String(a.AlarmName)).toEqual([{ Ref: expect.stringMatching(/^Notifications/) }]);
      expect(String(a.AlarmDescription)).toMatch(/Runbook: docs\/runbook\.md#/);
    }
    const silence = alarms.find((a) => a.AlarmName === 'infrahub-backup-NoRecentBackup');
    expect(silence).toMatchObject({
      MetricName: 'TargetsWithoutRecentBackup',
      Namespace: 'InfrahubBackup',
      TreatMissingData: 'breaching',
      Threshold: 1,
    });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)' });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('lets CloudWatch use the topic key, so alarm notices reach the encrypted topic', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
  });

  it('has a runbook section for every alarm', async () => {
    const { readFileSync } = await import('node:fs');
    const runbook = readFileSync('docs/runbook.md', 'utf8');
    for (const name of ['BackupFailed', 'BackupExecutionFailed', 'NoRecentBackup', 'RestoreDrillFailed']) {
      expect(runbook, name).toMatch(new RegExp(`^## ${name}$`, 'm'));
    }
  });
});
