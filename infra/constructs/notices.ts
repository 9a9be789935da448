/**
 * The keys and policies around the notices and the execution logs (issue 13, items 2, 4 and 12):
 * the notice topic's own KMS key (not the backup key), the topic and key policies that let
 * CloudWatch alarms and EventBridge rules publish to that encrypted topic, the grants for extra
 * topics encrypted with customer keys, and the KMS key of the state machines' log groups.
 */
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';

/**
 * The notice topic's own customer-managed key, alias `alias/<name>/notices`. Notices are only in
 * flight (SNS keeps no message once delivered), so the key goes with the stack (7-day pending
 * window); the backup key, which protects every backup, never encrypts them.
 */
export function createNoticesKey(scope: Construct, name: string): kms.Key {
  return new kms.Key(scope, 'NoticesKey', {
    alias: `alias/${name}/notices`,
    description: `Encrypts the Infrahub backup notices (${name}): SNS topic`,
    enableKeyRotation: true,
    removalPolicy: RemovalPolicy.DESTROY,
    pendingWindow: Duration.days(7),
  });
}

/**
 * Lets AWS services publish to the KMS-encrypted notice topic. A topic policy (the stack's, which
 * enforces TLS) replaces SNS's default policy, so the services must be named in it:
 *
 * - CloudWatch alarms: `sns:Publish` for `cloudwatch.amazonaws.com`, scoped with `aws:SourceAccount`
 *   and `aws:SourceArn` to this stack's alarms (`<alarmNamePrefix>*`) (Amazon SNS Developer Guide,
 *   "Amazon SNS access control case examples": CloudWatch alarms publishing to a topic).
 * - EventBridge rules of this account (ours, the key-deletion guard; and the operator's, if they
 *   route the backup events to the topic): `sns:Publish` for `events.amazonaws.com`, scoped with
 *   `aws:SourceAccount` and `aws:SourceArn` to this account's rules (Amazon EventBridge User Guide,
 *   "Using resource-based policies": Amazon SNS permissions).
 * - The topic's key: both services need `kms:Decrypt` and `kms:GenerateDataKey*` on it (Amazon SNS
 *   Developer Guide, "Enable compatibility between event sources from AWS services and encrypted
 *   topics"). CloudWatch's statement carries `aws:SourceAccount`; EventBridge's carries none, as
 *   the KMS request made for EventBridge delivery does not include those condition keys.
 */
export function allowServicePublishers(
  topic: sns.Topic,
  key: kms.IKey,
  props: { readonly alarmNamePrefix: string },
): void {
  const stack = Stack.of(topic);
  const account = stack.account;
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': account },
        ArnLike: {
          'aws:SourceArn': stack.formatArn({
            service: 'cloudwatch',
            resource: 'alarm',
            resourceName: `${props.alarmNamePrefix}*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
      },
    }),
  );
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'EventBridgeRulesPublish',
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': account },
        ArnLike: {
          'aws:SourceArn': stack.formatArn({ service: 'events', resource: 'rule', resourceName: '*' }),
        },
      },
    }),
  );
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsUseKey',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
      conditions: { StringEquals: { 'aws:SourceAccount': account } },
    }),
  );
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'EventBridgeRulesUseKey',
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
    }),
  );
}

/**
 * Lets the functions that send notices publish to extra topics encrypted with customer keys
 * (`notifications.topicKeyArns`): publishing to an SSE-KMS topic needs `kms:GenerateDataKey` and
 * `kms:Decrypt` on its key (Amazon SNS Developer Guide, "Encryption at rest", key permissions), and
 * the key's own policy must allow this account. The notice topic's key is granted here too.
 */
export function grantNoticeKeys(
  publishers: iam.IGrantable[],
  noticesKey: kms.IKey,
  topicKeyArns: readonly string[],
): void {
  for (const publisher of publishers) {
    publisher.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        // kms:GenerateDataKey, not the GenerateDataKey* wildcard: the one SNS calls for a publisher.
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [noticesKey.keyArn, ...topicKeyArns],
      }),
    );
  }
}

/**
 * The KMS key of the state machines' log groups (they log at ALL with execution data: inputs,
 * outputs, error causes), one per stack, created on first use. Its policy lets the regional
 * CloudWatch Logs service principal use it only for this account's log groups, through the
 * encryption context `kms:EncryptionContext:aws:logs:arn` (Amazon CloudWatch Logs User Guide,
 * "Encrypt log data in CloudWatch Logs using AWS KMS", step 2: key policy). Retained on delete and on
 * a failed first deploy's rollback (RetainExceptOnCreate): the retained log groups stay readable.
 */
export function stateMachineLogsKey(scope: Construct): kms.Key {
  const stack = Stack.of(scope);
  const existing = stack.node.tryFindChild('StateMachineLogsKey');
  if (existing) return existing as kms.Key;
  const key = new kms.Key(stack, 'StateMachineLogsKey', {
    description: `Encrypts the state machines' execution logs (${stack.stackName})`,
    enableKeyRotation: true,
    removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
  });
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchLogsUseKey',
      principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': stack.formatArn({
            service: 'logs',
            resource: 'log-group',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
      },
    }),
  );
  return key;
}
