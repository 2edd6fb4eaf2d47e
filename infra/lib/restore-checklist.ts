import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

/** Seconds between two `wait` polls of the restored instance. */
export const POLL_SECONDS = 60;
/**
 * Polls before the checklist gives up on the restore: 3 hours. A point-in-time restore
 * replays WAL from the last snapshot, so large or busy databases take hours, not minutes.
 */
export const MAX_POLLS = 180;

/** The only function error Step Functions retries (the function raises it for throttling, lock and connection waits). */
export const RETRYABLE = 'Retryable';
/**
 * ANALYZE of a large database outlasts one invocation: 30 s before its deadline the function
 * stops with `Retryable` and how far it got, and the retry goes on with the rest. So this step
 * retries without backoff, up to 12 times: about 3 hours of ANALYZE.
 */
export const ANALYZE_RETRY = { interval: Duration.seconds(10), maxAttempts: 12, backoffRate: 1 };
/** Every other step: throttling, lock and connection waits. */
export const STEP_RETRY = { interval: Duration.seconds(10), maxAttempts: 3, backoffRate: 2 };

/**
 * Lambda throttled the invocation: the function never ran, so even cut-over is safe to
 * send again. Other Lambda service errors are not retried: the function may have run.
 */
export const THROTTLED = 'Lambda.TooManyRequestsException';

/** What cut-over is told about the checks: the state machine reaches it only when every one returned. */
export const CHECKS_PASSED = { rowCounts: 'passed', analyze: 'passed', connectivity: 'passed', smoke: 'passed' };

/**
 * A rollback needs three fields of the input; these fill in the ones not typed, so the
 * function (not a JSONPath error) says what is missing, and a dryRun is never dropped.
 */
export const ROLLBACK_DEFAULTS = { targetDbInstanceIdentifier: '', appSecretArn: null, dryRun: false };

/** Fields the state machine gives the function; typed into the input they would be taken as its own. */
export const RESERVED_FIELDS = ['action', 'restore', 'checks', 'results', 'startedAt'];

export const INPUT_HELP = `the input must not set ${RESERVED_FIELDS.join(', ')} (the state machine does), and "rollback" must be ` +
  'true or absent: start a checklist with {"targetDbInstanceIdentifier":"...","restoreTime":"..."}, roll a cut-over back ' +
  'with the same input plus "rollback":true';

export const RESTORE_INPUT_HELP =
  '{"targetDbInstanceIdentifier":"orders-restore-20261122","restoreTime":"2026-11-22T01:30:00Z"} ' +
  '(or "useLatestRestorableTime":true), optionally "expectations", "smokeQueries", "appSecretArn", "cutOver", "dryRun"; ' +
  'the same input plus "rollback":true puts the application secret back';

/**
 * A JSON object as an intrinsic-function argument: `{ } ' \` are reserved in its string
 * literals and escaped. Through States.Format (no placeholders), because aws-local-stepfunctions
 * unescapes only function results, not literals: the tests then run what Step Functions runs.
 */
export function literal(value: object): string {
  return `States.StringToJson(States.Format('${JSON.stringify(value).replace(/[{}'\\]/g, '\\$&')}'))`;
}

/**
 * The execution input (at `base`) plus `extra`: what the function receives ("the execution
 * input plus action"). The input may not carry extra's fields (CheckInput), so the order
 * matters only to aws-local-stepfunctions, whose JsonMerge writes into its first argument.
 */
export function payload(base: string, extra: object): string {
  return `States.JsonMerge(${literal(extra)}, ${base}, false)`;
}

export const isTrue = (path: string) => sfn.Condition.and(
  sfn.Condition.isPresent(path), sfn.Condition.isBoolean(path), sfn.Condition.booleanEquals(path, true),
);

export interface RestoreChecklistProps {
  readonly function: lambda.IFunction;
}

/**
 * RestoreChecklist: validate → restore → wait until available (bounded polling) →
 * row counts → ANALYZE → connectivity → smoke → cut-over (when asked) → report, or
 * rollback → report. Routing only: every decision is the function's; the state
 * machine keeps the typed input under `request`, each step's output (or error)
 * under `run.results.<step>` (`run` is the report's input), and the poll count.
 * Every failure reaches the report.
 */
