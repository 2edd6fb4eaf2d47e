import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import validator from 'asl-validator';
import { RETRYABLE, THROTTLED } from '../lib/restore-checklist';
import {
  DRILL_INPUT_HELP, DRILL_MAX_POLLS, DRILL_POLL_SECONDS, DRILL_RESERVED_FIELDS, TEARDOWN_RETRY,
} from '../lib/verification-drill';
import { aslFromTemplate, execute, FAKE, lambdaError } from './asl';
import { synth } from './helpers';

const { template, stack } = synth();
const drill = stack.backupVerify.drill;
const smId = stack.getLogicalId(drill.stateMachine.node.defaultChild as never);
const fnId = stack.getLogicalId(stack.backupVerify.function.node.defaultChild as never);
// asl-validator adds QueryLanguage to the states it checks: each user gets its own copy.
const asl = () => aslFromTemplate(template.toJSON() as never, smId);
const FN_ARN = `arn:aws:lambda:${FAKE.region}:${FAKE.account}:function:${fnId}`;

/** What the schedule sends (Scheduler substitutes the slot and its execution id). */
const INPUT = { kind: 'snapshot', pick: 'latest', scheduledTime: '2026-11-22T02:45:00Z', executionId: 'c0ffee00-1234-5678-9abc-def012345678' };

const TASKS = ['Pick', 'RestoreScratch', 'WaitScratch', 'Verify', 'TagVerified', 'Teardown'];
const RESULT_KEYS: Record<string, string> = {
  Pick: 'pick', RestoreScratch: 'restoreScratch', WaitScratch: 'waitScratch', Verify: 'verify', TagVerified: 'tagVerified', Teardown: 'teardown',
};
const ACTIONS: Record<string, string> = {
  Pick: 'pick', RestoreScratch: 'restore-scratch', WaitScratch: 'wait-scratch', Verify: 'verify', TagVerified: 'tag-verified',
  Teardown: 'teardown', Report: 'report',
};

const DRILL = {
  drillId: '20261122-0245-a1b2', kind: 'snapshot', startedAt: '2026-11-22T02:45:03Z', rpoMinutes: 45,
  backup: { id: 'pgsteward-orders-prod-20261122-0200', takenAt: '2026-11-22T02:00:00Z', arn: 'arn:aws:rds:us-east-1:123456789012:snapshot:pgsteward-orders-prod-20261122-0200' },
};
const ENDPOINT = { address: 'pgsteward-drill-20261122-0245-a1b2.c1a2b3c4d5e6.us-east-1.rds.amazonaws.com', port: 5432 };
const NOT_YET = { available: false, status: 'creating', endpoint: null };
const AVAILABLE = { available: true, status: 'available', endpoint: ENDPOINT };
const VERIFIED = {
  passed: true, checks: [{ check: 'rowCounts', passed: true }, { check: 'amcheck', passed: true }], rtoSeconds: 1260, rpoMinutes: 45,
  timings: { restore: 1100, rowCounts: 40, amcheck: 120 },
};

type Answer = (payload: any, call: number) => unknown;

/** The function's answers per task, as in the contract; the scratch copy is "creating" once, then "available". */
function answers(): Record<string, Answer> {
  return {
    Pick: () => ({ drill: DRILL }),
    RestoreScratch: () => ({ target: `pgsteward-drill-${DRILL.drillId}`, status: 'creating', created: true }),
    WaitScratch: (_p, call) => (call === 1 ? NOT_YET : AVAILABLE),
    Verify: () => VERIFIED,
    TagVerified: () => ({ tagged: DRILL.backup.arn, verifiedAt: '2026-11-22T03:06:03Z' }),
    Teardown: () => ({ deleted: [`pgsteward-drill-${DRILL.drillId}`] }),
    Report: (p) => ({ task: 'backup-verify', drillId: p.drill?.drillId ?? null, steps: Object.keys(p.results) }),
  };
}

