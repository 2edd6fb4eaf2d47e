//! The real health-check binary on a local Lambda Runtime API, with payloads from
//! events/health-check/, configured from a Secrets Manager secret in moto.

use std::process::{Child, Stdio};

use pgsteward_tests::fixtures::{login_role, rds_secret};
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::runtime_api::{function_command, Outcome, RuntimeApi};
use pgsteward_tests::{repo_root, workspace_binary};
use serde_json::Value;

fn spawn_function(api: &RuntimeApi, extra: &[(&str, String)]) -> Child {
    spawn_named("health-check", api, extra)
}

fn spawn_named(name: &str, api: &RuntimeApi, extra: &[(&str, String)]) -> Child {
    function_command(workspace_binary(name), name, api, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start the {name} binary: {e}"))
}

/// The function configured as deployed: credentials from the RDS secret in moto, the
/// test CA, identifier orders-prod; plus `extra`.
fn secret_config(
    pg: &Postgres,
    arn: String,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("PGSTEWARD_DB_SECRET_ARN", arn),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-prod".into()),
        ("PGSTEWARD_CA_BUNDLE", pg.ca.display().to_string()),
    ];
    vars.extend_from_slice(extra);
    vars
}

fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn event(name: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join("events/health-check").join(name))
        .expect("event file");
    serde_json::from_str(&text).expect("event json")
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_each_sample_event_and_keeps_the_password_out_of_the_logs() {
    let pg = Postgres::shared();
    let db = pg.create_database("lambda").await;
    let password = format!("Tr0ub4dor-{}-secret", std::process::id());
    let role = login_role(pg, "steward", &password).await;
    let arn = rds_secret(pg, &role, &password, &db).await;
    let api = RuntimeApi::start().await;
    let child = spawn_function(
        &api,
        &secret_config(pg, arn, &[("PGSTEWARD_EVENT_BUS", "default".into())]),
    );
    let events = [
        "schedule.json",
        "terminate-idle-dry-run.json",
        "alarm-idle-in-transaction.json",
        "console-check-with-previous-size.json",
    ];
    for (i, name) in events.iter().enumerate() {
        api.push(&format!("req-{i}"), event(name));
    }
    let outcomes = api.wait_outcomes(events.len(), 60).await;
    let logs = stop(child);
    assert_eq!(
        outcomes.len(),
        events.len(),
        "init error: {:?}\nlogs:\n{logs}",
        api.init_error()
    );
    for ((id, outcome), name) in outcomes.iter().zip(events) {
        let Outcome::Response(report) = outcome else {
            panic!("{name} ({id}) failed: {outcome:?}\n{logs}")
        };
        assert_eq!(report["task"], "health-check", "{name}");
        assert_eq!(report["target"], "orders-prod", "{name}");
        assert!(report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| !w.as_str().unwrap().contains("not published")));
    }
    let Outcome::Response(alarm_report) = &outcomes[2].1 else {
        unreachable!()
    };
    assert_eq!(
        alarm_report["details"]["alarm"],
        "pgsteward-orders-prod-LongestIdleInTransactionSeconds-critical"
    );
    // One EMF line per invocation, with the namespace and the Database dimension.
    let emf: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), events.len(), "{logs}");
    assert_eq!(emf[0]["Database"], "orders-prod");
    assert_eq!(
        emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "pgsteward"
    );
    assert!(emf[0]["DatabaseSizeBytes"].as_f64().unwrap() > 0.0);
    assert!(
        !logs.contains(&password),
        "the password reached the logs:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_a_typed_error_that_does_not_echo_it() {
    let pg = Postgres::shared();
    let role = login_role(pg, "steward", "the-right-one").await;
    let wrong = format!("Wr0ng-{}-guess", std::process::id());
    let arn = rds_secret(pg, &role, &wrong, "postgres").await;
    let api = RuntimeApi::start().await;
    let child = spawn_function(&api, &secret_config(pg, arn, &[]));
    api.push("req-0", event("schedule.json"));
    let outcomes = api.wait_outcomes(1, 60).await;
    let logs = stop(child);
    let Some((_, Outcome::Error(err))) = outcomes.first() else {
        panic!("expected an error: {outcomes:?}\n{logs}")
    };
    assert_eq!(err["errorType"], "InvalidConfig", "{err}");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("password authentication failed"),
        "{err}"
    );
    assert!(
        !err.to_string().contains(&wrong) && !logs.contains(&wrong),
        "{err}\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_config_stops_at_start_naming_the_variable() {
    let api = RuntimeApi::start().await;
    let child = spawn_function(
        &api,
        &[
            (
                "PGSTEWARD_DATABASE_URL",
                "postgresql://u:hunter2@localhost/db?sslmode=disable".into(),
            ),
            ("PGSTEWARD_CONNECT_TIMEOUT_SECS", "soon".into()),
        ],
    );
    let out = child.wait_with_output().expect("exit");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(
        logs.contains("PGSTEWARD_CONNECT_TIMEOUT_SECS is 'soon'"),
        "{logs}"
    );
    assert!(!logs.contains("hunter2"), "{logs}");
    assert!(
        api.first_poll().is_none(),
        "it polled for work with a broken config"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vacuum_sweep_runs_its_sample_events() {
    let pg = Postgres::shared();
    let db = pg.create_database("lambda_vs").await;
    pg.admin(&db)
        .await
        .batch_execute("CREATE SCHEMA billing")
        .await
        .unwrap();
    pgsteward_tests::fixtures::bloat(pg, &db, &["orders", "billing.invoices"], 5_000, 50).await;
    let arn = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    let api = RuntimeApi::start().await;
    let child = spawn_named("vacuum-sweep", &api, &secret_config(pg, arn, &[]));
    let read = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("events/vacuum-sweep").join(name)).unwrap(),
        )
        .unwrap()
    };
    api.push("dry", read("console-dry-run-narrowed.json"));
    api.push("nightly", read("nightly-schedule.json"));
    let outcomes = api.wait_outcomes(2, 60).await;
    let logs = stop(child);
    assert_eq!(outcomes.len(), 2, "{logs}");
    let Outcome::Response(dry) = &outcomes[0].1 else {
        panic!("{:?}\n{logs}", outcomes[0])
    };
    assert_eq!(dry["dryRun"], true);
    assert_eq!(dry["details"]["plan"].as_array().unwrap().len(), 2);
    assert!(dry["done"].as_array().unwrap().is_empty());
    let Outcome::Response(report) = &outcomes[1].1 else {
        panic!("{:?}\n{logs}", outcomes[1])
    };
    assert_eq!(report["task"], "vacuum-sweep");
    let done: Vec<&str> = report["done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["target"].as_str().unwrap())
        .collect();
    assert_eq!(done, vec!["billing.invoices", "public.orders"]);
    assert!(report["continuation"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_runs_its_sample_events() {
    let pg = Postgres::shared();
    let db = pg.create_database("lambda_snap").await;
    let arn = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    pgsteward_tests::snapshots::instance("orders-prod").await;
    let bucket = pgsteward_tests::snapshots::bucket("lambda-backups").await;
    let api = RuntimeApi::start().await;
    let child = spawn_named(
        "snapshot",
        &api,
        &secret_config(pg, arn, &[("PGSTEWARD_BACKUP_BUCKET", bucket)]),
    );
    let read = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("events/snapshot").join(name)).unwrap(),
        )
        .unwrap()
    };
    for name in [
        "console-dry-run.json",
        "daily-schedule.json",
        "logical-backup-schedule.json",
    ] {
        api.push(name, read(name));
    }
    let outcomes = api.wait_outcomes(3, 120).await;
    let logs = stop(child);
    assert_eq!(outcomes.len(), 3, "{logs}");
    let actions: Vec<String> = outcomes
        .iter()
        .map(|(id, o)| match o {
            Outcome::Response(r) => r["done"][0]["action"].as_str().unwrap_or("").to_string(),
            Outcome::Error(e) => panic!("{id}: {e}\n{logs}"),
        })
        .collect();
    assert_eq!(
        actions,
        vec!["would-create-snapshot", "create-snapshot", "logical-backup"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_prune_runs_its_sample_events() {
    let pg = Postgres::shared();
    let db = pg.create_database("lambda_prune").await;
    pg.admin(&db)
        .await
        .batch_execute(
            "CREATE TABLE audit_events (id int, created_at timestamptz);
             INSERT INTO audit_events SELECT g, now() - g * interval '1 day' FROM generate_series(1, 200) g;",
        )
        .await
        .unwrap();
    let arn = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    let instance = pgsteward_tests::snapshots::id();
    pgsteward_tests::snapshots::instance(&instance).await;
    let bucket = pgsteward_tests::snapshots::bucket("lambda-prune").await;
    let api = RuntimeApi::start().await;
    let mut vars = secret_config(
        pg,
        arn,
        &[
            ("PGSTEWARD_BACKUP_BUCKET", bucket),
            (
                "PGSTEWARD_ARCHIVE_RULES",
                r#"[{"table":"audit_events","column":"created_at","olderThanDays":90}]"#.into(),
            ),
        ],
    );
    vars.retain(|(k, _)| *k != "PGSTEWARD_DB_IDENTIFIER");
    vars.push(("PGSTEWARD_DB_IDENTIFIER", instance));
    let child = spawn_named("retention-prune", &api, &vars);
    let read = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("events/retention-prune").join(name))
                .unwrap(),
        )
        .unwrap()
    };
    for name in ["console-plan.json", "rows-only.json", "daily-schedule.json"] {
        api.push(name, read(name));
    }
    let outcomes = api.wait_outcomes(3, 120).await;
    let logs = stop(child);
    assert_eq!(outcomes.len(), 3, "{logs}");
    let reports: Vec<&Value> = outcomes
        .iter()
        .map(|(id, o)| match o {
            Outcome::Response(r) => r,
            Outcome::Error(e) => panic!("{id}: {e}\n{logs}"),
        })
        .collect();
    assert_eq!(reports[0]["dryRun"], true);
    assert_eq!(reports[1]["done"][0]["action"], "archive-and-delete");
    assert_eq!(reports[1]["done"][0]["detail"]["rows"], 111);
    // The schedule's run finds nothing more to archive and no backup to delete.
    assert_eq!(reports[2]["done"][0]["detail"]["rows"], 0);
    let rows: i64 = pg
        .admin(&db)
        .await
        .query_one("SELECT count(*) FROM audit_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 89);
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_verify_runs_its_sample_events() {
    let pg = Postgres::shared();
    let bucket = pgsteward_tests::snapshots::bucket("lambda-verify").await;
    let instance = pgsteward_tests::snapshots::id();
    let (db, manifest) = pgsteward_tests::verify::logical_dump(pg, &instance, &bucket).await;
    let arn = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    let api = RuntimeApi::start().await;
    let mut vars = secret_config(
        pg,
        arn,
        &[
            ("PGSTEWARD_BACKUP_BUCKET", bucket.clone()),
            ("PGSTEWARD_VERIFY_DATABASE_URL", pg.admin_url("postgres")),
        ],
    );
    vars.retain(|(k, _)| *k != "PGSTEWARD_DB_IDENTIFIER");
    vars.push(("PGSTEWARD_DB_IDENTIFIER", instance.clone()));
    let child = spawn_named("backup-verify", &api, &vars);
    let read = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("events/backup-verify").join(name)).unwrap(),
        )
        .unwrap()
    };
    api.push("pick", read("pick.json"));
    let picked = api.wait_outcomes(1, 60).await;
    let Some((_, Outcome::Response(picked))) = picked.first().cloned() else {
        panic!("{picked:?}\n{}", stop(child))
    };
    assert_eq!(picked["drill"]["backup"]["dumpKey"], manifest["dumpKey"]);
    // The state machine's next steps, with the pick output under "drill".
    let mut step = read("verify.json");
    step["drill"] = picked["drill"].clone();
    api.push("verify", step.clone());
    step["action"] = "teardown".into();
    api.push("teardown", step);
    api.push("report", read("report-after-failed-verify.json"));
    let outcomes = api.wait_outcomes(4, 120).await;
    let logs = stop(child);
    assert_eq!(outcomes.len(), 4, "{logs}");
    let Outcome::Response(verified) = &outcomes[1].1 else {
        panic!("{:?}\n{logs}", outcomes[1])
    };
    assert_eq!(verified["passed"], true, "{verified}");
    let Outcome::Response(torn) = &outcomes[2].1 else {
        panic!("{:?}\n{logs}", outcomes[2])
    };
    assert_eq!(torn["status"], "dropped", "{torn}");
    let Outcome::Response(report) = &outcomes[3].1 else {
        panic!("{:?}\n{logs}", outcomes[3])
    };
    assert_eq!(report["details"]["outcome"], "failed");
    let location = format!("verify-reports/{instance}/20261122-0300.json");
    assert!(
        report["details"]["location"]
            .as_str()
            .is_some_and(|l| l.ends_with(&location)),
        "{report}"
    );
    // The metric line for the alarm on the newest verified backup's age.
    assert!(logs.contains("\"DrillPassed\":0"), "{logs}");
}
