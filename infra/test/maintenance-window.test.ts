import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import validator from 'asl-validator';
import { INPUT_HELP, LAMBDA_SERVICE_ERRORS, MAX_ITERATIONS } from '../lib/maintenance-window';
import { aslFromTemplate, execute, FAKE, lambdaError } from './asl';
import { synth } from './helpers';

const { template, stack } = synth();
const smId = stack.getLogicalId(stack.vacuumSweep.maintenanceWindow.stateMachine.node.defaultChild as never);
const fnId = stack.getLogicalId(stack.vacuumSweep.function.node.defaultChild as never);
// asl-validator adds QueryLanguage to the states it checks: each user gets its own copy.
const asl = () => aslFromTemplate(template.toJSON() as never, smId);
const FN_ARN = `arn:aws:lambda:${FAKE.region}:${FAKE.account}:function:${fnId}`;
const INPUT = { mode: 'standard', windowMinutes: 60 };

/** A run report as the function returns it (through the lambda:invoke integration: in Payload). */
function report(continuation: unknown, windowOpen = true) {
  return { Payload: { task: 'vacuum-sweep', continuation, details: { windowOpen, actions: [] } }, StatusCode: 200 };
}

/** A Sweep handler answering from a script, one entry per call (the last repeats); records the payloads. */
function sweepHandler(script: Array<(call: number) => unknown>) {
  const payloads: any[] = [];
  const handler = async (input: any) => {
    assert.equal(input.FunctionName, FN_ARN);
    payloads.push(input.Payload);
    return script[Math.min(payloads.length, script.length) - 1](payloads.length);
  };
  return { handler, payloads };
}

describe('MaintenanceWindow definition', () => {
  test('is valid ASL (asl-validator)', () => {
    const { isValid, errorsText } = validator(asl());
    assert.ok(isValid, errorsText('\n'));
  });

  test('states and routing', () => {
    const definition = asl();
    const s = definition.States as Record<string, any>;
    assert.equal(definition.StartAt, 'CheckInput');
    assert.deepEqual(Object.keys(s).sort(),
      ['CheckInput', 'Done', 'Init', 'InvalidInput', 'MoreWork?', 'NextIteration', 'Sweep', 'SweepFailed']);
    assert.equal(s.CheckInput.Default, 'Init');
    assert.deepEqual(s.Init, {
      Type: 'Pass',
      Parameters: { 'mode.$': '$.mode', 'windowMinutes.$': '$.windowMinutes', continuation: null, iteration: 0 },
      Next: 'Sweep',
    });
    assert.equal(s.Sweep.Resource, 'arn:aws:states:::lambda:invoke');
    assert.deepEqual(s.Sweep.Parameters, {
      FunctionName: FN_ARN,
      Payload: {
        action: 'sweep',
        'mode.$': '$.mode',
        'windowMinutes.$': '$.windowMinutes',
        'windowStartedAt.$': '$$.Execution.StartTime',
        'continuation.$': '$.continuation',
      },
    });
    assert.deepEqual(s.Sweep.ResultSelector,
      { 'continuation.$': '$.Payload.continuation', 'windowOpen.$': '$.Payload.details.windowOpen' });
    assert.equal(s.Sweep.ResultPath, '$.sweep');
    assert.equal(s.Sweep.Next, 'MoreWork?');
    assert.deepEqual(s.Sweep.Retry, [
      { ErrorEquals: ['Retryable'], IntervalSeconds: 30, MaxAttempts: 3, BackoffRate: 2 },
      { ErrorEquals: LAMBDA_SERVICE_ERRORS, IntervalSeconds: 2, MaxAttempts: 6, BackoffRate: 2, JitterStrategy: 'FULL' },
    ]);
    assert.deepEqual(s.Sweep.Catch, [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'SweepFailed' }]);
    assert.deepEqual(s['MoreWork?'], {
      Type: 'Choice',
      Choices: [{
        And: [
          { Not: { Variable: '$.sweep.continuation', IsNull: true } },
          { Variable: '$.sweep.windowOpen', BooleanEquals: true },
          { Variable: '$.iteration', NumericLessThan: MAX_ITERATIONS },
        ],
        Next: 'NextIteration',
      }],
      Default: 'Done',
    });
    assert.equal(s.NextIteration.Parameters['iteration.$'], 'States.MathAdd($.iteration, 1)');
    assert.equal(s.NextIteration.Parameters['continuation.$'], '$.sweep.continuation');
    assert.equal(s.NextIteration.Next, 'Sweep');
    assert.deepEqual(s.SweepFailed, { Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' });
    assert.equal(s.Done.Type, 'Succeed');
  });

  test('Standard type, ALL-level logs with execution data', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true, Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [stack.getLogicalId(stack.vacuumSweep.maintenanceWindow.logGroup.node.defaultChild as never), 'Arn'] } } }] },
    });
  });
});

