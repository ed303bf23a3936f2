//! The loose objects already found whole, so that opening the clone inflates each loose object
//! once, not on every run until it is packed.
//!
//! Opening the clone inflates every loose object before libgit2 reads any (libgit2 1.9 never
//! returns from a truncated one, see [`super::health`]). At a year of hourly snapshots that
//! was dozens of files of ~480 KB (the `snapshots/` trees of the runs since the last pack)
//! inflated on every run: the largest user-space cost of a run. A loose object is written once
//! (libgit2 fsyncs it and renames it into place) and never changed, so a file found whole is
//! recorded here with what the file system says about it: size, modification and change time
//! to the nanosecond, inode and device. It is not inflated again while all of these are the
//! same. Any write to the file (a truncation, bytes overwritten, even with the modification
//! time set back) changes its change time, which no user call can set, so the record never
//! vouches for a file that changed since it was checked.
//!
//! The record lives in the clone (`.git/gitcord-snapshot.loose-checked`, moved aside with a
//! damaged `.git`), is written atomically (a temporary file renamed, removed as stale if a run
//! is killed first), and is ignored whole when it is missing or does not parse, in which case
//! every loose object is checked as before.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// The record's file name, at the top of `.git`.
pub(super) const VOUCHED_FILE: &str = "gitcord-snapshot.loose-checked";

/// The first line: names the format, so that another one is ignored rather than misread.
const HEADER: &str = "gitcord-snapshot loose objects found whole, v1";

/// What the file system says about a file; equal stamps mean an unchanged file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
}

impl Stamp {
    /// The stamp of the file at `path` (not following a symbolic link).
    pub(super) fn of(path: &Path) -> Option<Stamp> {
        let m = fs::symlink_metadata(path).ok()?;
        m.is_file().then(|| Stamp {
            len: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        })
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name} {} {}.{} {}.{} {} {}\n",
            self.len, self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1, self.ino, self.dev
        )
    }

    fn parse(line: &str) -> Option<(String, Stamp)> {
        let mut f = line.split(' ');
        let name = f.next()?;
        if name.len() != 40 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let time = |s: &str| -> Option<(i64, i64)> {
            let (s, ns) = s.split_once('.')?;
            Some((s.parse().ok()?, ns.parse().ok()?))
        };
        let stamp = Stamp {
            len: f.next()?.parse().ok()?,
            mtime: time(f.next()?)?,
            ctime: time(f.next()?)?,
            ino: f.next()?.parse().ok()?,
            dev: f.next()?.parse().ok()?,
        };
        f.next().is_none().then(|| (name.to_owned(), stamp))
    }
}

/// The loose objects (by their 40-hex id) found whole, with the stamp they had then.
pub(super) type Vouched = HashMap<String, Stamp>;

/// Reads the record under `git_dir`; empty when it is missing or anything in it does not
/// parse (a record that cannot be trusted whole vouches for nothing).
pub(super) fn read(git_dir: &Path) -> Vouched {
    let Ok(text) = fs::read_to_string(git_dir.join(VOUCHED_FILE)) else {
        return Vouched::new();
    };
    parse(&text).unwrap_or_default()
}

fn parse(text: &str) -> Option<Vouched> {
    let mut lines = text.split_inclusive('\n');
    if lines.next()? != format!("{HEADER}\n") {
        return None;
    }
    let mut vouched = Vouched::new();
    let mut count = None;
    for line in lines {
        let line = line.strip_suffix('\n')?;
        if count.is_some() {
            return None; // nothing may follow the last line
        }
        if let Some(n) = line.strip_prefix("end ") {
            count = Some(n.parse::<usize>().ok()?);
            continue;
        }
        let (name, stamp) = Stamp::parse(line)?;
        vouched.insert(name, stamp);
    }
    // The last line counts the entries: a record cut short is not taken for a shorter one.
    (count? == vouched.len()).then_some(vouched)
}

fn render(vouched: &Vouched) -> String {
    let mut names: Vec<&String> = vouched.keys().collect();
    names.sort();
    let mut text = format!("{HEADER}\n");
    for name in names {
        text.push_str(&vouched[name].line(name));
    }
    text.push_str(&format!("end {}\n", vouched.len()));
    text
}

/// Replaces the record under `git_dir` with `vouched`. Failing to write it costs only time
/// (the next run checks those objects again), so a failure is logged, never returned.
pub(super) fn write(git_dir: &Path, vouched: &Vouched) {
    let path = git_dir.join(VOUCHED_FILE);
    if let Err(e) = super::write_file_atomically(&path, render(vouched).as_bytes()) {
        log::debug!("cannot record the loose objects found whole: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vouched {
        let stamp = Stamp {
            len: 12,
            mtime: (1_700_000_000, 5),
            ctime: (1_700_000_001, 999_999_999),
            ino: 77,
            dev: 2049,
        };
        let mut v = Vouched::new();
        v.insert("ab".repeat(20), stamp);
        v.insert("0c".repeat(20), Stamp { len: 13, ..stamp });
        v
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let v = sample();
        assert_eq!(parse(&render(&v)), Some(v));
        assert_eq!(parse(&render(&Vouched::new())), Some(Vouched::new()));
    }

    #[test]
    fn a_damaged_record_vouches_for_nothing() {
        let text = render(&sample());
        // Cut anywhere short of its end: never taken for a shorter record.
        for cut in 0..text.len() {
            assert_eq!(parse(&text[..cut]), None, "cut at {cut}");
        }
        assert_eq!(parse(&text.replace(" 12 ", " x ")), None);
        assert_eq!(parse(&format!("{text}x\n")), None);
        assert_eq!(parse(&text.replace("v1", "v2")), None);
        assert_eq!(parse(&"\0".repeat(text.len())), None);
    }

    #[test]
    fn a_missing_or_unreadable_record_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_empty());
        fs::write(dir.path().join(VOUCHED_FILE), b"\xff\xfe garbage").unwrap();
        assert!(read(dir.path()).is_empty());
        write(dir.path(), &sample());
        assert_eq!(read(dir.path()), sample());
    }
}