/** Local handlers for every task (a direct invocation's input is the payload itself); records each call. */
function run(input: unknown, overrides: Record<string, Answer> = {}) {
  const calls: Record<string, any[]> = {};
  const script = { ...answers(), ...overrides };
  const handlers = Object.fromEntries(Object.entries(script).map(([state, answer]) => [state, async (payload: any) => {
    (calls[state] ??= []).push(payload);
    return answer(payload, calls[state].length);
  }]));
  const zero = (names: string[]) => Object.fromEntries(names.map((n) => [n, 0]));
  return execute(asl(), input, {
    handlers,
    retryIntervals: zero([...TASKS, 'Report']),
    waits: { WaitForScratch: 0 },
  }).then((outcome) => ({ ...outcome, calls: (state: string) => calls[state] ?? [] }));
}

const throwing = (errorType: string, message: string): Answer => () => { throw lambdaError(errorType, message); };
const TO_VERIFY = ['CheckInput', 'Init', 'PickInput', 'Pick', 'Picked', 'RestoreScratchInput', 'RestoreScratch', 'AfterRestore?',
  'WaitForScratch', 'WaitScratchInput', 'WaitScratch', 'CountPoll', 'Available?',
  'WaitForScratch', 'WaitScratchInput', 'WaitScratch', 'CountPoll', 'Available?', 'VerifyInput', 'Verify', 'Passed?'];
const REPORT_END = ['ReportInput', 'Report', 'Outcome?'];

describe('VerificationDrill definition', () => {
  test('is valid ASL (asl-validator)', () => {
    const { isValid, errorsText } = validator(asl());
    assert.ok(isValid, errorsText('\n'));
  });

  test('states: Lambda tasks, Pass, Wait, Choice, Fail, Succeed only', () => {
    const s = asl().States as Record<string, any>;
    for (const state of Object.values(s)) assert.ok(['Task', 'Pass', 'Wait', 'Choice', 'Fail', 'Succeed'].includes(state.Type));
    assert.deepEqual(Object.values(s).filter((x) => x.Type === 'Task').length, TASKS.length + 1);
  });

  test('every task invokes backup-verify directly with a payload made just before it, and files its answer under results', () => {
    const s = asl().States as Record<string, any>;
    for (const name of TASKS) {
      assert.equal(s[name].Resource, FN_ARN, name);
      assert.equal(s[name].InputPath, '$.payload.value', name);
      assert.equal(s[name].ResultPath, `$.run.results.${RESULT_KEYS[name]}`, name);
      assert.equal(s[`${name}Input`].Next, name);
      assert.match(s[`${name}Input`].Parameters['value.$'], new RegExp(`"action":"${ACTIONS[name]}".*\\$\\.run, false\\)$`));
    }
    assert.equal(s.Report.Resource, FN_ARN);
    assert.equal(s.Report.ResultPath, '$.report');
  });

  test('retries Retryable and Lambda throttling only; teardown longer; CheckFailed, InvalidInput, Unsafe never', () => {
    const s = asl().States as Record<string, any>;
    for (const name of [...TASKS, 'Report']) {
      const retryable = name === 'Teardown'
        ? { ErrorEquals: [RETRYABLE], IntervalSeconds: TEARDOWN_RETRY.interval.toSeconds(), MaxAttempts: TEARDOWN_RETRY.maxAttempts, BackoffRate: 1 }
        : { ErrorEquals: [RETRYABLE], IntervalSeconds: 10, MaxAttempts: 3, BackoffRate: 2 };
      assert.deepEqual(s[name].Retry, [
        retryable,
        { ErrorEquals: [THROTTLED], IntervalSeconds: 2, MaxAttempts: 6, BackoffRate: 2, JitterStrategy: 'FULL' },
      ], name);
      const retried = s[name].Retry.flatMap((r: any) => r.ErrorEquals);
      for (const never of ['CheckFailed', 'InvalidInput', 'Unsafe', 'NotFound', 'Internal', 'States.ALL', 'States.TaskFailed']) {
        assert.ok(!retried.includes(never), `${name} retries ${never}`);
      }
    }
  });

  test('after restore-scratch starts, every failure reaches teardown; teardown and pick failures reach the report', () => {
    const s = asl().States as Record<string, any>;
    const catchTo = (name: string) => s[name].Catch.map((c: any) => [c.ErrorEquals, c.ResultPath, c.Next]);
    for (const name of ['RestoreScratch', 'WaitScratch', 'Verify', 'TagVerified']) {
      assert.deepEqual(catchTo(name), [[['States.ALL'], `$.run.results.${RESULT_KEYS[name]}`, 'RecordFailure']], name);
    }
    assert.equal(s.RecordFailure.Next, 'TeardownInput');
    assert.equal(s.NotAvailable.Next, 'RecordFailure');
    assert.equal(s['Passed?'].Default, 'RecordFailure');
    assert.deepEqual(catchTo('Pick'), [[['States.ALL'], '$.run.results.pick', 'RecordPickFailure']]);
    assert.deepEqual(catchTo('Teardown'), [[['States.ALL'], '$.run.results.teardown', 'RecordTeardownFailure']]);
    for (const name of ['RecordPickFailure', 'RecordTeardownFailure', 'Teardown']) assert.equal(s[name].Next, 'ReportInput', name);
    assert.equal(s.TagVerified.Next, 'TeardownInput');
    assert.deepEqual(catchTo('Report'), [[['States.ALL'], '$.reportError', 'ReportFailed']]);
  });

  test(`the wait loop: ${DRILL_POLL_SECONDS} s between polls, at most ${DRILL_MAX_POLLS} polls`, () => {
    const s = asl().States as Record<string, any>;
    assert.deepEqual(s.WaitForScratch, { Type: 'Wait', Seconds: DRILL_POLL_SECONDS, Next: 'WaitScratchInput' });
    assert.equal(s.CountPoll.Parameters['count.$'], 'States.MathAdd($.polling.count, 1)');
    assert.deepEqual(s['Available?'].Choices[1], { Variable: '$.polling.count', NumericGreaterThanEquals: DRILL_MAX_POLLS, Next: 'NotAvailable' });
    assert.equal(s['Available?'].Default, 'WaitForScratch');
  });

  test('Standard type, ALL-level logs with execution data in its own vended-logs group', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true, Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [stack.getLogicalId(drill.logGroup.node.defaultChild as never), 'Arn'] } } }] },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/aws/vendedlogs/states/Test-verification-drill', RetentionInDays: 30 });
  });
});

