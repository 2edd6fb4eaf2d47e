//! The logical restore drill against a real PostgreSQL, real pg_dump/pg_restore and moto:
//! a dump made by the snapshot task passes; a corrupted dump fails on its checksum; a
//! manifest whose counts disagree fails naming the tables; amcheck on every index and its
//! failure path; the CLI runs the whole drill. The snapshot drill is in backup_verify_snapshot.rs.

use std::time::Duration;

use pgsteward_core::backup_verify::{checks, Action, Drill, Kind, Request};
use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::snapshots::{bucket, id};
use pgsteward_tests::verify::{database_exists, drill_id, logical_dump, object, put_object, task};
use serde_json::{json, Value};

fn logical(drill: &str) -> Request {
    Request {
        kind: Kind::Logical,
        drill_id: Some(drill.into()),
        ..Request::default()
    }
}

/// A dump of a fresh database and a task restoring on the shared server.
async fn logical_setup() -> (
    String,
    String,
    Value,
    pgsteward_core::backup_verify::BackupVerify,
) {
    let pg = Postgres::shared();
    let bucket = bucket("verify").await;
    let dbid = id();
    let (db, manifest) = logical_dump(pg, &dbid, &bucket).await;
    let t = task(
        pg,
        &[
            ("PGSTEWARD_DATABASE_URL", &pg.admin_url(&db)),
            ("PGSTEWARD_DB_IDENTIFIER", &dbid),
            ("PGSTEWARD_BACKUP_BUCKET", &bucket),
            ("PGSTEWARD_VERIFY_DATABASE_URL", &pg.admin_url("postgres")),
        ],
    )
    .await;
    (bucket, dbid, manifest, t)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["details"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_logical_drill_restores_the_dump_checks_everything_and_marks_it_verified() {
    let pg = Postgres::shared();
    let (bucket, dbid, manifest, t) = logical_setup().await;
    let drill = drill_id();
    let report = t
        .drill(&logical(&drill), Duration::from_secs(1), 1)
        .await
        .unwrap();
    let r = serde_json::to_value(&report).unwrap();
    assert_eq!(r["details"]["outcome"], "passed", "{r:#}");
    assert_eq!(
        check(&r, "checksum")["detail"]["sha256"],
        manifest["sha256"]
    );
    let counts = check(&r, "rowCounts");
    assert_eq!(counts["passed"], true);
    // Leaf partitions are counted, as the manifest counts them.
    assert_eq!(counts["detail"]["tables"], 5);
    assert_eq!(counts["detail"]["rows"], 24000);
    // Every B-tree index: 2 primary keys, the unique email, order_items_sku and audit_at (not the GIN one).
    let amcheck = check(&r, "amcheck");
    assert_eq!(amcheck["detail"]["indexes"], 5, "{amcheck}");
    assert_eq!(amcheck["passed"], true);
    assert_eq!(check(&r, "checksumFailures")["passed"], true);
    assert!(r["details"]["rtoSeconds"].as_f64().unwrap() > 0.0);
    assert!(r["details"]["rpoMinutes"].as_f64().is_some());
    for step in ["download", "restore", "rowCounts", "amcheck"] {
        assert!(
            r["details"]["timings"][step].as_f64().is_some(),
            "{step}: {r:#}"
        );
    }
    assert_eq!(r["details"]["tagged"], true);
    assert_eq!(r["details"]["tornDown"], true);
    // The marker retention-prune keeps the newest verified dump by.
    let base = manifest["dumpKey"]
        .as_str()
        .unwrap()
        .trim_end_matches(".dump");
    let marker: Value = serde_json::from_slice(
        &object(&bucket, &format!("{base}.verified.json"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(marker["drillId"], drill);
    assert_eq!(marker["backup"]["id"], base);
    // The scratch database is gone; the evidence is in S3, as JSON and as text.
    assert!(!database_exists(pg, &format!("pgsteward_drill_{drill}")).await);
    let json_key = format!("verify-reports/{dbid}/{drill}.json");
    let stored: Value = serde_json::from_slice(&object(&bucket, &json_key).await.unwrap()).unwrap();
    assert_eq!(stored["details"]["outcome"], "passed");
    let text = String::from_utf8(
        object(&bucket, &format!("verify-reports/{dbid}/{drill}.txt"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(text.contains(": PASSED"), "{text}");
    assert!(text.contains("amcheck"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_dump_fails_on_its_checksum_and_nothing_is_restored_or_marked() {
    let pg = Postgres::shared();
    let (bucket, _dbid, manifest, t) = logical_setup().await;
    let key = manifest["dumpKey"].as_str().unwrap();
    let mut dump = object(&bucket, key).await.unwrap();
    let mid = dump.len() / 2;
    for b in &mut dump[mid..mid + 16] {
        *b ^= 0xff;
    }
    put_object(&bucket, key, dump).await;
    let drill = drill_id();
    let r = serde_json::to_value(
        t.drill(&logical(&drill), Duration::from_secs(1), 1)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r["details"]["outcome"], "failed");
    assert_eq!(r["details"]["failed"], json!(["verify"]));
    let why = r["warnings"][0].as_str().unwrap();
    assert!(why.contains("CheckFailed: checksum mismatch"), "{why}");
    assert!(why.contains(manifest["sha256"].as_str().unwrap()), "{why}");
    assert_eq!(r["details"]["tagged"], false);
    let base = key.trim_end_matches(".dump");
    assert!(object(&bucket, &format!("{base}.verified.json"))
        .await
        .is_none());
    assert!(!database_exists(pg, &format!("pgsteward_drill_{drill}")).await);
    // The Lambda's verify step: CheckFailed, which the state machine does not retry.
    let picked = t
        .run(&Request {
            action: Action::Pick,
            ..logical(&drill)
        })
        .await
        .unwrap();
    let d: Drill = serde_json::from_value(picked["drill"].clone()).unwrap();
    let e = t
        .run(&Request {
            action: Action::Verify,
            drill: Some(d),
            ..logical(&drill)
        })
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "CheckFailed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_whose_counts_disagree_fails_on_row_counts_naming_the_tables() {
    let pg = Postgres::shared();
    let (bucket, _dbid, manifest, t) = logical_setup().await;
    // The manifest is rewritten with another count for one table; its checksum still holds.
    let mut m = manifest.clone();
    for table in m["tables"].as_array_mut().unwrap() {
        if table["name"] == "customers" {
            table["rows"] = json!(3001);
        }
    }
    let key = manifest["dumpKey"]
        .as_str()
        .unwrap()
        .replace(".dump", ".manifest.json");
    put_object(&bucket, &key, serde_json::to_vec(&m).unwrap()).await;
    let drill = drill_id();
    let r = serde_json::to_value(
        t.drill(&logical(&drill), Duration::from_secs(1), 1)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r["details"]["outcome"], "failed");
    let counts = check(&r, "rowCounts");
    let why = counts["failure"].as_str().unwrap();
    assert_eq!(
        why,
        "row counts differ from the manifest in 1 table(s): public.customers (3000 rows, manifest 3001)"
    );
    assert!(
        r["warnings"][0]
            .as_str()
            .unwrap()
            .contains("public.customers"),
        "{r:#}"
    );
    assert_eq!(r["details"]["tagged"], false);
    assert_eq!(r["details"]["tornDown"], true);
    assert!(!database_exists(pg, &format!("pgsteward_drill_{drill}")).await);
}

/// amcheck's failure path, shown on the shared server without stopping it: a B-tree index
/// whose operator class's comparison function is replaced after the build by one that
/// orders the other way. The pages are intact but their order contradicts the operator
/// class, which is what `bt_index_check` verifies ("item order invariant violated").
#[tokio::test(flavor = "multi_thread")]
async fn amcheck_checks_every_b_tree_index_and_names_the_corrupt_one() {
    let pg = Postgres::shared();
    let db = pg.create_database("amcheck").await;
    let admin = pg.admin(&db).await;
    admin
        .batch_execute(
            "CREATE FUNCTION fragile_cmp(int, int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT CASE WHEN $1 < $2 THEN -1 WHEN $1 > $2 THEN 1 ELSE 0 END';
             CREATE OPERATOR CLASS fragile_ops FOR TYPE int USING btree AS
               OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 fragile_cmp(int, int);
             CREATE TABLE t (id int PRIMARY KEY, v int);
             INSERT INTO t SELECT g, g FROM generate_series(1, 5000) g;
             CREATE INDEX t_v_fragile ON t (v fragile_ops);
             CREATE INDEX t_v ON t (v);",
        )
        .await
        .unwrap();
    let (ok, _) = checks::amcheck(&admin).await.unwrap();
    assert!(ok.passed, "{ok:?}");
    assert_eq!(ok.detail["indexes"], 3);
    admin
        .batch_execute(
            "CREATE OR REPLACE FUNCTION fragile_cmp(int, int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT CASE WHEN $1 < $2 THEN 1 WHEN $1 > $2 THEN -1 ELSE 0 END'",
        )
        .await
        .unwrap();
    let (bad, _) = checks::amcheck(&admin).await.unwrap();
    assert!(!bad.passed);
    assert_eq!(bad.detail["indexes"], 3, "every index is still checked");
    let why = bad.failure.clone().unwrap();
    assert!(
        why.starts_with(
            "amcheck found corruption in 1 of 3 B-tree index(es): public.t_v_fragile: "
        ),
        "{why}"
    );
    assert!(why.contains("invariant"), "{why}");
    let e = checks::verdict(&[bad]).unwrap_err();
    assert_eq!(e.error_type(), "CheckFailed");
}

/// A source in moto with a managed snapshot, a local database standing in for what the
/// snapshot holds, and the drill's pick, restore and wait done through moto.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_runs_the_whole_drill_and_exits_1_when_it_fails() {
    let pg = Postgres::shared();
    let bucket = bucket("verify-cli").await;
    let dbid = id();
    let (db, manifest) = logical_dump(pg, &dbid, &bucket).await;
    let run = |format: &str| {
        std::process::Command::new(pgsteward_tests::workspace_binary("pgsteward"))
            .args([
                "backup-verify",
                "--kind",
                "logical",
                "--bucket",
                &bucket,
                "--format",
                format,
            ])
            .args(["--database-url", &pg.admin_url(&db)])
            .args(["--verify-database-url", &pg.admin_url("postgres")])
            .env("PGSTEWARD_DB_IDENTIFIER", &dbid)
            .env("PGSTEWARD_CA_BUNDLE", &pg.ca)
            .envs(Moto::shared().env())
            .output()
            .unwrap()
    };
    let out = run("table");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("backup-verify logical for {dbid}: PASSED")),
        "{text}"
    );
    assert!(
        text.contains("backup tagged verified: yes; scratch removed: yes"),
        "{text}"
    );
    // The same dump with a flipped byte: the report, then the failure, exit 1.
    let key = manifest["dumpKey"].as_str().unwrap();
    let mut dump = object(&bucket, key).await.unwrap();
    dump[100] ^= 1;
    put_object(&bucket, key, dump).await;
    let out = run("json");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(report["details"]["outcome"], "failed", "{text}");
    assert!(text.contains("checksum mismatch"), "{text}");
}
