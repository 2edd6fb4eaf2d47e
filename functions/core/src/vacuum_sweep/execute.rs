//! Runs a plan on `jobs` connections in parallel (like `vacuumdb --jobs`), never waiting on
//! a lock: SKIP_LOCKED and `lock_timeout` on every statement, `statement_timeout` bounded by
//! the time left, and no new work started past the stop time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use super::plan::{Action, Planned};
use crate::clock::Clock;
use crate::error::Result;
use crate::pg::{quote_qualified, Notices, Target};

/// What happened to one planned item.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Outcome {
    Done {
        figures: Figures,
    },
    Skipped {
        reason: String,
    },
    /// Not started before the stop time: goes into the continuation.
    Deferred {
        reason: String,
    },
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub dead_tuples_before: i64,
    pub dead_tuples_after: i64,
    /// From the catalog; null when the relation was never vacuumed or analyzed (unknown).
    pub bytes_before: Option<i64>,
    pub bytes_after: Option<i64>,
    pub duration_ms: u64,
}

/// Progress for a terminal: the item just finished, how many are finished, of how many.
pub type Progress = Arc<dyn Fn(&Planned, &Outcome, usize, usize) + Send + Sync>;

pub struct Limits {
    pub jobs: usize,
    pub lock_timeout: Duration,
    /// No item starts after this; statements are cancelled at it.
    pub stop_at: Option<DateTime<Utc>>,
}

/// The statement for an item. Names come from the catalog and are quoted.
pub fn statement(item: &Planned) -> String {
    let q = quote_qualified(&item.schema, &item.name);
    match item.action {
        Action::Vacuum => format!("VACUUM (SKIP_LOCKED, ANALYZE) {q}"),
        Action::VacuumFreeze => format!("VACUUM (SKIP_LOCKED, FREEZE, ANALYZE) {q}"),
        Action::Analyze => format!("ANALYZE (SKIP_LOCKED) {q}"),
        Action::VacuumFull => format!("VACUUM (SKIP_LOCKED, FULL, ANALYZE) {q}"),
        Action::Reindex => format!("REINDEX INDEX CONCURRENTLY {q}"),
    }
}

/// Runs every item; returns the outcomes in plan order.
/// `first` is the coordinator's own session (it holds the sweep's advisory lock, which ends
/// with it); it works as the first of the `jobs` workers, the others connect in parallel.
pub async fn run(
    target: &Target,
    first: (Client, Notices),
    items: Vec<Planned>,
    limits: &Limits,
    clock: Arc<dyn Clock>,
    progress: Option<Progress>,
) -> Result<(Vec<(Planned, Outcome)>, Client)> {
    let total = items.len();
    let queue = Arc::new(Mutex::new(
        items.into_iter().enumerate().collect::<VecDeque<_>>(),
    ));
    let results = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let workers = limits.jobs.clamp(1, total.max(1));
    let mut connecting = vec![];
    for _ in 1..workers {
        let target = target.clone();
        connecting.push(tokio::spawn(async move {
            crate::pg::connect_target_with_notices(&target).await
        }));
    }
    let mut sessions = vec![first];
    for c in connecting {
        sessions.push(
            c.await.map_err(|e| {
                crate::Error::internal(format!("connecting a worker failed: {e}"))
            })??,
        );
    }
    let ms = limits.lock_timeout.as_millis();
    for (client, _) in &sessions {
        client
            .batch_execute(&format!(
                "SET lock_timeout = {ms}; SET application_name = 'pgsteward vacuum-sweep'"
            ))
            .await
            .map_err(|e| crate::Error::Retryable(format!("session setup failed: {e}")))?;
    }
    let mut handles = vec![];
    for (client, notices) in sessions {
        let (queue, results, clock, progress) = (
            queue.clone(),
            results.clone(),
            clock.clone(),
            progress.clone(),
        );
        let stop_at = limits.stop_at;
        handles.push(tokio::spawn(async move {
            let mut worker = Worker {
                client,
                notices,
                statement_timeout_ms: 0,
            };
            let mut mine = vec![];
            loop {
                let Some((index, item)) = queue.lock().expect("queue").pop_front() else {
                    break;
                };
                let outcome = match stop_at.map(|s| s - clock.now()) {
                    Some(left) if left <= chrono::Duration::zero() => Outcome::Deferred {
                        reason: "not started: the stop time (deadline or window end) was reached"
                            .into(),
                    },
                    left => worker.work(&item, left.and_then(|l| l.to_std().ok())).await,
                };
                let finished = results.lock().expect("results").len() + mine.len() + 1;
                if let Some(p) = &progress {
                    p(&item, &outcome, finished, total);
                }
                mine.push((index, item, outcome));
            }
            // One round trip for every "after" figure, not one per table.
            worker.fill_after(&mut mine).await;
            results.lock().expect("results").extend(mine);
            worker.client
        }));
    }
    let mut clients = vec![];
    for h in handles {
        clients.push(
            h.await
                .map_err(|e| crate::Error::internal(format!("a sweep worker failed: {e}")))?,
        );
    }
    let mut results = std::mem::take(&mut *results.lock().expect("results"));
    results.sort_by_key(|(i, _, _)| *i);
    let first = clients.into_iter().next().expect("at least one worker");
    Ok((
        results
            .into_iter()
            .map(|(_, item, outcome)| (item, outcome))
            .collect(),
        first,
    ))
}

