//! Benchmark for the streamed logical backup (run by bench/snapshot.sh): at two database
//! sizes, `pgsteward snapshot --logical` (pg_dump -Fc streamed to S3 on moto) against
//! `pg_dump -Fc -f file` alone, in one run; and the peak RSS of the streaming process.
//!
//! usage: bench-snapshot PGSTEWARD_BIN [SIZES_MB, e.g. 200,1000]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs `cmd`, returning (seconds, peak RSS in KiB sampled from /proc while it runs).
fn run_sampled(cmd: &mut Command) -> (f64, u64) {
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut peak = 0;
    loop {
        if let Some(k) = vm_hwm_kib(child.id()) {
            peak = peak.max(k);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{cmd:?} failed");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (t.elapsed().as_secs_f64(), peak)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args.get(1).expect("PGSTEWARD_BIN").clone();
    let sizes: Vec<u64> = args
        .get(2)
        .map_or("200,1000", String::as_str)
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let pg = Postgres::shared();
    let moto = Moto::shared();
    let sdk = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    println!("| database | dump size | pg_dump -Fc -f file | pgsteward (streamed to S3) | throughput ratio | peak RSS pgsteward |");
    println!("|---|---|---|---|---|---|");
    for mb in sizes {
        let db = format!("bench_{mb}mb");
        pg.admin("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        let c = pg.admin(&db).await;
        // ~200 bytes a row on disk; md5 text compresses about 2:1 in -Fc.
        let rows = mb * 1024 * 1024 / 200;
        c.batch_execute(&format!(
            "CREATE TABLE facts (id int8, a text, b text, c int8);
             INSERT INTO facts SELECT g, md5(g::text), md5((g * 7)::text), g * 13 FROM generate_series(1, {rows}) g;
             CHECKPOINT;"
        ))
        .await
        .unwrap();
        let size: i64 = c
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
            .unwrap()
            .get(0);
        let file = std::env::temp_dir().join(format!("{db}.dump"));
        let (t_file, _) = run_sampled(
            Command::new("pg_dump")
                .args([
                    "-Fc",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &pg.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    &db,
                    "-f",
                ])
                .arg(&file)
                .env("PGPASSWORD", &pg.superuser_password),
        );
        let dump_bytes = std::fs::metadata(&file).unwrap().len();
        std::fs::remove_file(&file).ok();
        let bucket = format!("bench-{mb}");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let (t_ours, rss) = run_sampled(
            Command::new(&bin)
                .args([
                    "snapshot",
                    "--logical",
                    "--bucket",
                    &bucket,
                    "--database-url",
                    &pg.admin_url(&db),
                ])
                .envs(moto.env())
                .env("PGSTEWARD_DB_IDENTIFIER", &db),
        );
        println!(
            "| {:.0} MB | {:.0} MB | {:.2} s ({:.0} MB/s) | {:.2} s ({:.0} MB/s) | {:.2}× | {:.1} MiB |",
            size as f64 / 1e6,
            dump_bytes as f64 / 1e6,
            t_file,
            dump_bytes as f64 / 1e6 / t_file,
            t_ours,
            dump_bytes as f64 / 1e6 / t_ours,
            t_file / t_ours,
            rss as f64 / 1024.0
        );
    }
}
