//! Helpers for the pitr-restore tests: a source instance with automated backups in moto, a
//! DB subnet group over moto's default subnets, application secrets, and the task wired to
//! moto, with the endpoint override sending a restored instance's SQL to the local cluster.

use std::sync::Arc;

use pgsteward_core::aws::objects::{ObjectStore, S3Objects};
use pgsteward_core::aws::rds_restore::SdkRdsRestore;
use pgsteward_core::aws::secret_versions::SdkSecretVersions;
use pgsteward_core::pitr_restore::{ObjectStores, PitrConfig, PitrRestore};
use pgsteward_core::Error;
use serde_json::{json, Value};

use crate::fixtures::rds_secret;
use crate::fixtures::{env, moto_deps};
use crate::moto::Moto;
use crate::postgres::Postgres;
use crate::snapshots::{id, rds};

/// Held by every test of a binary that creates RDS instances, and by the ones that count
/// them: "nothing was created" is then a count that other tests cannot disturb.
pub static RDS_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A source instance with 7 days of automated backups and a tag of its own.
pub async fn source(id: &str) {
    rds()
        .await
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .backup_retention_period(7)
        .master_username("postgres")
        .master_user_password("not-used-here")
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("team")
                .value("orders")
                .build(),
        )
        .send()
        .await
        .expect("moto source instance");
}

/// moto's default subnets (EC2 DescribeSubnets; the tests have no EC2 SDK client).
fn default_subnets() -> Vec<String> {
    use std::io::{Read, Write};
    let endpoint = &Moto::shared().endpoint;
    let addr = endpoint.trim_start_matches("http://");
    let body = "Action=DescribeSubnets&Version=2016-11-15";
    let mut s = std::net::TcpStream::connect(addr).expect("moto");
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split("<subnetId>")
        .skip(1)
        .filter_map(|p| p.split('<').next().map(str::to_string))
        .take(2)
        .collect()
}

/// A DB subnet group over two of moto's default subnets.
pub async fn subnet_group() -> String {
    let name = crate::unique("restore-subnets").replace('_', "-");
    rds()
        .await
        .create_db_subnet_group()
        .db_subnet_group_name(&name)
        .db_subnet_group_description("pgsteward restores")
        .set_subnet_ids(Some(default_subnets()))
        .send()
        .await
        .expect("moto subnet group");
    name
}

/// Every instance identifier in moto's home Region.
pub async fn instances() -> Vec<String> {
    let mut ids: Vec<String> = rds()
        .await
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
        .iter()
        .filter_map(|i| i.db_instance_identifier().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

pub async fn describe(id: &str) -> aws_sdk_rds::types::DbInstance {
    rds()
        .await
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .clone()
}

/// moto's endpoint address for an instance.
pub async fn endpoint(id: &str) -> String {
    describe(id)
        .await
        .endpoint()
        .and_then(|e| e.address())
        .expect("endpoint")
        .to_string()
}

/// The override that sends `host`'s SQL to the local cluster, verified as `localhost`.
pub fn override_to_local(pg: &Postgres, host: &str) -> String {
    format!("{host}=127.0.0.1:{}/localhost", pg.port)
}

pub async fn secrets() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&Moto::shared().sdk_config().await)
}

/// A secret holding `body`; returns its ARN.
pub async fn secret(body: &Value) -> String {
    secrets()
        .await
        .create_secret()
        .name(crate::unique("orders/app"))
        .secret_string(body.to_string())
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("arn")
}

/// The AWSCURRENT value, asked for by its stage: moto 5.2.5's UpdateSecretVersionStage moves
/// the label but not the version a GetSecretValue without a stage answers (AWS answers
/// AWSCURRENT).
pub async fn secret_string(arn: &str) -> String {
    secrets()
        .await
        .get_secret_value()
        .secret_id(arn)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap()
}

