//! vacuum-sweep: targeted VACUUM / ANALYZE / FREEZE / VACUUM FULL / REINDEX CONCURRENTLY that
//! never blocks production (seed 000 §3–4, seed 001 weekly/monthly tasks, seed 002 3.2–3.4).

pub mod catalog;
pub mod execute;
pub mod plan;
pub mod render;
pub mod request;
pub mod window;

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tracing::info;

use crate::error::{Error, Result};
use crate::report::Report;
use crate::Deps;
use execute::{Limits, Outcome, Progress};
use plan::{Mode, Only, Plan};
pub use request::{parse_event, Continuation, Request, VacuumConfig};

pub const TASK: &str = "vacuum-sweep";

/// One sweep per database at a time: a session advisory lock on this key.
pub const LOCK_KEY: i64 = 0x7067_7374_7661_6375; // "pgstvacu"

pub struct VacuumSweep {
    pub config: VacuumConfig,
    deps: Deps,
}

impl VacuumSweep {
    pub fn new(config: VacuumConfig, deps: Deps) -> Self {
        VacuumSweep { config, deps }
    }

    /// One invocation: the event as it arrived, the Lambda deadline when there is one.
    pub async fn handle(&self, event: Value, deadline: Option<DateTime<Utc>>) -> Result<Value> {
        let request = parse_event(event, &self.config)?;
        let report = self.run(&request, deadline, None).await?;
        serde_json::to_value(&report).map_err(|e| Error::internal(format!("report json: {e}")))
    }

    pub async fn run(
        &self,
        req: &Request,
        deadline: Option<DateTime<Utc>>,
        progress: Option<Progress>,
    ) -> Result<Report> {
        let db = &self.config.common.db_identifier;
        let clock = self.deps.clock.clone();
        let mut report = Report::new(TASK, db, clock.now(), req.dry_run);
        let target = crate::pg::resolve(
            &self.config.common.connect,
            &*self.deps.secrets,
            &*self.deps.tokens,
        )
        .await?;
        let (client, notices) = crate::pg::connect_target_with_notices(&target).await?;
        let row = client
            .query_one(
                "SELECT pg_is_in_recovery(), pg_try_advisory_lock($1)",
                &[&LOCK_KEY],
            )
            .await
            .map_err(|e| Error::Retryable(format!("vacuum-sweep start-up query failed: {e}")))?;
        let (standby, locked): (bool, bool) = (row.get(0), row.get(1));
        if standby {
            return Err(Error::Unsafe(format!(
                "{db} is a standby (pg_is_in_recovery() is true): VACUUM runs on the primary; point pgsteward at the primary's endpoint"
            )));
        }
        if !locked {
            report.skip(db.as_str(), "another vacuum-sweep is running on this database (advisory lock held); nothing was done");
            return self
                .finish(report, json!({"mode": req.mode, "windowOpen": true}))
                .await;
        }

        let planning = Instant::now();
        let (mut plan, invalid, known) = self.plan(&client, req).await?;
        let planning_ms = planning.elapsed().as_secs_f64() * 1000.0;
        for index in &invalid {
            report.warn(format!(
                "index {index} is invalid (left by an interrupted CREATE/REINDEX CONCURRENTLY): it slows writes and serves no query; drop it or REINDEX it"
            ));
        }
        let requested = req.named().or_else(|| {
            req.continuation
                .as_ref()
                .map(|c| c.remaining.iter().cloned().collect())
        });
        if let Some(wanted) = &requested {
            let missing: Vec<String> = wanted
                .difference(&known)
                .map(|(s, n)| format!("{s}.{n}"))
                .collect();
            if !missing.is_empty() && req.tables.is_some() {
                return Err(Error::invalid(format!(
                    "vacuum-sweep request: no such {} in {db}: {}; name them as \"schema.table\"",
                    if req.mode == Mode::Reindex {
                        "index"
                    } else {
                        "table"
                    },
                    missing.join(", ")
                )));
            }
            for m in missing {
                report.skip(m, "no longer exists");
            }
        }
        if req.mode == Mode::Full {
            // Only VACUUM FULL needs the size (it reads every file of the database).
            let db_bytes: i64 = client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await
                .map_err(|e| Error::Retryable(format!("database size query failed: {e}")))?
                .get(0);
            self.guard_full(req, &mut plan, db_bytes, &mut report)
                .await?;
        }
        let mut details = json!({
            "mode": req.mode,
            "planningMs": (planning_ms * 10.0).round() / 10.0,
            "plan": plan.items,
            "leftOut": plan.left_out,
            "invalidIndexes": invalid,
        });
        let window_end = req.window_end();
        if req.dry_run {
            details["windowOpen"] = json!(window_end.is_none_or(|e| clock.now() < e));
            return self.finish(report, details).await;
        }

        let margin = chrono::Duration::from_std(self.config.deadline_margin).unwrap_or_default();
        let stop_at = [deadline.map(|d| d - margin), window_end]
            .into_iter()
            .flatten()
            .min();
        let limits = Limits {
            jobs: req.jobs.unwrap_or(self.config.jobs),
            lock_timeout: self.config.lock_timeout,
            stop_at,
        };
        info!(db_instance = %db, mode = req.mode.as_str(), items = plan.items.len(), jobs = limits.jobs, "sweep starting");
        let (outcomes, client) = execute::run(
            &target,
            (client, notices),
            plan.items.clone(),
            &limits,
            clock.clone(),
            progress,
        )
        .await?;
        let mut remaining = vec![];
        for (item, outcome) in outcomes {
            match outcome {
                Outcome::Done { figures } => report.done(
                    item.action.as_str(),
                    item.qualified(),
                    json!({"reasons": item.reasons, "figures": figures}),
                ),
                Outcome::Skipped { reason } => report.skip(item.qualified(), reason),
                Outcome::Deferred { reason } => {
                    report.skip(item.qualified(), reason);
                    remaining.push((item.schema, item.name));
                }
            }
        }
        if !remaining.is_empty() {
            report.continuation = Some(json!(Continuation {
                mode: req.mode,
                remaining
            }));
        }
        details["windowOpen"] = json!(window_end.is_none_or(|e| clock.now() < e));
        let _ = client
            .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
            .await;
        self.finish(report, details).await
    }

