import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { configFromContext, DEFAULTS } from '../lib/config';
import { DOCKERFILE } from '../lib/snapshot-image';
import { COPY_FINISHED_EVENT_IDS, managedSnapshotPrefix, SNAPSHOT_CREATED_EVENT_IDS } from '../lib/snapshot-events';
import { newApp, synth } from './helpers';
import { BACKUP_KEY, COPY_CONTEXT, COPY_DESTINATIONS, WEST_KEY } from './snapshot-fixtures';

const { template, stack } = synth();
const sn = stack.snapshot;
const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
const resources = template.toJSON().Resources as Record<string, any>;
const fnId = id(sn.function);
const imageFnId = id(sn.logicalBackupFunction);
const bucketId = id(sn.backups.bucket);

const COMMON_ENV = {
  PGSTEWARD_DB_IDENTIFIER: DEFAULTS.dbIdentifier,
  PGSTEWARD_DB_SECRET_ARN: DEFAULTS.dbSecretArn,
  PGSTEWARD_CA_BUNDLE: '/var/task/rds-ca-bundle.pem',
  PGSTEWARD_EVENT_BUS: 'default',
  PGSTEWARD_SNAPSHOT_SOURCE: 'instance',
  PGSTEWARD_BACKUP_BUCKET: { Ref: bucketId },
  PGSTEWARD_BACKUP_PREFIX: 'pgsteward',
  PGSTEWARD_COPY_DESTINATIONS: '[]',
};

describe('snapshot function (zip)', () => {
  test('provided.al2023, 128 MB, 5 minutes, JSON logs, in the VPC with the shared security group', () => {
    const fn = resources[fnId].Properties;
    assert.equal(fn.Runtime, 'provided.al2023');
    assert.equal(fn.Handler, 'bootstrap');
    assert.equal(fn.MemorySize, 128);
    assert.equal(fn.Timeout, 300);
    assert.equal(fn.LoggingConfig.LogFormat, 'JSON');
    assert.ok(fn.Code.S3Key, 'a zip asset');
    assert.deepEqual(fn.VpcConfig.SecurityGroupIds, [{ 'Fn::GetAtt': [id(stack.network.functionSecurityGroup), 'GroupId'] }]);
  });

  test('environment is exactly the contract (no key ARN without a key)', () => {
    assert.deepEqual(resources[fnId].Properties.Environment.Variables, COMMON_ENV);
  });
});

describe('logical-backup function (container image)', () => {
  test('an image function: 1024 MB, 15 minutes, default ephemeral storage, JSON logs, in the VPC', () => {
    const fn = resources[imageFnId].Properties;
    assert.equal(fn.PackageType, 'Image');
    assert.equal(fn.Runtime, undefined);
    assert.equal(fn.Handler, undefined);
    assert.match(JSON.stringify(fn.Code.ImageUri), /container-assets/);
    assert.equal(fn.MemorySize, 1024);
    assert.equal(fn.Timeout, 900);
    assert.equal(fn.EphemeralStorage, undefined);
    assert.deepEqual(fn.Architectures, ['x86_64']);
    assert.equal(fn.LoggingConfig.LogFormat, 'JSON');
    assert.deepEqual(fn.VpcConfig.SecurityGroupIds, [{ 'Fn::GetAtt': [id(stack.network.functionSecurityGroup), 'GroupId'] }]);
  });

  test('environment: the common contract plus pg_dump', () => {
    assert.deepEqual(resources[imageFnId].Properties.Environment.Variables, { ...COMMON_ENV, PGSTEWARD_PG_DUMP: '/usr/bin/pg_dump' });
  });

  test('an asynchronous (scheduled) failure is retried once, not twice', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: imageFnId }, MaximumRetryAttempts: 1,
    });
  });

  test('one Docker image asset for the function and the Fargate task, built from a staged context', () => {
    const { app } = synth({ architecture: 'arm64', pgMajorVersion: '16' });
    const assembly = app.synth();
    const manifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, 'Test.assets.json'), 'utf8'));
    const images = Object.values(manifest.dockerImages) as any[];
    assert.equal(images.length, 1);
    assert.equal(images[0].source.platform, 'linux/arm64');
    assert.deepEqual(images[0].source.dockerBuildArgs, { PG_MAJOR: '16' });
    const staged = path.join(assembly.directory, images[0].source.directory);
    assert.deepEqual(fs.readdirSync(staged).sort(), ['Dockerfile', 'bootstrap'], 'no CA bundle before a build');
    assert.equal(fs.readFileSync(path.join(staged, 'Dockerfile'), 'utf8'), fs.readFileSync(DOCKERFILE, 'utf8'));
    assert.ok(fs.statSync(path.join(staged, 'bootstrap')).mode & 0o111, 'bootstrap stays executable');
  });

  test('the Dockerfile: Lambda provided.al2023 base, pg_dump from postgresqlNN, bundle in /var/task, the binary as entrypoint', () => {
    const dockerfile = fs.readFileSync(DOCKERFILE, 'utf8');
    assert.match(dockerfile, /^FROM public\.ecr\.aws\/lambda\/provided:al2023$/m);
    assert.match(dockerfile, /^ARG PG_MAJOR=15$/m);
    assert.match(dockerfile, /dnf install -y "postgresql\$\{PG_MAJOR\}"/);
    assert.match(dockerfile, /^COPY bootstrap rds-ca-bundle\.pe\[m\] \/var\/task\/$/m);
    assert.match(dockerfile, /^ENTRYPOINT \["\/var\/task\/bootstrap"\]$/m);
  });
});