describe('MaintenanceWindow execution (aws-local-stepfunctions)', () => {
  test('(a) follows the continuation until the sweep is complete', async () => {
    const { handler, payloads } = sweepHandler([
      () => report({ cursor: 'public.a' }),
      () => report({ cursor: 'public.b' }),
      () => report(null),
    ]);
    const before = Date.now();
    const run = await execute(asl(), INPUT, { handlers: { Sweep: handler } });
    assert.equal(run.status, 'SUCCEEDED', run.cause);
    assert.equal(payloads.length, 3);
    assert.deepEqual(payloads.map((p) => p.continuation), [null, { cursor: 'public.a' }, { cursor: 'public.b' }]);
    // Every iteration measures the window from the execution's start.
    const start = payloads[0].windowStartedAt;
    assert.match(start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.ok(Date.parse(start) >= before - 1000 && Date.parse(start) <= Date.now());
    for (const p of payloads) {
      assert.deepEqual(p, { action: 'sweep', mode: 'standard', windowMinutes: 60, windowStartedAt: start, continuation: p.continuation });
    }
    assert.deepEqual(run.output, {
      mode: 'standard', windowMinutes: 60, continuation: { cursor: 'public.b' }, iteration: 2,
      sweep: { continuation: null, windowOpen: true },
    });
    assert.equal(run.path.at(-1), 'Done');
  });

  test(`(b) stops after ${MAX_ITERATIONS + 1} sweeps when work never ends`, async () => {
    const { handler, payloads } = sweepHandler([(n) => report({ cursor: n })]);
    const run = await execute(asl(), { mode: 'freeze', windowMinutes: 600 }, { handlers: { Sweep: handler } });
    assert.equal(run.status, 'SUCCEEDED', run.cause);
    assert.equal(payloads.length, MAX_ITERATIONS + 1);
    const out = run.output as any;
    assert.equal(out.iteration, MAX_ITERATIONS);
    assert.deepEqual(out.sweep, { continuation: { cursor: MAX_ITERATIONS + 1 }, windowOpen: true }, 'work left shows in the output');
  });

  test('(c) stops when the function says the window has closed, work left or not', async () => {
    const { handler, payloads } = sweepHandler([() => report({ cursor: 'public.a' }, false)]);
    const run = await execute(asl(), INPUT, { handlers: { Sweep: handler } });
    assert.equal(run.status, 'SUCCEEDED', run.cause);
    assert.equal(payloads.length, 1);
    assert.deepEqual((run.output as any).sweep, { continuation: { cursor: 'public.a' }, windowOpen: false });
  });

  test('(d) a Retryable error is retried, then the run goes on', async () => {
    const { handler, payloads } = sweepHandler([
      () => { throw lambdaError('Retryable', 'lock timeout on public.orders; retry later'); },
      () => report(null),
    ]);
    const run = await execute(asl(), INPUT, { handlers: { Sweep: handler }, retryIntervals: { Sweep: 0 } });
    assert.equal(run.status, 'SUCCEEDED', run.cause);
    assert.equal(payloads.length, 2);
    assert.deepEqual(payloads[1], payloads[0], 'the retry sends the same request');
    assert.deepEqual(run.path, ['CheckInput', 'Init', 'Sweep', 'MoreWork?', 'Done']);
  });

  test('(d2) Retryable three times after the first attempt: retries exhausted, caught, failed', async () => {
    const { handler, payloads } = sweepHandler([() => { throw lambdaError('Retryable', 'still locked'); }]);
    const run = await execute(asl(), INPUT, { handlers: { Sweep: handler }, retryIntervals: { Sweep: 0 } });
    assert.equal(run.status, 'FAILED');
    assert.equal(payloads.length, 4);
    assert.equal(run.error, 'Retryable');
    assert.equal(run.path.at(-1), 'SweepFailed');
  });

  test('(d3) Lambda throttling is retried as a service error', async () => {
    const { handler, payloads } = sweepHandler([
      () => { throw lambdaError('Lambda.TooManyRequestsException', 'Rate exceeded'); },
      () => report(null),
    ]);
    const run = await execute(asl(), INPUT, { handlers: { Sweep: handler }, retryIntervals: { Sweep: 0 } });
    assert.equal(run.status, 'SUCCEEDED', run.cause);
    assert.equal(payloads.length, 2);
  });

  for (const errorType of ['Unsafe', 'InvalidInput', 'InvalidConfig', 'NotFound', 'Internal']) {
    test(`(e) ${errorType} is not retried: caught, SweepFailed with the function's error and message`, async () => {
      const message = `${errorType.toLowerCase()}: refusing to run on a replica (orders-prod is in recovery)`;
      const { handler, payloads } = sweepHandler([() => { throw lambdaError(errorType, message); }]);
      const run = await execute(asl(), INPUT, { handlers: { Sweep: handler }, retryIntervals: { Sweep: 0 } });
      assert.equal(run.status, 'FAILED');
      assert.equal(payloads.length, 1);
      assert.equal(run.error, errorType);
      assert.equal(run.cause, message);
      assert.deepEqual(run.path, ['CheckInput', 'Init', 'Sweep', 'SweepFailed']);
    });
  }

  test('a failure after some iterations still reaches SweepFailed', async () => {
    const { handler, payloads } = sweepHandler([
      () => report({ cursor: 'public.a' }),
      () => { throw lambdaError('Unsafe', 'free storage below 2x public.big'); },
    ]);
    const run = await execute(asl(), INPUT, { handlers: { Sweep: handler } });
    assert.equal(run.status, 'FAILED');
    assert.equal(payloads.length, 2);
    assert.equal(run.error, 'Unsafe');
  });

  const badInputs: Array<[string, unknown]> = [
    ['no mode', { windowMinutes: 60 }],
    ['no windowMinutes', { mode: 'standard' }],
    ['windowMinutes as a string', { mode: 'standard', windowMinutes: '60' }],
    ['mode as a number', { mode: 1, windowMinutes: 60 }],
    ['an empty input', {}],
    ['dryRun (the state machine would drop it and run for real)', { mode: 'full', windowMinutes: 60, dryRun: true }],
    ['dryRun false', { mode: 'standard', windowMinutes: 60, dryRun: false }],
  ];
  for (const [what, input] of badInputs) {
    test(`a console input with ${what} fails at the first state, saying what to send`, async () => {
      const { handler, payloads } = sweepHandler([() => report(null)]);
      const run = await execute(asl(), input, { handlers: { Sweep: handler } });
      assert.equal(run.status, 'FAILED');
      assert.equal(payloads.length, 0);
      assert.equal(run.error, 'InvalidInput');
      assert.equal(run.cause, INPUT_HELP);
    });
  }

  test('the schedules\' inputs pass the input check', async () => {
    for (const input of [INPUT, { mode: 'reindex', windowMinutes: 120 }]) {
      const { handler, payloads } = sweepHandler([() => report(null)]);
      const run = await execute(asl(), input, { handlers: { Sweep: handler } });
      assert.equal(run.status, 'SUCCEEDED', run.cause);
      assert.equal(payloads[0].mode, input.mode);
    }
  });
});
