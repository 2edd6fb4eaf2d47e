//! snapshot's configuration, request, and the events that become a request.

use std::path::PathBuf;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TASK;
use crate::aws::rds_snapshots::SourceKind;
use crate::config::{CommonConfig, Env, Vars};
use crate::envelope::{self, Incoming};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CopyDestination {
    pub region: String,
    pub kms_key_id: Option<String>,
    pub share_with_account: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    pub common: CommonConfig,
    pub source: SourceKind,
    pub bucket: Option<String>,
    pub prefix: String,
    pub kms_key: Option<String>,
    pub pg_dump: PathBuf,
    pub part_bytes: usize,
    pub copy_destinations: Vec<CopyDestination>,
}

/// S3 parts are at least 5 MiB (but the last).
const MIN_PART_MIB: usize = 5;

impl SnapshotConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self> {
        let common = CommonConfig::from_env(env)?;
        let v = Vars(env);
        let source = v.snapshot_source()?;
        let part_mib: usize = v.parse(
            "PGSTEWARD_PART_SIZE_MIB",
            8,
            "a whole number of MiB, at least 5",
            "8",
        )?;
        if part_mib < MIN_PART_MIB {
            return Err(Error::InvalidConfig(format!(
                "PGSTEWARD_PART_SIZE_MIB is '{part_mib}': S3 parts are at least 5 MiB, e.g. PGSTEWARD_PART_SIZE_MIB=8"
            )));
        }
        let copy_destinations = match v.get("PGSTEWARD_COPY_DESTINATIONS") {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                Error::InvalidConfig(format!(
                    "PGSTEWARD_COPY_DESTINATIONS is not valid ({e}); e.g. PGSTEWARD_COPY_DESTINATIONS='[{{\"region\":\"us-west-2\"}}]'"
                ))
            })?,
            None => vec![],
        };
        check_destinations(&copy_destinations)?;
        Ok(SnapshotConfig {
            common,
            source,
            bucket: v.get("PGSTEWARD_BACKUP_BUCKET"),
            prefix: v
                .get("PGSTEWARD_BACKUP_PREFIX")
                .unwrap_or_else(|| "pgsteward".into())
                .trim_matches('/')
                .to_string(),
            kms_key: v.get("PGSTEWARD_BACKUP_KMS_KEY_ARN"),
            pg_dump: PathBuf::from(
                v.get("PGSTEWARD_PG_DUMP")
                    .unwrap_or_else(|| "pg_dump".into()),
            ),
            part_bytes: part_mib * 1024 * 1024,
            copy_destinations,
        })
    }
}

/// Destination Regions and accounts reach RDS clients and snapshot attributes: only
/// well-formed ones are accepted.
fn check_destinations(destinations: &[CopyDestination]) -> Result<()> {
    for (i, d) in destinations.iter().enumerate() {
        if !is_region(&d.region) {
            return Err(Error::InvalidConfig(format!(
                "PGSTEWARD_COPY_DESTINATIONS: region '{}' is not an AWS Region name; e.g. {{\"region\":\"us-west-2\"}}",
                d.region
            )));
        }
        if destinations[..i].iter().any(|o| o.region == d.region) {
            return Err(Error::InvalidConfig(format!(
                "PGSTEWARD_COPY_DESTINATIONS names region '{}' twice; give each Region once",
                d.region
            )));
        }
        if let Some(a) = &d.share_with_account {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::InvalidConfig(format!(
                    "PGSTEWARD_COPY_DESTINATIONS: shareWithAccount '{a}' (for {}) is not a 12-digit AWS account ID; e.g. \"shareWithAccount\":\"210987654321\"",
                    d.region
                )));
            }
        }
    }
    Ok(())
}

/// `us-west-2`, `us-gov-east-1`, `ap-southeast-4`: letters, then words, then a number.
fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    r.len() <= 32
        && parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// An RDS instance or Aurora cluster snapshot.
    #[default]
    Snapshot,
    /// `pg_dump -Fc` streamed to S3 with a manifest.
    LogicalBackup,
    /// React to an RDS snapshot event: copy a managed snapshot to the configured Regions (its
    /// creation, in this Region) or share a finished copy (its copy event, from a destination).
    Copy,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    #[serde(default)]
    pub action: Action,
    /// Set from an RDS snapshot event: the managed snapshot to copy to the destinations, or
    /// the finished copy to share.
    #[serde(skip)]
    pub copy: Option<crate::envelope::RdsEvent>,
    /// The schedule's slot (EventBridge Scheduler's `<aws.scheduler.scheduled-time>`): names
    /// the backup, so a repeated delivery finds it instead of making a second one.
    pub scheduled_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub dry_run: bool,
}

/// RDS's snapshot events: a managed snapshot created here starts the copies; a copy finished
/// in a destination Region starts its share.
const SNAPSHOT_EVENTS: &[&str] = &["RDS DB Snapshot Event", "RDS DB Cluster Snapshot Event"];

