//! The drill's evidence: backup, times, every check and its result, RTO/RPO against their
//! targets, whether the backup was tagged and the scratch resources removed. Written to
//! S3 as JSON and as text (`verify-reports/<db>/<drillId>.json|.txt`), published to
//! EventBridge, and summarised as two EMF metrics (`DrillPassed`, `VerifiedBackupAgeHours`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::request::Drill;
use super::TASK;
use crate::aws::objects::ObjectStore;
use crate::aws::ReportSink;
use crate::error::{Error, Result};
use crate::pitr_restore::report::failure;
use crate::report::Report;

const ORDER: &[&str] = &[
    "pick",
    "restoreScratch",
    "waitScratch",
    "verify",
    "tagVerified",
    "teardown",
];
pub const NAMESPACE: &str = "pgsteward";
pub const DIMENSION: &str = "DBInstanceIdentifier";

pub fn build(
    db: &str,
    drill: Option<&Drill>,
    finished_at: DateTime<Utc>,
    dry_run: bool,
    results: &BTreeMap<String, Value>,
    targets: (f64, f64),
) -> Report {
    let started = drill.map(|d| d.started_at).unwrap_or(finished_at);
    let mut report = Report::new(TASK, db, started, dry_run);
    report.finished_at = finished_at;
    let mut names: Vec<&String> = results.keys().collect();
    names.sort_by_key(|n| (ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()), *n));
    let mut steps = Vec::new();
    let mut failed = Vec::new();
    for name in names {
        let out = &results[name];
        let why = failure(out)
            .or_else(|| super::checks::failures(out).map(|f| format!("CheckFailed: {f}")));
        match why {
            Some(why) => {
                report.warn(format!("{name} failed: {why}"));
                failed.push(name.clone());
                steps.push(json!({"step": name, "status": "failed", "error": why}));
            }
            None => {
                report.done(name, db, out.clone());
                let status = if out["skipped"] == true {
                    "skipped"
                } else {
                    "passed"
                };
                steps.push(json!({"step": name, "status": status, "seconds": out.get("seconds")}));
            }
        }
    }
    let verify = results.get("verify");
    let passed = verify.is_some_and(|v| v["passed"] == true) && failed.is_empty();
    if verify.is_none() {
        report.warn("the backup was not verified: the verify step did not run".to_string());
    }
    let teardown_ok = results
        .get("teardown")
        .is_some_and(|t| failure(t).is_none());
    if !teardown_ok {
        report.warn(
            "the scratch resources may still exist: they carry pgsteward:scratch and pgsteward:drill, and retention-prune removes them".to_string(),
        );
    }
    report.details = json!({
        "outcome": if passed { "passed" } else { "failed" },
        "failed": failed,
        "drillId": drill.map(|d| d.drill_id.clone()),
        "kind": drill.map(|d| d.kind.as_str()),
        "backup": drill.map(|d| json!(d.backup)),
        "rpoMinutes": drill.map(|d| d.rpo_minutes),
        "rtoSeconds": verify.and_then(|v| v.get("rtoSeconds")).cloned(),
        "targets": {"rtoMinutes": targets.0, "rpoMinutes": targets.1},
        "checks": verify.and_then(|v| v.get("checks")).cloned().unwrap_or(json!([])),
        "timings": verify.and_then(|v| v.get("timings")).cloned(),
        "tagged": results.get("tagVerified").is_some_and(|t| failure(t).is_none() && t["dryRun"] != true),
        "tornDown": teardown_ok,
        "steps": steps,
    });
    report
}

pub fn passed(report: &Report) -> bool {
    report.details["outcome"] == "passed"
}

/// `verify-reports/<db>/<drillId>`.
pub fn key(db: &str, drill_id: &str) -> String {
    format!("verify-reports/{db}/{drill_id}")
}

/// One EMF line: `DrillPassed` (1/0) and, when known, `VerifiedBackupAgeHours` (0 when this
/// drill passed).
pub fn emf_line(
    db: &str,
    passed: bool,
    verified_age_hours: Option<f64>,
    at: DateTime<Utc>,
) -> String {
    let mut root = Map::new();
    let mut defs = vec![json!({"Name": "DrillPassed", "Unit": "Count"})];
    root.insert("DrillPassed".into(), json!(u8::from(passed)));
    if let Some(h) = verified_age_hours {
        defs.push(json!({"Name": "VerifiedBackupAgeHours", "Unit": "None"}));
        root.insert("VerifiedBackupAgeHours".into(), json!(h));
    }
    root.insert(DIMENSION.into(), json!(db));
    root.insert(
        "_aws".into(),
        json!({"Timestamp": at.timestamp_millis(),
               "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [[DIMENSION]], "Metrics": defs}]}),
    );
    Value::Object(root).to_string()
}

/// Writes JSON and text to S3 (when a bucket is configured) and publishes; a failure to do
/// either is a warning in the report, never a lost report.
pub async fn deliver(
    report: &mut Report,
    text: &str,
    store: Option<&dyn ObjectStore>,
    sink: &dyn ReportSink,
) -> Result<()> {
    if let (Some(store), Some(id)) = (store, report.details["drillId"].as_str()) {
        let base = key(&report.target, id);
        let body = serde_json::to_vec_pretty(report)
            .map_err(|e| Error::internal(format!("report json: {e}")))?;
        let json_key = format!("{base}.json");
        let written = match store.put(&json_key, body, "application/json").await {
            Ok(()) => {
                store
                    .put(
                        &format!("{base}.txt"),
                        text.as_bytes().to_vec(),
                        "text/plain; charset=utf-8",
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => {
                report.details["location"] = json!(format!("{}/{json_key}", store.location()))
            }
            Err(e) => report.warn(format!("the report was not written to S3: {e}")),
        }
    }
    if let Err(e) = sink.publish(report).await {
        report.warn(format!("the report was not published: {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_verify_fails_the_drill_and_emf_has_both_metrics() {
        let t = Utc::now();
        let results: BTreeMap<String, Value> = [
            (
                "verify".to_string(),
                json!({"Error": "CheckFailed", "Cause": "checksum mismatch"}),
            ),
            ("teardown".to_string(), json!({"status": "dropped"})),
        ]
        .into();
        let r = build("orders", None, t, false, &results, (30.0, 60.0));
        assert!(!passed(&r));
        assert_eq!(r.details["failed"], json!(["verify"]));
        let line: Value = serde_json::from_str(&emf_line("orders", true, Some(0.0), t)).unwrap();
        assert_eq!(line["DrillPassed"], 1);
        assert_eq!(line["VerifiedBackupAgeHours"], 0.0);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["DBInstanceIdentifier"]])
        );
    }
}
