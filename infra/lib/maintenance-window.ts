import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

/**
 * Sweeps per execution are at most MAX_ITERATIONS + 1: the loop continues while
 * `iteration < MAX_ITERATIONS`, and the first sweep runs at iteration 0. With the
 * 15-minute function timeout that bounds an execution to ~5 h of sweeping.
 */
export const MAX_ITERATIONS = 20;

/** The error types (Lambda errorType) Step Functions retries; everything else is caught. */
export const RETRYABLE_ERRORS = ['Retryable'];
/** Lambda service errors of the Invoke call itself (not of the function): safe to retry. */
export const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.ClientExecutionTimeoutException',
];

/** What a person types in the console to start a run; also the schedules' input. */
export const INPUT_HELP =
  'input must be {"mode": "standard"|"analyze"|"freeze"|"full"|"reindex", "windowMinutes": <number>}, ' +
  'e.g. {"mode":"standard","windowMinutes":60}; the state machine has no dryRun: for a dry run, invoke the ' +
  'vacuum-sweep function with {"action":"sweep","mode":"standard","dryRun":true}';

const not = (condition: sfn.Condition) => sfn.Condition.not(condition);

export interface MaintenanceWindowProps {
  readonly function: lambda.IFunction;
}

/**
 * MaintenanceWindow: the vacuum sweep again and again with the continuation it
 * returned, until it returns none, the window closes (the function says so), or
 * MAX_ITERATIONS is reached. Routing only: the function decides what to do and
 * when the window is over; the state machine never computes anything but the
 * iteration count.
 */
export class MaintenanceWindow extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: MaintenanceWindowProps) {
    super(scope, id);

    const invalidInput = new sfn.Fail(this, 'InvalidInput', { error: 'InvalidInput', cause: INPUT_HELP });

    // Console users type the input: a missing or mistyped field fails here, saying
    // what to send, instead of as a JSONPath error in Init. Rules are evaluated in
    // order, so the type tests only see fields that are present.
    // `Not(IsX: true)` rather than CDK's isNotX (`IsX: false`): the same in Step
    // Functions, and aws-local-stepfunctions 3.0.0 treats `IsX: false` as never true.
    const checkInput = new sfn.Choice(this, 'CheckInput')
      .when(sfn.Condition.or(
        not(sfn.Condition.isPresent('$.mode')),
        not(sfn.Condition.isPresent('$.windowMinutes')),
      ), invalidInput)
      .when(sfn.Condition.or(
        not(sfn.Condition.isString('$.mode')),
        not(sfn.Condition.isNumeric('$.windowMinutes')),
      ), invalidInput)
      // Init would drop it silently, and `{"mode":"full","dryRun":true}` would run VACUUM FULL for real.
      .when(sfn.Condition.isPresent('$.dryRun'), invalidInput);

    // A CustomState, not sfn.Pass: Pass drops `continuation: null` from its
    // Parameters, and Sweep's `$.continuation` must exist (a missing path is a
    // States.Runtime error that no Catch sees).
    const init = new sfn.CustomState(this, 'Init', {
      stateJson: {
        Type: 'Pass',
        Parameters: {
          'mode.$': '$.mode',
          'windowMinutes.$': '$.windowMinutes',
          continuation: null,
          iteration: 0,
        },
      },
    });

    const sweep = new tasks.LambdaInvoke(this, 'Sweep', {
      lambdaFunction: props.function,
      payload: sfn.TaskInput.fromObject({
        action: 'sweep',
        mode: sfn.JsonPath.stringAt('$.mode'),
        windowMinutes: sfn.JsonPath.numberAt('$.windowMinutes'),
        // The window is the execution's: every iteration measures from its start.
        windowStartedAt: sfn.JsonPath.stringAt('$$.Execution.StartTime'),
        continuation: sfn.JsonPath.objectAt('$.continuation'),
      }),
      // Our own retriers below (CDK's default lacks TooManyRequests).
      retryOnServiceExceptions: false,
      // Only what routing needs; the full report goes to the event bus and the logs.
      resultSelector: {
        'continuation.$': '$.Payload.continuation',
        'windowOpen.$': '$.Payload.details.windowOpen',
      },
      // The state keeps mode, windowMinutes, iteration; the sweep's answer sits beside them.
      resultPath: '$.sweep',
    });
    sweep.addRetry({
      errors: RETRYABLE_ERRORS,
      interval: Duration.seconds(30),
      maxAttempts: 3,
      backoffRate: 2,
    });
    sweep.addRetry({
      errors: LAMBDA_SERVICE_ERRORS,
      interval: Duration.seconds(2),
      maxAttempts: 6,
      backoffRate: 2,
      jitterStrategy: sfn.JitterType.FULL,
    });
    // InvalidInput, InvalidConfig, Unsafe, NotFound, Internal, timeouts, exhausted retries.
    const sweepFailed = new sfn.Fail(this, 'SweepFailed', { errorPath: '$.error.Error', causePath: '$.error.Cause' });
    sweep.addCatch(sweepFailed, { errors: [sfn.Errors.ALL], resultPath: '$.error' });

    const nextIteration = new sfn.Pass(this, 'NextIteration', {
      parameters: {
        'mode.$': '$.mode',
        'windowMinutes.$': '$.windowMinutes',
        'continuation.$': '$.sweep.continuation',
        'iteration.$': 'States.MathAdd($.iteration, 1)',
      },
    });
    nextIteration.next(sweep);

    const moreWork = new sfn.Choice(this, 'MoreWork?')
      .when(sfn.Condition.and(
        not(sfn.Condition.isNull('$.sweep.continuation')),
        sfn.Condition.booleanEquals('$.sweep.windowOpen', true),
        sfn.Condition.numberLessThan('$.iteration', MAX_ITERATIONS),
      ), nextIteration)
      // Done either way: a continuation left at the end shows in the output.
      .otherwise(new sfn.Succeed(this, 'Done'));

    checkInput.otherwise(init.next(sweep).next(moreWork));

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      // The vended-logs prefix keeps Step Functions' log resource policy small.
      logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-maintenance-window`,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(checkInput),
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: 'pgsteward vacuum sweep with continuation until done, the window closes, or the iteration limit',
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: false,
    });

    this.acknowledge(props.function);
  }

  private acknowledge(fn: lambda.IFunction): void {
    Validations.of(this.stateMachine).acknowledge({
      id: 'AwsSolutions-SF2',
      reason: 'one Lambda task in a loop: the execution history and ALL-level logs with execution data show every step, ' +
        'and X-Ray would need account-wide xray:Put* grants for no extra insight',
    });
    const fnLogicalId = Stack.of(this).resolve((fn.node.defaultChild as lambda.CfnFunction).logicalId);
    Validations.of(this.stateMachine.role).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::<${fnLogicalId}.Arn>:*]`,
        reason: 'lambda:InvokeFunction on the vacuum-sweep function and its versions/aliases (the ARN:* form CDK grants); no other function',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'CloudWatch Logs delivery actions (logs:CreateLogDelivery, PutResourcePolicy, DescribeLogGroups, ...) that ' +
          'Step Functions logging needs do not support resource-level permissions',
      },
    );
  }
}
