//! Typed configuration, parsed once from the environment at start. A missing or malformed
//! variable fails with its name and an example of a good value.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::aws::rds_snapshots::SourceKind;
use crate::error::{Error, Result};
use crate::pg::{ConnectSettings, ConnectionSource};

/// Where variables come from: the process environment, or a map in tests.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

/// Reads variables; an empty value counts as unset.
pub struct Vars<'a>(pub &'a dyn Env);

impl Vars<'_> {
    pub fn get(&self, key: &str) -> Option<String> {
        self.0
            .var(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, key: &str, example: &str) -> Result<String> {
        self.get(key).ok_or_else(|| {
            Error::InvalidConfig(format!("{key} is not set; set it, e.g. {key}={example}"))
        })
    }

    /// Parses `key` when set, else `default`; the error names the value and an example.
    pub fn parse<T: FromStr>(
        &self,
        key: &str,
        default: T,
        expected: &str,
        example: &str,
    ) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                Error::InvalidConfig(format!(
                    "{key} is '{v}': expected {expected}, e.g. {key}={example}"
                ))
            }),
        }
    }

    pub fn flag(&self, key: &str) -> Result<bool> {
        match self
            .get(key)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(v) => Err(Error::InvalidConfig(format!(
                "{key} is '{v}': expected true or false, e.g. {key}=true"
            ))),
        }
    }

    /// PGSTEWARD_SNAPSHOT_SOURCE: an RDS instance (the default) or an Aurora cluster.
    pub fn snapshot_source(&self) -> Result<SourceKind> {
        match self.get("PGSTEWARD_SNAPSHOT_SOURCE").as_deref() {
            None | Some("instance") => Ok(SourceKind::Instance),
            Some("cluster") => Ok(SourceKind::Cluster),
            Some(other) => Err(Error::InvalidConfig(format!(
                "PGSTEWARD_SNAPSHOT_SOURCE is '{other}': expected instance or cluster (Aurora), e.g. PGSTEWARD_SNAPSHOT_SOURCE=instance"
            ))),
        }
    }

    /// PGSTEWARD_RESTORE_SECURITY_GROUPS: the ids restored instances get (none: the VPC's default).
    pub fn restore_security_groups(&self) -> Result<Vec<String>> {
        let groups = self.list("PGSTEWARD_RESTORE_SECURITY_GROUPS", &[]);
        match groups.iter().find(|g| !g.starts_with("sg-")) {
            Some(bad) => Err(Error::InvalidConfig(format!(
                "PGSTEWARD_RESTORE_SECURITY_GROUPS has '{bad}': expected security group ids, e.g. PGSTEWARD_RESTORE_SECURITY_GROUPS=sg-0123456789abcdef0,sg-0fedcba9876543210"
            ))),
            None => Ok(groups),
        }
    }

    pub fn list(&self, key: &str, default: &[&str]) -> Vec<String> {
        match self.get(key) {
            None => default.iter().map(|s| s.to_string()).collect(),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        }
    }
}

/// What every task needs: which database, how to reach it, where reports go.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// The name metrics and reports use for the database (the RDS instance identifier).
    pub db_identifier: String,
    pub connect: ConnectSettings,
    /// EventBridge bus for run reports; none means reports are only returned.
    pub event_bus: Option<String>,
    /// Trust the system store for AWS endpoints instead of the embedded Amazon roots.
    pub aws_native_roots: bool,
    /// In Lambda (with the role's credentials in the environment): its region.
    pub lambda_region: Option<String>,
}

pub const URL_VAR: &str = "PGSTEWARD_DATABASE_URL";
pub const SECRET_VAR: &str = "PGSTEWARD_DB_SECRET_ARN";
pub const IAM_VAR: &str = "PGSTEWARD_DB_IAM_AUTH";

impl CommonConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self> {
        let v = Vars(env);
        let source = connection_source(&v)?;
        let db_identifier = match v.get("PGSTEWARD_DB_IDENTIFIER") {
            Some(id) => id,
            None => match &source {
                // Local use: name it after the database in the URL.
                ConnectionSource::Url(u) => default_identifier(u),
                _ => v.required("PGSTEWARD_DB_IDENTIFIER", "orders-prod")?,
            },
        };
        validate_identifier(&db_identifier)?;
        let ca_bundle = v.get("PGSTEWARD_CA_BUNDLE").map(PathBuf::from);
        if let Some(ca) = &ca_bundle {
            if !ca.is_file() {
                return Err(Error::InvalidConfig(format!(
                    "PGSTEWARD_CA_BUNDLE is '{}', which is not a readable file; e.g. PGSTEWARD_CA_BUNDLE=/var/task/rds-ca-bundle.pem",
                    ca.display()
                )));
            }
        }
        let secs: u64 = v.parse(
            "PGSTEWARD_CONNECT_TIMEOUT_SECS",
            10,
            "a whole number of seconds",
            "10",
        )?;
        if secs == 0 {
            return Err(Error::InvalidConfig(
                "PGSTEWARD_CONNECT_TIMEOUT_SECS is '0': expected at least 1 second, e.g. PGSTEWARD_CONNECT_TIMEOUT_SECS=10".into(),
            ));
        }
        Ok(CommonConfig {
            db_identifier,
            connect: ConnectSettings {
                source,
                ca_bundle,
                connect_timeout: Duration::from_secs(secs),
            },
            event_bus: v.get("PGSTEWARD_EVENT_BUS"),
            aws_native_roots: v.flag(crate::aws::sdk::NATIVE_ROOTS_VAR)?,
            lambda_region: v.get("AWS_REGION").filter(|_| {
                v.get("AWS_LAMBDA_FUNCTION_NAME").is_some() && v.get("AWS_ACCESS_KEY_ID").is_some()
            }),
        })
    }
}

