//! The plan: which tables (or indexes) need work, in what order, and why — and why the
//! others were left out. A pure function of the catalog rows, the policy and the mode.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::catalog::{IndexStats, TableStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// VACUUM (ANALYZE) what has dead tuples, FREEZE what nears wraparound, ANALYZE what is stale.
    #[default]
    Standard,
    /// ANALYZE only.
    Analyze,
    /// VACUUM (FREEZE) what nears wraparound.
    Freeze,
    /// VACUUM FULL: in the maintenance window, bloat over the limit, room to rewrite.
    Full,
    /// REINDEX INDEX CONCURRENTLY of bloated B-tree indexes.
    Reindex,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standard => "standard",
            Mode::Analyze => "analyze",
            Mode::Freeze => "freeze",
            Mode::Full => "full",
            Mode::Reindex => "reindex",
        }
    }
}

/// Thresholds; defaults from seed 000 (dead tuples > 20%, VACUUM FULL only above 50% bloat)
/// and PostgreSQL's own (freeze table age 150 M, analyze scale factor 10%).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Policy {
    pub dead_ratio: f64,
    pub min_dead_tuples: i64,
    pub freeze_age: i64,
    pub stale_ratio: f64,
    pub min_stale_changes: i64,
    pub full_min_bloat: f64,
    pub reindex_min_bloat: f64,
    pub reindex_min_bytes: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            dead_ratio: 0.20,
            min_dead_tuples: 1000,
            freeze_age: 150_000_000,
            stale_ratio: 0.10,
            min_stale_changes: 1000,
            full_min_bloat: 0.50,
            reindex_min_bloat: 0.30,
            reindex_min_bytes: 10 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Vacuum,
    VacuumFreeze,
    Analyze,
    VacuumFull,
    Reindex,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Vacuum => "vacuum",
            Action::VacuumFreeze => "vacuum-freeze",
            Action::Analyze => "analyze",
            Action::VacuumFull => "vacuum-full",
            Action::Reindex => "reindex",
        }
    }
}

/// One relation to work on. `schema`/`name` come from the catalog, never from input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub action: Action,
    pub reasons: Vec<String>,
    /// Table or index bytes from the catalog (the storage guard of VACUUM FULL uses it).
    pub bytes: i64,
    /// Dead tuples when planned: the "before" of the report.
    pub dead_tuples: i64,
}

