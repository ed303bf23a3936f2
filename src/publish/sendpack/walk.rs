//! What a push sends: the objects the new commits add, found by diffing each commit's tree
//! against its parent's along the paths that changed (no walk of whole trees, so the work per
//! push stays what one snapshot adds, however long the history), each with the object it most
//! resembles that the remote already has (or that comes earlier in the pack) as its delta base.
//!
//! The bases: for a changed path, the object at the same path in the parent; for a new
//! directory (a new snapshot), the parent's last directory beside it (the previous snapshot,
//! whose seven files are the new ones' closest relatives), entry by entry. Every base is in the
//! parent commit's tree, so the remote has it (the parent is on the remote) or this pack
//! carries it (the parent is pushed too). A new object identical to its base is not sent at all.

use std::collections::HashSet;

use git2::{ObjectType, Oid, Repository};

use crate::publish::rawtree::{self, differences, RawDifference, RawEntry, RawTree};

/// One object to send, and what to encode it against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: Oid,
    pub(crate) kind: ObjectType,
    /// An object of the same kind the remote has or this pack sends earlier.
    pub(crate) base: Option<Oid>,
}

/// The objects `commits` (oldest first, each one's parents either earlier in the list or on
/// the remote) add to what the remote has.
pub(crate) fn objects_to_send(
    repo: &Repository,
    commits: &[Oid],
) -> Result<Vec<Entry>, git2::Error> {
    let mut walk = Walk {
        repo,
        sent: HashSet::new(),
        out: Vec::new(),
    };
    for &id in commits {
        let commit = repo.find_commit(id)?;
        walk.add(id, ObjectType::Commit, None);
        let tree = commit.tree_id();
        let parent_tree = match commit.parent_ids().next() {
            Some(parent) => Some(repo.find_commit(parent)?.tree_id()),
            None => None,
        };
        match parent_tree {
            Some(old) if old == tree => {}
            Some(old) => {
                walk.add(tree, ObjectType::Tree, Some(old));
                walk.changed(&*rawtree::read(repo, old)?, &*rawtree::read(repo, tree)?)?;
            }
            None => {
                walk.add(tree, ObjectType::Tree, None);
                walk.added(&*rawtree::read(repo, tree)?)?;
            }
        }
    }
    Ok(walk.out)
}

/// What a tree entry points at.
#[derive(Clone, Copy)]
struct Target {
    id: Oid,
    kind: Option<ObjectType>,
}

impl From<RawEntry<'_>> for Target {
    fn from(e: RawEntry<'_>) -> Target {
        Target {
            id: e.id(),
            kind: e.kind(),
        }
    }
}

struct Walk<'r> {
    repo: &'r Repository,
    /// Everything already listed (or known to be there): each object goes once.
    sent: HashSet<Oid>,
    out: Vec<Entry>,
}

impl Walk<'_> {
    /// Lists `id` unless it is listed already. Returns whether it was new.
    fn add(&mut self, id: Oid, kind: ObjectType, base: Option<Oid>) -> bool {
        if !self.sent.insert(id) {
            return false;
        }
        self.out.push(Entry { id, kind, base });
        true
    }

    /// The entries of `new` that differ from `old` (the same path in the parent).
    fn changed(&mut self, old: &RawTree, new: &RawTree) -> Result<(), git2::Error> {
        // The previous directory beside a new one: the last in the old listing.
        let neighbour = old
            .len()
            .checked_sub(1)
            .map(|last| Target::from(old.entry(last)))
            .filter(|e| e.kind == Some(ObjectType::Tree));
        let differences: Vec<(Target, Option<Target>)> = differences(old, new)
            .into_iter()
            .filter_map(|d| match d {
                RawDifference::Removed => None,
                RawDifference::Changed(was, now) if was.kind() == now.kind() => {
                    Some((now.into(), Some(was.into())))
                }
                RawDifference::Changed(_, now) | RawDifference::Added(now) => {
                    Some((now.into(), neighbour))
                }
            })
            .collect();
        for (now, base) in differences {
            self.entry(now, base)?;
        }
        Ok(())
    }

    /// Every entry of a tree with nothing like it on the remote (the first commit's).
    fn added(&mut self, new: &RawTree) -> Result<(), git2::Error> {
        let entries: Vec<Target> = new.iter().map(Target::from).collect();
        for entry in entries {
            self.entry(entry, None)?;
        }
        Ok(())
    }

    /// `now` (a tree or a blob; submodule links are not ours to send), against `base` when it
    /// is of the same kind; a tree's entries follow it.
    fn entry(&mut self, now: Target, base: Option<Target>) -> Result<(), git2::Error> {
        let kind = match now.kind {
            Some(k @ (ObjectType::Tree | ObjectType::Blob)) => k,
            _ => return Ok(()),
        };
        let base = base.filter(|b| b.kind == Some(kind));
        if base.is_some_and(|b| b.id == now.id) {
            // The remote has this very object (or this pack sends it already).
            self.sent.insert(now.id);
            return Ok(());
        }
        if !self.add(now.id, kind, base.map(|b| b.id)) {
            return Ok(());
        }
        if kind == ObjectType::Tree {
            // A tree is diffed against its base, the same path in the parent or the previous
            // directory beside it: what they share is on the remote already.
            let tree = rawtree::read(self.repo, now.id)?;
            match base {
                Some(b) => self.changed(&*rawtree::read(self.repo, b.id)?, &tree)?,
                None => self.added(&tree)?,
            }
        }
        Ok(())
    }
}
