//! Comparing two listings of tree entries in git's order, without opening what did not change:
//! the one merge `verify`'s history walk and the clone's health check, replay and salvage use.
//! A leaf of the publishing stage: git2 and the snapshot layout only.

use std::cmp::Ordering;

use git2::{Oid, Tree};

use crate::publish::tree::snapshots_dir;

/// What a name under `snapshots/` points at: an object (a snapshot directory's tree, normally)
/// and its file mode. Two entries are the same snapshot exactly when both are equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryTarget {
    /// The object's id.
    pub(crate) id: Oid,
    /// Its file mode as git stores it (`0o040000` for a directory).
    pub(crate) mode: i32,
}

/// What a commit's `snapshots/` adds (new or changed entries, by name) and removes, against
/// its parent's. One sorted merge of the two listings; the clone's health check, replay and
/// salvage all ask this.
#[derive(Debug, Default)]
pub(crate) struct SnapshotChanges {
    pub(crate) added: Vec<(String, EntryTarget)>,
    pub(crate) removed: Vec<String>,
}

/// [`SnapshotChanges`] of `tree` against `parent` (`None`: everything is added), read from
/// `repo` (the clone, or a damaged one set aside).
pub(crate) fn snapshot_changes(
    repo: &git2::Repository,
    parent: Option<&Tree<'_>>,
    tree: &Tree<'_>,
) -> Result<SnapshotChanges, git2::Error> {
    let old = match parent {
        Some(parent) => snapshots_dir(repo, parent)?,
        None => None,
    };
    let new = snapshots_dir(repo, tree)?;
    let mut out = SnapshotChanges::default();
    let entry = |e: &git2::TreeEntry<'_>| {
        let target = EntryTarget {
            id: e.id(),
            mode: e.filemode(),
        };
        (entry_name(e), target)
    };
    for difference in differences(
        old.iter().flat_map(|t| t.iter()),
        new.iter().flat_map(|t| t.iter()),
    ) {
        match difference {
            Difference::Removed(gone) => out.removed.push(entry_name(&gone)),
            Difference::Added(e) | Difference::Changed(_, e) => out.added.push(entry(&e)),
        }
    }
    Ok(out)
}

/// One way two tree listings differ.
pub(crate) enum Difference<'t> {
    Removed(git2::TreeEntry<'t>),
    Added(git2::TreeEntry<'t>),
    /// Same name on both sides, different object or mode: (old, new).
    Changed(git2::TreeEntry<'t>, git2::TreeEntry<'t>),
}

/// Merges two listings in git's order (as trees store them) into what differs between them,
/// skipping unchanged entries: one pass, no lookups.
pub(crate) fn differences<'t>(
    old: impl Iterator<Item = git2::TreeEntry<'t>>,
    new: impl Iterator<Item = git2::TreeEntry<'t>>,
) -> Vec<Difference<'t>> {
    let (mut old, mut new) = (old.peekable(), new.peekable());
    let mut out = Vec::new();
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => git_order(a, b),
        };
        match (
            order,
            old.next_if(|_| order != Ordering::Greater),
            new.next_if(|_| order != Ordering::Less),
        ) {
            (Ordering::Less, Some(a), _) => out.push(Difference::Removed(a)),
            (Ordering::Greater, _, Some(b)) => out.push(Difference::Added(b)),
            (Ordering::Equal, Some(a), Some(b))
                if a.id() != b.id() || a.filemode() != b.filemode() =>
            {
                out.push(Difference::Changed(a, b))
            }
            _ => {}
        }
    }
    out
}

/// Git's order of tree entries: by name, a directory's name compared as if it ended in `/`.
fn git_order(a: &git2::TreeEntry<'_>, b: &git2::TreeEntry<'_>) -> Ordering {
    order_key(a).cmp(order_key(b))
}

fn order_key<'a>(e: &'a git2::TreeEntry<'_>) -> impl Iterator<Item = u8> + 'a {
    e.name_bytes()
        .iter()
        .copied()
        .chain(is_dir(e).then_some(b'/'))
}

pub(crate) fn is_dir(e: &git2::TreeEntry<'_>) -> bool {
    e.filemode() == 0o040000
}

pub(crate) fn entry_name(e: &git2::TreeEntry<'_>) -> String {
    String::from_utf8_lossy(e.name_bytes()).into_owned()
}
