//! `pgsteward backup-verify`: the whole drill locally (pick → restore → verify → tag →
//! teardown → report), human-readable or JSON.

use std::collections::HashMap;
use std::sync::Arc;

use pgsteward_core::aws::objects::{ObjectStore, S3Objects};
use pgsteward_core::aws::rds_backups::SdkRdsBackups;
use pgsteward_core::aws::rds_drill::SdkRdsDrill;
use pgsteward_core::aws::rds_restore::SdkRdsRestore;
use pgsteward_core::backup_verify::{
    self, render, BackupVerify, Kind, RdsPorts, Request, VerifyConfig,
};
use pgsteward_core::{Deps, Error, Result};

use crate::args::{Command, Format, VerifyKind};

pub async fn task(env: &HashMap<String, String>) -> Result<BackupVerify> {
    let config = VerifyConfig::from_env(env)?;
    let sdk = Deps::load_sdk(&config.common).await;
    let deps = Deps::with_sdk(&config.common, &sdk);
    let store = config
        .bucket
        .clone()
        .map(|b| Arc::new(S3Objects::new(&sdk, b, None)) as Arc<dyn ObjectStore>);
    let rds = RdsPorts {
        restore: Arc::new(SdkRdsRestore::new(&sdk)),
        backups: Arc::new(SdkRdsBackups::new(&sdk)),
        drill: Arc::new(SdkRdsDrill::new(&sdk)),
    };
    Ok(BackupVerify::new(config, deps, rds, store))
}

pub async fn run(env: &HashMap<String, String>, command: Command) -> Result<String> {
    let Command::BackupVerify {
        kind,
        random,
        window_days,
        bucket,
        verify_database_url,
        jobs,
        dry_run,
        poll_seconds,
        polls,
        format,
    } = command
    else {
        unreachable!("verify::run takes the backup-verify command")
    };
    let mut env = env.clone();
    if let Some(b) = bucket {
        env.insert("PGSTEWARD_BACKUP_BUCKET".into(), b);
    }
    if let Some(u) = verify_database_url {
        env.insert("PGSTEWARD_VERIFY_DATABASE_URL".into(), u);
    }
    let mut task = task(&env).await?;
    task.emit_emf = false; // stdout carries the report
    if jobs.is_some() {
        task.restore_jobs = jobs;
    }
    let request = Request {
        kind: match kind {
            VerifyKind::Logical => Kind::Logical,
            VerifyKind::Snapshot => Kind::Snapshot,
        },
        pick: if random {
            backup_verify::request::Pick::Random
        } else {
            backup_verify::request::Pick::Latest
        },
        window_days: Some(window_days),
        dry_run,
        ..Request::default()
    };
    let report = task
        .drill(
            &request,
            std::time::Duration::from_secs(poll_seconds),
            polls,
        )
        .await?;
    let out = match format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&report).expect("report json")
        ),
        Format::Table => render::text(&report),
    };
    if backup_verify::report::passed(&report) {
        return Ok(out);
    }
    print!("{out}");
    Err(Error::CheckFailed(format!(
        "the drill failed: {}",
        report.warnings.join("; ")
    )))
}
