import { createHash } from 'node:crypto';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { FLEET_RESULTS_ROOT, NOTICES_ROOT, RESTORE_SEEDS_ROOT } from '../../core/backup/layout.js';
import {
  type ColdStorageClass,
  expirationDays,
  FILE_TAG,
  PENDING,
  RETENTION_TAG,
  type RetentionClass,
  RetentionClasses,
} from '../../core/backup/retention.js';
import type { DeploymentConfig, Retention } from '../../core/config/schema.js';
import { acknowledgeWildcards } from '../nag.js';

export interface BackupBucketProps {
  /** Prefix for the key alias; the deployment's name. */
  readonly name: string;
  readonly retention: Retention;
  /** Optional Object Lock: every new object version is locked for `days` in this mode. */
  readonly objectLock?: DeploymentConfig['objectLock'];
  /** A fixed bucket name (the replica's, so the primary can name its destination); generated if unset. */
  readonly bucketName?: string;
  /** The key's alias; `alias/<name>/backups` by default. */
  readonly keyAlias?: string;
  /** Off-region replication of every object version into this bucket (in another region). */
  readonly replicateTo?: ReplicationDestination;
}

/** CDK's names of the S3 storage classes a backup may move to (the values are S3's own). */
const STORAGE_CLASSES: Record<ColdStorageClass, s3.StorageClass> = {
  GLACIER_IR: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
  GLACIER: s3.StorageClass.GLACIER,
  DEEP_ARCHIVE: s3.StorageClass.DEEP_ARCHIVE,
  STANDARD_IA: s3.StorageClass.INFREQUENT_ACCESS,
  ONEZONE_IA: s3.StorageClass.ONE_ZONE_INFREQUENT_ACCESS,
  INTELLIGENT_TIERING: s3.StorageClass.INTELLIGENT_TIERING,
};

/**
 * The rules that move the classes of `retention.coldStorage` (validated by the configuration schema:
 * core/backup/retention.ts coldStorageProblems) to its storage class `afterDays` after creation, one
 * per class. They match the class's tag AND `backup-part=file`, which the seal puts on a backup's
 * files only (core/backup/catalog.ts tagObjects): the manifest and the `.runner/` records stay in
 * Standard, so listing, inspecting, quick verification and a restore plan read them without a
 * restore, and only the files a restore downloads are archived. Objects under 128 KB never move
 * either (TransitionDefaultMinimumObjectSize all_storage_classes_128K, set on the bucket: S3 User
 * Guide, "Transitioning objects using Amazon S3 Lifecycle"; the cold classes bill at least 128 KB an
 * object). Backups sealed before this rule existed carry no `backup-part` tag and stay where they are.
 */
function coldTransitions(retention: Retention): s3.LifecycleRule[] {
  const cold = retention.coldStorage;
  if (!cold) return [];
  return cold.classes.map((cls: RetentionClass) => ({
    id: `move-${cls}-backups-to-${cold.storageClass.toLowerCase().replace(/_/g, '-')}`,
    tagFilters: { [RETENTION_TAG]: cls, [FILE_TAG.key]: FILE_TAG.value },
    transitions: [
      { storageClass: STORAGE_CLASSES[cold.storageClass], transitionAfter: Duration.days(cold.afterDays) },
    ],
  }));
}

/** Where the primary bucket replicates to, by name: the replica stack deploys in another region. */
export interface ReplicationDestination {
  readonly bucketName: string;
  readonly region: string;
  readonly account: string;
  /** The replica key's alias (without "alias/"'s ARN); S3 encrypts replicas with it. */
  readonly keyAlias: string;
  readonly replicationTimeControl: boolean;
}

/**
 * The versioned, KMS-encrypted bucket that holds every backup, with its own customer key and a
 * separate bucket for server access logs. Retention classes, replication and Object Lock build on
 * this bucket (docs/architecture.md, "Storage, replication and monitoring").
 */
