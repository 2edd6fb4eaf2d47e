//! The checks on a restored backup (seed 001 "Verify Backup Restorable" and "Check for
//! Corruption"): every table's exact row count against the manifest, `amcheck`'s
//! `bt_index_check` on every B-tree index, `pg_stat_database.checksum_failures`, the smoke
//! queries, and RTO/RPO against their targets. Each check says what it found; a check that
//! ran and failed names the tables, indexes or figures.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::query_json;
use crate::pitr_restore::counts;
use crate::snapshot::logical::Manifest;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: Value,
    /// Why it failed, naming what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl Check {
    fn new(name: &str, failure: Option<String>, detail: Value) -> Check {
        Check {
            name: name.into(),
            passed: failure.is_none(),
            detail,
            failure,
        }
    }
}

/// The tables a manifest counts (the snapshot task's selection): permanent ordinary tables,
/// leaf partitions included, partitioned parents not (their rows are their partitions').
const TABLES_SQL: &str = "SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname) ORDER BY n.nspname, c.relname), '[]')
 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND c.relpersistence = 'p'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'";

/// Exact row counts; with a manifest and `exact` (a logical drill's own manifest) every table
/// must match it exactly (and every table in it must exist); with a manifest of another moment
/// (a snapshot drill and the latest dump) the differences are reported, not failed; without
/// one the counts are recorded.
pub async fn row_counts(
    client: &Client,
    manifest: Option<&Manifest>,
    exact: bool,
) -> Result<(Check, f64)> {
    let started = Instant::now();
    let tables: Vec<(String, String)> = query_json(client, TABLES_SQL, "table list").await?;
    let restored = counts::count(client, &tables).await?;
    let secs = started.elapsed().as_secs_f64();
    let Some(m) = manifest else {
        let total: i64 = restored.values().sum();
        return Ok((
            Check::new(
                "rowCounts",
                None,
                json!({"tables": restored.len(), "rows": total, "note": "no manifest to compare with: counted only"}),
            ),
            secs,
        ));
    };
    let expected: BTreeMap<String, i64> = m
        .tables
        .iter()
        .map(|t| (format!("{}.{}", t.schema, t.name), t.rows))
        .collect();
    let mut check = compare(&restored, &expected);
    if !exact {
        check.detail["comparedWith"] = json!(m.dump_key);
        check.detail["note"] = json!("the latest logical backup's manifest, taken at another moment than the snapshot: differences are reported, not failed");
        check.failure = None;
        check.passed = true;
    }
    Ok((check, secs))
}

/// Exact comparison of restored counts with a manifest's.
pub fn compare(restored: &BTreeMap<String, i64>, expected: &BTreeMap<String, i64>) -> Check {
    let mut misses = Vec::new();
    for (t, want) in expected {
        match restored.get(t) {
            Some(got) if got == want => {}
            Some(got) => misses.push(format!("{t} ({got} rows, manifest {want})")),
            None => misses.push(format!(
                "{t} (missing from the restore, manifest {want} rows)"
            )),
        }
    }
    for (t, got) in restored {
        if !expected.contains_key(t) {
            misses.push(format!("{t} ({got} rows, not in the manifest)"));
        }
    }
    let failure = (!misses.is_empty()).then(|| {
        format!(
            "row counts differ from the manifest in {} table(s): {}",
            misses.len(),
            misses.join(", ")
        )
    });
    Check::new(
        "rowCounts",
        failure,
        json!({"tables": expected.len(), "rows": restored.values().sum::<i64>(), "mismatches": misses}),
    )
}

/// Valid B-tree indexes outside the system schemas.
const INDEXES_SQL: &str = "SELECT c.oid::int8, n.nspname || '.' || c.relname
 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = c.relam
 WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
 ORDER BY c.relpages DESC, 2";

/// `bt_index_check(index, heapallindexed => true)` on every B-tree index; every index is
/// checked even after a failure, and each failing one is named with amcheck's message.
pub async fn amcheck(client: &Client) -> Result<(Check, f64)> {
    let started = Instant::now();
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        .await
        .map_err(|e| {
            Error::InvalidConfig(format!(
                "CREATE EXTENSION amcheck failed on the verification server: {e}; amcheck ships with PostgreSQL (contrib) and is allowed on RDS"
            ))
        })?;
    let rows = client
        .query(INDEXES_SQL, &[])
        .await
        .map_err(|e| Error::Retryable(format!("listing indexes failed: {e}")))?;
    let mut failures = Vec::new();
    for r in &rows {
        let (oid, name): (i64, String) = (r.get(0), r.get(1));
        let sql = format!("SELECT bt_index_check({oid}::oid::regclass, true)");
        if let Err(e) = client.batch_execute(&sql).await {
            let why = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string());
            failures.push(format!("{name}: {why}"));
        }
    }
    let failure = (!failures.is_empty()).then(|| {
        format!(
            "amcheck found corruption in {} of {} B-tree index(es): {}",
            failures.len(),
            rows.len(),
            failures.join("; ")
        )
    });
    Ok((
        Check::new(
            "amcheck",
            failure,
            json!({"indexes": rows.len(), "failed": failures}),
        ),
        started.elapsed().as_secs_f64(),
    ))
}

