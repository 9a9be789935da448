import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { type DeploymentConfig, INTERFACE_ENDPOINT_SERVICES } from '../../core/config/schema.js';

/**
 * The AWS services reached from inside the VPC, as interface endpoints (PrivateLink;
 * INTERFACE_ENDPOINT_SERVICES, core/config/schema.ts, which counts the stack's resources), and why:
 * - `ecr.api`, `ecr.dkr`: Fargate pulls the runner image (the layers come from S3, through the
 *   gateway endpoint); Amazon ECR user guide, "Amazon ECR interface VPC endpoints".
 * - `secretsmanager`: ECS injects the database credentials into the runner at task start (Amazon ECS
 *   developer guide, "Pass Secrets Manager secrets ..."); the preflight and restore-plan Lambdas
 *   read the Infrahub token, the neo4j-ready Lambda a Community target's Neo4j credentials.
 * - `logs`: the runner's `awslogs` log driver (Amazon ECS developer guide, "Send Amazon ECS logs to
 *   CloudWatch"). The Lambdas' logs go through the Lambda service, not the VPC.
 * - `states`: the runner answers its waitForTaskToken state itself, SendTaskHeartbeat while data moves
 *   and SendTaskSuccess/SendTaskFailure at the end (containers/runner/src/task-token.ts; AWS Step
 *   Functions developer guide, "Creating Interface VPC endpoints for Step Functions"): without it every
 *   runner step of a deployment without NAT would end in States.HeartbeatTimeout.
 * The other functions (lock: Step Functions; dbms and services: ECS; notify and restore report: SNS,
 * EventBridge, CloudWatch) run outside the VPC and need no endpoint. KMS is called by S3 and Secrets
 * Manager on the callers' behalf (server-side encryption), and credentials come from the Lambda and
 * ECS environments (no STS call), so neither needs an endpoint.
 */
export { INTERFACE_ENDPOINT_SERVICES };

export interface NetworkEndpointsProps {
  readonly config: DeploymentConfig;
  /** Groups admitted on 443: the in-VPC Lambdas' (the runner's come from the configuration). */
  readonly clientSecurityGroups: ec2.ISecurityGroup[];
}

/**
 * `network.createEndpoints`: the VPC endpoints the runner tasks and the in-VPC Lambdas need in
 * subnets without a NAT gateway. Interface endpoints for INTERFACE_ENDPOINT_SERVICES in one runner
 * subnet per availability zone (an interface endpoint takes at most one subnet per zone; AWS
 * PrivateLink guide, "Access an AWS service using an interface VPC endpoint"), with private DNS so the
 * SDKs' default endpoint names resolve to them (the VPC needs DNS support and DNS hostnames), behind a
 * security group that admits HTTPS (443) from the runner's and the Lambdas' groups only; and the S3
 * gateway endpoint on `network.routeTableIds` (S3 carries the backups and the image layers).
 * NFS (2049) from the runner's groups to the EFS mount targets is the file systems' own security
 * group's concern (docs/deployment.md).
 */
export class NetworkEndpoints extends Construct {
  readonly securityGroup: ec2.SecurityGroup;
  readonly interfaceEndpoints = new Map<string, ec2.InterfaceVpcEndpoint>();
  readonly s3: ec2.CfnVPCEndpoint;

  constructor(scope: Construct, id: string, props: NetworkEndpointsProps) {
    super(scope, id);
    const { network, name } = props.config;
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: network.vpcId,
      availabilityZones: network.availabilityZones,
    });
    // One subnet per availability zone: the first runner subnet listed in each.
    const perZone = new Map<string, string>();
    network.subnetIds.forEach((subnetId, i) => {
      const zone = network.availabilityZones[i] ?? '';
      if (!perZone.has(zone)) perZone.set(zone, subnetId);
    });
    const subnets = [...perZone].map(([availabilityZone, subnetId]) =>
      ec2.Subnet.fromSubnetAttributes(this, `Subnet-${subnetId}`, { subnetId, availabilityZone }),
    );

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc,
      description: `Infrahub backup (${name}): VPC endpoints, HTTPS from the runner tasks and Lambdas`,
      allowAllOutbound: false,
    });
    const clients = [
      ...network.securityGroupIds.map((sg) =>
        ec2.SecurityGroup.fromSecurityGroupId(this, `Client-${sg}`, sg, { mutable: false }),
      ),
      ...props.clientSecurityGroups,
    ];
    const seen = new Set<string>();
    for (const client of clients) {
      // A configured group may be the Lambdas' too; one rule each (ids may be tokens).
      const key = JSON.stringify(Stack.of(this).resolve(client.securityGroupId));
      if (seen.has(key)) continue;
      seen.add(key);
      this.securityGroup.addIngressRule(
        ec2.Peer.securityGroupId(client.securityGroupId),
        ec2.Port.tcp(443),
        'HTTPS to the AWS APIs from the Infrahub backup runner tasks and Lambdas',
      );
    }

    for (const service of INTERFACE_ENDPOINT_SERVICES) {
      const endpoint = new ec2.InterfaceVpcEndpoint(this, `Endpoint-${service}`, {
        vpc,
        service: new ec2.InterfaceVpcEndpointAwsService(service),
        subnets: { subnets },
        securityGroups: [this.securityGroup],
        privateDnsEnabled: true,
        open: false,
      });
      this.interfaceEndpoints.set(service, endpoint);
    }

    this.s3 = new ec2.CfnVPCEndpoint(this, 'Endpoint-s3', {
      vpcId: network.vpcId,
      serviceName: `com.amazonaws.${Stack.of(this).region}.s3`,
      vpcEndpointType: 'Gateway',
      routeTableIds: network.routeTableIds,
    });
  }
}
