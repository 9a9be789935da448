/**
 * Issue 15 item 4 on the synthesized stack: every target's runner gets its neo4j.tls as NEO4J_URI's
 * scheme (bolt+s / bolt+ssc / bolt), NEO4J_TLS_MODE, NEO4J_TLS_CA (a path in the image) or the ECS
 * secret NEO4J_TLS_CA_PEM (caSecret); the Neo4jReady Lambda gets the work item's tls, may read the
 * Community targets' CA secrets, and a Community target's `ca` path (which that Lambda cannot read)
 * is refused at synthesis.
 */
import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { allStates } from '../../cli/local/state-machine.js';
import { type SynthesizedBackup, synthesizeBackup } from '../../cli/local/synth.js';
import { loadDeploymentConfigFile, parseDeploymentConfig } from '../../core/config/load.js';
import { neo4jReadyEvent } from '../../core/readiness/neo4j-ready.js';
import { scaled } from '../../harness/time-scale.js';
import { buildApp } from '../../infra/app.js';
import { testApp } from '../helpers/cdk.js';

type Resource = { Type: string; Properties: Record<string, unknown> };
const example = () => JSON.parse(JSON.stringify(loadDeploymentConfigFile('config/example.json')));

function config() {
  const raw = example();
  const [prod, lab] = raw.targets;
  const extra = (name: string, tls: unknown) => ({
    ...JSON.parse(JSON.stringify(prod)),
    name,
    neo4j: { ...prod.neo4j, tls },
  });
  delete lab.neo4j.tls; // the default: verify-full against the system trust store
  raw.targets.push(
    extra('infrahub-own-ca', { mode: 'verify-full', ca: '/opt/runner/certs/neo4j-ca.pem' }),
    extra('infrahub-require', { mode: 'require' }),
    extra('infrahub-plain', { mode: 'disable' }),
  );
  return raw;
}

