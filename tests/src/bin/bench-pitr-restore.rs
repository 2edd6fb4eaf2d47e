//! Benchmark for pitr-restore (run by bench/pitr-restore.sh): the whole RestoreChecklist as
//! the state machine runs it — validate, restore, wait, row counts, ANALYZE, connectivity,
//! smoke, cut-over, report — one invocation after another of the release Lambda binary, warm,
//! on a local Runtime API, against moto and a local database of a few hundred tables reached
//! through the endpoint override. Step Functions' Wait states are left out (moto restores at
//! once). Side by side with what a person runs by hand: psql with the same counts (on the
//! restore and on the source), a
//! database-wide ANALYZE, SELECT 1 as the application, the smoke queries read-only.
//!
//! usage: bench-pitr-restore PITR_RESTORE_BIN [TABLES, e.g. 300] [ROUNDS, e.g. 5]

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use pgsteward_tests::fixtures::{login_role, rds_secret};
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::restore::{secret, source, subnet_group};
use pgsteward_tests::runtime_api::{function_command, Outcome, RuntimeApi};
use pgsteward_tests::snapshots::bucket;
use serde_json::{json, Value};

const SMOKE: &[&str] = &[
    "SELECT count(*) FROM t_0001 WHERE id > 10",
    "SELECT max(id) FROM t_0002",
    "SELECT count(*) FROM t_0003 JOIN t_0004 USING (id)",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn spawn(bin: &str, api: &RuntimeApi, vars: &[(&str, String)]) -> Child {
    function_command(bin, "pitr-restore", api, vars)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pitr-restore")
}

/// A psql run (new process and connection, as a person types it), in ms.
fn psql(url: &str, sql: &str) -> f64 {
    let t = Instant::now();
    let ok = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .stdout(Stdio::null())
        .status()
        .expect("psql");
    assert!(ok.success(), "psql failed: {sql:.80}");
    t.elapsed().as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .expect("usage: bench-pitr-restore PITR_RESTORE_BIN [TABLES] [ROUNDS]");
    let tables: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300);
    let rounds: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5);
    let pg = Postgres::shared();
    let db = pg.create_database("bench_pitr").await;
    let admin = pg.admin(&db).await;
    let mut ddl = String::new();
    for i in 1..=tables {
        ddl.push_str(&format!(
            "CREATE TABLE t_{i:04} (id int PRIMARY KEY, note text);
             INSERT INTO t_{i:04} SELECT g, md5(g::text) FROM generate_series(1, {}) g;",
            500 + (i * 37) % 4500
        ));
    }
    admin.batch_execute(&ddl).await.expect("tables");
    admin.batch_execute("VACUUM ANALYZE").await.expect("vacuum");
    let rows: i64 = admin
        .query_one("SELECT sum(n_live_tup)::int8 FROM pg_stat_user_tables", &[])
        .await
        .unwrap()
        .get(0);

    let src = "bench-orders";
    source(src).await;
    let subnets = subnet_group().await;
    let reports = bucket("bench-restore-reports").await;
    let app_password = "bench-app-pw";
    let app_role = login_role(pg, "bench_app", app_password).await;
    let conn_secret = rds_secret(pg, &app_role, app_password, &db).await;
    let master = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    let app = secret(
        &json!({"host": "bench-orders.aaaaaaaaaa.us-east-1.rds.amazonaws.com",
        "port": 5432, "username": app_role, "password": app_password, "dbname": db}),
    )
    .await;
    let targets: Vec<String> = (0..rounds).map(|i| format!("bench-restore-{i}")).collect();
    // moto's endpoints are `<id>.aaaaaaaaaa.<region>.rds.amazonaws.com`.
    let over: Vec<String> = targets
        .iter()
        .map(|t| {
            format!(
                "{t}.aaaaaaaaaa.us-east-1.rds.amazonaws.com=127.0.0.1:{}/localhost",
                pg.port
            )
        })
        .collect();
    let vars = vec![
        ("PGSTEWARD_DB_SECRET_ARN", master),
        ("PGSTEWARD_DB_IDENTIFIER", src.to_string()),
        ("PGSTEWARD_CA_BUNDLE", pg.ca.display().to_string()),
        ("PGSTEWARD_RESTORE_SUBNET_GROUP", subnets),
        (
            "PGSTEWARD_RESTORE_SECURITY_GROUPS",
            "sg-0123456789abcdef0".into(),
        ),
        ("PGSTEWARD_APP_SECRET_ARNS", format!("{app},{conn_secret}")),
        ("PGSTEWARD_REPORT_BUCKET", reports),
        ("PGSTEWARD_EVENT_BUS", "default".into()),
        ("PGSTEWARD_ENDPOINT_OVERRIDE", over.join(",")),
    ];
    let api = RuntimeApi::start().await;
    let mut child = spawn(bin, &api, &vars);
    api.wait_first_poll(30).await.expect("the function started");

    let steps = [
        "validate",
        "restore",
        "wait",
        "row-counts",
        "analyze",
        "connectivity",
        "smoke",
        "cut-over",
        "report",
    ];
    let mut per_step: Vec<Vec<f64>> = vec![vec![]; steps.len()];
    let mut totals = vec![];
    let mut analyze_own = vec![];
    let mut n = 0;
    for target in &targets {
        let started = chrono::Utc::now().to_rfc3339();
        let input = json!({"targetDbInstanceIdentifier": target, "useLatestRestorableTime": true,
            "expectations": {"minRows": {"public.t_0001": 500}, "compareWith": "source", "tolerancePercent": 1},
            "smokeQueries": SMOKE, "appSecretArn": app, "cutOver": true});
        let mut results = serde_json::Map::new();
        let total = Instant::now();
        for (s, step) in steps.iter().enumerate() {
            let mut event = input.clone();
            event["action"] = json!(step);
            match *step {
                "row-counts" | "analyze" | "smoke" | "cut-over" => {
                    event["restore"] = results["wait"].clone()
                }
                "connectivity" => {
                    event["restore"] = results["wait"].clone();
                    event["appSecretArn"] = json!(conn_secret);
                }
                "report" => {
                    event["results"] = Value::Object(results.clone());
                    event["startedAt"] = json!(started);
                }
                _ => {}
            }
            if *step == "cut-over" {
                event["checks"] = json!({"rowCounts": "passed", "analyze": "passed", "connectivity": "passed", "smoke": "passed"});
            }
            let t = Instant::now();
            api.push(&format!("{target}-{step}"), event);
            n += 1;
            let got = api.wait_outcomes(n, 300).await;
            per_step[s].push(t.elapsed().as_secs_f64() * 1000.0);
            match &got.last().expect("an outcome").1 {
                Outcome::Response(v) => {
                    if *step == "analyze" {
                        analyze_own.push(v["seconds"].as_f64().unwrap_or(0.0) * 1000.0);
                    }
                    let key = match *step {
                        "row-counts" => "rowCounts",
                        "cut-over" => "cutOver",
                        s => s,
                    };
                    results.insert(key.to_string(), v.clone());
                }
                Outcome::Error(e) => panic!("{target} {step}: {e}"),
            }
        }
        totals.push(total.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = child.kill();
    let _ = child.wait();

    // By hand: psql per step, new process each, as a person follows the runbook.
    let url = pg.admin_url(&db);
    let app_url = pg.url(&app_role, app_password, &db);
    let counts: Vec<String> = (1..=tables)
        .map(|i| format!("SELECT count(*) FROM t_{i:04};"))
        .collect();
    let counts = counts.join("\n");
    let smoke = format!("BEGIN READ ONLY; {}; ROLLBACK;", SMOKE.join("; "));
    let mut by_hand: Vec<[f64; 4]> = vec![];
    for _ in 0..rounds {
        by_hand.push([
            // The restore's counts and the source's (compareWith "source").
            psql(&url, &counts) + psql(&url, &counts),
            psql(&url, "ANALYZE"),
            psql(&app_url, "SELECT 1"),
            psql(&url, &smoke),
        ]);
    }
    let hand = |i: usize| median(by_hand.iter().map(|r| r[i]).collect());
    let psql_analyze = hand(1);

    println!("{tables} tables, {rows} rows; median of {rounds} runs; ms\n");
    println!("| step | pgsteward pitr-restore (release, warm, moto) | by hand (psql, new process each) |");
    println!("|---|---|---|");
    let hand_col = [
        None,
        None,
        None,
        Some(0),
        Some(1),
        Some(2),
        Some(3),
        None,
        None,
    ];
    for (s, step) in steps.iter().enumerate() {
        let ours = median(per_step[s].clone());
        let theirs = hand_col[s]
            .map(|i| format!("{:.1}", hand(i)))
            .unwrap_or_else(|| "—".into());
        println!("| {step} | {ours:.1} | {theirs} |");
    }
    let total = median(totals.clone());
    let own = median(analyze_own.clone());
    let hand_total: f64 = (0..4).map(hand).sum();
    println!(
        "| **whole checklist** | **{total:.1}** | {hand_total:.1} (the four SQL steps only) |"
    );
    println!();
    println!("ANALYZE's own time: {own:.1} ms inside the analyze step (per-table ANALYZE statements), {psql_analyze:.1} ms for psql's database-wide ANALYZE.");
    println!(
        "orchestration overhead beyond ANALYZE: {:.1} ms (whole checklist − ANALYZE statements); target ≤ 1000 ms",
        total - own
    );
    println!(
        "SQL steps: pgsteward {:.1} ms vs psql {hand_total:.1} ms ({:.2}×)",
        (3..7).map(|s| median(per_step[s].clone())).sum::<f64>(),
        (3..7).map(|s| median(per_step[s].clone())).sum::<f64>() / hand_total
    );
}
