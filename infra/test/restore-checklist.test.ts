import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import validator from 'asl-validator';
import {
  CHECKS_PASSED, INPUT_HELP, MAX_POLLS, POLL_SECONDS, RESERVED_FIELDS, RETRYABLE, THROTTLED,
} from '../lib/restore-checklist';
import { aslFromTemplate, execute, FAKE, lambdaError } from './asl';
import { synth } from './helpers';

const { template, stack } = synth();
const checklist = stack.pitrRestore.checklist;
const smId = stack.getLogicalId(checklist.stateMachine.node.defaultChild as never);
const fnId = stack.getLogicalId(stack.pitrRestore.function.node.defaultChild as never);
// asl-validator adds QueryLanguage to the states it checks: each user gets its own copy.
const asl = () => aslFromTemplate(template.toJSON() as never, smId);
const FN_ARN = `arn:aws:lambda:${FAKE.region}:${FAKE.account}:function:${fnId}`;

/** What a console user types (the committed example), and the same asking for a cut-over. */
const CONSOLE_START = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'events', 'pitr-restore', 'console-start.json'), 'utf8'));
const INPUT = {
  targetDbInstanceIdentifier: 'orders-restore-20261122',
  restoreTime: '2026-11-22T01:30:00Z',
  expectations: { minRows: { 'public.orders': 1000 } },
  smokeQueries: ['SELECT count(*) FROM orders'],
  appSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/app-AbCdEf',
};
const CUT_OVER = { ...INPUT, cutOver: true };

const TASKS = ['Validate', 'Restore', 'Poll', 'RowCounts', 'Analyze', 'Connectivity', 'Smoke', 'CutOver', 'Rollback'];
const RESULT_KEYS: Record<string, string> = {
  Validate: 'validate', Restore: 'restore', Poll: 'wait', RowCounts: 'rowCounts', Analyze: 'analyze',
  Connectivity: 'connectivity', Smoke: 'smoke', CutOver: 'cutOver', Rollback: 'rollback',
};
const CHECKLIST_PATH = ['Init', 'CheckInput', 'Validate', 'Restore', 'DryRun?', 'WaitForRestore', 'Poll', 'CountPoll', 'Available?'];
const ENDPOINT = { address: 'orders-restore-20261122.c1a2b3c4d5e6.us-east-1.rds.amazonaws.com', port: 5432 };
const NOT_YET = { target: INPUT.targetDbInstanceIdentifier, status: 'creating', available: false, endpoint: null };
const AVAILABLE = { target: INPUT.targetDbInstanceIdentifier, status: 'available', available: true, endpoint: ENDPOINT };

type Answer = (payload: any, call: number) => unknown;

/** The function's answers per task, as in the contract; Poll says "creating" once, then "available". */
function answers(): Record<string, Answer> {
  return {
    Validate: () => ({ source: 'orders-prod', target: INPUT.targetDbInstanceIdentifier, restoreTime: INPUT.restoreTime,
      window: { earliest: '2026-11-15T02:10:00Z', latest: '2026-11-22T01:25:00Z' } }),
    Restore: () => ({ target: INPUT.targetDbInstanceIdentifier, status: 'creating', created: true }),
    Poll: (_p, call) => (call === 1 ? NOT_YET : AVAILABLE),
    RowCounts: () => ({ tables: [{ table: 'public.orders', rows: 1200, expected: 1000, ok: true }] }),
    Analyze: () => ({ tables: 212, seconds: 41.2 }),
    Connectivity: () => ({ status: 'passed', user: 'orders_app' }),
    Smoke: () => ({ queries: [{ query: 'SELECT count(*) FROM orders', ok: true }] }),
    CutOver: () => ({ secret: INPUT.appSecretArn, host: ENDPOINT.address, previousKept: 'AWSPREVIOUS' }),
    Rollback: () => ({ secret: INPUT.appSecretArn, restored: true }),
    Report: (p) => ({ task: 'pitr-restore', target: p.targetDbInstanceIdentifier, steps: Object.keys(p.results) }),
  };
}

/** Local handlers for every task: the direct Lambda invocation's input is the payload itself. Records each call. */
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
    waits: { WaitForRestore: 0 },
  }).then((outcome) => ({ ...outcome, calls: (state: string) => calls[state] ?? [] }));
}

