//! Archive then delete old rows (seed 001), in batches of heap pages. Each batch is one
//! transaction: `COPY (DELETE … RETURNING …) TO STDOUT` streamed as gzip CSV to S3, read
//! back and counted, and only then COMMIT. Any failure rolls back, so a row is never deleted
//! without its archive. A crash between the upload and the commit leaves the rows and an
//! extra object that no manifest lists; the next run archives the rows again.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use tokio_postgres::Client;

use super::archive_io::{count_archived, CsvRecords, GzUpload};
use super::request::ArchiveRule;
use crate::aws::objects::ObjectStore;
use crate::error::{Error, Result};
use crate::pg::{quote_ident, quote_qualified};
use crate::report::Report;

pub struct Archiver<'a> {
    pub client: &'a Client,
    pub store: Option<Arc<dyn ObjectStore>>,
    pub db: &'a str,
    pub prefix: &'a str,
    pub slot: DateTime<Utc>,
    pub run_started: DateTime<Utc>,
    pub batch_rows: u32,
    pub lock_timeout_ms: u32,
    pub part_bytes: usize,
    pub stop_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
}

/// One archived batch, as the run's manifest lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Archived {
    pub table: String,
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Default)]
pub struct RuleOutcome {
    pub rows: u64,
    pub batches: u64,
}

fn split(table: &str) -> (&str, &str) {
    table.split_once('.').unwrap_or(("public", table))
}

