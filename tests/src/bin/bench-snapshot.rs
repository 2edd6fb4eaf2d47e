//! Benchmark for the streamed logical backup (run by bench/snapshot.sh): at each database
//! size, `pg_dump -Fc -f file` alone against the release `pgsteward snapshot --logical`
//! (pg_dump -Fc streamed into an S3 multipart upload) twice: into S3 on moto, and into a
//! discard sink (`pgsteward_tests::s3_sink`: speaks just enough S3 to take the upload, throws
//! the bytes away, costs next to no CPU). moto is Python and runs on the same cores as
//! pg_dump and PostgreSQL; the sink separates the cost of our streaming from the emulator's.
//!
//! The three run ROUNDS times, in an order rotated each round; figures are medians, and each
//! ratio comes with its range over the rounds (file and contender of the same round), so a
//! disturbed round shows. pg_dump's time waiting for a core (schedstat) tells how much of a
//! wall time is contention (another build on the machine, moto) rather than the work.
//! Prints markdown: throughput and peak RSS, CPU and waits, and the manifest's row count.
//!
//! usage: bench-snapshot PGSTEWARD_BIN [SIZES_MB, e.g. 200,1000] [ROUNDS, default 3]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgsteward_tests::moto::Moto;
use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::process::vm_hwm_kib;
use pgsteward_tests::s3_sink::{stat_cpu_secs, S3Sink};

/// (state, own CPU s, waited-for children's CPU s) from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let own = stat_cpu_secs(&s)?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let cu: u64 = f.get(13)?.parse().ok()?;
    let cs: u64 = f.get(14)?.parse().ok()?;
    Some((state, own, (cu + cs) as f64 / 100.0))
}

/// The pg_dump doing the work: the process itself, or pgsteward's child.
fn pg_dump_pid(pid: u32) -> Option<u32> {
    let comm = |p: u32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
    if comm(pid).trim() == "pg_dump" {
        return Some(pid);
    }
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        if let Some(c) = children
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .find(|&c| comm(c).trim() == "pg_dump")
        {
            return Some(c);
        }
    }
    None
}

/// Seconds a process has spent runnable but waiting for a core (`/proc/<pid>/schedstat`).
fn run_queue_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// Busy CPU seconds of the whole machine so far (every core; /proc/stat, USER_HZ = 100).
fn machine_busy_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    busy as f64 / 100.0
}

