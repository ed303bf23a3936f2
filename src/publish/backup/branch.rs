//! The backup branch's refs and history: its tips here and as last seen on the remote, the
//! queue of backups not pushed yet, replaying them onto another writer's backups, and finding
//! the backup that names a snapshot (what restore and verify read).

use git2::{ErrorCode, ObjectType, Oid, Repository};

use crate::publish::clone::{DataRepo, GitContext, RepoError, REMOTE_NAME};
use crate::snapshot::backup::{self as format, Manifest};

pub(super) fn ref_target(repo: &Repository, name: &str) -> Result<Option<Oid>, RepoError> {
    match repo.refname_to_id(name) {
        Ok(oid) => Ok(Some(oid)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(RepoError::Git {
            context: format!("read {name}"),
            source: e,
        }),
    }
}

/// The local backup branch's tip.
pub fn local_tip(repo: &Repository, branch: &str) -> Result<Option<Oid>, RepoError> {
    ref_target(repo, &format!("refs/heads/{branch}"))
}

/// Where the remote's backup branch was when last seen.
pub fn remote_tip(repo: &Repository, branch: &str) -> Result<Option<Oid>, RepoError> {
    ref_target(repo, &tracking_ref(repo, branch))
}

/// The clone's name for the repository backups go to (`snapshots.backup_remote_url`), kept in
/// its `.git/config` (a URL without credentials) so that every command, `status` and `verify`
/// too, reads the same remote-tracking namespace as the run that pushed.
pub const BACKUP_REMOTE: &str = "backup";

/// `backup` when the backups have a repository of their own, else the data repository's
/// `origin`: the two namespaces never mix.
fn tracking_remote(repo: &Repository) -> &'static str {
    if repo.find_remote(BACKUP_REMOTE).is_ok() {
        BACKUP_REMOTE
    } else {
        REMOTE_NAME
    }
}

fn tracking_ref(repo: &Repository, branch: &str) -> String {
    format!("refs/remotes/{}/{branch}", tracking_remote(repo))
}

/// Records where backups go: `Some(url)` another repository, `None` the data repository.
/// When the repository changes, what was known of the old one is forgotten (its tracking
/// ref), so the first push to the new one sends the whole backup branch.
pub fn set_backup_remote(repo: &Repository, url: Option<&str>) -> Result<(), RepoError> {
    let current = repo
        .find_remote(BACKUP_REMOTE)
        .ok()
        .and_then(|r| r.url().map(str::to_owned));
    if current.as_deref() == url {
        return Ok(());
    }
    // Written to `.git/config` itself: the handle's highest configuration level is a file
    // layered over it for pushes only (`PUSH_CONFIG`), where a remote would not last.
    let mut config = git2::Config::open(&repo.path().join("config")).ctx("read config")?;
    if current.is_some() {
        for key in ["url", "fetch"] {
            match config.remove_multivar(&format!("remote.{BACKUP_REMOTE}.{key}"), ".*") {
                Err(e) if e.code() != ErrorCode::NotFound => {
                    return Err(e).ctx("forget the old backup repository")
                }
                _ => {}
            }
        }
    }
    // What was known of the old repository's branches.
    let leftovers: Vec<String> = repo
        .references_glob(&format!("refs/remotes/{BACKUP_REMOTE}/*"))
        .ctx("list backup tracking refs")?
        .filter_map(|r| r.ok().and_then(|r| r.name().map(str::to_owned)))
        .collect();
    for name in leftovers {
        repo.find_reference(&name)
            .and_then(|mut r| r.delete())
            .ctx("forget the old backup repository")?;
    }
    if let Some(url) = url {
        config
            .set_str(&format!("remote.{BACKUP_REMOTE}.url"), url)
            .and_then(|()| {
                config.set_str(
                    &format!("remote.{BACKUP_REMOTE}.fetch"),
                    &format!("+refs/heads/*:refs/remotes/{BACKUP_REMOTE}/*"),
                )
            })
            .ctx("record the backup repository")?;
    }
    Ok(())
}

pub(super) fn move_ref(
    repo: &Repository,
    branch: &str,
    expected: Option<Oid>,
    new: Oid,
    why: &str,
) -> Result<(), RepoError> {
    let name = format!("refs/heads/{branch}");
    let log = format!("gitcord-snapshot: {why}");
    match expected {
        Some(old) => repo.reference_matching(&name, new, true, old, &log),
        None => repo.reference(&name, new, false, &log),
    }
    .ctx("update the backup branch")?;
    Ok(())
}

/// Records where the remote's backup branch is (after a push that took it).
pub fn set_remote_tip(repo: &Repository, branch: &str, oid: Oid) -> Result<(), RepoError> {
    repo.reference(
        &tracking_ref(repo, branch),
        oid,
        true,
        "gitcord-snapshot: remote tip",
    )
    .ctx("update remote-tracking ref")?;
    Ok(())
}

