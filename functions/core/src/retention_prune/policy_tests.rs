use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn at(days_ago: i64, now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(days_ago)
}

fn daily(n: i64, now: DateTime<Utc>) -> Vec<Backup> {
    (0..n)
        .map(|d| Backup {
            id: format!("b{d:04}"),
            taken_at: at(d, now) - Duration::hours(1),
            managed: true,
            automated: false,
            pinned: false,
            verified: false,
            available: true,
        })
        .collect()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 4, 0, 0).unwrap()
}

#[test]
fn a_year_of_dailies_becomes_the_gfs_set() {
    let now = now();
    let backups = daily(365, now);
    let policy = Policy {
        days: 7,
        weeks: 4,
        months: 12,
        years: 0,
        max_age_days: None,
        min_keep: 3,
    };
    let rules = plan(&backups, &policy, now);
    let kept = kept_ids(&backups, &rules);
    // 7 days, then the Sundays of the 4 weeks (this week's is among the days), then the
    // last day of each of the 12 months (this month's is today).
    assert!(
        kept.len() >= 7 + 3 + 11 - 2 && kept.len() <= 7 + 4 + 12,
        "{}",
        kept.len()
    );
    assert_eq!(rules[0], Rule::MinKeep);
    assert_eq!(rules[5], Rule::Daily);
    assert!(rules[364..].iter().all(|r| !r.keeps()));
}

#[test]
fn protected_backups_survive_a_policy_that_would_drop_them() {
    let now = now();
    let mut backups = daily(60, now);
    backups[50].verified = true;
    backups[55].pinned = true;
    backups[56].managed = false;
    backups[57].automated = true;
    backups[58].available = false;
    let policy = Policy {
        days: 7,
        min_keep: 1,
        ..Policy::default()
    };
    let rules = plan(&backups, &policy, now);
    assert_eq!(rules[50], Rule::NewestVerified);
    assert_eq!(rules[55], Rule::Pinned);
    assert_eq!(rules[56], Rule::Unmanaged);
    assert_eq!(rules[57], Rule::Automated);
    assert_eq!(rules[58], Rule::NotAvailable);
    assert_eq!(rules[59], Rule::NotSelected);
}

#[test]
fn max_age_expires_what_the_periods_would_keep_but_not_the_minimum() {
    let now = now();
    let backups = daily(40, now);
    let policy = Policy {
        days: 40,
        max_age_days: Some(10),
        min_keep: 3,
        ..Policy::default()
    };
    let rules = plan(&backups, &policy, now);
    assert_eq!(rules[9], Rule::Daily);
    assert_eq!(rules[10], Rule::Expired);
    let old = vec![daily(40, now)[30].clone()];
    assert_eq!(plan(&old, &policy, now), vec![Rule::MinKeep]);
}

#[test]
fn bad_policies_are_refused_with_an_example() {
    let e = Policy {
        min_keep: 0,
        ..Policy::default()
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("minKeep is 0"));
    let none = Policy {
        days: 0,
        ..Policy::default()
    };
    assert!(none.validate().is_err());
    let p: Policy = serde_json::from_str(r#"{"months":12}"#).unwrap();
    assert_eq!((p.days, p.months, p.min_keep), (30, 12, 3));
    assert!(serde_json::from_str::<Policy>(r#"{"day":3}"#).is_err());
}

fn backup_strategy() -> impl Strategy<Value = Backup> {
    (
        0i64..(3 * 365 * 24),
        any::<[bool; 5]>(),
        any::<u8>(),
        0u8..10,
    )
        .prop_map(|(hours_ago, flags, salt, rare)| Backup {
            id: format!("s-{hours_ago}-{salt}"),
            // A few from the future (clock skew).
            taken_at: now() - Duration::hours(hours_ago - 48),
            managed: flags[0] || flags[1],
            automated: rare == 0,
            pinned: flags[2] && rare < 2,
            verified: flags[3] && rare < 3,
            available: flags[4] || rare > 1,
        })
}

fn policy_strategy() -> impl Strategy<Value = Policy> {
    (
        0u32..40,
        0u32..10,
        0u32..15,
        0u32..4,
        prop::option::of(1u32..800),
        1u32..6,
    )
        .prop_map(
            |(days, weeks, months, years, max_age_days, min_keep)| Policy {
                days,
                weeks,
                months,
                years,
                max_age_days,
                min_keep,
            },
        )
}

fn unique(mut v: Vec<Backup>) -> Vec<Backup> {
    let mut seen = HashSet::new();
    v.retain(|b| seen.insert(b.id.clone()));
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_policy_never_deletes_what_it_must_keep(
        backups in prop::collection::vec(backup_strategy(), 0..120).prop_map(unique),
        policy in policy_strategy(),
        skew_hours in 0i64..2000,
    ) {
        let now = now() - Duration::hours(skew_hours);
        let rules = plan(&backups, &policy, now);
        prop_assert_eq!(rules.len(), backups.len());
        let eligible: Vec<&Backup> = backups
            .iter()
            .filter(|b| b.managed && !b.automated && b.available && b.taken_at <= now)
            .collect();
        let newest_verified = eligible
            .iter()
            .filter(|b| b.verified)
            .max_by_key(|b| (b.taken_at, b.id.clone()))
            .map(|b| b.id.clone());
        for (b, r) in backups.iter().zip(&rules) {
            if !r.keeps() {
                prop_assert!(b.managed && !b.automated && !b.pinned && b.available, "{:?} {:?}", b, r);
                prop_assert!(Some(&b.id) != newest_verified.as_ref());
                prop_assert!(b.taken_at <= now);
            }
        }
        let kept_eligible = eligible
            .iter()
            .filter(|b| kept_ids(&backups, &rules).contains(b.id.as_str()))
            .count();
        prop_assert!(kept_eligible >= eligible.len().min(policy.min_keep as usize));
    }

    #[test]
    fn applying_the_policy_twice_is_applying_it_once(
        backups in prop::collection::vec(backup_strategy(), 0..120).prop_map(unique),
        policy in policy_strategy(),
    ) {
        let now = now();
        let rules = plan(&backups, &policy, now);
        let kept: Vec<Backup> = backups
            .iter()
            .zip(&rules)
            .filter(|(_, r)| r.keeps())
            .map(|(b, _)| b.clone())
            .collect();
        let again = plan(&kept, &policy, now);
        prop_assert!(again.iter().all(|r| r.keeps()), "{:?}", again);
    }

    #[test]
    fn listing_order_does_not_matter(
        backups in prop::collection::vec(backup_strategy(), 0..80).prop_map(unique),
        policy in policy_strategy(),
        seed in any::<u64>(),
    ) {
        let now = now();
        let rules = plan(&backups, &policy, now);
        let mut shuffled: Vec<(Backup, Rule)> =
            backups.iter().cloned().zip(rules.iter().copied()).collect();
        // A deterministic shuffle from the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let input: Vec<Backup> = shuffled.iter().map(|(b, _)| b.clone()).collect();
        let again = plan(&input, &policy, now);
        for ((_, before), after) in shuffled.iter().zip(&again) {
            prop_assert_eq!(before, after);
        }
    }
}