/// The seconds pgsteward reports for the streaming itself (pg_dump start to last part), from
/// its summary line; the rest of its wall time is setup, row counts, completion, manifest.
fn streamed_secs(stdout: &str) -> f64 {
    stdout
        .split("\"seconds\":")
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

struct Run {
    secs: f64,
    /// Peak RSS (VmHWM) of the process, KiB.
    peak_kib: u64,
    /// CPU seconds of the process itself, and of its waited-for children (pgsteward's pg_dump).
    cpu: f64,
    children_cpu: f64,
    /// Seconds pg_dump was ready to run but had no core (sampled): contention, whoever from.
    pg_dump_waiting: f64,
    /// CPU seconds the whole machine was busy meanwhile (both cores, everything).
    machine: f64,
    stdout: String,
}

/// Runs `cmd` to the end, sampling /proc every 20 ms. CPU times are read exactly, from the
/// exited process before it is reaped.
fn run_sampled(cmd: &mut Command) -> Run {
    let busy0 = machine_busy_secs();
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    // Output is a few lines: read on threads so a full pipe never stalls the process.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let (mut peak, mut cpu, mut children_cpu) = (0, 0.0, 0.0);
    let (mut dump_pid, mut pg_dump_waiting) = (None, 0.0);
    loop {
        if let Some(k) = vm_hwm_kib(pid) {
            peak = peak.max(k);
        }
        if dump_pid.is_none() {
            dump_pid = pg_dump_pid(pid);
        }
        if let Some(w) = dump_pid.and_then(run_queue_secs) {
            pg_dump_waiting = w;
        }
        match proc_stat(pid) {
            Some((state, own, children)) => {
                cpu = own;
                children_cpu = children;
                if state == 'Z' {
                    break;
                }
            }
            None => break,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().expect("wait");
    let secs = t.elapsed().as_secs_f64();
    let machine = machine_busy_secs() - busy0;
    let stdout = out_t.join().unwrap();
    let stderr = err_t.join().unwrap();
    assert!(status.success(), "{cmd:?} failed: {stdout}\n{stderr}");
    Run {
        secs,
        peak_kib: peak,
        cpu,
        children_cpu,
        pg_dump_waiting,
        machine,
        stdout,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Who {
    File,
    Moto,
    Sink,
}

/// One contender's runs, one per round.
#[derive(Default)]
struct Runs {
    runs: Vec<Run>,
    /// CPU seconds of the sink's thread, per round (sink runs only).
    sink_cpu: Vec<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Runs {
    fn med(&self, f: impl Fn(&Run) -> f64) -> f64 {
        median(self.runs.iter().map(f).collect())
    }
}

/// "0.97×", and "(0.93–1.01)" over the rounds when there are several.
fn ratio(file: &Runs, other: &Runs) -> String {
    let r = file.med(|r| r.secs) / other.med(|r| r.secs);
    let per: Vec<f64> = file
        .runs
        .iter()
        .zip(&other.runs)
        .map(|(f, o)| f.secs / o.secs)
        .collect();
    if per.len() < 2 {
        return format!("{r:.2}×");
    }
    let lo = per.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = per.iter().cloned().fold(0.0, f64::max);
    format!("{r:.2}× ({lo:.2}–{hi:.2})")
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
    let rounds: usize = args.get(3).map_or(3, |r| r.parse().unwrap());
    let pg = Postgres::shared();
    let moto = Moto::shared();
    let sink = S3Sink::start();
    let sdk = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let mut throughput = vec![
        format!("| database | dump | pg_dump -Fc -f file | pgsteward → S3 on moto | ratio (moto) | pgsteward → discard sink | ratio (sink) | ratio (sink), each wall less pg_dump's wait for a core | peak RSS pgsteward (moto / sink) |"),
        "|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut cpu = vec![
        "| database | run | wall | of which streaming | pg_dump CPU | pg_dump waiting for a core | pg_dump blocked (rest) | pgsteward CPU | S3 side CPU | machine busy (2 cores = 2.0) |".to_string(),
        "|---|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut counts = vec![
        "| database | `SELECT count(*)` of the table, alone (the manifest's row counts) |"
            .to_string(),
        "|---|---|".to_string(),
    ];
    for mb in sizes {
        let db = format!("bench_{mb}mb");
        let admin = pg.admin("postgres").await;
        for sql in [
            format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            format!("CREATE DATABASE {db}"),
        ] {
            admin.batch_execute(&sql).await.unwrap();
        }
        let c = pg.admin(&db).await;
        // ~118 bytes a row on disk (two md5 texts, two int8s, headers), so the database is
        // about `mb` MB; the dump (-Fc) is about 0.38 of it.
        let rows = mb * 1_000_000 / 120;
        c.batch_execute(&format!(
            "CREATE TABLE facts (id int8, a text, b text, c int8);
             INSERT INTO facts SELECT g, md5(g::text), md5((g * 7)::text), g * 13 FROM generate_series(1, {rows}) g;"
        ))
        .await
        .unwrap();
        // Hint bits set and pages clean before the first contender reads them, so it pays
        // for nothing the others do not.
        c.batch_execute("VACUUM ANALYZE facts").await.unwrap();
        c.batch_execute("CHECKPOINT").await.unwrap();
        let size: i64 = c
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
            .unwrap()
            .get(0);
        let db_label = format!("{:.0} MB", size as f64 / 1e6);
        let bucket = format!("bench-{mb}-{}", std::process::id());
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let sbucket = format!("sink-{mb}");
        let file = std::env::temp_dir().join(format!("{db}.dump"));
        let pgsteward = |env: Vec<(&'static str, String)>, bucket: &str| {
            run_sampled(
                Command::new(&bin)
                    .args([
                        "snapshot",
                        "--logical",
                        "--bucket",
                        bucket,
                        "--database-url",
                        &pg.admin_url(&db),
                    ])
                    .envs(env)
                    .env("PGSTEWARD_DB_IDENTIFIER", &db),
            )
        };
        let (mut f, mut m, mut s) = (Runs::default(), Runs::default(), Runs::default());
        let mut dump_sizes = vec![];
        let mut object_sizes = vec![];
        for round in 0..rounds {
            let mut order = [Who::File, Who::Moto, Who::Sink];
            order.rotate_left(round % 3);
            for who in order {
                match who {
                    Who::File => {
                        f.runs.push(run_sampled(
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
                        ));
                        dump_sizes.push(std::fs::metadata(&file).unwrap().len());
                        std::fs::remove_file(&file).ok();
                    }
                    Who::Moto => {
                        m.runs.push(pgsteward(moto.env(), &bucket));
                        let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
                        for o in listed.contents() {
                            let key = o.key().unwrap_or("");
                            if key.ends_with(".dump") {
                                object_sizes.push(("moto", o.size().unwrap_or(0) as u64));
                            }
                            // moto holds objects in memory: free it before the next run
                            // (and free the slot: the next round may be in the same minute).
                            s3.delete_object()
                                .bucket(&bucket)
                                .key(key)
                                .send()
                                .await
                                .unwrap();
                        }
                    }
                    Who::Sink => {
                        let (bytes0, done0) = (sink.part_bytes(), sink.completed_uploads());
                        let cpu0 = sink.cpu_secs();
                        s.runs.push(pgsteward(sink.env(), &sbucket));
                        s.sink_cpu.push(sink.cpu_secs() - cpu0);
                        let received = sink.part_bytes() - bytes0;
                        assert_eq!(
                            sink.completed_uploads(),
                            done0 + 1,
                            "the upload was not completed"
                        );
                        let manifest_key = sink
                            .object_keys()
                            .into_iter()
                            .find(|k| {
                                k.starts_with(&format!("{sbucket}/"))
                                    && k.ends_with(".manifest.json")
                            })
                            .expect("a manifest in the sink");
                        let manifest: serde_json::Value =
                            serde_json::from_slice(&sink.object(&manifest_key).unwrap()).unwrap();
                        let manifest_bytes = manifest["sizeBytes"].as_u64().unwrap();
                        // The whole dump arrived: every byte the manifest counts.
                        assert_eq!(
                            received, manifest_bytes,
                            "the sink got {received} bytes, the manifest says {manifest_bytes}"
                        );
                        object_sizes.push(("sink", received));
                    }
                }
            }
        }
        let dump_bytes = dump_sizes[0];
        // Every streamed dump is about what pg_dump writes to a file (to a pipe it cannot
        // seek back in, so its table of contents has no data offsets: a few bytes smaller).
        for (to, b) in &object_sizes {
            assert!(
                (*b as f64 - dump_bytes as f64).abs() / (dump_bytes as f64) < 0.01,
                "{to}: {b} bytes vs {dump_bytes} in the file"
            );
        }
        assert_eq!(object_sizes.len(), 2 * rounds, "a dump is missing");

        let mbps = |secs: f64| dump_bytes as f64 / 1e6 / secs;
        let (tf, tm, ts) = (f.med(|r| r.secs), m.med(|r| r.secs), s.med(|r| r.secs));
        throughput.push(format!(
            "| {db_label} | {:.0} MB | {tf:.2} s ({:.1} MB/s) | {tm:.2} s ({:.1} MB/s) | {} | {ts:.2} s ({:.1} MB/s) | {} | {:.2}× | {:.1} / {:.1} MiB |",
            dump_bytes as f64 / 1e6,
            mbps(tf),
            mbps(tm),
            ratio(&f, &m),
            mbps(ts),
            ratio(&f, &s),
            // Contention from anything (another build on the machine, moto) taken out: what
            // the ratio would be were pg_dump never kept from a core. Derived, not measured.
            f.med(|r| r.secs - r.pg_dump_waiting) / s.med(|r| r.secs - r.pg_dump_waiting),
            m.med(|r| r.peak_kib as f64) / 1024.0,
            s.med(|r| r.peak_kib as f64) / 1024.0,
        ));
        // pg_dump's time neither on a core nor waiting for one: reading from PostgreSQL, or
        // writing into a full pipe or file (streaming time for pgsteward, from pg_dump's
        // start to the last part; a little more than pg_dump's own life).
        let blocked = |r: &Run| streamed_secs(&r.stdout) - r.children_cpu - r.pg_dump_waiting;
        let busy = |r: &Runs| {
            format!(
                "{:.2} s ({:.2})",
                r.med(|r| r.machine),
                r.med(|r| r.machine / r.secs)
            )
        };
        cpu.push(format!(
            "| {db_label} | pg_dump -f file | {tf:.2} s | – | {:.2} s | {:.2} s | {:.2} s | – | – | {} |",
            f.med(|r| r.cpu),
            f.med(|r| r.pg_dump_waiting),
            f.med(|r| r.secs - r.cpu - r.pg_dump_waiting),
            busy(&f)
        ));
        cpu.push(format!(
            "| {db_label} | pgsteward → moto | {tm:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | moto: in machine busy | {} |",
            m.med(|r| streamed_secs(&r.stdout)),
            m.med(|r| r.children_cpu),
            m.med(|r| r.pg_dump_waiting),
            m.med(blocked),
            m.med(|r| r.cpu),
            busy(&m)
        ));
        cpu.push(format!(
            "| {db_label} | pgsteward → sink | {ts:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s (sink) | {} |",
            s.med(|r| streamed_secs(&r.stdout)),
            s.med(|r| r.children_cpu),
            s.med(|r| r.pg_dump_waiting),
            s.med(blocked),
            s.med(|r| r.cpu),
            median(s.sink_cpu.clone()),
            busy(&s)
        ));
        // What pgsteward does after the dump, before completing the upload: the manifest's
        // exact row counts, one count(*) per table (here one table), in the dump's snapshot.
        let t = Instant::now();
        c.query_one("SELECT count(*) FROM facts", &[])
            .await
            .unwrap();
        counts.push(format!(
            "| {db_label} | {:.2} s |",
            t.elapsed().as_secs_f64()
        ));
        drop(c);
        admin
            .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
            .await
            .unwrap();
    }
    println!("{}\n", throughput.join("\n"));
    println!("{}\n", cpu.join("\n"));
    println!("{}", counts.join("\n"));
}
