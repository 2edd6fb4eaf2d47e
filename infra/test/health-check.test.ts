import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { DEFAULTS } from '../lib/config';
import { alarmName, HEALTH_CHECK_ALARMS, REMEDIATION_METRIC } from '../lib/health-check-metrics';
import { statementsAllowing as allowing, synth } from './helpers';

const { template, stack } = synth();
const fnId = stack.getLogicalId(stack.healthCheck.function.node.defaultChild as never);
const fnArn = { 'Fn::GetAtt': [fnId, 'Arn'] };
/** The health check's own roles: the function's and the schedule's. */
const roleIds = stack.healthCheck.node.findAll()
  .filter((c): c is iam.Role => c instanceof iam.Role)
  .map((r) => stack.getLogicalId(r.node.defaultChild as never));

/** The health check's IAM statements that allow `action`. */
function statementsAllowing(action: string): Array<Record<string, unknown>> {
  return allowing(template, action, roleIds);
}

describe('health-check function', () => {
  test('provided.al2023, bootstrap handler, 128 MB, 60 s, x86_64 by default, JSON logs', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      Handler: 'bootstrap',
      MemorySize: 128,
      Timeout: 60,
      Architectures: ['x86_64'],
      LoggingConfig: { LogFormat: 'JSON', LogGroup: Match.anyValue() },
    });
  });

  test('environment is exactly the contract the Rust binary reads', () => {
    const fn = template.toJSON().Resources[fnId];
    assert.deepEqual(fn.Properties.Environment.Variables, {
      PGSTEWARD_DB_IDENTIFIER: DEFAULTS.dbIdentifier,
      PGSTEWARD_DB_SECRET_ARN: DEFAULTS.dbSecretArn,
      PGSTEWARD_CA_BUNDLE: '/var/task/rds-ca-bundle.pem',
      PGSTEWARD_EVENT_BUS: 'default',
    });
  });

  test('logs are kept one month', () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  test('runs in the VPC with the functions security group', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: { SubnetIds: Match.anyValue(), SecurityGroupIds: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^NetworkFunctionSecurityGroup'), 'GroupId'] }] },
    });
  });

  test('reads exactly the configured secret', () => {
    const statements = statementsAllowing('secretsmanager:GetSecretValue');
    assert.equal(statements.length, 1);
    assert.equal(statements[0].Effect, 'Allow');
    assert.equal(statements[0].Resource, DEFAULTS.dbSecretArn);
  });

  test('puts events on the configured bus only', () => {
    const statements = statementsAllowing('events:PutEvents');
    assert.equal(statements.length, 1);
    assert.deepEqual(statements[0].Resource, {
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default']],
    });
  });

  test('a named event bus is the one granted', () => {
    const named = synth({ eventBusName: 'pgsteward-reports' });
    named.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ PGSTEWARD_EVENT_BUS: 'pgsteward-reports' }) },
    });
    named.template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({
        Action: 'events:PutEvents',
        Resource: { 'Fn::Join': ['', Match.arrayWith([':event-bus/pgsteward-reports'])] },
      })]) },
    });
  });

  test('its roles are found (the function\'s and the schedule\'s)', () => {
    assert.equal(roleIds.length, 2);
  });

  test('no IAM statement of the health check grants every resource', () => {
    for (const p of Object.values(template.findResources('AWS::IAM::Policy'))) {
      if (!(p.Properties.Roles as Array<{ Ref: string }>).some((r) => roleIds.includes(r.Ref))) continue;
      for (const s of p.Properties.PolicyDocument.Statement) {
        assert.notDeepEqual(([] as unknown[]).concat(s.Resource), ['*'], JSON.stringify(s));
      }
    }
  });
});

describe('schedule', () => {
  test('EventBridge Scheduler invokes the function every 5 minutes with {"action":"check"}', () => {
    assert.equal(Object.keys(template.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: fnArn } } })).length, 1);
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: fnArn, Input: '{"action":"check"}', RoleArn: Match.anyValue() },
    });
  });

  test('the scheduler role may invoke this function only', () => {
    const statements = statementsAllowing('lambda:InvokeFunction');
    assert.equal(statements.length, 1);
    assert.deepEqual(statements[0].Resource, [fnArn, { 'Fn::Join': ['', [fnArn, ':*']] }]);
  });
});

