/**
 * Issue 13, items 2, 4 (SNS), 8, 12 and 13: who may publish to the encrypted notice topic and use its
 * key, the notices' own key, the backup key's deletion guard, encrypted execution logs, the ECS retry
 * list and the retry of tasks that failed to start, the noncurrent-version and per-target-metric
 * options. One synthesized app for the whole file.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { allStates } from '../../cli/local/state-machine.js';
import { type AslDefinition, type CfnTemplate, resolveTokens } from '../../cli/local/synth.js';
import { targetWork } from '../../core/backup/plan.js';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { DeploymentConfigSchema } from '../../core/config/schema.js';
import { RunnerTimeoutsSchema, stepTimeouts } from '../../core/config/timeouts.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { templateWithNestedStacks, testApp } from '../helpers/cdk.js';

type Statement = {
  Sid?: string;
  Effect: string;
  Principal?: { Service?: unknown; AWS?: unknown };
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
};
type Resource = { Type: string; Properties: Record<string, unknown> };
type State = Record<string, unknown> & {
  Type: string;
  Next?: string;
  End?: boolean;
  Default?: string;
  Choices?: Array<Record<string, unknown> & { Next: string }>;
  Retry?: Array<{ ErrorEquals: string[] }>;
  Catch?: Array<{ ErrorEquals: string[]; Next: string; ResultPath?: string }>;
};

const TOPIC_KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const EXTRA_TOPIC = 'arn:aws:sns:eu-west-1:123456789012:chatops';

describe('notices, keys, retries and cost options (template)', () => {
  let config: DeploymentConfig;
  let template: Template;
  let json: CfnTemplate;
  let resources: Array<[string, Resource]>;
  let stackTemplates: Array<[string, CfnTemplate]>;
  const ofType = (type: string) => resources.filter(([, r]) => r.Type === type);
  const machine = (suffix: string): Map<string, State> => {
    const found = ofType('AWS::StepFunctions::StateMachine').find(
      ([, r]) => r.Properties.StateMachineName === `${config.name}-${suffix}`,
    );
    const definition = JSON.parse(
      String(resolveTokens(found?.[1].Properties.DefinitionString, json, config)),
    ) as AslDefinition;
    return new Map(allStates(definition) as Array<[string, State]>);
  };
  const keyPolicy = (logicalIdPrefix: string): Statement[] => {
    const found = ofType('AWS::KMS::Key').find(([id]) => id.startsWith(logicalIdPrefix));
    expect(found, logicalIdPrefix).toBeDefined();
    return (found?.[1].Properties.KeyPolicy as { Statement: Statement[] } | undefined)?.Statement ?? [];
  };
  const topicLogicalId = () => ofType('AWS::SNS::Topic').map(([id]) => id)[0] as string;

  beforeAll(() => {
    const raw = JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json'))) as Record<
      string,
      Record<string, unknown>
    >;
    raw.notifications = { ...raw.notifications, topicArns: [EXTRA_TOPIC], topicKeyArns: [TOPIC_KEY] };
    raw.monitoring = { perTargetMetrics: false };
    config = parseDeploymentConfig(raw, 'test');
    const app = testApp();
    const built = buildApp(app, config);
    template = templateWithNestedStacks(built.backup);
    stackTemplates = [
      ['backup', template.toJSON() as CfnTemplate],
      ...(built.replica
        ? [['replica', Template.fromStack(built.replica).toJSON() as CfnTemplate] as [string, CfnTemplate]]
        : []),
    ];
    json = template.toJSON() as CfnTemplate;
    resources = Object.entries(json.Resources) as Array<[string, Resource]>;
  }, scaled(180_000));

  it('lets CloudWatch alarms of this stack and EventBridge rules of this account publish to the TLS-only topic', () => {
    const [policy] = ofType('AWS::SNS::TopicPolicy');
    const statements =
      (policy?.[1].Properties.PolicyDocument as { Statement: Statement[] } | undefined)?.Statement ?? [];
    // The TLS-only deny is still there.
    expect(
      statements.some((s) => s.Effect === 'Deny' && JSON.stringify(s.Condition).includes('SecureTransport')),
    ).toBe(true);
    const cloudwatch = statements.find(
      (s) => JSON.stringify(s.Principal) === '{"Service":"cloudwatch.amazonaws.com"}',
    );
    expect(cloudwatch).toMatchObject({ Effect: 'Allow', Action: 'sns:Publish' });
    expect(cloudwatch?.Condition?.StringEquals?.['aws:SourceAccount']).toEqual({ Ref: 'AWS::AccountId' });
    expect(JSON.stringify(cloudwatch?.Condition?.ArnLike?.['aws:SourceArn'])).toContain(
      `:alarm:${config.name}-*`,
    );
    const events = statements.find(
      (s) => JSON.stringify(s.Principal) === '{"Service":"events.amazonaws.com"}',
    );
    expect(events).toMatchObject({ Effect: 'Allow', Action: 'sns:Publish' });
    expect(events?.Condition?.StringEquals?.['aws:SourceAccount']).toEqual({ Ref: 'AWS::AccountId' });
    expect(JSON.stringify(events?.Condition?.ArnLike?.['aws:SourceArn'])).toContain(':rule/*');
    // No service may publish unconditionally.
    for (const s of statements.filter((st) => st.Effect === 'Allow' && st.Principal?.Service))
      expect(s.Condition, JSON.stringify(s)).toBeDefined();
  });

  it('encrypts notices with their own key, which CloudWatch and EventBridge may use; the backup key is not theirs', () => {
    const topic = ofType('AWS::SNS::Topic')[0]?.[1];
    expect(topic?.Properties.KmsMasterKeyId).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/^NoticesKey/), 'Arn'],
    });
    template.hasResourceProperties('AWS::KMS::Alias', { AliasName: `alias/${config.name}/notices` });
    const notices = keyPolicy('NoticesKey');
    for (const service of ['cloudwatch.amazonaws.com', 'events.amazonaws.com']) {
      const st = notices.find((s) => JSON.stringify(s.Principal) === JSON.stringify({ Service: service }));
      expect(st?.Action, service).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
    }
    // The backup key grants no AWS service anything for notices any more.
    const backup = keyPolicy('StorageKey');
    expect(backup.filter((s) => s.Principal?.Service)).toEqual([]);
  });

  it('grants the notice functions the notices key and the extra topics’ customer keys', () => {
    const policies = ofType('AWS::IAM::Policy').filter(([id]) => /^Functions(Notify|RestoreReport)/.test(id));
    expect(policies).toHaveLength(2);
    for (const [id, p] of policies) {
      const sts = (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
      const kms = sts.find((s) => JSON.stringify(s.Resource).includes(TOPIC_KEY));
      expect(kms, id).toMatchObject({ Action: ['kms:Decrypt', 'kms:GenerateDataKey'] });
      expect(JSON.stringify(kms?.Resource)).toMatch(/NoticesKey/);
      const publish = sts.find((s) => [s.Action].flat().includes('sns:Publish'));
      expect(JSON.stringify(publish?.Resource)).toContain(EXTRA_TOPIC);
    }
    // A key ARN that is not one is refused by the configuration.
    const raw = JSON.parse(JSON.stringify(config)) as { notifications: { topicKeyArns: string[] } };
    raw.notifications.topicKeyArns = ['alias/chatops'];
    expect(DeploymentConfigSchema.safeParse(raw).success).toBe(false);
    // Nor one whose key id is no key id: the same key ARN rule as secretsKmsKeyArns and kmsKeyArn.
    for (const bad of [
      'arn:aws:kms:eu-west-1:123456789012:key/zzz',
      'arn:aws:kms:eu-west-1:123456789012:key/1234',
    ]) {
      raw.notifications.topicKeyArns = [bad];
      expect(DeploymentConfigSchema.safeParse(raw).success, bad).toBe(false);
    }
  });

  it('sends a notice when the backup key is scheduled for deletion or disabled (CloudTrail via EventBridge)', () => {
    const rule = ofType('AWS::Events::Rule').find(([id]) => id.includes('KeyDeletionGuard'))?.[1];
    expect(rule).toBeDefined();
    const pattern = rule?.Properties.EventPattern as {
      source: string[];
      'detail-type': string[];
      detail: { eventName: string[]; eventSource: string[]; $or: unknown[] };
    };
    expect(pattern.source).toEqual(['aws.kms']);
    expect(pattern['detail-type']).toEqual(['AWS API Call via CloudTrail']);
    expect(pattern.detail.eventSource).toEqual(['kms.amazonaws.com']);
    expect(pattern.detail.eventName.sort()).toEqual(['DisableKey', 'ScheduleKeyDeletion']);
    expect(JSON.stringify(pattern.detail.$or)).toMatch(/StorageKey/);
    const targets = rule?.Properties.Targets as Array<{ Arn: unknown; InputTransformer?: unknown }>;
    expect(targets).toHaveLength(1);
    expect(targets[0]?.Arn).toEqual({ Ref: topicLogicalId() });
    expect(JSON.stringify(targets[0]?.InputTransformer)).toContain('cancel-key-deletion');
  });

  it('uses only defined input paths and aws.events built-ins as placeholders in every InputTransformer template', () => {
    // EventBridge refuses a target whose InputTemplate has a <name> that is neither a key of its
    // InputPathsMap nor a predefined aws.events.* variable ("contains invalid placeholder").
    const builtIns = new Set([
      'aws.events.rule-arn',
      'aws.events.rule-name',
      'aws.events.event.ingestion-time',
      'aws.events.event',
      'aws.events.event.json',
    ]);
    let transformers = 0;
    for (const [stack, cfn] of stackTemplates) {
      for (const [id, r] of Object.entries(cfn.Resources) as Array<[string, Resource]>) {
        if (r.Type !== 'AWS::Events::Rule') continue;
        const targets = (r.Properties.Targets ?? []) as Array<{
          InputTransformer?: { InputPathsMap?: Record<string, string>; InputTemplate: unknown };
        }>;
        for (const target of targets) {
          if (!target.InputTransformer) continue;
          transformers += 1;
          const defined = new Set(Object.keys(target.InputTransformer.InputPathsMap ?? {}));
          // The template may be a string or an Fn::Join of strings and tokens: its text is what counts.
          const text = JSON.stringify(target.InputTransformer.InputTemplate);
          const placeholders = [...text.matchAll(/<([^<>]*)>/g)].map((m) => m[1] as string);
          expect(placeholders.length, `${stack}/${id}`).toBeGreaterThan(0);
          const invalid = placeholders.filter((name) => !defined.has(name) && !builtIns.has(name));
          expect(invalid, `${stack}/${id}: placeholders that are not input paths`).toEqual([]);
        }
      }
    }
    expect(transformers).toBeGreaterThan(0);
  });

  it('encrypts every state machine log group with a key the regional Logs service may use for log groups only', () => {
    const groups = ofType('AWS::Logs::LogGroup').filter(([, r]) =>
      String(r.Properties.LogGroupName ?? '').startsWith('/aws/vendedlogs/states/'),
    );
    expect(groups).toHaveLength(3);
    for (const [id, g] of groups)
      expect(g.Properties.KmsKeyId, id).toEqual({
        'Fn::GetAtt': [expect.stringMatching(/^StateMachineLogsKey/), 'Arn'],
      });
    const logs = keyPolicy('StateMachineLogsKey').find((s) =>
      String(JSON.stringify(s.Principal?.Service)).includes('logs.'),
    );
    expect(JSON.stringify(logs?.Principal)).toContain('logs.eu-west-1.amazonaws.com');
    expect(JSON.stringify(logs?.Condition?.ArnLike?.['kms:EncryptionContext:aws:logs:arn'])).toContain(
      ':log-group:*',
    );
    // Retained with the log groups, yet removed when a failed first deploy rolls back.
    const key = ofType('AWS::KMS::Key').find(([id]) =>
      id.startsWith('StateMachineLogsKey'),
    )?.[1] as unknown as {
      DeletionPolicy: string;
      UpdateReplacePolicy: string;
    };
    expect(key.DeletionPolicy).toBe('RetainExceptOnCreate');
  });

  it('runs every runner task with waitForTaskToken: per-step bounds, ECS start errors, a silent task and transient runner errors retried by name, none of them for a database restore', () => {
    for (const kind of ['backup', 'restore', 'restore-drill']) {
      const ecs = [...machine(kind)].filter(([, s]) => String(s.Resource).includes(':states:::ecs:runTask'));
      expect(ecs.length, kind).toBeGreaterThan(0);
      for (const [name, s] of ecs) {
        const state = s as State & { TimeoutSecondsPath?: string; HeartbeatSecondsPath?: string };
        expect(String(s.Resource), `${kind} ${name}`).toMatch(/:states:::ecs:runTask\.waitForTaskToken$/);
        // Each step's own bounds from the work item (backup) or the plan (restore, drill).
        expect(state.TimeoutSecondsPath, `${kind} ${name}`).toMatch(
          /^\$(\.plan)?\.timeouts\.[a-zA-Z0-9]+\.timeoutSeconds$/,
        );
        expect(state.HeartbeatSecondsPath, `${kind} ${name}`).toMatch(
          /^\$(\.plan)?\.timeouts\.[a-zA-Z0-9]+\.heartbeatSeconds$/,
        );
        const retried = s.Retry?.flatMap((r) => r.ErrorEquals) ?? [];
        for (const error of [
          'ECS.AmazonECSException',
          'AmazonECS.Unknown',
          'ECS.ServerException',
          'ECS.ThrottlingException',
        ])
          expect(retried, `${kind} ${name}`).toContain(error);
        // Permanent runner errors are never retried.
        for (const error of [
          'ToolFailed',
          'RunnerConfigError',
          'IncompatibleBackup',
          'UnexpectedError',
          'Interrupted',
        ])
          expect(retried, `${kind} ${name}`).not.toContain(error);
        // A database restore (a load that may have run part-way) is never started again by the
        // machine: not on the runner's transient errors, not on a heartbeat timeout (docs/runbook.md).
        // Every other step is, on both: its runner stops itself once its heartbeats go unaccepted
        // (HeartbeatNotAccepted, task-token.ts), so a retry never runs beside it.
        const restoresDatabase = ['RestoreNeo4j', 'RestoreNeo4jOnline', 'RestorePostgres'].includes(name);
        for (const error of [
          'StorageError',
          'DatabaseUnreachable',
          'Stalled',
          'HeartbeatNotAccepted',
          'States.HeartbeatTimeout',
        ])
          expect(retried.includes(error), `${kind} ${name} ${error}`).toBe(!restoresDatabase);
        if (restoresDatabase)
          expect(
            s.Retry?.map((r) => r.ErrorEquals),
            `${kind} ${name}`,
          ).toHaveLength(1);
        // The heartbeat timeout's retry, where there is one: twice, as the runner's named errors.
        const heartbeat = s.Retry?.find((r) => r.ErrorEquals.includes('States.HeartbeatTimeout'));
        if (heartbeat) expect(heartbeat, `${kind} ${name}`).toMatchObject({ MaxAttempts: 2 });
        // The former start-failure Choice is gone: every failure goes to the state's own catcher
        // (its last; before it only a Community restore's Neo4jStoreSwap, which leaves the DBMS stopped).
        expect(s.Catch?.at(-1)?.ErrorEquals, `${kind} ${name}`).toEqual(['States.ALL']);
        expect(
          s.Catch?.slice(0, -1).map((c) => c.ErrorEquals),
          `${kind} ${name}`,
        ).toEqual(kind === 'restore' && name === 'RestoreNeo4j' ? [['Neo4jStoreSwap']] : []);
        expect(machine(kind).has(`${name}StartFailed?`)).toBe(false);
      }
    }
  });

  it('gives every step a TimeoutSeconds and HeartbeatSeconds from the target: defaults, configured values, data size', () => {
    const defaults = stepTimeouts(undefined);
    expect(defaults.backupPostgres).toEqual({ timeoutSeconds: 7200, heartbeatSeconds: 600 });
    expect(defaults.countNeo4j.timeoutSeconds).toBe(1800);
    // A restore of a 500 GiB backup at 10 MiB/s: 51,200 s of transfer, capped at the execution's 12
    // hours (a configured dataSizeGiB that large is refused: test/unit/timeouts.test.ts).
    expect(stepTimeouts(undefined, 500 * 1024 ** 3).restoreNeo4j.timeoutSeconds).toBe(43_200);
    // 100 GiB at 20 MiB/s: 5,120 s + 900 s of overhead, above the 2 h default? no: 6,020 < 7,200.
    expect(stepTimeouts({ dataSizeGiB: 100, minMiBPerSecond: 20 }).backupPostgres.timeoutSeconds).toBe(7200);
    expect(stepTimeouts({ dataSizeGiB: 200, minMiBPerSecond: 20 }).backupPostgres.timeoutSeconds).toBe(
      900 + 10_240,
    );
    // A restore's backup size (bytes) wins over the configured size; counts are not raised.
    const restore = stepTimeouts({ dataSizeGiB: 1 }, 300 * 1024 ** 3);
    expect(restore.restorePostgres.timeoutSeconds).toBe(900 + 30_720);
    expect(restore.validateNeo4j.timeoutSeconds).toBe(1800);
    expect(stepTimeouts({ heartbeatSeconds: 900, steps: { drill: 20_000 } }).drill).toEqual({
      timeoutSeconds: 20_000,
      heartbeatSeconds: 900,
    });
    // Refused with the field named.
    const problems = (value: unknown) => {
      const r = RunnerTimeoutsSchema.safeParse(value);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(problems({ heartbeatSeconds: 30 })).toEqual(['heartbeatSeconds: must be at least 300 seconds']);
    expect(problems({ heartbeatSeconds: 299 })).toEqual(['heartbeatSeconds: must be at least 300 seconds']);
    expect(problems({ heartbeatSeconds: 300 })).toEqual([]);
    expect(problems({ steps: { backupPostgres: 100_000 } })[0]).toMatch(
      /^steps\.backupPostgres: must be at most 43200/,
    );
    expect(problems({ heartbeatSeconds: 900, steps: { countNeo4j: 600 } })[0]).toMatch(
      /^steps\.countNeo4j: must be more than heartbeatSeconds \(900\)/,
    );
    expect(problems({ steps: { dumpPostgres: 600 } })[0]).toMatch(/^steps/);
    // The backup work item carries them (TimeoutSecondsPath reads them there).
    const work = targetWork(
      config,
      { backupId: 'b', components: ['database'], force: false, owner: 'o' },
      config.targets[0]?.name as string,
    );
    expect(work.timeouts.backupPostgres.heartbeatSeconds).toBeGreaterThan(0);
  });

  it('lets every runner task role answer its task token, the wildcard acknowledged', () => {
    const roles = Object.values(
      template.findResources('AWS::IAM::Role') as Record<string, { Properties: Record<string, unknown> }>,
    ).filter((r) =>
      JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('ecs-tasks.amazonaws.com'),
    );
    // The execution roles (they pull the image, write the logs, inject secrets) run no code of ours.
    const taskRoles = roles.filter(
      (r) =>
        !JSON.stringify(r.Properties.Description ?? '').match(/execution|Pulls the (runner|drill) image/i),
    );
    expect(taskRoles.length).toBeGreaterThan(0);
    for (const role of taskRoles) {
      const statements = JSON.stringify(role.Properties.Policies ?? []);
      expect(statements, String(role.Properties.Description)).toContain('states:SendTaskHeartbeat');
      expect(statements).toContain('states:SendTaskFailure');
      expect(statements).toContain('states:SendTaskSuccess');
    }
  });

  it('makes noncurrent-version days and per-target metrics deliberate options', () => {
    const minimal = DeploymentConfigSchema.parse({
      region: 'eu-west-1',
      network: config.network,
      targets: JSON.parse(JSON.stringify(config.targets.slice(0, 1))),
      retention: { daily: 7, weekly: 4, monthly: 12 },
    });
    expect(minimal.retention.noncurrentVersionDays).toBe(7);
    expect(minimal.monitoring.perTargetMetrics).toBe(true);
    // The bucket keeps noncurrent versions for the configured days (example: 30).
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            NoncurrentVersionExpiration: { NoncurrentDays: config.retention.noncurrentVersionDays },
          }),
        ]),
      },
    });
    // perTargetMetrics reaches the functions that publish metrics in their bundled configuration
    // (core/config/bundled.ts), like every setting: their environment holds only the names
    // CloudFormation gives at deploy time (the bucket, the topics).
    const functions = ofType('AWS::Lambda::Function').filter(([id]) => id.startsWith('Functions'));
    expect(functions.length).toBe(12);
    for (const [id, fn] of functions) {
      const variables = Object.keys(
        (fn.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {},
      );
      expect(
        variables.filter((v) => v !== 'BACKUP_BUCKET' && v !== 'TOPIC_ARNS'),
        id,
      ).toEqual([]);
    }
  });
});
