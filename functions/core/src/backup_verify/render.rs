//! The drill report as text: the verdict first, then the backup, RTO/RPO against targets,
//! each check, the time split, each step, and warnings. Also written next to the JSON.

use std::fmt::Write;

use serde_json::Value;

use crate::report::Report;

fn num(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map(|f| format!("{f:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

pub fn text(r: &Report) -> String {
    let d = &r.details;
    let mut s = String::new();
    let outcome = d["outcome"].as_str().unwrap_or("failed").to_uppercase();
    let _ = writeln!(
        s,
        "backup-verify {} for {}{}: {outcome}",
        d["kind"].as_str().unwrap_or("?"),
        r.target,
        if r.dry_run { " (dry run)" } else { "" }
    );
    let b = &d["backup"];
    let _ = writeln!(
        s,
        "  backup      {} (taken {})",
        b["id"].as_str().unwrap_or("-"),
        b["takenAt"].as_str().unwrap_or("-")
    );
    let _ = writeln!(
        s,
        "  drill       {}  started {}  finished {}",
        d["drillId"].as_str().unwrap_or("-"),
        r.started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        r.finished_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let rto_min = d["rtoSeconds"].as_f64().map(|x| x / 60.0);
    let _ = writeln!(
        s,
        "  RTO         {} min (target {} min)    RPO {} min (target {} min)",
        rto_min
            .map(|m| format!("{m:.2}"))
            .unwrap_or_else(|| "-".into()),
        d["targets"]["rtoMinutes"],
        num(&d["rpoMinutes"], 1),
        d["targets"]["rpoMinutes"]
    );
    if let Some(t) = d["timings"].as_object() {
        let parts: Vec<String> = ["download", "restore", "rowCounts", "amcheck"]
            .iter()
            .filter_map(|k| Some(format!("{k} {} s", num(t.get(*k)?, 2))))
            .collect();
        let _ = writeln!(s, "  time split  {}", parts.join(", "));
    }
    if let Some(checks) = d["checks"].as_array().filter(|c| !c.is_empty()) {
        let _ = writeln!(s, "checks:");
        for c in checks {
            let line = match c["failure"].as_str() {
                Some(f) => format!("FAILED  {f}"),
                None => format!(
                    "passed  {}",
                    summary(c["name"].as_str().unwrap_or(""), &c["detail"])
                ),
            };
            let _ = writeln!(s, "  {:<17} {line}", c["name"].as_str().unwrap_or("?"));
        }
    }
    let _ = writeln!(s, "steps:");
    for st in d["steps"].as_array().into_iter().flatten() {
        let extra = st["error"]
            .as_str()
            .map(|e| format!("  {e}"))
            .unwrap_or_else(|| {
                st["seconds"]
                    .as_f64()
                    .map(|x| format!("  {x:.2} s"))
                    .unwrap_or_default()
            });
        let _ = writeln!(
            s,
            "  {:<17} {}{extra}",
            st["step"].as_str().unwrap_or("?"),
            st["status"].as_str().unwrap_or("?")
        );
    }
    let _ = writeln!(
        s,
        "backup tagged verified: {}; scratch removed: {}",
        if d["tagged"] == true { "yes" } else { "no" },
        if d["tornDown"] == true { "yes" } else { "no" }
    );
    if let Some(loc) = d["location"].as_str() {
        let _ = writeln!(s, "report: {loc}");
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

fn summary(name: &str, d: &Value) -> String {
    match name {
        "checksum" => format!(
            "SHA-256 {} ({} bytes)",
            d["sha256"].as_str().unwrap_or("?"),
            d["bytes"]
        ),
        "restore" => format!(
            "pg_restore --jobs={} in {} s",
            d["jobs"],
            num(&d["seconds"], 2)
        ),
        "rowCounts" => format!(
            "{} tables, {} rows{}",
            d["tables"],
            d["rows"],
            d["note"]
                .as_str()
                .map(|n| format!(" ({n})"))
                .unwrap_or_else(|| ", exactly as in the manifest".into())
        ),
        "amcheck" => format!(
            "{} B-tree indexes checked (bt_index_check, heapallindexed)",
            d["indexes"]
        ),
        "checksumFailures" => format!(
            "{} failures{}",
            d["checksumFailures"],
            if d["dataChecksums"] == false {
                " (data checksums off)"
            } else {
                ""
            }
        ),
        "smoke" => d["note"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| "queries answered read-only".into()),
        "rto" | "rpo" => format!(
            "{} min (target {} min)",
            num(&d["minutes"], 2),
            d["targetMinutes"]
        ),
        _ => String::new(),
    }
}