/// Data-page checksum failures PostgreSQL recorded for this database (NULL, and said so,
/// when the cluster runs without data checksums).
pub async fn checksum_failures(client: &Client) -> Result<Check> {
    let row = client
        .query_one(
            "SELECT checksum_failures, current_setting('data_checksums') = 'on' FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .map_err(|e| Error::Retryable(format!("reading pg_stat_database failed: {e}")))?;
    let (failures, enabled): (Option<i64>, bool) = (row.get(0), row.get(1));
    let n = failures.unwrap_or(0);
    let failure = (n > 0).then(|| {
        format!(
            "pg_stat_database reports {n} data-page checksum failure(s) in the restored database"
        )
    });
    let mut detail = json!({"checksumFailures": n, "dataChecksums": enabled});
    if !enabled {
        detail["note"] = json!(
            "the server runs without data checksums: page corruption is not detected by this check"
        );
    }
    Ok(Check::new("checksumFailures", failure, detail))
}

pub async fn smoke(client: &mut Client, queries: &[String]) -> Check {
    if queries.is_empty() {
        return Check::new(
            "smoke",
            None,
            json!({"queries": 0, "note": "no PGSTEWARD_SMOKE_QUERIES configured"}),
        );
    }
    match crate::pitr_restore::probe::smoke(client, queries, 30).await {
        Ok(v) => Check::new("smoke", None, v),
        Err(e) => Check::new(
            "smoke",
            Some(e.to_string()),
            json!({"queries": queries.len()}),
        ),
    }
}

/// RTO (drill start → verified) and RPO (backup age at the start) against their targets.
pub fn targets(rto_seconds: f64, rpo_minutes: f64, rto_target: f64, rpo_target: f64) -> Vec<Check> {
    let rto_min = rto_seconds / 60.0;
    vec![
        Check::new(
            "rto",
            (rto_min > rto_target).then(|| {
                format!("RTO {rto_min:.1} min is over the target of {rto_target} min (PGSTEWARD_RTO_TARGET_MINUTES)")
            }),
            json!({"minutes": (rto_min * 100.0).round() / 100.0, "targetMinutes": rto_target}),
        ),
        Check::new(
            "rpo",
            (rpo_minutes > rpo_target).then(|| {
                format!("RPO {rpo_minutes:.1} min (the backup's age) is over the target of {rpo_target} min (PGSTEWARD_RPO_TARGET_MINUTES): backups are not frequent enough")
            }),
            json!({"minutes": rpo_minutes, "targetMinutes": rpo_target}),
        ),
    ]
}

/// `CheckFailed` naming every failed check, or Ok.
pub fn verdict(checks: &[Check]) -> Result<()> {
    let failed: Vec<String> = checks
        .iter()
        .filter_map(|c| c.failure.as_ref().map(|f| format!("{}: {f}", c.name)))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::CheckFailed(format!(
            "the backup failed verification: {}",
            failed.join("; ")
        )))
    }
}

/// The failures in a verify output's `checks`, joined, or None when it passed.
pub fn failures(verify: &Value) -> Option<String> {
    if verify["passed"] != false {
        return None;
    }
    let named: Vec<String> = verify["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some(format!(
                "{}: {}",
                c["name"].as_str()?,
                c["failure"].as_str()?
            ))
        })
        .collect();
    Some(format!(
        "the backup failed verification: {}",
        named.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_match_exactly_and_misses_are_named() {
        let restored: BTreeMap<String, i64> = [
            ("public.a".into(), 10),
            ("public.b".into(), 5),
            ("public.x".into(), 1),
        ]
        .into();
        let expected: BTreeMap<String, i64> = [
            ("public.a".into(), 10),
            ("public.b".into(), 6),
            ("public.c".into(), 1),
        ]
        .into();
        let c = compare(&restored, &expected);
        assert!(!c.passed);
        let f = c.failure.unwrap();
        assert!(f.contains("public.b (5 rows, manifest 6)"), "{f}");
        assert!(f.contains("public.c (missing"), "{f}");
        assert!(f.contains("public.x (1 rows, not in the manifest)"), "{f}");
        let t = targets(1900.0, 10.0, 30.0, 60.0);
        assert!(!t[0].passed && t[1].passed);
        assert_eq!(verdict(&t).unwrap_err().error_type(), "CheckFailed");
    }
}
