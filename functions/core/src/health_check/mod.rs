//! health-check: the seed 000 monitoring queries as levelled metrics (published as
//! CloudWatch EMF), and the idle-in-transaction remediation.

pub mod collect;
pub mod metrics;
pub mod remediate;
pub mod render;
pub mod thresholds;

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::config::{CommonConfig, Env, Vars};
use crate::envelope::{self, AlarmEvent, Incoming};
use crate::error::{Error, Result};
use crate::report::Report;
use crate::Deps;
use metrics::{SizeSample, DIMENSION, NAMESPACE};
use thresholds::{Thresholds, LONGEST_IDLE_IN_TRANSACTION};

pub const TASK: &str = "health-check";

/// RDS's own administrative roles, and pgsteward's.
pub const DEFAULT_PROTECTED_ROLES: &[&str] = &[
    "rdsadmin",
    "rdsrepladmin",
    "rds_superuser",
    "rdstopmgr",
    "pgsteward",
];

#[derive(Debug, Clone)]
pub struct HealthCheckConfig {
    pub common: CommonConfig,
    pub thresholds: Thresholds,
    pub protected_roles: Vec<String>,
    /// Print the EMF line (Lambda); the CLI shows a table instead.
    pub emit_emf: bool,
}

impl HealthCheckConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self> {
        let common = CommonConfig::from_env(env)?;
        let v = Vars(env);
        let thresholds = match v.get("PGSTEWARD_THRESHOLDS") {
            Some(json) => Thresholds::with_overrides(&json)?,
            None => Thresholds::default(),
        };
        Ok(HealthCheckConfig {
            common,
            thresholds,
            protected_roles: v.list("PGSTEWARD_PROTECTED_ROLES", DEFAULT_PROTECTED_ROLES),
            emit_emf: true,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Measure and report.
    #[default]
    Check,
    /// Measure, then terminate sessions idle in a transaction past the critical limit.
    TerminateIdle,
}

/// The function's own request (schedule, console, Step Functions task input).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    #[serde(default)]
    pub action: Action,
    #[serde(default)]
    pub dry_run: bool,
    /// A size seen earlier (e.g. from the last report), for growth when this process has none.
    pub previous_size_bytes: Option<i64>,
    pub previous_at: Option<DateTime<Utc>>,
    /// Set from an alarm event; not accepted from a request.
    #[serde(skip)]
    pub alarm: Option<String>,
}

/// Turns any accepted event into a request, or refuses it before any call.
pub fn parse_event(event: Value, config: &HealthCheckConfig) -> Result<Request> {
    match envelope::classify(event, TASK)? {
        Incoming::Request(v) => {
            let r: Request = envelope::parse_request(v, TASK)?;
            if r.previous_size_bytes.is_some() != r.previous_at.is_some() {
                return Err(Error::invalid(
                    "health-check request: previousSizeBytes and previousAt go together; give both or neither",
                ));
            }
            Ok(r)
        }
        Incoming::Alarm(a) => from_alarm(&a, &config.common.db_identifier),
    }
}

fn from_alarm(a: &AlarmEvent, db: &str) -> Result<Request> {
    a.require_alarm_state(TASK)?;
    let ours = a
        .metrics
        .iter()
        .find(|m| m.namespace == NAMESPACE && m.name == LONGEST_IDLE_IN_TRANSACTION.emf_name);
    let Some(m) = ours else {
        // Another alarm: measure and report, change nothing.
        return Ok(Request {
            alarm: Some(a.alarm_name.clone()),
            ..Request::default()
        });
    };
    a.require_database(m.dimensions.get(DIMENSION), db, TASK)?;
    Ok(Request {
        action: Action::TerminateIdle,
        alarm: Some(a.alarm_name.clone()),
        ..Request::default()
    })
}

/// The task: config parsed once, clients built once, state kept across warm invocations.
pub struct HealthCheck {
    pub config: HealthCheckConfig,
    deps: Deps,
    /// Growth baseline seen by this process (warm Lambda), replaced daily.
    baseline: Mutex<Option<SizeSample>>,
}

impl HealthCheck {
    pub fn new(config: HealthCheckConfig, deps: Deps) -> Self {
        HealthCheck {
            config,
            deps,
            baseline: Mutex::new(None),
        }
    }

    /// Handles one invocation: the event as it arrived, the report as JSON.
    pub async fn handle(&self, event: Value) -> Result<Value> {
        let request = parse_event(event, &self.config)?;
        let report = self.run(&request).await?;
        serde_json::to_value(&report).map_err(|e| Error::internal(format!("report json: {e}")))
    }

