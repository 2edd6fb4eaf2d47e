import { Aws, CfnOutput, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { BACKUP_PREFIX, type BackupBucket } from './backup-bucket';
import {
  DRILL_ACTIONS, drillBucketStatements, drillRdsStatements, SCRATCH_NAME_PREFIX, VERIFIED_MARKER_SUFFIX, VERIFY_REPORT_PREFIX,
} from './backup-verify-iam';
import type { PgstewardConfig } from './config';
import { CA_BUNDLE_FILE, findingArn, rustFunction } from './function';
import { METRIC_NAMESPACE } from './health-check-metrics';
import type { Network } from './network';
import type { RestorePlacement } from './pitr-restore';
import { MANAGED_TAG, SCRATCH_TAG } from './retention-prune-iam';
import { SNAPSHOT_NAME_PREFIX } from './snapshot-iam';
import { DRILL_INPUT_HELP, VerificationDrill } from './verification-drill';
import { drillIntervalHours } from './verify-config';

/** The report's EMF dimension (the contract's; the health check's metrics use `Database`). */
export const DRILL_DIMENSION = 'DBInstanceIdentifier';
/** Slack after a scheduled drill is due before its metrics count as late: a drill plus a retry takes hours, not a day. */
export const DRILL_GRACE_HOURS = 24;

export interface BackupVerifyProps {
  readonly config: PgstewardConfig;
  readonly network: Network;
  /** The snapshot task's bucket: dumps are read from it, verified markers and reports written to it. */
  readonly backups: BackupBucket;
  /** pitr-restore's subnet group and security groups: scratch copies are placed like restored copies. */
  readonly placement: RestorePlacement;
}

/**
 * The restore drill: the `backup-verify` function (one action per invocation), the
 * VerificationDrill state machine that drives it, a schedule that starts it (weekly by
 * default), and alarms on the metrics its report emits.
 */
export class BackupVerify extends Construct {
  readonly function: lambda.Function;
  readonly drill: VerificationDrill;
  readonly schedule: scheduler.Schedule;
  /** The latest drill failed (DrillPassed 0). */
  readonly drillFailedAlarm: cloudwatch.Alarm;
  /** The newest verified backup is older than the schedule allows (VerifiedBackupAgeHours). */
  readonly verifiedAgeAlarm: cloudwatch.Alarm;
  /** A drill execution failed without (or after) its report: the report step itself, or a failed drill. */
  readonly executionFailedAlarm: cloudwatch.Alarm;
  private readonly config: PgstewardConfig;
  private readonly backups: BackupBucket;

  constructor(scope: Construct, id: string, props: BackupVerifyProps) {
    super(scope, id);
    const { config, backups, placement } = props;
    this.config = config;
    this.backups = backups;

    this.function = rustFunction(this, 'Function', {
      binary: 'backup-verify',
      description: `pgsteward restore drill of ${config.dbIdentifier}: scratch restore, row counts, amcheck, RTO/RPO, teardown`,
      config,
      network: props.network,
      // The dump is hashed as it streams to pg_restore; row counts and amcheck run in the database.
      memorySize: 512,
      // Lambda's maximum: pg_restore of a dump and amcheck of every index take minutes.
      timeout: Duration.minutes(15),
      needsCaBundle: true,
      environment: this.environment(placement),
    });

    for (const [name, arn] of [['DbSecret', config.dbSecretArn], ['VerifySecret', config.verifySecretArn]] as const) {
      if (arn) secretsmanager.Secret.fromSecretCompleteArn(this, name, arn).grantRead(this.function);
    }
    events.EventBus.fromEventBusName(this, 'ReportBus', config.eventBusName).grantPutEventsTo(this.function);
    const statements = [
      ...drillRdsStatements(Stack.of(this), {
        dbIdentifier: config.dbIdentifier, source: config.snapshotSource, subnetGroup: placement.subnetGroup, kmsKeyArn: config.dbKmsKeyArn,
      }),
      ...drillBucketStatements(backups.bucket, backups.key),
    ];
    for (const s of statements) this.function.addToRolePolicy(s);
    this.acknowledgeRole();

    this.drill = new VerificationDrill(this, 'VerificationDrill', { function: this.function });
    this.schedule = this.scheduled();
    [this.drillFailedAlarm, this.verifiedAgeAlarm, this.executionFailedAlarm] = this.alarms();

    new CfnOutput(this, 'FunctionName', { value: this.function.functionName });
    new CfnOutput(this, 'VerificationDrillArn', {
      value: this.drill.stateMachine.stateMachineArn,
      description: `Start a drill by hand: ${DRILL_INPUT_HELP}`,
    });
  }

  /** The contract's variables; optional ones only when configured (the function has its own defaults). */
  private environment(placement: RestorePlacement): Record<string, string> {
    const c = this.config;
    return {
      PGSTEWARD_DB_IDENTIFIER: c.dbIdentifier,
      PGSTEWARD_DB_SECRET_ARN: c.dbSecretArn,
      PGSTEWARD_CA_BUNDLE: `/var/task/${CA_BUNDLE_FILE}`,
      PGSTEWARD_EVENT_BUS: c.eventBusName,
      PGSTEWARD_SNAPSHOT_SOURCE: c.snapshotSource,
      PGSTEWARD_BACKUP_BUCKET: this.backups.bucket.bucketName,
      PGSTEWARD_BACKUP_PREFIX: BACKUP_PREFIX,
      PGSTEWARD_RESTORE_SUBNET_GROUP: placement.subnetGroup,
      PGSTEWARD_RESTORE_SECURITY_GROUPS: placement.securityGroupIds.join(','),
      ...(c.verifySecretArn ? { PGSTEWARD_VERIFY_SECRET_ARN: c.verifySecretArn } : {}),
      ...(c.scratchInstanceClass ? { PGSTEWARD_SCRATCH_INSTANCE_CLASS: c.scratchInstanceClass } : {}),
      ...(c.rtoTargetMinutes !== undefined ? { PGSTEWARD_RTO_TARGET_MINUTES: String(c.rtoTargetMinutes) } : {}),
      ...(c.rpoTargetMinutes !== undefined ? { PGSTEWARD_RPO_TARGET_MINUTES: String(c.rpoTargetMinutes) } : {}),
      ...(c.smokeQueries ? { PGSTEWARD_SMOKE_QUERIES: JSON.stringify(c.smokeQueries) } : {}),
    };
  }

  private scheduled(): scheduler.Schedule {
    // Our own role: it may start this state machine only; aws:SourceAccount against the confused deputy.
    const role = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'EventBridge Scheduler starts the pgsteward verification drill',
    });
    return new scheduler.Schedule(this, 'Schedule', {
      schedule: scheduler.ScheduleExpression.expression(this.config.drillSchedule),
      description: `pgsteward ${this.config.drillKind} restore drill of ${this.config.dbIdentifier}, ${this.config.drillSchedule} (UTC)`,
      target: new schedulerTargets.StepFunctionsStartExecution(this.drill.stateMachine, {
        role,
        input: scheduler.ScheduleTargetInput.fromObject({
          kind: this.config.drillKind,
          pick: 'latest',
          // Substituted by Scheduler: the slot names the drill, so a repeated delivery finds its own scratch copy.
          scheduledTime: scheduler.ContextAttribute.scheduledTime,
          executionId: scheduler.ContextAttribute.executionId,
        }),
        // A drill late by more than a few hours would measure a stale backup; the next one comes anyway.
        maxEventAge: Duration.hours(6),
        retryAttempts: 3,
      }),
    });
  }

  /**
   * CloudWatch looks back at most 7 days (Period × EvaluationPeriods ≤ 604,800 s), so a
   * weekly drill cannot have a "no datapoint for 8 days" alarm: a sliding 7-day window
   * empties every week before the next drill passes. Instead the alarms keep the state of
   * the latest report (missing data is ignored between drills): it failed; the newest
   * verified backup is older than the schedule allows (drill interval + a day); and the
   * execution failed, which also catches a report that never ran.
   */
  private alarms(): [cloudwatch.Alarm, cloudwatch.Alarm, cloudwatch.Alarm] {
    const c = this.config;
    const metric = (metricName: string, statistic: string) => new cloudwatch.Metric({
      namespace: METRIC_NAMESPACE,
      metricName,
      dimensionsMap: { [DRILL_DIMENSION]: c.dbIdentifier },
      period: Duration.days(1),
      statistic,
    });
    const allowedHours = drillIntervalHours(c.drillSchedule) + DRILL_GRACE_HOURS;
    const failed = new cloudwatch.Alarm(this, 'DrillFailedAlarm', {
      alarmName: `pgsteward-${c.dbIdentifier}-DrillFailed`,
      alarmDescription: `pgsteward: the latest restore drill of ${c.dbIdentifier} failed (DrillPassed 0): the report under ` +
        `${VERIFY_REPORT_PREFIX}/ says which check; stays in ALARM until a drill passes`,
      metric: metric('DrillPassed', cloudwatch.Stats.MINIMUM),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    });
    const age = new cloudwatch.Alarm(this, 'VerifiedBackupAgeAlarm', {
      alarmName: `pgsteward-${c.dbIdentifier}-VerifiedBackupAgeHours`,
      alarmDescription: `pgsteward: the newest verified backup of ${c.dbIdentifier} is older than ${allowedHours} h ` +
        `(drill schedule ${c.drillSchedule} plus ${DRILL_GRACE_HOURS} h): no drill has passed for longer than the schedule allows`,
      metric: metric('VerifiedBackupAgeHours', cloudwatch.Stats.MAXIMUM),
      threshold: allowedHours,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    });
    const execution = new cloudwatch.Alarm(this, 'ExecutionFailedAlarm', {
      alarmName: `pgsteward-${c.dbIdentifier}-VerificationDrillFailed`,
      alarmDescription: `pgsteward: a VerificationDrill execution of ${c.dbIdentifier} failed (a failed drill, or a report that ` +
        'could not be written); see the execution\'s output',
      metric: this.drill.stateMachine.metricFailed({ period: Duration.days(1), statistic: cloudwatch.Stats.SUM }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    return [failed, age, execution];
  }

  private acknowledgeRole(): void {
    const c = this.config;
    const bucketId = Stack.of(this).resolve((this.backups.bucket.node.defaultChild as unknown as { logicalId: string }).logicalId);
    const a = DRILL_ACTIONS[c.snapshotSource];
    Validations.of(this.function.role!).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'describing snapshots to pick the latest, the scratch copy\'s status and endpoint, and tags by filter is ' +
          'authorized on every resource; these calls are read-only',
      },
      {
        id: `AwsSolutions-IAM5[Resource::${findingArn(this, 'rds', `${a.snapshot}:${SNAPSHOT_NAME_PREFIX}${c.dbIdentifier}-*`)}]`,
        reason: `the snapshot to test is picked at run time among this database's; restore from it and tagging it verified are ` +
          `allowed only when it is tagged ${MANAGED_TAG}=true, tags only with pgsteward: keys; no delete`,
      },
      ...a.scratch.map((kind) => ({
        id: `AwsSolutions-IAM5[Resource::${findingArn(this, 'rds', `${kind}:${SCRATCH_NAME_PREFIX}*`)}]`,
        reason: `the scratch ${kind} is named after the drill at run time; it must be created tagged ${SCRATCH_TAG}=true ` +
          `and only resources carrying that tag may be deleted`,
      })),
      {
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${BACKUP_PREFIX}/*]`,
        reason: `the dump and manifest to test are picked at run time; ListBucket and GetObject only, under ${BACKUP_PREFIX}/`,
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${BACKUP_PREFIX}/*${VERIFIED_MARKER_SUFFIX}]`,
        reason: `PutObject of the verified marker next to the dump that passed; no dump or manifest can be overwritten`,
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${VERIFY_REPORT_PREFIX}/*]`,
        reason: `drill report keys are made at run time (<db>/<drillId>.json and .txt); PutObject only, under ${VERIFY_REPORT_PREFIX}/`,
      },
    );
  }
}