struct Worker {
    client: Client,
    notices: Notices,
    /// The statement_timeout the session has (0: none), to skip needless SETs.
    statement_timeout_ms: u128,
}

const LOCK_NOT_AVAILABLE: &str = "55P03";
const QUERY_CANCELED: &str = "57014";
const UNDEFINED_TABLE: &str = "42P01";
const INSUFFICIENT_PRIVILEGE: &str = "42501";

impl Worker {
    /// Dead tuples and size after the work, for all of this worker's done items at once, by
    /// quoted name passed as a parameter (by name, not oid: REINDEX CONCURRENTLY gives the
    /// index a new oid). Sizes are the catalog's (`relpages`, which VACUUM, ANALYZE and
    /// REINDEX refresh): reading the files would take a lock and could wait behind the very
    /// sessions the sweep steps around.
    async fn fill_after(&self, done: &mut [(usize, Planned, Outcome)]) {
        let names: Vec<String> = done
            .iter()
            .map(|(_, item, _)| quote_qualified(&item.schema, &item.name))
            .collect();
        if !done
            .iter()
            .any(|(_, _, o)| matches!(o, Outcome::Done { .. }))
        {
            return;
        }
        let rows = self
            .client
            .query(
                "SELECT u.n, coalesce(s.n_dead_tup, 0),
                        CASE WHEN c.reltuples >= 0 THEN c.relpages::int8 * current_setting('block_size')::int8 END
                 FROM unnest($1::text[]) WITH ORDINALITY AS u(name, n)
                 LEFT JOIN pg_class c ON c.oid = to_regclass(u.name)
                 LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid",
                &[&names],
            )
            .await
            .unwrap_or_default();
        for row in rows {
            let n: i64 = row.get(0);
            if let Some((_, _, Outcome::Done { figures })) = done.get_mut(n as usize - 1) {
                figures.dead_tuples_after = row.get(1);
                figures.bytes_after = row.get(2);
            }
        }
    }

    async fn work(&mut self, item: &Planned, time_left: Option<Duration>) -> Outcome {
        // Bounded by the time left, so a long VACUUM cannot overrun the deadline.
        let timeout_ms = time_left.map_or(0, |t| t.as_millis().max(1000));
        if timeout_ms != self.statement_timeout_ms {
            if let Err(e) = self
                .client
                .batch_execute(&format!("SET statement_timeout = {timeout_ms}"))
                .await
            {
                return Outcome::Skipped {
                    reason: format!("session lost: {e}"),
                };
            }
            self.statement_timeout_ms = timeout_ms;
        }
        while self.notices.try_recv().is_ok() {}
        let started = Instant::now();
        let result = self.client.batch_execute(&statement(item)).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        // VACUUM and ANALYZE skip with a WARNING, not an error: a lock they could not take
        // at once (SKIP_LOCKED), or a table the role may not vacuum.
        let mut skipped_by_server = None;
        while let Ok(n) = self.notices.try_recv() {
            let msg = n.message();
            if n.code().code() == LOCK_NOT_AVAILABLE {
                skipped_by_server = Some(format!(
                    "lock not available, skipped without waiting ({msg})"
                ));
            } else if msg.starts_with("skipping") {
                // e.g. "only table or database owner can vacuum it" (a WARNING without its own code).
                skipped_by_server = Some(format!(
                    "skipped by the server ({msg}); connect as the table's or the database's owner"
                ));
            }
        }
        if let Err(e) = result {
            let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
            let reason = match code.as_str() {
                LOCK_NOT_AVAILABLE => format!(
                    "lock not available within lock_timeout; another session holds it ({e})"
                ),
                QUERY_CANCELED => {
                    return Outcome::Deferred {
                        reason: "cancelled at the stop time (statement_timeout); resumed next run"
                            .into(),
                    }
                }
                UNDEFINED_TABLE => "no longer exists".into(),
                INSUFFICIENT_PRIVILEGE => {
                    format!("not permitted ({e}); connect as the owner of the table or index")
                }
                _ => format!("failed: {e}"),
            };
            return Outcome::Skipped { reason };
        }
        if let Some(reason) = skipped_by_server {
            return Outcome::Skipped { reason };
        }
        Outcome::Done {
            figures: Figures {
                dead_tuples_before: item.dead_tuples,
                dead_tuples_after: item.dead_tuples,
                bytes_before: (item.bytes > 0).then_some(item.bytes),
                bytes_after: None,
                duration_ms,
            },
        }
    }
}
