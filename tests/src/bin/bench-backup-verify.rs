//! Benchmark for backup-verify (run by bench/backup-verify.sh): the logical drill of a
//! database of about SIZE_MB (pick → verify → teardown) as invocations of the release Lambda
//! binary on a local Runtime API, against a dump the snapshot task streamed into moto S3,
//! with `pg_restore --jobs=1` and with the jobs chosen by size and cores. Reported: RTO (drill
//! start → verified), RPO (the dump's age at the start), and the split between download +
//! SHA-256, pg_restore, row counts and amcheck. Side by side with the manual way: sha256sum of
//! the downloaded file, createdb + pg_restore --jobs, then a psql count per table.
//!
//! usage: bench-backup-verify BACKUP_VERIFY_BIN [SIZE_MB, e.g. 200] [ROUNDS, e.g. 3]

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::runtime_api::{function_command, Outcome, RuntimeApi};
use pgsteward_tests::snapshots::bucket;
use pgsteward_tests::verify::object;
use serde_json::{json, Value};

fn spawn(bin: &str, api: &RuntimeApi, vars: &[(&str, String)]) -> Child {
    function_command(bin, "backup-verify", api, vars)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start backup-verify")
}

/// One invocation; (answer, wall seconds).
async fn invoke(api: &RuntimeApi, n: &mut usize, event: Value) -> (Value, f64) {
    let t = Instant::now();
    *n += 1;
    api.push(&format!("r{n}"), event);
    let outcomes = api.wait_outcomes(*n, 1800).await;
    let secs = t.elapsed().as_secs_f64();
    match outcomes.get(*n - 1).map(|o| o.1.clone()) {
        Some(Outcome::Response(v)) => (v, secs),
        other => panic!("invocation {n}: {other:?}"),
    }
}

