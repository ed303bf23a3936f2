//! The persistent local clone of the data repository.
//!
//! The clone is a bare repository in `<clone_dir>/.git` plus a plain copy of the newest
//! snapshot in `<clone_dir>/snapshots/<name>/` for people to look at, and the lock file
//! `<clone_dir>/.gitcord-snapshot.lock` that keeps overlapping runs apart. Commits are built
//! directly from objects (no index, no checkout), so a run never reads, lists or checks out
//! past snapshots' files, and an hourly cron never fills the disk with a checkout of every
//! past snapshot. What still grows with the history is git's layout itself: each commit
//! writes a new `snapshots/` tree listing every snapshot directory, and libgit2's push reads
//! the remote tip's trees to leave them out (README, Performance).
//!
//! Crash safety comes from git's own design: objects are written before the branch moves, the
//! branch moves by an atomic compare-and-swap, and the working copy is replaced by rename.
//! A run killed at any moment leaves, at worst, unreferenced objects and a stale lock file,
//! which [`DataRepo::open`] cleans up under the clone lock.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant as Clock};

use git2::{ErrorCode, ObjectType, Oid, Repository, RepositoryInitOptions, Signature, Time, Tree};

use crate::publish::directory as output;
use crate::publish::signing::{self, AllowedSigners, SigningKey};
use crate::publish::treediff::snapshot_changes;
use crate::snapshot::format::{Latest, FILE_NAMES, LATEST_FILE};
use crate::snapshot::SNAPSHOTS_DIR;
use crate::time::Instant;

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

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RepoError + '_ {
    move |source| RepoError::Io {
        path: path.to_owned(),
        source,
    }
}

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
    pub at: Instant,
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
const LAST_PUSH_RECORD: &str = "gitcord-snapshot-last-push";
/// The layered configuration that turns off delta search for pushes (see `no_deltas_for_push`).
pub(crate) const PUSH_CONFIG: &str = "gitcord-snapshot-push.gitconfig";
/// Set in clones this tool created or adopted.
const MARKER: &str = "gitcord-snapshot.clone";
/// Prefix of the temporary directory a new `.git` is built in.
const INIT_PREFIX: &str = ".git.init-";
/// Prefix of every temporary file of ours (atomic writes), in the clone or in `.git`.
const TMP_PREFIX: &str = ".tmp-";
/// Prefix of a damaged `.git` set aside when the clone is rebuilt; never deleted.
pub const BROKEN_PREFIX: &str = ".git.broken-";
/// Written into a set-aside clone once its queue has been salvaged.
const SALVAGED_MARKER: &str = "gitcord-snapshot-salvaged";
/// How many packs the clone may hold before the small ones are merged.
const MAX_PACKS: usize = 16;
/// How many loose objects (about 11 per snapshot) accumulate before they are packed.
const LOOSE_OBJECT_LIMIT: usize = 512;
/// The remote-tracking namespace used for the data repository's remote.
pub const REMOTE_NAME: &str = "origin";

