//! Remediation for the idle-in-transaction alarm: terminate sessions idle in a transaction
//! past the critical limit, never those of protected roles nor pgsteward's own.

use serde_json::json;
use tokio_postgres::Client;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::report::Report;

const IDLE_STATES: &str = "('idle in transaction', 'idle in transaction (aborted)')";

#[derive(Debug, Clone, PartialEq)]
pub struct IdleSession {
    pub pid: i32,
    pub role: String,
    pub application: String,
    pub client: String,
    pub idle_seconds: f64,
    pub protected: bool,
}

/// Sessions idle in a transaction for longer than `limit_secs`, oldest first.
pub async fn list_idle(
    client: &Client,
    limit_secs: f64,
    protected_roles: &[String],
) -> Result<Vec<IdleSession>> {
    let sql = format!(
        "SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), coalesce(host(client_addr), 'local'),
                extract(epoch FROM now() - state_change)::float8,
                (usename = ANY($2) OR usename = current_user)
         FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND state IN {IDLE_STATES}
           AND now() - state_change > make_interval(secs => $1) AND pid <> pg_backend_pid()
         ORDER BY state_change"
    );
    let rows = client
        .query(&sql, &[&limit_secs, &protected_roles])
        .await
        .map_err(|e| {
            Error::Retryable(format!("listing idle-in-transaction sessions failed: {e}"))
        })?;
    Ok(rows
        .iter()
        .map(|r| IdleSession {
            pid: r.get(0),
            role: r.get(1),
            application: r.get(2),
            client: r.get(3),
            idle_seconds: r.get(4),
            protected: r.get::<_, Option<bool>>(5).unwrap_or(true),
        })
        .collect())
}

/// The single call site that terminates a session. It re-checks every condition in the same
/// statement, so a session that became active, or a protected role, is never terminated.
/// With `dry_run` it terminates nothing.
async fn terminate_guarded(
    client: &Client,
    pid: i32,
    limit_secs: f64,
    protected_roles: &[String],
    dry_run: bool,
) -> Result<Outcome> {
    if dry_run {
        return Ok(Outcome::DryRun);
    }
    let sql = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE pid = $1 AND backend_type = 'client backend' AND state IN {IDLE_STATES}
           AND now() - state_change > make_interval(secs => $2)
           AND usename IS NOT NULL AND usename <> ALL($3) AND usename <> current_user"
    );
    let row = client
        .query_opt(&sql, &[&pid, &limit_secs, &protected_roles])
        .await
        .map_err(|e| Error::Retryable(format!("terminating pid {pid} failed: {e}")))?;
    Ok(match row.map(|r| r.get::<_, bool>(0)) {
        Some(true) => Outcome::Terminated,
        Some(false) => Outcome::Refused,
        None => Outcome::NoLongerEligible,
    })
}

enum Outcome {
    DryRun,
    Terminated,
    Refused,
    NoLongerEligible,
}

/// Terminates (or, in a dry run, lists) every eligible session and records each in the report.
pub async fn terminate_idle(
    client: &Client,
    limit_secs: f64,
    protected_roles: &[String],
    dry_run: bool,
    report: &mut Report,
) -> Result<usize> {
    let sessions = list_idle(client, limit_secs, protected_roles).await?;
    let mut terminated = 0;
    for s in sessions {
        let target = format!("pid {} ({})", s.pid, s.role);
        let detail = json!({
            "pid": s.pid, "role": s.role, "application": s.application, "client": s.client,
            "idleSeconds": (s.idle_seconds * 10.0).round() / 10.0, "limitSeconds": limit_secs,
        });
        if s.protected {
            report.skip(
                target,
                format!(
                    "role '{}' is protected (PGSTEWARD_PROTECTED_ROLES or pgsteward's own)",
                    s.role
                ),
            );
            continue;
        }
        match terminate_guarded(client, s.pid, limit_secs, protected_roles, dry_run).await {
            Ok(Outcome::DryRun) => report.done("would-terminate-idle-session", target, detail),
            Ok(Outcome::Terminated) => {
                info!(pid = s.pid, role = %s.role, idle_seconds = s.idle_seconds, "terminated idle-in-transaction session");
                terminated += 1;
                report.done("terminate-idle-session", target, detail);
            }
            Ok(Outcome::Refused) => report.skip(
                target,
                "pg_terminate_backend returned false (the session may have just ended)",
            ),
            Ok(Outcome::NoLongerEligible) => report.skip(
                target,
                "no longer idle in a transaction past the limit when re-checked",
            ),
            Err(e) => {
                warn!(pid = s.pid, error = %e, "could not terminate session");
                report.skip(
                    target,
                    format!(
                        "{e}; grant pg_signal_backend (rds_superuser on RDS) to pgsteward's role"
                    ),
                );
            }
        }
    }
    Ok(terminated)
}
