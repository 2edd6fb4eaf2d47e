//! Validation before any restore: the target name (RDS identifier rules, free, not the
//! source), the source (exists, automated backups on), and the time inside the restorable
//! window. Reads only; every refusal is `InvalidInput` and names the window when it has one.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::request::Request;
use crate::aws::rds_restore::{RdsRestore, SourceInfo};
use crate::aws::rds_snapshots::SourceKind;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

impl Window {
    pub fn describe(&self) -> String {
        format!(
            "the restorable window is {} to {} (UTC)",
            stamp(self.earliest),
            stamp(self.latest)
        )
    }
}

pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What validation established; `restore_time` None means the latest restorable time.
#[derive(Debug, Clone)]
pub struct Validated {
    pub source: SourceInfo,
    pub restore_time: Option<DateTime<Utc>>,
    pub window: Window,
}

/// RDS DB identifier rules: 1–63 letters, digits and hyphens; a letter first; no trailing
/// hyphen and no two in a row. pgsteward also wants lowercase (RDS stores it so).
pub fn check_name(target: &str, source: &str) -> Result<()> {
    let example = "e.g. \"targetDbInstanceIdentifier\": \"orders-restore-20261122\"";
    if target.is_empty() {
        return Err(Error::invalid(format!(
            "targetDbInstanceIdentifier is missing: name the new instance, {example}"
        )));
    }
    let ok = target.len() <= 63
        && target.starts_with(|c: char| c.is_ascii_lowercase())
        && target
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !target.ends_with('-')
        && !target.contains("--");
    if !ok {
        return Err(Error::invalid(format!(
            "targetDbInstanceIdentifier '{target}' is not a valid RDS identifier: use 1-63 lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen, {example}"
        )));
    }
    if target == source {
        return Err(Error::invalid(format!(
            "targetDbInstanceIdentifier '{target}' is the source itself: a restore always makes a new instance; pick another name, {example}"
        )));
    }
    Ok(())
}

fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Instance => "db instance",
        SourceKind::Cluster => "db cluster",
    }
}

/// Everything but the target's existence, which the caller decides on.
pub async fn validate(
    rds: &dyn RdsRestore,
    kind: SourceKind,
    source_id: &str,
    req: &Request,
) -> Result<Validated> {
    check_name(&req.target_db_instance_identifier, source_id)?;
    let what = kind_name(kind);
    let source = rds.source(kind, source_id).await?.ok_or_else(|| {
        Error::invalid(format!(
            "the source {what} '{source_id}' does not exist in this account and Region: check PGSTEWARD_DB_IDENTIFIER (and PGSTEWARD_SNAPSHOT_SOURCE for Aurora)"
        ))
    })?;
    if source.backup_retention_days <= 0 {
        return Err(Error::invalid(format!(
            "the source {what} '{source_id}' has automated backups turned off (retention 0 days): there is no point in time to restore to; turn on backups or restore a snapshot"
        )));
    }
    let earliest = match kind {
        SourceKind::Cluster => source.earliest_restorable,
        SourceKind::Instance => rds.earliest_restorable(source_id).await?,
    };
    let (Some(earliest), Some(latest)) = (earliest, source.latest_restorable) else {
        return Err(Error::invalid(format!(
            "the source {what} '{source_id}' has no restorable window yet (no automated backup has finished); try again after its first backup"
        )));
    };
    let window = Window { earliest, latest };
    let restore_time = check_time(req, &window)?;
    Ok(Validated {
        source,
        restore_time,
        window,
    })
}

/// Exactly one of `restoreTime` and `useLatestRestorableTime`; the time inside the window.
pub fn check_time(req: &Request, window: &Window) -> Result<Option<DateTime<Utc>>> {
    let w = window.describe();
    match (req.restore_time.as_deref(), req.use_latest_restorable_time) {
        (Some(_), true) => Err(Error::invalid(format!(
            "give either restoreTime or \"useLatestRestorableTime\": true, not both; {w}"
        ))),
        (None, false) => Err(Error::invalid(format!(
            "say when to restore to: \"restoreTime\": \"{}\" or \"useLatestRestorableTime\": true; {w}",
            stamp(window.latest)
        ))),
        (None, true) => Ok(None),
        (Some(text), false) => {
            let t = DateTime::parse_from_rfc3339(text.trim())
                .map_err(|_| {
                    Error::invalid(format!(
                        "restoreTime '{text}' is not a time: use RFC 3339 with a zone, e.g. \"{}\"; {w}",
                        stamp(window.latest)
                    ))
                })?
                .with_timezone(&Utc);
            if t < window.earliest {
                return Err(Error::invalid(format!(
                    "restoreTime {} is before the earliest restorable time: {w}; pick a time inside it",
                    stamp(t)
                )));
            }
            if t > window.latest {
                return Err(Error::invalid(format!(
                    "restoreTime {} is after the latest restorable time: {w}; pick a time inside it or use \"useLatestRestorableTime\": true",
                    stamp(t)
                )));
            }
            Ok(Some(t))
        }
    }
}

/// The `validate` action's answer.
pub fn answer(source: &str, target: &str, v: &Validated) -> Value {
    json!({
        "source": source,
        "target": target,
        "restoreTime": stamp(v.restore_time.unwrap_or(v.window.latest)),
        "useLatestRestorableTime": v.restore_time.is_none(),
        "window": {"earliest": stamp(v.window.earliest), "latest": stamp(v.window.latest)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_follow_rds_rules() {
        assert!(check_name("orders-restore-20261122", "orders").is_ok());
        for bad in [
            "",
            "1abc",
            "Orders",
            "a--b",
            "a-",
            "a_b",
            &"a".repeat(64),
            "orders",
        ] {
            let e = check_name(bad, "orders").unwrap_err();
            assert_eq!(e.error_type(), "InvalidInput", "{bad}");
        }
    }

    #[test]
    fn times_outside_the_window_name_it() {
        let w = Window {
            earliest: Utc.with_ymd_and_hms(2026, 11, 15, 0, 0, 0).unwrap(),
            latest: Utc.with_ymd_and_hms(2026, 11, 22, 1, 55, 0).unwrap(),
        };
        let req = |t: Option<&str>, latest: bool| Request {
            restore_time: t.map(str::to_string),
            use_latest_restorable_time: latest,
            ..Request::default()
        };
        let window_text = "2026-11-15T00:00:00Z to 2026-11-22T01:55:00Z";
        for (r, why) in [
            (req(Some("2026-11-01T00:00:00Z"), false), "before"),
            (req(Some("2026-11-22T02:00:00Z"), false), "after"),
            (req(Some("yesterday"), false), "not a time"),
            (req(None, false), "say when"),
            (req(Some("2026-11-20T00:00:00Z"), true), "not both"),
        ] {
            let e = check_time(&r, &w).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(window_text), "{e}");
        }
        assert_eq!(check_time(&req(None, true), &w).unwrap(), None);
        assert!(
            check_time(&req(Some("2026-11-20T03:00:00+02:00"), false), &w)
                .unwrap()
                .is_some()
        );
    }
}
