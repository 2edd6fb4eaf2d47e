//! pitr-restore's configuration (where restores go, which secrets cut-over may touch) and
//! its request: the console's execution input plus the state machine's `action`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TASK;
use crate::aws::rds_restore::Endpoint;
use crate::aws::rds_snapshots::SourceKind;
use crate::config::{CommonConfig, Env, Vars};
use crate::envelope::{self, Incoming};
use crate::error::{Error, Result};
use crate::pg::endpoint::{EndpointOverride, OVERRIDE_VAR};

#[derive(Debug, Clone)]
pub struct PitrConfig {
    pub common: CommonConfig,
    pub source: SourceKind,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub parameter_group: Option<String>,
    pub instance_class: Option<String>,
    /// The application secrets cut-over may update; any other is refused.
    pub app_secrets: Vec<String>,
    pub report_bucket: Option<String>,
    pub endpoint_override: EndpointOverride,
}

impl PitrConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self> {
        let common = CommonConfig::from_env(env)?;
        let v = Vars(env);
        let source = v.snapshot_source()?;
        let security_groups = v.restore_security_groups()?;
        let app_secrets = v.list("PGSTEWARD_APP_SECRET_ARNS", &[]);
        if let Some(bad) = app_secrets
            .iter()
            .find(|a| !a.starts_with("arn:") || !a.contains(":secretsmanager:"))
        {
            return Err(Error::InvalidConfig(format!(
                "PGSTEWARD_APP_SECRET_ARNS has '{bad}': expected Secrets Manager ARNs, e.g. PGSTEWARD_APP_SECRET_ARNS=arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/app-AbCdEf"
            )));
        }
        let endpoint_override = match v.get(OVERRIDE_VAR) {
            Some(text) => EndpointOverride::parse(&text)?,
            None => EndpointOverride::default(),
        };
        Ok(PitrConfig {
            common,
            source,
            subnet_group: v.get("PGSTEWARD_RESTORE_SUBNET_GROUP"),
            security_groups,
            parameter_group: v.get("PGSTEWARD_RESTORE_PARAMETER_GROUP"),
            instance_class: v.get("PGSTEWARD_RESTORE_INSTANCE_CLASS"),
            app_secrets,
            report_bucket: v.get("PGSTEWARD_REPORT_BUCKET"),
            endpoint_override,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Source, window and target name checked; nothing changed (the console's first state).
    #[default]
    Validate,
    Restore,
    Wait,
    RowCounts,
    Analyze,
    Connectivity,
    Smoke,
    CutOver,
    Rollback,
    Report,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Validate => "validate",
            Action::Restore => "restore",
            Action::Wait => "wait",
            Action::RowCounts => "row-counts",
            Action::Analyze => "analyze",
            Action::Connectivity => "connectivity",
            Action::Smoke => "smoke",
            Action::CutOver => "cut-over",
            Action::Rollback => "rollback",
            Action::Report => "report",
        }
    }
}

/// Where the expected counts come from, besides `minRows`.
#[derive(Debug, Clone, PartialEq)]
pub enum CompareWith {
    /// The source's exact counts, taken when the check runs.
    Source,
    /// A logical backup's manifest, `s3://bucket/key.manifest.json`.
    Manifest { bucket: String, key: String },
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectations {
    /// `schema.table` (or `table`, meaning `public.table`) → at least this many rows.
    #[serde(default)]
    pub min_rows: BTreeMap<String, i64>,
    /// How far below the compared count a table may be, in percent.
    pub tolerance_percent: Option<f64>,
    /// `source` or `manifest:s3://bucket/key.manifest.json`.
    pub compare_with: Option<String>,
}

impl Expectations {
    pub fn compare_with(&self) -> Result<Option<CompareWith>> {
        let Some(text) = self.compare_with.as_deref() else {
            return Ok(None);
        };
        if text == "source" {
            return Ok(Some(CompareWith::Source));
        }
        let parsed = text
            .strip_prefix("manifest:s3://")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(b, k)| !b.is_empty() && !k.is_empty());
        match parsed {
            Some((bucket, key)) => Ok(Some(CompareWith::Manifest {
                bucket: bucket.into(),
                key: key.into(),
            })),
            None => Err(Error::invalid(format!(
                "expectations.compareWith is '{text}': expected \"source\" or \"manifest:s3://bucket/key.manifest.json\""
            ))),
        }
    }
}

/// The execution input (what a person types in the console) plus what the state machine adds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    #[serde(default)]
    pub action: Action,
    #[serde(default)]
    pub target_db_instance_identifier: String,
    /// RFC 3339; read as text so a typo is answered with the restorable window.
    pub restore_time: Option<String>,
    #[serde(default)]
    pub use_latest_restorable_time: bool,
    #[serde(default)]
    pub expectations: Expectations,
    #[serde(default)]
    pub smoke_queries: Vec<String>,
    /// Seconds per smoke query (default 30).
    pub smoke_timeout_seconds: Option<u32>,
    pub app_secret_arn: Option<String>,
    #[serde(default)]
    pub cut_over: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// The `wait` step's output, passed on by the state machine: where the target answers.
    pub restore: Option<Value>,
    /// Cut-over's precondition: every check's result, passed by the state machine.
    pub checks: Option<BTreeMap<String, String>>,
    /// `report`: step name → its output, or `{Error, Cause}`.
    pub results: Option<BTreeMap<String, Value>>,
    /// `report`: when the execution started (`$$.Execution.StartTime`).
    pub started_at: Option<String>,
    /// The console's way to start the state machine's rollback path (same input plus
    /// `"rollback": true`); the state machine routes on it, the actions do not.
    #[serde(default)]
    pub rollback: bool,
}

