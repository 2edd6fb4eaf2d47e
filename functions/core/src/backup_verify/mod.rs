//! backup-verify: the restore drill (seed 000 "Backup Verification", seed 001 "Verify Backup
//! Restorable" and "Check for Corruption", seed 002 1.3 and 7.2). One action per
//! invocation, in the VerificationDrill state machine's order: pick → restore-scratch →
//! wait-scratch → verify → tag-verified (only when verify passed) → teardown (always) →
//! report (always). `drill` runs them all in that order for the CLI.

pub mod checks;
pub mod drill;
pub mod dump;
pub mod mark;
pub mod pick;
pub mod render;
pub mod report;
pub mod request;
pub mod scratch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::aws::objects::ObjectStore;
use crate::aws::rds_backups::RdsBackups;
use crate::aws::rds_drill::RdsDrill;
use crate::aws::rds_restore::{Endpoint, RdsRestore};
use crate::error::{Error, Result};
use crate::pg::{ConnectSettings, Target};
use crate::Deps;
pub use request::{parse_event, Action, Drill, Kind, Request, VerifyConfig};

pub const TASK: &str = "backup-verify";

/// The RDS ports the snapshot drill uses.
#[derive(Clone)]
pub struct RdsPorts {
    pub restore: Arc<dyn RdsRestore>,
    pub backups: Arc<dyn RdsBackups>,
    pub drill: Arc<dyn RdsDrill>,
}

pub struct BackupVerify {
    pub config: VerifyConfig,
    deps: Deps,
    rds: RdsPorts,
    /// The backup bucket: dumps, markers, reports.
    store: Option<Arc<dyn ObjectStore>>,
    /// Print the EMF line (the Lambda's log); the CLI prints the report instead.
    pub emit_emf: bool,
    /// pg_restore `--jobs` (PGSTEWARD_RESTORE_JOBS; None: by the dump's size and the cores).
    pub restore_jobs: Option<u32>,
}

impl BackupVerify {
    pub fn new(
        config: VerifyConfig,
        deps: Deps,
        rds: RdsPorts,
        store: Option<Arc<dyn ObjectStore>>,
    ) -> Self {
        BackupVerify {
            restore_jobs: config.restore_jobs,
            config,
            deps,
            rds,
            store,
            emit_emf: true,
        }
    }

    pub async fn handle(&self, event: Value) -> Result<Value> {
        self.handle_until(event, None).await
    }

