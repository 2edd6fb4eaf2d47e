//! The runbook's alerting-thresholds table (seed 000, "Alerting Thresholds") as data.
//! These are the defaults; `PGSTEWARD_THRESHOLDS` overrides any of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }
}

/// Whether a higher or a lower value is the bad direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    Above,
    Below,
}

/// A metric with alert levels: its config key, EMF name, unit and seed defaults.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub key: &'static str,
    pub emf_name: &'static str,
    pub unit: &'static str,
    pub bad: Bad,
    pub warning: f64,
    pub critical: f64,
}

pub const CACHE_HIT_RATIO: MetricDef = MetricDef {
    key: "cacheHitRatio",
    emf_name: "CacheHitRatio",
    unit: "Percent",
    bad: Bad::Below,
    warning: 99.0,
    critical: 95.0,
};
pub const DEAD_TUPLE_RATIO_WORST: MetricDef = MetricDef {
    key: "deadTupleRatioWorst",
    emf_name: "DeadTupleRatioWorst",
    unit: "Percent",
    bad: Bad::Above,
    warning: 10.0,
    critical: 30.0,
};
pub const DEAD_TUPLE_RATIO: MetricDef = MetricDef {
    key: "deadTupleRatio",
    emf_name: "DeadTupleRatio",
    unit: "Percent",
    bad: Bad::Above,
    warning: 10.0,
    critical: 30.0,
};
pub const CONNECTIONS_PERCENT: MetricDef = MetricDef {
    key: "activeConnectionsPercent",
    emf_name: "ActiveConnectionsPercent",
    unit: "Percent",
    bad: Bad::Above,
    warning: 70.0,
    critical: 90.0,
};
pub const REPLICATION_LAG: MetricDef = MetricDef {
    key: "replicationLagBytes",
    emf_name: "ReplicationLagBytes",
    unit: "Bytes",
    bad: Bad::Above,
    warning: 1024.0 * 1024.0,
    critical: 10.0 * 1024.0 * 1024.0,
};
pub const LONGEST_QUERY: MetricDef = MetricDef {
    key: "longestQuerySeconds",
    emf_name: "LongestQuerySeconds",
    unit: "Seconds",
    bad: Bad::Above,
    warning: 30.0,
    critical: 120.0,
};
pub const LONGEST_IDLE_IN_TRANSACTION: MetricDef = MetricDef {
    key: "longestIdleInTransactionSeconds",
    emf_name: "LongestIdleInTransactionSeconds",
    unit: "Seconds",
    bad: Bad::Above,
    warning: 60.0,
    critical: 300.0,
};
pub const GROWTH: MetricDef = MetricDef {
    key: "databaseGrowthPercentPerDay",
    emf_name: "DatabaseGrowthPercentPerDay",
    unit: "Percent",
    bad: Bad::Above,
    warning: 5.0,
    critical: 10.0,
};
/// Not in the seed's table: AWS's guidance for `MaximumUsedTransactionIDs` (act at 1 billion,
/// wraparound at ~2.1 billion).
pub const OLDEST_XID_AGE: MetricDef = MetricDef {
    key: "oldestXidAge",
    emf_name: "OldestXidAge",
    unit: "Count",
    bad: Bad::Above,
    warning: 1_000_000_000.0,
    critical: 1_500_000_000.0,
};

pub const ALL: [MetricDef; 9] = [
    CACHE_HIT_RATIO,
    DEAD_TUPLE_RATIO_WORST,
    DEAD_TUPLE_RATIO,
    CONNECTIONS_PERCENT,
    REPLICATION_LAG,
    LONGEST_QUERY,
    LONGEST_IDLE_IN_TRANSACTION,
    GROWTH,
    OLDEST_XID_AGE,
];

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub warning: f64,
    pub critical: f64,
}

/// Warning and critical limits per metric key.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds(BTreeMap<&'static str, Limits>);

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds(
            ALL.iter()
                .map(|m| {
                    (
                        m.key,
                        Limits {
                            warning: m.warning,
                            critical: m.critical,
                        },
                    )
                })
                .collect(),
        )
    }
}

impl Thresholds {
    /// Applies overrides written as JSON: `{"longestQuerySeconds":{"warning":10,"critical":60}}`.
    pub fn with_overrides(json: &str) -> Result<Self> {
        const VAR: &str = "PGSTEWARD_THRESHOLDS";
        let example =
            r#"PGSTEWARD_THRESHOLDS='{"longestQuerySeconds":{"warning":10,"critical":60}}'"#;
        let given: BTreeMap<String, Limits> = serde_json::from_str(json).map_err(|e| {
            Error::InvalidConfig(format!("{VAR} is not valid ({e}); e.g. {example}"))
        })?;
        let mut t = Thresholds::default();
        for (key, limits) in given {
            let def = ALL.iter().find(|m| m.key == key).ok_or_else(|| {
                let known: Vec<_> = ALL.iter().map(|m| m.key).collect();
                Error::InvalidConfig(format!(
                    "{VAR} names unknown metric '{key}'; known: {}",
                    known.join(", ")
                ))
            })?;
            let ordered = match def.bad {
                Bad::Above => limits.warning <= limits.critical,
                Bad::Below => limits.warning >= limits.critical,
            };
            if !ordered || !limits.warning.is_finite() || !limits.critical.is_finite() {
                return Err(Error::InvalidConfig(format!(
                    "{VAR}: '{key}' has warning {} and critical {}; critical must be {} warning",
                    limits.warning,
                    limits.critical,
                    if def.bad == Bad::Above {
                        "at or above"
                    } else {
                        "at or below"
                    }
                )));
            }
            t.0.insert(def.key, limits);
        }
        Ok(t)
    }

    pub fn limits(&self, def: &MetricDef) -> Limits {
        self.0[def.key]
    }

    pub fn level(&self, def: &MetricDef, value: f64) -> Level {
        let l = self.limits(def);
        let beyond = |limit: f64| match def.bad {
            Bad::Above => value > limit,
            Bad::Below => value < limit,
        };
        if beyond(l.critical) {
            Level::Critical
        } else if beyond(l.warning) {
            Level::Warning
        } else {
            Level::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_defaults_and_directions() {
        let t = Thresholds::default();
        assert_eq!(t.level(&CACHE_HIT_RATIO, 99.5), Level::Ok);
        assert_eq!(t.level(&CACHE_HIT_RATIO, 98.0), Level::Warning);
        assert_eq!(t.level(&CACHE_HIT_RATIO, 90.0), Level::Critical);
        assert_eq!(t.level(&LONGEST_IDLE_IN_TRANSACTION, 60.0), Level::Ok);
        assert_eq!(t.level(&LONGEST_IDLE_IN_TRANSACTION, 61.0), Level::Warning);
        assert_eq!(
            t.level(&LONGEST_IDLE_IN_TRANSACTION, 301.0),
            Level::Critical
        );
    }

    #[test]
    fn overrides_are_checked() {
        let t =
            Thresholds::with_overrides(r#"{"longestQuerySeconds":{"warning":5,"critical":10}}"#)
                .unwrap();
        assert_eq!(t.level(&LONGEST_QUERY, 6.0), Level::Warning);
        let e = Thresholds::with_overrides(r#"{"nope":{"warning":1,"critical":2}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'nope'") && e.contains("cacheHitRatio"), "{e}");
        let e = Thresholds::with_overrides(r#"{"cacheHitRatio":{"warning":90,"critical":95}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at or below"), "{e}");
    }
}
