//! backup-verify's configuration (the verification server, where scratch restores go, the
//! RTO/RPO targets) and its request: the schedule's or console's input plus the state
//! machine's `action`, the pick output under `drill` and earlier outputs under `results`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TASK;
use crate::aws::rds_snapshots::SourceKind;
use crate::config::{CommonConfig, Env, Vars};
use crate::envelope::{self, Incoming};
use crate::error::{Error, Result};
use crate::pg::endpoint::{EndpointOverride, OVERRIDE_VAR};
use crate::pg::ConnectionSource;

#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub common: CommonConfig,
    pub source: SourceKind,
    pub bucket: Option<String>,
    pub prefix: String,
    /// The server scratch databases are restored on; None: the configured database's server.
    pub verify_server: Option<ConnectionSource>,
    pub pg_restore: PathBuf,
    /// pg_restore `--jobs` (None: by the dump's size and the cores).
    pub restore_jobs: Option<u32>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub instance_class: String,
    pub rto_target_minutes: f64,
    pub rpo_target_minutes: f64,
    pub smoke_queries: Vec<String>,
    pub endpoint_override: EndpointOverride,
}

impl VerifyConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self> {
        let common = CommonConfig::from_env(env)?;
        let v = Vars(env);
        let source = v.snapshot_source()?;
        let verify_server = match (
            v.get("PGSTEWARD_VERIFY_DATABASE_URL"),
            v.get("PGSTEWARD_VERIFY_SECRET_ARN"),
        ) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidConfig(
                    "both PGSTEWARD_VERIFY_DATABASE_URL and PGSTEWARD_VERIFY_SECRET_ARN are set: keep one".into(),
                ))
            }
            (Some(url), None) => Some(ConnectionSource::Url(url)),
            (None, Some(arn)) => Some(ConnectionSource::Secret(arn)),
            (None, None) => None,
        };
        let security_groups = v.restore_security_groups()?;
        let minutes = |key: &str, default: f64| -> Result<f64> {
            let m: f64 = v.parse(key, default, "a number of minutes", "30")?;
            if m > 0.0 {
                Ok(m)
            } else {
                Err(Error::InvalidConfig(format!(
                    "{key} is {m}: expected a positive number of minutes, e.g. {key}=30"
                )))
            }
        };
        let smoke_queries = match v.get("PGSTEWARD_SMOKE_QUERIES") {
            None => Vec::new(),
            Some(text) => serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
                Error::InvalidConfig(format!(
                    "PGSTEWARD_SMOKE_QUERIES is not a JSON array of SQL strings ({e}), e.g. PGSTEWARD_SMOKE_QUERIES='[\"SELECT count(*) FROM orders\"]'"
                ))
            })?,
        };
        let restore_jobs = match v.get("PGSTEWARD_RESTORE_JOBS") {
            None => None,
            Some(j) => Some(j.parse::<u32>().ok().filter(|n| (1..=64).contains(n)).ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "PGSTEWARD_RESTORE_JOBS is '{j}': expected a number of pg_restore jobs from 1 to 64, e.g. PGSTEWARD_RESTORE_JOBS=2"
                ))
            })?),
        };
        let endpoint_override = match v.get(OVERRIDE_VAR) {
            Some(text) => EndpointOverride::parse(&text)?,
            None => EndpointOverride::default(),
        };
        Ok(VerifyConfig {
            common,
            source,
            bucket: v.get("PGSTEWARD_BACKUP_BUCKET"),
            prefix: v
                .get("PGSTEWARD_BACKUP_PREFIX")
                .unwrap_or_else(|| "pgsteward".into()),
            verify_server,
            pg_restore: PathBuf::from(
                v.get("PGSTEWARD_PG_RESTORE")
                    .unwrap_or_else(|| "pg_restore".into()),
            ),
            restore_jobs,
            subnet_group: v.get("PGSTEWARD_RESTORE_SUBNET_GROUP"),
            security_groups,
            instance_class: v
                .get("PGSTEWARD_SCRATCH_INSTANCE_CLASS")
                .unwrap_or_else(|| "db.t4g.micro".into()),
            rto_target_minutes: minutes("PGSTEWARD_RTO_TARGET_MINUTES", 30.0)?,
            rpo_target_minutes: minutes("PGSTEWARD_RPO_TARGET_MINUTES", 60.0)?,
            smoke_queries,
            endpoint_override,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    #[default]
    Pick,
    RestoreScratch,
    WaitScratch,
    Verify,
    TagVerified,
    Teardown,
    Report,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pick => "pick",
            Action::RestoreScratch => "restore-scratch",
            Action::WaitScratch => "wait-scratch",
            Action::Verify => "verify",
            Action::TagVerified => "tag-verified",
            Action::Teardown => "teardown",
            Action::Report => "report",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Snapshot,
    Logical,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::Logical => "logical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    #[default]
    Latest,
    Random,
}

/// The backup under test.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    /// Snapshot identifier, or the dump's key without `.dump`.
    pub id: String,
    pub taken_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dump_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

/// `pick`'s output, handed to every later step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drill {
    pub drill_id: String,
    pub kind: Kind,
    pub backup: Backup,
    pub started_at: DateTime<Utc>,
    pub rpo_minutes: f64,
}

