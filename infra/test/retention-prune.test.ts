import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { configFromContext, DEFAULTS } from '../lib/config';
import type { PgstewardStack } from '../lib/pgsteward-stack';
import { RETENTION_POLICY_DEFAULTS } from '../lib/retention-config';
import { newApp, synth } from './helpers';
import { ARCHIVE_RULES, FULL_RETENTION_CONTEXT } from './retention-fixtures';
import { BACKUP_KEY, COPY_DESTINATIONS, FULL_SNAPSHOT_CONTEXT } from './snapshot-fixtures';

type Statement = Record<string, any>;
const arnOf = (...parts: unknown[]) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ...parts]] });
/** An RDS ARN as CDK renders it: a literal Region is folded into the neighbouring strings. */
const rds = (region: string | null, rest: string) => (region !== null
  ? arnOf(`:rds:${region}:`, { Ref: 'AWS::AccountId' }, rest)
  : arnOf(':rds:', HERE, ':', { Ref: 'AWS::AccountId' }, rest));
const HERE = { Ref: 'AWS::Region' };
const MANAGED = { StringEquals: { 'aws:ResourceTag/pgsteward:managed': 'true' } };
const SCRATCH = { StringEquals: { 'aws:ResourceTag/pgsteward:scratch': 'true' } };
const DESCRIBE = ['rds:DescribeDBClusterSnapshots', 'rds:DescribeDBClusters', 'rds:DescribeDBInstances', 'rds:DescribeDBSnapshots'];

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

/** Every Allow statement of the template: identity policies (attached or inline) and bucket policies. */
function allowStatements(template: Template): Statement[] {
  const docs = [
    ...Object.values(template.findResources('AWS::IAM::Policy')).map((p) => p.Properties.PolicyDocument),
    ...Object.values(template.findResources('AWS::IAM::ManagedPolicy')).map((p) => p.Properties.PolicyDocument),
    ...Object.values(template.findResources('AWS::IAM::Role')).flatMap((r) => (r.Properties.Policies ?? []).map((p: Statement) => p.PolicyDocument)),
    ...Object.values(template.findResources('AWS::S3::BucketPolicy')).map((p) => p.Properties.PolicyDocument),
  ];
  return docs.flatMap((d) => d.Statement as Statement[]).filter((s) => s.Effect === 'Allow');
}

/** Whether an IAM action pattern (with * wildcards, case-insensitive) covers `action`. */
const covers = (pattern: string, action: string) =>
  new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i').test(action);

const { template, stack } = synth();
const rp = stack.retentionPrune;
const resources = template.toJSON().Resources as Record<string, any>;
const fnId = id(stack, rp.function);
const fnArn = { 'Fn::GetAtt': [fnId, 'Arn'] };
const bucketId = id(stack, stack.snapshot.backups.bucket);
const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
const objects = (prefix: string) => ({ 'Fn::Join': ['', [bucketArn, `/${prefix}/*`]] });

const COMMON_ENV = {
  PGSTEWARD_DB_IDENTIFIER: DEFAULTS.dbIdentifier,
  PGSTEWARD_DB_SECRET_ARN: DEFAULTS.dbSecretArn,
  PGSTEWARD_CA_BUNDLE: '/var/task/rds-ca-bundle.pem',
  PGSTEWARD_EVENT_BUS: 'default',
  PGSTEWARD_SNAPSHOT_SOURCE: 'instance',
  PGSTEWARD_BACKUP_BUCKET: { Ref: bucketId },
  PGSTEWARD_BACKUP_PREFIX: 'pgsteward',
  PGSTEWARD_ARCHIVE_PREFIX: 'archive',
};

