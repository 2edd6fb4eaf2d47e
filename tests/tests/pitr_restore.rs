//! pitr-restore against moto (RDS, Secrets Manager, S3) and the real PostgreSQL standing in
//! for the restored instance through the endpoint override: validation, idempotent restore,
//! Aurora, the report, the sample events, the CLI and the real binary. The checklist actions
//! are in pitr_checklist.rs.

use std::process::{Command, Stdio};

use pgsteward_core::pitr_restore::parse_event;
use pgsteward_tests::fixtures::rds_secret;
use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::restore::{
    act, aws_only, describe, endpoint, instances, message, override_to_local, source,
    table_with_rows, RDS_WRITES,
};
use pgsteward_tests::runtime_api::{lambda_env, Outcome, RuntimeApi};
use pgsteward_tests::snapshots::{bucket, id, s3};
use pgsteward_tests::{repo_root, workspace_binary};
use serde_json::{json, Value};

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