    /// `deadline`: the Lambda's. A verify still running 20 s before it is stopped (pg_restore
    /// killed) and fails `Retryable`; the teardown removes the partial scratch database.
    pub async fn handle_until(
        &self,
        event: Value,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<Value> {
        let req = parse_event(event)?;
        let left = deadline.map(|d| {
            (d - self.deps.clock.now() - chrono::Duration::seconds(20))
                .to_std()
                .unwrap_or_default()
        });
        match left {
            Some(left) if req.action == Action::Verify => {
                tokio::time::timeout(left, self.run(&req)).await.unwrap_or_else(|_| {
                    Err(Error::Retryable(format!(
                        "verify did not finish before the Lambda deadline (pg_restore and the checks took over {} s); raise the function's timeout, or verify this backup with the CLI",
                        left.as_secs()
                    )))
                })
            }
            _ => self.run(&req).await,
        }
    }

    /// Runs one action; every answer carries its `action` and `seconds`.
    pub async fn run(&self, req: &Request) -> Result<Value> {
        let started = Instant::now();
        let result = self.act(req).await;
        let secs = started.elapsed().as_secs_f64();
        match &result {
            Ok(_) => tracing::info!(action = req.action.as_str(), secs, "done"),
            Err(e) => tracing::warn!(
                action = req.action.as_str(),
                error_type = e.error_type(),
                "{e}"
            ),
        }
        let mut out = result?;
        if let Some(o) = out.as_object_mut() {
            o.entry("action").or_insert(json!(req.action.as_str()));
            o.entry("seconds").or_insert(json!(secs));
        }
        Ok(out)
    }

    fn store(&self) -> Result<&dyn ObjectStore> {
        self.store.as_deref().ok_or_else(|| {
            Error::InvalidConfig(
                "the logical drill needs PGSTEWARD_BACKUP_BUCKET (where the snapshot task writes dumps), e.g. PGSTEWARD_BACKUP_BUCKET=orders-backups".into(),
            )
        })
    }

    async fn act(&self, req: &Request) -> Result<Value> {
        let now = self.deps.clock.now();
        let kind = self.config.source;
        match req.action {
            Action::Pick => {
                let drill = match req.kind {
                    Kind::Snapshot => {
                        pick::snapshot(&*self.rds.backups, &self.config, req, now).await?
                    }
                    Kind::Logical => pick::logical(self.store()?, &self.config, req, now).await?,
                };
                Ok(json!({"drill": drill}))
            }
            Action::RestoreScratch => match req.drill()?.kind {
                Kind::Logical => Ok(
                    json!({"skipped": true, "note": "a logical drill restores into a scratch database in the verify step"}),
                ),
                Kind::Snapshot => {
                    scratch::restore(
                        &*self.rds.restore,
                        &*self.rds.drill,
                        &self.config,
                        req.drill()?,
                        req.dry_run,
                        now,
                    )
                    .await
                }
            },
            Action::WaitScratch => match req.drill()?.kind {
                Kind::Logical => Ok(
                    json!({"available": true, "status": "not needed", "endpoint": null, "skipped": true}),
                ),
                Kind::Snapshot => scratch::wait(&*self.rds.restore, kind, req.drill()?).await,
            },
            Action::Verify => {
                let out = self.verify(req).await?;
                if let Some(why) = checks::failures(&out) {
                    return Err(Error::CheckFailed(why));
                }
                Ok(out)
            }
            Action::TagVerified => self.tag_verified(req, now).await,
            Action::Teardown => {
                let drill = req.drill()?;
                match drill.kind {
                    Kind::Logical => {
                        dump::drop_scratch(&self.verify_server().await?, drill, req.dry_run).await
                    }
                    Kind::Snapshot => {
                        scratch::teardown(
                            &*self.rds.restore,
                            &*self.rds.backups,
                            kind,
                            drill,
                            req.dry_run,
                        )
                        .await
                    }
                }
            }
            Action::Report => {
                let r = self
                    .report(req, req.results.clone().unwrap_or_default())
                    .await?;
                serde_json::to_value(&r).map_err(|e| Error::internal(format!("report json: {e}")))
            }
        }
    }

    /// The server the logical drill restores on: PGSTEWARD_VERIFY_*, else the configured one.
    async fn verify_server(&self) -> Result<Target> {
        let c = &self.config.common.connect;
        let settings = ConnectSettings {
            source: self
                .config
                .verify_server
                .clone()
                .unwrap_or_else(|| c.source.clone()),
            ..c.clone()
        };
        crate::pg::resolve(&settings, &*self.deps.secrets, &*self.deps.tokens).await
    }

    /// The scratch instance's endpoint: from the wait output, else asked of RDS.
    async fn scratch_endpoint(&self, req: &Request, drill: &Drill) -> Result<Endpoint> {
        if let Some(ep) = req
            .result("waitScratch")
            .and_then(|w| serde_json::from_value(w.get("endpoint")?.clone()).ok())
        {
            return Ok(ep);
        }
        let w = scratch::wait(&*self.rds.restore, self.config.source, drill).await?;
        if w["available"] != true {
            return Err(Error::Retryable(format!(
                "scratch '{}' is {}, not available yet: wait for it before verify",
                drill.scratch_instance(),
                w["status"]
            )));
        }
        serde_json::from_value(w["endpoint"].clone()).map_err(|_| {
            Error::Retryable(format!(
                "scratch '{}' has no endpoint yet",
                drill.scratch_instance()
            ))
        })
    }

    /// Restores (logical) and runs every check; `passed` says whether all passed.
    pub async fn verify(&self, req: &Request) -> Result<Value> {
        let drill = req.drill()?;
        let mut all = Vec::new();
        let mut timings = serde_json::Map::new();
        let (target, manifest) = match drill.kind {
            Kind::Logical => {
                let store = self.store()?;
                let (dump_key, manifest_key) = match (&drill.backup.dump_key, &drill.backup.manifest_key) {
                    (Some(d), Some(m)) => (d, m),
                    _ => return Err(Error::invalid("a logical drill's backup needs dumpKey and manifestKey (the pick step's output)")),
                };
                let manifest = pick::read_manifest(store, manifest_key).await?;
                let fetched = dump::fetch(store, dump_key, &manifest).await?;
                timings.insert("download".into(), json!(fetched.seconds));
                all.push(checks::Check {
                    name: "checksum".into(),
                    passed: true,
                    detail: json!({"sha256": fetched.sha256, "bytes": fetched.bytes}),
                    failure: None,
                });
                if req.dry_run {
                    return Ok(
                        json!({"passed": true, "dryRun": true, "checks": all, "timings": timings,
                        "note": "dry run: the checksum was verified; nothing was restored"}),
                    );
                }
                let server = self.verify_server().await?;
                dump::create_scratch(&server, drill, self.deps.clock.now()).await?;
                let jobs = dump::jobs(fetched.bytes, self.restore_jobs);
                let restored = dump::restore(
                    &self.config.pg_restore,
                    &server,
                    drill,
                    fetched.file.path(),
                    jobs,
                )
                .await?;
                drop(fetched);
                timings.insert("restore".into(), restored["seconds"].clone());
                all.push(checks::Check {
                    name: "restore".into(),
                    passed: true,
                    detail: restored,
                    failure: None,
                });
                let mut t = server.clone();
                t.config.dbname(drill.scratch_database());
                (t, Some(manifest))
            }
            Kind::Snapshot => {
                if req.dry_run {
                    return Ok(
                        json!({"passed": true, "dryRun": true, "checks": [], "note": "dry run: nothing was restored, nothing to check"}),
                    );
                }
                let ep = self.scratch_endpoint(req, drill).await?;
                let base = crate::pg::resolve(
                    &self.config.common.connect,
                    &*self.deps.secrets,
                    &*self.deps.tokens,
                )
                .await?;
                (
                    base.at_endpoint(&ep.address, ep.port, &self.config.endpoint_override),
                    None,
                )
            }
        };
        let mut client = crate::pg::connect_target(&target).await?;
        let exact = drill.kind == Kind::Logical;
        let manifest = match (manifest, &self.store) {
            (Some(m), _) => Some(m),
            (None, Some(store)) => pick::latest_manifest(&**store, &self.config).await,
            (None, None) => None,
        };
        let (c, secs) = checks::row_counts(&client, manifest.as_ref(), exact).await?;
        timings.insert("rowCounts".into(), json!(secs));
        all.push(c);
        let (c, secs) = checks::amcheck(&client).await?;
        timings.insert("amcheck".into(), json!(secs));
        all.push(c);
        all.push(checks::checksum_failures(&client).await?);
        all.push(checks::smoke(&mut client, &self.config.smoke_queries).await);
        let rto = (self.deps.clock.now() - drill.started_at).num_milliseconds() as f64 / 1000.0;
        all.extend(checks::targets(
            rto,
            drill.rpo_minutes,
            self.config.rto_target_minutes,
            self.config.rpo_target_minutes,
        ));
        let passed = all.iter().all(|c| c.passed);
        Ok(
            json!({"passed": passed, "checks": all, "rtoSeconds": rto, "rpoMinutes": drill.rpo_minutes, "timings": timings}),
        )
    }

    /// Builds, writes and publishes the report; prints the EMF line.
    pub async fn report(
        &self,
        req: &Request,
        results: BTreeMap<String, Value>,
    ) -> Result<crate::report::Report> {
        let c = &self.config;
        let db = &c.common.db_identifier;
        let now = self.deps.clock.now();
        let mut r = report::build(
            db,
            req.drill.as_ref(),
            now,
            req.dry_run,
            &results,
            (c.rto_target_minutes, c.rpo_target_minutes),
        );
        let passed = report::passed(&r);
        let text = render::text(&r);
        report::deliver(&mut r, &text, self.store.as_deref(), &*self.deps.reports).await?;
        if self.emit_emf {
            let age = if passed {
                Some(0.0)
            } else {
                self.verified_age(req, now).await
            };
            println!("{}", report::emf_line(db, passed, age, now));
        }
        Ok(r)
    }
}
