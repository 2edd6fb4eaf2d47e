import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { DEFAULTS } from '../lib/config';
import type { PgstewardStack } from '../lib/pgsteward-stack';
import { synth } from './helpers';
import { BACKUP_KEY, COPY_CONTEXT, WEST_KEY } from './snapshot-fixtures';

type Statement = Record<string, any>;
const arnOf = (...parts: unknown[]) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ...parts]] });
/** An RDS ARN as CDK renders it: a literal Region is folded into the neighbouring strings. */
const rds = (region: unknown, rest: string) => (typeof region === 'string'
  ? arnOf(`:rds:${region}:`, { Ref: 'AWS::AccountId' }, rest)
  : arnOf(':rds:', region, ':', { Ref: 'AWS::AccountId' }, rest));
const HERE = { Ref: 'AWS::Region' };

function roleStatements(template: Template, stack: PgstewardStack, role: iam.IRole): Statement[] {
  const roleId = stack.getLogicalId((role as iam.Role).node.defaultChild as never);
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}
const actionsOf = (s: Statement) => ([] as string[]).concat(s.Action);
/** Resource lists as a set: the IAM policy minimizer orders them its own way. */
const set = (r: unknown) => ([] as unknown[]).concat(r).map((x) => JSON.stringify(x)).sort();
const allowing = (statements: Statement[], action: string) => statements.filter((s) => actionsOf(s).includes(action));

