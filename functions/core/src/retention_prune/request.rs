//! retention-prune's configuration (policy and archive rules come from the deployment,
//! never from an event) and its request.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::policy::Policy;
use super::TASK;
use crate::aws::rds_snapshots::SourceKind;
use crate::config::{CommonConfig, Env, Vars};
use crate::envelope::{self, Incoming};
use crate::error::{Error, Result};
use crate::snapshot::request::CopyDestination;

/// One archive-then-delete (or delete-only) rule, written by the operator in the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveRule {
    /// `schema.table` (or `table`, meaning `public.table`).
    pub table: String,
    /// The timestamp (or date) column that ages a row.
    pub column: String,
    pub older_than_days: u32,
    /// Extra SQL condition, e.g. `status IN ('completed','failed')`. Trusted: it comes
    /// from the deployment, like the rest of this rule.
    #[serde(default, rename = "where")]
    pub condition: Option<String>,
    /// Archive to S3 before deleting (default), or delete only.
    #[serde(default = "yes")]
    pub archive: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub common: CommonConfig,
    pub source: SourceKind,
    pub policy: Policy,
    pub copy_regions: Vec<String>,
    pub bucket: Option<String>,
    pub prefix: String,
    pub archive_prefix: String,
    pub kms_key: Option<String>,
    pub scratch_max_age_hours: u32,
    pub rules: Vec<ArchiveRule>,
    pub batch_rows: u32,
    pub lock_timeout_ms: u32,
    pub part_bytes: usize,
}

impl RetentionConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self> {
        let common = CommonConfig::from_env(env)?;
        let v = Vars(env);
        let snapshot = crate::snapshot::SnapshotConfig::from_env(env)?;
        let policy: Policy = json_var(
            &v,
            "PGSTEWARD_RETENTION_POLICY",
            r#"'{"days":30,"weeks":8,"months":12,"minKeep":3}'"#,
        )?
        .unwrap_or_default();
        policy.validate()?;
        let rules: Vec<ArchiveRule> = json_var(
            &v,
            "PGSTEWARD_ARCHIVE_RULES",
            r#"'[{"table":"public.audit_events","column":"created_at","olderThanDays":90}]'"#,
        )?
        .unwrap_or_default();
        for r in &rules {
            validate_rule(r)?;
        }
        let batch_rows: u32 = v.parse(
            "PGSTEWARD_ARCHIVE_BATCH_ROWS",
            // Each batch costs an upload, a read-back and a manifest write: 10,000-row
            // batches archive at half the rate of 100,000-row ones (bench/retention.sh).
            50_000,
            "a whole number of rows per transaction",
            "50000",
        )?;
        if batch_rows == 0 {
            return Err(Error::InvalidConfig(
                "PGSTEWARD_ARCHIVE_BATCH_ROWS is 0: a batch needs at least one row, e.g. PGSTEWARD_ARCHIVE_BATCH_ROWS=50000".into(),
            ));
        }
        Ok(RetentionConfig {
            source: snapshot.source,
            policy,
            copy_regions: snapshot
                .copy_destinations
                .iter()
                .map(|d: &CopyDestination| d.region.clone())
                .collect(),
            bucket: snapshot.bucket,
            prefix: snapshot.prefix,
            archive_prefix: v
                .get("PGSTEWARD_ARCHIVE_PREFIX")
                .unwrap_or_else(|| "archive".into())
                .trim_matches('/')
                .to_string(),
            kms_key: snapshot.kms_key,
            scratch_max_age_hours: v.parse(
                "PGSTEWARD_SCRATCH_MAX_AGE_HOURS",
                24,
                "a whole number of hours",
                "24",
            )?,
            rules,
            batch_rows,
            lock_timeout_ms: v.parse(
                "PGSTEWARD_LOCK_TIMEOUT_MS",
                2000,
                "a whole number of milliseconds",
                "2000",
            )?,
            part_bytes: snapshot.part_bytes,
            common,
        })
    }
}

