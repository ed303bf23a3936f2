//! Health checks, stale files and rebuilds: what a run killed at any moment, or a damaged
//! disk, leaves in the clone, and how [`DataRepo::open`] gets back to a clone it can trust
//! (remove what is stale; set a damaged `.git` aside, never deleting it, and start a new one).

use std::fs;
use std::path::{Path, PathBuf};

use super::pack::loose_objects;
use super::vouched::{self, Stamp};
use super::{
    io_err, read_dir_entries, DataRepo, RepoError, BROKEN_PREFIX, INIT_PREFIX, TMP_PREFIX,
};
use crate::publish::tree::{snapshots_raw, walk_tree};
use crate::publish::treediff::{snapshot_changes, EntryTarget};
use crate::snapshot::SNAPSHOTS_DIR;

impl DataRepo {
    /// Checks that what a run reads and pushes is intact: `HEAD`, the branch and its
    /// remote-tracking ref, the tip's and the remote tip's trees, and every queued commit with
    /// the snapshot directories it adds, down to each file's bytes (inflated and hashed, so a
    /// truncated object is caught). Its cost follows the queue, not the history.
    pub(super) fn check_health(&self) -> Result<(), String> {
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
            // Read as stored and checked against its id (rawtree), kept for the commit.
            snapshots_raw(&self.repo, &tree).map_err(|e| format!("snapshots/: {}", e.message()))?;
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
            for (name, EntryTarget { id, .. }) in changes.added {
                walk_tree(&self.repo, id, |_| false, |_, _| Ok(())).map_err(|e| {
                    format!("snapshots/{name} of queued commit {oid}: {}", e.message())
                })?;
            }
        }
        check_other_refs(&self.repo, [self.branch_ref(), self.tracking_ref()])
    }
}

/// Every other branch and remote-tracking ref (the backup branch, local and as last seen) must
/// be readable and name a commit whose tree can be read: a run reads them (the backup's parent),
/// and one that cannot would fail every run with 74 instead of getting the clone rebuilt.
/// libgit2's reference iterator skips a loose ref it cannot parse, so the loose ones are found
/// by their files, the packed ones by the iterator, and each is read by name. Then what the
/// push of the other branches reads ([`check_other_queues`]); `ours` (the branch and its
/// remote-tracking ref) are checked above.
fn check_other_refs(repo: &git2::Repository, ours: [String; 2]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for dir in ["refs/heads", "refs/remotes"] {
        loose_refs(repo.path(), dir, &mut names);
        let mut refs = repo
            .references_glob(&format!("{dir}/*"))
            .map_err(|e| format!("{dir}: {}", e.message()))?;
        for name in refs.names() {
            names.insert(
                name.map_err(|e| format!("{dir}: {}", e.message()))?
                    .to_owned(),
            );
        }
    }
    for name in &names {
        let commit = repo
            .refname_to_id(name)
            .and_then(|oid| repo.find_commit(oid))
            .map_err(|e| format!("{name}: {}", e.message()))?;
        commit
            .tree()
            .map_err(|e| format!("the tree of {name}: {}", e.message()))?;
    }
    check_other_queues(repo, &ours, &names)
}

/// What a push of every other branch (the backup branch) reads must be in the clone, or that
/// push fails every run with 74, snapshots and all when they share the push, below tips that
/// read fine:
/// - every object a queued commit (one that no remote-tracking ref has) adds to its parent's
///   tree (one missing chunk of a queued backup);
/// - every object of the other remote-tracking tips (the remote's backup, as last seen): the
///   push deltas a changed chunk against its previous version there (a lost pack of pushed
///   chunks).
///
/// Trees are read, blobs looked up in the index: the cost follows what the queue adds and the
/// size of one backup tree (a few dozen trees, an index lookup per chunk), not the history.
fn check_other_queues(
    repo: &git2::Repository,
    ours: &[String; 2],
    names: &std::collections::BTreeSet<String>,
) -> Result<(), String> {
    // A purely local repository pushes nothing: no queue to check, and walking one would walk
    // the whole backup history on every run.
    if repo.remotes().map_or(true, |r| r.is_empty()) {
        return Ok(());
    }
    let others: Vec<&String> = names.iter().filter(|n| !ours.contains(n)).collect();
    let pushed: Vec<git2::Oid> = names
        .iter()
        .filter(|n| n.starts_with("refs/remotes/"))
        .filter_map(|n| repo.refname_to_id(n).ok())
        .collect();
    let odb = repo
        .odb()
        .map_err(|e| format!("the object database: {}", e.message()))?;
    for name in others {
        let failed = |e: git2::Error| format!("{name}: {}", e.message());
        if name.starts_with("refs/remotes/") {
            let tip = repo.refname_to_id(name).map_err(failed)?;
            let tree = repo
                .find_commit(tip)
                .and_then(|c| c.tree())
                .map_err(failed)?;
            check_added(repo, &odb, None, &tree).map_err(failed)?;
            continue;
        }
        let mut walk = repo.revwalk().map_err(failed)?;
        walk.push(repo.refname_to_id(name).map_err(failed)?)
            .map_err(failed)?;
        for oid in &pushed {
            walk.hide(*oid).map_err(failed)?;
        }
        for oid in walk {
            let commit = oid.and_then(|oid| repo.find_commit(oid)).map_err(failed)?;
            let parent = match commit.parent_count() {
                0 => None,
                _ => Some(commit.parent(0).and_then(|p| p.tree()).map_err(failed)?),
            };
            let tree = commit.tree().map_err(failed)?;
            check_added(repo, &odb, parent.as_ref(), &tree).map_err(|e| {
                format!(
                    "the queue of {name}: commit {}: {}",
                    commit.id(),
                    e.message()
                )
            })?;
        }
    }
    Ok(())
}

