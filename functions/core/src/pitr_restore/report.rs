//! Checklist step 7: the run report from the execution's accumulated step results, written
//! to S3 (when configured) and published to EventBridge; the last step on every path.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::window::stamp;
use super::TASK;
use crate::aws::objects::ObjectStore;
use crate::aws::ReportSink;
use crate::error::{Error, Result};
use crate::report::Report;

/// The order the checklist runs in; other step names follow, sorted.
const ORDER: &[&str] = &[
    "validate",
    "restore",
    "wait",
    "rowCounts",
    "analyze",
    "connectivity",
    "smoke",
    "cutOver",
    "rollback",
];

/// `{Error, Cause}` is how Step Functions hands a caught error on.
pub fn failure(v: &Value) -> Option<String> {
    let e = v.get("Error").or_else(|| v.get("errorType"))?.as_str()?;
    let cause = v
        .get("Cause")
        .or_else(|| v.get("errorMessage"))
        .map(|c| match c {
            Value::String(s) => serde_json::from_str::<Value>(s)
                .ok()
                .and_then(|j| {
                    j.get("errorMessage")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| s.clone()),
            other => other.to_string(),
        })
        .unwrap_or_default();
    Some(format!("{e}: {cause}"))
}

pub fn build(
    target: &str,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    dry_run: bool,
    results: &BTreeMap<String, Value>,
) -> Report {
    let mut report = Report::new(TASK, target, started_at, dry_run);
    report.finished_at = finished_at;
    let mut names: Vec<&String> = results.keys().collect();
    names.sort_by_key(|n| (ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()), *n));
    let mut steps = Vec::new();
    let mut failed = Vec::new();
    for name in names {
        let out = &results[name];
        match failure(out) {
            Some(why) => {
                report.warn(format!("{name} failed: {why}"));
                failed.push(name.clone());
                steps.push(json!({"step": name, "status": "failed", "error": why}));
            }
            None => {
                report.done(name, target, out.clone());
                steps.push(json!({"step": name, "status": out.get("status").cloned().unwrap_or(json!("passed")), "seconds": out.get("seconds")}));
            }
        }
    }
    let cut_over = results
        .get("cutOver")
        .and_then(|c| c.get("changed"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    report.details = json!({
        "outcome": if failed.is_empty() { "passed" } else { "failed" },
        "failed": failed,
        "cutOver": cut_over,
        "steps": steps,
        "seconds": (finished_at - started_at).num_milliseconds() as f64 / 1000.0,
    });
    report
}

/// `restore-reports/<target>/<startedAt>.json`.
pub fn key(target: &str, started_at: DateTime<Utc>) -> String {
    format!("restore-reports/{target}/{}.json", stamp(started_at))
}

/// Writes and publishes; a failure to do either is a warning in the returned report.
pub async fn deliver(
    report: &mut Report,
    store: Option<&dyn ObjectStore>,
    sink: &dyn ReportSink,
) -> Result<()> {
    if let Some(store) = store {
        let k = key(&report.target, report.started_at);
        let body = serde_json::to_vec_pretty(report)
            .map_err(|e| Error::internal(format!("report json: {e}")))?;
        match store.put(&k, body, "application/json").await {
            Ok(()) => report.details["location"] = json!(format!("{}/{k}", store.location())),
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
    fn failed_steps_are_named_and_the_order_is_the_checklists() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let results: BTreeMap<String, Value> = [
            ("smoke".to_string(), json!({"Error": "CheckFailed", "Cause": "{\"errorType\":\"CheckFailed\",\"errorMessage\":\"smoke query 1 failed\"}"})),
            ("validate".to_string(), json!({"target": "x", "seconds": 0.1})),
            ("rowCounts".to_string(), json!({"status": "passed"})),
        ]
        .into();
        let r = build("x", t, t + chrono::Duration::seconds(90), false, &results);
        assert_eq!(r.details["outcome"], "failed");
        assert_eq!(r.details["failed"], json!(["smoke"]));
        let order: Vec<&str> = r.details["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap())
            .collect();
        assert_eq!(order, vec!["validate", "rowCounts", "smoke"]);
        assert_eq!(
            r.warnings,
            vec!["smoke failed: CheckFailed: smoke query 1 failed"]
        );
        assert_eq!(key("x", t), "restore-reports/x/2026-11-22T01:00:00Z.json");
    }
}
