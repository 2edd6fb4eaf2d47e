//! Step 1: which backup the drill tests: the latest (or a random one within `windowDays`,
//! like AWS Backup restore testing) managed, available snapshot, or logical dump with its
//! manifest. RPO is the backup's age when the drill starts.

use chrono::{DateTime, Duration, Utc};

use super::request::{check_drill_id, Backup, Drill, Pick, Request, VerifyConfig};
use crate::aws::objects::ObjectStore;
use crate::aws::rds_backups::{ListedSnapshot, RdsBackups};
use crate::error::{Error, Result};
use crate::retention_prune::TAG_VERIFIED;
use crate::snapshot::logical::Manifest;

const MANAGED: &str = "pgsteward:managed";
const MANIFEST: &str = ".manifest.json";
const DUMP: &str = ".dump";

/// The drill's id: the request's, else the schedule's slot, else the start time.
pub fn drill_id(req: &Request, now: DateTime<Utc>) -> Result<String> {
    if let Some(id) = &req.drill_id {
        return Ok(id.clone());
    }
    let id = match req.scheduled_time.as_deref() {
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map_err(|_| Error::invalid(format!("scheduledTime '{t}' is not an RFC 3339 time")))?
            .with_timezone(&Utc)
            .format("%Y%m%d-%H%M")
            .to_string(),
        None => now.format("%Y%m%d-%H%M%S").to_string(),
    };
    check_drill_id(&id)?;
    Ok(id)
}

/// One of `candidates` (newest first): the first, or one chosen from `seed` among those
/// taken within the window.
fn choose<T: Clone>(
    candidates: &[(DateTime<Utc>, T)],
    req: &Request,
    now: DateTime<Utc>,
    seed: u64,
) -> Option<(DateTime<Utc>, T)> {
    match req.pick {
        Pick::Latest => candidates.first().cloned(),
        Pick::Random => {
            let since = now - Duration::days(i64::from(req.window_days.unwrap_or(7)));
            let within: Vec<_> = candidates.iter().filter(|(t, _)| *t >= since).collect();
            if within.is_empty() {
                return None;
            }
            Some(within[(seed % within.len() as u64) as usize].clone())
        }
    }
}

fn drill(req: &Request, id: String, backup: Backup, now: DateTime<Utc>) -> Drill {
    let age = (now - backup.taken_at).num_milliseconds().max(0) as f64 / 60_000.0;
    Drill {
        drill_id: id,
        kind: req.kind,
        backup,
        started_at: now,
        rpo_minutes: (age * 100.0).round() / 100.0,
    }
}

