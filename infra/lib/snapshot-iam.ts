import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { MANAGED_TAG } from './retention-prune-iam';
import type { CopyDestination, SnapshotSource } from './snapshot-config';

/** Managed snapshots (and their copies) are named pgsteward-...; nothing else is created, tagged or copied. */
export const SNAPSHOT_NAME_PREFIX = 'pgsteward-';
/** The only tag keys the snapshot function may set. */
export const TAG_KEY_PATTERN = 'pgsteward:*';

/** The RDS vocabulary of each source kind. */
export const RDS_ACTIONS = {
  instance: {
    sourceResource: 'db',
    snapshotResource: 'snapshot',
    create: 'rds:CreateDBSnapshot',
    describeSource: 'rds:DescribeDBInstances',
    describeSnapshots: 'rds:DescribeDBSnapshots',
    copy: 'rds:CopyDBSnapshot',
    describeShares: 'rds:DescribeDBSnapshotAttributes',
    share: 'rds:ModifyDBSnapshotAttribute',
  },
  cluster: {
    sourceResource: 'cluster',
    snapshotResource: 'cluster-snapshot',
    create: 'rds:CreateDBClusterSnapshot',
    describeSource: 'rds:DescribeDBClusters',
    describeSnapshots: 'rds:DescribeDBClusterSnapshots',
    copy: 'rds:CopyDBClusterSnapshot',
    describeShares: 'rds:DescribeDBClusterSnapshotAttributes',
    share: 'rds:ModifyDBClusterSnapshotAttribute',
  },
} as const;

/**
 * The snapshot function's RDS and KMS permissions: create and tag managed
 * snapshots of this one source, copy them to the configured Regions, share the
 * copies with the configured accounts, and use the destination keys through RDS.
 * No secret: the function never connects to PostgreSQL.
 */
export function snapshotStatements(
  stack: Stack, dbIdentifier: string, source: SnapshotSource, destinations: CopyDestination[],
): iam.PolicyStatement[] {
  const a = RDS_ACTIONS[source];
  const arn = (resource: string, resourceName: string, region?: string) => stack.formatArn({
    service: 'rds', resource, resourceName, region, arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  const sourceArn = arn(a.sourceResource, dbIdentifier);
  const localSnapshots = arn(a.snapshotResource, `${SNAPSHOT_NAME_PREFIX}*`);
  const copies = destinations.map((d) => arn(a.snapshotResource, `${SNAPSHOT_NAME_PREFIX}*`, d.region));

  const statements = [
    new iam.PolicyStatement({ actions: [a.create], resources: [sourceArn, localSnapshots] }),
    // CreateDB*Snapshot and CopyDB*Snapshot with Tags need AddTagsToResource; only pgsteward's own keys.
    new iam.PolicyStatement({
      actions: ['rds:AddTagsToResource'],
      resources: [localSnapshots, ...copies],
      conditions: { 'ForAllValues:StringLike': { 'aws:TagKeys': [TAG_KEY_PATTERN] } },
    }),
    new iam.PolicyStatement({ actions: [a.describeSource], resources: [sourceArn] }),
    // Finding the slot's existing snapshot (here and in each destination) and the manual-snapshot quota:
    // DescribeAccountAttributes has no resource type, and describing by filter is authorized on `*`.
    new iam.PolicyStatement({ actions: [a.describeSnapshots, 'rds:DescribeAccountAttributes'], resources: ['*'] }),
  ];

  if (destinations.length > 0) {
    // A cross-Region copy is requested in the destination: it needs the action on source and target.
    statements.push(new iam.PolicyStatement({ actions: [a.copy], resources: [localSnapshots, ...copies] }));
  }
  const shared = destinations.filter((d) => d.shareWithAccount !== undefined);
  if (shared.length > 0) {
    // Only in the Regions whose copies are shared (describing the copy itself is the `*` statement above).
    const sharedCopies = shared.map((d) => arn(a.snapshotResource, `${SNAPSHOT_NAME_PREFIX}*`, d.region));
    // Who may restore the copy already: a repeated copy-finished event changes nothing.
    statements.push(new iam.PolicyStatement({ actions: [a.describeShares], resources: sharedCopies }));
    // Adding the account to the restore attribute, only on copies this function tagged as managed.
    statements.push(new iam.PolicyStatement({
      actions: [a.share],
      resources: sharedCopies,
      conditions: { StringEquals: { [`aws:ResourceTag/${MANAGED_TAG}`]: 'true' } },
    }));
  }
  const keys = destinations.flatMap((d) => (d.kmsKeyId ? [d.kmsKeyId] : []));
  if (keys.length > 0) {
    statements.push(new iam.PolicyStatement({ actions: ['kms:DescribeKey'], resources: keys }));
    // The grant RDS makes for the encrypted copy; no grants for anything else.
    statements.push(new iam.PolicyStatement({
      actions: ['kms:CreateGrant'],
      resources: keys,
      conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    }));
  }
  return statements;
}