pub fn parse_event(event: Value, config: &SnapshotConfig) -> Result<Request> {
    if let Some(rds) = envelope::rds_event(&event) {
        if !SNAPSHOT_EVENTS.contains(&rds.detail_type.as_str()) || rds.source_identifier.is_empty()
        {
            return Err(Error::invalid(format!(
                "snapshot reacts to RDS snapshot events, not '{}' ({})",
                rds.detail_type, rds.event_id
            )));
        }
        let ours = snapshot_name(&config.common.db_identifier, DateTime::<Utc>::UNIX_EPOCH);
        let prefix = ours.trim_end_matches("19700101-0000");
        // The prefix and then exactly a slot: `pgsteward-orders-…` must not match the
        // snapshots of `orders-prod`.
        let ours = rds
            .source_identifier
            .strip_prefix(prefix)
            .is_some_and(|slot| slot.len() == 13 && super::rds::slot_of(slot).is_some());
        if !ours {
            return Err(Error::invalid(format!(
                "snapshot '{}' is not one of this function's managed snapshots ({prefix}…); only those are copied",
                rds.source_identifier
            )));
        }
        return Ok(Request {
            action: Action::Copy,
            copy: Some(rds),
            ..Request::default()
        });
    }
    match envelope::classify(event, TASK)? {
        Incoming::Request(v) => envelope::parse_request(v, TASK),
        Incoming::Alarm(a) => Err(Error::invalid(format!(
            "snapshot does not act on alarms ('{}'); send {{\"action\":\"snapshot\"}} or {{\"action\":\"logical-backup\"}}",
            a.alarm_name
        ))),
    }
}

/// The slot a run belongs to, to the minute.
pub fn slot(req: &Request, now: DateTime<Utc>) -> DateTime<Utc> {
    let t = req.scheduled_time.unwrap_or(now);
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

/// Grandfather-father-son tier by the calendar: the 1st of a month is monthly, a Sunday
/// weekly, any other day daily. Retention relies on it.
pub fn tier(at: DateTime<Utc>) -> &'static str {
    if at.day() == 1 {
        "monthly"
    } else if at.weekday() == Weekday::Sun {
        "weekly"
    } else {
        "daily"
    }
}

/// `pgsteward-<db>-<yyyymmdd-hhmm>`, valid as an RDS snapshot identifier (letters, digits,
/// single hyphens).
pub fn snapshot_name(db: &str, at: DateTime<Utc>) -> String {
    let mut clean = String::new();
    for c in db.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && clean.ends_with('-')) {
            clean.push(c);
        }
    }
    format!(
        "pgsteward-{}-{}",
        clean.trim_matches('-'),
        at.format("%Y%m%d-%H%M")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn only_this_databases_snapshots_are_copied() {
        let env: std::collections::HashMap<String, String> = [
            (
                "PGSTEWARD_DATABASE_URL",
                "postgresql://u@h/orders?sslmode=disable",
            ),
            ("PGSTEWARD_DB_IDENTIFIER", "orders"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = SnapshotConfig::from_env(&env).unwrap();
        let event = |id: &str| {
            serde_json::json!({
                "version": "0", "id": "e", "detail-type": "RDS DB Snapshot Event", "source": "aws.rds",
                "account": "123456789012", "time": "2026-11-22T02:05:00Z", "region": "us-east-1",
                "resources": [], "detail": {"EventID": "RDS-EVENT-0042", "SourceIdentifier": id,
                "SourceArn": format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"), "Message": "created"}
            })
        };
        assert!(parse_event(event("pgsteward-orders-20261122-0200"), &config).is_ok());
        for other in [
            "pgsteward-orders-prod-20261122-0200",
            "pgsteward-orders-x",
            "orders-20261122-0200",
        ] {
            let e = parse_event(event(other), &config).unwrap_err();
            assert_eq!(e.error_type(), "InvalidInput", "{other}");
        }
    }

    #[test]
    fn names_tiers_and_slots() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 37).unwrap();
        assert_eq!(
            snapshot_name("Orders_Prod..eu", at),
            "pgsteward-orders-prod-eu-20261122-0200"
        );
        assert_eq!(tier(at), "weekly");
        assert_eq!(
            tier(Utc.with_ymd_and_hms(2026, 11, 1, 2, 0, 0).unwrap()),
            "monthly"
        );
        assert_eq!(
            tier(Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap()),
            "daily"
        );
        let req = Request {
            scheduled_time: Some(at),
            ..Request::default()
        };
        assert_eq!(
            slot(&req, Utc::now()),
            Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0).unwrap()
        );
    }

    #[test]
    fn destinations_are_checked_before_they_reach_aws() {
        let dest = |region: &str, account: Option<&str>| CopyDestination {
            region: region.into(),
            kms_key_id: None,
            share_with_account: account.map(str::to_string),
        };
        for ok in ["us-west-2", "us-gov-east-1", "ap-southeast-4", "cn-north-1"] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-west",
            "US-WEST-2",
            "us-west-2/../x",
            "us--2",
            "eu-west-x",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        assert!(check_destinations(&[dest("eu-west-1", Some("210987654321"))]).is_ok());
        let e = check_destinations(&[dest("eu-west-1", Some("2109-8765"))]).unwrap_err();
        assert!(e.to_string().contains("'2109-8765'"), "{e}");
        let e =
            check_destinations(&[dest("eu-west-1", None), dest("eu-west-1", None)]).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }
}
