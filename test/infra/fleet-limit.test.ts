import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../core/config/load.js';
import { estimateStackResources, MAX_STACK_RESOURCES, MAX_TARGETS } from '../../core/config/schema.js';
import { buildApp } from '../../infra/app.js';
import { testApp } from '../helpers/cdk.js';

const target = (i: number) => ({
  name: `infrahub-site-${String(i).padStart(3, '0')}`,
  neo4j: {
    host: `neo4j.site-${i}.internal`,
    edition: 'enterprise',
    licence: 'commercial',
    version: '5.26.26',
    credentialsSecret: `site-${i}/neo4j`,
  },
  postgres: { host: `prefect.site-${i}.internal`, majorVersion: 18, credentialsSecret: `site-${i}/pg` },
  infrahub: { address: `https://infrahub.site-${i}.example.com`, tokenSecret: `site-${i}/token` },
  artifacts: { type: 's3', bucket: `infrahub-site-${i}-artifacts` },
});

// Issue 12, item 16: the configuration's bound on targets is one the stack can really hold.
describe('the largest fleet one deployment accepts', () => {
  it(`synthesizes ${MAX_TARGETS} targets (each with its own secrets) within CloudFormation's ${MAX_STACK_RESOURCES} resources, as estimated`, () => {
    const config = parseDeploymentConfig(
      {
        name: 'fleet',
        region: 'us-east-1',
        network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], availabilityZones: ['us-east-1a'] },
        targets: Array.from({ length: MAX_TARGETS }, (_, i) => target(i)),
        schedules: [{ name: 'nightly', kind: 'backup', expression: 'cron(0 2 * * ? *)', targets: '*' }],
        retention: { daily: 7, weekly: 4, monthly: 12 },
      },
      'fleet',
    );
    const { backup } = buildApp(testApp(), config);
    const resources = Object.keys(Template.fromStack(backup).toJSON().Resources as object).length;
    expect(resources).toBeLessThanOrEqual(MAX_STACK_RESOURCES);
    expect(Math.abs(resources - estimateStackResources(config))).toBeLessThanOrEqual(3);
  }, 600_000);
});
