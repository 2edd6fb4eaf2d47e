//! The logical drill's restore: the dump is streamed from S3 into a private temporary file
//! while its SHA-256 is computed (a mismatch with the manifest stops the drill before
//! anything is restored), then `pg_restore` (with `--jobs` when the dump is large enough to
//! gain from it) loads it into the drill's scratch database on the verification server.
//! The scratch database is created and dropped here only, and dropped only when its comment
//! names this drill.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::request::Drill;
use crate::aws::objects::ObjectStore;
use crate::digest::{hex, sha256};
use crate::error::{Error, Result};
use crate::pg::{quote_ident, Target};
use crate::snapshot::logical::Manifest;

/// Dumps smaller than this restore as fast with one job as with several.
pub const PARALLEL_MIN_BYTES: u64 = 32 << 20;

/// The downloaded dump, removed when dropped.
pub struct Fetched {
    pub file: tempfile::NamedTempFile,
    pub bytes: u64,
    pub sha256: String,
    pub seconds: f64,
}

/// Streams `key` into a temporary file, hashing as it arrives, and compares size and
/// SHA-256 with the manifest: `CheckFailed` naming both values on a mismatch.
pub async fn fetch(store: &dyn ObjectStore, key: &str, manifest: &Manifest) -> Result<Fetched> {
    let started = Instant::now();
    let file = tempfile::Builder::new()
        .prefix("pgsteward-drill-")
        .suffix(".dump")
        .tempfile()
        .map_err(|e| {
            Error::internal(format!(
                "cannot create a temporary file for the dump in {} ({e}); give the function more ephemeral storage",
                std::env::temp_dir().display()
            ))
        })?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file.reopen().map_err(io)?);
    let mut hasher = sha256();
    let bytes = store
        .read(key, &mut |chunk: &[u8]| {
            hasher.update(chunk);
            out.write_all(chunk).map_err(io)
        })
        .await?;
    out.flush().map_err(io)?;
    drop(out);
    let sha256 = hex(hasher.finish().as_ref());
    let location = format!("{}/{key}", store.location());
    if sha256 != manifest.sha256 {
        return Err(Error::CheckFailed(format!(
            "checksum mismatch: {location} has SHA-256 {sha256} ({bytes} bytes), its manifest says {} ({} bytes); the dump is corrupt: do not rely on it, take a new logical backup",
            manifest.sha256, manifest.size_bytes
        )));
    }
    if bytes != manifest.size_bytes {
        return Err(Error::CheckFailed(format!(
            "size mismatch: {location} is {bytes} bytes, its manifest says {}; take a new logical backup",
            manifest.size_bytes
        )));
    }
    Ok(Fetched {
        file,
        bytes,
        sha256,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn io(e: std::io::Error) -> Error {
    Error::internal(format!(
        "writing the dump to a temporary file failed: {e}; give the function more ephemeral storage"
    ))
}

fn comment(drill: &Drill, created: DateTime<Utc>) -> String {
    format!(
        "pgsteward:scratch drill={} created={}",
        drill.drill_id,
        created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// The comment's drill, when it is a drill's scratch database.
fn comment_drill(comment: &str) -> Option<&str> {
    comment
        .strip_prefix("pgsteward:scratch drill=")?
        .split(' ')
        .next()
}

/// What is on the server under the drill's database name: None (nothing), Some(comment).
async fn existing(client: &tokio_postgres::Client, name: &str) -> Result<Option<String>> {
    let rows = client
        .query(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .map_err(|e| Error::Retryable(format!("cannot look up database '{name}': {e}")))?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// The one call site that creates the scratch database. A leftover of the same drill (a
/// retried verify) is dropped first; a database of that name that is not this drill's is
/// refused (`Unsafe`).
pub async fn create_scratch(server: &Target, drill: &Drill, now: DateTime<Utc>) -> Result<()> {
    let name = drill.scratch_database();
    let client = crate::pg::connect_target(server).await?;
    match existing(&client, &name).await? {
        None => {}
        Some(c) if comment_drill(&c) == Some(drill.drill_id.as_str()) => {
            drop_database(&client, &name).await?;
        }
        Some(c) => {
            return Err(Error::Unsafe(format!(
                "database '{name}' exists and is not this drill's scratch database (its comment is {c:?}); rename or drop it, or give another drillId"
            )))
        }
    }
    let q = quote_ident(&name);
    client
        .batch_execute(&format!("CREATE DATABASE {q} TEMPLATE template0"))
        .await
        .map_err(|e| {
            Error::Retryable(format!(
                "CREATE DATABASE {q} on the verification server failed: {e}; the verification role needs CREATEDB"
            ))
        })?;
    let text = comment(drill, now).replace('\'', "''");
    client
        .batch_execute(&format!("COMMENT ON DATABASE {q} IS '{text}'"))
        .await
        .map_err(|e| Error::Retryable(format!("COMMENT ON DATABASE {q} failed: {e}")))?;
    Ok(())
}

async fn drop_database(client: &tokio_postgres::Client, name: &str) -> Result<()> {
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        ))
        .await
        .map_err(|e| {
            Error::Retryable(format!(
                "DROP DATABASE {} failed: {e}; the teardown step retries",
                quote_ident(name)
            ))
        })
}

/// The one call site that drops the scratch database: only when its comment names this
/// drill. Gone already is success (teardown is idempotent).
pub async fn drop_scratch(server: &Target, drill: &Drill, dry_run: bool) -> Result<Value> {
    let name = drill.scratch_database();
    let client = crate::pg::connect_target(server).await?;
    match existing(&client, &name).await? {
        None => Ok(json!({"database": name, "status": "absent", "note": "nothing to remove"})),
        Some(c) if comment_drill(&c) == Some(drill.drill_id.as_str()) => {
            if dry_run {
                return Ok(json!({"database": name, "status": "would drop", "dryRun": true}));
            }
            drop_database(&client, &name).await?;
            Ok(json!({"database": name, "status": "dropped"}))
        }
        Some(c) => Err(Error::Unsafe(format!(
            "database '{name}' is not this drill's scratch database (its comment is {c:?}); it was left alone"
        ))),
    }
}

/// `--jobs` for pg_restore: the cores when the dump is large enough to gain, else 1.
pub fn jobs(bytes: u64, configured: Option<u32>) -> u32 {
    if let Some(j) = configured {
        return j.max(1);
    }
    if bytes < PARALLEL_MIN_BYTES {
        return 1;
    }
    std::thread::available_parallelism()
        .map(|n| n.get().min(4) as u32)
        .unwrap_or(1)
}

/// Restores `file` into the drill's scratch database; the password reaches pg_restore
/// through its environment, never its command line.
pub async fn restore(
    pg_restore: &Path,
    server: &Target,
    drill: &Drill,
    file: &Path,
    jobs: u32,
) -> Result<Value> {
    let started = Instant::now();
    let name = drill.scratch_database();
    let mut cmd = tokio::process::Command::new(pg_restore);
    cmd.arg("--no-owner")
        .arg("--no-privileges")
        .arg("--exit-on-error")
        .arg(format!(
            "--dbname={}",
            name.replace('\\', "\\\\").replace(' ', "\\ ")
        ))
        .arg(format!("--jobs={jobs}"))
        .arg(file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(server.libpq_env())
        .env("PGDATABASE", &name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        Error::InvalidConfig(format!(
            "cannot run pg_restore ({}): {e}; install the PostgreSQL client or set PGSTEWARD_PG_RESTORE",
            pg_restore.display()
        ))
    })?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let mut text = String::new();
    let _ = stderr.read_to_string(&mut text).await;
    let status = child
        .wait()
        .await
        .map_err(|e| Error::internal(format!("waiting for pg_restore failed: {e}")))?;
    if !status.success() {
        let text = server.scrub(text);
        let last: Vec<&str> = text.lines().rev().take(5).collect();
        return Err(Error::CheckFailed(format!(
            "pg_restore into '{name}' failed ({status}): {}; the backup does not restore cleanly",
            last.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    Ok(json!({"database": name, "jobs": jobs, "seconds": started.elapsed().as_secs_f64()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_name_their_drill_and_jobs_follow_size() {
        assert_eq!(
            comment_drill("pgsteward:scratch drill=20261122-0300 created=2026-11-22T03:00:00Z"),
            Some("20261122-0300")
        );
        assert_eq!(comment_drill("customer data"), None);
        assert_eq!(jobs(1 << 20, None), 1);
        assert_eq!(jobs(1 << 20, Some(3)), 3);
    }
}
