//! Remote bookkeeping: where the remote's branch was last seen, which commits are queued for
//! it, when a push last succeeded, and the push-only settings of the handle. The network
//! itself is [`crate::publish::remote`]; this is what the clone remembers about it.

use std::fs;

use git2::{Oid, Repository};

use super::{write_file_atomically, DataRepo, GitContext, RepoError, REMOTE_NAME};

const LAST_PUSH_RECORD: &str = "gitcord-snapshot-last-push";

/// The layered configuration that turns off delta search for pushes (see `no_deltas_for_push`).
pub(crate) const PUSH_CONFIG: &str = "gitcord-snapshot-push.gitconfig";

impl DataRepo {
    /// The URL of the clone's `origin`, as stored (never with credentials).
    pub fn remote_url(&self) -> Option<String> {
        self.repo
            .find_remote(REMOTE_NAME)
            .ok()
            .and_then(|r| r.url().map(str::to_owned))
    }

    /// The remote-tracking ref: where the remote's branch was when last seen.
    pub fn tracking_ref(&self) -> String {
        format!("refs/remotes/{REMOTE_NAME}/{}", self.branch)
    }

    /// The remote branch tip as last seen, `None` if never seen.
    pub fn remote_tip(&self) -> Result<Option<Oid>, RepoError> {
        self.ref_target(&self.tracking_ref())
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
}

/// Makes this handle's pushes send each object whole instead of searching for deltas.
///
/// A push carries one snapshot: seven different files, between which no useful delta exists,
/// and the search was a fifth of a push's time. libgit2 reads its "never delta objects larger
/// than this" threshold from `pack.deltaCacheSize`; a one-byte value, layered over this handle's
/// configuration only (nothing in `.git/config` changes), turns the search off. Local packing
/// ([`DataRepo::pack_loose_objects`]) writes its own deltas (each file against its previous
/// version), which is what keeps the clone small: consecutive snapshots differ by a few lines.
pub(super) fn no_deltas_for_push(repo: &Repository) -> Result<(), RepoError> {
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
