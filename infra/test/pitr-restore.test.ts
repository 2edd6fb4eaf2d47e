import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { configFromContext, DEFAULTS } from '../lib/config';
import type { PgstewardStack } from '../lib/pgsteward-stack';
import { EXISTING_VPC_CONTEXT, newApp, synth } from './helpers';
import { APP_SECRETS, DB_KEY, FULL_RESTORE_CONTEXT } from './restore-fixtures';
import { BACKUP_KEY } from './snapshot-fixtures';

type Statement = Record<string, any>;
const HERE = { Ref: 'AWS::Region' };
const arnOf = (...parts: unknown[]) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ...parts]] });
const rds = (rest: string, ...more: unknown[]) => arnOf(':rds:', HERE, ':', { Ref: 'AWS::AccountId' }, rest, ...more);
const FROM_SOURCE = { StringEquals: { 'aws:RequestTag/pgsteward:restored-from': 'orders-prod' } };
const DESCRIBE = [
  'rds:DescribeDBClusters', 'rds:DescribeDBInstanceAutomatedBackups', 'rds:DescribeDBInstances', 'rds:DescribeDBSnapshots',
  'rds:ListTagsForResource',
];
const APP_SECRET_ACTIONS = ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage'];

const id = (stack: PgstewardStack, c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
const actionsOf = (s: Statement) => ([] as string[]).concat(s.Action);
const resourcesOf = (s: Statement) => ([] as unknown[]).concat(s.Resource);
/** Resource lists as a set: the IAM policy minimizer orders them its own way. */
const set = (r: unknown) => ([] as unknown[]).concat(r).map((x) => JSON.stringify(x)).sort();

function roleStatements(template: Template, stack: PgstewardStack, role: iam.IRole): Statement[] {
  const roleId = id(stack, role as iam.Role);
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

/** Every statement of every identity policy in the template. */
function allStatements(template: Template): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement);
}

const { template, stack } = synth();
const pr = stack.pitrRestore;
const resources = template.toJSON().Resources as Record<string, any>;
const fnId = id(stack, pr.function);
const subnetGroupRef = { Ref: id(stack, pr.subnetGroup!) };
const bucketRef = { Ref: id(stack, stack.snapshot.backups.bucket) };
const bucketArn = { 'Fn::GetAtt': [id(stack, stack.snapshot.backups.bucket), 'Arn'] };

const COMMON_ENV = {
  PGSTEWARD_DB_IDENTIFIER: DEFAULTS.dbIdentifier,
  PGSTEWARD_DB_SECRET_ARN: DEFAULTS.dbSecretArn,
  PGSTEWARD_CA_BUNDLE: '/var/task/rds-ca-bundle.pem',
  PGSTEWARD_EVENT_BUS: 'default',
  PGSTEWARD_SNAPSHOT_SOURCE: 'instance',
  PGSTEWARD_REPORT_BUCKET: bucketRef,
};