export class RestoreChecklist extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;
  private readonly fn: lambda.IFunction;
  private readonly recordFailure: sfn.Pass;

  constructor(scope: Construct, id: string, props: RestoreChecklistProps) {
    super(scope, id);
    this.fn = props.function;

    // A failed step's {Error, Cause} is under run.results.<step>; the report runs, then the execution fails.
    this.recordFailure = new sfn.Pass(this, 'RecordFailure', { result: sfn.Result.fromBoolean(true), resultPath: '$.failed' });
    const reportInput = this.reportInput();
    this.recordFailure.next(reportInput);

    // Direct invocations (payloadResponseOnly) put the function's own answer under
    // run.results.<step>; their input is a payload made beforehand by a Pass state.
    const validate = this.step('Validate', 'validate');
    const restore = this.step('Restore', 'restore');
    const poll = this.step('Poll', 'wait');
    const rowCounts = this.step('RowCounts', 'rowCounts');
    const analyze = this.step('Analyze', 'analyze', ANALYZE_RETRY);
    const connectivity = this.step('Connectivity', 'connectivity');
    const smoke = this.step('Smoke', 'smoke');
    const cutOver = this.step('CutOver', 'cutOver');
    const rollback = this.step('Rollback', 'rollback');

    // The typed input, untouched, under `request`; payloads of the steps that need nothing else.
    const init = new sfn.CustomState(this, 'Init', {
      stateJson: {
        Type: 'Pass',
        Parameters: {
          'request.$': '$',
          // The report's own input, filled in as the steps answer: each under run.results.<step>.
          // (The report names its S3 key after the execution's start.)
          run: { action: 'report', 'startedAt.$': '$$.Execution.StartTime', results: {} },
          polling: { count: 0 },
          payloads: {
            'validate.$': payload('$', { action: 'validate' }),
            'restore.$': payload('$', { action: 'restore' }),
            'wait.$': payload('$', { action: 'wait' }),
            // Defaults first, the typed input over them.
            'rollbackInput.$': `States.JsonMerge(${literal(ROLLBACK_DEFAULTS)}, $, false)`,
          },
        },
      },
    });
    // The function takes only the fields it knows: a rollback's request is the three it needs, without "rollback".
    const rollbackField = (name: string) => ({ [`${name}.$`]: `$.payloads.rollbackInput.${name}` });
    const rollbackRequest = Object.assign({}, ...Object.keys(ROLLBACK_DEFAULTS).map(rollbackField));
    const rollbackInput = new sfn.CustomState(this, 'RollbackInput', {
      stateJson: {
        Type: 'Pass',
        Parameters: {
          request: rollbackRequest,
          'run.$': '$.run',
          payloads: { rollback: { action: 'rollback', ...rollbackRequest } },
        },
      },
    });
    rollbackInput.next(rollback);

    const waitForRestore = new sfn.Wait(this, 'WaitForRestore', { time: sfn.WaitTime.duration(Duration.seconds(POLL_SECONDS)) });
    const countPoll = new sfn.Pass(this, 'CountPoll', {
      parameters: { 'count.$': 'States.MathAdd($.polling.count, 1)' },
      resultPath: '$.polling',
    });
    // The last poll's answer goes into the cause, so the report says what RDS last said.
    const notAvailable = new sfn.Pass(this, 'NotAvailable', {
      parameters: {
        Error: 'RestoreNotAvailable',
        'Cause.$': `States.Format('the restored instance was not available after ${MAX_POLLS} polls ${POLL_SECONDS} s apart; ` +
          'it is left as it is (check it in the RDS console, then start the checklist again: restore finds it); ' +
          'last poll: {}\', States.JsonToString($.run.results.wait))',
      },
      resultPath: '$.run.results.wait',
    });
    notAvailable.next(this.recordFailure);
    // The post-restore steps get the last poll's answer (status, endpoint) as `restore`.
    const restored = new sfn.Pass(this, 'Restored', { inputPath: '$.run.results.wait', resultPath: '$.request.restore' });
    const checklist = new sfn.CustomState(this, 'Checklist', {
      stateJson: {
        Type: 'Pass',
        Parameters: {
          'rowCounts.$': payload('$.request', { action: 'row-counts' }),
          'analyze.$': payload('$.request', { action: 'analyze' }),
          'connectivity.$': payload('$.request', { action: 'connectivity' }),
          'smoke.$': payload('$.request', { action: 'smoke' }),
          'cutOver.$': payload('$.request', { action: 'cut-over', checks: CHECKS_PASSED }),
        },
        ResultPath: '$.payloads',
      },
    });

    const available = new sfn.Choice(this, 'Available?')
      .when(isTrue('$.run.results.wait.available'), restored)
      .when(sfn.Condition.numberGreaterThanEquals('$.polling.count', MAX_POLLS), notAvailable)
      .otherwise(waitForRestore);

    // A dry run has nothing to wait for: restore said what it would do; straight to the report.
    const dryRun = new sfn.Choice(this, 'DryRun?')
      .when(isTrue('$.request.dryRun'), reportInput)
      .otherwise(waitForRestore);
    // Cut-over only when asked; the function refuses it too unless every check passed.
    const wantCutOver = new sfn.Choice(this, 'CutOver?')
      .when(isTrue('$.request.cutOver'), cutOver)
      .otherwise(reportInput);
    // Rules in order: the boolean test only sees a rollback that is present.
    const invalidInput = new sfn.Fail(this, 'InvalidInput', { error: 'InvalidInput', cause: INPUT_HELP });
    const entry = new sfn.Choice(this, 'CheckInput')
      .when(sfn.Condition.or(...RESERVED_FIELDS.map((f) => sfn.Condition.isPresent(`$.request.${f}`))), invalidInput)
      .when(isTrue('$.request.rollback'), rollbackInput)
      // "rollback": false (or "yes") is a slip: the function does not know the field.
      .when(sfn.Condition.isPresent('$.request.rollback'), invalidInput)
      .otherwise(validate);

    init.next(entry);
    validate.next(restore);
    restore.next(dryRun);
    waitForRestore.next(poll);
    poll.next(countPoll);
    countPoll.next(available);
    restored.next(checklist);
    checklist.next(rowCounts);
    rowCounts.next(analyze);
    analyze.next(connectivity);
    connectivity.next(smoke);
    smoke.next(wantCutOver);
    cutOver.next(reportInput);
    rollback.next(reportInput);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-restore-checklist`,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(init),
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: 'pgsteward point-in-time restore and the post-restore checklist, then a report; or rollback of a cut-over',
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: false,
    });
    this.acknowledge();
  }

  /** One action of the function: payload from `$.payloads.<key>`, answer (or error) to `$.run.results.<key>`. */
  private step(id: string, key: string, retry = STEP_RETRY): tasks.LambdaInvoke {
    const task = new tasks.LambdaInvoke(this, id, {
      lambdaFunction: this.fn,
      payloadResponseOnly: true,
      inputPath: `$.payloads.${key}`,
      resultPath: `$.run.results.${key}`,
      // Our own retriers below (CDK's default retries Lambda errors after which the function may have run).
      retryOnServiceExceptions: false,
    });
    task.addRetry({ errors: [RETRYABLE], ...retry });
    task.addRetry({ errors: [THROTTLED], interval: Duration.seconds(2), maxAttempts: 6, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
    // CheckFailed, InvalidInput, Unsafe, NotFound, Internal, timeouts, exhausted retries: recorded, then the report.
    task.addCatch(this.recordFailure, { errors: [sfn.Errors.ALL], resultPath: `$.run.results.${key}` });
    return task;
  }

  /** The report gets the execution input plus every step's result, and runs on every path. */
  private reportInput(): sfn.IChainable {
    const input = new sfn.CustomState(this, 'ReportInput', {
      stateJson: {
        Type: 'Pass',
        Parameters: {
          'report.$': 'States.JsonMerge($.run, $.request, false)',
        },
        ResultPath: '$.payloads',
      },
    });
    const report = new tasks.LambdaInvoke(this, 'Report', {
      lambdaFunction: this.fn,
      payloadResponseOnly: true,
      inputPath: '$.payloads.report',
      resultPath: '$.report',
      retryOnServiceExceptions: false,
    });
    report.addRetry({ errors: [RETRYABLE], ...STEP_RETRY });
    report.addRetry({ errors: [THROTTLED], interval: Duration.seconds(2), maxAttempts: 6, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
    const reportFailed = new sfn.Fail(this, 'ReportFailed', { errorPath: '$.reportError.Error', causePath: '$.reportError.Cause' });
    report.addCatch(reportFailed, { errors: [sfn.Errors.ALL], resultPath: '$.reportError' });

    const outcome = new sfn.Choice(this, 'Outcome?')
      .when(sfn.Condition.isPresent('$.failed'), new sfn.Fail(this, 'ChecklistFailed', {
        error: 'ChecklistFailed',
        cause: 'a step failed or the restore never became available: its Error and Cause are under run.results.<step> ' +
          'in the execution output and in the report; nothing after it ran',
      }))
      .otherwise(new sfn.Succeed(this, 'Done'));
    input.next(report).next(outcome);
    return input;
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
        reason: 'lambda:InvokeFunction on the pitr-restore function and its versions/aliases (the ARN:* form CDK grants); no other function',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'CloudWatch Logs delivery actions (logs:CreateLogDelivery, PutResourcePolicy, DescribeLogGroups, ...) that ' +
          'Step Functions logging needs do not support resource-level permissions',
      },
    );
  }
}