impl Planned {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeftOut {
    pub relation: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub items: Vec<Planned>,
    pub left_out: Vec<LeftOut>,
}

/// Relations a request or continuation narrows the sweep to, as (schema, name).
pub type Only = BTreeSet<(String, String)>;

fn n(v: i64) -> String {
    let s = v.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn pct(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

/// Plans the table modes (all but `reindex`).
pub fn plan_tables(
    tables: &[TableStats],
    policy: &Policy,
    mode: Mode,
    only: Option<&Only>,
) -> Plan {
    let mut plan = Plan::default();
    // Sort keys: wraparound first (oldest first), then dead tuples, then stale statistics.
    let mut keyed: Vec<((u8, i64), Planned)> = vec![];
    for t in tables {
        if only.is_some_and(|o| !o.contains(&(t.schema.clone(), t.name.clone()))) {
            continue;
        }
        let age = t.xid_age.max(t.mxid_age);
        let wraparound = age >= policy.freeze_age;
        let dead = t.dead_ratio() >= policy.dead_ratio && t.dead_tuples >= policy.min_dead_tuples;
        let stale_changes = t.mods_since_analyze >= policy.min_stale_changes
            && t.mods_since_analyze as f64 >= policy.stale_ratio * t.live_tuples as f64;
        let never_analyzed = !t.analyzed && t.live_tuples > 0;
        let mut reasons = vec![];
        if wraparound {
            reasons.push(format!(
                "transaction id age {} ≥ {} (wraparound risk)",
                n(age),
                n(policy.freeze_age)
            ));
        }
        if dead {
            reasons.push(format!(
                "dead tuples {} ({}) ≥ {}",
                pct(t.dead_ratio()),
                n(t.dead_tuples),
                pct(policy.dead_ratio)
            ));
        }
        if never_analyzed {
            reasons.push("never analyzed".into());
        } else if stale_changes {
            reasons.push(format!(
                "{} changes since the last analyze ≥ {} of rows",
                n(t.mods_since_analyze),
                pct(policy.stale_ratio)
            ));
        }
        let stale = never_analyzed || stale_changes;
        let bloat = t.bloat_estimate();
        let (action, why_not) = match mode {
            Mode::Standard if wraparound => (Some(Action::VacuumFreeze), None),
            Mode::Standard if dead => (Some(Action::Vacuum), None),
            Mode::Standard if stale => (Some(Action::Analyze), None),
            Mode::Analyze if stale || dead => (Some(Action::Analyze), None),
            Mode::Freeze if wraparound => (Some(Action::VacuumFreeze), None),
            Mode::Full if bloat > policy.full_min_bloat => {
                reasons = vec![format!(
                    "estimated bloat {} > {}",
                    pct(bloat),
                    pct(policy.full_min_bloat)
                )];
                (Some(Action::VacuumFull), None)
            }
            Mode::Full => (
                None,
                Some(format!(
                    "estimated bloat {} ≤ {} (VACUUM FULL only above it)",
                    pct(bloat),
                    pct(policy.full_min_bloat)
                )),
            ),
            Mode::Freeze => (
                None,
                Some(format!(
                    "transaction id age {} < {}",
                    n(age),
                    n(policy.freeze_age)
                )),
            ),
            _ => (
                None,
                Some(format!(
                    "dead tuples {} ({}), statistics fresh, transaction id age {}",
                    pct(t.dead_ratio()),
                    n(t.dead_tuples),
                    n(age)
                )),
            ),
        };
        match action {
            Some(action) => {
                let key = if wraparound && action == Action::VacuumFreeze {
                    (0, -age)
                } else if action == Action::VacuumFull {
                    (1, -t.table_bytes)
                } else if dead {
                    (1, -t.dead_tuples)
                } else {
                    (2, -t.mods_since_analyze)
                };
                keyed.push((
                    key,
                    Planned {
                        oid: t.oid,
                        schema: t.schema.clone(),
                        name: t.name.clone(),
                        action,
                        reasons,
                        bytes: t.table_bytes,
                        dead_tuples: t.dead_tuples,
                    },
                ));
            }
            None => plan.left_out.push(LeftOut {
                relation: t.qualified(),
                reason: why_not.unwrap_or_default(),
            }),
        }
    }
    keyed.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.qualified().cmp(&b.1.qualified()))
    });
    plan.items = keyed.into_iter().map(|(_, p)| p).collect();
    plan.left_out.sort_by(|a, b| a.relation.cmp(&b.relation));
    plan
}

