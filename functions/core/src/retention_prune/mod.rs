//! retention-prune: GFS retention over managed snapshots, their copies and logical dumps;
//! the drill's leftover scratch resources; archive-then-delete of old rows (seed 001
//! "Clean up old backups" and "Cleanup Old Data", seed 004 "Backup Strategy").

pub mod archive;
pub mod archive_batch;
pub mod archive_io;
pub mod backups;
pub mod policy;
pub mod render;
pub mod request;
pub mod scratch;

use std::sync::Arc;

use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Value};

use crate::aws::objects::ObjectStore;
use crate::aws::rds_backups::RdsBackups;
use crate::error::{Error, Result};
use crate::report::Report;
use crate::Deps;
pub use request::{parse_event, Request, RetentionConfig, Scope};

pub const TASK: &str = "retention-prune";

/// Set by an operator: kept whatever the policy says.
pub const TAG_PINNED: &str = "pgsteward:pinned";
/// Set by the verification drill on a backup that restored and passed its checks.
pub const TAG_VERIFIED: &str = "pgsteward:verified";
/// Set by the verification drill on the instances and clusters it creates.
pub const TAG_SCRATCH: &str = "pgsteward:scratch";

pub struct RetentionPrune {
    pub config: RetentionConfig,
    deps: Deps,
    rds: Arc<dyn RdsBackups>,
    store: Option<Arc<dyn ObjectStore>>,
}

impl RetentionPrune {
    pub fn new(
        config: RetentionConfig,
        deps: Deps,
        rds: Arc<dyn RdsBackups>,
        store: Option<Arc<dyn ObjectStore>>,
    ) -> Self {
        RetentionPrune {
            config,
            deps,
            rds,
            store,
        }
    }

    pub async fn handle(&self, event: Value, deadline: Option<DateTime<Utc>>) -> Result<Value> {
        let request = parse_event(event)?;
        let report = self.run(&request, deadline).await?;
        serde_json::to_value(&report).map_err(|e| Error::internal(format!("report json: {e}")))
    }

    /// Runs every part the request covers; a part that fails does not stop the others,
    /// and the run fails afterwards, with the report published first.
    pub async fn run(&self, req: &Request, deadline: Option<DateTime<Utc>>) -> Result<Report> {
        let c = &self.config;
        let db = c.common.db_identifier.as_str();
        let now = self.deps.clock.now();
        let mut report = Report::new(TASK, db, now, req.dry_run);
        let mut failures: Vec<Error> = Vec::new();
        let mut details = json!({"policy": c.policy});

        if req.scope.covers(Scope::Backups) {
            match self.backups(now, req.dry_run, &mut report).await {
                Ok(listing) => details["backups"] = Value::Array(listing),
                Err(e @ Error::Unsafe(_)) => return Err(e),
                Err(e) => failures.push(e),
            }
        }
        if req.scope.covers(Scope::Scratch) {
            if let Err(e) = scratch::sweep(
                &*self.rds,
                c.scratch_max_age_hours,
                now,
                req.dry_run,
                &mut report,
            )
            .await
            {
                if matches!(e, Error::Unsafe(_)) {
                    return Err(e);
                }
                failures.push(e);
            }
        }
        if req.scope.covers(Scope::Rows) {
            let slot = req.scheduled_time.unwrap_or(now);
            let slot = slot
                .with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(slot);
            let mut archived = Vec::new();
            if let Err(e) = self
                .rows(now, slot, deadline, req.dry_run, &mut archived, &mut report)
                .await
            {
                failures.push(e);
            }
            details["archived"] = json!(archived);
        }

        report.details = details;
        report.finished_at = self.deps.clock.now();
        for e in &failures {
            report.warn(e.to_string());
        }
        if let Err(e) = self.deps.reports.publish(&report).await {
            report.warn(format!("the report was not published: {e}"));
        }
        match failures.into_iter().next() {
            None => Ok(report),
            Some(first) => Err(first),
        }
    }

    async fn backups(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
        report: &mut Report,
    ) -> Result<Vec<Value>> {
        let c = &self.config;
        let db = c.common.db_identifier.as_str();
        let sources = backups::Sources {
            rds: &*self.rds,
            store: self.store.as_deref(),
            kind: c.source,
            db,
            copy_regions: &c.copy_regions,
            dump_prefix: format!("{}/{}/", c.prefix, db),
        };
        let series = backups::inventory(&sources).await?;
        let deleter = backups::Deleter {
            rds: &*self.rds,
            store: self.store.as_deref(),
            dry_run,
        };
        backups::prune(&series, &c.policy, now, &deleter, report).await
    }

    async fn rows(
        &self,
        now: DateTime<Utc>,
        slot: DateTime<Utc>,
        deadline: Option<DateTime<Utc>>,
        dry_run: bool,
        archived: &mut Vec<archive::Archived>,
        report: &mut Report,
    ) -> Result<()> {
        let c = &self.config;
        if c.rules.is_empty() {
            report.skip(
                "old rows",
                "no archive rules configured (PGSTEWARD_ARCHIVE_RULES)",
            );
            return Ok(());
        }
        let target =
            crate::pg::resolve(&c.common.connect, &*self.deps.secrets, &*self.deps.tokens).await?;
        // Two sessions, so one batch's read-back overlaps the next one's COPY.
        let first = crate::pg::connect_target(&target).await?;
        let second = crate::pg::connect_target(&target).await?;
        let archiver = archive::Archiver {
            clients: [&first, &second],
            store: self.store.clone(),
            db: &c.common.db_identifier,
            prefix: &c.archive_prefix,
            slot,
            run_started: now,
            batch_rows: c.batch_rows,
            lock_timeout_ms: c.lock_timeout_ms,
            part_bytes: c.part_bytes,
            // Leave time to roll back and report before Lambda stops the process.
            stop_at: deadline.map(|d| d - chrono::Duration::seconds(20)),
            dry_run,
        };
        let mut first_failure = None;
        for rule in &c.rules {
            if let Err(e) = archiver
                .run_rule(rule, now, &*self.deps.clock, archived, report)
                .await
            {
                report.skip(rule.table.as_str(), format!("stopped: {e}"));
                first_failure.get_or_insert(e);
            }
        }
        match first_failure {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}
