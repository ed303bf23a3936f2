//! Salvage of queued backups: when a damaged clone is set aside and rebuilt from the remote,
//! the backup commits it had queued (not pushed yet) are replayed onto the rebuilt clone's
//! backup branch, as its queued snapshots are onto the snapshot branch
//! ([`DataRepo::salvage_with`]), so that every salvaged snapshot keeps its backup and stays
//! restorable.
//!
//! A backup names its snapshot by name, never by commit id (`Backup of state.db for
//! snapshots/<name>` and the manifest's `snapshot`), so a snapshot replayed with a new commit
//! id needs nothing rewritten: the backup's tree is replayed as it is (same tree, new parent),
//! as [`super::integrate`] replays queued backups onto another writer's. Its objects are
//! copied one by one from the set-aside copy (each checked against its id); a backup whose
//! objects cannot all be read is left there with a warning, as is the backup of a snapshot the
//! snapshots' salvage left out (the backup could not be restored by that name).
//!
//! The backup cache of the set-aside copy is carried over when it describes the rebuilt
//! branch's tip (the same tree, every object it names present), so that the first backup after
//! a rebuild costs what changed rather than the whole database.

use std::collections::HashSet;

use git2::{ErrorCode, Oid, Repository};

use super::branch::{local_tip, move_ref, BACKUP_REMOTE};
use super::{Cache, CACHE_FILE};
use crate::publish::clone::{
    copy_tree, lost_tip, DataRepo, GitContext, RepoError, SetAside, REMOTE_NAME,
};
use crate::snapshot::backup::snapshot_of_message;

/// Salvages every damaged clone set aside and not salvaged yet: its queued snapshots, then (with
/// the backup on, `branch`) its queued backups. Returns how many snapshot commits were replayed.
pub fn salvage(data: &DataRepo, branch: Option<&str>) -> Result<usize, RepoError> {
    data.salvage_with(|data, aside| match branch {
        Some(b) => salvage_from(data, b, aside).map(drop),
        None => Ok(()),
    })
}

/// Replays onto the local backup branch the backups queued in `aside`, oldest first; returns
/// how many were replayed.
fn salvage_from(data: &DataRepo, branch: &str, aside: &SetAside<'_>) -> Result<usize, RepoError> {
    let old = aside.repo;
    let name = format!("refs/heads/{branch}");
    let old_tip = match old.refname_to_id(&name) {
        Ok(oid) => Some(oid),
        // No backup branch at all (the backup was off, or never committed): nothing queued.
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => {
            log::warn!(
                "{name} of {} cannot be read ({}); looking for its newest backup",
                aside.path.display(),
                e.message()
            );
            lost_tip(data.git(), old, true)
        }
    };
    let Some(old_tip) = old_tip else {
        return Ok(0);
    };
    // Where the remote's backup branch was, as the copy last saw it (in the data repository
    // or in a backup repository of its own): what is below is not queued.
    let pushed: Vec<Oid> = [BACKUP_REMOTE, REMOTE_NAME]
        .iter()
        .filter_map(|remote| {
            old.refname_to_id(&format!("refs/remotes/{remote}/{branch}"))
                .ok()
        })
        .collect();
    let new = data.git();
    let mut chain = Vec::new();
    let mut next = Some(old_tip);
    while let Some(oid) = next {
        if pushed.contains(&oid) || new.find_commit(oid).is_ok() {
            break;
        }
        let Ok(commit) = old.find_commit(oid) else {
            log::warn!(
                "backup commit {oid} in {} cannot be read; older queued backups are not salvaged",
                aside.path.display()
            );
            break;
        };
        chain.push(oid);
        next = commit.parent_ids().next();
    }
    chain.reverse();
    let mut replayed = 0;
    if !chain.is_empty() {
        // Snapshots the rebuilt branch already has a backup of (a run killed after salvaging,
        // before marking the copy salvaged, salvages it again): not replayed twice.
        let mut backed_up = backed_up(new, branch)?;
        for oid in chain {
            let Ok(commit) = old.find_commit(oid) else {
                continue;
            };
            let message = String::from_utf8_lossy(commit.message_raw_bytes()).into_owned();
            let Some(snapshot) = snapshot_of_message(&message).map(str::to_owned) else {
                log::warn!(
                    "commit {oid} on {branch} in {} is not a backup; not salvaged",
                    aside.path.display()
                );
                continue;
            };
            if aside.left_out.contains(&snapshot) {
                log::warn!(
                    "the backup of snapshots/{snapshot} (commit {oid} in {}) is not salvaged: \
                     its snapshot was not",
                    aside.path.display()
                );
                continue;
            }
            if backed_up.contains(&snapshot) {
                continue;
            }
            if let Err(e) = copy_tree(old, new, commit.tree_id()) {
                log::warn!(
                    "the backup of snapshots/{snapshot} (commit {oid}) cannot be read from {}: {}; \
                     it is not salvaged",
                    aside.path.display(),
                    e.message()
                );
                continue;
            }
            let tree = new.find_tree(commit.tree_id()).ctx("read tree")?;
            let base = local_tip(new, branch)?;
            let parent = base
                .map(|b| new.find_commit(b))
                .transpose()
                .ctx("read the backup branch tip")?;
            if parent.as_ref().is_some_and(|p| p.tree_id() == tree.id()) {
                continue;
            }
            let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
            let made = data.make_commit(
                &commit.author(),
                &commit.committer(),
                &message,
                &tree,
                &parents,
            )?;
            move_ref(new, branch, base, made, "salvage a queued backup")?;
            backed_up.insert(snapshot);
            replayed += 1;
        }
        if replayed > 0 {
            log::warn!(
                "salvaged {replayed} queued backup(s) from {}",
                aside.path.display()
            );
        }
    }
    carry_cache(new, branch, aside);
    Ok(replayed)
}

