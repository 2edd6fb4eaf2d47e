import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { EXISTING_VPC_CONTEXT, synth } from './helpers';

const fnSgId = Match.stringLikeRegexp('^NetworkFunctionSecurityGroup[0-9A-F]{8}$');

describe('demo VPC (no vpcId in context)', () => {
  const { template } = synth();

  test('two AZs, isolated subnets only, no NAT or internet gateway', () => {
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::EC2::Subnet', 2);
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    template.allResourcesProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false });
  });

  test('S3 gateway and Secrets Manager, RDS, EventBridge, Logs, ECR API and ECR Docker interface endpoints', () => {
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('\\.s3$')])] },
    });
    const services = Object.values(template.findResources('AWS::EC2::VPCEndpoint', {
      Properties: { VpcEndpointType: 'Interface' },
    })).map((r) => JSON.stringify(r.Properties.ServiceName));
    assert.equal(services.length, 6);
    for (const name of ['.secretsmanager"', '.rds"', '.events"', '.logs"', '.ecr.api"', '.ecr.dkr"']) {
      assert.ok(services.some((s) => s.includes(name)), `${name} endpoint in ${services.join(' ')}`);
    }
  });

  test('interface endpoints admit the functions security group only, on 443', () => {
    // The restored database copies' group (5432 from the functions) is checked in pitr-restore.test.ts.
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress'))
      .filter((rule) => !/^PitrRestoreSecurityGroup/.test(rule.Properties.GroupId['Fn::GetAtt'][0]));
    assert.equal(ingress.length, 6);
    for (const rule of ingress) {
      assert.equal(rule.Properties.FromPort, 443);
      assert.match(rule.Properties.SourceSecurityGroupId['Fn::GetAtt'][0], /^NetworkFunctionSecurityGroup/);
    }
  });

  test('the functions may reach PostgreSQL inside the VPC only', () => {
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupEgress: Match.arrayWith([Match.objectLike({
        FromPort: 5432, ToPort: 5432, CidrIp: { 'Fn::GetAtt': [Match.anyValue(), 'CidrBlock'] },
      })]),
    });
  });

  test('flow logs are on', () => {
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
  });
});

describe('existing VPC from context', () => {
  const { template } = synth(EXISTING_VPC_CONTEXT);

  test('creates no VPC and places the function in the given subnets', () => {
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    template.hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: {
        SubnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'],
        SecurityGroupIds: [{ 'Fn::GetAtt': [fnSgId, 'GroupId'] }],
      },
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: EXISTING_VPC_CONTEXT.vpcId });
  });

  test('the database security group admits the functions on 5432', () => {
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: EXISTING_VPC_CONTEXT.dbSecurityGroupId,
      IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432,
      SourceSecurityGroupId: { 'Fn::GetAtt': [fnSgId, 'GroupId'] },
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
      DestinationSecurityGroupId: EXISTING_VPC_CONTEXT.dbSecurityGroupId, FromPort: 5432, ToPort: 5432,
    });
  });

  test('the functions security group is an output', () => {
    template.hasOutput('*', { Value: { 'Fn::GetAtt': [fnSgId, 'GroupId'] } });
  });

  test('without dbSecurityGroupId, the database group decides (egress 5432 anywhere)', () => {
    const { dbSecurityGroupId: _, ...rest } = EXISTING_VPC_CONTEXT;
    const t = synth(rest).template;
    // No rule on the database's group; the one ingress rule is the restored copies' own group admitting the functions.
    const ingress = Object.values(t.findResources('AWS::EC2::SecurityGroupIngress'));
    assert.deepEqual(ingress.map((r) => [r.Properties.GroupId['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, ''), r.Properties.FromPort]),
      [['PitrRestoreSecurityGroup', 5432]]);
    t.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupEgress: Match.arrayWith([Match.objectLike({ FromPort: 5432, CidrIp: '0.0.0.0/0' })]),
    });
  });

  test('JSON arrays from cdk.json work like comma-separated -c values', () => {
    const t = synth({
      ...EXISTING_VPC_CONTEXT,
      availabilityZones: ['us-east-1a', 'us-east-1b'],
      privateSubnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'],
    }).template;
    t.hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: Match.objectLike({ SubnetIds: ['subnet-0aaa1111bbbb2222c', 'subnet-0ddd3333eeee4444f'] }),
    });
  });
});

test('no egress rule allows all traffic', () => {
  for (const ctx of [{}, EXISTING_VPC_CONTEXT]) {
    const { template } = synth(ctx);
    template.allResourcesProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupEgress: Match.not(Match.arrayWith([Match.objectLike({ IpProtocol: '-1' })])),
    });
  }
});
