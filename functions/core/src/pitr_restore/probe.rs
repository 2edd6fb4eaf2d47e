//! Checklist steps 3–5 on the restored database: ANALYZE every table (seed 000: refresh the
//! planner's statistics), connectivity with the application's own credentials, and the
//! smoke queries, each in a read-only transaction with a timeout.

use std::time::Instant;

use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::{query_json, quote_qualified};

/// Tables, partitioned tables and materialized views outside the system schemas.
const ANALYZE_SQL: &str = "SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname) ORDER BY n.nspname, c.relname), '[]')
 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'";

/// Called after each table: (table, done, total, milliseconds).
pub type Progress<'a> = &'a (dyn Fn(&str, usize, usize, u128) + Send + Sync);

/// ANALYZE of each table in turn, timed; the slowest are named in the answer.
pub async fn analyze(client: &Client, progress: Option<Progress<'_>>) -> Result<Value> {
    let started = Instant::now();
    let tables: Vec<(String, String)> = query_json(client, ANALYZE_SQL, "table list").await?;
    let mut timings: Vec<(String, u128)> = Vec::with_capacity(tables.len());
    for (i, (s, t)) in tables.iter().enumerate() {
        let name = format!("{s}.{t}");
        let one = Instant::now();
        client
            .batch_execute(&format!("ANALYZE {}", quote_qualified(s, t)))
            .await
            .map_err(|e| {
                Error::Retryable(format!(
                    "ANALYZE {name} failed: {e}; run the analyze step again"
                ))
            })?;
        let ms = one.elapsed().as_millis();
        if let Some(p) = progress {
            p(&name, i + 1, tables.len(), ms);
        }
        timings.push((name, ms));
    }
    timings.sort_by_key(|t| std::cmp::Reverse(t.1));
    Ok(json!({
        "status": "passed",
        "tables": tables.len(),
        "seconds": started.elapsed().as_secs_f64(),
        "slowest": timings.iter().take(5).map(|(t, ms)| json!({"table": t, "ms": ms})).collect::<Vec<_>>(),
    }))
}

/// `SELECT 1` over a session opened with the application's credentials.
pub async fn connectivity(client: &Client, user: &str) -> Result<Value> {
    let rows = client.simple_query("SELECT 1").await.map_err(|e| {
        Error::CheckFailed(format!(
            "the application's session ({user}) cannot run SELECT 1: {e}"
        ))
    })?;
    if rows.is_empty() {
        return Err(Error::CheckFailed(format!(
            "the application's session ({user}) got no answer to SELECT 1"
        )));
    }
    Ok(json!({"status": "passed", "user": user}))
}

/// Long queries are shortened in messages.
fn shown(q: &str) -> String {
    let q = q.split_whitespace().collect::<Vec<_>>().join(" ");
    if q.chars().count() > 120 {
        format!("{}…", q.chars().take(120).collect::<String>())
    } else {
        q
    }
}

/// Each query alone in a READ ONLY transaction whose snapshot is already taken (so it
/// cannot be switched to read-write), sent with the extended protocol (one statement only),
/// with `statement_timeout`, and rolled back.
pub async fn smoke(client: &mut Client, queries: &[String], timeout_secs: u32) -> Result<Value> {
    let mut results = Vec::with_capacity(queries.len());
    for (i, q) in queries.iter().enumerate() {
        let started = Instant::now();
        let fail = |e: tokio_postgres::Error| {
            let why = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string());
            Error::CheckFailed(format!(
                "smoke query {} ({}) failed: {why}; smoke queries are single read-only statements",
                i + 1,
                shown(q)
            ))
        };
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(|e| Error::Retryable(format!("cannot start the smoke transaction: {e}")))?;
        tx.batch_execute(&format!(
            "SET LOCAL statement_timeout = {}; SELECT 1",
            u64::from(timeout_secs) * 1000
        ))
        .await
        .map_err(|e| Error::Retryable(format!("cannot prepare the smoke transaction: {e}")))?;
        let rows = tx.query(q.as_str(), &[]).await.map_err(fail)?;
        tx.rollback().await.ok();
        results.push(json!({
            "query": shown(q), "rows": rows.len(), "ms": started.elapsed().as_millis(),
        }));
    }
    Ok(json!({"status": "passed", "queries": results}))
}
