//! Reads: snapshot names and files at the tip or at any commit, and commit signatures. None
//! of these change the clone, so read-only commands (status, verify, diff, restore) use only
//! these and [`DataRepo::open_existing`].

use git2::{ObjectType, Oid, Tree};

use super::{DataRepo, GitContext, RepoError};
use crate::publish::signing::AllowedSigners;
use crate::publish::tree::{read_snapshot_dir, snapshots_dir, snapshots_raw, Entry};

impl DataRepo {
    /// Snapshot directory names at commit `at` (default: the branch tip), in name order.
    /// Names start with the UTC time to the second, so name order is time order, except that
    /// runs within the same second are ordered by their run id, not by when they ran.
    pub fn snapshot_names(&self, at: Option<Oid>) -> Result<Vec<String>, RepoError> {
        let Some(commit) = at.map_or_else(|| self.tip(), |c| Ok(Some(c)))? else {
            return Ok(Vec::new());
        };
        let tree = self.commit_tree(commit)?;
        let Some(sub) = snapshots_raw(&self.repo, &tree).ctx("read snapshots/")? else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = sub
            .iter()
            .filter(|e| e.kind() == Some(ObjectType::Tree))
            .filter_map(|e| std::str::from_utf8(e.name).ok().map(str::to_owned))
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    /// Resolves `latest`, `latest~N` (N snapshots before the newest) or a snapshot name
    /// against the branch tip.
    pub fn resolve_snapshot(&self, spec: &str) -> Result<String, RepoError> {
        let back = match spec {
            "latest" => Some(0),
            _ => spec
                .strip_prefix("latest~")
                .and_then(|n| n.parse::<usize>().ok()),
        };
        // `latest~N`: newest as in crate::publish::newest (what latest.json names).
        let found = match back {
            Some(n) => match n.checked_add(1) {
                Some(want) => self
                    .newest_snapshots(None, want)?
                    .get(n)
                    .map(|f| f.name.clone()),
                None => None,
            },
            None => self
                .snapshot_names(None)?
                .into_iter()
                .find(|n| n.as_str() == spec),
        };
        found.ok_or_else(|| RepoError::NoSuchSnapshot(spec.to_owned()))
    }

    /// The files of snapshot `name` at the branch tip, as (file name, bytes), by file name.
    pub fn read_snapshot(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, RepoError> {
        let tip = self
            .tip()?
            .ok_or_else(|| RepoError::NoSuchSnapshot(name.to_owned()))?;
        self.read_snapshot_at(tip, name)
    }

    /// The files of snapshot `name` as of `commit`.
    pub fn read_snapshot_at(
        &self,
        commit: Oid,
        name: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, RepoError> {
        let tree = self.commit_tree(commit)?;
        // As stored, read once a run (rawtree): the push reads the tree its commit wrote.
        let sub = snapshots_raw(&self.repo, &tree)
            .ctx("read snapshots/")?
            .ok_or_else(|| RepoError::NoSuchSnapshot(name.to_owned()))?;
        let entry = sub
            .get(name.as_bytes())
            .ok_or_else(|| RepoError::NoSuchSnapshot(name.to_owned()))?;
        read_snapshot_dir(&self.repo, entry.id(), |_| true)
            .ctx("read snapshot")?
            .into_iter()
            .map(|(file, entry)| match entry {
                Entry::File(bytes) => Ok((file, bytes)),
                Entry::Other(kind) => Err(RepoError::Git {
                    context: "read snapshot file".into(),
                    source: git2::Error::from_str(&format!(
                        "snapshots/{name}/{file} is a {kind}, not a file"
                    )),
                }),
            })
            .collect()
    }

    /// The newest snapshot directory on the branch ([`crate::publish::newest`]) and its
    /// files' bytes, for comparisons.
    pub fn newest_snapshot(&self) -> Result<Option<StoredSnapshot>, RepoError> {
        let Some(name) = self.newest_name(None)? else {
            return Ok(None);
        };
        let files = self.read_snapshot(&name)?;
        Ok(Some((name, files)))
    }

    /// The root tree of commit `commit`.
    fn commit_tree(&self, commit: Oid) -> Result<Tree<'_>, RepoError> {
        self.repo
            .find_commit(commit)
            .ctx("read commit")?
            .tree()
            .ctx("read tree")
    }

    /// The `snapshots/` directory of root tree `tree` (see [`snapshots_dir`]).
    pub(super) fn snapshots_tree<'r>(
        &'r self,
        tree: &Tree<'_>,
    ) -> Result<Option<Tree<'r>>, RepoError> {
        snapshots_dir(&self.repo, tree).ctx("read snapshots/")
    }

    /// Checks commit `commit`'s signature against `allowed`: `Ok` with who signed, or the
    /// problem in one line.
    pub fn check_signature(
        &self,
        commit: &str,
        allowed: &AllowedSigners,
    ) -> Result<String, String> {
        let oid = Oid::from_str(commit).map_err(|e| e.message().to_owned())?;
        allowed
            .verify_commit(&self.repo, oid)
            .map(|v| format!("{} ({})", v.principal, v.fingerprint))
            .map_err(|problem| {
                // The problem names the commit; the report already does.
                let text = problem.to_string();
                let prefix = format!("commit {oid}");
                match text.strip_prefix(&prefix) {
                    Some(rest) => rest.trim_start_matches(':').trim().to_owned(),
                    None => text,
                }
            })
    }
}

/// A snapshot directory as committed: its name and its files (name, bytes).
pub type StoredSnapshot = (String, Vec<(String, Vec<u8>)>);
