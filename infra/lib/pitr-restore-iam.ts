import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { SnapshotSource } from './snapshot-config';

/** Set by pitr-restore on every instance or cluster it restores: the source's identifier. */
export const RESTORED_FROM_TAG = 'pgsteward:restored-from';

/** The RDS vocabulary of each source kind. */
export const RESTORE_ACTIONS = {
  instance: { resource: 'db', restore: 'rds:RestoreDBInstanceToPointInTime', parameterGroup: 'pg' },
  cluster: { resource: 'cluster', restore: 'rds:RestoreDBClusterToPointInTime', parameterGroup: 'cluster-pg' },
} as const;

export interface RestoreGrants {
  readonly dbIdentifier: string;
  readonly source: SnapshotSource;
  /** The subnet group the restore names (configured, or the stack's own). */
  readonly subnetGroup: string;
  readonly parameterGroup?: string;
  /** The source's customer-managed storage key. */
  readonly kmsKeyArn?: string;
}

/**
 * The pitr-restore function's RDS permissions: restore from this one source into a
 * new instance (or cluster, plus its instance) that carries the restored-from tag
 * naming this source, in the configured subnet and parameter groups; describes.
 * No Modify or Delete of anything; tagging the source itself is denied outright.
 */
export function restoreRdsStatements(stack: Stack, g: RestoreGrants): iam.PolicyStatement[] {
  const a = RESTORE_ACTIONS[g.source];
  const arn = (resource: string, resourceName: string) => stack.formatArn({
    service: 'rds', resource, resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  const sourceArn = arn(a.resource, g.dbIdentifier);
  // The new resource must be tagged as restored from this source: IAM cannot tell a restore's
  // target from its source within `db:*`, so this tag is what binds a restore to this database.
  const fromThisSource = { StringEquals: { [`aws:RequestTag/${RESTORED_FROM_TAG}`]: g.dbIdentifier } };
  const subnetGroup = arn('subgrp', g.subnetGroup);
  const placement = [subnetGroup, ...(g.parameterGroup ? [arn(a.parameterGroup, g.parameterGroup)] : [])];
  // Aurora: the restored cluster has no instance until one is created in it.
  const created = g.source === 'cluster' ? [arn('cluster', '*'), arn('db', '*')] : [arn('db', '*')];

  const statements = [
    // The source side of the restore: this database only.
    new iam.PolicyStatement({ actions: [a.restore], resources: [sourceArn] }),
    // The target side: names come from the console at run time.
    new iam.PolicyStatement({ actions: [a.restore], resources: [arn(a.resource, '*'), ...placement], conditions: fromThisSource }),
    // Restoring with Tags (the source's plus pgsteward's) needs AddTagsToResource on the new resource.
    new iam.PolicyStatement({ actions: ['rds:AddTagsToResource'], resources: created, conditions: fromThisSource }),
  ];
  if (g.source === 'cluster') {
    statements.push(new iam.PolicyStatement({
      actions: ['rds:CreateDBInstance'],
      // The instance joins the tagged cluster, in the same subnet group (its parameter group is the engine default).
      resources: [...created, subnetGroup],
      conditions: fromThisSource,
    }));
  }
  statements.push(...restoreKeyStatements(g.kmsKeyArn));
  statements.push(
    // The source is never tagged (nor modified, nor deleted: neither is granted anywhere).
    new iam.PolicyStatement({ effect: iam.Effect.DENY, actions: ['rds:AddTagsToResource'], resources: [sourceArn] }),
    // The restorable window (automated backups, or the oldest automated snapshot where no window is
    // given; LatestRestorableTime), the source's tags, the target's status and endpoint: describes by
    // identifier or filter, authorized on `*`; all read-only.
    new iam.PolicyStatement({
      actions: [
        'rds:DescribeDBInstances', 'rds:DescribeDBInstanceAutomatedBackups', 'rds:DescribeDBSnapshots',
        'rds:DescribeDBClusters', 'rds:ListTagsForResource',
      ],
      resources: ['*'],
    }),
  );
  return statements;
}

/**
 * Restoring an encrypted database (or its snapshot): RDS makes a grant on the source's key
 * for the new storage; no grants for anything else. None without a customer-managed key.
 */
export function restoreKeyStatements(kmsKeyArn?: string): iam.PolicyStatement[] {
  if (!kmsKeyArn) return [];
  return [
    new iam.PolicyStatement({ actions: ['kms:DescribeKey'], resources: [kmsKeyArn] }),
    new iam.PolicyStatement({
      actions: ['kms:CreateGrant'],
      resources: [kmsKeyArn],
      conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    }),
  ];
}

/**
 * Cut-over and rollback on the configured application secrets only: read a version by
 * stage, write the new endpoint as a new version (the old one becomes AWSPREVIOUS), and
 * move AWSCURRENT back to it. Nothing on any other secret.
 */
export function appSecretStatements(appSecretArns: string[]): iam.PolicyStatement[] {
  if (appSecretArns.length === 0) return [];
  return [new iam.PolicyStatement({
    actions: ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage'],
    resources: appSecretArns,
  })];
}
