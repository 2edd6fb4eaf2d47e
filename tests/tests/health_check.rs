//! health-check in-process against a real PostgreSQL and the SDK adapters on moto.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pgsteward_core::health_check::{Action, HealthCheck, HealthCheckConfig, Request};
use pgsteward_tests::fixtures::{
    alive, bloated_table, env, idle_in_transaction, knock_counter, login_role, moto_deps,
    rds_secret,
};
use pgsteward_tests::postgres::Postgres;
use serde_json::{json, Value};

/// Sessions are cluster-wide: tests that count or terminate them take turns.
static SESSIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Limits low enough that the prepared database trips every metric.
const TRIPPING: &str = r#"{
  "cacheHitRatio": {"warning": 101, "critical": 100.5},
  "activeConnectionsPercent": {"warning": 1, "critical": 2},
  "longestQuerySeconds": {"warning": 0.5, "critical": 1},
  "longestIdleInTransactionSeconds": {"warning": 0.5, "critical": 1},
  "oldestXidAge": {"warning": 1, "critical": 2}
}"#;

fn metric<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["details"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_trips_on_a_prepared_database() {
    let _turn = SESSIONS.lock().await;
    let pg = Postgres::shared();
    let db = pg.create_database("hc_trip").await;
    bloated_table(pg, &db).await;
    let role = login_role(pg, "app", "app-pw").await;
    let (_idle, _) = idle_in_transaction(pg, &role, "app-pw", &db).await;
    let (long, _) = idle_in_transaction(pg, &role, "app-pw", &db).await;
    long.batch_execute("COMMIT").await.unwrap();
    let long_query = tokio::spawn(async move {
        long.batch_execute("SET statement_timeout = '6s'; SELECT pg_sleep(5)")
            .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let url = pg.admin_url(&db);
    let config = HealthCheckConfig::from_env(&env(&[
        ("PGSTEWARD_DATABASE_URL", &url),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-test"),
        ("PGSTEWARD_THRESHOLDS", TRIPPING),
    ]))
    .unwrap();
    let task = HealthCheck::new(config, moto_deps(None).await);
    let at = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let report = task
        .handle(json!({"action": "check", "previousSizeBytes": 1_000_000, "previousAt": at}))
        .await
        .unwrap();

    assert_eq!(report["task"], "health-check");
    assert_eq!(report["target"], "orders-test");
    assert_eq!(report["details"]["level"], "critical");
    for name in [
        "cacheHitRatio",
        "deadTupleRatioWorst",
        "deadTupleRatio",
        "activeConnectionsPercent",
        "longestQuerySeconds",
        "longestIdleInTransactionSeconds",
        "databaseGrowthPercentPerDay",
        "oldestXidAge",
    ] {
        assert_eq!(
            metric(&report, name)["level"],
            "critical",
            "{name}: {}",
            metric(&report, name)
        );
    }
    let worst = metric(&report, "deadTupleRatioWorst");
    assert_eq!(worst["about"], "public.orders");
    assert!(
        (worst["value"].as_f64().unwrap() - 50.0).abs() < 1.0,
        "{worst}"
    );
    assert!(metric(&report, "longestIdleInTransactionSeconds")["about"]
        .as_str()
        .unwrap()
        .contains(&role));
    // No replica here: lag is missing, not zero, and says why.
    let lag = metric(&report, "replicationLagBytes");
    assert!(lag["value"].is_null() && lag["level"].is_null(), "{lag}");
    assert_eq!(lag["about"], "0 replicas");
    assert!(
        metric(&report, "databaseSizeBytes")["value"]
            .as_f64()
            .unwrap()
            > 1_000_000.0
    );
    long_query.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn default_thresholds_leave_a_quiet_database_ok() {
    let _turn = SESSIONS.lock().await;
    let pg = Postgres::shared();
    let db = pg.create_database("hc_quiet").await;
    let config =
        HealthCheckConfig::from_env(&env(&[("PGSTEWARD_DATABASE_URL", &pg.admin_url(&db))]))
            .unwrap();
    let task = HealthCheck::new(config, moto_deps(None).await);
    let report = task.handle(json!({})).await.unwrap();
    for name in [
        "deadTupleRatioWorst",
        "longestIdleInTransactionSeconds",
        "oldestXidAge",
        "activeConnectionsPercent",
    ] {
        assert_eq!(metric(&report, name)["level"], "ok", "{name}");
    }
    // The first run of a process has no growth baseline: skipped, with the reason.
    assert!(report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["item"] == "databaseGrowthPercentPerDay"));
}

#[tokio::test(flavor = "multi_thread")]
async fn terminates_idle_sessions_but_never_protected_roles_nor_in_a_dry_run() {
    let _turn = SESSIONS.lock().await;
    let pg = Postgres::shared();
    let db = pg.create_database("hc_term").await;
    let app = login_role(pg, "app", "app-pw").await;
    let ops = login_role(pg, "ops", "ops-pw").await;
    let (app_session, app_pid) = idle_in_transaction(pg, &app, "app-pw", &db).await;
    let (_ops_session, ops_pid) = idle_in_transaction(pg, &ops, "ops-pw", &db).await;
    let (_own_session, own_pid) =
        idle_in_transaction(pg, "postgres", &pg.superuser_password, &db).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let config = HealthCheckConfig::from_env(&env(&[
        ("PGSTEWARD_DATABASE_URL", &pg.admin_url(&db)),
        (
            "PGSTEWARD_THRESHOLDS",
            r#"{"longestIdleInTransactionSeconds": {"warning": 0.5, "critical": 1}}"#,
        ),
        ("PGSTEWARD_PROTECTED_ROLES", &format!("rdsadmin,{ops}")),
    ]))
    .unwrap();
    let task = HealthCheck::new(config, moto_deps(None).await);

    let dry = task
        .run(&Request {
            action: Action::TerminateIdle,
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(dry.dry_run);
    let would: Vec<_> = dry
        .done
        .iter()
        .map(|d| (d.action.as_str(), d.detail["pid"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        would,
        vec![("would-terminate-idle-session", app_pid as i64)]
    );
    for pid in [app_pid, ops_pid, own_pid] {
        assert!(alive(pg, pid).await, "dry run terminated pid {pid}");
    }

    let real = task
        .run(&Request {
            action: Action::TerminateIdle,
            ..Default::default()
        })
        .await
        .unwrap();
    let done: Vec<_> = real
        .done
        .iter()
        .map(|d| (d.action.as_str(), d.detail["pid"].as_i64().unwrap()))
        .collect();
    assert_eq!(done, vec![("terminate-idle-session", app_pid as i64)]);
    let skipped: Vec<_> = real.skipped.iter().map(|s| s.item.clone()).collect();
    assert!(
        skipped.contains(&format!("pid {ops_pid} ({ops})")),
        "{skipped:?}"
    );
    assert!(
        skipped.contains(&format!("pid {own_pid} (postgres)")),
        "{skipped:?}"
    );
    for _ in 0..50 {
        if !alive(pg, app_pid).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(pg, app_pid).await, "the app session survived");
    assert!(app_session.simple_query("SELECT 1").await.is_err());
    assert!(
        alive(pg, ops_pid).await,
        "a protected role's session was terminated"
    );
    assert!(
        alive(pg, own_pid).await,
        "pgsteward's own role's session was terminated"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connects_with_an_rds_secret_and_publishes_the_report() {
    let pg = Postgres::shared();
    let db = pg.create_database("hc_secret").await;
    let arn = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    let ca = pg.ca.to_string_lossy().to_string();
    let config = HealthCheckConfig::from_env(&env(&[
        ("PGSTEWARD_DB_SECRET_ARN", &arn),
        ("PGSTEWARD_CA_BUNDLE", &ca),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-secret"),
        ("PGSTEWARD_EVENT_BUS", "default"),
    ]))
    .unwrap();
    let task = HealthCheck::new(config, moto_deps(Some("default")).await);
    let report = task.handle(json!({"action": "check"})).await.unwrap();
    assert_eq!(report["details"]["database"], db.as_str());
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{}",
        report["warnings"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_ca_is_refused_and_no_ca_never_means_plaintext() {
    let pg = Postgres::shared();
    let wrong = format!(
        "postgresql://postgres:{}@localhost:{}/postgres?sslrootcert={}",
        pg.superuser_password,
        pg.port,
        pg.wrong_ca.display()
    );
    let config = HealthCheckConfig::from_env(&env(&[("PGSTEWARD_DATABASE_URL", &wrong)])).unwrap();
    let err = HealthCheck::new(config, moto_deps(None).await)
        .handle(json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "InvalidConfig");
    let msg = err.to_string();
    assert!(
        msg.contains("UnknownIssuer") && msg.contains("CA bundle"),
        "{msg}"
    );
    assert!(!msg.contains(&pg.superuser_password), "{msg}");

    let bare = format!(
        "postgresql://postgres:{}@localhost:{}/postgres",
        pg.superuser_password, pg.port
    );
    let config = HealthCheckConfig::from_env(&env(&[("PGSTEWARD_DATABASE_URL", &bare)])).unwrap();
    let err = HealthCheck::new(config, moto_deps(None).await)
        .handle(json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no CA bundle"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_events_are_refused_before_any_database_or_aws_call() {
    let (port, knocks) = knock_counter();
    let url = format!("postgresql://u:pw@127.0.0.1:{port}/orders?sslmode=disable");
    let config = HealthCheckConfig::from_env(&env(&[
        ("PGSTEWARD_DATABASE_URL", &url),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-prod"),
        ("PGSTEWARD_EVENT_BUS", "default"),
    ]))
    .unwrap();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let mut deps = moto_deps(None).await;
    deps.secrets = Arc::new(pgsteward_core::aws::sdk::SdkSecrets::new(&sdk));
    deps.reports = Arc::new(pgsteward_core::aws::sdk::EventBridgeReports::new(
        &sdk, "default",
    ));
    let task = HealthCheck::new(config, deps);
    let alarm: Value = serde_json::from_str(include_str!(
        "../../events/health-check/alarm-idle-in-transaction.json"
    ))
    .unwrap();
    let mut other_db = alarm.clone();
    other_db["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]
        ["Database"] = json!("billing");
    let mut ok_state = alarm.clone();
    ok_state["detail"]["state"]["value"] = json!("OK");
    let cases = [
        (json!("check"), "a string"),
        (json!([{"action": "check"}]), "an array"),
        (json!({"action": "explode"}), "unknown variant `explode`"),
        (json!({"dryrun": true}), "unknown field `dryrun`"),
        (json!({"dryRun": "yes"}), "invalid type"),
        (
            json!({"source": "aws.rds", "detail-type": "RDS DB Instance Event", "detail": {}}),
            "RDS DB Instance Event",
        ),
        (other_db, "billing"),
        (ok_state, "state OK"),
    ];
    for (event, expected) in cases {
        let err = task.handle(event.clone()).await.unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput", "{event}");
        assert!(err.to_string().contains(expected), "{event}: {err}");
    }
    assert_eq!(
        knocks.load(Ordering::SeqCst),
        0,
        "a malformed event reached the database or AWS"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replication_lag_is_measured_on_the_primary_and_on_a_standby() {
    let _turn = SESSIONS.lock().await;
    let pg = Postgres::shared();
    let standby = pg.start_standby();
    let db = pg.create_database("hc_lag").await;
    // Pause replay on the standby, then write on the primary: the standby receives WAL it
    // does not replay, so both sides see lag.
    let replica_admin = |port: u16| {
        format!(
            "host=127.0.0.1 port={port} user=postgres password={} dbname=postgres",
            pg.superuser_password
        )
    };
    let (replica, conn) =
        tokio_postgres::connect(&replica_admin(standby.port), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    pg.admin(&db)
        .await
        .batch_execute("CREATE TABLE wal AS SELECT g, repeat('w', 100) AS pad FROM generate_series(1, 20000) g")
        .await
        .unwrap();
    let primary = pg.admin("postgres").await;
    for _ in 0..100 {
        let lag: Option<f64> = primary
            .query_one("SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::float8 FROM pg_stat_replication", &[])
            .await
            .unwrap()
            .get(0);
        if lag.unwrap_or(0.0) > 1_000_000.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lag_limits = r#"{"replicationLagBytes": {"warning": 1000, "critical": 100000}}"#;
    let check = |url: String| async move {
        let config = HealthCheckConfig::from_env(&env(&[
            ("PGSTEWARD_DATABASE_URL", &url),
            ("PGSTEWARD_THRESHOLDS", lag_limits),
        ]))
        .unwrap();
        HealthCheck::new(config, moto_deps(None).await)
            .handle(json!({}))
            .await
            .unwrap()
    };
    let on_primary = check(pg.admin_url(&db)).await;
    let lag = metric(&on_primary, "replicationLagBytes");
    assert_eq!(lag["level"], "critical", "{lag}");
    assert_eq!(lag["about"], "1 replicas");
    let standby_url = format!(
        "postgresql://postgres:{}@localhost:{}/postgres?sslrootcert={}",
        pg.superuser_password,
        standby.port,
        pg.ca.display()
    );
    let on_standby = check(standby_url).await;
    assert_eq!(on_standby["details"]["inRecovery"], true);
    let lag = metric(&on_standby, "replicationLagBytes");
    assert_eq!(lag["level"], "critical", "{lag}");
    assert_eq!(lag["about"], "this server is a standby");
    replica
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_throttling_is_retried_then_typed_retryable_and_a_failed_publish_is_a_warning() {
    use pgsteward_core::aws::sdk::{EventBridgeReports, SdkSecrets};
    use pgsteward_tests::faulty_aws::FaultyAws;
    let pg = Postgres::shared();
    let faulty = FaultyAws::throttling().await;
    let sdk = faulty.sdk_config().await;

    // The secret cannot be read: the run fails as Retryable, after the SDK's retries.
    let config = HealthCheckConfig::from_env(&env(&[
        (
            "PGSTEWARD_DB_SECRET_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:pgsteward/x-AbCdEf",
        ),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-prod"),
        ("PGSTEWARD_CA_BUNDLE", &pg.ca.to_string_lossy()),
    ]))
    .unwrap();
    let mut deps = moto_deps(None).await;
    deps.secrets = Arc::new(SdkSecrets::new(&sdk));
    let err = HealthCheck::new(config, deps)
        .handle(json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Retryable", "{err}");
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
    assert_eq!(faulty.requests(), 3, "the SDK should try 3 times");

    // The check itself works; only publication fails: a warning, not a failed run.
    let db = pg.create_database("hc_throttled").await;
    let config =
        HealthCheckConfig::from_env(&env(&[("PGSTEWARD_DATABASE_URL", &pg.admin_url(&db))]))
            .unwrap();
    let mut deps = moto_deps(None).await;
    deps.reports = Arc::new(EventBridgeReports::new(&sdk, "default"));
    let report = HealthCheck::new(config, deps)
        .handle(json!({}))
        .await
        .unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("not published")),
        "{warnings:?}"
    );
}
