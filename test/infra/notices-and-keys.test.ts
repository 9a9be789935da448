/**
 * Issue 13, items 2, 4 (SNS), 8, 12 and 13: who may publish to the encrypted notice topic and use its
 * key, the notices' own key, the backup key's deletion guard, encrypted execution logs, the ECS retry
 * list and the retry of tasks that failed to start, the noncurrent-version and per-target-metric
 * options. One synthesized app for the whole file.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { allStates, runLocally, type TaskState } from '../../cli/local/state-machine.js';
import { type AslDefinition, type CfnTemplate, resolveTokens } from '../../cli/local/synth.js';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { DeploymentConfigSchema } from '../../core/config/schema.js';
import { buildApp } from '../../infra/app.js';
import { startFailureRetry } from '../../infra/constructs/runner-tasks.js';
import { testApp } from '../helpers/cdk.js';

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
    template = Template.fromStack(built.backup);
    stackTemplates = [
      ['backup', template.toJSON() as CfnTemplate],
      ...(built.replica
        ? [['replica', Template.fromStack(built.replica).toJSON() as CfnTemplate] as [string, CfnTemplate]]
        : []),
    ];
    json = template.toJSON() as CfnTemplate;
    resources = Object.entries(json.Resources) as Array<[string, Resource]>;
  }, 180_000);

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

  it('retries every ECS start error AWS documents for runTask.sync, on every runner task', () => {
    for (const kind of ['backup', 'restore', 'restore-drill']) {
      const ecs = [...machine(kind)].filter(([, s]) =>
        String(s.Resource).endsWith(':states:::ecs:runTask.sync'),
      );
      expect(ecs.length, kind).toBeGreaterThan(0);
      for (const [name, s] of ecs) {
        const retried = s.Retry?.flatMap((r) => r.ErrorEquals) ?? [];
        for (const error of [
          'ECS.AmazonECSException',
          'AmazonECS.Unknown',
          'ECS.ServerException',
          'ECS.ThrottlingException',
        ])
          expect(retried, `${kind} ${name}`).toContain(error);
        // A task that failed to start goes to its classification first, then to the state's own catcher.
        expect(s.Catch?.[0], `${kind} ${name}`).toMatchObject({
          ErrorEquals: ['States.TaskFailed'],
          Next: `${name}StartFailed?`,
        });
        expect(s.Catch?.some((c) => c.ErrorEquals.includes('States.ALL'))).toBe(true);
      }
    }
  });

  it('starts a task again when it failed to start for a transient reason, at most twice, and reports other failures', async () => {
    const states = machine('backup');
    const name = 'DumpPostgres';
    const task = states.get(name) as State;
    const handler = task.Catch?.find((c) => c.ErrorEquals.includes('States.ALL'))?.Next as string;
    // The task, its start-failure states and two ends standing for what follows.
    const names = [
      name,
      `${name}StartFailed?`,
      `${name}StartFailedTransient?`,
      `${name}StartRetriesLeft?`,
      `${name}FirstStartRetry`,
      `${name}NextStartRetry`,
      `${name}StartAgain`,
    ];
    const subset: Record<string, State> = Object.fromEntries(
      names.map((n) => [n, structuredClone(states.get(n) as State)]),
    );
    (subset[name] as State).Next = 'Done';
    (subset[name] as State).Catch = (subset[name] as State).Catch?.map((c) =>
      c.Next === handler ? { ...c, Next: 'Reported' } : c,
    );
    for (const choice of ['StartFailed?', 'StartFailedTransient?', 'StartRetriesLeft?']) {
      const state = subset[`${name}${choice}`] as State;
      expect(state.Default, choice).toBe(handler);
      state.Default = 'Reported';
    }
    (subset[`${name}StartAgain`] as State).Seconds = 0;
    const definition = {
      StartAt: name,
      States: {
        ...subset,
        Done: { Type: 'Pass', End: true },
        Reported: { Type: 'Pass', Parameters: { 'error.$': '$.error' }, End: true },
      },
    };
    const taskFailed = (stopCode: string, reason: string) =>
      Object.assign(
        new Error(JSON.stringify({ LastStatus: 'STOPPED', StopCode: stopCode, StoppedReason: reason })),
        {
          name: 'States.TaskFailed',
        },
      );
    const run = async (failures: Error[]) => {
      let calls = 0;
      const output = await runLocally(
        definition as never,
        { taskDefinition: 'family', backupId: 'b' },
        (_: TaskState) => async () => {
          const failure = failures[calls++];
          if (failure) throw failure;
          return {};
        },
        { retryIntervalMs: 0 },
      );
      return { calls, output: output as { error?: { Cause: string } } };
    };
    const transient = taskFailed(
      'TaskFailedToStart',
      'ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed',
    );
    // Two transient start failures: started a third time, and it ran.
    // (the output is the input, with the count and the last start failure kept; nothing reads them).
    expect(await run([transient, transient])).toMatchObject({
      calls: 3,
      output: { backupId: 'b', startRetriesDumpPostgres: { n: 2 } },
    });
    // Three: the third goes to the state's own catcher, with its Cause.
    const third = await run([transient, transient, transient]);
    expect(third.calls).toBe(startFailureRetry.maxRetries + 1);
    expect(third.output.error?.Cause).toContain('ResourceInitializationError');
    // A runner that exited non-zero, or a start failure that is not transient: reported at once.
    const exited = await run([taskFailed('EssentialContainerExited', 'Essential container in task exited')]);
    expect(exited.calls).toBe(1);
    expect(exited.output.error?.Cause).toContain('EssentialContainerExited');
    const badCommand = await run([
      taskFailed('TaskFailedToStart', 'CannotStartContainerError: exec format error'),
    ]);
    expect(badCommand.calls).toBe(1);
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
    // perTargetMetrics false reaches the functions that publish metrics.
    for (const fn of ['Notify', 'Freshness', 'RestoreReport']) {
      const found = ofType('AWS::Lambda::Function').find(([id]) => id.startsWith(`Functions${fn}`));
      expect(found?.[1].Properties.Environment, fn).toMatchObject({
        Variables: { PER_TARGET_METRICS: 'false' },
      });
    }
  });
});
