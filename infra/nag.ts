import { type App, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * Runs cdk-nag's AwsSolutions pack on every synth: an unacknowledged finding fails `cdk synth`,
 * so a non-compliant change cannot slip into a deployment. Acknowledgements live beside the
 * construct they concern, each with its reason.
 */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

/**
 * Acknowledges cdk-nag's IAM5 (wildcard) findings for exactly the listed resources, as cdk-nag names
 * them (`<LogicalId.Arn>/...` for a token), so a new wildcard elsewhere still fails the synth.
 */
export function acknowledgeWildcards(scope: IConstruct, resources: string[], reason: string): void {
  const v = Validations.of(scope);
  for (const resource of resources)
    v.acknowledge({ id: `AwsSolutions-IAM5[Resource::${nagResource(scope, resource)}]`, reason });
}

/**
 * A resource string as cdk-nag names it in a finding: tokens become `<LogicalId.Attribute>`,
 * `<LogicalId>` or `<AWS::AccountId>`, as cdk-nag writes them.
 */
export function nagResource(scope: IConstruct, value: string): string {
  const render = (v: unknown): string => {
    if (typeof v === 'string') return v;
    const o = v as Record<string, unknown>;
    if ('Ref' in o) return `<${String(o.Ref)}>`;
    if ('Fn::GetAtt' in o) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(render).join(sep);
    }
    // Other intrinsics (Fn::Select of Fn::Split, as CDK writes a state machine's name): cdk-nag
    // writes them as their JSON.
    if ('Fn::Select' in o) return JSON.stringify(o);
    throw new Error(`cannot name ${JSON.stringify(v)} as cdk-nag does`);
  };
  return render(Stack.of(scope).resolve(value));
}
