import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { BACKUP_PREFIX, type BackupBucket } from './backup-bucket';
import type { PgstewardConfig } from './config';
import { CA_BUNDLE_FILE, findingArn, rustFunction } from './function';
import type { Network } from './network';
import { appSecretStatements, RESTORE_ACTIONS, RESTORED_FROM_TAG, restoreRdsStatements } from './pitr-restore-iam';
import { RESTORE_INPUT_HELP, RestoreChecklist } from './restore-checklist';

/** Run reports of the checklist: restore-reports/<target>/<startedAt>.json in the backup bucket (the function writes the rest). */
export const REPORT_PREFIX = 'restore-reports';

/** Where restored copies go: the subnet group and security groups (the drill's scratch copies go there too). */
export interface RestorePlacement {
  readonly subnetGroup: string;
  readonly securityGroupIds: string[];
}

export interface PitrRestoreProps {
  readonly config: PgstewardConfig;
  readonly network: Network;
  /** The snapshot task's bucket: checklist reports are kept next to the backups they tested. */
  readonly backups: BackupBucket;
}

/**
 * Point-in-time restore of the database into a new instance and the post-restore
 * checklist (row counts, ANALYZE, connectivity, smoke queries, cut-over of the
 * application's secret, rollback, report): the `pitr-restore` function, one action
 * per invocation, driven by the RestoreChecklist state machine from the console.
 */
export class PitrRestore extends Construct {
  readonly function: lambda.Function;
  readonly checklist: RestoreChecklist;
  /** Created when restoreSubnetGroup is not configured. */
  readonly subnetGroup?: rds.SubnetGroup;
  /** Created when neither restoreSecurityGroupIds nor dbSecurityGroupId is configured. */
  readonly securityGroup?: ec2.SecurityGroup;
  readonly placement: RestorePlacement;
  private readonly config: PgstewardConfig;
  private readonly backups: BackupBucket;

  constructor(scope: Construct, id: string, props: PitrRestoreProps) {
    super(scope, id);
    const { config, network, backups } = props;
    this.config = config;
    this.backups = backups;

    if (config.restoreSubnetGroup === undefined) {
      this.subnetGroup = new rds.SubnetGroup(this, 'SubnetGroup', {
        description: `pgsteward: restored copies of ${config.dbIdentifier}, in the functions' (the database's) private subnets`,
        vpc: network.vpc,
        vpcSubnets: network.subnets,
        // A restored instance may still use it when the stack goes; CloudFormation could not delete it then.
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }
    const subnetGroup = config.restoreSubnetGroup ?? this.subnetGroup!.subnetGroupName;
    this.securityGroup = this.ownSecurityGroup(network);
    const securityGroupIds = this.securityGroup ? [this.securityGroup.securityGroupId] : this.configuredSecurityGroups();
    this.placement = { subnetGroup, securityGroupIds };

    this.function = rustFunction(this, 'Function', {
      binary: 'pitr-restore',
      description: `pgsteward point-in-time restore of ${config.dbIdentifier} and the post-restore checklist`,
      config,
      network,
      // Row counts and smoke results are small; ANALYZE runs in the database.
      memorySize: 256,
      // Lambda's maximum: an exact count(*) or ANALYZE of a large table takes minutes.
      timeout: Duration.minutes(15),
      needsCaBundle: true,
      environment: this.environment(subnetGroup, securityGroupIds),
    });

    secretsmanager.Secret.fromSecretCompleteArn(this, 'DbSecret', config.dbSecretArn).grantRead(this.function);
    events.EventBus.fromEventBusName(this, 'ReportBus', config.eventBusName).grantPutEventsTo(this.function);
    const statements = [
      ...restoreRdsStatements(Stack.of(this), {
        dbIdentifier: config.dbIdentifier,
        source: config.snapshotSource,
        subnetGroup,
        parameterGroup: config.restoreParameterGroup,
        kmsKeyArn: config.dbKmsKeyArn,
      }),
      ...appSecretStatements(config.appSecretArns),
      ...this.bucketStatements(),
    ];
    for (const s of statements) this.function.addToRolePolicy(s);
    this.acknowledgeRole();

    this.checklist = new RestoreChecklist(this, 'RestoreChecklist', { function: this.function });

    new CfnOutput(this, 'FunctionName', { value: this.function.functionName });
    new CfnOutput(this, 'RestoreChecklistArn', {
      value: this.checklist.stateMachine.stateMachineArn,
      description: `Start an execution with ${RESTORE_INPUT_HELP}`,
    });
  }

  /**
   * The configured groups; else the database's own: the restored copy admits who the
   * database admits (the application after cut-over, the functions through their ingress rule).
   */
  private configuredSecurityGroups(): string[] {
    const c = this.config;
    return c.restoreSecurityGroupIds.length > 0 ? c.restoreSecurityGroupIds : [c.existingVpc!.dbSecurityGroupId!];
  }

  /** Neither configured: a group that admits the functions (add the application's own rule before a cut-over). */
  private ownSecurityGroup(network: Network): ec2.SecurityGroup | undefined {
    if (this.config.restoreSecurityGroupIds.length > 0 || this.config.existingVpc?.dbSecurityGroupId) return undefined;
    const group = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: network.vpc,
      description: 'pgsteward restored database copies: PostgreSQL from pgsteward functions',
      // An RDS instance answers; it needs no egress.
      allowAllOutbound: false,
    });
    group.addIngressRule(network.functionSecurityGroup, ec2.Port.tcp(5432), 'pgsteward functions');
    // Like the subnet group: a restored copy may outlive the stack, and an attached group cannot be deleted.
    group.applyRemovalPolicy(RemovalPolicy.RETAIN);
    return group;
  }