describe('retention-prune function', () => {
  test('provided.al2023 zip, 256 MB, 15 minutes, JSON logs, in the VPC with the shared security group', () => {
    const fn = resources[fnId].Properties;
    assert.equal(fn.Runtime, 'provided.al2023');
    assert.equal(fn.Handler, 'bootstrap');
    assert.ok(fn.Code.S3Key, 'a zip asset');
    assert.equal(fn.MemorySize, 256);
    assert.equal(fn.Timeout, 900);
    assert.deepEqual(fn.Architectures, ['x86_64']);
    assert.equal(fn.LoggingConfig.LogFormat, 'JSON');
    assert.deepEqual(fn.VpcConfig.SecurityGroupIds, [{ 'Fn::GetAtt': [id(stack, stack.network.functionSecurityGroup), 'GroupId'] }]);
  });

  test('environment with no options: the common contract, the snapshot task\'s bucket and prefix, the archive prefix', () => {
    assert.deepEqual(resources[fnId].Properties.Environment.Variables, COMMON_ENV);
  });

  test('environment with every option: key, copies (the snapshot function\'s JSON), policy, rules, scratch age', () => {
    const s = synth({ ...FULL_SNAPSHOT_CONTEXT, ...FULL_RETENTION_CONTEXT });
    const env = s.template.toJSON().Resources[id(s.stack, s.stack.retentionPrune.function)].Properties.Environment.Variables;
    const snapshotEnv = s.template.toJSON().Resources[id(s.stack, s.stack.snapshot.function)].Properties.Environment.Variables;
    assert.deepEqual(env, {
      ...COMMON_ENV,
      PGSTEWARD_BACKUP_BUCKET: { Ref: id(s.stack, s.stack.snapshot.backups.bucket) },
      PGSTEWARD_SNAPSHOT_SOURCE: 'cluster',
      PGSTEWARD_BACKUP_KMS_KEY_ARN: BACKUP_KEY,
      PGSTEWARD_COPY_DESTINATIONS: JSON.stringify(COPY_DESTINATIONS),
      // The fields the context left out are filled in, so the deployed value is the whole policy.
      PGSTEWARD_RETENTION_POLICY: '{"days":7,"weeks":4,"months":12,"years":0,"maxAgeDays":400,"minKeep":3}',
      PGSTEWARD_ARCHIVE_RULES: '[{"table":"public.audit_events","column":"timestamp","olderThanDays":90,"archive":true},' +
        '{"table":"public.workflows","column":"updated_at","olderThanDays":30,"where":"status IN (\'completed\',\'failed\')","archive":false}]',
      PGSTEWARD_SCRATCH_MAX_AGE_HOURS: '12',
    });
    assert.equal(env.PGSTEWARD_COPY_DESTINATIONS, snapshotEnv.PGSTEWARD_COPY_DESTINATIONS);
    assert.equal(env.PGSTEWARD_BACKUP_PREFIX, snapshotEnv.PGSTEWARD_BACKUP_PREFIX);
  });

  test('its name is an output that says how to ask for a dry run', () => {
    const output = Object.values(template.toJSON().Outputs as Record<string, any>).find((o) => o.Value?.Ref === fnId);
    assert.match(output.Description, /\{"dryRun":true\}/);
  });
});

describe('schedule', () => {
  const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule', { Properties: { Target: { Arn: fnArn } } }));

  test('daily at 04:00 UTC with the scheduled time substituted by Scheduler and dryRun false', () => {
    assert.equal(schedules.length, 1);
    const p = schedules[0].Properties;
    assert.equal(p.ScheduleExpression, 'cron(0 4 * * ? *)');
    assert.equal(p.ScheduleExpressionTimezone, 'Etc/UTC');
    assert.deepEqual(p.FlexibleTimeWindow, { Mode: 'OFF' });
    assert.equal(p.State, 'ENABLED');
    assert.equal(p.Target.Input, '{"scheduledTime":"<aws.scheduler.scheduled-time>","dryRun":false}');
    assert.deepEqual(p.Target.RetryPolicy, { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 3 });
  });

  test('after the backup window (02:00, 02:30) and the nightly vacuum sweep (03:00)', () => {
    const hour = (cron: string) => { const [min, h] = cron.slice(5).split(' ').map(Number); return h + min / 60; };
    const others = Object.values(template.findResources('AWS::Scheduler::Schedule'))
      .map((s) => s.Properties.ScheduleExpression as string)
      .filter((e) => /^cron\(\d+ \d+ \* \* \? \*\)$/.test(e) && e !== schedules[0].Properties.ScheduleExpression);
    assert.deepEqual(others.map(hour).sort(), [2, 2.5, 3]);
    for (const h of others.map(hour)) assert.ok(h < hour(schedules[0].Properties.ScheduleExpression));
  });

  test('its role may invoke this function only, and only this account\'s scheduler assumes it', () => {
    const roleId = schedules[0].Properties.Target.RoleArn['Fn::GetAtt'][0];
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
      .flatMap((p) => p.Properties.PolicyDocument.Statement);
    assert.deepEqual(statements, [{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: [fnArn, { 'Fn::Join': ['', [fnArn, ':*']] }] }]);
    assert.deepEqual(resources[roleId].Properties.AssumeRolePolicyDocument.Statement, [{
      Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'scheduler.amazonaws.com' },
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    }]);
  });
});

