//! One batch of archive-then-delete, in two stages so that two batches overlap on two
//! connections: `stage` runs `COPY (DELETE … RETURNING …)` inside an open transaction and
//! uploads the gzip CSV; `settle` reads the object back, counts its rows, and commits only
//! when they match. Either stage failing rolls back: no row goes without its archive.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio_postgres::Client;

use super::archive_io::{count_archived, CsvRecords, GzUpload};
use super::request::ArchiveRule;
use crate::aws::objects::ObjectStore;
use crate::error::{Error, Result};
use crate::pg::quote_ident;

/// A batch: a range of pages of one table (a leaf partition for a partitioned table).
/// Walking the heap in page ranges reads every page once in all; a `LIMIT` with `ORDER BY`
/// would scan and sort the rest of the table for every batch.
#[derive(Debug, Clone)]
pub struct Range {
    pub relation: String,
    pub from_page: i64,
    pub to_page: i64,
}

/// `WHERE` for the rows a rule removes; the cutoff is ours, the condition the operator's.
pub fn predicate(rule: &ArchiveRule, cutoff: DateTime<Utc>) -> String {
    let mut p = format!(
        "{} < '{}'::timestamptz",
        quote_ident(&rule.column),
        cutoff.to_rfc3339()
    );
    if let Some(c) = &rule.condition {
        p.push_str(&format!(" AND ({c})"));
    }
    p
}

pub fn delete_sql(range: &Range, predicate: &str, returning: Option<&str>) -> String {
    format!(
        "DELETE FROM {} WHERE ctid >= '({},0)'::tid AND ctid < '({},0)'::tid AND {predicate}{}",
        range.relation,
        range.from_page,
        range.to_page,
        returning
            .map(|c| format!(" RETURNING {c}"))
            .unwrap_or_default()
    )
}

pub fn copy_sql(range: &Range, predicate: &str, columns: &str) -> String {
    format!(
        "COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)",
        delete_sql(range, predicate, Some(columns))
    )
}

/// Marks a batch that waited longer than `lock_timeout` for a row another session holds.
pub const LOCKED: &str =
    "rows are locked by another session (lock_timeout); the next run retries them";

pub fn db_error(what: &str, e: tokio_postgres::Error) -> Error {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => {
            Error::Retryable(format!("{what}: {LOCKED}"))
        }
        Some(c)
            if *c == SqlState::UNDEFINED_TABLE
                || *c == SqlState::UNDEFINED_COLUMN
                || *c == SqlState::SYNTAX_ERROR =>
        {
            Error::InvalidConfig(format!(
                "{what}: {e}; fix the rule in PGSTEWARD_ARCHIVE_RULES"
            ))
        }
        _ => Error::Retryable(format!("{what}: {e}")),
    }
}

pub fn is_locked(e: &Error) -> bool {
    matches!(e, Error::Retryable(m) if m.ends_with(LOCKED))
}

async fn begin(client: &Client, lock_timeout_ms: u32) -> Result<()> {
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = '{lock_timeout_ms}ms'"
        ))
        .await
        .map_err(|e| db_error("starting a batch", e))
}

async fn rollback(client: &Client) {
    let _ = client.batch_execute("ROLLBACK").await;
}

async fn commit(client: &Client) -> Result<()> {
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| db_error("committing a batch", e))
}

/// Delete-only rules: one transaction per range.
pub async fn delete_only(
    client: &Client,
    lock_timeout_ms: u32,
    rule: &ArchiveRule,
    range: &Range,
    predicate: &str,
) -> Result<u64> {
    begin(client, lock_timeout_ms).await?;
    match client
        .execute(&delete_sql(range, predicate, None), &[])
        .await
    {
        Ok(n) => commit(client).await.map(|_| n),
        Err(e) => {
            rollback(client).await;
            Err(db_error(&format!("deleting old rows of {}", rule.table), e))
        }
    }
}

/// A batch whose rows are deleted (not committed) and uploaded; `which` names its connection.
pub struct Staged {
    pub which: usize,
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

pub struct Batch<'a> {
    pub client: &'a Client,
    pub which: usize,
    pub store: Arc<dyn ObjectStore>,
    pub key: String,
    pub sql: String,
    pub table: &'a str,
    pub lock_timeout_ms: u32,
    pub part_bytes: usize,
}

/// Deletes and uploads inside an open transaction. None (rolled back) when no row matched.
pub async fn stage(b: Batch<'_>) -> Result<Option<Staged>> {
    begin(b.client, b.lock_timeout_ms).await?;
    let mut upload = GzUpload::new(b.store.clone(), b.key.clone(), b.part_bytes);
    match stream(&b, &mut upload).await {
        Ok(Some((rows, sha256))) => Ok(Some(Staged {
            which: b.which,
            key: b.key,
            rows,
            bytes: upload.compressed_bytes,
            sha256,
        })),
        Ok(None) => {
            rollback(b.client).await;
            upload.abort().await;
            Ok(None)
        }
        Err(e) => {
            rollback(b.client).await;
            upload.abort().await;
            Err(e)
        }
    }
}

/// PostgreSQL sends one COPY message per row; feeding gzip and the counter in blocks of this
/// size instead costs a fraction of the per-call overhead.
const BLOCK: usize = 128 * 1024;

async fn stream(b: &Batch<'_>, upload: &mut GzUpload) -> Result<Option<(u64, String)>> {
    let what = format!("archiving old rows of {}", b.table);
    let rows = b
        .client
        .copy_out(b.sql.as_str())
        .await
        .map_err(|e| db_error(&what, e))?;
    let mut rows = std::pin::pin!(rows);
    let mut records = CsvRecords::default();
    let mut block = Vec::with_capacity(BLOCK + 4096);
    while let Some(chunk) = rows.next().await {
        block.extend_from_slice(&chunk.map_err(|e| db_error(&what, e))?);
        if block.len() >= BLOCK {
            pass_on(&mut block, &mut records, upload).await?;
        }
    }
    pass_on(&mut block, &mut records, upload).await?;
    // The header is a record too.
    let rows = records.records.saturating_sub(1);
    if rows == 0 {
        return Ok(None);
    }
    Ok(Some((rows, upload.finish().await?)))
}

/// Counts a block's records and compresses it into the upload, leaving the block empty.
async fn pass_on(
    block: &mut Vec<u8>,
    records: &mut CsvRecords,
    upload: &mut GzUpload,
) -> Result<()> {
    if !block.is_empty() {
        records.feed(block);
        upload.write(block).await?;
        block.clear();
    }
    Ok(())
}

/// Reads the object back and commits only if it holds every deleted row. The read-back
/// (download, gunzip, count) runs as its own task, on another core than the next batch's gzip.
pub async fn settle(client: &Client, store: &Arc<dyn ObjectStore>, staged: &Staged) -> Result<()> {
    let counted = tokio::spawn(count_archived(store.clone(), staged.key.clone()))
        .await
        .unwrap_or_else(|e| Err(Error::internal(format!("the read-back task failed: {e}"))));
    let read_back = match counted {
        Ok(n) => n.saturating_sub(1),
        Err(e) => {
            rollback(client).await;
            return Err(e);
        }
    };
    if read_back != staged.rows {
        rollback(client).await;
        return Err(Error::Retryable(format!(
            "the archive {} holds {read_back} rows but the batch deleted {}: rolled back, nothing deleted",
            staged.key, staged.rows
        )));
    }
    commit(client).await
}

/// Gives up a staged batch (its partner failed): its rows stay.
pub async fn abandon(client: &Client) {
    rollback(client).await;
}
