import {
  ArnFormat,
  CfnParameter,
  Duration,
  NestedStack,
  type NestedStackProps,
  Stack,
  Validations,
} from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { MANIFEST_FILE, RESTORE_SEEDS_ROOT, RESTORES_ROOT } from '../../core/backup/layout.js';
import { runnerFamily } from '../../core/backup/plan.js';
import { RETENTION_TAG } from '../../core/backup/retention.js';
import type { Neo4jTlsConfig, PostgresTlsConfig } from '../../core/config/schema.js';
import {
  AMBIGUOUS_SECRET_NAME,
  hostPortOf,
  RUNNER_NEO4J_DATA_MOUNT,
  secretArnFor,
  statementChunks,
  TARGETS_PER_RUNNER_GROUP,
  type Target,
} from '../../core/config/schema.js';
import { boltUri } from '../../core/readiness/neo4j-tls.js';
import { RDS_CA_BUNDLE_PATH } from '../../core/readiness/postgres-tls.js';
import { acknowledgeWildcards } from '../nag.js';
import { keysUseViaService, keyUseViaService } from './key-use.js';
import { acknowledgeTaskToken, RUNNER_CONTAINER, taskTokenStatement } from './runner-tasks.js';

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

/**
 * The runner's Bolt variables for a target's Neo4j (core/readiness/neo4j-tls.ts neo4jTlsFromEnv reads
 * them): NEO4J_URI with the scheme of `neo4j.tls.mode` (`bolt+s://` verify-full, `bolt+ssc://`
 * require, `bolt://` only for an explicit disable), NEO4J_TLS_MODE always, and NEO4J_TLS_CA for
 * verify-full with `ca` (a PEM path in the runner image). A `caSecret` comes as the ECS secret
 * NEO4J_TLS_CA_PEM instead; neither: the system trust store.
 */
export function neo4jBoltEnvironment(neo4j: {
  host: string;
  boltPort: number;
  edition: 'community' | 'enterprise';
  tls: Neo4jTlsConfig;
}): Record<string, string> {
  return {
    // Enterprise may be a cluster: the neo4j scheme routes `system` writes to its leader (boltUri).
    NEO4J_URI: boltUri(neo4j.host, neo4j.boltPort, neo4j.tls.mode, neo4j.edition === 'enterprise'),
    NEO4J_TLS_MODE: neo4j.tls.mode,
    ...(neo4j.tls.mode === 'verify-full' && neo4j.tls.ca ? { NEO4J_TLS_CA: neo4j.tls.ca } : {}),
  };
}

/**
 * The runner task's ephemeral storage in GiB (AWS Fargate: 21 to 200 GiB, Amazon ECS Developer Guide,
 * "Fargate task ephemeral storage"): 100 GiB (an Enterprise chain, a restore's staged files), more for
 * a Community target whose dump reads a copy of its store (neo4j.dumpFrom "copy", the default): the
 * store's `timeouts.dataSizeGiB` and a tenth of it plus 10 GiB of headroom (the counting server's
 * files, the runner's own), at most 200. A store larger than the disk is dumped in place (the runner
 * checks the free space before it copies: backupNeo4jCommunity).
 */
export function runnerEphemeralStorageGiB(target: Pick<Target, 'neo4j' | 'timeouts'>): number {
  const base = 100;
  const size = target.timeouts.dataSizeGiB;
  if (!target.neo4j.dbms || target.neo4j.edition !== 'community' || size === undefined) return base;
  if ((target.neo4j.dumpFrom ?? 'copy') !== 'copy') return base;
  return Math.min(200, Math.max(base, Math.ceil(size * 1.1) + 10));
}

/**
 * The ARN of a DBMS's ECS service (neo4j.dbms: a name in a cluster, or already an ARN), in the
 * stack's account and region: what its scaling may touch (Amazon ECS, "Actions, resources, and
 * condition keys": UpdateService and DescribeServices take the service resource).
 */
export function dbmsServiceArn(scope: Construct, cluster: string, service: string): string {
  return service.startsWith('arn:')
    ? service
    : Stack.of(scope).formatArn({
        service: 'ecs',
        resource: 'service',
        resourceName: `${cluster.replace(/^.*:cluster\//, '')}/${service}`,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      });
}

