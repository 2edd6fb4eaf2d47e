//! The seed 000 monitoring queries as one statement and one round trip: the simple-query
//! protocol (no prepare) and a single JSON row parsed into a typed observation.

use serde::Deserialize;
use tokio_postgres::Client;

use crate::error::Result;

/// Tables with fewer dead tuples than this don't compete for "worst table": a ratio over a
/// handful of rows is noise (the same floor the vacuum sweep uses).
pub const MIN_DEAD_TUPLES: i64 = 1000;

const SQL: &str = r#"
SELECT json_build_object(
  'serverVersion', current_setting('server_version'),
  'inRecovery', pg_is_in_recovery(),
  'database', current_database(),
  'seesAllSessions', pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'),
  'blocksHit', (SELECT sum(blks_hit) FROM pg_stat_database WHERE datname = current_database()),
  'blocksRead', (SELECT sum(blks_read) FROM pg_stat_database WHERE datname = current_database()),
  'deadTuples', (SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables),
  'liveTuples', (SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables),
  'worstTable', (SELECT json_build_object('schema', schemaname, 'table', relname,
                        'deadTuples', n_dead_tup, 'liveTuples', n_live_tup)
                 FROM pg_stat_user_tables WHERE n_dead_tup >= MIN_DEAD
                 ORDER BY n_dead_tup::float8 / nullif(n_live_tup + n_dead_tup, 0) DESC NULLS LAST LIMIT 1),
  'connections', (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
  'activeConnections', (SELECT count(*) FROM pg_stat_activity
                        WHERE backend_type = 'client backend' AND state = 'active'),
  'maxConnections', current_setting('max_connections')::int,
  'replicas', (SELECT count(*) FROM pg_stat_replication),
  'replicationLagBytes', CASE WHEN pg_is_in_recovery()
      THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
      ELSE (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)) FROM pg_stat_replication) END,
  'longestQuery', (SELECT json_build_object('pid', pid, 'role', usename,
                          'seconds', extract(epoch FROM now() - query_start))
                   FROM pg_stat_activity
                   WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
                   ORDER BY query_start LIMIT 1),
  'longestIdleInTransaction', (SELECT json_build_object('pid', pid, 'role', usename,
                          'seconds', extract(epoch FROM now() - state_change))
                   FROM pg_stat_activity
                   WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
                   ORDER BY state_change LIMIT 1),
  'databaseSizeBytes', pg_database_size(current_database()),
  'oldestXidAge', (SELECT max(age(datfrozenxid)) FROM pg_database WHERE datallowconn)
)::text"#;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub server_version: String,
    pub in_recovery: bool,
    pub database: String,
    pub sees_all_sessions: bool,
    pub blocks_hit: Option<f64>,
    pub blocks_read: Option<f64>,
    pub dead_tuples: f64,
    pub live_tuples: f64,
    pub worst_table: Option<WorstTable>,
    pub connections: i64,
    pub active_connections: i64,
    pub max_connections: i64,
    pub replicas: i64,
    pub replication_lag_bytes: Option<f64>,
    pub longest_query: Option<Session>,
    pub longest_idle_in_transaction: Option<Session>,
    pub database_size_bytes: i64,
    pub oldest_xid_age: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorstTable {
    pub schema: String,
    pub table: String,
    pub dead_tuples: i64,
    pub live_tuples: i64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Session {
    pub pid: i32,
    pub role: Option<String>,
    pub seconds: f64,
}

/// The monitoring statement (also what the benchmark gives psql).
pub fn monitoring_sql() -> String {
    SQL.replace("MIN_DEAD", &MIN_DEAD_TUPLES.to_string())
}

/// Runs the monitoring statement: one round trip.
pub async fn observe(client: &Client) -> Result<Observation> {
    crate::pg::query_json(client, &monitoring_sql(), "monitoring").await
}
