import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { DEFAULTS } from '../lib/config';
import { alarmName } from '../lib/health-check-metrics';
import { WINDOW_SCHEDULES } from '../lib/vacuum-sweep';
import { statementsAllowing, synth } from './helpers';

const { template, stack } = synth();
const vs = stack.vacuumSweep;
const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
const fnId = id(vs.function);
const fnArn = { 'Fn::GetAtt': [fnId, 'Arn'] };
const fnRoleId = id(vs.function.role as iam.Role);
const smId = id(vs.maintenanceWindow.stateMachine);
const smRoleId = id(vs.maintenanceWindow.stateMachine.role as iam.Role);
const resources = template.toJSON().Resources as Record<string, any>;
const arnOf = (...parts: unknown[]) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ...parts]] });

describe('vacuum-sweep function', () => {
  test('provided.al2023, 256 MB, 15 minutes, JSON logs, in the VPC', () => {
    const fn = resources[fnId].Properties;
    assert.equal(fn.Runtime, 'provided.al2023');
    assert.equal(fn.Handler, 'bootstrap');
    assert.equal(fn.MemorySize, 256);
    assert.equal(fn.Timeout, 900);
    assert.deepEqual(fn.Architectures, ['x86_64']);
    assert.equal(fn.LoggingConfig.LogFormat, 'JSON');
    assert.deepEqual(fn.VpcConfig.SecurityGroupIds, [{ 'Fn::GetAtt': [id(stack.network.functionSecurityGroup), 'GroupId'] }]);
  });

  test('environment is exactly the contract the Rust binary reads', () => {
    assert.deepEqual(resources[fnId].Properties.Environment.Variables, {
      PGSTEWARD_DB_IDENTIFIER: DEFAULTS.dbIdentifier,
      PGSTEWARD_DB_SECRET_ARN: DEFAULTS.dbSecretArn,
      PGSTEWARD_CA_BUNDLE: '/var/task/rds-ca-bundle.pem',
      PGSTEWARD_EVENT_BUS: 'default',
      PGSTEWARD_MAINTENANCE_WINDOW: 'sun:03:00-sun:05:00',
      PGSTEWARD_VACUUM_JOBS: '2',
    });
  });

  test('maintenanceWindow and vacuumJobs come from context', () => {
    const t = synth({ maintenanceWindow: 'sat:22:00-sun:02:00', vacuumJobs: '4' }).template;
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ PGSTEWARD_MAINTENANCE_WINDOW: 'sat:22:00-sun:02:00', PGSTEWARD_VACUUM_JOBS: '4' }) },
    });
  });

  test('its role: the secret, the bus, DescribeDBInstances on this instance, and nothing else', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === fnRoleId));
    assert.equal(policies.length, 1);
    assert.deepEqual(policies[0].Properties.PolicyDocument.Statement, [
      { Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], Effect: 'Allow', Resource: DEFAULTS.dbSecretArn },
      { Action: 'events:PutEvents', Effect: 'Allow', Resource: arnOf(':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default') },
      { Action: 'rds:DescribeDBInstances', Effect: 'Allow', Resource: arnOf(':rds:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':db:orders-prod') },
    ]);
  });

  test('the only statement on every resource is Step Functions log delivery (no resource-level support)', () => {
    // The snapshot, retention, restore and drill tasks' own `*` statements are checked in snapshot-iam.test.ts,
    // retention-prune.test.ts, pitr-restore.test.ts and backup-verify.test.ts.
    const wildcard = Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([logicalId]) => !['Snapshot', 'RetentionPrune', 'PitrRestore', 'BackupVerify'].some((task) => logicalId.startsWith(task)))
      .map(([, p]) => p)
      .flatMap((p) => (p.Properties.PolicyDocument.Statement as Array<Record<string, any>>)
        .filter((s) => ([] as unknown[]).concat(s.Resource).includes('*'))
        .map((s) => ({ roles: p.Properties.Roles, actions: [].concat(s.Action) })));
    assert.equal(wildcard.length, 1);
    assert.deepEqual(wildcard[0].roles, [{ Ref: smRoleId }]);
    for (const action of wildcard[0].actions) assert.match(action, /^logs:(\w+LogDelivery|ListLogDeliveries|Describe\w+|PutResourcePolicy)$/);
  });
});

describe('MaintenanceWindow state machine', () => {
  test('may invoke the vacuum-sweep function only', () => {
    const statements = statementsAllowing(template, 'lambda:InvokeFunction', [smRoleId]);
    assert.equal(statements.length, 1);
    assert.deepEqual(statements[0].Resource, [fnArn, { 'Fn::Join': ['', [fnArn, ':*']] }]);
  });

  test('logs to its own vended-logs group, kept a month', () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/vendedlogs/states/Test-maintenance-window',
      RetentionInDays: 30,
    });
  });

  test('its ARN is an output, with the input to type', () => {
    template.hasOutput('*', { Value: { Ref: smId }, Description: Match.stringLikeRegexp('"mode":"standard","windowMinutes":60') });
  });
});

