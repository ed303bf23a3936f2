//! `prune`: retention for the data repository. One commit removes the snapshot directories
//! no rule keeps from the tip (history keeps them: the data repository stays an audit trail);
//! it is pushed, or queued, like a snapshot.

use std::path::PathBuf;

use serde::Serialize;

use crate::commands::push::short;
use crate::commands::Render;
use crate::error::Error;
use crate::input::config::Config;
use crate::maintenance::retention::{self, Policy};
use crate::maintenance::verify::PRUNE_TRAILER;
use crate::publish::clone::DataRepo;
use crate::publish::session::{clone_dir, Session, Target};

/// What `prune` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Gitcord's config file.
    pub config: PathBuf,
    /// The clone and the remote.
    pub target: Target,
    /// The retention rules.
    pub policy: Policy,
    /// List what would be removed and kept; change nothing.
    pub dry_run: bool,
}

/// What a prune decided and did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `--dry-run`: nothing was changed.
    pub dry_run: bool,
    /// Snapshot names kept, oldest first.
    pub kept: Vec<String>,
    /// Snapshot names removed from the tip (or that would be, with `--dry-run`).
    pub removed: Vec<String>,
    /// The prune commit, unless dry-run or nothing to remove.
    pub commit: Option<String>,
    /// Where it was pushed, if it was.
    pub pushed_to: Option<String>,
}

impl Render for Report {
    fn text(&self) -> String {
        let mut lines = Vec::new();
        for name in &self.removed {
            lines.push(format!(
                "{} {name}",
                if self.dry_run {
                    "would remove"
                } else {
                    "removed"
                }
            ));
        }
        for name in &self.kept {
            lines.push(format!("keep {name}"));
        }
        if let Some(oid) = &self.commit {
            let pushed = self
                .pushed_to
                .as_ref()
                .map_or("not pushed (queued)".to_owned(), |u| {
                    format!("pushed to {u}")
                });
            lines.push(format!("committed the prune as {}; {pushed}", short(oid)));
        }
        lines.join("\n")
    }
}

/// Splits snapshot names into (kept, removed) by the policy. Directories that do not carry a
/// snapshot time are not ours to judge: always kept.
fn decide(policy: &Policy, names: &[String]) -> (Vec<String>, Vec<String>) {
    let (timed, foreign): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| retention::time_of(n).is_some());
    let times: Vec<_> = timed.iter().filter_map(|n| retention::time_of(n)).collect();
    let keep = policy.keep(&times);
    let mut kept: Vec<String> = foreign.into_iter().cloned().collect();
    let mut removed = Vec::new();
    for (i, name) in timed.into_iter().enumerate() {
        if keep.contains(&i) {
            kept.push(name.clone());
        } else {
            removed.push(name.clone());
        }
    }
    kept.sort();
    (kept, removed)
}

/// Runs one prune.
pub fn run(req: &Request) -> Result<Report, Error> {
    if req.policy.is_empty() {
        return Err(Error::Usage(
            "prune needs at least one --keep-* rule (without one it would remove every snapshot)"
                .into(),
        ));
    }
    let config = Config::load(&req.config)?;
    if req.dry_run {
        // Only reads: no lock, no network, nothing created.
        let repo = DataRepo::open_existing(&clone_dir(&config, req.target.clone_dir.as_deref())?)?;
        let (kept, removed) = decide(&req.policy, &repo.snapshot_names(None)?);
        return Ok(Report {
            dry_run: req.dry_run,
            kept,
            removed,
            commit: None,
            pushed_to: None,
        });
    }
    let mut session = Session::open(&config, &req.target)?;
    let names = session.repo.snapshot_names(None)?;
    let (kept, removed) = decide(&req.policy, &names);
    if removed.is_empty() {
        return Ok(Report {
            dry_run: req.dry_run,
            kept,
            removed,
            commit: None,
            pushed_to: None,
        });
    }
    let message = format!(
        "Gitcord snapshot prune: removed {} of {} snapshots\n\n{PRUNE_TRAILER}: {}\n",
        removed.len(),
        names.len(),
        req.policy.describe()
    );
    let now = chrono::Utc::now().timestamp();
    let commit = session
        .repo
        .commit_removal(&removed, &message, &session.publish.author, now)?;
    let pushed_to = match session.push() {
        Ok(url) => url,
        Err(e) => {
            let queued = session.repo.queued()?.len();
            return Err(Error::Push { source: e, queued });
        }
    };
    Ok(Report {
        dry_run: false,
        kept,
        removed,
        commit: commit.map(|c| c.to_string()),
        pushed_to,
    })
}