/// `WHERE` for the rows a rule removes; the cutoff is ours, the condition the operator's.
fn predicate(rule: &ArchiveRule, cutoff: DateTime<Utc>) -> String {
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

/// A batch: a range of pages of one table (a leaf partition for a partitioned table).
/// Walking the heap in page ranges reads every page once in all; a `LIMIT` with `ORDER BY`
/// would scan and sort the rest of the table for every batch.
#[derive(Debug, Clone)]
pub struct Range {
    pub relation: String,
    pub from_page: i64,
    pub to_page: i64,
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

/// The tables a rule reaches (itself, or its leaf partitions), their size in pages and
/// their rows per page, and the parent's columns (a leaf's own order may differ).
struct Layout {
    relations: Vec<(String, i64, f64)>,
    columns: String,
}

/// Marks a batch that waited longer than `lock_timeout` for a row another session holds.
const LOCKED: &str = "rows are locked by another session (lock_timeout); the next run retries them";

fn db_error(what: &str, e: tokio_postgres::Error) -> Error {
    match e.code() {
        Some(c) if *c == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE => {
            Error::Retryable(format!("{what}: {LOCKED}"))
        }
        Some(c)
            if *c == tokio_postgres::error::SqlState::UNDEFINED_TABLE
                || *c == tokio_postgres::error::SqlState::UNDEFINED_COLUMN
                || *c == tokio_postgres::error::SqlState::SYNTAX_ERROR =>
        {
            Error::InvalidConfig(format!(
                "{what}: {e}; fix the rule in PGSTEWARD_ARCHIVE_RULES"
            ))
        }
        _ => Error::Retryable(format!("{what}: {e}")),
    }
}

impl Archiver<'_> {
    fn object_key(&self, rule: &ArchiveRule, n: u32) -> String {
        let (schema, name) = split(&rule.table);
        format!(
            "{}/{}/{schema}.{name}/{}/{}-{n:05}.csv.gz",
            self.prefix,
            self.db,
            self.slot.format("%Y/%m/%d"),
            self.slot.format("%Y%m%d-%H%M")
        )
    }

    /// The run's manifest, rewritten after every committed batch.
    pub fn manifest_key(&self) -> String {
        format!(
            "{}/{}/manifests/{}-run-{}.json",
            self.prefix,
            self.db,
            self.slot.format("%Y%m%d-%H%M"),
            self.run_started.format("%Y%m%dT%H%M%S")
        )
    }

    pub async fn run_rule(
        &self,
        rule: &ArchiveRule,
        now: DateTime<Utc>,
        clock: &dyn crate::clock::Clock,
        archived: &mut Vec<Archived>,
        report: &mut Report,
    ) -> Result<RuleOutcome> {
        let cutoff = now - Duration::days(i64::from(rule.older_than_days));
        let mut outcome = RuleOutcome::default();
        if self.dry_run {
            let (schema, name) = split(&rule.table);
            let sql = format!(
                "SELECT count(*) FROM {} WHERE {}",
                quote_qualified(schema, name),
                predicate(rule, cutoff)
            );
            let n: i64 = self
                .client
                .query_one(&sql, &[])
                .await
                .map_err(|e| db_error(&format!("counting old rows of {}", rule.table), e))?
                .get(0);
            let verb = if rule.archive {
                "would-archive-and-delete"
            } else {
                "would-delete-rows"
            };
            report.done(
                verb,
                rule.table.as_str(),
                json!({"rows": n, "olderThan": cutoff}),
            );
            return Ok(outcome);
        }
        let store = match (&self.store, rule.archive) {
            (Some(s), true) => Some(s.clone()),
            (None, true) => {
                return Err(Error::InvalidConfig(format!(
                    "archiving {} needs a bucket: set PGSTEWARD_BACKUP_BUCKET, or make the rule delete-only with \"archive\":false",
                    rule.table
                )))
            }
            (_, false) => None,
        };
        // Keys already used in this slot (a retried run) are never overwritten.
        let mut next = match &store {
            Some(s) => {
                let prefix = self.object_key(rule, 0);
                let prefix = &prefix[..prefix.len() - "00000.csv.gz".len()];
                s.list(prefix).await?.len() as u32 + 1
            }
            None => 1,
        };
        let started = Instant::now();
        let layout = self.layout(rule).await?;
        let predicate = predicate(rule, cutoff);
        'relations: for (relation, pages, per_page) in &layout.relations {
            // Pages per batch, from the density of matching rows seen so far.
            let mut density = if *per_page > 0.0 { *per_page } else { 50.0 };
            let mut page = 0i64;
            while page < *pages {
                if self.stop_at.is_some_and(|s| clock.now() >= s) {
                    report.skip(
                        rule.table.as_str(),
                        "the Lambda deadline is near: the next run continues with the rest",
                    );
                    break 'relations;
                }
                let span =
                    ((f64::from(self.batch_rows) / density).floor() as i64).clamp(1, 1 << 22);
                let range = Range {
                    relation: relation.clone(),
                    from_page: page,
                    to_page: page + span,
                };
                let batch = match &store {
                    Some(s) => {
                        let key = self.object_key(rule, next);
                        match self
                            .archive_batch(
                                rule,
                                &range,
                                &predicate,
                                &layout.columns,
                                s.clone(),
                                &key,
                            )
                            .await
                        {
                            Ok(Some(a)) => {
                                let rows = a.rows;
                                archived.push(a);
                                self.write_manifest(s.as_ref(), archived).await?;
                                next += 1;
                                Ok(rows)
                            }
                            Ok(None) => Ok(0),
                            Err(e) => Err(e),
                        }
                    }
                    None => self.delete_batch(rule, &range, &predicate).await,
                };
                let rows = match batch {
                    Ok(rows) => rows,
                    // Never wait on production: leave these pages for the next run.
                    Err(Error::Retryable(m)) if m.ends_with(LOCKED) => {
                        report.skip(
                            format!(
                                "{} pages {}..{}",
                                range.relation, range.from_page, range.to_page
                            ),
                            LOCKED,
                        );
                        0
                    }
                    Err(e) => return Err(e),
                };
                page += span;
                // Few matching rows here: take bigger steps; many: smaller ones.
                density = if rows == 0 {
                    density / 4.0
                } else {
                    rows as f64 / span as f64
                }
                .max(1e-3);
                if rows > 0 {
                    outcome.rows += rows;
                    outcome.batches += 1;
                    tracing::info!(table = %rule.table, rows = outcome.rows, page, pages, "archive progress");
                }
            }
        }
        if outcome.rows > 0 {
            // Seed 001: VACUUM after large deletes, so the space is reused and plans see it.
            let (schema, name) = split(&rule.table);
            self.client
                .batch_execute(&format!(
                    "VACUUM (ANALYZE) {}",
                    quote_qualified(schema, name)
                ))
                .await
                .map_err(|e| db_error(&format!("VACUUM ANALYZE of {}", rule.table), e))?;
        }
        let secs = started.elapsed().as_secs_f64().max(1e-6);
        let verb = if rule.archive {
            "archive-and-delete"
        } else {
            "delete-rows"
        };
        report.done(
            verb,
            rule.table.as_str(),
            json!({"rows": outcome.rows, "batches": outcome.batches, "olderThan": cutoff,
                   "rowsPerSecond": (outcome.rows as f64 / secs).round(), "vacuumed": outcome.rows > 0}),
        );
        Ok(outcome)
    }

    async fn layout(&self, rule: &ArchiveRule) -> Result<Layout> {
        let (schema, name) = split(&rule.table);
        let table = quote_qualified(schema, name);
        let what = format!("reading the layout of {}", rule.table);
        let rows = self
            .client
            .query(
                "WITH t AS (SELECT $1::text::regclass AS oid)
                 SELECT format('%I.%I', n.nspname, c.relname),
                        pg_relation_size(c.oid) / current_setting('block_size')::int8,
                        CASE WHEN c.relpages > 0 AND c.reltuples > 0
                             THEN c.reltuples / c.relpages ELSE 0 END::float8
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind = 'r'
                   AND (c.oid = (SELECT oid FROM t)
                        OR c.oid IN (SELECT relid FROM pg_partition_tree((SELECT oid FROM t)) WHERE isleaf))
                 ORDER BY 1",
                &[&table],
            )
            .await
            .map_err(|e| db_error(&what, e))?;
        if rows.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{} is not a table or a partitioned table; fix the rule in PGSTEWARD_ARCHIVE_RULES",
                rule.table
            )));
        }
        let columns: String = self
            .client
            .query_one(
                "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                 WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped",
                &[&table],
            )
            .await
            .map_err(|e| db_error(&what, e))?
            .get(0);
        Ok(Layout {
            relations: rows
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
            columns,
        })
    }

    async fn begin(&self) -> Result<()> {
        self.client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = '{}ms'",
                self.lock_timeout_ms
            ))
            .await
            .map_err(|e| db_error("starting a batch", e))
    }

    async fn rollback(&self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }

    async fn delete_batch(
        &self,
        rule: &ArchiveRule,
        range: &Range,
        predicate: &str,
    ) -> Result<u64> {
        self.begin().await?;
        match self
            .client
            .execute(&delete_sql(range, predicate, None), &[])
            .await
        {
            Ok(n) => {
                self.client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| db_error("committing a batch", e))?;
                Ok(n)
            }
            Err(e) => {
                self.rollback().await;
                Err(db_error(&format!("deleting old rows of {}", rule.table), e))
            }
        }
    }

    /// One transaction: the DELETE's rows stream to S3; COMMIT only once the object is
    /// confirmed and read back with the same number of rows.
    async fn archive_batch(
        &self,
        rule: &ArchiveRule,
        range: &Range,
        predicate: &str,
        columns: &str,
        store: Arc<dyn ObjectStore>,
        key: &str,
    ) -> Result<Option<Archived>> {
        self.begin().await?;
        let mut upload = GzUpload::new(store.clone(), key.to_string(), self.part_bytes);
        let sql = copy_sql(range, predicate, columns);
        let result = self
            .stream_batch(rule, &sql, store.as_ref(), key, &mut upload)
            .await;
        match result {
            Ok(Some((rows, sha256))) => {
                self.client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| db_error("committing a batch", e))?;
                Ok(Some(Archived {
                    table: rule.table.clone(),
                    key: key.to_string(),
                    rows,
                    bytes: upload.compressed_bytes,
                    sha256,
                }))
            }
            Ok(None) => {
                self.rollback().await;
                upload.abort().await;
                Ok(None)
            }
            Err(e) => {
                self.rollback().await;
                upload.abort().await;
                Err(e)
            }
        }
    }

    async fn stream_batch(
        &self,
        rule: &ArchiveRule,
        sql: &str,
        store: &dyn ObjectStore,
        key: &str,
        upload: &mut GzUpload,
    ) -> Result<Option<(u64, String)>> {
        let what = format!("archiving old rows of {}", rule.table);
        let stream = self
            .client
            .copy_out(sql)
            .await
            .map_err(|e| db_error(&what, e))?;
        let mut stream = std::pin::pin!(stream);
        let mut records = CsvRecords::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| db_error(&what, e))?;
            records.feed(&chunk);
            upload.write(&chunk).await?;
        }
        // The header is a record too.
        let rows = records.records.saturating_sub(1);
        if rows == 0 {
            return Ok(None);
        }
        let sha256 = upload.finish().await?;
        let read_back = count_archived(store, key).await?.saturating_sub(1);
        if read_back != rows {
            return Err(Error::Retryable(format!(
                "the archive {key} holds {read_back} rows but the batch deleted {rows}: rolled back, nothing deleted"
            )));
        }
        Ok(Some((rows, sha256)))
    }

    async fn write_manifest(&self, store: &dyn ObjectStore, archived: &[Archived]) -> Result<()> {
        let body = serde_json::to_vec_pretty(&json!({
            "format": "pgsteward-archive-run/1",
            "dbIdentifier": self.db,
            "scheduledTime": self.slot,
            "runStartedAt": self.run_started,
            "objects": archived,
            "rows": archived.iter().map(|a| a.rows).sum::<u64>(),
        }))
        .map_err(|e| Error::internal(format!("manifest json: {e}")))?;
        store
            .put(&self.manifest_key(), body, "application/json")
            .await
    }
}
