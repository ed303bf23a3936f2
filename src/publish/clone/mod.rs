//! The persistent local clone of the data repository.
//!
//! The clone is a bare repository in `<clone_dir>/.git` plus a plain copy of the newest
//! snapshot in `<clone_dir>/snapshots/<name>/` for people to look at, and the lock file
//! `<clone_dir>/.gitcord-snapshot.lock` that keeps overlapping runs apart. Commits are built
//! directly from objects (no index, no checkout), so a run never reads, lists or checks out
//! past snapshots' files, and an hourly cron never fills the disk with a checkout of every
//! past snapshot. What still grows with the history is git's layout itself: each commit
//! writes a new `snapshots/` tree listing every snapshot directory; a run reads the tip's
//! once and writes the next by adding one entry to its bytes ([`append`],
//! [`crate::publish::rawtree`]) (README, Performance).
//!
//! Crash safety comes from git's own design: objects are written before the branch moves, the
//! branch moves by an atomic compare-and-swap, and the working copy is replaced by rename.
//! A run killed at any moment leaves, at worst, unreferenced objects and a stale lock file,
//! which [`DataRepo::open`] cleans up under the clone lock.
//!
//! One module per job, each an `impl DataRepo` block with the free functions it needs, so that
//! a change to one job (a new transport, a backup) reads and touches one file:
//! [`open`] (refuse what is not ours, create atomically, lock), [`health`] (stale files, the
//! health check, setting a damaged clone aside; [`vouched`]: the loose objects it already
//! found whole), [`salvage`] (replaying what a set-aside clone
//! had queued), [`commit`] (every commit and branch move; [`append`]: the new `snapshots/`
//! tree), [`reads`] (names and files at any
//! commit), [`latest`] (the readers' pointer), [`pack`] (packing), [`view`] (the working
//! copy), [`tracking`] (what the clone remembers of the remote). This file holds what they
//! share: the handle, its branch, the clone's file names and two filesystem helpers.

mod append;
mod commit;
mod error;
mod health;
mod latest;
mod open;
mod pack;
mod packfile;
mod packindex;
mod reads;
mod salvage;
mod tracking;
mod view;
mod vouched;

// The names the rest of the crate uses, at the paths they had when the clone was one file.
#[allow(unused_imports)]
pub use commit::Integrated;
pub(crate) use error::GitContext;
pub use error::RepoError;
pub(crate) use latest::latest_for;
#[allow(unused_imports)]
pub use reads::StoredSnapshot;
pub(crate) use salvage::{copy_tree, lost_tip};
pub use salvage::{set_aside_copies, SetAside};
pub(crate) use tracking::PUSH_CONFIG;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use git2::{ErrorCode, Oid, Repository};

use crate::publish::directory as output;
use crate::publish::signing::SigningKey;
use crate::time::Timestamp;
use error::io_err;

/// The fixed identity snapshot commits are made with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    /// `snapshots.author_name`.
    pub name: String,
    /// `snapshots.author_email`; must not be a private address GitHub refuses.
    pub email: String,
}

/// A snapshot ready to commit: its directory name, files and message.
#[derive(Clone, Debug)]
pub struct SnapshotFiles<'a> {
    /// The directory name under `snapshots/`.
    pub name: &'a str,
    /// The seven files, as bytes.
    pub files: &'a [(&'static str, Vec<u8>)],
    /// The commit message.
    pub message: &'a str,
    /// The snapshot time: author and committer time.
    pub at: Timestamp,
}

/// What [`DataRepo::commit_snapshot`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// A new commit on the branch.
    New(Oid),
    /// The identical snapshot was already committed (a re-run with the same inputs).
    AlreadyPresent(Oid),
}

impl Committed {
    /// The commit holding the snapshot.
    pub fn oid(self) -> Oid {
        match self {
            Committed::New(oid) | Committed::AlreadyPresent(oid) => oid,
        }
    }
}

/// The clone, opened and locked for this run.
pub struct DataRepo {
    repo: Repository,
    root: PathBuf,
    branch: String,
    /// Held for the life of a writing run; `None` for read-only commands.
    _lock: Option<File>,
    /// Damaged clones set aside and not yet salvaged, oldest first.
    set_aside: Vec<PathBuf>,
    /// The readers' index at the root (`latest.json`), rewritten by every commit; `None`: off.
    latest_file: Option<String>,
    /// The key every commit of this run is signed with, if signing is on.
    signing_key: Option<SigningKey>,
}

/// Kept in the clone's top directory; it must exist before `.git` does.
const LOCK_FILE: &str = ".gitcord-snapshot.lock";

/// Set in clones this tool created or adopted.
const MARKER: &str = "gitcord-snapshot.clone";

/// Prefix of the temporary directory a new `.git` is built in.
const INIT_PREFIX: &str = ".git.init-";

/// Prefix of every temporary file of ours (atomic writes), in the clone or in `.git`.
const TMP_PREFIX: &str = ".tmp-";

/// Prefix of a damaged `.git` set aside when the clone is rebuilt; never deleted.
pub const BROKEN_PREFIX: &str = ".git.broken-";

/// The branch a new clone starts on, and the one assumed when HEAD names none, until the
/// config or the remote's default chooses another ([`DataRepo::set_branch`]).
const DEFAULT_BRANCH: &str = "main";
/// The remote-tracking namespace used for the data repository's remote.
pub const REMOTE_NAME: &str = "origin";

impl DataRepo {
    /// The underlying repository, for the network layer.
    pub(crate) fn git(&self) -> &Repository {
        &self.repo
    }

    /// The branch snapshots are committed to.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// Chooses the branch (from the config, the remote's default, or `main`) and points HEAD
    /// at it, so `git log` in the clone shows the snapshots. Commits already made on another,
    /// unpublished branch are carried over.
    pub fn set_branch(&mut self, branch: &str) -> Result<(), RepoError> {
        git2::Branch::name_is_valid(branch)
            .ctx("check branch name")?
            .then_some(())
            .ok_or_else(|| RepoError::Git {
                context: "check branch name".into(),
                source: git2::Error::from_str(&format!("{branch:?} is not a valid branch name")),
            })?;
        if branch == self.branch {
            return Ok(());
        }
        let target = format!("refs/heads/{branch}");
        // Snapshots committed before the branch was known (an offline first run) move with it.
        if self.repo.find_reference(&target).is_err() && self.tip()?.is_some() {
            let mut current = self
                .repo
                .find_branch(&self.branch, git2::BranchType::Local)
                .ctx("read branch")?;
            current.rename(branch, false).ctx("rename branch")?;
        }
        self.repo.set_head(&target).ctx("set HEAD")?;
        self.branch = branch.to_owned();
        Ok(())
    }

    fn branch_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    /// The local branch tip, `None` before the first snapshot.
    pub fn tip(&self) -> Result<Option<Oid>, RepoError> {
        self.ref_target(&self.branch_ref())
    }

    fn ref_target(&self, name: &str) -> Result<Option<Oid>, RepoError> {
        match self.repo.refname_to_id(name) {
            Ok(oid) => Ok(Some(oid)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(RepoError::Git {
                context: format!("read {name}"),
                source: e,
            }),
        }
    }
}

fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    output::write_file_atomically(path, bytes, 0o644).map_err(io_err(path))
}

/// The entries of `dir`, none when it does not exist.
fn read_dir_entries(dir: &Path) -> Result<Vec<fs::DirEntry>, RepoError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(Result::ok).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(RepoError::Io {
            path: dir.to_owned(),
            source: e,
        }),
    }
}
