//! pitr-restore: point-in-time restore of an RDS instance (or Aurora cluster) as a new
//! instance, and the post-restore checklist as actions the RestoreChecklist state machine
//! drives one per invocation (seed 000 "Restore", seed 002 2.1–2.2 and 7.1). The contract
//! with the state machine: README, "The pitr-restore task".

pub mod counts;
pub mod cutover;
pub mod probe;
pub mod render;
pub mod report;
pub mod request;
pub mod restore;
pub mod window;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::aws::objects::ObjectStore;
use crate::aws::rds_restore::{Endpoint, RdsRestore};
use crate::aws::secret_versions::SecretVersions;
use crate::error::{Error, Result};
use crate::pg::{ConnectSettings, ConnectionSource, Target};
use crate::Deps;
pub use request::{parse_event, Action, PitrConfig, Request};

pub const TASK: &str = "pitr-restore";

/// Opens the object store of a bucket (the report bucket, a manifest's bucket).
pub type ObjectStores = Arc<dyn Fn(&str) -> Arc<dyn ObjectStore> + Send + Sync>;

/// Where the checklist's SQL goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checked {
    /// The restored target's endpoint, with the source's credentials (the Lambda).
    #[default]
    Restored,
    /// The configured database itself (the CLI's local checklist).
    Configured,
}

pub struct PitrRestore {
    pub config: PitrConfig,
    deps: Deps,
    rds: Arc<dyn RdsRestore>,
    secrets: Arc<dyn SecretVersions>,
    stores: ObjectStores,
    pub checked: Checked,
}

impl PitrRestore {
    pub fn new(
        config: PitrConfig,
        deps: Deps,
        rds: Arc<dyn RdsRestore>,
        secrets: Arc<dyn SecretVersions>,
        stores: ObjectStores,
    ) -> Self {
        PitrRestore {
            config,
            deps,
            rds,
            secrets,
            stores,
            checked: Checked::Restored,
        }
    }

    /// The injected clock's time (the CLI dates its report with it).
    pub fn now(&self) -> DateTime<Utc> {
        self.deps.clock.now()
    }

    pub async fn handle(&self, event: Value) -> Result<Value> {
        self.handle_until(event, None).await
    }

