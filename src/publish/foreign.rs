//! What another writer pushed, checked before this host builds on it.
//!
//! The remote is shared: anyone with write access can push a commit whose tree holds an entry
//! name git itself refuses (`..`, `a/b`, `.git`, written with `git hash-object --literally`).
//! libgit2 then refuses to build the next tree on top of it, and every host would fail at
//! commit time, forever, with what looks like a damaged local clone. The clone is fine: the
//! remote's content is the problem, and only an operator can fix it. So the fetched tip is
//! checked here, once per fetch, and refused with the commit and the entry named; nothing
//! of such a tree is ever integrated, committed on, or written to disk (the working copy
//! only ever shows a snapshot of an integrated tree).

use git2::{ObjectType, Oid, Repository, Tree};

use crate::snapshot::SNAPSHOTS_DIR;

/// How far back to look for the commit that first held a bad entry.
const BLAME_DEPTH: usize = 1_000;

/// The first entry of `tree` (the root, and `snapshots/` below it: the trees a commit of ours
/// rebuilds) that git would refuse to write, as its path.
fn bad_entry(repo: &Repository, tree: &Tree<'_>) -> Result<Option<String>, git2::Error> {
    if let Some(bad) = first_refused(repo, tree, "")? {
        return Ok(Some(bad));
    }
    match tree.get_name(SNAPSHOTS_DIR) {
        Some(e) if e.kind() == Some(ObjectType::Tree) => {
            let sub = repo.find_tree(e.id())?;
            first_refused(repo, &sub, &format!("{SNAPSHOTS_DIR}/"))
        }
        _ => Ok(None),
    }
}

/// libgit2's own rule, asked of libgit2: each entry is inserted into a scratch tree builder
/// (nothing is written), which refuses exactly the names and modes it would refuse when we
/// build the next commit's tree.
fn first_refused(
    repo: &Repository,
    tree: &Tree<'_>,
    prefix: &str,
) -> Result<Option<String>, git2::Error> {
    let mut scratch = repo.treebuilder(None)?;
    for entry in tree.iter() {
        if scratch
            .insert(entry.name_bytes(), entry.id(), entry.filemode())
            .is_err()
        {
            let name = String::from_utf8_lossy(entry.name_bytes());
            return Ok(Some(format!("{prefix}{name:?}")));
        }
    }
    Ok(None)
}

/// `Err(message)` when the remote's `tip` holds a tree entry git refuses: the message names
/// the entry, the tip and, when found within [`BLAME_DEPTH`] first parents, the commit that
/// introduced it.
pub fn check_remote_tip(repo: &Repository, branch: &str, tip: Oid) -> Result<(), String> {
    let read = |e: git2::Error| format!("cannot read the remote's commit {tip}: {}", e.message());
    let commit = repo.find_commit(tip).map_err(read)?;
    let Some(bad) = bad_entry(repo, &commit.tree().map_err(read)?).map_err(read)? else {
        return Ok(());
    };
    // The oldest first-parent ancestor that still holds it.
    let mut introduced = commit.clone();
    for _ in 0..BLAME_DEPTH {
        let Ok(parent) = introduced.parent(0) else {
            break;
        };
        let holds = parent
            .tree()
            .ok()
            .and_then(|t| bad_entry(repo, &t).ok().flatten())
            .is_some_and(|b| b == bad);
        if !holds {
            break;
        }
        introduced = parent;
    }
    let by = match introduced.id() == tip {
        true => String::new(),
        false => format!(", introduced by commit {}", introduced.id()),
    };
    Err(format!(
        "the remote's branch {branch} (commit {tip}{by}) holds a tree entry git refuses as a \
         file name: {bad}. This host and its clone are fine; another writer pushed it, and an \
         operator must remove that commit from the remote (nothing of it was written here)"
    ))
}