describe('pitr-restore function', () => {
  test('provided.al2023 zip, 256 MB, 15 minutes, in the VPC with the functions\' security group', () => {
    const fn = resources[fnId].Properties;
    assert.equal(fn.Runtime, 'provided.al2023');
    assert.equal(fn.Handler, 'bootstrap');
    assert.equal(fn.MemorySize, 256);
    assert.equal(fn.Timeout, 900);
    assert.equal(fn.LoggingConfig.LogFormat, 'JSON');
    assert.deepEqual(fn.VpcConfig.SecurityGroupIds, [{ 'Fn::GetAtt': [id(stack, stack.network.functionSecurityGroup), 'GroupId'] }]);
  });

  test('environment with no options: the stack\'s own subnet group and security group, reports to the backup bucket', () => {
    assert.deepEqual(resources[fnId].Properties.Environment.Variables, {
      ...COMMON_ENV,
      PGSTEWARD_RESTORE_SUBNET_GROUP: subnetGroupRef,
      PGSTEWARD_RESTORE_SECURITY_GROUPS: { 'Fn::GetAtt': [id(stack, pr.securityGroup!), 'GroupId'] },
    });
  });

  test('environment with every option: the named groups, class, parameter group, app secrets (comma-separated)', () => {
    const s = synth({ ...EXISTING_VPC_CONTEXT, ...FULL_RESTORE_CONTEXT, snapshotSource: 'cluster' });
    const env = s.template.toJSON().Resources[id(s.stack, s.stack.pitrRestore.function)].Properties.Environment.Variables;
    assert.deepEqual(env, {
      ...COMMON_ENV,
      PGSTEWARD_SNAPSHOT_SOURCE: 'cluster',
      PGSTEWARD_REPORT_BUCKET: { Ref: id(s.stack, s.stack.snapshot.backups.bucket) },
      PGSTEWARD_RESTORE_SUBNET_GROUP: 'orders-restore',
      PGSTEWARD_RESTORE_SECURITY_GROUPS: 'sg-0aaaaaaaaaaaaaaa1,sg-0bbbbbbbbbbbbbbb2',
      PGSTEWARD_RESTORE_PARAMETER_GROUP: 'orders-pg15',
      PGSTEWARD_RESTORE_INSTANCE_CLASS: 'db.r6g.large',
      PGSTEWARD_APP_SECRET_ARNS: APP_SECRETS.join(','),
    });
    // Nothing created when both are named.
    assert.equal(s.stack.pitrRestore.subnetGroup, undefined);
    assert.equal(s.stack.pitrRestore.securityGroup, undefined);
  });

  test('an existing VPC with a database security group: the restored copy gets that group', () => {
    const s = synth(EXISTING_VPC_CONTEXT);
    const env = s.template.toJSON().Resources[id(s.stack, s.stack.pitrRestore.function)].Properties.Environment.Variables;
    assert.equal(env.PGSTEWARD_RESTORE_SECURITY_GROUPS, EXISTING_VPC_CONTEXT.dbSecurityGroupId);
    assert.equal(s.stack.pitrRestore.securityGroup, undefined);
    // The subnet group spans the configured private subnets.
    s.template.hasResourceProperties('AWS::RDS::DBSubnetGroup', { SubnetIds: EXISTING_VPC_CONTEXT.privateSubnetIds.split(',') });
  });

  test('the stack\'s subnet group and security group (both kept when the stack goes): PostgreSQL from the functions only, no egress', () => {
    const sg = resources[id(stack, pr.subnetGroup!)];
    assert.equal(sg.Type, 'AWS::RDS::DBSubnetGroup');
    assert.equal(sg.DeletionPolicy, 'Retain');
    assert.equal(sg.Properties.SubnetIds.length, 2);
    assert.equal(resources[id(stack, pr.securityGroup!)].DeletionPolicy, 'Retain');
    const group = resources[id(stack, pr.securityGroup!)].Properties;
    assert.deepEqual(group.SecurityGroupEgress, [{ CidrIp: '255.255.255.255/32', Description: 'Disallow all traffic', FromPort: 252, IpProtocol: 'icmp', ToPort: 86 }]);
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [id(stack, pr.securityGroup!), 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [id(stack, stack.network.functionSecurityGroup), 'GroupId'] },
      FromPort: 5432, ToPort: 5432, IpProtocol: 'tcp',
    });
  });

  test('outputs: the function, and the state machine with the input to start it', () => {
    const outputs = Object.values(template.toJSON().Outputs as Record<string, any>);
    assert.ok(outputs.some((o) => o.Value?.Ref === fnId));
    const sm = outputs.find((o) => o.Value?.Ref === id(stack, pr.checklist.stateMachine));
    assert.match(sm.Description, /targetDbInstanceIdentifier.*restoreTime.*"rollback":true/);
  });
});

