//! Benchmark for retention-prune (run by bench/retention.sh):
//! 1. planning over 5,000 managed snapshots: RDS API calls (through a proxy that pages moto's
//!    answers by 100 as RDS does) and wall time, against the per-snapshot tag lookups
//!    (ListTagsForResource) of tools that list first and then ask for each snapshot's tags;
//! 2. archiving old rows: `pgsteward retention-prune --apply --scope rows` (release build)
//!    against `psql -c "\copy (SELECT …) TO PROGRAM 'gzip > …'"`, at two row counts, with the
//!    peak RSS of our process.
//!
//! usage: bench-retention PGSTEWARD_BIN [SNAPSHOTS, e.g. 5000] [ROWS, e.g. 250000,1000000]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use pgsteward_core::retention_prune::policy::{self, Backup, Policy};
use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::process::{cpu_secs, vm_hwm_kib};
use pgsteward_tests::rds_pages::paging_proxy;
use pgsteward_tests::retention::task_at;
use pgsteward_tests::s3_sink::S3Sink;
use pgsteward_tests::snapshots::{bucket, instance, sdk_at};
use serde_json::json;

/// Runs `cmd`, returning (seconds, peak RSS in KiB, CPU seconds), sampled from /proc while
/// it runs (the CPU time misses at most the last sampling interval).
fn run_sampled(cmd: &mut Command) -> (f64, u64, f64) {
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (mut peak, mut cpu) = (0, 0.0);
    loop {
        if let Some(k) = vm_hwm_kib(child.id()) {
            peak = peak.max(k);
        }
        if let Some(c) = cpu_secs(child.id()) {
            cpu = c;
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{cmd:?} failed");
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (t.elapsed().as_secs_f64(), peak, cpu)
}

async fn planning(snapshots: usize) {
    let db = "bench-orders".to_string();
    instance(&db).await;
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 4, 0, 0).unwrap();
    let rds = aws_sdk_rds::Client::new(&Moto::shared().sdk_config().await);
    let t = Instant::now();
    let mut pending = Vec::new();
    for i in 0..snapshots {
        let at = now - chrono::Duration::hours(2 * i as i64);
        let (rds, db) = (rds.clone(), db.clone());
        pending.push(tokio::spawn(async move {
            rds.create_db_snapshot()
                .db_instance_identifier(&db)
                .db_snapshot_identifier(format!("pgsteward-{db}-{}", at.format("%Y%m%d-%H%M")))
                .tags(
                    aws_sdk_rds::types::Tag::builder()
                        .key("pgsteward:managed")
                        .value("true")
                        .build(),
                )
                .tags(
                    aws_sdk_rds::types::Tag::builder()
                        .key("pgsteward:tier")
                        .value("daily")
                        .build(),
                )
                .send()
                .await
                .expect("create snapshot")
        }));
        if pending.len() == 16 {
            for p in pending.drain(..) {
                p.await.unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap();
    }
    eprintln!(
        "{snapshots} snapshots created in moto in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (proxy, counts) = paging_proxy(&Moto::shared().endpoint).await;
    let vars = [
        ("PGSTEWARD_DB_IDENTIFIER", db.as_str()),
        (
            "PGSTEWARD_RETENTION_POLICY",
            r#"{"days":30,"weeks":8,"months":12,"minKeep":3}"#,
        ),
    ];
    let task = task_at(&proxy, &vars, now).await;
    let t = Instant::now();
    let report = task
        .handle(json!({"scope": "backups", "dryRun": true}), None)
        .await
        .unwrap();
    let ours = t.elapsed().as_secs_f64();
    // Again, with moto's answer cached in the proxy: the client's own time.
    let t = Instant::now();
    task.handle(json!({"scope": "backups", "dryRun": true}), None)
        .await
        .unwrap();
    let ours_warm = t.elapsed().as_secs_f64();
    let listed = report["details"]["backups"].as_array().unwrap().len();
    let deletes = report["done"].as_array().unwrap().len();
    let ours_calls = counts.lock().unwrap().clone();
    let ours_calls: std::collections::BTreeMap<String, usize> =
        ours_calls.into_iter().map(|(k, v)| (k, v / 2)).collect();
    counts.lock().unwrap().clear();

    // The other way: list, then one ListTagsForResource per snapshot.
    let naive = aws_sdk_rds::Client::new(&sdk_at(&proxy).await);
    let t = Instant::now();
    let mut arns = Vec::new();
    let mut marker = None;
    loop {
        let page = naive
            .describe_db_snapshots()
            .db_instance_identifier(&db)
            .max_records(100)
            .set_marker(marker.take())
            .send()
            .await
            .unwrap();
        arns.extend(
            page.db_snapshots()
                .iter()
                .filter_map(|s| s.db_snapshot_arn().map(str::to_string)),
        );
        match page.marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    for arn in &arns {
        naive
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .unwrap();
    }
    let theirs = t.elapsed().as_secs_f64();
    let naive_calls = counts.lock().unwrap().clone();

    // The policy alone, as a pure function.
    let backups: Vec<Backup> = (0..snapshots)
        .map(|i| Backup {
            id: format!("s{i}"),
            taken_at: now - chrono::Duration::hours(2 * i as i64),
            managed: true,
            automated: false,
            pinned: false,
            verified: i == 777,
            available: true,
        })
        .collect();
    let p: Policy =
        serde_json::from_str(r#"{"days":30,"weeks":8,"months":12,"minKeep":3}"#).unwrap();
    let t = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(policy::plan(&backups, &p, now));
    }
    let pure_ms = t.elapsed().as_secs_f64() * 1000.0 / 20.0;

    let total = |c: &std::collections::BTreeMap<String, usize>| c.values().sum::<usize>();
    println!("### Planning over {snapshots} managed snapshots ({listed} listed incl. moto's automated one; {deletes} would be deleted)\n");
    println!("| | RDS API calls | of which per-snapshot tag calls | wall time |");
    println!("|---|---|---|---|");
    println!(
        "| pgsteward retention-prune --dry-run | **{}** ({:?}) | **0** | {:.2} s ({:.2} s with moto's answer cached) |",
        total(&ours_calls),
        ours_calls,
        ours,
        ours_warm
    );
    println!(
        "| list + ListTagsForResource per snapshot | {} | {} | {:.2} s |",
        total(&naive_calls),
        naive_calls.get("ListTagsForResource").copied().unwrap_or(0),
        theirs
    );
    println!("\npolicy::plan alone over {snapshots} backups: {pure_ms:.2} ms\n");
}

async fn archiving(bin: &str, rows: u64, sink: &S3Sink) {
    let pg = Postgres::shared();
    let db = format!("bench_archive_{rows}");
    let admin = pg.admin("postgres").await;
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    let setup = format!(
        "DROP TABLE IF EXISTS audit_events;
         CREATE TABLE audit_events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL,
             actor text, action text, detail text);
         INSERT INTO audit_events SELECT g, now() - interval '120 days' - g * interval '1 second',
             'user-' || (g % 5000), (ARRAY['login','update','delete','export'])[g % 4 + 1],
             '{{\"ip\":\"10.0.' || (g % 250) || '.' || (g % 200) || '\",\"req\":\"' || md5(g::text) || '\"}}'
           FROM generate_series(1, {rows}) g;"
    );
    let c = pg.admin(&db).await;
    c.batch_execute(&setup).await.unwrap();
    c.batch_execute("VACUUM ANALYZE audit_events")
        .await
        .unwrap();
    let out = std::env::temp_dir().join(format!("{db}.csv.gz"));
    let (t_psql, _, _) = run_sampled(
        Command::new("psql")
            .args(["-X", "-q", "-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "postgres", "-d", &db, "-c"])
            .arg(format!(
                "\\copy (SELECT * FROM audit_events WHERE created_at < now() - interval '90 days') TO PROGRAM 'gzip > {}' WITH (FORMAT csv, HEADER)",
                out.display()
            ))
            .env("PGPASSWORD", &pg.superuser_password),
    );
    let gz_bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    std::fs::remove_file(&out).ok();
    let bucket = bucket("bench-archive").await;
    let rules = r#"[{"table":"public.audit_events","column":"created_at","olderThanDays":90}]"#;
    let mut row = format!(
        "| {rows} | {:.2} s ({:.0} rows/s, {:.1} MB gz) |",
        t_psql,
        rows as f64 / t_psql,
        gz_bytes as f64 / 1e6
    );
    let on_moto: Vec<(&str, String)> = Moto::shared().env().into_iter().collect();
    let on_sink = sink.env();
    for (run, (batch, aws)) in [
        ("10000", &on_moto),
        ("50000", &on_moto),
        ("100000", &on_moto),
        ("50000", &on_sink),
    ]
    .into_iter()
    .enumerate()
    {
        c.batch_execute(&setup).await.unwrap();
        c.batch_execute("VACUUM ANALYZE audit_events")
            .await
            .unwrap();
        let (t_ours, rss, cpu) = run_sampled(
            Command::new(bin)
                .args([
                    "retention-prune",
                    "--apply",
                    "--scope",
                    "rows",
                    "--bucket",
                    &bucket,
                    "--database-url",
                    &pg.admin_url(&db),
                ])
                .envs(aws.iter().cloned())
                .env("PGSTEWARD_DB_IDENTIFIER", format!("{db}-{run}"))
                .env("PGSTEWARD_ARCHIVE_RULES", rules)
                .env("PGSTEWARD_ARCHIVE_BATCH_ROWS", batch),
        );
        let left: i64 = c
            .query_one("SELECT count(*) FROM audit_events", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "every row archived and deleted");
        row.push_str(&format!(
            " {:.2} s ({:.0} rows/s) **{:.2}×**, {:.1} MiB, CPU {:.2} s |",
            t_ours,
            rows as f64 / t_ours,
            t_psql / t_ours,
            rss as f64 / 1024.0,
            cpu
        ));
    }
    println!("{row}");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args.get(1).expect("PGSTEWARD_BIN").clone();
    let snapshots: usize = args.get(2).map_or(5000, |s| s.parse().unwrap());
    let rows: Vec<u64> = args
        .get(3)
        .map_or("250000,1000000", String::as_str)
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    if snapshots > 0 {
        planning(snapshots).await;
    }
    let sink = S3Sink::start_keeping();
    println!("### Archiving old rows (archive to S3, read back, then delete; vs psql \\copy … TO PROGRAM 'gzip', which only reads)\n");
    println!("| rows | psql \\copy to gzip | pgsteward → moto, batches of 10,000: time, ratio, peak RSS, our CPU | → moto, batches of 50,000 (the default) | → moto, batches of 100,000 | → in-memory S3 sink, batches of 50,000 |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        archiving(&bin, r, &sink).await;
    }
}
