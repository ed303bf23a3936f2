//! `push`: the cron job. Builds the snapshot as `export` does, commits it into the persistent
//! clone, and pushes everything queued, in order.
//!
//! The commit always happens before the network is touched for the push, so a failed push
//! loses nothing: the commit waits in the clone and the next run sends it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::Oid;

use crate::audit::{self, SnapshotContext};
use crate::commands::export::{build_snapshot, Inputs};
use crate::config::Config;
use crate::error::Error;
use crate::remote::{self, RemoteError, RemoteSpec, Token, UrlKind};
use crate::repo::{Author, Committed, DataRepo, SnapshotFiles};
use crate::serialize;
use crate::snapshot::FILE_NAMES;
use crate::timefmt;

/// Default commit identity: a noreply address GitHub accepts from any token.
pub const DEFAULT_AUTHOR_NAME: &str = "gitcord-snapshot";
/// See [`DEFAULT_AUTHOR_NAME`].
pub const DEFAULT_AUTHOR_EMAIL: &str = "gitcord-snapshot@users.noreply.github.com";

/// How many times a push lost to another writer is replayed and retried.
const MAX_PUSH_ATTEMPTS: usize = 5;

/// What `push` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Gitcord's config file.
    pub config: PathBuf,
    /// Where the snapshot's inputs come from.
    pub inputs: Inputs,
    /// `--clone-dir`, overriding `snapshots.clone_dir`.
    pub clone_dir: Option<PathBuf>,
    /// `--remote`, overriding `snapshots.remote_url`.
    pub remote: Option<String>,
    /// `--no-push`: commit locally, touch no network.
    pub no_push: bool,
    /// How long to wait for another run holding the clone lock.
    pub lock_timeout: Duration,
}

/// What a `push` run did, for the one line it prints.
#[derive(Clone, Debug)]
pub enum Report {
    /// `snapshots.enabled` is false.
    Disabled,
    /// A snapshot was committed (or was already there) and the queue was pushed or kept.
    Done {
        /// `snapshots/<name>`.
        snapshot_dir: String,
        /// The commit holding it.
        commit: Oid,
        /// False when the identical snapshot was already committed.
        new_commit: bool,
        /// Where it was pushed, if it was.
        pushed_to: Option<String>,
        /// Commits still waiting for a push.
        queued: usize,
    },
}

/// Where and how this run publishes, resolved from the config and the flags.
struct Publish {
    remote: Option<(RemoteSpec, UrlKind)>,
    clone_dir: PathBuf,
    branch: Option<String>,
    author: Author,
    /// `owner/repo`, or the remote URL, for the audit log.
    repo_label: String,
    audit_dir: Option<PathBuf>,
}

impl Publish {
    fn resolve(config: &Config, req: &Request) -> Result<Publish, Error> {
        let s = &config.snapshots;
        let repo_path = config.expand_opt(&s.repo_path)?.filter(|p| !p.is_empty());
        if let Some(p) = &repo_path {
            validate_repo_path(p).map_err(|why| config.invalid("snapshots.repo_path", why))?;
        }
        let url = match (&req.remote, config.expand_opt(&s.remote_url)?) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(url)) => Some(url),
            (None, None) => repo_path.as_ref().map(|p| format!("https://github.com/{p}.git")),
        };
        let remote = match url {
            None => None,
            Some(url) => {
                let kind = remote::classify_url(&url).map_err(|why| {
                    let key = if req.remote.is_some() { "--remote" } else { "snapshots.remote_url" };
                    config.invalid(key, format!("{url:?} {why}"))
                })?;
                let url = if kind == UrlKind::Local { absolute_local(&url) } else { url };
                // The token is only needed, and its ${VAR} only required, when we will send it.
                let token = match (kind, req.no_push) {
                    (UrlKind::Local, _) | (_, true) => None,
                    _ => config.push_token()?.map(Token::new),
                };
                Some((RemoteSpec { url, token }, kind))
            }
        };
        let clone_dir = super::clone_dir(config, req.clone_dir.as_deref())?;
        if let Some(ca) = config.expand_opt(&s.ca_file)? {
            if !Path::new(&ca).is_file() {
                return Err(config.invalid("snapshots.ca_file", format!("{ca:?} is not a readable file")).into());
            }
            // SAFETY: called once, before any network operation, while the program is single-threaded.
            unsafe { git2::opts::set_ssl_cert_file(&ca) }
                .map_err(|e| config.invalid("snapshots.ca_file", format!("{ca:?} cannot be used: {}", e.message())))?;
        }
        let author = Author {
            name: config.expand_opt(&s.author_name)?.unwrap_or_else(|| DEFAULT_AUTHOR_NAME.into()),
            email: config.expand_opt(&s.author_email)?.unwrap_or_else(|| DEFAULT_AUTHOR_EMAIL.into()),
        };
        let repo_label = repo_path
            .or_else(|| remote.as_ref().map(|(r, _)| r.url.clone()))
            .unwrap_or_else(|| clone_dir.display().to_string());
        Ok(Publish {
            branch: config.expand_opt(&s.branch)?.filter(|b| !b.is_empty()),
            remote,
            clone_dir,
            author,
            repo_label,
            audit_dir: config.data_dir()?,
        })
    }
}

