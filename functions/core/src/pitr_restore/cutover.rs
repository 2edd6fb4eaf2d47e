//! Checklist step 6: cut-over of the application's secret to the restored endpoint, only when
//! asked and every check passed (the previous value stays as AWSPREVIOUS), and `rollback`,
//! which moves AWSCURRENT back to that previous version, restoring it exactly. One guarded
//! call site each; secret values never reach a message, only hosts and ports.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::request::{PitrConfig, Request, REQUIRED_CHECKS};
use crate::aws::rds_restore::Endpoint;
use crate::aws::secret_versions::{SecretVersion, SecretVersions, CURRENT, PREVIOUS};
use crate::error::{Error, Result};

/// The application secret named in the request, if cut-over may touch it.
pub fn app_secret<'a>(config: &PitrConfig, req: &'a Request) -> Result<&'a str> {
    let arn = req.app_secret_arn.as_deref().ok_or_else(|| {
        Error::invalid("appSecretArn is missing: name the application's secret, e.g. \"appSecretArn\": \"arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/app-AbCdEf\"")
    })?;
    if !config.app_secrets.iter().any(|a| a == arn) {
        return Err(Error::invalid(format!(
            "appSecretArn '{arn}' is not one of the application secrets this function may use (PGSTEWARD_APP_SECRET_ARNS: {:?}); add it to the deployment or pick one of those",
            config.app_secrets
        )));
    }
    Ok(arn)
}

/// Cut-over is refused unless asked for and every check passed.
pub fn check_preconditions(req: &Request) -> Result<()> {
    if !req.cut_over {
        return Err(Error::Unsafe(
            "cut-over was not requested: start the checklist with \"cutOver\": true to move the application".into(),
        ));
    }
    let empty = BTreeMap::new();
    let checks = req.checks.as_ref().unwrap_or(&empty);
    let not_passed: Vec<String> = REQUIRED_CHECKS
        .iter()
        .filter(|c| checks.get(**c).map(String::as_str) != Some("passed"))
        .map(|c| {
            format!(
                "{c}={}",
                checks.get(*c).map(String::as_str).unwrap_or("(none)")
            )
        })
        .collect();
    if !not_passed.is_empty() {
        return Err(Error::Unsafe(format!(
            "cut-over needs every check passed, and these did not: {}; fix them and run the checklist again",
            not_passed.join(", ")
        )));
    }
    Ok(())
}

fn object(v: &SecretVersion, arn: &str) -> Result<Map<String, Value>> {
    // Never echo serde's message: it can quote the secret's text.
    match serde_json::from_str::<Value>(&v.value) {
        Ok(Value::Object(m)) if m.contains_key("host") => Ok(m),
        _ => Err(Error::invalid(format!(
            "secret {arn} is not RDS-format JSON with a 'host' field; cut-over only updates such secrets"
        ))),
    }
}

fn host_port(m: &Map<String, Value>) -> Value {
    json!({"host": m.get("host"), "port": m.get("port")})
}

fn points_at(m: &Map<String, Value>, ep: &Endpoint) -> bool {
    let port = match m.get("port") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => Some(5432),
    };
    m.get("host").and_then(Value::as_str) == Some(ep.address.as_str())
        && port == Some(u64::from(ep.port))
}

