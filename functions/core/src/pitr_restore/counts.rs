//! Checklist step 2: exact row counts of every table of the restored database, compared with
//! the request's expectations (minimum counts, and/or a tolerance against the source's
//! counts or a logical backup's manifest). A miss is `CheckFailed` naming the tables.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use super::request::Expectations;
use crate::aws::objects::ObjectStore;
use crate::error::{Error, Result};
use crate::pg::{query_json, quote_qualified};
use crate::snapshot::logical::Manifest;

/// Ordinary and partitioned tables outside the system schemas; partitions are counted
/// through their parent.
const TABLES_SQL: &str = "SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname) ORDER BY n.nspname, c.relname), '[]')
 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'";

pub async fn tables(client: &Client) -> Result<Vec<(String, String)>> {
    query_json(client, TABLES_SQL, "table list").await
}

/// Exact `count(*)` of each table, in one statement and one round trip, in one snapshot.
pub async fn count(client: &Client, tables: &[(String, String)]) -> Result<BTreeMap<String, i64>> {
    if tables.is_empty() {
        return Ok(BTreeMap::new());
    }
    let parts: Vec<String> = tables
        .iter()
        .map(|(s, t)| format!("(SELECT count(*) FROM {})", quote_qualified(s, t)))
        .collect();
    let sql = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT array_to_json(ARRAY[{}]::int8[]); COMMIT",
        parts.join(", ")
    );
    let counts: Vec<i64> = query_json(client, &sql, "row count").await?;
    Ok(tables
        .iter()
        .map(|(s, t)| format!("{s}.{t}"))
        .zip(counts)
        .collect())
}

/// Exact counts from a logical backup's manifest (`snapshot`'s `.manifest.json`).
pub async fn from_manifest(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
) -> Result<BTreeMap<String, i64>> {
    let mut bytes = Vec::new();
    store
        .read(key, &mut |chunk: &[u8]| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::invalid(format!(
            "s3://{bucket}/{key} is not a pgsteward backup manifest ({e}); point compareWith at a .manifest.json"
        ))
    })?;
    Ok(m.tables
        .into_iter()
        .map(|t| (format!("{}.{}", t.schema, t.name), t.rows))
        .collect())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableCheck {
    pub table: String,
    /// None: the table is not in the restored database.
    pub rows: Option<i64>,
    pub expected: Option<i64>,
    pub ok: bool,
}

/// Compares the restored counts with `minRows` and with `compared` (less the tolerance).
pub fn compare(
    restored: &BTreeMap<String, i64>,
    expectations: &Expectations,
    compared: Option<&BTreeMap<String, i64>>,
) -> Vec<TableCheck> {
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    if let Some(c) = compared {
        let keep = 1.0 - expectations.tolerance_percent.unwrap_or(0.0) / 100.0;
        for (t, n) in c {
            let floor = (*n as f64 * keep).ceil() as i64;
            expected.insert(t.clone(), floor);
        }
    }
    for (t, n) in &expectations.min_rows {
        let (s, name) = super::request::split_table(t);
        let e = expected.entry(format!("{s}.{name}")).or_insert(*n);
        *e = (*e).max(*n);
    }
    let mut names: Vec<&String> = restored.keys().chain(expected.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|t| {
            let rows = restored.get(t).copied();
            let exp = expected.get(t).copied();
            TableCheck {
                table: t.clone(),
                rows,
                expected: exp,
                ok: match (rows, exp) {
                    (_, None) => true,
                    (Some(r), Some(e)) => r >= e,
                    (None, Some(_)) => false,
                },
            }
        })
        .collect()
}

/// `CheckFailed` naming every table that missed, or Ok.
pub fn verdict(checks: &[TableCheck]) -> Result<()> {
    let misses: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| match c.rows {
            Some(r) => format!(
                "{} ({r} rows, expected at least {})",
                c.table,
                c.expected.unwrap_or(0)
            ),
            None => format!(
                "{} (missing from the restore, expected at least {} rows)",
                c.table,
                c.expected.unwrap_or(0)
            ),
        })
        .collect();
    if misses.is_empty() {
        return Ok(());
    }
    Err(Error::CheckFailed(format!(
        "row counts below expectation in {} table(s): {}; restore to a later time, or correct the expectations",
        misses.len(),
        misses.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimums_and_tolerance_both_apply() {
        let restored: BTreeMap<String, i64> =
            [("public.orders".into(), 990), ("public.items".into(), 10)].into();
        let source: BTreeMap<String, i64> =
            [("public.orders".into(), 1000), ("public.gone".into(), 5)].into();
        let exp = Expectations {
            min_rows: [("items".to_string(), 11)].into(),
            tolerance_percent: Some(1.0),
            compare_with: Some("source".into()),
        };
        let checks = compare(&restored, &exp, Some(&source));
        let bad: Vec<&str> = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.table.as_str())
            .collect();
        assert_eq!(bad, vec!["public.gone", "public.items"]);
        let e = verdict(&checks).unwrap_err();
        assert_eq!(e.error_type(), "CheckFailed");
        assert!(
            e.to_string()
                .contains("public.items (10 rows, expected at least 11)"),
            "{e}"
        );
        assert!(e.to_string().contains("public.gone (missing"), "{e}");
        assert!(verdict(&compare(&restored, &Expectations::default(), None)).is_ok());
    }
}
