import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { BACKUP_PREFIX, BackupBucket } from './backup-bucket';
import type { PgstewardConfig } from './config';
import { acknowledgeRoleFindings, CA_BUNDLE_FILE, findingArn, rustFunction } from './function';
import { LOGICAL_BACKUP_INPUT_HELP, LogicalBackup } from './logical-backup';
import type { Network } from './network';
import { COPY_FINISHED_EVENT_IDS, SNAPSHOT_CREATED_EVENT_IDS, snapshotEventPattern } from './snapshot-events';
import { RDS_ACTIONS, SNAPSHOT_NAME_PREFIX, snapshotStatements } from './snapshot-iam';
import { PG_DUMP, stageSnapshotImage, warnAboutImage } from './snapshot-image';

export interface SnapshotProps {
  readonly config: PgstewardConfig;
  readonly network: Network;
}

/** A daily request from EventBridge Scheduler; the scheduled time names the backup (idempotent redelivery). */
export interface SnapshotSchedule {
  readonly id: string;
  readonly cron: string;
  readonly action: 'snapshot' | 'logical-backup';
  /** Give up on a delivery this late: the slot belongs to the 02:00-03:00 UTC backup window. */
  readonly maxEventAge: Duration;
  readonly description: string;
}

/** Seed 000's backup window: RDS snapshot at 02:00 UTC, then the pg_dump to S3 at 02:30 UTC. */
export const SNAPSHOT_SCHEDULES: readonly SnapshotSchedule[] = [
  {
    id: 'SnapshotSchedule', cron: 'cron(0 2 * * ? *)', action: 'snapshot', maxEventAge: Duration.hours(1),
    description: 'pgsteward daily RDS snapshot, 02:00 UTC',
  },
  {
    id: 'LogicalBackupSchedule', cron: 'cron(30 2 * * ? *)', action: 'logical-backup', maxEventAge: Duration.minutes(30),
    description: 'pgsteward daily logical backup (pg_dump -Fc to S3), 02:30 UTC',
  },
];

/**
 * The snapshot task: RDS/Aurora snapshots and their cross-Region/account copies
 * (the `snapshot` zip function), and logical backups to S3 (the same binary with
 * pg_dump as the `logical-backup` image function, and as a Fargate task run by
 * the LogicalBackup state machine for databases that need more than 15 minutes).
 */
export class Snapshot extends Construct {
  readonly function: lambda.Function;
  readonly logicalBackupFunction: lambda.DockerImageFunction;
  readonly backups: BackupBucket;
  readonly logicalBackup: LogicalBackup;
  readonly schedules: Record<string, scheduler.Schedule> = {};
  readonly copyRule?: events.Rule;
  private readonly config: PgstewardConfig;

