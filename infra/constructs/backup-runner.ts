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
import { drillFamily, runnerFamily } from '../../core/backup/plan.js';
import type { DeploymentConfig, PostgresTlsConfig, Target } from '../../core/config/schema.js';
import { RDS_CA_BUNDLE_PATH } from '../../core/readiness/postgres-tls.js';
import { acknowledgeWildcards } from '../nag.js';

/**
 * The runner's TLS variables for a target's `postgres.tls`: PGSSLMODE always, PGSSLROOTCERT for
 * verify-full with `ca` (`rds` is the bundle the runner image downloads, RDS_CA_BUNDLE_PATH). libpq
 * reads them (PostgreSQL 15 docs, "SSL Support", https://www.postgresql.org/docs/15/libpq-ssl.html,
 * and "Environment Variables"); the runner reads them for node-postgres. A `caSecret` comes as the
 * ECS secret PG_TLS_CA_PEM instead.
 */
export function postgresTlsEnvironment(tls: PostgresTlsConfig): Record<string, string> {
  if (tls.mode !== 'verify-full' || !tls.ca) return { PGSSLMODE: tls.mode };
  return { PGSSLMODE: tls.mode, PGSSLROOTCERT: tls.ca === 'rds' ? RDS_CA_BUNDLE_PATH : tls.ca };
}

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
  private readonly drillFamilies = new Set<string>();
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
      // Kept on delete, not left behind by a failed first deploy's rollback.
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
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
    this.grantFileSystems(config);

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

  /**
   * EFS access by IAM (the mounts authorize with the task role): both roles may mount; backups may
   * write only a Community DBMS's store (neo4j-admin works on it), restores also the artifact storage.
   * Enforced when the file system's policy requires IAM authorization (no anonymous access).
   */
  private grantFileSystems(config: DeploymentConfig): void {
    const arn = (id: string) =>
      Stack.of(this).formatArn({ service: 'elasticfilesystem', resource: 'file-system', resourceName: id });
    const stores = [
      ...new Set(config.targets.flatMap((t) => (t.neo4j.dbms ? [t.neo4j.dbms.dataEfsFileSystemId] : []))),
    ];
    const artifacts = [
      ...new Set(
        config.targets.flatMap((t) => (t.artifacts.type === 'path' ? [t.artifacts.efsFileSystemId] : [])),
      ),
    ];
    const all = [...new Set([...stores, ...artifacts])];
    if (all.length === 0) return;
    for (const role of [this.taskRole, this.restoreTaskRole]) {
      role.addToPolicy(
        new iam.PolicyStatement({ actions: ['elasticfilesystem:ClientMount'], resources: all.map(arn) }),
      );
    }
    if (stores.length > 0) {
      this.taskRole.addToPolicy(
        new iam.PolicyStatement({ actions: ['elasticfilesystem:ClientWrite'], resources: stores.map(arn) }),
      );
    }
    this.restoreTaskRole.addToPolicy(
      new iam.PolicyStatement({ actions: ['elasticfilesystem:ClientWrite'], resources: all.map(arn) }),
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
   * One task definition per target (`<deployment>-<target>-runner`): backups run it under the
   * write-only backup role, restores under the read-only restore role (the state machine overrides
   * the task role); and one drill task definition per image. Three per target would pass
   * CloudFormation's 500 resources per stack at about 130 targets.
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
      // Bounded waits for a server that is still starting (core/readiness).
      NEO4J_READY_TIMEOUT_SECONDS: String(neo4j.readyTimeoutSeconds),
      PG_READY_TIMEOUT_SECONDS: String(postgres.readyTimeoutSeconds),
      ...(neo4j.edition === 'enterprise' ? { NEO4J_BACKUP_FROM: `${neo4j.host}:${neo4j.backupPort}` } : {}),
      PGHOST: postgres.host,
      PGPORT: String(postgres.port),
      PGDATABASE: postgres.database,
      // TLS of every PostgreSQL connection (postgres.tls): libpq's own variables, which the runner
      // also reads for node-postgres (core/readiness/postgres-tls.ts).
      ...postgresTlsEnvironment(postgres.tls),
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
      // postgres.tls.caSecret: the whole secret value is the CA bundle's PEM text.
      ...(postgres.tls.caSecret
        ? {
            PG_TLS_CA_PEM: ecs.Secret.fromSecretsManager(
              this.secret(postgres.tls.caSecret, `Secret-${postgres.tls.caSecret}`),
            ),
          }
        : {}),
    };

    const taskDefinition = new ecs.FargateTaskDefinition(this, `Task-${target.name}`, {
      family: runnerFamily(props.config.name, target.name),
      cpu: 1024,
      memoryLimitMiB: 4096,
      // Dumps stream to S3; local disk holds only an Enterprise backup chain (or its restore).
      ephemeralStorageGiB: 100,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.ARM64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      // Backups run as this role; restores override it with the restore role (RunTask's taskRoleArn).
      taskRole: this.taskRole,
      executionRole: this.executionRole,
    });
    const container = taskDefinition.addContainer(RUNNER_CONTAINER, {
      image: this.imageFor(props, target),
      essential: true,
      environment,
      secrets,
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: target.name }),
      stopTimeout: Duration.seconds(60),
    });
    // EFS mounts authorize with the task's IAM role: which role may write is decided by
    // elasticfilesystem:ClientWrite (granted in grantFileSystems), not by the mount.
    const efs = (fileSystemId: string, rootDirectory?: string) => ({
      fileSystemId,
      ...(rootDirectory ? { rootDirectory } : {}),
      transitEncryption: 'ENABLED',
      authorizationConfig: { iam: 'ENABLED' },
    });
    if (neo4j.dbms) {
      // Community: neo4j-admin dumps and loads the store files, so the runner mounts the DBMS's file system.
      taskDefinition.addVolume({
        name: 'neo4j-data',
        efsVolumeConfiguration: efs(neo4j.dbms.dataEfsFileSystemId, neo4j.dbms.dataRootDirectory),
      });
      container.addMountPoints({
        sourceVolume: 'neo4j-data',
        containerPath: NEO4J_DATA_MOUNT,
        readOnly: false,
      });
    }
    if (artifacts.type === 'path') {
      taskDefinition.addVolume({ name: 'artifacts', efsVolumeConfiguration: efs(artifacts.efsFileSystemId) });
      container.addMountPoints({ sourceVolume: 'artifacts', containerPath: artifacts.path, readOnly: false });
    }
    this.taskDefinitions.set(target.name, taskDefinition);

    // One drill task definition per image (not per target): no credentials, no mounts, more memory.
    const drill = drillFamily(props.config.name, target);
    if (!this.drillFamilies.has(drill)) {
      const drillDefinition = new ecs.FargateTaskDefinition(this, `Drill-${drill}`, {
        family: drill,
        cpu: 2048,
        memoryLimitMiB: 8192,
        ephemeralStorageGiB: 100,
        runtimePlatform: {
          cpuArchitecture: ecs.CpuArchitecture.ARM64,
          operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        },
        taskRole: this.restoreTaskRole,
        executionRole: this.executionRole,
      });
      drillDefinition.addContainer(RUNNER_CONTAINER, {
        image: this.imageFor(props, target),
        essential: true,
        // TARGET comes with each run: the definition serves every target of this image.
        environment: { BACKUP_BUCKET: props.bucket.bucketName },
        logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'drill' }),
        stopTimeout: Duration.seconds(60),
      });
      this.drillFamilies.add(drill);
    }
  }

  /**
   * ARNs a state machine may run: every revision of every target's runner (backups and restores), or
   * of every drill task definition.
   */
  taskDefinitionArnPattern(kind: 'runner' | 'drill' = 'runner'): string {
    return Stack.of(this).formatArn({
      service: 'ecs',
      resource: 'task-definition',
      resourceName: kind === 'runner' ? `${this.deployment}-*-runner:*` : `${this.deployment}-drill-*:*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }
}
