//! `pgsteward pitr-restore`: the plan by default, the restore with --apply, and the
//! post-restore checklist (against the restore, or with --local the configured database).

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Arc;

use pgsteward_core::aws::objects::{ObjectStore, S3Objects};
use pgsteward_core::aws::rds_restore::SdkRdsRestore;
use pgsteward_core::aws::secret_versions::SdkSecretVersions;
use pgsteward_core::pitr_restore::{
    self, report, Action, Checked, ObjectStores, PitrConfig, PitrRestore, Request,
};
use pgsteward_core::{Deps, Error, Result};
use serde_json::{json, Value};

use crate::args::{Command, Format, PitrStep};

pub async fn task(env: &HashMap<String, String>) -> Result<PitrRestore> {
    let config = PitrConfig::from_env(env)?;
    let sdk = Deps::load_sdk(&config.common).await;
    let deps = Deps::with_sdk(&config.common, &sdk);
    let stores_sdk = sdk.clone();
    let stores: ObjectStores = Arc::new(move |bucket: &str| {
        Arc::new(S3Objects::new(&stores_sdk, bucket, None)) as Arc<dyn ObjectStore>
    });
    Ok(PitrRestore::new(
        config,
        deps,
        Arc::new(SdkRdsRestore::new(&sdk)),
        Arc::new(SdkSecretVersions::new(&sdk)),
        stores,
    ))
}

fn min_rows(pairs: &[String]) -> Result<BTreeMap<String, i64>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .and_then(|(t, n)| Some((t.trim().to_string(), n.trim().parse().ok()?)))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "--min-rows '{p}' is not SCHEMA.TABLE=N, e.g. --min-rows public.orders=1000"
                    ))
                })
        })
        .collect()
}

/// One ANALYZE line per table on a terminal's stderr.
fn progress(name: &str, done: usize, total: usize, ms: u128) {
    eprintln!("[{done}/{total}] ANALYZE {name} ({ms} ms)");
}

pub async fn run(env: &HashMap<String, String>, command: Command) -> Result<String> {
    let Command::PitrRestore {
        step,
        target,
        restore_time,
        latest,
        apply,
        min_rows: rows,
        compare_with,
        tolerance_percent,
        smoke,
        app_secret_arn,
        local,
        format,
    } = command
    else {
        unreachable!("pitr::run is called for pitr-restore only")
    };
    let mut t = task(env).await?;
    if local {
        t.checked = Checked::Configured;
    }
    let target =
        match (target, local) {
            (Some(t), _) => t,
            (None, true) => "local".to_string(),
            (None, false) => return Err(Error::invalid(
                "--target is missing: name the new instance, e.g. --target orders-restore-20261122",
            )),
        };
    let mut request = json!({
        "targetDbInstanceIdentifier": target,
        "useLatestRestorableTime": latest,
        "expectations": {"minRows": min_rows(&rows)?},
        "smokeQueries": smoke,
        "dryRun": !apply,
        "cutOver": step == PitrStep::CutOver,
    });
    for (k, v) in [
        ("restoreTime", restore_time.map(Value::from)),
        ("appSecretArn", app_secret_arn.map(Value::from)),
    ] {
        if let Some(v) = v {
            request[k] = v;
        }
    }
    if let Some(c) = compare_with {
        request["expectations"]["compareWith"] = c.into();
    }
    if let Some(p) = tolerance_percent {
        request["expectations"]["tolerancePercent"] = p.into();
    }
    let req: Request = pitr_restore::parse_event(request)?;
    let with = |action| Request {
        action,
        ..req.clone()
    };
    let started = t.now();
    let mut results = BTreeMap::new();
    match step {
        PitrStep::Plan | PitrStep::Restore => {
            if !apply {
                results.insert(
                    "validate".into(),
                    t.run(&with(Action::Validate), None).await?,
                );
            }
            results.insert("restore".into(), t.run(&with(Action::Restore), None).await?);
        }
        PitrStep::Wait => {
            results.insert("wait".into(), t.run(&with(Action::Wait), None).await?);
        }
        PitrStep::Checklist | PitrStep::CutOver => {
            let terminal = std::io::stderr().is_terminal();
            let p: Option<pitr_restore::probe::Progress<'_>> =
                if terminal { Some(&progress) } else { None };
            results = t.checklist(&req, p).await;
        }
        PitrStep::Rollback => {
            results.insert(
                "rollback".into(),
                t.run(&with(Action::Rollback), None).await?,
            );
        }
    }
    let r = report::build(&target, started, t.now(), !apply, &results);
    let failed = r.details["outcome"] == "failed";
    let text = match format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&r).expect("report json")
        ),
        Format::Table => pitr_restore::render::table(&r),
    };
    if failed {
        // The report first, then the failure, so scripts see both.
        print!("{text}");
        return Err(Error::CheckFailed(r.warnings.join("; ")));
    }
    Ok(text)
}
