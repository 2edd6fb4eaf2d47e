import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';

/** EMF namespace and dimension of the health-check metrics (the Rust code emits the same). */
export const METRIC_NAMESPACE = 'pgsteward';
export const DATABASE_DIMENSION = 'Database';

export type Level = 'warning' | 'critical';

export interface MetricAlarmSpec {
  /** The EMF metric name. */
  readonly metricName: string;
  /** The unit the function emits; documentation only (see HealthCheck for why alarms do not filter on it). */
  readonly unit: cloudwatch.Unit;
  readonly warning: number;
  readonly critical: number;
  readonly comparison: cloudwatch.ComparisonOperator;
  /** The runbook row (seed 000, "Alerting Thresholds") this comes from. */
  readonly runbook: string;
}

const LESS = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD;
const GREATER = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD;
const { PERCENT, BYTES, SECONDS, COUNT } = cloudwatch.Unit;

/**
 * The runbook's alerting table, one row per metric; the only copy in infra.
 * A warning and a critical alarm are made from each row, and the tests iterate it.
 */
export const HEALTH_CHECK_ALARMS: readonly MetricAlarmSpec[] = [
  { metricName: 'CacheHitRatio', unit: PERCENT, warning: 99, critical: 95, comparison: LESS, runbook: 'Cache hit ratio <99% / <95%' },
  { metricName: 'DeadTupleRatioWorst', unit: PERCENT, warning: 10, critical: 30, comparison: GREATER, runbook: 'Dead tuple ratio >10% / >30%' },
  { metricName: 'ActiveConnectionsPercent', unit: PERCENT, warning: 70, critical: 90, comparison: GREATER, runbook: 'Active connections >70% / >90% of max' },
  { metricName: 'ReplicationLagBytes', unit: BYTES, warning: 1048576, critical: 10485760, comparison: GREATER, runbook: 'Replication lag >1MB / >10MB' },
  { metricName: 'LongestQuerySeconds', unit: SECONDS, warning: 30, critical: 120, comparison: GREATER, runbook: 'Long-running queries >30s / >120s' },
  { metricName: 'LongestIdleInTransactionSeconds', unit: SECONDS, warning: 60, critical: 300, comparison: GREATER, runbook: 'Idle in transaction >60s / >300s' },
  { metricName: 'DatabaseGrowthPercentPerDay', unit: PERCENT, warning: 5, critical: 10, comparison: GREATER, runbook: 'Database size growth >5%/day / >10%/day' },
  // Not in the runbook's table: wraparound protection. PostgreSQL stops writes near 2^31 (~2.1e9).
  { metricName: 'OldestXidAge', unit: COUNT, warning: 1_000_000_000, critical: 1_500_000_000, comparison: GREATER, runbook: 'Transaction ID age (wraparound at ~2.1e9)' },
];

/** The critical alarm of this metric triggers remediation (terminate idle-in-transaction sessions). */
export const REMEDIATION_METRIC = 'LongestIdleInTransactionSeconds';

export function alarmName(dbIdentifier: string, metricName: string, level: Level): string {
  return `pgsteward-${dbIdentifier}-${metricName}-${level}`;
}
