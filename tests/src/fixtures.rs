//! Shared test setup: configs, SDK-backed ports pointed at moto, and database states that
//! trip the runbook's metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pgsteward_core::aws::sdk::{EventBridgeReports, SdkAuthTokens, SdkRds, SdkSecrets};
use pgsteward_core::aws::{NoReports, ReportSink};
use pgsteward_core::clock::SystemClock;
use pgsteward_core::Deps;

use crate::moto::Moto;
use crate::postgres::Postgres;

pub fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The real SDK adapters, pointed at the shared moto. `bus` enables report publication.
pub async fn moto_deps(bus: Option<&str>) -> Deps {
    let sdk = Moto::shared().sdk_config().await;
    let reports: Arc<dyn ReportSink> = match bus {
        Some(b) => Arc::new(EventBridgeReports::new(&sdk, b)),
        None => Arc::new(NoReports),
    };
    Deps {
        secrets: Arc::new(SdkSecrets::new(&sdk)),
        tokens: Arc::new(SdkAuthTokens::new(&sdk)),
        reports,
        rds: Arc::new(SdkRds::new(&sdk)),
        clock: Arc::new(SystemClock),
    }
}

/// Stores an RDS-format secret for `user` in moto and returns its ARN.
pub async fn rds_secret(pg: &Postgres, user: &str, password: &str, db: &str) -> String {
    let sdk = Moto::shared().sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let body = serde_json::json!({
        "engine": "postgres", "host": "localhost", "port": pg.port,
        "username": user, "password": password, "dbname": db,
    });
    client
        .create_secret()
        .name(crate::unique("pgsteward/test"))
        .secret_string(body.to_string())
        .send()
        .await
        .expect("create secret in moto")
        .arn
        .expect("secret arn")
}

/// A table of 20,000 rows with half of them dead (autovacuum off): a 50% dead-tuple ratio.
pub async fn bloated_table(pg: &Postgres, db: &str) {
    let c = pg.admin(db).await;
    c.batch_execute(
        "CREATE TABLE orders (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = false);
         INSERT INTO orders SELECT g, repeat('x', 50) FROM generate_series(1, 20000) g;
         DELETE FROM orders WHERE id % 2 = 0;",
    )
    .await
    .expect("bloat");
    // Statistics reach shared memory asynchronously; wait until they are visible.
    for _ in 0..100 {
        let row = c
            .query_one("SELECT coalesce(sum(n_dead_tup), 0)::int8 FROM pg_stat_user_tables WHERE relname = 'orders'", &[])
            .await
            .expect("stats");
        if row.get::<_, i64>(0) >= 10_000 {
            return;
        }
        c.batch_execute("SELECT pg_stat_force_next_flush()")
            .await
            .ok();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("dead tuples never showed in pg_stat_user_tables");
}

/// A login role with a password, unique to this test run.
pub async fn login_role(pg: &Postgres, prefix: &str, password: &str) -> String {
    let role = crate::unique(prefix);
    pg.admin("postgres")
        .await
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'; GRANT pg_monitor TO \"{role}\""
        ))
        .await
        .expect("create role");
    role
}

/// A session left idle inside an open transaction (the client must stay alive).
pub async fn idle_in_transaction(
    pg: &Postgres,
    user: &str,
    password: &str,
    db: &str,
) -> (tokio_postgres::Client, i32) {
    let client = pg.connect_as(user, password, db).await;
    client
        .batch_execute("BEGIN; SELECT 1")
        .await
        .expect("begin");
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    (client, pid)
}

/// Whether a backend is still there.
pub async fn alive(pg: &Postgres, pid: i32) -> bool {
    pg.admin("postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .expect("activity")
        .get::<_, i64>(0)
        == 1
}

/// A clock that moves `step` forward on every reading: deadlines arrive on schedule.
pub struct SteppingClock {
    start: chrono::DateTime<chrono::Utc>,
    step: chrono::Duration,
    readings: std::sync::atomic::AtomicI32,
}

impl SteppingClock {
    pub fn new(start: chrono::DateTime<chrono::Utc>, step: chrono::Duration) -> Self {
        SteppingClock {
            start,
            step,
            readings: std::sync::atomic::AtomicI32::new(0),
        }
    }
}

impl pgsteward_core::clock::Clock for SteppingClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let n = self
            .readings
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.start + self.step * n
    }
}

/// A listener that only counts who knocks: stands in for a database or AWS that must not
/// be called.
pub fn knock_counter() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(s);
        }
    });
    (port, count)
}

/// `tables` tables in `db` with `dead_percent` of their rows deleted, autovacuum off, and
/// statistics visible. Names are used as given (quote them).
pub async fn bloat(pg: &Postgres, db: &str, tables: &[&str], rows: i64, dead_percent: i64) {
    let c = pg.admin(db).await;
    for t in tables {
        c.batch_execute(&format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = false);
             INSERT INTO {t} SELECT g, repeat('x', 50) FROM generate_series(1, {rows}) g;
             DELETE FROM {t} WHERE id % 100 < {dead_percent};"
        ))
        .await
        .unwrap_or_else(|e| panic!("bloat {t}: {e}"));
    }
    let want = rows * dead_percent / 100 * tables.len() as i64;
    for _ in 0..100 {
        c.batch_execute("SELECT pg_stat_force_next_flush()")
            .await
            .ok();
        let dead: i64 = c
            .query_one(
                "SELECT coalesce(sum(n_dead_tup), 0)::int8 FROM pg_stat_user_tables",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if dead >= want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("dead tuples never showed in pg_stat_user_tables");
}