/** Where a Community target's store (its EFS file system) is mounted: the neo4j image's data directory. */
export const NEO4J_DATA_MOUNT = RUNNER_NEO4J_DATA_MOUNT;

/** A secret reference (name or ARN) that the stack cannot use; the message says what to give instead. */
export class SecretReferenceError extends Error {
  override readonly name = 'SecretReferenceError';
}

/** The kinds of per-target task role: backups write, restores read and write the deployment back. */
export type TargetRoleKind = 'backup' | 'restore';

/** Reading backups (`target` or "*" for every target): objects, their versions and the listing. */
export function backupReads(bucket: s3.IBucket, key: kms.IKey, target: string): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resources: [bucket.arnForObjects(`${target}/infrahub_backup_*`)],
    }),
    new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }),
    new iam.PolicyStatement({ actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [key.keyArn] }),
  ];
}

/**
 * A refresh destination's reads of its sources' backups (`targets[].refreshFrom`): their objects and
 * object versions under `<source>/infrahub_backup_*` only, nothing else of theirs (not their
 * `.restores/`, seeds or locks); listing and the bucket key come with the target's own backupReads.
 * Empty without refreshFrom.
 */
export function refreshReads(bucket: s3.IBucket, sources: readonly string[]): iam.PolicyStatement[] {
  if (sources.length === 0) return [];
  return [
    new iam.PolicyStatement({
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resources: sources.map((source) => bucket.arnForObjects(`${source}/infrahub_backup_*`)),
    }),
  ];
}

/**
 * Restore steps and drills leave their reports under `.restores/<target>/<restore id>/`
 * (core/backup/layout.ts restorePrefix; never under a backup): a target's restore role writes only
 * under its own target's (`target`), the drill role, shared by every target, under any ("*").
 */
export function reportWrites(bucket: s3.IBucket, target: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    actions: ['s3:PutObject'],
    resources: [bucket.arnForObjects(reportObjects(target))],
  });
}

/** The report keys a role may write: `.restores/*` for every target, else `.restores/<target>/*`. */
export function reportObjects(target: string): string {
  return target === '*' ? `${RESTORES_ROOT}*` : `${RESTORES_ROOT}${target}/*`;
}

/**
 * A runner task role under the deployment's IAM path, its policy inline (one CloudFormation
 * resource), assumed by ECS tasks; every runner task answers its waitForTaskToken state, so the role
 * also holds taskTokenStatement (runner-tasks.ts).
 */
export function runnerTaskRole(
  scope: Construct,
  id: string,
  props: { deployment: string; description: string; statements: iam.PolicyStatement[]; roleName?: string },
): iam.Role {
  const role = new iam.Role(scope, id, {
    assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    description: props.description,
    path: `/${props.deployment}/`,
    ...(props.roleName ? { roleName: props.roleName } : {}),
    inlinePolicies: {
      Access: new iam.PolicyDocument({ statements: [...props.statements, taskTokenStatement()] }),
    },
  });
  acknowledgeTaskToken(role);
  return role;
}

/**
 * The fixed name of a target's backup or restore role, `<target>-<kind>-<suffix>` (at most 58 of
 * IAM's 64 characters), `suffix` a hash of the deployment's name and region (BackupRunner.roleSuffix).
 */
export function targetRoleName(target: string, kind: TargetRoleKind, suffix: string): string {
  return `${target}-${kind}-${suffix}`;
}

export interface RunnerTargetGroupProps extends NestedStackProps {
  /** The deployment's name: task definition families, the roles' IAM path. */
  readonly deployment: string;
  /** The targets of this group (at most TARGETS_PER_RUNNER_GROUP). */
  readonly targets: readonly Target[];
  /** The backup bucket, its key and the runner log group, of the parent stack (passed as parameters). */
  readonly bucket: s3.IBucket;
  readonly key: kms.IKey;
  readonly logGroup: logs.ILogGroup;
  /** The deployment's region and account (when configured): secret ARNs are literal with an account. */
  readonly region: string;
  readonly account?: string | undefined;
  /** BackupRunner.roleSuffix: the fixed role names' suffix. */
  readonly roleSuffix: string;
  /** The runner image for a target (shared by the targets of one Neo4j and PostgreSQL version). */
  readonly imageFor: (target: Target) => ecs.ContainerImage;
}