describe('function role (instance source, no app secrets, SSE-S3)', () => {
  const statements = roleStatements(template, stack, pr.function.role!);

  test('exactly: the master secret, the bus, restore from this source into tagged targets, describes, reports, manifests', () => {
    assert.deepEqual(statements, [
      { Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], Effect: 'Allow', Resource: DEFAULTS.dbSecretArn },
      { Action: 'events:PutEvents', Effect: 'Allow', Resource: arnOf(':events:', HERE, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default') },
      { Action: 'rds:RestoreDBInstanceToPointInTime', Effect: 'Allow', Resource: rds(':db:orders-prod') },
      {
        Action: 'rds:RestoreDBInstanceToPointInTime', Condition: FROM_SOURCE, Effect: 'Allow',
        Resource: [rds(':db:*'), rds(':subgrp:', subnetGroupRef)],
      },
      { Action: 'rds:AddTagsToResource', Condition: FROM_SOURCE, Effect: 'Allow', Resource: rds(':db:*') },
      { Action: 'rds:AddTagsToResource', Effect: 'Deny', Resource: rds(':db:orders-prod') },
      { Action: DESCRIBE, Effect: 'Allow', Resource: '*' },
      { Action: 's3:PutObject', Effect: 'Allow', Resource: { 'Fn::Join': ['', [bucketArn, '/restore-reports/*']] } },
      { Action: 's3:GetObject', Effect: 'Allow', Resource: { 'Fn::Join': ['', [bucketArn, '/pgsteward/*']] } },
    ]);
  });

  test('no secret is written without app secrets configured', () => {
    assert.ok(!statements.some((s) => actionsOf(s).some((a) => /PutSecretValue|UpdateSecretVersionStage/.test(a))));
  });

  test('the only `*` statement is the read-only describes', () => {
    assert.deepEqual(statements.filter((s) => resourcesOf(s).includes('*')).map(actionsOf), [DESCRIBE]);
  });
});

describe('function role (Aurora, every restore option, a backup key)', () => {
  const s = synth({ ...FULL_RESTORE_CONTEXT, snapshotSource: 'cluster', backupKmsKeyArn: BACKUP_KEY });
  const statements = roleStatements(s.template, s.stack, s.stack.pitrRestore.function.role!);
  const allowing = (action: string) => statements.filter((st) => st.Effect === 'Allow' && actionsOf(st).includes(action));

  test('cluster restore from this cluster only, into tagged clusters in the named subnet and cluster parameter groups', () => {
    const [source, target, ...rest] = allowing('rds:RestoreDBClusterToPointInTime');
    assert.deepEqual(rest, []);
    assert.deepEqual(source, { Action: 'rds:RestoreDBClusterToPointInTime', Effect: 'Allow', Resource: rds(':cluster:orders-prod') });
    assert.deepEqual(target.Condition, FROM_SOURCE);
    assert.deepEqual(set(target.Resource), set([rds(':cluster:*'), rds(':subgrp:orders-restore'), rds(':cluster-pg:orders-pg15')]));
    assert.deepEqual(allowing('rds:RestoreDBInstanceToPointInTime'), []);
  });

  test('the restored cluster\'s instance, and the tags, only on resources tagged as restored from this source', () => {
    const [create, ...moreCreates] = allowing('rds:CreateDBInstance');
    assert.deepEqual(moreCreates, []);
    assert.deepEqual(create.Condition, FROM_SOURCE);
    assert.deepEqual(set(create.Resource), set([rds(':cluster:*'), rds(':db:*'), rds(':subgrp:orders-restore')]));
    const [tag, ...moreTags] = allowing('rds:AddTagsToResource');
    assert.deepEqual(moreTags, []);
    assert.deepEqual(tag.Condition, FROM_SOURCE);
    assert.deepEqual(set(tag.Resource), set([rds(':cluster:*'), rds(':db:*')]));
    assert.deepEqual(statements.filter((st) => st.Effect === 'Deny'),
      [{ Action: 'rds:AddTagsToResource', Effect: 'Deny', Resource: rds(':cluster:orders-prod') }]);
  });

  test('cut-over and rollback on exactly the configured app secrets', () => {
    const app = statements.filter((st) => actionsOf(st).some((a) => a.startsWith('secretsmanager:')) && st.Resource !== DEFAULTS.dbSecretArn);
    assert.equal(app.length, 1);
    assert.deepEqual(app[0].Action, APP_SECRET_ACTIONS);
    assert.deepEqual(set(app[0].Resource), set(APP_SECRETS));
  });

  test('reports and manifests through the backup key, through S3 only; a grant on the database\'s key for AWS resources only', () => {
    assert.deepEqual(statements.filter((st) => actionsOf(st).some((a) => a.startsWith('kms:'))), [
      { Action: 'kms:DescribeKey', Effect: 'Allow', Resource: DB_KEY },
      { Action: 'kms:CreateGrant', Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } }, Effect: 'Allow', Resource: DB_KEY },
      {
        Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Effect: 'Allow', Resource: BACKUP_KEY,
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['s3.', HERE, '.amazonaws.com']] } } },
      },
    ]);
  });
});

