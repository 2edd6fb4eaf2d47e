import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { DRILL_GRACE_HOURS } from '../lib/backup-verify';
import { configFromContext, DEFAULTS } from '../lib/config';
import type { PgstewardStack } from '../lib/pgsteward-stack';
import { DRILL_DEFAULTS, drillIntervalHours } from '../lib/verify-config';
import { EXISTING_VPC_CONTEXT, newApp, synth } from './helpers';
import { DB_KEY, FULL_RESTORE_CONTEXT } from './restore-fixtures';
import { BACKUP_KEY } from './snapshot-fixtures';
import { FULL_VERIFY_CONTEXT, SMOKE_QUERIES, VERIFY_SECRET } from './verify-fixtures';

type Statement = Record<string, any>;
const HERE = { Ref: 'AWS::Region' };
const arnOf = (...parts: unknown[]) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ...parts]] });
const rds = (rest: string, ...more: unknown[]) => arnOf(':rds:', HERE, ':', { Ref: 'AWS::AccountId' }, rest, ...more);
const MANAGED = { StringEquals: { 'aws:ResourceTag/pgsteward:managed': 'true' } };
const SCRATCH = { StringEquals: { 'aws:ResourceTag/pgsteward:scratch': 'true' } };
const AS_SCRATCH = { StringEquals: { 'aws:RequestTag/pgsteward:scratch': 'true' } };
const PGSTEWARD_KEYS = { 'ForAllValues:StringLike': { 'aws:TagKeys': ['pgsteward:*'] } };
const DESCRIBE = ['rds:DescribeDBClusterSnapshots', 'rds:DescribeDBClusters', 'rds:DescribeDBInstances', 'rds:DescribeDBSnapshots', 'rds:ListTagsForResource'];

