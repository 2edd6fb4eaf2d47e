//! The snapshot drill's scratch instance (or Aurora cluster and its writer): restored from
//! the picked snapshot, small, private, tagged as scratch with the drill's id and an
//! expiry; the snapshot tagged verified; the teardown, which removes only resources that
//! carry this drill's tag. Each mutating call has this one call site, honouring `dryRun`.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::request::{Drill, VerifyConfig};
use crate::aws::rds_backups::RdsBackups;
use crate::aws::rds_drill::{RdsDrill, ScratchSpec};
use crate::aws::rds_restore::{cluster_writer, RdsRestore, RestoreSpec, TargetInfo};
use crate::aws::rds_snapshots::SourceKind;
use crate::error::{Error, Result};
use crate::retention_prune::{TAG_SCRATCH, TAG_VERIFIED};

pub const TAG_DRILL: &str = "pgsteward:drill";
pub const TAG_EXPIRES: &str = "pgsteward:expires";
/// How long a scratch resource may live before retention-prune's sweep removes it.
pub const SCRATCH_HOURS: i64 = 24;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn tags(drill: &Drill, now: DateTime<Utc>) -> Vec<(String, String)> {
    vec![
        (TAG_SCRATCH.into(), "true".into()),
        (TAG_DRILL.into(), drill.drill_id.clone()),
        (
            TAG_EXPIRES.into(),
            rfc3339(now + Duration::hours(SCRATCH_HOURS)),
        ),
        ("pgsteward:verifies".into(), drill.backup.id.clone()),
    ]
}

