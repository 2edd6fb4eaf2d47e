import * as path from 'node:path';
import { Node } from 'constructs';
import { RestoreConfig, restoreConfigFromContext, SECRET_ARN } from './restore-config';
import { RetentionConfig, retentionConfigFromContext } from './retention-config';
import { SnapshotConfig, snapshotConfigFromContext } from './snapshot-config';
import { VerifyConfig, verifyConfigFromContext } from './verify-config';

/** Where an existing database VPC is, when the stack must not create its own. */
export interface ExistingVpcConfig {
  readonly vpcId: string;
  readonly availabilityZones: string[];
  readonly privateSubnetIds: string[];
  /** The database's security group; the functions' group gets 5432 ingress on it. */
  readonly dbSecurityGroupId?: string;
}

export type LambdaArch = 'x86_64' | 'arm64';

export interface PgstewardConfig extends SnapshotConfig, RetentionConfig, RestoreConfig, VerifyConfig {
  readonly dbIdentifier: string;
  readonly dbSecretArn: string;
  readonly eventBusName: string;
  readonly architecture: LambdaArch;
  /** cargo-lambda's output folder: one sub-folder per binary holding `bootstrap`. */
  readonly lambdaBuildDir: string;
  /** Absent: the stack creates a small demo VPC. */
  readonly existingVpc?: ExistingVpcConfig;
  /** RDS preferred-maintenance-window syntax (UTC), e.g. sun:03:00-sun:05:00: VACUUM FULL runs only inside it. */
  readonly maintenanceWindow: string;
  /** Parallel VACUUM jobs (like `vacuumdb --jobs`). */
  readonly vacuumJobs: number;
}

/** Defaults let `cdk synth` and the tests run with no context at all. */
export const DEFAULTS = {
  dbIdentifier: 'orders-prod',
  dbSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:pgsteward/orders-prod-AbCdEf',
  eventBusName: 'default',
  architecture: 'x86_64' as LambdaArch,
  // infra/lib -> repo root -> target/lambda (cargo-lambda's default output).
  lambdaBuildDir: path.resolve(__dirname, '..', '..', 'target', 'lambda'),
  maintenanceWindow: 'sun:03:00-sun:05:00',
  vacuumJobs: 2,
};

/** Upper bound of vacuumJobs: each job is one more connection doing I/O on the database. */
export const MAX_VACUUM_JOBS = 16;

// RDS instance/cluster identifier rules: letter first, letters/digits/hyphens, max 63.
const DB_IDENTIFIER = /^[A-Za-z][A-Za-z0-9-]{0,62}$/;
// RDS PreferredMaintenanceWindow: ddd:hh24:mi-ddd:hh24:mi, UTC.
const WINDOW_END = '(mon|tue|wed|thu|fri|sat|sun):([01]\\d|2[0-3]):[0-5]\\d';
const MAINTENANCE_WINDOW = new RegExp(`^${WINDOW_END}-${WINDOW_END}$`);
const EVENT_BUS_NAME = /^[/.\-_A-Za-z0-9]{1,256}$/;
// EC2 ids: prefix plus 8 (old) or 17 hex digits; CloudFormation rejects anything else.
const ec2Id = (prefix: string) => new RegExp(`^${prefix}-([0-9a-f]{8}|[0-9a-f]{17})$`);

/** Context values come as strings from `-c k=v` or as JSON arrays from cdk.json. */
function list(value: unknown, key: string): string[] {
  if (value === undefined || value === null || value === '') return [];
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === 'string') {
    return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  }
  throw new Error(`context ${key} must be a list or a comma-separated string, got ${JSON.stringify(value)}`);
}

