//! Gitcord's notion of time.
//!
//! Gitcord writes every timestamp with Python's `datetime.isoformat()` on an aware UTC
//! datetime, and readers compare some of them as text. Byte-identical snapshots therefore need
//! exactly that rendering (`.ffffff` only when the microseconds are non-zero), and instants
//! truncated to microseconds, Python's precision.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, Utc};

/// A UTC date and time at microsecond precision, the only kind of time a snapshot carries. Not
/// `std::time::Instant` (a monotonic clock reading, used for durations): a point in calendar time.
pub type Timestamp = DateTime<Utc>;

/// Renders `t` as Python's `isoformat()` renders an aware UTC datetime.
///
/// Written digit by digit for four-digit years (all that Python can hold): chrono's `format` parses
/// its pattern on every call, which was most of the cost of writing `scores.json`.
pub fn isoformat(t: &Timestamp) -> String {
    use chrono::{Datelike, Timelike};
    let micros = t.timestamp_subsec_micros();
    let year = t.year();
    // Leap seconds (micros >= 1_000_000) and other years go the general way.
    if (0..=9999).contains(&year) && micros < 1_000_000 {
        fn digits(out: &mut String, n: u32, width: u32) {
            for i in (0..width).rev() {
                out.push(char::from(b'0' + (n / 10u32.pow(i) % 10) as u8));
            }
        }
        let mut out = String::with_capacity(32);
        digits(&mut out, year as u32, 4);
        for (sep, n) in [
            ('-', t.month()),
            ('-', t.day()),
            ('T', t.hour()),
            (':', t.minute()),
            (':', t.second()),
        ] {
            out.push(sep);
            digits(&mut out, n, 2);
        }
        if micros != 0 {
            out.push('.');
            digits(&mut out, micros, 6);
        }
        out.push_str("+00:00");
        return out;
    }
    if micros == 0 {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        format!("{}.{micros:06}+00:00", t.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// Renders `t` for the snapshot directory name: no colons, so the path is valid everywhere.
pub fn dir_stamp(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H-%M-%S").to_string()
}

/// The current time, truncated to microseconds as Python's `datetime.now(timezone.utc)` would be.
pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// Parses an RFC 3339 instant with any offset (the `--at` flag) and converts it to UTC.
///
/// Digits past microseconds are truncated, as Python's `fromisoformat` does.
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
}

/// Parses a timestamp as Gitcord stored it, as leniently as Python's `fromisoformat`.
///
/// Gitcord writes aware UTC times, but an older row or a hand edit may hold another offset,
/// a `Z`, a space separator or no offset at all; a naive time is taken as UTC, as Gitcord does
/// when it compares stored periods.
pub fn parse_stored(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Some(t) = parse_rfc3339(text) {
        return Some(t);
    }
    // An offset without seconds, e.g. "2024-01-01T00:00+00:00", or a "+0000" offset.
    for fmt in [
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(text, fmt) {
            return Some(t.with_timezone(&Utc).trunc_subsecs(6));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, fmt) {
            return Some(t.and_utc().trunc_subsecs(6));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isoformat_matches_chronos_general_path() {
        for text in [
            "0001-01-01T00:00:00Z",
            "0999-12-31T23:59:59.999999Z",
            "2024-02-29T07:08:09.000010Z",
            "9999-12-31T23:59:59Z",
        ] {
            let t = parse_rfc3339(text).unwrap();
            let micros = t.timestamp_subsec_micros();
            let general = if micros == 0 {
                t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
            } else {
                format!("{}.{micros:06}+00:00", t.format("%Y-%m-%dT%H:%M:%S"))
            };
            assert_eq!(isoformat(&t), general);
        }
    }

    #[test]
    fn isoformat_omits_zero_microseconds_like_python() {
        let t = parse_rfc3339("2024-01-31T12:00:00Z").unwrap();
        assert_eq!(isoformat(&t), "2024-01-31T12:00:00+00:00");
        let t = parse_rfc3339("2024-03-10T08:30:00.5+00:00").unwrap();
        assert_eq!(isoformat(&t), "2024-03-10T08:30:00.500000+00:00");
        let t = parse_rfc3339("0999-01-02T03:04:05.000001Z").unwrap();
        assert_eq!(isoformat(&t), "0999-01-02T03:04:05.000001+00:00");
    }

    #[test]
    fn offsets_convert_to_utc_and_nanoseconds_truncate() {
        let t = parse_rfc3339("2024-01-31T14:00:00.1234569+02:00").unwrap();
        assert_eq!(isoformat(&t), "2024-01-31T12:00:00.123456+00:00");
        assert_eq!(dir_stamp(&t), "2024-01-31T12-00-00");
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "yesterday",
            "2024-01-31",
            "2024-01-31T12:00:00",
            "2024-13-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn stored_forms_parse_as_instants() {
        let want = parse_rfc3339("2024-01-31T12:00:00Z").unwrap();
        for text in [
            "2024-01-31T12:00:00+00:00",
            "2024-01-31T12:00:00Z",
            "2024-01-31 12:00:00+00:00",
            "2024-01-31T13:00:00+01:00",
            "2024-01-31T12:00:00",
            "2024-01-31T12:00:00.000000+00:00",
            "2024-01-31T12:00+00:00",
        ] {
            assert_eq!(parse_stored(text), Some(want), "{text}");
        }
        assert_eq!(
            parse_stored("2024-01-31"),
            parse_rfc3339("2024-01-31T00:00:00Z")
        );
        assert_eq!(parse_stored("not a time"), None);
    }
}
