//! A moto server (the AWS API emulator) on a free loopback port, one per test binary.
//! The SDK reaches it through the standard `AWS_ENDPOINT_URL`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::process::{free_port, on_exit};

pub struct Moto {
    pub endpoint: String,
}

static SHARED: OnceLock<Moto> = OnceLock::new();

/// The project's pinned moto (`make setup` makes `.venv`), else PGSTEWARD_PYTHON, else python3.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PGSTEWARD_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = crate::repo_root().join(".venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

impl Moto {
    pub fn shared() -> &'static Moto {
        SHARED.get_or_init(Moto::start)
    }

    fn start() -> Moto {
        let _one_at_a_time = crate::process::STARTING
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let py = python();
        let ok = Command::new(&py)
            .args(["-c", "import moto.server, flask"])
            .stderr(Stdio::null())
            .status();
        assert!(
            ok.map(|s| s.success()).unwrap_or(false),
            "moto is missing for {}: run `make setup` (or pip install 'moto[server]==5.2.5')",
            py.display()
        );
        let port = free_port();
        let child = Command::new(&py)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("MOTO_PORT", port.to_string())
            // moto's default of 1,000 manual snapshots is below the retention benchmark's 5,000.
            .env("MOTO_RDS_SNAPSHOT_LIMIT", "100000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        on_exit(&format!("kill {}", child.id()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Environment for a process (or the SDK) that talks to this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// An SDK config pointed at this moto.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await
    }
}
