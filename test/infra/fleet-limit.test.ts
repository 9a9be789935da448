import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CfnTemplate, resolveTokens } from '../../cli/local/synth.js';
import { parseDeploymentConfig } from '../../core/config/load.js';
import {
  type DeploymentConfig,
  DeploymentConfigSchema,
  estimateStackResources,
  MAX_STACK_RESOURCES,
  MAX_TARGETS,
  TARGETS_PER_RUNNER_GROUP,
} from '../../core/config/schema.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import type { BackupStack } from '../../infra/stacks/backup-stack.js';
import { testApp } from '../helpers/cdk.js';

/** A target with every secret a target can have: credentials of both databases and both CA bundles. */
const target = (i: number) => ({
  name: `infrahub-site-${String(i).padStart(4, '0')}`,
  neo4j: {
    host: `neo4j.site-${i}.internal`,
    edition: 'enterprise',
    licence: 'commercial',
    version: '5.26.26',
    credentialsSecret: `site-${i}/neo4j`,
    tls: { mode: 'verify-full', caSecret: `site-${i}/neo4j-ca` },
  },
  postgres: {
    host: `prefect.site-${i}.internal`,
    majorVersion: 18,
    credentialsSecret: `site-${i}/pg`,
    tls: { mode: 'verify-full', caSecret: `site-${i}/pg-ca` },
  },
  infrahub: { address: `https://infrahub.site-${i}.example.com`, tokenSecret: `site-${i}/token` },
  artifacts: { type: 's3', bucket: `infrahub-site-${i}-artifacts` },
});

const ACCOUNT = '123456789012';

/** IAM's bounds a real account enforces (IAM User Guide, "IAM and AWS STS quotas"). */
const IAM = {
  /** Managed policies attached to one role (default quota; adjustable to 20). */
  managedPoliciesPerRole: 10,
  /** Inline policies of one role, together, in characters (whitespace not counted). */
  inlineCharactersPerRole: 10_240,
  /** One managed policy, in characters. */
  managedPolicyCharacters: 6_144,
};
/** CloudFormation's largest template, by S3 URL (AWS CloudFormation User Guide, "CloudFormation quotas"). */
const MAX_TEMPLATE_BYTES = 1_000_000;

/**
 * The deployment of `count` targets; `tagged`: secretsAccess.tag instead of listed secrets;
 * `account`: the deployment names its account (secret ARNs are then literal).
 */
const fleetConfig = (count: number, tagged: boolean, account?: string, keys = false): unknown => ({
  name: 'fleet',
  ...(account ? { account } : {}),
  region: 'us-east-1',
  // The fleet fits the backup's 12 hours (fleetBoundProblem: about 15 minutes a target).
  maxConcurrency: 40,
  network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], availabilityZones: ['us-east-1a'] },
  // keys: each target's secrets under a customer-managed key of its own (secretsKmsKeyArns).
  targets: Array.from({ length: count }, (_, i) => ({
    ...target(i),
    ...(keys
      ? {
          secretsKmsKeyArns: [
            `arn:aws:kms:us-east-1:${ACCOUNT}:key/0000abcd-0000-4000-8000-${String(i).padStart(12, '0')}`,
          ],
        }
      : {}),
  })),
  schedules: [{ name: 'nightly', kind: 'backup', expression: 'cron(0 2 * * ? *)', targets: '*' }],
  retention: { daily: 7, weekly: 4, monthly: 12 },
  ...(tagged ? { secretsAccess: { tag: { key: 'infrahub-backup', value: 'fleet' } } } : {}),
});

/** The largest fleet of these targets whose listed secrets the configuration accepts. */
function largestListedFleet(account?: string, tagged = false, keys = false): number {
  let [low, high] = [1, MAX_TARGETS];
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (DeploymentConfigSchema.safeParse(fleetConfig(mid, tagged, account, keys)).success) low = mid;
    else high = mid - 1;
  }
  return low;
}

/** A policy document's size as IAM counts it: tokens resolved (account, region), no whitespace. */
const size = (document: unknown, template: CfnTemplate, config: DeploymentConfig) =>
  JSON.stringify(resolveTokens(document, template, config)).replace(/\s/g, '').length;

