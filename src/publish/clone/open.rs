//! Opening the clone and locking it: refusing what is not ours, creating a new clone
//! atomically, taking the clone lock, and opening an existing clone read-only. Kept apart
//! from the repairs ([`super::health`]) so that the order of the checks at opening (ours?
//! locked? damaged?) reads in one place.

use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, Instant};

use git2::{ErrorCode, Repository, RepositoryInitOptions};

use super::health::{damaged_loose_objects, quarantine, recover, recover_root, set_aside_dir};
use super::salvage::unsalvaged;
use super::tracking::no_deltas_for_push;
use super::{
    io_err, DataRepo, GitContext, RepoError, BROKEN_PREFIX, DEFAULT_BRANCH, INIT_PREFIX, LOCK_FILE,
    MARKER, REMOTE_NAME, TMP_PREFIX,
};
use crate::publish::git_options;
use crate::snapshot::format::LATEST_FILE;
use crate::snapshot::SNAPSHOTS_DIR;

impl DataRepo {
    /// Opens the clone at `root`, creating it if `root` is missing or empty, and takes the
    /// clone lock (waiting up to `lock_timeout`). `remote` is the data repository's URL, or
    /// `None` for a purely local repository.
    pub fn open(
        root: &Path,
        remote: Option<&str>,
        lock_timeout: Duration,
    ) -> Result<DataRepo, RepoError> {
        git_options::note_repository_opened();
        let git_dir = root.join(".git");
        // Refuse a directory that is neither ours nor empty before putting anything in it.
        if !git_dir.exists() {
            match fs::read_dir(root) {
                Ok(entries) => {
                    let names: Vec<String> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    // A run killed while rebuilding leaves the broken clone set aside and the
                    // working copy of snapshots: both ours.
                    let rebuilding = names.iter().any(|n| n.starts_with(BROKEN_PREFIX));
                    let ours = |name: &str| {
                        name == LOCK_FILE
                            || name.starts_with(INIT_PREFIX)
                            || name.starts_with(BROKEN_PREFIX)
                            || name.starts_with(TMP_PREFIX)
                            || (rebuilding && name == SNAPSHOTS_DIR)
                    };
                    if names.iter().any(|n| !ours(n)) {
                        return Err(RepoError::NotARepo(root.to_owned()));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(RepoError::Io {
                        path: root.to_owned(),
                        source: e,
                    })
                }
            }
        }
        // A repository that is not ours is refused before anything (even the lock file) is
        // put next to it; the same check runs again under the lock.
        if git_dir.exists() && !marked_ours(&git_dir) && !origin_is(&git_dir, remote) {
            return Err(RepoError::NotOurs(root.to_owned()));
        }
        fs::create_dir_all(root).map_err(io_err(root))?;
        // The lock comes first, so that two first runs do not both initialise the clone.
        let lock = take_lock(&root.join(LOCK_FILE), lock_timeout)?;
        if !git_dir.exists() {
            // Only our own leftovers can be here (anything else was refused above).
            recover_root(root)?;
            init_atomically(root, remote)?;
        }
        let repo = match open_git_dir(root) {
            Ok(repo) => repo,
            // A `.git` of ours that cannot even be opened (its HEAD destroyed) is damaged;
            // one that is not provably ours is refused and left as it is.
            Err(RepoError::Git { source, .. }) if marked_ours(&git_dir) => {
                set_aside_dir(root, source.message())?;
                init_atomically(root, remote)?;
                open_git_dir(root)?
            }
            Err(e) => return Err(e),
        };
        // Only once the repository is known to be ours does anything in it get removed.
        check_ours(&repo, root, remote)?;
        check_remote(&repo, root, remote)?;
        recover(root)?;
        // A truncated loose object would hang libgit2 forever at its first read (libgit2 issue
        // #7342): find them before anything reads objects, and rebuild as for other damage.
        let bad = damaged_loose_objects(&git_dir);
        let repo = match bad.split_first() {
            None => repo,
            Some((first, rest)) => {
                drop(repo);
                let reason = format!(
                    "{} damaged loose object(s), e.g. {}",
                    rest.len() + 1,
                    first.display()
                );
                let aside = set_aside_dir(root, &reason)?;
                quarantine(&aside, std::iter::once(first).chain(rest), &git_dir);
                init_atomically(root, remote)?;
                open_git_dir(root)?
            }
        };
        let mut data = DataRepo {
            branch: current_branch(&repo).unwrap_or_else(|| DEFAULT_BRANCH.to_owned()),
            repo,
            root: root.to_owned(),
            _lock: Some(lock),
            set_aside: Vec::new(),
            latest_file: Some(LATEST_FILE.to_owned()),
            signing_key: None,
        };
        if let Err(reason) = data.check_health() {
            // Damage beyond stale files: keep the broken clone (never deleted), start a new
            // one; the session refills it from the remote and salvages the queue.
            set_aside_dir(root, &reason)?;
            init_atomically(root, remote)?;
            data.repo = open_git_dir(root)?;
            // The new repository's HEAD is `main`: say so, so that choosing the configured
            // branch moves HEAD there.
            data.branch = current_branch(&data.repo).unwrap_or_else(|| DEFAULT_BRANCH.to_owned());
        }
        // Every damaged clone set aside and not yet salvaged (also by a run killed before it
        // finished salvaging) is salvaged by this run.
        data.set_aside = unsalvaged(root)?;
        no_deltas_for_push(&data.repo)?;
        Ok(data)
    }

    /// Opens an existing clone for reading (status, verify, diff, restore): no lock, no
    /// initialisation, no repair, so it never changes anything and never waits.
    pub fn open_existing(root: &Path) -> Result<DataRepo, RepoError> {
        git_options::note_repository_opened();
        if !root.exists() {
            return Err(RepoError::NoClone(root.to_owned()));
        }
        let repo = open_git_dir(root)?;
        let branch = current_branch(&repo).unwrap_or_else(|| DEFAULT_BRANCH.to_owned());
        Ok(DataRepo {
            repo,
            root: root.to_owned(),
            branch,
            _lock: None,
            set_aside: Vec::new(),
            latest_file: Some(LATEST_FILE.to_owned()),
            signing_key: None,
        })
    }

    /// Whether a writing run holds the clone's lock right now.
    pub fn is_locked(root: &Path) -> bool {
        match File::open(root.join(LOCK_FILE)) {
            Ok(file) => match file.try_lock_shared() {
                Ok(()) => {
                    let _ = file.unlock();
                    false
                }
                Err(_) => true,
            },
            Err(_) => false,
        }
    }
}

/// Takes the clone's exclusive lock, waiting up to `timeout`. The OS releases it when the
/// process ends, however it ends, so a killed run never blocks the next one.
fn take_lock(path: &Path, timeout: Duration) -> Result<File, RepoError> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    let started = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(RepoError::Io {
                    path: path.to_owned(),
                    source: e,
                })
            }
        }
        if started.elapsed() >= timeout {
            return Err(RepoError::Busy {
                path: path.to_owned(),
                waited: timeout,
            });
        }
        if !told {
            log::info!("waiting for another run to release {}", path.display());
            told = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Refuses a repository this tool did not create, unless it is a clone of the configured
/// data repository: committing snapshots into someone's project would be a nasty surprise.
fn check_ours(repo: &Repository, root: &Path, remote: Option<&str>) -> Result<(), RepoError> {
    let mut config = repo.config().ctx("read config")?;
    if config.get_bool(MARKER).unwrap_or(false) {
        return Ok(());
    }
    let origin = repo
        .find_remote(REMOTE_NAME)
        .ok()
        .and_then(|r| r.url().map(str::to_owned));
    match (origin, remote) {
        (Some(found), Some(expected)) if same_remote(&found, expected) => {
            config.set_bool(MARKER, true).ctx("write config")?;
            Ok(())
        }
        _ => Err(RepoError::NotOurs(root.to_owned())),
    }
}

/// Creates `<root>/.git` complete or not at all: initialised, marked as ours and given its
/// remote in a temporary directory, then renamed into place.
fn init_atomically(root: &Path, remote: Option<&str>) -> Result<(), RepoError> {
    let tmp = tempfile::Builder::new()
        .prefix(INIT_PREFIX)
        .tempdir_in(root)
        .map_err(io_err(root))?;
    {
        let mut opts = RepositoryInitOptions::new();
        opts.bare(true).initial_head(DEFAULT_BRANCH);
        let repo = Repository::init_opts(tmp.path(), &opts).ctx("init")?;
        repo.config()
            .ctx("init")?
            .set_bool(MARKER, true)
            .ctx("init")?;
        if let Some(url) = remote {
            repo.remote(REMOTE_NAME, url).ctx("add remote")?;
        }
    }
    let git_dir = root.join(".git");
    // A temporary directory is private (0700); a clone is as readable as git makes one, so
    // that a monitoring user can run `status`.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
            .map_err(io_err(tmp.path()))?;
    }
    fs::rename(tmp.path(), &git_dir).map_err(io_err(&git_dir))?;
    let _ = tmp.keep();
    Ok(())
}