describe('schedules', () => {
  const byTarget = (targetId: string) => Object.values(template.findResources('AWS::Scheduler::Schedule', {
    Properties: { Target: { Arn: { 'Fn::GetAtt': [targetId, 'Arn'] } } },
  }));

  for (const [what, targetId, cron, action, maxAge] of [
    ['snapshot at 02:00 UTC', fnId, 'cron(0 2 * * ? *)', 'snapshot', 3600],
    ['logical backup at 02:30 UTC', imageFnId, 'cron(30 2 * * ? *)', 'logical-backup', 1800],
  ] as const) {
    test(`daily ${what}, with the scheduled time substituted by Scheduler`, () => {
      const found = byTarget(targetId);
      assert.equal(found.length, 1);
      const p = found[0].Properties;
      assert.equal(p.ScheduleExpression, cron);
      assert.equal(p.ScheduleExpressionTimezone, 'Etc/UTC');
      assert.deepEqual(p.FlexibleTimeWindow, { Mode: 'OFF' });
      assert.equal(p.Target.Input, `{"action":"${action}","scheduledTime":"<aws.scheduler.scheduled-time>"}`);
      assert.deepEqual(p.Target.RetryPolicy, { MaximumEventAgeInSeconds: maxAge, MaximumRetryAttempts: 3 });
    });
  }

  test('their role may invoke these two functions only', () => {
    const roleIds = new Set([fnId, imageFnId].flatMap(byTarget).map((s) => s.Properties.Target.RoleArn['Fn::GetAtt'][0]));
    assert.equal(roleIds.size, 1);
    const [roleId] = roleIds;
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
      .flatMap((p) => p.Properties.PolicyDocument.Statement);
    assert.equal(statements.length, 1);
    assert.equal(statements[0].Action, 'lambda:InvokeFunction');
    const arns = (x: string) => [{ 'Fn::GetAtt': [x, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [x, 'Arn'] }, ':*']] }];
    assert.deepEqual(new Set(statements[0].Resource.map((r: unknown) => JSON.stringify(r))),
      new Set([...arns(fnId), ...arns(imageFnId)].map((r) => JSON.stringify(r))));
  });
});

describe('RDS snapshot events -> copies', () => {
  test('no rule without copy destinations', () => {
    assert.equal(sn.copyRule, undefined);
    assert.deepEqual(template.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['aws.rds'] } } }), {});
  });

  test('with destinations: this database\'s managed snapshot created, or its copy finished (any Region) -> the snapshot function, raw event', () => {
    const s = synth(COPY_CONTEXT);
    const ruleId = s.stack.getLogicalId(s.stack.snapshot.copyRule!.node.defaultChild as never);
    const rule = s.template.toJSON().Resources[ruleId].Properties;
    assert.deepEqual(rule.EventPattern, {
      source: ['aws.rds'],
      'detail-type': ['RDS DB Snapshot Event', 'RDS DB Cluster Snapshot Event'],
      // 0042/0075 created here; 0060 (DB) and 0075 (Aurora) finished copies, forwarded from their Regions.
      detail: { EventID: ['RDS-EVENT-0042', 'RDS-EVENT-0075', 'RDS-EVENT-0060'], SourceIdentifier: [{ prefix: 'pgsteward-orders-prod-' }] },
    });
    assert.deepEqual(SNAPSHOT_CREATED_EVENT_IDS, ['RDS-EVENT-0042', 'RDS-EVENT-0075']);
    assert.deepEqual(COPY_FINISHED_EVENT_IDS, ['RDS-EVENT-0060', 'RDS-EVENT-0075']);
    assert.equal(rule.EventPattern.region, undefined, 'forwarded events keep their own Region');
    assert.equal(rule.EventBusName, undefined, 'RDS events (and the forwarded ones) arrive on the default bus');
    const snapshotFn = { 'Fn::GetAtt': [s.stack.getLogicalId(s.stack.snapshot.function.node.defaultChild as never), 'Arn'] };
    assert.deepEqual(rule.Targets, [{ Arn: snapshotFn, Id: 'Target0', RetryPolicy: { MaximumEventAgeInSeconds: 21600, MaximumRetryAttempts: 2 } }]);
    assert.equal(rule.Targets[0].Input ?? rule.Targets[0].InputTransformer, undefined);
    s.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction', FunctionName: snapshotFn, Principal: 'events.amazonaws.com', SourceArn: { 'Fn::GetAtt': [ruleId, 'Arn'] },
    });
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ PGSTEWARD_COPY_DESTINATIONS: JSON.stringify(COPY_DESTINATIONS) }) },
    });
  });
});

