//! Logical backups: `pg_dump -Fc` streamed straight into an S3 multipart upload — never held
//! whole in memory or on disk — with a SHA-256 over the stream and a manifest written last,
//! holding exact row counts taken in the very snapshot pg_dump dumps. Any failure aborts the
//! upload: no partial object and no manifest are ever visible.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::aws::objects::ObjectStore;
use crate::digest::{hex, sha256};
use crate::error::{Error, Result};
use crate::pg::{quote_qualified, Target};
use crate::report::Report;

/// Parts uploading while the next one fills: memory stays near (IN_FLIGHT + 1) × part size
/// (32 MiB at 8 MiB parts). Three keep pg_dump from waiting on a slow part.
const IN_FLIGHT: usize = 3;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TableRows {
    pub schema: String,
    pub name: String,
    pub rows: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub db_identifier: String,
    pub database: String,
    pub server_version: String,
    pub scheduled_time: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub dump_key: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub parts: usize,
    /// Exact `count(*)` per table in the snapshot the dump was taken from.
    pub tables: Vec<TableRows>,
}

pub struct Keys {
    pub dump: String,
    pub manifest: String,
}

/// `<prefix>/<db>/<yyyy>/<mm>/<dd>/<db>-<yyyymmdd-hhmm>.dump` and its `.manifest.json`.
pub fn keys(prefix: &str, db: &str, slot: DateTime<Utc>) -> Keys {
    let base = format!(
        "{prefix}/{db}/{}/{db}-{}",
        slot.format("%Y/%m/%d"),
        slot.format("%Y%m%d-%H%M")
    );
    Keys {
        dump: format!("{base}.dump"),
        manifest: format!("{base}.manifest.json"),
    }
}

pub struct Backup<'a> {
    pub target: &'a Target,
    pub store: Arc<dyn ObjectStore>,
    pub pg_dump: &'a std::path::Path,
    pub part_bytes: usize,
    pub db_identifier: &'a str,
    pub keys: Keys,
    pub slot: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    /// No dump may still be running at this time (the Lambda deadline less a margin).
    pub stop_at: Option<DateTime<Utc>>,
}

