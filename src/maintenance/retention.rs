//! Which snapshots to keep: restic's retention rules, computed purely from snapshot times so
//! a policy can be tested, and shown with `--dry-run`, without touching a repository.
//!
//! A snapshot kept by any rule stays. `keep-last N` keeps the N newest; `keep-hourly N` keeps
//! the newest snapshot of each of the N most recent hours that have one (likewise daily,
//! ISO-weekly, monthly); `keep-within D` keeps everything up to D older than the newest.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, Months, NaiveDateTime, Timelike};

/// Maps a time to the calendar period it falls in (hour, day, ISO week or month).
type Bucket = fn(&NaiveDateTime) -> (i32, u32, u32, u32);

/// The rules of one prune, as given on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `--keep-last`.
    pub last: Option<usize>,
    /// `--keep-hourly`.
    pub hourly: Option<usize>,
    /// `--keep-daily`.
    pub daily: Option<usize>,
    /// `--keep-weekly`.
    pub weekly: Option<usize>,
    /// `--keep-monthly`.
    pub monthly: Option<usize>,
    /// `--keep-within`.
    pub within: Option<Within>,
}

/// A `--keep-within` span in restic's notation, e.g. `1y6m`, `30d`, `12h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Within {
    months: u32,
    hours: i64,
}

impl std::str::FromStr for Within {
    type Err = String;

    fn from_str(text: &str) -> Result<Within, String> {
        let mut within = Within::default();
        let mut number = String::new();
        let bad = || format!("{text:?} is not a duration like 1y6m, 30d or 12h (units y, m, d, h)");
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let n: u32 = number.parse().map_err(|_| bad())?;
            number.clear();
            let (months, hours) = match c {
                'y' => (n.checked_mul(12), Some(0)),
                'm' => (Some(n), Some(0)),
                'd' => (Some(0), i64::from(n).checked_mul(24)),
                'h' => (Some(0), Some(i64::from(n))),
                _ => return Err(bad()),
            };
            // Ten thousand years is plenty; beyond, date arithmetic would overflow.
            within.months = months
                .and_then(|m| within.months.checked_add(m))
                .filter(|m| *m <= 120_000)
                .ok_or_else(bad)?;
            within.hours = hours
                .and_then(|h| within.hours.checked_add(h))
                .filter(|h| *h <= 87_600_000)
                .ok_or_else(bad)?;
        }
        if !number.is_empty() || within == Within::default() {
            return Err(bad());
        }
        Ok(within)
    }
}

impl Policy {
    /// Whether any rule was given; an empty policy would remove everything, so it is refused.
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }

    /// A short description for the prune commit's trailer, e.g. `keep-last 24, keep-daily 7`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, n) in [
            ("keep-last", self.last),
            ("keep-hourly", self.hourly),
            ("keep-daily", self.daily),
            ("keep-weekly", self.weekly),
            ("keep-monthly", self.monthly),
        ] {
            if let Some(n) = n {
                parts.push(format!("{name} {n}"));
            }
        }
        if let Some(w) = self.within {
            parts.push(format!("keep-within {}m{}h", w.months, w.hours));
        }
        parts.join(", ")
    }

    /// Indices into `times` (oldest first, as snapshot names sort) of the snapshots to keep.
    pub fn keep(&self, times: &[NaiveDateTime]) -> BTreeSet<usize> {
        let mut keep = BTreeSet::new();
        let newest_first: Vec<usize> = (0..times.len()).rev().collect();
        if let Some(n) = self.last {
            keep.extend(newest_first.iter().take(n));
        }
        let buckets: [(Option<usize>, Bucket); 4] = [
            (self.hourly, |t| (t.year(), t.ordinal(), t.hour(), 0)),
            (self.daily, |t| (t.year(), t.ordinal(), 0, 0)),
            (self.weekly, |t| {
                (t.iso_week().year(), t.iso_week().week(), 0, 0)
            }),
            (self.monthly, |t| (t.year(), t.month(), 0, 0)),
        ];
        for (count, bucket) in buckets {
            let Some(n) = count else { continue };
            let mut seen = Vec::new();
            for &i in &newest_first {
                let b = bucket(&times[i]);
                if seen.len() < n && !seen.contains(&b) {
                    seen.push(b);
                    keep.insert(i);
                }
            }
        }
        if let (Some(w), Some(&newest)) = (self.within, newest_first.first()) {
            let newest = times[newest];
            let limit = newest
                .checked_sub_months(Months::new(w.months))
                .and_then(|t| t.checked_sub_signed(Duration::try_hours(w.hours)?));
            if let Some(limit) = limit {
                keep.extend(newest_first.iter().filter(|&&i| times[i] >= limit));
            }
        }
        keep
    }
}

