import { ArnFormat, Aws, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { BACKUP_PREFIX } from './backup-bucket';
import { restoreKeyStatements } from './pitr-restore-iam';
import { MANAGED_TAG, SCRATCH_TAG } from './retention-prune-iam';
import type { SnapshotSource } from './snapshot-config';
import { SNAPSHOT_NAME_PREFIX, TAG_KEY_PATTERN } from './snapshot-iam';

/** Scratch instances and clusters of the drill: pgsteward-drill-<drillId>; nothing else is restored, tagged or deleted. */
export const SCRATCH_NAME_PREFIX = 'pgsteward-drill-';
/** Drill reports: verify-reports/<db>/<drillId>.json and .txt in the backup bucket. */
export const VERIFY_REPORT_PREFIX = 'verify-reports';
/** Next to a verified dump: <base>.verified.json (retention keeps the newest verified backup). */
export const VERIFIED_MARKER_SUFFIX = '.verified.json';

/** The RDS vocabulary of each source kind. */
export const DRILL_ACTIONS = {
  instance: { snapshot: 'snapshot', restore: 'rds:RestoreDBInstanceFromDBSnapshot', scratch: ['db'] },
  // Aurora: the restored cluster gets its writer with CreateDBInstance.
  cluster: { snapshot: 'cluster-snapshot', restore: 'rds:RestoreDBClusterFromSnapshot', scratch: ['cluster', 'db'] },
} as const;

const tagged = (key: string) => ({ StringEquals: { [`aws:ResourceTag/${key}`]: 'true' } });

export interface DrillGrants {
  readonly dbIdentifier: string;
  readonly source: SnapshotSource;
  /** The subnet group scratch copies are restored into (pitr-restore's placement). */
  readonly subnetGroup: string;
  /** The source's customer-managed storage key: its snapshots are encrypted with it. */
  readonly kmsKeyArn?: string;
}

/**
 * The backup-verify function's RDS permissions: restore this database's managed snapshots
 * (pgsteward-<db>-*, tagged pgsteward:managed=true) into scratch copies named
 * pgsteward-drill-* that the request tags pgsteward:scratch=true; tag them and the
 * snapshots with pgsteward keys only; delete only what carries the scratch tag;
 * describes. No Modify of anything, no snapshot delete, nothing on the source itself.
 */
export function drillRdsStatements(stack: Stack, g: DrillGrants): iam.PolicyStatement[] {
  const a = DRILL_ACTIONS[g.source];
  const arn = (resource: string, resourceName: string) => stack.formatArn({
    service: 'rds', resource, resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  const snapshots = arn(a.snapshot, `${SNAPSHOT_NAME_PREFIX}${g.dbIdentifier}-*`);
  const scratch = a.scratch.map((kind) => arn(kind, `${SCRATCH_NAME_PREFIX}*`));
  const subnetGroup = arn('subgrp', g.subnetGroup);
  // Everything the drill creates is tagged scratch at creation: so delete (below) can reach it, and nothing else.
  const asScratch = { StringEquals: { [`aws:RequestTag/${SCRATCH_TAG}`]: 'true' } };
  const pgstewardKeys = { 'ForAllValues:StringLike': { 'aws:TagKeys': [TAG_KEY_PATTERN] } };

  const statements = [
    // The source side: this database's snapshots that the snapshot task made (the tag, not just the name).
    new iam.PolicyStatement({ actions: [a.restore], resources: [snapshots], conditions: tagged(MANAGED_TAG) }),
    // The target side: a scratch name in the configured subnet group, tagged scratch in the request.
    new iam.PolicyStatement({ actions: [a.restore], resources: [scratch[0], subnetGroup], conditions: asScratch }),
  ];
  if (g.source === 'cluster') {
    statements.push(new iam.PolicyStatement({ actions: ['rds:CreateDBInstance'], resources: [...scratch, subnetGroup], conditions: asScratch }));
  }
  statements.push(
    // Restoring with Tags needs AddTagsToResource on the new resource: pgsteward keys only.
    new iam.PolicyStatement({ actions: ['rds:AddTagsToResource'], resources: scratch, conditions: pgstewardKeys }),
    // pgsteward:verified on a snapshot that passed: managed snapshots only, pgsteward keys only.
    new iam.PolicyStatement({
      actions: ['rds:AddTagsToResource'],
      resources: [snapshots],
      conditions: { ...pgstewardKeys, ...tagged(MANAGED_TAG) },
    }),
    // Teardown (one action per statement: the retention test holds every delete to its condition).
    ...a.scratch.map((kind, i) => new iam.PolicyStatement({
      actions: [kind === 'cluster' ? 'rds:DeleteDBCluster' : 'rds:DeleteDBInstance'],
      resources: [scratch[i]],
      conditions: tagged(SCRATCH_TAG),
    })),
    ...restoreKeyStatements(g.kmsKeyArn),
    // Picking the latest snapshot, polling the scratch copy, finding it again by its drill tag: describes on `*`.
    new iam.PolicyStatement({
      actions: [
        'rds:DescribeDBSnapshots', 'rds:DescribeDBClusterSnapshots', 'rds:DescribeDBInstances', 'rds:DescribeDBClusters',
        'rds:ListTagsForResource',
      ],
      resources: ['*'],
    }),
  );
  return statements;
}

/**
 * The backup bucket for the drill: list and read dumps and manifests under pgsteward/;
 * write only the verified marker next to a dump and the reports under verify-reports/.
 * No delete, no overwrite of a dump or manifest.
 */
export function drillBucketStatements(bucket: s3.IBucket, key?: kms.IKey): iam.PolicyStatement[] {
  const statements = [
    new iam.PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${BACKUP_PREFIX}/*`] } },
    }),
    new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [bucket.arnForObjects(`${BACKUP_PREFIX}/*`)] }),
    new iam.PolicyStatement({
      actions: ['s3:PutObject'],
      resources: [bucket.arnForObjects(`${BACKUP_PREFIX}/*${VERIFIED_MARKER_SUFFIX}`), bucket.arnForObjects(`${VERIFY_REPORT_PREFIX}/*`)],
    }),
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