/// The task wired to moto, configured with `vars` (plus the test CA).
pub async fn task(pg: &Postgres, vars: &[(&str, &str)]) -> PitrRestore {
    let ca = pg.ca.display().to_string();
    let mut all = vec![("PGSTEWARD_CA_BUNDLE", ca.as_str())];
    all.extend_from_slice(vars);
    let config = PitrConfig::from_env(&env(&all)).unwrap();
    let sdk = Moto::shared().sdk_config().await;
    let stores_sdk = sdk.clone();
    let stores: ObjectStores = Arc::new(move |bucket: &str| {
        Arc::new(S3Objects::new(&stores_sdk, bucket, None)) as Arc<dyn ObjectStore>
    });
    PitrRestore::new(
        config,
        moto_deps(None).await,
        Arc::new(SdkRdsRestore::new(&sdk)),
        Arc::new(SdkSecretVersions::new(&sdk)),
        stores,
    )
}

/// `n` rows in `table` (created), statistics left alone.
pub async fn table_with_rows(pg: &Postgres, db: &str, table: &str, n: i64) {
    pg.admin(db)
        .await
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, created_at timestamptz DEFAULT now());
             INSERT INTO {table} (id) SELECT g FROM generate_series(1, {n}) g;"
        ))
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
}

// Shared by the pitr-restore test files.

pub async fn act(t: &PitrRestore, event: Value) -> Result<Value, Error> {
    t.handle(event).await
}

pub fn message(r: Result<Value, Error>, error_type: &str) -> String {
    let e = r.expect_err("expected a refusal");
    assert_eq!(e.error_type(), error_type, "{e}");
    e.to_string()
}

/// A source with backups, a subnet group, and a task for it (no database needed).
pub async fn aws_only(extra: &[(&str, &str)]) -> (PitrRestore, String, String) {
    let pg = Postgres::shared();
    let src = id();
    source(&src).await;
    let subnets = subnet_group().await;
    let mut vars = vec![
        (
            "PGSTEWARD_DATABASE_URL",
            "postgresql://u@127.0.0.1:1/db?sslmode=disable",
        ),
        ("PGSTEWARD_DB_IDENTIFIER", src.as_str()),
        ("PGSTEWARD_RESTORE_SUBNET_GROUP", subnets.as_str()),
        (
            "PGSTEWARD_RESTORE_SECURITY_GROUPS",
            "sg-0123456789abcdef0,sg-0fedcba9876543210",
        ),
        ("PGSTEWARD_RESTORE_INSTANCE_CLASS", "db.t3.small"),
    ];
    vars.extend_from_slice(extra);
    (task(pg, &vars).await, src, subnets)
}

/// A database standing in for the restored instance, reached through the override.
pub struct Restored {
    pub t: PitrRestore,
    pub db: String,
    pub target: String,
}

pub async fn restored(extra: &[(&str, &str)]) -> Restored {
    let pg = Postgres::shared();
    let db = pg.create_database("restored").await;
    let (t, src, subnets) = {
        let _rds = RDS_WRITES.lock().await;
        let (t, src, subnets) = aws_only(&[]).await;
        let target = format!("{src}-restore");
        act(&t, json!({"action": "restore", "targetDbInstanceIdentifier": target, "useLatestRestorableTime": true}))
            .await
            .unwrap();
        (t, src, subnets)
    };
    drop(t);
    let target = format!("{src}-restore");
    let over = override_to_local(pg, &endpoint(&target).await);
    let secret = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    let mut vars = vec![
        ("PGSTEWARD_DB_SECRET_ARN", secret.as_str()),
        ("PGSTEWARD_DB_IDENTIFIER", src.as_str()),
        ("PGSTEWARD_RESTORE_SUBNET_GROUP", subnets.as_str()),
        ("PGSTEWARD_ENDPOINT_OVERRIDE", over.as_str()),
    ];
    vars.extend_from_slice(extra);
    Restored {
        t: task(pg, &vars).await,
        db,
        target,
    }
}