const id = (stack: PgstewardStack, c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
const actionsOf = (s: Statement) => ([] as string[]).concat(s.Action);
/** Resource lists as a set: the IAM policy minimizer orders them its own way. */
const set = (r: unknown) => ([] as unknown[]).concat(r).map((x) => JSON.stringify(x)).sort();

function roleStatements(template: Template, stack: PgstewardStack, role: iam.IRole): Statement[] {
  const roleId = id(stack, role as iam.Role);
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

const { template, stack } = synth();
const bv = stack.backupVerify;
const resources = template.toJSON().Resources as Record<string, any>;
const fnId = id(stack, bv.function);
const bucketId = id(stack, stack.snapshot.backups.bucket);
const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
const objects = (pattern: string) => ({ 'Fn::Join': ['', [bucketArn, `/${pattern}`]] });
const subnetGroupRef = { Ref: id(stack, stack.pitrRestore.subnetGroup!) };

const COMMON_ENV = {
  PGSTEWARD_DB_IDENTIFIER: DEFAULTS.dbIdentifier,
  PGSTEWARD_DB_SECRET_ARN: DEFAULTS.dbSecretArn,
  PGSTEWARD_CA_BUNDLE: '/var/task/rds-ca-bundle.pem',
  PGSTEWARD_EVENT_BUS: 'default',
  PGSTEWARD_SNAPSHOT_SOURCE: 'instance',
  PGSTEWARD_BACKUP_BUCKET: { Ref: bucketId },
  PGSTEWARD_BACKUP_PREFIX: 'pgsteward',
};

describe('backup-verify function', () => {
  test('provided.al2023 zip (binary backup-verify), 512 MB, 15 minutes, JSON logs, in the VPC with the functions\' group', () => {
    const fn = resources[fnId].Properties;
    assert.equal(fn.Runtime, 'provided.al2023');
    assert.equal(fn.Handler, 'bootstrap');
    assert.ok(fn.Code.S3Key, 'a zip asset');
    assert.equal(fn.MemorySize, 512);
    assert.equal(fn.Timeout, 900);
    assert.equal(fn.LoggingConfig.LogFormat, 'JSON');
    assert.deepEqual(fn.VpcConfig.SecurityGroupIds, [{ 'Fn::GetAtt': [id(stack, stack.network.functionSecurityGroup), 'GroupId'] }]);
    assert.match(fn.Description, /restore drill of orders-prod/);
  });

  test('environment with no options: the contract\'s variables, scratch copies placed like pitr-restore\'s restored copies', () => {
    assert.deepEqual(resources[fnId].Properties.Environment.Variables, {
      ...COMMON_ENV,
      PGSTEWARD_RESTORE_SUBNET_GROUP: subnetGroupRef,
      PGSTEWARD_RESTORE_SECURITY_GROUPS: { 'Fn::GetAtt': [id(stack, stack.pitrRestore.securityGroup!), 'GroupId'] },
    });
    const pitrEnv = resources[id(stack, stack.pitrRestore.function)].Properties.Environment.Variables;
    assert.deepEqual(resources[fnId].Properties.Environment.Variables.PGSTEWARD_RESTORE_SUBNET_GROUP, pitrEnv.PGSTEWARD_RESTORE_SUBNET_GROUP);
  });

  test('environment with every option: verification server, class, targets, smoke queries (JSON), named groups', () => {
    const s = synth({ ...FULL_RESTORE_CONTEXT, ...FULL_VERIFY_CONTEXT });
    const env = s.template.toJSON().Resources[id(s.stack, s.stack.backupVerify.function)].Properties.Environment.Variables;
    assert.deepEqual(env, {
      ...COMMON_ENV,
      PGSTEWARD_BACKUP_BUCKET: { Ref: id(s.stack, s.stack.snapshot.backups.bucket) },
      PGSTEWARD_RESTORE_SUBNET_GROUP: 'orders-restore',
      PGSTEWARD_RESTORE_SECURITY_GROUPS: 'sg-0aaaaaaaaaaaaaaa1,sg-0bbbbbbbbbbbbbbb2',
      PGSTEWARD_VERIFY_SECRET_ARN: VERIFY_SECRET,
      PGSTEWARD_SCRATCH_INSTANCE_CLASS: 'db.t4g.small',
      PGSTEWARD_RTO_TARGET_MINUTES: '45',
      PGSTEWARD_RPO_TARGET_MINUTES: '1500',
      PGSTEWARD_SMOKE_QUERIES: JSON.stringify(SMOKE_QUERIES),
    });
  });

  test('outputs: the function, and the state machine with the input to start it', () => {
    const outputs = Object.values(template.toJSON().Outputs as Record<string, any>);
    assert.ok(outputs.some((o) => o.Value?.Ref === fnId));
    const sm = outputs.find((o) => o.Value?.Ref === id(stack, bv.drill.stateMachine));
    assert.match(sm.Description, /\{"kind":"snapshot","pick":"latest"\}/);
  });
});

describe('drill schedule', () => {
  const smArn = { Ref: id(stack, bv.drill.stateMachine) };
  const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: smArn } } }));

  test('weekly (seed 002), Sunday 02:45 UTC, 45 minutes after the snapshot, starting the drill with kind, pick latest and the slot', () => {
    assert.equal(schedules.length, 1);
    const p = schedules[0].Properties;
    assert.equal(p.ScheduleExpression, 'cron(45 2 ? * SUN *)');
    assert.equal(p.ScheduleExpression, DRILL_DEFAULTS.drillSchedule);
    assert.equal(p.ScheduleExpressionTimezone, 'Etc/UTC');
    assert.deepEqual(p.FlexibleTimeWindow, { Mode: 'OFF' });
    assert.equal(p.Target.Input,
      '{"kind":"snapshot","pick":"latest","scheduledTime":"<aws.scheduler.scheduled-time>","executionId":"<aws.scheduler.execution-id>"}');
    assert.deepEqual(p.Target.RetryPolicy, { MaximumEventAgeInSeconds: 21600, MaximumRetryAttempts: 3 });
  });

  test('configurable: drillSchedule and drillKind reach the schedule', () => {
    const s = synth(FULL_VERIFY_CONTEXT);
    const arn = { Ref: id(s.stack, s.stack.backupVerify.drill.stateMachine) };
    const [schedule] = Object.values(s.template.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: arn } } }));
    assert.equal(schedule.Properties.ScheduleExpression, 'cron(0 3 1 * ? *)');
    assert.match(schedule.Properties.Target.Input, /^\{"kind":"logical","pick":"latest",/);
  });

  test('its role may start this state machine only, and only this account\'s scheduler assumes it', () => {
    const roleId = schedules[0].Properties.Target.RoleArn['Fn::GetAtt'][0];
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
      .flatMap((p) => p.Properties.PolicyDocument.Statement);
    assert.deepEqual(statements, [{ Action: 'states:StartExecution', Effect: 'Allow', Resource: smArn }]);
    assert.deepEqual(resources[roleId].Properties.AssumeRolePolicyDocument.Statement[0].Condition,
      { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } });
  });
});