/// Counts every table in one statement, inside the exported snapshot's transaction.
async fn count_rows(client: &tokio_postgres::Client) -> Result<Vec<TableRows>> {
    let tables = client
        .query(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND c.relpersistence = 'p'
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(|e| Error::Retryable(format!("listing tables failed: {e}")))?;
    if tables.is_empty() {
        return Ok(vec![]);
    }
    let parts: Vec<String> = tables
        .iter()
        .map(|r| {
            format!(
                "(SELECT count(*) FROM {})",
                quote_qualified(r.get(0), r.get(1))
            )
        })
        .collect();
    let sql = format!("SELECT ARRAY[{}]::int8[]", parts.join(", "));
    let counts: Vec<i64> = client
        .query_one(&sql, &[])
        .await
        .map_err(|e| Error::Retryable(format!("counting rows failed: {e}")))?
        .get(0);
    Ok(tables
        .iter()
        .zip(counts)
        .map(|(r, rows)| TableRows {
            schema: r.get(0),
            name: r.get(1),
            rows,
        })
        .collect())
}

/// Runs the backup; on any failure the upload is aborted and the error returned.
pub async fn run(
    b: Backup<'_>,
    clock: &dyn crate::clock::Clock,
    report: &mut Report,
) -> Result<Manifest> {
    // The snapshot: REPEATABLE READ, exported; pg_dump imports it, counts read it.
    let client = crate::pg::connect_target(b.target).await?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(|e| Error::Retryable(format!("starting the snapshot transaction failed: {e}")))?;
    let row = client
        .query_one(
            "SELECT pg_export_snapshot(), current_database(), current_setting('server_version')",
            &[],
        )
        .await
        .map_err(|e| Error::Retryable(format!("exporting a snapshot failed: {e}")))?;
    let (snapshot, database, server_version): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    let upload_id = b
        .store
        .start_upload(&b.keys.dump, "application/octet-stream")
        .await?;
    info!(db_instance = %b.db_identifier, key = %b.keys.dump, snapshot = %snapshot, "logical backup started");
    let streamed = stream(&b, &snapshot, &upload_id, clock).await;
    if streamed.is_err() {
        end_dump_session(&client, &snapshot, report).await;
    }
    let outcome = match streamed {
        Ok(s) => match count_rows(&client).await {
            Ok(t) => b
                .store
                .complete_upload(&b.keys.dump, &upload_id, s.etags.clone())
                .await
                .map(|_| (s, t)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let _ = client.batch_execute("ROLLBACK").await;
    let (s, tables) = match outcome {
        Ok(v) => v,
        Err(e) => {
            if let Err(abort) = b.store.abort_upload(&b.keys.dump, &upload_id).await {
                warn!(error = %abort, "aborting the multipart upload failed; the bucket's lifecycle rule removes it");
                report.warn(format!(
                    "aborting the upload failed ({abort}); the bucket's lifecycle rule removes it"
                ));
            }
            return Err(e);
        }
    };
    let manifest = Manifest {
        format: "pgsteward-logical-backup/1".into(),
        db_identifier: b.db_identifier.into(),
        database,
        server_version,
        scheduled_time: b.slot,
        started_at: b.started_at,
        finished_at: clock.now(),
        dump_key: b.keys.dump.clone(),
        size_bytes: s.bytes,
        sha256: s.sha256.clone(),
        parts: s.etags.len(),
        tables,
    };
    // Written last: a dump without its manifest is not a backup.
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::internal(format!("manifest json: {e}")))?;
    b.store
        .put(&b.keys.manifest, body, "application/json")
        .await?;
    let secs = s.elapsed_secs.max(1e-6);
    report.done(
        "logical-backup",
        format!("{}/{}", b.store.location(), b.keys.dump),
        json!({
            "sizeBytes": s.bytes, "sha256": s.sha256, "parts": s.etags.len(), "tables": manifest.tables.len(),
            "seconds": (secs * 100.0).round() / 100.0, "mibPerSecond": ((s.bytes as f64 / 1048576.0 / secs) * 10.0).round() / 10.0,
            "manifest": format!("{}/{}", b.store.location(), b.keys.manifest),
        }),
    );
    Ok(manifest)
}

struct Streamed {
    bytes: u64,
    sha256: String,
    etags: Vec<(i32, String)>,
    elapsed_secs: f64,
}

async fn stream(
    b: &Backup<'_>,
    snapshot: &str,
    upload_id: &str,
    clock: &dyn crate::clock::Clock,
) -> Result<Streamed> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(b.pg_dump)
        .args([
            "--format=custom",
            "--no-password",
            &format!("--snapshot={snapshot}"),
        ])
        .envs(b.target.libpq_env())
        .env("PGAPPNAME", dump_app_name(snapshot))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::InvalidConfig(format!(
                "cannot run pg_dump at '{}' ({e}); set PGSTEWARD_PG_DUMP to its path",
                b.pg_dump.display()
            ))
        })?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let mut hasher = sha256();
    let mut total: u64 = 0;
    let mut part_no: i32 = 0;
    let mut uploads = Uploads(Default::default());
    let mut etags = vec![];
    let mut buf = Vec::with_capacity(b.part_bytes);
    let mut eof = false;
    while !eof {
        // Fill one part.
        while buf.len() < b.part_bytes {
            let before = buf.len();
            let read = stdout.read_buf(&mut buf);
            let n = match b.stop_at {
                None => read.await,
                // Bounded even while pg_dump prints nothing (waiting on a lock, say): a
                // blocked read must not carry the run past the deadline.
                Some(stop) => {
                    let left = (stop - clock.now()).to_std().unwrap_or_default();
                    match tokio::time::timeout(left, read).await {
                        Ok(n) if !left.is_zero() => n,
                        _ => {
                            let _ = child.kill().await;
                            return Err(deadline_reached(stop, total + buf.len() as u64));
                        }
                    }
                }
            }
            .map_err(|e| Error::internal(format!("reading pg_dump's output failed: {e}")))?;
            if n == 0 {
                eof = true;
                break;
            }
            // Hashed as it arrives, between reads: hashing a whole part at once leaves the
            // pipe unread meanwhile, and pg_dump blocks once its 64 KiB are full.
            hasher.update(&buf[before..]);
        }
        if buf.is_empty() {
            break;
        }
        total += buf.len() as u64;
        part_no += 1;
        let part = std::mem::replace(&mut buf, Vec::with_capacity(b.part_bytes));
        // Bounded: wait for the oldest upload before starting another.
        if uploads.0.len() >= IN_FLIGHT {
            let oldest = uploads.0.pop_front().expect("in flight");
            etags.push(join(oldest).await?);
        }
        let (store, key, id) = (b.store.clone(), b.keys.dump.clone(), upload_id.to_string());
        uploads.0.push_back(tokio::spawn(async move {
            store
                .upload_part(&key, &id, part_no, part)
                .await
                .map(|e| (part_no, e))
        }));
    }
    while let Some(u) = uploads.0.pop_front() {
        etags.push(join(u).await?);
    }
    let status = child
        .wait()
        .await
        .map_err(|e| Error::internal(format!("waiting for pg_dump failed: {e}")))?;
    let err_text = b.target.scrub(stderr_task.await.unwrap_or_default());
    if !status.success() {
        let why = err_text.trim().chars().take(2000).collect::<String>();
        if why.contains("permission denied") {
            return Err(Error::InvalidConfig(format!(
                "pg_dump failed: {why}; the role needs to read every table (GRANT pg_read_all_data TO it); nothing was kept"
            )));
        }
        return Err(Error::Retryable(format!(
            "pg_dump failed ({status}): {why}; nothing was kept"
        )));
    }
    if total == 0 {
        return Err(Error::internal(
            "pg_dump produced no output; nothing was kept",
        ));
    }
    Ok(Streamed {
        bytes: total,
        sha256: hex(hasher.finish().as_ref()),
        etags,
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}

/// pg_dump's session name: unique to the run (the snapshot id), so it can be found and ended.
fn dump_app_name(snapshot: &str) -> String {
    format!("pgsteward-dump {snapshot}")
}

/// Ends pg_dump's server session after a failure. A killed pg_dump's backend notices only
/// when it next talks to its client, so one waiting on a lock would stay queued, holding the
/// locks it already has. A role may end its own sessions.
async fn end_dump_session(client: &tokio_postgres::Client, snapshot: &str, report: &mut Report) {
    let ended = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&dump_app_name(snapshot)],
        )
        .await;
    if let Err(e) = ended {
        warn!(error = %e, "ending pg_dump's session failed");
        report.warn(format!(
            "pg_dump's server session (application_name '{}') could not be ended ({e}); if it lingers, end it with pg_terminate_backend",
            dump_app_name(snapshot)
        ));
    }
}

