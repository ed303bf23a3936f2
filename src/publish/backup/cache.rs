//! The backup cache: the previous backup's ranges (fingerprint -> git object, per table) and
//! the key the fingerprints are made with, kept in the clone's `.git` between runs. It is only
//! an optimisation: a cache that is missing, unreadable, of an older version or describing
//! another backup than the branch tip is replaced by an empty one, and the run backs up every
//! range again.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use git2::Oid;

use super::TableRead;

/// The cache file in the clone's `.git`.
pub(super) const CACHE_FILE: &str = "gitcord-snapshot-backup-cache";
const CACHE_HEADER: &str = "gitcord-snapshot backup cache 3";
/// Caches whose fingerprints no longer compare (version 1: SHA-256; 2: lengths as eight
/// bytes): read as no cache, quietly.
const OLD_CACHE_HEADERS: &[&str] = &[
    "gitcord-snapshot backup cache 1",
    "gitcord-snapshot backup cache 2",
];

/// One range's objects, as the previous backup and this one hold them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RangeEntry {
    pub(super) fingerprint: [u8; 16],
    pub(super) oid: Oid,
    /// A directory of halves rather than one file.
    pub(super) split: bool,
    pub(super) rows: u64,
    pub(super) files: u64,
}

/// The previous backup's ranges, by table, and the key fingerprints are made with.
#[derive(Debug)]
pub(super) struct Cache {
    pub(super) key: [u8; 32],
    /// The root tree of the backup this cache describes.
    pub(super) root: Option<Oid>,
    pub(super) tables: HashMap<String, BTreeMap<u64, RangeEntry>>,
}

impl Cache {
    pub(super) fn fresh() -> Cache {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Cache {
            key,
            root: None,
            tables: HashMap::new(),
        }
    }

    /// The cache in `git_dir`, if it describes `tip_tree`; a fresh, empty one otherwise.
    pub(super) fn load(git_dir: &Path, tip_tree: Option<Oid>) -> Cache {
        let path = git_dir.join(CACHE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) => return Cache::fresh(),
        };
        match Cache::parse(&text) {
            Some(cache) if cache.root.is_some() && cache.root == tip_tree => cache,
            Some(_) => {
                log::info!(
                    "{} describes another backup than the branch tip; backing up every range again",
                    path.display()
                );
                Cache::fresh()
            }
            None if OLD_CACHE_HEADERS.contains(&text.lines().next().unwrap_or_default()) => {
                log::info!(
                    "{} was written by an earlier version; backing up every range again (once)",
                    path.display()
                );
                Cache::fresh()
            }
            None => {
                log::warn!(
                    "{} cannot be read; backing up every range again",
                    path.display()
                );
                Cache::fresh()
            }
        }
    }

    pub(super) fn parse(text: &str) -> Option<Cache> {
        let mut lines = text.lines();
        (lines.next()? == CACHE_HEADER).then_some(())?;
        let key = unhex(lines.next()?.strip_prefix("key ")?)?;
        let root = Oid::from_str(lines.next()?.strip_prefix("root ")?).ok()?;
        let mut cache = Cache {
            key: key.try_into().ok()?,
            root: Some(root),
            tables: HashMap::new(),
        };
        let mut current: Option<&mut BTreeMap<u64, RangeEntry>> = None;
        for line in lines {
            if let Some(name) = line.strip_prefix("table ") {
                let name = String::from_utf8(unhex(name)?).ok()?;
                current = Some(cache.tables.entry(name).or_default());
                continue;
            }
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() != 6 {
                return None;
            }
            let entry = RangeEntry {
                fingerprint: unhex(f[1])?.try_into().ok()?,
                oid: Oid::from_str(f[2]).ok()?,
                split: match f[3] {
                    "t" => true,
                    "b" => false,
                    _ => return None,
                },
                rows: f[4].parse().ok()?,
                files: f[5].parse().ok()?,
            };
            current
                .as_mut()?
                .insert(u64::from_str_radix(f[0], 16).ok()?, entry);
        }
        Some(cache)
    }

    pub(super) fn to_text(&self, root: Oid, tables: &[TableRead]) -> String {
        use std::fmt::Write as _;
        let mut s = format!("{CACHE_HEADER}\nkey {}\nroot {root}\n", hex(&self.key));
        for t in tables {
            let _ = writeln!(s, "table {}", hex(t.name.as_bytes()));
            for (range, e) in &t.ranges {
                let _ = writeln!(
                    s,
                    "{range:x} {} {} {} {} {}",
                    hex(&e.fingerprint),
                    e.oid,
                    if e.split { "t" } else { "b" },
                    e.rows,
                    e.files
                );
            }
        }
        s
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::new();
    crate::snapshot::backup::push_hex(&mut out, bytes);
    // Hex digits are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    crate::snapshot::backup::unhex(s).ok()
}