/// Every object of `tree` that `old` (the same place in the parent's tree) does not have:
/// trees read, blobs looked up in the index.
fn check_added(
    repo: &git2::Repository,
    odb: &git2::Odb<'_>,
    old: Option<&git2::Tree<'_>>,
    tree: &git2::Tree<'_>,
) -> Result<(), git2::Error> {
    for entry in tree.iter() {
        let before = old.and_then(|t| t.get_name_bytes(entry.name_bytes()));
        if before.as_ref().is_some_and(|b| b.id() == entry.id()) {
            continue;
        }
        match entry.kind() {
            Some(git2::ObjectType::Tree) => {
                let below = before
                    .filter(|b| b.kind() == Some(git2::ObjectType::Tree))
                    .and_then(|b| repo.find_tree(b.id()).ok());
                check_added(repo, odb, below.as_ref(), &repo.find_tree(entry.id())?)?;
            }
            Some(git2::ObjectType::Blob) if !odb.exists(entry.id()) => {
                return Err(git2::Error::from_str(&format!(
                    "object {} ({}) is missing",
                    entry.id(),
                    String::from_utf8_lossy(entry.name_bytes())
                )));
            }
            // A submodule's commit belongs to another repository.
            _ => {}
        }
    }
    Ok(())
}

/// The names of the loose ref files below `<git_dir>/<dir>`.
fn loose_refs(git_dir: &Path, dir: &str, out: &mut std::collections::BTreeSet<String>) {
    for e in read_dir_entries(&git_dir.join(dir)).unwrap_or_default() {
        let name = format!("{dir}/{}", e.file_name().to_string_lossy());
        match e.file_type() {
            Ok(t) if t.is_dir() => loose_refs(git_dir, &name, out),
            Ok(t) if t.is_file() => {
                out.insert(name);
            }
            _ => {}
        }
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
pub(super) fn recover(root: &Path) -> Result<(), RepoError> {
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
pub(super) fn recover_root(root: &Path) -> Result<(), RepoError> {
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

/// Moves `<root>/.git` aside as `.git.broken-<UTC time>` (kept, never deleted); returns its path.
pub(super) fn set_aside_dir(root: &Path, reason: &str) -> Result<PathBuf, RepoError> {
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
/// because libgit2 1.9 never returns from reading a truncated one. Each file is inflated once:
/// one found whole is recorded ([`super::vouched`]) and not read again while the file system
/// reports it unchanged. The clone packs its loose objects every few dozen snapshots, so this
/// looks at a bounded number of files.
pub(super) fn damaged_loose_objects(git_dir: &Path) -> Vec<PathBuf> {
    let before = vouched::read(git_dir);
    let mut now = vouched::Vouched::with_capacity(before.len() + 16);
    let mut bad = Vec::new();
    for (oid, path) in loose_objects(git_dir).unwrap_or_default() {
        let name = oid.to_string();
        let stamp = Stamp::of(&path);
        if let Some(stamp) = stamp.filter(|s| before.get(&name) == Some(s)) {
            now.insert(name, stamp);
        } else if let Some(object) = whole_loose_object(&path) {
            // Usually the tree of snapshots/ the last run wrote, which this run reads next:
            // kept, checked against its id, rather than read from the file again (rawtree).
            crate::publish::rawtree::offer(oid, object);
            if let Some(stamp) = stamp.filter(|s| Stamp::of(&path).as_ref() == Some(s)) {
                // Vouched for only if nothing changed the file while it was read.
                now.insert(name, stamp);
            }
        } else {
            bad.push(path);
        }
    }
    // Packing removes loose objects: the record follows, and is rewritten only when it changed.
    if now != before {
        vouched::write(git_dir, &now);
    }
    bad.sort();
    bad
}

/// The inflated object (`<type> <size>\0<size bytes>`) of a loose object file, when it
/// inflates completely into one; `None`: truncated or garbled.
fn whole_loose_object(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let bytes = fs::read(path).ok()?;
    let mut inflated = Vec::with_capacity(bytes.len() + bytes.len() / 2);
    let mut decoder = flate2::read::ZlibDecoder::new(&bytes[..]);
    decoder.read_to_end(&mut inflated).ok()?;
    // A stream cut short ends without its checksum: the decoder reports it as an error or as
    // fewer bytes than the header announces.
    let nul = inflated.iter().position(|b| *b == 0)?;
    let header = String::from_utf8_lossy(&inflated[..nul]);
    let (kind, size) = header.split_once(' ')?;
    let whole = ["commit", "tree", "blob", "tag"].contains(&kind)
        && size.parse::<usize>().ok() == Some(inflated.len() - nul - 1);
    whole.then_some(inflated)
}

/// Renames the damaged loose objects in the set-aside copy `aside` (found at those paths
/// under `git_dir`) to `<name>.damaged`: kept, but out of libgit2's sight, so that salvaging
/// from the copy reports them missing instead of hanging on them.
pub(super) fn quarantine<'a>(aside: &Path, bad: impl Iterator<Item = &'a PathBuf>, git_dir: &Path) {
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
