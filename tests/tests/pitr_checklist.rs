//! pitr-restore's checklist actions against the real PostgreSQL standing in for the restored
//! instance through the endpoint override: row counts, ANALYZE, read-only smoke queries,
//! connectivity with the application's credentials, cut-over and its exact rollback.

use pgsteward_tests::fixtures::{login_role, rds_secret};
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::restore::{
    act, endpoint, message, restored, secret, secret_string, table_with_rows,
};
use pgsteward_tests::snapshots::{bucket, s3};
use serde_json::{json, Value};

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
