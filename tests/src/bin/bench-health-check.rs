//! Benchmark for the health-check function (run by bench/run.sh on release binaries):
//! - init time: process start to the first Runtime API `/next` poll, median of N runs,
//!   side by side with a hello-world lambda_runtime binary;
//! - one invocation's latency against a real PostgreSQL (secret from moto), side by side
//!   with psql running the same monitoring statement;
//! - peak RSS (VmHWM) of the function after one invocation, and of hello-world.
//!
//! usage: bench-health-check HEALTH_CHECK_BIN HELLO_BIN [RUNS]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pgsteward_tests::fixtures::rds_secret;
use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::runtime_api::{lambda_env, RuntimeApi};
use serde_json::json;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn spawn(bin: &str, api: &RuntimeApi, extra: &[(&str, String)]) -> Child {
    Command::new(bin)
        .env_clear()
        .envs(lambda_env(api, "bench"))
        .envs(Moto::shared().env())
        .envs(extra.iter().map(|(k, v)| (*k, v.clone())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Milliseconds from spawn to the first `/next` poll.
async fn init_ms(bin: &str, extra: &[(&str, String)]) -> f64 {
    let api = RuntimeApi::start().await;
    let start = Instant::now();
    let mut child = spawn(bin, &api, extra);
    let polled = api
        .wait_first_poll(10)
        .await
        .expect("no /next poll within 10 s");
    let _ = child.kill();
    let _ = child.wait();
    (polled - start).as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (hc, hello) = (
        args.get(1).expect("HEALTH_CHECK_BIN"),
        args.get(2).expect("HELLO_BIN"),
    );
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(25);
    let pg = Postgres::shared();
    let db = pg.create_database("bench").await;
    let arn = rds_secret(pg, "postgres", &pg.superuser_password, &db).await;
    let config = vec![
        ("PGSTEWARD_DB_SECRET_ARN", arn),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-prod".to_string()),
        ("PGSTEWARD_CA_BUNDLE", pg.ca.display().to_string()),
    ];

    // Interleaved so machine noise hits both alike.
    let (mut hc_init, mut hello_init) = (vec![], vec![]);
    for _ in 0..runs {
        hello_init.push(init_ms(hello, &[]).await);
        hc_init.push(init_ms(hc, &config).await);
    }
    let (hc_med, hello_med) = (median(hc_init), median(hello_init));

    // Warm invocations of one function process, then its peak RSS.
    let api = RuntimeApi::start().await;
    let child = spawn(hc, &api, &config);
    let mut invoke = vec![];
    for i in 0..runs {
        let t = Instant::now();
        api.push(&format!("r{i}"), json!({"action": "check"}));
        let got = api.wait_outcomes(i + 1, 30).await;
        assert_eq!(got.len(), i + 1, "invocation {i} did not finish");
        invoke.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let hc_rss = peak_rss_kib(child.id());
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();

    let hello_api = RuntimeApi::start().await;
    let mut hello_child = spawn(hello, &hello_api, &[]);
    hello_api.push("r0", json!({"hello": "world"}));
    hello_api.wait_outcomes(1, 10).await;
    let hello_rss = peak_rss_kib(hello_child.id());
    let _ = hello_child.kill();
    let _ = hello_child.wait();

    // psql: a new process and connection running the monitoring statement, as a cron job would.
    let url = pg.admin_url(&db);
    let sql = pgsteward_core::health_check::collect::monitoring_sql();
    let mut psql = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        let ok = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", &url, "-c", &sql])
            .stdout(Stdio::null())
            .status()
            .expect("psql");
        assert!(ok.success());
        psql.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (inv_med, psql_med) = (median(invoke), median(psql));

    let size = |p: &str| {
        std::fs::metadata(p)
            .map(|m| m.len() as f64 / 1048576.0)
            .unwrap_or(0.0)
    };
    println!("| figure | health-check | baseline | ratio |");
    println!("|---|---|---|---|");
    println!("| init, start → first /next (median of {runs}) | {hc_med:.2} ms | {hello_med:.2} ms (hello-world lambda_runtime) | {:.2}× |", hc_med / hello_med);
    println!("| one check: secret + TLS connect + queries (median of {runs}) | {inv_med:.2} ms | {psql_med:.2} ms (psql, same SQL) | {:.2}× |", inv_med / psql_med);
    println!("| peak RSS after {runs} invocations | {:.1} MiB | {:.1} MiB (hello-world, 1 invocation) | {:.2}× |", hc_rss as f64 / 1024.0, hello_rss as f64 / 1024.0, hc_rss as f64 / hello_rss.max(1) as f64);
    println!(
        "| stripped binary size | {:.2} MiB | {:.2} MiB (hello-world) | {:.2}× |",
        size(hc),
        size(hello),
        size(hc) / size(hello)
    );
    std::thread::sleep(Duration::from_millis(10));
}
