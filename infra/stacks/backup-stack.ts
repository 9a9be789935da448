import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { DeploymentConfig } from '../../core/config/schema.js';
import { BackupBucket } from '../constructs/backup-bucket.js';
import { BackupFunctions } from '../constructs/backup-functions.js';

export interface BackupStackProps extends StackProps {
  readonly config: DeploymentConfig;
}

/** The primary region's stack. It only composes constructs. */
export class BackupStack extends Stack {
  readonly storage: BackupBucket;
  readonly functions: BackupFunctions;

  constructor(scope: Construct, id: string, props: BackupStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.storage = new BackupBucket(this, 'Storage', { name: config.name, retention: config.retention });
    this.functions = new BackupFunctions(this, 'Functions', {
      config,
      bucket: this.storage.bucket,
      key: this.storage.key,
    });

    new CfnOutput(this, 'BackupBucketName', {
      value: this.storage.bucket.bucketName,
      description: 'Bucket that holds the Infrahub backups',
    });
  }
}
