import { readFileSync } from 'node:fs';
import { App, type AppProps, type CfnResource } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { BackupStack } from '../../infra/stacks/backup-stack.js';
import { testTempDir } from './temp.js';

/** The feature flags of cdk.json, so tests synthesize exactly what `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
  return cdkJson.context;
}

/**
 * An App with cdk.json's context (plus `context`) writing to a fresh temporary folder (testTempDir:
 * removed after the test file). The Lambdas
 * are not bundled (`aws:cdk:bundling-stacks` []: the template names their assets, which tests do not
 * compare); a test that runs the bundles passes `{'aws:cdk:bundling-stacks': ['**']}`.
 */
export function testApp(context: Record<string, unknown> = {}, props: AppProps = {}): App {
  return new App({
    outdir: testTempDir('cdk-test-'),
    ...props,
    context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...context },
  });
}

type Json = unknown;

/**
 * The backup stack's template with its runner nested stacks' resources merged in, as one template
 * (infra/constructs/runner-target-group.ts puts the per-target task definitions and roles there):
 * a nested resource's logical id gets its group's construct path as a prefix (`RunnerTargets1...`),
 * and a `Ref` to one of the nested stack's parameters becomes the value the parent passes, so a
 * test finds the bucket's `Fn::GetAtt` in a target role's policy as it would in the parent.
 */
export function templateWithNestedStacks(backup: BackupStack): Template {
  const parent = Template.fromStack(backup).toJSON() as { Resources: Record<string, Record<string, Json>> };
  const resources = { ...parent.Resources };
  for (const group of backup.runner.groups) {
    const stackId = backup.resolve((group.nestedStackResource as CfnResource).logicalId) as string;
    const parameters = ((resources[stackId]?.Properties as Record<string, Json> | undefined)?.Parameters ??
      {}) as Record<string, Json>;
    const nested = Template.fromStack(group).toJSON() as { Resources: Record<string, Json> };
    const prefix = group.node.path
      .split('/')
      .slice(1)
      .join('')
      .replace(/[^A-Za-z0-9]/g, '');
    const rename = (id: string) => (id in nested.Resources ? `${prefix}${id}` : id);
    const walk = (v: Json): Json => {
      if (Array.isArray(v)) return v.map(walk);
      if (v === null || typeof v !== 'object') return v;
      const o = v as Record<string, Json>;
      if (Object.keys(o).length === 1 && 'Ref' in o) {
        const ref = String(o.Ref);
        return ref in parameters ? parameters[ref] : { Ref: rename(ref) };
      }
      if (Object.keys(o).length === 1 && 'Fn::GetAtt' in o) {
        const [id, ...rest] = o['Fn::GetAtt'] as string[];
        return { 'Fn::GetAtt': [rename(String(id)), ...rest] };
      }
      return Object.fromEntries(
        Object.entries(o).map(([k, x]) => [
          k,
          k === 'DependsOn' ? [x].flat().map((d) => rename(String(d))) : walk(x),
        ]),
      );
    };
    for (const [id, resource] of Object.entries(nested.Resources))
      resources[rename(id)] = walk(resource) as Record<string, Json>;
  }
  return Template.fromJSON({ ...parent, Resources: resources });
}

/** An IAM policy statement as a synthesized template holds it. */
export type TemplateStatement = {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
};
/** A resource of a synthesized template. */
export type TemplateResource = { Type: string; Properties: Record<string, unknown> };

/** The inline and attached statements of the role whose logical id contains `prefix` (the first such role). */
export function roleStatements(
  resources: Record<string, TemplateResource>,
  prefix: string,
): TemplateStatement[] {
  const [id, role] = Object.entries(resources).find(
    ([key, r]) => r.Type === 'AWS::IAM::Role' && key.includes(prefix),
  ) as [string, TemplateResource];
  const found = (
    (role.Properties.Policies as Array<{ PolicyDocument: { Statement: TemplateStatement[] } }>) ?? []
  ).flatMap((p) => p.PolicyDocument.Statement);
  for (const p of Object.values(resources))
    if (p.Type === 'AWS::IAM::Policy' && JSON.stringify(p.Properties.Roles).includes(`"${id}"`))
      found.push(...(p.Properties.PolicyDocument as { Statement: TemplateStatement[] }).Statement);
  return found;
}
