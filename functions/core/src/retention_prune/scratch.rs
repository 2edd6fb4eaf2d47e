//! Scratch instances and clusters the verification drill left behind (a crashed drill):
//! only those tagged `pgsteward:scratch=true` and older than the configured age.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::TAG_SCRATCH;
use crate::aws::rds_backups::{RdsBackups, ScratchResource};
use crate::aws::rds_snapshots::SourceKind;
use crate::error::{Error, Result};
use crate::report::Report;

pub async fn sweep(
    rds: &dyn RdsBackups,
    max_age_hours: u32,
    now: DateTime<Utc>,
    dry_run: bool,
    report: &mut Report,
) -> Result<()> {
    let cutoff = now - Duration::hours(i64::from(max_age_hours));
    let mut found = rds.list_tagged(TAG_SCRATCH).await?;
    // A cluster's instances go first: RDS refuses to delete a cluster that still has any.
    found.sort_by_key(|r| (r.kind == SourceKind::Cluster, r.id.clone()));
    for r in &found {
        match r.created {
            Some(t) if t < cutoff => {}
            Some(t) => {
                report.skip(
                    r.id.as_str(),
                    format!("scratch resource created {} is younger than {max_age_hours} h: a drill may still use it", t.format("%Y-%m-%d %H:%M UTC")),
                );
                continue;
            }
            None => {
                report.skip(r.id.as_str(), "scratch resource still being created");
                continue;
            }
        }
        if r.status == "deleting" {
            report.skip(r.id.as_str(), "already being deleted");
            continue;
        }
        delete(rds, r, dry_run, report).await?;
    }
    Ok(())
}

/// The one place retention deletes an instance or a cluster.
async fn delete(
    rds: &dyn RdsBackups,
    r: &ScratchResource,
    dry_run: bool,
    report: &mut Report,
) -> Result<()> {
    if r.tags.get(TAG_SCRATCH).map(String::as_str) != Some("true") {
        return Err(Error::Unsafe(format!(
            "refusing to delete {}: it is not tagged {TAG_SCRATCH}=true",
            r.id
        )));
    }
    let detail = json!({"kind": r.kind, "created": r.created, "status": r.status});
    if dry_run {
        report.done("would-delete-scratch", r.id.as_str(), detail);
        return Ok(());
    }
    match rds.delete_resource(r.kind, &r.id).await {
        Ok(()) => report.done("delete-scratch", r.id.as_str(), detail),
        Err(Error::NotFound(_)) => report.skip(r.id.as_str(), "already deleted"),
        // A cluster whose instances are still going: the next run finishes it.
        Err(e) => report.warn(format!(
            "deleting scratch {} failed: {e}; the next run tries again",
            r.id
        )),
    }
    Ok(())
}
