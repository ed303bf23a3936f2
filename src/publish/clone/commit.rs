//! Commits and replays: the only code that writes commits and moves the branch. Every commit
//! of ours (snapshot, prune, replayed, salvaged) goes through [`DataRepo::make_commit`], so
//! all are signed and built the same way, and the branch only moves by compare-and-swap.

use std::collections::HashMap;

use git2::{Oid, Signature, Time, Tree};

use super::{Author, Committed, DataRepo, GitContext, RepoError, SnapshotFiles};
use crate::publish::signing::{self, SigningKey};
use crate::publish::tree::snapshots_raw;
use crate::publish::treediff::{snapshot_changes, EntryTarget};
use crate::snapshot::SNAPSHOTS_DIR;

impl DataRepo {
    /// Commits the snapshot on top of the branch: the parent's tree plus the new directory.
    ///
    /// Author and committer are `author` at the snapshot time (UTC), so the same inputs onto
    /// the same parent give the same commit id. An existing snapshot directory is never
    /// modified: an identical one means the work is done, a different one is a conflict.
    pub fn commit_snapshot(
        &self,
        snap: &SnapshotFiles<'_>,
        author: &Author,
    ) -> Result<Committed, RepoError> {
        let parent = self.tip()?;
        let parent_commit = parent
            .map(|p| self.repo.find_commit(p))
            .transpose()
            .ctx("read branch tip")?;
        let base_tree = parent_commit
            .as_ref()
            .map(|c| c.tree())
            .transpose()
            .ctx("read tree")?;
        let mut dir = self.repo.treebuilder(None).ctx("build tree")?;
        for (name, bytes) in snap.files {
            let blob = self.repo.blob(bytes).ctx("write file")?;
            dir.insert(name, blob, 0o100644).ctx("build tree")?;
        }
        let dir = dir.write().ctx("write tree")?;

        // As stored, read once a run (rawtree): 480 KB after a year of hourly snapshots.
        let existing = match &base_tree {
            Some(tree) => snapshots_raw(&self.repo, tree).ctx("read snapshots/")?,
            None => None,
        };
        if let Some(entry) = existing.as_ref().and_then(|t| t.get(snap.name.as_bytes())) {
            return match (entry.id() == dir, parent) {
                (true, Some(p)) => Ok(Committed::AlreadyPresent(p)),
                _ => Err(RepoError::Conflict(snap.name.to_owned())),
            };
        }
        // Add one entry to snapshots/ without re-listing it (append.rs).
        let sub = self.add_snapshot_dir(existing.as_deref(), snap.name, dir)?;
        let mut root = self
            .repo
            .treebuilder(base_tree.as_ref())
            .ctx("build tree")?;
        root.insert(SNAPSHOTS_DIR, sub, 0o040000)
            .ctx("build tree")?;
        let root = self.with_latest(root.write().ctx("write tree")?, parent)?;
        let tree = self.repo.find_tree(root).ctx("read tree")?;

        let sig = Signature::new(
            &author.name,
            &author.email,
            &Time::new(snap.at.timestamp(), 0),
        )
        .ctx("make signature")?;
        let parents: Vec<&git2::Commit<'_>> = parent_commit.iter().collect();
        let oid = self.make_commit(&sig, &sig, snap.message, &tree, &parents)?;
        self.move_branch(parent, oid, "snapshot")?;
        Ok(Committed::New(oid))
    }

    /// Commits the removal of whole snapshot directories (a prune). History keeps them; only
    /// the tip stops listing them. Returns `None` when there is nothing to remove.
    pub fn commit_removal(
        &self,
        names: &[String],
        message: &str,
        author: &Author,
        at: i64,
    ) -> Result<Option<Oid>, RepoError> {
        let Some(parent) = self.tip()? else {
            return Ok(None);
        };
        let parent_commit = self.repo.find_commit(parent).ctx("read branch tip")?;
        let base = parent_commit.tree().ctx("read tree")?;
        let mut entries = self.snapshot_entries(&base)?;
        let before = entries.len();
        for name in names {
            entries.remove(name);
        }
        if entries.len() == before {
            return Ok(None);
        }
        let root = self.with_latest(self.write_root(&base, &entries)?, Some(parent))?;
        let tree = self.repo.find_tree(root).ctx("read tree")?;
        let sig =
            Signature::new(&author.name, &author.email, &Time::new(at, 0)).ctx("make signature")?;
        let oid = self.make_commit(&sig, &sig, message, &tree, &[&parent_commit])?;
        self.move_branch(Some(parent), oid, "prune")?;
        Ok(Some(oid))
    }

