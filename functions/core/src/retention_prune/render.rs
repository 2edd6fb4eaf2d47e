//! The human-readable report: every backup with its decision and rule, then what was
//! archived, done, skipped and warned.

use crate::report::Report;

pub fn table(report: &Report) -> String {
    let mut out = format!(
        "{} {}{}\n",
        report.task,
        report.target,
        if report.dry_run {
            " (dry run: nothing deleted; --apply deletes)"
        } else {
            ""
        }
    );
    if let Some(backups) = report.details["backups"].as_array() {
        let mut series = "";
        for b in backups {
            let s = b["series"].as_str().unwrap_or("");
            if s != series {
                out.push_str(&format!("\n{s}\n"));
                series = s;
            }
            out.push_str(&format!(
                "  {:<6} {:<48} {:<20} {}\n",
                b["decision"].as_str().unwrap_or(""),
                b["id"].as_str().unwrap_or(""),
                b["takenAt"]
                    .as_str()
                    .map(|t| t.get(..16).unwrap_or(t).replace('T', " "))
                    .unwrap_or_else(|| "-".into()),
                b["why"].as_str().unwrap_or("")
            ));
        }
        if !backups.is_empty() {
            out.push('\n');
        }
    }
    // Backup deletions are in the listing above; one line says how many.
    let listed = |a: &str| a == "delete" || a == "would-delete";
    let deletions = report.done.iter().filter(|d| listed(&d.action)).count();
    if deletions > 0 {
        let verb = if report.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        out.push_str(&format!("{verb} {deletions} backups, oldest first\n"));
    }
    for d in report.done.iter().filter(|d| !listed(&d.action)) {
        out.push_str(&format!("{}: {}  {}\n", d.action, d.target, d.detail));
    }
    for s in &report.skipped {
        out.push_str(&format!("skipped {}: {}\n", s.item, s.reason));
    }
    for w in &report.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}