/**
 * The most targets one RunnerTargetGroup holds (TARGETS_PER_RUNNER_GROUP, core/config/schema.ts).
 * Its execution role reads every secret of its targets: CDK moves the grants past IAM's 10,240
 * characters of inline policy per role into overflow managed policies, and IAM attaches at most 10
 * managed policies to a role by default (IAM User Guide, "IAM and AWS STS quotas": managed policies
 * per role, 10, adjustable to 20). 50 targets with four secrets each (both CA secrets) stay below it
 * (test/infra/fleet-limit.test.ts); their task definitions and roles are about 160 of a stack's 500
 * resources.
 */
export { TARGETS_PER_RUNNER_GROUP };

/**
 * One nested stack of per-target runner resources, for up to TARGETS_PER_RUNNER_GROUP targets: so a
 * deployment of 1,000 targets fits CloudFormation's 500 resources per stack (AWS CloudFormation User
 * Guide, "CloudFormation quotas"; "Nested stacks"). Per target: a task definition, family
 * `<deployment>-<target>-runner`, holding its connection details as environment and its credentials
 * as ECS secrets from Secrets Manager (the state machine passes only the backup id and the
 * subcommand); the backup role (in the task definition); the restore role (RunTask's override); an
 * EFS access point with `artifacts.posixUser`. The group's execution role pulls the image, writes the
 * logs and reads its targets' secrets only.
 *
 * The backup bucket, its key and the log group come from the parent as this stack's own parameters
 * (BackupBucketName, BackupBucketArn, BackupKeyArn, RunnerLogGroupArn), so the policies name them
 * the same way in every group.
 *
 * Task roles, one set per target so one target's runner can touch nothing of another's: the backup
 * role creates objects under `<target>/infrahub_backup_*` only, and reads them back (a multipart copy
 * is hashed after it is written); the restore role reads only its target's backups and writes only
 * its target's storage. Roles carry their policies inline and have fixed names under the path
 * `/<deployment>/`, so the restore state machine names a target's role at run time.
 */
export class RunnerTargetGroup extends NestedStack {
  readonly executionRole: iam.Role;
  /** Per target: the backup task role (write-only under the target's backup prefixes). */
  readonly backupRoles = new Map<string, iam.Role>();
  /** Per target: the restore task role (reads the target's backups, writes its storage back). */
  readonly restoreRoles = new Map<string, iam.Role>();
  readonly taskDefinitions = new Map<string, ecs.FargateTaskDefinition>();
  /** Per target with `artifacts.posixUser`: the EFS access point its artifacts mount goes through. */
  readonly artifactAccessPoints = new Map<string, efs.CfnAccessPoint>();
  private readonly bucket: s3.IBucket;
  private readonly key: kms.IKey;
  private readonly deployment: string;