    /// Moves the local branch from `expected` to `new`, failing if it moved in between.
    pub(super) fn move_branch(
        &self,
        expected: Option<Oid>,
        new: Oid,
        why: &str,
    ) -> Result<(), RepoError> {
        let name = self.branch_ref();
        let log = format!("gitcord-snapshot: {why}");
        match expected {
            Some(old) => self.repo.reference_matching(&name, new, true, old, &log),
            None => self.repo.reference(&name, new, false, &log),
        }
        .ctx("update branch")?;
        Ok(())
    }

    /// Brings the local branch up to date with the remote tip just fetched: fast-forward when
    /// we have nothing queued, otherwise replay our queued snapshot commits onto it (keeping
    /// their author and committer times) so history stays linear.
    pub fn integrate_remote(&self, remote: Option<Oid>) -> Result<Integrated, RepoError> {
        let Some(remote) = remote else {
            return Ok(Integrated::Unchanged);
        };
        let local = self.tip()?;
        let Some(local) = local else {
            self.move_branch(None, remote, "start from the remote")?;
            return Ok(Integrated::FastForward);
        };
        if local == remote
            || self
                .repo
                .graph_descendant_of(local, remote)
                .ctx("compare history")?
        {
            return Ok(Integrated::Unchanged);
        }
        if self
            .repo
            .graph_descendant_of(remote, local)
            .ctx("compare history")?
        {
            self.move_branch(Some(local), remote, "fast-forward to the remote")?;
            return Ok(Integrated::FastForward);
        }
        let queued = self.queued()?;
        let mut base = remote;
        for oid in &queued {
            base = self.replay_one(*oid, base)?;
        }
        self.move_branch(Some(local), base, "replay queued snapshots onto the remote")?;
        Ok(Integrated::Replayed(queued.len()))
    }

    /// Re-applies one snapshot commit's changes under `snapshots/` onto `base`.
    fn replay_one(&self, oid: Oid, base: Oid) -> Result<Oid, RepoError> {
        let commit = self.repo.find_commit(oid).ctx("read queued commit")?;
        let parent = match commit.parent_count() {
            0 => None,
            _ => Some(
                commit
                    .parent(0)
                    .ctx("read parent")?
                    .tree()
                    .ctx("read tree")?,
            ),
        };
        let tree = commit.tree().ctx("read tree")?;
        let changes =
            snapshot_changes(&self.repo, parent.as_ref(), &tree).ctx("read snapshots/")?;
        let message = String::from_utf8_lossy(commit.message_raw_bytes()).into_owned();
        let replayed = self.commit_snapshot_changes(
            Some(base),
            &changes.added,
            &changes.removed,
            &commit.author(),
            &commit.committer(),
            &message,
        )?;
        // Everything was already there: nothing to replay.
        Ok(replayed.unwrap_or(base))
    }

