//! Logical backups against a real PostgreSQL and pg_dump, with S3 on moto (directly or
//! through a faulting proxy).

use std::sync::Arc;

use pgsteward_core::aws::objects::S3Objects;
use pgsteward_core::aws::rds_snapshots::SdkRdsSnapshots;
use pgsteward_core::snapshot::{SnapshotConfig, SnapshotTask};
use pgsteward_tests::faulty_aws::Fault;
use pgsteward_tests::fixtures::{env, moto_deps};
use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::snapshots::{bucket, s3, task};
use serde_json::{json, Value};
use sha2::Digest;

async fn object(bucket: &str, key: &str) -> Option<Vec<u8>> {
    let out = s3()
        .await
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(out.body.collect().await.unwrap().into_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_logical_backup_is_streamed_checksummed_and_counted_in_its_own_snapshot() {
    let pg = Postgres::shared();
    let db = pg.create_database("dump").await;
    let admin = pg.admin(&db).await;
    admin
        .batch_execute(
            r#"CREATE SCHEMA "Sales"; CREATE TABLE "Sales"."Order Items" (id serial PRIMARY KEY, note text);
               INSERT INTO "Sales"."Order Items" (note) SELECT md5(g::text) FROM generate_series(1, 600000) g;
               CREATE TABLE events (id serial PRIMARY KEY, payload text);"#,
        )
        .await
        .unwrap();
    // Another session keeps inserting while the dump runs.
    let writer = pg.admin(&db).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_writer = stop.clone();
    let inserting = tokio::spawn(async move {
        while !stop_writer.load(std::sync::atomic::Ordering::SeqCst) {
            if writer.batch_execute("INSERT INTO events (payload) SELECT md5(random()::text) FROM generate_series(1, 50)").await.is_err() {
                break;
            }
        }
    });
    let bucket = bucket("backups").await;
    let url = pg.admin_url(&db);
    let task = task(&[
        ("PGSTEWARD_DATABASE_URL", &url),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-prod"),
        ("PGSTEWARD_BACKUP_BUCKET", &bucket),
        ("PGSTEWARD_PART_SIZE_MIB", "5"),
    ])
    .await;
    let event = json!({"action": "logical-backup", "scheduledTime": "2026-11-22T02:30:00Z"});
    let report = task.handle(event.clone(), None).await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    inserting.await.unwrap();
    let manifest: Value = report["details"]["manifest"].clone();
    let key = manifest["dumpKey"].as_str().unwrap().to_string();
    assert_eq!(
        key,
        "pgsteward/orders-prod/2026/11/22/orders-prod-20261122-0230.dump"
    );
    let dump = object(&bucket, &key).await.expect("the dump object");
    assert_eq!(dump.len() as u64, manifest["sizeBytes"].as_u64().unwrap());
    assert!(manifest["parts"].as_u64().unwrap() >= 2, "{manifest}");
    let sha: String = sha2::Sha256::digest(&dump)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha, manifest["sha256"].as_str().unwrap());
    let stored: Value = serde_json::from_slice(
        &object(&bucket, &key.replace(".dump", ".manifest.json"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored, manifest);

    // Restore it: every table has exactly the rows the manifest says.
    let restored = pg.create_database("restored").await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &dump).unwrap();
    let out = std::process::Command::new("pg_restore")
        .args([
            "--no-owner",
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-d",
            &restored,
        ])
        .arg(file.path())
        .env("PGPASSWORD", &pg.superuser_password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = pg.admin(&restored).await;
    for t in manifest["tables"].as_array().unwrap() {
        let sql = format!(
            "SELECT count(*) FROM {}",
            pgsteward_core::pg::quote_qualified(
                t["schema"].as_str().unwrap(),
                t["name"].as_str().unwrap()
            )
        );
        let n: i64 = check.query_one(&sql, &[]).await.unwrap().get(0);
        assert_eq!(n, t["rows"].as_i64().unwrap(), "{t}");
    }

    // The same slot again: found, not dumped twice.
    let again = task.handle(event, None).await.unwrap();
    assert!(again["done"].as_array().unwrap().is_empty());
    assert!(again["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("exists already"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_killed_mid_stream_leaves_nothing_behind() {
    let pg = Postgres::shared();
    let db = pg.create_database("dump_killed").await;
    pg.admin(&db)
        .await
        .batch_execute(
            "CREATE TABLE big AS SELECT g, md5(g::text) FROM generate_series(1, 300000) g",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pg_dump");
    // The real pg_dump, cut off after 6 MB as if killed.
    std::fs::write(
        &script,
        "#!/bin/sh\npg_dump \"$@\" | head -c 6000000\nexit 137\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let bucket = bucket("killed").await;
    let url = pg.admin_url(&db);
    let task = task(&[
        ("PGSTEWARD_DATABASE_URL", &url),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-prod"),
        ("PGSTEWARD_BACKUP_BUCKET", &bucket),
        ("PGSTEWARD_PART_SIZE_MIB", "5"),
        ("PGSTEWARD_PG_DUMP", script.to_str().unwrap()),
    ])
    .await;
    let err = task
        .handle(json!({"action": "logical-backup"}), None)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Retryable");
    assert!(err.to_string().contains("pg_dump failed"), "{err}");
    let listed = s3()
        .await
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.key_count(),
        Some(0),
        "objects left: {:?}",
        listed.contents()
    );
    let uploads = s3()
        .await
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "the multipart upload was not aborted"
    );
}

/// A logical backup of a 400,000-row table whose S3 traffic goes through a proxy that
/// injects `fault`; returns the error and the bucket (reached directly) to inspect.
async fn backup_through(
    prefix: &str,
    fault: fn(&str, &str) -> Fault,
) -> (pgsteward_core::Error, String) {
    let pg = Postgres::shared();
    let db = pg.create_database(prefix).await;
    pg.admin(&db)
        .await
        .batch_execute("CREATE TABLE big AS SELECT g, md5(g::text) AS a, md5((g * 3)::text) AS b FROM generate_series(1, 400000) g")
        .await
        .unwrap();
    let bucket = bucket(prefix).await;
    let proxy = pgsteward_tests::faulty_aws::failing_proxy(&Moto::shared().endpoint, fault).await;
    let config = SnapshotConfig::from_env(&env(&[
        ("PGSTEWARD_DATABASE_URL", &pg.admin_url(&db)),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-prod"),
        ("PGSTEWARD_BACKUP_BUCKET", &bucket),
        ("PGSTEWARD_PART_SIZE_MIB", "5"),
    ]))
    .unwrap();
    let retry = aws_config::retry::RetryConfig::standard()
        .with_initial_backoff(std::time::Duration::from_millis(10));
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(retry)
        .load()
        .await;
    let store = Arc::new(S3Objects::new(&sdk, bucket.clone(), None));
    let task = SnapshotTask::new(
        config,
        moto_deps(None).await,
        Arc::new(SdkRdsSnapshots::new(&sdk)),
        Some(store),
    );
    (
        task.handle(json!({"action": "logical-backup"}), None)
            .await
            .unwrap_err(),
        bucket,
    )
}

async fn objects_in(bucket: &str) -> i32 {
    s3().await
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .key_count()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_part_that_keeps_failing_aborts_the_upload_and_writes_no_manifest() {
    // Part 2 of any upload fails with 500 every time; everything else reaches moto.
    let (err, bucket) = backup_through("s3fault", |method, path| {
        if method == "PUT" && path.contains("partNumber=2") {
            Fault::Fail
        } else {
            Fault::Pass
        }
    })
    .await;
    assert!(err.to_string().contains("upload part 2"), "{err}");
    assert_eq!(objects_in(&bucket).await, 0);
    let uploads = s3()
        .await
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "the multipart upload was not aborted"
    );
}

/// Once set, the proxy drops every request: the emulator has gone away.
static GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[tokio::test(flavor = "multi_thread")]
async fn the_object_store_going_away_mid_dump_is_a_clear_error_and_no_manifest() {
    let (err, bucket) = backup_through("gone", |method, path| {
        if method == "PUT" && path.contains("partNumber=2") {
            GONE.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if GONE.load(std::sync::atomic::Ordering::SeqCst) {
            Fault::Drop
        } else {
            Fault::Pass
        }
    })
    .await;
    assert_eq!(err.error_type(), "Retryable", "{err}");
    // Neither the dump nor its manifest became visible (the upload is left to the lifecycle rule).
    assert_eq!(objects_in(&bucket).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_still_running_at_the_lambda_deadline_is_stopped_and_leaves_nothing() {
    let pg = Postgres::shared();
    let db = pg.create_database("dump_deadline").await;
    pg.admin(&db)
        .await
        .batch_execute("CREATE TABLE big AS SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
        .await
        .unwrap();
    // Another session holds the table: pg_dump waits for its lock and prints nothing, so
    // only the deadline can end the run. The lock goes after two minutes, so a regression
    // fails (the dump completes) instead of hanging.
    let locker = pg.admin(&db).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE big IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
        drop(locker);
    });
    let bucket = bucket("deadline").await;
    let url = pg.admin_url(&db);
    let task = task(&[
        ("PGSTEWARD_DATABASE_URL", &url),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-prod"),
        ("PGSTEWARD_BACKUP_BUCKET", &bucket),
        ("PGSTEWARD_PART_SIZE_MIB", "5"),
    ])
    .await;
    // The task stops 20 s before the deadline: here, 2 s from now.
    let deadline = chrono::Utc::now() + chrono::Duration::seconds(22);
    let err = task
        .handle(json!({"action": "logical-backup"}), Some(deadline))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Retryable", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("Lambda deadline") && msg.contains("nothing was kept"),
        "{msg}"
    );
    assert!(
        msg.contains("waiting for a lock") && msg.contains("Fargate"),
        "{msg}"
    );
    assert_eq!(objects_in(&bucket).await, 0, "neither dump nor manifest");
    let uploads = s3()
        .await
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "the multipart upload was not aborted"
    );
    // pg_dump was killed: nothing is left waiting on the lock.
    let admin = pg.admin("postgres").await;
    let mut waiting = -1;
    for _ in 0..100 {
        waiting = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&db],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(waiting, 0, "pg_dump still waits on the lock");
    release.abort();
}
