//! The one error type of the clone, and the helpers every job uses to give libgit2's and the
//! filesystem's errors their context. One type for all jobs, because callers (the session,
//! the commands, `error.rs`) map a clone failure to one message and exit code whichever job
//! failed.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the clone could not be used or updated.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// `clone_dir` holds something that is not ours; it is left untouched.
    #[error("clone directory {0} exists and is not a git repository; refusing to touch it (choose another clone_dir)")]
    NotARepo(PathBuf),
    /// A git repository this tool did not create and that is not a clone of the data repository.
    #[error("{0} is a git repository that gitcord-snapshot did not create and that is not a clone of the configured data repository; refusing to commit into it (choose another clone_dir)")]
    NotOurs(PathBuf),
    /// A read-only command found no clone where the config says it is.
    #[error("clone directory {0} does not exist; run push first, or pass --clone-dir")]
    NoClone(PathBuf),
    /// `clone_dir` is a clone of a different data repository.
    #[error("clone directory {path} is a clone of {found}, not {expected}; refusing to mix them (choose another clone_dir)")]
    OtherRemote {
        /// The clone.
        path: PathBuf,
        /// Its `origin`.
        found: String,
        /// The remote this run is configured for.
        expected: String,
    },
    /// Another run kept the clone locked for longer than we wait.
    #[error("another gitcord-snapshot run holds the lock on {path} (waited {waited:?}); try again later")]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// The same snapshot name already exists with different content: never overwrite.
    #[error("snapshots/{0} already exists in the data repository with different content; refusing to overwrite it")]
    Conflict(String),
    /// `--snapshot`, `diff` or `restore` named a snapshot the branch does not have.
    #[error("no snapshot {0:?} on the branch (use a name under snapshots/, latest or latest~N)")]
    NoSuchSnapshot(String),
    /// A commit could not be signed.
    #[error("cannot sign the commit: {0}")]
    Sign(String),
    /// A git operation failed.
    #[error("git {context}: {source}")]
    Git {
        /// What we were doing.
        context: String,
        /// libgit2's error.
        source: git2::Error,
    },
    /// The filesystem refused.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Adds context to libgit2 errors.
pub(crate) trait GitContext<T> {
    fn ctx(self, context: &str) -> Result<T, RepoError>;
}

impl<T> GitContext<T> for Result<T, git2::Error> {
    fn ctx(self, context: &str) -> Result<T, RepoError> {
        self.map_err(|source| RepoError::Git {
            context: context.to_owned(),
            source,
        })
    }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RepoError + '_ {
    move |source| RepoError::Io {
        path: path.to_owned(),
        source,
    }
}
