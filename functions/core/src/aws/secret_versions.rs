//! The Secrets Manager port for cut-over and rollback of an application's secret: read the
//! current and previous versions, write a new current version (the old one becomes
//! AWSPREVIOUS), and move AWSCURRENT back. Values never reach a log line or a message.

use async_trait::async_trait;
use aws_config::SdkConfig;

use super::classify_sdk_error;
use crate::error::{Error, Result};

pub const CURRENT: &str = "AWSCURRENT";
pub const PREVIOUS: &str = "AWSPREVIOUS";

#[derive(Clone, PartialEq)]
pub struct SecretVersion {
    pub version_id: String,
    pub value: String,
}

// Manual Debug: never print the value.
impl std::fmt::Debug for SecretVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretVersion({}, ***)", self.version_id)
    }
}

#[async_trait]
pub trait SecretVersions: Send + Sync {
    /// The version holding `stage`, or None when no version holds it.
    async fn version(&self, arn: &str, stage: &str) -> Result<Option<SecretVersion>>;
    /// Writes `value` as the new AWSCURRENT (the old one becomes AWSPREVIOUS). The same
    /// `token` twice makes one version. Returns the new version's id.
    async fn put_current(&self, arn: &str, value: &str, token: &str) -> Result<String>;
    /// Moves AWSCURRENT from `from_version` to `to_version`.
    async fn move_current(&self, arn: &str, from_version: &str, to_version: &str) -> Result<()>;
}

pub struct SdkSecretVersions {
    client: aws_sdk_secretsmanager::Client,
}

impl SdkSecretVersions {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(config),
        }
    }
}

#[async_trait]
impl SecretVersions for SdkSecretVersions {
    async fn version(&self, arn: &str, stage: &str) -> Result<Option<SecretVersion>> {
        let what = format!("read {stage} of secret {arn}");
        match self
            .client
            .get_secret_value()
            .secret_id(arn)
            .version_stage(stage)
            .send()
            .await
        {
            Ok(out) => Ok(Some(SecretVersion {
                version_id: out.version_id.unwrap_or_default(),
                value: out.secret_string.ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "secret {arn} has no string value; cut-over needs the RDS JSON format"
                    ))
                })?,
            })),
            Err(e) => match classify_sdk_error(e, &what) {
                // A stage that no version holds is "not found" for the stage, not the secret.
                Error::NotFound(_) if stage != CURRENT => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn put_current(&self, arn: &str, value: &str, token: &str) -> Result<String> {
        let out = self
            .client
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &format!("write secret {arn}")))?;
        Ok(out.version_id.unwrap_or_default())
    }

    async fn move_current(&self, arn: &str, from_version: &str, to_version: &str) -> Result<()> {
        self.client
            .update_secret_version_stage()
            .secret_id(arn)
            .version_stage(CURRENT)
            .remove_from_version_id(from_version)
            .move_to_version_id(to_version)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_sdk_error(e, &format!("move {CURRENT} of secret {arn} back")))
    }
}
