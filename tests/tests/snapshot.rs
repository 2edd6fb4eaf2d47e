//! snapshot against moto: RDS/Aurora snapshots per schedule slot and cross-Region copies.

use std::sync::Arc;

use pgsteward_tests::faulty_aws::{answering_proxy, manual_snapshots_quota};
use pgsteward_tests::moto::Moto;
use pgsteward_tests::snapshots::{id, instance, rds, task, task_at};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn one_snapshot_per_slot_however_often_the_schedule_delivers() {
    let db = id();
    instance(&db).await;
    let task = Arc::new(task(&[("PGSTEWARD_DB_IDENTIFIER", &db)]).await);
    let event = json!({"action": "snapshot", "scheduledTime": "2026-11-22T02:00:00Z"});
    // The first delivery creates it; 99 more, at once, all find it. (Two first deliveries
    // racing end in RDS's DBSnapshotAlreadyExists, which the task reports as found.)
    let mut created = task.handle(event.clone(), None).await.unwrap()["done"]
        .as_array()
        .unwrap()
        .len();
    let runs: Vec<_> = (0..99)
        .map(|_| {
            let (task, event) = (task.clone(), event.clone());
            tokio::spawn(async move { task.handle(event, None).await })
        })
        .collect();
    for r in runs {
        let report = r.await.unwrap().unwrap();
        created += report["done"].as_array().unwrap().len();
    }
    assert_eq!(created, 1, "exactly one delivery creates the snapshot");
    let name = format!("pgsteward-{db}-20261122-0200");
    let snaps = rds()
        .await
        .describe_db_snapshots()
        .db_instance_identifier(&db)
        .send()
        .await
        .unwrap();
    let ours: Vec<_> = snaps
        .db_snapshots()
        .iter()
        .filter(|s| s.db_snapshot_identifier() == Some(name.as_str()))
        .collect();
    assert_eq!(ours.len(), 1);
    let tags = rds()
        .await
        .list_tags_for_resource()
        .resource_name(ours[0].db_snapshot_arn().unwrap())
        .send()
        .await
        .unwrap();
    let tag = |k: &str| {
        tags.tag_list()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    assert_eq!(tag("pgsteward:managed").as_deref(), Some("true"));
    assert_eq!(
        tag("pgsteward:tier").as_deref(),
        Some("weekly"),
        "2026-11-22 is a Sunday"
    );
    assert_eq!(
        tag("pgsteward:schedule").as_deref(),
        Some("2026-11-22T02:00:00+00:00")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_that_cannot_be_snapshotted_are_named() {
    let missing = task(&[("PGSTEWARD_DB_IDENTIFIER", "no-such-db")]).await;
    let err = missing
        .handle(json!({"action": "snapshot"}), None)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NotFound");
    assert!(err.to_string().contains("no-such-db"), "{err}");

    let db = id();
    instance(&db).await;
    rds()
        .await
        .stop_db_instance()
        .db_instance_identifier(&db)
        .send()
        .await
        .unwrap();
    let stopped = task(&[("PGSTEWARD_DB_IDENTIFIER", &db)]).await;
    let err = stopped
        .handle(json!({"action": "snapshot"}), None)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "InvalidInput");
    assert!(err.to_string().contains("stopped"), "{err}");
}

/// Manual snapshots of `db` in moto, reached directly (moto adds an automated one at creation).
async fn snapshots_of(db: &str) -> Vec<String> {
    rds()
        .await
        .describe_db_snapshots()
        .db_instance_identifier(db)
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .filter(|s| s.snapshot_type() == Some("manual"))
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect()
}

/// A snapshot task whose RDS calls go through a proxy that answers DescribeAccountAttributes
/// (moto does not implement it) with this ManualSnapshots quota.
async fn task_with_quota(db: &str, used: i64, max: i64) -> pgsteward_core::snapshot::SnapshotTask {
    let proxy = answering_proxy(
        &Moto::shared().endpoint,
        "DescribeAccountAttributes",
        manual_snapshots_quota(used, max),
    )
    .await;
    task_at(&proxy, &[("PGSTEWARD_DB_IDENTIFIER", db)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_manual_snapshot_quota_is_refused_with_its_figures_and_nothing_is_created() {
    let db = id();
    instance(&db).await;
    let task = task_with_quota(&db, 100, 100).await;
    let err = task
        .handle(
            json!({"action": "snapshot", "scheduledTime": "2026-11-25T02:00:00Z"}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "Unsafe", "{err}");
    assert!(err.to_string().contains("100 of 100"), "{err}");
    assert!(err.to_string().contains("retention-prune"), "{err}");
    assert!(snapshots_of(&db).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quota_with_room_creates_the_snapshot_without_a_warning() {
    let db = id();
    instance(&db).await;
    let task = task_with_quota(&db, 5, 100).await;
    let report = task
        .handle(
            json!({"action": "snapshot", "scheduledTime": "2026-11-25T02:00:00Z"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(report["done"][0]["action"], "create-snapshot", "{report}");
    assert!(
        report["warnings"].as_array().is_none_or(|w| w.is_empty()),
        "the quota was read, so no warning: {report}"
    );
    assert_eq!(
        snapshots_of(&db).await,
        vec![format!("pgsteward-{db}-20261125-0200")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn aurora_clusters_are_retried_until_available_then_snapshotted() {
    let cluster = id();
    rds()
        .await
        .create_db_cluster()
        .db_cluster_identifier(&cluster)
        .engine("aurora-postgresql")
        .master_username("postgres")
        .master_user_password("not-used-here")
        .send()
        .await
        .expect("moto cluster");
    let task = task(&[
        ("PGSTEWARD_DB_IDENTIFIER", &cluster),
        ("PGSTEWARD_SNAPSHOT_SOURCE", "cluster"),
    ])
    .await;
    let event = json!({"action": "snapshot", "scheduledTime": "2026-11-23T02:00:00Z"});
    let mut report = None;
    for _ in 0..5 {
        match task.handle(event.clone(), None).await {
            Ok(r) => {
                report = Some(r);
                break;
            }
            Err(e) => assert_eq!(e.error_type(), "Retryable", "{e}"),
        }
    }
    let report = report.expect("the cluster became available");
    assert_eq!(
        report["done"][0]["target"],
        format!("pgsteward-{cluster}-20261123-0200")
    );
    assert_eq!(report["details"]["tier"], "daily");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_managed_snapshot_is_copied_once_to_each_destination_with_its_tags() {
    let db = id();
    instance(&db).await;
    let vars = [
        ("PGSTEWARD_DB_IDENTIFIER", db.as_str()),
        (
            "PGSTEWARD_COPY_DESTINATIONS",
            r#"[{"region": "us-west-2"}]"#,
        ),
    ];
    let task = task(&vars).await;
    let made = task
        .handle(
            json!({"action": "snapshot", "scheduledTime": "2026-11-24T02:00:00Z"}),
            None,
        )
        .await
        .unwrap();
    let name = made["done"][0]["target"].as_str().unwrap().to_string();
    let arn = made["details"]["snapshot"]["arn"]
        .as_str()
        .unwrap()
        .to_string();
    let mut event: Value = serde_json::from_str(include_str!(
        "../../events/snapshot/rds-snapshot-created.json"
    ))
    .unwrap();
    event["detail"]["SourceIdentifier"] = json!(name);
    event["detail"]["SourceArn"] = json!(arn);

    let copied = task.handle(event.clone(), None).await.unwrap();
    assert_eq!(copied["done"][0]["action"], "copy-snapshot", "{copied}");
    let west = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(&Moto::shared().sdk_config().await)
            .region(aws_sdk_rds::config::Region::new("us-west-2"))
            .build(),
    );
    let copies = west
        .describe_db_snapshots()
        .db_snapshot_identifier(&name)
        .send()
        .await
        .unwrap();
    let copy = &copies.db_snapshots()[0];
    let tags = west
        .list_tags_for_resource()
        .resource_name(copy.db_snapshot_arn().unwrap())
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = tags.tag_list().iter().filter_map(|t| t.key()).collect();
    assert!(
        keys.contains(&"pgsteward:tier") && keys.contains(&"pgsteward:copy-of"),
        "{keys:?}"
    );

    let again = task.handle(event.clone(), None).await.unwrap();
    assert!(again["done"].as_array().unwrap().is_empty());
    assert!(again["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("exists already"));

    let mut foreign = event;
    foreign["detail"]["SourceIdentifier"] = json!("rds:orders-prod-2026-11-22-02-00");
    let err = task.handle(foreign, None).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidInput");
    assert!(
        err.to_string()
            .contains("not one of this function's managed snapshots"),
        "{err}"
    );
}

/// An RDS client for moto in `region`.
async fn rds_in(region: &'static str) -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(&Moto::shared().sdk_config().await)
            .region(aws_sdk_rds::config::Region::new(region))
            .build(),
    )
}

async fn restore_accounts(region: &'static str, snapshot: &str) -> Vec<String> {
    rds_in(region)
        .await
        .describe_db_snapshot_attributes()
        .db_snapshot_identifier(snapshot)
        .send()
        .await
        .unwrap()
        .db_snapshot_attributes_result()
        .unwrap()
        .db_snapshot_attributes()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().to_vec())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_copy_is_shared_with_the_destination_account_once() {
    let db = id();
    instance(&db).await;
    let account = "210987654321";
    let destinations = format!(r#"[{{"region": "us-west-2", "shareWithAccount": "{account}"}}]"#);
    let task = task(&[
        ("PGSTEWARD_DB_IDENTIFIER", db.as_str()),
        ("PGSTEWARD_COPY_DESTINATIONS", &destinations),
    ])
    .await;
    let made = task
        .handle(
            json!({"action": "snapshot", "scheduledTime": "2026-11-26T02:00:00Z"}),
            None,
        )
        .await
        .unwrap();
    let name = made["done"][0]["target"].as_str().unwrap().to_string();
    let arn = made["details"]["snapshot"]["arn"].as_str().unwrap();
    let mut created: Value = serde_json::from_str(include_str!(
        "../../events/snapshot/rds-snapshot-created.json"
    ))
    .unwrap();
    created["detail"]["SourceIdentifier"] = json!(name);
    created["detail"]["SourceArn"] = json!(arn);

    // The home Region's event copies; the share waits for the copy's own event.
    let copied = task.handle(created, None).await.unwrap();
    assert_eq!(copied["done"][0]["action"], "copy-snapshot", "{copied}");
    let warning = copied["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains(account) && warning.contains("RDS-EVENT-0060"),
        "{copied}"
    );
    assert!(restore_accounts("us-west-2", &name).await.is_empty());

    let mut finished: Value = serde_json::from_str(include_str!(
        "../../events/snapshot/rds-snapshot-copy-finished.json"
    ))
    .unwrap();
    let copy_arn = arn.replace(":us-east-1:", ":us-west-2:");
    finished["detail"]["SourceIdentifier"] = json!(name);
    finished["detail"]["SourceArn"] = json!(copy_arn);
    finished["resources"] = json!([copy_arn]);

    // The copy starting is not the copy being usable.
    let mut started = finished.clone();
    started["detail"]["EventID"] = json!("RDS-EVENT-0059");
    let early = task.handle(started, None).await.unwrap();
    assert!(early["done"].as_array().unwrap().is_empty(), "{early}");
    assert!(
        early["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("RDS-EVENT-0060"),
        "{early}"
    );

    let mut dry = pgsteward_core::snapshot::parse_event(finished.clone(), &task.config).unwrap();
    dry.dry_run = true;
    let planned = task.run(&dry, None).await.unwrap();
    assert_eq!(planned.done[0].action, "would-share-snapshot");
    assert!(restore_accounts("us-west-2", &name).await.is_empty());

    let shared = task.handle(finished.clone(), None).await.unwrap();
    assert_eq!(shared["done"][0]["action"], "share-snapshot", "{shared}");
    assert_eq!(
        shared["done"][0]["target"],
        format!("{name} in us-west-2"),
        "{shared}"
    );
    assert_eq!(restore_accounts("us-west-2", &name).await, vec![account]);
    assert!(
        restore_accounts("us-east-1", &name).await.is_empty(),
        "the home Region's snapshot is not shared"
    );

    let again = task.handle(finished.clone(), None).await.unwrap();
    assert!(again["done"].as_array().unwrap().is_empty(), "{again}");
    assert!(again["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("already shared"));

    let mut elsewhere = finished;
    elsewhere["region"] = json!("eu-central-1");
    let err = task.handle(elsewhere, None).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidInput");
    assert!(err.to_string().contains("'eu-central-1'"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aurora_copy_is_shared_once_it_is_available() {
    let cluster = id();
    rds()
        .await
        .create_db_cluster()
        .db_cluster_identifier(&cluster)
        .engine("aurora-postgresql")
        .master_username("postgres")
        .master_user_password("not-used-here")
        .send()
        .await
        .expect("moto cluster");
    let account = "210987654321";
    let destinations = format!(r#"[{{"region": "us-west-2", "shareWithAccount": "{account}"}}]"#);
    let task = task(&[
        ("PGSTEWARD_DB_IDENTIFIER", cluster.as_str()),
        ("PGSTEWARD_SNAPSHOT_SOURCE", "cluster"),
        ("PGSTEWARD_COPY_DESTINATIONS", &destinations),
    ])
    .await;
    // Retried while RDS (moto) reports `creating`, as Step Functions or Lambda would.
    async fn until_done(task: &pgsteward_core::snapshot::SnapshotTask, event: &Value) -> Value {
        for _ in 0..5 {
            match task.handle(event.clone(), None).await {
                Ok(r) => return r,
                Err(e) => assert_eq!(e.error_type(), "Retryable", "{e}"),
            }
        }
        panic!("still not done after 5 attempts: {event}");
    }
    let made = until_done(
        &task,
        &json!({"action": "snapshot", "scheduledTime": "2026-11-27T02:00:00Z"}),
    )
    .await;
    let name = made["done"][0]["target"].as_str().unwrap().to_string();
    let arn = made["details"]["snapshot"]["arn"]
        .as_str()
        .unwrap()
        .to_string();
    let event = |region: &str, id: &str| {
        json!({
            "version": "0", "id": "0b7e", "detail-type": "RDS DB Cluster Snapshot Event",
            "source": "aws.rds", "account": "123456789012", "time": "2026-11-27T02:09:12Z",
            "region": region, "resources": [arn.replace(":us-east-1:", &format!(":{region}:"))],
            "detail": {
                "EventCategories": ["backup"], "SourceType": "CLUSTER_SNAPSHOT",
                "SourceArn": arn.replace(":us-east-1:", &format!(":{region}:")),
                "Date": "2026-11-27T02:09:12.311Z", "Message": "Manual cluster snapshot created",
                "SourceIdentifier": name, "EventID": id
            }
        })
    };
    let copied = until_done(&task, &event("us-east-1", "RDS-EVENT-0075")).await;
    assert_eq!(copied["done"][0]["action"], "copy-snapshot", "{copied}");
    assert!(
        copied["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .contains("RDS-EVENT-0075"),
        "{copied}"
    );

    let shared = until_done(&task, &event("us-west-2", "RDS-EVENT-0075")).await;
    assert_eq!(shared["done"][0]["action"], "share-snapshot", "{shared}");
    let attrs = rds_in("us-west-2")
        .await
        .describe_db_cluster_snapshot_attributes()
        .db_cluster_snapshot_identifier(&name)
        .send()
        .await
        .unwrap();
    let restore: Vec<String> = attrs
        .db_cluster_snapshot_attributes_result()
        .unwrap()
        .db_cluster_snapshot_attributes()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().to_vec())
        .collect();
    assert_eq!(restore, vec![account]);
    let again = until_done(&task, &event("us-west-2", "RDS-EVENT-0075")).await;
    assert!(again["done"].as_array().unwrap().is_empty(), "{again}");
}
