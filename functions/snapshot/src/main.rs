//! snapshot Lambda — and, with PGSTEWARD_TASK_EVENT set, a one-shot task for ECS Fargate
//! (databases whose dump outlasts 15 minutes). Wiring only; behaviour is in
//! `pgsteward_core::snapshot`.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pgsteward_core::aws::objects::S3Objects;
use pgsteward_core::aws::rds_snapshots::SdkRdsSnapshots;
use pgsteward_core::config::ProcessEnv;
use pgsteward_core::snapshot::{SnapshotConfig, SnapshotTask};
use pgsteward_core::Deps;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = SnapshotConfig::from_env(&ProcessEnv).inspect_err(|e| {
        lambda_runtime::tracing::error!(error_type = e.error_type(), "{e}");
    })?;
    let sdk = Deps::load_sdk(&config.common).await;
    let deps = Deps::with_sdk(&config.common, &sdk);
    let rds = Arc::new(SdkRdsSnapshots::new(&sdk));
    let store = config.bucket.clone().map(|b| {
        Arc::new(S3Objects::new(&sdk, b, config.kms_key.clone()))
            as Arc<dyn pgsteward_core::aws::objects::ObjectStore>
    });
    let task = SnapshotTask::new(config, deps, rds, store);
    if let Ok(event) = std::env::var("PGSTEWARD_TASK_EVENT") {
        // Fargate: one run, no deadline; the exit status tells Step Functions.
        let event: Value = serde_json::from_str(&event)?;
        let report = task.handle(event, None).await.inspect_err(|e| {
            lambda_runtime::tracing::error!(error_type = e.error_type(), "{e}");
        })?;
        println!("{report}");
        return Ok(());
    }
    let task = &task;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = chrono::DateTime::<chrono::Utc>::from(event.context.deadline());
        task.handle(event.payload, Some(deadline))
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
