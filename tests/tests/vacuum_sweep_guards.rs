//! vacuum-sweep's guards against a real PostgreSQL (and moto for RDS facts): VACUUM FULL's
//! window and storage, standbys, a second sweep, permissions, bad input.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use pgsteward_core::clock::FixedClock;
use pgsteward_core::vacuum_sweep::{parse_event, VacuumConfig, VacuumSweep, LOCK_KEY};
use pgsteward_tests::fixtures::{bloat, env, knock_counter, moto_deps};
use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::repo_root;
use pgsteward_tests::vacuum::{dead_tuples, done_names, request, sweep, sweep_with};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn vacuum_full_only_inside_the_window_with_room() {
    let pg = Postgres::shared();
    let db = pg.create_database("vs_full").await;
    bloat(pg, &db, &["history"], 20_000, 90).await;
    pg.admin(&db)
        .await
        .batch_execute("ANALYZE history")
        .await
        .unwrap();
    let window = ("PGSTEWARD_MAINTENANCE_WINDOW", "sun:03:00-sun:05:00");
    let sunday_0330 = Utc.with_ymd_and_hms(2026, 11, 22, 3, 30, 0).unwrap();
    let monday_noon = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let with_clock = |at| async move {
        let mut deps = moto_deps(None).await;
        deps.clock = Arc::new(FixedClock(at));
        deps
    };
    let full = json!({"mode": "full", "tables": ["public.history"]});

    // Outside the window: refused, nothing done.
    let task = sweep_with(
        &db,
        &[window, ("PGSTEWARD_FREE_STORAGE_BYTES", "100000000000")],
        with_clock(monday_noon).await,
    )
    .await;
    let err = task
        .run(&request(&task, full.clone()), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Unsafe");
    assert!(err.to_string().contains("sun:03:00-sun:05:00"), "{err}");

    // In the window without room for the copy: refused with the figures.
    let task = sweep_with(
        &db,
        &[window, ("PGSTEWARD_FREE_STORAGE_BYTES", "1000")],
        with_clock(sunday_0330).await,
    )
    .await;
    let err = task
        .run(&request(&task, full.clone()), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Unsafe");
    assert!(err.to_string().contains("needs 2×"), "{err}");
    assert_eq!(dead_tuples(&db, "history").await, 18_000);

    // In the window, free storage from RDS (moto: allocated storage minus database size): runs.
    let identifier = pgsteward_tests::unique("orders").replace('_', "-");
    let rds = aws_sdk_rds_client().await;
    rds.create_db_instance()
        .db_instance_identifier(&identifier)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("postgres")
        .master_user_password("not-used-here")
        .send()
        .await
        .expect("moto rds instance");
    let task = sweep_with(
        &db,
        &[window, ("PGSTEWARD_DB_IDENTIFIER", &identifier)],
        with_clock(sunday_0330).await,
    )
    .await;
    let report = task.run(&request(&task, full), None, None).await.unwrap();
    assert_eq!(done_names(&report), vec!["public.history"]);
    let f = &report.done[0].detail["figures"];
    assert!(
        f["bytesAfter"].as_i64().unwrap() * 3 < f["bytesBefore"].as_i64().unwrap(),
        "{f}"
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("RDS allocated storage")),
        "{:?}",
        report.warnings
    );
}

async fn aws_sdk_rds_client() -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&Moto::shared().sdk_config().await)
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_a_standby_and_a_second_concurrent_sweep() {
    let pg = Postgres::shared();
    let db = pg.create_database("vs_guard").await;
    bloat(pg, &db, &["orders"], 5_000, 50).await;
    let holder = pg.admin(&db).await;
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .unwrap();
    let task = sweep(&db, &[]).await;
    let report = task
        .run(&request(&task, json!({})), None, None)
        .await
        .unwrap();
    assert!(report.done.is_empty());
    assert!(
        report.skipped[0]
            .reason
            .contains("another vacuum-sweep is running"),
        "{:?}",
        report.skipped
    );
    holder
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await
        .unwrap();

    let standby = pg.start_standby();
    let url = format!(
        "postgresql://postgres:{}@localhost:{}/postgres?sslrootcert={}",
        pg.superuser_password,
        standby.port,
        pg.ca.display()
    );
    let config = VacuumConfig::from_env(&env(&[("PGSTEWARD_DATABASE_URL", &url)])).unwrap();
    let task = VacuumSweep::new(config, moto_deps(None).await);
    let err = task
        .run(&request(&task, json!({})), None, None)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Unsafe");
    assert!(err.to_string().contains("standby"), "{err}");
}

