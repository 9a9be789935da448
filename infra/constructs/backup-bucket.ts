import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { Retention } from '../../core/config/schema.js';

export interface BackupBucketProps {
  /** Prefix for the key alias; the deployment's name. */
  readonly name: string;
  readonly retention: Retention;
}

/**
 * The versioned, KMS-encrypted bucket that holds every backup, with its own customer key and a
 * separate bucket for server access logs. Retention classes, replication and Object Lock build on
 * this bucket (design.md section 5).
 */
export class BackupBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly key: kms.Key;
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: BackupBucketProps) {
    super(scope, id);

    this.key = new kms.Key(this, 'Key', {
      alias: `alias/${props.name}/backups`,
      description: `Encrypts Infrahub backups (${props.name})`,
      enableKeyRotation: true,
      // Losing the key loses every backup it encrypted: never delete it with the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Access logs cannot go to an SSE-KMS bucket with a customer key, so S3-managed keys here.
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'expire-access-logs',
          expiration: Duration.days(365),
          noncurrentVersionExpiration: Duration.days(30),
        },
      ],
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      // S3 Bucket Keys cut KMS request costs for the many objects of a backup.
      bucketKeyEnabled: true,
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'backup-bucket/',
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'abort-incomplete-multipart-uploads',
          // A runner that dies mid-stream leaves parts behind; they are never a backup.
          abortIncompleteMultipartUploadAfter: Duration.days(2),
        },
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(props.retention.noncurrentVersionDays),
        },
      ],
    });
  }
}