impl Request {
    /// The target's endpoint when the state machine passed the `wait` output along.
    pub fn endpoint(&self) -> Option<Endpoint> {
        let r = self.restore.as_ref()?;
        serde_json::from_value(r.get("endpoint")?.clone()).ok()
    }
}

/// The checks cut-over requires, each "passed".
pub const REQUIRED_CHECKS: &[&str] = &["rowCounts", "analyze", "connectivity", "smoke"];

pub fn parse_event(event: Value) -> Result<Request> {
    match envelope::classify(event, TASK)? {
        Incoming::Request(v) => {
            let req: Request = envelope::parse_request(v, TASK)?;
            req.expectations.compare_with()?;
            if let Some(t) = req.expectations.tolerance_percent {
                if !(0.0..=100.0).contains(&t) {
                    return Err(Error::invalid(format!(
                        "expectations.tolerancePercent is {t}: expected a percentage from 0 to 100, e.g. 1"
                    )));
                }
            }
            if let Some((table, n)) = req.expectations.min_rows.iter().find(|(_, n)| **n < 0) {
                return Err(Error::invalid(format!(
                    "expectations.minRows for '{table}' is {n}: expected a count of at least 0"
                )));
            }
            if let Some(q) = req.smoke_queries.iter().find(|q| q.trim().is_empty()) {
                return Err(Error::invalid(format!(
                    "smokeQueries has an empty query ({q:?}): give one SQL statement per entry"
                )));
            }
            Ok(req)
        }
        Incoming::Alarm(a) => Err(Error::invalid(format!(
            "pitr-restore does not act on alarms ('{}'); start the RestoreChecklist with {{\"targetDbInstanceIdentifier\": \"…\", \"useLatestRestorableTime\": true}}",
            a.alarm_name
        ))),
    }
}

/// `schema.table` or `table` (public) into its parts.
pub fn split_table(name: &str) -> (String, String) {
    match name.split_once('.') {
        Some((s, t)) => (s.to_string(), t.to_string()),
        None => ("public".to_string(), name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn console_input_parses_and_bad_fields_are_named() {
        let r = parse_event(json!({
            "targetDbInstanceIdentifier": "orders-restore-20261122",
            "restoreTime": "2026-11-22T01:30:00Z",
            "expectations": {"minRows": {"public.orders": 1000}, "tolerancePercent": 1, "compareWith": "source"},
            "smokeQueries": ["SELECT 1"], "cutOver": false, "action": "row-counts"
        }))
        .unwrap();
        assert_eq!(r.action, Action::RowCounts);
        assert_eq!(
            r.expectations.compare_with().unwrap(),
            Some(CompareWith::Source)
        );
        let e = parse_event(json!({"targetDbInstanceIdentifer": "x"})).unwrap_err();
        assert!(e.to_string().contains("targetDbInstanceIdentifer"), "{e}");
        let e = parse_event(json!({"expectations": {"compareWith": "yesterday"}})).unwrap_err();
        assert!(e.to_string().contains("'yesterday'"), "{e}");
        let m = Expectations {
            compare_with: Some("manifest:s3://b/k/x.manifest.json".into()),
            ..Default::default()
        };
        assert_eq!(
            m.compare_with().unwrap(),
            Some(CompareWith::Manifest {
                bucket: "b".into(),
                key: "k/x.manifest.json".into()
            })
        );
        assert_eq!(split_table("orders"), ("public".into(), "orders".into()));
    }

    #[test]
    fn config_checks_ids_and_the_override() {
        let env: std::collections::HashMap<String, String> = [
            (
                "PGSTEWARD_DATABASE_URL",
                "postgresql://u@h/orders?sslmode=disable",
            ),
            ("PGSTEWARD_RESTORE_SECURITY_GROUPS", "sg-1, default"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let e = PitrConfig::from_env(&env).unwrap_err().to_string();
        assert!(e.contains("'default'"), "{e}");
    }
}
