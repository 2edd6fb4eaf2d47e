import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { cfnLint } from './cfn-lint';
import { CDK_JSON_CONTEXT, EMPTY_BUILD_DIR, EXISTING_VPC_CONTEXT } from './helpers';
import { COPY_CONTEXT } from './snapshot-fixtures';

const INFRA = path.resolve(__dirname, '..');
const outdirs: string[] = [];
after(() => outdirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/**
 * Runs bin/app.ts the way the CDK CLI does (CDK_OUTDIR + CDK_CONTEXT_JSON), with
 * no AWS credentials or network, and returns the cloud assembly folder. This covers
 * what the unit tests skip: bin/app.ts, the cdk-nag plugin at synth, CDKMetadata.
 */
function runApp(context: Record<string, unknown>, env: Record<string, string> = {}): string {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsteward-app-'));
  outdirs.push(outdir);
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
    cwd: INFRA,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({ ...CDK_JSON_CONTEXT, lambdaBuildDir: EMPTY_BUILD_DIR, ...context }),
      ...env,
    },
  });
  assert.equal(run.status, 0, `bin/app.ts failed:\n${run.stdout}${run.stderr}`);
  return outdir;
}

for (const [name, context] of [['demo VPC', {}], ['existing VPC', EXISTING_VPC_CONTEXT]] as const) {
  test(`bin/app.ts synthesizes the ${name} stack offline, and it lints clean`, () => {
    const outdir = runApp({ ...context, dbIdentifier: 'orders-prod' });
    const file = path.join(outdir, 'pgsteward-orders-prod.template.json');
    assert.ok(fs.existsSync(file), `no ${file}`);
    const template = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.ok(Object.values(template.Resources).some((r) => (r as { Type: string }).Type === 'AWS::Lambda::Function'));
    cfnLint(file);
  });
}

test('bin/app.ts with a shared copy: a forwarder stack in the destination, both pinned to a Region, both lint clean', () => {
  // The cdk CLI always passes its default Region (AWS_REGION, the profile's, or us-east-1).
  const outdir = runApp({ ...COPY_CONTEXT, dbIdentifier: 'orders-prod' }, { CDK_DEFAULT_REGION: 'us-east-1' });
  const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8'));
  const stacks = Object.entries(manifest.artifacts as Record<string, { type: string; environment: string }>)
    .filter(([, a]) => a.type === 'aws:cloudformation:stack').map(([id, a]) => [id, a.environment]).sort();
  // The account stays the deploying one's: the forwarder's target bus is built from its own.
  assert.deepEqual(stacks, [
    ['pgsteward-orders-prod', 'aws://unknown-account/us-east-1'],
    ['pgsteward-orders-prod-copy-events-us-west-2', 'aws://unknown-account/us-west-2'],
  ]);
  for (const [id] of stacks) cfnLint(path.join(outdir, `${id}.template.json`));
});

test('bin/app.ts with a shared copy but no Region to forward to: says to set homeRegion', () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsteward-app-'));
  outdirs.push(outdir);
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
    cwd: INFRA,
    encoding: 'utf8',
    // No CDK_DEFAULT_REGION: bin/app.ts run without the cdk CLI.
    env: { PATH: process.env.PATH, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(COPY_CONTEXT) },
  });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /Set -c homeRegion=/);
});

test('bin/app.ts fails with a message that says what to fix', () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsteward-app-'));
  outdirs.push(outdir);
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
    cwd: INFRA,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({ dbSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x' }),
    },
  });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /dbSecretArn .* must end in the 6-character suffix/);
});
