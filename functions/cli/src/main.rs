//! `pgsteward`: every task locally against a database URL, and `invoke` to run a Lambda
//! handler in-process on an event file. Wiring only; behaviour lives in pgsteward-core.

mod args;
mod pitr;
mod verify;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use pgsteward_core::health_check::{self, HealthCheck, HealthCheckConfig};
use pgsteward_core::retention_prune::{self, RetentionConfig, RetentionPrune};
use pgsteward_core::snapshot::{self, SnapshotConfig, SnapshotTask};
use pgsteward_core::vacuum_sweep::{self, VacuumConfig, VacuumSweep};
use pgsteward_core::{Deps, Error, Result};
use serde_json::Value;

use args::{Cli, Command, Format, PruneScope, SweepMode};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PGSTEWARD_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(cli).await {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The shape Lambda reports, so scripts read failures the same way.
            println!("{}", e.to_json());
            if std::io::stderr().is_terminal() {
                eprintln!("error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Process environment with the command line's settings on top.
fn env_with(cli: &Cli) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    if let Some(url) = &cli.database_url {
        env.insert(pgsteward_core::config::URL_VAR.into(), url.clone());
    }
    if let Some(bus) = &cli.event_bus {
        env.insert("PGSTEWARD_EVENT_BUS".into(), bus.clone());
    }
    env
}

async fn health_check_task(env: &HashMap<String, String>) -> Result<HealthCheck> {
    let mut config = HealthCheckConfig::from_env(env)?;
    config.emit_emf = false; // stdout carries the result
    let deps = Deps::from_sdk(&config.common).await;
    Ok(HealthCheck::new(config, deps))
}

async fn vacuum_task(env: &HashMap<String, String>) -> Result<VacuumSweep> {
    let config = VacuumConfig::from_env(env)?;
    let deps = Deps::from_sdk(&config.common).await;
    Ok(VacuumSweep::new(config, deps))
}

async fn snapshot_task(env: &HashMap<String, String>) -> Result<SnapshotTask> {
    let config = SnapshotConfig::from_env(env)?;
    let sdk = Deps::load_sdk(&config.common).await;
    let deps = Deps::with_sdk(&config.common, &sdk);
    let rds = std::sync::Arc::new(pgsteward_core::aws::rds_snapshots::SdkRdsSnapshots::new(
        &sdk,
    ));
    let store = config.bucket.clone().map(|b| {
        std::sync::Arc::new(pgsteward_core::aws::objects::S3Objects::new(
            &sdk,
            b,
            config.kms_key.clone(),
        )) as std::sync::Arc<dyn pgsteward_core::aws::objects::ObjectStore>
    });
    Ok(SnapshotTask::new(config, deps, rds, store))
}

async fn retention_task(env: &HashMap<String, String>) -> Result<RetentionPrune> {
    let config = RetentionConfig::from_env(env)?;
    let sdk = Deps::load_sdk(&config.common).await;
    let deps = Deps::with_sdk(&config.common, &sdk);
    let rds = std::sync::Arc::new(pgsteward_core::aws::rds_backups::SdkRdsBackups::new(&sdk));
    let store = config.bucket.clone().map(|b| {
        std::sync::Arc::new(pgsteward_core::aws::objects::S3Objects::new(
            &sdk,
            b,
            config.kms_key.clone(),
        )) as std::sync::Arc<dyn pgsteward_core::aws::objects::ObjectStore>
    });
    Ok(RetentionPrune::new(config, deps, rds, store))
}

/// Done, skipped and warnings, one line each: the shape every task's report shares.
fn summary(report: &pgsteward_core::report::Report) -> String {
    let mut out = format!(
        "{} {}{}\n",
        report.task,
        report.target,
        if report.dry_run { " (dry run)" } else { "" }
    );
    for d in &report.done {
        out.push_str(&format!("{}: {}  {}\n", d.action, d.target, d.detail));
    }
    for s in &report.skipped {
        out.push_str(&format!("skipped {}: {}\n", s.item, s.reason));
    }
    for w in &report.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// One line per finished relation on a terminal's stderr.
fn progress_line() -> Option<vacuum_sweep::execute::Progress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(std::sync::Arc::new(|item, outcome, done, total| {
        let what = match outcome {
            vacuum_sweep::execute::Outcome::Done { figures } => {
                format!("{} ms", figures.duration_ms)
            }
            vacuum_sweep::execute::Outcome::Skipped { reason }
            | vacuum_sweep::execute::Outcome::Deferred { reason } => {
                format!("skipped: {reason}")
            }
        };
        eprintln!(
            "[{done}/{total}] {} {} ({what})",
            item.action.as_str(),
            item.qualified()
        );
    }))
}

async fn run(cli: Cli) -> Result<String> {
    let env = env_with(&cli);

    match cli.command {
        Command::HealthCheck {
            format,
            terminate_idle,
            dry_run,
        } => {
            let task = health_check_task(&env).await?;
            let request = health_check::Request {
                action: if terminate_idle {
                    health_check::Action::TerminateIdle
                } else {
                    health_check::Action::Check
                },
                dry_run,
                ..Default::default()
            };
            let report = task.run(&request).await?;
            Ok(match format {
                Format::Json => format!(
                    "{}\n",
                    serde_json::to_string_pretty(&report).expect("report json")
                ),
                Format::Table => {
                    health_check::render::table(&report, std::io::stdout().is_terminal())
                }
            })
        }
        Command::VacuumSweep {
            mode,
            jobs,
            tables,
            dry_run,
            format,
        } => {
            let task = vacuum_task(&env).await?;
            let mode = match mode {
                SweepMode::Standard => vacuum_sweep::plan::Mode::Standard,
                SweepMode::Analyze => vacuum_sweep::plan::Mode::Analyze,
                SweepMode::Freeze => vacuum_sweep::plan::Mode::Freeze,
                SweepMode::Full => vacuum_sweep::plan::Mode::Full,
                SweepMode::Reindex => vacuum_sweep::plan::Mode::Reindex,
            };
            let mut request = serde_json::json!({"mode": mode, "dryRun": dry_run});
            if let Some(j) = jobs {
                request["jobs"] = j.into();
            }
            if !tables.is_empty() {
                request["tables"] = tables.into();
            }
            let request = vacuum_sweep::parse_event(request, &task.config)?;
            let report = task.run(&request, None, progress_line()).await?;
            Ok(match format {
                Format::Json => format!(
                    "{}\n",
                    serde_json::to_string_pretty(&report).expect("report json")
                ),
                Format::Table => vacuum_sweep::render::table(&report),
            })
        }
        Command::Snapshot {
            logical,
            bucket,
            dry_run,
            format,
        } => {
            let mut env = env.clone();
            if let Some(b) = bucket {
                env.insert("PGSTEWARD_BACKUP_BUCKET".into(), b);
            }
            let task = snapshot_task(&env).await?;
            let action = if logical {
                "logical-backup"
            } else {
                "snapshot"
            };
            let request = snapshot::parse_event(
                serde_json::json!({"action": action, "dryRun": dry_run}),
                &task.config,
            )?;
            let report = task.run(&request, None).await?;
            Ok(match format {
                Format::Json => format!(
                    "{}\n",
                    serde_json::to_string_pretty(&report).expect("report json")
                ),
                Format::Table => summary(&report),
            })
        }
        Command::RetentionPrune {
            apply,
            scope,
            bucket,
            format,
        } => {
            let mut env = env.clone();
            if let Some(b) = bucket {
                env.insert("PGSTEWARD_BACKUP_BUCKET".into(), b);
            }
            let task = retention_task(&env).await?;
            let scope = match scope {
                PruneScope::All => retention_prune::Scope::All,
                PruneScope::Backups => retention_prune::Scope::Backups,
                PruneScope::Scratch => retention_prune::Scope::Scratch,
                PruneScope::Rows => retention_prune::Scope::Rows,
            };
            let request = retention_prune::Request {
                scope,
                dry_run: !apply,
                scheduled_time: None,
            };
            let report = task.run(&request, None).await?;
            Ok(match format {
                Format::Json => format!(
                    "{}\n",
                    serde_json::to_string_pretty(&report).expect("report json")
                ),
                Format::Table => retention_prune::render::table(&report),
            })
        }
        command @ Command::PitrRestore { .. } => pitr::run(&env, command).await,
        command @ Command::BackupVerify { .. } => verify::run(&env, command).await,
        Command::Invoke { function, event } => {
            let text = std::fs::read_to_string(&event).map_err(|e| {
                Error::invalid(format!("cannot read event file {}: {e}", event.display()))
            })?;
            let payload: Value = serde_json::from_str(&text).map_err(|e| {
                Error::invalid(format!("event file {} is not JSON: {e}", event.display()))
            })?;
            let result = match function.as_str() {
                health_check::TASK => health_check_task(&env).await?.handle(payload).await?,
                vacuum_sweep::TASK => vacuum_task(&env).await?.handle(payload, None).await?,
                snapshot::TASK => snapshot_task(&env).await?.handle(payload, None).await?,
                retention_prune::TASK => retention_task(&env).await?.handle(payload, None).await?,
                pgsteward_core::pitr_restore::TASK => {
                    pitr::task(&env).await?.handle(payload).await?
                }
                pgsteward_core::backup_verify::TASK => {
                    verify::task(&env).await?.handle(payload).await?
                }
                other => {
                    return Err(Error::invalid(format!(
                        "unknown function '{other}'; known: {}",
                        args::FUNCTIONS.join(", ")
                    )))
                }
            };
            Ok(format!(
                "{}\n",
                serde_json::to_string_pretty(&result).expect("json")
            ))
        }
    }
}
