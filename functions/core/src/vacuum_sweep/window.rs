//! The weekly maintenance window, in RDS's `ddd:hh24:mi-ddd:hh24:mi` syntax (UTC), e.g.
//! `sun:03:00-sun:05:00`. VACUUM FULL runs only inside it.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::error::{Error, Result};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEK: u32 = 7 * 24 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Minutes since Monday 00:00 UTC.
    start: u32,
    end: u32,
}

fn point(s: &str) -> Option<u32> {
    let mut parts = s.split(':');
    let day_name = parts.next()?;
    let day = DAYS.iter().position(|d| day_name.eq_ignore_ascii_case(d))? as u32;
    let h: u32 = parts.next()?.parse().ok().filter(|h| *h < 24)?;
    let m: u32 = parts.next()?.parse().ok().filter(|m| *m < 60)?;
    parts.next().is_none().then_some(day * 24 * 60 + h * 60 + m)
}

impl Window {
    pub fn parse(text: &str) -> Result<Window> {
        let bad = || {
            Error::InvalidConfig(format!(
                "PGSTEWARD_MAINTENANCE_WINDOW is '{text}': expected ddd:hh24:mi-ddd:hh24:mi in UTC, e.g. PGSTEWARD_MAINTENANCE_WINDOW=sun:03:00-sun:05:00"
            ))
        };
        let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
        let (start, end) = (point(a).ok_or_else(bad)?, point(b).ok_or_else(bad)?);
        if start == end {
            return Err(bad());
        }
        Ok(Window { start, end })
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let now = at.weekday().num_days_from_monday() * 24 * 60 + at.hour() * 60 + at.minute();
        if self.start < self.end {
            (self.start..self.end).contains(&now)
        } else {
            // Wraps past Sunday midnight.
            now >= self.start || now < self.end % WEEK
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn inside_outside_and_wrapping() {
        let w = Window::parse("sun:03:00-sun:05:00").unwrap();
        // 2026-11-22 is a Sunday.
        assert!(w.contains(Utc.with_ymd_and_hms(2026, 11, 22, 3, 30, 0).unwrap()));
        assert!(!w.contains(Utc.with_ymd_and_hms(2026, 11, 22, 5, 0, 0).unwrap()));
        assert!(!w.contains(Utc.with_ymd_and_hms(2026, 11, 23, 3, 30, 0).unwrap()));
        let wrap = Window::parse("sun:23:00-mon:01:00").unwrap();
        assert!(wrap.contains(Utc.with_ymd_and_hms(2026, 11, 23, 0, 30, 0).unwrap()));
        assert!(wrap.contains(Utc.with_ymd_and_hms(2026, 11, 22, 23, 30, 0).unwrap()));
        assert!(!wrap.contains(Utc.with_ymd_and_hms(2026, 11, 23, 1, 30, 0).unwrap()));
        for bad in [
            "sunday",
            "sun:3-sun:5",
            "sun:25:00-sun:26:00",
            "sun:03:00-sun:03:00",
        ] {
            assert!(Window::parse(bad).unwrap_err().to_string().contains(bad));
        }
    }
}
