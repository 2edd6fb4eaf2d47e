import { Aws, CfnOutput, Duration, Stack, Validations } from 'aws-cdk-lib';
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
import {
  DATABASE_DIMENSION, HEALTH_CHECK_ALARMS, Level, METRIC_NAMESPACE, MetricAlarmSpec, REMEDIATION_METRIC, alarmName,
} from './health-check-metrics';
import type { Network } from './network';

export interface HealthCheckProps {
  readonly config: PgstewardConfig;
  readonly network: Network;
}

/** The schedule's request: a plain check (remediation only comes from an alarm). */
export const CHECK_INPUT = { action: 'check' };

/**
 * The health-check function: the runbook's monitoring queries every 5 minutes as
 * EMF metrics, a warning and a critical alarm per metric, and the idle-in-transaction
 * critical alarm routed back to the function to terminate those sessions.
 */
export class HealthCheck extends Construct {
  readonly function: lambda.Function;
  readonly alarms: Record<string, Record<Level, cloudwatch.Alarm>> = {};
  readonly remediationRule: events.Rule;

  constructor(scope: Construct, id: string, props: HealthCheckProps) {
    super(scope, id);
    const { config } = props;

    this.function = rustFunction(this, 'Function', {
      binary: 'health-check',
      description: `pgsteward health check of ${config.dbIdentifier}: metrics (EMF) and idle-in-transaction remediation`,
      config,
      network: props.network,
      memorySize: 128,
      timeout: Duration.seconds(60),
      needsCaBundle: true,
      environment: {
        PGSTEWARD_DB_IDENTIFIER: config.dbIdentifier,
        PGSTEWARD_DB_SECRET_ARN: config.dbSecretArn,
        // The RDS CA bundle is fetched at build time and copied next to `bootstrap`
        // in target/lambda/health-check/, so it lands in /var/task with the code.
        PGSTEWARD_CA_BUNDLE: `/var/task/${CA_BUNDLE_FILE}`,
        PGSTEWARD_EVENT_BUS: config.eventBusName,
      },
    });

    // Exactly the configured secret (GetSecretValue + DescribeSecret on its complete ARN).
    secretsmanager.Secret.fromSecretCompleteArn(this, 'DbSecret', config.dbSecretArn).grantRead(this.function);
    // Run reports go to the configured bus only.
    events.EventBus.fromEventBusName(this, 'ReportBus', config.eventBusName).grantPutEventsTo(this.function);

    this.schedule();
    for (const spec of HEALTH_CHECK_ALARMS) {
      this.alarms[spec.metricName] = {
        warning: this.alarm(config.dbIdentifier, spec, 'warning'),
        critical: this.alarm(config.dbIdentifier, spec, 'critical'),
      };
    }
    this.remediationRule = this.remediation(this.alarms[REMEDIATION_METRIC].critical);

    new CfnOutput(this, 'FunctionName', { value: this.function.functionName });
  }

  private schedule(): void {
    // Our own role (not LambdaInvoke's shared one) so its finding is acknowledged
    // here; aws:SourceAccount guards against the confused-deputy problem.
    const role = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'EventBridge Scheduler invokes the pgsteward health check',
    });
    const target = new schedulerTargets.LambdaInvoke(this.function, {
      role,
      input: scheduler.ScheduleTargetInput.fromObject(CHECK_INPUT),
      // A check is only worth running near its slot; the next one comes in 5 minutes.
      maxEventAge: Duration.minutes(5),
      retryAttempts: 2,
    });
    new scheduler.Schedule(this, 'Schedule', {
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(5)),
      target,
      description: 'pgsteward health check every 5 minutes',
    });
    const fnLogicalId = Stack.of(this).resolve((this.function.node.defaultChild as lambda.CfnFunction).logicalId);
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${fnLogicalId}.Arn>:*]`,
      reason: 'lambda:InvokeFunction on this one function and its versions/aliases (the ARN:* form grantInvoke adds); no other function',
    });
  }

  private alarm(dbIdentifier: string, spec: MetricAlarmSpec, level: Level): cloudwatch.Alarm {
    const less = spec.comparison === cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD;
    const metric = new cloudwatch.Metric({
      namespace: METRIC_NAMESPACE,
      metricName: spec.metricName,
      dimensionsMap: { [DATABASE_DIMENSION]: dbIdentifier },
      period: Duration.minutes(5),
      // The worst value in the period: a remediation run can add a second datapoint.
      statistic: less ? cloudwatch.Stats.MINIMUM : cloudwatch.Stats.MAXIMUM,
      // No unit filter: an alarm with a unit sees only datapoints of exactly that
      // unit, so a unit mismatch in EMF would silently look like missing data.
    });
    const threshold = level === 'warning' ? spec.warning : spec.critical;
    const sign = less ? '<' : '>';
    return new cloudwatch.Alarm(this, `${spec.metricName}-${level}`, {
      alarmName: alarmName(dbIdentifier, spec.metricName, level),
      alarmDescription: `pgsteward ${level}: ${spec.metricName} ${sign} ${threshold} on ${dbIdentifier} (runbook: ${spec.runbook})`,
      metric,
      threshold,
      comparisonOperator: spec.comparison,
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      // Missing is missing: no replica means no lag datapoint, not a breach.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  private remediation(alarm: cloudwatch.Alarm): events.Rule {
    // Alarm state changes are delivered to the account's default bus, whatever
    // bus the reports go to.
    const rule = new events.Rule(this, 'RemediationRule', {
      description: `${alarm.node.id} in ALARM -> health check terminates idle-in-transaction sessions`,
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        resources: [alarm.alarmArn],
        detail: { state: { value: ['ALARM'] } },
      },
    });
    // The raw event (no input transformer): the function's envelope parses alarm events.
    rule.addTarget(new eventsTargets.LambdaFunction(this.function, {
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
    }));
    return rule;
  }
}
