import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { drillFamily } from '../../core/backup/plan.js';
import type { DeploymentConfig, Target } from '../../core/config/schema.js';
import { acknowledgeWildcards } from '../nag.js';
import {
  backupReads,
  RunnerTargetGroup,
  reportWrites,
  runnerTaskRole,
  TARGETS_PER_RUNNER_GROUP,
  type TargetRoleKind,
  targetRoleName,
} from './runner-target-group.js';
import { RUNNER_CONTAINER } from './runner-tasks.js';

export interface BackupRunnerProps {
  readonly config: DeploymentConfig;
  readonly bucket: s3.IBucket;
  readonly key: kms.IKey;
  /** The repository root: the image's build context (its .dockerignore keeps the context small). */
  readonly buildContext: string;
}

/**
 * The ECS side of a backup: a Fargate cluster in the configured VPC, the runner image (built from
 * containers/runner/Dockerfile with the target's Neo4j version and edition and PostgreSQL major), the
 * per-target task definitions and roles in nested stacks of up to TARGETS_PER_RUNNER_GROUP targets
 * (RunnerTargetGroup: a fleet of 1,000 targets stays under CloudFormation's 500 resources per stack),
 * and the drills' task definitions, one per image, run under the drill role (read every backup,
 * write `.restores/` only, no artifact storage, no EFS, no credentials).
 */
export class BackupRunner extends Construct {
  readonly cluster: ecs.Cluster;
  /** The drills' execution role (pulls the image, writes logs; no secrets). */
  readonly executionRole: iam.Role;
  /** Drills: read every backup, write reports under `.restores/` only. */
  readonly drillTaskRole: iam.Role;
  /** The nested stacks of per-target resources, in the configuration's target order. */
  readonly groups: RunnerTargetGroup[] = [];
  /** Per target (every group's): the backup task role. */
  readonly backupRoles = new Map<string, iam.Role>();
  /** Per target: the restore task role. */
  readonly restoreRoles = new Map<string, iam.Role>();
  /** Per target (every group's): its runner task definition. */
  readonly taskDefinitions = new Map<string, ecs.FargateTaskDefinition>();
  /** Per target with `artifacts.posixUser`: the EFS access point its artifacts mount goes through. */
  readonly artifactAccessPoints = new Map<string, efs.CfnAccessPoint>();
  private readonly roleSuffix: string;
  private readonly drillFamilies = new Set<string>();
  private readonly images = new Map<string, ecs.ContainerImage>();
  private readonly deployment: string;
  private readonly buildContext: string;