/// Opens `<root>/.git`, telling "not a repository" apart from other failures.
fn open_git_dir(root: &Path) -> Result<Repository, RepoError> {
    Repository::open_bare(root.join(".git")).map_err(|e| match e.code() {
        ErrorCode::NotFound => RepoError::NotARepo(root.to_owned()),
        _ => RepoError::Git {
            context: "open".into(),
            source: e,
        },
    })
}

fn current_branch(repo: &Repository) -> Option<String> {
    let head = repo.find_reference("HEAD").ok()?;
    let target = head.symbolic_target()?;
    target.strip_prefix("refs/heads/").map(str::to_owned)
}

/// Makes sure the clone belongs to `remote`: sets `origin` on a new clone, refuses a clone of
/// another repository. Only the URL is stored, never a credential.
fn check_remote(repo: &Repository, root: &Path, remote: Option<&str>) -> Result<(), RepoError> {
    let Some(expected) = remote else {
        return Ok(());
    };
    match repo.find_remote(REMOTE_NAME) {
        Ok(found) => {
            let found = found.url().unwrap_or_default().to_owned();
            if !same_remote(&found, expected) {
                return Err(RepoError::OtherRemote {
                    path: root.to_owned(),
                    found,
                    expected: expected.to_owned(),
                });
            }
            Ok(())
        }
        Err(e) if e.code() == ErrorCode::NotFound => {
            repo.remote(REMOTE_NAME, expected).ctx("add remote")?;
            Ok(())
        }
        Err(e) => Err(RepoError::Git {
            context: "read remote".into(),
            source: e,
        }),
    }
}

/// Whether the `.git` at `git_dir` is a clone of `remote` (by its config file alone).
fn origin_is(git_dir: &Path, remote: Option<&str>) -> bool {
    let Some(expected) = remote else { return false };
    git2::Config::open(&git_dir.join("config"))
        .and_then(|c| c.get_string(&format!("remote.{REMOTE_NAME}.url")))
        .is_ok_and(|url| same_remote(&url, expected))
}

/// Whether the `.git` at `git_dir` says it is ours, read from its config file alone (for a
/// repository libgit2 cannot open).
fn marked_ours(git_dir: &Path) -> bool {
    git2::Config::open(&git_dir.join("config"))
        .and_then(|c| c.get_bool(MARKER))
        .unwrap_or(false)
}

/// Whether two remote URLs name the same data repository: equal but for trailing slashes, the
/// one difference a hand-edited config and git's own `origin` commonly show.
fn same_remote(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}
