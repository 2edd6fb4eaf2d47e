import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { CopyEventForwarderStack, homeRegionFrom } from '../lib/copy-forwarder';
import { build, newApp } from './helpers';
import { COPY_CONTEXT, COPY_DESTINATIONS } from './snapshot-fixtures';

const HOME_BUS = { 'Fn::Join': ['', ['arn:aws:events:us-east-1:', { Ref: 'AWS::AccountId' }, ':event-bus/default']] };

describe('copy-event forwarder stacks (a destination shares with an account)', () => {
  // COPY_DESTINATIONS: us-west-2 shares, eu-west-1 does not.
  const { stack, forwarders } = build(COPY_CONTEXT, { homeRegion: 'us-east-1' });

  test('one stack per sharing destination, in that Region, named after the pgsteward stack', () => {
    assert.deepEqual(forwarders.map((f) => [f.stackName, f.region]), [['Test-copy-events-us-west-2', 'us-west-2']]);
    // Pinned to the Region the forwarders send to; the account is left to the deploy, as before.
    assert.equal(stack.region, 'us-east-1');
  });

  const template = Template.fromStack(forwarders[0]);
  const resources = template.toJSON().Resources as Record<string, any>;
  const roleId = forwarders[0].getLogicalId(forwarders[0].role.node.defaultChild as never);

  test('a rule, a role and its policy; nothing else', () => {
    assert.deepEqual(Object.values(resources).map((r) => r.Type).sort(),
      ['AWS::Events::Rule', 'AWS::IAM::Policy', 'AWS::IAM::Role']);
  });

  test('the rule: this database\'s managed snapshots\' copy-finished events, on this Region\'s default bus', () => {
    const rule = Object.values(template.findResources('AWS::Events::Rule'))[0].Properties;
    assert.deepEqual(rule.EventPattern, {
      source: ['aws.rds'],
      'detail-type': ['RDS DB Snapshot Event', 'RDS DB Cluster Snapshot Event'],
      detail: { EventID: ['RDS-EVENT-0060', 'RDS-EVENT-0075'], SourceIdentifier: [{ prefix: 'pgsteward-orders-prod-' }] },
    });
    assert.equal(rule.EventBusName, undefined, 'RDS events arrive on the default bus');
    assert.equal(rule.State, 'ENABLED');
  });

  test('its target: the home Region\'s default bus (cross-Region), the raw event, through the role', () => {
    const rule = Object.values(template.findResources('AWS::Events::Rule'))[0].Properties;
    assert.deepEqual(rule.Targets, [{ Arn: HOME_BUS, Id: 'Target0', RoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] } }]);
  });

  test('the role: assumed by EventBridge for this account only, may put events on that one bus only', () => {
    const role = resources[roleId].Properties;
    assert.deepEqual(role.AssumeRolePolicyDocument.Statement, [{
      Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'events.amazonaws.com' },
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    }]);
    assert.equal(role.ManagedPolicyArns, undefined);
    const policies = Object.values(template.findResources('AWS::IAM::Policy'));
    assert.deepEqual(policies.map((p) => p.Properties.Roles), [[{ Ref: roleId }]]);
    assert.deepEqual(policies[0].Properties.PolicyDocument.Statement, [{ Action: 'events:PutEvents', Effect: 'Allow', Resource: HOME_BUS }]);
  });

  test('no forwarders without shareWithAccount', () => {
    const plain = build({ copyDestinations: '[{"region":"eu-west-1"}]' }, { homeRegion: 'us-east-1' });
    assert.deepEqual(plain.forwarders, []);
  });

  test('refuses a forwarder without a Region, or in the home Region', () => {
    assert.throws(() => new CopyEventForwarderStack(newApp(), 'F', { dbIdentifier: 'orders-prod', homeRegion: 'us-east-1' }),
      /needs env\.region \(the copy destination's Region\)/);
    assert.throws(() => new CopyEventForwarderStack(newApp(), 'F', {
      env: { region: 'us-east-1' }, dbIdentifier: 'orders-prod', homeRegion: 'us-east-1',
    }), /us-east-1 is the home Region/);
  });
});

describe('homeRegion (bin/app.ts)', () => {
  const shared = COPY_DESTINATIONS;
  const unshared = [{ region: 'eu-west-1' }];

  test('not needed, and not pinned, when no destination shares', () => {
    assert.equal(homeRegionFrom(undefined, undefined, unshared), undefined);
    assert.equal(homeRegionFrom('us-east-1', 'us-east-2', []), undefined);
  });

  test('context homeRegion first, then the cdk CLI\'s default Region', () => {
    assert.equal(homeRegionFrom('eu-central-1', 'us-east-1', shared), 'eu-central-1');
    assert.equal(homeRegionFrom(undefined, 'us-east-1', shared), 'us-east-1');
    assert.equal(homeRegionFrom('', 'us-east-1', shared), 'us-east-1');
  });

  test('neither: a message that says what to set', () => {
    assert.throws(() => homeRegionFrom(undefined, undefined, shared),
      /shares copies made in us-west-2: .* Set -c homeRegion=<Region, e\.g\. us-east-1>/);
  });

  test('refuses a malformed Region, and a home Region that is also a destination', () => {
    assert.throws(() => homeRegionFrom('US East', undefined, shared), /homeRegion "US East" must be a Region name/);
    assert.throws(() => homeRegionFrom(undefined, 'eu-west-1', shared), /copyDestinations lists eu-west-1, the Region pgsteward runs in/);
  });
});
