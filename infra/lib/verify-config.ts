import { Node } from 'constructs';
import { SECRET_ARN } from './restore-config';

/** What the drill restores: the latest managed RDS snapshot, or the latest logical dump. */
export type DrillKind = 'snapshot' | 'logical';

/** The verification drill's settings; each optional (the function has its own defaults). */
export interface VerifyConfig {
  /** The server logical dumps are restored on (a role allowed to CREATE DATABASE); needed for drillKind logical. */
  readonly verifySecretArn?: string;
  /** Absent: the function's db.t4g.micro. */
  readonly scratchInstanceClass?: string;
  /** Absent: the function's 30 (seed 002 7.2: RTO < 30 min). */
  readonly rtoTargetMinutes?: number;
  /** Absent: the function's 60 (seed 002 7.2: RPO < 1 h). */
  readonly rpoTargetMinutes?: number;
  /** Read-only SQL run on the restored copy; absent: none. */
  readonly smokeQueries?: string[];
  /** EventBridge Scheduler expression (UTC) of the drill. */
  readonly drillSchedule: string;
  readonly drillKind: DrillKind;
}

/**
 * Weekly (seed 002: "Backup verification | Weekly | Automated test restore"), Sunday 02:45 UTC:
 * 45 minutes after the 02:00 snapshot, so the backup it picks is that morning's and its age
 * (the drill's RPO) is as small as a daily backup allows.
 */
export const DRILL_DEFAULTS = { drillSchedule: 'cron(45 2 ? * SUN *)', drillKind: 'snapshot' as DrillKind };

/** Lambda's environment is 4 KB in all; the queries share it with the other variables. */
export const MAX_SMOKE_QUERIES_CHARS = 2000;

// db.<family>.<size>, as restore-config checks restoreInstanceClass.
const INSTANCE_CLASS = /^db\.[a-z0-9]+(\.[a-z0-9]+)?$/;
// Scheduler's three forms; cron has six fields.
const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const CRON = /^cron\((\S+ ){5}\S+\)$/;

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

const absent = (value: unknown) => value === undefined || value === null || value === '';

function minutes(node: Node, key: string, max: number): number | undefined {
  const raw = node.tryGetContext(key);
  if (absent(raw)) return undefined;
  const text = String(raw);
  check(/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= max,
    `context ${key} ${JSON.stringify(text)} must be a whole number of minutes from 1 to ${max}`);
  return Number(text);
}

function smokeQueries(value: unknown): string[] | undefined {
  if (absent(value)) return undefined;
  const example = '["SELECT count(*) FROM orders"]';
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new Error(`context smokeQueries is not JSON: ${value} (expected e.g. ${example})`);
    }
  }
  check(Array.isArray(parsed) && parsed.length > 0, `context smokeQueries must be a non-empty JSON array of SQL strings like ${example}`);
  (parsed as unknown[]).forEach((q, i) => {
    // One statement each: a ';' could end the read-only query and start another.
    check(typeof q === 'string' && q.trim() !== '' && !q.includes(';'),
      `context smokeQueries[${i}] ${JSON.stringify(q)} must be one non-empty SQL statement without ';'`);
  });
  const json = JSON.stringify(parsed);
  check(json.length <= MAX_SMOKE_QUERIES_CHARS,
    `context smokeQueries is ${json.length} characters as JSON; at most ${MAX_SMOKE_QUERIES_CHARS} fit in the function's environment`);
  return parsed as string[];
}

/**
 * Hours between two drills of a schedule expression: what the verified-backup age alarm allows.
 * The forms a drill schedule takes: rate(...), and cron that runs daily, on one weekday, or on one day of the month.
 */
export function drillIntervalHours(expression: string): number {
  const rate = RATE.exec(expression);
  if (rate) {
    const n = Number(rate[1]);
    return rate[2].startsWith('minute') ? Math.ceil(n / 60) : rate[2].startsWith('hour') ? n : n * 24;
  }
  const [, , dayOfMonth, month, dayOfWeek] = expression.slice(5, -1).split(' ');
  const every = (f: string) => f === '*' || f === '?';
  if (!every(month)) return 366 * 24;
  if (every(dayOfMonth) && every(dayOfWeek)) return 24;
  // SUN#1: once a month (up to five weeks apart); one weekday: weekly.
  if (every(dayOfMonth) && /^[A-Za-z0-9]+#\d$/.test(dayOfWeek)) return 35 * 24;
  if (every(dayOfMonth) && /^[A-Za-z0-9]+$/.test(dayOfWeek)) return 7 * 24;
  if (every(dayOfWeek) && /^\d{1,2}$/.test(dayOfMonth)) return 31 * 24;
  throw new Error(`context drillSchedule ${JSON.stringify(expression)}: cannot tell how often it runs (the verified-backup alarm needs it); ` +
    'use rate(N days), or a cron that runs daily, on one weekday (cron(45 2 ? * SUN *)) or on one day of the month (cron(45 2 1 * ? *))');
}

/** The drill's settings from the app's context, checked here rather than at the first drill. */
export function verifyConfigFromContext(node: Node): VerifyConfig {
  const rawSecret = node.tryGetContext('verifySecretArn');
  const verifySecretArn = absent(rawSecret) ? undefined : String(rawSecret);
  check(verifySecretArn === undefined || SECRET_ARN.test(verifySecretArn),
    `context verifySecretArn ${JSON.stringify(verifySecretArn)} is not a complete Secrets Manager ARN (it must end in the 6-character suffix, e.g. -AbCdEf)`);

  const rawClass = node.tryGetContext('scratchInstanceClass');
  const scratchInstanceClass = absent(rawClass) ? undefined : String(rawClass);
  check(scratchInstanceClass === undefined || INSTANCE_CLASS.test(scratchInstanceClass),
    `context scratchInstanceClass ${JSON.stringify(scratchInstanceClass)} must be an RDS instance class like db.t4g.micro`);

  const rawSchedule = node.tryGetContext('drillSchedule');
  const drillSchedule = absent(rawSchedule) ? DRILL_DEFAULTS.drillSchedule : String(rawSchedule);
  check(RATE.test(drillSchedule) || CRON.test(drillSchedule),
    `context drillSchedule ${JSON.stringify(drillSchedule)} must be an EventBridge Scheduler expression in UTC: rate(7 days) or cron(45 2 ? * SUN *)`);
  drillIntervalHours(drillSchedule);

  const rawKind = node.tryGetContext('drillKind');
  const drillKind = absent(rawKind) ? DRILL_DEFAULTS.drillKind : String(rawKind);
  check(drillKind === 'snapshot' || drillKind === 'logical',
    `context drillKind ${JSON.stringify(drillKind)} must be snapshot (restore the latest RDS snapshot) or logical (the latest pg_dump)`);
  check(drillKind !== 'logical' || verifySecretArn !== undefined,
    'context drillKind logical needs verifySecretArn: the secret of the server the dump is restored on (a role allowed to CREATE DATABASE)');

  return {
    verifySecretArn,
    scratchInstanceClass,
    // A week: targets beyond it would pass any drill.
    rtoTargetMinutes: minutes(node, 'rtoTargetMinutes', 10080),
    rpoTargetMinutes: minutes(node, 'rpoTargetMinutes', 10080),
    smokeQueries: smokeQueries(node.tryGetContext('smokeQueries')),
    drillSchedule,
    drillKind: drillKind as DrillKind,
  };
}
