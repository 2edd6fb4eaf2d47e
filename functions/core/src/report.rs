//! The run report: what was done, what was skipped and why, warnings, and a continuation
//! when work remains. Returned by every handler and published to EventBridge.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub task: String,
    /// The database or resource the run was about.
    pub target: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub dry_run: bool,
    pub done: Vec<Done>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    /// Where the next invocation resumes; always present (null when the work is done) so a
    /// state machine can route on it.
    #[serde(default)]
    pub continuation: Option<Value>,
    /// The task's own findings (metrics, plans, figures).
    #[serde(default)]
    pub details: Value,
}

/// One action taken (or, in a dry run, that would have been taken).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    pub action: String,
    pub target: String,
    #[serde(default)]
    pub detail: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub item: String,
    pub reason: String,
}

impl Report {
    pub fn new(task: &str, target: &str, started_at: DateTime<Utc>, dry_run: bool) -> Self {
        Report {
            task: task.into(),
            target: target.into(),
            started_at,
            finished_at: started_at,
            dry_run,
            done: vec![],
            skipped: vec![],
            warnings: vec![],
            continuation: None,
            details: Value::Null,
        }
    }

    pub fn done(&mut self, action: &str, target: impl Into<String>, detail: Value) {
        self.done.push(Done {
            action: action.into(),
            target: target.into(),
            detail,
        });
    }

    pub fn skip(&mut self, item: impl Into<String>, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            item: item.into(),
            reason: reason.into(),
        });
    }

    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }
}
