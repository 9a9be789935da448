import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { type DeploymentConfig, estimateStackResources } from '../../core/config/schema.js';
import { ConfigError } from '../../core/errors.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { INTERFACE_ENDPOINT_SERVICES } from '../../infra/constructs/network-endpoints.js';
import { addNagChecks } from '../../infra/nag.js';
import { testApp } from '../helpers/cdk.js';

// Template assertions need no Lambda code: skipping esbuild keeps each synthesis to seconds.
const noBundling = { 'aws:cdk:bundling-stacks': [] };

const exampleRaw = () => JSON.parse(readFileSync('config/example.json', 'utf8')) as Record<string, unknown>;

/** The example configuration with its `network` section changed. */
function withNetwork(network: Record<string, unknown>): DeploymentConfig {
  const raw = exampleRaw();
  return parseDeploymentConfig({ ...raw, network: { ...(raw.network as object), ...network } }, 'test');
}

interface Synth {
  backup: Template;
  replica?: Template;
  outdir: string;
}

/**
 * Synthesizes the app with cdk-nag; returns the templates and the unacknowledged findings on the
 * in-VPC functions, their security group and the endpoints.
 */
function synth(config: DeploymentConfig): Synth & { nag: string[] } {
  const app = testApp(noBundling);
  const { backup, replica } = buildApp(app, config);
  addNagChecks(app);
  let outdir: string;
  try {
    outdir = app.synth().directory;
  } catch (err) {
    if ((err as Error).name !== 'ValidationFailed') throw err;
    outdir = app.outdir;
  }
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: Array<{
      violations: Array<{ ruleName: string; violatingConstructs: Array<{ constructPath: string }> }>;
    }>;
  };
  // Only the constructs this file is about (test/infra/app.test.ts checks the whole app).
  const ours = /\/(Endpoints|Functions\/(Preflight|RestorePlan|InfrahubApiClients))\//;
  const nag = report.pluginReports
    .flatMap((r) =>
      r.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} ${c.constructPath}`)),
    )
    .filter((line) => ours.test(line));
  const read = (name: string) =>
    Template.fromJSON(JSON.parse(readFileSync(join(outdir, `${name}.template.json`), 'utf8')));
  synthesized.push({
    config,
    resources: Object.keys(read(backup.artifactId).toJSON().Resources as object).length,
  });
  return {
    backup: read(backup.artifactId),
    ...(replica ? { replica: read(replica.artifactId) } : {}),
    outdir,
    nag,
  };
}

/** Resource counts of the primary stacks synthesized below, with their configurations. */
const synthesized: Array<{ config: DeploymentConfig; resources: number }> = [];

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown>; [k: string]: unknown }>;

/** The Lambda functions of a template by their construct name (`Functions<Name>...`). */
function lambdaByName(t: Template, name: string): Record<string, unknown> {
  const fns = t.findResources('AWS::Lambda::Function') as Resources;
  const found = Object.entries(fns).find(([id]) => new RegExp(`^Functions${name}[0-9A-F]{8}$`).test(id));
  if (!found) throw new Error(`no function ${name} in ${Object.keys(fns).join(', ')}`);
  return found[1].Properties ?? {};
}

describe('Lambdas that call the Infrahub API run in the VPC (example configuration)', () => {
  let s: Synth & { nag: string[] };
  const config = loadDeploymentConfigFile('config/example.json');

  beforeAll(() => {
    s = synth(config);
  }, scaled(180_000));

  it('attaches preflight, the restore plan and the Bolt wait to the runner subnets and security groups by default', () => {
    for (const name of ['Preflight', 'RestorePlan', 'Neo4jReady']) {
      expect(lambdaByName(s.backup, name).VpcConfig, name).toEqual({
        SubnetIds: config.network.subnetIds,
        SecurityGroupIds: config.network.securityGroupIds,
      });
    }
  });

  it('keeps the functions that call only AWS APIs outside the VPC', () => {
    for (const name of ['Plan', 'Lock', 'Manifest', 'Dbms', 'Notify', 'Report', 'Freshness', 'Services']) {
      expect(lambdaByName(s.backup, name).VpcConfig, name).toBeUndefined();
    }
  });

  it('gives the in-VPC functions the ENI permissions (AWSLambdaVPCAccessExecutionRole)', () => {
    const roles = s.backup.findResources('AWS::IAM::Role') as Resources;
    for (const name of ['Preflight', 'RestorePlan', 'Neo4jReady']) {
      const role = (lambdaByName(s.backup, name).Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0] ?? '';
      expect(JSON.stringify(roles[role]?.Properties?.ManagedPolicyArns), name).toContain(
        ':iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole',
      );
    }
  });

  it('creates no VPC endpoint and no security group unless asked', () => {
    s.backup.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    s.backup.resourceCountIs('AWS::EC2::SecurityGroup', 0);
  });

  it('has no unacknowledged cdk-nag finding on the in-VPC functions or the endpoints', () => {
    expect(s.nag).toEqual([]);
  });

  it('lets a failed first deploy roll back its fixed-name resources (no "already exists" on retry)', () => {
    // Every resource with a fixed physical name is deleted when its creation rolls back.
    const named = (t: Template) =>
      Object.entries(t.toJSON().Resources as Resources).filter(([, r]) =>
        ['LogGroupName', 'BucketName', 'AliasName', 'StateMachineName', 'ClusterName', 'TopicName'].some(
          (p) => r.Properties?.[p] !== undefined,
        ),
      );
    const templates = [s.backup, s.replica].filter((t): t is Template => t !== undefined);
    expect(templates).toHaveLength(2);
    for (const t of templates) {
      for (const [id, r] of named(t)) expect(r.DeletionPolicy, id).not.toBe('Retain');
    }
    // The state machines' log groups and the runner's: kept on delete and replacement.
    const logGroups = s.backup.findResources('AWS::Logs::LogGroup') as Resources;
    const stateMachineLogs = Object.entries(logGroups).filter(([, r]) =>
      String(r.Properties?.LogGroupName ?? '').startsWith('/aws/vendedlogs/states/'),
    );
    expect(stateMachineLogs.map(([, r]) => r.Properties?.LogGroupName).sort()).toEqual([
      '/aws/vendedlogs/states/infrahub-backup-backup',
      '/aws/vendedlogs/states/infrahub-backup-restore',
      '/aws/vendedlogs/states/infrahub-backup-restore-drill',
    ]);
    const runnerLogs = Object.entries(logGroups).filter(([id]) => /^RunnerLogs[0-9A-F]{8}$/.test(id));
    expect(runnerLogs).toHaveLength(1);
    for (const [id, r] of [...stateMachineLogs, ...runnerLogs]) {
      expect([id, r.DeletionPolicy, r.UpdateReplacePolicy]).toEqual([id, 'RetainExceptOnCreate', 'Retain']);
    }
    // The replica bucket has a fixed name (the primary names it as its replication destination).
    const replicaBuckets = Object.values(s.replica?.findResources('AWS::S3::Bucket') as Resources).filter(
      (r) => r.Properties?.BucketName !== undefined,
    );
    expect(replicaBuckets).toHaveLength(1);
    expect(replicaBuckets[0]).toMatchObject({
      DeletionPolicy: 'RetainExceptOnCreate',
      UpdateReplacePolicy: 'Retain',
    });
  });
});

describe('network.createEndpoints and Lambda network overrides', () => {
  let s: Synth & { nag: string[] };
  const lambdaSubnetIds = ['subnet-0c0c0c0c0c0c0c0c1'];
  const lambdaSecurityGroupIds = ['sg-0d0d0d0d0d0d0d0d1'];
  const routeTableIds = ['rtb-0e0e0e0e0e0e0e0e1', 'rtb-0e0e0e0e0e0e0e0e2'];
  const config = withNetwork({
    createEndpoints: true,
    routeTableIds,
    lambdaSubnetIds,
    lambdaSecurityGroupIds,
  });

  beforeAll(() => {
    s = synth(config);
  }, scaled(180_000));

  it("README's cost section gives the interface endpoints' monthly figure for the endpoints the stack creates", () => {
    const iface = Object.values(s.backup.findResources('AWS::EC2::VPCEndpoint') as Resources).filter(
      (e) => e.Properties?.VpcEndpointType === 'Interface',
    );
    expect(iface).toHaveLength(INTERFACE_ENDPOINT_SERVICES.length);
    const zones = config.network.availabilityZones.length;
    // $0.01 per endpoint per AZ-hour, 730 hours a month (Amazon VPC pricing, PrivateLink).
    const monthly = INTERFACE_ENDPOINT_SERVICES.length * zones * 0.01 * 730;
    const readme = readFileSync('README.md', 'utf8').replace(/\s+/g, ' ');
    expect(readme).toContain(`${INTERFACE_ENDPOINT_SERVICES.length} interface endpoints`);
    expect(readme).toContain(`× ${zones} AZs`);
    expect(readme).toContain(`≈ $${Math.round(monthly)}/month`);
    expect(readme).toContain(`= $${monthly.toFixed(2)})`);
  });

  it('runs the in-VPC functions in the configured Lambda subnets and security groups', () => {
    for (const name of ['Preflight', 'RestorePlan']) {
      expect(lambdaByName(s.backup, name).VpcConfig, name).toEqual({
        SubnetIds: lambdaSubnetIds,
        SecurityGroupIds: lambdaSecurityGroupIds,
      });
    }
  });

  it('creates interface endpoints with private DNS in one runner subnet per zone, and the S3 gateway', () => {
    const endpoints = Object.values(s.backup.findResources('AWS::EC2::VPCEndpoint') as Resources);
    const iface = endpoints.filter((e) => e.Properties?.VpcEndpointType === 'Interface');
    const services = iface.map((e) => JSON.stringify(e.Properties?.ServiceName));
    for (const service of ['ecr.api', 'ecr.dkr', 'secretsmanager', 'logs', 'states']) {
      expect(
        services.some((n) => n.includes(`.${service}`)),
        service,
      ).toBe(true);
    }
    expect(iface).toHaveLength(INTERFACE_ENDPOINT_SERVICES.length);
    for (const e of iface) {
      expect(e.Properties).toMatchObject({
        VpcId: config.network.vpcId,
        PrivateDnsEnabled: true,
        SubnetIds: config.network.subnetIds,
      });
    }
    s.backup.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: 'com.amazonaws.eu-west-1.s3',
      VpcId: config.network.vpcId,
      RouteTableIds: routeTableIds,
    });
  });

  it("admits HTTPS to the endpoints from the runner's and the Lambdas' security groups only", () => {
    const groups = s.backup.findResources('AWS::EC2::SecurityGroup') as Resources;
    expect(Object.keys(groups)).toHaveLength(1);
    const group = Object.values(groups)[0];
    const ingress = (group?.Properties?.SecurityGroupIngress ?? []) as Array<Record<string, unknown>>;
    const standalone = Object.values(
      s.backup.findResources('AWS::EC2::SecurityGroupIngress') as Resources,
    ).map((r) => r.Properties ?? {});
    const rules = [...ingress, ...standalone];
    expect(rules.map((r) => r.SourceSecurityGroupId).sort()).toEqual(
      [...config.network.securityGroupIds, ...lambdaSecurityGroupIds].sort(),
    );
    for (const r of rules) expect(r).toMatchObject({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443 });
    expect(rules.some((r) => r.CidrIp !== undefined || r.CidrIpv6 !== undefined)).toBe(false);
    // Outbound closed: endpoints answer, they do not connect out.
    // (CDK's placeholder rule for "no egress": 255.255.255.255/32.)
    expect(group?.Properties?.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: '255.255.255.255/32' }),
    ]);
  });

  it('has no unacknowledged cdk-nag finding on the in-VPC functions or the endpoints', () => {
    expect(s.nag).toEqual([]);
  });
});

describe('Lambda security group when the configuration names none', () => {
  it(
    'creates one with outbound access only, used by both in-VPC functions, and outputs its id',
    () => {
      const s = synth(withNetwork({ securityGroupIds: [] }));
      const groups = s.backup.findResources('AWS::EC2::SecurityGroup') as Resources;
      const ids = Object.keys(groups);
      expect(ids).toHaveLength(1);
      expect(groups[ids[0] ?? '']?.Properties?.SecurityGroupIngress).toBeUndefined();
      for (const name of ['Preflight', 'RestorePlan']) {
        expect(lambdaByName(s.backup, name).VpcConfig, name).toEqual({
          SubnetIds: ['subnet-0a1b2c3d4e5f60718', 'subnet-0f1e2d3c4b5a69788'],
          SecurityGroupIds: [{ 'Fn::GetAtt': [ids[0], 'GroupId'] }],
        });
      }
      s.backup.hasOutput('LambdaSecurityGroupId', { Value: { 'Fn::GetAtt': [ids[0], 'GroupId'] } });
      expect(s.nag).toEqual([]);
    },
    scaled(180_000),
  );
});

describe('network configuration', () => {
  const problems = (network: Record<string, unknown>): string[] => {
    try {
      withNetwork(network);
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return [...err.problems];
    }
  };

  it('defaults to no endpoints and no Lambda overrides', () => {
    const { network } = loadDeploymentConfigFile('config/example.json');
    expect(network.createEndpoints).toBe(false);
    expect(network.lambdaSubnetIds).toBeUndefined();
    expect(network.lambdaSecurityGroupIds).toBeUndefined();
  });

  it('requires route tables and runner security groups for createEndpoints', () => {
    const found = problems({ createEndpoints: true, securityGroupIds: [] });
    expect(found).toEqual([
      expect.stringMatching(/^network\.routeTableIds: must list the route tables .*S3 gateway endpoint/),
      expect.stringMatching(/^network\.securityGroupIds: must name the runner tasks' security groups/),
    ]);
    expect(problems({ createEndpoints: true, routeTableIds: ['rtb-0e0e0e0e0e0e0e0e1'] })).toEqual([]);
  });

  it('refuses malformed ids and empty override lists', () => {
    expect(problems({ lambdaSubnetIds: [] })).toEqual([
      expect.stringMatching(/^network\.lambdaSubnetIds: must list at least one subnet/),
    ]);
    expect(problems({ lambdaSecurityGroupIds: ['sg-nope'] })).toEqual([
      expect.stringMatching(/^network\.lambdaSecurityGroupIds\[0\]: must be a security group id/),
    ]);
    expect(problems({ routeTableIds: ['rtb'] })).toEqual([
      expect.stringMatching(/^network\.routeTableIds\[0\]: must be a route table id/),
    ]);
  });
});

describe('stack resource estimate', () => {
  it("counts the network's resources: endpoints and their group, a created Lambda group", () => {
    // The three syntheses above: example, with endpoints, without security groups.
    expect(synthesized).toHaveLength(3);
    const [base, ...others] = synthesized;
    for (const other of others) {
      expect(other.resources - (base?.resources ?? 0)).toBe(
        estimateStackResources(other.config) - estimateStackResources(base?.config ?? other.config),
      );
    }
  });
});
