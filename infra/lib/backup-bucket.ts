import { Aws, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Every logical backup sits under this prefix: pgsteward/<db>/<yyyy>/<mm>/<dd>/... (the Rust writes the rest). */
export const BACKUP_PREFIX = 'pgsteward';
/** Rows archived by retention-prune before it deletes them: archive/<db>/... . Never pruned. */
export const ARCHIVE_PREFIX = 'archive';

/** Deleted or overwritten dumps stay recoverable this long (versioning), then S3 removes them. */
export const NONCURRENT_DAYS = 30;
/** Server access logs are kept this long. */
export const ACCESS_LOG_DAYS = 365;

export interface BackupBucketProps {
  /** A customer-managed key for SSE-KMS; absent: SSE-S3. */
  readonly kmsKeyArn?: string;
}

/**
 * The logical backups (pg_dump -Fc, manifests): private, TLS only, versioned,
 * encrypted, access-logged to a bucket of its own, and kept when the stack goes.
 * Retention of current versions is the retention-prune task's job, not a lifecycle rule.
 */
export class BackupBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  readonly key?: kms.IKey;

  constructor(scope: Construct, id: string, props: BackupBucketProps = {}) {
    super(scope, id);
    this.key = props.kmsKeyArn ? kms.Key.fromKeyArn(this, 'Key', props.kmsKeyArn) : undefined;

    // Server access logging delivers with SSE-S3 only; no logs of the log bucket itself.
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(ACCESS_LOG_DAYS) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'this is the access-log bucket of the backup bucket; logging it to itself or another bucket would only log the log delivery',
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      ...(this.key
        ? { encryption: s3.BucketEncryption.KMS, encryptionKey: this.key, bucketKeyEnabled: true }
        : { encryption: s3.BucketEncryption.S3_MANAGED }),
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'backups/',
      lifecycleRules: [{
        id: 'abort-incomplete-uploads-and-expire-old-versions',
        // A dump that died mid-stream leaves parts that cost money and are never completed.
        abortIncompleteMultipartUploadAfter: Duration.days(1),
        noncurrentVersionExpiration: Duration.days(NONCURRENT_DAYS),
      }],
      // Backups must outlive the stack that made them.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /**
   * What a logical backup needs: write, read back and clean up its multipart
   * uploads under pgsteward/, list that prefix only, and use the key through S3 only.
   */
  grantBackupWriter(grantee: iam.IGrantable): void {
    const principal = grantee.grantPrincipal;
    principal.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:GetObject'],
      resources: [this.bucket.arnForObjects(`${BACKUP_PREFIX}/*`)],
    }));
    principal.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:ListBucket'],
      resources: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${BACKUP_PREFIX}/*`] } },
    }));
    if (this.key) {
      // Decrypt too: S3 decrypts the parts to complete an SSE-KMS multipart upload, and GetObject reads back.
      principal.addToPrincipalPolicy(new iam.PolicyStatement({
        actions: ['kms:Encrypt', 'kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [this.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } },
      }));
    }
  }
}
