//! snapshot: RDS/Aurora snapshots named from the schedule's slot (a repeated delivery finds
//! the existing one) and streamed logical backups to S3 (seed 000 "Backup", seed 001
//! "Automated Backup", seed 002 1.1–1.2).

pub mod logical;
pub mod rds;
pub mod request;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::aws::objects::ObjectStore;
use crate::aws::rds_snapshots::RdsSnapshots;
use crate::error::{Error, Result};
use crate::report::Report;
use crate::Deps;
pub use request::{parse_event, Action, Request, SnapshotConfig};

pub const TASK: &str = "snapshot";

pub struct SnapshotTask {
    pub config: SnapshotConfig,
    deps: Deps,
    rds: Arc<dyn RdsSnapshots>,
    store: Option<Arc<dyn ObjectStore>>,
}

impl SnapshotTask {
    pub fn new(
        config: SnapshotConfig,
        deps: Deps,
        rds: Arc<dyn RdsSnapshots>,
        store: Option<Arc<dyn ObjectStore>>,
    ) -> Self {
        SnapshotTask {
            config,
            deps,
            rds,
            store,
        }
    }

    pub async fn handle(&self, event: Value, deadline: Option<DateTime<Utc>>) -> Result<Value> {
        let request = parse_event(event, &self.config)?;
        let report = self.run(&request, deadline).await?;
        serde_json::to_value(&report).map_err(|e| Error::internal(format!("report json: {e}")))
    }

    pub async fn run(&self, req: &Request, deadline: Option<DateTime<Utc>>) -> Result<Report> {
        let db = &self.config.common.db_identifier;
        let clock = self.deps.clock.clone();
        let started = clock.now();
        let slot = request::slot(req, started);
        let mut report = Report::new(TASK, db, started, req.dry_run);
        match req.action {
            Action::Snapshot => {
                let s = rds::Slot {
                    source: self.config.source,
                    source_id: db,
                    name: request::snapshot_name(db, slot),
                    tier: request::tier(slot),
                    scheduled: slot,
                    run: started.to_rfc3339(),
                };
                rds::take(&*self.rds, &s, req.dry_run, &mut report).await?;
            }
            Action::LogicalBackup => {
                self.logical(slot, deadline, req.dry_run, &mut report)
                    .await?
            }
            Action::Copy => {
                let event = req.copy.as_ref().ok_or_else(|| {
                    Error::invalid("a copy starts from the RDS snapshot event (\"RDS DB Snapshot Event\"), not from a request")
                })?;
                report.target = event.source_identifier.clone();
                // A copy's own event comes from its destination Region: it is shared there;
                // this Region's events start the copies.
                let home = self.rds.home_region();
                let (kind, dests) = (self.config.source, &self.config.copy_destinations);
                if rds::from_elsewhere(event, home.as_deref()) {
                    rds::share(&*self.rds, kind, event, dests, req.dry_run, &mut report).await?;
                } else {
                    rds::copy(&*self.rds, kind, event, dests, req.dry_run, &mut report).await?;
                }
            }
        }
        report.finished_at = clock.now();
        if let Err(e) = self.deps.reports.publish(&report).await {
            report.warn(format!("the report was not published: {e}"));
        }
        Ok(report)
    }

    async fn logical(
        &self,
        slot: DateTime<Utc>,
        deadline: Option<DateTime<Utc>>,
        dry_run: bool,
        report: &mut Report,
    ) -> Result<()> {
        let store = self.store.clone().ok_or_else(|| {
            Error::InvalidConfig("logical backups need a bucket: set PGSTEWARD_BACKUP_BUCKET, e.g. PGSTEWARD_BACKUP_BUCKET=orders-backups".into())
        })?;
        let db = &self.config.common.db_identifier;
        let keys = logical::keys(&self.config.prefix, db, slot);
        if store.exists(&keys.manifest).await? {
            report.skip(
                format!("{}/{}", store.location(), keys.dump),
                "exists already with its manifest: this schedule slot is done",
            );
            report.details =
                json!({"dumpKey": keys.dump, "manifestKey": keys.manifest, "created": false});
            return Ok(());
        }
        if dry_run {
            report.done(
                "would-dump",
                format!("{}/{}", store.location(), keys.dump),
                json!({"manifest": keys.manifest}),
            );
            return Ok(());
        }
        let target = crate::pg::resolve(
            &self.config.common.connect,
            &*self.deps.secrets,
            &*self.deps.tokens,
        )
        .await?;
        // Leave time to abort cleanly and report before Lambda stops the process.
        let stop_at = deadline.map(|d| d - chrono::Duration::seconds(20));
        let manifest = logical::run(
            logical::Backup {
                target: &target,
                store,
                pg_dump: &self.config.pg_dump,
                part_bytes: self.config.part_bytes,
                db_identifier: db,
                keys,
                slot,
                started_at: report.started_at,
                stop_at,
            },
            &*self.deps.clock,
            report,
        )
        .await?;
        report.details = json!({"manifest": manifest, "created": true});
        Ok(())
    }
}
