//! Archive then delete old rows (seed 001), in batches of heap pages. Each batch is one
//! transaction: `COPY (DELETE … RETURNING …) TO STDOUT` streamed as gzip CSV to S3, read
//! back and counted, and only then COMMIT (`archive_batch`). Any failure rolls back, so a
//! row is never deleted without its archive. A crash between the upload and the commit
//! leaves the rows and an extra object that no manifest lists; the next run archives the
//! rows again. Two connections take turns, so one batch's read-back overlaps the next one's
//! COPY.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use tokio_postgres::Client;

use super::archive_batch::{self as batch, db_error, is_locked, Range, Staged, LOCKED};
use super::request::ArchiveRule;
use crate::aws::objects::ObjectStore;
use crate::error::{Error, Result};
use crate::pg::quote_qualified;
use crate::report::Report;

pub struct Archiver<'a> {
    /// Two sessions: batches alternate between them.
    pub clients: [&'a Client; 2],
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

impl RuleOutcome {
    fn add(&mut self, rows: u64) {
        if rows > 0 {
            self.rows += rows;
            self.batches += 1;
        }
    }
}

/// One table (or leaf partition) of a rule being walked in page ranges.
struct Walk<'a> {
    rule: &'a ArchiveRule,
    relation: &'a str,
    pages: i64,
    per_page: f64,
    predicate: &'a str,
    columns: &'a str,
}

impl Walk<'_> {
    fn first_density(&self) -> f64 {
        if self.per_page > 0.0 {
            self.per_page
        } else {
            50.0
        }
    }

    fn range(&self, page: i64, span: i64) -> Range {
        Range {
            relation: self.relation.to_string(),
            from_page: page,
            to_page: page + span,
        }
    }
}

fn split(table: &str) -> (&str, &str) {
    table.split_once('.').unwrap_or(("public", table))
}

