//! pitr-restore Lambda: one action of the RestoreChecklist per invocation. Wiring only;
//! behaviour is in `pgsteward_core::pitr_restore`.

use std::sync::Arc;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pgsteward_core::aws::objects::{ObjectStore, S3Objects};
use pgsteward_core::aws::rds_restore::SdkRdsRestore;
use pgsteward_core::aws::secret_versions::SdkSecretVersions;
use pgsteward_core::config::ProcessEnv;
use pgsteward_core::pitr_restore::{ObjectStores, PitrConfig, PitrRestore};
use pgsteward_core::Deps;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = PitrConfig::from_env(&ProcessEnv).inspect_err(|e| {
        lambda_runtime::tracing::error!(error_type = e.error_type(), "{e}");
    })?;
    let sdk = Deps::load_sdk(&config.common).await;
    let deps = Deps::with_sdk(&config.common, &sdk);
    let stores_sdk = sdk.clone();
    let stores: ObjectStores = Arc::new(move |bucket: &str| {
        Arc::new(S3Objects::new(&stores_sdk, bucket, None)) as Arc<dyn ObjectStore>
    });
    let task = PitrRestore::new(
        config,
        deps,
        Arc::new(SdkRdsRestore::new(&sdk)),
        Arc::new(SdkSecretVersions::new(&sdk)),
        stores,
    );
    let task = &task;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = chrono::DateTime::<chrono::Utc>::from(event.context.deadline());
        task.handle_until(event.payload, Some(deadline))
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
