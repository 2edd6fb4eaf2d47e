import { ArnFormat, Aws, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { ARCHIVE_PREFIX, BACKUP_PREFIX } from './backup-bucket';
import type { CopyDestination } from './snapshot-config';

/** Set by the snapshot function (and kept by its copies): the only snapshots retention may delete. */
export const MANAGED_TAG = 'pgsteward:managed';
/** Set by the verification drill on what it restores: the only instances and clusters retention may delete. */
export const SCRATCH_TAG = 'pgsteward:scratch';

/** `aws:ResourceTag/<key> = "true"`: RDS checks the tag of the resource being deleted. */
const tagged = (key: string) => ({ StringEquals: { [`aws:ResourceTag/${key}`]: 'true' } });

/**
 * The retention-prune function's RDS permissions: describe snapshots, instances
 * and clusters; delete managed snapshots (here and in each copy Region) and
 * scratch instances and clusters (here), each only when the resource carries
 * pgsteward's tag. Nothing else that changes RDS.
 */
export function pruneRdsStatements(stack: Stack, destinations: CopyDestination[]): iam.PolicyStatement[] {
  const arn = (resource: string, region?: string) => stack.formatArn({
    service: 'rds', resource, resourceName: '*', region, arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  // Copies live in the destination Regions under the same tag.
  const everywhere = (resource: string) => [arn(resource), ...destinations.map((d) => arn(resource, d.region))];
  return [
    // Listing managed snapshots (by source, here and in each copy Region) and finding scratch
    // resources (by their tags, returned in TagList) are describes with filters, authorized on `*`.
    new iam.PolicyStatement({
      actions: ['rds:DescribeDBSnapshots', 'rds:DescribeDBClusterSnapshots', 'rds:DescribeDBInstances', 'rds:DescribeDBClusters'],
      resources: ['*'],
    }),
    new iam.PolicyStatement({ actions: ['rds:DeleteDBSnapshot'], resources: everywhere('snapshot'), conditions: tagged(MANAGED_TAG) }),
    new iam.PolicyStatement({ actions: ['rds:DeleteDBClusterSnapshot'], resources: everywhere('cluster-snapshot'), conditions: tagged(MANAGED_TAG) }),
    // The drill restores in this Region only.
    new iam.PolicyStatement({ actions: ['rds:DeleteDBInstance'], resources: [arn('db')], conditions: tagged(SCRATCH_TAG) }),
    new iam.PolicyStatement({ actions: ['rds:DeleteDBCluster'], resources: [arn('cluster')], conditions: tagged(SCRATCH_TAG) }),
  ];
}

/**
 * The backup bucket for retention: list the dumps and the archives; delete dumps
 * and manifests under pgsteward/ (versioning keeps them recoverable for
 * NONCURRENT_DAYS); write and re-read archives under archive/, never delete them.
 */
export function pruneBucketStatements(bucket: s3.IBucket, key?: kms.IKey): iam.PolicyStatement[] {
  const statements = [
    new iam.PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${BACKUP_PREFIX}/*`, `${ARCHIVE_PREFIX}/*`] } },
    }),
    new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: [bucket.arnForObjects(`${BACKUP_PREFIX}/*`)] }),
    // An archive is a multipart upload (PutObject covers create/upload/complete), read back to count its rows.
    new iam.PolicyStatement({
      actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:GetObject'],
      resources: [bucket.arnForObjects(`${ARCHIVE_PREFIX}/*`)],
    }),
  ];
  if (key) {
    // Through S3 only: a data key per archive, Decrypt to complete the multipart upload and to read it back.
    statements.push(new iam.PolicyStatement({
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } },
    }));
  }
  return statements;
}