describe('managed snapshot names in event patterns', () => {
  test('the prefix is made like the function makes names: lowercase, runs of other characters as one hyphen', () => {
    assert.equal(managedSnapshotPrefix('orders-prod'), 'pgsteward-orders-prod-');
    assert.equal(managedSnapshotPrefix('Orders--Prod'), 'pgsteward-orders-prod-');
    assert.equal(managedSnapshotPrefix('db1-'), 'pgsteward-db1-');
    // request.rs names_tiers_and_slots: snapshot_name("Orders_Prod..eu", ...) = pgsteward-orders-prod-eu-20261122-0200.
    assert.equal(managedSnapshotPrefix('Orders_Prod..eu'), 'pgsteward-orders-prod-eu-');
  });
});

describe('backup bucket', () => {
  const bucket = resources[bucketId];

  test('S3-managed encryption, TLS only, no public access, versioned, kept with the stack', () => {
    assert.deepEqual(bucket.Properties.BucketEncryption, { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] });
    assert.deepEqual(bucket.Properties.PublicAccessBlockConfiguration,
      { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    assert.deepEqual(bucket.Properties.VersioningConfiguration, { Status: 'Enabled' });
    assert.equal(bucket.DeletionPolicy, 'Retain');
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({
        Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      })]) },
    });
  });

  test('lifecycle: abort incomplete multipart uploads after 1 day; old versions go after 30 days', () => {
    assert.deepEqual(bucket.Properties.LifecycleConfiguration.Rules, [{
      Id: 'abort-incomplete-uploads-and-expire-old-versions',
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      NoncurrentVersionExpiration: { NoncurrentDays: 30 },
      Status: 'Enabled',
    }]);
  });

  test('server access logs go to a separate, private, SSE-S3 log bucket', () => {
    const logsId = id(sn.backups.accessLogs);
    assert.notEqual(logsId, bucketId);
    assert.deepEqual(bucket.Properties.LoggingConfiguration, { DestinationBucketName: { Ref: logsId }, LogFilePrefix: 'backups/' });
    const logs = resources[logsId].Properties;
    assert.equal(logs.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'AES256');
    assert.equal(logs.PublicAccessBlockConfiguration.BlockPublicPolicy, true);
  });

  test('a KMS key from context: SSE-KMS with a bucket key, and the key ARN in the environment', () => {
    const { template: t } = synth({ backupKmsKeyArn: BACKUP_KEY });
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{
        BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: BACKUP_KEY },
      }] },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      PackageType: 'Image', Environment: { Variables: Match.objectLike({ PGSTEWARD_BACKUP_KMS_KEY_ARN: BACKUP_KEY }) },
    });
  });
});

describe('snapshot context', () => {
  test('defaults: instance, no key, no copies, pg_dump 15', () => {
    const c = configFromContext(newApp().node);
    assert.deepEqual([c.snapshotSource, c.backupKmsKeyArn, c.copyDestinations, c.pgMajorVersion], ['instance', undefined, [], 15]);
  });

  test('cluster source reaches the environment; copy destinations accept a JSON string or an array', () => {
    synth({ snapshotSource: 'cluster' }).template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ PGSTEWARD_SNAPSHOT_SOURCE: 'cluster' }) },
    });
    assert.deepEqual(configFromContext(newApp({ copyDestinations: COPY_DESTINATIONS }).node).copyDestinations, COPY_DESTINATIONS);
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an unknown snapshot source', { snapshotSource: 'aurora' }, /snapshotSource "aurora" must be instance or cluster/],
    ['a key alias as backup key', { backupKmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:alias/backups' }, /backupKmsKeyArn .* not an alias/],
    ['copy destinations that are not JSON', { copyDestinations: 'us-west-2' }, /copyDestinations is not JSON/],
    ['a copy destination object instead of a list', { copyDestinations: '{"region":"us-west-2"}' }, /must be a JSON array/],
    ['a misspelt field', { copyDestinations: '[{"region":"us-west-2","kmsKeyID":"x"}]' }, /unknown field "kmsKeyID"/],
    ['a bad Region', { copyDestinations: '[{"region":"US West"}]' }, /\[0\]\.region "US West" must be a Region/],
    ['a Region twice', { copyDestinations: '[{"region":"us-west-2"},{"region":"us-west-2"}]' }, /listed twice/],
    ['a key in another Region', { copyDestinations: JSON.stringify([{ region: 'eu-west-1', kmsKeyId: WEST_KEY }]) }, /must be a key in eu-west-1/],
    ['an account as a number', { copyDestinations: '[{"region":"us-west-2","shareWithAccount":210987654321}]' }, /12-digit account id in quotes/],
    ['pg_dump 14', { pgMajorVersion: 14 }, /pgMajorVersion "14" must be a PostgreSQL major version from 15/],
  ];
  for (const [what, context, message] of bad) {
    test(`rejects ${what}`, () => {
      assert.throws(() => configFromContext(newApp(context).node), message);
    });
  }
});
