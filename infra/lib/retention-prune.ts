import { Aws, CfnOutput, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { ARCHIVE_PREFIX, BACKUP_PREFIX, BackupBucket, NONCURRENT_DAYS } from './backup-bucket';
import type { PgstewardConfig } from './config';
import { CA_BUNDLE_FILE, findingArn, rustFunction } from './function';
import type { Network } from './network';
import { MANAGED_TAG, pruneBucketStatements, pruneRdsStatements, SCRATCH_TAG } from './retention-prune-iam';

export interface RetentionPruneProps {
  readonly config: PgstewardConfig;
  readonly network: Network;
  /** The snapshot task's bucket: its dumps are pruned, and row archives are written next to them. */
  readonly backups: BackupBucket;
}

/** Daily after the backup window (02:00 snapshot, 02:30 dump) and the 03:00 vacuum sweep. */
export const PRUNE_SCHEDULE = {
  cron: 'cron(0 4 * * ? *)',
  // Row deletes load the database: a run more than an hour late would drift towards business hours.
  maxEventAge: Duration.hours(1),
  description: 'pgsteward daily retention prune (snapshots, dumps, old rows, scratch resources), 04:00 UTC',
};

/**
 * The retention-prune function: GFS retention of managed snapshots (and their
 * copies) and S3 dumps, archive-then-delete of old rows, and removal of scratch
 * instances the verification drill left behind; daily, and on demand with dryRun.
 */
export class RetentionPrune extends Construct {
  readonly function: lambda.Function;
  readonly schedule: scheduler.Schedule;
  private readonly config: PgstewardConfig;
  private readonly backups: BackupBucket;

  constructor(scope: Construct, id: string, props: RetentionPruneProps) {
    super(scope, id);
    const { config, backups } = props;
    this.config = config;
    this.backups = backups;

    this.function = rustFunction(this, 'Function', {
      binary: 'retention-prune',
      description: `pgsteward retention of ${config.dbIdentifier}: GFS prune of snapshots and dumps, row archives, scratch cleanup`,
      config,
      network: props.network,
      // Archives are streamed to S3 in parts, never held whole.
      memorySize: 256,
      // Lambda's maximum; the function stops before its deadline and returns a continuation.
      timeout: Duration.minutes(15),
      // Archiving rows connects to PostgreSQL.
      needsCaBundle: true,
      environment: this.environment(),
    });

    secretsmanager.Secret.fromSecretCompleteArn(this, 'DbSecret', config.dbSecretArn).grantRead(this.function);
    events.EventBus.fromEventBusName(this, 'ReportBus', config.eventBusName).grantPutEventsTo(this.function);
    const statements = [
      ...pruneRdsStatements(Stack.of(this), config.copyDestinations),
      ...pruneBucketStatements(backups.bucket, backups.key),
    ];
    for (const s of statements) this.function.addToRolePolicy(s);
    this.acknowledgeRole();

    this.schedule = this.daily();

    new CfnOutput(this, 'FunctionName', {
      value: this.function.functionName,
      description: 'Invoke with {"dryRun":true} to see what the next prune would delete and archive',
    });
  }

  /** Optional settings reach the function only when configured: it has its own defaults. */
  private environment(): Record<string, string> {
    const c = this.config;
    return {
      PGSTEWARD_DB_IDENTIFIER: c.dbIdentifier,
      PGSTEWARD_DB_SECRET_ARN: c.dbSecretArn,
      PGSTEWARD_CA_BUNDLE: `/var/task/${CA_BUNDLE_FILE}`,
      PGSTEWARD_EVENT_BUS: c.eventBusName,
      PGSTEWARD_SNAPSHOT_SOURCE: c.snapshotSource,
      PGSTEWARD_BACKUP_BUCKET: this.backups.bucket.bucketName,
      PGSTEWARD_BACKUP_PREFIX: BACKUP_PREFIX,
      PGSTEWARD_ARCHIVE_PREFIX: ARCHIVE_PREFIX,
      ...(c.backupKmsKeyArn ? { PGSTEWARD_BACKUP_KMS_KEY_ARN: c.backupKmsKeyArn } : {}),
      // The snapshot function's JSON: copies in those Regions are pruned by the same policy.
      ...(c.copyDestinations.length > 0 ? { PGSTEWARD_COPY_DESTINATIONS: JSON.stringify(c.copyDestinations) } : {}),
      ...(c.retentionPolicy ? { PGSTEWARD_RETENTION_POLICY: JSON.stringify(c.retentionPolicy) } : {}),
      ...(c.archiveRules ? { PGSTEWARD_ARCHIVE_RULES: JSON.stringify(c.archiveRules) } : {}),
      ...(c.scratchMaxAgeHours !== undefined ? { PGSTEWARD_SCRATCH_MAX_AGE_HOURS: String(c.scratchMaxAgeHours) } : {}),
    };
  }

  private daily(): scheduler.Schedule {
    // Our own role, acknowledged here; aws:SourceAccount guards against the confused-deputy problem.
    const role = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'EventBridge Scheduler invokes the pgsteward retention-prune function',
    });
    const schedule = new scheduler.Schedule(this, 'Schedule', {
      schedule: scheduler.ScheduleExpression.expression(PRUNE_SCHEDULE.cron),
      description: PRUNE_SCHEDULE.description,
      target: new schedulerTargets.LambdaInvoke(this.function, {
        role,
        input: scheduler.ScheduleTargetInput.fromObject({
          // Substituted by Scheduler: <aws.scheduler.scheduled-time>; retention ages are measured from it.
          scheduledTime: scheduler.ContextAttribute.scheduledTime,
          dryRun: false,
        }),
        maxEventAge: PRUNE_SCHEDULE.maxEventAge,
        retryAttempts: 3,
      }),
    });
    const fnId = Stack.of(this).resolve((this.function.node.defaultChild as lambda.CfnFunction).logicalId);
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${fnId}.Arn>:*]`,
      reason: 'lambda:InvokeFunction on this one function and its versions/aliases (the ARN:* form grantInvoke adds); no other function',
    });
    return schedule;
  }

  private acknowledgeRole(): void {
    const stack = Stack.of(this);
    const bucketId = stack.resolve((this.backups.bucket.node.defaultChild as unknown as { logicalId: string }).logicalId);
    const regions = [undefined, ...this.config.copyDestinations.map((d) => d.region)];
    const rdsArn = (region: string | undefined, resource: string) => findingArn(this, 'rds', `${resource}:*`, region);
    Validations.of(this.function.role!).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'describing snapshots by source here and in the copy Regions, and instances and clusters to find scratch ' +
          'resources by tag, is authorized on every resource; these describes are read-only',
      },
      // Managed snapshots here and their copies: names are made at run time, the tag condition picks pgsteward's.
      ...regions.flatMap((region) => ['snapshot', 'cluster-snapshot'].map((kind) => ({
        id: `AwsSolutions-IAM5[Resource::${rdsArn(region, kind)}]`,
        reason: `rds delete on ${kind} in ${region ?? 'this Region'} is allowed only when the snapshot is tagged ${MANAGED_TAG}=true ` +
          '(aws:ResourceTag condition); unmanaged snapshots stay out of reach',
      }))),
      ...['db', 'cluster'].map((kind) => ({
        id: `AwsSolutions-IAM5[Resource::${rdsArn(undefined, kind)}]`,
        reason: `scratch ${kind} names come from the verification drill at run time; delete is allowed only when the ` +
          `resource is tagged ${SCRATCH_TAG}=true (aws:ResourceTag condition), never the production database`,
      })),
      {
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${BACKUP_PREFIX}/*]`,
        reason: `dump and manifest keys are made at run time; DeleteObject is limited to the ${BACKUP_PREFIX}/ prefix ` +
          `and versioning keeps deleted dumps recoverable for ${NONCURRENT_DAYS} days`,
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${ARCHIVE_PREFIX}/*]`,
        reason: `row archives are written and re-read under ${ARCHIVE_PREFIX}/<db>/ with keys made at run time; ` +
          'no delete is granted there',
      },
    );
  }
}
