//! Every file in events/ is a real-shaped payload that its function accepts.

use std::collections::HashMap;

use pgsteward_core::backup_verify;
use pgsteward_core::health_check::{self, HealthCheckConfig};
use pgsteward_core::pitr_restore;
use pgsteward_core::retention_prune;
use pgsteward_core::snapshot::{self, SnapshotConfig};
use pgsteward_core::vacuum_sweep::{self, VacuumConfig};
use pgsteward_tests::repo_root;
use serde_json::Value;

#[test]
fn every_sample_event_parses_for_its_function() {
    let env: HashMap<String, String> = [
        (
            "PGSTEWARD_DATABASE_URL",
            "postgresql://u@localhost/orders?sslmode=disable",
        ),
        ("PGSTEWARD_DB_IDENTIFIER", "orders-prod"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let hc = HealthCheckConfig::from_env(&env).unwrap();
    let vs = VacuumConfig::from_env(&env).unwrap();
    let sn = SnapshotConfig::from_env(&env).unwrap();
    let mut seen = 0;
    for dir in std::fs::read_dir(repo_root().join("events")).unwrap() {
        let dir = dir.unwrap().path();
        let function = dir.file_name().unwrap().to_string_lossy().to_string();
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            match function.as_str() {
                health_check::TASK => {
                    health_check::parse_event(event, &hc)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
                vacuum_sweep::TASK => {
                    vacuum_sweep::parse_event(event, &vs)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
                snapshot::TASK => {
                    snapshot::parse_event(event, &sn)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
                retention_prune::TASK => {
                    retention_prune::parse_event(event)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
                pitr_restore::TASK => {
                    pitr_restore::parse_event(event)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
                backup_verify::TASK => {
                    let req = backup_verify::parse_event(event)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    // Task inputs after pick carry pick's output.
                    if req.action != backup_verify::Action::Pick {
                        req.drill()
                            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    }
                }
                other => panic!("events/{other}/ has no function to parse it"),
            }
            seen += 1;
        }
    }
    assert!(seen >= 17, "only {seen} events found");
}