describe('function role (instance source, no copies, SSE-S3)', () => {
  const statements = roleStatements(template, stack, rp.function.role!);

  test('exactly: secret, bus, describes, tag-conditioned deletes, prefix-scoped S3', () => {
    assert.deepEqual(statements, [
      { Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], Effect: 'Allow', Resource: DEFAULTS.dbSecretArn },
      { Action: 'events:PutEvents', Effect: 'Allow', Resource: arnOf(':events:', HERE, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default') },
      { Action: DESCRIBE, Effect: 'Allow', Resource: '*' },
      { Action: 'rds:DeleteDBSnapshot', Condition: MANAGED, Effect: 'Allow', Resource: rds(null, ':snapshot:*') },
      { Action: 'rds:DeleteDBClusterSnapshot', Condition: MANAGED, Effect: 'Allow', Resource: rds(null, ':cluster-snapshot:*') },
      { Action: 'rds:DeleteDBInstance', Condition: SCRATCH, Effect: 'Allow', Resource: rds(null, ':db:*') },
      { Action: 'rds:DeleteDBCluster', Condition: SCRATCH, Effect: 'Allow', Resource: rds(null, ':cluster:*') },
      { Action: 's3:ListBucket', Condition: { StringLike: { 's3:prefix': ['pgsteward/*', 'archive/*'] } }, Effect: 'Allow', Resource: bucketArn },
      { Action: 's3:DeleteObject', Effect: 'Allow', Resource: objects('pgsteward') },
      { Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'], Effect: 'Allow', Resource: objects('archive') },
    ]);
  });

  test('the only `*` statement is the four describes', () => {
    const wildcard = statements.filter((s) => resourcesOf(s).includes('*'));
    assert.deepEqual(wildcard.map(actionsOf), [DESCRIBE]);
  });
});

describe('function role (Aurora, copies to two Regions, a backup key)', () => {
  const s = synth(FULL_SNAPSHOT_CONTEXT);
  const statements = roleStatements(s.template, s.stack, s.stack.retentionPrune.function.role!);
  const allowing = (action: string) => statements.filter((st) => actionsOf(st).includes(action));

  test('snapshot deletes here and in each copy Region, managed snapshots only', () => {
    for (const [action, kind] of [['rds:DeleteDBSnapshot', 'snapshot'], ['rds:DeleteDBClusterSnapshot', 'cluster-snapshot']]) {
      const found = allowing(action);
      assert.equal(found.length, 1, action);
      assert.deepEqual(set(found[0].Resource), set([rds(null, `:${kind}:*`), rds('us-west-2', `:${kind}:*`), rds('eu-west-1', `:${kind}:*`)]));
      assert.deepEqual(found[0].Condition, MANAGED);
    }
  });

  test('scratch deletes in this Region only', () => {
    assert.deepEqual(allowing('rds:DeleteDBInstance')[0].Resource, rds(null, ':db:*'));
    assert.deepEqual(allowing('rds:DeleteDBCluster')[0].Resource, rds(null, ':cluster:*'));
  });

  test('the backup key: a data key and Decrypt, through S3 only', () => {
    assert.deepEqual(statements.filter((st) => actionsOf(st).some((a) => a.startsWith('kms:'))), [{
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Effect: 'Allow', Resource: BACKUP_KEY,
      Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['s3.', HERE, '.amazonaws.com']] } } },
    }]);
  });
});

