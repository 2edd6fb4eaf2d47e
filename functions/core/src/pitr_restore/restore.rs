//! The restore itself (one guarded call site) and the `wait` probe the state machine polls.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::request::{PitrConfig, Request};
use super::window::{self, stamp};
use crate::aws::rds_restore::{RdsRestore, RestoreSpec, SourceInfo, TargetInfo, WRITER_MISSING};
use crate::aws::rds_snapshots::SourceKind;
use crate::error::{Error, Result};

/// Tags pgsteward puts on what it restores; a retry recognises its own restore by them.
pub const TAG_RESTORED_FROM: &str = "pgsteward:restored-from";
pub const TAG_RESTORE_TIME: &str = "pgsteward:restore-time";
pub const TAG_RESTORED_AT: &str = "pgsteward:restored-at";

fn restored_from(t: &TargetInfo) -> Option<&str> {
    t.tags
        .iter()
        .find(|(k, _)| k == TAG_RESTORED_FROM)
        .map(|(_, v)| v.as_str())
}

/// An existing target is ours (a retry, or a second delivery: report it) or a stranger's
/// (refuse: it is never touched).
fn existing(target: &str, source: &str, t: &TargetInfo) -> Result<Value> {
    if restored_from(t) == Some(source) {
        return Ok(json!({
            "target": target, "status": t.status, "created": false,
            "note": format!("in progress: '{target}' was already restored from '{source}' by pgsteward; no second restore"),
        }));
    }
    Err(Error::invalid(format!(
        "an instance named '{target}' exists already and is not a pgsteward restore of '{source}' (no {TAG_RESTORED_FROM}={source} tag): pick another targetDbInstanceIdentifier"
    )))
}

/// The source's tags (not AWS's reserved ones, not pgsteward's own) plus pgsteward's.
pub fn restore_tags(
    source_tags: &[(String, String)],
    source: &str,
    restore_time: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = source_tags
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:") && !k.starts_with("pgsteward:"))
        .cloned()
        .collect();
    tags.push((TAG_RESTORED_FROM.into(), source.into()));
    tags.push((
        TAG_RESTORE_TIME.into(),
        restore_time.map(stamp).unwrap_or_else(|| "latest".into()),
    ));
    tags.push((TAG_RESTORED_AT.into(), stamp(now)));
    tags
}