pub async fn snapshot(
    rds: &dyn RdsBackups,
    config: &VerifyConfig,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Drill> {
    let db = &config.common.db_identifier;
    let mut all: Vec<ListedSnapshot> = rds
        .list_snapshots(config.source, None, db)
        .await?
        .into_iter()
        .filter(|s| {
            s.status == "available"
                && s.snapshot_type == "manual"
                && s.tags.get(MANAGED).map(String::as_str) == Some("true")
        })
        .collect();
    all.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    let candidates: Vec<(DateTime<Utc>, ListedSnapshot)> = all
        .into_iter()
        .filter_map(|s| Some((s.created?, s)))
        .collect();
    let id = drill_id(req, now)?;
    let (taken_at, s) = choose(&candidates, req, now, seed(&id)).ok_or_else(|| {
        Error::NotFound(format!(
            "no available managed snapshot of '{db}'{}: run the snapshot task first (pgsteward snapshot), or widen windowDays",
            window_note(req)
        ))
    })?;
    if s.tags.contains_key(TAG_VERIFIED) {
        tracing::info!(snapshot = %s.id, "picked a snapshot verified before; verifying it again");
    }
    Ok(drill(
        req,
        id,
        Backup {
            id: s.id,
            taken_at,
            dump_key: None,
            manifest_key: None,
            arn: None,
        },
        now,
    ))
}

pub async fn logical(
    store: &dyn ObjectStore,
    config: &VerifyConfig,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Drill> {
    let db = &config.common.db_identifier;
    let prefix = format!("{}/{db}/", config.prefix.trim_end_matches('/'));
    let listed = store.list(&prefix).await?;
    let dumps: std::collections::BTreeSet<&str> = listed
        .iter()
        .filter_map(|o| o.key.strip_suffix(DUMP))
        .collect();
    let mut bases: Vec<&str> = listed
        .iter()
        .filter_map(|o| o.key.strip_suffix(MANIFEST))
        .filter(|b| dumps.contains(b))
        .collect();
    // Keys carry the date and the slot: newest last in key order.
    bases.sort_unstable_by(|a, b| b.cmp(a));
    let id = drill_id(req, now)?;
    let missing = || {
        Error::NotFound(format!(
            "no logical dump with its manifest under {}/{prefix}{}: run a logical backup first (pgsteward snapshot --logical)",
            store.location(),
            window_note(req)
        ))
    };
    // Reading every manifest for `random` would be a GET each: the slot in the name dates it.
    let candidates: Vec<(DateTime<Utc>, &str)> = bases
        .iter()
        .filter_map(|b| Some((slot_of(b)?, *b)))
        .collect();
    let (_, base) = choose(&candidates, req, now, seed(&id)).ok_or_else(missing)?;
    let manifest_key = format!("{base}{MANIFEST}");
    let manifest = read_manifest(store, &manifest_key).await?;
    Ok(drill(
        req,
        id,
        Backup {
            id: base.to_string(),
            // The dump's consistent point: the snapshot exported when it started.
            taken_at: manifest.started_at,
            dump_key: Some(format!("{base}{DUMP}")),
            manifest_key: Some(manifest_key),
            arn: None,
        },
        now,
    ))
}

/// The newest dump's manifest of this database, best effort (a snapshot drill compares with it).
pub async fn latest_manifest(store: &dyn ObjectStore, config: &VerifyConfig) -> Option<Manifest> {
    let prefix = format!(
        "{}/{}/",
        config.prefix.trim_end_matches('/'),
        config.common.db_identifier
    );
    let listed = store.list(&prefix).await.ok()?;
    let dumps: std::collections::BTreeSet<&str> = listed
        .iter()
        .filter_map(|o| o.key.strip_suffix(DUMP))
        .collect();
    let base = listed
        .iter()
        .filter_map(|o| o.key.strip_suffix(MANIFEST))
        .filter(|b| dumps.contains(b))
        .max()?;
    read_manifest(store, &format!("{base}{MANIFEST}"))
        .await
        .ok()
}

pub async fn read_manifest(store: &dyn ObjectStore, key: &str) -> Result<Manifest> {
    let mut bytes = Vec::new();
    store
        .read(key, &mut |chunk: &[u8]| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::CheckFailed(format!(
            "{}/{key} is not a readable pgsteward backup manifest ({e}); the backup cannot be verified: take a new logical backup",
            store.location()
        ))
    })
}

/// `…/<db>-<yyyymmdd-hhmm>` → the slot.
pub fn slot_of(base: &str) -> Option<DateTime<Utc>> {
    let tail = base.get(base.len().checked_sub(13)?..)?;
    chrono::NaiveDateTime::parse_from_str(tail, "%Y%m%d-%H%M")
        .ok()
        .map(|t| t.and_utc())
}

fn seed(id: &str) -> u64 {
    id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn window_note(req: &Request) -> String {
    match req.pick {
        Pick::Latest => String::new(),
        Pick::Random => format!(" within the last {} days", req.window_days.unwrap_or(7)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_ids() {
        let t = slot_of("pgsteward/orders/2026/11/22/orders-20261122-0230").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T02:30:00+00:00");
        let req = Request {
            scheduled_time: Some("2026-11-22T03:00:00Z".into()),
            ..Request::default()
        };
        assert_eq!(drill_id(&req, Utc::now()).unwrap(), "20261122-0300");
    }
}