describe('synthesized stack: Bolt TLS to Neo4j', () => {
  let synthesized: SynthesizedBackup;
  const runner = (target: string) =>
    [...synthesized.taskDefinitions.values()].find((d) => d.environment.TARGET === target);

  beforeAll(() => {
    synthesized = synthesizeBackup(parseDeploymentConfig(config(), 'test config'));
  }, scaled(180_000));

  it('caSecret: neo4j+s (Enterprise: the routing scheme), verify-full, the CA as the ECS secret NEO4J_TLS_CA_PEM (whole value)', () => {
    const prod = runner('infrahub-prod');
    expect(prod?.environment).toMatchObject({
      NEO4J_URI: 'neo4j+s://neo4j.prod.infrahub.internal:7687',
      NEO4J_TLS_MODE: 'verify-full',
    });
    expect(prod?.environment.NEO4J_TLS_CA).toBeUndefined();
    expect(prod?.secrets.NEO4J_TLS_CA_PEM?.secretId).toContain('infrahub-prod/neo4j-ca');
    expect(prod?.secrets.NEO4J_TLS_CA_PEM?.jsonKey).toBeUndefined();
  });

  it('the default is verify-full over bolt+s against the system trust store', () => {
    const lab = runner('infrahub-lab');
    expect(lab?.environment).toMatchObject({
      NEO4J_URI: 'bolt+s://neo4j.lab.infrahub.internal:7687',
      NEO4J_TLS_MODE: 'verify-full',
    });
    expect(lab?.environment.NEO4J_TLS_CA).toBeUndefined();
    expect(lab?.secrets.NEO4J_TLS_CA_PEM).toBeUndefined();
  });

  it('a CA file in the image, require (+ssc) and an explicit disable (the only plain URI)', () => {
    // These targets are Enterprise (copies of infrahub-prod): the neo4j scheme, routed to a cluster's leader.
    expect(runner('infrahub-own-ca')?.environment).toMatchObject({
      NEO4J_URI: 'neo4j+s://neo4j.prod.infrahub.internal:7687',
      NEO4J_TLS_MODE: 'verify-full',
      NEO4J_TLS_CA: '/opt/runner/certs/neo4j-ca.pem',
    });
    expect(runner('infrahub-require')?.environment).toMatchObject({
      NEO4J_URI: 'neo4j+ssc://neo4j.prod.infrahub.internal:7687',
      NEO4J_TLS_MODE: 'require',
    });
    expect(runner('infrahub-plain')?.environment).toMatchObject({
      NEO4J_URI: 'neo4j://neo4j.prod.infrahub.internal:7687',
      NEO4J_TLS_MODE: 'disable',
    });
    for (const t of ['infrahub-require', 'infrahub-plain']) {
      expect(runner(t)?.environment.NEO4J_TLS_CA).toBeUndefined();
      expect(runner(t)?.secrets.NEO4J_TLS_CA_PEM).toBeUndefined();
    }
    const plain = [...synthesized.taskDefinitions.values()].filter((d) =>
      /^(bolt|neo4j):\/\//.test(d.environment.NEO4J_URI ?? ''),
    );
    expect(plain.map((d) => d.environment.TARGET)).toEqual(['infrahub-plain']);
  });

  it("WaitForNeo4j sends the target's name; its Lambda connects with the target's configured neo4j.tls", () => {
    const wait = new Map(allStates(synthesized.definition as never)).get('WaitForNeo4j') as
      | { Parameters?: { Payload?: unknown } }
      | undefined;
    expect(wait?.Parameters?.Payload).toEqual({ 'target.$': '$.target' });
    // The handler adds the target's settings from its bundled configuration (core/config/bundled.ts).
    const deployed = parseDeploymentConfig(config(), 'test config');
    for (const [target, mode] of [
      ['infrahub-require', 'require'],
      ['infrahub-plain', 'disable'],
      ['infrahub-lab', 'verify-full'],
    ] as const)
      expect(neo4jReadyEvent({ target }, deployed).tls, target).toMatchObject({ mode });
    expect(neo4jReadyEvent({ target: 'infrahub-prod' }, deployed).tls).toMatchObject({
      caSecret: 'infrahub-prod/neo4j-ca',
    });
  });
});

describe('Neo4jReady Lambda: CA secrets and the refused CA path (template)', () => {
  it('may read the Community targets credentials and CA secrets', () => {
    const app = testApp();
    const { backup } = buildApp(app, parseDeploymentConfig(example(), 'test'));
    const resources = Template.fromStack(backup as Stack).toJSON().Resources as Record<string, Resource>;
    const fn = Object.entries(resources).find(
      ([, r]) =>
        r.Type === 'AWS::Lambda::Function' &&
        JSON.stringify(r.Properties.Description ?? '').includes('answers over Bolt'),
    );
    if (!fn) throw new Error('no Neo4jReady function in the template');
    const role = JSON.stringify((fn[1].Properties.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]);
    const policies = Object.values(resources).filter(
      (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(JSON.parse(role)),
    );
    const text = JSON.stringify(policies);
    expect(text).toContain('secretsmanager:GetSecretValue');
    expect(text).toContain('secret:infrahub-lab/neo4j-ca-??????');
    expect(text).toContain('secret:infrahub-lab/neo4j-??????');
    // Only Community targets' Bolt is waited for by this Lambda: not the Enterprise prod's CA.
    expect(text).not.toContain('infrahub-prod/neo4j-ca');
  });

  it('refuses at synthesis a Community target whose CA is a path in the runner image', () => {
    const raw = example();
    raw.targets[1].neo4j.tls = { mode: 'verify-full', ca: '/opt/runner/certs/lab-neo4j-ca.pem' };
    expect(() => buildApp(testApp(), parseDeploymentConfig(raw, 'test'))).toThrow(
      /target "infrahub-lab": neo4j\.tls\.ca: \/opt\/runner\/certs\/lab-neo4j-ca\.pem is a path in the runner image, which the Neo4jReady Lambda .* cannot read: .*neo4j\.tls\.caSecret/,
    );
  });
});
