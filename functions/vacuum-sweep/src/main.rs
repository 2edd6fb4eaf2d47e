//! vacuum-sweep Lambda: wiring only. Behaviour lives in `pgsteward_core::vacuum_sweep`.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pgsteward_core::config::ProcessEnv;
use pgsteward_core::vacuum_sweep::{VacuumConfig, VacuumSweep};
use pgsteward_core::Deps;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = VacuumConfig::from_env(&ProcessEnv).inspect_err(|e| {
        lambda_runtime::tracing::error!(error_type = e.error_type(), "{e}");
    })?;
    let deps = Deps::from_sdk(&config.common).await;
    let task = VacuumSweep::new(config, deps);
    let task = &task;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = chrono::DateTime::<chrono::Utc>::from(event.context.deadline());
        task.handle(event.payload, Some(deadline))
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