const throwing = (errorType: string, message: string): Answer => () => { throw lambdaError(errorType, message); };

describe('RestoreChecklist definition', () => {
  test('is valid ASL (asl-validator)', () => {
    const { isValid, errorsText } = validator(asl());
    assert.ok(isValid, errorsText('\n'));
  });

  test('states: Lambda tasks, Pass, Wait, Choice, Fail, Succeed only', () => {
    const s = asl().States as Record<string, any>;
    assert.deepEqual(Object.keys(s).sort(), [
      'Analyze', 'Available?', 'CheckInput', 'Checklist', 'ChecklistFailed', 'Connectivity', 'CountPoll', 'CutOver', 'CutOver?', 'Done',
      'DryRun?', 'Init', 'InvalidInput', 'NotAvailable', 'Outcome?', 'Poll', 'RecordFailure', 'Report', 'ReportFailed',
      'ReportInput', 'Restore', 'Restored', 'Rollback', 'RollbackInput', 'RowCounts', 'Smoke', 'Validate',
      'WaitForRestore',
    ]);
    for (const state of Object.values(s)) assert.ok(['Task', 'Pass', 'Wait', 'Choice', 'Fail', 'Succeed'].includes(state.Type));
  });

  test('every task invokes the pitr-restore function directly with a prepared payload, and files its answer under results', () => {
    const s = asl().States as Record<string, any>;
    for (const name of TASKS) {
      const key = RESULT_KEYS[name];
      assert.equal(s[name].Type, 'Task');
      assert.equal(s[name].Resource, FN_ARN, name);
      assert.equal(s[name].InputPath, `$.payloads.${key}`, name);
      assert.equal(s[name].ResultPath, `$.run.results.${key}`, name);
      assert.equal(s[name].Parameters, undefined, name);
    }
    assert.equal(s.Report.Resource, FN_ARN);
    assert.equal(s.Report.InputPath, '$.payloads.report');
  });

  test('retries Retryable and Lambda throttling only; every other error is caught into results, then the report', () => {
    const s = asl().States as Record<string, any>;
    for (const name of [...TASKS, 'Report']) {
      const retryable = name === 'Analyze'
        ? { ErrorEquals: [RETRYABLE], IntervalSeconds: 10, MaxAttempts: 12, BackoffRate: 1 }
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
    for (const name of TASKS) {
      assert.deepEqual(s[name].Catch, [{ ErrorEquals: ['States.ALL'], ResultPath: `$.run.results.${RESULT_KEYS[name]}`, Next: 'RecordFailure' }]);
    }
    assert.deepEqual(s.RecordFailure, { Type: 'Pass', Result: true, ResultPath: '$.failed', Next: 'ReportInput' });
    assert.equal(s.ReportInput.Next, 'Report');
    assert.deepEqual(s.Report.Catch, [{ ErrorEquals: ['States.ALL'], ResultPath: '$.reportError', Next: 'ReportFailed' }]);
    assert.equal(s.Report.Next, 'Outcome?');
  });

  test(`the wait loop: ${POLL_SECONDS} s between polls, at most ${MAX_POLLS} polls, then NotAvailable`, () => {
    const s = asl().States as Record<string, any>;
    assert.deepEqual(s.WaitForRestore, { Type: 'Wait', Seconds: POLL_SECONDS, Next: 'Poll' });
    assert.equal(s.Poll.Next, 'CountPoll');
    assert.equal(s.CountPoll.Parameters['count.$'], 'States.MathAdd($.polling.count, 1)');
    assert.equal(s['Available?'].Choices[0].Next, 'Restored');
    assert.deepEqual(s['Available?'].Choices[1], { Variable: '$.polling.count', NumericGreaterThanEquals: MAX_POLLS, Next: 'NotAvailable' });
    assert.equal(s['Available?'].Default, 'WaitForRestore');
    assert.equal(s.NotAvailable.Next, 'RecordFailure');
  });

  test('Standard type, ALL-level logs with execution data in its own vended-logs group', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true, Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [stack.getLogicalId(checklist.logGroup.node.defaultChild as never), 'Arn'] } } }] },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: '/aws/vendedlogs/states/Test-restore-checklist', RetentionInDays: 30 });
  });
});