impl DataRepo {
    /// Opens the clone at `root`, creating it if `root` is missing or empty, and takes the
    /// clone lock (waiting up to `lock_timeout`). `remote` is the data repository's URL, or
    /// `None` for a purely local repository.
    pub fn open(
        root: &Path,
        remote: Option<&str>,
        lock_timeout: Duration,
    ) -> Result<DataRepo, RepoError> {
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
            branch: current_branch(&repo).unwrap_or_else(|| "main".to_owned()),
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
            data.branch = current_branch(&data.repo).unwrap_or_else(|| "main".to_owned());
        }
        // Every damaged clone set aside and not yet salvaged (also by a run killed before it
        // finished salvaging) is salvaged by this run.
        data.set_aside = unsalvaged(root)?;
        no_deltas_for_push(&data.repo)?;
        Ok(data)
    }

    /// Checks that what a run reads and pushes is intact: `HEAD`, the branch and its
    /// remote-tracking ref, the tip's and the remote tip's trees, and every queued commit with
    /// the snapshot directories it adds, down to each file's bytes (inflated and hashed, so a
    /// truncated object is caught). Its cost follows the queue, not the history.
    fn check_health(&self) -> Result<(), String> {
        let damaged = |what: &str, e: RepoError| format!("{what}: {e}");
        let tip = self.tip().map_err(|e| damaged("the branch", e))?;
        let remote = self
            .remote_tip()
            .map_err(|e| damaged("the remote-tracking branch", e))?;
        // In step with the remote (the usual hourly case) both are the same commit: read once.
        let remote = remote.filter(|r| Some(*r) != tip);
        for oid in tip.iter().chain(remote.iter()) {
            let commit = self
                .repo
                .find_commit(*oid)
                .map_err(|e| format!("commit {oid}: {}", e.message()))?;
            let tree = commit
                .tree()
                .map_err(|e| format!("the tree of commit {oid}: {}", e.message()))?;
            self.snapshots_tree(&tree)
                .map_err(|e| damaged("snapshots/", e))?;
        }
        for oid in self.queued().map_err(|e| damaged("the queue", e))? {
            let commit = self
                .repo
                .find_commit(oid)
                .map_err(|e| format!("queued commit {oid}: {}", e.message()))?;
            let parent = match commit.parent(0) {
                Ok(parent) => Some(
                    parent
                        .tree()
                        .map_err(|e| format!("the tree of {}: {}", parent.id(), e.message()))?,
                ),
                Err(_) if commit.parent_count() == 0 => None,
                Err(e) => {
                    return Err(format!(
                        "the parent of queued commit {oid}: {}",
                        e.message()
                    ))
                }
            };
            let tree = commit
                .tree()
                .map_err(|e| format!("the tree of queued commit {oid}: {}", e.message()))?;
            let changes = snapshot_changes(&self.repo, parent.as_ref(), &tree)
                .map_err(|e| format!("snapshots/ of queued commit {oid}: {}", e.message()))?;
            for (name, (id, _)) in changes.added {
                read_whole_tree(&self.repo, id).map_err(|e| {
                    format!("snapshots/{name} of queued commit {oid}: {}", e.message())
                })?;
            }
        }
        Ok(())
    }

    /// Replays onto the branch the snapshot commits that were queued in the damaged clones set
    /// aside and not yet salvaged, as far as they can still be read:
    /// each with its original message, author and times. A snapshot whose files cannot be
    /// read is left out with a warning; it stays in the set-aside copy. Returns how many
    /// commits were replayed.
    pub fn salvage(&self) -> Result<usize, RepoError> {
        let mut replayed = 0;
        for aside in &self.set_aside {
            replayed += self.salvage_from(aside)?;
            // Only now is this copy done with: a run killed before this line salvages it
            // again (replaying what is already on the branch changes nothing).
            write_file_atomically(&aside.join(SALVAGED_MARKER), b"salvaged\n")?;
        }
        Ok(replayed)
    }

    fn salvage_from(&self, aside: &Path) -> Result<usize, RepoError> {
        let old = match Repository::open_bare(aside) {
            Ok(old) => old,
            Err(e) => {
                log::warn!(
                    "nothing can be salvaged from {}: {}",
                    aside.display(),
                    e.message()
                );
                return Ok(0);
            }
        };
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
                    .filter(|oid| !is_backup_commit(&old, *oid))
                    .collect();
                (heads.len() == 1).then(|| heads[0])
            })
            .or_else(|| self.lost_tip(&old));
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
                snapshot_changes(&old, parent.as_ref(), &tree)
                    .or_else(|_| snapshot_changes(&old, None, &tree))
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
                match copy_tree(&old, &self.repo, entry.0) {
                    Ok(()) => added.push((name, entry)),
                    Err(e) => log::warn!(
                        "snapshots/{name} (commit {oid}) cannot be read from {}: {}; it is not salvaged",
                        aside.display(),
                        e.message()
                    ),
                }
            }
            let removed = changes.removed;
            let base = self.tip()?;
            let message = String::from_utf8_lossy(commit.message_raw_bytes()).into_owned();
            let (author, committer) = (commit.author().to_owned(), commit.committer().to_owned());
            match self.apply(base, &added, &removed, &author, &committer, &message) {
                Ok(Some(new)) => {
                    self.move_branch(base, new, "salvage a queued snapshot")?;
                    replayed += 1;
                }
                Ok(None) => {}
                // Another writer published the same name with other content meanwhile: the
                // snapshot stays in the set-aside copy for a person to look at.
                Err(RepoError::Conflict(name)) => log::warn!(
                    "snapshots/{name} (commit {oid} in {}) conflicts with the branch; not salvaged",
                    aside.display()
                ),
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
    /// among the commits in its objects that this clone lacks, the newest (by committer time,
    /// which is the snapshot time) that no other such commit has as its parent. A commit left
    /// over from an earlier replay holds the same snapshots as its replayed copy, so picking
    /// either loses nothing.
    fn lost_tip(&self, old: &Repository) -> Option<Oid> {
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
            .filter(|oid| self.repo.find_commit(*oid).is_err())
            .filter_map(|oid| old.find_commit(oid).ok())
            // Backup commits (their own branch) are never the snapshot branch's tip.
            .filter(|c| {
                crate::snapshot::backup::snapshot_of_message(&String::from_utf8_lossy(
                    c.message_raw_bytes(),
                ))
                .is_none()
            })
            .collect();
        let parents: std::collections::HashSet<Oid> =
            commits.iter().flat_map(|c| c.parent_ids()).collect();
        let tip = commits
            .iter()
            .filter(|c| !parents.contains(&c.id()))
            .max_by_key(|c| (c.committer().when().seconds(), c.id()))?
            .id();
        log::warn!(
            "the branch of {} cannot be read; salvaging from its newest unpublished commit {tip}",
            old.path().display()
        );
        Some(tip)
    }

    /// A new commit on `base` (none: an empty branch) whose `snapshots/` gains `added` and
    /// loses `removed`; `None` when that changes nothing. A name already present with other
    /// content is a conflict: published snapshots are never overwritten.
    fn apply(
        &self,
        base: Option<Oid>,
        added: &[(String, (Oid, i32))],
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
        let tree = self.with_latest(self.write_root(&base_tree, &target)?)?;
        if base.is_some() && tree == base_tree.id() {
            return Ok(None);
        }
        let tree = self.repo.find_tree(tree).ctx("read tree")?;
        let parents: Vec<&git2::Commit<'_>> = base_commit.iter().collect();
        let oid = self.make_commit(author, committer, message, &tree, &parents)?;
        Ok(Some(oid))
    }

    /// Opens an existing clone for reading (status, verify, diff, restore): no lock, no
    /// initialisation, no repair, so it never changes anything and never waits.
    pub fn open_existing(root: &Path) -> Result<DataRepo, RepoError> {
        if !root.exists() {
            return Err(RepoError::NoClone(root.to_owned()));
        }
        let repo = open_git_dir(root)?;
        let branch = current_branch(&repo).unwrap_or_else(|| "main".to_owned());
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

    /// Snapshot directory names at commit `at` (default: the branch tip), oldest first.
    /// Names start with a UTC timestamp, so name order is time order.
    pub fn snapshot_names(&self, at: Option<Oid>) -> Result<Vec<String>, RepoError> {
        let Some(commit) = at.map_or_else(|| self.tip(), |c| Ok(Some(c)))? else {
            return Ok(Vec::new());
        };
        let tree = self
            .repo
            .find_commit(commit)
            .ctx("read commit")?
            .tree()
            .ctx("read tree")?;
        let Some(sub) = self.snapshots_tree(&tree)? else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = sub
            .iter()
            .filter(|e| e.kind() == Some(ObjectType::Tree))
            .filter_map(|e| e.name().map(str::to_owned))
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    /// Resolves `latest`, `latest~N` (N snapshots before the newest) or a snapshot name
    /// against the branch tip.
    pub fn resolve_snapshot(&self, spec: &str) -> Result<String, RepoError> {
        let names = self.snapshot_names(None)?;
        let back = match spec {
            "latest" => Some(0),
            _ => spec
                .strip_prefix("latest~")
                .and_then(|n| n.parse::<usize>().ok()),
        };
        let found = match back {
            Some(n) => n
                .checked_add(1)
                .and_then(|k| names.len().checked_sub(k))
                .map(|i| names[i].clone()),
            None => names.iter().find(|n| n.as_str() == spec).cloned(),
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
        let tree = self
            .repo
            .find_commit(commit)
            .ctx("read commit")?
            .tree()
            .ctx("read tree")?;
        let sub = self
            .snapshots_tree(&tree)?
            .ok_or_else(|| RepoError::NoSuchSnapshot(name.to_owned()))?;
        let entry = sub
            .get_name(name)
            .ok_or_else(|| RepoError::NoSuchSnapshot(name.to_owned()))?;
        let dir = self.repo.find_tree(entry.id()).ctx("read snapshot")?;
        let mut files = Vec::new();
        for file in dir.iter() {
            let blob = self.repo.find_blob(file.id()).ctx("read snapshot file")?;
            files.push((
                String::from_utf8_lossy(file.name_bytes()).into_owned(),
                blob.content().to_vec(),
            ));
        }
        Ok(files)
    }

    /// The URL of the clone's `origin`, as stored (never with credentials).
    pub fn remote_url(&self) -> Option<String> {
        self.repo
            .find_remote(REMOTE_NAME)
            .ok()
            .and_then(|r| r.url().map(str::to_owned))
    }

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

    /// The remote-tracking ref: where the remote's branch was when last seen.
    pub fn tracking_ref(&self) -> String {
        format!("refs/remotes/{REMOTE_NAME}/{}", self.branch)
    }

    /// The local branch tip, `None` before the first snapshot.
    pub fn tip(&self) -> Result<Option<Oid>, RepoError> {
        self.ref_target(&self.branch_ref())
    }

    /// The remote branch tip as last seen, `None` if never seen.
    pub fn remote_tip(&self) -> Result<Option<Oid>, RepoError> {
        self.ref_target(&self.tracking_ref())
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

    /// Records where the remote branch is now (after a fetch or a successful push).
    pub fn set_remote_tip(&self, oid: Option<Oid>) -> Result<(), RepoError> {
        let name = self.tracking_ref();
        match oid {
            Some(oid) => {
                self.repo
                    .reference(&name, oid, true, "gitcord-snapshot: remote tip")
                    .ctx("update remote-tracking ref")?;
            }
            None => {
                if let Ok(mut r) = self.repo.find_reference(&name) {
                    r.delete().ctx("delete remote-tracking ref")?;
                }
            }
        }
        Ok(())
    }

    /// Commits not yet on the remote, oldest first: the push queue.
    pub fn queued(&self) -> Result<Vec<Oid>, RepoError> {
        // A purely local repository publishes nowhere: nothing is waiting, and counting would
        // walk the whole history on every run.
        if self.repo.find_remote(REMOTE_NAME).is_err() {
            return Ok(Vec::new());
        }
        let Some(tip) = self.tip()? else {
            return Ok(Vec::new());
        };
        let mut walk = self.repo.revwalk().ctx("walk queue")?;
        walk.push(tip).ctx("walk queue")?;
        if let Some(remote) = self.remote_tip()? {
            walk.hide(remote).ctx("walk queue")?;
        }
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
            .ctx("walk queue")?;
        walk.collect::<Result<Vec<_>, _>>().ctx("walk queue")
    }

    /// The snapshot time (unix seconds) of the oldest queued commit.
    pub fn oldest_queued_time(&self) -> Result<Option<i64>, RepoError> {
        let Some(oldest) = self.queued()?.first().copied() else {
            return Ok(None);
        };
        Ok(Some(
            self.repo
                .find_commit(oldest)
                .ctx("read queued commit")?
                .committer()
                .when()
                .seconds(),
        ))
    }

    /// Remembers that a push succeeded now, for `status` and the metrics.
    pub fn record_push_success(&self, at: i64) -> Result<(), RepoError> {
        write_file_atomically(
            &self.repo.path().join(LAST_PUSH_RECORD),
            at.to_string().as_bytes(),
        )
    }

    /// When a push last succeeded (unix seconds), if ever.
    pub fn last_push_success(&self) -> Option<i64> {
        fs::read_to_string(self.repo.path().join(LAST_PUSH_RECORD))
            .ok()?
            .trim()
            .parse()
            .ok()
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
        let root = self.with_latest(self.write_root(&base, &entries)?)?;
        let tree = self.repo.find_tree(root).ctx("read tree")?;
        let sig =
            Signature::new(&author.name, &author.email, &Time::new(at, 0)).ctx("make signature")?;
        let oid = self.make_commit(&sig, &sig, message, &tree, &[&parent_commit])?;
        self.move_branch(Some(parent), oid, "prune")?;
        Ok(Some(oid))
    }

    /// Moves the local branch from `expected` to `new`, failing if it moved in between.
    fn move_branch(&self, expected: Option<Oid>, new: Oid, why: &str) -> Result<(), RepoError> {
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
        let before = match commit.parent_count() {
            0 => HashMap::new(),
            _ => self.snapshot_entries(
                &commit
                    .parent(0)
                    .ctx("read parent")?
                    .tree()
                    .ctx("read tree")?,
            )?,
        };
        let after = self.snapshot_entries(&commit.tree().ctx("read tree")?)?;
        let added: Vec<(String, (Oid, i32))> = after
            .iter()
            .filter(|(name, entry)| before.get(*name) != Some(entry))
            .map(|(n, e)| (n.clone(), *e))
            .collect();
        let removed: Vec<String> = before
            .keys()
            .filter(|n| !after.contains_key(*n))
            .cloned()
            .collect();
        let message = String::from_utf8_lossy(commit.message_raw_bytes()).into_owned();
        let replayed = self.apply(
            Some(base),
            &added,
            &removed,
            &commit.author(),
            &commit.committer(),
            &message,
        )?;
        // Everything was already there: nothing to replay.
        Ok(replayed.unwrap_or(base))
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

    /// Chooses the readers' index file at the root (`snapshots.latest_file`); `None` turns it
    /// off (an existing one is then left as it is).
    pub fn set_latest_file(&mut self, name: Option<String>) {
        self.latest_file = name;
    }

    /// The readers' index file name, if on.
    pub fn latest_file(&self) -> Option<&str> {
        self.latest_file.as_deref()
    }

    /// Root tree `root` with the readers' index describing its newest snapshot directory (by
    /// name) that is a readable snapshot; without any, the index is removed. Derived from the
    /// tree alone, so a replay onto another writer's commits recomputes it, and the same tree
    /// always gets the same index.
    fn with_latest(&self, root: Oid) -> Result<Oid, RepoError> {
        let Some(file) = &self.latest_file else {
            return Ok(root);
        };
        let tree = self.repo.find_tree(root).ctx("read tree")?;
        let content = latest_for(&self.repo, &tree)?;
        let mut builder = self.repo.treebuilder(Some(&tree)).ctx("build tree")?;
        match content {
            Some(bytes) => {
                let blob = self.repo.blob(&bytes).ctx("write file")?;
                builder.insert(file, blob, 0o100644).ctx("build tree")?;
            }
            None => {
                if builder.get(file).ctx("build tree")?.is_some() {
                    builder.remove(file).ctx("build tree")?;
                }
            }
        }
        builder.write().ctx("write tree")
    }

    /// Entries of `snapshots/` in `tree`: name → (object id, mode).
    fn snapshot_entries(&self, tree: &Tree<'_>) -> Result<HashMap<String, (Oid, i32)>, RepoError> {
        let Some(sub) = self.snapshots_tree(tree)? else {
            return Ok(HashMap::new());
        };
        Ok(sub
            .iter()
            .filter_map(|e| e.name().map(|n| (n.to_owned(), (e.id(), e.filemode()))))
            .collect())
    }

    fn snapshots_tree<'r>(&'r self, tree: &Tree<'_>) -> Result<Option<Tree<'r>>, RepoError> {
        match tree.get_name(SNAPSHOTS_DIR) {
            Some(entry) if entry.kind() == Some(ObjectType::Tree) => Ok(Some(
                self.repo.find_tree(entry.id()).ctx("read snapshots/")?,
            )),
            _ => Ok(None),
        }
    }

    /// `base` with its `snapshots/` replaced by `entries`.
    fn write_root(
        &self,
        base: &Tree<'_>,
        entries: &HashMap<String, (Oid, i32)>,
    ) -> Result<Oid, RepoError> {
        let mut sub = self.repo.treebuilder(None).ctx("build tree")?;
        for (name, (oid, mode)) in entries {
            sub.insert(name, *oid, *mode).ctx("build tree")?;
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

        let existing = match &base_tree {
            Some(tree) => self.snapshots_tree(tree)?,
            None => None,
        };
        if let Some(entry) = existing.as_ref().and_then(|t| t.get_name(snap.name)) {
            return match (entry.id() == dir, parent) {
                (true, Some(p)) => Ok(Committed::AlreadyPresent(p)),
                _ => Err(RepoError::Conflict(snap.name.to_owned())),
            };
        }
        // Add one entry to snapshots/ without re-listing it through a map.
        let mut sub = self.repo.treebuilder(existing.as_ref()).ctx("build tree")?;
        sub.insert(snap.name, dir, 0o040000).ctx("build tree")?;
        let sub = sub.write().ctx("write tree")?;
        let mut root = self
            .repo
            .treebuilder(base_tree.as_ref())
            .ctx("build tree")?;
        root.insert(SNAPSHOTS_DIR, sub, 0o040000)
            .ctx("build tree")?;
        let root = self.with_latest(root.write().ctx("write tree")?)?;
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

    /// The newest snapshot directory on the branch and its files' bytes, for comparisons.
    ///
    /// The newest is the greatest name, as [`DataRepo::snapshot_names`] orders them; found in
    /// one pass instead of copying and sorting every name of the history on every run.
    pub fn newest_snapshot(&self) -> Result<Option<StoredSnapshot>, RepoError> {
        let Some(tip) = self.tip()? else {
            return Ok(None);
        };
        let tree = self
            .repo
            .find_commit(tip)
            .ctx("read commit")?
            .tree()
            .ctx("read tree")?;
        let Some(sub) = self.snapshots_tree(&tree)? else {
            return Ok(None);
        };
        let newest = sub
            .iter()
            .filter(|e| e.kind() == Some(ObjectType::Tree) && e.name().is_some())
            .max_by(|a, b| a.name_bytes().cmp(b.name_bytes()));
        let Some(name) = newest.and_then(|e| e.name().map(str::to_owned)) else {
            return Ok(None);
        };
        let files = self.read_snapshot(&name)?;
        Ok(Some((name, files)))
    }

    /// Shows `name` in the working copy and removes the one shown before, so only the newest
    /// snapshot is ever checked out.
    pub fn update_view(&self, name: &str, files: &[(&str, Vec<u8>)]) -> Result<(), RepoError> {
        let view_root = self.root.join(SNAPSHOTS_DIR);
        let dest = view_root.join(name);
        if !dest.exists() {
            output::write_dir_atomically(&dest, files, output::Durability::Unsynced).map_err(
                |e| match e {
                    output::OutputError::Io { path, source } => RepoError::Io { path, source },
                    output::OutputError::Exists(path) => RepoError::Io {
                        path,
                        source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                    },
                },
            )?;
        }
        crate::pause::point("view");
        // Everything else in the view is an older snapshot (also one a killed run left next to
        // the new one): the view holds only ours, so it all goes.
        for e in read_dir_entries(&view_root)? {
            let other = e.file_name().to_string_lossy().into_owned();
            if other != name
                && is_plain_name(&other)
                && !other.starts_with('.')
                && e.path().is_dir()
            {
                fs::remove_dir_all(e.path()).map_err(io_err(&e.path()))?;
            }
        }
        Ok(())
    }

    /// Moves loose objects into one pack once enough have accumulated.
    ///
    /// libgit2 writes each new object as its own file at the fastest (weakest) compression, so
    /// a clone of loose objects takes about twice the remote's space. Packing them every few
    /// dozen snapshots keeps the clone near the remote's size; the work is bounded by the loose
    /// objects (never the whole history), and lookups stay cheap because packs are few.
    /// Returns how many objects were packed.
    pub fn pack_loose_objects(&self) -> Result<usize, RepoError> {
        let objects = self.repo.path().join("objects");
        let mut loose = Vec::new();
        for dir in fs::read_dir(&objects)
            .map_err(io_err(&objects))?
            .filter_map(Result::ok)
        {
            let prefix = dir.file_name().to_string_lossy().into_owned();
            if prefix.len() != 2 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            for file in fs::read_dir(dir.path())
                .map_err(io_err(&dir.path()))?
                .filter_map(Result::ok)
            {
                let rest = file.file_name().to_string_lossy().into_owned();
                if let Ok(oid) = Oid::from_str(&format!("{prefix}{rest}")) {
                    loose.push((oid, file.path()));
                }
            }
        }
        if loose.len() < LOOSE_OBJECT_LIMIT {
            return Ok(0);
        }
        let oids: Vec<Oid> = loose.iter().map(|(oid, _)| *oid).collect();
        self.write_pack(&oids)?;
        // Only now that the pack and its index are in place do the loose copies go.
        for (_, path) in &loose {
            fs::remove_file(path).map_err(io_err(path))?;
        }
        for (_, path) in &loose {
            if let Some(dir) = path.parent() {
                let _ = fs::remove_dir(dir); // only succeeds once empty
            }
        }
        self.merge_small_packs()?;
        Ok(loose.len())
    }

    /// Writes one pack, with deltas, holding `oids`; the pack and its index are in place
    /// (renamed, fsynced) when this returns.
    fn write_pack(&self, oids: &[Oid]) -> Result<(), RepoError> {
        // A fresh handle, without the push's no-delta setting: here deltas are the point.
        let repo = Repository::open_bare(self.repo.path()).ctx("pack objects")?;
        let mut pack = repo.packbuilder().ctx("pack objects")?;
        for oid in oids {
            pack.insert_object(*oid, None).ctx("pack objects")?;
        }
        let odb = repo.odb().ctx("pack objects")?;
        let mut writer = odb.packwriter().ctx("pack objects")?;
        let mut write_error = None;
        pack.foreach(
            |bytes| match std::io::Write::write_all(&mut writer, bytes) {
                Ok(()) => {
                    crate::pause::point("pack");
                    true
                }
                Err(e) => {
                    write_error = Some(e);
                    false
                }
            },
        )
        .ctx("pack objects")?;
        if let Some(e) = write_error {
            return Err(RepoError::Io {
                path: self.repo.path().join("objects/pack"),
                source: e,
            });
        }
        writer.commit().ctx("pack objects")?;
        Ok(())
    }

    /// Keeps the number of packs small: each packing adds one (about one per 43 hourly runs),
    /// and every lookup, and libgit2's push, which reads every tree of the remote tip, goes
    /// through all of them, one open file each. Past [`MAX_PACKS`], every pack but the largest
    /// is merged into one (like `git repack --geometric`, without rewriting the big one), so
    /// the work follows the recent objects, not the history. The old packs go only once the
    /// merged one is in place; a run killed in between leaves duplicates, which the next merge
    /// removes.
    fn merge_small_packs(&self) -> Result<(), RepoError> {
        let dir = self.repo.path().join("objects/pack");
        let mut packs: Vec<(u64, PathBuf)> = read_dir_entries(&dir)?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "pack") && !p.with_extension("keep").exists()
            })
            .filter_map(|p| fs::metadata(&p).ok().map(|m| (m.len(), p)))
            .collect();
        if packs.len() <= MAX_PACKS {
            return Ok(());
        }
        packs.sort();
        packs.pop(); // the largest stays as it is
        let mut oids = Vec::new();
        for (_, pack) in &packs {
            oids.extend(pack_index_oids(&pack.with_extension("idx"))?);
        }
        oids.sort_unstable();
        oids.dedup();
        log::info!(
            "merging {} packs ({} objects) into one",
            packs.len(),
            oids.len()
        );
        self.write_pack(&oids)?;
        for (_, pack) in &packs {
            // The merged pack can come out identical to one of them, under the same name.
            if pack_index_oids(&pack.with_extension("idx")).is_ok_and(|ids| ids.len() == oids.len())
            {
                continue;
            }
            for ext in ["idx", "rev", "pack"] {
                let path = pack.with_extension(ext);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(RepoError::Io { path, source: e }),
                }
            }
        }
        Ok(())
    }
}

/// A snapshot directory as committed: its name and its files (name, bytes).
pub type StoredSnapshot = (String, Vec<(String, Vec<u8>)>);

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

/// Whether `oid` is a commit of the backup branch (publish/backup.rs), which salvage skips:
/// that branch is never the snapshot branch, and a rebuilt clone backs everything up again.
fn is_backup_commit(repo: &Repository, oid: Oid) -> bool {
    repo.find_commit(oid).is_ok_and(|c| {
        crate::snapshot::backup::snapshot_of_message(&String::from_utf8_lossy(
            c.message_raw_bytes(),
        ))
        .is_some()
    })
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}

fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    output::write_file_atomically(path, bytes, 0o644).map_err(io_err(path))
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
    let started = Clock::now();
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

/// Makes this handle's pushes send each object whole instead of searching for deltas.
///
/// A push carries one snapshot: seven different files, between which no useful delta exists,
/// and the search was a fifth of a push's time. libgit2 reads its "never delta objects larger
/// than this" threshold from `pack.deltaCacheSize`; a one-byte value, layered over this handle's
/// configuration only (nothing in `.git/config` changes), turns the search off. Local packing
/// ([`DataRepo::pack_loose_objects`]) uses a separate handle and keeps its deltas, which is what
/// keeps the clone small: consecutive snapshots differ by a few lines.
fn no_deltas_for_push(repo: &Repository) -> Result<(), RepoError> {
    let path = repo.path().join(PUSH_CONFIG);
    if !path.exists() {
        write_file_atomically(&path, b"# written by gitcord-snapshot: no delta search when pushing\n[pack]\n\tdeltaCacheSize = 1\n")?;
    }
    let mut config = repo.config().ctx("read config")?;
    config
        .add_file(&path, git2::ConfigLevel::App, true)
        .ctx("read config")?;
    Ok(())
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
        (Some(found), Some(expected))
            if found.trim_end_matches('/') == expected.trim_end_matches('/') =>
        {
            config.set_bool(MARKER, true).ctx("write config")?;
            Ok(())
        }
        _ => Err(RepoError::NotOurs(root.to_owned())),
    }
}

/// Undoes what a killed run can leave behind, by principle rather than by list: under the
/// clone lock no other process of ours touches the clone, so every lock file git or libgit2
/// takes, every temporary object or pack they write, and every temporary file of ours is
/// stale. Each is removed with one warning line. Runs once the repository is known to be ours
/// and before anything writes.
///
/// The rule is tied to where each kind of file lives, so nothing live is matched:
/// * `*.lock` at the top of `.git` (`HEAD`, `config`, `packed-refs`, `FETCH_HEAD`,
///   `shallow`, `index`, ...) and anywhere under `refs/`, `logs/` and `objects/` (a ref name
///   can never end in `.lock`, git forbids it);
/// * under `objects/`: git's `tmp_obj_*`, `tmp_pack_*`, `tmp_idx_*` and libgit2's
///   `tmp_object_git2_*`, `pack_git2_*`;
/// * our own `.tmp-*` files (atomic writes) at the top of `.git` and of the clone, and
///   half-written snapshot directories `snapshots/.tmp-*` of the working copy.
fn recover(root: &Path) -> Result<(), RepoError> {
    recover_root(root)?;
    let git_dir = root.join(".git");
    let mut stale = Vec::new();
    for e in read_dir_entries(&git_dir)? {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_file() && (name.ends_with(".lock") || name.starts_with(TMP_PREFIX)) {
            stale.push(e.path());
        }
    }
    find_stale(&git_dir.join("refs"), &|n| n.ends_with(".lock"), &mut stale)?;
    find_stale(&git_dir.join("logs"), &|n| n.ends_with(".lock"), &mut stale)?;
    let in_objects =
        |n: &str| n.ends_with(".lock") || n.starts_with("tmp_") || n.contains("_git2_");
    find_stale(&git_dir.join("objects"), &in_objects, &mut stale)?;
    for path in &stale {
        remove_stale(path)?;
    }
    Ok(())
}

/// Our own leftovers outside `.git`: a half-initialised `.git.init-*`, temporary files of
/// atomic writes, half-written snapshot directories of the working copy.
fn recover_root(root: &Path) -> Result<(), RepoError> {
    for e in read_dir_entries(root)? {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(INIT_PREFIX) || name.starts_with(TMP_PREFIX) {
            remove_stale(&e.path())?;
        }
    }
    for e in read_dir_entries(&root.join(SNAPSHOTS_DIR))? {
        if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            remove_stale(&e.path())?;
        }
    }
    Ok(())
}

fn remove_stale(path: &Path) -> Result<(), RepoError> {
    log::warn!("removing {} left by an interrupted run", path.display());
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    if meta.is_dir() {
        fs::remove_dir_all(path).map_err(io_err(path))
    } else {
        fs::remove_file(path).map_err(io_err(path))
    }
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

/// Collects every file below `dir` whose name `stale` accepts.
fn find_stale(
    dir: &Path,
    stale: &dyn Fn(&str) -> bool,
    out: &mut Vec<PathBuf>,
) -> Result<(), RepoError> {
    for e in read_dir_entries(dir)? {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            find_stale(&e.path(), stale, out)?;
        } else if stale(&name) {
            out.push(e.path());
        }
    }
    Ok(())
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
        opts.bare(true).initial_head("main");
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
            if found.trim_end_matches('/') != expected.trim_end_matches('/') {
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

/// Moves `<root>/.git` aside as `.git.broken-<UTC time>` (kept, never deleted); returns its path.
fn set_aside_dir(root: &Path, reason: &str) -> Result<PathBuf, RepoError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    let aside = root.join(format!("{BROKEN_PREFIX}{stamp}"));
    let git_dir = root.join(".git");
    log::warn!(
        "the clone's repository is damaged ({}); moving it aside to {} (kept, never deleted) and \
         rebuilding it from the remote",
        crate::text::one_line(reason),
        aside.display()
    );
    fs::rename(&git_dir, &aside).map_err(io_err(&git_dir))?;
    Ok(aside)
}

/// The loose objects below `git_dir` whose file cannot be inflated whole into a well-formed
/// object (`<type> <size>\0` and exactly that many bytes): truncated or garbled. Read here
/// because libgit2 1.9 never returns from reading a truncated one. The clone packs its loose
/// objects every few dozen snapshots, so this reads a bounded number of small files.
fn damaged_loose_objects(git_dir: &Path) -> Vec<PathBuf> {
    let mut bad = Vec::new();
    for dir in read_dir_entries(&git_dir.join("objects")).unwrap_or_default() {
        let prefix = dir.file_name().to_string_lossy().into_owned();
        if prefix.len() != 2 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        for file in read_dir_entries(&dir.path()).unwrap_or_default() {
            let rest = file.file_name().to_string_lossy().into_owned();
            if rest.len() != 38 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            if !loose_object_is_whole(&file.path()) {
                bad.push(file.path());
            }
        }
    }
    bad.sort();
    bad
}

/// Whether a loose object file inflates completely into `<type> <size>\0<size bytes>`.
fn loose_object_is_whole(path: &Path) -> bool {
    use std::io::Read as _;
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    let mut inflated = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(&bytes[..]);
    if decoder.read_to_end(&mut inflated).is_err() {
        return false;
    }
    // A stream cut short ends without its checksum: the decoder reports it as an error or as
    // fewer bytes than the header announces.
    let Some(nul) = inflated.iter().position(|b| *b == 0) else {
        return false;
    };
    let header = String::from_utf8_lossy(&inflated[..nul]);
    let Some((kind, size)) = header.split_once(' ') else {
        return false;
    };
    ["commit", "tree", "blob", "tag"].contains(&kind)
        && size.parse::<usize>().ok() == Some(inflated.len() - nul - 1)
}

/// Renames the damaged loose objects in the set-aside copy `aside` (found at those paths
/// under `git_dir`) to `<name>.damaged`: kept, but out of libgit2's sight, so that salvaging
/// from the copy reports them missing instead of hanging on them.
fn quarantine<'a>(aside: &Path, bad: impl Iterator<Item = &'a PathBuf>, git_dir: &Path) {
    for path in bad {
        let Ok(rel) = path.strip_prefix(git_dir) else {
            continue;
        };
        let from = aside.join(rel);
        let mut to = from.clone().into_os_string();
        to.push(".damaged");
        log::warn!(
            "damaged loose object {} kept as {}",
            from.display(),
            PathBuf::from(&to).display()
        );
        if let Err(e) = fs::rename(&from, &to) {
            log::warn!("cannot rename {}: {e}", from.display());
        }
    }
}

/// Reads every object of tree `id`, blobs inflated and hashed: an error names what is damaged.
fn read_whole_tree(repo: &Repository, id: Oid) -> Result<(), git2::Error> {
    let tree = repo.find_tree(id)?;
    for e in tree.iter() {
        match e.kind() {
            Some(ObjectType::Tree) => read_whole_tree(repo, e.id())?,
            Some(ObjectType::Blob) => {
                repo.find_blob(e.id())?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Copies tree `id` and everything below it from `from` to `to`, object by object (same ids),
/// skipping what `to` already has.
fn copy_tree(from: &Repository, to: &Repository, id: Oid) -> Result<(), git2::Error> {
    let (src, dst) = (from.odb()?, to.odb()?);
    let mut pending = vec![id];
    while let Some(oid) = pending.pop() {
        if dst.exists(oid) {
            continue;
        }
        let object = src.read(oid)?;
        if object.kind() == ObjectType::Tree {
            pending.extend(
                from.find_tree(oid)?
                    .iter()
                    .filter(|e| e.filemode() != 0o160000)
                    .map(|e| e.id()),
            );
        }
        let written = dst.write(object.kind(), object.data())?;
        if written != oid {
            return Err(git2::Error::from_str(&format!(
                "object {oid} reads back as {written}"
            )));
        }
    }
    Ok(())
}

/// The readers' index (`latest.json`) that root tree `tree` should hold: its newest snapshot
/// directory, by name, that is a readable snapshot; `None` when it has none. `verify` checks
/// every committed index against this.
pub(crate) fn latest_for(repo: &Repository, tree: &Tree<'_>) -> Result<Option<Vec<u8>>, RepoError> {
    let Some(entry) = tree
        .get_name(SNAPSHOTS_DIR)
        .filter(|e| e.kind() == Some(ObjectType::Tree))
    else {
        return Ok(None);
    };
    let sub = repo.find_tree(entry.id()).ctx("read snapshots/")?;
    // Runs on every commit, over a `snapshots/` of every hour of the history: count the
    // directories without copying a name, and read only from the newest end.
    let count = sub
        .iter()
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .count();
    // Git lists directories in name order: the newest is last.
    let dirs = sub
        .iter()
        .rev()
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .filter_map(|e| e.name().map(|n| (n.to_owned(), e.id())));
    for (name, id) in dirs {
        let dir = repo.find_tree(id).ctx("read snapshot")?;
        let mut files = Vec::with_capacity(FILE_NAMES.len());
        for f in FILE_NAMES {
            if let Some(e) = dir.get_name(f) {
                files.push((
                    f,
                    repo.find_blob(e.id())
                        .ctx("read snapshot file")?
                        .content()
                        .to_vec(),
                ));
            }
        }
        if let Some(latest) = Latest::describe(&name, &files, count) {
            let bytes = latest.render().map_err(|e| RepoError::Git {
                context: "render the readers' index".into(),
                source: git2::Error::from_str(&e.to_string()),
            })?;
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

/// Every damaged clone set aside in `root`, oldest first, and whether its queue was salvaged
/// (for `status`: the copies are never deleted, an operator may want to look at them).
pub fn set_aside_copies(root: &Path) -> Vec<(PathBuf, bool)> {
    let mut out: Vec<(PathBuf, bool)> = read_dir_entries(root)
        .unwrap_or_default()
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
    out
}

/// The damaged clones set aside in `root` whose queue has not been salvaged yet, oldest first
/// (their names sort by the time they were set aside).
fn unsalvaged(root: &Path) -> Result<Vec<PathBuf>, RepoError> {
    let mut out: Vec<PathBuf> = read_dir_entries(root)?
        .into_iter()
        .filter(|e| e.file_name().to_string_lossy().starts_with(BROKEN_PREFIX))
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.join(SALVAGED_MARKER).exists())
        .collect();
    out.sort();
    Ok(out)
}

/// Whether the `.git` at `git_dir` is a clone of `remote` (by its config file alone).
fn origin_is(git_dir: &Path, remote: Option<&str>) -> bool {
    let Some(expected) = remote else { return false };
    git2::Config::open(&git_dir.join("config"))
        .and_then(|c| c.get_string(&format!("remote.{REMOTE_NAME}.url")))
        .is_ok_and(|url| url.trim_end_matches('/') == expected.trim_end_matches('/'))
}

/// Whether the `.git` at `git_dir` says it is ours, read from its config file alone (for a
/// repository libgit2 cannot open).
fn marked_ours(git_dir: &Path) -> bool {
    git2::Config::open(&git_dir.join("config"))
        .and_then(|c| c.get_bool(MARKER))
        .unwrap_or(false)
}

/// The object ids a pack index (version 2, the only one git and libgit2 write) lists.
fn pack_index_oids(idx: &Path) -> Result<Vec<Oid>, RepoError> {
    let bytes = fs::read(idx).map_err(io_err(idx))?;
    let bad = || RepoError::Io {
        path: idx.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a version 2 pack index",
        ),
    };
    if bytes.get(..8) != Some(&[0xff, b't', b'O', b'c', 0, 0, 0, 2][..]) {
        return Err(bad());
    }
    // 256 big-endian counts follow the header; the last is the number of objects, whose ids
    // come next, 20 bytes each, sorted.
    let count = bytes.get(8 + 255 * 4..8 + 256 * 4).ok_or_else(bad)?;
    let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]) as usize;
    let start = 8 + 256 * 4;
    let ids = bytes.get(start..start + count * 20).ok_or_else(bad)?;
    ids.chunks_exact(20)
        .map(|id| Oid::from_bytes(id).map_err(|_| bad()))
        .collect()
}