function str(node: Node, key: string, fallback: string): string {
  const value = node.tryGetContext(key);
  return value === undefined || value === null || value === '' ? fallback : String(value);
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

/** Reads and validates the app's context; every mistake is named with what to fix. */
export function configFromContext(node: Node): PgstewardConfig {
  const dbIdentifier = str(node, 'dbIdentifier', DEFAULTS.dbIdentifier);
  check(DB_IDENTIFIER.test(dbIdentifier),
    `context dbIdentifier ${JSON.stringify(dbIdentifier)} is not an RDS identifier (letter first, then letters, digits, hyphens; max 63)`);

  const dbSecretArn = str(node, 'dbSecretArn', DEFAULTS.dbSecretArn);
  check(SECRET_ARN.test(dbSecretArn),
    `context dbSecretArn ${JSON.stringify(dbSecretArn)} is not a complete Secrets Manager ARN (it must end in the 6-character suffix, e.g. -AbCdEf)`);

  const eventBusName = str(node, 'eventBusName', DEFAULTS.eventBusName);
  check(EVENT_BUS_NAME.test(eventBusName) && !eventBusName.startsWith('arn:'),
    `context eventBusName ${JSON.stringify(eventBusName)} must be an event bus name (not an ARN)`);

  const architecture = str(node, 'architecture', DEFAULTS.architecture);
  check(architecture === 'x86_64' || architecture === 'arm64',
    `context architecture ${JSON.stringify(architecture)} must be x86_64 or arm64`);

  const lambdaBuildDir = path.resolve(str(node, 'lambdaBuildDir', DEFAULTS.lambdaBuildDir));

  const maintenanceWindow = str(node, 'maintenanceWindow', DEFAULTS.maintenanceWindow);
  check(MAINTENANCE_WINDOW.test(maintenanceWindow),
    `context maintenanceWindow ${JSON.stringify(maintenanceWindow)} must be ddd:hh24:mi-ddd:hh24:mi in UTC, lowercase days (e.g. sun:03:00-sun:05:00)`);

  const vacuumJobsText = str(node, 'vacuumJobs', String(DEFAULTS.vacuumJobs));
  const vacuumJobs = Number(vacuumJobsText);
  check(/^\d+$/.test(vacuumJobsText) && vacuumJobs >= 1 && vacuumJobs <= MAX_VACUUM_JOBS,
    `context vacuumJobs ${JSON.stringify(vacuumJobsText)} must be a whole number from 1 to ${MAX_VACUUM_JOBS}`);

  const existingVpc = existingVpcFromContext(node);
  const restore = restoreConfigFromContext(node);
  // Cut-over rewrites host and port of the secrets it may update: the master secret must stay as it is.
  check(!restore.appSecretArns.includes(dbSecretArn),
    'context appSecretArns includes dbSecretArn: cut-over would repoint pgsteward\'s own master secret; list only the application\'s secrets');
  // RDS wants a subnet group spanning two zones; the one the stack creates uses the functions' subnets.
  check(restore.restoreSubnetGroup !== undefined || existingVpc === undefined || existingVpc.availabilityZones.length >= 2,
    'context restoreSubnetGroup is needed when the existing VPC lists one availability zone: RDS requires a subnet group spanning two; name one, or list subnets in two zones');
  const verify = verifyConfigFromContext(node);
  // A drill creates and drops databases and loads a whole dump: never on the production server.
  check(verify.verifySecretArn !== dbSecretArn,
    'context verifySecretArn is dbSecretArn: logical drills would restore into the production server; name a separate verification server\'s secret');

  return {
    dbIdentifier,
    dbSecretArn,
    eventBusName,
    architecture: architecture as LambdaArch,
    lambdaBuildDir,
    existingVpc,
    maintenanceWindow,
    vacuumJobs,
    ...snapshotConfigFromContext(node),
    ...retentionConfigFromContext(node),
    ...restore,
    ...verify,
  };
}

function existingVpcFromContext(node: Node): ExistingVpcConfig | undefined {
  const vpcId = str(node, 'vpcId', '');
  const availabilityZones = list(node.tryGetContext('availabilityZones'), 'availabilityZones');
  const privateSubnetIds = list(node.tryGetContext('privateSubnetIds'), 'privateSubnetIds');
  const dbSecurityGroupId = str(node, 'dbSecurityGroupId', '') || undefined;
  if (vpcId === '') {
    check(availabilityZones.length === 0 && privateSubnetIds.length === 0 && dbSecurityGroupId === undefined,
      'context availabilityZones, privateSubnetIds and dbSecurityGroupId need vpcId too');
    return undefined;
  }
  check(ec2Id('vpc').test(vpcId), `context vpcId ${JSON.stringify(vpcId)} must look like vpc-0123abcd (8 or 17 hex digits)`);
  check(availabilityZones.length > 0, 'context vpcId needs availabilityZones (e.g. us-east-1a,us-east-1b)');
  check(privateSubnetIds.length > 0, 'context vpcId needs privateSubnetIds (one or more per availability zone)');
  for (const id of privateSubnetIds) {
    check(ec2Id('subnet').test(id), `context privateSubnetIds: ${JSON.stringify(id)} must look like subnet-0123abcd (8 or 17 hex digits)`);
  }
  // Vpc.fromVpcAttributes pairs subnets with zones in order: N zones need k*N subnets.
  check(privateSubnetIds.length % availabilityZones.length === 0,
    `context privateSubnetIds has ${privateSubnetIds.length} subnets for ${availabilityZones.length} availability zones; list the same number of subnets per zone, in zone order`);
  if (dbSecurityGroupId !== undefined) {
    check(ec2Id('sg').test(dbSecurityGroupId),
      `context dbSecurityGroupId ${JSON.stringify(dbSecurityGroupId)} must look like sg-0123abcd (8 or 17 hex digits)`);
  }
  return { vpcId, availabilityZones, privateSubnetIds, dbSecurityGroupId };
}
