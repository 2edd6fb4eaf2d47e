//! The `pgsteward` command against a real PostgreSQL.

use std::process::{Command, Output};

use pgsteward_tests::postgres::Postgres;
use pgsteward_tests::{repo_root, workspace_binary};
use serde_json::Value;

fn pgsteward(args: &[&str]) -> Output {
    Command::new(workspace_binary("pgsteward"))
        .args(args)
        .env_remove("PGSTEWARD_DATABASE_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run pgsteward")
}

#[tokio::test(flavor = "multi_thread")]
async fn health_check_prints_a_table_and_json() {
    let pg = Postgres::shared();
    let db = pg.create_database("cli").await;
    let url = pg.admin_url(&db);
    let out = pgsteward(&["health-check", "--database-url", &url]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for word in [
        "metric",
        "cacheHitRatio",
        "longestIdleInTransactionSeconds",
        "oldestXidAge",
        "level",
    ] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
    assert!(!text.contains("\x1b["), "colours when not on a terminal");
    let out = pgsteward(&["health-check", "--database-url", &url, "--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["task"], "health-check");
    assert_eq!(report["target"], db.as_str());
}

#[test]
fn invoke_reports_errors_as_lambda_does() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"action":"explode"}"#).unwrap();
    let out = pgsteward(&[
        "invoke",
        "health-check",
        "--event",
        bad.to_str().unwrap(),
        "--database-url",
        "postgresql://u@localhost/db?sslmode=disable",
    ]);
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stdout).expect("error json");
    assert_eq!(err["errorType"], "InvalidInput");
    assert!(err["errorMessage"].as_str().unwrap().contains("explode"));

    let sample = repo_root().join("events/health-check/schedule.json");
    let out = pgsteward(&[
        "invoke",
        "vacuum-everything",
        "--event",
        sample.to_str().unwrap(),
    ]);
    let err: Value = serde_json::from_slice(&out.stdout).expect("error json");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("known: health-check"),
        "{err}"
    );
}

#[test]
fn help_teaches() {
    let out = pgsteward(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:") && text.contains("sslmode=disable"),
        "{text}"
    );
    let out = pgsteward(&["health-check", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--terminate-idle") && text.contains("--dry-run"),
        "{text}"
    );
}