  constructor(
    scope: Construct,
    id: string,
    private readonly props: RunnerTargetGroupProps,
  ) {
    super(scope, id, {
      ...props,
      parameters: {
        BackupBucketName: props.bucket.bucketName,
        BackupBucketArn: props.bucket.bucketArn,
        BackupKeyArn: props.key.keyArn,
        RunnerLogGroupArn: props.logGroup.logGroupArn,
      },
    });
    this.deployment = props.deployment;
    const parameter = (name: string, description: string) =>
      new CfnParameter(this, name, { type: 'String', description }).valueAsString;
    this.bucket = s3.Bucket.fromBucketAttributes(this, 'BackupBucket', {
      bucketName: parameter('BackupBucketName', 'The backup bucket (parent stack)'),
      bucketArn: parameter('BackupBucketArn', "The backup bucket's ARN (parent stack)"),
    });
    this.key = kms.Key.fromKeyArn(
      this,
      'BackupKey',
      parameter('BackupKeyArn', 'The backup key (parent stack)'),
    );
    const logGroup = logs.LogGroup.fromLogGroupArn(
      this,
      'Logs',
      parameter('RunnerLogGroupArn', "The runner's log group's ARN (parent stack)"),
    );
    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `Pulls the runner image, writes its logs and injects the credentials of ${props.targets.length} targets`,
    });
    for (const target of props.targets) this.addTarget(target, logGroup);
    this.grantSecretKeys(props.targets);
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason:
        'The environment holds connection details only (hosts, ports, database names, bucket); credentials are ECS secrets from Secrets Manager.',
    });
    acknowledgeWildcards(
      this.executionRole,
      ['*'],
      'ecr:GetAuthorizationToken has no resource scope; image pulls and log writes are scoped by ECS to its own resources.',
    );
    acknowledgeWildcards(
      this.executionRole,
      // fromLogGroupArn's logGroupArn ends in ":*" (every stream of the group), as grants use it.
      [logGroup.logGroupArn],
      "The runner log group's streams (one per task, named by ECS when it starts).",
    );
  }

  /** The fixed name of a target's role of `kind` (targetRoleName). */
  private roleName(target: string, kind: TargetRoleKind): string {
    return targetRoleName(target, kind, this.props.roleSuffix);
  }

  /** `actions` on a customer-managed key through one service in the key's own region (key-use.ts). */
  private keyUse(keyArn: string, actions: string[], service: 's3' | 'secretsmanager'): iam.PolicyStatement {
    return keyUseViaService(keyArn, actions, service);
  }

  /**
   * Secrets under customer-managed keys: ECS reads them with the execution role, which then needs
   * kms:Decrypt on the key (Amazon ECS Developer Guide, "Secrets Manager secrets: required IAM
   * permissions"; only for a key other than aws/secretsmanager), through Secrets Manager only.
   */
  private grantSecretKeys(targets: readonly Target[]): void {
    const keys = targets.flatMap((t) => t.secretsKmsKeyArns);
    for (const chunk of statementChunks(keys, this.props.region, this.props.account))
      for (const statement of keysUseViaService(chunk, ['kms:Decrypt'], 'secretsmanager'))
        this.executionRole.addToPolicy(statement);
  }

  /** The EFS file system ARN of an id in this account and region. */
  private fileSystemArn(id: string): string {
    return Stack.of(this).formatArn({
      service: 'elasticfilesystem',
      resource: 'file-system',
      resourceName: id,
    });
  }

  /**
   * The target's backup role. Write only under its own backup prefix: it creates a backup's objects
   * (tagged `retention=pending` as they are written), aborts its failed multipart uploads and reads
   * back what it wrote (UploadPartCopy of an artifact over 5 GiB, hashed after the copy: S3 User
   * Guide, "Copying an object using multipart upload", needs s3:GetObject on the source). It can tag
   * only objects without a retention tag (s3:ExistingObjectTag, S3 User Guide, "Tagging and access
   * control policies"): a complete backup (tagged by the manifest function) cannot be re-tagged
   * `pending` and so expired by the lifecycle. It can neither delete a version nor touch another
   * target's prefix. Overwriting its own target's objects stays possible (S3 cannot refuse an
   * overwrite in IAM for multipart and copy uploads); versioning keeps the overwritten version for
   * `retention.noncurrentVersionDays`, Object Lock for its days. It may never write or tag a
   * backup's manifest (`<target>/infrahub_backup_<id>/backup_information.json`, written by the
   * manifest function only): an explicit Deny, since the Allow's wildcard covers the manifest's key.
   */
  private backupStatements(target: Target): iam.PolicyStatement[] {
    const partition = Stack.of(this).partition;
    const own = this.bucket.arnForObjects(`${target.name}/infrahub_backup_*`);
    const statements = [
      new iam.PolicyStatement({
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:GetObject', 's3:GetObjectVersion'],
        resources: [own],
      }),
      new iam.PolicyStatement({
        actions: ['s3:PutObjectTagging'],
        resources: [own],
        conditions: { Null: { [`s3:ExistingObjectTag/${RETENTION_TAG}`]: 'true' } },
      }),
      new iam.PolicyStatement({
        effect: iam.Effect.DENY,
        actions: ['s3:PutObject', 's3:PutObjectTagging', 's3:PutObjectVersionTagging'],
        resources: [this.bucket.arnForObjects(`*/infrahub_backup_*/${MANIFEST_FILE}`)],
      }),
      new iam.PolicyStatement({
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [this.key.keyArn],
      }),
    ];
    // Enterprise differentials on the previous backup (neo4j.backupChain.base): the target's backups
    // are listed to find it, and its manifest and chain read and copied into the new backup with the
    // reads and writes granted above (CopyObject: GetObject[Version] on the source, PutObject and
    // PutObjectTagging on the copy). ListBucket without an s3:prefix condition, as the restore role
    // has it: S3 answers a GetObject of a missing key (an incomplete backup's manifest, passed over)
    // with 404 only to a caller allowed to list the bucket, else 403, which would stop the search.
    if (target.neo4j.edition === 'enterprise' && target.neo4j.backupChain.base === 'previous-backup')
      statements.push(
        new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }),
      );
    const { artifacts } = target;
    if (artifacts.type === 's3') {
      statements.push(
        new iam.PolicyStatement({
          actions: ['s3:GetObject', 's3:GetObjectVersion'],
          resources: [`arn:${partition}:s3:::${artifacts.bucket}/${artifacts.prefix}*`],
        }),
        new iam.PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [`arn:${partition}:s3:::${artifacts.bucket}`],
        }),
      );
      if (artifacts.kmsKeyArn) statements.push(this.keyUse(artifacts.kmsKeyArn, ['kms:Decrypt'], 's3'));
    }
    // EFS by IAM (mounts authorize with the task role): a Community store is written (neo4j-admin),
    // the artifact storage only read. Enforced when the file system's policy requires IAM authorization.
    const mounts = this.fileSystems(target);
    if (mounts.length > 0)
      statements.push(
        new iam.PolicyStatement({
          actions: ['elasticfilesystem:ClientMount'],
          resources: mounts.map((id) => this.fileSystemArn(id)),
        }),
      );
    if (target.neo4j.dbms)
      statements.push(
        new iam.PolicyStatement({
          actions: ['elasticfilesystem:ClientWrite'],
          resources: [this.fileSystemArn(target.neo4j.dbms.dataEfsFileSystemId)],
        }),
      );
    // neo4j.dumpFrom "copy": the runner starts its DBMS again once the store is copied, through the
    // same step as the state machine's StartDbms (core/ecs/dbms.ts): that one service only.
    if (target.neo4j.dbms && (target.neo4j.dumpFrom ?? 'copy') === 'copy')
      statements.push(
        new iam.PolicyStatement({
          actions: ['ecs:DescribeServices', 'ecs:UpdateService'],
          resources: [dbmsServiceArn(this, target.neo4j.dbms.cluster, target.neo4j.dbms.service)],
        }),
      );
    statements.push(...this.rootAccess(target));
    return statements;
  }

  /**
   * The target's restore role: reads its target's backups (object versions included), writes its
   * reports under `.restores/<target>/` only, and writes the target's own storage back (its artifact prefix, with
   * GetObject[Version] to hash a multipart copy in a versioned bucket; its file systems). A refresh
   * destination (`refreshFrom`) also reads its sources' backups (refreshReads) and its own step
   * reports (validate-neo4j reads the deployment id restore-neo4j recorded before the load).
   */
  private restoreStatements(target: Target): iam.PolicyStatement[] {
    const partition = Stack.of(this).partition;
    const statements = [
      ...backupReads(this.bucket, this.key, target.name),
      reportWrites(this.bucket, target.name),
      ...refreshReads(this.bucket, target.refreshFrom),
    ];
    if (target.refreshFrom.length > 0)
      statements.push(
        new iam.PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [this.bucket.arnForObjects(reportObjects(target.name))],
        }),
      );
    if (target.neo4j.edition === 'enterprise') {
      // Enterprise restores stage the verified chain for the servers to seed from (seed-neo4j.ts):
      // written and read back under the target's own seed prefix, removed (by version) afterwards.
      statements.push(
        new iam.PolicyStatement({
          actions: [
            's3:PutObject',
            's3:GetObject',
            's3:AbortMultipartUpload',
            's3:DeleteObject',
            's3:DeleteObjectVersion',
          ],
          resources: [this.bucket.arnForObjects(`${RESTORE_SEEDS_ROOT}${target.name}/*`)],
        }),
      );
    }
    const { artifacts } = target;
    if (artifacts.type === 's3') {
      statements.push(
        new iam.PolicyStatement({
          actions: ['s3:PutObject', 's3:GetObject', 's3:GetObjectVersion', 's3:AbortMultipartUpload'],
          resources: [`arn:${partition}:s3:::${artifacts.bucket}/${artifacts.prefix}*`],
        }),
      );
      if (artifacts.kmsKeyArn)
        statements.push(this.keyUse(artifacts.kmsKeyArn, ['kms:Decrypt', 'kms:GenerateDataKey'], 's3'));
    }
    const mounts = this.fileSystems(target).map((id) => this.fileSystemArn(id));
    if (mounts.length > 0)
      statements.push(
        new iam.PolicyStatement({
          actions: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'],
          resources: mounts,
        }),
      );
    statements.push(...this.rootAccess(target));
    return statements;
  }

  /** The target's EFS file systems: a Community store, path artifact storage. */
  private fileSystems(target: Target): string[] {
    return [
      ...new Set([
        ...(target.neo4j.dbms ? [target.neo4j.dbms.dataEfsFileSystemId] : []),
        ...(target.artifacts.type === 'path' ? [target.artifacts.efsFileSystemId] : []),
      ]),
    ];
  }

  /**
   * Root through the artifacts access point (posixUser uid 0) only: without
   * elasticfilesystem:ClientRootAccess, EFS squashes root to nfsnobody (Amazon EFS User Guide, "Using
   * IAM to control file system data access").
   */
  private rootAccess(target: Target): iam.PolicyStatement[] {
    const { artifacts } = target;
    const accessPoint = this.artifactAccessPoints.get(target.name);
    if (artifacts.type !== 'path' || !accessPoint || artifacts.posixUser?.uid !== 0) return [];
    return [
      new iam.PolicyStatement({
        actions: ['elasticfilesystem:ClientRootAccess'],
        resources: [this.fileSystemArn(artifacts.efsFileSystemId)],
        conditions: { StringEquals: { 'elasticfilesystem:AccessPointArn': accessPoint.attrArn } },
      }),
    ];
  }

  /**
   * A secret by complete ARN (used as is) or by name: a name becomes a partial ARN for ECS (whose
   * `valueFrom` must be an ARN: Amazon ECS API Reference, Secret) and `<name>-??????` for IAM (CDK
   * fromSecretNameV2). A name ending in "-" and six characters is refused: Secrets Manager would read
   * its partial ARN as a complete one and not find the secret (Secrets Manager User Guide, "Find
   * secrets from a partial ARN"); the configuration schema refuses it first.
   * @throws SecretReferenceError for such a name.
   */
  private secret(name: string, id: string): secretsmanager.ISecret {
    const existing = this.node.tryFindChild(id) as secretsmanager.ISecret | undefined;
    if (existing) return existing;
    if (name.startsWith('arn:')) return secretsmanager.Secret.fromSecretCompleteArn(this, id, name);
    if (AMBIGUOUS_SECRET_NAME.test(name))
      throw new SecretReferenceError(
        `secret "${name}" is given by a name ending in "-" and six characters, which Secrets Manager reads as a complete ARN's suffix: give its complete ARN`,
      );
    // With the deployment's account, a literal partial ARN (policies "<arn>-??????"): CDK then sizes
    // the execution role's policies by their real length, not its 150-character guess for a token.
    const partial = secretArnFor(name, this.props.region, this.props.account)?.replace(/-\?{6}$/, '');
    if (partial) return secretsmanager.Secret.fromSecretPartialArn(this, id, partial);
    return secretsmanager.Secret.fromSecretNameV2(this, id, name);
  }

  /**
   * One task definition per target (`<deployment>-<target>-runner`): backups run it under the
   * write-only backup role, restores under the read-only restore role (the state machine overrides
   * the task role).
   */
  private addTarget(target: Target, logGroup: logs.ILogGroup): void {
    const { neo4j, postgres, artifacts } = target;
    if (artifacts.type === 'path' && artifacts.posixUser) {
      // Every file operation through the artifacts mount runs as this user (Amazon EFS User Guide,
      // "Enforcing a user identity using an access point"), inside the artifacts' directory only
      // ("Enforcing a root directory with an access point"): EFS creates a missing directory with
      // creationInfo, owned by that user; "/" always exists.
      const uid = String(artifacts.posixUser.uid);
      const gid = String(artifacts.posixUser.gid);
      const path = artifacts.efsRootDirectory;
      this.artifactAccessPoints.set(
        target.name,
        new efs.CfnAccessPoint(this, `Artifacts-${target.name}`, {
          fileSystemId: artifacts.efsFileSystemId,
          posixUser: { uid, gid },
          rootDirectory: {
            path,
            ...(path === '/' ? {} : { creationInfo: { ownerUid: uid, ownerGid: gid, permissions: '755' } }),
          },
        }),
      );
    }
    this.backupRoles.set(
      target.name,
      runnerTaskRole(this, `BackupRole-${target.name}`, {
        deployment: this.deployment,
        description: `Backups of ${target.name}: creates objects under its own backup prefixes`,
        statements: this.backupStatements(target),
        roleName: this.roleName(target.name, 'backup'),
      }),
    );
    this.restoreRoles.set(
      target.name,
      runnerTaskRole(this, `RestoreRole-${target.name}`, {
        deployment: this.deployment,
        description: `Restores of ${target.name}: reads its backups, writes its own storage back`,
        statements: this.restoreStatements(target),
        roleName: this.roleName(target.name, 'restore'),
      }),
    );
    this.acknowledgeTargetWildcards(target);
    const neo4jSecret = this.secret(neo4j.credentialsSecret, `Secret-${neo4j.credentialsSecret}`);
    const pgSecret = this.secret(postgres.credentialsSecret, `Secret-${postgres.credentialsSecret}`);
    const environment: Record<string, string> = {
      TARGET: target.name,
      BACKUP_BUCKET: this.bucket.bucketName,
      NEO4J_EDITION: neo4j.edition,
      NEO4J_DATABASES: neo4j.databases.join(','),
      // Bolt and its TLS (neo4j.tls): the runner refuses a plain URI unless the mode is "disable".
      ...neo4jBoltEnvironment(neo4j),
      // Bounded waits for a server that is still starting (core/readiness).
      NEO4J_READY_TIMEOUT_SECONDS: String(neo4j.readyTimeoutSeconds),
      PG_READY_TIMEOUT_SECONDS: String(postgres.readyTimeoutSeconds),
      // Community: what the dump reads (neo4j.dumpFrom), how a restore loads (neo4j.restoreLoad), and
      // the service the runner starts again after a copy.
      ...(neo4j.dbms
        ? {
            NEO4J_DUMP_FROM: neo4j.dumpFrom ?? 'copy',
            NEO4J_RESTORE_LOAD: neo4j.restoreLoad ?? 'staged',
            DBMS_CLUSTER: neo4j.dbms.cluster,
            DBMS_SERVICE: neo4j.dbms.service,
          }
        : {}),
      // Enterprise: every cluster member's backup listener, tried in order; the chain's base policy.
      ...(neo4j.edition === 'enterprise'
        ? {
            NEO4J_BACKUP_FROM: (neo4j.backupFrom ?? [hostPortOf(neo4j.host, neo4j.backupPort)]).join(','),
            NEO4J_BACKUP_CHAIN_BASE: neo4j.backupChain.base,
            NEO4J_BACKUP_MAX_DIFFERENTIALS: String(neo4j.backupChain.maxDifferentials),
            // Restores: seeding bounds (neo4j.seed; seed-neo4j.ts).
            NEO4J_SEED_ONLINE_TIMEOUT_SECONDS: String(neo4j.seed.onlineTimeoutSeconds),
            NEO4J_SEED_REHEARSE: String(neo4j.seed.rehearse),
          }
        : {}),
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
      // neo4j.tls.caSecret: the whole secret value is the CA bundle's PEM text (Bolt verify-full).
      ...(neo4j.tls.caSecret
        ? {
            NEO4J_TLS_CA_PEM: ecs.Secret.fromSecretsManager(
              this.secret(neo4j.tls.caSecret, `Secret-${neo4j.tls.caSecret}`),
            ),
          }
        : {}),
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
      family: runnerFamily(this.deployment, target.name),
      cpu: 1024,
      memoryLimitMiB: 4096,
      // Dumps stream to S3; local disk holds an Enterprise backup chain, a restore's staged files, or
      // a Community store's copy (runnerEphemeralStorageGiB).
      ephemeralStorageGiB: runnerEphemeralStorageGiB(target),
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.ARM64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      // Backups run as the target's backup role; restores override it with its restore role.
      taskRole: this.backupRoles.get(target.name),
      executionRole: this.executionRole,
    });
    const container = taskDefinition.addContainer(RUNNER_CONTAINER, {
      image: this.props.imageFor(target),
      essential: true,
      environment,
      secrets,
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: target.name }),
      stopTimeout: Duration.seconds(60),
    });
    // EFS mounts authorize with the task's IAM role: which role may write is decided by
    // elasticfilesystem:ClientWrite (granted in grantFileSystems), not by the mount.
    const efsVolume = (fileSystemId: string, rootDirectory?: string, accessPointId?: string) => ({
      fileSystemId,
      ...(rootDirectory ? { rootDirectory } : {}),
      transitEncryption: 'ENABLED',
      authorizationConfig: { iam: 'ENABLED', ...(accessPointId ? { accessPointId } : {}) },
    });
    if (neo4j.dbms) {
      // Community: neo4j-admin dumps and loads the store files, so the runner mounts the DBMS's file system.
      taskDefinition.addVolume({
        name: 'neo4j-data',
        efsVolumeConfiguration: efsVolume(neo4j.dbms.dataEfsFileSystemId, neo4j.dbms.dataRootDirectory),
      });
      container.addMountPoints({
        sourceVolume: 'neo4j-data',
        containerPath: NEO4J_DATA_MOUNT,
        readOnly: false,
      });
    }
    if (artifacts.type === 'path') {
      const accessPoint = this.artifactAccessPoints.get(target.name);
      taskDefinition.addVolume({
        name: 'artifacts',
        // Through an access point, its root directory is the artifacts' directory (the volume's must
        // then be left out: Amazon ECS API Reference, EFSVolumeConfiguration); otherwise the volume's.
        efsVolumeConfiguration: efsVolume(
          artifacts.efsFileSystemId,
          accessPoint || artifacts.efsRootDirectory === '/' ? undefined : artifacts.efsRootDirectory,
          accessPoint?.attrAccessPointId,
        ),
      });
      container.addMountPoints({ sourceVolume: 'artifacts', containerPath: artifacts.path, readOnly: false });
    }
    this.taskDefinitions.set(target.name, taskDefinition);
  }

  /** cdk-nag: the wildcards of a target's roles, each with its reason. */
  private acknowledgeTargetWildcards(target: Target): void {
    const { artifacts } = target;
    const artifactObjects =
      artifacts.type === 's3'
        ? [`arn:${Stack.of(this).partition}:s3:::${artifacts.bucket}/${artifacts.prefix}*`]
        : [];
    acknowledgeWildcards(
      this.backupRoles.get(target.name) as iam.Role,
      [this.bucket.arnForObjects(`${target.name}/infrahub_backup_*`), ...artifactObjects],
      "Backup objects are created at run time under the target's own <target>/infrahub_backup_*/ (ids known at run time); artifact objects are read under the configured prefix.",
    );
    acknowledgeWildcards(
      this.restoreRoles.get(target.name) as iam.Role,
      [
        this.bucket.arnForObjects(`${target.name}/infrahub_backup_*`),
        ...target.refreshFrom.map((source) => this.bucket.arnForObjects(`${source}/infrahub_backup_*`)),
        this.bucket.arnForObjects(reportObjects(target.name)),
        ...(target.neo4j.edition === 'enterprise'
          ? [this.bucket.arnForObjects(`${RESTORE_SEEDS_ROOT}${target.name}/*`)]
          : []),
        ...artifactObjects,
      ],
      "Reads the target's own backups and those of the targets it is refreshed from (refreshFrom; ids known at run time), writes (and, refreshed, reads) its step reports under .restores/<target>/ (restore ids known at run time), Enterprise seeds under .restore-seeds/<target>/ (staged per restore, removed by version) and artifacts back under the configured prefix.",
    );
  }
}