    pub async fn run(&self, req: &Request) -> Result<Report> {
        let db = &self.config.common.db_identifier;
        let started = self.deps.clock.now();
        let mut report = Report::new(TASK, db, started, req.dry_run);
        if let Some(alarm) = &req.alarm {
            info!(db_instance = %db, alarm = %alarm, "invoked by alarm");
        }
        let client = crate::pg::connect(
            &self.config.common.connect,
            &*self.deps.secrets,
            &*self.deps.tokens,
        )
        .await?;
        let obs = collect::observe(&client).await?;
        let now_sample = SizeSample {
            size_bytes: obs.database_size_bytes,
            at: started,
        };
        let previous = match (req.previous_size_bytes, req.previous_at) {
            (Some(size_bytes), Some(at)) => Some(SizeSample { size_bytes, at }),
            _ => *self.baseline.lock().expect("baseline lock"),
        };
        let growth = previous.and_then(|p| metrics::growth_per_day(p, now_sample));
        self.roll_baseline(now_sample);
        if growth.is_none() {
            report.skip(
                "databaseGrowthPercentPerDay",
                "no size at least an hour old is known yet; it is measured from later runs, or pass previousSizeBytes and previousAt",
            );
        }
        if !obs.sees_all_sessions {
            report.warn("the connecting role is not a member of pg_monitor/pg_read_all_stats: other roles' sessions are invisible, so session metrics may be understated; GRANT pg_monitor TO it");
        }
        let ms = metrics::evaluate(&obs, &self.config.thresholds, growth);
        let level = metrics::overall(&ms);
        if self.config.emit_emf {
            println!("{}", metrics::emf_line(db, &ms, started));
        }
        info!(db_instance = %db, level = level.as_str(), "health measured");

        if req.action == Action::TerminateIdle {
            let limit = self
                .config
                .thresholds
                .limits(&LONGEST_IDLE_IN_TRANSACTION)
                .critical;
            remediate::terminate_idle(
                &client,
                limit,
                &self.config.protected_roles,
                req.dry_run,
                &mut report,
            )
            .await?;
        }
        report.details = json!({
            "level": level,
            "serverVersion": obs.server_version,
            "inRecovery": obs.in_recovery,
            "database": obs.database,
            "databaseSize": now_sample,
            "alarm": req.alarm,
            "metrics": ms,
        });
        report.finished_at = self.deps.clock.now();
        if let Err(e) = self.deps.reports.publish(&report).await {
            warn!(db_instance = %db, error = %e, "report not published");
            report.warn(format!("the report was not published: {e}"));
        }
        Ok(report)
    }

    fn roll_baseline(&self, now: SizeSample) {
        let mut b = self.baseline.lock().expect("baseline lock");
        let stale = b.is_none_or(|p| (now.at - p.at).num_hours() >= 24);
        if stale {
            *b = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn config() -> HealthCheckConfig {
        let env: HashMap<String, String> = [(
            "PGSTEWARD_DATABASE_URL",
            "postgresql://u@h/orders?sslmode=disable",
        )]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        HealthCheckConfig::from_env(&env).unwrap()
    }

    fn alarm(metric: &str, db: &str, state: &str) -> Value {
        json!({"version":"0","id":"x","detail-type":"CloudWatch Alarm State Change","source":"aws.cloudwatch",
            "account":"123456789012","time":"2026-11-22T00:00:00Z","region":"us-east-1","resources":["arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"],
            "detail":{"alarmName":"a","state":{"value":state,"reason":"r","timestamp":"2026-11-22T00:00:00.000+0000"},
            "previousState":{"value":"OK","reason":"r","timestamp":"2026-11-22T00:00:00.000+0000"},
            "configuration":{"metrics":[{"id":"m1","metricStat":{"metric":{"namespace":"pgsteward","name":metric,"dimensions":{"Database":db}},"period":300,"stat":"Maximum"},"returnData":true}]}}})
    }

    #[test]
    fn requests_and_alarms() {
        let c = config();
        assert_eq!(parse_event(json!({}), &c).unwrap().action, Action::Check);
        let r = parse_event(json!({"action":"terminate-idle","dryRun":true}), &c).unwrap();
        assert!(r.dry_run && r.action == Action::TerminateIdle);
        let r = parse_event(
            alarm("LongestIdleInTransactionSeconds", "orders", "ALARM"),
            &c,
        )
        .unwrap();
        assert_eq!(r.action, Action::TerminateIdle);
        assert_eq!(
            parse_event(alarm("CacheHitRatio", "orders", "ALARM"), &c)
                .unwrap()
                .action,
            Action::Check
        );
    }

    #[test]
    fn bad_input_is_named() {
        let c = config();
        let e = parse_event(json!({"action":"explode"}), &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("explode") && e.contains("terminate-idle"), "{e}");
        let e = parse_event(json!({"dryrun":true}), &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dryrun"), "{e}");
        let e = parse_event(
            alarm("LongestIdleInTransactionSeconds", "billing", "ALARM"),
            &c,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("billing") && e.contains("orders"), "{e}");
        let e = parse_event(alarm("LongestIdleInTransactionSeconds", "orders", "OK"), &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("state OK"), "{e}");
        let e = parse_event(json!({"previousSizeBytes": 5}), &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("previousAt"), "{e}");
    }
}
