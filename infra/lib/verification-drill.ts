import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { isTrue, literal, payload, RETRYABLE, STEP_RETRY, THROTTLED } from './restore-checklist';

/** Seconds between two `wait-scratch` polls: the measured RTO is at most this late. */
export const DRILL_POLL_SECONDS = 60;
/**
 * Polls before the drill gives up on the scratch copy: 2 hours. A snapshot restore is
 * available in minutes to tens of minutes whatever the size (blocks load lazily);
 * far beyond the 30-minute RTO target, the drill has failed anyway.
 */
export const DRILL_MAX_POLLS = 120;
/**
 * Teardown: RDS refuses to delete an instance that is still creating or modifying (the
 * function says Retryable), so it is tried for about 30 minutes before the drill reports
 * the failure and leaves the scratch tags for retention-prune's sweep.
 */
export const TEARDOWN_RETRY = { interval: Duration.minutes(2), maxAttempts: 15, backoffRate: 1 };

/** Fields the state machine gives the function; typed into the input they would be taken as its own. */
export const DRILL_RESERVED_FIELDS = ['action', 'drill', 'results'];

export const DRILL_INPUT_HELP = `the input must not set ${DRILL_RESERVED_FIELDS.join(', ')} (the state machine does): start a drill with ` +
  '{"kind":"snapshot","pick":"latest"} (kind snapshot or logical; pick latest, or random with "windowDays"; "dryRun":true to see what it would do)';

export interface VerificationDrillProps {
  readonly function: lambda.IFunction;
}

/**
 * VerificationDrill: pick → restore-scratch → wait until available (bounded polling) →
 * verify → tag-verified (only when verify passed) → teardown → report. Routing only:
 * every decision is the function's. The function's payload is the execution input plus
 * `action`, the pick's `drill` and every earlier answer (or error) under `results.<step>`,
 * all kept under `run`. Once restore-scratch has started, every path goes through
 * teardown; every path ends with the report.
 */