fn is_ours(t: &TargetInfo, drill: &Drill) -> bool {
    let tag = |k: &str| {
        t.tags
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    tag(TAG_SCRATCH) == Some("true") && tag(TAG_DRILL) == Some(drill.drill_id.as_str())
}

/// The one call site that creates the scratch resource. Exists with this drill's tag:
/// reported; exists without it: `Unsafe`, nothing touched.
pub async fn restore(
    rds: &dyn RdsRestore,
    drill_rds: &dyn RdsDrill,
    config: &VerifyConfig,
    drill: &Drill,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<Value> {
    let name = drill.scratch_instance();
    let kind = config.source;
    if let Some(t) = rds.target(kind, &name).await? {
        if is_ours(&t, drill) {
            return Ok(
                json!({"scratch": name, "status": t.status, "note": "restored already by this drill"}),
            );
        }
        return Err(Error::Unsafe(format!(
            "'{name}' exists and is not this drill's scratch resource (no {TAG_DRILL}={} tag); it was left alone: give another drillId",
            drill.drill_id
        )));
    }
    let spec = ScratchSpec {
        kind,
        snapshot: drill.backup.id.clone(),
        target: name.clone(),
        instance_class: config.instance_class.clone(),
        subnet_group: config.subnet_group.clone().unwrap_or_default(),
        security_groups: config.security_groups.clone(),
        tags: tags(drill, now),
    };
    let planned = json!({
        "scratch": name, "snapshot": spec.snapshot, "instanceClass": spec.instance_class,
        "subnetGroup": spec.subnet_group, "securityGroups": spec.security_groups,
        "tags": spec.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
    });
    if dry_run {
        return Ok(json!({"dryRun": true, "wouldRestore": planned}));
    }
    if spec.subnet_group.is_empty() || spec.security_groups.is_empty() {
        return Err(Error::InvalidConfig(
            "a scratch restore needs PGSTEWARD_RESTORE_SUBNET_GROUP and PGSTEWARD_RESTORE_SECURITY_GROUPS (the private subnets and the security group the function reaches the database through), e.g. PGSTEWARD_RESTORE_SUBNET_GROUP=orders-private PGSTEWARD_RESTORE_SECURITY_GROUPS=sg-0123456789abcdef0".into(),
        ));
    }
    drill_rds.restore_snapshot(&spec).await?;
    if kind == SourceKind::Cluster {
        rds.add_writer(&RestoreSpec {
            kind,
            source: spec.snapshot.clone(),
            target: name.clone(),
            restore_time: None,
            subnet_group: spec.subnet_group.clone(),
            security_groups: spec.security_groups.clone(),
            parameter_group: None,
            instance_class: Some(spec.instance_class.clone()),
            engine: Some("aurora-postgresql".into()),
            tags: spec.tags.clone(),
        })
        .await?;
    }
    Ok(json!({"restored": planned}))
}

/// The scratch resource's state; never sleeps (the state machine's Wait does).
pub async fn wait(rds: &dyn RdsRestore, kind: SourceKind, drill: &Drill) -> Result<Value> {
    let name = drill.scratch_instance();
    let t = rds.target(kind, &name).await?.ok_or_else(|| {
        Error::NotFound(format!(
            "scratch '{name}' does not exist: run restore-scratch first"
        ))
    })?;
    if matches!(
        t.status.as_str(),
        "failed" | "incompatible-restore" | "incompatible-parameters" | "storage-full"
    ) {
        return Err(Error::Unsafe(format!(
            "scratch '{name}' is {}: it will not become available; the drill tears it down",
            t.status
        )));
    }
    let mut available = t.status == "available";
    if kind == SourceKind::Cluster {
        let w = rds
            .target(SourceKind::Instance, &cluster_writer(&name))
            .await?;
        available &= w.is_some_and(|w| w.status == "available");
    }
    Ok(
        json!({"available": available, "status": t.status, "endpoint": if available { json!(t.endpoint) } else { Value::Null }}),
    )
}

/// The one call site that tags the snapshot verified.
pub async fn tag_verified(
    drill_rds: &dyn RdsDrill,
    kind: SourceKind,
    drill: &Drill,
    at: DateTime<Utc>,
    dry_run: bool,
) -> Result<Value> {
    let value = rfc3339(at);
    if dry_run {
        return Ok(
            json!({"dryRun": true, "wouldTag": drill.backup.id, "tag": TAG_VERIFIED, "value": value}),
        );
    }
    drill_rds
        .tag_snapshot(kind, &drill.backup.id, TAG_VERIFIED, &value)
        .await?;
    Ok(json!({"tagged": drill.backup.id, "tag": TAG_VERIFIED, "value": value}))
}

/// The one call site that deletes: only resources tagged with this drill's id. A failure is
/// `Retryable`; the resource keeps its scratch tags, so retention-prune's sweep removes it.
pub async fn teardown(
    rds: &dyn RdsRestore,
    backups: &dyn RdsBackups,
    kind: SourceKind,
    drill: &Drill,
    dry_run: bool,
) -> Result<Value> {
    let name = drill.scratch_instance();
    let mut order = Vec::new();
    if kind == SourceKind::Cluster {
        order.push((SourceKind::Instance, cluster_writer(&name)));
    }
    order.push((kind, name.clone()));
    let mut removed = Vec::new();
    for (k, id) in order {
        let Some(t) = rds.target(k, &id).await? else {
            continue;
        };
        if !is_ours(&t, drill) {
            return Err(Error::Unsafe(format!(
                "'{id}' does not carry {TAG_DRILL}={} and {TAG_SCRATCH}=true: teardown never deletes what this drill did not create; it was left alone",
                drill.drill_id
            )));
        }
        if t.status == "deleting" {
            removed.push(json!({"id": id, "status": "deleting"}));
            continue;
        }
        if dry_run {
            removed.push(json!({"id": id, "status": "would delete", "dryRun": true}));
            continue;
        }
        backups.delete_resource(k, &id).await.map_err(|e| {
            Error::Retryable(format!(
                "deleting scratch '{id}' failed ({e}); it keeps its {TAG_SCRATCH} and {TAG_DRILL} tags, so retention-prune removes it after {SCRATCH_HOURS} h if the retries fail too"
            ))
        })?;
        removed.push(json!({"id": id, "status": "deleted"}));
    }
    if removed.is_empty() {
        return Ok(json!({"scratch": name, "status": "absent", "note": "nothing to remove"}));
    }
    Ok(json!({"scratch": name, "removed": removed}))
}