fn json_var<T: serde::de::DeserializeOwned>(
    v: &Vars,
    key: &str,
    example: &str,
) -> Result<Option<T>> {
    v.get(key)
        .map(|json| {
            serde_json::from_str(&json).map_err(|e| {
                Error::InvalidConfig(format!("{key} is not valid ({e}); e.g. {key}={example}"))
            })
        })
        .transpose()
}

/// The extra condition is operator-written SQL; refuse what could end the statement or
/// hide the rest of it, so a typo cannot turn into a second statement.
pub fn validate_rule(r: &ArchiveRule) -> Result<()> {
    let bad = |what: &str| {
        Err(Error::InvalidConfig(format!(
            "PGSTEWARD_ARCHIVE_RULES: the rule for table '{}' {what}",
            r.table
        )))
    };
    if r.table.trim().is_empty() || r.table.split('.').count() > 2 {
        return bad(
            "needs table as 'schema.table' or 'table', e.g. \"table\":\"public.audit_events\"",
        );
    }
    if r.column.trim().is_empty() {
        return bad("needs the timestamp column that ages a row, e.g. \"column\":\"created_at\"");
    }
    if r.older_than_days == 0 {
        return bad("has olderThanDays 0: it would remove every row; use the age in days, e.g. 90");
    }
    if let Some(c) = &r.condition {
        if c.contains(';') || c.contains("--") || c.contains("/*") || c.trim().is_empty() {
            return bad(&format!(
                "has a where condition that is empty or contains ';', '--' or '/*' ({c:?}): write one boolean expression, e.g. \"status IN ('completed','failed')\""
            ));
        }
    }
    Ok(())
}

/// What a run covers; a schedule runs everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    #[default]
    All,
    /// Managed snapshots, their copies, and logical dumps.
    Backups,
    /// Scratch instances and clusters left by the verification drill.
    Scratch,
    /// Archive-then-delete of old rows.
    Rows,
}

impl Scope {
    pub fn covers(self, part: Scope) -> bool {
        self == Scope::All || self == part
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub dry_run: bool,
    /// The schedule's slot; names the run's archive objects (a retry of the same slot
    /// writes the same keys).
    pub scheduled_time: Option<DateTime<Utc>>,
}

pub fn parse_event(event: Value) -> Result<Request> {
    match envelope::classify(event, TASK)? {
        Incoming::Request(v) => envelope::parse_request(v, TASK),
        Incoming::Alarm(a) => Err(Error::invalid(format!(
            "retention-prune does not act on alarms ('{}'); send {{\"dryRun\":true}} to see the plan",
            a.alarm_name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(condition: Option<&str>) -> ArchiveRule {
        ArchiveRule {
            table: "public.audit_events".into(),
            column: "created_at".into(),
            older_than_days: 90,
            condition: condition.map(str::to_string),
            archive: true,
        }
    }

    #[test]
    fn rules_refuse_what_could_become_a_second_statement() {
        assert!(validate_rule(&rule(None)).is_ok());
        assert!(validate_rule(&rule(Some("status IN ('completed','failed')"))).is_ok());
        for bad in ["true; DROP TABLE x", "true -- x", "true /* x */", " "] {
            let e = validate_rule(&rule(Some(bad))).unwrap_err();
            assert_eq!(e.error_type(), "InvalidConfig");
            assert!(e.to_string().contains("audit_events"), "{e}");
        }
        let r: ArchiveRule =
            serde_json::from_str(r#"{"table":"t","column":"c","olderThanDays":3}"#).unwrap();
        assert!(r.archive);
    }

    #[test]
    fn requests_name_their_scope() {
        let r = parse_event(serde_json::json!({"scope":"rows","dryRun":true})).unwrap();
        assert_eq!((r.scope, r.dry_run), (Scope::Rows, true));
        assert!(Scope::All.covers(Scope::Backups) && !Scope::Rows.covers(Scope::Backups));
        assert!(parse_event(serde_json::json!({"scope":"everything"})).is_err());
    }
}
