import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArnFormat, Duration, Fn, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { FLEET_RESULTS_ROOT, MANIFEST_FILE, NOTICES_ROOT } from '../../core/backup/layout.js';
import { MANIFEST_FUNCTION_TIMEOUT_SECONDS } from '../../core/backup/manifest-step.js';
import { BUNDLED_CONFIG_FILE } from '../../core/config/bundled.js';
import {
  type DeploymentConfig,
  lambdaListedArns,
  secretArnFor,
  statementChunks,
} from '../../core/config/schema.js';
import { ConfigError } from '../../core/errors.js';
import { PREFLIGHT_FUNCTION_TIMEOUT_SECONDS } from '../../core/infrahub/gate.js';
import { METRICS_NAMESPACE } from '../../core/metrics.js';
import { acknowledgeWildcards } from '../nag.js';
import { keysUseViaService } from './key-use.js';

/** Memory of the functions that verify a whole backup (manifest, restore plan): see BackupFunctions. */
export const LARGE_BACKUP_FUNCTION_MEMORY_MB = 1024;

export interface BackupFunctionsProps {
  readonly config: DeploymentConfig;
  readonly bucket: s3.IBucket;
  readonly key: kms.IKey;
  /** The deployment's notification topic; notices also go to the configured extra topics. */
  readonly topic: sns.ITopic;
}

/**
 * The backup state machine's Lambdas: plan (validate the input), lock (per-target lock and work
 * item), preflight (Infrahub task gate) and manifest (written last). Bundled with esbuild on the
 * synthesizing machine (no Docker), each with the validated deployment configuration beside its code.
 *
 * The functions that reach a target, preflight and the restore plan (its Infrahub API) and
 * neo4j-ready (its Neo4j over Bolt, after a Community dump), run in the configured VPC (the target is
 * private in a real deployment): `network.lambdaSubnetIds` and `network.lambdaSecurityGroupIds`,
 * defaulting to the runner's (which reach Neo4j already). Lambda then needs the ENI actions of the
 * AWS managed policy AWSLambdaVPCAccessExecutionRole (Lambda developer guide, "Giving Lambda
 * functions access to resources in an Amazon VPC"), and the functions reach AWS APIs only through a
 * NAT gateway or VPC endpoints: Secrets Manager (all three) and S3 (the restore plan); see
 * docs/deployment.md. The other functions call only AWS APIs and stay outside the VPC: the dbms
 * function, which scales the DBMS's ECS service, cannot itself reach Neo4j, hence neo4j-ready.
 */