    /// A new commit on `base` (none: an empty branch) whose `snapshots/` gains `added` and
    /// loses `removed`; `None` when that changes nothing. A name already present with other
    /// content is a conflict: published snapshots are never overwritten.
    pub(super) fn commit_snapshot_changes(
        &self,
        base: Option<Oid>,
        added: &[(String, EntryTarget)],
        removed: &[String],
        author: &Signature<'_>,
        committer: &Signature<'_>,
        message: &str,
    ) -> Result<Option<Oid>, RepoError> {
        let base_commit = base
            .map(|b| self.repo.find_commit(b))
            .transpose()
            .ctx("read branch tip")?;
        let base_tree = match &base_commit {
            Some(c) => c.tree().ctx("read tree")?,
            None => self
                .repo
                .find_tree(
                    self.repo
                        .treebuilder(None)
                        .ctx("build tree")?
                        .write()
                        .ctx("write tree")?,
                )
                .ctx("read tree")?,
        };
        let mut target = self.snapshot_entries(&base_tree)?;
        for (name, entry) in added {
            match target.get(name) {
                Some(existing) if existing == entry => {}
                Some(_) => return Err(RepoError::Conflict(name.clone())),
                None => {
                    target.insert(name.clone(), *entry);
                }
            }
        }
        for name in removed {
            target.remove(name);
        }
        let tree = self.with_latest(self.write_root(&base_tree, &target)?, base)?;
        if base.is_some() && tree == base_tree.id() {
            return Ok(None);
        }
        let tree = self.repo.find_tree(tree).ctx("read tree")?;
        let parents: Vec<&git2::Commit<'_>> = base_commit.iter().collect();
        let oid = self.make_commit(author, committer, message, &tree, &parents)?;
        Ok(Some(oid))
    }

    /// Writes a commit object (no ref moves): the one place commits are made, so every commit
    /// of ours (snapshot, replayed, salvaged, prune) is made the same way.
    pub(crate) fn make_commit(
        &self,
        author: &Signature<'_>,
        committer: &Signature<'_>,
        message: &str,
        tree: &Tree<'_>,
        parents: &[&git2::Commit<'_>],
    ) -> Result<Oid, RepoError> {
        match &self.signing_key {
            None => self
                .repo
                .commit(None, author, committer, message, tree, parents)
                .ctx("write commit"),
            Some(key) => signing::commit_signed(
                &self.repo, None, author, committer, message, tree, parents, key,
            )
            .map_err(|e| RepoError::Sign(e.to_string())),
        }
    }

    /// Signs every commit this run makes with `key` (`snapshots.signing_key`); Ed25519
    /// signatures are deterministic, so commits keep their ids across hosts and reruns.
    pub fn set_signing_key(&mut self, key: Option<SigningKey>) {
        self.signing_key = key;
    }

    /// Entries of `snapshots/` in `tree`: name → (object id, mode).
    fn snapshot_entries(&self, tree: &Tree<'_>) -> Result<HashMap<String, EntryTarget>, RepoError> {
        let Some(sub) = self.snapshots_tree(tree)? else {
            return Ok(HashMap::new());
        };
        Ok(sub
            .iter()
            .filter_map(|e| {
                let target = EntryTarget {
                    id: e.id(),
                    mode: e.filemode(),
                };
                e.name().map(|n| (n.to_owned(), target))
            })
            .collect())
    }

    /// `base` with its `snapshots/` replaced by `entries`.
    fn write_root(
        &self,
        base: &Tree<'_>,
        entries: &HashMap<String, EntryTarget>,
    ) -> Result<Oid, RepoError> {
        let mut sub = self.repo.treebuilder(None).ctx("build tree")?;
        for (name, target) in entries {
            sub.insert(name, target.id, target.mode).ctx("build tree")?;
        }
        let sub = sub.write().ctx("write tree")?;
        let mut root = self.repo.treebuilder(Some(base)).ctx("build tree")?;
        if entries.is_empty() {
            if root.get(SNAPSHOTS_DIR).ctx("build tree")?.is_some() {
                root.remove(SNAPSHOTS_DIR).ctx("build tree")?;
            }
        } else {
            root.insert(SNAPSHOTS_DIR, sub, 0o040000)
                .ctx("build tree")?;
        }
        root.write().ctx("write tree")
    }
}

/// How [`DataRepo::integrate_remote`] reconciled the branch with the remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrated {
    /// Nothing to do (remote empty, equal, or behind us).
    Unchanged,
    /// The remote was ahead and we had nothing queued.
    FastForward,
    /// This many queued commits were replayed onto the remote tip.
    Replayed(usize),
}
