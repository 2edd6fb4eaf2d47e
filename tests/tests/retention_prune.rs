//! retention-prune against moto with an injected clock: GFS over a year of snapshots,
//! what is never deleted, dry runs, copies, logical dumps and scratch resources.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pgsteward_core::retention_prune::policy::{self, Backup, Policy};
use pgsteward_tests::moto::Moto;
use pgsteward_tests::retention::{keys, put, snapshot_ids, snapshot_in, task};
use pgsteward_tests::snapshots::{bucket, id, instance, rds};
use serde_json::{json, Value};

const POLICY: &str = r#"{"days":7,"weeks":4,"months":12,"minKeep":3}"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 4, 0, 0).unwrap()
}

fn name(db: &str, day: DateTime<Utc>) -> String {
    format!("pgsteward-{db}-{}", day.format("%Y%m%d-0200"))
}

fn ids(report: &Value, action: &str) -> Vec<String> {
    report["done"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["action"] == action)
        .map(|d| d["target"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_year_of_daily_snapshots_is_pruned_to_the_gfs_set_and_nothing_else() {
    let db = id();
    instance(&db).await;
    let managed = [("pgsteward:managed", "true")];
    let mut expected: Vec<Backup> = Vec::new();
    for d in 0..365 {
        let day = now() - Duration::days(d);
        let verified = d == 200;
        let pinned = d == 300;
        let mut tags = managed.to_vec();
        if verified {
            tags.push(("pgsteward:verified", "2026-05-07T06:00:00Z"));
        }
        if pinned {
            tags.push(("pgsteward:pinned", "true"));
        }
        snapshot_in("us-east-1", &db, &name(&db, day), &tags).await;
        expected.push(Backup {
            id: name(&db, day),
            taken_at: day.date_naive().and_hms_opt(2, 0, 0).unwrap().and_utc(),
            managed: true,
            automated: false,
            pinned,
            verified,
            available: true,
        });
    }
    // Somebody's own snapshot, and one tagged but not "true": neither is pgsteward's.
    snapshot_in("us-east-1", &db, "before-upgrade-2025", &[]).await;
    snapshot_in(
        "us-east-1",
        &db,
        &name(&db, now() - Duration::days(400)),
        &[("pgsteward:managed", "no")],
    )
    .await;
    let automated_before = snapshot_ids(&db, "automated").await;

    let policy: Policy = serde_json::from_str(POLICY).unwrap();
    let rules = policy::plan(&expected, &policy, now());
    let keep: BTreeSet<String> = policy::kept_ids(&expected, &rules)
        .into_iter()
        .map(str::to_string)
        .collect();
    assert!(
        keep.contains(&name(&db, now() - Duration::days(200))),
        "the newest verified is kept"
    );
    assert!(keep.len() < 30, "{keep:?}");

    let vars = [
        ("PGSTEWARD_DB_IDENTIFIER", db.as_str()),
        ("PGSTEWARD_RETENTION_POLICY", POLICY),
    ];
    let t = task(&vars, now()).await;
    let dry = t
        .handle(json!({"scope": "backups", "dryRun": true}), None)
        .await
        .unwrap();
    assert_eq!(ids(&dry, "would-delete").len(), 365 - keep.len());
    assert!(ids(&dry, "delete").is_empty());
    assert_eq!(
        snapshot_ids(&db, "manual").await.len(),
        367,
        "a dry run deletes nothing"
    );
    assert_eq!(
        dry["details"]["backups"].as_array().unwrap().len(),
        367 + automated_before.len()
    );

    let report = t.handle(json!({"scope": "backups"}), None).await.unwrap();
    let deleted = ids(&report, "delete");
    assert_eq!(deleted.len(), 365 - keep.len());
    let mut oldest_first = deleted.clone();
    oldest_first.sort();
    assert_eq!(deleted, oldest_first, "deletes go oldest first");
    let mut left: BTreeSet<String> = snapshot_ids(&db, "manual").await.into_iter().collect();
    assert!(left.remove("before-upgrade-2025"));
    assert!(left.remove(&name(&db, now() - Duration::days(400))));
    assert_eq!(left, keep);
    assert_eq!(snapshot_ids(&db, "automated").await, automated_before);
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("restore window"), "{warnings}");

    // Applying it again finds nothing to delete.
    let again = t.handle(json!({"scope": "backups"}), None).await.unwrap();
    assert!(ids(&again, "delete").is_empty(), "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_and_logical_dumps_follow_the_policy_and_dumps_go_with_their_manifests() {
    let db = id();
    instance(&db).await;
    // The copy destination has the "same" instance's snapshots (copies keep its identifier).
    let west = aws_sdk_rds::Client::from_conf(
        aws_sdk_rds::config::Builder::from(&Moto::shared().sdk_config().await)
            .region(aws_config::Region::new("us-west-2"))
            .build(),
    );
    west.create_db_instance()
        .db_instance_identifier(&db)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("postgres")
        .master_user_password("not-used-here")
        .send()
        .await
        .unwrap();
    let bucket = bucket("retention").await;
    for d in 0..10 {
        let day = now() - Duration::days(d);
        snapshot_in(
            "us-west-2",
            &db,
            &name(&db, day),
            &[("pgsteward:managed", "true")],
        )
        .await;
        let base = format!(
            "pgsteward/{db}/{}/{db}-{}",
            day.format("%Y/%m/%d"),
            day.format("%Y%m%d-0230")
        );
        put(&bucket, &format!("{base}.dump"), b"PGDMP").await;
        put(&bucket, &format!("{base}.manifest.json"), b"{}").await;
    }
    // An old dump whose manifest never came: not a backup, kept for a person to look at.
    let orphan = format!("pgsteward/{db}/2026/01/01/{db}-20260101-0230.dump");
    put(&bucket, &orphan, b"PGDMP").await;
    // An old verified dump: the newest verified survives.
    let verified = format!("pgsteward/{db}/2026/02/01/{db}-20260201-0230");
    for suffix in [".dump", ".manifest.json", ".verified.json"] {
        put(&bucket, &format!("{verified}{suffix}"), b"{}").await;
    }
    let vars = [
        ("PGSTEWARD_DB_IDENTIFIER", db.as_str()),
        ("PGSTEWARD_RETENTION_POLICY", r#"{"days":3,"minKeep":1}"#),
        ("PGSTEWARD_COPY_DESTINATIONS", r#"[{"region":"us-west-2"}]"#),
        ("PGSTEWARD_BACKUP_BUCKET", bucket.as_str()),
    ];
    let report = task(&vars, now())
        .await
        .handle(json!({"scope": "backups"}), None)
        .await
        .unwrap();
    let west_left: BTreeSet<String> = west
        .describe_db_snapshots()
        .db_instance_identifier(&db)
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = (0..3)
        .map(|d| name(&db, now() - Duration::days(d)))
        .collect();
    assert_eq!(west_left, want, "{report}");
    let left = keys(&bucket, &format!("pgsteward/{db}/")).await;
    let dumps: Vec<&String> = left.iter().filter(|k| k.ends_with(".dump")).collect();
    assert_eq!(dumps.len(), 3 + 1 + 1, "{left:?}");
    assert!(left.contains(&orphan));
    assert!(left.contains(&format!("{verified}.verified.json")));
    // Every dump left that is a backup still has its manifest.
    for d in dumps.iter().filter(|k| **k != &orphan) {
        assert!(left.contains(&d.replace(".dump", ".manifest.json")), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_old_scratch_instances_are_removed() {
    let scratch = id();
    let young_clock = now();
    let mut created = Vec::new();
    for (suffix, tag) in [
        ("drill", Some("true")),
        ("prod", None),
        ("notscratch", Some("false")),
    ] {
        let name = format!("{scratch}-{suffix}");
        let mut req = rds()
            .await
            .create_db_instance()
            .db_instance_identifier(&name)
            .db_instance_class("db.t3.micro")
            .engine("postgres")
            .allocated_storage(20)
            .master_username("postgres")
            .master_user_password("not-used-here");
        if let Some(v) = tag {
            req = req.tags(
                aws_sdk_rds::types::Tag::builder()
                    .key("pgsteward:scratch")
                    .value(v)
                    .build(),
            );
        }
        req.send().await.unwrap();
        created.push(name);
    }
    let exists = |name: String| async move {
        rds()
            .await
            .describe_db_instances()
            .db_instance_identifier(name)
            .send()
            .await
            .is_ok()
    };
    let vars = [
        ("PGSTEWARD_DB_IDENTIFIER", "orders"),
        ("PGSTEWARD_SCRATCH_MAX_AGE_HOURS", "24"),
    ];
    // Moto dates instances by the wall clock: "now" is just after they were made.
    let real_now = Utc::now();
    let _ = young_clock;
    let young = task(&vars, real_now)
        .await
        .handle(json!({"scope": "scratch"}), None)
        .await
        .unwrap();
    assert!(young["done"].as_array().unwrap().is_empty(), "{young}");
    assert!(young["skipped"].to_string().contains("younger than 24 h"));
    let dry = task(&vars, real_now + Duration::hours(48))
        .await
        .handle(json!({"scope": "scratch", "dryRun": true}), None)
        .await
        .unwrap();
    assert!(ids(&dry, "would-delete-scratch").contains(&created[0]));
    assert!(
        exists(created[0].clone()).await,
        "a dry run deletes nothing"
    );
    let report = task(&vars, real_now + Duration::hours(48))
        .await
        .handle(json!({"scope": "scratch"}), None)
        .await
        .unwrap();
    let deleted = ids(&report, "delete-scratch");
    assert!(deleted.contains(&created[0]), "{report}");
    assert!(!deleted.contains(&created[1]) && !deleted.contains(&created[2]));
    assert!(!exists(created[0].clone()).await);
    assert!(exists(created[1].clone()).await && exists(created[2].clone()).await);
}
