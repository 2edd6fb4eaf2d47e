//! RDS instance / Aurora cluster snapshots, one per schedule slot, tagged as managed.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::aws::rds_snapshots::{RdsSnapshots, SourceKind};
use crate::error::{Error, Result};
use crate::report::Report;

/// Tag keys pgsteward owns; retention relies on them and IAM allows only these.
pub const TAG_MANAGED: &str = "pgsteward:managed";
pub const TAG_TIER: &str = "pgsteward:tier";
pub const TAG_SCHEDULE: &str = "pgsteward:schedule";
pub const TAG_RUN: &str = "pgsteward:run";

/// States in which RDS takes a snapshot; the transient ones are worth a retry.
const READY: &[&str] = &["available", "storage-optimization"];
const TRANSIENT: &[&str] = &[
    "backing-up",
    "creating",
    "modifying",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "starting",
    "upgrading",
    "maintenance",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "converting-to-vpc",
    "moving-to-vpc",
];

/// Quota check: refuse with the figures rather than let RDS fail with a fault.
pub fn check_quota(quota: Option<(i64, i64)>) -> Result<()> {
    match quota {
        Some((used, max)) if used >= max => Err(Error::Unsafe(format!(
            "the account's manual snapshot quota is full ({used} of {max}): let retention-prune remove old managed snapshots, or ask AWS to raise the quota"
        ))),
        _ => Ok(()),
    }
}

pub struct Slot<'a> {
    pub source: SourceKind,
    pub source_id: &'a str,
    pub name: String,
    pub tier: &'static str,
    pub scheduled: DateTime<Utc>,
    pub run: String,
}