/// The time a snapshot name starts with (`%Y-%m-%dT%H-%M-%S`), `None` for a foreign name.
pub fn time_of(name: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(name.get(..19)?, "%Y-%m-%dT%H-%M-%S").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hourly_for(days: i64) -> Vec<NaiveDateTime> {
        let start = time_of("2024-01-01T00-30-00").unwrap();
        (0..days * 24).map(|h| start + Duration::hours(h)).collect()
    }

    #[test]
    fn names_carry_their_time() {
        let t = time_of("2024-01-31T12-00-00-abc12345").unwrap();
        assert_eq!(t.to_string(), "2024-01-31 12:00:00");
        assert_eq!(time_of("README"), None);
    }

    #[test]
    fn keep_last_keeps_the_newest() {
        let times = hourly_for(1);
        let keep = Policy {
            last: Some(3),
            ..Policy::default()
        }
        .keep(&times);
        assert_eq!(keep.into_iter().collect::<Vec<_>>(), [21, 22, 23]);
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_day() {
        let times = hourly_for(10);
        let keep = Policy {
            daily: Some(3),
            ..Policy::default()
        }
        .keep(&times);
        // The last snapshot of each of the three newest days (23:30 each day).
        assert_eq!(
            keep.into_iter().collect::<Vec<_>>(),
            [8 * 24 - 1, 9 * 24 - 1, 10 * 24 - 1]
        );
    }

    #[test]
    fn rules_combine_and_a_snapshot_kept_by_any_stays() {
        let times = hourly_for(60);
        let policy = Policy {
            last: Some(2),
            daily: Some(7),
            monthly: Some(2),
            ..Policy::default()
        };
        let keep = policy.keep(&times);
        // 2 last (the newest is also the newest of its day and month) + 6 more days + 1 month.
        assert_eq!(keep.len(), 2 + 6 + 1);
        assert!(keep.contains(&(times.len() - 1)));
        let january_last = times.iter().rposition(|t| t.month() == 1).unwrap();
        assert!(keep.contains(&january_last));
    }

    #[test]
    fn keep_weekly_uses_iso_weeks() {
        // 2024-01-01 is a Monday: 14 days are exactly two ISO weeks.
        let times = hourly_for(14);
        let keep = Policy {
            weekly: Some(5),
            ..Policy::default()
        }
        .keep(&times);
        assert_eq!(
            keep.into_iter().collect::<Vec<_>>(),
            [7 * 24 - 1, 14 * 24 - 1]
        );
    }

    #[test]
    fn keep_within_is_relative_to_the_newest_snapshot() {
        let times = hourly_for(3);
        let policy = Policy {
            within: Some("1d".parse().unwrap()),
            ..Policy::default()
        };
        assert_eq!(
            policy.keep(&times).len(),
            25,
            "the newest plus the 24 hours before it"
        );
        assert_eq!(
            "1y6m".parse::<Within>().unwrap(),
            Within {
                months: 18,
                hours: 0
            }
        );
        for bad in ["", "7", "3w", "d", "1.5d", "4294967295y", "99999999999h"] {
            assert!(bad.parse::<Within>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_policy_is_recognised() {
        assert!(Policy::default().is_empty());
        let p = Policy {
            last: Some(1),
            within: Some("2d".parse().unwrap()),
            ..Policy::default()
        };
        assert_eq!(p.describe(), "keep-last 1, keep-within 0m48h");
    }
}