fn event(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/vacuum-sweep").join(name)).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn alarms_map_to_modes_and_bad_input_makes_no_call() {
    let (port, knocks) = knock_counter();
    let url = format!("postgresql://u:pw@127.0.0.1:{port}/orders?sslmode=disable");
    let config = VacuumConfig::from_env(&env(&[
        ("PGSTEWARD_DATABASE_URL", &url),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-prod"),
    ]))
    .unwrap();
    let freeze = parse_event(event("alarm-maximum-used-transaction-ids.json"), &config).unwrap();
    assert_eq!(freeze.mode.as_str(), "freeze");
    let standard = parse_event(event("alarm-dead-tuple-ratio.json"), &config).unwrap();
    assert_eq!(standard.mode.as_str(), "standard");

    let task = VacuumSweep::new(config, moto_deps(None).await);
    let mut other_db = event("alarm-maximum-used-transaction-ids.json");
    other_db["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]
        ["DBInstanceIdentifier"] = json!("billing-prod");
    let mut cpu = event("alarm-maximum-used-transaction-ids.json");
    cpu["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["name"] =
        json!("CPUUtilization");
    let cases = [
        (other_db, "billing-prod"),
        (cpu, "AWS/RDS/CPUUtilization"),
        (json!({"mode": "shrink"}), "unknown variant `shrink`"),
        (json!({"tables": []}), "tables is []"),
        (json!({"jobs": 0}), "jobs is 0"),
        (
            json!({"mode": "freeze", "continuation": {"mode": "standard", "remaining": []}}),
            "resume with the same mode",
        ),
    ];
    for (ev, expected) in cases {
        let err = task.handle(ev.clone(), None).await.unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput", "{ev}");
        assert!(err.to_string().contains(expected), "{ev}: {err}");
    }
    assert_eq!(knocks.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn naming_a_missing_table_changes_nothing() {
    let pg = Postgres::shared();
    let db = pg.create_database("vs_missing").await;
    bloat(pg, &db, &["orders"], 5_000, 50).await;
    let task = sweep(&db, &[]).await;
    let err = task
        .run(
            &request(&task, json!({"tables": ["public.orders", "public.nope"]})),
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "InvalidInput");
    assert!(err.to_string().contains("public.nope"), "{err}");
    assert_eq!(dead_tuples(&db, "orders").await, 2_500);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_the_role_may_not_vacuum_is_reported_as_skipped_not_done() {
    let pg = Postgres::shared();
    let db = pg.create_database("vs_perm").await;
    bloat(pg, &db, &["orders"], 5_000, 50).await;
    let role = pgsteward_tests::fixtures::login_role(pg, "monitor", "monitor-pw").await;
    let url = pg.url(&role, "monitor-pw", &db);
    let config = VacuumConfig::from_env(&env(&[("PGSTEWARD_DATABASE_URL", &url)])).unwrap();
    let task = VacuumSweep::new(config, moto_deps(None).await);
    let report = task
        .run(&request(&task, json!({})), None, None)
        .await
        .unwrap();
    assert!(report.done.is_empty(), "{:?}", report.done);
    assert!(
        report.skipped[0]
            .reason
            .contains("only table or database owner"),
        "{:?}",
        report.skipped
    );
    assert_eq!(dead_tuples(&db, "orders").await, 2_500);
}