describe('nothing in the stack modifies the source or writes a secret it should not', () => {
  for (const [variant, context] of [
    ['defaults', {}],
    ['every restore option, instance', { ...EXISTING_VPC_CONTEXT, ...FULL_RESTORE_CONTEXT }],
    ['every restore option, Aurora', { ...FULL_RESTORE_CONTEXT, snapshotSource: 'cluster' }],
  ] as const) {
    const s = synth(context);
    const statements = roleStatements(s.template, s.stack, s.stack.pitrRestore.function.role!);

    test(`${variant}: pitr-restore may not Modify, Delete, Stop, Reboot or Failover anything in RDS, and uses no action wildcards`, () => {
      for (const st of statements.filter((x) => x.Effect === 'Allow')) {
        for (const a of actionsOf(st)) {
          assert.ok(!/^rds:(Modify|Delete|Stop|Reboot|Failover|Promote|RemoveTags)/i.test(a), `${a}: ${JSON.stringify(st)}`);
          assert.ok(!a.includes('*'), `${a} is a wildcard`);
        }
      }
    });

    test(`${variant}: the source is granted only as the source of a restore`, () => {
      const sourceKind = 'snapshotSource' in context ? 'cluster' : 'db';
      const source = JSON.stringify(rds(`:${sourceKind}:orders-prod`));
      const onSource = statements.filter((st) => st.Effect === 'Allow' && resourcesOf(st).some((r) => JSON.stringify(r) === source));
      assert.equal(onSource.length, 1);
      assert.match(actionsOf(onSource[0])[0], /^rds:RestoreDB(Instance|Cluster)ToPointInTime$/);
      assert.equal(onSource[0].Condition, undefined);
    });

    test(`${variant}: PutSecretValue and UpdateSecretVersionStage only on the configured app secrets, in the whole stack`, () => {
      const writes = allStatements(s.template).filter((st) => actionsOf(st).some((a) => /^secretsmanager:(PutSecretValue|UpdateSecretVersionStage|\*)$/.test(a)));
      const expected = 'appSecretArns' in context ? APP_SECRETS : [];
      assert.deepEqual(writes.flatMap(resourcesOf).sort(), [...expected].sort());
      assert.ok(!writes.flatMap(resourcesOf).includes(DEFAULTS.dbSecretArn));
    });
  }
});