describe('alarms on the drill report\'s metrics', () => {
  const props = (alarm: { node: { defaultChild?: unknown } }) => resources[id(stack, alarm)].Properties;

  test('DrillFailed: the latest report said DrillPassed 0; the state holds between weekly drills (missing ignored)', () => {
    const { AlarmDescription, ...p } = props(bv.drillFailedAlarm);
    assert.match(AlarmDescription, /latest restore drill of orders-prod failed/);
    assert.deepEqual(p, {
      AlarmName: 'pgsteward-orders-prod-DrillFailed',
      Namespace: 'pgsteward', MetricName: 'DrillPassed', Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'orders-prod' }],
      Statistic: 'Minimum', Period: 86400, EvaluationPeriods: 1, Threshold: 1,
      ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'ignore',
    });
  });

  test(`VerifiedBackupAgeHours: older than the schedule allows (7 days + ${DRILL_GRACE_HOURS} h for the weekly default)`, () => {
    const { AlarmDescription, ...p } = props(bv.verifiedAgeAlarm);
    assert.match(AlarmDescription, /older than 192 h/);
    assert.deepEqual(p, {
      AlarmName: 'pgsteward-orders-prod-VerifiedBackupAgeHours',
      Namespace: 'pgsteward', MetricName: 'VerifiedBackupAgeHours', Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'orders-prod' }],
      Statistic: 'Maximum', Period: 86400, EvaluationPeriods: 1, Threshold: 7 * 24 + DRILL_GRACE_HOURS,
      ComparisonOperator: 'GreaterThanThreshold', TreatMissingData: 'ignore',
    });
    // A monthly drill allows a month and a day.
    const s = synth(FULL_VERIFY_CONTEXT);
    assert.equal(s.template.toJSON().Resources[id(s.stack, s.stack.backupVerify.verifiedAgeAlarm)].Properties.Threshold, 31 * 24 + DRILL_GRACE_HOURS);
  });

  test('a failed drill execution (including a report that failed) alarms; CloudWatch\'s 7-day limit is respected', () => {
    const p = props(bv.executionFailedAlarm);
    assert.equal(p.Namespace, 'AWS/States');
    assert.equal(p.MetricName, 'ExecutionsFailed');
    assert.deepEqual(p.Dimensions, [{ Name: 'StateMachineArn', Value: { Ref: id(stack, bv.drill.stateMachine) } }]);
    assert.equal(p.TreatMissingData, 'notBreaching');
    for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
      assert.ok(alarm.Properties.Period * alarm.Properties.EvaluationPeriods <= 7 * 86400);
    }
  });

  test('drill intervals from schedule expressions', () => {
    assert.deepEqual(
      ['rate(7 days)', 'rate(12 hours)', 'cron(45 2 ? * SUN *)', 'cron(0 3 ? * MON#1 *)', 'cron(0 3 1 * ? *)', 'cron(0 3 * * ? *)'].map(drillIntervalHours),
      [168, 12, 168, 840, 744, 24],
    );
    assert.throws(() => drillIntervalHours('cron(0 3 ? * MON-FRI *)'), /cannot tell how often it runs/);
  });
});

