//! Backup retention: list every series (managed snapshots at home, their copies in each
//! destination Region, logical dumps in S3), let the policy decide, and delete oldest first
//! through one guarded call site.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::policy::{self, Backup, Policy, Rule};
use super::{TAG_PINNED, TAG_VERIFIED};
use crate::aws::objects::{ListedObject, ObjectStore};
use crate::aws::rds_backups::{ListedSnapshot, RdsBackups};
use crate::aws::rds_snapshots::SourceKind;
use crate::error::{Error, Result};
use crate::report::Report;
use crate::snapshot::rds::{slot_of, TAG_MANAGED};

/// Where a backup lives, i.e. what deleting it means.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    Snapshot {
        kind: SourceKind,
        region: Option<String>,
    },
    /// A logical dump: its manifest, markers and the dump itself, in this order.
    Dump { keys: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct Item {
    pub backup: Backup,
    pub location: Location,
}

/// Backups that stand in for one another: the policy runs per series.
pub struct Series {
    pub name: String,
    pub items: Vec<Item>,
}

fn is_true(s: &ListedSnapshot, key: &str) -> bool {
    s.tags.get(key).map(String::as_str) == Some("true")
}

/// A managed snapshot is dated by its schedule slot (the name), so retention counts
/// calendar days the way the schedule meant them; anything else by its creation time.
pub fn from_snapshot(s: &ListedSnapshot, kind: SourceKind, region: Option<&str>) -> Item {
    let managed = is_true(s, TAG_MANAGED);
    let taken_at = managed.then(|| slot_of(&s.id)).flatten().or(s.created);
    Item {
        backup: Backup {
            id: s.id.clone(),
            taken_at: taken_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
            managed,
            automated: s.snapshot_type == "automated",
            pinned: is_true(s, TAG_PINNED),
            verified: s.tags.contains_key(TAG_VERIFIED),
            // Without a date it cannot be placed in any period: never deleted.
            available: s.status == "available" && taken_at.is_some(),
        },
        location: Location::Snapshot {
            kind,
            region: region.map(str::to_string),
        },
    }
}

/// Suffixes of one logical backup's objects; the manifest makes it a backup.
const DUMP: &str = ".dump";
const MANIFEST: &str = ".manifest.json";
/// Written by the verification drill / by an operator.
pub const VERIFIED_MARKER: &str = ".verified.json";
pub const PINNED_MARKER: &str = ".pinned";

/// Groups a database's objects into logical backups by their common name.
pub fn from_objects(objects: &[ListedObject]) -> Vec<Item> {
    let mut groups: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for o in objects {
        let base = [MANIFEST, VERIFIED_MARKER, PINNED_MARKER, DUMP]
            .iter()
            .find_map(|s| o.key.strip_suffix(s));
        if let Some(base) = base {
            groups.entry(base).or_default().push(&o.key);
        }
    }
    groups
        .into_iter()
        .map(|(base, keys)| {
            let has = |suffix: &str| keys.iter().any(|k| k.ends_with(suffix));
            let taken_at = slot_of(base);
            let mut ordered: Vec<String> = Vec::new();
            // Manifest first: an interrupted delete leaves a dump without a manifest,
            // which is not a backup and is kept, never a manifest without its dump.
            for suffix in [MANIFEST, VERIFIED_MARKER, PINNED_MARKER, DUMP] {
                ordered.extend(
                    keys.iter()
                        .filter(|k| k.ends_with(suffix))
                        .map(|k| k.to_string()),
                );
            }
            Item {
                backup: Backup {
                    id: format!("{base}{DUMP}"),
                    taken_at: taken_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
                    managed: true,
                    automated: false,
                    pinned: has(PINNED_MARKER),
                    verified: has(VERIFIED_MARKER),
                    available: has(DUMP) && has(MANIFEST) && taken_at.is_some(),
                },
                location: Location::Dump { keys: ordered },
            }
        })
        .collect()
}

pub struct Sources<'a> {
    pub rds: &'a dyn RdsBackups,
    pub store: Option<&'a dyn ObjectStore>,
    pub kind: SourceKind,
    pub db: &'a str,
    pub copy_regions: &'a [String],
    pub dump_prefix: String,
}

