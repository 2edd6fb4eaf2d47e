//! A sweep report for people: what was done with before/after figures, what was skipped
//! and why, and (dry run) the plan with its reasons.

use serde_json::Value;

use crate::report::Report;

fn mib(v: &Value) -> String {
    v.as_f64()
        .map_or("-".into(), |b| format!("{:.1}", b / 1048576.0))
}

pub fn table(report: &Report) -> String {
    let d = &report.details;
    let mut out = format!(
        "vacuum-sweep {} mode {}{}: planned in {} ms\n",
        report.target,
        d["mode"].as_str().unwrap_or("?"),
        if report.dry_run { " (dry run)" } else { "" },
        d["planningMs"]
    );
    if report.dry_run {
        out.push_str("\nplan:\n");
        for p in d["plan"].as_array().into_iter().flatten() {
            let reasons: Vec<&str> = p["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            out.push_str(&format!(
                "  {:<14} {}.{}  ({})\n",
                p["action"].as_str().unwrap_or(""),
                p["schema"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or(""),
                reasons.join("; ")
            ));
        }
    } else if !report.done.is_empty() {
        out.push_str(&format!(
            "\n{:<14} {:<40} {:>18} {:>16} {:>9}\n",
            "action", "relation", "dead tuples", "MiB", "seconds"
        ));
        for done in &report.done {
            let f = &done.detail["figures"];
            out.push_str(&format!(
                "{:<14} {:<40} {:>18} {:>16} {:>9.2}\n",
                done.action,
                done.target,
                format!("{} → {}", f["deadTuplesBefore"], f["deadTuplesAfter"]),
                format!("{} → {}", mib(&f["bytesBefore"]), mib(&f["bytesAfter"])),
                f["durationMs"].as_f64().unwrap_or(0.0) / 1000.0
            ));
        }
    }
    let left = d["leftOut"].as_array().map_or(0, Vec::len);
    if left > 0 {
        out.push_str(&format!(
            "\n{left} relations need nothing (see --format json for each reason)\n"
        ));
    }
    for s in &report.skipped {
        out.push_str(&format!("skipped {}: {}\n", s.item, s.reason));
    }
    for w in &report.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    if report.continuation.is_some() {
        out.push_str("work remains: run again with the report's continuation\n");
    }
    out
}
