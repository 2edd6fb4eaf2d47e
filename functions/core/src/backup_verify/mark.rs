//! Marking a backup verified, only after a passing verify: the snapshot's
//! `pgsteward:verified` tag, or a dump's `.verified.json` marker holding the drill's summary
//! (retention-prune keeps the newest verified backup by either).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::request::{Kind, Request};
use super::{report, scratch, BackupVerify};
use crate::error::{Error, Result};
use crate::retention_prune::backups::VERIFIED_MARKER;

impl BackupVerify {
    /// The one call site that marks a backup verified; only after a passing verify.
    pub(super) async fn tag_verified(&self, req: &Request, now: DateTime<Utc>) -> Result<Value> {
        let drill = req.drill()?;
        let verify = req.result("verify");
        if !verify.is_some_and(|v| v["passed"] == true && v["dryRun"] != true) {
            return Err(Error::Unsafe(format!(
                "{} was not tagged verified: results.verify.passed is not true (verify failed, did not run, or was a dry run)",
                drill.backup.id
            )));
        }
        match drill.kind {
            Kind::Snapshot => {
                scratch::tag_verified(
                    &*self.rds.drill,
                    self.config.source,
                    drill,
                    now,
                    req.dry_run,
                )
                .await
            }
            Kind::Logical => {
                let key = format!("{}{VERIFIED_MARKER}", drill.backup.id);
                if req.dry_run {
                    return Ok(json!({"dryRun": true, "wouldWrite": key}));
                }
                let marker = json!({
                    "drillId": drill.drill_id, "verifiedAt": now, "backup": drill.backup,
                    "rtoSeconds": verify.and_then(|v| v.get("rtoSeconds")), "rpoMinutes": drill.rpo_minutes,
                    "checks": verify.and_then(|v| v.get("checks")),
                    "report": format!("{}.json", report::key(&self.config.common.db_identifier, &drill.drill_id)),
                });
                let body = serde_json::to_vec_pretty(&marker)
                    .map_err(|e| Error::internal(format!("marker json: {e}")))?;
                let store = self.store()?;
                store.put(&key, body, "application/json").await?;
                Ok(json!({"marker": format!("{}/{key}", store.location())}))
            }
        }
    }
}