describe('function role (instance source, SSE-S3)', () => {
  const statements = roleStatements(template, stack, bv.function.role!);

  test('exactly: the secret, the bus, restore from managed snapshots into tagged scratch copies, tags, scratch deletes, describes, bucket', () => {
    assert.deepEqual(statements, [
      { Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], Effect: 'Allow', Resource: DEFAULTS.dbSecretArn },
      { Action: 'events:PutEvents', Effect: 'Allow', Resource: arnOf(':events:', HERE, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default') },
      { Action: 'rds:RestoreDBInstanceFromDBSnapshot', Condition: MANAGED, Effect: 'Allow', Resource: rds(':snapshot:pgsteward-orders-prod-*') },
      {
        Action: 'rds:RestoreDBInstanceFromDBSnapshot', Condition: AS_SCRATCH, Effect: 'Allow',
        Resource: [rds(':db:pgsteward-drill-*'), rds(':subgrp:', subnetGroupRef)],
      },
      { Action: 'rds:AddTagsToResource', Condition: PGSTEWARD_KEYS, Effect: 'Allow', Resource: rds(':db:pgsteward-drill-*') },
      {
        Action: 'rds:AddTagsToResource', Condition: { ...PGSTEWARD_KEYS, ...MANAGED }, Effect: 'Allow',
        Resource: rds(':snapshot:pgsteward-orders-prod-*'),
      },
      { Action: 'rds:DeleteDBInstance', Condition: SCRATCH, Effect: 'Allow', Resource: rds(':db:pgsteward-drill-*') },
      { Action: DESCRIBE, Effect: 'Allow', Resource: '*' },
      { Action: 's3:ListBucket', Condition: { StringLike: { 's3:prefix': ['pgsteward/*'] } }, Effect: 'Allow', Resource: bucketArn },
      { Action: 's3:GetObject', Effect: 'Allow', Resource: objects('pgsteward/*') },
      { Action: 's3:PutObject', Effect: 'Allow', Resource: [objects('pgsteward/*.verified.json'), objects('verify-reports/*')] },
    ]);
  });

  test('no snapshot delete, no Modify, no S3 delete, no action wildcards; the only `*` is read-only describes', () => {
    for (const a of statements.flatMap(actionsOf)) {
      assert.ok(!/^rds:(Modify|DeleteDBSnapshot|DeleteDBClusterSnapshot|Stop|Reboot|Failover|Promote|RemoveTags)/.test(a), a);
      assert.ok(!/^s3:Delete/.test(a), a);
      assert.ok(!a.includes('*'), `${a} is a wildcard`);
    }
    assert.deepEqual(statements.filter((s) => ([] as unknown[]).concat(s.Resource).includes('*')).map(actionsOf), [DESCRIBE]);
  });

  test('every delete carries the scratch tag condition; every restore from a snapshot carries the managed tag', () => {
    const deletes = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('rds:Delete')));
    assert.ok(deletes.length > 0);
    for (const d of deletes) assert.deepEqual(d.Condition, SCRATCH);
    const fromSnapshots = statements.filter((s) => actionsOf(s).some((a) => /^rds:Restore/.test(a)) && JSON.stringify(s.Resource).includes('snapshot:'));
    assert.equal(fromSnapshots.length, 1);
    assert.deepEqual(fromSnapshots[0].Condition, MANAGED);
  });
});