describe('alarms', () => {
  const alarms = template.findResources('AWS::CloudWatch::Alarm');

  test('two alarms per metric in the table, nothing else', () => {
    const ours = Object.values(alarms).filter((a) => a.Properties.Namespace === 'pgsteward' && a.Properties.Dimensions[0].Name === 'Database');
    assert.equal(ours.length, HEALTH_CHECK_ALARMS.length * 2);
    assert.equal(Object.keys(alarms).length, HEALTH_CHECK_ALARMS.length * 2 + 1 + 3,
      'plus the vacuum sweep\'s RDS wraparound alarm and the verification drill\'s three');
  });

  for (const spec of HEALTH_CHECK_ALARMS) {
    for (const level of ['warning', 'critical'] as const) {
      test(`${spec.metricName} ${level}`, () => {
        const less = spec.comparison === 'LessThanThreshold';
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          AlarmName: alarmName('orders-prod', spec.metricName, level),
          Namespace: 'pgsteward',
          MetricName: spec.metricName,
          Dimensions: [{ Name: 'Database', Value: 'orders-prod' }],
          Statistic: less ? 'Minimum' : 'Maximum',
          Period: 300,
          EvaluationPeriods: 1,
          DatapointsToAlarm: 1,
          Threshold: level === 'warning' ? spec.warning : spec.critical,
          ComparisonOperator: spec.comparison,
          TreatMissingData: 'notBreaching',
          Unit: Match.absent(),
        });
      });
    }
  }

  test('the table is the runbook contract the Rust code emits (names, units, thresholds)', () => {
    // Pinned on purpose: a metric renamed here or in functions/core must change both.
    assert.deepEqual(HEALTH_CHECK_ALARMS.map((a) => [a.metricName, a.unit, a.warning, a.critical, a.comparison]), [
      ['CacheHitRatio', 'Percent', 99, 95, 'LessThanThreshold'],
      ['DeadTupleRatioWorst', 'Percent', 10, 30, 'GreaterThanThreshold'],
      ['ActiveConnectionsPercent', 'Percent', 70, 90, 'GreaterThanThreshold'],
      ['ReplicationLagBytes', 'Bytes', 1048576, 10485760, 'GreaterThanThreshold'],
      ['LongestQuerySeconds', 'Seconds', 30, 120, 'GreaterThanThreshold'],
      ['LongestIdleInTransactionSeconds', 'Seconds', 60, 300, 'GreaterThanThreshold'],
      ['DatabaseGrowthPercentPerDay', 'Percent', 5, 10, 'GreaterThanThreshold'],
      ['OldestXidAge', 'Count', 1000000000, 1500000000, 'GreaterThanThreshold'],
    ]);
  });

  test('warning fires before critical for every metric', () => {
    for (const spec of HEALTH_CHECK_ALARMS) {
      const less = spec.comparison === 'LessThanThreshold';
      assert.ok(less ? spec.warning > spec.critical : spec.warning < spec.critical, spec.metricName);
    }
  });
});

describe('remediation rule', () => {
  const criticalId = stack.getLogicalId(
    stack.healthCheck.alarms[REMEDIATION_METRIC].critical.node.defaultChild as never);

  test('matches the idle-in-transaction critical alarm going into ALARM', () => {
    const rules = template.findResources('AWS::Events::Rule', { Properties: { Targets: [Match.objectLike({ Arn: fnArn })] } });
    assert.equal(Object.keys(rules).length, 1);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: Match.absent(), // alarm state changes arrive on the default bus
      EventPattern: {
        source: ['aws.cloudwatch'],
        'detail-type': ['CloudWatch Alarm State Change'],
        resources: [{ 'Fn::GetAtt': [criticalId, 'Arn'] }],
        detail: { state: { value: ['ALARM'] } },
      },
    });
    assert.match(criticalId, /LongestIdleInTransactionSecondscritical/);
  });

  test('targets the function with the raw event', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [Match.objectLike({
        Arn: fnArn,
        Input: Match.absent(),
        InputPath: Match.absent(),
        InputTransformer: Match.absent(),
      })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: fnArn,
      Principal: 'events.amazonaws.com',
      SourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^HealthCheckRemediationRule'), 'Arn'] },
    });
  });
});
