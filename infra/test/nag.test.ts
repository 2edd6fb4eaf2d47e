import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Stack, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { build, EXISTING_VPC_CONTEXT, synth, SynthOptions } from './helpers';
import { FULL_RESTORE_CONTEXT } from './restore-fixtures';
import { FULL_RETENTION_CONTEXT } from './retention-fixtures';
import { FULL_SNAPSHOT_CONTEXT } from './snapshot-fixtures';
import { FULL_VERIFY_CONTEXT } from './verify-fixtures';

const VARIANTS: Array<[string, Record<string, unknown>, SynthOptions?]> = [
  ['demo VPC', {}],
  ['existing VPC', EXISTING_VPC_CONTEXT],
  // Aurora, copies (encrypted, shared, plain) and a backup key: the snapshot and retention tasks' optional grants;
  // named restore placement and app secrets: pitr-restore's; a logical drill on a verification server: backup-verify's.
  ['existing VPC, every snapshot, retention, restore and drill option',
    { ...EXISTING_VPC_CONTEXT, ...FULL_SNAPSHOT_CONTEXT, ...FULL_RETENTION_CONTEXT, ...FULL_RESTORE_CONTEXT, ...FULL_VERIFY_CONTEXT }],
  // As bin/app.ts builds it for a shared copy: the stack pinned to its Region (ARNs in findings
  // then name the Region and partition) and a copy-event forwarder stack in us-west-2.
  ['pinned Region with a copy-event forwarder, every option',
    { ...FULL_SNAPSHOT_CONTEXT, ...FULL_RETENTION_CONTEXT, ...FULL_RESTORE_CONTEXT, ...FULL_VERIFY_CONTEXT }, { homeRegion: 'us-east-1' }],
];

/** Every acknowledgement recorded in the tree: [construct path, rule id, reason]. */
function acknowledgements(root: IConstruct): Array<[string, string, string]> {
  const found: Array<[string, string, string]> = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        found.push([c.node.path, id, reason]);
      }
    }
  }
  return found;
}

describe('cdk-nag AwsSolutions', () => {
  for (const [name, context, options] of VARIANTS) {
    test(`${name}: no unacknowledged errors or warnings`, () => {
      const { app, forwarders } = synth(context, options);
      // Every stack of the app is checked, the forwarders included.
      assert.equal(forwarders.length, options?.homeRegion ? 1 : 0);
      const report = new AwsSolutionsChecks(app).validateScope(app);
      const lines = report.violations.map((v) =>
        `${v.severity} ${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}: ${v.description}`);
      assert.deepEqual(lines, []);
      assert.equal(report.success, true);
    });

    test(`${name}: every acknowledgement names a rule and says why`, () => {
      const { app } = synth(context, options);
      const acks = acknowledgements(app);
      // aws-cdk-lib acknowledges some of its own template-validation rules; not ours to judge.
      const ours = acks.filter(([, id]) => !id.startsWith('CloudFormation-Validate::'));
      assert.ok(ours.length > 0);
      for (const [where, id, reason] of ours) {
        // CDK stores ids without a known prefix as annotations: Annotation::AwsSolutions-...
        assert.match(id, /^Annotation::(AwsSolutions-[A-Z]+\d+(\[.+\])?|pgsteward:\w+|@aws-cdk\/[\w-]+:\w+)$/, `${where}: ${id}`);
        // A reason is a sentence about this resource, not a token like "ok" or "n/a".
        assert.ok(reason.split(' ').length >= 8, `${where}: ${id} needs a specific reason, got ${JSON.stringify(reason)}`);
      }
    });
  }

  test('the app fails synth on an unacknowledged finding (the plugin is really wired)', () => {
    const { app, stack } = build();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    new s3.Bucket(Stack.of(stack), 'UnloggedBucket'); // AwsSolutions-S1, S10
    assert.throws(() => app.synth(), /Validation failed/);
  });

  test('the same app with the plugin synthesizes cleanly', () => {
    const { app } = build();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    assert.doesNotThrow(() => app.synth());
  });
});
