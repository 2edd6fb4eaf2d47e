//! health-check Lambda: wiring only. Behaviour lives in `pgsteward_core::health_check`.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pgsteward_core::config::ProcessEnv;
use pgsteward_core::health_check::{HealthCheck, HealthCheckConfig};
use pgsteward_core::Deps;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = HealthCheckConfig::from_env(&ProcessEnv).inspect_err(|e| {
        lambda_runtime::tracing::error!(error_type = e.error_type(), "{e}");
    })?;
    let deps = Deps::from_sdk(&config.common).await;
    let task = HealthCheck::new(config, deps);
    let task = &task;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        task.handle(event.payload).await.map_err(Diagnostic::from)
    }))
    .await
}