// Issue 16, item 3: a fleet of MAX_TARGETS (1,000) targets deploys: the per-target runner resources
// live in nested stacks, each inside CloudFormation's and IAM's bounds; the Lambdas that read every
// target's secret list them while IAM's quotas hold them, and read them by tag beyond.
describe.each([
  {
    label: `${MAX_TARGETS} targets, secrets read by tag`,
    count: () => MAX_TARGETS,
    tagged: true,
    least: MAX_TARGETS,
  },
  {
    label: 'the largest fleet with listed secrets',
    count: () => largestListedFleet(),
    tagged: false,
    least: 300,
  },
  {
    label: 'the largest fleet with listed secrets and its account named',
    count: () => largestListedFleet(ACCOUNT),
    tagged: false,
    account: ACCOUNT,
    least: 600,
  },
  {
    label: 'the largest fleet by tag whose targets each have their own secrets key',
    count: () => largestListedFleet(ACCOUNT, true, true),
    tagged: true,
    account: ACCOUNT,
    keys: true,
    least: 500,
  },
])('a deployment of $label', ({ count, tagged, account, least, keys }) => {
  let config: DeploymentConfig;
  let backup: BackupStack;
  let parent: CfnTemplate;
  let nested: Array<{ name: string; template: CfnTemplate; bytes: number }>;
  let targets: number;

  beforeAll(() => {
    targets = count();
    config = parseDeploymentConfig(fleetConfig(targets, tagged, account, keys), 'fleet');
    ({ backup } = buildApp(testApp({ 'aws:cdk:bundling-stacks': [] }), config));
    parent = Template.fromStack(backup).toJSON() as CfnTemplate;
    nested = backup.runner.groups.map((group) => {
      const json = Template.fromStack(group).toJSON();
      return {
        name: group.node.path,
        template: json as CfnTemplate,
        bytes: Buffer.byteLength(JSON.stringify(json)),
      };
    });
  }, scaled(900_000));

  it(`keeps the parent stack within ${MAX_STACK_RESOURCES} resources, as estimated, and each template within 1 MB`, () => {
    expect(targets).toBeGreaterThanOrEqual(least);
    const resources = Object.keys(parent.Resources).length;
    expect(resources).toBeLessThanOrEqual(MAX_STACK_RESOURCES);
    expect(Math.abs(resources - estimateStackResources(config))).toBeLessThanOrEqual(3);
    expect(Buffer.byteLength(JSON.stringify(parent))).toBeLessThan(MAX_TEMPLATE_BYTES);
    for (const group of nested) expect(group.bytes, group.name).toBeLessThan(MAX_TEMPLATE_BYTES);
  });

  it(`puts every target's task definition and roles in nested stacks of ${TARGETS_PER_RUNNER_GROUP}, each within ${MAX_STACK_RESOURCES} resources`, () => {
    expect(nested).toHaveLength(Math.ceil(targets / TARGETS_PER_RUNNER_GROUP));
    const families = nested.flatMap((g) =>
      Object.values(g.template.Resources)
        .filter((r) => r.Type === 'AWS::ECS::TaskDefinition')
        .map((r) => r.Properties?.Family),
    );
    expect(new Set(families).size).toBe(targets);
    for (const group of nested)
      expect(Object.keys(group.template.Resources).length).toBeLessThanOrEqual(MAX_STACK_RESOURCES);
    // The parent holds no target's task definition or role: one drill task definition (one image).
    expect(Object.values(parent.Resources).filter((r) => r.Type === 'AWS::ECS::TaskDefinition')).toHaveLength(
      1,
    );
  });

  it("keeps every role's policies within IAM's quotas", () => {
    for (const group of [{ name: 'parent', template: parent }, ...nested]) {
      const resources = Object.entries(group.template.Resources);
      const of = (type: string, role: string) =>
        resources
          .filter(([, r]) => r.Type === type && JSON.stringify(r.Properties?.Roles).includes(`"${role}"`))
          .map(([, r]) => r.Properties?.PolicyDocument);
      for (const [id, role] of resources.filter(([, r]) => r.Type === 'AWS::IAM::Role')) {
        const managed = of('AWS::IAM::ManagedPolicy', id);
        expect(
          managed.length + ((role.Properties?.ManagedPolicyArns as unknown[]) ?? []).length,
          `${group.name} ${id}: managed policies`,
        ).toBeLessThanOrEqual(IAM.managedPoliciesPerRole);
        for (const document of managed)
          expect(size(document, group.template, config), `${group.name} ${id}`).toBeLessThanOrEqual(
            IAM.managedPolicyCharacters,
          );
        const inline = [
          ...((role.Properties?.Policies as Array<{ PolicyDocument: unknown }>) ?? []).map(
            (p) => p.PolicyDocument,
          ),
          ...of('AWS::IAM::Policy', id),
        ];
        expect(
          inline.reduce<number>((sum, d) => sum + size(d, group.template, config), 0),
          `${group.name} ${id}: inline characters`,
        ).toBeLessThanOrEqual(IAM.inlineCharactersPerRole);
      }
    }
  });

  it("reads the targets' secrets as configured: each runner group's own, the Lambdas' listed or by tag", () => {
    // The grants of the roles whose logical ids match `role`: their policies' documents, resolved.
    const secretGrants = (template: CfnTemplate, role: RegExp) =>
      Object.entries(template.Resources)
        .filter(
          ([id, r]) =>
            (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') && role.test(id),
        )
        .map(([, r]) => JSON.stringify(resolveTokens(r.Properties?.PolicyDocument, template, config)))
        .filter((d) => d.includes('secretsmanager:GetSecretValue'))
        .join('\n');
    // The drills' execution role (parent) reads none; a group's execution role only its own targets'.
    expect(secretGrants(parent, /^RunnerExecutionRole/)).toBe('');
    const first = secretGrants(nested[0]?.template as CfnTemplate, /^ExecutionRole/);
    expect(first).toContain(':secret:site-0/neo4j-??????');
    expect(first).toContain(':secret:site-49/pg-ca-??????');
    expect(first).not.toContain(':secret:site-50/');
    const preflight = secretGrants(parent, /^FunctionsPreflightServiceRole/);
    if (tagged) {
      expect(preflight).toContain(
        `"Resource":"arn:aws:secretsmanager:us-east-1:${account ?? '000000000000'}:secret:*"`,
      );
      expect(preflight).toContain('"Condition":{"StringEquals":{"aws:ResourceTag/infrahub-backup":"fleet"}}');
      expect(preflight).not.toContain('/token-??????');
    } else {
      for (const i of [0, targets - 1]) expect(preflight).toContain(`:secret:site-${i}/token-??????`);
      expect(preflight).not.toContain('secret:*');
    }
  });
});

// Enterprise seeds: each target's server roles are granted in the bucket's and the key's policies,
// which S3 (20 KB) and KMS (32 KB) bound; the configuration refuses a fleet past them
// (seedGrantPolicySizes, an over-estimate), and the largest one it accepts fits.
describe('Enterprise targets whose servers seed from the bucket', () => {
  const seeded = (count: number, roles: number, pad: number) => ({
    ...(fleetConfig(count, true, ACCOUNT) as Record<string, unknown>),
    targets: Array.from({ length: count }, (_, i) => {
      const t = target(i);
      return {
        ...t,
        neo4j: {
          ...t.neo4j,
          seed: {
            serverRoleArns: Array.from(
              { length: roles },
              (_, r) => `arn:aws:iam::${ACCOUNT}:role/neo4j-site-${i}-server-${r}${'x'.repeat(pad)}`,
            ),
          },
        },
      };
    }),
  });

  it.each([
    [1, 0],
    [3, 0],
    [3, 40],
  ])(
    'accepts the largest fleet of %i server roles a target (ARNs %i characters longer) whose policies fit, and refuses one more',
    (roles, pad) => {
      let count = 1;
      while (DeploymentConfigSchema.safeParse(seeded(count + 1, roles, pad)).success) count += 1;
      const refused = DeploymentConfigSchema.safeParse(seeded(count + 1, roles, pad));
      expect(refused.error?.issues.map((i) => i.message)).toContainEqual(
        expect.stringMatching(
          /^the Enterprise targets' neo4j\.seed\.serverRoleArns would add about \d+ characters to the backup bucket's policy \(S3 allows 20 KB/,
        ),
      );
      const config = parseDeploymentConfig(seeded(count, roles, pad), 'seeded');
      const { backup } = buildApp(testApp({ 'aws:cdk:bundling-stacks': [] }), config);
      const template = Template.fromStack(backup).toJSON() as CfnTemplate;
      const resolved = (v: unknown) =>
        JSON.stringify(resolveTokens(v, template, config)).replace(/\s/g, '').length;
      const [bucketPolicy] = Object.entries(template.Resources).filter(
        ([id, r]) => r.Type === 'AWS::S3::BucketPolicy' && id.startsWith('StorageBucketPolicy'),
      );
      const [key] = Object.entries(template.Resources).filter(
        ([id, r]) => r.Type === 'AWS::KMS::Key' && id.startsWith('StorageKey'),
      );
      expect(resolved(bucketPolicy?.[1].Properties?.PolicyDocument)).toBeLessThanOrEqual(20_480);
      expect(resolved(key?.[1].Properties?.KeyPolicy)).toBeLessThanOrEqual(32_768);
      expect(JSON.stringify(bucketPolicy?.[1].Properties?.PolicyDocument)).toContain(
        `neo4j-site-${count - 1}-server-0`,
      );
    },
    600_000,
  );
});

// With secretsAccess.tag, the Lambdas read by tag the secrets of this account and region; a secret
// given by its complete ARN may be elsewhere, so it is listed as well (found by a fresh review).
it(
  "lists a secret given by its complete ARN beside the tag's grant",
  () => {
    const elsewhere = 'arn:aws:secretsmanager:eu-west-1:999999999999:secret:infra/token-AbCdEf';
    const raw = fleetConfig(3, true, ACCOUNT) as { targets: Array<{ infrahub: { tokenSecret: string } }> };
    (raw.targets[0] as { infrahub: { tokenSecret: string } }).infrahub.tokenSecret = elsewhere;
    const config = parseDeploymentConfig(raw, 'fleet');
    const { backup } = buildApp(testApp({ 'aws:cdk:bundling-stacks': [] }), config);
    const template = Template.fromStack(backup).toJSON() as CfnTemplate;
    const preflight = Object.entries(template.Resources)
      .filter(([id, r]) => r.Type === 'AWS::IAM::Policy' && id.startsWith('FunctionsPreflightServiceRole'))
      .map(([, r]) => JSON.stringify(resolveTokens(r.Properties?.PolicyDocument, template, config)))
      .join('\n');
    expect(preflight).toContain(`"Resource":"${elsewhere}"`);
    expect(preflight).toContain(`"Resource":"arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:*"`);
    expect(preflight).not.toContain('site-1/token');
  },
  scaled(300_000),
);
