//! The one definition of "the newest snapshot".
//!
//! Newest means the last one published: the latest `generated_at`, to the microsecond, and
//! between equal times the one the branch's history added later. Only a directory that is a
//! snapshot this version reads (all seven files, a `meta.json` with a readable
//! `generated_at`) counts, so the readers' index (`latest.json`), `restore latest`, `diff
//! latest`, `status` and the working copy always name the same directory.
//!
//! Names do not decide: the README's demo run twice in the same second makes two names with
//! the same time stamp, whose order would then be the order of their random run ids. Names
//! start with `generated_at` to the second (verify checks it), which is only used to read
//! few `meta.json` files: directories are taken in groups of equal stamps, newest group
//! first, and only those groups are read.

use std::sync::Arc;

use git2::{ObjectType, Oid, Repository, Tree};

use crate::publish::clone::{DataRepo, GitContext, RepoError};
use crate::publish::rawtree::RawTree;
use crate::publish::tree::snapshots_raw;
use crate::snapshot::format::{Meta, FILE_NAMES, META};

/// One snapshot directory, as found in a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The directory's name under `snapshots/`.
    pub name: String,
    /// Its tree.
    pub tree: Oid,
    /// `generated_at` in microseconds since the epoch.
    pub generated_at: i64,
}

/// The time stamp a directory name starts with (`2024-01-31T12-00-00` of
/// `2024-01-31T12-00-00-abc12345`); names of another shape sort before every stamp.
fn stamp(name: &str) -> &str {
    let b = name.as_bytes();
    let shaped = b.len() > 20
        && b[19] == b'-'
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 13 | 16 => *c == b'-',
            10 => *c == b'T',
            _ => c.is_ascii_digit(),
        });
    if shaped {
        &name[..19]
    } else {
        ""
    }
}

/// `generated_at` of the snapshot in directory tree `dir`, `None` when it is not a snapshot
/// this version reads.
fn generated_at(repo: &Repository, dir: Oid) -> Result<Option<i64>, RepoError> {
    let dir = repo.find_tree(dir).ctx("read snapshot")?;
    if FILE_NAMES.iter().any(|f| dir.get_name(f).is_none()) {
        return Ok(None);
    }
    let Some(meta) = dir.get_name(META) else {
        return Ok(None);
    };
    let blob = repo.find_blob(meta.id()).ctx("read snapshot file")?;
    let Ok(meta) = serde_json::from_slice::<Meta>(blob.content()) else {
        return Ok(None);
    };
    Ok(crate::time::parse_rfc3339(&meta.generated_at).map(|t| t.timestamp_micros()))
}

/// `snapshots/` as stored: a run reads it once ([`crate::publish::rawtree`]), also the one it
/// has just written.
fn snapshots_of(repo: &Repository, root: &Tree<'_>) -> Result<Option<Arc<RawTree>>, RepoError> {
    snapshots_raw(repo, root).ctx("read snapshots/")
}

/// Orders `tied` (same `generated_at`) newest first by when history added them: a name that
/// `parent`'s tree lacks was added by the commit whose tree is being ordered, after all of
/// the parent's; and so on down the first parents. Names added by the same commit, or older
/// than the history, fall back to name order.
fn by_commit_order(
    repo: &Repository,
    parent: Option<Oid>,
    mut tied: Vec<Found>,
) -> Result<Vec<Found>, RepoError> {
    tied.sort_by(|a, b| b.name.cmp(&a.name));
    let mut out = Vec::with_capacity(tied.len());
    let mut at = parent;
    while tied.len() > 1 {
        let Some(commit) = at else {
            break;
        };
        let commit = repo.find_commit(commit).ctx("read commit")?;
        let sub = snapshots_of(repo, &commit.tree().ctx("read tree")?)?;
        let (present, added_later): (Vec<Found>, Vec<Found>) = tied.into_iter().partition(|f| {
            sub.as_ref()
                .is_some_and(|s| s.get(f.name.as_bytes()).is_some())
        });
        out.extend(added_later);
        tied = present;
        at = commit.parent_id(0).ok();
    }
    out.extend(tied);
    Ok(out)
}

