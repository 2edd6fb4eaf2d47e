//! Helpers for the vacuum-sweep tests: a task on a test database, requests, figures.

use pgsteward_core::vacuum_sweep::{parse_event, Request, VacuumConfig, VacuumSweep};
use pgsteward_core::Deps;
use serde_json::Value;

use crate::fixtures::{env, moto_deps};
use crate::postgres::Postgres;

/// A sweep of `db` as the superuser, lock_timeout 500 ms, plus `extra` settings.
pub async fn sweep_with(db: &str, extra: &[(&str, &str)], deps: Deps) -> VacuumSweep {
    let url = Postgres::shared().admin_url(db);
    let mut vars = vec![
        ("PGSTEWARD_DATABASE_URL", url.as_str()),
        ("PGSTEWARD_LOCK_TIMEOUT_MS", "500"),
    ];
    vars.extend_from_slice(extra);
    VacuumSweep::new(VacuumConfig::from_env(&env(&vars)).unwrap(), deps)
}

pub async fn sweep(db: &str, extra: &[(&str, &str)]) -> VacuumSweep {
    sweep_with(db, extra, moto_deps(None).await).await
}

pub fn request(task: &VacuumSweep, v: Value) -> Request {
    parse_event(v, &task.config).unwrap()
}

pub fn done_names(report: &pgsteward_core::report::Report) -> Vec<String> {
    let mut v: Vec<_> = report.done.iter().map(|d| d.target.clone()).collect();
    v.sort();
    v
}

pub async fn dead_tuples(db: &str, table: &str) -> i64 {
    Postgres::shared()
        .admin(db)
        .await
        .query_one(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = $1",
            &[&table],
        )
        .await
        .unwrap()
        .get(0)
}