describe('the state machine role', () => {
  test('invokes the pitr-restore function only', () => {
    const statements = roleStatements(template, stack, pr.checklist.stateMachine.role);
    const invoke = statements.filter((st) => actionsOf(st).includes('lambda:InvokeFunction'));
    assert.deepEqual(invoke, [{
      Action: 'lambda:InvokeFunction', Effect: 'Allow',
      Resource: [{ 'Fn::GetAtt': [fnId, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [fnId, 'Arn'] }, ':*']] }],
    }]);
  });

  test('its only statement on every resource is Step Functions log delivery', () => {
    const wildcard = roleStatements(template, stack, pr.checklist.stateMachine.role).filter((st) => resourcesOf(st).includes('*'));
    assert.equal(wildcard.length, 1);
    for (const action of actionsOf(wildcard[0])) assert.match(action, /^logs:(\w+LogDelivery|ListLogDeliveries|Describe\w+|PutResourcePolicy)$/);
  });
});

describe('restore context', () => {
  test('defaults: nothing configured', () => {
    const c = configFromContext(newApp().node);
    assert.deepEqual([c.restoreSubnetGroup, c.restoreSecurityGroupIds, c.restoreParameterGroup, c.restoreInstanceClass, c.appSecretArns, c.dbKmsKeyArn],
      [undefined, [], undefined, undefined, [], undefined]);
  });

  test('lists from cdk.json arrays as well as -c strings', () => {
    const c = configFromContext(newApp({ appSecretArns: APP_SECRETS, restoreSecurityGroupIds: ['sg-0123abcd'] }).node);
    assert.deepEqual(c.appSecretArns, APP_SECRETS);
    assert.deepEqual(c.restoreSecurityGroupIds, ['sg-0123abcd']);
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['the default subnet group', { restoreSubnetGroup: 'default' }, /restoreSubnetGroup "default" is the default VPC's group/],
    ['a subnet group name with a slash', { restoreSubnetGroup: 'a/b' }, /restoreSubnetGroup "a\/b" must be a DB subnet group name/],
    ['a malformed security group', { restoreSecurityGroupIds: 'sg-12' }, /restoreSecurityGroupIds: "sg-12" must look like sg-0123abcd/],
    ['six security groups', { restoreSecurityGroupIds: 'sg-00000001,sg-00000002,sg-00000003,sg-00000004,sg-00000005,sg-00000006' }, /at most 5/],
    ['a parameter group ending in a hyphen', { restoreParameterGroup: 'orders-' }, /restoreParameterGroup "orders-" must be a DB parameter group name/],
    ['a parameter group with a double hyphen', { restoreParameterGroup: 'a--b' }, /restoreParameterGroup "a--b"/],
    ['an instance class without db.', { restoreInstanceClass: 'r6g.large' }, /restoreInstanceClass "r6g.large" must be an RDS instance class like db\.r6g\.large/],
    ['an app secret without its suffix', { appSecretArns: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/app' }, /appSecretArns: .* 6-character suffix/],
    ['the master secret as an app secret', { appSecretArns: DEFAULTS.dbSecretArn }, /appSecretArns includes dbSecretArn/],
    ['a key alias as dbKmsKeyArn', { dbKmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:alias/aws/rds' }, /dbKmsKeyArn .* KMS key ARN .* not an alias/],
    ['an app secret listed twice', { appSecretArns: `${APP_SECRETS[0]},${APP_SECRETS[0]}` }, /lists a secret twice/],
    ['one zone and no subnet group', { vpcId: 'vpc-0a1b2c3d', availabilityZones: 'us-east-1a', privateSubnetIds: 'subnet-0a1b2c3d' }, /restoreSubnetGroup is needed/],
  ];
  for (const [what, context, message] of bad) {
    test(`rejects ${what}`, () => {
      assert.throws(() => configFromContext(newApp(context).node), message);
    });
  }

  test('one zone with a named subnet group is fine', () => {
    const c = configFromContext(newApp({ vpcId: 'vpc-0a1b2c3d', availabilityZones: 'us-east-1a', privateSubnetIds: 'subnet-0a1b2c3d', restoreSubnetGroup: 'orders-restore' }).node);
    assert.equal(c.restoreSubnetGroup, 'orders-restore');
  });
});
