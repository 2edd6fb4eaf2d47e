//! Archive-then-delete of old rows on a real PostgreSQL and moto's S3: rows older than the
//! cutoff end up in S3 (read back and counted) and gone from the table; a failing S3 leaves
//! the failed batch's rows in place; a rerun finishes; archived rows equal removed rows.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, Utc};
use pgsteward_tests::faulty_aws::{failing_proxy, Fault};
use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::retention::{keys, task, task_at};
use pgsteward_tests::snapshots::{bucket, s3};
use serde_json::{json, Value};

const RULES: &str = r#"[
  {"table":"public.audit_events","column":"created_at","olderThanDays":90},
  {"table":"public.workflows","column":"updated_at","olderThanDays":30,
   "where":"status IN ('completed','failed')","archive":false}
]"#;

/// 30,000 audit rows over 200 days, with commas, quotes and newlines in them; 1,000 workflows.
async fn orders_db(pg: &Postgres) -> String {
    let db = pg.create_database("archive").await;
    pg.admin(&db)
        .await
        .batch_execute(
            "CREATE TABLE audit_events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, note text);
             INSERT INTO audit_events
               SELECT g, now() - (g % 200) * interval '1 day' - interval '1 hour',
                      CASE WHEN g % 7 = 0 THEN E'line one\\nline \"two\", three' ELSE 'ok' END
               FROM generate_series(1, 30000) g;
             CREATE TABLE workflows (id int PRIMARY KEY, status text, updated_at timestamptz);
             INSERT INTO workflows
               SELECT g, (ARRAY['completed','failed','running'])[g % 3 + 1], now() - (g % 60) * interval '1 day'
               FROM generate_series(1, 1000) g;",
        )
        .await
        .unwrap();
    db
}

async fn count(pg: &Postgres, db: &str, sql: &str) -> i64 {
    pg.admin(db).await.query_one(sql, &[]).await.unwrap().get(0)
}

const OLD_AUDIT: &str =
    "SELECT count(*) FROM audit_events WHERE created_at < now() - interval '90 days'";
const OLD_DONE: &str = "SELECT count(*) FROM workflows WHERE status <> 'running' AND updated_at < now() - interval '30 days'";

async fn object(bucket: &str, key: &str) -> Vec<u8> {
    let out = s3()
        .await
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// The ids (first column) of every record in a gzip CSV archive with a header.
fn archived_ids(gz: &[u8]) -> Vec<i64> {
    let mut csv = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut csv)
        .unwrap();
    let (mut ids, mut field, mut in_quotes, mut first) = (vec![], String::new(), false, true);
    let mut start = true;
    for c in csv.chars() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes && start => {
                if !first {
                    ids.push(field.parse().unwrap());
                }
                start = false;
            }
            '\n' if !in_quotes => {
                first = false;
                start = true;
                field.clear();
            }
            _ if start => field.push(c),
            _ => {}
        }
    }
    ids
}

/// Every archived id in the run manifests under `prefix`, and the rows the manifests claim.
async fn archived(bucket: &str, prefix: &str) -> (Vec<i64>, u64) {
    let (mut ids, mut claimed) = (vec![], 0);
    for m in keys(bucket, &format!("{prefix}/manifests/")).await {
        let manifest: Value = serde_json::from_slice(&object(bucket, &m).await).unwrap();
        for o in manifest["objects"].as_array().unwrap() {
            let got = archived_ids(&object(bucket, o["key"].as_str().unwrap()).await);
            assert_eq!(got.len() as u64, o["rows"].as_u64().unwrap());
            claimed += o["rows"].as_u64().unwrap();
            ids.extend(got);
        }
    }
    (ids, claimed)
}