pub async fn take(
    rds: &dyn RdsSnapshots,
    slot: &Slot<'_>,
    dry_run: bool,
    report: &mut Report,
) -> Result<()> {
    if let Some(existing) = rds.find_snapshot(slot.source, &slot.name).await? {
        report.skip(
            slot.name.as_str(),
            format!(
                "exists already (status {}): this schedule slot is done; no second snapshot",
                existing.status
            ),
        );
        report.details = json!({"snapshot": existing, "tier": slot.tier, "created": false});
        return Ok(());
    }
    let kind = if slot.source == SourceKind::Instance {
        "db instance"
    } else {
        "db cluster"
    };
    match rds.source_status(slot.source, slot.source_id).await? {
        None => {
            return Err(Error::NotFound(format!(
                "no {kind} named '{}' in this account and region",
                slot.source_id
            )))
        }
        Some(s) if READY.contains(&s.as_str()) => {}
        Some(s) if TRANSIENT.contains(&s.as_str()) => {
            return Err(Error::Retryable(format!(
                "{kind} '{}' is {s}; a snapshot can be taken once it is available",
                slot.source_id
            )))
        }
        Some(s) => {
            return Err(Error::invalid(format!(
            "{kind} '{}' is {s}: RDS cannot snapshot it in this state; start or repair it first",
            slot.source_id
        )))
        }
    }
    let quota = rds.manual_snapshot_quota().await?;
    check_quota(quota)?;
    if quota.is_none() {
        report.warn(
            "the manual snapshot quota could not be read (DescribeAccountAttributes); going ahead",
        );
    }
    let tags = vec![
        (TAG_MANAGED.to_string(), "true".to_string()),
        (TAG_TIER.to_string(), slot.tier.to_string()),
        (TAG_SCHEDULE.to_string(), slot.scheduled.to_rfc3339()),
        (TAG_RUN.to_string(), slot.run.clone()),
    ];
    if dry_run {
        report.done(
            "would-create-snapshot",
            slot.name.as_str(),
            json!({"source": slot.source_id, "tags": tags}),
        );
        return Ok(());
    }
    let created = match rds
        .create_snapshot(slot.source, slot.source_id, &slot.name, &tags)
        .await
    {
        Ok(s) => s,
        // Two deliveries of one slot at once: the other one created it.
        Err(e) if e.to_string().contains("AlreadyExists") => {
            report.skip(
                slot.name.as_str(),
                "created by a concurrent delivery of the same slot",
            );
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    report.done(
        "create-snapshot",
        slot.name.as_str(),
        json!({"source": slot.source_id, "status": created.status, "tags": tags}),
    );
    report.details = json!({"snapshot": created, "tier": slot.tier, "created": true});
    Ok(())
}

/// The slot encoded at the end of a managed snapshot's name (`…-yyyymmdd-hhmm`).
pub fn slot_of(name: &str) -> Option<DateTime<Utc>> {
    let suffix = name.get(name.len().checked_sub(13)?..)?;
    chrono::NaiveDateTime::parse_from_str(suffix, "%Y%m%d-%H%M")
        .ok()
        .map(|t| t.and_utc())
}

/// RDS runs at most this many cross-Region snapshot copies at once per destination.
pub const MAX_CONCURRENT_COPIES: usize = 5;

/// Copies a managed snapshot to every destination that lacks it, with its tags.
pub async fn copy(
    rds: &dyn RdsSnapshots,
    kind: SourceKind,
    event: &crate::envelope::RdsEvent,
    destinations: &[super::request::CopyDestination],
    dry_run: bool,
    report: &mut Report,
) -> Result<()> {
    if destinations.is_empty() {
        report.skip(
            event.source_identifier.as_str(),
            "no copy destinations configured (PGSTEWARD_COPY_DESTINATIONS)",
        );
        return Ok(());
    }
    let source = if event.source_arn.is_empty() {
        event.source_identifier.as_str()
    } else {
        event.source_arn.as_str()
    };
    for d in destinations {
        let target = format!("{} in {}", event.source_identifier, d.region);
        if rds
            .find_in(kind, &d.region, &event.source_identifier)
            .await?
            .is_some()
        {
            report.skip(target, "the copy exists already");
            continue;
        }
        let busy = rds.copies_in_progress(kind, &d.region).await?;
        if busy >= MAX_CONCURRENT_COPIES {
            return Err(Error::Retryable(format!(
                "{busy} snapshot copies are in progress in {} (RDS allows {MAX_CONCURRENT_COPIES}); try again when one finishes",
                d.region
            )));
        }
        // The name carries the slot, so the copy gets the same tier and schedule tags as its
        // source without reading them (RDS applies explicit tags instead of copied ones).
        let mut tags = vec![
            (TAG_MANAGED.to_string(), "true".to_string()),
            ("pgsteward:copy-of".to_string(), source.to_string()),
        ];
        if let Some(slot) = slot_of(&event.source_identifier) {
            tags.push((TAG_TIER.to_string(), super::request::tier(slot).to_string()));
            tags.push((TAG_SCHEDULE.to_string(), slot.to_rfc3339()));
        }
        if dry_run {
            report.done(
                "would-copy-snapshot",
                target,
                json!({"kmsKeyId": d.kms_key_id}),
            );
            continue;
        }
        rds.copy_to(
            kind,
            source,
            &d.region,
            &event.source_identifier,
            d.kms_key_id.as_deref(),
            &tags,
        )
        .await?;
        report.done(
            "copy-snapshot",
            target,
            json!({"source": source, "kmsKeyId": d.kms_key_id}),
        );
        if let Some(account) = &d.share_with_account {
            report.warn(format!(
                "the copy in {} is shared with account {account} when its copy-finished event ({}) arrives (RDS shares only available snapshots), not by this run: that Region's RDS snapshot events must reach this function",
                d.region,
                copy_finished_event(kind)
            ));
        }
    }
    Ok(())
}

/// The event RDS emits in the destination Region when a cross-Region copy is usable:
/// RDS-EVENT-0060 "Finished copy of snapshot … from region …" for DB snapshots. Aurora
/// documents no copy event for cluster snapshots; the copy announces itself as
/// RDS-EVENT-0075 "Manual cluster snapshot created" in its Region.
pub fn copy_finished_event(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Instance => "RDS-EVENT-0060",
        SourceKind::Cluster => "RDS-EVENT-0075",
    }
}

/// Whether the event comes from another Region than the function's: a copy's event,
/// forwarded to this Region's bus. An event without a Region is taken as this Region's.
pub fn from_elsewhere(event: &crate::envelope::RdsEvent, home: Option<&str>) -> bool {
    !event.region.is_empty() && Some(event.region.as_str()) != home
}

/// Shares a finished copy in a destination Region with that destination's account, once.
pub async fn share(
    rds: &dyn RdsSnapshots,
    kind: SourceKind,
    event: &crate::envelope::RdsEvent,
    destinations: &[super::request::CopyDestination],
    dry_run: bool,
    report: &mut Report,
) -> Result<()> {
    // The Region used below is the configured one, never the event's text.
    let Some(d) = destinations.iter().find(|d| d.region == event.region) else {
        let configured: Vec<&str> = destinations.iter().map(|d| d.region.as_str()).collect();
        return Err(Error::invalid(format!(
            "the RDS event for '{}' comes from region '{}', which is neither this function's Region nor a copy destination ({configured:?} in PGSTEWARD_COPY_DESTINATIONS): forward only the destinations' snapshot events here",
            event.source_identifier, event.region
        )));
    };
    let target = format!("{} in {}", event.source_identifier, d.region);
    let Some(account) = &d.share_with_account else {
        report.skip(
            target,
            "this destination has no shareWithAccount: the copy is not shared",
        );
        return Ok(());
    };
    let finished = copy_finished_event(kind);
    if event.event_id != finished {
        report.skip(
            target,
            format!(
                "{} is not the copy-finished event; the copy is shared on {finished}",
                if event.event_id.is_empty() {
                    "(no EventID)"
                } else {
                    event.event_id.as_str()
                }
            ),
        );
        return Ok(());
    }
    let copy = rds
        .find_in(kind, &d.region, &event.source_identifier)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no snapshot '{}' in {} to share, though RDS reported its copy finished; check that it was not deleted",
                event.source_identifier, d.region
            ))
        })?;
    if copy.status != "available" {
        return Err(Error::Retryable(format!(
            "the copy '{}' in {} is {}; it can be shared once it is available",
            event.source_identifier, d.region, copy.status
        )));
    }
    let allowed = rds
        .restore_accounts(kind, &d.region, &event.source_identifier)
        .await?;
    if allowed.iter().any(|a| a == account) {
        report.skip(target, format!("already shared with account {account}"));
        return Ok(());
    }
    if dry_run {
        report.done("would-share-snapshot", target, json!({"account": account}));
        return Ok(());
    }
    rds.share_with(kind, &d.region, &event.source_identifier, account)
        .await?;
    report.done(
        "share-snapshot",
        target,
        json!({"account": account, "arn": copy.arn}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_is_read_back_from_the_name() {
        let at = slot_of("pgsteward-orders-prod-20261122-0200").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-22T02:00:00+00:00");
        assert!(slot_of("rds:orders").is_none());
    }

    #[test]
    fn a_full_quota_is_a_clear_refusal() {
        assert!(check_quota(None).is_ok());
        assert!(check_quota(Some((99, 100))).is_ok());
        let e = check_quota(Some((100, 100))).unwrap_err();
        assert_eq!(e.error_type(), "Unsafe");
        assert!(e.to_string().contains("100 of 100"));
    }

    #[test]
    fn a_copy_event_is_known_by_its_region() {
        let event = |region: &str| crate::envelope::RdsEvent {
            detail_type: "RDS DB Snapshot Event".into(),
            event_id: "RDS-EVENT-0060".into(),
            source_identifier: "pgsteward-orders-prod-20261122-0200".into(),
            source_arn: String::new(),
            region: region.into(),
        };
        assert!(from_elsewhere(&event("us-west-2"), Some("us-east-1")));
        assert!(!from_elsewhere(&event("us-east-1"), Some("us-east-1")));
        assert!(!from_elsewhere(&event(""), Some("us-east-1")));
        assert_eq!(copy_finished_event(SourceKind::Instance), "RDS-EVENT-0060");
        assert_eq!(copy_finished_event(SourceKind::Cluster), "RDS-EVENT-0075");
    }
}
