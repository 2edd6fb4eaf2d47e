//! Adapters over the official SDK clients, built once per process.

use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{classify_sdk_error, AuthTokenSource, ReportSink, SecretSource};
use crate::error::{Error, Result};
use crate::report::Report;

/// The roots every AWS service endpoint chains to (Amazon Trust Services). Trusting only
/// these spares each cold start reading and parsing the whole system store (~4 ms here).
const AWS_ENDPOINT_ROOTS: &[u8] = include_bytes!("../../certs/aws-endpoint-roots.pem");

/// Set to `true` to trust the system store instead (a TLS-inspecting proxy, say).
pub const NATIVE_ROOTS_VAR: &str = "PGSTEWARD_AWS_NATIVE_ROOTS";

/// The SDK's shared configuration: region, credentials and `AWS_ENDPOINT_URL` from the
/// standard environment. Loading does no network I/O: credentials resolve on first use.
/// `lambda_region`: in Lambda the region and the role's credentials are in the environment;
/// the default chains would also build STS and IMDS clients (and parse their endpoint
/// rules) at every cold start for nothing.
pub async fn load_sdk_config(native_roots: bool, lambda_region: Option<&str>) -> SdkConfig {
    use aws_smithy_http_client::tls::{
        rustls_provider::CryptoMode, Provider, TlsContext, TrustStore,
    };
    let store = if native_roots {
        TrustStore::default()
    } else {
        TrustStore::empty().with_pem_certificate(AWS_ENDPOINT_ROOTS)
    };
    let context = TlsContext::builder()
        .with_trust_store(store)
        .build()
        .expect("the embedded roots parse");
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    let loader = aws_config::defaults(BehaviorVersion::latest()).http_client(client);
    let loader = match lambda_region {
        Some(region) => loader
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ),
        None => loader,
    };
    loader.load().await
}

pub struct SdkSecrets {
    client: aws_sdk_secretsmanager::Client,
}

impl SdkSecrets {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(config),
        }
    }
}

#[async_trait]
impl SecretSource for SdkSecrets {
    async fn secret_string(&self, arn: &str) -> Result<String> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &format!("read secret {arn}")))?;
        out.secret_string.ok_or_else(|| {
            Error::InvalidConfig(format!(
                "secret {arn} has no string value; store the RDS JSON format as a string"
            ))
        })
    }
}

pub struct SdkAuthTokens {
    config: SdkConfig,
}

impl SdkAuthTokens {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }
}

#[async_trait]
impl AuthTokenSource for SdkAuthTokens {
    async fn auth_token(&self, host: &str, port: u16, user: &str) -> Result<String> {
        use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config};
        let cfg = Config::builder()
            .hostname(host)
            .port(u64::from(port))
            .username(user)
            .build()
            .map_err(|e| {
                Error::InvalidConfig(format!("rds iam auth for {user}@{host}:{port}: {e}"))
            })?;
        let token = AuthTokenGenerator::new(cfg).auth_token(&self.config).await.map_err(|e| {
            Error::InvalidConfig(format!(
                "cannot sign an rds iam auth token for {user}@{host}:{port} ({e}); check the region and credentials"
            ))
        })?;
        Ok(token.as_str().to_string())
    }
}

/// Built on first use: most tasks never ask RDS anything, and a client's construction
/// (its endpoint rules included) would otherwise add to every cold start.
pub struct SdkRds {
    config: SdkConfig,
    client: std::sync::OnceLock<aws_sdk_rds::Client>,
}

impl SdkRds {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            config: config.clone(),
            client: std::sync::OnceLock::new(),
        }
    }

    fn client(&self) -> &aws_sdk_rds::Client {
        self.client
            .get_or_init(|| aws_sdk_rds::Client::new(&self.config))
    }
}

#[async_trait]
impl super::InstanceInfo for SdkRds {
    async fn allocated_storage_bytes(&self, db_instance: &str) -> Result<Option<u64>> {
        let what = format!("describe rds instance {db_instance}");
        let out = match self
            .client()
            .describe_db_instances()
            .db_instance_identifier(db_instance)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match classify_sdk_error(e, &what) {
                    Error::NotFound(_) => Ok(None),
                    other => Err(other),
                }
            }
        };
        Ok(out
            .db_instances
            .unwrap_or_default()
            .first()
            .and_then(|i| i.allocated_storage)
            .and_then(|gib| u64::try_from(gib).ok())
            .map(|gib| gib * 1024 * 1024 * 1024))
    }
}

/// EventBridge refuses events over 256 KB; a larger report goes out without its details.
const MAX_DETAIL_BYTES: usize = 240_000;

/// Publishes reports to an EventBridge bus with `source: pgsteward`.
pub struct EventBridgeReports {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

pub const REPORT_SOURCE: &str = "pgsteward";
pub const REPORT_DETAIL_TYPE: &str = "pgsteward report";

impl EventBridgeReports {
    pub fn new(config: &SdkConfig, bus: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_eventbridge::Client::new(config),
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl ReportSink for EventBridgeReports {
    async fn publish(&self, report: &Report) -> Result<()> {
        let mut detail = serde_json::to_string(report)
            .map_err(|e| Error::internal(format!("report json: {e}")))?;
        if detail.len() > MAX_DETAIL_BYTES {
            let mut slim = report.clone();
            slim.details = serde_json::json!({
                "omitted": format!("the full report ({} bytes) is over EventBridge's limit; it is the function's result", detail.len())
            });
            slim.done.truncate(200);
            slim.skipped.truncate(200);
            detail = serde_json::to_string(&slim)
                .map_err(|e| Error::internal(format!("report json: {e}")))?;
        }
        let entry = PutEventsRequestEntry::builder()
            .source(REPORT_SOURCE)
            .detail_type(REPORT_DETAIL_TYPE)
            .event_bus_name(&self.bus)
            .detail(detail)
            .build();
        let what = format!("publish report to event bus {}", self.bus);
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &what))?;
        if out.failed_entry_count > 0 {
            let why = out
                .entries
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| e.error_code)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::Retryable(format!("{what}: rejected ({why})")));
        }
        Ok(())
    }
}