export class BackupBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly key: kms.Key;
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: BackupBucketProps) {
    super(scope, id);

    this.key = new kms.Key(this, 'Key', {
      alias: props.keyAlias ?? `alias/${props.name}/backups`,
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
      ...(props.bucketName ? { bucketName: props.bucketName } : {}),
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
      // Said, not left to S3's default: objects under 128 KB never move (coldTransitions).
      ...(props.retention.coldStorage
        ? {
            transitionDefaultMinimumObjectSize:
              s3.TransitionDefaultMinimumObjectSize.ALL_STORAGE_CLASSES_128_K,
          }
        : {}),
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
        {
          id: 'remove-expired-delete-markers',
          expiredObjectDeleteMarker: true,
        },
        // Grandfather-father-son: the manifest step tags a completed backup's objects with their
        // class; each class expires after its count of periods (core/backup/retention.ts), and the
        // classes of retention.coldStorage move to its storage class after afterDays. The newest
        // backup of each target is tagged "newest", which no rule matches: it neither expires nor
        // moves while it is the newest.
        ...RetentionClasses.filter((cls) => props.retention[cls] > 0).map((cls) => ({
          id: `expire-${cls}-backups`,
          tagFilters: { [RETENTION_TAG]: cls },
          expiration: Duration.days(expirationDays(props.retention)[cls]),
        })),
        ...coldTransitions(props.retention),
        {
          // Enterprise restores stage the chain their servers seed from and delete it when done; what
          // a failed restore left goes after two days (core/backup/layout.ts seedStagingPrefix).
          id: 'expire-restore-seeds',
          prefix: RESTORE_SEEDS_ROOT,
          expiration: Duration.days(2),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          // The notices' per-channel markers matter only while a notice may still be retried.
          id: 'expire-notice-markers',
          prefix: NOTICES_ROOT,
          expiration: Duration.days(30),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          // A backup's Distributed Map writes its children's results here for its Report; kept a
          // month for investigation (each execution's history keeps the outcome too).
          id: 'expire-fleet-results',
          prefix: FLEET_RESULTS_ROOT,
          expiration: Duration.days(30),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          // Runners upload tagged "pending"; a backup that never completes never loses that tag.
          id: 'expire-incomplete-backups',
          tagFilters: { [RETENTION_TAG]: PENDING },
          expiration: Duration.days(props.retention.incompleteDays),
        },
      ],
      ...(props.objectLock
        ? {
            objectLockEnabled: true,
            objectLockDefaultRetention:
              props.objectLock.mode === 'COMPLIANCE'
                ? s3.ObjectLockRetention.compliance(Duration.days(props.objectLock.days))
                : s3.ObjectLockRetention.governance(Duration.days(props.objectLock.days)),
          }
        : {}),
    });
    if (props.replicateTo) this.replicate(props.replicateTo, props.objectLock !== undefined);
  }

  /**
   * Lets the Neo4j servers of a target read the chain an Enterprise restore stages for them
   * (`.restore-seeds/<target>/`): the CloudSeedProvider lists the folder to find the chain ending at
   * the seed URI's file and downloads each file with the server's own credentials (Neo4j Operations
   * Manual, "Create a database from a URI"), so the bucket policy grants them list and read there,
   * and the key policy lets them decrypt through S3 in this region. Nothing outside that prefix.
   *
   * @param target the target's name
   * @param roleArns the IAM roles the target's Neo4j servers run as (config neo4j.seed.serverRoleArns)
   */
  grantSeedReads(target: string, roleArns: readonly string[]): void {
    if (roleArns.length === 0) return;
    const principals = roleArns.map((arn) => new iam.ArnPrincipal(arn));
    const prefix = `${RESTORE_SEEDS_ROOT}${target}/`;
    // Statement ids are letters and digits only: the name's, and a digest of it so that "prod-a"
    // and "proda" stay apart (S3 refuses a policy with a Sid twice).
    const id = `${target.replace(/[^A-Za-z0-9]/g, '')}${createHash('sha256').update(target).digest('hex').slice(0, 8)}`;
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: `SeedReads${id}`,
        principals,
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [this.bucket.arnForObjects(`${prefix}*`)],
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: `SeedList${id}`,
        principals,
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } },
      }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: `SeedDecrypt${id}`,
        principals,
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
      }),
    );
  }

  /**
   * Replicates every new object version (tags included) to the destination bucket, re-encrypted with
   * the destination's own key; delete markers are not replicated, so a deletion here never reaches
   * the copy. Optional Replication Time Control (15-minute SLA, with its metrics).
   */
  private replicate(to: ReplicationDestination, objectLock: boolean): void {
    const stack = Stack.of(this);
    const destinationArn = `arn:${stack.partition}:s3:::${to.bucketName}`;
    const role = new iam.Role(this, 'ReplicationRole', {
      assumedBy: new iam.ServicePrincipal('s3.amazonaws.com'),
      description: 'Copies backups to the replica bucket in another region (no deletes)',
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
        resources: [this.bucket.bucketArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: [
          's3:GetObjectVersionForReplication',
          's3:GetObjectVersionAcl',
          's3:GetObjectVersionTagging',
          ...(objectLock ? ['s3:GetObjectRetention', 's3:GetObjectLegalHold'] : []),
        ],
        resources: [this.bucket.arnForObjects('*')],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:ReplicateObject', 's3:ReplicateTags'],
        resources: [`${destinationArn}/*`],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [this.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
      }),
    );
    // The replica key lives in the other stack; it is granted by its alias, the one name both know.
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
        resources: [`arn:${stack.partition}:kms:${to.region}:${to.account}:key/*`],
        conditions: {
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': to.keyAlias },
          StringEquals: { 'kms:ViaService': `s3.${to.region}.amazonaws.com` },
        },
      }),
    );
    const cfn = this.bucket.node.defaultChild as s3.CfnBucket;
    cfn.replicationConfiguration = {
      role: role.roleArn,
      rules: [
        {
          id: 'off-region-copy',
          status: 'Enabled',
          priority: 1,
          filter: { prefix: '' },
          deleteMarkerReplication: { status: 'Disabled' },
          sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
          destination: {
            bucket: destinationArn,
            encryptionConfiguration: {
              replicaKmsKeyId: `arn:${stack.partition}:kms:${to.region}:${to.account}:${to.keyAlias}`,
            },
            ...(to.replicationTimeControl
              ? {
                  replicationTime: { status: 'Enabled', time: { minutes: 15 } },
                  metrics: { status: 'Enabled', eventThreshold: { minutes: 15 } },
                }
              : {}),
          },
        },
      ],
    };
    acknowledgeWildcards(
      role,
      [
        this.bucket.arnForObjects('*'),
        `${destinationArn}/*`,
        `arn:${stack.partition}:kms:${to.region}:${to.account}:key/*`,
      ],
      'Replication reads every object version of the source and writes replicas of them (no deletes); the replica key is matched by its alias.',
    );
  }
}
