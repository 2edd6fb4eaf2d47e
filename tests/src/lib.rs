//! The real test environment: a throwaway PostgreSQL cluster with TLS and a moto server,
//! each started once per test binary on loopback and stopped when the binary exits (even
//! on failure: a watchdog stops them when the test process is gone). Plus a small Lambda
//! Runtime API to run the real function binaries.

pub mod faulty_aws;
pub mod fixtures;
pub mod http;
pub mod moto;
pub mod postgres;
pub mod process;
pub mod rds_pages;
pub mod restore;
pub mod retention;
pub mod runtime_api;
pub mod s3_sink;
pub mod snapshots;
pub mod vacuum;
pub mod verify;

use std::path::PathBuf;

/// The workspace root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A built binary of the workspace (same profile as the tests). `make test` builds them
/// first; a missing one stops the test with the command to run.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile dir");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace` (make test does) first",
        path.display()
    );
    path
}

/// A name unique to this test run, for databases and AWS resources.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
