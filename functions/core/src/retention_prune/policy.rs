//! The grandfather-father-son policy: a pure function of (backups, policy, now). Everything
//! that deletes asks this first; it never looks at a clock or an API.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Keep the newest backup of each of the last `days` days, `weeks` ISO weeks, `months`
/// months and `years` years; nothing older than `maxAgeDays`; always the newest `minKeep`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    #[serde(default = "default_days")]
    pub days: u32,
    #[serde(default)]
    pub weeks: u32,
    #[serde(default)]
    pub months: u32,
    #[serde(default)]
    pub years: u32,
    #[serde(default)]
    pub max_age_days: Option<u32>,
    #[serde(default = "default_min_keep")]
    pub min_keep: u32,
}

/// Seeds 001 and 004: 30 days of daily backups.
fn default_days() -> u32 {
    30
}
fn default_min_keep() -> u32 {
    3
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            days: default_days(),
            weeks: 0,
            months: 0,
            years: 0,
            max_age_days: None,
            min_keep: default_min_keep(),
        }
    }
}

impl Policy {
    pub fn validate(&self) -> Result<()> {
        if self.min_keep == 0 {
            return Err(Error::InvalidConfig(
                "the retention policy's minKeep is 0: the last restorable backup is never removed, so minKeep is at least 1, e.g. {\"days\":30,\"minKeep\":3}".into(),
            ));
        }
        if self.days + self.weeks + self.months + self.years == 0 && self.max_age_days.is_none() {
            return Err(Error::InvalidConfig(
                "the retention policy keeps no period (days, weeks, months and years are all 0) and has no maxAgeDays: say what to keep, e.g. {\"days\":30,\"weeks\":8,\"months\":12}".into(),
            ));
        }
        if let Some(0) = self.max_age_days {
            return Err(Error::InvalidConfig(
                "the retention policy's maxAgeDays is 0: it would expire every backup; use at least 1, or leave it out".into(),
            ));
        }
        Ok(())
    }
}

/// What the policy needs to know of one backup (an RDS snapshot, a copy, a logical dump).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// Unique within the series (snapshot identifier, dump key).
    pub id: String,
    pub taken_at: DateTime<Utc>,
    /// Tagged `pgsteward:managed=true` (or written by pgsteward under its prefix).
    pub managed: bool,
    /// An RDS automated snapshot: RDS's own retention owns it.
    pub automated: bool,
    /// Tagged `pgsteward:pinned=true`: kept until someone removes the tag.
    pub pinned: bool,
    /// Passed a verification drill (`pgsteward:verified`).
    pub verified: bool,
    /// Complete and restorable now (not still creating, copying or failed).
    pub available: bool,
}

/// Why a backup is kept or deleted; the report shows it next to every backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    Automated,
    Unmanaged,
    Pinned,
    NotAvailable,
    Future,
    NewestVerified,
    MinKeep,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    /// Older than `maxAgeDays`.
    Expired,
    /// Not the newest of any day, week, month or year the policy keeps.
    NotSelected,
}

impl Rule {
    pub fn keeps(self) -> bool {
        !matches!(self, Rule::Expired | Rule::NotSelected)
    }

    pub fn explain(self) -> &'static str {
        match self {
            Rule::Automated => "automated RDS snapshot: RDS's own retention owns it",
            Rule::Unmanaged => "not tagged pgsteward:managed=true: never touched",
            Rule::Pinned => "pinned (pgsteward:pinned=true)",
            Rule::NotAvailable => "not available yet (creating, copying or failed): never deleted",
            Rule::Future => "dated after now (clock skew?): kept",
            Rule::NewestVerified => "the newest backup that passed a verification drill",
            Rule::MinKeep => "one of the newest minKeep backups",
            Rule::Daily => "newest of its day",
            Rule::Weekly => "newest of its ISO week",
            Rule::Monthly => "newest of its month",
            Rule::Yearly => "newest of its year",
            Rule::Expired => "older than maxAgeDays",
            Rule::NotSelected => "not the newest of any day, week, month or year the policy keeps",
        }
    }
}