describe('schedules', () => {
  const schedules = template.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: { Ref: smId } } } });

  test('nightly standard sweep 03:00 UTC and monthly reindex on the first Sunday 04:00 UTC', () => {
    const found = Object.values(schedules).map((s) => [s.Properties.ScheduleExpression, s.Properties.Target.Input]).sort();
    assert.deepEqual(found, [
      ['cron(0 3 * * ? *)', '{"mode":"standard","windowMinutes":60}'],
      ['cron(0 4 ? * SUN#1 *)', '{"mode":"reindex","windowMinutes":120}'],
    ]);
    assert.equal(WINDOW_SCHEDULES.length, 2);
  });

  test('UTC, no flexible window, a late start is dropped after 15 minutes', () => {
    for (const s of Object.values(schedules)) {
      assert.equal(s.Properties.ScheduleExpressionTimezone, 'Etc/UTC');
      assert.deepEqual(s.Properties.FlexibleTimeWindow, { Mode: 'OFF' });
      assert.equal(s.Properties.State, 'ENABLED');
      assert.deepEqual(s.Properties.Target.RetryPolicy, { MaximumEventAgeInSeconds: 900, MaximumRetryAttempts: 3 });
    }
  });

  test('their role may only start this state machine, and only the scheduler of this account assumes it', () => {
    const roleRefs = new Set(Object.values(schedules).map((s) => s.Properties.Target.RoleArn['Fn::GetAtt'][0]));
    assert.equal(roleRefs.size, 1);
    const [roleId] = roleRefs;
    const policies = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId));
    assert.deepEqual(policies.flatMap((p) => p.Properties.PolicyDocument.Statement), [
      { Action: 'states:StartExecution', Effect: 'Allow', Resource: { Ref: smId } },
    ]);
    assert.deepEqual(resources[roleId].Properties.AssumeRolePolicyDocument.Statement, [{
      Action: 'sts:AssumeRole',
      Effect: 'Allow',
      Principal: { Service: 'scheduler.amazonaws.com' },
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    }]);
  });
});

describe('alarm rules', () => {
  const xidAlarmId = id(vs.xidAlarm);
  const deadTupleAlarmId = id(stack.healthCheck.alarms.DeadTupleRatioWorst.critical);

  test('RDS MaximumUsedTransactionIDs alarm: Maximum over 5 minutes > 1e9 on this instance', () => {
    const { AlarmDescription, ...props } = resources[xidAlarmId].Properties;
    assert.match(AlarmDescription, /wraparound.*freeze sweep/);
    assert.deepEqual(props, {
      AlarmName: 'pgsteward-orders-prod-MaximumUsedTransactionIDs',
      Namespace: 'AWS/RDS',
      MetricName: 'MaximumUsedTransactionIDs',
      Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'orders-prod' }],
      Statistic: 'Maximum',
      Period: 300,
      EvaluationPeriods: 1,
      DatapointsToAlarm: 1,
      Threshold: 1000000000,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  for (const [name, alarmId] of [['wraparound alarm (freeze)', xidAlarmId], ['DeadTupleRatioWorst critical (standard)', deadTupleAlarmId]]) {
    test(`${name} in ALARM invokes the function with the raw event`, () => {
      const rules = Object.entries(template.findResources('AWS::Events::Rule', {
        Properties: { EventPattern: { resources: [{ 'Fn::GetAtt': [alarmId, 'Arn'] }] } },
      }));
      assert.equal(rules.length, 1);
      const [ruleId, rule] = rules[0];
      assert.deepEqual(rule.Properties.EventPattern, {
        source: ['aws.cloudwatch'],
        'detail-type': ['CloudWatch Alarm State Change'],
        resources: [{ 'Fn::GetAtt': [alarmId, 'Arn'] }],
        detail: { state: { value: ['ALARM'] } },
      });
      assert.equal(rule.Properties.EventBusName, undefined, 'alarm state changes arrive on the default bus');
      assert.deepEqual(rule.Properties.Targets, [{
        Arn: fnArn, Id: 'Target0', RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 2 },
      }]);
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction', FunctionName: fnArn, Principal: 'events.amazonaws.com',
        SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
      });
    });
  }

  test('the dead-tuple rule follows the health check\'s critical alarm, not the warning', () => {
    assert.match(deadTupleAlarmId, /^HealthCheckDeadTupleRatioWorstcritical/);
    assert.equal(resources[deadTupleAlarmId].Properties.AlarmName, alarmName('orders-prod', 'DeadTupleRatioWorst', 'critical'));
  });

  test('three rules in all: the health check\'s remediation and these two', () => {
    template.resourceCountIs('AWS::Events::Rule', 3);
  });
});
