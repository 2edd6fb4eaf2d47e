//! The report as a table for people: metric, value, level, thresholds, what it is about.

use serde_json::Value;

use crate::report::Report;

fn colour(level: &str, on: bool) -> String {
    if !on {
        return level.to_string();
    }
    let code = match level {
        "ok" => "32",
        "warning" => "33",
        "critical" => "31",
        _ => "0",
    };
    format!("\x1b[{code}m{level}\x1b[0m")
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        None => "-".into(),
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f:.2}"),
    }
}

/// Renders a health-check report; `colour_levels` on a TTY.
pub fn table(report: &Report, colour_levels: bool) -> String {
    let d = &report.details;
    let mut rows = vec![[
        "metric".to_string(),
        "value".into(),
        "unit".into(),
        "level".into(),
        "warn".into(),
        "crit".into(),
        "about".into(),
    ]];
    for m in d["metrics"].as_array().into_iter().flatten() {
        rows.push([
            m["name"].as_str().unwrap_or("").to_string(),
            num(&m["value"]),
            m["unit"].as_str().unwrap_or("").to_string(),
            m["level"].as_str().unwrap_or("-").to_string(),
            num(&m["warning"]),
            num(&m["critical"]),
            m["about"].as_str().unwrap_or("").to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "health-check {} (PostgreSQL {}): {}\n\n",
        report.target,
        d["serverVersion"].as_str().unwrap_or("?"),
        colour(d["level"].as_str().unwrap_or("?"), colour_levels)
    );
    for (i, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            let shown = if c == 3 && i > 0 {
                colour(cell, colour_levels)
            } else {
                cell.clone()
            };
            // Numbers right-aligned, text left-aligned.
            if matches!(c, 1 | 4 | 5) {
                line.push_str(&" ".repeat(pad));
                line.push_str(&shown);
            } else {
                line.push_str(&shown);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for done in &report.done {
        out.push_str(&format!("\n{}: {}", done.action, done.target));
    }
    for s in &report.skipped {
        out.push_str(&format!("\nskipped {}: {}", s.item, s.reason));
    }
    for w in &report.warnings {
        out.push_str(&format!("\nwarning: {w}"));
    }
    out.push('\n');
    out
}
