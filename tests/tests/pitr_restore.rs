//! pitr-restore against moto (RDS, Secrets Manager, S3) and the real PostgreSQL standing in
//! for the restored instance through the endpoint override: validation, idempotent restore,
//! every checklist action, cut-over and rollback, the report, and the real binary.

use std::process::{Command, Stdio};

use pgsteward_core::pitr_restore::{parse_event, PitrRestore};
use pgsteward_core::Error;
use pgsteward_tests::fixtures::{login_role, rds_secret};
use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::restore::{
    describe, endpoint, instances, override_to_local, secret, secret_string, source, subnet_group,
    table_with_rows, task, RDS_WRITES,
};
use pgsteward_tests::runtime_api::{lambda_env, Outcome, RuntimeApi};
use pgsteward_tests::snapshots::{bucket, id, s3};
use pgsteward_tests::{repo_root, workspace_binary};
use serde_json::{json, Value};

async fn act(t: &PitrRestore, event: Value) -> Result<Value, Error> {
    t.handle(event).await
}

fn message(r: Result<Value, Error>, error_type: &str) -> String {
    let e = r.expect_err("expected a refusal");
    assert_eq!(e.error_type(), error_type, "{e}");
    e.to_string()
}

/// A source with backups, a subnet group, and a task for it (no database needed).
async fn aws_only(extra: &[(&str, &str)]) -> (PitrRestore, String, String) {
    let pg = Postgres::shared();
    let src = id();
    source(&src).await;
    let subnets = subnet_group().await;
    let mut vars = vec![
        (
            "PGSTEWARD_DATABASE_URL",
            "postgresql://u@127.0.0.1:1/db?sslmode=disable",
        ),
        ("PGSTEWARD_DB_IDENTIFIER", src.as_str()),
        ("PGSTEWARD_RESTORE_SUBNET_GROUP", subnets.as_str()),
        (
            "PGSTEWARD_RESTORE_SECURITY_GROUPS",
            "sg-0123456789abcdef0,sg-0fedcba9876543210",
        ),
        ("PGSTEWARD_RESTORE_INSTANCE_CLASS", "db.t3.small"),
    ];
    vars.extend_from_slice(extra);
    (task(pg, &vars).await, src, subnets)
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_refuses_bad_times_sources_and_names_with_the_window_and_changes_nothing() {
    let _rds = RDS_WRITES.lock().await;
    let (t, src, _) = aws_only(&[]).await;
    let (unknown, _, _) = aws_only(&[("PGSTEWARD_DB_IDENTIFIER", "orders-nowhere")]).await;
    let taken = id();
    source(&taken).await;
    let before = instances().await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    for action in ["validate", "restore"] {
        let target = |extra: Value| {
            let mut e = json!({"action": action, "targetDbInstanceIdentifier": "orders-restore-1"});
            for (k, v) in extra.as_object().unwrap() {
                e[k] = v.clone();
            }
            e
        };
        let before_window = message(
            act(&t, target(json!({"restoreTime": "2020-01-01T00:00:00Z"}))).await,
            "InvalidInput",
        );
        assert!(
            before_window.contains("before the earliest restorable time"),
            "{before_window}"
        );
        assert!(
            before_window.contains("the restorable window is 20"),
            "{before_window}"
        );
        let after = message(
            act(&t, target(json!({"restoreTime": later}))).await,
            "InvalidInput",
        );
        assert!(
            after.contains("after the latest restorable time")
                && after.contains("restorable window is"),
            "{after}"
        );
        let typo = message(
            act(&t, target(json!({"restoreTime": "yesterday 1am"}))).await,
            "InvalidInput",
        );
        assert!(
            typo.contains("'yesterday 1am'") && typo.contains("restorable window is"),
            "{typo}"
        );
        let bad_name = message(
            act(&t, json!({"action": action, "targetDbInstanceIdentifier": "Orders_Restore", "useLatestRestorableTime": true})).await,
            "InvalidInput",
        );
        assert!(bad_name.contains("'Orders_Restore'"), "{bad_name}");
        let stranger = message(
            act(&t, json!({"action": action, "targetDbInstanceIdentifier": taken, "useLatestRestorableTime": true})).await,
            "InvalidInput",
        );
        assert!(stranger.contains(&format!("'{taken}'")), "{stranger}");
        let e = message(
            act(&unknown, json!({"action": action, "targetDbInstanceIdentifier": "orders-restore-1", "useLatestRestorableTime": true})).await,
            "InvalidInput",
        );
        assert!(e.contains("'orders-nowhere' does not exist"), "{e}");
    }
    assert_eq!(instances().await, before, "no instance was created");
    // A good request answers with the window and the time.
    let ok = act(&t, json!({"action": "validate", "targetDbInstanceIdentifier": "orders-restore-1", "useLatestRestorableTime": true}))
        .await
        .unwrap();
    assert_eq!(ok["source"], src.as_str());
    assert!(ok["window"]["earliest"].as_str().unwrap() <= ok["window"]["latest"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn restoring_twice_makes_one_instance_with_the_sources_tags_and_pgstewards() {
    let _rds = RDS_WRITES.lock().await;
    let (t, src, subnets) = aws_only(&[]).await;
    let target = format!("{src}-restore");
    let request = json!({"action": "restore", "targetDbInstanceIdentifier": target, "useLatestRestorableTime": true});
    let before = instances().await;
    let mut dry = request.clone();
    dry["dryRun"] = json!(true);
    let plan = act(&t, dry).await.unwrap();
    assert_eq!(plan["status"], "would-restore");
    assert_eq!(instances().await, before, "a dry run restores nothing");

    let first = act(&t, request.clone()).await.unwrap();
    assert_eq!(first["created"], true, "{first}");
    let second = act(&t, request.clone()).await.unwrap();
    assert_eq!(second["created"], false, "{second}");
    assert!(
        second["note"].as_str().unwrap().contains("in progress"),
        "{second}"
    );
    assert_eq!(instances().await.len(), before.len() + 1);

    let i = describe(&target).await;
    let tags: Vec<(String, String)> = i
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert!(tags.contains(&("team".into(), "orders".into())), "{tags:?}");
    assert!(
        tags.contains(&("pgsteward:restored-from".into(), src.clone())),
        "{tags:?}"
    );
    assert!(
        tags.contains(&("pgsteward:restore-time".into(), "latest".into())),
        "{tags:?}"
    );
    assert_eq!(
        i.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
        Some(subnets.as_str())
    );
    let groups: Vec<&str> = i
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(groups, vec!["sg-0123456789abcdef0", "sg-0fedcba9876543210"]);
    assert_eq!(i.db_instance_class(), Some("db.t3.small"));
    assert_ne!(i.publicly_accessible(), Some(true));
    // The source is as it was: same tags, same state.
    let s = describe(&src).await;
    assert_eq!(s.tag_list().len(), 1);
    assert_eq!(s.db_instance_status(), Some("available"));

    let wait = act(
        &t,
        json!({"action": "wait", "targetDbInstanceIdentifier": target}),
    )
    .await
    .unwrap();
    assert_eq!(wait["available"], true);
    assert_eq!(
        wait["endpoint"]["address"],
        endpoint(&target).await.as_str()
    );
}

/// A database standing in for the restored instance, reached through the override.
struct Restored {
    t: PitrRestore,
    db: String,
    target: String,
}

async fn restored(extra: &[(&str, &str)]) -> Restored {
    let pg = Postgres::shared();
    let db = pg.create_database("restored").await;
    let (t, src, subnets) = {
        let _rds = RDS_WRITES.lock().await;
        let (t, src, subnets) = aws_only(&[]).await;
        let target = format!("{src}-restore");
        act(&t, json!({"action": "restore", "targetDbInstanceIdentifier": target, "useLatestRestorableTime": true}))
            .await
            .unwrap();
        (t, src, subnets)
    };
    drop(t);
    let target = format!("{src}-restore");
    let over = override_to_local(pg, &endpoint(&target).await);
    let secret = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    let mut vars = vec![
        ("PGSTEWARD_DB_SECRET_ARN", secret.as_str()),
        ("PGSTEWARD_DB_IDENTIFIER", src.as_str()),
        ("PGSTEWARD_RESTORE_SUBNET_GROUP", subnets.as_str()),
        ("PGSTEWARD_ENDPOINT_OVERRIDE", over.as_str()),
    ];
    vars.extend_from_slice(extra);
    Restored {
        t: task(pg, &vars).await,
        db,
        target,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn row_counts_pass_and_fail_naming_the_tables() {
    let pg = Postgres::shared();
    let r = restored(&[]).await;
    table_with_rows(pg, &r.db, "orders", 1000).await;
    table_with_rows(pg, &r.db, "\"Order Items\"", 10).await;
    let ok = act(
        &r.t,
        json!({"action": "row-counts", "targetDbInstanceIdentifier": r.target,
        "expectations": {"minRows": {"public.orders": 1000, "public.Order Items": 10}}}),
    )
    .await
    .unwrap();
    assert_eq!(ok["status"], "passed");
    assert_eq!(ok["tables"].as_array().unwrap().len(), 2, "{ok}");
    let same = act(
        &r.t,
        json!({"action": "row-counts", "targetDbInstanceIdentifier": r.target,
        "expectations": {"compareWith": "source", "tolerancePercent": 0}}),
    )
    .await
    .unwrap();
    assert_eq!(same["status"], "passed", "{same}");
    // Against a logical backup's manifest: 1,010 orders then, 1 % tolerance lets 1,000 pass.
    let backups = bucket("restore-manifests").await;
    let manifest = json!({"format": "pg_dump -Fc", "dbIdentifier": "orders-prod", "database": "orders",
        "serverVersion": "15.18", "scheduledTime": "2026-11-22T02:00:00Z", "startedAt": "2026-11-22T02:00:01Z",
        "finishedAt": "2026-11-22T02:03:00Z", "dumpKey": "x.dump", "sizeBytes": 1, "sha256": "00", "parts": 1,
        "tables": [{"schema": "public", "name": "orders", "rows": 1010}, {"schema": "public", "name": "Order Items", "rows": 12}]});
    s3().await
        .put_object()
        .bucket(&backups)
        .key("pgsteward/orders/x.manifest.json")
        .body(manifest.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let with = format!("manifest:s3://{backups}/pgsteward/orders/x.manifest.json");
    let e = message(
        act(
            &r.t,
            json!({"action": "row-counts", "targetDbInstanceIdentifier": r.target,
            "expectations": {"compareWith": with, "tolerancePercent": 1}}),
        )
        .await,
        "CheckFailed",
    );
    assert!(
        e.contains("1 table(s): public.Order Items (10 rows, expected at least 12)"),
        "{e}"
    );
    let e = message(
        act(&r.t, json!({"action": "row-counts", "targetDbInstanceIdentifier": r.target,
            "expectations": {"minRows": {"orders": 1001, "public.Order Items": 10, "public.refunds": 1}}}))
        .await,
        "CheckFailed",
    );
    assert!(e.contains("2 table(s)"), "{e}");
    assert!(
        e.contains("public.orders (1000 rows, expected at least 1001)"),
        "{e}"
    );
    assert!(e.contains("public.refunds (missing"), "{e}");
    assert!(!e.contains("Order Items"), "{e}");
}

async fn analyzed(pg: &Postgres, db: &str) -> (i64, i64) {
    let c = pg.admin(db).await;
    c.batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .ok();
    let row = c
        .query_one(
            "SELECT count(*), count(last_analyze) FROM pg_stat_user_tables",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread")]
async fn analyze_updates_last_analyze_on_every_table() {
    let pg = Postgres::shared();
    let r = restored(&[]).await;
    pg.admin(&r.db)
        .await
        .batch_execute("CREATE SCHEMA \"Billing\"")
        .await
        .unwrap();
    for t in ["orders", "items", "\"Billing\".\"Invoices\"", "customers"] {
        table_with_rows(pg, &r.db, t, 500).await;
    }
    let (tables, before) = analyzed(pg, &r.db).await;
    assert_eq!((tables, before), (4, 0));
    let out = act(
        &r.t,
        json!({"action": "analyze", "targetDbInstanceIdentifier": r.target}),
    )
    .await
    .unwrap();
    assert_eq!(
        (out["tables"].as_i64(), out["analyzed"].as_i64()),
        (Some(4), Some(4)),
        "{out}"
    );
    let mut all = false;
    for _ in 0..100 {
        if analyzed(pg, &r.db).await == (4, 4) {
            all = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        all,
        "last_analyze is not set on every table: {:?}",
        analyzed(pg, &r.db).await
    );
    // A retry (after a deadline, say) leaves what was analyzed since the restore.
    let again = act(
        &r.t,
        json!({"action": "analyze", "targetDbInstanceIdentifier": r.target}),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            again["analyzed"].as_i64(),
            again["alreadyAnalyzed"].as_i64()
        ),
        (Some(0), Some(4)),
        "{again}"
    );
    // Too close to the deadline, it starts nothing and says how far it got.
    table_with_rows(pg, &r.db, "late_arrival", 10).await;
    let soon = chrono::Utc::now() + chrono::Duration::seconds(5);
    let e = message(
        r.t.handle_until(
            json!({"action": "analyze", "targetDbInstanceIdentifier": r.target}),
            Some(soon),
        )
        .await,
        "Retryable",
    );
    assert!(
        e.contains("analyzed 0 of 1 tables before the Lambda deadline (4 were done already)"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_queries_cannot_write() {
    let pg = Postgres::shared();
    let r = restored(&[]).await;
    table_with_rows(pg, &r.db, "orders", 100).await;
    let ok = act(&r.t, json!({"action": "smoke", "targetDbInstanceIdentifier": r.target,
        "smokeQueries": ["SELECT count(*) FROM orders", "SELECT max(id) FROM orders WHERE created_at <= now()"]}))
    .await
    .unwrap();
    assert_eq!(ok["queries"].as_array().unwrap().len(), 2, "{ok}");
    for (q, why) in [
        (
            "INSERT INTO orders (id) VALUES (100001)",
            "read-only transaction",
        ),
        (
            "SELECT 1; INSERT INTO orders (id) VALUES (100002)",
            "multiple commands",
        ),
        ("SET TRANSACTION READ WRITE", "before any query"),
        (
            "UPDATE orders SET id = id + 1000000",
            "read-only transaction",
        ),
        ("SELECT pg_sleep(5)", "statement timeout"),
    ] {
        let e = message(
            act(&r.t, json!({"action": "smoke", "targetDbInstanceIdentifier": r.target, "smokeTimeoutSeconds": 1,
                "smokeQueries": ["SELECT 1", q]}))
            .await,
            "CheckFailed",
        );
        assert!(e.contains("smoke query 2") && e.contains(why), "{q}: {e}");
    }
    let c = pg.admin(&r.db).await;
    let row = c
        .query_one("SELECT count(*), max(id) FROM orders", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i32>(1)),
        (100, 100),
        "the table is unchanged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connectivity_uses_the_application_credentials() {
    let pg = Postgres::shared();
    let password = format!("App-{}-pw", std::process::id());
    let role = login_role(pg, "orders_app", &password).await;
    let good = rds_secret(pg, &role, &password, "postgres").await;
    let wrong = rds_secret(pg, &role, "not-the-password", "postgres").await;
    let arns = format!("{good},{wrong}");
    let r = restored(&[("PGSTEWARD_APP_SECRET_ARNS", arns.as_str())]).await;
    let ok = act(&r.t, json!({"action": "connectivity", "targetDbInstanceIdentifier": r.target, "appSecretArn": good}))
        .await
        .unwrap();
    assert_eq!(
        (ok["status"].as_str(), ok["user"].as_str()),
        (Some("passed"), Some(role.as_str()))
    );
    let e = message(
        act(&r.t, json!({"action": "connectivity", "targetDbInstanceIdentifier": r.target, "appSecretArn": wrong})).await,
        "CheckFailed",
    );
    assert!(
        e.contains("password authentication failed") && !e.contains("not-the-password"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_over_changes_only_the_application_secret_and_rollback_restores_it_exactly() {
    let old = json!({"engine": "postgres", "host": "orders-prod.aaaaaaaaaa.us-east-1.rds.amazonaws.com",
        "port": 5432, "username": "orders_app", "password": "S3cret-pw", "dbname": "orders",
        "dbInstanceIdentifier": "orders-prod"});
    let app = secret(&old).await;
    let other =
        secret(&json!({"host": "elsewhere", "port": 5432, "username": "x", "password": "y"})).await;
    let arns = format!("{app},{other}");
    let r = restored(&[("PGSTEWARD_APP_SECRET_ARNS", arns.as_str())]).await;
    let (app_before, other_before) = (secret_string(&app).await, secret_string(&other).await);
    let passed = json!({"rowCounts": "passed", "analyze": "passed", "connectivity": "passed", "smoke": "passed"});
    let cut = |extra: Value| {
        let mut e = json!({"action": "cut-over", "targetDbInstanceIdentifier": r.target, "appSecretArn": app,
            "cutOver": true, "checks": passed});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    message(act(&r.t, cut(json!({"cutOver": false}))).await, "Unsafe");
    let e = message(
        act(
            &r.t,
            cut(json!({"checks": {"rowCounts": "passed", "smoke": "failed"}})),
        )
        .await,
        "Unsafe",
    );
    assert!(
        e.contains("smoke=failed") && e.contains("analyze=(none)"),
        "{e}"
    );
    let stranger = secret(&old).await;
    let e = message(
        act(&r.t, cut(json!({"appSecretArn": stranger}))).await,
        "InvalidInput",
    );
    assert!(e.contains("PGSTEWARD_APP_SECRET_ARNS"), "{e}");
    let dry = act(&r.t, cut(json!({"dryRun": true}))).await.unwrap();
    assert_eq!(dry["status"], "would-cut-over");
    assert_eq!(
        secret_string(&app).await,
        app_before,
        "a dry run changes nothing"
    );

    let done = act(&r.t, cut(json!({}))).await.unwrap();
    assert_eq!(done["changed"], true, "{done}");
    assert!(!done.to_string().contains("S3cret-pw"), "{done}");
    let now: Value = serde_json::from_str(&secret_string(&app).await).unwrap();
    let ep = endpoint(&r.target).await;
    assert_eq!(now["host"], ep.as_str());
    assert_eq!(now["port"], 5432);
    assert_eq!(now["dbInstanceIdentifier"], r.target.as_str());
    for k in ["engine", "username", "password", "dbname"] {
        assert_eq!(now[k], old[k], "{k}");
    }
    assert_eq!(
        secret_string(&other).await,
        other_before,
        "the other secret is untouched"
    );
    let again = act(&r.t, cut(json!({}))).await.unwrap();
    assert_eq!(again["changed"], false, "{again}");

    let rollback =
        json!({"action": "rollback", "targetDbInstanceIdentifier": r.target, "appSecretArn": app});
    let back = act(&r.t, rollback.clone()).await.unwrap();
    assert_eq!(back["changed"], true, "{back}");
    assert_eq!(
        secret_string(&app).await,
        app_before,
        "rollback restores the secret exactly"
    );
    assert_eq!(secret_string(&other).await, other_before);
    let twice = act(&r.t, rollback).await.unwrap();
    assert_eq!(twice["changed"], false, "{twice}");
    assert_eq!(secret_string(&app).await, app_before);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_goes_to_s3_and_names_the_failed_step() {
    let pg = Postgres::shared();
    let reports = bucket("restore-reports").await;
    let (t, _, _) = {
        let _rds = RDS_WRITES.lock().await;
        aws_only(&[("PGSTEWARD_REPORT_BUCKET", reports.as_str())]).await
    };
    let _ = pg;
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo_root().join("events/pitr-restore/report-after-failed-smoke.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let report = act(&t, event).await.unwrap();
    assert_eq!(report["details"]["outcome"], "failed");
    assert_eq!(report["details"]["failed"], json!(["smoke"]));
    let key = "restore-reports/orders-restore-20261122/2026-11-22T01:31:02Z.json";
    let obj = s3()
        .await
        .get_object()
        .bucket(&reports)
        .key(key)
        .send()
        .await
        .expect("report in S3");
    let body: Value =
        serde_json::from_slice(&obj.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(body["target"], "orders-restore-20261122");
    assert!(
        body["warnings"][0].as_str().unwrap().contains("orderz"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_event_parses() {
    for f in std::fs::read_dir(repo_root().join("events/pitr-restore")).unwrap() {
        let path = f.unwrap().path();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        parse_event(event).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_runs_sample_events_on_a_local_runtime_api() {
    let pg = Postgres::shared();
    let db = pg.create_database("lambda_pitr").await;
    table_with_rows(pg, &db, "orders", 1000).await;
    let arn = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    {
        let _rds = RDS_WRITES.lock().await;
        if !instances().await.iter().any(|i| i == "orders-prod") {
            source("orders-prod").await;
        }
    }
    let api = RuntimeApi::start().await;
    let over = override_to_local(
        pg,
        "orders-restore-20261122.c1a2b3c4d5e6.us-east-1.rds.amazonaws.com",
    );
    let child = Command::new(workspace_binary("pitr-restore"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(lambda_env(&api, "pitr-restore"))
        .envs(Moto::shared().env())
        .env("PGSTEWARD_DB_SECRET_ARN", &arn)
        .env("PGSTEWARD_DB_IDENTIFIER", "orders-prod")
        .env("PGSTEWARD_CA_BUNDLE", &pg.ca)
        .env("PGSTEWARD_ENDPOINT_OVERRIDE", &over)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pitr-restore");
    let read = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("events/pitr-restore").join(name)).unwrap(),
        )
        .unwrap()
    };
    for name in ["validate.json", "row-counts.json", "wait.json"] {
        api.push(name, read(name));
    }
    let outcomes = api.wait_outcomes(3, 60).await;
    let mut child = child;
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(outcomes.len(), 3, "{logs}");
    let Outcome::Response(validated) = &outcomes[0].1 else {
        panic!("{:?}\n{logs}", outcomes[0])
    };
    assert_eq!(validated["source"], "orders-prod");
    let Outcome::Response(counts) = &outcomes[1].1 else {
        panic!("{:?}\n{logs}", outcomes[1])
    };
    assert_eq!(counts["status"], "passed", "{counts}");
    assert_eq!(counts["tables"][0]["rows"], 1000);
    // Nothing was restored in this test: the probe says so, typed for the state machine.
    let Outcome::Error(missing) = &outcomes[2].1 else {
        panic!("{:?}\n{logs}", outcomes[2])
    };
    assert_eq!(missing["errorType"], "NotFound", "{missing}");
    assert!(!logs.contains(&pg.superuser_password), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_runs_the_checklist_on_any_database_and_fails_naming_the_table() {
    let pg = Postgres::shared();
    let db = pg.create_database("cli_pitr").await;
    table_with_rows(pg, &db, "orders", 10).await;
    let run = |min: &str| {
        Command::new(workspace_binary("pgsteward"))
            .args(["pitr-restore", "checklist", "--local", "--format", "json"])
            .args(["--database-url", &pg.admin_url(&db)])
            .args(["--min-rows", min, "--smoke", "SELECT count(*) FROM orders"])
            .envs(Moto::shared().env())
            .env_remove("PGSTEWARD_DB_SECRET_ARN")
            .output()
            .expect("run pgsteward")
    };
    let ok = run("public.orders=10");
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["details"]["outcome"], "passed", "{report}");
    let steps: Vec<&str> = report["details"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, vec!["rowCounts", "analyze", "connectivity", "smoke"]);
    let bad = run("public.orders=11");
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(!bad.status.success(), "{text}");
    assert!(
        text.contains("CheckFailed")
            && text.contains("public.orders (10 rows, expected at least 11)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aurora_cluster_is_restored_once_with_its_writer_and_a_lost_writer_is_added_back() {
    let _rds = RDS_WRITES.lock().await;
    let client = pgsteward_tests::snapshots::rds().await;
    let src = id();
    client
        .create_db_cluster()
        .db_cluster_identifier(&src)
        .engine("aurora-postgresql")
        .master_username("postgres")
        .master_user_password("not-used-here")
        .backup_retention_period(7)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("team")
                .value("orders")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (t, _, _) = aws_only(&[
        ("PGSTEWARD_DB_IDENTIFIER", src.as_str()),
        ("PGSTEWARD_SNAPSHOT_SOURCE", "cluster"),
        ("PGSTEWARD_RESTORE_INSTANCE_CLASS", "db.r6g.large"),
    ])
    .await;
    let target = format!("{src}-restore");
    let e = message(
        act(&t, json!({"action": "validate", "targetDbInstanceIdentifier": target, "restoreTime": "2020-01-01T00:00:00Z"})).await,
        "InvalidInput",
    );
    assert!(e.contains("restorable window is"), "{e}");
    let restore = json!({"action": "restore", "targetDbInstanceIdentifier": target, "useLatestRestorableTime": true});
    assert_eq!(act(&t, restore.clone()).await.unwrap()["created"], true);
    assert_eq!(act(&t, restore.clone()).await.unwrap()["created"], false);
    let clusters = || async {
        client
            .describe_db_clusters()
            .send()
            .await
            .unwrap()
            .db_clusters()
            .iter()
            .filter(|c| c.db_cluster_identifier() == Some(target.as_str()))
            .count()
    };
    assert_eq!(clusters().await, 1);
    let writer = describe(&format!("{target}-writer")).await;
    assert_eq!(writer.db_cluster_identifier(), Some(target.as_str()));
    assert_eq!(writer.db_instance_class(), Some("db.r6g.large"));
    let wait = act(
        &t,
        json!({"action": "wait", "targetDbInstanceIdentifier": target}),
    )
    .await
    .unwrap();
    assert_eq!(wait["available"], true, "{wait}");
    assert!(
        wait["endpoint"]["address"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{target}.cluster-")),
        "{wait}"
    );

    // A restore interrupted between the cluster and its writer: wait says so, restore finishes it.
    client
        .delete_db_instance()
        .db_instance_identifier(format!("{target}-writer"))
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    let e = message(
        act(
            &t,
            json!({"action": "wait", "targetDbInstanceIdentifier": target}),
        )
        .await,
        "Unsafe",
    );
    assert!(e.contains("no writer instance"), "{e}");
    let again = act(&t, restore).await.unwrap();
    assert_eq!(
        (again["created"].as_bool(), again["status"].as_str()),
        (Some(false), Some("writer-missing")),
        "{again}"
    );
    assert_eq!(clusters().await, 1);
    let wait = act(
        &t,
        json!({"action": "wait", "targetDbInstanceIdentifier": target}),
    )
    .await
    .unwrap();
    assert_eq!(wait["available"], true, "{wait}");
}
