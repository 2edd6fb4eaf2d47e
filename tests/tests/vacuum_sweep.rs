//! vacuum-sweep against a real PostgreSQL (and moto for RDS facts).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use pgsteward_core::clock::FixedClock;
use pgsteward_core::vacuum_sweep::{parse_event, Request, VacuumConfig, VacuumSweep, LOCK_KEY};
use pgsteward_core::Deps;
use pgsteward_tests::fixtures::{bloat, env, knock_counter, moto_deps, SteppingClock};
use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::repo_root;
use serde_json::{json, Value};

async fn sweep_with(db: &str, extra: &[(&str, &str)], deps: Deps) -> VacuumSweep {
    let url = Postgres::shared().admin_url(db);
    let mut vars = vec![
        ("PGSTEWARD_DATABASE_URL", url.as_str()),
        ("PGSTEWARD_LOCK_TIMEOUT_MS", "500"),
    ];
    vars.extend_from_slice(extra);
    VacuumSweep::new(VacuumConfig::from_env(&env(&vars)).unwrap(), deps)
}

async fn sweep(db: &str, extra: &[(&str, &str)]) -> VacuumSweep {
    sweep_with(db, extra, moto_deps(None).await).await
}

fn request(task: &VacuumSweep, v: Value) -> Request {
    parse_event(v, &task.config).unwrap()
}

fn done_names(report: &pgsteward_core::report::Report) -> Vec<String> {
    let mut v: Vec<_> = report.done.iter().map(|d| d.target.clone()).collect();
    v.sort();
    v
}