/// The same request twice writes one version.
fn token(arn: &str, target: &str, ep: &Endpoint) -> String {
    let digest = Sha256::digest(format!("{arn}\n{target}\n{}\n{}", ep.address, ep.port));
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn cut_over(
    secrets: &dyn SecretVersions,
    arn: &str,
    target: &str,
    ep: &Endpoint,
    dry_run: bool,
) -> Result<Value> {
    let current = secrets
        .version(arn, CURRENT)
        .await?
        .ok_or_else(|| Error::NotFound(format!("secret {arn} has no current version")))?;
    let mut m = object(&current, arn)?;
    let from = host_port(&m);
    if points_at(&m, ep) {
        return Ok(json!({"status": "passed", "changed": false, "secret": arn,
            "note": format!("the secret points at {}:{} already", ep.address, ep.port)}));
    }
    m.insert("host".into(), json!(ep.address));
    let port = match m.get("port") {
        Some(Value::String(_)) => json!(ep.port.to_string()),
        _ => json!(ep.port),
    };
    m.insert("port".into(), port);
    if m.contains_key("dbInstanceIdentifier") {
        m.insert("dbInstanceIdentifier".into(), json!(target));
    }
    let to = host_port(&m);
    if dry_run {
        return Ok(
            json!({"status": "would-cut-over", "changed": false, "dryRun": true,
            "secret": arn, "from": from, "to": to}),
        );
    }
    let value = Value::Object(m).to_string();
    let version = secrets
        .put_current(arn, &value, &token(arn, target, ep))
        .await?;
    Ok(
        json!({"status": "passed", "changed": true, "secret": arn, "from": from, "to": to,
        "versionId": version, "previousVersionId": current.version_id}),
    )
}

/// Moves AWSCURRENT back to AWSPREVIOUS when the secret points at the restored target (an
/// RDS endpoint starts with its identifier); otherwise there is nothing to roll back.
pub async fn rollback(
    secrets: &dyn SecretVersions,
    arn: &str,
    target: &str,
    dry_run: bool,
) -> Result<Value> {
    let current = secrets
        .version(arn, CURRENT)
        .await?
        .ok_or_else(|| Error::NotFound(format!("secret {arn} has no current version")))?;
    let m = object(&current, arn)?;
    let host = m.get("host").and_then(Value::as_str).unwrap_or_default();
    if !host.to_ascii_lowercase().starts_with(&format!("{target}.")) {
        return Ok(json!({"status": "passed", "changed": false, "secret": arn,
            "note": format!("the secret points at {host}, not at '{target}': nothing to roll back")}));
    }
    let previous = secrets.version(arn, PREVIOUS).await?.ok_or_else(|| {
        Error::Unsafe(format!(
            "secret {arn} points at '{target}' but has no {PREVIOUS} version to go back to; set the previous endpoint by hand"
        ))
    })?;
    let to = host_port(&object(&previous, arn)?);
    if dry_run {
        return Ok(
            json!({"status": "would-roll-back", "changed": false, "dryRun": true,
            "secret": arn, "from": host_port(&m), "to": to}),
        );
    }
    secrets
        .move_current(arn, &current.version_id, &previous.version_id)
        .await?;
    Ok(
        json!({"status": "passed", "changed": true, "secret": arn, "from": host_port(&m), "to": to,
        "versionId": previous.version_id}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_over_needs_the_request_and_every_check() {
        let mut req = Request::default();
        assert!(check_preconditions(&req)
            .unwrap_err()
            .to_string()
            .contains("not requested"));
        req.cut_over = true;
        req.checks = Some(
            [
                ("rowCounts", "passed"),
                ("analyze", "passed"),
                ("connectivity", "failed"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let e = check_preconditions(&req).unwrap_err();
        assert_eq!(e.error_type(), "Unsafe");
        assert!(
            e.to_string().contains("connectivity=failed, smoke=(none)"),
            "{e}"
        );
        for c in REQUIRED_CHECKS {
            req.checks
                .as_mut()
                .unwrap()
                .insert(c.to_string(), "passed".into());
        }
        assert!(check_preconditions(&req).is_ok());
    }

    #[test]
    fn secrets_are_never_echoed() {
        let v = SecretVersion {
            version_id: "v".into(),
            value: "{\"password\":\"hunter2\"".into(),
        };
        let e = object(&v, "arn:x").unwrap_err().to_string();
        assert!(
            !e.contains("hunter2") && !format!("{v:?}").contains("hunter2"),
            "{e}"
        );
        let ep = Endpoint {
            address: "a".into(),
            port: 5432,
        };
        assert_eq!(token("arn", "t", &ep), token("arn", "t", &ep));
        assert_eq!(token("arn", "t", &ep).len(), 32);
    }
}