pub async fn restore(
    rds: &dyn RdsRestore,
    config: &PitrConfig,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Value> {
    let source = config.common.db_identifier.as_str();
    let target = req.target_db_instance_identifier.as_str();
    window::check_name(target, source)?;
    if let Some(t) = rds.target(config.source, target).await? {
        let answer = existing(target, source, &t)?;
        if t.status != WRITER_MISSING {
            return Ok(answer);
        }
        // Ours, but an interrupted restore left the cluster without its writer: finish it.
        let src = rds.source(config.source, source).await?.ok_or_else(|| {
            Error::invalid(format!("the source '{source}' does not exist any more"))
        })?;
        let mut spec = spec(config, &src, target, None, now)?;
        spec.tags = t.tags.clone();
        return start(rds, &spec, req.dry_run, true).await;
    }
    let v = window::validate(rds, config.source, source, req).await?;
    let spec = spec(config, &v.source, target, v.restore_time, now)?;
    start(rds, &spec, req.dry_run, false).await
}

/// The restore call's parameters: everything explicit, nothing left to RDS's defaults.
fn spec(
    config: &PitrConfig,
    source: &SourceInfo,
    target: &str,
    restore_time: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<RestoreSpec> {
    let subnet_group = config.subnet_group.clone().ok_or_else(|| {
        Error::InvalidConfig("PGSTEWARD_RESTORE_SUBNET_GROUP is not set: a restore goes into an explicit subnet group, e.g. PGSTEWARD_RESTORE_SUBNET_GROUP=orders-private".into())
    })?;
    if config.security_groups.is_empty() {
        return Err(Error::InvalidConfig("PGSTEWARD_RESTORE_SECURITY_GROUPS is not set: a restore gets explicit security groups, e.g. PGSTEWARD_RESTORE_SECURITY_GROUPS=sg-0123456789abcdef0".into()));
    }
    let id = config.common.db_identifier.as_str();
    Ok(RestoreSpec {
        kind: config.source,
        source: id.into(),
        target: target.into(),
        restore_time,
        subnet_group,
        security_groups: config.security_groups.clone(),
        parameter_group: config.parameter_group.clone(),
        instance_class: config
            .instance_class
            .clone()
            .or_else(|| source.instance_class.clone()),
        engine: source.engine.clone(),
        tags: restore_tags(&source.tags, id, restore_time, now),
    })
}

/// The one call site that creates anything: the restore, and an Aurora cluster's writer
/// (`writer_only` when the cluster exists already). A dry run says what it would create.
async fn start(
    rds: &dyn RdsRestore,
    spec: &RestoreSpec,
    dry_run: bool,
    writer_only: bool,
) -> Result<Value> {
    let writer = spec.kind == SourceKind::Cluster;
    if dry_run {
        return Ok(json!({
            "target": spec.target,
            "status": if writer_only { "would-add-writer" } else { "would-restore" },
            "created": false, "dryRun": true, "restore": spec,
        }));
    }
    let status = if writer_only {
        WRITER_MISSING.to_string()
    } else {
        match rds.restore(spec).await {
            Ok(t) => t.status,
            // Two deliveries at once: the other one started it.
            Err(e) if e.to_string().contains("AlreadyExists") => {
                return match rds.target(spec.kind, &spec.target).await? {
                    Some(t) => existing(&spec.target, &spec.source, &t),
                    None => Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    };
    if writer {
        rds.add_writer(spec).await?;
    }
    Ok(json!({"target": spec.target, "status": status, "created": !writer_only, "restore": spec}))
}

/// States a restore passes through on its way to `available`; anything else is a failure.
const ON_THE_WAY: &[&str] = &[
    "creating",
    "backing-up",
    "modifying",
    "configuring-enhanced-monitoring",
    "configuring-log-exports",
    "rebooting",
    "resetting-master-credentials",
    "storage-optimization",
    "starting",
    "upgrading",
];

/// Where the restore is. Never sleeps: the state machine's Wait state does.
pub async fn wait(rds: &dyn RdsRestore, kind: SourceKind, target: &str) -> Result<Value> {
    let t = rds.target(kind, target).await?.ok_or_else(|| {
        Error::NotFound(format!(
            "'{target}' does not exist: the restore was not started, or it was deleted; run the restore step first"
        ))
    })?;
    if t.status == WRITER_MISSING {
        return Err(Error::Unsafe(format!(
            "the restored cluster '{target}' has no writer instance: run the restore step again, it adds {}",
            crate::aws::rds_restore::cluster_writer(target)
        )));
    }
    let available = t.status == "available";
    if !available && !ON_THE_WAY.contains(&t.status.as_str()) {
        return Err(Error::Unsafe(format!(
            "the restore '{target}' is {}: it will not become available by waiting; look at its RDS events",
            t.status
        )));
    }
    Ok(json!({
        "target": target,
        "status": t.status,
        "available": available,
        "endpoint": if available { serde_json::to_value(&t.endpoint).unwrap_or(Value::Null) } else { Value::Null },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_the_sources_own_and_add_pgstewards() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let src = vec![
            ("team".to_string(), "orders".to_string()),
            ("aws:cloudformation:stack-name".into(), "x".into()),
            (TAG_RESTORED_FROM.into(), "older".into()),
        ];
        let tags = restore_tags(&src, "orders-prod", None, now);
        let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            vec!["team", TAG_RESTORED_FROM, TAG_RESTORE_TIME, TAG_RESTORED_AT]
        );
        assert_eq!(tags[1].1, "orders-prod");
        assert_eq!(tags[2].1, "latest");
    }
}