/// The dump stopped short of the Lambda deadline; `streamed` bytes were read by then.
fn deadline_reached(stop: DateTime<Utc>, streamed: u64) -> Error {
    let hint = if streamed == 0 {
        "pg_dump had printed nothing, so it was probably waiting for a lock another session holds (see pg_locks); "
    } else {
        ""
    };
    Error::Retryable(format!(
        "the logical backup was stopped at {} to end before the Lambda deadline, after {:.1} MiB of dump: pg_dump was killed, the upload aborted and nothing was kept; {hint}a dump this long runs as the Fargate task (LogicalBackup state machine)",
        stop.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        streamed as f64 / 1048576.0
    ))
}

/// Part uploads in flight; on an early return they are cancelled, so none lands after the
/// upload is aborted.
struct Uploads(std::collections::VecDeque<JoinHandle<Result<(i32, String)>>>);

impl Drop for Uploads {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

async fn join(h: JoinHandle<Result<(i32, String)>>) -> Result<(i32, String)> {
    h.await
        .map_err(|e| Error::internal(format!("a part upload task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn key_layout_by_database_and_date() {
        let k = keys(
            "pgsteward",
            "orders-prod",
            Utc.with_ymd_and_hms(2026, 11, 22, 2, 30, 0).unwrap(),
        );
        assert_eq!(
            k.dump,
            "pgsteward/orders-prod/2026/11/22/orders-prod-20261122-0230.dump"
        );
        assert_eq!(
            k.manifest,
            "pgsteward/orders-prod/2026/11/22/orders-prod-20261122-0230.manifest.json"
        );
    }
}
