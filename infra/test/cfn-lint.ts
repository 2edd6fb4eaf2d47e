import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/**
 * Justified ignores only:
 * - W3005 (redundant DependsOn): CDK makes each Lambda depend on its role's default
 *   policy and role; the role's GetAtt already orders it, and the DependsOn is CDK's own.
 */
const IGNORED = ['W3005'];

/** Lints a template file; a missing cfn-lint fails with one line saying how to get it. */
export function cfnLint(file: string): void {
  const run = spawnSync('cfn-lint', ['--format', 'parseable', '--ignore-checks', ...IGNORED, '--', file], { encoding: 'utf8' });
  // ENOENT: not on PATH; 127: a pyenv shim for a Python version that lacks it.
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' || run.status === 127) {
    assert.fail('cfn-lint not found: pip install cfn-lint');
  }
  // Exit status is a bit mask (2 error, 4 warning, 8 informational): all must be clear.
  assert.equal(run.status, 0, `cfn-lint ${file} exited ${run.status}:\n${run.stdout}${run.stderr}`);
}
