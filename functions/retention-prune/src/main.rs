//! retention-prune Lambda. Wiring only; behaviour is in `pgsteward_core::retention_prune`.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pgsteward_core::aws::objects::{ObjectStore, S3Objects};
use pgsteward_core::aws::rds_backups::SdkRdsBackups;
use pgsteward_core::config::ProcessEnv;
use pgsteward_core::retention_prune::{RetentionConfig, RetentionPrune};
use pgsteward_core::Deps;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = RetentionConfig::from_env(&ProcessEnv).inspect_err(|e| {
        lambda_runtime::tracing::error!(error_type = e.error_type(), "{e}");
    })?;
    let sdk = Deps::load_sdk(&config.common).await;
    let deps = Deps::with_sdk(&config.common, &sdk);
    let rds = Arc::new(SdkRdsBackups::new(&sdk));
    let store = config
        .bucket
        .clone()
        .map(|b| Arc::new(S3Objects::new(&sdk, b, config.kms_key.clone())) as Arc<dyn ObjectStore>);
    let task = RetentionPrune::new(config, deps, rds, store);
    let task = &task;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = chrono::DateTime::<chrono::Utc>::from(event.context.deadline());
        task.handle(event.payload, Some(deadline))
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
