//! The snapshot drill against moto with the endpoint override to the real PostgreSQL:
//! restore scratch, verify, tag the snapshot, tear down; a failed teardown keeps the tags;
//! teardown never touches what the drill did not create; dry run; counts against a dump.

use std::time::Duration;

use pgsteward_core::backup_verify::{Action, Drill, Kind, Request};
use pgsteward_tests::faulty_aws::refusing_proxy;
use pgsteward_tests::fixtures::rds_secret;
use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::restore::{
    endpoint, instances, override_to_local, source, subnet_group, RDS_WRITES,
};
use pgsteward_tests::snapshots::{bucket, id};
use pgsteward_tests::verify::{
    database_exists, drill_id, managed_snapshot, put_object, snapshot_tags, task, task_at,
};
use serde_json::{json, Value};

struct SnapshotDrill {
    src: String,
    snapshot: String,
    secret: String,
    subnets: String,
    drill: Drill,
    wait: Value,
}

async fn snapshot_drill() -> SnapshotDrill {
    let pg = Postgres::shared();
    let db = pg.create_database("scratch").await;
    pgsteward_tests::restore::table_with_rows(pg, &db, "orders", 1200).await;
    let secret = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    let src = id();
    source(&src).await;
    let snapshot = managed_snapshot(&src).await;
    let subnets = subnet_group().await;
    let vars = [
        ("PGSTEWARD_DB_SECRET_ARN", secret.as_str()),
        ("PGSTEWARD_DB_IDENTIFIER", src.as_str()),
        ("PGSTEWARD_RESTORE_SUBNET_GROUP", subnets.as_str()),
        ("PGSTEWARD_RESTORE_SECURITY_GROUPS", "sg-0123456789abcdef0"),
    ];
    let t = task(pg, &vars).await;
    let base = Request {
        kind: Kind::Snapshot,
        drill_id: Some(drill_id()),
        ..Request::default()
    };
    let picked = t
        .run(&Request {
            action: Action::Pick,
            ..base.clone()
        })
        .await
        .unwrap();
    let drill: Drill = serde_json::from_value(picked["drill"].clone()).unwrap();
    assert_eq!(drill.backup.id, snapshot);
    let restored = t
        .run(&Request {
            action: Action::RestoreScratch,
            drill: Some(drill.clone()),
            ..base.clone()
        })
        .await
        .unwrap();
    assert!(restored.get("restored").is_some(), "{restored}");
    // A repeated delivery finds its own scratch instance.
    let again = t
        .run(&Request {
            action: Action::RestoreScratch,
            drill: Some(drill.clone()),
            ..base.clone()
        })
        .await
        .unwrap();
    assert_eq!(again["note"], "restored already by this drill");
    let wait = t
        .run(&Request {
            action: Action::WaitScratch,
            drill: Some(drill.clone()),
            ..base
        })
        .await
        .unwrap();
    assert_eq!(wait["available"], true, "{wait}");
    SnapshotDrill {
        src,
        snapshot,
        secret,
        subnets,
        drill,
        wait,
    }
}

