import { Node } from 'constructs';

/**
 * Grandfather-father-son retention of managed snapshots and S3 dumps: keep the
 * newest of each of the last `days` days, `weeks` weeks, `months` months and
 * `years` years, nothing older than `maxAgeDays` (null: no cap), and never fewer
 * than the `minKeep` newest.
 */
export interface RetentionPolicy {
  readonly days: number;
  readonly weeks: number;
  readonly months: number;
  readonly years: number;
  readonly maxAgeDays: number | null;
  readonly minKeep: number;
}

/** Old rows of one table: archived to S3 (unless archive is false), then deleted in batches. */
export interface ArchiveRule {
  /** `table` or `schema.table`. */
  readonly table: string;
  /** The timestamp column compared with olderThanDays. */
  readonly column: string;
  readonly olderThanDays: number;
  /** An extra SQL predicate from the deployment's own config, e.g. status IN ('completed','failed'). */
  readonly where?: string;
  /** false: the rows are deleted without an archive. Required, so that choice is always written down. */
  readonly archive: boolean;
}

export interface RetentionConfig {
  /** Absent: the function's own defaults. */
  readonly retentionPolicy?: RetentionPolicy;
  /** Absent: no rows are archived or deleted. */
  readonly archiveRules?: ArchiveRule[];
  /** Absent: the function's own default. */
  readonly scratchMaxAgeHours?: number;
}

/**
 * Fields a partial policy does not name. Filled in here so the function always gets
 * a complete policy and the deployed value says exactly what is kept.
 */
export const RETENTION_POLICY_DEFAULTS: RetentionPolicy = {
  days: 30, weeks: 0, months: 0, years: 0, maxAgeDays: null, minKeep: 3,
};

const POLICY_FIELDS = Object.keys(RETENTION_POLICY_DEFAULTS);
const RULE_FIELDS = ['table', 'column', 'olderThanDays', 'where', 'archive'];
// A plain SQL identifier (quoted by the function anyway); PostgreSQL truncates at 63 bytes.
const IDENT = '[A-Za-z_][A-Za-z0-9_$]{0,62}';
const TABLE = new RegExp(`^(${IDENT}\\.)?${IDENT}$`);
const COLUMN = new RegExp(`^${IDENT}$`);

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

const absent = (value: unknown) => value === undefined || value === null || value === '';
const wholeNumber = (value: unknown, min: number) => Number.isInteger(value) && (value as number) >= min;

/** `-c key='<json>'` arrives as a string, cdk.json gives the value itself. */
function json(value: unknown, key: string, example: string): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    throw new Error(`context ${key} is not JSON: ${value} (expected e.g. ${example})`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parsePolicy(value: unknown): RetentionPolicy | undefined {
  if (absent(value)) return undefined;
  const example = '{"days":30,"weeks":4,"months":12,"years":0,"maxAgeDays":null,"minKeep":3}';
  const parsed = json(value, 'retentionPolicy', example);
  check(isObject(parsed), `context retentionPolicy must be a JSON object like ${example}, got ${JSON.stringify(parsed)}`);
  const p = parsed as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    // A typo (minkeep) silently ignored would keep the defaults the operator meant to change.
    check(POLICY_FIELDS.includes(key), `context retentionPolicy has an unknown field ${JSON.stringify(key)} (allowed: ${POLICY_FIELDS.join(', ')})`);
  }
  const out = { ...RETENTION_POLICY_DEFAULTS, ...p } as RetentionPolicy;
  for (const key of ['days', 'weeks', 'months', 'years'] as const) {
    check(wholeNumber(out[key], 0), `context retentionPolicy.${key} ${JSON.stringify(out[key])} must be a whole number, 0 or more`);
  }
  check(out.maxAgeDays === null || wholeNumber(out.maxAgeDays, 1),
    `context retentionPolicy.maxAgeDays ${JSON.stringify(out.maxAgeDays)} must be a whole number of days from 1, or null for no cap`);
  // The newest backup always survives: a policy of 0 would let a prune delete every backup.
  check(wholeNumber(out.minKeep, 1), `context retentionPolicy.minKeep ${JSON.stringify(out.minKeep)} must be a whole number from 1`);
  // The function refuses such a policy at start; say so at synth instead of at 04:00.
  check(out.days + out.weeks + out.months + out.years > 0 || out.maxAgeDays !== null,
    'context retentionPolicy keeps no period (days, weeks, months and years are all 0) and has no maxAgeDays: say what to keep, e.g. {"days":30,"weeks":8}');
  return out;
}

function parseRules(value: unknown): ArchiveRule[] | undefined {
  if (absent(value)) return undefined;
  const example = '[{"table":"public.audit_events","column":"created_at","olderThanDays":90,"archive":true}]';
  const parsed = json(value, 'archiveRules', example);
  check(Array.isArray(parsed), `context archiveRules must be a JSON array like ${example}, got ${JSON.stringify(parsed)}`);
  return (parsed as unknown[]).map((entry, i) => {
    const where = `context archiveRules[${i}]`;
    check(isObject(entry), `${where} must be an object like ${example.slice(1, -1)}`);
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) {
      // "olderThan" or "Where" silently ignored would delete more rows than the operator wrote.
      check(RULE_FIELDS.includes(key), `${where} has an unknown field ${JSON.stringify(key)} (allowed: ${RULE_FIELDS.join(', ')})`);
    }
    check(typeof e.table === 'string' && TABLE.test(e.table),
      `${where}.table ${JSON.stringify(e.table)} must be table or schema.table (letters, digits, _ and $; letter or _ first)`);
    check(typeof e.column === 'string' && COLUMN.test(e.column),
      `${where}.column ${JSON.stringify(e.column)} must be a column name (letters, digits, _ and $; letter or _ first)`);
    check(wholeNumber(e.olderThanDays, 1), `${where}.olderThanDays ${JSON.stringify(e.olderThanDays)} must be a whole number of days from 1`);
    check(typeof e.archive === 'boolean',
      `${where}.archive must be true (archive to S3, then delete) or false (delete without an archive), got ${JSON.stringify(e.archive)}`);
    if (e.where !== undefined) {
      // One predicate, ANDed with the age test; a ';' could end the statement and start another.
      check(typeof e.where === 'string' && e.where.trim() !== '' && !e.where.includes(';'),
        `${where}.where ${JSON.stringify(e.where)} must be one non-empty SQL predicate without ';', e.g. "status IN ('completed','failed')"`);
    }
    // Field order as the function documents it; `where` only when given.
    return {
      table: e.table as string,
      column: e.column as string,
      olderThanDays: e.olderThanDays as number,
      ...(e.where !== undefined ? { where: e.where as string } : {}),
      archive: e.archive as boolean,
    };
  });
}

/** retentionPolicy, archiveRules and scratchMaxAgeHours from the app's context; each optional. */
export function retentionConfigFromContext(node: Node): RetentionConfig {
  const rawHours = node.tryGetContext('scratchMaxAgeHours');
  let scratchMaxAgeHours: number | undefined;
  if (!absent(rawHours)) {
    const text = String(rawHours);
    check(/^\d+$/.test(text) && Number(text) >= 1,
      `context scratchMaxAgeHours ${JSON.stringify(text)} must be a whole number of hours from 1 (longer than a verification drill runs)`);
    scratchMaxAgeHours = Number(text);
  }
  return {
    retentionPolicy: parsePolicy(node.tryGetContext('retentionPolicy')),
    archiveRules: parseRules(node.tryGetContext('archiveRules')),
    scratchMaxAgeHours,
  };
}