  constructor(scope: Construct, id: string, props: SnapshotProps) {
    super(scope, id);
    const { config, network } = props;
    this.config = config;
    this.backups = new BackupBucket(this, 'Backups', { kmsKeyArn: config.backupKmsKeyArn });

    const environment: Record<string, string> = {
      PGSTEWARD_DB_IDENTIFIER: config.dbIdentifier,
      PGSTEWARD_DB_SECRET_ARN: config.dbSecretArn,
      PGSTEWARD_CA_BUNDLE: `/var/task/${CA_BUNDLE_FILE}`,
      PGSTEWARD_EVENT_BUS: config.eventBusName,
      PGSTEWARD_SNAPSHOT_SOURCE: config.snapshotSource,
      PGSTEWARD_BACKUP_BUCKET: this.backups.bucket.bucketName,
      PGSTEWARD_BACKUP_PREFIX: BACKUP_PREFIX,
      ...(config.backupKmsKeyArn ? { PGSTEWARD_BACKUP_KMS_KEY_ARN: config.backupKmsKeyArn } : {}),
      PGSTEWARD_COPY_DESTINATIONS: JSON.stringify(config.copyDestinations),
    };
    const imageEnvironment = { ...environment, PGSTEWARD_PG_DUMP: PG_DUMP };
    const bus = events.EventBus.fromEventBusName(this, 'ReportBus', config.eventBusName);
    const secret = secretsmanager.Secret.fromSecretCompleteArn(this, 'DbSecret', config.dbSecretArn);

    this.function = rustFunction(this, 'Function', {
      binary: 'snapshot',
      description: `pgsteward snapshots of ${config.dbIdentifier} (${config.snapshotSource}) and their cross-Region copies`,
      config,
      network,
      memorySize: 128,
      timeout: Duration.minutes(5),
      // RDS API calls only: no PostgreSQL connection, so neither the CA bundle nor the secret.
      needsCaBundle: false,
      environment,
    });
    for (const s of snapshotStatements(Stack.of(this), config.dbIdentifier, config.snapshotSource, config.copyDestinations)) {
      this.function.addToRolePolicy(s);
    }
    bus.grantPutEventsTo(this.function);

    const image = stageSnapshotImage(this, config);
    this.logicalBackupFunction = this.imageFunction(config, network, image.directory, image.assetOptions, imageEnvironment);
    warnAboutImage(this.logicalBackupFunction, image, config);

    this.logicalBackup = new LogicalBackup(this, 'LogicalBackup', {
      network,
      architecture: config.architecture,
      // Same directory and options as the function's image: one asset, built and pushed once.
      image: ecs.ContainerImage.fromAsset(image.directory, image.assetOptions),
      environment: imageEnvironment,
    });
    for (const grantee of [this.logicalBackupFunction, this.logicalBackup.taskDefinition.taskRole]) {
      secret.grantRead(grantee);
      this.backups.grantBackupWriter(grantee);
      bus.grantPutEventsTo(grantee);
    }
    this.acknowledgeWriter(this.logicalBackup.taskDefinition.taskRole);

    this.schedule();
    if (config.copyDestinations.length > 0) this.copyRule = this.snapshotEventRule();
    this.acknowledgeSnapshotRole();

    new CfnOutput(this, 'FunctionName', { value: this.function.functionName });
    new CfnOutput(this, 'LogicalBackupFunctionName', { value: this.logicalBackupFunction.functionName });
    new CfnOutput(this, 'BackupBucketName', { value: this.backups.bucket.bucketName });
    new CfnOutput(this, 'LogicalBackupStateMachineArn', {
      value: this.logicalBackup.stateMachine.stateMachineArn,
      description: `Start an execution with {"action":"logical-backup"}: ${LOGICAL_BACKUP_INPUT_HELP}`,
    });
  }