fn connection_source(v: &Vars) -> Result<ConnectionSource> {
    let url = v.get(URL_VAR);
    let secret = v.get(SECRET_VAR);
    let iam = v.flag(IAM_VAR)?;
    let set = [url.is_some(), secret.is_some(), iam]
        .iter()
        .filter(|b| **b)
        .count();
    if set > 1 {
        return Err(Error::InvalidConfig(format!(
            "more than one of {URL_VAR}, {SECRET_VAR} and {IAM_VAR} is set; set exactly one"
        )));
    }
    if let Some(u) = url {
        return Ok(ConnectionSource::Url(u));
    }
    if let Some(arn) = secret {
        if !arn.starts_with("arn:") || !arn.contains(":secretsmanager:") {
            return Err(Error::InvalidConfig(format!(
                "{SECRET_VAR} is '{arn}': expected a Secrets Manager ARN, e.g. {SECRET_VAR}=arn:aws:secretsmanager:us-east-1:123456789012:secret:pgsteward/orders-AbCdEf"
            )));
        }
        return Ok(ConnectionSource::Secret(arn));
    }
    if iam {
        return Ok(ConnectionSource::IamAuth {
            host: v.required(
                "PGSTEWARD_DB_HOST",
                "orders.abc123.us-east-1.rds.amazonaws.com",
            )?,
            port: v.parse("PGSTEWARD_DB_PORT", 5432, "a port number", "5432")?,
            user: v.required("PGSTEWARD_DB_USER", "pgsteward")?,
            dbname: v.required("PGSTEWARD_DB_NAME", "orders")?,
        });
    }
    Err(Error::InvalidConfig(format!(
        "no database connection is configured: set {SECRET_VAR} (RDS secret), {IAM_VAR}=true with PGSTEWARD_DB_HOST/USER/NAME, or {URL_VAR}, e.g. {URL_VAR}=postgresql://pgsteward@localhost:5432/orders?sslrootcert=/path/ca.pem"
    )))
}

fn default_identifier(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .map(|u| u.path().trim_start_matches('/').to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "postgres".into())
}

/// RDS-like identifiers: they become CloudWatch dimensions and resource names.
pub fn validate_identifier(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "PGSTEWARD_DB_IDENTIFIER is '{id}': expected 1-63 letters, digits, '-', '_' or '.', e.g. PGSTEWARD_DB_IDENTIFIER=orders-prod"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn missing_connection_names_the_variables() {
        let e = CommonConfig::from_env(&env(&[])).unwrap_err().to_string();
        assert!(
            e.contains("PGSTEWARD_DB_SECRET_ARN") && e.contains("e.g."),
            "{e}"
        );
    }

    #[test]
    fn malformed_values_are_named_with_an_example() {
        let e = CommonConfig::from_env(&env(&[
            ("PGSTEWARD_DATABASE_URL", "postgresql://u@h/db"),
            ("PGSTEWARD_CONNECT_TIMEOUT_SECS", "soon"),
        ]))
        .unwrap_err()
        .to_string();
        assert_eq!(e, "PGSTEWARD_CONNECT_TIMEOUT_SECS is 'soon': expected a whole number of seconds, e.g. PGSTEWARD_CONNECT_TIMEOUT_SECS=10");
        let e = CommonConfig::from_env(&env(&[("PGSTEWARD_DB_SECRET_ARN", "orders-secret")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'orders-secret'"), "{e}");
        let e = CommonConfig::from_env(&env(&[("PGSTEWARD_DB_IAM_AUTH", "true")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PGSTEWARD_DB_HOST is not set"), "{e}");
    }

    #[test]
    fn url_gives_a_default_identifier() {
        let c = CommonConfig::from_env(&env(&[(
            "PGSTEWARD_DATABASE_URL",
            "postgresql://u:pw@h/orders",
        )]))
        .unwrap();
        assert_eq!(c.db_identifier, "orders");
        assert!(!format!("{c:?}").contains("pw@"));
    }
}