describe('snapshot function role (instance source, no copies)', () => {
  const { template, stack } = synth();
  const statements = roleStatements(template, stack, stack.snapshot.function.role!);

  test('exactly these statements: create, tag (pgsteward keys only), describe, quota, put events; no secret', () => {
    assert.deepEqual(statements, [
      { Action: 'rds:CreateDBSnapshot', Effect: 'Allow', Resource: [rds(HERE, ':db:orders-prod'), rds(HERE, ':snapshot:pgsteward-*')] },
      {
        Action: 'rds:AddTagsToResource', Effect: 'Allow', Resource: rds(HERE, ':snapshot:pgsteward-*'),
        Condition: { 'ForAllValues:StringLike': { 'aws:TagKeys': ['pgsteward:*'] } },
      },
      { Action: 'rds:DescribeDBInstances', Effect: 'Allow', Resource: rds(HERE, ':db:orders-prod') },
      { Action: ['rds:DescribeAccountAttributes', 'rds:DescribeDBSnapshots'], Effect: 'Allow', Resource: '*' },
      { Action: 'events:PutEvents', Effect: 'Allow', Resource: arnOf(':events:', HERE, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default') },
    ]);
    assert.equal(JSON.stringify(statements).includes('secretsmanager'), false);
  });
});

describe('snapshot function role (Aurora cluster, copies to two Regions, one shared and encrypted)', () => {
  const { template, stack } = synth({ snapshotSource: 'cluster', ...COPY_CONTEXT });
  const statements = roleStatements(template, stack, stack.snapshot.function.role!);
  const local = rds(HERE, ':cluster-snapshot:pgsteward-*');
  const west = rds('us-west-2', ':cluster-snapshot:pgsteward-*');
  const eu = rds('eu-west-1', ':cluster-snapshot:pgsteward-*');

  test('cluster actions on the cluster and its pgsteward- snapshots, never instance ones', () => {
    assert.deepEqual(set(allowing(statements, 'rds:CreateDBClusterSnapshot')[0].Resource), set([rds(HERE, ':cluster:orders-prod'), local]));
    assert.deepEqual(allowing(statements, 'rds:DescribeDBClusters')[0].Resource, rds(HERE, ':cluster:orders-prod'));
    assert.deepEqual(allowing(statements, 'rds:DescribeDBClusterSnapshots')[0].Resource, '*');
    for (const action of ['rds:CreateDBSnapshot', 'rds:DescribeDBInstances', 'rds:CopyDBSnapshot', 'rds:ModifyDBSnapshotAttribute']) {
      assert.deepEqual(allowing(statements, action), [], action);
    }
  });

  test('tags: here and in each copy Region, pgsteward tag keys only', () => {
    const [tag] = allowing(statements, 'rds:AddTagsToResource');
    assert.deepEqual(set(tag.Resource), set([local, west, eu]));
    assert.deepEqual(tag.Condition, { 'ForAllValues:StringLike': { 'aws:TagKeys': ['pgsteward:*'] } });
  });

  test('copy from here to each destination; share only where shareWithAccount is set, only managed copies', () => {
    assert.deepEqual(set(allowing(statements, 'rds:CopyDBClusterSnapshot')[0].Resource), set([local, west, eu]));
    assert.deepEqual(allowing(statements, 'rds:DescribeDBClusterSnapshotAttributes'), [
      { Action: 'rds:DescribeDBClusterSnapshotAttributes', Effect: 'Allow', Resource: west },
    ]);
    assert.deepEqual(allowing(statements, 'rds:ModifyDBClusterSnapshotAttribute'), [{
      Action: 'rds:ModifyDBClusterSnapshotAttribute', Effect: 'Allow', Resource: west,
      Condition: { StringEquals: { 'aws:ResourceTag/pgsteward:managed': 'true' } },
    }]);
    // The copy itself is found in its Region by the describe-on-`*` statement.
    assert.deepEqual(allowing(statements, 'rds:DescribeDBClusterSnapshots')[0].Resource, '*');
  });

  test('the destination key: DescribeKey, and CreateGrant for AWS resources only', () => {
    assert.deepEqual(allowing(statements, 'kms:DescribeKey'), [{ Action: 'kms:DescribeKey', Effect: 'Allow', Resource: WEST_KEY }]);
    assert.deepEqual(allowing(statements, 'kms:CreateGrant'), [{
      Action: 'kms:CreateGrant', Effect: 'Allow', Resource: WEST_KEY, Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    }]);
  });

  test('the only `*` statement is describe snapshots + account attributes', () => {
    const wildcard = statements.filter((s) => ([] as unknown[]).concat(s.Resource).includes('*'));
    assert.deepEqual(wildcard.map(actionsOf), [['rds:DescribeAccountAttributes', 'rds:DescribeDBClusterSnapshots']]);
  });
});

describe('copies without keys or sharing', () => {
  test('no KMS and no share statements', () => {
    const { template, stack } = synth({ copyDestinations: '[{"region":"eu-west-1"}]' });
    const statements = roleStatements(template, stack, stack.snapshot.function.role!);
    assert.deepEqual(set(allowing(statements, 'rds:CopyDBSnapshot')[0].Resource),
      set([rds(HERE, ':snapshot:pgsteward-*'), rds('eu-west-1', ':snapshot:pgsteward-*')]));
    assert.equal(JSON.stringify(statements).includes('kms:'), false);
    for (const action of ['rds:DescribeDBSnapshotAttributes', 'rds:ModifyDBSnapshotAttribute']) {
      assert.deepEqual(allowing(statements, action), [], action);
    }
  });
});

describe('instance copies shared with an account', () => {
  test('DB snapshot attribute actions in the sharing Region only; modify needs the managed tag', () => {
    const { template, stack } = synth(COPY_CONTEXT);
    const statements = roleStatements(template, stack, stack.snapshot.function.role!);
    const west = rds('us-west-2', ':snapshot:pgsteward-*');
    assert.deepEqual(allowing(statements, 'rds:DescribeDBSnapshotAttributes'), [
      { Action: 'rds:DescribeDBSnapshotAttributes', Effect: 'Allow', Resource: west },
    ]);
    assert.deepEqual(allowing(statements, 'rds:ModifyDBSnapshotAttribute'), [{
      Action: 'rds:ModifyDBSnapshotAttribute', Effect: 'Allow', Resource: west,
      Condition: { StringEquals: { 'aws:ResourceTag/pgsteward:managed': 'true' } },
    }]);
    for (const action of ['rds:DescribeDBClusterSnapshotAttributes', 'rds:ModifyDBClusterSnapshotAttribute']) {
      assert.deepEqual(allowing(statements, action), [], action);
    }
  });
});

describe('logical-backup function and Fargate task roles', () => {
  for (const [variant, context] of [['S3-managed encryption', {}], ['a KMS key', { backupKmsKeyArn: BACKUP_KEY }]] as const) {
    const { template, stack } = synth(context);
    const bucketArn = { 'Fn::GetAtt': [stack.getLogicalId(stack.snapshot.backups.bucket.node.defaultChild as never), 'Arn'] };
    const expected: Statement[] = [
      { Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], Effect: 'Allow', Resource: DEFAULTS.dbSecretArn },
      {
        Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'],
        Effect: 'Allow', Resource: { 'Fn::Join': ['', [bucketArn, '/pgsteward/*']] },
      },
      { Action: 's3:ListBucket', Effect: 'Allow', Resource: bucketArn, Condition: { StringLike: { 's3:prefix': ['pgsteward/*'] } } },
      ...(variant === 'a KMS key' ? [{
        Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'], Effect: 'Allow', Resource: BACKUP_KEY,
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['s3.', HERE, '.amazonaws.com']] } } },
      }] : []),
      { Action: 'events:PutEvents', Effect: 'Allow', Resource: arnOf(':events:', HERE, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default') },
    ];
    test(`${variant}: the function and the task role have exactly the same, prefix-scoped permissions`, () => {
      assert.deepEqual(roleStatements(template, stack, stack.snapshot.logicalBackupFunction.role!), expected);
      assert.deepEqual(roleStatements(template, stack, stack.snapshot.logicalBackup.taskDefinition.taskRole), expected);
    });
  }

  test('the execution role pulls from the asset repository and writes the task\'s log group only', () => {
    const { template, stack } = synth();
    const lb = stack.snapshot.logicalBackup;
    const statements = roleStatements(template, stack, lb.taskDefinition.executionRole!);
    assert.deepEqual(statements.map(actionsOf), [
      ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
      ['ecr:GetAuthorizationToken'],
      ['logs:CreateLogStream', 'logs:PutLogEvents'],
    ]);
    assert.match(JSON.stringify(statements[0].Resource), /container-assets/);
    assert.deepEqual(statements[2].Resource, { 'Fn::GetAtt': [stack.getLogicalId(lb.taskLogGroup.node.defaultChild as never), 'Arn'] });
  });
});
