//! Salvage: replaying onto the branch the queued (unpushed) snapshots of damaged clones that
//! were set aside, so that a rebuild loses nothing that can still be read. Apart from the
//! rebuild itself ([`super::health`]) because it runs later, once the session has refilled
//! the new clone from the remote.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository};

use super::{read_dir_entries, write_file_atomically, DataRepo, RepoError, BROKEN_PREFIX};
use crate::publish::treediff::snapshot_changes;

/// Written into a set-aside clone once its queue has been salvaged.
const SALVAGED_MARKER: &str = "gitcord-snapshot-salvaged";

/// A damaged clone set aside, as the snapshots' salvage left it: handed to the backup's salvage
/// ([`crate::publish::backup::salvage`]) before the copy is marked salvaged, so that a run
/// killed in between salvages both again.
pub struct SetAside<'a> {
    /// The copy (`<clone_dir>/.git.broken-<UTC time>`).
    pub path: &'a Path,
    /// It, opened.
    pub repo: &'a Repository,
    /// Queued snapshots found in it and not put on the branch (unreadable, or conflicting
    /// with another writer's of the same name): they stay in the copy, their backups with them.
    pub left_out: &'a BTreeSet<String>,
}

impl DataRepo {
    /// Replays onto the branch the snapshot commits that were queued in the damaged clones set
    /// aside and not yet salvaged, as far as they can still be read:
    /// each with its original message, author and times. A snapshot whose files cannot be
    /// read is left out with a warning; it stays in the set-aside copy. Then `more` gets each
    /// copy (the backups queued in it). Returns how many snapshot commits were replayed.
    pub fn salvage_with(
        &self,
        mut more: impl FnMut(&DataRepo, &SetAside<'_>) -> Result<(), RepoError>,
    ) -> Result<usize, RepoError> {
        let mut replayed = 0;
        for aside in &self.set_aside {
            match Repository::open_bare(aside) {
                Ok(old) => {
                    let mut left_out = BTreeSet::new();
                    replayed += self.salvage_from(aside, &old, &mut left_out)?;
                    more(
                        self,
                        &SetAside {
                            path: aside,
                            repo: &old,
                            left_out: &left_out,
                        },
                    )?;
                }
                Err(e) => log::warn!(
                    "nothing can be salvaged from {}: {}",
                    aside.display(),
                    e.message()
                ),
            }
            // Only now is this copy done with: a run killed before this line salvages it
            // again (replaying what is already on the branch changes nothing).
            write_file_atomically(&aside.join(SALVAGED_MARKER), b"salvaged\n")?;
        }
        Ok(replayed)
    }

    fn salvage_from(
        &self,
        aside: &Path,
        old: &Repository,
        left_out: &mut BTreeSet<String>,
    ) -> Result<usize, RepoError> {
        // The branch: ours by name, else what HEAD names, else the only branch there is.
        let old_tip = old
            .refname_to_id(&self.branch_ref())
            .ok()
            .or_else(|| old.head().ok().and_then(|h| h.target()))
            .or_else(|| {
                let heads: Vec<Oid> = old
                    .references_glob("refs/heads/*")
                    .ok()?
                    .filter_map(|r| r.ok()?.target())
                    .filter(|oid| !is_backup_commit(old, *oid))
                    .collect();
                (heads.len() == 1).then(|| heads[0])
            })
            .or_else(|| self.lost_tip(old));
        let Some(old_tip) = old_tip else {
            log::warn!(
                "no branch can be read in {}; its queued snapshots (if any) are not salvaged",
                aside.display()
            );
            return Ok(0);
        };
        let old_remote = old.refname_to_id(&self.tracking_ref()).ok();
        // First-parent walk back to what the remote (old or new view) already has.
        let mut chain = Vec::new();
        let mut next = Some(old_tip);
        while let Some(oid) = next {
            if Some(oid) == old_remote || self.repo.find_commit(oid).is_ok() {
                break;
            }
            let Ok(commit) = old.find_commit(oid) else {
                log::warn!(
                    "commit {oid} in {} cannot be read; older queued commits are not salvaged",
                    aside.display()
                );
                break;
            };
            chain.push(oid);
            next = commit.parent_ids().next();
        }
        chain.reverse();
        let mut replayed = 0;
        for oid in chain {
            let Ok(commit) = old.find_commit(oid) else {
                continue;
            };
            // Without a readable parent, whatever the branch lacks counts as added.
            let parent = commit.parent(0).ok().and_then(|p| p.tree().ok());
            let changes = commit.tree().and_then(|tree| {
                snapshot_changes(old, parent.as_ref(), &tree)
                    .or_else(|_| snapshot_changes(old, None, &tree))
            });
            let changes = match changes {
                Ok(changes) => changes,
                Err(e) => {
                    log::warn!(
                        "the tree of commit {oid} in {} cannot be read ({}); not salvaged",
                        aside.display(),
                        e.message()
                    );
                    continue;
                }
            };
            let mut added = Vec::new();
            for (name, entry) in changes.added {
                match copy_tree(old, &self.repo, entry.id) {
                    Ok(()) => added.push((name, entry)),
                    Err(e) => {
                        log::warn!(
                            "snapshots/{name} (commit {oid}) cannot be read from {}: {}; it is not salvaged",
                            aside.display(),
                            e.message()
                        );
                        left_out.insert(name);
                    }
                }
            }
            let removed = changes.removed;
            let base = self.tip()?;
            let message = String::from_utf8_lossy(commit.message_raw_bytes()).into_owned();
            let (author, committer) = (commit.author().to_owned(), commit.committer().to_owned());
            match self
                .commit_snapshot_changes(base, &added, &removed, &author, &committer, &message)
            {
                Ok(Some(new)) => {
                    self.move_branch(base, new, "salvage a queued snapshot")?;
                    replayed += 1;
                }
                Ok(None) => {}
                // Another writer published the same name with other content meanwhile: the
                // snapshot stays in the set-aside copy for a person to look at.
                Err(RepoError::Conflict(name)) => {
                    log::warn!(
                        "snapshots/{name} (commit {oid} in {}) conflicts with the branch; not salvaged",
                        aside.display()
                    );
                    left_out.insert(name);
                    left_out.extend(added.into_iter().map(|(name, _)| name));
                }
                Err(e) => return Err(e),
            }
        }
        if replayed > 0 {
            log::warn!(
                "salvaged {replayed} queued commit(s) from {}",
                aside.display()
            );
        }
        Ok(replayed)
    }

    /// The branch tip of a set-aside clone whose branch ref cannot be read (destroyed, garbage):
    /// its newest snapshot commit this clone lacks ([`lost_tip`]). A commit left over from an
    /// earlier replay holds the same snapshots as its replayed copy, so picking either loses
    /// nothing.
    fn lost_tip(&self, old: &Repository) -> Option<Oid> {
        // Backup commits (their own branch) are never the snapshot branch's tip.
        let tip = lost_tip(&self.repo, old, false)?;
        log::warn!(
            "the branch of {} cannot be read; salvaging from its newest unpublished commit {tip}",
            old.path().display()
        );
        Some(tip)
    }
}

/// Copies tree `id` and everything below it from `from` to `to`, object by object (same ids),
/// skipping what `to` already has. Children are written before the tree that names them, so an
/// object in `to` always comes with everything below it: a copy that fails halfway (an object
/// that cannot be read) leaves no tree whose presence would pass for a complete one when the
/// salvage runs again (a run killed before marking the copy salvaged).
pub(crate) fn copy_tree(from: &Repository, to: &Repository, id: Oid) -> Result<(), git2::Error> {
    let src = from.odb()?;
    let dst = to.odb()?;
    copy_object(from, &src, &dst, id)
}

fn copy_object(
    from: &Repository,
    src: &git2::Odb<'_>,
    dst: &git2::Odb<'_>,
    oid: Oid,
) -> Result<(), git2::Error> {
    if dst.exists(oid) {
        return Ok(());
    }
    let object = src.read(oid)?;
    if object.kind() == ObjectType::Tree {
        let children: Vec<Oid> = from
            .find_tree(oid)?
            .iter()
            // Submodule entries are commits of other repositories: not followed.
            .filter(|e| e.filemode() != 0o160000)
            .map(|e| e.id())
            .collect();
        for child in children {
            copy_object(from, src, dst, child)?;
        }
    }
    let written = dst.write(object.kind(), object.data())?;
    if written != oid {
        return Err(git2::Error::from_str(&format!(
            "object {oid} reads back as {written}"
        )));
    }
    Ok(())
}

/// Every damaged clone set aside in `root`, oldest first, and whether its queue was salvaged
/// (for `status`: the copies are never deleted, an operator may want to look at them).
pub fn set_aside_copies(root: &Path) -> Vec<(PathBuf, bool)> {
    list_set_aside(root).unwrap_or_default()
}

/// The damaged clones set aside in `root` whose queue has not been salvaged yet, oldest first
/// (their names sort by the time they were set aside).
pub(super) fn unsalvaged(root: &Path) -> Result<Vec<PathBuf>, RepoError> {
    Ok(list_set_aside(root)?
        .into_iter()
        .filter(|(_, salvaged)| !salvaged)
        .map(|(path, _)| path)
        .collect())
}

/// The damaged clones set aside in `root` (directories named `.git.broken-<UTC time>`), oldest
/// first, each with whether its queue was salvaged: the one listing behind both views above.
fn list_set_aside(root: &Path) -> Result<Vec<(PathBuf, bool)>, RepoError> {
    let mut out: Vec<(PathBuf, bool)> = read_dir_entries(root)?
        .into_iter()
        .filter(|e| e.file_name().to_string_lossy().starts_with(BROKEN_PREFIX))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .map(|p| {
            let salvaged = p.join(SALVAGED_MARKER).exists();
            (p, salvaged)
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Whether `oid` is a commit of the backup branch (publish/backup), which is never the
/// snapshot branch (its queued commits have a salvage of their own).
fn is_backup_commit(repo: &Repository, oid: Oid) -> bool {
    repo.find_commit(oid).is_ok_and(|c| is_backup(&c))
}

fn is_backup(commit: &git2::Commit<'_>) -> bool {
    crate::snapshot::backup::snapshot_of_message(&String::from_utf8_lossy(
        commit.message_raw_bytes(),
    ))
    .is_some()
}

/// The tip of a branch of set-aside clone `old` whose ref cannot be read (destroyed, garbage):
/// among the commits in its objects that `new` lacks, backup commits (`backups`) or snapshot
/// commits, the newest (by committer time, which is the snapshot time) that no other such
/// commit has as its parent.
pub(crate) fn lost_tip(new: &Repository, old: &Repository, backups: bool) -> Option<Oid> {
    let odb = old.odb().ok()?;
    let mut commits = Vec::new();
    odb.foreach(|oid| {
        if matches!(odb.read_header(*oid), Ok((_, ObjectType::Commit))) {
            commits.push(*oid);
        }
        true
    })
    .ok()?;
    let commits: Vec<git2::Commit<'_>> = commits
        .into_iter()
        .filter(|oid| new.find_commit(*oid).is_err())
        .filter_map(|oid| old.find_commit(oid).ok())
        .filter(|c| is_backup(c) == backups)
        .collect();
    let parents: std::collections::HashSet<Oid> =
        commits.iter().flat_map(|c| c.parent_ids()).collect();
    commits
        .iter()
        .filter(|c| !parents.contains(&c.id()))
        .max_by_key(|c| (c.committer().when().seconds(), c.id()))
        .map(git2::Commit::id)
}