/// Reads one group of directories with the same stamp and appends its snapshots to `out`,
/// newest first (`generated_at`, then commit order).
fn read_group(
    repo: &Repository,
    parent: Option<Oid>,
    dirs: Vec<(String, Oid)>,
    out: &mut Vec<Found>,
) -> Result<(), RepoError> {
    let mut group = Vec::new();
    for (name, id) in dirs {
        if let Some(t) = generated_at(repo, id)? {
            group.push(Found {
                name,
                tree: id,
                generated_at: t,
            });
        }
    }
    group.sort_by_key(|f| std::cmp::Reverse(f.generated_at));
    let mut j = 0;
    while j < group.len() {
        let same = group[j..]
            .iter()
            .position(|f| f.generated_at != group[j].generated_at)
            .map_or(group.len(), |n| j + n);
        let tied = group[j..same].to_vec();
        out.extend(match tied.len() {
            1 => tied,
            _ => by_commit_order(repo, parent, tied)?,
        });
        j = same;
    }
    Ok(())
}

/// The snapshots of root tree `root`, newest first, at most `want` of them. `parent` is the
/// first parent of the commit `root` belongs to (or is being built on): it decides between
/// equal times.
pub fn newest_first(
    repo: &Repository,
    root: &Tree<'_>,
    parent: Option<Oid>,
    want: usize,
) -> Result<Vec<Found>, RepoError> {
    let Some(sub) = snapshots_of(repo, root)? else {
        return Ok(Vec::new());
    };
    // Runs for every commit (its latest.json) over a `snapshots/` of every hour of the
    // history: walk git's listing (name order, so equal stamps are neighbours) from the newest
    // end, copying only the names it visits. Directories with names of another shape
    // make one group, taken last.
    let mut out = Vec::new();
    let mut group: Vec<(String, Oid)> = Vec::new();
    let mut odd: Vec<(String, Oid)> = Vec::new();
    let mut current: Option<String> = None;
    for e in sub.iter().rev() {
        if e.kind() != Some(ObjectType::Tree) {
            continue;
        }
        let Ok(name) = std::str::from_utf8(e.name) else {
            continue;
        };
        let st = stamp(name);
        if st.is_empty() {
            odd.push((name.to_owned(), e.id()));
            continue;
        }
        if current.as_deref() != Some(st) {
            if !group.is_empty() {
                read_group(repo, parent, std::mem::take(&mut group), &mut out)?;
                if out.len() >= want {
                    break;
                }
            }
            current = Some(st.to_owned());
        }
        group.push((name.to_owned(), e.id()));
    }
    if out.len() < want && !group.is_empty() {
        read_group(repo, parent, group, &mut out)?;
    }
    if out.len() < want && !odd.is_empty() {
        read_group(repo, parent, odd, &mut out)?;
    }
    out.truncate(want);
    Ok(out)
}

impl DataRepo {
    /// The snapshots at commit `at` (default: the branch tip), newest first, at most `want`.
    pub fn newest_snapshots(&self, at: Option<Oid>, want: usize) -> Result<Vec<Found>, RepoError> {
        let Some(commit) = at.map_or_else(|| self.tip(), |c| Ok(Some(c)))? else {
            return Ok(Vec::new());
        };
        let repo = self.git();
        let commit = repo.find_commit(commit).ctx("read commit")?;
        let root = commit.tree().ctx("read tree")?;
        newest_first(repo, &root, commit.parent_id(0).ok(), want)
    }

    /// The newest snapshot's name at commit `at` (default: the branch tip).
    pub fn newest_name(&self, at: Option<Oid>) -> Result<Option<String>, RepoError> {
        Ok(self.newest_snapshots(at, 1)?.pop().map(|f| f.name))
    }
}

#[cfg(test)]
mod tests {
    use super::stamp;

    #[test]
    fn only_shaped_names_have_a_stamp() {
        assert_eq!(stamp("2024-01-31T12-00-00-abc12345"), "2024-01-31T12-00-00");
        assert_eq!(stamp("2024-01-31T12-00-00"), "");
        assert_eq!(stamp("notes"), "");
        assert_eq!(stamp("2024-01-31X12-00-00-abc12345"), "");
    }
}