/// The rule for each backup, in the order given. The result depends only on the set of
/// backups (ties broken by id), and applying it to what it keeps keeps everything.
pub fn plan(backups: &[Backup], policy: &Policy, now: DateTime<Utc>) -> Vec<Rule> {
    let mut rules: Vec<Option<Rule>> = backups
        .iter()
        .map(|b| {
            if b.automated {
                Some(Rule::Automated)
            } else if !b.managed {
                Some(Rule::Unmanaged)
            } else if b.pinned {
                Some(Rule::Pinned)
            } else if !b.available {
                Some(Rule::NotAvailable)
            } else if b.taken_at > now {
                Some(Rule::Future)
            } else {
                None
            }
        })
        .collect();

    // The backups the policy selects among: managed, restorable, not from the future,
    // newest first (ties by id, so listing order never matters).
    let mut eligible: Vec<usize> = (0..backups.len())
        .filter(|&i| {
            let b = &backups[i];
            !b.automated && b.managed && b.available && b.taken_at <= now
        })
        .collect();
    eligible.sort_by(|&a, &b| {
        (backups[b].taken_at, &backups[b].id).cmp(&(backups[a].taken_at, &backups[a].id))
    });

    if let Some(&i) = eligible.iter().find(|&&i| backups[i].verified) {
        rules[i].get_or_insert(Rule::NewestVerified);
    }
    for &i in eligible.iter().take(policy.min_keep as usize) {
        rules[i].get_or_insert(Rule::MinKeep);
    }

    let cutoff = policy
        .max_age_days
        .map(|d| now - Duration::days(i64::from(d)));
    let periods = [
        (Rule::Daily, policy.days),
        (Rule::Weekly, policy.weeks),
        (Rule::Monthly, policy.months),
        (Rule::Yearly, policy.years),
    ];
    let mut newest_of: HashMap<(Rule, i64), usize> = HashMap::new();
    for &i in &eligible {
        let t = backups[i].taken_at;
        if cutoff.is_some_and(|c| t < c) {
            continue;
        }
        for (rule, count) in periods {
            let ago = periods_ago(rule, t, now);
            if ago < i64::from(count) {
                // Newest first, so the first one seen in a period is its newest.
                newest_of.entry((rule, ago)).or_insert(i);
            }
        }
    }
    let mut selected: HashMap<usize, Rule> = HashMap::new();
    for (rule, _) in periods {
        for (&(r, _), &i) in &newest_of {
            if r == rule {
                selected.entry(i).or_insert(rule);
            }
        }
    }
    for &i in &eligible {
        if rules[i].is_none() {
            let expired = cutoff.is_some_and(|c| backups[i].taken_at < c);
            rules[i] = Some(if expired {
                Rule::Expired
            } else {
                selected.get(&i).copied().unwrap_or(Rule::NotSelected)
            });
        }
    }
    rules
        .into_iter()
        .map(|r| r.expect("every backup has a rule"))
        .collect()
}

/// How many days / ISO weeks / months / years before `now`'s one `t` falls (0 = the same).
fn periods_ago(rule: Rule, t: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let (t, now) = (t.date_naive(), now.date_naive());
    match rule {
        Rule::Daily => (now - t).num_days(),
        Rule::Weekly => (monday(now) - monday(t)).num_weeks(),
        Rule::Monthly => {
            i64::from(now.year() * 12 + now.month0() as i32)
                - i64::from(t.year() * 12 + t.month0() as i32)
        }
        Rule::Yearly => i64::from(now.year() - t.year()),
        _ => i64::MAX,
    }
}

fn monday(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

/// Ids that are kept, for callers that check what a plan leaves.
pub fn kept_ids<'a>(backups: &'a [Backup], rules: &[Rule]) -> HashSet<&'a str> {
    backups
        .iter()
        .zip(rules)
        .filter(|(_, r)| r.keeps())
        .map(|(b, _)| b.id.as_str())
        .collect()
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
