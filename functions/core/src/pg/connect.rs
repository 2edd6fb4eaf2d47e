//! PostgreSQL connections: from a URL (libpq conventions), a Secrets Manager secret in the
//! RDS JSON format, or an RDS IAM auth token. TLS with full verification by default; the
//! password never appears in a log line or an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config as PgConfig, NoTls};
use tracing::{info, warn};

use super::secret::DbSecret;
use crate::aws::{AuthTokenSource, SecretSource};
use crate::error::{Error, Result};

/// Where the credentials come from.
#[derive(Clone)]
pub enum ConnectionSource {
    /// `postgresql://user:pass@host:port/db?sslmode=…&sslrootcert=…`
    Url(String),
    /// ARN of a Secrets Manager secret with `host`, `port`, `username`, `password`, `dbname`.
    Secret(String),
    /// RDS IAM authentication: a short-lived token is the password.
    IamAuth {
        host: String,
        port: u16,
        user: String,
        dbname: String,
    },
}

// Manual Debug: a URL may embed the password.
impl std::fmt::Debug for ConnectionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionSource::Url(u) => write!(f, "Url({})", redact_url(u)),
            ConnectionSource::Secret(arn) => write!(f, "Secret({arn})"),
            ConnectionSource::IamAuth {
                host,
                port,
                user,
                dbname,
            } => {
                write!(f, "IamAuth({user}@{host}:{port}/{dbname})")
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectSettings {
    pub source: ConnectionSource,
    /// CA bundle used to verify the server (the RDS bundle in Lambda). A URL's
    /// `sslrootcert=` takes precedence.
    pub ca_bundle: Option<PathBuf>,
    pub connect_timeout: Duration,
}

/// How the session is protected, decided from the URL or the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Only by explicit `sslmode=disable`.
    Disabled,
    /// Chain and host name checked against this CA bundle.
    Verify(PathBuf),
}

/// A connection target that has everything but the network.
#[derive(Clone)]
pub struct Target {
    pub config: PgConfig,
    pub tls: Tls,
    /// Kept only to scrub it from error messages.
    password: Option<String>,
}

impl Target {
    /// libpq environment for a child tool (pg_dump) reaching the same server the same way:
    /// the password travels in the child's environment, never on its command line.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let c = &self.config;
        let mut env = vec![("PGAPPNAME", "pgsteward".to_string())];
        if let Some(tokio_postgres::config::Host::Tcp(h)) = c.get_hosts().first() {
            env.push(("PGHOST", h.clone()));
        }
        if let Some(p) = c.get_ports().first() {
            env.push(("PGPORT", p.to_string()));
        }
        if let Some(u) = c.get_user() {
            env.push(("PGUSER", u.to_string()));
        }
        if let Some(d) = c.get_dbname() {
            env.push(("PGDATABASE", d.to_string()));
        }
        if let Some(p) = &self.password {
            env.push(("PGPASSWORD", p.clone()));
        }
        if let Some(t) = c.get_connect_timeout() {
            env.push(("PGCONNECT_TIMEOUT", t.as_secs().max(1).to_string()));
        }
        match &self.tls {
            Tls::Disabled => env.push(("PGSSLMODE", "disable".into())),
            Tls::Verify(ca) => {
                env.push(("PGSSLMODE", "verify-full".into()));
                env.push(("PGSSLROOTCERT", ca.display().to_string()));
            }
        }
        env
    }

    /// The same credentials and TLS, aimed at another endpoint (a restored instance keeps
    /// the source's master credentials), through the endpoint override when it maps `host`.
    pub fn at_endpoint(
        &self,
        host: &str,
        port: u16,
        over: &super::endpoint::EndpointOverride,
    ) -> Target {
        Target {
            config: super::endpoint::aim(&self.config, host, port, over),
            tls: self.tls.clone(),
            password: self.password.clone(),
        }
    }

    /// Removes the password from a message (e.g. a child's stderr).
    pub fn scrub(&self, msg: String) -> String {
        scrub(msg, self.password.as_deref())
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("config", &self.config)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The URL with its password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable url>".to_string(),
    }
}

fn scrub(msg: String, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => msg.replace(p, "***"),
        _ => msg,
    }
}

