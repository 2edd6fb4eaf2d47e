//! Narrow ports over AWS, shaped by what a task needs, and their adapters over the
//! official SDK clients (`sdk`). Tests use the same adapters pointed at moto through
//! the SDK's standard `AWS_ENDPOINT_URL`.

mod errors;
pub mod objects;
pub mod rds_backups;
mod rds_convert;
pub mod rds_drill;
pub mod rds_restore;
pub mod rds_snapshots;
pub mod sdk;
pub mod secret_versions;

use async_trait::async_trait;

use crate::error::Result;
use crate::report::Report;

pub use errors::classify_sdk_error;

/// Reads a secret's current value.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn secret_string(&self, arn: &str) -> Result<String>;
}

/// Signs an RDS IAM authentication token (used as the password).
#[async_trait]
pub trait AuthTokenSource: Send + Sync {
    async fn auth_token(&self, host: &str, port: u16, user: &str) -> Result<String>;
}

/// What a task needs to know about an RDS instance.
#[async_trait]
pub trait InstanceInfo: Send + Sync {
    /// Allocated storage in bytes, or None when there is no such instance.
    async fn allocated_storage_bytes(&self, db_instance: &str) -> Result<Option<u64>>;
}

/// Publishes a run report so SNS, chat or ticketing can subscribe.
#[async_trait]
pub trait ReportSink: Send + Sync {
    async fn publish(&self, report: &Report) -> Result<()>;
}

/// For local runs that publish nowhere (the CLI without `--event-bus`).
pub struct NoReports;

#[async_trait]
impl ReportSink for NoReports {
    async fn publish(&self, _report: &Report) -> Result<()> {
        Ok(())
    }
}
