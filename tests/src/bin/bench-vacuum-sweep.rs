//! Benchmark for vacuum-sweep (run by bench/vacuum.sh), side by side with vacuumdb, on a
//! throwaway cluster with autovacuum off:
//! - every table bloated: `pgsteward vacuum-sweep --jobs N` vs `vacuumdb --jobs N --analyze`;
//! - 5% of tables bloated: the same two (vacuumdb sweeps everything regardless);
//! - planning time for 10,000 tables (`--dry-run`, the report's planningMs).
//! Each contender gets its own copy of one template database (CREATE DATABASE … TEMPLATE),
//! analyzed before timing so both start from the same statistics; the order alternates.
//!
//! usage: bench-vacuum-sweep PGSTEWARD_BIN [TABLES] [JOBS] [PLAN_TABLES]

use std::process::Command;
use std::time::Instant;

use pgsteward_tests::postgres::Postgres;

/// Copies per contender and scenario; who goes first alternates.
const ROUNDS: usize = 4;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

async fn template(pg: &Postgres, name: &str, tables: usize, bloated_every: usize) {
    let admin = pg.admin("postgres").await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let c = pg.admin(name).await;
    let mut sql = String::new();
    for i in 0..tables {
        // Varied sizes: 1,000 to 40,000 rows.
        let rows = 1_000 + (i * 7919) % 39_000;
        sql.push_str(&format!(
            "CREATE TABLE t{i} (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = false);
             INSERT INTO t{i} SELECT g, md5(g::text) FROM generate_series(1, {rows}) g;"
        ));
        if i % bloated_every == 0 {
            sql.push_str(&format!("DELETE FROM t{i} WHERE id % 2 = 0;"));
        }
        if i % 50 == 49 {
            c.batch_execute(&sql).await.unwrap();
            sql.clear();
        }
    }
    c.batch_execute(&sql).await.unwrap();
}

/// A copy of the template with statistics (copies start without any).
async fn copy(pg: &Postgres, template: &str, name: &str) {
    pg.admin("postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .await
        .unwrap();
    let c = pg.admin(name).await;
    c.batch_execute("ANALYZE").await.unwrap();
    c.batch_execute("CHECKPOINT").await.unwrap();
}

fn time(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().expect("run contender");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args.get(1).expect("PGSTEWARD_BIN").clone();
    let tables: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300);
    let jobs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2);
    let plan_tables: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let pg = Postgres::shared();
    let admin = pg.admin("postgres").await;
    admin
        .batch_execute("ALTER SYSTEM SET autovacuum = off")
        .await
        .unwrap();
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    let sweep = |db: &str| {
        let mut c = Command::new(&bin);
        c.args([
            "vacuum-sweep",
            "--jobs",
            &jobs.to_string(),
            "--format",
            "json",
            "--database-url",
            &pg.admin_url(db),
        ]);
        c
    };
    let vacuumdb = |db: &str| {
        let mut c = Command::new("vacuumdb");
        c.args([
            "--jobs",
            &jobs.to_string(),
            "--analyze",
            "--quiet",
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
        ])
        .env("PGPASSWORD", &pg.superuser_password);
        c
    };

    println!("| scenario ({tables} tables, --jobs {jobs}) | pgsteward vacuum-sweep | vacuumdb --analyze | ratio |");
    println!("|---|---|---|---|");
    for (label, every) in [("every table bloated", 1), ("5% of tables bloated", 20)] {
        let tmpl = format!("tmpl_{every}");
        template(pg, &tmpl, tables, every).await;
        let (mut ours, mut theirs) = (vec![], vec![]);
        for round in 0..ROUNDS {
            let (a, b) = (format!("{tmpl}_s{round}"), format!("{tmpl}_v{round}"));
            copy(pg, &tmpl, &a).await;
            copy(pg, &tmpl, &b).await;
            if round % 2 == 0 {
                theirs.push(time(&mut vacuumdb(&b)));
                ours.push(time(&mut sweep(&a)));
            } else {
                ours.push(time(&mut sweep(&a)));
                theirs.push(time(&mut vacuumdb(&b)));
            }
        }
        let (o, t) = (
            ours.iter().sum::<f64>() / ROUNDS as f64,
            theirs.iter().sum::<f64>() / ROUNDS as f64,
        );
        println!(
            "| {label} (mean of {ROUNDS}, alternating) | {o:.2} s | {t:.2} s | {:.2}× |",
            o / t
        );
    }

    // Planning: a database of `plan_tables` small tables, a dry run reads the plan time.
    pg.admin("postgres")
        .await
        .batch_execute("CREATE DATABASE plan10k")
        .await
        .unwrap();
    let c = pg.admin("plan10k").await;
    for chunk in 0..plan_tables.div_ceil(500) {
        let mut sql = String::new();
        for i in chunk * 500..((chunk + 1) * 500).min(plan_tables) {
            sql.push_str(&format!("CREATE TABLE p{i} (id int, v text);"));
        }
        c.batch_execute(&sql).await.unwrap();
    }
    c.batch_execute("ANALYZE").await.unwrap();
    let mut planning = vec![];
    let mut wall = vec![];
    for _ in 0..5 {
        let mut cmd = sweep("plan10k");
        cmd.arg("--dry-run");
        let t = Instant::now();
        let out = cmd.output().unwrap();
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
        planning.push(report["details"]["planningMs"].as_f64().unwrap());
    }
    println!(
        "| planning {plan_tables} tables (median of 5) | {:.1} ms (catalog query + plan); {:.0} ms whole dry run | target 250 ms | {:.2}× target |",
        median(planning.clone()),
        median(wall),
        median(planning) / 250.0
    );
}
