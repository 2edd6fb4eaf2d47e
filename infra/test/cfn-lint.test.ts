import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { cfnLint } from './cfn-lint';
import { EXISTING_VPC_CONTEXT, synth } from './helpers';
import { FULL_RESTORE_CONTEXT } from './restore-fixtures';
import { FULL_RETENTION_CONTEXT } from './retention-fixtures';
import { FULL_SNAPSHOT_CONTEXT } from './snapshot-fixtures';
import { FULL_VERIFY_CONTEXT } from './verify-fixtures';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsteward-cfn-lint-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('cfn-lint', () => {
  const variants: Array<[string, Record<string, unknown>]> = [
    ['demo VPC', {}],
    ['existing VPC', EXISTING_VPC_CONTEXT],
    ['demo VPC with every snapshot and retention option', { ...FULL_SNAPSHOT_CONTEXT, ...FULL_RETENTION_CONTEXT }],
    ['existing VPC with every restore option, Aurora', { ...EXISTING_VPC_CONTEXT, ...FULL_RESTORE_CONTEXT, snapshotSource: 'cluster' }],
    // A logical drill on a verification server, monthly, with every drill option and the database's key.
    ['existing VPC with every restore and drill option, Aurora',
      { ...EXISTING_VPC_CONTEXT, ...FULL_RESTORE_CONTEXT, ...FULL_VERIFY_CONTEXT, snapshotSource: 'cluster' }],
  ];
  for (const [name, context] of variants) {
    test(`${name} template has no errors, warnings or notes`, () => {
      const file = path.join(dir, `${name.replace(/\W+/g, '-')}.template.json`);
      fs.writeFileSync(file, JSON.stringify(synth(context).template.toJSON(), null, 1));
      cfnLint(file);
    });
  }

  test('pinned Region with every option, and its copy-event forwarder stack: no errors, warnings or notes', () => {
    const { template, forwarders } = synth(
      { ...FULL_SNAPSHOT_CONTEXT, ...FULL_RETENTION_CONTEXT, ...FULL_RESTORE_CONTEXT, ...FULL_VERIFY_CONTEXT }, { homeRegion: 'us-east-1' },
    );
    assert.equal(forwarders.length, 1);
    const files = [['pinned', template], ['forwarder', Template.fromStack(forwarders[0])]] as const;
    for (const [what, t] of files) {
      const file = path.join(dir, `${what}.template.json`);
      fs.writeFileSync(file, JSON.stringify(t.toJSON(), null, 1));
      cfnLint(file);
    }
  });
});
