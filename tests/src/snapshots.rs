//! Helpers for the snapshot tests: moto clients, an RDS instance, a task on moto (directly or
//! through a proxy).

use std::sync::Arc;

use pgsteward_core::aws::objects::S3Objects;
use pgsteward_core::aws::rds_snapshots::SdkRdsSnapshots;
use pgsteward_core::snapshot::{SnapshotConfig, SnapshotTask};

use crate::fixtures::{env, moto_deps};
use crate::moto::Moto;
use crate::unique;

pub async fn rds() -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&Moto::shared().sdk_config().await)
}

pub async fn s3() -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(&Moto::shared().sdk_config().await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A new bucket in moto named after `prefix`, unique to this run.
pub async fn bucket(prefix: &str) -> String {
    let name = unique(prefix).replace('_', "-");
    s3().await
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("moto bucket");
    name
}

pub async fn instance(id: &str) {
    rds()
        .await
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("postgres")
        .master_user_password("not-used-here")
        .send()
        .await
        .expect("moto instance");
}

pub async fn task(vars: &[(&str, &str)]) -> SnapshotTask {
    task_at(&Moto::shared().endpoint, vars).await
}

/// An SDK config for moto's account reached at `endpoint` (moto itself, or a proxy before it).
pub async fn sdk_at(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_rds::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

/// A snapshot task whose RDS and S3 calls go to `endpoint`.
pub async fn task_at(endpoint: &str, vars: &[(&str, &str)]) -> SnapshotTask {
    let mut all = vec![(
        "PGSTEWARD_DATABASE_URL",
        "postgresql://u@127.0.0.1:1/db?sslmode=disable",
    )];
    all.extend_from_slice(vars);
    let config = SnapshotConfig::from_env(&env(&all)).unwrap();
    let sdk = sdk_at(endpoint).await;
    let store = config
        .bucket
        .clone()
        .map(|b| Arc::new(S3Objects::new(&sdk, b, None)) as _);
    SnapshotTask::new(
        config,
        moto_deps(None).await,
        Arc::new(SdkRdsSnapshots::new(&sdk)),
        store,
    )
}

pub fn id() -> String {
    unique("orders").replace('_', "-")
}
