//! vacuum-sweep's configuration, request and the events that become a request.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::{Mode, Only, Policy};
use super::window::Window;
use super::TASK;
use crate::config::{CommonConfig, Env, Vars};
use crate::envelope::{self, AlarmEvent, Incoming};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct VacuumConfig {
    pub common: CommonConfig,
    pub jobs: usize,
    pub lock_timeout: Duration,
    /// Stop starting work this long before the Lambda deadline.
    pub deadline_margin: Duration,
    pub window: Option<(String, Window)>,
    /// Known free storage (self-managed servers); for RDS it is estimated when unset.
    pub free_storage_bytes: Option<u64>,
    pub policy: Policy,
}

pub const MAX_JOBS: usize = 32;

impl VacuumConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self> {
        let common = CommonConfig::from_env(env)?;
        let v = Vars(env);
        let jobs: usize = v.parse(
            "PGSTEWARD_VACUUM_JOBS",
            2,
            "a number of connections from 1 to 32",
            "2",
        )?;
        if !(1..=MAX_JOBS).contains(&jobs) {
            return Err(Error::InvalidConfig(format!(
                "PGSTEWARD_VACUUM_JOBS is '{jobs}': expected 1 to {MAX_JOBS}, e.g. PGSTEWARD_VACUUM_JOBS=2"
            )));
        }
        let lock_ms: u64 = v.parse("PGSTEWARD_LOCK_TIMEOUT_MS", 3000, "milliseconds", "3000")?;
        let margin: u64 = v.parse("PGSTEWARD_DEADLINE_MARGIN_SECS", 30, "seconds", "30")?;
        let window = match v.get("PGSTEWARD_MAINTENANCE_WINDOW") {
            Some(w) => Some((w.clone(), Window::parse(&w)?)),
            None => None,
        };
        let free_storage_bytes = match v.get("PGSTEWARD_FREE_STORAGE_BYTES") {
            Some(_) => Some(v.parse(
                "PGSTEWARD_FREE_STORAGE_BYTES",
                0u64,
                "a number of bytes",
                "53687091200",
            )?),
            None => None,
        };
        let policy = match v.get("PGSTEWARD_VACUUM_POLICY") {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                Error::InvalidConfig(format!(
                    "PGSTEWARD_VACUUM_POLICY is not valid ({e}); e.g. PGSTEWARD_VACUUM_POLICY='{{\"deadRatio\":0.2,\"minDeadTuples\":1000}}'"
                ))
            })?,
            None => Policy::default(),
        };
        Ok(VacuumConfig {
            common,
            jobs,
            lock_timeout: Duration::from_millis(lock_ms.max(1)),
            deadline_margin: Duration::from_secs(margin),
            window,
            free_storage_bytes,
            policy,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SweepAction {
    Sweep,
}

/// Where the next invocation resumes: the mode and the relations not yet done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Continuation {
    pub mode: Mode,
    pub remaining: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    pub action: Option<SweepAction>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub dry_run: bool,
    /// Narrow the plan to these relations: "schema.name" (or "name" for public).
    pub tables: Option<Vec<String>>,
    pub jobs: Option<usize>,
    pub continuation: Option<Continuation>,
    /// From the MaintenanceWindow state machine: the window ends this long after it started.
    pub window_started_at: Option<DateTime<Utc>>,
    pub window_minutes: Option<u32>,
    #[serde(skip)]
    pub alarm: Option<String>,
}

impl Request {
    /// The relations named by `tables`, split at the first dot.
    pub fn named(&self) -> Option<Only> {
        self.tables.as_ref().map(|ts| {
            ts.iter()
                .map(|t| match t.split_once('.') {
                    Some((s, n)) => (s.to_string(), n.to_string()),
                    None => ("public".to_string(), t.clone()),
                })
                .collect()
        })
    }

    pub fn window_end(&self) -> Option<DateTime<Utc>> {
        Some(self.window_started_at? + chrono::Duration::minutes(i64::from(self.window_minutes?)))
    }
}

pub fn parse_event(event: Value, config: &VacuumConfig) -> Result<Request> {
    let req = match envelope::classify(event, TASK)? {
        Incoming::Request(v) => envelope::parse_request::<Request>(v, TASK)?,
        Incoming::Alarm(a) => from_alarm(&a, &config.common.db_identifier)?,
    };
    if let Some(j) = req.jobs {
        if !(1..=MAX_JOBS).contains(&j) {
            return Err(Error::invalid(format!(
                "vacuum-sweep request: jobs is {j}; expected 1 to {MAX_JOBS}"
            )));
        }
    }
    if let Some(ts) = &req.tables {
        if ts.is_empty() || ts.iter().any(|t| t.trim().is_empty() || t.contains('\0')) {
            return Err(Error::invalid(format!(
                "vacuum-sweep request: tables is {ts:?}; name one or more tables as \"schema.table\", or leave it out to let the plan decide"
            )));
        }
    }
    if let Some(c) = &req.continuation {
        if c.mode != req.mode {
            return Err(Error::invalid(format!(
                "vacuum-sweep request: the continuation is for mode {} but the request says {}; resume with the same mode",
                c.mode.as_str(),
                req.mode.as_str()
            )));
        }
    }
    if req.window_started_at.is_some() != req.window_minutes.is_some() {
        return Err(Error::invalid("vacuum-sweep request: windowStartedAt and windowMinutes go together; give both or neither"));
    }
    Ok(req)
}

/// `MaximumUsedTransactionIDs` (RDS) means freeze; the health-check dead-tuple alarms mean
/// a standard sweep. Anything else is refused.
fn from_alarm(a: &AlarmEvent, db: &str) -> Result<Request> {
    a.require_alarm_state(TASK)?;
    let known = a
        .metrics
        .iter()
        .find_map(|m| match (m.namespace.as_str(), m.name.as_str()) {
            ("AWS/RDS", "MaximumUsedTransactionIDs") => {
                Some((Mode::Freeze, m.dimensions.get("DBInstanceIdentifier")))
            }
            ("pgsteward", "DeadTupleRatioWorst" | "DeadTupleRatio") => {
                Some((Mode::Standard, m.dimensions.get("Database")))
            }
            _ => None,
        });
    let Some((mode, dimension)) = known else {
        let names: Vec<_> = a
            .metrics
            .iter()
            .map(|m| format!("{}/{}", m.namespace, m.name))
            .collect();
        return Err(Error::invalid(format!(
            "alarm '{}' watches {}; vacuum-sweep acts on AWS/RDS MaximumUsedTransactionIDs (freeze) and pgsteward DeadTupleRatioWorst (standard)",
            a.alarm_name,
            if names.is_empty() { "no metric".to_string() } else { names.join(", ") }
        )));
    };
    a.require_database(dimension, db, TASK)?;
    Ok(Request {
        mode,
        alarm: Some(a.alarm_name.clone()),
        ..Request::default()
    })
}