describe('function role (Aurora, a logical drill on a verification server, keys)', () => {
  const s = synth({ ...EXISTING_VPC_CONTEXT, ...FULL_RESTORE_CONTEXT, ...FULL_VERIFY_CONTEXT, snapshotSource: 'cluster', backupKmsKeyArn: BACKUP_KEY });
  const statements = roleStatements(s.template, s.stack, s.stack.backupVerify.function.role!);
  const allowing = (action: string) => statements.filter((st) => actionsOf(st).includes(action));

  test('cluster restore from this cluster\'s managed snapshots into scratch clusters, and its writer', () => {
    assert.deepEqual(allowing('rds:RestoreDBClusterFromSnapshot'), [
      { Action: 'rds:RestoreDBClusterFromSnapshot', Condition: MANAGED, Effect: 'Allow', Resource: rds(':cluster-snapshot:pgsteward-orders-prod-*') },
      { Action: 'rds:RestoreDBClusterFromSnapshot', Condition: AS_SCRATCH, Effect: 'Allow', Resource: [rds(':cluster:pgsteward-drill-*'), rds(':subgrp:orders-restore')] },
    ]);
    assert.deepEqual(allowing('rds:RestoreDBInstanceFromDBSnapshot'), []);
    const [create] = allowing('rds:CreateDBInstance');
    assert.deepEqual(create.Condition, AS_SCRATCH);
    assert.deepEqual(set(create.Resource), set([rds(':cluster:pgsteward-drill-*'), rds(':db:pgsteward-drill-*'), rds(':subgrp:orders-restore')]));
  });

  test('deletes: the scratch cluster and its instance, each only when tagged scratch', () => {
    assert.deepEqual(allowing('rds:DeleteDBCluster'), [{ Action: 'rds:DeleteDBCluster', Condition: SCRATCH, Effect: 'Allow', Resource: rds(':cluster:pgsteward-drill-*') }]);
    assert.deepEqual(allowing('rds:DeleteDBInstance'), [{ Action: 'rds:DeleteDBInstance', Condition: SCRATCH, Effect: 'Allow', Resource: rds(':db:pgsteward-drill-*') }]);
  });

  test('both secrets read; the database key for RDS grants; the backup key through S3 only', () => {
    const reads = statements.filter((st) => actionsOf(st).includes('secretsmanager:GetSecretValue'));
    assert.deepEqual(set(reads.flatMap((st) => st.Resource)), set([DEFAULTS.dbSecretArn, VERIFY_SECRET]));
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

describe('the state machine role', () => {
  test('invokes the backup-verify function only', () => {
    const statements = roleStatements(template, stack, bv.drill.stateMachine.role);
    const invoke = statements.filter((st) => actionsOf(st).includes('lambda:InvokeFunction'));
    assert.deepEqual(invoke, [{
      Action: 'lambda:InvokeFunction', Effect: 'Allow',
      Resource: [{ 'Fn::GetAtt': [fnId, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [fnId, 'Arn'] }, ':*']] }],
    }]);
  });
});

describe('every `*` statement of the drill', () => {
  test('the function\'s read-only describes and the state machine\'s log delivery, nothing else', () => {
    const wildcard = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([logicalId]) => logicalId.startsWith('BackupVerify'))
      .flatMap(([, p]) => (p.Properties.PolicyDocument.Statement as Statement[])
        .filter((st) => ([] as unknown[]).concat(st.Resource).includes('*'))
        .map((st) => ({ roles: p.Properties.Roles, actions: actionsOf(st) })));
    assert.equal(wildcard.length, 2);
    const fnRole = { Ref: id(stack, bv.function.role as iam.Role) };
    const smRole = { Ref: id(stack, bv.drill.stateMachine.role as iam.Role) };
    assert.deepEqual(wildcard.find((w) => JSON.stringify(w.roles) === JSON.stringify([fnRole]))!.actions, DESCRIBE);
    const logs = wildcard.find((w) => JSON.stringify(w.roles) === JSON.stringify([smRole]))!;
    for (const action of logs.actions) assert.match(action, /^logs:(\w+LogDelivery|ListLogDeliveries|Describe\w+|PutResourcePolicy)$/);
  });
});

describe('drill context', () => {
  test('defaults: a weekly snapshot drill, nothing else configured', () => {
    const c = configFromContext(newApp().node);
    assert.deepEqual(
      [c.verifySecretArn, c.scratchInstanceClass, c.rtoTargetMinutes, c.rpoTargetMinutes, c.smokeQueries, c.drillSchedule, c.drillKind],
      [undefined, undefined, undefined, undefined, undefined, 'cron(45 2 ? * SUN *)', 'snapshot'],
    );
  });

  test('smoke queries from a cdk.json array as well as a -c string; rate schedules', () => {
    const c = configFromContext(newApp({ smokeQueries: SMOKE_QUERIES, drillSchedule: 'rate(7 days)' }).node);
    assert.deepEqual(c.smokeQueries, SMOKE_QUERIES);
    assert.equal(c.drillSchedule, 'rate(7 days)');
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a verification secret without its suffix', { verifySecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:verify' }, /verifySecretArn .* 6-character suffix/],
    ['the production secret as the verification server', { verifySecretArn: DEFAULTS.dbSecretArn }, /verifySecretArn is dbSecretArn/],
    ['a logical drill without a verification server', { drillKind: 'logical' }, /drillKind logical needs verifySecretArn/],
    ['an unknown drill kind', { drillKind: 'pitr' }, /drillKind "pitr" must be snapshot .* or logical/],
    ['a scratch class without db.', { scratchInstanceClass: 't4g.micro' }, /scratchInstanceClass "t4g.micro" must be an RDS instance class/],
    ['an RTO target of 0', { rtoTargetMinutes: '0' }, /rtoTargetMinutes "0" must be a whole number of minutes from 1/],
    ['an RPO target in hours', { rpoTargetMinutes: '1h' }, /rpoTargetMinutes "1h"/],
    ['smoke queries that are not JSON', { smokeQueries: 'SELECT 1' }, /smokeQueries is not JSON/],
    ['an empty smoke query list', { smokeQueries: '[]' }, /non-empty JSON array/],
    ['a smoke query with a second statement', { smokeQueries: '["SELECT 1; DROP TABLE orders"]' }, /smokeQueries\[0\] .* without ';'/],
    ['smoke queries too long for the environment', { smokeQueries: JSON.stringify(Array(40).fill('SELECT count(*) FROM public.order_line_items_archive')) }, /at most 2000 fit/],
    ['a schedule that is not an expression', { drillSchedule: 'weekly' }, /drillSchedule "weekly" must be an EventBridge Scheduler expression/],
    ['a cron with five fields', { drillSchedule: 'cron(45 2 * * SUN)' }, /drillSchedule .* must be an EventBridge Scheduler expression/],
    ['a schedule whose interval cannot be told', { drillSchedule: 'cron(0 3 ? * MON-FRI *)' }, /cannot tell how often it runs/],
  ];
  for (const [what, context, message] of bad) {
    test(`rejects ${what}`, () => {
      assert.throws(() => configFromContext(newApp(context).node), message);
    });
  }
});
