//! A throwaway PostgreSQL 15 cluster: initdb into a temp dir, a free loopback port, TLS on
//! with a CA generated for the run, scram passwords. One per test binary; each test makes
//! its own database.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::process::{as_pg_user, free_port, is_root, on_exit, require, run};

pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    pub dir: PathBuf,
    /// The CA that signed the server certificate.
    pub ca: PathBuf,
    /// A CA that did not: for verification-failure tests.
    pub wrong_ca: PathBuf,
    pub superuser_password: String,
}

static SHARED: OnceLock<Postgres> = OnceLock::new();

impl Postgres {
    /// The cluster of this test binary, started on first use.
    pub fn shared() -> &'static Postgres {
        SHARED.get_or_init(Postgres::start)
    }

    fn start() -> Postgres {
        let _one_at_a_time = crate::process::STARTING
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let bin = pg_bin_dir();
        require("openssl", "apt-get install -y openssl");
        let dir = std::env::temp_dir().join(crate::unique("pgsteward-pg"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = free_port();
        let password = format!("su-{}", std::process::id());
        make_certs(&dir);
        std::fs::write(dir.join("pwfile"), &password).expect("pwfile");
        if is_root() {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir),
                "chown cluster dir",
            );
        }
        let data = dir.join("data");
        run(
            as_pg_user(&bin.join("initdb").to_string_lossy())
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ])
                .arg(format!("--pwfile={}", dir.join("pwfile").display())),
            "initdb",
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{d}'\nssl = on\n\
             ssl_cert_file = '{d}/server.crt'\nssl_key_file = '{d}/server.key'\nmax_connections = 60\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nshared_buffers = 32MB\n\
             log_min_messages = warning\n",
            d = dir.display()
        );
        append(&data.join("postgresql.conf"), &conf);
        let log = dir.join("server.log");
        run(
            as_pg_user(&bin.join("pg_ctl").to_string_lossy())
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "start"]),
            "pg_ctl start",
        );
        let stop = format!(
            "{} -D '{}' stop -m immediate; rm -rf '{}'",
            shell_as_pg(&bin.join("pg_ctl").to_string_lossy()),
            data.display(),
            dir.display()
        );
        on_exit(&stop);
        Postgres {
            port,
            bin,
            ca: dir.join("ca.crt"),
            wrong_ca: dir.join("wrong-ca.crt"),
            dir,
            superuser_password: password,
        }
    }

    /// A verified-TLS URL for `user` on `db`.
    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "postgresql://{user}:{password}@localhost:{}/{db}?sslmode=verify-full&sslrootcert={}",
            self.port,
            self.ca.display()
        )
    }

    /// Superuser URL over TLS.
    pub fn admin_url(&self, db: &str) -> String {
        self.url("postgres", &self.superuser_password, db)
    }

    /// A connected superuser client.
    pub async fn admin(&self, db: &str) -> tokio_postgres::Client {
        self.connect_as("postgres", &self.superuser_password, db)
            .await
    }

    /// A client for `user` (plaintext on loopback: test setup only, not the code under test).
    pub async fn connect_as(&self, user: &str, password: &str, db: &str) -> tokio_postgres::Client {
        let conn = format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname={db}",
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// A streaming standby of this cluster on its own port (pg_basebackup -R), stopped
    /// when the test binary exits. Same TLS certificate and passwords as the primary.
    pub fn start_standby(&self) -> Standby {
        let _one_at_a_time = crate::process::STARTING
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        require("pg_basebackup", "apt-get install -y postgresql-client");
        let dir = std::env::temp_dir().join(crate::unique("pgsteward-standby"));
        std::fs::create_dir_all(&dir).expect("standby dir");
        if is_root() {
            run(
                Command::new("chown").args(["postgres:postgres"]).arg(&dir),
                "chown standby dir",
            );
        }
        let data = dir.join("data");
        let port = free_port();
        let mut backup = as_pg_user("pg_basebackup");
        backup
            .arg("-D")
            .arg(&data)
            .args([
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
                &self.port.to_string(),
            ])
            .env("PGPASSWORD", &self.superuser_password);
        run(&mut backup, "pg_basebackup");
        append(&data.join("postgresql.conf"), &format!("port = {port}\n"));
        let pg_ctl = self.bin.join("pg_ctl").to_string_lossy().to_string();
        run(
            as_pg_user(&pg_ctl)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "60", "start"]),
            "start standby",
        );
        on_exit(&format!(
            "{} -D '{}' stop -m immediate; rm -rf '{}'",
            shell_as_pg(&pg_ctl),
            data.display(),
            dir.display()
        ));
        Standby { port }
    }

    /// A fresh database for one test.
    pub async fn create_database(&self, prefix: &str) -> String {
        let name = crate::unique(prefix);
        self.admin("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create db");
        name
    }
}

pub struct Standby {
    pub port: u16,
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open conf");
    f.write_all(text.as_bytes()).expect("write conf");
}

fn shell_as_pg(program: &str) -> String {
    if is_root() {
        format!("runuser -u postgres -- {program}")
    } else {
        program.to_string()
    }
}

/// PostgreSQL's server binaries: PG_BIN, or initdb on the PATH, or Debian's layout.
fn pg_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    for candidate in [
        "/usr/local/bin",
        "/usr/lib/postgresql/15/bin",
        "/usr/lib/postgresql/16/bin",
    ] {
        if Path::new(candidate).join("initdb").is_file() {
            return PathBuf::from(candidate);
        }
    }
    require(
        "initdb",
        "apt-get install -y postgresql (PostgreSQL 15 server binaries), or set PG_BIN",
    );
    unreachable!()
}

/// A CA, a server certificate for localhost/127.0.0.1 signed by it, and an unrelated CA.
fn make_certs(dir: &Path) {
    let sh = format!(
        r#"set -e; cd '{d}'
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=pgsteward test CA' -keyout ca.key -out ca.crt 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=unrelated CA' -keyout wrong-ca.key -out wrong-ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out server.crt 2>/dev/null
chmod 600 server.key"#,
        d = dir.display()
    );
    run(
        Command::new("sh").args(["-c", &sh]),
        "generate test certificates",
    );
}
