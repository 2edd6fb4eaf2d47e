//! The drill for the CLI: every step in the state machine's order in one process (teardown
//! and report always), and the age of the newest verified backup for the metric.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::request::{Action, Drill, Kind, Request};
use super::{pick, BackupVerify};
use crate::error::{Error, Result};
use crate::retention_prune::backups::VERIFIED_MARKER;

impl BackupVerify {
    /// Hours since the newest verified backup was taken, best effort (None: unknown).
    pub(super) async fn verified_age(&self, req: &Request, now: DateTime<Utc>) -> Option<f64> {
        let taken = match req.drill.as_ref().map(|d| d.kind).unwrap_or(req.kind) {
            Kind::Snapshot => self
                .rds
                .backups
                .list_snapshots(self.config.source, None, &self.config.common.db_identifier)
                .await
                .ok()?
                .into_iter()
                .filter(|s| s.tags.contains_key(crate::retention_prune::TAG_VERIFIED))
                .filter_map(|s| s.created)
                .max(),
            Kind::Logical => {
                let prefix = format!(
                    "{}/{}/",
                    self.config.prefix.trim_end_matches('/'),
                    self.config.common.db_identifier
                );
                self.store
                    .as_deref()?
                    .list(&prefix)
                    .await
                    .ok()?
                    .iter()
                    .filter_map(|o| pick::slot_of(o.key.strip_suffix(VERIFIED_MARKER)?))
                    .max()
            }
        }?;
        Some(((now - taken).num_minutes() as f64 / 60.0 * 100.0).round() / 100.0)
    }

    /// The whole drill in the state machine's order, for the CLI: teardown and report always
    /// run; `poll` bounds the wait for a scratch instance.
    pub async fn drill(
        &self,
        base: &Request,
        poll: std::time::Duration,
        attempts: u32,
    ) -> Result<crate::report::Report> {
        let mut results: BTreeMap<String, Value> = BTreeMap::new();
        let caught = |e: Error| json!({"Error": e.error_type(), "Cause": e.to_string()});
        let step =
            |action: Action, drill: Option<Drill>, results: &BTreeMap<String, Value>| Request {
                action,
                drill,
                results: Some(results.clone()),
                ..base.clone()
            };
        let picked = self.run(&step(Action::Pick, None, &results)).await?;
        let drill: Drill = serde_json::from_value(picked["drill"].clone())
            .map_err(|e| Error::internal(format!("pick output: {e}")))?;
        results.insert("pick".into(), picked);
        let d = Some(drill.clone());
        let mut ok = match self
            .run(&step(Action::RestoreScratch, d.clone(), &results))
            .await
        {
            Ok(v) => {
                results.insert("restoreScratch".into(), v);
                true
            }
            Err(e) => {
                results.insert("restoreScratch".into(), caught(e));
                false
            }
        };
        if ok && drill.kind == Kind::Snapshot && !base.dry_run {
            ok = false;
            for _ in 0..attempts.max(1) {
                match self
                    .run(&step(Action::WaitScratch, d.clone(), &results))
                    .await
                {
                    Ok(v) if v["available"] == true => {
                        results.insert("waitScratch".into(), v);
                        ok = true;
                        break;
                    }
                    Ok(v) => {
                        results.insert("waitScratch".into(), v);
                        tokio::time::sleep(poll).await;
                    }
                    Err(e) => {
                        results.insert("waitScratch".into(), caught(e));
                        break;
                    }
                }
            }
            if !ok
                && results
                    .get("waitScratch")
                    .is_some_and(|w| w["available"] == false)
            {
                results.insert(
                    "waitScratch".into(),
                    caught(Error::Retryable(format!(
                        "scratch '{}' did not become available after {attempts} polls",
                        drill.scratch_instance()
                    ))),
                );
            }
        }
        if ok {
            let started = std::time::Instant::now();
            let mut verify = match self
                .verify(&step(Action::Verify, d.clone(), &results))
                .await
            {
                Ok(v) => v,
                Err(e) => caught(e),
            };
            verify["seconds"] = json!(started.elapsed().as_secs_f64());
            let passed = verify["passed"] == true;
            results.insert("verify".into(), verify);
            if passed && !base.dry_run {
                let tagged = self
                    .run(&step(Action::TagVerified, d.clone(), &results))
                    .await
                    .unwrap_or_else(caught);
                results.insert("tagVerified".into(), tagged);
            }
        }
        let torn = self
            .run(&step(Action::Teardown, d.clone(), &results))
            .await
            .unwrap_or_else(caught);
        results.insert("teardown".into(), torn);
        self.report(&step(Action::Report, d, &results), results.clone())
            .await
    }
}