describe('RestoreChecklist execution (aws-local-stepfunctions)', () => {
  test('happy path: every check in order with the input plus action (and the endpoint), no cut-over unasked, a report', async () => {
    const r = await run(INPUT);
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.deepEqual(r.path, [
      ...CHECKLIST_PATH, 'WaitForRestore', 'Poll', 'CountPoll', 'Available?', 'Restored', 'Checklist',
      'RowCounts', 'Analyze', 'Connectivity', 'Smoke', 'CutOver?', 'ReportInput', 'Report', 'Outcome?', 'Done',
    ]);
    assert.deepEqual(r.calls('Validate'), [{ ...INPUT, action: 'validate' }]);
    assert.deepEqual(r.calls('Restore'), [{ ...INPUT, action: 'restore' }]);
    assert.deepEqual(r.calls('Poll'), [{ ...INPUT, action: 'wait' }, { ...INPUT, action: 'wait' }]);
    // After the wait: the last poll's answer as `restore` (where the target answers).
    assert.deepEqual(r.calls('RowCounts'), [{ ...INPUT, restore: AVAILABLE, action: 'row-counts' }]);
    assert.deepEqual(r.calls('Analyze'), [{ ...INPUT, restore: AVAILABLE, action: 'analyze' }]);
    assert.deepEqual(r.calls('Connectivity'), [{ ...INPUT, restore: AVAILABLE, action: 'connectivity' }]);
    assert.deepEqual(r.calls('Smoke'), [{ ...INPUT, restore: AVAILABLE, action: 'smoke' }]);
    assert.equal(r.calls('CutOver').length, 0);
    assert.equal(r.calls('Rollback').length, 0);

    const [report] = r.calls('Report');
    const a = answers();
    assert.deepEqual(report, {
      ...INPUT, restore: AVAILABLE, action: 'report', startedAt: report.startedAt,
      results: {
        validate: a.Validate(null, 1), restore: a.Restore(null, 1), wait: AVAILABLE, rowCounts: a.RowCounts(null, 1),
        analyze: a.Analyze(null, 1), connectivity: a.Connectivity(null, 1), smoke: a.Smoke(null, 1),
      },
    });
    assert.match(report.startedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const out = r.output as any;
    assert.deepEqual(out.report, { task: 'pitr-restore', target: INPUT.targetDbInstanceIdentifier,
      steps: ['validate', 'restore', 'wait', 'rowCounts', 'analyze', 'connectivity', 'smoke'] });
    assert.deepEqual(out.request, { ...INPUT, restore: AVAILABLE }, 'the typed input is kept as it was');
  });

  test('the console example (events/pitr-restore/console-start.json) reaches the function unchanged', async () => {
    const r = await run(CONSOLE_START);
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.deepEqual(r.calls('Validate'), [{ ...CONSOLE_START, action: 'validate' }]);
    assert.equal(r.calls('CutOver').length, CONSOLE_START.cutOver === true ? 1 : 0);
  });

  test('a failed check (CheckFailed from row counts): not retried, nothing after it, no cut-over, the report has the error', async () => {
    const cause = 'row counts below expectation: public.orders has 12 rows, expected at least 1000';
    const r = await run(CUT_OVER, { RowCounts: throwing('CheckFailed', cause) });
    assert.equal(r.status, 'FAILED');
    assert.equal(r.error, 'ChecklistFailed');
    assert.equal(r.calls('RowCounts').length, 1);
    for (const later of ['Analyze', 'Connectivity', 'Smoke', 'CutOver']) assert.equal(r.calls(later).length, 0, later);
    assert.deepEqual(r.path.slice(-7), ['Checklist', 'RowCounts', 'RecordFailure', 'ReportInput', 'Report', 'Outcome?', 'ChecklistFailed']);
    const [report] = r.calls('Report');
    assert.deepEqual(report.results.rowCounts, { Error: 'CheckFailed', Cause: cause });
    assert.deepEqual(Object.keys(report.results), ['validate', 'restore', 'wait', 'rowCounts']);
  });

  test('a Retryable error from wait is retried with the same payload, then the checklist goes on', async () => {
    const r = await run(INPUT, {
      Poll: (_p, call) => {
        if (call === 1) throw lambdaError('Retryable', 'rds throttled DescribeDBInstances; retry later');
        return AVAILABLE;
      },
    });
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.equal(r.calls('Poll').length, 2);
    assert.deepEqual(r.calls('Poll')[1], r.calls('Poll')[0]);
    assert.equal(r.path.filter((s) => s === 'Poll').length, 1, 'a retry, not a second poll');
    assert.equal((r.output as any).polling.count, 1);
    assert.equal(r.calls('Smoke').length, 1);
  });

  test('Retryable four times (retries exhausted): caught, reported, failed', async () => {
    const r = await run(INPUT, { RowCounts: throwing('Retryable', 'lock timeout on public.orders') });
    assert.equal(r.status, 'FAILED');
    assert.equal(r.calls('RowCounts').length, 4);
    assert.deepEqual(r.calls('Report')[0].results.rowCounts, { Error: 'Retryable', Cause: 'lock timeout on public.orders' });
  });

  test('ANALYZE that outlasts an invocation goes on in the retries (up to 13 runs), then the checklist continues', async () => {
    const r = await run(INPUT, {
      Analyze: (_p, call) => {
        if (call < 13) throw lambdaError('Retryable', `analyzed ${call * 10} of 212 tables before the Lambda deadline`);
        return { tables: 212, seconds: 10800 };
      },
    });
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.equal(r.calls('Analyze').length, 13);
    assert.equal(r.calls('Smoke').length, 1);
  });

  test('Lambda throttling is retried', async () => {
    const r = await run(INPUT, {
      Validate: (_p, call) => {
        if (call === 1) throw lambdaError(THROTTLED, 'Rate exceeded');
        return answers().Validate(null, 1);
      },
    });
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.equal(r.calls('Validate').length, 2);
  });

  test(`a restore that never becomes available: ${MAX_POLLS} polls, then a failure in the report, nothing checked`, async () => {
    const r = await run(INPUT, { Poll: () => NOT_YET });
    assert.equal(r.status, 'FAILED');
    assert.equal(r.error, 'ChecklistFailed');
    assert.equal(r.calls('Poll').length, MAX_POLLS);
    assert.equal(r.calls('RowCounts').length, 0);
    assert.deepEqual(r.path.slice(-6), ['NotAvailable', 'RecordFailure', 'ReportInput', 'Report', 'Outcome?', 'ChecklistFailed']);
    const wait = r.calls('Report')[0].results.wait;
    assert.equal(wait.Error, 'RestoreNotAvailable');
    assert.match(wait.Cause, new RegExp(`not available after ${MAX_POLLS} polls ${POLL_SECONDS} s apart`));
    assert.ok(wait.Cause.includes(JSON.stringify(NOT_YET)), 'the last poll\'s answer is in the cause');
  });

  for (const errorType of ['InvalidInput', 'NotFound', 'Unsafe', 'Internal']) {
    test(`${errorType} from validate: not retried, no restore, reported with the function's message, failed`, async () => {
      const message = 'restoreTime 2026-11-01T00:00:00Z is outside the restorable window 2026-11-15T02:10:00Z .. 2026-11-22T01:25:00Z';
      const r = await run(INPUT, { Validate: throwing(errorType, message) });
      assert.equal(r.status, 'FAILED');
      assert.equal(r.calls('Validate').length, 1);
      assert.equal(r.calls('Restore').length, 0);
      assert.deepEqual(r.path, ['Init', 'CheckInput', 'Validate', 'RecordFailure', 'ReportInput', 'Report', 'Outcome?', 'ChecklistFailed']);
      assert.deepEqual(r.calls('Report')[0].results, { validate: { Error: errorType, Cause: message } });
    });
  }

  test('cut-over when asked, after every check, with the checks and the endpoint; then a rollback execution puts it back', async () => {
    const r = await run(CUT_OVER);
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.deepEqual(r.path.slice(-7), ['Smoke', 'CutOver?', 'CutOver', 'ReportInput', 'Report', 'Outcome?', 'Done']);
    assert.deepEqual(r.calls('CutOver'), [{ ...CUT_OVER, restore: AVAILABLE, action: 'cut-over', checks: CHECKS_PASSED }]);
    assert.deepEqual(r.calls('Report')[0].results.cutOver, answers().CutOver(null, 1));
    assert.equal(r.calls('Rollback').length, 0);

    // The operator starts the same input again with "rollback": true.
    const back = await run({ ...CUT_OVER, rollback: true });
    assert.equal(back.status, 'SUCCEEDED', back.cause);
    assert.deepEqual(back.path, ['Init', 'CheckInput', 'RollbackInput', 'Rollback', 'ReportInput', 'Report', 'Outcome?', 'Done']);
    for (const state of ['Validate', 'Restore', 'Poll', 'RowCounts', 'CutOver']) assert.equal(back.calls(state).length, 0, state);
    // Only the fields rollback needs: the function rejects fields it does not know, "rollback" among them.
    const request = { targetDbInstanceIdentifier: INPUT.targetDbInstanceIdentifier, appSecretArn: INPUT.appSecretArn, dryRun: false };
    assert.deepEqual(back.calls('Rollback'), [{ action: 'rollback', ...request }]);
    const [report] = back.calls('Report');
    assert.deepEqual(report, { ...request, action: 'report', startedAt: report.startedAt, results: { rollback: answers().Rollback(null, 1) } });
  });

  test('a dry-run rollback stays a dry run; a rollback without appSecretArn reaches the function, which says so', async () => {
    const dry = await run({ targetDbInstanceIdentifier: 't1', appSecretArn: INPUT.appSecretArn, rollback: true, dryRun: true });
    assert.deepEqual(dry.calls('Rollback'), [{ action: 'rollback', targetDbInstanceIdentifier: 't1', appSecretArn: INPUT.appSecretArn, dryRun: true }]);
    const message = 'rollback needs appSecretArn: the application secret that was cut over';
    const missing = await run({ targetDbInstanceIdentifier: 't1', rollback: true }, { Rollback: throwing('InvalidInput', message) });
    assert.deepEqual(missing.calls('Rollback'), [{ action: 'rollback', targetDbInstanceIdentifier: 't1', appSecretArn: null, dryRun: false }]);
    assert.equal(missing.status, 'FAILED');
    assert.deepEqual(missing.calls('Report')[0].results, { rollback: { Error: 'InvalidInput', Cause: message } });
  });

  test('Unsafe from cut-over (the function refuses): reported, failed', async () => {
    const r = await run(CUT_OVER, { CutOver: throwing('Unsafe', 'cut-over refused: smoke did not pass') });
    assert.equal(r.status, 'FAILED');
    assert.equal(r.calls('CutOver').length, 1);
    assert.deepEqual(r.calls('Report')[0].results.cutOver, { Error: 'Unsafe', Cause: 'cut-over refused: smoke did not pass' });
  });

  test('a dry run validates and asks restore what it would do, then reports: nothing to wait for', async () => {
    const r = await run({ ...CUT_OVER, dryRun: true }, { Restore: () => ({ target: INPUT.targetDbInstanceIdentifier, status: 'dry-run', created: false }) });
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.deepEqual(r.path, ['Init', 'CheckInput', 'Validate', 'Restore', 'DryRun?', 'ReportInput', 'Report', 'Outcome?', 'Done']);
    assert.deepEqual(r.calls('Restore'), [{ ...CUT_OVER, dryRun: true, action: 'restore' }]);
    assert.equal(r.calls('CutOver').length, 0);
  });

  const badInputs: Array<[string, Record<string, unknown>]> = [
    ['"rollback": false', { rollback: false }],
    ['"rollback": "yes"', { rollback: 'yes' }],
    ...RESERVED_FIELDS.map((f): [string, Record<string, unknown>] => [`a typed ${f}`, { [f]: f === 'action' ? 'cut-over' : {} }]),
  ];
  for (const [what, extra] of badInputs) {
    test(`${what} fails at once, saying what to send, and calls nothing`, async () => {
      const r = await run({ ...INPUT, ...extra });
      assert.equal(r.status, 'FAILED');
      assert.equal(r.error, 'InvalidInput');
      assert.equal(r.cause, INPUT_HELP);
      assert.deepEqual(r.path, ['Init', 'CheckInput', 'InvalidInput']);
    });
  }

  test('a report that fails ends the execution with its error (the results stay in the logs)', async () => {
    const r = await run(INPUT, { Report: throwing('InvalidInput', 'unknown field `restoreTme`, expected one of ...') });
    assert.equal(r.status, 'FAILED');
    assert.equal(r.error, 'InvalidInput');
    assert.equal(r.cause, 'unknown field `restoreTme`, expected one of ...');
    assert.equal(r.path.at(-1), 'ReportFailed');
  });
});
