import { join } from 'node:path';
import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { drillFamily, restorerFamily, runnerFamily } from '../../core/backup/plan.js';
import type { DeploymentConfig, Target } from '../../core/config/schema.js';
import { acknowledgeWildcards } from '../nag.js';

/** The runner's container name in every task definition; the state machine's overrides name it. */
export const RUNNER_CONTAINER = 'runner';
/** Where a Community target's store (its EFS file system) is mounted: the neo4j image's data directory. */
export const NEO4J_DATA_MOUNT = '/data';

export interface BackupRunnerProps {
  readonly config: DeploymentConfig;
  readonly bucket: s3.IBucket;
  readonly key: kms.IKey;
  /** The repository root: the image's build context (its .dockerignore keeps the context small). */
  readonly buildContext: string;
}

/**
 * The ECS side of a backup: a Fargate cluster in the configured VPC, the runner image (built from
 * containers/runner/Dockerfile with the target's Neo4j version and edition and PostgreSQL major), and
 * one task definition per target, family `<deployment>-<target>-runner`. A target's task definition
 * holds its connection details as environment and its credentials as ECS secrets from Secrets
 * Manager, so the state machine passes only the backup id and the subcommand.
 */
export class BackupRunner extends Construct {
  readonly cluster: ecs.Cluster;
  readonly taskRole: iam.Role;
  readonly executionRole: iam.Role;
  /** Restores run under their own role: they read backups and can never write or delete one. */
  readonly restoreTaskRole: iam.Role;
  readonly taskDefinitions = new Map<string, ecs.FargateTaskDefinition>();
  readonly restoreTaskDefinitions = new Map<string, ecs.FargateTaskDefinition>();
  private readonly images = new Map<string, ecs.ContainerImage>();
  private readonly deployment: string;

