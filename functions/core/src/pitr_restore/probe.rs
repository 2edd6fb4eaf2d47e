//! Checklist steps 3–5 on the restored database: ANALYZE every table (seed 000: refresh the
//! planner's statistics), connectivity with the application's own credentials, and the
//! smoke queries, each in a read-only transaction with a timeout.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::{query_json, quote_qualified};

/// Tables, partitioned tables and materialized views outside the system schemas, with when
/// their statistics were last gathered, least recently first.
const ANALYZE_SQL: &str = "SELECT coalesce(json_agg(json_build_array(n.nspname, c.relname, greatest(s.last_analyze, s.last_autoanalyze))
   ORDER BY greatest(s.last_analyze, s.last_autoanalyze) NULLS FIRST, n.nspname, c.relname), '[]')
 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
 WHERE c.relkind IN ('r', 'p', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'";

/// Called after each table: (table, done, total, milliseconds).
pub type Progress<'a> = &'a (dyn Fn(&str, usize, usize, u128) + Send + Sync);

/// No table is started with less than this left before the stop time.
const MARGIN: Duration = Duration::from_secs(30);

/// ANALYZE of each table in turn, least recently analyzed first, timed; the slowest are named
/// in the answer. Tables analyzed at or after `since` (the restore's creation) are done
/// already. Before `stop_at` (the Lambda deadline) it stops with `Retryable` and the count:
/// the next attempt goes on with the tables not done yet.
pub async fn analyze(
    client: &Client,
    since: Option<DateTime<Utc>>,
    stop_at: Option<Instant>,
    progress: Option<Progress<'_>>,
) -> Result<Value> {
    let started = Instant::now();
    let all: Vec<(String, String, Option<DateTime<Utc>>)> =
        query_json(client, ANALYZE_SQL, "table list").await?;
    let done_before =
        |t: &Option<DateTime<Utc>>| matches!((since, t), (Some(s), Some(t)) if *t >= s);
    let already = all.iter().filter(|(_, _, t)| done_before(t)).count();
    let tables: Vec<&(String, String, Option<DateTime<Utc>>)> =
        all.iter().filter(|(_, _, t)| !done_before(t)).collect();
    if let Some(stop) = stop_at {
        let left = stop.saturating_duration_since(Instant::now());
        client
            .batch_execute(&format!(
                "SET statement_timeout = {}",
                left.as_millis().max(1000)
            ))
            .await
            .map_err(|e| Error::Retryable(format!("cannot set statement_timeout: {e}")))?;
    }
    let mut timings: Vec<(String, u128)> = Vec::with_capacity(tables.len());
    for (i, (s, t, _)) in tables.iter().enumerate() {
        if stop_at.is_some_and(|stop| Instant::now() + MARGIN > stop) {
            return Err(Error::Retryable(format!(
                "analyzed {i} of {} tables before the Lambda deadline ({already} were done already); run the analyze step again: it goes on with the rest",
                tables.len()
            )));
        }
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
        "tables": all.len(),
        "analyzed": tables.len(),
        "alreadyAnalyzed": already,
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