  constructor(scope: Construct, id: string, props: BackupRunnerProps) {
    super(scope, id);
    const { config } = props;
    this.deployment = config.name;
    this.buildContext = props.buildContext;
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
      description: 'Pulls the drill image and writes its logs (drills read no credentials)',
    });
    // Role names are unique in an account: the suffix tells this deployment (name and region) apart.
    this.roleSuffix = createHash('sha256')
      .update(`${config.name}/${config.region}`)
      .digest('hex')
      .slice(0, 8);
    this.drillTaskRole = runnerTaskRole(this, 'DrillTaskRole', {
      deployment: this.deployment,
      description: 'Drills: reads backups, writes reports under .restores/ only',
      statements: [...backupReads(props.bucket, props.key, '*'), reportWrites(props.bucket, '*')],
    });
    acknowledgeWildcards(
      this.drillTaskRole,
      [props.bucket.arnForObjects('*/infrahub_backup_*'), props.bucket.arnForObjects('.restores/*')],
      'A drill reads the backup it rehearses (any target, keys known at run time) and writes its report under .restores/.',
    );

    for (let i = 0; i < config.targets.length; i += TARGETS_PER_RUNNER_GROUP) {
      const targets = config.targets.slice(i, i + TARGETS_PER_RUNNER_GROUP);
      const group = new RunnerTargetGroup(this, `Targets${i / TARGETS_PER_RUNNER_GROUP + 1}`, {
        deployment: this.deployment,
        region: config.region,
        account: config.account,
        targets,
        bucket: props.bucket,
        key: props.key,
        logGroup,
        roleSuffix: this.roleSuffix,
        imageFor: (target) => this.imageFor(target),
        description: `Infrahub backup runners of ${config.name}: targets ${i + 1}-${i + targets.length} of ${config.targets.length}`,
      });
      this.groups.push(group);
      for (const [name, role] of group.backupRoles) this.backupRoles.set(name, role);
      for (const [name, role] of group.restoreRoles) this.restoreRoles.set(name, role);
      for (const [name, definition] of group.taskDefinitions) this.taskDefinitions.set(name, definition);
      for (const [name, point] of group.artifactAccessPoints) this.artifactAccessPoints.set(name, point);
    }
    for (const target of config.targets) this.addDrill(props, target, logGroup);

    Validations.of(this).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason:
        "The drills' environment holds the bucket's name and the Neo4j edition only; drills read no credentials.",
    });
    acknowledgeWildcards(
      this.executionRole,
      ['*'],
      'ecr:GetAuthorizationToken has no resource scope; image pulls and log writes are scoped by ECS to its own resources.',
    );
  }

  /**
   * The fixed name of a target's backup or restore role, `<target>-<kind>-<suffix>` (at most 58 of
   * IAM's 64 characters), the suffix a hash of the deployment's name and region.
   */
  targetRoleName(target: string, kind: TargetRoleKind): string {
    return targetRoleName(target, kind, this.roleSuffix);
  }

  /**
   * ARN pattern of every target's role of one kind (for iam:PassRole): roles live under the path
   * `/<deployment>/` (IAM User Guide, "IAM identifiers": a role ARN holds its path).
   */
  targetRoleArnPattern(kind: TargetRoleKind): string {
    return this.roleArn(`*-${kind}-${this.roleSuffix}`);
  }

  /**
   * A Step Functions intrinsic that builds the ARN of the restore role of the target at `targetPath`
   * (a JSONPath such as `$.plan.target`), for RunTask's `Overrides.TaskRoleArn.$`.
   */
  restoreRoleArnExpression(targetPath: string): string {
    return `States.Format('${this.roleArn(`{}-restore-${this.roleSuffix}`)}', ${targetPath})`;
  }

  /**
   * The execution roles of one kind of task definition, for iam:PassRole: every group's for the
   * targets' runners, the drills' own for drills.
   */
  executionRoleArns(kind: 'runner' | 'drill'): string[] {
    return kind === 'drill' ? [this.executionRole.roleArn] : this.groups.map((g) => g.executionRole.roleArn);
  }

  private roleArn(name: string): string {
    return Stack.of(this).formatArn({
      service: 'iam',
      region: '',
      resource: 'role',
      resourceName: `${this.deployment}/${name}`,
    });
  }

  /** One image per Neo4j version, edition and PostgreSQL major, shared by the targets that match. */
  private imageFor(target: Target): ecs.ContainerImage {
    const args = {
      NEO4J_VERSION: target.neo4j.version,
      NEO4J_EDITION: target.neo4j.edition,
      PG_MAJOR: String(target.postgres.majorVersion),
    };
    const key = Object.values(args).join('-');
    let image = this.images.get(key);
    if (!image) {
      image = ecs.ContainerImage.fromAsset(this.buildContext, {
        file: join('containers', 'runner', 'Dockerfile'),
        buildArgs: args,
        platform: Platform.LINUX_ARM64,
      });
      this.images.set(key, image);
    }
    return image;
  }

  /**
   * One drill task definition per image (not per target), in this stack: no credentials, no mounts,
   * more memory.
   */
  private addDrill(props: BackupRunnerProps, target: Target, logGroup: logs.ILogGroup): void {
    const { neo4j } = target;
    const drill = drillFamily(this.deployment, target);
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
        taskRole: this.drillTaskRole,
        executionRole: this.executionRole,
      });
      drillDefinition.addContainer(RUNNER_CONTAINER, {
        image: this.imageFor(target),
        essential: true,
        // TARGET comes with each run: the definition serves every target of this image. So does an
        // Enterprise target's licence (NEO4J_LICENCE, from the drill plan: targets of one image may
        // run under different agreements); the edition is the image's.
        environment: { BACKUP_BUCKET: props.bucket.bucketName, NEO4J_EDITION: neo4j.edition },
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
