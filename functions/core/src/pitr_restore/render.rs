//! The human-readable form of a checklist run: one line per step with its status and time,
//! then the figures that matter (tables below expectation, slowest ANALYZE, the secret's
//! move), then warnings.

use serde_json::Value;

use crate::report::Report;

fn secs(v: &Value) -> String {
    v.get("seconds")
        .and_then(Value::as_f64)
        .map(|s| format!("{:.2} s", s))
        .unwrap_or_default()
}

fn detail(step: &str, out: &Value) -> String {
    // A skipped step says why, whatever the step.
    if let Some(note) = out["note"].as_str().filter(|_| out["status"] == "skipped") {
        return note.to_string();
    }
    match step {
        "validate" => format!(
            "window {} .. {}, restore to {}",
            out["window"]["earliest"].as_str().unwrap_or("?"),
            out["window"]["latest"].as_str().unwrap_or("?"),
            out["restoreTime"].as_str().unwrap_or("?")
        ),
        "restore" | "wait" => format!(
            "{} {}{}",
            out["target"].as_str().unwrap_or(""),
            out["status"].as_str().unwrap_or(""),
            out["note"]
                .as_str()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
        "rowCounts" => {
            let tables = out["tables"].as_array().map(Vec::len).unwrap_or(0);
            format!("{tables} tables counted, all at or above expectation")
        }
        "analyze" => format!("{} tables analyzed", out["tables"]),
        "connectivity" => format!("connected as {}", out["user"].as_str().unwrap_or("?")),
        "smoke" => format!(
            "{} queries, read-only",
            out["queries"].as_array().map(Vec::len).unwrap_or(0)
        ),
        "cutOver" | "rollback" => match (out.get("from"), out.get("to")) {
            (Some(f), Some(t)) => format!(
                "{} {} -> {}",
                out["status"].as_str().unwrap_or(""),
                f["host"],
                t["host"]
            ),
            _ => out["note"].as_str().unwrap_or("").to_string(),
        },
        _ => String::new(),
    }
}

pub fn table(report: &Report) -> String {
    let mut out = format!(
        "{} {}{}\n",
        report.task,
        report.target,
        if report.dry_run {
            " (dry run: nothing changed; --apply changes)"
        } else {
            ""
        }
    );
    for d in &report.done {
        out.push_str(&format!(
            "  {:<13} {:<9} {:>8}  {}\n",
            d.action,
            d.detail
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("passed"),
            secs(&d.detail),
            detail(&d.action, &d.detail)
        ));
    }
    for w in &report.warnings {
        out.push_str(&format!("  {w}\n"));
    }
    out.push_str(&format!(
        "outcome: {}\n",
        report.details["outcome"].as_str().unwrap_or("?")
    ));
    out
}