/// Parses a libpq-style URL. `sslmode=disable` is the one opt-in to plaintext; any other
/// mode (or none) means TLS with full verification, never a plaintext fallback.
pub fn parse_url(raw: &str, default_ca: Option<&Path>, timeout: Duration) -> Result<Target> {
    let shown = redact_url(raw);
    let url = url::Url::parse(raw).map_err(|e| {
        Error::InvalidConfig(format!(
            "database url {shown} is not a valid url ({e}); expected e.g. postgresql://app@db.example.com:5432/orders?sslrootcert=/path/ca.pem"
        ))
    })?;
    if url.scheme() != "postgresql" && url.scheme() != "postgres" {
        return Err(Error::InvalidConfig(format!(
            "database url {shown} has scheme '{}'; expected postgresql://…",
            url.scheme()
        )));
    }
    let mut sslmode = None;
    let mut rootcert = None;
    let mut rest = url.clone();
    rest.set_query(None);
    {
        let mut q = rest.query_pairs_mut();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "sslmode" => sslmode = Some(v.into_owned()),
                "sslrootcert" => rootcert = Some(PathBuf::from(v.as_ref())),
                "sslcert" | "sslkey" | "sslpassword" => {
                    return Err(Error::InvalidConfig(format!(
                        "database url {shown}: client certificates ({k}) are not supported; use a password, a secret or IAM auth"
                    )))
                }
                _ => {
                    q.append_pair(&k, &v);
                }
            }
        }
    }
    let rest = rest.as_str().trim_end_matches('?').to_string();
    let password = url.password().map(percent_decode);
    let mut config: PgConfig = rest.parse().map_err(|e: tokio_postgres::Error| {
        Error::InvalidConfig(scrub(
            format!("database url {shown} is not valid: {e}; see libpq's connection URI format"),
            password.as_deref(),
        ))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("pgsteward");
    }
    let tls = match sslmode.as_deref() {
        Some("disable") => Tls::Disabled,
        None | Some("allow" | "prefer" | "require" | "verify-ca" | "verify-full") => {
            let ca = rootcert.or_else(|| default_ca.map(Path::to_path_buf)).ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "database url {shown} needs TLS but no CA bundle is configured: add sslrootcert=/path/ca.pem to the url, set PGSTEWARD_CA_BUNDLE, or add sslmode=disable to allow plaintext"
                ))
            })?;
            Tls::Verify(ca)
        }
        Some(other) => {
            return Err(Error::InvalidConfig(format!(
                "database url {shown} has sslmode={other}; expected disable, require, verify-ca or verify-full"
            )))
        }
    };
    Ok(Target {
        config,
        tls,
        password,
    })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("p={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Resolves the source into a target: fetches the secret or signs the IAM token.
pub async fn resolve(
    settings: &ConnectSettings,
    secrets: &dyn SecretSource,
    tokens: &dyn AuthTokenSource,
) -> Result<Target> {
    let ca = settings.ca_bundle.as_deref();
    match &settings.source {
        ConnectionSource::Url(u) => parse_url(u, ca, settings.connect_timeout),
        ConnectionSource::Secret(arn) => {
            let secret = DbSecret::parse(&secrets.secret_string(arn).await?, arn)?;
            let mut config = PgConfig::new();
            config
                .host(&secret.host)
                .port(secret.port)
                .user(&secret.username)
                .password(secret.password.as_str())
                .dbname(&secret.dbname);
            finish(config, ca, settings, Some(secret.password))
        }
        ConnectionSource::IamAuth {
            host,
            port,
            user,
            dbname,
        } => {
            let token = tokens.auth_token(host, *port, user).await?;
            let mut config = PgConfig::new();
            config
                .host(host)
                .port(*port)
                .user(user)
                .password(token.as_str())
                .dbname(dbname);
            finish(config, ca, settings, Some(token))
        }
    }
}

fn finish(
    mut config: PgConfig,
    ca: Option<&Path>,
    settings: &ConnectSettings,
    password: Option<String>,
) -> Result<Target> {
    config
        .connect_timeout(settings.connect_timeout)
        .application_name("pgsteward");
    let ca = ca.ok_or_else(|| {
        Error::InvalidConfig(
            "a secret or IAM connection needs a CA bundle: set PGSTEWARD_CA_BUNDLE, e.g. PGSTEWARD_CA_BUNDLE=/var/task/rds-ca-bundle.pem".into(),
        )
    })?;
    Ok(Target {
        config,
        tls: Tls::Verify(ca.to_path_buf()),
        password,
    })
}

/// Server notices (warnings such as VACUUM's "skipping … lock not available").
pub type Notices = tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::error::DbError>;

/// Opens the session and spawns its connection task.
pub async fn connect_target(target: &Target) -> Result<Client> {
    Ok(connect_target_with_notices(target).await?.0)
}

/// Opens the session; its notices arrive on the receiver.
pub async fn connect_target_with_notices(target: &Target) -> Result<(Client, Notices)> {
    let where_ = describe(&target.config);
    let pw = target.password.as_deref();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let result = match &target.tls {
        Tls::Disabled => {
            warn!(target = %where_, "connecting without TLS (sslmode=disable)");
            let mut cfg = target.config.clone();
            cfg.ssl_mode(SslMode::Disable);
            cfg.connect(NoTls).await.map(|(c, conn)| spawn(c, conn, tx))
        }
        Tls::Verify(ca) => {
            let tls = make_tls(ca)?;
            let mut cfg = target.config.clone();
            cfg.ssl_mode(SslMode::Require);
            cfg.connect(tls).await.map(|(c, conn)| spawn(c, conn, tx))
        }
    };
    let client = result.map_err(|e| classify(e, &where_, pw))?;
    info!(target = %where_, "connected");
    Ok((client, rx))
}

/// Resolves and connects in one step.
pub async fn connect(
    settings: &ConnectSettings,
    secrets: &dyn SecretSource,
    tokens: &dyn AuthTokenSource,
) -> Result<Client> {
    connect_target(&resolve(settings, secrets, tokens).await?).await
}

fn spawn<S, T>(
    client: Client,
    mut conn: tokio_postgres::Connection<S, T>,
    notices: tokio::sync::mpsc::UnboundedSender<tokio_postgres::error::DbError>,
) -> Client
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notice(n))) => {
                    let _ = notices.send(n);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    warn!(error = %e, "database connection closed with an error");
                    break;
                }
                None => break,
            }
        }
    });
    client
}