  /** The contract's variables; optional ones only when configured (the function has its own defaults). */
  private environment(subnetGroup: string, securityGroupIds: string[]): Record<string, string> {
    const c = this.config;
    return {
      PGSTEWARD_DB_IDENTIFIER: c.dbIdentifier,
      PGSTEWARD_DB_SECRET_ARN: c.dbSecretArn,
      PGSTEWARD_CA_BUNDLE: `/var/task/${CA_BUNDLE_FILE}`,
      PGSTEWARD_EVENT_BUS: c.eventBusName,
      PGSTEWARD_SNAPSHOT_SOURCE: c.snapshotSource,
      PGSTEWARD_RESTORE_SUBNET_GROUP: subnetGroup,
      PGSTEWARD_RESTORE_SECURITY_GROUPS: securityGroupIds.join(','),
      ...(c.restoreParameterGroup ? { PGSTEWARD_RESTORE_PARAMETER_GROUP: c.restoreParameterGroup } : {}),
      ...(c.restoreInstanceClass ? { PGSTEWARD_RESTORE_INSTANCE_CLASS: c.restoreInstanceClass } : {}),
      ...(c.appSecretArns.length > 0 ? { PGSTEWARD_APP_SECRET_ARNS: c.appSecretArns.join(',') } : {}),
      PGSTEWARD_REPORT_BUCKET: this.backups.bucket.bucketName,
    };
  }

  /**
   * Reports are written, never read back or deleted: PutObject under restore-reports/. Row counts
   * may compare with a logical backup's manifest ("compareWith": "manifest:s3://..."): GetObject
   * under pgsteward/, this stack's dumps and manifests, read-only. The key through S3 only.
   */
  private bucketStatements(): iam.PolicyStatement[] {
    const { bucket, key } = this.backups;
    const statements = [
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(`${REPORT_PREFIX}/*`)] }),
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [bucket.arnForObjects(`${BACKUP_PREFIX}/*`)] }),
    ];
    if (key) {
      statements.push(new iam.PolicyStatement({
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } },
      }));
    }
    return statements;
  }

  private acknowledgeRole(): void {
    const c = this.config;
    const kind = RESTORE_ACTIONS[c.snapshotSource].resource;
    const bucketId = Stack.of(this).resolve((this.backups.bucket.node.defaultChild as unknown as { logicalId: string }).logicalId);
    const created = c.snapshotSource === 'cluster' ? ['cluster', 'db'] : ['db'];
    Validations.of(this.function.role!).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'describing the source\'s automated backups and restorable window, its tags, and the restored instance\'s ' +
          'status and endpoint is authorized on every resource; these calls are read-only',
      },
      ...[...new Set([kind, ...created])].map((resource) => ({
        id: `AwsSolutions-IAM5[Resource::${findingArn(this, 'rds', `${resource}:*`)}]`,
        reason: `the restored ${resource} is named in the console at run time; restoring and tagging are allowed only when the ` +
          `request tags it ${RESTORED_FROM_TAG}=${c.dbIdentifier}, the source itself is granted by name, and no Modify or Delete exists`,
      })),
      {
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${REPORT_PREFIX}/*]`,
        reason: `report keys are made at run time (<target>/<startedAt>.json); PutObject only, under the ${REPORT_PREFIX}/ prefix`,
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${BACKUP_PREFIX}/*]`,
        reason: `the manifest row counts compare with is named in the request at run time; GetObject only, under ${BACKUP_PREFIX}/ ` +
          'where the logical backups and their manifests are',
      },
    );
  }
}