async fn dead_tuples(db: &str, table: &str) -> i64 {
    Postgres::shared()
        .admin(db)
        .await
        .query_one(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = $1",
            &[&table],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn vacuums_the_bloated_table_and_leaves_the_clean_one_alone() {
    let pg = Postgres::shared();
    let db = pg.create_database("vs_basic").await;
    bloat(pg, &db, &["orders"], 20_000, 50).await;
    let admin = pg.admin(&db).await;
    admin
        .batch_execute("CREATE TABLE clean AS SELECT g FROM generate_series(1, 5000) g")
        .await
        .unwrap();
    // The insert counts must reach shared statistics before ANALYZE resets them.
    admin
        .batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin.batch_execute("ANALYZE clean").await.unwrap();
    for _ in 0..100 {
        admin
            .batch_execute("SELECT pg_stat_force_next_flush()")
            .await
            .unwrap();
        let row = admin
            .query_one(
                "SELECT n_live_tup, last_analyze IS NOT NULL AND n_mod_since_analyze = 0 FROM pg_stat_user_tables WHERE relname = 'clean'",
                &[],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) == 5000 && row.get::<_, bool>(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let task = sweep(&db, &[]).await;

    let dry = task
        .run(&request(&task, json!({"dryRun": true})), None, None)
        .await
        .unwrap();
    assert!(dry.done.is_empty());
    assert_eq!(dry.details["plan"][0]["name"], "orders");
    assert!(dry.details["plan"][0]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("dead tuples 50%"));
    assert!(
        dry.details["leftOut"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "public.clean"),
        "{}",
        dry.details
    );
    assert_eq!(
        dead_tuples(&db, "orders").await,
        10_000,
        "the dry run changed something"
    );

    let report = task
        .run(&request(&task, json!({})), None, None)
        .await
        .unwrap();
    assert_eq!(done_names(&report), vec!["public.orders"]);
    let f = &report.done[0].detail["figures"];
    assert_eq!(report.done[0].action, "vacuum");
    assert_eq!(f["deadTuplesBefore"], 10_000);
    assert_eq!(f["deadTuplesAfter"], 0);
    assert!(report.continuation.is_none());
    assert_eq!(dead_tuples(&db, "orders").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_locked_by_another_session_is_skipped_without_waiting() {
    let pg = Postgres::shared();
    let db = pg.create_database("vs_lock").await;
    bloat(pg, &db, &["busy", "free"], 10_000, 50).await;
    let holder = pg.admin(&db).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let task = sweep(&db, &[]).await;
    let started = std::time::Instant::now();
    let report = task
        .run(&request(&task, json!({"jobs": 2})), None, None)
        .await
        .unwrap();
    assert_eq!(done_names(&report), vec!["public.free"]);
    let skip = report
        .skipped
        .iter()
        .find(|s| s.item == "public.busy")
        .expect("busy skipped");
    assert!(
        skip.reason.contains("lock not available"),
        "{}",
        skip.reason
    );
    // Generous bound: a wait for the lock would last until the holder commits (never here).
    assert!(started.elapsed() < Duration::from_secs(30));
    holder.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_deadline_returns_a_continuation_and_the_next_run_finishes_without_repeats() {
    let pg = Postgres::shared();
    let db = pg.create_database("vs_cont").await;
    let names = ["t1", "t2", "t3", "t4", "t5", "t6"];
    bloat(pg, &db, &names, 5_000, 50).await;
    // Every clock reading is 10 s later: the deadline passes after a few tables.
    let start = Utc::now();
    let mut deps = moto_deps(None).await;
    deps.clock = Arc::new(SteppingClock::new(start, chrono::Duration::seconds(10)));
    let task = sweep_with(&db, &[("PGSTEWARD_DEADLINE_MARGIN_SECS", "0")], deps).await;
    let first = task
        .run(
            &request(&task, json!({"jobs": 1})),
            Some(start + chrono::Duration::seconds(35)),
            None,
        )
        .await
        .unwrap();
    let continuation = first.continuation.clone().expect("a continuation");
    assert!(!first.done.is_empty(), "nothing done before the deadline");
    assert!(!continuation["remaining"].as_array().unwrap().is_empty());

    let task = sweep(&db, &[]).await;
    let second = task
        .run(
            &request(&task, json!({"continuation": continuation})),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(second.continuation.is_none());
    let mut all = done_names(&first);
    all.extend(done_names(&second));
    all.sort();
    let expected: Vec<String> = names.iter().map(|n| format!("public.{n}")).collect();
    assert_eq!(all, expected, "every table once, none twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_in_several_schemas_are_quoted() {
    let pg = Postgres::shared();
    let db = pg.create_database("vs_names").await;
    pg.admin(&db)
        .await
        .batch_execute(r#"CREATE SCHEMA "Sales Dept"; CREATE SCHEMA "ünïcødé""#)
        .await
        .unwrap();
    let tables = [
        r#""Sales Dept"."Order Items""#,
        r#"public."select""#,
        r#"public."we""ird; DROP TABLE x""#,
        r#""ünïcødé"."größe""#,
        r#"public."MixedCase""#,
    ];
    bloat(pg, &db, &tables, 3_000, 50).await;
    let task = sweep(&db, &[]).await;
    let report = task
        .run(&request(&task, json!({"jobs": 3})), None, None)
        .await
        .unwrap();
    assert_eq!(
        done_names(&report),
        vec![
            "Sales Dept.Order Items",
            "public.MixedCase",
            "public.select",
            "public.we\"ird; DROP TABLE x",
            "ünïcødé.größe"
        ]
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    // Narrowing by such a name works too.
    pg.admin(&db)
        .await
        .batch_execute(r#"DELETE FROM "Sales Dept"."Order Items" WHERE id % 2 = 1"#)
        .await
        .unwrap();
}

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
async fn reindexes_a_bloated_index_and_reports_an_invalid_one() {
    let pg = Postgres::shared();
    let db = pg.create_database("vs_reindex").await;
    let admin = pg.admin(&db).await;
    admin
        .batch_execute(
            "CREATE TABLE events (id int, kind int) WITH (autovacuum_enabled = false);
             INSERT INTO events SELECT g, g % 10 FROM generate_series(1, 50000) g;
             CREATE INDEX events_id ON events (id);
             DELETE FROM events WHERE id % 10 <> 0;",
        )
        .await
        .unwrap();
    admin.batch_execute("VACUUM ANALYZE events").await.unwrap();
    // A unique index that cannot be built is left INVALID, like an interrupted REINDEX CONCURRENTLY.
    assert!(admin
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY events_kind ON events (kind)")
        .await
        .is_err());
    let task = sweep(
        &db,
        &[("PGSTEWARD_VACUUM_POLICY", r#"{"reindexMinBytes": 0}"#)],
    )
    .await;
    let report = task
        .run(&request(&task, json!({"mode": "reindex"})), None, None)
        .await
        .unwrap();
    assert_eq!(done_names(&report), vec!["public.events_id"]);
    let f = &report.done[0].detail["figures"];
    assert!(
        f["bytesAfter"].as_i64().unwrap() * 3 < f["bytesBefore"].as_i64().unwrap(),
        "{f}"
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("public.events_kind is invalid")),
        "{:?}",
        report.warnings
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn partitions_are_swept_by_leaf_and_temporary_tables_never() {
    let pg = Postgres::shared();
    let db = pg.create_database("vs_parts").await;
    let admin = pg.admin(&db).await;
    admin
        .batch_execute(
            "CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);
             CREATE TABLE events_2026_10 PARTITION OF events FOR VALUES FROM ('2026-10-01') TO ('2026-11-01') WITH (autovacuum_enabled = false);
             CREATE TABLE events_2026_11 PARTITION OF events FOR VALUES FROM ('2026-11-01') TO ('2026-12-01') WITH (autovacuum_enabled = false);
             INSERT INTO events SELECT g, date '2026-10-01' + (g % 60) FROM generate_series(1, 20000) g;
             DELETE FROM events WHERE id % 2 = 0;",
        )
        .await
        .unwrap();
    // Another session's temporary table, bloated too: not ours to touch.
    let other = pg.admin(&db).await;
    other
        .batch_execute(
            "CREATE TEMP TABLE scratch (id int) WITH (autovacuum_enabled = false);
             INSERT INTO scratch SELECT generate_series(1, 20000); DELETE FROM scratch WHERE id % 2 = 0;",
        )
        .await
        .unwrap();
    for c in [&admin, &other] {
        c.batch_execute("SELECT pg_stat_force_next_flush()")
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let task = sweep(&db, &[]).await;
    let report = task
        .run(&request(&task, json!({})), None, None)
        .await
        .unwrap();
    assert_eq!(
        done_names(&report),
        vec!["public.events_2026_10", "public.events_2026_11"]
    );
    let plan_and_left: String = format!("{}", report.details);
    assert!(
        !plan_and_left.contains("scratch"),
        "a temporary table was considered: {plan_and_left}"
    );
}
