import { Arn, ArnFormat } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';

/**
 * A statement granting `actions` on a customer-managed KMS key (its key ARN, a literal string) only
 * through one AWS service in the key's own region: `kms:ViaService` is `<service>.<region>.amazonaws.com`
 * with the region taken from the key's ARN, not the stack's (AWS KMS Developer Guide, "kms:ViaService";
 * a service uses a key of its own region, so a secret or bucket in another region is served by that
 * region's endpoint). Throws `ValidationError` from CDK when the ARN cannot be split.
 */
export function keyUseViaService(
  keyArn: string,
  actions: string[],
  service: 's3' | 'secretsmanager',
): iam.PolicyStatement {
  const region = Arn.split(keyArn, ArnFormat.SLASH_RESOURCE_NAME).region;
  return new iam.PolicyStatement({
    actions,
    resources: [keyArn],
    conditions: { StringEquals: { 'kms:ViaService': `${service}.${region}.amazonaws.com` } },
  });
}

/**
 * keyUseViaService for many keys: one statement per region of `keyArns` (the condition names that
 * region's service endpoint) rather than one per key, so a role's policy grows by the keys' ARNs
 * only; the caller cuts long lists into statement-sized chunks (statementChunks).
 */
export function keysUseViaService(
  keyArns: readonly string[],
  actions: string[],
  service: 's3' | 'secretsmanager',
): iam.PolicyStatement[] {
  const byRegion = new Map<string, string[]>();
  for (const arn of new Set(keyArns)) {
    const region = Arn.split(arn, ArnFormat.SLASH_RESOURCE_NAME).region ?? '';
    byRegion.set(region, [...(byRegion.get(region) ?? []), arn]);
  }
  return [...byRegion].map(
    ([region, arns]) =>
      new iam.PolicyStatement({
        actions,
        resources: arns,
        conditions: { StringEquals: { 'kms:ViaService': `${service}.${region}.amazonaws.com` } },
      }),
  );
}