describe('nothing in the stack deletes more than retention may', () => {
  for (const [variant, context] of [['defaults', {}], ['every option', { ...FULL_SNAPSHOT_CONTEXT, ...FULL_RETENTION_CONTEXT }]] as const) {
    const s = synth(context);
    const allow = allowStatements(s.template);
    const rpRole = id(s.stack, s.stack.retentionPrune.function.role as iam.Role);
    const rpStatements = roleStatements(s.template, s.stack, s.stack.retentionPrune.function.role!);

    test(`${variant}: every statement that can delete an RDS snapshot, instance or cluster carries the tag condition`, () => {
      const guarded: Record<string, unknown> = {
        'rds:DeleteDBSnapshot': MANAGED, 'rds:DeleteDBClusterSnapshot': MANAGED,
        'rds:DeleteDBInstance': SCRATCH, 'rds:DeleteDBCluster': SCRATCH,
      };
      let seen = 0;
      for (const st of allow) {
        for (const [action, condition] of Object.entries(guarded)) {
          if (!actionsOf(st).some((a) => covers(a, action))) continue;
          seen += 1;
          assert.deepEqual(actionsOf(st), [action], `no other action shares the grant: ${JSON.stringify(st)}`);
          assert.deepEqual(st.Condition, condition, JSON.stringify(st));
        }
        // Any other RDS delete (automated backups, parameter groups, ...) is granted nowhere.
        for (const a of actionsOf(st)) {
          if (/^rds:Delete/i.test(a) || covers(a, 'rds:DeleteAnything')) assert.ok(a in guarded, `${a} granted: ${JSON.stringify(st)}`);
        }
      }
      // Retention: all four. The drill's teardown: its scratch instance (and cluster, for Aurora), under the same condition.
      const drillDeletes = variant === 'defaults' ? 1 : 2;
      assert.equal(seen, 4 + drillDeletes, 'each delete is granted once to retention-prune, and the scratch deletes to backup-verify');
      const owners = Object.values(s.template.findResources('AWS::IAM::Policy'))
        .filter((p) => (p.Properties.PolicyDocument.Statement as Statement[]).some((st) => actionsOf(st).some((a) => /^rds:Delete/i.test(a))))
        .map((p) => p.Properties.Roles);
      const bvRole = id(s.stack, s.stack.backupVerify.function.role as iam.Role);
      assert.deepEqual(owners, [[{ Ref: rpRole }], [{ Ref: bvRole }]]);
      // No snapshot delete outside retention-prune.
      const bvSnapshotDeletes = roleStatements(s.template, s.stack, s.stack.backupVerify.function.role!)
        .filter((st) => actionsOf(st).some((a) => /Snapshot$/.test(a) && /^rds:Delete/.test(a)));
      assert.deepEqual(bvSnapshotDeletes, []);
    });

    test(`${variant}: s3:DeleteObject only under the backup prefix, and no other S3 delete anywhere`, () => {
      const deletes = allow.filter((st) => actionsOf(st).some((a) => /^s3:Delete(Object|Bucket)/i.test(a) || covers(a, 's3:DeleteObject')));
      assert.equal(deletes.length, 1);
      assert.deepEqual(actionsOf(deletes[0]), ['s3:DeleteObject']);
      const bucket = { 'Fn::GetAtt': [id(s.stack, s.stack.snapshot.backups.bucket), 'Arn'] };
      assert.deepEqual(deletes[0].Resource, { 'Fn::Join': ['', [bucket, '/pgsteward/*']] });
    });

    test(`${variant}: retention-prune changes nothing on RDS but these deletes, and writes only archives`, () => {
      const rdsActions = new Set(rpStatements.flatMap(actionsOf).filter((a) => a.startsWith('rds:')));
      assert.deepEqual([...rdsActions].sort(), [...DESCRIBE, 'rds:DeleteDBCluster', 'rds:DeleteDBClusterSnapshot', 'rds:DeleteDBInstance', 'rds:DeleteDBSnapshot'].sort());
      const writes = rpStatements.filter((st) => actionsOf(st).includes('s3:PutObject'));
      assert.equal(writes.length, 1);
      assert.match(JSON.stringify(writes[0].Resource), /"\/archive\/\*"/);
      assert.ok(!rpStatements.some((st) => actionsOf(st).some((a) => a.includes('*'))), 'no action wildcards');
    });
  }
});