/// Every series, listed with one paginated call per 100 snapshots and Region.
pub async fn inventory(src: &Sources<'_>) -> Result<Vec<Series>> {
    let mut all = Vec::new();
    let regions = std::iter::once(None).chain(src.copy_regions.iter().map(|r| Some(r.as_str())));
    for region in regions {
        let listed = src.rds.list_snapshots(src.kind, region, src.db).await?;
        all.push(Series {
            name: match region {
                None => format!("snapshots of {}", src.db),
                Some(r) => format!("copies in {r}"),
            },
            items: listed
                .iter()
                .map(|s| from_snapshot(s, src.kind, region))
                .collect(),
        });
    }
    if let Some(store) = src.store {
        let objects = store.list(&src.dump_prefix).await?;
        all.push(Series {
            name: format!("logical dumps in {}/{}", store.location(), src.dump_prefix),
            items: from_objects(&objects),
        });
    }
    Ok(all)
}

/// Plans every series, deletes oldest first, and reports every backup with its rule.
pub async fn prune(
    series: &[Series],
    policy: &Policy,
    now: DateTime<Utc>,
    deleter: &Deleter<'_>,
    report: &mut Report,
) -> Result<Vec<serde_json::Value>> {
    let mut listing = Vec::new();
    for s in series {
        let backups: Vec<Backup> = s.items.iter().map(|i| i.backup.clone()).collect();
        let rules = policy::plan(&backups, policy, now);
        let mut doomed: Vec<(&Item, Rule)> = Vec::new();
        for (item, rule) in s.items.iter().zip(&rules) {
            listing.push(json!({
                "series": s.name,
                "id": item.backup.id,
                "takenAt": (item.backup.taken_at != DateTime::<Utc>::MAX_UTC).then_some(item.backup.taken_at),
                "decision": if rule.keeps() { "keep" } else { "delete" },
                "rule": rule,
                "why": rule.explain(),
            }));
            if !rule.keeps() {
                doomed.push((item, *rule));
            }
        }
        doomed.sort_by(|a, b| {
            (a.0.backup.taken_at, &a.0.backup.id).cmp(&(b.0.backup.taken_at, &b.0.backup.id))
        });
        window_warning(s, &backups, &rules, report);
        for (item, rule) in doomed {
            match deleter.delete(item, rule, report).await {
                Ok(()) => {}
                Err(e @ Error::Unsafe(_)) => return Err(e),
                // Oldest first, so stopping here leaves the series consistent.
                Err(e) => {
                    report.warn(format!(
                        "deleting {} failed ({e}); the rest of {} waits for the next run",
                        item.backup.id, s.name
                    ));
                    break;
                }
            }
        }
    }
    Ok(listing)
}

/// Says when the oldest restorable backup of a series moves forward.
fn window_warning(s: &Series, backups: &[Backup], rules: &[Rule], report: &mut Report) {
    let oldest = |keep_only: bool| {
        backups
            .iter()
            .zip(rules)
            .filter(|(b, r)| b.available && (!keep_only || r.keeps()))
            .map(|(b, _)| b.taken_at)
            .min()
    };
    if let (Some(before), Some(after)) = (oldest(false), oldest(true)) {
        if after > before {
            report.warn(format!(
                "the restore window of {} shrinks: the oldest restorable backup moves from {} to {}",
                s.name,
                before.format("%Y-%m-%d %H:%M UTC"),
                after.format("%Y-%m-%d %H:%M UTC")
            ));
        }
    }
}