  private imageFunction(
    config: PgstewardConfig, network: Network, directory: string,
    assetOptions: lambda.AssetImageCodeProps, environment: Record<string, string>,
  ): lambda.DockerImageFunction {
    const logGroup = new logs.LogGroup(this, 'LogicalBackupFunctionLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const fn = new lambda.DockerImageFunction(this, 'LogicalBackupFunction', {
      description: `pgsteward logical backup of ${config.dbIdentifier}: pg_dump -Fc streamed to S3`,
      code: lambda.DockerImageCode.fromImageAsset(directory, assetOptions),
      architecture: config.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
      memorySize: 1024,
      timeout: Duration.minutes(15),
      // Default ephemeral storage (512 MB): the dump is streamed to S3, never stored.
      environment,
      loggingFormat: lambda.LoggingFormat.JSON,
      logGroup,
      vpc: network.vpc,
      vpcSubnets: network.subnets,
      securityGroups: [network.functionSecurityGroup],
      // A failed dump is tried once more (async invocations retry twice by default).
      retryAttempts: 1,
    });
    acknowledgeRoleFindings(fn);
    return fn;
  }

  private schedule(): void {
    // One role for the task's schedules: invoke these two functions only.
    const role = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'EventBridge Scheduler invokes the pgsteward snapshot and logical-backup functions',
    });
    for (const spec of SNAPSHOT_SCHEDULES) {
      const fn = spec.action === 'snapshot' ? this.function : this.logicalBackupFunction;
      this.schedules[spec.id] = new scheduler.Schedule(this, spec.id, {
        schedule: scheduler.ScheduleExpression.expression(spec.cron),
        description: spec.description,
        target: new schedulerTargets.LambdaInvoke(fn, {
          role,
          input: scheduler.ScheduleTargetInput.fromObject({
            action: spec.action,
            // Substituted by Scheduler: <aws.scheduler.scheduled-time>.
            scheduledTime: scheduler.ContextAttribute.scheduledTime,
          }),
          maxEventAge: spec.maxEventAge,
          retryAttempts: 3,
        }),
      });
    }
    const ids = [this.function, this.logicalBackupFunction]
      .map((fn) => Stack.of(this).resolve((fn.node.defaultChild as lambda.CfnFunction).logicalId));
    Validations.of(role).acknowledge(...ids.map((fnId) => ({
      id: `AwsSolutions-IAM5[Resource::<${fnId}.Arn>:*]`,
      reason: 'lambda:InvokeFunction on this one function and its versions/aliases (the ARN:* form grantInvoke adds); no other function',
    })));
  }

  /**
   * The raw RDS event to the function: a managed snapshot available here -> it copies it to
   * each destination; a copy finished in a destination (forwarded to this bus by that
   * Region's CopyEventForwarderStack) -> it shares the copy with the destination's account.
   */
  private snapshotEventRule(): events.Rule {
    const rule = new events.Rule(this, 'SnapshotEventRule', {
      description: 'RDS managed snapshot created here -> pgsteward copies it to the configured Regions; ' +
        'copy finished in a destination (forwarded) -> pgsteward shares it',
      eventPattern: snapshotEventPattern(this.config.dbIdentifier, [...SNAPSHOT_CREATED_EVENT_IDS, ...COPY_FINISHED_EVENT_IDS]),
    });
    rule.addTarget(new eventsTargets.LambdaFunction(this.function, { retryAttempts: 2, maxEventAge: Duration.hours(6) }));
    return rule;
  }

  private acknowledgeSnapshotRole(): void {
    const kind = RDS_ACTIONS[this.config.snapshotSource].snapshotResource;
    const regions = [undefined, ...this.config.copyDestinations.map((d) => d.region)];
    Validations.of(this.function.role!).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'rds:DescribeAccountAttributes (the manual-snapshot quota) has no resource type, and describing snapshots ' +
          'by instance or cluster filter, here and in the copy Regions, is authorized on every resource; both are read-only',
      },
      // This Region's managed snapshots, and their copies in each destination.
      ...regions.map((region) => ({
        id: `AwsSolutions-IAM5[Resource::${findingArn(this, 'rds', `${kind}:${SNAPSHOT_NAME_PREFIX}*`, region)}]`,
        reason: `${kind} names are made from the scheduled time at run time; the ${SNAPSHOT_NAME_PREFIX} prefix limits the ` +
          'function to managed snapshots (copies keep it), and sharing a copy also needs its pgsteward:managed tag',
      })),
    );
  }

  private acknowledgeWriter(role: iam.IRole): void {
    // bucketArn is a GetAtt of the bucket: the finding names it by logical id.
    const bucketId = Stack.of(this).resolve((this.backups.bucket.node.defaultChild as unknown as { logicalId: string }).logicalId);
    const ack = {
      id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${BACKUP_PREFIX}/*]`,
      reason: 'dump and manifest keys are made at run time (<db>/<yyyy>/<mm>/<dd>/...); access is limited to the pgsteward/ prefix',
    };
    Validations.of(role).acknowledge(ack);
    Validations.of(this.logicalBackupFunction.role!).acknowledge(ack);
  }
}