describe('VerificationDrill execution (aws-local-stepfunctions)', () => {
  test('success: pick, restore, wait, verify, tag-verified, teardown, report; payloads are the input plus action, drill, results', async () => {
    const r = await run(INPUT);
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.deepEqual(r.path, [...TO_VERIFY, 'TagVerifiedInput', 'TagVerified', 'TeardownInput', 'Teardown', ...REPORT_END, 'Done']);
    const a = answers();
    assert.deepEqual(r.calls('Pick'), [{ ...INPUT, action: 'pick', results: {} }]);
    assert.deepEqual(r.calls('RestoreScratch'), [{ ...INPUT, action: 'restore-scratch', drill: DRILL, results: { pick: { drill: DRILL } } }]);
    assert.equal(r.calls('WaitScratch').length, 2);
    assert.deepEqual(r.calls('Verify')[0].results.waitScratch, AVAILABLE);
    assert.deepEqual(r.calls('TagVerified')[0].results.verify, VERIFIED);
    assert.equal(r.calls('TagVerified')[0].action, 'tag-verified');
    assert.equal(r.calls('Teardown').length, 1);
    const [report] = r.calls('Report');
    assert.deepEqual(report, {
      ...INPUT, action: 'report', drill: DRILL,
      results: {
        pick: { drill: DRILL }, restoreScratch: a.RestoreScratch(null, 1), waitScratch: AVAILABLE, verify: VERIFIED,
        tagVerified: a.TagVerified(null, 1), teardown: a.Teardown(null, 1),
      },
    });
    assert.deepEqual((r.output as any).report.steps, ['pick', 'restoreScratch', 'waitScratch', 'verify', 'tagVerified', 'teardown']);
  });

  test('a failed check (CheckFailed from verify): not retried, no tag-verified, teardown still runs, reported, failed', async () => {
    const cause = 'row counts differ from the manifest: public.orders has 1180 rows, the manifest 1200';
    const r = await run(INPUT, { Verify: throwing('CheckFailed', cause) });
    assert.equal(r.status, 'FAILED');
    assert.equal(r.error, 'DrillFailed');
    assert.equal(r.calls('Verify').length, 1);
    assert.equal(r.calls('TagVerified').length, 0);
    assert.equal(r.calls('Teardown').length, 1);
    assert.deepEqual(r.calls('Teardown')[0].results.verify, { Error: 'CheckFailed', Cause: cause });
    assert.deepEqual(r.path.slice(-9), ['VerifyInput', 'Verify', 'RecordFailure', 'TeardownInput', 'Teardown', ...REPORT_END, 'DrillFailed']);
    assert.deepEqual(r.calls('Report')[0].results.verify, { Error: 'CheckFailed', Cause: cause });
    assert.ok('teardown' in r.calls('Report')[0].results);
  });

  test('verify answering passed: false is not tagged either: teardown, report, failed', async () => {
    const r = await run(INPUT, { Verify: () => ({ ...VERIFIED, passed: false }) });
    assert.equal(r.status, 'FAILED');
    assert.equal(r.calls('TagVerified').length, 0);
    assert.deepEqual(r.path.slice(-8), ['Passed?', 'RecordFailure', 'TeardownInput', 'Teardown', ...REPORT_END, 'DrillFailed']);
  });

  test(`a scratch copy that never becomes available: ${DRILL_MAX_POLLS} polls, then teardown, then the report`, async () => {
    const r = await run(INPUT, { WaitScratch: () => NOT_YET });
    assert.equal(r.status, 'FAILED');
    assert.equal(r.error, 'DrillFailed');
    assert.equal(r.calls('WaitScratch').length, DRILL_MAX_POLLS);
    assert.equal(r.calls('Verify').length, 0);
    assert.equal(r.calls('Teardown').length, 1);
    assert.deepEqual(r.path.slice(-9), ['Available?', 'NotAvailable', 'RecordFailure', 'TeardownInput', 'Teardown', ...REPORT_END, 'DrillFailed']);
    const wait = r.calls('Report')[0].results.waitScratch;
    assert.equal(wait.Error, 'ScratchNotAvailable');
    assert.match(wait.Cause, new RegExp(`not available after ${DRILL_MAX_POLLS} polls ${DRILL_POLL_SECONDS} s apart.*"status":"creating"`));
  });

  test('a Retryable error from wait-scratch is retried with the same payload, then the drill goes on', async () => {
    const r = await run(INPUT, {
      WaitScratch: (_p, call) => {
        if (call === 1) throw lambdaError('Retryable', 'rds throttled DescribeDBInstances; retry later');
        return AVAILABLE;
      },
    });
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.equal(r.calls('WaitScratch').length, 2);
    assert.deepEqual(r.calls('WaitScratch')[1], r.calls('WaitScratch')[0]);
    assert.equal(r.path.filter((s) => s === 'WaitScratch').length, 1, 'a retry, not a second poll');
    assert.equal(r.calls('TagVerified').length, 1);
  });

  test('a teardown failure: retried while Retryable, then reported; the execution ends with the report', async () => {
    const cause = 'pgsteward-drill-20261122-0245-a1b2 is still modifying; left tagged pgsteward:scratch for the sweeper';
    const r = await run(INPUT, { Teardown: throwing('Retryable', cause) });
    assert.equal(r.status, 'FAILED');
    assert.equal(r.error, 'DrillFailed');
    assert.equal(r.calls('Teardown').length, TEARDOWN_RETRY.maxAttempts + 1);
    assert.equal(r.calls('TagVerified').length, 1, 'the backup passed: its tag stays');
    assert.deepEqual(r.path.slice(-6), ['Teardown', 'RecordTeardownFailure', ...REPORT_END, 'DrillFailed']);
    assert.deepEqual(r.calls('Report')[0].results.teardown, { Error: 'Retryable', Cause: cause });
  });

  test('an Unsafe teardown (not retried) after a failed check: reported', async () => {
    const r = await run(INPUT, { Verify: throwing('CheckFailed', 'amcheck failed on public.orders_pkey'), Teardown: throwing('Unsafe', 'drill tag mismatch') });
    assert.equal(r.calls('Teardown').length, 1);
    assert.deepEqual(r.calls('Report')[0].results.teardown, { Error: 'Unsafe', Cause: 'drill tag mismatch' });
    assert.equal(r.path.at(-1), 'DrillFailed');
  });

  for (const errorType of ['NotFound', 'InvalidInput']) {
    test(`${errorType} from pick: nothing restored, no teardown, reported, failed`, async () => {
      const r = await run(INPUT, { Pick: throwing(errorType, 'no available managed snapshot of orders-prod') });
      assert.equal(r.calls('Pick').length, 1);
      for (const later of ['RestoreScratch', 'WaitScratch', 'Verify', 'TagVerified', 'Teardown']) assert.equal(r.calls(later).length, 0, later);
      assert.deepEqual(r.path, ['CheckInput', 'Init', 'PickInput', 'Pick', 'RecordPickFailure', ...REPORT_END, 'DrillFailed']);
      assert.deepEqual(r.calls('Report')[0], { ...INPUT, action: 'report', results: { pick: { Error: errorType, Cause: 'no available managed snapshot of orders-prod' } } });
    });
  }

  test('a restore that fails (Unsafe) still reaches teardown: it removes whatever the drill created', async () => {
    const r = await run(INPUT, { RestoreScratch: throwing('Unsafe', 'pgsteward-drill-x exists with another drill tag') });
    assert.equal(r.calls('RestoreScratch').length, 1);
    assert.equal(r.calls('Teardown').length, 1);
    assert.equal(r.calls('WaitScratch').length, 0);
    assert.equal(r.status, 'FAILED');
  });

  test('a logical drill: restore-scratch skips, no wait, verify, tag, teardown, report', async () => {
    const r = await run({ kind: 'logical', pick: 'latest' }, { RestoreScratch: () => ({ skipped: true }) });
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.equal(r.calls('WaitScratch').length, 0);
    assert.deepEqual(r.path.slice(7, 10), ['AfterRestore?', 'VerifyInput', 'Verify']);
    assert.equal(r.calls('Teardown').length, 1);
  });

  test('a dry run: pick and restore say what they would do, then teardown and the report', async () => {
    const input = { ...INPUT, dryRun: true };
    const r = await run(input, { RestoreScratch: () => ({ dryRun: true, wouldRestore: DRILL.backup.id }) });
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.deepEqual(r.path.slice(7), ['AfterRestore?', 'TeardownInput', 'Teardown', ...REPORT_END, 'Done']);
    assert.equal(r.calls('Teardown')[0].dryRun, true);
  });

  for (const field of DRILL_RESERVED_FIELDS) {
    test(`a typed ${field} fails at once, saying what to send, and calls nothing`, async () => {
      const r = await run({ ...INPUT, [field]: field === 'action' ? 'teardown' : {} });
      assert.equal(r.status, 'FAILED');
      assert.equal(r.error, 'InvalidInput');
      assert.equal(r.cause, DRILL_INPUT_HELP);
      assert.deepEqual(r.path, ['CheckInput', 'InvalidInput']);
    });
  }

  test('a report that fails ends the execution with its error', async () => {
    const r = await run(INPUT, { Report: throwing('Internal', 'eventbridge rejected the event') });
    assert.equal(r.status, 'FAILED');
    assert.equal(r.error, 'Internal');
    assert.equal(r.path.at(-1), 'ReportFailed');
    assert.equal(r.calls('Teardown').length, 1);
  });
});
