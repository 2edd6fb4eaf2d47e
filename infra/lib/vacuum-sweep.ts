import { ArnFormat, Aws, CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { PgstewardConfig } from './config';
import { CA_BUNDLE_FILE, rustFunction } from './function';
import { MaintenanceWindow } from './maintenance-window';
import type { Network } from './network';

export interface VacuumSweepProps {
  readonly config: PgstewardConfig;
  readonly network: Network;
  /**
   * An alarm whose ALARM state asks for a standard sweep (the health check's
   * DeadTupleRatioWorst critical alarm); none: no such rule.
   */
  readonly deadTupleAlarm?: cloudwatch.IAlarm;
}

/** A schedule that starts the MaintenanceWindow state machine with `input`. */
export interface WindowSchedule {
  readonly id: string;
  /** EventBridge Scheduler cron expression, UTC. */
  readonly cron: string;
  readonly input: { readonly mode: string; readonly windowMinutes: number };
  readonly description: string;
}

/** The seeds' maintenance schedule (all UTC). */
export const WINDOW_SCHEDULES: readonly WindowSchedule[] = [
  {
    id: 'NightlySchedule',
    cron: 'cron(0 3 * * ? *)',
    input: { mode: 'standard', windowMinutes: 60 },
    description: 'pgsteward nightly vacuum sweep (VACUUM ANALYZE), 03:00-04:00 UTC',
  },
  {
    id: 'MonthlyReindexSchedule',
    cron: 'cron(0 4 ? * SUN#1 *)',
    input: { mode: 'reindex', windowMinutes: 120 },
    description: 'pgsteward monthly REINDEX CONCURRENTLY of bloated indexes, first Sunday 04:00-06:00 UTC',
  },
];

/**
 * Transaction-ID wraparound: RDS's own metric, so it works without the health
 * check. PostgreSQL stops writes near 2^31 (~2.1e9); at 1e9 a freeze sweep runs.
 */
export const XID_ALARM = {
  namespace: 'AWS/RDS',
  metricName: 'MaximumUsedTransactionIDs',
  threshold: 1_000_000_000,
};

/**
 * The vacuum-sweep function: VACUUM (ANALYZE), freeze, VACUUM FULL (only inside
 * the maintenance window) and REINDEX CONCURRENTLY, run by the MaintenanceWindow
 * state machine on schedules, and directly on the wraparound and dead-tuple alarms.
 */
export class VacuumSweep extends Construct {
  readonly function: lambda.Function;
  readonly maintenanceWindow: MaintenanceWindow;
  readonly xidAlarm: cloudwatch.Alarm;
  readonly schedules: Record<string, scheduler.Schedule> = {};
  readonly freezeRule: events.Rule;
  readonly deadTupleRule?: events.Rule;

  constructor(scope: Construct, id: string, props: VacuumSweepProps) {
    super(scope, id);
    const { config } = props;

    this.function = rustFunction(this, 'Function', {
      binary: 'vacuum-sweep',
      description: `pgsteward vacuum sweep of ${config.dbIdentifier}: VACUUM/ANALYZE/freeze/FULL/REINDEX with continuation`,
      config,
      network: props.network,
      memorySize: 256,
      // Lambda's maximum; the function stops before its deadline and returns a continuation.
      timeout: Duration.minutes(15),
      needsCaBundle: true,
      environment: {
        PGSTEWARD_DB_IDENTIFIER: config.dbIdentifier,
        PGSTEWARD_DB_SECRET_ARN: config.dbSecretArn,
        PGSTEWARD_CA_BUNDLE: `/var/task/${CA_BUNDLE_FILE}`,
        PGSTEWARD_EVENT_BUS: config.eventBusName,
        PGSTEWARD_MAINTENANCE_WINDOW: config.maintenanceWindow,
        PGSTEWARD_VACUUM_JOBS: String(config.vacuumJobs),
      },
    });

    secretsmanager.Secret.fromSecretCompleteArn(this, 'DbSecret', config.dbSecretArn).grantRead(this.function);
    events.EventBus.fromEventBusName(this, 'ReportBus', config.eventBusName).grantPutEventsTo(this.function);
    // Allocated storage, to check free space before VACUUM FULL; this instance only.
    this.function.addToRolePolicy(new iam.PolicyStatement({
      actions: ['rds:DescribeDBInstances'],
      resources: [Stack.of(this).formatArn({
        service: 'rds', resource: 'db', resourceName: config.dbIdentifier, arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      })],
    }));

    this.maintenanceWindow = new MaintenanceWindow(this, 'MaintenanceWindow', { function: this.function });
    this.scheduleWindows();

    this.xidAlarm = this.wraparoundAlarm(config.dbIdentifier);
    this.freezeRule = this.alarmRule('FreezeRule', this.xidAlarm, 'freeze sweep');
    if (props.deadTupleAlarm) {
      this.deadTupleRule = this.alarmRule('DeadTupleRule', props.deadTupleAlarm, 'standard sweep');
    }

    new CfnOutput(this, 'FunctionName', { value: this.function.functionName });
    new CfnOutput(this, 'MaintenanceWindowArn', {
      value: this.maintenanceWindow.stateMachine.stateMachineArn,
      description: 'Start an execution with {"mode":"standard","windowMinutes":60} (modes: standard, analyze, freeze, full, reindex)',
    });
  }

  private scheduleWindows(): void {
    const stateMachine = this.maintenanceWindow.stateMachine;
    // One role for both schedules: states:StartExecution on this state machine only.
    const role = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'EventBridge Scheduler starts the pgsteward MaintenanceWindow state machine',
    });
    for (const spec of WINDOW_SCHEDULES) {
      this.schedules[spec.id] = new scheduler.Schedule(this, spec.id, {
        schedule: scheduler.ScheduleExpression.expression(spec.cron),
        description: spec.description,
        target: new schedulerTargets.StepFunctionsStartExecution(stateMachine, {
          role,
          input: scheduler.ScheduleTargetInput.fromObject(spec.input),
          // The window starts when the execution does: a late start would shift it
          // into business hours, so give up on a start more than 15 minutes late.
          maxEventAge: Duration.minutes(15),
          retryAttempts: 3,
        }),
      });
    }
  }

  private wraparoundAlarm(dbIdentifier: string): cloudwatch.Alarm {
    return new cloudwatch.Alarm(this, 'MaximumUsedTransactionIDs', {
      alarmName: `pgsteward-${dbIdentifier}-MaximumUsedTransactionIDs`,
      alarmDescription: `pgsteward: transaction ID age > ${XID_ALARM.threshold} on ${dbIdentifier} ` +
        '(wraparound stops writes at ~2.1e9) -> freeze sweep',
      metric: new cloudwatch.Metric({
        namespace: XID_ALARM.namespace,
        metricName: XID_ALARM.metricName,
        dimensionsMap: { DBInstanceIdentifier: dbIdentifier },
        statistic: cloudwatch.Stats.MAXIMUM,
        period: Duration.minutes(5),
      }),
      threshold: XID_ALARM.threshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      // Missing data stays INSUFFICIENT_DATA (the default): RDS always publishes
      // this metric, so its absence means a wrong identifier, not a healthy database.
    });
  }

  /** Alarm state changes arrive on the default bus; the raw event goes to the function. */
  private alarmRule(id: string, alarm: cloudwatch.IAlarm, what: string): events.Rule {
    const rule = new events.Rule(this, id, {
      description: `${alarm.node.id} in ALARM -> vacuum sweep (${what})`,
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        resources: [alarm.alarmArn],
        detail: { state: { value: ['ALARM'] } },
      },
    });
    // No input transformer: the function's envelope maps the alarm to its mode.
    rule.addTarget(new eventsTargets.LambdaFunction(this.function, {
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
    }));
    return rule;
  }
}