    /// `deadline`: the Lambda's; long steps (ANALYZE) stop before it.
    pub async fn handle_until(
        &self,
        event: Value,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<Value> {
        let request = parse_event(event)?;
        self.run_until(&request, deadline, None).await
    }

    /// Runs one action; every answer carries its `seconds`.
    pub async fn run(&self, req: &Request, progress: Option<probe::Progress<'_>>) -> Result<Value> {
        self.run_until(req, None, progress).await
    }

    pub async fn run_until(
        &self,
        req: &Request,
        deadline: Option<DateTime<Utc>>,
        progress: Option<probe::Progress<'_>>,
    ) -> Result<Value> {
        let started = Instant::now();
        let result = self.act(req, deadline, progress).await;
        let secs = started.elapsed().as_secs_f64();
        match &result {
            Ok(_) => {
                tracing::info!(action = req.action.as_str(), target = %req.target_db_instance_identifier, secs, "done")
            }
            Err(e) => {
                tracing::warn!(action = req.action.as_str(), target = %req.target_db_instance_identifier, error_type = e.error_type(), "{e}")
            }
        }
        let mut out = result?;
        if let Some(o) = out.as_object_mut() {
            o.entry("action").or_insert(json!(req.action.as_str()));
            o.entry("seconds").or_insert(json!(secs));
        }
        Ok(out)
    }

    async fn act(
        &self,
        req: &Request,
        deadline: Option<DateTime<Utc>>,
        progress: Option<probe::Progress<'_>>,
    ) -> Result<Value> {
        let c = &self.config;
        let source = c.common.db_identifier.as_str();
        let target = req.target_db_instance_identifier.as_str();
        match req.action {
            Action::Validate => {
                let v = window::validate(&*self.rds, c.source, source, req).await?;
                if self.rds.target(c.source, target).await?.is_some() {
                    return Err(Error::invalid(format!(
                        "targetDbInstanceIdentifier '{target}' is taken: an instance by that name exists; pick another name ({})",
                        v.window.describe()
                    )));
                }
                Ok(window::answer(source, target, &v))
            }
            Action::Restore => restore::restore(&*self.rds, c, req, self.deps.clock.now()).await,
            Action::Wait => {
                window::check_name(target, source)?;
                restore::wait(&*self.rds, c.source, target).await
            }
            Action::RowCounts => self.row_counts(req, deadline).await,
            Action::Analyze => {
                let client = crate::pg::connect_target(&self.restored(req).await?).await?;
                // Statistics gathered since the restore was created need no second pass.
                let since = match self.checked {
                    Checked::Configured => None,
                    Checked::Restored => self
                        .rds
                        .target(c.source, target)
                        .await?
                        .and_then(|t| t.created_at),
                };
                let stop_at = deadline.map(|d| {
                    let left = (d - self.deps.clock.now()).to_std().unwrap_or_default();
                    Instant::now() + left
                });
                probe::analyze(&client, since, stop_at, progress).await
            }
            Action::Connectivity => self.connectivity(req).await,
            Action::Smoke => {
                if req.smoke_queries.is_empty() {
                    return Ok(
                        json!({"status": "passed", "queries": [], "note": "no smokeQueries in the request"}),
                    );
                }
                let mut client = crate::pg::connect_target(&self.restored(req).await?).await?;
                probe::smoke(
                    &mut client,
                    &req.smoke_queries,
                    req.smoke_timeout_seconds.unwrap_or(30),
                )
                .await
            }
            Action::CutOver => {
                let arn = cutover::app_secret(c, req)?;
                cutover::check_preconditions(req)?;
                let ep = self.endpoint(req).await?;
                cutover::cut_over(&*self.secrets, arn, target, &ep, req.dry_run).await
            }
            Action::Rollback => {
                let arn = cutover::app_secret(c, req)?;
                window::check_name(target, source)?;
                cutover::rollback(&*self.secrets, arn, target, req.dry_run).await
            }
            Action::Report => self.report(req).await,
        }
    }

    /// The checks in the state machine's order, each result or `{Error, Cause}` under its
    /// step name; with `cutOver` requested and every check passed, the cut-over too. For
    /// the CLI, which has no state machine.
    pub async fn checklist(
        &self,
        req: &Request,
        progress: Option<probe::Progress<'_>>,
    ) -> BTreeMap<String, Value> {
        let mut results = BTreeMap::new();
        let mut checks = BTreeMap::new();
        for (action, step) in [
            (Action::RowCounts, "rowCounts"),
            (Action::Analyze, "analyze"),
            (Action::Connectivity, "connectivity"),
            (Action::Smoke, "smoke"),
        ] {
            let one = Request {
                action,
                ..req.clone()
            };
            let out = if action == Action::Connectivity && req.app_secret_arn.is_none() {
                Ok(
                    json!({"status": "skipped", "note": "no application secret given (--app-secret-arn)"}),
                )
            } else {
                self.run(&one, progress).await
            };
            let (status, value) = match out {
                Ok(v) => (v["status"].as_str().unwrap_or("passed").to_string(), v),
                Err(e) => (
                    "failed".to_string(),
                    json!({"Error": e.error_type(), "Cause": e.to_string()}),
                ),
            };
            checks.insert(step.to_string(), status);
            results.insert(step.to_string(), value);
        }
        if req.cut_over {
            let one = Request {
                action: Action::CutOver,
                checks: Some(checks),
                ..req.clone()
            };
            let value = match self.run(&one, None).await {
                Ok(v) => v,
                Err(e) => json!({"Error": e.error_type(), "Cause": e.to_string()}),
            };
            results.insert("cutOver".into(), value);
        }
        results
    }

    /// The restored target's endpoint: from the `wait` output, else asked of RDS.
    async fn endpoint(&self, req: &Request) -> Result<Endpoint> {
        if let Some(ep) = req.endpoint() {
            return Ok(ep);
        }
        let target = req.target_db_instance_identifier.as_str();
        window::check_name(target, &self.config.common.db_identifier)?;
        let t = self
            .rds
            .target(self.config.source, target)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("'{target}' does not exist: restore it first"))
            })?;
        match (t.status.as_str(), t.endpoint) {
            ("available", Some(ep)) => Ok(ep),
            (status, _) => Err(Error::Retryable(format!(
                "'{target}' is {status}, not available yet: wait for it before the checklist"
            ))),
        }
    }

    /// A session target for the checklist: the restored endpoint with `source`'s credentials.
    async fn aimed(&self, req: &Request, source: ConnectionSource) -> Result<Target> {
        if matches!(source, ConnectionSource::IamAuth { .. }) {
            return Err(Error::InvalidConfig(
                "checks on a restored instance use the source's master secret: set PGSTEWARD_DB_SECRET_ARN instead of PGSTEWARD_DB_IAM_AUTH".into(),
            ));
        }
        let settings = ConnectSettings {
            source,
            ..self.config.common.connect.clone()
        };
        let base = crate::pg::resolve(&settings, &*self.deps.secrets, &*self.deps.tokens).await?;
        if self.checked == Checked::Configured {
            return Ok(base);
        }
        let ep = self.endpoint(req).await?;
        Ok(base.at_endpoint(&ep.address, ep.port, &self.config.endpoint_override))
    }

    async fn restored(&self, req: &Request) -> Result<Target> {
        self.aimed(req, self.config.common.connect.source.clone())
            .await
    }

    /// Exact counts can outlast a Lambda: a statement still running 20 s before the deadline
    /// is cancelled, and the step fails `Retryable` instead of being killed mid-answer.
    async fn bound(
        &self,
        client: &tokio_postgres::Client,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let Some(d) = deadline else { return Ok(()) };
        let ms = (d - self.deps.clock.now() - chrono::Duration::seconds(20))
            .num_milliseconds()
            .max(1000);
        client
            .batch_execute(&format!("SET statement_timeout = {ms}"))
            .await
            .map_err(|e| Error::Retryable(format!("cannot set statement_timeout: {e}")))
    }

    async fn row_counts(&self, req: &Request, deadline: Option<DateTime<Utc>>) -> Result<Value> {
        let client = crate::pg::connect_target(&self.restored(req).await?).await?;
        self.bound(&client, deadline).await?;
        let restored = counts::count(&client, &counts::tables(&client).await?).await?;
        let compared = match req.expectations.compare_with()? {
            None => None,
            Some(request::CompareWith::Source) => {
                let target = crate::pg::resolve(
                    &self.config.common.connect,
                    &*self.deps.secrets,
                    &*self.deps.tokens,
                )
                .await?;
                // The source's own endpoint, through the override when it maps it (demos).
                let target = match target.config.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(h))
                        if self.config.endpoint_override.find(h).is_some() =>
                    {
                        let port = target.config.get_ports().first().copied().unwrap_or(5432);
                        target.at_endpoint(&h.clone(), port, &self.config.endpoint_override)
                    }
                    _ => target,
                };
                let source = crate::pg::connect_target(&target).await?;
                self.bound(&source, deadline).await?;
                Some(counts::count(&source, &counts::tables(&source).await?).await?)
            }
            Some(request::CompareWith::Manifest { bucket, key }) => {
                Some(counts::from_manifest(&*(self.stores)(&bucket), &bucket, &key).await?)
            }
        };
        let checks = counts::compare(&restored, &req.expectations, compared.as_ref());
        counts::verdict(&checks)?;
        Ok(json!({"status": "passed", "tables": checks}))
    }

    async fn connectivity(&self, req: &Request) -> Result<Value> {
        let arn = cutover::app_secret(&self.config, req)?;
        let target = self
            .aimed(req, ConnectionSource::Secret(arn.to_string()))
            .await?;
        let user = target.config.get_user().unwrap_or("?").to_string();
        let client = match crate::pg::connect_target(&target).await {
            Ok(c) => c,
            Err(e @ Error::Retryable(_)) => return Err(e),
            Err(e) => {
                return Err(Error::CheckFailed(format!(
                    "the application ({user}, from {arn}) cannot connect to the restore: {e}"
                )))
            }
        };
        probe::connectivity(&client, &user).await
    }

    async fn report(&self, req: &Request) -> Result<Value> {
        let now = self.deps.clock.now();
        let started = match req.started_at.as_deref() {
            Some(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    Error::invalid(format!(
                        "startedAt '{s}' is not an RFC 3339 time, e.g. \"2026-11-22T01:30:00Z\""
                    ))
                })?,
            None => now,
        };
        let results = req.results.clone().unwrap_or_default();
        let mut r = report::build(
            &req.target_db_instance_identifier,
            started,
            now,
            req.dry_run,
            &results,
        );
        let store = self
            .config
            .report_bucket
            .as_deref()
            .map(|b| (self.stores)(b));
        report::deliver(&mut r, store.as_deref(), &*self.deps.reports).await?;
        serde_json::to_value(&r).map_err(|e| Error::internal(format!("report json: {e}")))
    }
}
