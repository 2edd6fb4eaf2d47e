import { CfnOutput, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ExistingVpcConfig } from './config';

export interface NetworkProps {
  /** Absent: create a small demo VPC with endpoints and no NAT. */
  readonly existingVpc?: ExistingVpcConfig;
}

const POSTGRES = ec2.Port.tcp(5432);
const HTTPS = ec2.Port.tcp(443);

/**
 * Where the functions run: in the database's VPC, reaching AWS APIs through VPC
 * endpoints (or the VPC's own NAT), and PostgreSQL on 5432. One security group is
 * shared by all pgsteward functions, so the database needs one ingress rule.
 */
export class Network extends Construct {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly functionSecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const existing = props.existingVpc;
    this.vpc = existing ? this.importVpc(existing) : this.demoVpc();
    // Imported privateSubnetIds count as PRIVATE_WITH_EGRESS; the demo has isolated ones.
    this.subnets = {
      subnetType: existing ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED,
    };

    // No allow-all egress: the functions need HTTPS (AWS APIs) and PostgreSQL only.
    this.functionSecurityGroup = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'pgsteward functions: HTTPS to AWS APIs, PostgreSQL to the database',
      allowAllOutbound: false,
    });
    // Any IPv4, because AWS API addresses are not known at synth time: interface
    // endpoints in the VPC, the S3 gateway's prefix list, or a NAT in an existing VPC.
    this.functionSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), HTTPS, 'AWS APIs (VPC endpoints or NAT)');

    if (existing?.dbSecurityGroupId) {
      // mutable import: CDK adds the ingress rule to the database's group in this stack.
      const dbSg = ec2.SecurityGroup.fromSecurityGroupId(this, 'DatabaseSecurityGroup', existing.dbSecurityGroupId);
      dbSg.connections.allowFrom(this.functionSecurityGroup, POSTGRES, 'pgsteward functions');
    } else if (existing) {
      // The database's own security group is the gate here: allow this group in it
      // (see the FunctionSecurityGroupId output), or pass context dbSecurityGroupId.
      this.functionSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), POSTGRES, 'PostgreSQL (database security group decides)');
    } else {
      this.functionSecurityGroup.addEgressRule(ec2.Peer.ipv4(this.vpc.vpcCidrBlock), POSTGRES, 'PostgreSQL in the demo VPC');
    }

    if (!existing) this.demoEndpoints(this.vpc as ec2.Vpc);

    new CfnOutput(this, 'FunctionSecurityGroupId', {
      value: this.functionSecurityGroup.securityGroupId,
      description: 'Allow this security group on port 5432 in the database security group',
    });
  }

  private importVpc(existing: ExistingVpcConfig): ec2.IVpc {
    // fromVpcAttributes, not fromLookup: synth must work offline with no credentials.
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: existing.vpcId,
      availabilityZones: existing.availabilityZones,
      privateSubnetIds: existing.privateSubnetIds,
    });
    // Lambda placement needs subnet ids only; nothing here reads their route tables.
    Validations.of(this).acknowledge({
      id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
      reason: 'only Lambda placement uses the imported subnets; their route tables are never read',
    });
    return vpc;
  }

  private demoVpc(): ec2.IVpc {
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      // The VPC's default security group allows all traffic between its members;
      // nothing here uses it, so CDK strips its rules.
      restrictDefaultSecurityGroup: true,
    });
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) });

    return vpc;
  }

  /** The AWS APIs the functions call, reachable without a NAT. */
  private demoEndpoints(vpc: ec2.Vpc): void {
    const isolated = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3, subnets: [isolated] });
    const interfaces: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
      SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      Rds: ec2.InterfaceVpcEndpointAwsService.RDS,
      Events: ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
      Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
      // The Fargate logical-backup task pulls its image (layers come through the S3 gateway).
      Ecr: ec2.InterfaceVpcEndpointAwsService.ECR,
      EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    };
    for (const [id, service] of Object.entries(interfaces)) {
      // open: false: only the functions' security group may reach the endpoints,
      // rather than the whole VPC CIDR (CDK's default).
      // Endpoints only answer; their group needs no egress.
      const securityGroup = new ec2.SecurityGroup(this, `${id}EndpointSecurityGroup`, {
        vpc, allowAllOutbound: false, description: `${id} VPC endpoint: HTTPS from pgsteward functions`,
      });
      const endpoint = vpc.addInterfaceEndpoint(id, {
        service, subnets: isolated, privateDnsEnabled: true, open: false, securityGroups: [securityGroup],
      });
      endpoint.connections.allowDefaultPortFrom(this.functionSecurityGroup, 'pgsteward functions');
    }
  }
}