/// GitHub's `owner/repo`: exactly two non-empty parts of letters, digits, `-`, `_`, `.`.
fn validate_repo_path(path: &str) -> Result<(), String> {
    let parts: Vec<&str> = path.split('/').collect();
    let ok_part = |p: &str| {
        !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if parts.len() == 2 && parts.iter().all(|p| ok_part(p)) {
        Ok(())
    } else {
        Err(format!("must be \"owner/repo\", found {path:?}"))
    }
}

/// A local remote given as a relative path means relative to the working directory; store
/// it absolute so the clone's `origin` does not depend on where cron starts us.
fn absolute_local(url: &str) -> String {
    if url.contains("://") {
        return url.to_owned();
    }
    std::path::absolute(url).map(|p| p.display().to_string()).unwrap_or_else(|_| url.to_owned())
}

/// Runs one `push`.
pub fn run(req: &Request) -> Result<Report, Error> {
    let config = Config::load(&req.config)?;
    if !config.snapshots.enabled {
        return Ok(Report::Disabled);
    }
    let publish = Publish::resolve(&config, req)?;
    let snapshot = build_snapshot(&config, &req.inputs)?;
    let files = serialize::render(&snapshot)?;
    let name = snapshot.name();
    let message = snapshot.commit_message();

    configure_timeouts();
    let remote_url = publish.remote.as_ref().map(|(r, _)| r.url.as_str());
    let mut repo = DataRepo::open(&publish.clone_dir, remote_url, req.lock_timeout)?;
    let network = publish.remote.as_ref().filter(|_| !req.no_push).map(|(spec, _)| spec);

    // A failure to reach the remote is not fatal here: the snapshot is committed and queued.
    let mut sync_error = None;
    let branch = match (&publish.branch, network) {
        (Some(b), _) => Some(b.clone()),
        (None, Some(spec)) if !repo.has_commits() => match remote::default_branch(&repo, spec) {
            Ok(b) => Some(b.unwrap_or_else(|| "main".into())),
            Err(e) => {
                sync_error = Some(e);
                None
            }
        },
        _ => None,
    };
    if let Some(b) = &branch {
        repo.set_branch(b)?;
    }
    // A new clone starts from the remote's history. An existing one commits on its own tip and
    // pushes optimistically: one round trip instead of two, and when another writer got there
    // first the push is refused, and push_queue fetches and replays.
    if let (Some(spec), None, false) = (network, &sync_error, repo.has_commits()) {
        match remote::fetch(&repo, spec, repo.branch()) {
            Ok(tip) => {
                repo.integrate_remote(tip)?;
            }
            Err(e) => sync_error = Some(e),
        }
    }

    let committed = repo.commit_snapshot(
        &SnapshotFiles { name: &name, files: &files, message: &message, at: snapshot.at },
        &publish.author,
    )?;
    repo.update_view(&name, &files)?;
    let packed = repo.pack_loose_objects()?;
    if packed > 0 {
        log::info!("packed {packed} loose objects");
    }
    let mut context = SnapshotContext {
        org: snapshot.org.clone(),
        repo: publish.repo_label.clone(),
        snapshot_dir: snapshot.rel_dir(),
        run_id: snapshot.run_id.hyphenated().to_string(),
        files_written: FILE_NAMES.len(),
        timestamp: timefmt::isoformat(&snapshot.at),
        commit: Some(committed.oid().to_string()),
        queued: None,
        error: None,
    };
    if matches!(committed, Committed::New(_)) {
        record(&publish, "snapshot_written", &context);
    }

    let Some(spec) = network else {
        return Ok(done(&snapshot.rel_dir(), committed, None, repo.queued()?.len()));
    };
    let pushed = match sync_error {
        Some(e) => Err(e),
        None => push_queue(&repo, spec),
    };
    let queued = repo.queued()?.len();
    context.queued = Some(queued);
    match pushed {
        Ok(()) => {
            record(&publish, "snapshot_pushed", &context);
            Ok(done(&snapshot.rel_dir(), committed, Some(spec.url.clone()), queued))
        }
        Err(e) => {
            context.error = Some(e.to_string());
            record(&publish, "snapshot_push_failed", &context);
            Err(Error::Push { source: e, queued })
        }
    }
}

fn done(snapshot_dir: &str, committed: Committed, pushed_to: Option<String>, queued: usize) -> Report {
    Report::Done {
        snapshot_dir: snapshot_dir.to_owned(),
        commit: committed.oid(),
        new_commit: matches!(committed, Committed::New(_)),
        pushed_to,
        queued,
    }
}

/// Pushes the branch; when another writer got there first, fetches, replays our queued
/// commits onto the new tip and tries again, a bounded number of times.
fn push_queue(repo: &DataRepo, spec: &RemoteSpec) -> Result<(), RemoteError> {
    let branch = repo.branch().to_owned();
    for _ in 0..MAX_PUSH_ATTEMPTS {
        if repo.queued().map_err(|e| RemoteError::Transient(e.to_string()))?.is_empty() {
            return Ok(());
        }
        match remote::push(repo, spec, &branch) {
            Ok(()) => {
                let tip = repo.tip().map_err(|e| RemoteError::Transient(e.to_string()))?;
                repo.set_remote_tip(tip).map_err(|e| RemoteError::Transient(e.to_string()))?;
                return Ok(());
            }
            Err(RemoteError::Moved) => {
                log::info!("{} moved while pushing; replaying queued snapshots onto it", spec.url);
                let tip = remote::fetch(repo, spec, &branch)?;
                repo.integrate_remote(tip).map_err(|e| RemoteError::Refused(e.to_string()))?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(RemoteError::Transient(format!(
        "{} kept moving under us; gave up after {MAX_PUSH_ATTEMPTS} attempts",
        spec.url
    )))
}

fn record(publish: &Publish, event: &str, context: &SnapshotContext) {
    let Some(dir) = &publish.audit_dir else {
        log::warn!("runtime.data_dir is not set; {event} not written to the audit log");
        return;
    };
    // The snapshot is the product; a failing audit log must not undo it.
    if let Err(e) = audit::append(dir, event, context) {
        log::warn!("cannot append to {}: {e}", dir.join(audit::FILE_NAME).display());
    }
}

/// Network timeouts, so a hung remote turns into a retryable failure instead of a stuck cron.
fn configure_timeouts() {
    // SAFETY: process-wide libgit2 options, set while the program is single-threaded.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(15_000);
        let _ = git2::opts::set_server_timeout_in_milliseconds(60_000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_path_must_be_owner_slash_repo() {
        assert!(validate_repo_path("my-org/gitcord-data").is_ok());
        assert!(validate_repo_path("o/r.data_1").is_ok());
        for bad in ["", "o", "o/", "/r", "o/r/x", "o/..", "o r/x", "o/r?x"] {
            assert!(validate_repo_path(bad).is_err(), "{bad}");
        }
    }
}
