import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { packageRoot } from '../../core/package-root.js';
import { BackupBucket } from '../constructs/backup-bucket.js';
import { BackupFunctions } from '../constructs/backup-functions.js';
import { BackupMonitoring } from '../constructs/backup-monitoring.js';
import { BackupRunner } from '../constructs/backup-runner.js';
import { BackupSchedules } from '../constructs/backup-schedules.js';
import { BackupStateMachine } from '../constructs/backup-state-machine.js';
import { NetworkEndpoints } from '../constructs/network-endpoints.js';
import { allowServicePublishers, createNoticesKey, grantNoticeKeys } from '../constructs/notices.js';
import { DrillStateMachine, RestoreStateMachine } from '../constructs/restore-state-machine.js';
import { replicaBucketName, replicaKeyAlias } from './replica-stack.js';

export interface BackupStackProps extends StackProps {
  readonly config: DeploymentConfig;
}

/** The primary region's stack. It only composes constructs. */
export class BackupStack extends Stack {
  readonly storage: BackupBucket;
  readonly functions: BackupFunctions;
  readonly runner: BackupRunner;
  readonly backup: BackupStateMachine;
  readonly restore: RestoreStateMachine;
  readonly drill: DrillStateMachine;
  readonly topic: sns.Topic;
  /** The notice topic's own key (never the backup key). */
  readonly noticesKey: kms.Key;
  readonly monitoring: BackupMonitoring;
  /** The VPC endpoints, when `network.createEndpoints` is set. */
  readonly endpoints?: NetworkEndpoints;

  constructor(scope: Construct, id: string, props: BackupStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.storage = new BackupBucket(this, 'Storage', {
      name: config.name,
      retention: config.retention,
      objectLock: config.objectLock,
      ...(config.replication
        ? {
            replicateTo: {
              bucketName: replicaBucketName(config, this.account),
              region: config.replication.region,
              account: this.account,
              keyAlias: replicaKeyAlias(config),
              replicationTimeControl: config.replication.replicationTimeControl,
            },
          }
        : {}),
    });
    // Enterprise targets' Neo4j servers read the chains their restores stage (neo4j.seed.serverRoleArns).
    for (const target of config.targets)
      if (target.neo4j.edition === 'enterprise')
        this.storage.grantSeedReads(target.name, target.neo4j.seed.serverRoleArns);
    // Notices have their own key: the backup key encrypts backups only (issue 13, item 12).
    this.noticesKey = createNoticesKey(this, config.name);
    this.topic = new sns.Topic(this, 'Notifications', {
      displayName: `Infrahub backups (${config.name})`,
      masterKey: this.noticesKey,
      enforceSSL: true,
    });
    // The TLS-only topic policy replaces SNS's default one: alarms and rules must be named in it.
    allowServicePublishers(this.topic, this.noticesKey, { alarmNamePrefix: `${config.name}-` });
    for (const email of config.notifications.emails)
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    this.functions = new BackupFunctions(this, 'Functions', {
      config,
      bucket: this.storage.bucket,
      key: this.storage.key,
      topic: this.topic,
    });
    if (config.network.createEndpoints) {
      this.endpoints = new NetworkEndpoints(this, 'Endpoints', {
        config,
        clientSecurityGroups: this.functions.vpcSecurityGroups,
      });
    }
    grantNoticeKeys(
      [this.functions.notify, this.functions.restoreReport],
      this.noticesKey,
      config.notifications.topicKeyArns,
    );
    this.runner = new BackupRunner(this, 'Runner', {
      config,
      bucket: this.storage.bucket,
      key: this.storage.key,
      // The package's root (the repository's, or an installed package's when the CLI synthesizes).
      buildContext: packageRoot(),
    });
    this.backup = new BackupStateMachine(this, 'Backup', {
      config,
      functions: this.functions,
      runner: this.runner,
      storage: { bucket: this.storage.bucket, key: this.storage.key },
    });
    this.restore = new RestoreStateMachine(this, 'Restore', {
      config,
      functions: this.functions,
      runner: this.runner,
    });
    this.drill = new DrillStateMachine(this, 'RestoreDrill', {
      config,
      functions: this.functions,
      runner: this.runner,
      storage: { bucket: this.storage.bucket, key: this.storage.key },
    });
    new BackupSchedules(this, 'Schedules', {
      config,
      stateMachine: this.backup.stateMachine,
      drillStateMachine: this.drill.stateMachine,
      restoreStateMachine: this.restore.stateMachine,
    });
    this.monitoring = new BackupMonitoring(this, 'Monitoring', {
      config,
      topic: this.topic,
      guardedKeys: [this.storage.key],
      stateMachine: this.backup.stateMachine,
      drillStateMachine: this.drill.stateMachine,
      freshness: this.functions.freshness,
    });

    new CfnOutput(this, 'BackupBucketName', {
      value: this.storage.bucket.bucketName,
      description: 'Bucket that holds the Infrahub backups',
    });
    new CfnOutput(this, 'BackupStateMachineArn', {
      value: this.backup.stateMachine.stateMachineArn,
      description: 'Start a backup here (console, CLI, schedules)',
    });
    new CfnOutput(this, 'RestoreStateMachineArn', {
      value: this.restore.stateMachine.stateMachineArn,
      description: 'Start a restore here (input: target, backupId or "latest", components, mode, dryRun)',
    });
    new CfnOutput(this, 'RestoreDrillStateMachineArn', {
      value: this.drill.stateMachine.stateMachineArn,
      description:
        'Restore drills (scheduled by restore-drill schedules; input: target, or targets (names or "*") for a fleet, backup, windowDays)',
    });
    if (this.functions.createdSecurityGroup) {
      new CfnOutput(this, 'LambdaSecurityGroupId', {
        value: this.functions.createdSecurityGroup.securityGroupId,
        description:
          'Security group of the Lambdas that call the Infrahub API: allow it where the API admits clients',
      });
    }
    new CfnOutput(this, 'NotificationTopicArn', {
      value: this.topic.topicArn,
      description: 'Backup success and failure notices',
    });
  }
}
