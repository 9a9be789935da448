import { Aws, CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { BackupBucket } from '../constructs/backup-bucket.js';

export interface ReplicaStackProps extends StackProps {
  readonly config: DeploymentConfig & { replication: NonNullable<DeploymentConfig['replication']> };
}

/** The replica bucket's name: fixed, so the primary stack in another region can name it. */
export function replicaBucketName(config: DeploymentConfig, account: string): string {
  const region = config.replication?.region ?? '';
  return `${config.name.slice(0, 20).replace(/-+$/, '')}-replica-${account}-${region}`;
}

/** The replica key's alias: the name by which the primary's replication role is granted the key. */
export function replicaKeyAlias(config: DeploymentConfig): string {
  return `alias/${config.name}/backups-replica`;
}

/**
 * The off-region copy (docs/architecture.md, "Storage, replication and monitoring"): a bucket in the
 * replication region with its own KMS key,
 * the same versioning, encryption, TLS-only policy, access logs, retention rules (tags replicate with
 * the objects) and Object Lock as the primary. Deployed as its own stack, before the primary.
 */
export class ReplicaStack extends Stack {
  readonly storage: BackupBucket;

  constructor(scope: Construct, id: string, props: ReplicaStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.storage = new BackupBucket(this, 'Storage', {
      name: config.name,
      retention: config.retention,
      objectLock: config.objectLock,
      bucketName: replicaBucketName(config, Aws.ACCOUNT_ID),
      keyAlias: replicaKeyAlias(config),
    });
    // The fixed name would outlive a failed first deploy under RETAIN and fail the retry ("already
    // exists"): RetainExceptOnCreate deletes it (still empty) when its creation rolls back, and keeps it
    // on every later delete or replacement (CloudFormation user guide, "DeletionPolicy attribute").
    this.storage.bucket.applyRemovalPolicy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE);
    new CfnOutput(this, 'ReplicaBucketName', {
      value: this.storage.bucket.bucketName,
      description: `Off-region copy of the Infrahub backups (${config.replication.region})`,
    });
  }
}
