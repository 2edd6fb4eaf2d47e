//! pgsteward's behaviour. Binaries only wire these modules together.
//!
//! - `config`: typed configuration parsed once from the environment
//! - `envelope`: any invoking event into one typed request, or `InvalidInput`
//! - `error`: the one error enum and its stable Lambda `errorType`
//! - `clock`: the injected clock
//! - `pg`: connections (URL / secret / IAM, verified TLS) and identifier quoting
//! - `aws`: narrow ports over AWS and their SDK adapters
//! - `report`: the run report
//! - `digest`: SHA-256 of streamed bytes
//! - one module per task: `health_check`, `vacuum_sweep`, `snapshot`, `retention_prune`,
//!   `pitr_restore`, `backup_verify`

pub mod aws;
pub mod backup_verify;
pub mod clock;
pub mod config;
pub mod digest;
pub mod envelope;
pub mod error;
pub mod health_check;
pub mod pg;
pub mod pitr_restore;
pub mod report;
pub mod retention_prune;
pub mod snapshot;
pub mod vacuum_sweep;

use std::sync::Arc;

pub use error::{Error, Result};

/// The ports a task uses, built once per process.
#[derive(Clone)]
pub struct Deps {
    pub secrets: Arc<dyn aws::SecretSource>,
    pub tokens: Arc<dyn aws::AuthTokenSource>,
    pub reports: Arc<dyn aws::ReportSink>,
    pub rds: Arc<dyn aws::InstanceInfo>,
    pub clock: Arc<dyn clock::Clock>,
}

impl Deps {
    /// SDK-backed ports; reports go to the event bus when one is configured.
    pub async fn from_sdk(config: &config::CommonConfig) -> Self {
        Self::with_sdk(config, &Self::load_sdk(config).await)
    }

    /// The SDK configuration these ports are built from, for tasks that need more clients.
    pub async fn load_sdk(config: &config::CommonConfig) -> aws_config::SdkConfig {
        aws::sdk::load_sdk_config(config.aws_native_roots, config.lambda_region.as_deref()).await
    }

    pub fn with_sdk(config: &config::CommonConfig, sdk: &aws_config::SdkConfig) -> Self {
        let reports: Arc<dyn aws::ReportSink> = match config.event_bus.as_deref() {
            Some(bus) => Arc::new(aws::sdk::EventBridgeReports::new(sdk, bus)),
            None => Arc::new(aws::NoReports),
        };
        Deps {
            secrets: Arc::new(aws::sdk::SdkSecrets::new(sdk)),
            tokens: Arc::new(aws::sdk::SdkAuthTokens::new(sdk)),
            reports,
            rds: Arc::new(aws::sdk::SdkRds::new(sdk)),
            clock: Arc::new(clock::SystemClock),
        }
    }
}