export class BackupFunctions extends Construct {
  readonly plan: nodejs.NodejsFunction;
  readonly lock: nodejs.NodejsFunction;
  readonly preflight: nodejs.NodejsFunction;
  readonly manifest: nodejs.NodejsFunction;
  readonly dbms: nodejs.NodejsFunction;
  /** After a Community DBMS is started again: waits until Neo4j answers over Bolt (in the VPC). */
  readonly neo4jReady: nodejs.NodejsFunction;
  readonly notify: nodejs.NodejsFunction;
  readonly report: nodejs.NodejsFunction;
  readonly freshness: nodejs.NodejsFunction;
  readonly restorePlan: nodejs.NodejsFunction;
  readonly services: nodejs.NodejsFunction;
  readonly restoreReport: nodejs.NodejsFunction;
  /** The functions that run in the VPC: those that call the Infrahub API. */
  readonly inVpc: nodejs.NodejsFunction[];
  /** The in-VPC functions' security groups (configured, the runner's, or one created here). */
  readonly vpcSecurityGroups: ec2.ISecurityGroup[];
  /** The group created for the in-VPC functions when the configuration names none; else undefined. */
  readonly createdSecurityGroup?: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: BackupFunctionsProps) {
    super(scope, id);
    // The configuration ships inside each function's code: versioned with it, and no 4 KB env limit.
    const configFile = join(mkdtempSync(join(tmpdir(), 'infrahub-backup-config-')), BUNDLED_CONFIG_FILE);
    writeFileSync(configFile, JSON.stringify(props.config));

    const network = this.lambdaNetwork(props.config);
    this.vpcSecurityGroups = network.securityGroups;
    if (network.created) this.createdSecurityGroup = network.created;

    const make = (
      name: string,
      description: string,
      timeout: Duration,
      environment: Record<string, string> = {},
      inVpc = false,
    ) => {
      const fn = new nodejs.NodejsFunction(this, name, {
        // Functions that call the Infrahub API run in the VPC (CDK adds AWSLambdaVPCAccessExecutionRole).
        ...(inVpc
          ? {
              vpc: network.vpc,
              vpcSubnets: { subnets: network.subnets },
              securityGroups: network.securityGroups,
            }
          : {}),
        // "RestorePlan" lives in functions/restore-plan/.
        entry: join('functions', name.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase(), 'index.ts'),
        handler: 'handler',
        description,
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 256,
        timeout,
        tracing: lambda.Tracing.ACTIVE,
        loggingFormat: lambda.LoggingFormat.JSON,
        logGroup: new logs.LogGroup(this, `${name}Logs`, { retention: logs.RetentionDays.THREE_MONTHS }),
        // Only the names CloudFormation gives at deploy time; every setting is in the bundled
        // configuration (core/config/bundled.ts).
        environment,
        bundling: {
          format: nodejs.OutputFormat.ESM,
          target: 'node22',
          minify: true,
          sourceMap: true,
          mainFields: ['module', 'main'],
          externalModules: ['pg-native'],
          banner:
            "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
          forceDockerBundling: false,
          commandHooks: {
            beforeBundling: () => [],
            beforeInstall: () => [],
            afterBundling: (_input: string, outputDir: string) => [
              `cp "${configFile}" "${outputDir}/${BUNDLED_CONFIG_FILE}"`,
            ],
          },
        },
      });
      return fn;
    };

    this.plan = make('Plan', 'Validates a backup execution input and plans it', Duration.seconds(30));
    this.lock = make(
      'Lock',
      'Takes or releases a target lock; resolves the target work item',
      Duration.seconds(30),
      { BACKUP_BUCKET: props.bucket.bucketName },
    );
    // One call checks the gate once (its listing cut to the remaining time less a margin); the wait
    // between checks is the state machine's, bounded by preflight.maxWaitSeconds, not by this timeout.
    this.preflight = make(
      'Preflight',
      'Checks once whether Infrahub runs a task (the state machine waits between checks)',
      Duration.seconds(PREFLIGHT_FUNCTION_TIMEOUT_SECONDS),
      {},
      true,
    );
    // With retention it re-tags every object of the backup, one request each: its time grows with
    // the object count, so Lambda's longest timeout; the step stops in time and says so when that
    // is not enough (core/backup/seal.ts).
    this.manifest = make(
      'Manifest',
      'Checks a backup with S3, re-tags its objects with their retention class, writes backup_information.json last',
      Duration.seconds(MANIFEST_FUNCTION_TIMEOUT_SECONDS),
      { BACKUP_BUCKET: props.bucket.bucketName },
    );

    // Stopping or starting a Community DBMS waits for its tasks: up to 10 minutes each way.
    this.dbms = make(
      'Dbms',
      'Scales a Community Neo4j service to zero and back around its dump',
      Duration.minutes(11),
      {},
    );
    // After the DBMS is started again, Neo4j opens its databases for a while (Infrahub answers 503
    // meanwhile): this waits over Bolt, from the VPC, up to 10 minutes.
    this.neo4jReady = make(
      'Neo4jReady',
      'Waits until a restarted Community Neo4j answers over Bolt with its databases online',
      Duration.minutes(11),
      {},
      true,
    );
    const topicArns = [props.topic.topicArn, ...props.config.notifications.topicArns];
    this.notify = make(
      'Notify',
      'Sends the backup success and failure notices (SNS, EventBridge)',
      Duration.minutes(1),
      {
        BACKUP_BUCKET: props.bucket.bucketName,
        TOPIC_ARNS: Fn.join(',', topicArns),
      },
    );
    this.freshness = make(
      'Freshness',
      "Hourly: publishes the age of each target's last complete backup (the silence alarm)",
      Duration.minutes(5),
      { BACKUP_BUCKET: props.bucket.bucketName },
    );
    // Reads the Distributed Map's results (up to 1,000 targets' records) from the bucket.
    this.report = make(
      'Report',
      'Sums up a fleet backup: which targets succeeded, which failed and why',
      Duration.minutes(1),
      { BACKUP_BUCKET: props.bucket.bucketName },
    );

    this.restorePlan = make(
      'RestorePlan',
      'Plans a restore or drill: resolves and verifies the backup, checks compatibility',
      Duration.minutes(5),
      { BACKUP_BUCKET: props.bucket.bucketName },
      true,
    );
    this.inVpc = [this.preflight, this.restorePlan, this.neo4jReady];
    // The manifest and restore-plan functions hold a backup's whole manifest, its upload records and
    // the listing of its versions (core/backup/verify.ts). For 50,000 artifacts bench/verify-scale.ts
    // measured a peak heap of 307 MiB and 5.1 s of Node CPU for the manifest step (272 MiB, 3.2 s
    // for a verification): over 256 MB. Lambda gives CPU in proportion to memory (one vCPU at
    // 1,769 MB; Lambda Developer Guide, "Configure Lambda function memory"), so 1,024 MB leaves the
    // heap three times its need and the work about 10 s, beside about 52 list pages and (with
    // retention, the manifest function) 50,000 tag requests, 48 at once: 180 s against moto.
    for (const fn of [this.manifest, this.restorePlan])
      (fn.node.defaultChild as lambda.CfnFunction).memorySize = LARGE_BACKUP_FUNCTION_MEMORY_MB;
    // Quiescing waits for each service in turn (bounded by the function's remaining time).
    this.services = make(
      'Services',
      'Scales the Infrahub ECS services to zero and back in dependency order around a restore',
      Duration.minutes(15),
      {},
    );
    this.restoreReport = make(
      'RestoreReport',
      'Writes the restore or drill report with per-step timings; metrics and notice',
      Duration.minutes(1),
      { BACKUP_BUCKET: props.bucket.bucketName, TOPIC_ARNS: Fn.join(',', topicArns) },
    );

    // Least privilege, written out rather than grant*() so every action is named:
    // the lock function touches only locks/, the manifest function reads backups and writes manifests.
    const objects = (pattern: string) => props.bucket.arnForObjects(pattern);
    this.lock.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: [objects('locks/*')],
      }),
    );
    // A lock whose holder has ended is taken over: the lock function asks Step Functions whether the
    // execution named in it still runs, for the two state machines that take locks (backup, restore).
    // Their names are fixed by the configuration; naming them here (not their ARNs) avoids a cycle.
    const lockHolders = ['backup', 'restore'].map((kind) =>
      Stack.of(this).formatArn({
        service: 'states',
        resource: 'execution',
        resourceName: `${props.config.name}-${kind}:*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
    );
    this.lock.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['states:DescribeExecution'],
        resources: lockHolders,
      }),
    );
    this.manifest.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [objects('*')],
      }),
    );
    // Verification lists each backup's object versions (ListObjectVersions: s3:ListBucketVersions)
    // instead of a HEAD per file (core/backup/verify.ts).
    this.manifest.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket', 's3:ListBucketVersions'],
        resources: [props.bucket.bucketArn],
      }),
    );
    this.manifest.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [objects('*/backup_information.json')],
      }),
    );
    // Retention: re-tags a completed backup's objects from "pending" to their class or "newest", and
    // the previous newest backup's objects to its class (tags only; core/backup/seal.ts).
    this.manifest.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObjectTagging', 's3:PutObjectVersionTagging'],
        resources: [objects('*/infrahub_backup_*')],
      }),
    );
    // ... and finds the previous newest by its manifest's tag (GetObjectTagging, manifests only).
    this.manifest.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObjectTagging'],
        resources: [objects(`*/infrahub_backup_*/${MANIFEST_FILE}`)],
      }),
    );
    // Report reads the backup Map's child execution results (ResultWriter), nothing else.
    this.report.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [objects(`${FLEET_RESULTS_ROOT}*`)] }),
    );
    // After a fleet Map failed as a whole, Report finds what its Map Run wrote: the execution's Map
    // Runs (ListMapRuns, on the execution: AWS Step Functions API Reference, "ListMapRuns"), then the
    // Map Run's folder under .fleet-results/ (listed: its manifest may be missing), and nothing else.
    const fleetExecutions = ['backup', 'restore-drill'].map((kind) =>
      Stack.of(this).formatArn({
        service: 'states',
        resource: 'execution',
        resourceName: `${props.config.name}-${kind}:*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
    );
    this.report.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['states:ListMapRuns'], resources: fleetExecutions }),
    );
    this.report.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${FLEET_RESULTS_ROOT}*`] } },
      }),
    );
    // Notify reads the runners' failure records (never backup data) to name a failure's cause.
    this.notify.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [objects('*/.runner/*')] }),
    );
    this.notify.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': ['*/.runner/*'] } },
      }),
    );
    // The functions that send notices: SNS topics and the default event bus.
    for (const fn of [this.notify, this.restoreReport]) {
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['sns:Publish'], resources: topicArns }));
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['events:PutEvents'],
          resources: [
            Stack.of(this).formatArn({ service: 'events', resource: 'event-bus', resourceName: 'default' }),
          ],
        }),
      );
    }
    // Freshness lists backup folders and checks for manifests (heads: s3:GetObject on manifests only).
    this.freshness.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.bucket.bucketArn] }),
    );
    this.freshness.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [objects('*/backup_information.json')],
      }),
    );
    // The restore plan reads backups (manifests, heads and, for a deep check, bodies) and lists them.
    this.restorePlan.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [objects('*/infrahub_backup_*')],
      }),
    );
    for (const fn of [this.restorePlan, this.restoreReport]) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.bucket.bucketArn] }),
      );
    }
    // Its verification lists the backup's object versions (core/backup/verify.ts).
    this.restorePlan.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucketVersions'], resources: [props.bucket.bucketArn] }),
    );
    // The report reads the runners' step reports and writes its own, under .restores/ only.
    this.restoreReport.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [objects('.restores/*')],
      }),
    );
    // The notices (notify, restore report) mark each channel they sent on under .notices/<request id>/,
    // so a retry skips it (deliverNotice, core/notices/deliver.ts). ListBucket on that prefix only, so that a
    // missing marker reads as 404, not 403.
    for (const fn of [this.notify, this.restoreReport]) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['s3:GetObject', 's3:PutObject'],
          resources: [objects(`${NOTICES_ROOT}*`)],
        }),
      );
    }
    this.notify.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${NOTICES_ROOT}*`] } },
      }),
    );
    // Only the freshness check calls PutMetricData: the notices write their metrics as embedded
    // metric format log lines, which CloudWatch Logs turns into metrics (no permission needed).
    for (const fn of [this.freshness]) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['cloudwatch:PutMetricData'],
          resources: ['*'],
          conditions: { StringEquals: { 'cloudwatch:namespace': METRICS_NAMESPACE } },
        }),
      );
    }
    const serviceArn = (cluster: string, service: string) =>
      service.startsWith('arn:')
        ? service
        : Stack.of(this).formatArn({
            service: 'ecs',
            resource: 'service',
            resourceName: `${cluster.replace(/^.*:cluster\//, '')}/${service}`,
            arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
          });
    const scale = (fn: lambda.IFunction, services: Array<{ cluster: string; service: string }>) => {
      if (services.length === 0) return;
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['ecs:DescribeServices', 'ecs:UpdateService'],
          resources: services.map((d) => serviceArn(d.cluster, d.service)),
        }),
      );
    };
    scale(
      this.dbms,
      props.config.targets.flatMap((t) => (t.neo4j.dbms ? [t.neo4j.dbms] : [])),
    );
    // Only the services the configuration names as the deployment's to quiesce.
    scale(
      this.services,
      props.config.targets.flatMap((t) => {
        const q = t.quiesce;
        if (!q) return [];
        return [...q.taskManagerDb, ...q.taskManager, ...q.server, ...q.taskWorkers].map((service) => ({
          cluster: q.cluster,
          service,
        }));
      }),
    );

    for (const fn of [
      this.lock,
      this.manifest,
      this.notify,
      this.report,
      this.freshness,
      this.restorePlan,
      this.restoreReport,
    ]) {
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [props.key.keyArn],
        }),
      );
    }

    // A secret's ARN ends in a random 6-character suffix: "<name>-??????"; literal with the
    // deployment's account, so CDK sizes the policies by its real length (secretArnFor).
    const secretArn = (s: string) =>
      secretArnFor(s, props.config.region, props.config.account) ??
      Stack.of(this).formatArn({
        service: 'secretsmanager',
        resource: 'secret',
        resourceName: `${s}-??????`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    // The targets' secrets may be encrypted with customer-managed keys (secretsKmsKeyArns; lambdaListedArns gives each function its targets' keys):
    // GetSecretValue then needs kms:Decrypt on the key too (Secrets Manager User Guide, "Secret
    // encryption and decryption"), through Secrets Manager in the key's region only.
    const tag = props.config.secretsAccess.tag;
    // What each function lists (lambdaListedArns: with `tag`, only secrets given by complete ARN),
    // the same lists the configuration checks against IAM's quotas (listedSecretsFit).
    const readSecrets = (fn: lambda.IFunction, { secrets, keys }: { secrets: string[]; keys: string[] }) => {
      for (const chunk of statementChunks(keys, props.config.region, props.config.account))
        for (const statement of keysUseViaService(chunk, ['kms:Decrypt'], 'secretsmanager'))
          fn.addToRolePolicy(statement);
      if (tag) {
        // secretsAccess.tag: any secret of this account and region that carries the tag (ABAC:
        // Secrets Manager User Guide, "Attribute-based access control (ABAC)"), so the policy does
        // not grow with the fleet.
        const tagged = Stack.of(this).formatArn({
          service: 'secretsmanager',
          resource: 'secret',
          resourceName: '*',
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        });
        fn.addToRolePolicy(
          new iam.PolicyStatement({
            actions: ['secretsmanager:GetSecretValue'],
            resources: [tagged],
            conditions: { StringEquals: { [`aws:ResourceTag/${tag.key}`]: tag.value } },
          }),
        );
        acknowledgeWildcards(
          fn,
          [tagged],
          `secretsAccess.tag: reads only secrets tagged ${tag.key}=${tag.value} (the condition), which the targets' secrets carry.`,
        );
      }
      // Listed (with `tag`, the complete ARNs only): statements of at most STATEMENT_ARN_CHARACTERS
      // (statementChunks), which CDK spreads over the inline policy and managed policies of at most
      // 6,144 characters (IAM User Guide, "IAM and AWS STS quotas"); one statement of every ARN could
      // fit in neither. The configuration refuses a fleet whose listed secrets and keys need more
      // managed policies than a role may have (listedSecretsFit).
      for (const chunk of statementChunks(secrets, props.config.region, props.config.account))
        fn.addToRolePolicy(
          new iam.PolicyStatement({
            actions: ['secretsmanager:GetSecretValue'],
            resources: chunk.map(secretArn),
          }),
        );
    };
    // Preflight and the restore plan read the Infrahub API token (task gate; running version), the
    // Neo4jReady wait the Community targets' Neo4j credentials (lambdaListedArns).
    const listed = lambdaListedArns(props.config);
    readSecrets(this.preflight, listed.Preflight);
    readSecrets(this.restorePlan, listed.RestorePlan);
    // The Bolt wait after a Community dump logs in to Neo4j: the Community targets' credentials only,
    // and the CA bundles their Bolt TLS verifies against (neo4j.tls.caSecret, PEM text).
    const community = props.config.targets.filter((t) => t.neo4j.dbms);
    // neo4j.tls.ca is a path inside the runner image: this Lambda's bundle has no such file, so a
    // Community target (whose Bolt this Lambda waits for) must give its CA as caSecret, or none
    // (the system trust store of the Lambda runtime).
    const caPaths = community.filter((t) => t.neo4j.tls.ca);
    if (caPaths.length > 0)
      throw new ConfigError(
        'Neo4jReady Lambda',
        caPaths.map(
          (t) =>
            `target "${t.name}": neo4j.tls.ca: ${t.neo4j.tls.ca} is a path in the runner image, which the Neo4jReady Lambda (it waits for a Community DBMS over Bolt after its dump) cannot read: put the CA bundle's PEM text in a Secrets Manager secret and name it in neo4j.tls.caSecret`,
        ),
      );
    if (community.length > 0) readSecrets(this.neo4jReady, listed.Neo4jReady);

    for (const fn of [
      this.plan,
      this.lock,
      this.preflight,
      this.manifest,
      this.dbms,
      this.neo4jReady,
      this.notify,
      this.report,
      this.freshness,
      this.restorePlan,
      this.services,
      this.restoreReport,
    ]) {
      const ack = (id: string, reason: string) => Validations.of(fn).acknowledge({ id, reason });
      ack(
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        'The AWS-managed basic execution role only lets the function write its own logs.',
      );
      ack(
        'AwsSolutions-IAM5[Resource::*]',
        'X-Ray trace segments (every function) and CloudWatch metric data (freshness, limited to the InfrahubBackup namespace by a condition) cannot be scoped to a resource.',
      );
      ack(
        'AwsSolutions-L1',
        'Node.js 22 is the runtime this product targets and tests; newer runtimes are adopted deliberately.',
      );
    }
    for (const fn of this.inVpc) {
      Validations.of(fn).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          "The AWS-managed VPC execution role holds only the network-interface actions Lambda needs to attach the function to the VPC (they take no resource scope) and the function's own log writes.",
      });
    }
    const bucketArn = props.bucket.bucketArn;
    acknowledgeWildcards(
      this.report,
      [`${bucketArn}/${FLEET_RESULTS_ROOT}*`],
      "Reads (never writes) the backup Distributed Map's results, under .fleet-results/ only, named by Step Functions at run time.",
    );
    acknowledgeWildcards(
      this.report,
      fleetExecutions,
      "Lists (only) the Map Runs of the backup or fleet drill execution whose Map failed, to read what they wrote; executions' names are known only at run time.",
    );
    acknowledgeWildcards(
      this.lock,
      [`${bucketArn}/locks/*`],
      'One lock object per target, named at run time; only under locks/.',
    );
    acknowledgeWildcards(
      this.lock,
      lockHolders,
      "Describes (only) the execution named in a lock, to take over a lock whose holder ended; executions' names are known only at run time.",
    );
    acknowledgeWildcards(
      this.manifest,
      [`${bucketArn}/*`],
      'Reads (never writes) the objects of the backup it checks; their keys are known only at run time.',
    );
    acknowledgeWildcards(
      this.manifest,
      [`${bucketArn}/*/backup_information.json`],
      'Writes only manifests, one per target and backup id, named at run time.',
    );
    acknowledgeWildcards(
      this.manifest,
      [`${bucketArn}/*/infrahub_backup_*`],
      'Tags (only) the objects of the backup it completes with their retention class, and those of the previous newest backup of the target; keys known at run time.',
    );
    acknowledgeWildcards(
      this.manifest,
      [`${bucketArn}/*/infrahub_backup_*/backup_information.json`],
      "Reads the tags (only) of the target's manifests, to find the previous newest backup; keys known at run time.",
    );
    acknowledgeWildcards(
      this.restorePlan,
      [`${bucketArn}/*/infrahub_backup_*`],
      'Reads (never writes) the backup it verifies before a restore; target and backup id are known at run time.',
    );
    acknowledgeWildcards(
      this.restoreReport,
      [`${bucketArn}/.restores/*`],
      "Reads the runners' step reports and writes report.json, only under .restores/<target>/<restore id>/.",
    );
    acknowledgeWildcards(
      this.freshness,
      [`${bucketArn}/*/backup_information.json`],
      'Checks (reads only) whether each backup has its manifest; backup ids are known only at run time.',
    );
    for (const fn of [this.notify, this.restoreReport]) {
      acknowledgeWildcards(
        fn,
        [`${bucketArn}/${NOTICES_ROOT}*`],
        'Reads and writes only the markers of the notices it sends (one small object per channel), named by a request id known at run time.',
      );
    }
    acknowledgeWildcards(
      this.notify,
      [`${bucketArn}/*/.runner/*`],
      "Reads only the runners' result and failure records of the backup it reports on, named at run time.",
    );
  }

  /**
   * Where the in-VPC functions run: `network.lambdaSubnetIds` (else the runner's `subnetIds`, whose
   * availability zones are known) and `network.lambdaSecurityGroupIds` (else the runner's
   * `securityGroupIds`; when both are empty, a group created here with outbound access only, since
   * Lambda attaches a VPC function to named security groups).
   */
  private lambdaNetwork(config: DeploymentConfig): {
    vpc: ec2.IVpc;
    subnets: ec2.ISubnet[];
    securityGroups: ec2.ISecurityGroup[];
    created?: ec2.SecurityGroup;
  } {
    const { network } = config;
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: network.vpcId,
      availabilityZones: network.availabilityZones,
    });
    const subnets = network.lambdaSubnetIds
      ? network.lambdaSubnetIds.map((id) => ec2.Subnet.fromSubnetId(this, `Subnet-${id}`, id))
      : network.subnetIds.map((id, i) =>
          ec2.Subnet.fromSubnetAttributes(this, `Subnet-${id}`, {
            subnetId: id,
            availabilityZone: network.availabilityZones[i] ?? '',
          }),
        );
    const ids = network.lambdaSecurityGroupIds ?? network.securityGroupIds;
    if (ids.length > 0) {
      return {
        vpc,
        subnets,
        securityGroups: ids.map((id) =>
          ec2.SecurityGroup.fromSecurityGroupId(this, `SecurityGroup-${id}`, id, { mutable: false }),
        ),
      };
    }
    const created = new ec2.SecurityGroup(this, 'InfrahubApiClients', {
      vpc,
      description: `Infrahub backup (${config.name}): Lambdas that call the Infrahub API; allow it at the API`,
      allowAllOutbound: true,
    });
    return { vpc, subnets, securityGroups: [created], created };
  }
}
