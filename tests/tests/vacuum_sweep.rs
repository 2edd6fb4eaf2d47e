//! vacuum-sweep against a real PostgreSQL: what it does, in what order, with what names.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pgsteward_tests::fixtures::{bloat, moto_deps, SteppingClock};
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::vacuum::{dead_tuples, done_names, request, sweep, sweep_with};
use serde_json::json;

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