describe('retention context', () => {
  test('defaults: nothing configured, so the function\'s own defaults apply', () => {
    const c = configFromContext(newApp().node);
    assert.deepEqual([c.retentionPolicy, c.archiveRules, c.scratchMaxAgeHours], [undefined, undefined, undefined]);
  });

  test('a policy, rules and hours from cdk.json values (object, array, number) as well as -c strings', () => {
    const c = configFromContext(newApp({ retentionPolicy: { minKeep: 5 }, archiveRules: ARCHIVE_RULES, scratchMaxAgeHours: 6 }).node);
    assert.deepEqual(c.retentionPolicy, { ...RETENTION_POLICY_DEFAULTS, minKeep: 5 });
    assert.deepEqual(c.archiveRules, ARCHIVE_RULES);
    assert.equal(c.scratchMaxAgeHours, 6);
    const full = configFromContext(newApp({ retentionPolicy: '{"days":30,"weeks":0,"months":0,"years":0,"maxAgeDays":null,"minKeep":3}' }).node);
    assert.deepEqual(full.retentionPolicy, RETENTION_POLICY_DEFAULTS);
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a policy that is not JSON', { retentionPolicy: 'days=30' }, /retentionPolicy is not JSON/],
    ['a policy list', { retentionPolicy: '[30]' }, /retentionPolicy must be a JSON object/],
    ['a misspelt policy field', { retentionPolicy: '{"minkeep":3}' }, /unknown field "minkeep"/],
    ['negative days', { retentionPolicy: '{"days":-1}' }, /retentionPolicy\.days -1 must be a whole number, 0 or more/],
    ['fractional weeks', { retentionPolicy: '{"weeks":1.5}' }, /retentionPolicy\.weeks 1\.5/],
    ['maxAgeDays 0', { retentionPolicy: '{"maxAgeDays":0}' }, /maxAgeDays 0 must be a whole number of days from 1, or null/],
    ['minKeep 0 (every backup could go)', { retentionPolicy: '{"minKeep":0}' }, /minKeep 0 must be a whole number from 1/],
    ['a policy that keeps no period and has no cap', { retentionPolicy: '{"days":0}' }, /keeps no period .* and has no maxAgeDays/],
    ['rules that are not a list', { archiveRules: '{"table":"t"}' }, /archiveRules must be a JSON array/],
    ['a rule without archive', { archiveRules: '[{"table":"t","column":"c","olderThanDays":9}]' }, /archiveRules\[0\]\.archive must be true .* or false/],
    ['a quoted table name', { archiveRules: '[{"table":"\\"T\\"","column":"c","olderThanDays":9,"archive":true}]' }, /\[0\]\.table .* must be table or schema\.table/],
    ['a three-part table name', { archiveRules: '[{"table":"db.public.t","column":"c","olderThanDays":9,"archive":true}]' }, /must be table or schema\.table/],
    ['a column with a space', { archiveRules: '[{"table":"t","column":"created at","olderThanDays":9,"archive":true}]' }, /\.column "created at"/],
    ['olderThanDays 0', { archiveRules: '[{"table":"t","column":"c","olderThanDays":0,"archive":true}]' }, /olderThanDays 0 must be a whole number of days from 1/],
    ['a where with a second statement', { archiveRules: '[{"table":"t","column":"c","olderThanDays":9,"archive":true,"where":"true; DROP TABLE t"}]' }, /\.where .* without ';'/],
    ['a misspelt rule field', { archiveRules: '[{"table":"t","column":"c","olderThan":9,"archive":true}]' }, /unknown field "olderThan"/],
    ['scratch hours 0', { scratchMaxAgeHours: 0 }, /scratchMaxAgeHours "0" must be a whole number of hours from 1/],
    ['scratch hours in words', { scratchMaxAgeHours: '6h' }, /scratchMaxAgeHours "6h"/],
  ];
  for (const [what, context, message] of bad) {
    test(`rejects ${what}`, () => {
      assert.throws(() => configFromContext(newApp(context).node), message);
    });
  }
});