export class VerificationDrill extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;
  private readonly fn: lambda.IFunction;

  constructor(scope: Construct, id: string, props: VerificationDrillProps) {
    super(scope, id);
    this.fn = props.function;

    const reportInput = this.report();
    const failed = (name: string) => new sfn.Pass(this, name, { result: sfn.Result.fromBoolean(true), resultPath: '$.failed' });

    // Teardown's own failure is reported, not retried forever: the scratch tags stay for the sweeper.
    const recordTeardownFailure = failed('RecordTeardownFailure');
    recordTeardownFailure.next(reportInput);
    const teardown = this.step('Teardown', 'teardown', 'teardown', recordTeardownFailure, TEARDOWN_RETRY);
    teardown.last.next(reportInput);
    // Any failure after restore-scratch started: recorded, then teardown.
    const recordFailure = failed('RecordFailure');
    recordFailure.next(teardown.first);
    // Nothing picked, nothing created: straight to the report.
    const recordPickFailure = failed('RecordPickFailure');
    recordPickFailure.next(reportInput);

    const pick = this.step('Pick', 'pick', 'pick', recordPickFailure);
    const restoreScratch = this.step('RestoreScratch', 'restoreScratch', 'restore-scratch', recordFailure);
    const waitScratch = this.step('WaitScratch', 'waitScratch', 'wait-scratch', recordFailure);
    const verify = this.step('Verify', 'verify', 'verify', recordFailure);
    const tagVerified = this.step('TagVerified', 'tagVerified', 'tag-verified', recordFailure);

    const invalidInput = new sfn.Fail(this, 'InvalidInput', { error: 'InvalidInput', cause: DRILL_INPUT_HELP });
    const checkInput = new sfn.Choice(this, 'CheckInput')
      .when(sfn.Condition.or(...DRILL_RESERVED_FIELDS.map((f) => sfn.Condition.isPresent(`$.${f}`))), invalidInput);
    const init = new sfn.CustomState(this, 'Init', {
      stateJson: {
        Type: 'Pass',
        Parameters: {
          // The function's own input, filled in as the steps answer.
          'run.$': `States.JsonMerge(${literal({ results: {} })}, $, false)`,
          polling: { count: 0 },
        },
      },
    });
    // The pick's answer is {"drill": {...}}: every later step gets it as `drill`.
    const picked = new sfn.Pass(this, 'Picked', { inputPath: '$.run.results.pick.drill', resultPath: '$.run.drill' });

    const waitForScratch = new sfn.Wait(this, 'WaitForScratch', { time: sfn.WaitTime.duration(Duration.seconds(DRILL_POLL_SECONDS)) });
    const countPoll = new sfn.Pass(this, 'CountPoll', {
      parameters: { 'count.$': 'States.MathAdd($.polling.count, 1)' },
      resultPath: '$.polling',
    });
    const notAvailable = new sfn.Pass(this, 'NotAvailable', {
      parameters: {
        Error: 'ScratchNotAvailable',
        'Cause.$': `States.Format('the scratch copy was not available after ${DRILL_MAX_POLLS} polls ${DRILL_POLL_SECONDS} s apart; ` +
          'teardown removes it (or the sweeper does); last poll: {}\', States.JsonToString($.run.results.waitScratch))',
      },
      resultPath: '$.run.results.waitScratch',
    });
    notAvailable.next(recordFailure);

    const available = new sfn.Choice(this, 'Available?')
      .when(isTrue('$.run.results.waitScratch.available'), verify.first)
      .when(sfn.Condition.numberGreaterThanEquals('$.polling.count', DRILL_MAX_POLLS), notAvailable)
      .otherwise(waitForScratch);
    // A dry run restored nothing: teardown says so too. A logical drill has no instance to wait for.
    const afterRestore = new sfn.Choice(this, 'AfterRestore?')
      .when(isTrue('$.run.dryRun'), teardown.first)
      .when(isTrue('$.run.results.restoreScratch.skipped'), verify.first)
      .otherwise(waitForScratch);
    // Tagging only what passed (the function refuses otherwise too, with Unsafe).
    const passed = new sfn.Choice(this, 'Passed?')
      .when(isTrue('$.run.results.verify.passed'), tagVerified.first)
      .otherwise(recordFailure);

    checkInput.otherwise(init);
    init.next(pick.first);
    pick.last.next(picked);
    picked.next(restoreScratch.first);
    restoreScratch.last.next(afterRestore);
    waitForScratch.next(waitScratch.first);
    waitScratch.last.next(countPoll);
    countPoll.next(available);
    verify.last.next(passed);
    tagVerified.last.next(teardown.first);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-verification-drill`,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(checkInput),
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: 'pgsteward restore drill: pick a backup, restore a scratch copy, verify, tag it verified, tear down, report',
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: false,
    });
    this.acknowledge();
  }

  /**
   * One action: a Pass makes the payload (`run` plus `action`) at `$.payload`, the task
   * invokes the function directly with it and files the answer, or the caught error,
   * under `run.results.<key>`. Retryable and Lambda throttling are retried; nothing else.
   */
  private step(id: string, key: string, action: string, onError: sfn.IChainable, retry = STEP_RETRY) {
    const input = new sfn.Pass(this, `${id}Input`, {
      parameters: { 'value.$': payload('$.run', { action }) },
      resultPath: '$.payload',
    });
    const task = new tasks.LambdaInvoke(this, id, {
      lambdaFunction: this.fn,
      payloadResponseOnly: true,
      inputPath: '$.payload.value',
      resultPath: `$.run.results.${key}`,
      retryOnServiceExceptions: false,
    });
    task.addRetry({ errors: [RETRYABLE], ...retry });
    task.addRetry({ errors: [THROTTLED], interval: Duration.seconds(2), maxAttempts: 6, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
    // CheckFailed, InvalidInput, Unsafe, NotFound, Internal, timeouts, exhausted retries.
    task.addCatch(onError, { errors: [sfn.Errors.ALL], resultPath: `$.run.results.${key}` });
    input.next(task);
    return { first: input, last: task };
  }

  /** The report: last on every path; then the execution fails if anything did. */
  private report(): sfn.IChainable {
    const { first, last } = this.reportStep();
    const outcome = new sfn.Choice(this, 'Outcome?')
      .when(sfn.Condition.isPresent('$.failed'), new sfn.Fail(this, 'DrillFailed', {
        error: 'DrillFailed',
        cause: 'a step failed, a check failed or the scratch copy never became available: its Error and Cause are under ' +
          'run.results.<step> in the execution output and in the report; the backup was not tagged verified',
      }))
      .otherwise(new sfn.Succeed(this, 'Done'));
    last.next(outcome);
    return first;
  }

  private reportStep() {
    const input = new sfn.Pass(this, 'ReportInput', {
      parameters: { 'value.$': payload('$.run', { action: 'report' }) },
      resultPath: '$.payload',
    });
    const report = new tasks.LambdaInvoke(this, 'Report', {
      lambdaFunction: this.fn,
      payloadResponseOnly: true,
      inputPath: '$.payload.value',
      resultPath: '$.report',
      retryOnServiceExceptions: false,
    });
    report.addRetry({ errors: [RETRYABLE], ...STEP_RETRY });
    report.addRetry({ errors: [THROTTLED], interval: Duration.seconds(2), maxAttempts: 6, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
    report.addCatch(new sfn.Fail(this, 'ReportFailed', { errorPath: '$.reportError.Error', causePath: '$.reportError.Cause' }),
      { errors: [sfn.Errors.ALL], resultPath: '$.reportError' });
    input.next(report);
    return { first: input, last: report };
  }

  private acknowledge(): void {
    Validations.of(this.stateMachine).acknowledge({
      id: 'AwsSolutions-SF2',
      reason: 'Lambda tasks of one function in sequence: the execution history and ALL-level logs with execution data show every step, ' +
        'and X-Ray would need account-wide xray:Put* grants for no extra insight',
    });
    const fnLogicalId = Stack.of(this).resolve((this.fn.node.defaultChild as lambda.CfnFunction).logicalId);
    Validations.of(this.stateMachine.role).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::<${fnLogicalId}.Arn>:*]`,
        reason: 'lambda:InvokeFunction on the backup-verify function and its versions/aliases (the ARN:* form CDK grants); no other function',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'CloudWatch Logs delivery actions (logs:CreateLogDelivery, PutResourcePolicy, DescribeLogGroups, ...) that ' +
          'Step Functions logging needs do not support resource-level permissions',
      },
    );
  }
}
