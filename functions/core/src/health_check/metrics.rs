//! From an observation to levelled metrics, and from metrics to CloudWatch Embedded
//! Metric Format, so alarms need no CloudWatch SDK call.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::collect::Observation;
use super::thresholds::{self as th, Level, MetricDef, Thresholds};

pub const NAMESPACE: &str = "pgsteward";
pub const DIMENSION: &str = "Database";

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    pub name: &'static str,
    pub emf_name: &'static str,
    pub unit: &'static str,
    /// None when there is nothing to measure (no replica, no active query).
    pub value: Option<f64>,
    /// None for figures without alert levels (size, counts).
    pub level: Option<Level>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// What the figure is about: the worst table, the session's pid and role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
}

/// A database size seen at a time, for growth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SizeSample {
    pub size_bytes: i64,
    pub at: DateTime<Utc>,
}

/// Growth needs at least this much history: a 5-minute delta scaled to a day is noise.
pub const MIN_GROWTH_WINDOW_SECS: i64 = 3600;

/// Growth in percent per day between two samples, when they are far enough apart.
pub fn growth_per_day(previous: SizeSample, now: SizeSample) -> Option<f64> {
    let secs = (now.at - previous.at).num_seconds();
    if secs < MIN_GROWTH_WINDOW_SECS || previous.size_bytes <= 0 {
        return None;
    }
    let change = (now.size_bytes - previous.size_bytes) as f64 / previous.size_bytes as f64 * 100.0;
    Some(change * 86_400.0 / secs as f64)
}

fn levelled(t: &Thresholds, def: MetricDef, value: Option<f64>, about: Option<String>) -> Metric {
    let l = t.limits(&def);
    Metric {
        name: def.key,
        emf_name: def.emf_name,
        unit: def.unit,
        value: value.map(round2),
        level: value.map(|v| t.level(&def, v)),
        warning: Some(l.warning),
        critical: Some(l.critical),
        about,
    }
}

fn plain(name: &'static str, emf_name: &'static str, unit: &'static str, value: f64) -> Metric {
    Metric {
        name,
        emf_name,
        unit,
        value: Some(value),
        level: None,
        warning: None,
        critical: None,
        about: None,
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole * 100.0)
}

fn who(s: &super::collect::Session) -> String {
    format!(
        "pid {} ({})",
        s.pid,
        s.role.as_deref().unwrap_or("unknown role")
    )
}

/// Every metric of the runbook's table, levelled by the thresholds.
pub fn evaluate(o: &Observation, t: &Thresholds, growth: Option<f64>) -> Vec<Metric> {
    let hit = o.blocks_hit.unwrap_or(0.0);
    let read = o.blocks_read.unwrap_or(0.0);
    let worst = o.worst_table.as_ref();
    vec![
        levelled(t, th::CACHE_HIT_RATIO, ratio(hit, hit + read), None),
        levelled(
            t,
            th::DEAD_TUPLE_RATIO_WORST,
            Some(
                worst
                    .and_then(|w| {
                        ratio(w.dead_tuples as f64, (w.dead_tuples + w.live_tuples) as f64)
                    })
                    .unwrap_or(0.0),
            ),
            worst.map(|w| format!("{}.{}", w.schema, w.table)),
        ),
        levelled(
            t,
            th::DEAD_TUPLE_RATIO,
            Some(ratio(o.dead_tuples, o.dead_tuples + o.live_tuples).unwrap_or(0.0)),
            None,
        ),
        levelled(
            t,
            th::CONNECTIONS_PERCENT,
            ratio(o.connections as f64, o.max_connections as f64),
            Some(format!(
                "{} of {} connections, {} active",
                o.connections, o.max_connections, o.active_connections
            )),
        ),
        levelled(
            t,
            th::REPLICATION_LAG,
            o.replication_lag_bytes,
            Some(if o.in_recovery {
                "this server is a standby".into()
            } else {
                format!("{} replicas", o.replicas)
            }),
        ),
        levelled(
            t,
            th::LONGEST_QUERY,
            Some(o.longest_query.as_ref().map_or(0.0, |s| s.seconds)),
            o.longest_query.as_ref().map(who),
        ),
        levelled(
            t,
            th::LONGEST_IDLE_IN_TRANSACTION,
            Some(
                o.longest_idle_in_transaction
                    .as_ref()
                    .map_or(0.0, |s| s.seconds),
            ),
            o.longest_idle_in_transaction.as_ref().map(who),
        ),
        levelled(t, th::GROWTH, growth, None),
        levelled(
            t,
            th::OLDEST_XID_AGE,
            o.oldest_xid_age.map(|v| v as f64),
            None,
        ),
        plain(
            "databaseSizeBytes",
            "DatabaseSizeBytes",
            "Bytes",
            o.database_size_bytes as f64,
        ),
        plain("connections", "Connections", "Count", o.connections as f64),
        plain(
            "activeConnections",
            "ActiveConnections",
            "Count",
            o.active_connections as f64,
        ),
    ]
}

/// The worst level among the metrics.
pub fn overall(metrics: &[Metric]) -> Level {
    metrics
        .iter()
        .filter_map(|m| m.level)
        .max()
        .unwrap_or(Level::Ok)
}

/// One EMF log line: metrics without a value are left out (missing, not zero).
pub fn emf_line(db_identifier: &str, metrics: &[Metric], at: DateTime<Utc>) -> String {
    let mut root = Map::new();
    let mut defs = Vec::new();
    for m in metrics {
        if let Some(v) = m.value {
            defs.push(json!({"Name": m.emf_name, "Unit": m.unit}));
            root.insert(m.emf_name.to_string(), json!(v));
        }
    }
    root.insert(DIMENSION.to_string(), json!(db_identifier));
    root.insert(
        "_aws".to_string(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [[DIMENSION]], "Metrics": defs}]
        }),
    );
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn growth_needs_an_hour_and_scales_to_a_day() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let a = SizeSample {
            size_bytes: 1000,
            at: t0,
        };
        let b = SizeSample {
            size_bytes: 1010,
            at: t0 + chrono::Duration::minutes(5),
        };
        assert_eq!(growth_per_day(a, b), None);
        let c = SizeSample {
            size_bytes: 1010,
            at: t0 + chrono::Duration::hours(12),
        };
        assert!((growth_per_day(a, c).unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn emf_has_namespace_dimension_and_only_measured_metrics() {
        let ms = vec![
            plain("a", "A", "Count", 1.0),
            Metric {
                value: None,
                ..plain("b", "B", "Count", 0.0)
            },
        ];
        let line: Value = serde_json::from_str(&emf_line("orders", &ms, Utc::now())).unwrap();
        assert_eq!(line["Database"], "orders");
        assert_eq!(line["A"], 1.0);
        assert!(line.get("B").is_none());
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "pgsteward"
        );
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
