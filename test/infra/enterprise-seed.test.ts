/**
 * Issue 15, item 1: what an Enterprise restore by seeding needs from the stack. The restore role of an
 * Enterprise target stages the chain under its own `.restore-seeds/<target>/` prefix; the target's
 * Neo4j servers (neo4j.seed.serverRoleArns) may list and read there, and decrypt through S3, and
 * nothing more; a lifecycle rule removes what a failed restore left; the runner gets the seeding bounds.
 */

import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile } from '../../core/config/load.js';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { BackupBucket } from '../../infra/constructs/backup-bucket.js';
import { templateWithNestedStacks, testApp } from '../helpers/cdk.js';

type Statement = {
  Sid?: string;
  Effect: string;
  Principal?: { AWS?: unknown };
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
};
type Resource = { Type: string; Properties: Record<string, unknown> };
const statementsOf = (r: Resource | undefined, field: string) =>
  ((r?.Properties[field] as { Statement: Statement[] } | undefined)?.Statement ?? []) as Statement[];
const SERVER_ROLE = 'arn:aws:iam::123456789012:role/infrahub-prod-neo4j-server';

describe('Enterprise seeding (template of config/full.json)', () => {
  let config: DeploymentConfig;
  let resources: Array<[string, Resource]>;
  const ofType = (type: string) => resources.filter(([, r]) => r.Type === type);
  const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

  beforeAll(() => {
    config = loadDeploymentConfigFile('config/full.json');
    const built = buildApp(testApp(), config);
    resources = Object.entries(templateWithNestedStacks(built.backup).toJSON().Resources) as Array<
      [string, Resource]
    >;
  }, scaled(180_000));

  it("lets the target's Neo4j servers list and read only its own seed prefix, and decrypt only through S3", () => {
    const prod = config.targets.find((t) => t.neo4j.edition === 'enterprise');
    expect(prod?.neo4j.seed?.serverRoleArns).toEqual([SERVER_ROLE]);
    const bucketPolicy = ofType('AWS::S3::BucketPolicy').flatMap(([, r]) =>
      statementsOf(r, 'PolicyDocument'),
    );
    const byServer = bucketPolicy.filter(
      (s) => JSON.stringify(s.Principal) === JSON.stringify({ AWS: SERVER_ROLE }),
    );
    expect(byServer.map((s) => actions(s).sort())).toEqual([
      ['s3:GetObject', 's3:GetObjectVersion'],
      ['s3:ListBucket'],
    ]);
    const read = byServer[0] as Statement;
    expect(JSON.stringify(read.Resource)).toContain(`/.restore-seeds/${prod?.name}/*`);
    const list = byServer[1] as Statement;
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': [`.restore-seeds/${prod?.name}/*`] } });
    const keys = ofType('AWS::KMS::Key').filter(([, r]) =>
      String(r.Properties.Description).includes('Encrypts Infrahub backups'),
    );
    const decrypt = statementsOf(keys[0]?.[1], 'KeyPolicy').filter(
      (s) => JSON.stringify(s.Principal) === JSON.stringify({ AWS: SERVER_ROLE }),
    );
    expect(decrypt).toHaveLength(1);
    expect(actions(decrypt[0] as Statement)).toEqual(['kms:Decrypt']);
    expect(JSON.stringify(decrypt[0]?.Condition)).toContain('kms:ViaService');
    expect(JSON.stringify(decrypt[0]?.Condition)).toContain('s3.');
  });

  it("gives each Enterprise target's restore role writes and deletes under its own seed prefix only", () => {
    const seedWrites = (target: string) =>
      ofType('AWS::IAM::Role')
        .filter(
          ([, r]) =>
            r.Properties.Description ===
            `Restores of ${target}: reads its backups, writes its own storage back`,
        )
        .flatMap(
          ([, r]) => (r.Properties.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>) ?? [],
        )
        .flatMap((p) => p.PolicyDocument.Statement)
        .filter((s) => JSON.stringify(s.Resource).includes('.restore-seeds/'));
    const roles = ofType('AWS::IAM::Role').filter(([, r]) =>
      String(r.Properties.Description).startsWith('Restores of '),
    );
    expect(roles.length).toBe(config.targets.length);
    const prod = seedWrites('infrahub-prod');
    expect(prod).toHaveLength(1);
    expect(actions(prod[0] as Statement)).toEqual(
      expect.arrayContaining(['s3:PutObject', 's3:DeleteObjectVersion', 's3:AbortMultipartUpload']),
    );
    expect(JSON.stringify(prod[0]?.Resource)).toContain('/.restore-seeds/infrahub-prod/*');
    // A Community target never stages seeds.
    const community = config.targets.find((t) => t.neo4j.edition === 'community');
    expect(community).toBeDefined();
    expect(seedWrites(community?.name as string)).toEqual([]);
  });

  it('expires staged seeds a failed restore left, and passes the seeding bounds to the runner', () => {
    const [bucket] = ofType('AWS::S3::Bucket').filter(
      ([, r]) => r.Properties.ObjectLockEnabled !== undefined || r.Properties.BucketEncryption,
    );
    const rules = ofType('AWS::S3::Bucket')
      .map(
        ([, r]) =>
          r.Properties.LifecycleConfiguration as { Rules: Array<Record<string, unknown>> } | undefined,
      )
      .flatMap((c) => c?.Rules ?? [])
      .filter((r) => r.Id === 'expire-restore-seeds');
    expect(bucket).toBeDefined();
    expect(rules).toEqual([
      expect.objectContaining({
        Prefix: '.restore-seeds/',
        ExpirationInDays: 2,
        NoncurrentVersionExpiration: { NoncurrentDays: 1 },
        Status: 'Enabled',
      }),
    ]);
    const env = ofType('AWS::ECS::TaskDefinition')
      .flatMap(
        ([, r]) =>
          (r.Properties.ContainerDefinitions as Array<{
            Environment?: Array<{ Name: string; Value: string }>;
          }>) ?? [],
      )
      .flatMap((c) => c.Environment ?? []);
    expect(env).toEqual(
      expect.arrayContaining([
        { Name: 'NEO4J_SEED_ONLINE_TIMEOUT_SECONDS', Value: '3600' },
        { Name: 'NEO4J_SEED_REHEARSE', Value: 'true' },
      ]),
    );
  });
});

// Issue 15 review: statement ids come from target names, which may differ only by characters a
// Sid cannot hold ("prod-a", "proda"); S3 refuses a bucket policy with a Sid twice.
describe('Enterprise seeding: bucket policy statement ids', () => {
  it('stay distinct for targets whose names differ only by punctuation', () => {
    const stack = new Stack(testApp(), 'Sids', { env: { account: '123456789012', region: 'eu-west-1' } });
    const storage = new BackupBucket(stack, 'Storage', {
      name: 'sids',
      retention: loadDeploymentConfigFile('config/full.json').retention,
    });
    for (const target of ['prod-a', 'proda', 'pro-da'])
      storage.grantSeedReads(target, ['arn:aws:iam::123456789012:role/neo4j']);
    const policies = Object.values(Template.fromStack(stack).toJSON().Resources as Record<string, Resource>)
      .filter((r) => r.Type === 'AWS::S3::BucketPolicy')
      .flatMap((r) => statementsOf(r, 'PolicyDocument'));
    const sids = policies
      .map((st) => st.Sid)
      .filter((sid): sid is string => sid?.startsWith('Seed') === true);
    expect(sids).toHaveLength(6);
    expect(new Set(sids).size).toBe(6);
    for (const sid of sids) expect(sid).toMatch(/^[A-Za-z0-9]+$/);
  });
});