#[tokio::test(flavor = "multi_thread")]
async fn old_rows_are_archived_counted_and_deleted_and_a_dry_run_changes_nothing() {
    let pg = Postgres::shared();
    let db = orders_db(pg).await;
    let bucket = bucket("archive").await;
    let url = pg.admin_url(&db);
    let vars = [
        ("PGSTEWARD_DATABASE_URL", url.as_str()),
        ("PGSTEWARD_DB_IDENTIFIER", "orders"),
        ("PGSTEWARD_BACKUP_BUCKET", bucket.as_str()),
        ("PGSTEWARD_ARCHIVE_RULES", RULES),
        ("PGSTEWARD_ARCHIVE_BATCH_ROWS", "4000"),
    ];
    let old = count(pg, &db, OLD_AUDIT).await;
    let done = count(pg, &db, OLD_DONE).await;
    assert!(old > 10_000 && done > 100);

    let dry = task(&vars, Utc::now())
        .await
        .handle(json!({"scope": "rows", "dryRun": true}), None)
        .await
        .unwrap();
    assert_eq!(dry["done"][0]["action"], "would-archive-and-delete");
    assert_eq!(dry["done"][0]["detail"]["rows"], old);
    assert_eq!(dry["done"][1]["detail"]["rows"], done);
    assert_eq!(
        count(pg, &db, OLD_AUDIT).await,
        old,
        "a dry run deletes nothing"
    );
    assert!(keys(&bucket, "archive/").await.is_empty());

    let report = task(&vars, Utc::now())
        .await
        .handle(
            json!({"scope": "rows", "scheduledTime": "2026-11-22T04:00:00Z"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(count(pg, &db, OLD_AUDIT).await, 0, "{report}");
    assert_eq!(
        count(pg, &db, "SELECT count(*) FROM audit_events").await,
        30_000 - old
    );
    assert_eq!(count(pg, &db, OLD_DONE).await, 0);
    assert_eq!(
        count(
            pg,
            &db,
            "SELECT count(*) FROM workflows WHERE status = 'running'"
        )
        .await,
        333,
        "rows outside the rule's condition stay"
    );
    let (mut ids, claimed) = archived(&bucket, "archive/orders").await;
    assert_eq!(claimed as i64, old);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as i64, old, "every removed row is archived once");
    let still_there = count(
        pg,
        &db,
        &format!("SELECT count(*) FROM audit_events WHERE id = ANY(ARRAY{ids:?}::int8[])"),
    )
    .await;
    assert_eq!(still_there, 0);
    let objects = keys(&bucket, "archive/orders/public.audit_events/2026/11/22/").await;
    assert!(
        objects.len() >= 2,
        "batches of about 4,000 rows: {objects:?}"
    );
    assert!(objects[0].ends_with("20261122-0400-00001.csv.gz"));
    assert_eq!(report["done"][0]["detail"]["vacuumed"], true);
}

static PUTS: AtomicUsize = AtomicUsize::new(0);

/// S3 accepts the first two archive objects and then fails every write.
fn third_archive_fails(method: &str, path: &str) -> Fault {
    if method == "PUT" && path.contains(".csv.gz") && PUTS.fetch_add(1, Ordering::SeqCst) >= 2 {
        Fault::Fail
    } else {
        Fault::Pass
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_s3_keeps_the_batch_rows_and_a_rerun_finishes() {
    let pg = Postgres::shared();
    let db = orders_db(pg).await;
    let bucket = bucket("archive-fault").await;
    let url = pg.admin_url(&db);
    let rules = r#"[{"table":"public.audit_events","column":"created_at","olderThanDays":90}]"#;
    let vars = [
        ("PGSTEWARD_DATABASE_URL", url.as_str()),
        ("PGSTEWARD_DB_IDENTIFIER", "orders"),
        ("PGSTEWARD_BACKUP_BUCKET", bucket.as_str()),
        ("PGSTEWARD_ARCHIVE_RULES", rules),
        ("PGSTEWARD_ARCHIVE_BATCH_ROWS", "3000"),
    ];
    let old = count(pg, &db, OLD_AUDIT).await;
    let proxy = failing_proxy(&Moto::shared().endpoint, third_archive_fails).await;
    let event = json!({"scope": "rows", "scheduledTime": "2026-11-22T04:00:00Z"});
    let err = task_at(&proxy, &vars, Utc::now())
        .await
        .handle(event.clone(), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("archive/orders/public.audit_events"),
        "{err}"
    );
    // Two batches committed; the third rolled back with S3's refusal: every row gone from
    // the table is in an archive a manifest lists, and the rest are still there.
    let (ids, claimed) = archived(&bucket, "archive/orders").await;
    assert_eq!(PUTS.load(Ordering::SeqCst) >= 3, true);
    assert!(claimed > 0 && (claimed as i64) < old, "{claimed} of {old}");
    assert_eq!(ids.len() as u64, claimed);
    assert_eq!(count(pg, &db, OLD_AUDIT).await, old - claimed as i64);

    let report = task(&vars, Utc::now() + Duration::seconds(1))
        .await
        .handle(event, None)
        .await
        .unwrap();
    assert_eq!(count(pg, &db, OLD_AUDIT).await, 0, "{report}");
    let (mut ids, claimed) = archived(&bucket, "archive/orders").await;
    assert_eq!(claimed as i64, old);
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len() as i64,
        old,
        "archived rows equal removed rows, none twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_larger_than_a_part_goes_up_in_parts() {
    let pg = Postgres::shared();
    let db = pg.create_database("archive_big").await;
    // Hex does not compress much: ~13 MB of CSV is more than one 5 MiB part of gzip.
    pg.admin(&db)
        .await
        .batch_execute(
            "CREATE TABLE events (id bigint, at timestamptz, payload text);
             INSERT INTO events SELECT g, now() - interval '100 days',
                 md5(g || 'a') || md5(g || 'b') || md5(g || 'c') || md5(g || 'd')
               FROM generate_series(1, 100000) g;",
        )
        .await
        .unwrap();
    let bucket = bucket("archive-big").await;
    let url = pg.admin_url(&db);
    let vars = [
        ("PGSTEWARD_DATABASE_URL", url.as_str()),
        ("PGSTEWARD_DB_IDENTIFIER", "events-db"),
        ("PGSTEWARD_BACKUP_BUCKET", bucket.as_str()),
        (
            "PGSTEWARD_ARCHIVE_RULES",
            r#"[{"table":"events","column":"at","olderThanDays":30}]"#,
        ),
        ("PGSTEWARD_ARCHIVE_BATCH_ROWS", "100000"),
        ("PGSTEWARD_PART_SIZE_MIB", "5"),
    ];
    let report = task(&vars, Utc::now())
        .await
        .handle(json!({"scope": "rows"}), None)
        .await
        .unwrap();
    let objects = report["details"]["archived"].as_array().unwrap();
    let rows: u64 = objects.iter().map(|o| o["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, 100_000, "{report}");
    let big = objects
        .iter()
        .find(|o| o["bytes"].as_u64().unwrap() > 5 * 1024 * 1024)
        .unwrap_or_else(|| panic!("no batch outgrew a 5 MiB part: {report}"));
    let gz = object(&bucket, big["key"].as_str().unwrap()).await;
    assert_eq!(gz.len() as u64, big["bytes"].as_u64().unwrap());
    let sha: String = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&gz))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        sha,
        big["sha256"].as_str().unwrap(),
        "the manifest's checksum is the object's"
    );
    assert_eq!(
        archived_ids(&gz).len() as u64,
        big["rows"].as_u64().unwrap()
    );
    assert_eq!(count(pg, &db, "SELECT count(*) FROM events").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_another_session_holds_are_left_for_the_next_run() {
    let pg = Postgres::shared();
    let db = orders_db(pg).await;
    let bucket = bucket("archive-locked").await;
    let url = pg.admin_url(&db);
    let vars = [
        ("PGSTEWARD_DATABASE_URL", url.as_str()),
        ("PGSTEWARD_DB_IDENTIFIER", "orders"),
        ("PGSTEWARD_BACKUP_BUCKET", bucket.as_str()),
        (
            "PGSTEWARD_ARCHIVE_RULES",
            r#"[{"table":"public.audit_events","column":"created_at","olderThanDays":90}]"#,
        ),
        ("PGSTEWARD_ARCHIVE_BATCH_ROWS", "2000"),
        ("PGSTEWARD_LOCK_TIMEOUT_MS", "200"),
    ];
    let old = count(pg, &db, OLD_AUDIT).await;
    let holder = pg.admin(&db).await;
    holder
        .batch_execute(
            "BEGIN; SELECT * FROM audit_events WHERE created_at < now() - interval '150 days' ORDER BY id LIMIT 1 FOR UPDATE",
        )
        .await
        .unwrap();
    let report = task(&vars, Utc::now())
        .await
        .handle(json!({"scope": "rows"}), None)
        .await
        .unwrap();
    assert!(
        report["skipped"].to_string().contains("lock_timeout"),
        "{report}"
    );
    let left = count(pg, &db, OLD_AUDIT).await;
    assert!(left > 0 && left < old / 4, "{left} of {old} left");
    let (_, claimed) = archived(&bucket, "archive/orders").await;
    assert_eq!(
        claimed as i64,
        old - left,
        "archived rows equal removed rows"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    task(&vars, Utc::now() + Duration::seconds(1))
        .await
        .handle(json!({"scope": "rows"}), None)
        .await
        .unwrap();
    assert_eq!(count(pg, &db, OLD_AUDIT).await, 0);
    let (_, claimed) = archived(&bucket, "archive/orders").await;
    assert_eq!(claimed as i64, old);
}