/// The snapshots backed up on the local backup branch.
fn backed_up(repo: &Repository, branch: &str) -> Result<HashSet<String>, RepoError> {
    let mut out = HashSet::new();
    let Some(tip) = local_tip(repo, branch)? else {
        return Ok(out);
    };
    let mut walk = repo.revwalk().ctx("walk the backup branch")?;
    walk.push(tip).ctx("walk the backup branch")?;
    for oid in walk {
        let commit = repo
            .find_commit(oid.ctx("walk the backup branch")?)
            .ctx("read backup commit")?;
        if let Some(name) =
            snapshot_of_message(&String::from_utf8_lossy(commit.message_raw_bytes()))
        {
            out.insert(name.to_owned());
        }
    }
    Ok(out)
}

/// Copies the set-aside copy's backup cache into the rebuilt clone when it describes the
/// rebuilt backup branch's tip and every object it names is there (what [`Cache`] itself
/// checks when a run loads it); otherwise the next backup starts without one, as always.
fn carry_cache(new: &Repository, branch: &str, aside: &SetAside<'_>) {
    let Ok(text) = std::fs::read_to_string(aside.path.join(CACHE_FILE)) else {
        return;
    };
    let Some(cache) = Cache::parse(&text) else {
        return;
    };
    let tip_tree = local_tip(new, branch)
        .ok()
        .flatten()
        .and_then(|tip| new.find_commit(tip).ok())
        .map(|c| c.tree_id());
    if cache.root.is_none() || cache.root != tip_tree {
        return;
    }
    let Ok(odb) = new.odb() else { return };
    if !cache
        .tables
        .values()
        .flat_map(|ranges| ranges.values())
        .all(|e| odb.exists(e.oid))
    {
        return;
    }
    let path = new.path().join(CACHE_FILE);
    match crate::publish::directory::write_file_atomically(&path, text.as_bytes(), 0o600) {
        Ok(()) => log::info!(
            "carried the backup cache over from {}",
            aside.path.display()
        ),
        Err(e) => log::warn!("cannot write {}: {e}", path.display()),
    }
}