    /// Reads the catalog once and plans; also returns every relation name it knows.
    async fn plan(
        &self,
        client: &tokio_postgres::Client,
        req: &Request,
    ) -> Result<(Plan, Vec<String>, Only)> {
        let requested = req.named().or_else(|| {
            req.continuation
                .as_ref()
                .map(|c| c.remaining.iter().cloned().collect())
        });
        let policy = &self.config.policy;
        if req.mode == Mode::Reindex {
            let indexes = catalog::load_indexes(client).await?;
            let known = indexes
                .iter()
                .map(|i| (i.schema.clone(), i.name.clone()))
                .collect();
            let (plan, invalid) = plan::plan_indexes(&indexes, policy, requested.as_ref());
            return Ok((plan, invalid, known));
        }
        let tables = catalog::load_tables(client, req.mode == Mode::Full).await?;
        let known = tables
            .iter()
            .map(|t| (t.schema.clone(), t.name.clone()))
            .collect();
        Ok((
            plan::plan_tables(&tables, policy, req.mode, requested.as_ref()),
            vec![],
            known,
        ))
    }

    /// VACUUM FULL rewrites the table under an exclusive lock: only inside the maintenance
    /// window, and only with room for the copy (2× the table, seed 001's pitfall).
    async fn guard_full(
        &self,
        req: &Request,
        plan: &mut Plan,
        db_bytes: i64,
        report: &mut Report,
    ) -> Result<()> {
        let named = req.tables.is_some();
        if named && !plan.left_out.is_empty() {
            let why: Vec<_> = plan
                .left_out
                .iter()
                .map(|l| format!("{}: {}", l.relation, l.reason))
                .collect();
            return Err(Error::Unsafe(format!(
                "vacuum full refused: {}",
                why.join("; ")
            )));
        }
        if plan.items.is_empty() {
            return Ok(());
        }
        let now = self.deps.clock.now();
        let refuse = |msg: String, report: &mut Report| -> Result<()> {
            if req.dry_run {
                report.warn(format!("{msg} (dry run: shown, not refused)"));
                Ok(())
            } else {
                Err(Error::Unsafe(msg))
            }
        };
        match &self.config.window {
            None => refuse(
                "vacuum full needs a maintenance window: set PGSTEWARD_MAINTENANCE_WINDOW, e.g. sun:03:00-sun:05:00 (UTC)".into(),
                report,
            )?,
            Some((text, w)) if !w.contains(now) => refuse(
                format!("vacuum full runs only inside the maintenance window {text} (UTC); it is now {}", now.format("%a %H:%M")),
                report,
            )?,
            Some(_) => {}
        }
        let free = match self.config.free_storage_bytes {
            Some(f) => Some((f, "PGSTEWARD_FREE_STORAGE_BYTES")),
            None => self
                .deps
                .rds
                .allocated_storage_bytes(&self.config.common.db_identifier)
                .await?
                .map(|alloc| {
                    (
                        alloc.saturating_sub(db_bytes.max(0) as u64),
                        "estimate: RDS allocated storage minus this database's size",
                    )
                }),
        };
        let Some((free, source)) = free else {
            return refuse(
                format!(
                    "vacuum full needs to know the free storage: {} is not an RDS instance here; set PGSTEWARD_FREE_STORAGE_BYTES",
                    self.config.common.db_identifier
                ),
                report,
            );
        };
        let (fits, too_big): (Vec<_>, Vec<_>) = plan
            .items
            .drain(..)
            .partition(|i| (i.bytes.max(0) as u64).saturating_mul(2) <= free);
        plan.items = fits;
        for item in too_big {
            let reason = format!(
                "needs 2× its {} bytes free, {} bytes free ({source})",
                item.bytes, free
            );
            if named && !req.dry_run {
                return Err(Error::Unsafe(format!(
                    "vacuum full of {} refused: {reason}",
                    item.qualified()
                )));
            }
            plan.left_out.push(plan::LeftOut {
                relation: item.qualified(),
                reason,
            });
        }
        report.warn(format!("free storage {free} bytes ({source})"));
        Ok(())
    }

    async fn finish(&self, mut report: Report, details: Value) -> Result<Report> {
        report.details = details;
        report.finished_at = self.deps.clock.now();
        if let Err(e) = self.deps.reports.publish(&report).await {
            report.warn(format!("the report was not published: {e}"));
        }
        Ok(report)
    }
}
