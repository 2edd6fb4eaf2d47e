import { Node } from 'constructs';

/** What the snapshot task backs up: an RDS instance or an Aurora cluster (dbIdentifier is then a cluster id). */
export type SnapshotSource = 'instance' | 'cluster';

/** A Region (and optionally an account) that every managed snapshot is copied to. */
export interface CopyDestination {
  readonly region: string;
  /** Key ARN in `region` for the encrypted copy; needed when the source snapshot is encrypted. */
  readonly kmsKeyId?: string;
  /** Account the copy is shared with (ModifyDBSnapshotAttribute restore). */
  readonly shareWithAccount?: string;
}

export interface SnapshotConfig {
  readonly snapshotSource: SnapshotSource;
  /** Absent: the backup bucket uses S3-managed encryption. */
  readonly backupKmsKeyArn?: string;
  readonly copyDestinations: CopyDestination[];
  /** PostgreSQL major version of pg_dump in the image: at least the server's. */
  readonly pgMajorVersion: number;
}

export const SNAPSHOT_DEFAULTS: SnapshotConfig = { snapshotSource: 'instance', copyDestinations: [], pgMajorVersion: 15 };

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
// A key ARN (not an alias, not a bare id): IAM grants need the exact key. mrk- keys are multi-Region keys.
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:key\/(mrk-)?[A-Za-z0-9-]+$/;
const ACCOUNT = /^\d{12}$/;
const DESTINATION_FIELDS = ['region', 'kmsKeyId', 'shareWithAccount'];

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

/** `-c copyDestinations='[...]'` arrives as a string, cdk.json gives the array itself. */
function parseDestinations(value: unknown): CopyDestination[] {
  if (value === undefined || value === null || value === '') return [];
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new Error(`context copyDestinations is not JSON: ${value} (expected e.g. [{"region":"us-west-2"}])`);
    }
  }
  check(Array.isArray(parsed), `context copyDestinations must be a JSON array, got ${JSON.stringify(parsed)}`);
  const seen = new Set<string>();
  return (parsed as unknown[]).map((entry, i) => {
    const where = `context copyDestinations[${i}]`;
    check(typeof entry === 'object' && entry !== null && !Array.isArray(entry),
      `${where} must be an object like {"region":"us-west-2","kmsKeyId":"arn:aws:kms:us-west-2:...","shareWithAccount":"210987654321"}`);
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) {
      // A typo (kmsKeyID) silently ignored would make unencrypted or unshared copies.
      check(DESTINATION_FIELDS.includes(key), `${where} has an unknown field ${JSON.stringify(key)} (allowed: ${DESTINATION_FIELDS.join(', ')})`);
    }
    check(typeof e.region === 'string' && REGION.test(e.region), `${where}.region ${JSON.stringify(e.region)} must be a Region name like us-west-2`);
    const region = e.region as string;
    check(!seen.has(region), `${where}.region ${region} is listed twice; one copy per Region`);
    seen.add(region);
    const out: { region: string; kmsKeyId?: string; shareWithAccount?: string } = { region };
    if (e.kmsKeyId !== undefined) {
      const m = typeof e.kmsKeyId === 'string' ? KMS_KEY_ARN.exec(e.kmsKeyId) : null;
      check(m !== null, `${where}.kmsKeyId ${JSON.stringify(e.kmsKeyId)} must be a KMS key ARN (not an alias or key id)`);
      check(m![1] === region, `${where}.kmsKeyId must be a key in ${region} (the copy's Region), got one in ${m![1]}`);
      out.kmsKeyId = e.kmsKeyId as string;
    }
    if (e.shareWithAccount !== undefined) {
      check(typeof e.shareWithAccount === 'string' && ACCOUNT.test(e.shareWithAccount),
        `${where}.shareWithAccount ${JSON.stringify(e.shareWithAccount)} must be a 12-digit account id in quotes`);
      out.shareWithAccount = e.shareWithAccount as string;
    }
    return out;
  });
}

/** snapshotSource, backupKmsKeyArn and copyDestinations from the app's context. */
export function snapshotConfigFromContext(node: Node): SnapshotConfig {
  const rawSource = node.tryGetContext('snapshotSource');
  const snapshotSource = rawSource === undefined || rawSource === null || rawSource === ''
    ? SNAPSHOT_DEFAULTS.snapshotSource : String(rawSource);
  check(snapshotSource === 'instance' || snapshotSource === 'cluster',
    `context snapshotSource ${JSON.stringify(snapshotSource)} must be instance or cluster (Aurora)`);

  const rawKey = node.tryGetContext('backupKmsKeyArn');
  const backupKmsKeyArn = rawKey === undefined || rawKey === null || rawKey === '' ? undefined : String(rawKey);
  if (backupKmsKeyArn !== undefined) {
    check(KMS_KEY_ARN.test(backupKmsKeyArn),
      `context backupKmsKeyArn ${JSON.stringify(backupKmsKeyArn)} must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not an alias`);
  }

  const rawMajor = node.tryGetContext('pgMajorVersion');
  const pgMajorText = rawMajor === undefined || rawMajor === null || rawMajor === '' ? String(SNAPSHOT_DEFAULTS.pgMajorVersion) : String(rawMajor);
  // pg_dump refuses servers of a newer major version; Amazon Linux 2023 packages postgresql15 and later.
  check(/^\d+$/.test(pgMajorText) && Number(pgMajorText) >= 15 && Number(pgMajorText) <= 99,
    `context pgMajorVersion ${JSON.stringify(pgMajorText)} must be a PostgreSQL major version from 15 (the server's or newer)`);

  return {
    snapshotSource: snapshotSource as SnapshotSource,
    pgMajorVersion: Number(pgMajorText),
    backupKmsKeyArn,
    copyDestinations: parseDestinations(node.tryGetContext('copyDestinations')),
  };
}