impl SnapshotDrill {
    fn vars<'a>(&'a self, over: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("PGSTEWARD_DB_SECRET_ARN", self.secret.as_str()),
            ("PGSTEWARD_DB_IDENTIFIER", self.src.as_str()),
            ("PGSTEWARD_RESTORE_SUBNET_GROUP", self.subnets.as_str()),
            ("PGSTEWARD_RESTORE_SECURITY_GROUPS", "sg-0123456789abcdef0"),
            ("PGSTEWARD_ENDPOINT_OVERRIDE", over),
        ]
    }

    fn step(&self, action: Action, results: Value) -> Request {
        Request {
            action,
            kind: Kind::Snapshot,
            drill: Some(self.drill.clone()),
            results: Some(serde_json::from_value(results).unwrap()),
            ..Request::default()
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_drill_restores_scratch_verifies_tags_the_snapshot_and_tears_down() {
    let pg = Postgres::shared();
    let _rds = RDS_WRITES.lock().await;
    let s = snapshot_drill().await;
    let scratch = s.drill.scratch_instance();
    let tags = pgsteward_tests::restore::describe(&scratch).await;
    let tag = |k: &str| {
        tags.tag_list()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    assert_eq!(tag("pgsteward:scratch").as_deref(), Some("true"));
    assert_eq!(tag("pgsteward:drill"), Some(s.drill.drill_id.clone()));
    assert!(tag("pgsteward:expires").is_some());
    let over = override_to_local(pg, &endpoint(&scratch).await);
    let t = task(pg, &s.vars(&over)).await;
    let verify = t
        .run(&s.step(Action::Verify, json!({"waitScratch": s.wait})))
        .await
        .unwrap();
    assert_eq!(verify["passed"], true, "{verify:#}");
    let counts = verify["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "rowCounts")
        .unwrap();
    assert_eq!(counts["detail"]["rows"], 1200, "{counts}");
    let amcheck = verify["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "amcheck")
        .unwrap();
    assert_eq!(amcheck["detail"]["indexes"], 1);
    // Tagging needs a passing verify.
    let refused = t
        .run(&s.step(Action::TagVerified, json!({})))
        .await
        .unwrap_err();
    assert_eq!(refused.error_type(), "Unsafe");
    assert!(!snapshot_tags(&s.snapshot)
        .await
        .iter()
        .any(|(k, _)| k == "pgsteward:verified"));
    t.run(&s.step(Action::TagVerified, json!({"verify": verify})))
        .await
        .unwrap();
    let verified = snapshot_tags(&s.snapshot).await;
    let at = verified
        .iter()
        .find(|(k, _)| k == "pgsteward:verified")
        .map(|(_, v)| v.clone());
    assert!(
        at.as_deref()
            .is_some_and(|v| chrono::DateTime::parse_from_rfc3339(v).is_ok()),
        "{verified:?}"
    );
    let torn = t.run(&s.step(Action::Teardown, json!({}))).await.unwrap();
    assert_eq!(torn["removed"][0]["status"], "deleted", "{torn}");
    assert!(!instances().await.contains(&scratch));
    // Idempotent: nothing left to remove.
    let again = t.run(&s.step(Action::Teardown, json!({}))).await.unwrap();
    assert_eq!(again["status"], "absent");
    let report = t
        .run(&s.step(
            Action::Report,
            json!({"verify": verify, "tagVerified": {"tagged": s.snapshot}, "teardown": torn}),
        ))
        .await
        .unwrap();
    assert_eq!(report["details"]["outcome"], "passed", "{report:#}");
    assert_eq!(report["details"]["tagged"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_teardown_is_reported_and_the_scratch_instance_keeps_its_tags() {
    let pg = Postgres::shared();
    let _rds = RDS_WRITES.lock().await;
    let s = snapshot_drill().await;
    let scratch = s.drill.scratch_instance();
    let proxy = refusing_proxy(&Moto::shared().endpoint, "DeleteDBInstance").await;
    let t = task_at(&proxy, pg, &s.vars("")).await;
    let e = t
        .run(&s.step(Action::Teardown, json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable");
    assert!(
        e.to_string()
            .contains(&format!("deleting scratch '{scratch}' failed")),
        "{e}"
    );
    assert!(e.to_string().contains("retention-prune removes it"), "{e}");
    let left = pgsteward_tests::restore::describe(&scratch).await;
    assert!(left
        .tag_list()
        .iter()
        .any(|t| t.key() == Some("pgsteward:scratch") && t.value() == Some("true")));
    let report = t
        .run(&s.step(
            Action::Report,
            json!({"teardown": {"Error": e.error_type(), "Cause": e.to_string()}}),
        ))
        .await
        .unwrap();
    assert_eq!(report["details"]["tornDown"], false);
    assert_eq!(report["details"]["outcome"], "failed");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("teardown failed: Retryable"),
        "{warnings}"
    );
    // The sweeper's (or a retry's) way: moto directly.
    let direct = task(pg, &s.vars("")).await;
    direct
        .run(&s.step(Action::Teardown, json!({})))
        .await
        .unwrap();
    assert!(!instances().await.contains(&scratch));
}

#[tokio::test(flavor = "multi_thread")]
async fn teardown_never_touches_an_instance_without_the_drills_tag() {
    let pg = Postgres::shared();
    let _rds = RDS_WRITES.lock().await;
    // An instance that happens to have the scratch name but is not this drill's.
    let drill = drill_id();
    let name = format!("pgsteward-drill-{drill}");
    source(&name).await;
    let secret = rds_secret(pg, "postgres", &pg.superuser_password, "postgres").await;
    let t = task(
        pg,
        &[
            ("PGSTEWARD_DB_SECRET_ARN", &secret),
            ("PGSTEWARD_DB_IDENTIFIER", "orders-prod"),
        ],
    )
    .await;
    let d = Drill {
        drill_id: drill.clone(),
        kind: Kind::Snapshot,
        backup: pgsteward_core::backup_verify::request::Backup {
            id: "pgsteward-orders-prod-20261122-0200".into(),
            taken_at: chrono::Utc::now(),
            dump_key: None,
            manifest_key: None,
            arn: None,
        },
        started_at: chrono::Utc::now(),
        rpo_minutes: 1.0,
    };
    let step = |action| Request {
        action,
        kind: Kind::Snapshot,
        drill: Some(d.clone()),
        ..Request::default()
    };
    let e = t.run(&step(Action::Teardown)).await.unwrap_err();
    assert_eq!(e.error_type(), "Unsafe");
    assert!(
        e.to_string()
            .contains("never deletes what this drill did not create"),
        "{e}"
    );
    let e = t.run(&step(Action::RestoreScratch)).await.unwrap_err();
    assert_eq!(e.error_type(), "Unsafe");
    assert!(instances().await.contains(&name));
    // Nor a database of the scratch name without this drill's comment.
    let logical_drill = Drill {
        kind: Kind::Logical,
        ..d.clone()
    };
    let dbname = logical_drill.scratch_database();
    pg.admin("postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE \"{dbname}\""))
        .await
        .unwrap();
    let url = pg.admin_url("postgres");
    let lt = task(pg, &[("PGSTEWARD_DATABASE_URL", &url)]).await;
    let e = lt
        .run(&Request {
            action: Action::Teardown,
            kind: Kind::Logical,
            drill: Some(logical_drill),
            ..Request::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Unsafe");
    assert!(database_exists(pg, &dbname).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_drill_dry_run_shows_the_restore_and_changes_nothing() {
    let pg = Postgres::shared();
    let _rds = RDS_WRITES.lock().await;
    let src = id();
    source(&src).await;
    let snapshot = managed_snapshot(&src).await;
    let before = instances().await;
    let secret = rds_secret(pg, "postgres", &pg.superuser_password, "postgres").await;
    let t = task(
        pg,
        &[
            ("PGSTEWARD_DB_SECRET_ARN", &secret),
            ("PGSTEWARD_DB_IDENTIFIER", &src),
        ],
    )
    .await;
    let req = Request {
        kind: Kind::Snapshot,
        dry_run: true,
        drill_id: Some(drill_id()),
        ..Request::default()
    };
    let r = serde_json::to_value(t.drill(&req, Duration::from_secs(1), 1).await.unwrap()).unwrap();
    assert_eq!(r["details"]["outcome"], "passed", "{r:#}");
    assert_eq!(r["dryRun"], true);
    let planned = &r["done"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["action"] == "restoreScratch")
        .unwrap()["detail"];
    assert_eq!(planned["wouldRestore"]["snapshot"], snapshot, "{planned}");
    assert_eq!(instances().await, before);
    assert!(!snapshot_tags(&snapshot)
        .await
        .iter()
        .any(|(k, _)| k == "pgsteward:verified"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_drill_reports_differences_from_the_latest_dump_without_failing() {
    let pg = Postgres::shared();
    let _rds = RDS_WRITES.lock().await;
    let s = snapshot_drill().await;
    let scratch = s.drill.scratch_instance();
    let bucket = bucket("verify-snap").await;
    let base = format!("pgsteward/{0}/2026/11/22/{0}-20261122-0230", s.src);
    let manifest = json!({
        "format": "pgsteward-logical-backup/1", "dbIdentifier": s.src, "database": "orders",
        "serverVersion": "15.18", "scheduledTime": "2026-11-22T02:30:00Z",
        "startedAt": "2026-11-22T02:30:01Z", "finishedAt": "2026-11-22T02:31:00Z",
        "dumpKey": format!("{base}.dump"), "sizeBytes": 1, "sha256": "00", "parts": 1,
        "tables": [{"schema": "public", "name": "orders", "rows": 1000}]
    });
    put_object(&bucket, &format!("{base}.dump"), vec![0]).await;
    put_object(
        &bucket,
        &format!("{base}.manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .await;
    let over = override_to_local(pg, &endpoint(&scratch).await);
    let mut vars = s.vars(&over);
    vars.push(("PGSTEWARD_BACKUP_BUCKET", &bucket));
    let t = task(pg, &vars).await;
    let verify = t
        .run(&s.step(Action::Verify, json!({"waitScratch": s.wait})))
        .await
        .unwrap();
    assert_eq!(verify["passed"], true, "{verify:#}");
    let counts = verify["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "rowCounts")
        .unwrap();
    assert_eq!(counts["detail"]["comparedWith"], format!("{base}.dump"));
    assert_eq!(
        counts["detail"]["mismatches"],
        json!(["public.orders (1200 rows, manifest 1000)"])
    );
    t.run(&s.step(Action::Teardown, json!({}))).await.unwrap();
    assert!(!instances().await.contains(&scratch));
}