/// The tables a rule reaches (itself, or its leaf partitions), their size in pages and
/// their rows per page, and the parent's columns (a leaf's own order may differ).
struct Layout {
    relations: Vec<(String, i64, f64)>,
    columns: String,
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
                batch::predicate(rule, cutoff)
            );
            let n: i64 = self.clients[0]
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
        let predicate = batch::predicate(rule, cutoff);
        for (relation, pages, per_page) in &layout.relations {
            let walk = Walk {
                rule,
                relation,
                pages: *pages,
                per_page: *per_page,
                predicate: &predicate,
                columns: &layout.columns,
            };
            let finished = match &store {
                Some(s) => {
                    self.archive_relation(
                        &walk,
                        s,
                        &mut next,
                        clock,
                        archived,
                        &mut outcome,
                        report,
                    )
                    .await?
                }
                None => {
                    self.delete_relation(&walk, clock, &mut outcome, report)
                        .await?
                }
            };
            if !finished {
                report.skip(
                    rule.table.as_str(),
                    "the Lambda deadline is near: the next run continues with the rest",
                );
                break;
            }
        }
        if outcome.rows > 0 {
            // Seed 001: VACUUM after large deletes, so the space is reused and plans see it.
            let (schema, name) = split(&rule.table);
            self.clients[0]
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
        let rows = self.clients[0]
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
        let columns: String = self.clients[0]
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

    /// Pages per batch, from the density of matching rows seen so far: few matching rows
    /// here, bigger steps; many, smaller ones.
    fn span(&self, density: f64) -> i64 {
        ((f64::from(self.batch_rows) / density).floor() as i64).clamp(1, 1 << 22)
    }

    fn next_density(density: f64, rows: u64, span: i64) -> f64 {
        if rows == 0 {
            density / 4.0
        } else {
            rows as f64 / span as f64
        }
        .max(1e-3)
    }

    fn deadline(&self, clock: &dyn crate::clock::Clock) -> bool {
        self.stop_at.is_some_and(|s| clock.now() >= s)
    }

    fn skip_locked(range: &Range, report: &mut Report) {
        report.skip(
            format!(
                "{} pages {}..{}",
                range.relation, range.from_page, range.to_page
            ),
            LOCKED,
        );
    }

    /// Delete-only: one transaction per range. False when the deadline stopped it.
    async fn delete_relation(
        &self,
        w: &Walk<'_>,
        clock: &dyn crate::clock::Clock,
        outcome: &mut RuleOutcome,
        report: &mut Report,
    ) -> Result<bool> {
        let mut density = w.first_density();
        let mut page = 0;
        while page < w.pages {
            if self.deadline(clock) {
                return Ok(false);
            }
            let span = self.span(density);
            let range = w.range(page, span);
            let rows = match batch::delete_only(
                self.clients[0],
                self.lock_timeout_ms,
                w.rule,
                &range,
                w.predicate,
            )
            .await
            {
                Ok(n) => n,
                Err(e) if is_locked(&e) => {
                    Self::skip_locked(&range, report);
                    0
                }
                Err(e) => return Err(e),
            };
            outcome.add(rows);
            density = Self::next_density(density, rows, span);
            page += span;
        }
        Ok(true)
    }

    /// Archive: while one session's batch is read back and committed, the other session
    /// deletes and uploads the next. False when the deadline stopped it.
    #[allow(clippy::too_many_arguments)]
    async fn archive_relation(
        &self,
        w: &Walk<'_>,
        store: &Arc<dyn ObjectStore>,
        next: &mut u32,
        clock: &dyn crate::clock::Clock,
        archived: &mut Vec<Archived>,
        outcome: &mut RuleOutcome,
        report: &mut Report,
    ) -> Result<bool> {
        let mut density = w.first_density();
        let mut page = 0;
        let mut pending: Option<Staged> = None;
        let mut stopped = false;
        loop {
            if !stopped && self.deadline(clock) {
                stopped = true;
            }
            let range = (!stopped && page < w.pages).then(|| w.range(page, self.span(density)));
            if range.is_none() && pending.is_none() {
                return Ok(!stopped);
            }
            let which = pending.as_ref().map_or(0, |p| 1 - p.which);
            let key = self.object_key(w.rule, *next);
            let staging = async {
                match &range {
                    Some(r) => Some(
                        batch::stage(batch::Batch {
                            client: self.clients[which],
                            which,
                            store: store.clone(),
                            key: key.clone(),
                            sql: batch::copy_sql(r, w.predicate, w.columns),
                            table: &w.rule.table,
                            lock_timeout_ms: self.lock_timeout_ms,
                            part_bytes: self.part_bytes,
                        })
                        .await,
                    ),
                    None => None,
                }
            };
            // The settled batch's manifest write overlaps the next batch too: the manifest
            // lists it only once it is committed.
            let settling = async {
                let p = pending.as_ref()?;
                let settled = async {
                    batch::settle(self.clients[p.which], store, p).await?;
                    let done = Archived {
                        table: w.rule.table.clone(),
                        key: p.key.clone(),
                        rows: p.rows,
                        bytes: p.bytes,
                        sha256: p.sha256.clone(),
                    };
                    self.write_manifest(store.as_ref(), archived, Some(&done))
                        .await?;
                    Ok::<_, Error>(done)
                };
                Some(settled.await)
            };
            let (settled, staged) = futures_util::future::join(settling, staging).await;
            if let Some(result) = settled {
                let p = pending.take().expect("settled a pending batch");
                match result {
                    Ok(done) => archived.push(done),
                    Err(e) => {
                        if let Some(Ok(Some(s))) = &staged {
                            batch::abandon(self.clients[s.which]).await;
                        }
                        return Err(e);
                    }
                }
                outcome.add(p.rows);
                tracing::info!(table = %w.rule.table, rows = outcome.rows, page, pages = w.pages, "archive progress");
            }
            if let (Some(range), Some(result)) = (range, staged) {
                let span = range.to_page - range.from_page;
                let rows = match result {
                    Ok(Some(s)) => {
                        *next += 1;
                        let rows = s.rows;
                        pending = Some(s);
                        rows
                    }
                    Ok(None) => 0,
                    Err(e) if is_locked(&e) => {
                        Self::skip_locked(&range, report);
                        0
                    }
                    Err(e) => return Err(e),
                };
                density = Self::next_density(density, rows, span);
                page += span;
            }
        }
    }

    /// The run's manifest: the batches committed so far, and `last` when it has just been.
    async fn write_manifest(
        &self,
        store: &dyn ObjectStore,
        archived: &[Archived],
        last: Option<&Archived>,
    ) -> Result<()> {
        let objects: Vec<&Archived> = archived.iter().chain(last).collect();
        let body = serde_json::to_vec_pretty(&json!({
            "format": "pgsteward-archive-run/1",
            "dbIdentifier": self.db,
            "scheduledTime": self.slot,
            "runStartedAt": self.run_started,
            "rows": objects.iter().map(|a| a.rows).sum::<u64>(),
            "objects": objects,
        }))
        .map_err(|e| Error::internal(format!("manifest json: {e}")))?;
        store
            .put(&self.manifest_key(), body, "application/json")
            .await
    }
}