  constructor(scope: Construct, id: string, props: BackupRunnerProps) {
    super(scope, id);
    const { config } = props;
    this.deployment = config.name;
    // Fargate tasks get their subnets and security groups from the state machine's RunTask call;
    // the cluster only needs to know its VPC.
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: config.network.vpcId,
      availabilityZones: config.network.availabilityZones,
    });
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      clusterName: `${config.name}-runners`,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Pulls the runner image, writes its logs and injects the credentials of the targets',
    });
    this.taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Streams backups into the backup bucket (write only, under backup prefixes)',
    });
    this.grantBackupWrites(props);
    this.restoreTaskRole = new iam.Role(this, 'RestoreTaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Reads backups to restore them (read only on the backup bucket)',
    });
    this.grantRestoreReads(props);

    for (const target of config.targets) this.addTarget(props, target, logGroup);

    Validations.of(this).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason:
        'The environment holds connection details only (hosts, ports, database names, bucket); credentials are ECS secrets from Secrets Manager.',
    });
    acknowledgeWildcards(
      this.taskRole,
      [
        props.bucket.arnForObjects('*/infrahub_backup_*'),
        ...this.artifactSources(config).map(
          (a) => `arn:${Stack.of(this).partition}:s3:::${a.bucket}/${a.prefix}*`,
        ),
      ],
      'Backup objects are created at run time under <target>/infrahub_backup_*/ (write only); artifact objects are read under the configured prefix.',
    );
    acknowledgeWildcards(
      this.executionRole,
      ['*'],
      'ecr:GetAuthorizationToken has no resource scope; image pulls and log writes are scoped by ECS to its own resources.',
    );
  }

  private grantRestoreReads(props: BackupRunnerProps): void {
    this.restoreTaskRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [props.bucket.arnForObjects('*/infrahub_backup_*')],
      }),
    );
    this.restoreTaskRole.addToPolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.bucket.bucketArn] }),
    );
    // Restore steps and drills leave their reports under .restores/ (never under a backup).
    this.restoreTaskRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [props.bucket.arnForObjects('.restores/*')],
      }),
    );
    this.restoreTaskRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [props.key.keyArn],
      }),
    );
    const sources = this.artifactSources(props.config);
    if (sources.length > 0) {
      // Artifacts are copied back into the deployment's own storage (and a multipart copy is read to hash it).
      this.restoreTaskRole.addToPolicy(
        new iam.PolicyStatement({
          actions: ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'],
          resources: sources.map((a) => `arn:${Stack.of(this).partition}:s3:::${a.bucket}/${a.prefix}*`),
        }),
      );
    }
    acknowledgeWildcards(
      this.restoreTaskRole,
      [
        props.bucket.arnForObjects('*/infrahub_backup_*'),
        props.bucket.arnForObjects('.restores/*'),
        ...sources.map((a) => `arn:${Stack.of(this).partition}:s3:::${a.bucket}/${a.prefix}*`),
      ],
      'Writes its step reports under .restores/; reads the objects of the backup being restored (keys known at run time) and writes artifacts back under the configured prefix.',
    );
  }

  private artifactSources(config: DeploymentConfig): Array<{ bucket: string; prefix: string }> {
    return config.targets.flatMap((t) =>
      t.artifacts.type === 's3' ? [{ bucket: t.artifacts.bucket, prefix: t.artifacts.prefix }] : [],
    );
  }

  private grantBackupWrites(props: BackupRunnerProps): void {
    // Write only, under backup prefixes: the runner can create a backup's objects and abort its own
    // failed multipart uploads, and can neither read nor delete a stored backup.
    this.taskRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject', 's3:PutObjectTagging', 's3:AbortMultipartUpload'],
        resources: [props.bucket.arnForObjects('*/infrahub_backup_*')],
      }),
    );
    this.taskRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [props.key.keyArn],
      }),
    );
    const artifactBuckets = this.artifactSources(props.config);
    if (artifactBuckets.length > 0) {
      this.taskRole.addToPolicy(
        new iam.PolicyStatement({
          actions: ['s3:GetObject', 's3:GetObjectVersion'],
          resources: artifactBuckets.map(
            (a) => `arn:${Stack.of(this).partition}:s3:::${a.bucket}/${a.prefix}*`,
          ),
        }),
      );
      this.taskRole.addToPolicy(
        new iam.PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [
            ...new Set(artifactBuckets.map((a) => `arn:${Stack.of(this).partition}:s3:::${a.bucket}`)),
          ],
        }),
      );
    }
  }

  /** One image per Neo4j version, edition and PostgreSQL major, shared by the targets that match. */
  private imageFor(props: BackupRunnerProps, target: Target): ecs.ContainerImage {
    const args = {
      NEO4J_VERSION: target.neo4j.version,
      NEO4J_EDITION: target.neo4j.edition,
      PG_MAJOR: String(target.postgres.majorVersion),
    };
    const key = Object.values(args).join('-');
    let image = this.images.get(key);
    if (!image) {
      image = ecs.ContainerImage.fromAsset(props.buildContext, {
        file: join('containers', 'runner', 'Dockerfile'),
        buildArgs: args,
        platform: Platform.LINUX_ARM64,
      });
      this.images.set(key, image);
    }
    return image;
  }

  private secret(name: string, id: string): secretsmanager.ISecret {
    const existing = this.node.tryFindChild(id) as secretsmanager.ISecret | undefined;
    if (existing) return existing;
    return name.startsWith('arn:')
      ? secretsmanager.Secret.fromSecretCompleteArn(this, id, name)
      : secretsmanager.Secret.fromSecretNameV2(this, id, name);
  }

  /**
   * Three task definitions per target, one image: `-runner` (backups, write-only role, store and
   * artifacts mounted read-only except the Community store, which the dump needs as neo4j-admin
   * does), `-restorer` (restores, read-only role on backups, mounts writable) and `-drill`
   * (disposable databases inside the task: no credentials, no mounts, more memory).
   */
  private addTarget(props: BackupRunnerProps, target: Target, logGroup: logs.ILogGroup): void {
    const { neo4j, postgres, artifacts } = target;
    const neo4jSecret = this.secret(neo4j.credentialsSecret, `Secret-${neo4j.credentialsSecret}`);
    const pgSecret = this.secret(postgres.credentialsSecret, `Secret-${postgres.credentialsSecret}`);
    const environment: Record<string, string> = {
      TARGET: target.name,
      BACKUP_BUCKET: props.bucket.bucketName,
      NEO4J_EDITION: neo4j.edition,
      NEO4J_DATABASES: neo4j.databases.join(','),
      NEO4J_URI: `bolt://${neo4j.host}:${neo4j.boltPort}`,
      ...(neo4j.edition === 'enterprise' ? { NEO4J_BACKUP_FROM: `${neo4j.host}:${neo4j.backupPort}` } : {}),
      PGHOST: postgres.host,
      PGPORT: String(postgres.port),
      PGDATABASE: postgres.database,
      ARTIFACTS_SOURCE: artifacts.type,
      ...(artifacts.type === 's3'
        ? { ARTIFACTS_BUCKET: artifacts.bucket, ARTIFACTS_PREFIX: artifacts.prefix }
        : { ARTIFACTS_PATH: artifacts.path }),
    };
    const secrets = {
      NEO4J_USERNAME: ecs.Secret.fromSecretsManager(neo4jSecret, 'username'),
      NEO4J_PASSWORD: ecs.Secret.fromSecretsManager(neo4jSecret, 'password'),
      PGUSER: ecs.Secret.fromSecretsManager(pgSecret, 'username'),
      PGPASSWORD: ecs.Secret.fromSecretsManager(pgSecret, 'password'),
    };

    const define = (
      id: string,
      family: string,
      role: iam.IRole,
      size: { cpu: number; memoryLimitMiB: number },
      container: { environment: Record<string, string>; secrets?: Record<string, ecs.Secret> },
    ) => {
      const taskDefinition = new ecs.FargateTaskDefinition(this, id, {
        family,
        ...size,
        // Dumps stream to S3; local disk holds an Enterprise backup chain, or a drill's databases.
        ephemeralStorageGiB: 100,
        runtimePlatform: {
          cpuArchitecture: ecs.CpuArchitecture.ARM64,
          operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        },
        taskRole: role,
        executionRole: this.executionRole,
      });
      const added = taskDefinition.addContainer(RUNNER_CONTAINER, {
        image: this.imageFor(props, target),
        essential: true,
        ...container,
        logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: target.name }),
        stopTimeout: Duration.seconds(60),
      });
      return { taskDefinition, container: added };
    };
    const mount = (
      t: { taskDefinition: ecs.FargateTaskDefinition; container: ecs.ContainerDefinition },
      writable: { artifacts: boolean },
    ) => {
      if (neo4j.dbms) {
        // Community: neo4j-admin dumps and loads the store files, so the runner mounts the DBMS's file system.
        t.taskDefinition.addVolume({
          name: 'neo4j-data',
          efsVolumeConfiguration: {
            fileSystemId: neo4j.dbms.dataEfsFileSystemId,
            rootDirectory: neo4j.dbms.dataRootDirectory,
            transitEncryption: 'ENABLED',
          },
        });
        t.container.addMountPoints({
          sourceVolume: 'neo4j-data',
          containerPath: NEO4J_DATA_MOUNT,
          readOnly: false,
        });
      }
      if (artifacts.type === 'path') {
        t.taskDefinition.addVolume({
          name: 'artifacts',
          efsVolumeConfiguration: { fileSystemId: artifacts.efsFileSystemId, transitEncryption: 'ENABLED' },
        });
        t.container.addMountPoints({
          sourceVolume: 'artifacts',
          containerPath: artifacts.path,
          readOnly: !writable.artifacts,
        });
      }
    };

    const backup = define(
      `Task-${target.name}`,
      runnerFamily(props.config.name, target.name),
      this.taskRole,
      {
        cpu: 1024,
        memoryLimitMiB: 4096,
      },
      { environment, secrets },
    );
    mount(backup, { artifacts: false });
    this.taskDefinitions.set(target.name, backup.taskDefinition);

    const restore = define(
      `Restore-${target.name}`,
      restorerFamily(props.config.name, target.name),
      this.restoreTaskRole,
      { cpu: 1024, memoryLimitMiB: 4096 },
      { environment, secrets },
    );
    mount(restore, { artifacts: true });
    this.restoreTaskDefinitions.set(target.name, restore.taskDefinition);

    // A drill never reaches the deployment: only the bucket, and the disposable databases' memory.
    define(
      `Drill-${target.name}`,
      drillFamily(props.config.name, target.name),
      this.restoreTaskRole,
      { cpu: 2048, memoryLimitMiB: 8192 },
      { environment: { TARGET: target.name, BACKUP_BUCKET: props.bucket.bucketName } },
    );
  }

  /**
   * ARNs a state machine may run: every revision of every target's family of one kind (`runner` for
   * backups, `restorer` for restores, `drill` for drills).
   */
  taskDefinitionArnPattern(kind: 'runner' | 'restorer' | 'drill' = 'runner'): string {
    return Stack.of(this).formatArn({
      service: 'ecs',
      resource: 'task-definition',
      resourceName: `${this.deployment}-*-${kind}:*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }
}