/// `user@host:port/db`, never the password.
fn describe(cfg: &PgConfig) -> String {
    let host = cfg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{}:{}/{}",
        cfg.get_user().unwrap_or("?"),
        host,
        port,
        cfg.get_dbname().unwrap_or("?")
    )
}

fn make_tls(ca: &Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::InvalidConfig(format!(
                "CA bundle {} cannot be read as PEM ({e}); point sslrootcert or PGSTEWARD_CA_BUNDLE at a PEM file",
                ca.display()
            ))
        })?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::InvalidConfig(format!(
            "CA bundle {} holds no usable certificate; point sslrootcert or PGSTEWARD_CA_BUNDLE at a PEM CA bundle",
            ca.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("tls setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Maps a connect failure to a stable error type, with the password scrubbed.
fn classify(e: tokio_postgres::Error, target: &str, password: Option<&str>) -> Error {
    use std::error::Error as _;
    let mut detail = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        src = s.source();
    }
    let detail = scrub(detail, password);
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        if code.starts_with("28") {
            return Error::InvalidConfig(format!(
                "cannot log in to {target}: {detail}; check the user and password in the secret or url"
            ));
        }
        if code == "3D000" {
            return Error::NotFound(format!("database in {target} does not exist: {detail}"));
        }
        return Error::Retryable(format!("cannot connect to {target}: {detail}"));
    }
    let lower = detail.to_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
        return Error::InvalidConfig(format!(
            "tls handshake with {target} failed: {detail}; check that the CA bundle (sslrootcert or PGSTEWARD_CA_BUNDLE) signed the server's certificate and the host name matches it"
        ));
    }
    Error::Retryable(format!(
        "cannot connect to {target}: {detail}; check the host, port and network path"
    ))
}

#[cfg(test)]
#[path = "connect_tests.rs"]
mod tests;