/// Plans `reindex`: bloated valid B-tree indexes, largest first. Invalid ones are returned
/// apart: they are reported, not rebuilt.
pub fn plan_indexes(
    indexes: &[IndexStats],
    policy: &Policy,
    only: Option<&Only>,
) -> (Plan, Vec<String>) {
    let mut plan = Plan::default();
    let mut invalid = vec![];
    for i in indexes {
        if only.is_some_and(|o| !o.contains(&(i.schema.clone(), i.name.clone()))) {
            continue;
        }
        if !i.valid {
            invalid.push(i.qualified());
            continue;
        }
        let bloat = i.bloat_estimate();
        if bloat > policy.reindex_min_bloat && i.bytes >= policy.reindex_min_bytes {
            plan.items.push(Planned {
                oid: i.oid,
                schema: i.schema.clone(),
                name: i.name.clone(),
                action: Action::Reindex,
                reasons: vec![format!(
                    "estimated bloat {} > {}, {} bytes on table {}",
                    pct(bloat),
                    pct(policy.reindex_min_bloat),
                    n(i.bytes),
                    i.table
                )],
                bytes: i.bytes,
                dead_tuples: 0,
            });
        } else {
            plan.left_out.push(LeftOut {
                relation: i.qualified(),
                reason: format!(
                    "estimated bloat {} (limit {}), {} bytes (minimum {})",
                    pct(bloat),
                    pct(policy.reindex_min_bloat),
                    n(i.bytes),
                    n(policy.reindex_min_bytes)
                ),
            });
        }
    }
    plan.items.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.qualified().cmp(&b.qualified()))
    });
    plan.left_out.sort_by(|a, b| a.relation.cmp(&b.relation));
    invalid.sort();
    (plan, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, live: i64, dead: i64, mods: i64, analyzed: bool, age: i64) -> TableStats {
        TableStats {
            oid: 1,
            schema: "public".into(),
            name: name.into(),
            live_tuples: live,
            dead_tuples: dead,
            mods_since_analyze: mods,
            analyzed,
            xid_age: age,
            mxid_age: 0,
            table_bytes: (live + dead) * 100,
            live_bytes_estimate: None,
        }
    }

    #[test]
    fn wraparound_first_then_dead_then_stale_and_reasons_for_the_rest() {
        let tables = vec![
            t("clean", 10_000, 10, 0, true, 1000),
            t("stale", 10_000, 0, 5_000, true, 1000),
            t("bloated", 10_000, 10_000, 0, true, 1000),
            t("more_bloated", 10_000, 20_000, 0, true, 1000),
            t("old", 10_000, 0, 0, true, 300_000_000),
            t("older", 10_000, 0, 0, true, 400_000_000),
            t("tiny_dead", 10, 10, 0, true, 1000),
        ];
        let p = plan_tables(&tables, &Policy::default(), Mode::Standard, None);
        let order: Vec<_> = p
            .items
            .iter()
            .map(|i| (i.name.as_str(), i.action))
            .collect();
        assert_eq!(
            order,
            vec![
                ("older", Action::VacuumFreeze),
                ("old", Action::VacuumFreeze),
                ("more_bloated", Action::Vacuum),
                ("bloated", Action::Vacuum),
                ("stale", Action::Analyze),
            ]
        );
        let left: Vec<_> = p.left_out.iter().map(|l| l.relation.as_str()).collect();
        assert_eq!(left, vec!["public.clean", "public.tiny_dead"]);
        assert!(p.left_out[0].reason.contains("statistics fresh"));
        assert!(
            p.items[2].reasons[0].contains("67%"),
            "{:?}",
            p.items[2].reasons
        );
    }

    #[test]
    fn modes_and_narrowing() {
        let tables = vec![
            t("a", 100, 100_000, 0, true, 1),
            t("b", 100, 100_000, 0, true, 200_000_000),
        ];
        let freeze = plan_tables(&tables, &Policy::default(), Mode::Freeze, None);
        assert_eq!(freeze.items.len(), 1);
        assert_eq!(freeze.items[0].name, "b");
        let only: Only = [("public".to_string(), "a".to_string())].into();
        let narrowed = plan_tables(&tables, &Policy::default(), Mode::Standard, Some(&only));
        assert_eq!(
            narrowed
                .items
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>(),
            vec!["a"]
        );
        assert!(narrowed.left_out.is_empty());
        let full = plan_tables(&tables, &Policy::default(), Mode::Full, None);
        assert!(full.items.iter().all(|i| i.action == Action::VacuumFull) && full.items.len() == 2);
    }

    #[test]
    fn planning_ten_thousand_tables_is_pure_and_deterministic() {
        let tables: Vec<_> = (0..10_000)
            .map(|i| t(&format!("t{i}"), 1000, (i % 7) * 500, 0, true, i))
            .collect();
        let mut reversed = tables.clone();
        reversed.reverse();
        let a = plan_tables(&tables, &Policy::default(), Mode::Standard, None);
        let b = plan_tables(&reversed, &Policy::default(), Mode::Standard, None);
        assert_eq!(a, b);
        assert_eq!(a.items.len() + a.left_out.len(), 10_000);
    }
}