/// The one place retention deletes a backup.
pub struct Deleter<'a> {
    pub rds: &'a dyn RdsBackups,
    pub store: Option<&'a dyn ObjectStore>,
    pub dry_run: bool,
}

impl Deleter<'_> {
    pub async fn delete(&self, item: &Item, rule: Rule, report: &mut Report) -> Result<()> {
        let b = &item.backup;
        // The policy decided; this re-checks what must never go, whatever a caller passed.
        if rule.keeps() || !b.managed || b.automated || b.pinned || !b.available {
            return Err(Error::Unsafe(format!(
                "refusing to delete {} ({rule:?}, managed {}, automated {}, pinned {}, available {})",
                b.id, b.managed, b.automated, b.pinned, b.available
            )));
        }
        let detail = json!({"takenAt": b.taken_at, "rule": rule, "why": rule.explain()});
        if self.dry_run {
            report.done("would-delete", b.id.as_str(), detail);
            return Ok(());
        }
        match &item.location {
            Location::Snapshot { kind, region } => {
                match self
                    .rds
                    .delete_snapshot(*kind, region.as_deref(), &b.id)
                    .await
                {
                    Ok(()) => {}
                    // Gone already (a concurrent run, an operator): the goal is met.
                    Err(Error::NotFound(_)) => {
                        report.skip(b.id.as_str(), "already deleted");
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            Location::Dump { keys } => {
                let store = self.store.ok_or_else(|| {
                    Error::internal("a dump to delete but no object store configured")
                })?;
                for key in keys {
                    store.delete(key).await?;
                }
            }
        }
        tracing::info!(backup = %b.id, rule = ?rule, "deleted");
        report.done("delete", b.id.as_str(), detail);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn listed(id: &str, tags: &[(&str, &str)], kind: &str) -> ListedSnapshot {
        ListedSnapshot {
            id: id.into(),
            status: "available".into(),
            snapshot_type: kind.into(),
            created: Some(DateTime::from_timestamp(1_700_000_000, 0).unwrap()),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn snapshots_are_dated_by_their_slot_and_read_their_tags() {
        let i = from_snapshot(
            &listed(
                "pgsteward-orders-20261001-0200",
                &[
                    (TAG_MANAGED, "true"),
                    (TAG_PINNED, "true"),
                    (TAG_VERIFIED, "2026-10-02T00:00:00Z"),
                ],
                "manual",
            ),
            SourceKind::Instance,
            None,
        );
        assert_eq!(i.backup.taken_at.to_rfc3339(), "2026-10-01T02:00:00+00:00");
        assert!(i.backup.managed && i.backup.pinned && i.backup.verified && i.backup.available);
        let auto = from_snapshot(
            &listed("rds:orders-2026-10-01", &[], "automated"),
            SourceKind::Instance,
            None,
        );
        assert!(auto.backup.automated && !auto.backup.managed);
    }

    #[test]
    fn dumps_group_with_their_manifest_and_markers() {
        let o = |k: &str| ListedObject {
            key: k.into(),
            size: 1,
        };
        let items = from_objects(&[
            o("p/db/2026/10/01/db-20261001-0230.dump"),
            o("p/db/2026/10/01/db-20261001-0230.manifest.json"),
            o("p/db/2026/10/01/db-20261001-0230.verified.json"),
            o("p/db/2026/10/02/db-20261002-0230.dump"),
            o("p/db/notes.txt"),
        ]);
        assert_eq!(items.len(), 2);
        assert!(items[0].backup.available && items[0].backup.verified);
        assert_eq!(
            items[0].location,
            Location::Dump {
                keys: vec![
                    "p/db/2026/10/01/db-20261001-0230.manifest.json".into(),
                    "p/db/2026/10/01/db-20261001-0230.verified.json".into(),
                    "p/db/2026/10/01/db-20261001-0230.dump".into(),
                ]
            }
        );
        // A dump without its manifest is not a backup: never deleted.
        assert!(!items[1].backup.available);
    }
}