/// Backup commits not yet on the remote, oldest first.
pub fn queued(data: &DataRepo, branch: &str) -> Result<Vec<Oid>, RepoError> {
    let repo = data.git();
    if repo.find_remote(tracking_remote(repo)).is_err() {
        return Ok(Vec::new());
    }
    let Some(tip) = local_tip(repo, branch)? else {
        return Ok(Vec::new());
    };
    let mut walk = repo.revwalk().ctx("walk backup queue")?;
    walk.push(tip).ctx("walk backup queue")?;
    if let Some(remote) = remote_tip(repo, branch)? {
        walk.hide(remote).ctx("walk backup queue")?;
    }
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
        .ctx("walk backup queue")?;
    walk.collect::<Result<Vec<_>, _>>().ctx("walk backup queue")
}

/// Brings the local backup branch up to date with the remote's (just fetched): fast-forward
/// when nothing is queued, otherwise our queued backup commits are made again on top of the
/// remote's (same trees, messages, authors and times; new parents), so no backup is lost
/// and history stays linear. Returns how many were replayed.
pub fn integrate(data: &DataRepo, branch: &str, remote: Option<Oid>) -> Result<usize, RepoError> {
    let repo = data.git();
    let Some(remote) = remote else {
        return Ok(0);
    };
    let Some(local) = local_tip(repo, branch)? else {
        move_ref(repo, branch, None, remote, "start from the remote backup")?;
        return Ok(0);
    };
    if local == remote
        || repo
            .graph_descendant_of(local, remote)
            .ctx("compare backup history")?
    {
        return Ok(0);
    }
    if repo
        .graph_descendant_of(remote, local)
        .ctx("compare backup history")?
    {
        move_ref(
            repo,
            branch,
            Some(local),
            remote,
            "fast-forward to the remote",
        )?;
        return Ok(0);
    }
    let queue = queued(data, branch)?;
    let mut base = remote;
    for oid in &queue {
        let commit = repo.find_commit(*oid).ctx("read queued backup")?;
        let tree = commit.tree().ctx("read tree")?;
        let parent = repo.find_commit(base).ctx("read backup tip")?;
        if parent.tree_id() == tree.id() {
            continue;
        }
        let message = String::from_utf8_lossy(commit.message_raw_bytes()).into_owned();
        base = data.make_commit(
            &commit.author(),
            &commit.committer(),
            &message,
            &tree,
            &[&parent],
        )?;
    }
    move_ref(
        repo,
        branch,
        Some(local),
        base,
        "replay queued backups onto the remote",
    )?;
    Ok(queue.len())
}

/// A backup commit found for a snapshot.
pub struct Found {
    /// The commit.
    pub commit: Oid,
    /// Its manifest.
    pub manifest: Manifest,
}

/// The backup commit naming snapshot `name`, on the local backup branch or (a clone that never
/// pushed, e.g. `git clone --bare` on a new host) the remote-tracking one.
pub fn find(repo: &Repository, branch: &str, name: &str) -> Result<Option<Found>, RepoError> {
    for tip in [local_tip(repo, branch)?, remote_tip(repo, branch)?]
        .into_iter()
        .flatten()
    {
        let mut walk = repo.revwalk().ctx("walk the backup branch")?;
        walk.push(tip).ctx("walk the backup branch")?;
        for oid in walk {
            let oid = oid.ctx("walk the backup branch")?;
            let commit = repo.find_commit(oid).ctx("read backup commit")?;
            let message = String::from_utf8_lossy(commit.message_raw_bytes()).into_owned();
            if format::snapshot_of_message(&message) != Some(name) {
                continue;
            }
            let manifest = read_manifest(repo, &commit.tree().ctx("read tree")?)?;
            if manifest.snapshot.name == name {
                return Ok(Some(Found {
                    commit: oid,
                    manifest,
                }));
            }
        }
    }
    Ok(None)
}

/// Whether the clone has any backup at all (local or remote-tracking branch).
pub fn exists(repo: &Repository, branch: &str) -> Result<bool, RepoError> {
    Ok(local_tip(repo, branch)?.is_some() || remote_tip(repo, branch)?.is_some())
}

/// The manifest of a backup commit's tree.
pub fn read_manifest(repo: &Repository, tree: &git2::Tree<'_>) -> Result<Manifest, RepoError> {
    let entry = tree
        .get_name(format::MANIFEST)
        .filter(|e| e.kind() == Some(ObjectType::Blob))
        .ok_or_else(|| RepoError::Git {
            context: "read backup.json".into(),
            source: git2::Error::from_str("the backup commit has no backup.json"),
        })?;
    let blob = repo.find_blob(entry.id()).ctx("read backup.json")?;
    Manifest::parse(blob.content()).map_err(|reason| RepoError::Git {
        context: "read backup.json".into(),
        source: git2::Error::from_str(&reason),
    })
}
