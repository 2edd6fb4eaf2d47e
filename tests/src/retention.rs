//! Helpers for the retention tests: a task on moto with an injected clock, managed
//! snapshots made the way the snapshot task makes them, and archive objects read back.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pgsteward_core::aws::objects::S3Objects;
use pgsteward_core::aws::rds_backups::SdkRdsBackups;
use pgsteward_core::clock::FixedClock;
use pgsteward_core::retention_prune::{RetentionConfig, RetentionPrune};

use crate::fixtures::{env, moto_deps};
use crate::moto::Moto;
use crate::snapshots::{rds, s3, sdk_at};

/// A retention task whose AWS calls go to `endpoint` (moto or a proxy), at time `now`.
pub async fn task_at(endpoint: &str, vars: &[(&str, &str)], now: DateTime<Utc>) -> RetentionPrune {
    let mut all = vec![(
        "PGSTEWARD_DATABASE_URL",
        "postgresql://u@127.0.0.1:1/db?sslmode=disable",
    )];
    all.extend_from_slice(vars);
    let config = RetentionConfig::from_env(&env(&all)).unwrap();
    let sdk = sdk_at(endpoint).await;
    let store = config
        .bucket
        .clone()
        .map(|b| Arc::new(S3Objects::new(&sdk, b, None)) as _);
    let mut deps = moto_deps(None).await;
    deps.clock = Arc::new(FixedClock(now));
    RetentionPrune::new(config, deps, Arc::new(SdkRdsBackups::new(&sdk)), store)
}

pub async fn task(vars: &[(&str, &str)], now: DateTime<Utc>) -> RetentionPrune {
    task_at(&Moto::shared().endpoint, vars, now).await
}

/// A manual snapshot of `db` in `region`, with tags.
pub async fn snapshot_in(region: &str, db: &str, id: &str, tags: &[(&str, &str)]) {
    let conf = aws_sdk_rds::config::Builder::from(&Moto::shared().sdk_config().await)
        .region(aws_config::Region::new(region.to_string()))
        .build();
    aws_sdk_rds::Client::from_conf(conf)
        .create_db_snapshot()
        .db_instance_identifier(db)
        .db_snapshot_identifier(id)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .send()
        .await
        .expect("moto snapshot");
}

/// Snapshot ids of `db` in the home Region, by type.
pub async fn snapshot_ids(db: &str, kind: &str) -> Vec<String> {
    let mut ids: Vec<String> = rds()
        .await
        .describe_db_snapshots()
        .db_instance_identifier(db)
        .snapshot_type(kind)
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

/// Every key under `prefix` in `bucket`.
pub async fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3()
        .await
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

pub async fn put(bucket: &str, key: &str, body: &[u8]) {
    s3().await
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .expect("put");
}
