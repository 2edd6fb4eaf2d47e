import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { configFromContext } from '../lib/config';
import { CA_BUNDLE_FILE, codeDir, PLACEHOLDER_DIR } from '../lib/function';
import { EXISTING_VPC_CONTEXT, newApp, synth } from './helpers';

const fakeRoots: string[] = [];
after(() => fakeRoots.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Every Rust binary the stack deploys. */
const BINARIES = ['health-check', 'vacuum-sweep', 'snapshot', 'retention-prune', 'pitr-restore', 'backup-verify'];
/** The functions built from each binary: `snapshot` is a zip function and the logical-backup image. */
const FUNCTIONS_PER_BINARY: Record<string, number> = {
  'health-check': 1, 'vacuum-sweep': 1, snapshot: 2, 'retention-prune': 1, 'pitr-restore': 1, 'backup-verify': 1,
};
/** Those that connect to PostgreSQL and so need the CA bundle (the snapshot zip function calls RDS APIs only). */
const CA_BUNDLE_USERS: Record<string, number> = {
  'health-check': 1, 'vacuum-sweep': 1, snapshot: 1, 'retention-prune': 1, 'pitr-restore': 1, 'backup-verify': 1,
};

/** How many warnings name each binary's build output. */
function perBinary(found: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const binary of BINARIES) counts[binary] = found.filter((w) => w.includes(`/${binary}/`)).length;
  return counts;
}

/** A fake cargo-lambda output folder with the given files for every binary. */
function fakeBuild(files: string[]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsteward-fake-build-'));
  fakeRoots.push(root);
  for (const binary of BINARIES) {
    fs.mkdirSync(path.join(root, binary));
    for (const f of files) fs.writeFileSync(path.join(root, binary, f), f);
  }
  return root;
}

function warnings(lambdaBuildDir: string): string[] {
  const { stack } = synth({ lambdaBuildDir }, { keepPlaceholderWarning: true });
  return Annotations.fromStack(stack).findWarning('*', Match.anyValue())
    .map((w) => String(w.entry.data));
}

describe('code asset', () => {
  test('the committed placeholder is an executable bootstrap', () => {
    const stat = fs.statSync(path.join(PLACEHOLDER_DIR, 'bootstrap'));
    assert.ok(stat.mode & 0o111, 'placeholder bootstrap must be executable');
  });

  test('cargo-lambda output is used when it has a bootstrap', () => {
    const root = fakeBuild(['bootstrap', CA_BUNDLE_FILE]);
    for (const binary of BINARIES) {
      assert.deepEqual(codeDir(root, binary), { dir: path.join(root, binary), placeholder: false });
    }
    assert.deepEqual(warnings(root), []);
  });

  test('the placeholder is used, with a warning per function, before a build', () => {
    const root = fakeBuild([]);
    assert.deepEqual(codeDir(root, 'health-check'), { dir: PLACEHOLDER_DIR, placeholder: true });
    const found = warnings(root);
    assert.deepEqual(perBinary(found), FUNCTIONS_PER_BINARY);
    for (const w of found) assert.match(w, /\/bootstrap is missing.*placeholder bootstrap.*cargo lambda build/);
    assert.equal(found.filter((w) => /logical-backup image/.test(w)).length, 1);
  });

  test('a build without the RDS CA bundle warns for every function that connects to PostgreSQL', () => {
    const found = warnings(fakeBuild(['bootstrap']));
    assert.deepEqual(perBinary(found), CA_BUNDLE_USERS);
    for (const w of found) assert.match(w, /\/rds-ca-bundle\.pem is missing/);
  });
});

describe('context', () => {
  test('architecture arm64 builds an ARM function', () => {
    synth({ architecture: 'arm64' }).template.hasResourceProperties('AWS::Lambda::Function', {
      Architectures: ['arm64'],
    });
  });

  test('dbIdentifier and dbSecretArn reach the function and alarm names', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:210987654321:secret:rds!db-1234abcd-5678-ef90-Zy9Xw8';
    const { template } = synth({ dbIdentifier: 'billing-db', dbSecretArn: arn });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ PGSTEWARD_DB_IDENTIFIER: 'billing-db', PGSTEWARD_DB_SECRET_ARN: arn }) },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'pgsteward-billing-db-CacheHitRatio-critical' });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Resource: arn })]) },
    });
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a secret ARN without its suffix', { dbSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:pgsteward/x' }, /6-character suffix/],
    ['an identifier with an underscore', { dbIdentifier: 'orders_prod' }, /not an RDS identifier/],
    ['an unknown architecture', { architecture: 'aarch64' }, /x86_64 or arm64/],
    ['a vpcId without subnets', { vpcId: 'vpc-0a1b2c3d', availabilityZones: 'us-east-1a' }, /needs privateSubnetIds/],
    ['subnets without a vpcId', { privateSubnetIds: 'subnet-0a1b2c3d' }, /need vpcId/],
    ['3 subnets for 2 zones', { vpcId: 'vpc-0a1b2c3d', availabilityZones: 'a,b', privateSubnetIds: 'subnet-0000000a,subnet-0000000b,subnet-0000000c' }, /same number of subnets per zone/],
    ['a malformed security group id', { ...EXISTING_VPC_CONTEXT, dbSecurityGroupId: 'sg-0abc' }, /dbSecurityGroupId "sg-0abc" must look like/],
    ['a malformed subnet id', { ...EXISTING_VPC_CONTEXT, privateSubnetIds: 'subnet-0a,subnet-0b' }, /"subnet-0a" must look like/],
    ['an event bus ARN', { eventBusName: 'arn:aws:events:us-east-1:123456789012:event-bus/x' }, /not an ARN/],
    ['a maintenance window in local-time words', { maintenanceWindow: 'Sunday 03:00-05:00' }, /maintenanceWindow .* ddd:hh24:mi-ddd:hh24:mi/],
    ['a maintenance window hour 24', { maintenanceWindow: 'sun:24:00-mon:01:00' }, /maintenanceWindow/],
    ['vacuumJobs 0', { vacuumJobs: 0 }, /vacuumJobs "0" must be a whole number from 1 to 16/],
    ['vacuumJobs 2.5', { vacuumJobs: '2.5' }, /vacuumJobs "2.5" must be a whole number/],
    ['vacuumJobs 17', { vacuumJobs: 17 }, /from 1 to 16/],
  ];
  for (const [what, context, message] of bad) {
    test(`rejects ${what}`, () => {
      assert.throws(() => configFromContext(newApp(context).node), message);
    });
  }
});
