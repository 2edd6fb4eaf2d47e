import { Node } from 'constructs';

/** Where and how pitr-restore creates the restored instance, and which secrets cut-over may rewrite. */
export interface RestoreConfig {
  /** Absent: the stack creates a DB subnet group over the functions' subnets. */
  readonly restoreSubnetGroup?: string;
  /** Absent: dbSecurityGroupId when given (the restored copy admits who the database admits), else a group the stack creates. */
  readonly restoreSecurityGroupIds: string[];
  /** Absent: RDS's default parameter group for the engine. */
  readonly restoreParameterGroup?: string;
  /** Absent: the source's instance class. */
  readonly restoreInstanceClass?: string;
  /** The application secrets cut-over may point at a restored instance; none: cut-over is refused. */
  readonly appSecretArns: string[];
  /** The customer-managed KMS key of the database's storage; absent: unencrypted, or the AWS-managed aws/rds key. */
  readonly dbKmsKeyArn?: string;
}

// A complete secret ARN ends in the 6-character suffix Secrets Manager adds; IAM
// needs the complete ARN to match exactly (a partial one would need a wildcard).
export const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/;
// RDS DB subnet group names: letters, digits, periods, underscores, spaces, hyphens; max 255; not "default".
const SUBNET_GROUP = /^[A-Za-z0-9._ -]{1,255}$/;
// RDS parameter group names: letter first, letters/digits/hyphens, no "--", no trailing hyphen; max 255.
const PARAMETER_GROUP = /^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,254}(?<!-)$/;
// db.<family>.<size>, e.g. db.r6g.large, db.t4g.micro, db.serverless (Aurora Serverless v2).
const INSTANCE_CLASS = /^db\.[a-z0-9]+(\.[a-z0-9]+)?$/;
const SECURITY_GROUP = /^sg-([0-9a-f]{8}|[0-9a-f]{17})$/;
// A key ARN (not an alias, not a bare id): IAM grants need the exact key. mrk- keys are multi-Region keys.
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/(mrk-)?[A-Za-z0-9-]+$/;

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

const absent = (value: unknown) => value === undefined || value === null || value === '';

/** Context values come as strings from `-c k=v` or as JSON arrays from cdk.json. */
function list(value: unknown, key: string): string[] {
  if (absent(value)) return [];
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === 'string') return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  throw new Error(`context ${key} must be a list or a comma-separated string, got ${JSON.stringify(value)}`);
}

function optional(node: Node, key: string, rule: RegExp, what: string): string | undefined {
  const value = node.tryGetContext(key);
  if (absent(value)) return undefined;
  const text = String(value);
  check(rule.test(text), `context ${key} ${JSON.stringify(text)} ${what}`);
  return text;
}

/** The restore settings from the app's context; each optional, each checked here rather than at 03:00 during an incident. */
export function restoreConfigFromContext(node: Node): RestoreConfig {
  const restoreSubnetGroup = optional(node, 'restoreSubnetGroup', SUBNET_GROUP,
    'must be a DB subnet group name (letters, digits, periods, underscores, spaces, hyphens; max 255)');
  // RDS's "default" group spans the default VPC, whose subnets may be public: never restore there by accident.
  check(restoreSubnetGroup?.toLowerCase() !== 'default',
    'context restoreSubnetGroup "default" is the default VPC\'s group: name a subnet group in the database\'s VPC, or leave it out and the stack creates one');

  const restoreSecurityGroupIds = list(node.tryGetContext('restoreSecurityGroupIds'), 'restoreSecurityGroupIds');
  for (const id of restoreSecurityGroupIds) {
    check(SECURITY_GROUP.test(id), `context restoreSecurityGroupIds: ${JSON.stringify(id)} must look like sg-0123abcd (8 or 17 hex digits)`);
  }
  check(new Set(restoreSecurityGroupIds).size === restoreSecurityGroupIds.length, 'context restoreSecurityGroupIds lists a group twice');
  check(restoreSecurityGroupIds.length <= 5, `context restoreSecurityGroupIds has ${restoreSecurityGroupIds.length} groups; an RDS instance takes at most 5`);

  const restoreParameterGroup = optional(node, 'restoreParameterGroup', PARAMETER_GROUP,
    'must be a DB parameter group name (letter first, then letters, digits, single hyphens; no hyphen at the end)');
  const restoreInstanceClass = optional(node, 'restoreInstanceClass', INSTANCE_CLASS,
    'must be an RDS instance class like db.r6g.large');

  const appSecretArns = list(node.tryGetContext('appSecretArns'), 'appSecretArns');
  for (const arn of appSecretArns) {
    check(SECRET_ARN.test(arn),
      `context appSecretArns: ${JSON.stringify(arn)} is not a complete Secrets Manager ARN (it must end in the 6-character suffix, e.g. -AbCdEf)`);
  }
  check(new Set(appSecretArns).size === appSecretArns.length, 'context appSecretArns lists a secret twice');

  // The restored copy is encrypted with the source's key: RDS makes a grant on it for the caller.
  const dbKmsKeyArn = optional(node, 'dbKmsKeyArn', KMS_KEY_ARN,
    'must be the KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>) of the database\'s storage, not an alias');

  return { restoreSubnetGroup, restoreSecurityGroupIds, restoreParameterGroup, restoreInstanceClass, appSecretArns, dbKmsKeyArn };
}