fn run(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .expect("usage: bench-backup-verify BACKUP_VERIFY_BIN [SIZE_MB] [ROUNDS]");
    let size_mb: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let rounds: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3);
    let pg = Postgres::shared();
    let db = pg.create_database("bench_verify").await;
    let admin = pg.admin(&db).await;
    let scale = size_mb as f64 / 200.0;
    let orders = (1_100_000.0 * scale) as i64;
    let items = (900_000.0 * scale) as i64;
    let customers = (100_000.0 * scale) as i64;
    admin
        .batch_execute(&format!(
            "CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE, created_at timestamptz);
             INSERT INTO customers SELECT g, 'c' || g || '@example.com', now() - g * interval '1 min' FROM generate_series(1, {customers}) g;
             CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, amount numeric(10,2), note text);
             INSERT INTO orders SELECT g, 1 + g % {customers}, (g % 10000) / 100.0, md5(g::text) FROM generate_series(1, {orders}) g;
             CREATE INDEX orders_customer ON orders (customer_id);
             CREATE TABLE items (order_id bigint, line int, sku text, qty int, PRIMARY KEY (order_id, line));
             INSERT INTO items SELECT 1 + g % {orders}, g, 'sku-' || (g % 5000), 1 + g % 9 FROM generate_series(1, {items}) g;
             CREATE INDEX items_sku ON items (sku);"
        ))
        .await
        .expect("data");
    admin.batch_execute("VACUUM ANALYZE").await.expect("vacuum");
    let db_bytes: i64 = admin
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .unwrap()
        .get(0);
    let dbid = "bench-verify";
    let bucket = bucket("bench-verify").await;
    let slot = chrono::Utc::now().format("%Y-%m-%dT%H:%M:00Z").to_string();
    let dump_started = Instant::now();
    let snap = pgsteward_tests::snapshots::task(&[
        ("PGSTEWARD_DATABASE_URL", &pg.admin_url(&db)),
        ("PGSTEWARD_DB_IDENTIFIER", dbid),
        ("PGSTEWARD_BACKUP_BUCKET", &bucket),
    ])
    .await;
    let manifest = snap
        .handle(
            json!({"action": "logical-backup", "scheduledTime": slot}),
            None,
        )
        .await
        .expect("dump")["details"]["manifest"]
        .clone();
    let dump_secs = dump_started.elapsed().as_secs_f64();
    let dump_bytes = manifest["sizeBytes"].as_u64().unwrap();

    let base = vec![
        ("PGSTEWARD_DATABASE_URL", pg.admin_url(&db)),
        ("PGSTEWARD_DB_IDENTIFIER", dbid.to_string()),
        ("PGSTEWARD_CA_BUNDLE", pg.ca.display().to_string()),
        ("PGSTEWARD_BACKUP_BUCKET", bucket.clone()),
        ("PGSTEWARD_VERIFY_DATABASE_URL", pg.admin_url("postgres")),
    ];
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut ours: Vec<(String, Vec<Value>)> = Vec::new();
    for jobs in [Some(1u32), None] {
        let mut vars = base.clone();
        if let Some(j) = jobs {
            vars.push(("PGSTEWARD_RESTORE_JOBS", j.to_string()));
        }
        let api = RuntimeApi::start().await;
        let mut child = spawn(bin, &api, &vars);
        api.wait_first_poll(30).await.expect("the function started");
        let mut n = 0;
        let mut runs = Vec::new();
        for r in 0..rounds {
            let id = format!(
                "bench-{}-{r}",
                jobs.map(|j| j.to_string()).unwrap_or("auto".into())
            );
            let (picked, _) = invoke(
                &api,
                &mut n,
                json!({"action": "pick", "kind": "logical", "drillId": id}),
            )
            .await;
            let (verify, secs) = invoke(
                &api,
                &mut n,
                json!({"action": "verify", "kind": "logical", "drill": picked["drill"]}),
            )
            .await;
            assert_eq!(verify["passed"], true, "{verify:#}");
            let (_, teardown) = invoke(
                &api,
                &mut n,
                json!({"action": "teardown", "kind": "logical", "drill": picked["drill"]}),
            )
            .await;
            let jobs_used = verify["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "restore")
                .unwrap()["detail"]["jobs"]
                .clone();
            runs.push(json!({"verify": secs, "rto": verify["rtoSeconds"], "rpo": verify["rpoMinutes"], "timings": verify["timings"], "jobs": jobs_used, "teardown": teardown}));
        }
        let _ = child.kill();
        let _ = child.wait();
        ours.push((format!("jobs={}", runs[0]["jobs"]), runs));
    }

    // By hand: the file, its checksum, a database, pg_restore, a count per table.
    let dump = object(&bucket, manifest["dumpKey"].as_str().unwrap())
        .await
        .unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &dump).unwrap();
    drop(dump);
    let tables: Vec<String> = manifest["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}.{}",
                t["schema"].as_str().unwrap(),
                t["name"].as_str().unwrap()
            )
        })
        .collect();
    let env = [
        ("PGPASSWORD", pg.superuser_password.clone()),
        ("PGSSLMODE", "disable".to_string()),
    ];
    let conn = ["-h", "127.0.0.1", "-U", "postgres"];
    let port = pg.port.to_string();
    let mut manual: Vec<[f64; 3]> = Vec::new();
    for r in 0..rounds {
        let target = format!("bench_manual_{r}");
        let sha = run(Command::new("sha256sum")
            .arg(file.path())
            .stdout(Stdio::null()));
        let restore = run(Command::new("createdb")
            .args(conn)
            .args(["-p", &port, &target])
            .envs(env.clone()))
            + run(Command::new("pg_restore")
                .args(conn)
                .args([
                    "-p",
                    &port,
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    &format!("--jobs={cores}"),
                    "-d",
                    &target,
                ])
                .arg(file.path())
                .envs(env.clone()));
        let mut counts = 0.0;
        for t in &tables {
            counts += run(Command::new("psql")
                .args(conn)
                .args([
                    "-p",
                    &port,
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-d",
                    &target,
                    "-c",
                    &format!("SELECT count(*) FROM {t}"),
                ])
                .envs(env.clone())
                .stdout(Stdio::null()));
        }
        run(Command::new("dropdb")
            .args(conn)
            .args(["-p", &port, &target])
            .envs(env.clone()));
        manual.push([sha, restore, counts]);
    }

    println!(
        "database {:.0} MB ({} tables, {customers}+{orders}+{items} rows, 6 B-tree indexes); dump {:.0} MB (pg_dump -Fc, streamed to moto S3 in {dump_secs:.1} s); {cores} cores; median of {rounds} rounds\n",
        db_bytes as f64 / 1e6,
        tables.len(),
        dump_bytes as f64 / 1e6
    );
    let split = |runs: &Vec<Value>, key: &str| {
        median(
            runs.iter()
                .map(|r| r["timings"][key].as_f64().unwrap_or(0.0))
                .collect(),
        )
    };
    print!("| s | ");
    for (name, _) in &ours {
        print!("pgsteward verify, pg_restore {name} | ");
    }
    println!("by hand (sha256sum, createdb + pg_restore --jobs={cores}, psql count per table) |");
    println!("|---|---|---|---|");
    let row = |label: &str, f: &dyn Fn(&Vec<Value>) -> f64, manual_v: String| {
        print!("| {label} | ");
        for (_, runs) in &ours {
            print!("{:.2} | ", f(runs));
        }
        println!("{manual_v} |");
    };
    let m = |i: usize| median(manual.iter().map(|x| x[i]).collect());
    row(
        "download from S3 + SHA-256",
        &|r| split(r, "download"),
        format!("{:.2} (sha256sum of a local file; no download)", m(0)),
    );
    row(
        "pg_restore (by hand: createdb + pg_restore)",
        &|r| split(r, "restore"),
        format!("{:.2}", m(1)),
    );
    row(
        "exact row counts, every table",
        &|r| split(r, "rowCounts"),
        format!("{:.2}", m(2)),
    );
    row(
        "amcheck bt_index_check (heapallindexed), every B-tree index",
        &|r| split(r, "amcheck"),
        "not done".into(),
    );
    row(
        "RTO: drill start → verified",
        &|r| median(r.iter().map(|x| x["rto"].as_f64().unwrap()).collect()),
        format!("{:.2} (without amcheck)", m(0) + m(1) + m(2)),
    );
    row(
        "verify invocation, wall",
        &|r| median(r.iter().map(|x| x["verify"].as_f64().unwrap()).collect()),
        "-".into(),
    );
    row(
        "teardown (DROP DATABASE)",
        &|r| median(r.iter().map(|x| x["teardown"].as_f64().unwrap()).collect()),
        "-".into(),
    );
    println!();
    for (name, runs) in &ours {
        println!(
            "{name}: RPO at the drill's start {:.2} min (the dump was just taken; in production it is the schedule's interval plus the dump's duration)",
            runs[0]["rpo"].as_f64().unwrap_or(0.0)
        );
    }
}
