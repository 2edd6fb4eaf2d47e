//! Helpers for the backup-verify tests: a real logical dump made by the snapshot task into
//! moto S3, S3 objects read and rewritten (to corrupt a dump or its manifest), a managed
//! snapshot in moto, and the task wired to moto (directly or through a proxy).

use std::sync::Arc;

use pgsteward_core::aws::objects::{ObjectStore, S3Objects};
use pgsteward_core::aws::rds_backups::SdkRdsBackups;
use pgsteward_core::aws::rds_drill::SdkRdsDrill;
use pgsteward_core::aws::rds_restore::SdkRdsRestore;
use pgsteward_core::backup_verify::{BackupVerify, RdsPorts, VerifyConfig};
use serde_json::{json, Value};

use crate::fixtures::{env, moto_deps};
use crate::moto::Moto;
use crate::postgres::Postgres;
use crate::snapshots::{rds, s3, sdk_at};

/// A database with three tables (one with a quoted schema and name) and a table partitioned
/// in two, five B-tree indexes and a GIN index, dumped by the snapshot task into `bucket` as `db_identifier`'s backup
/// of 02:30 today; returns the database and the manifest.
pub async fn logical_dump(pg: &Postgres, db_identifier: &str, bucket: &str) -> (String, Value) {
    let db = pg.create_database("verified").await;
    pg.admin(&db)
        .await
        .batch_execute(
            r#"CREATE SCHEMA "Sales";
               CREATE TABLE "Sales"."Order Items" (id serial PRIMARY KEY, sku text NOT NULL, qty int);
               INSERT INTO "Sales"."Order Items" (sku, qty) SELECT 'sku-' || (g % 97), g % 7 FROM generate_series(1, 20000) g;
               CREATE INDEX order_items_sku ON "Sales"."Order Items" (sku, qty);
               CREATE TABLE customers (id bigint PRIMARY KEY, email text UNIQUE, tags text[]);
               INSERT INTO customers SELECT g, 'c' || g || '@example.com', ARRAY['t' || (g % 5)] FROM generate_series(1, 3000) g;
               CREATE INDEX customers_tags ON customers USING gin (tags);
               CREATE TABLE audit (at timestamptz DEFAULT now(), what text);
               CREATE INDEX audit_at ON audit (at);
               CREATE TABLE events (id int, day date) PARTITION BY RANGE (day);
               CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
               CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
               INSERT INTO events SELECT g, date '2025-07-01' + g % 300 FROM generate_series(1, 1000) g;"#,
        )
        .await
        .expect("schema");
    let today = chrono::Utc::now().format("%Y-%m-%dT02:30:00Z").to_string();
    let task = crate::snapshots::task(&[
        ("PGSTEWARD_DATABASE_URL", &pg.admin_url(&db)),
        ("PGSTEWARD_DB_IDENTIFIER", db_identifier),
        ("PGSTEWARD_BACKUP_BUCKET", bucket),
    ])
    .await;
    let report = task
        .handle(
            json!({"action": "logical-backup", "scheduledTime": today}),
            None,
        )
        .await
        .expect("logical backup");
    (db, report["details"]["manifest"].clone())
}

pub async fn object(bucket: &str, key: &str) -> Option<Vec<u8>> {
    let out = s3()
        .await
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(out.body.collect().await.unwrap().into_bytes().to_vec())
}

pub async fn put_object(bucket: &str, key: &str, bytes: Vec<u8>) {
    s3().await
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(bytes.into())
        .send()
        .await
        .expect("put object");
}

/// The task against moto reached at `endpoint` (moto, or a proxy before it), configured with
/// `vars` plus the test CA.
pub async fn task_at(endpoint: &str, pg: &Postgres, vars: &[(&str, &str)]) -> BackupVerify {
    let ca = pg.ca.display().to_string();
    let mut all = vec![("PGSTEWARD_CA_BUNDLE", ca.as_str())];
    all.extend_from_slice(vars);
    let config = VerifyConfig::from_env(&env(&all)).unwrap();
    let sdk = sdk_at(endpoint).await;
    let store = config
        .bucket
        .clone()
        .map(|b| Arc::new(S3Objects::new(&sdk, b, None)) as Arc<dyn ObjectStore>);
    let rds = RdsPorts {
        restore: Arc::new(SdkRdsRestore::new(&sdk)),
        backups: Arc::new(SdkRdsBackups::new(&sdk)),
        drill: Arc::new(SdkRdsDrill::new(&sdk)),
    };
    let mut t = BackupVerify::new(config, moto_deps(None).await, rds, store);
    t.emit_emf = false;
    t
}

pub async fn task(pg: &Postgres, vars: &[(&str, &str)]) -> BackupVerify {
    task_at(&Moto::shared().endpoint, pg, vars).await
}

/// A managed snapshot of `source` for the 02:00 slot of today, as the snapshot task names
/// and tags it.
pub async fn managed_snapshot(source: &str) -> String {
    let id = format!(
        "pgsteward-{source}-{}",
        chrono::Utc::now().format("%Y%m%d-0200")
    );
    let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
    rds()
        .await
        .create_db_snapshot()
        .db_instance_identifier(source)
        .db_snapshot_identifier(&id)
        .tags(tag("pgsteward:managed", "true"))
        .tags(tag("pgsteward:tier", "daily"))
        .send()
        .await
        .expect("moto snapshot");
    id
}

/// The tags of a snapshot, as pairs.
pub async fn snapshot_tags(id: &str) -> Vec<(String, String)> {
    rds()
        .await
        .describe_db_snapshots()
        .db_snapshot_identifier(id)
        .send()
        .await
        .unwrap()
        .db_snapshots()[0]
        .tag_list()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or("").to_string(),
                t.value().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Whether a database of that name exists on the shared server.
pub async fn database_exists(pg: &Postgres, name: &str) -> bool {
    pg.admin("postgres")
        .await
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some()
}

/// A drill id unique to this run (tests run drills in parallel on one server).
pub fn drill_id() -> String {
    crate::unique("t").replace('_', "-")
}
