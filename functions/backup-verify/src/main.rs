//! backup-verify Lambda: one action of the VerificationDrill per invocation. Wiring only;
//! behaviour is in `pgsteward_core::backup_verify`.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pgsteward_core::aws::objects::{ObjectStore, S3Objects};
use pgsteward_core::aws::rds_backups::SdkRdsBackups;
use pgsteward_core::aws::rds_drill::SdkRdsDrill;
use pgsteward_core::aws::rds_restore::SdkRdsRestore;
use pgsteward_core::backup_verify::{BackupVerify, RdsPorts, VerifyConfig};
use pgsteward_core::config::ProcessEnv;
use pgsteward_core::Deps;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = VerifyConfig::from_env(&ProcessEnv).inspect_err(|e| {
        lambda_runtime::tracing::error!(error_type = e.error_type(), "{e}");
    })?;
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
    let task = BackupVerify::new(config, deps, rds, store);
    let task = &task;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = chrono::DateTime::<chrono::Utc>::from(event.context.deadline());
        task.handle_until(event.payload, Some(deadline))
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