impl Drill {
    /// `pgsteward-drill-<drillId>`: the scratch instance or cluster.
    pub fn scratch_instance(&self) -> String {
        format!("pgsteward-drill-{}", self.drill_id)
    }
    /// `pgsteward_drill_<drillId>`: the scratch database on the verification server.
    pub fn scratch_database(&self) -> String {
        format!("pgsteward_drill_{}", self.drill_id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    #[serde(default)]
    pub action: Action,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default)]
    pub pick: Pick,
    /// `random`: pick among the backups of the last `windowDays` days (7).
    pub window_days: Option<u32>,
    #[serde(default)]
    pub dry_run: bool,
    /// The schedule's slot (`<aws.scheduler.scheduled-time>`): names the drill, so a repeated
    /// delivery finds its own scratch resources.
    pub scheduled_time: Option<String>,
    /// Given by a caller that names its drills (lowercase letters, digits, hyphens).
    pub drill_id: Option<String>,
    /// `pick`'s output.
    pub drill: Option<Drill>,
    /// Step name → its output, or `{Error, Cause}` (Step Functions' caught error).
    pub results: Option<BTreeMap<String, Value>>,
    /// The scheduler's execution id, kept in the report.
    pub execution_id: Option<String>,
}

impl Request {
    pub fn drill(&self) -> Result<&Drill> {
        self.drill.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "{} needs the pick step's output under \"drill\": run {{\"action\": \"pick\"}} first and pass its answer",
                self.action.as_str()
            ))
        })
    }

    pub fn result(&self, step: &str) -> Option<&Value> {
        self.results.as_ref()?.get(step)
    }
}

/// A drill id as part of an RDS identifier and a database name.
pub fn check_drill_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 40
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "drillId '{id}' is not usable in a scratch instance name: use up to 40 lowercase letters, digits and single hyphens, e.g. \"20261122-0300\""
        )))
    }
}

pub fn parse_event(event: Value) -> Result<Request> {
    match envelope::classify(event, TASK)? {
        Incoming::Request(v) => {
            let req: Request = envelope::parse_request(v, TASK)?;
            if let Some(id) = &req.drill_id {
                check_drill_id(id)?;
            }
            if let Some(d) = &req.drill {
                check_drill_id(&d.drill_id)?;
            }
            if let Some(t) = &req.scheduled_time {
                DateTime::parse_from_rfc3339(t).map_err(|_| {
                    Error::invalid(format!(
                        "scheduledTime '{t}' is not an RFC 3339 time, e.g. \"2026-11-22T03:00:00Z\""
                    ))
                })?;
            }
            if req.window_days == Some(0) {
                return Err(Error::invalid(
                    "windowDays is 0: give at least 1 day, e.g. \"windowDays\": 7".to_string(),
                ));
            }
            Ok(req)
        }
        Incoming::Alarm(a) => Err(Error::invalid(format!(
            "backup-verify does not act on alarms ('{}'); start the VerificationDrill with {{\"kind\": \"snapshot\"}} or {{\"kind\": \"logical\"}}",
            a.alarm_name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_parse_and_bad_ones_name_the_value() {
        let r = parse_event(json!({"kind": "logical", "pick": "latest"})).unwrap();
        assert_eq!((r.action, r.kind), (Action::Pick, Kind::Logical));
        let e = parse_event(json!({"drillId": "Bad_Id"})).unwrap_err();
        assert!(e.to_string().contains("'Bad_Id'"), "{e}");
        let e = parse_event(json!({"kind": "tape"})).unwrap_err();
        assert_eq!(e.error_type(), "InvalidInput");
        let e = parse_event(json!({"action": "verify"})).unwrap();
        assert!(e.drill().unwrap_err().to_string().contains("pick"));
        let d = Drill {
            drill_id: "20261122-0300".into(),
            kind: Kind::Logical,
            backup: Backup {
                id: "x".into(),
                taken_at: Utc::now(),
                dump_key: None,
                manifest_key: None,
                arn: None,
            },
            started_at: Utc::now(),
            rpo_minutes: 1.0,
        };
        assert_eq!(d.scratch_instance(), "pgsteward-drill-20261122-0300");
        assert_eq!(d.scratch_database(), "pgsteward_drill_20261122-0300");
    }
}
