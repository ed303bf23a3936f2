//! A writing run's session with the data repository: where and how it publishes (resolved from
//! the config and the flags), the clone opened and locked, the branch chosen, the remote's
//! history learnt once, and the queue pushed (replaying onto another writer's commits).
//! `push` and `prune` both publish through it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::input::config::{Config, ConfigError};
use crate::net::Secret;
use crate::publish::audit::{self, SnapshotContext};
use crate::publish::backup;
use crate::publish::clone::{Author, DataRepo, RepoError};
use crate::publish::git_options;
use crate::publish::http;
use crate::publish::remote::{self, RefUpdate, RemoteError, RemoteSpec, UrlKind};
use crate::publish::signing::{AllowedSigners, SigningKey};
use crate::snapshot::format::LATEST_FILE;

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A config value the session needs.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The clone.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Default commit identity: a noreply address GitHub accepts from any token.
pub const DEFAULT_AUTHOR_NAME: &str = "gitcord-snapshot";
/// See [`DEFAULT_AUTHOR_NAME`].
pub const DEFAULT_AUTHOR_EMAIL: &str = "gitcord-snapshot@users.noreply.github.com";

/// How many times a push lost to another writer is replayed and retried. Hosts started by
/// cron at the same minute push at the same moment, and each round only one of them wins:
/// ten rounds let that many hosts through in one run (the pauses add up to about 7 s).
const MAX_PUSH_ATTEMPTS: usize = 10;

/// Where the clone is and how to reach the remote: what `push` and `prune` share.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// `--clone-dir`, overriding `snapshots.clone_dir`.
    pub clone_dir: Option<PathBuf>,
    /// `--remote`, overriding `snapshots.remote_url`.
    pub remote: Option<String>,
    /// `--no-push`: commit locally, touch no network.
    pub no_push: bool,
    /// How long to wait for another run holding the clone lock.
    pub lock_timeout: Duration,
}

/// The readers' index file (`snapshots.latest_file`): `latest.json` by default, `None` when
/// set to an empty string. It must be a plain file name at the repository root.
pub fn latest_file(config: &Config) -> Result<Option<String>, ConfigError> {
    let name = match config.expand_opt(&config.snapshots.latest_file)? {
        None => return Ok(Some(LATEST_FILE.to_owned())),
        Some(name) if name.is_empty() => return Ok(None),
        Some(name) => name,
    };
    let reserved = [".", "..", ".git", crate::snapshot::SNAPSHOTS_DIR];
    if name.contains(['/', '\\', '\0']) || reserved.contains(&name.as_str()) {
        return Err(config.invalid(
            "snapshots.latest_file",
            format!("{name:?} is not a plain file name for the repository root (or \"\" to turn it off)"),
        ));
    }
    Ok(Some(name))
}

/// The key snapshot commits are signed with (`snapshots.signing_key`), checked now: a key
/// that is missing, unreadable, encrypted, not Ed25519 or readable by others is a config error.
pub fn signing_key(config: &Config) -> Result<Option<SigningKey>, ConfigError> {
    match config.expand_opt(&config.snapshots.signing_key)? {
        Some(path) if !path.is_empty() => SigningKey::load(Path::new(&path))
            .map(Some)
            .map_err(|e| config.invalid("snapshots.signing_key", format!("is unusable: {e}"))),
        _ => Ok(None),
    }
}

/// The keys `verify` accepts signatures from: `--allowed-signers`, else
/// `snapshots.allowed_signers`; `None` when neither is set (signatures are not checked).
pub fn allowed_signers(
    config: &Config,
    flag: Option<&Path>,
) -> Result<Option<AllowedSigners>, ConfigError> {
    let (key, path) = match (flag, config.expand_opt(&config.snapshots.allowed_signers)?) {
        (Some(p), _) => ("--allowed-signers", p.to_owned()),
        (None, Some(p)) if !p.is_empty() => ("snapshots.allowed_signers", PathBuf::from(p)),
        _ => return Ok(None),
    };
    AllowedSigners::load(&path)
        .map(Some)
        .map_err(|e| config.invalid(key, format!("is unusable: {e}")))
}

/// Where and how a run publishes, resolved from the config and the flags.
pub struct PublishSettings {
    remote: Option<(RemoteSpec, UrlKind)>,
    clone_dir: PathBuf,
    /// `snapshots.ca_file`: trusted on top of the default roots.
    ca_file: Option<PathBuf>,
    branch: Option<String>,
    /// The fixed identity commits are made with.
    pub author: Author,
    /// The readers' index file at the root, if on.
    pub latest_file: Option<String>,
    /// The key commits are signed with, if signing is on.
    signing_key: Option<SigningKey>,
    /// `owner/repo`, or the remote URL, for the audit log.
    pub repo_label: String,
    audit_dir: Option<PathBuf>,
    /// The branch backups of `state.db` go to; `None` when `snapshots.backup: false`.
    pub backup_branch: Option<String>,
    /// `snapshots.backup_remote_url`: the repository backups go to when it is not the data
    /// repository.
    backup_remote: Option<(RemoteSpec, UrlKind)>,
}

impl PublishSettings {
    /// Resolves the settings and applies libgit2's process-wide ones (the CA file with them),
    /// so that a CA file libgit2 refuses is reported where it always was, among the config's
    /// errors in the order they are checked.
    fn resolve(config: &Config, target: &Target) -> Result<PublishSettings, SessionError> {
        let s = &config.snapshots;
        let repo_path = config.expand_opt(&s.repo_path)?.filter(|p| !p.is_empty());
        if let Some(p) = &repo_path {
            validate_repo_path(p).map_err(|why| config.invalid("snapshots.repo_path", why))?;
        }
        let url = match (&target.remote, config.expand_opt(&s.remote_url)?) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(url)) => Some(url),
            (None, None) => repo_path
                .as_ref()
                .map(|p| format!("https://github.com/{p}.git")),
        };
        let remote = match url {
            None => None,
            Some(url) => {
                let key = if target.remote.is_some() {
                    "--remote"
                } else {
                    "snapshots.remote_url"
                };
                Some(remote_spec(config, target, key, url)?)
            }
        };
        let backup_branch = backup::branch(config)?;
        let backup_remote = match config.expand_opt(&s.backup_remote_url)? {
            // The same token as the data repository's (sent only to its own host).
            Some(url) if backup_branch.is_some() && !url.is_empty() => Some(remote_spec(
                config,
                target,
                "snapshots.backup_remote_url",
                url,
            )?),
            _ => None,
        };
        let clone_dir = clone_dir(config, target.clone_dir.as_deref())?;
        let ca_file = match config.expand_opt(&s.ca_file)? {
            None => None,
            Some(ca) => {
                // Read now, so a bad file is a config error before anything is committed.
                crate::net::root_certs(&[Path::new(&ca)]).map_err(|e| {
                    config.invalid("snapshots.ca_file", format!("{ca:?} {}", e.reason))
                })?;
                Some(PathBuf::from(ca))
            }
        };
        let author = Author {
            name: config
                .expand_opt(&s.author_name)?
                .unwrap_or_else(|| DEFAULT_AUTHOR_NAME.into()),
            email: config
                .expand_opt(&s.author_email)?
                .unwrap_or_else(|| DEFAULT_AUTHOR_EMAIL.into()),
        };
        let repo_label = repo_path
            .or_else(|| remote.as_ref().map(|(r, _)| r.url.clone()))
            .unwrap_or_else(|| clone_dir.display().to_string());
        Ok(PublishSettings {
            latest_file: latest_file(config)?,
            signing_key: signing_key(config)?,
            branch: match config.expand_opt(&s.branch)?.filter(|b| !b.is_empty()) {
                Some(b) if !git2::Branch::name_is_valid(&b).unwrap_or(false) => {
                    return Err(config
                        .invalid(
                            "snapshots.branch",
                            format!("{b:?} is not a valid git branch name"),
                        )
                        .into())
                }
                b => b,
            },
            remote,
            clone_dir,
            ca_file,
            author,
            repo_label,
            audit_dir: config.data_dir()?,
            backup_branch,
            backup_remote,
        })
    }
}

/// The clone opened for writing (locked) and in step with the remote as far as it could be.
pub struct Session {
    /// The clone, locked for this run.
    pub repo: DataRepo,
    /// Where and how this run publishes.
    pub publish: PublishSettings,
    /// Where to push, unless `--no-push` or no remote is configured.
    network: Option<RemoteSpec>,
    /// A failure to reach the remote while opening: the run still commits, then reports it.
    sync_error: Option<RemoteError>,
    /// Where backups are pushed when that is another repository, unless `--no-push`.
    backup_network: Option<RemoteSpec>,
    /// A failure to reach the backup repository while opening, reported by [`Session::push`].
    backup_sync_error: Option<RemoteError>,
    /// Why the last [`Session::push`] did not push the backups to their own repository.
    backup_push_error: Option<(String, RemoteError)>,
}

impl Session {
    /// Resolves the target, opens and locks the clone, chooses the branch, and for a clone that
    /// has never seen the remote starts from its history. Afterwards the clone commits on its own tip and pushes
    /// optimistically: one round trip instead of two; when another writer got there first the
    /// push is refused, and [`Session::push`] fetches and replays.
    pub fn open(config: &Config, target: &Target) -> Result<Session, SessionError> {
        let mut publish = PublishSettings::resolve(config, target)?;
        // libgit2's process-wide settings (and our transport), before any repository is opened.
        git_options::init().map_err(|e| RepoError::Git {
            context: "set libgit2's options".into(),
            source: git2::Error::from_str(&e.to_string()),
        })?;
        // git over HTTP(S) goes through our transport, with this run's token, CA and proxy.
        let mut sync_error = http_transport(&publish, target);
        let remote_url = publish.remote.as_ref().map(|(r, _)| r.url.as_str());
        let mut repo = DataRepo::open(&publish.clone_dir, remote_url, target.lock_timeout)?;
        repo.set_latest_file(publish.latest_file.clone());
        repo.set_signing_key(publish.signing_key.take());
        let network = publish
            .remote
            .as_ref()
            .filter(|_| !target.no_push)
            .map(|(spec, _)| spec.clone());
        // Until the remote has been seen once (a new clone, or one started with --no-push),
        // learn its default branch and history before committing.
        let never_synced = repo.remote_tip()?.is_none();
        let branch = match (&publish.branch, &network) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(spec)) if never_synced && sync_error.is_none() => {
                match remote::default_branch(&repo, spec) {
                    Ok(b) => Some(b.unwrap_or_else(|| repo.branch().to_owned())),
                    Err(e) => {
                        sync_error = Some(e);
                        None
                    }
                }
            }
            _ => None,
        };
        if let Some(b) = &branch {
            repo.set_branch(b)?;
        }
        if let (Some(spec), None, true) = (&network, &sync_error, never_synced) {
            match remote::fetch(&repo, spec, repo.branch()) {
                Ok(tip) => {
                    repo.integrate_remote(tip)?;
                }
                Err(e) => sync_error = Some(e),
            }
            // The remote's backups too, so this clone's first backup goes on top of them.
            if let (Some(b), None) = (&publish.backup_branch, &sync_error) {
                match remote::fetch(&repo, spec, b) {
                    Ok(tip) => {
                        backup::integrate(&repo, b, tip)?;
                    }
                    Err(e) => sync_error = Some(e),
                }
            }
        }
        // Backups in a repository of their own: fetched into refs/remotes/backup/ until that
        // repository has been seen (also while it has no backup yet).
        let mut backup_network = None;
        let mut backup_sync_error = None;
        if let Some(b) = &publish.backup_branch {
            let url = publish.backup_remote.as_ref().map(|(r, _)| r.url.as_str());
            backup::set_backup_remote(repo.git(), url)?;
            if let Some((spec, kind)) = publish.backup_remote.as_ref().filter(|_| !target.no_push) {
                backup_network = Some(spec.clone());
                if backup::remote_tip(repo.git(), b)?.is_none() {
                    let fetched = with_transport(&publish, spec, *kind, || {
                        remote::fetch_into(&repo, spec, b, backup::BACKUP_REMOTE)
                    });
                    match fetched {
                        Ok(tip) => {
                            backup::integrate(&repo, b, tip)?;
                        }
                        Err(e) => backup_sync_error = Some(e),
                    }
                }
            }
        }
        // A clone rebuilt after damage: what was queued in the broken one (snapshots and their
        // backups) goes on top.
        backup::salvage(&repo, publish.backup_branch.as_deref())?;
        Ok(Session {
            repo,
            publish,
            network,
            sync_error,
            backup_network,
            backup_sync_error,
            backup_push_error: None,
        })
    }

    /// Why the backups were not pushed to their own repository by the last [`Session::push`]
    /// (its URL and the error), taking it: the snapshots' push itself succeeded.
    pub fn take_backup_push_error(&mut self) -> Option<(String, RemoteError)> {
        self.backup_push_error.take()
    }

    /// Pushes everything queued; `Ok(None)` when this run does not push (offline).
    pub fn push(&mut self) -> Result<Option<String>, RemoteError> {
        let Some(spec) = &self.network else {
            return Ok(None);
        };
        if let Some(e) = self.sync_error.take() {
            return Err(e);
        }
        let queued = self.repo.queued().map_err(RemoteError::Clone)?.len();
        // Backups with a repository of their own go in a push of their own, after this one.
        let separate = self.publish.backup_remote.is_some();
        let together = self.publish.backup_branch.as_deref().filter(|_| !separate);
        push_queue(&self.repo, spec, together)?;
        log::info!(
            "pushed {queued} commit(s) to {} ({})",
            spec.url,
            self.repo.branch()
        );
        if let Err(e) = self
            .repo
            .record_push_success(chrono::Utc::now().timestamp())
        {
            log::warn!("cannot record the push time: {e}");
        }
        let url = spec.url.clone();
        self.push_backups();
        Ok(Some(url))
    }

    /// Pushes the queued backups to their own repository (`snapshots.backup_remote_url`),
    /// replaying onto another writer's; a failure is kept for [`Session::take_backup_push_error`]
    /// and the backups stay queued.
    fn push_backups(&mut self) {
        let (Some(spec), Some(b), Some((_, kind))) = (
            &self.backup_network,
            &self.publish.backup_branch,
            &self.publish.backup_remote,
        ) else {
            return;
        };
        let pushed = match self.backup_sync_error.take() {
            Some(e) => Err(e),
            None => with_transport(&self.publish, spec, *kind, || {
                push_backup_queue(&self.repo, spec, b)
            }),
        };
        if let Err(e) = pushed {
            log::warn!("the backups were not pushed to {}: {e}", spec.url);
            self.backup_push_error = Some((spec.url.clone(), e));
        }
    }
}

/// Runs `op` with our HTTP transport set up for `spec` (its token goes to its host only), then
/// sets it back up for the data repository.
fn with_transport<T>(
    publish: &PublishSettings,
    spec: &RemoteSpec,
    kind: UrlKind,
    op: impl FnOnce() -> Result<T, RemoteError>,
) -> Result<T, RemoteError> {
    if kind != UrlKind::Local {
        http::configure(&spec.url, spec.token.clone(), publish.ca_file.as_deref())
            .map_err(|e| RemoteError::Refused(format!("the CA certificates file {e}")))?;
    }
    let result = op();
    if let Some((data, _)) = &publish.remote {
        if let Err(e) = http::configure(&data.url, data.token.clone(), publish.ca_file.as_deref()) {
            log::warn!("cannot set the transport back up: the CA certificates file {e}");
        }
    }
    result
}

/// [`push_queue`] for the backup branch alone, to its own repository.
fn push_backup_queue(repo: &DataRepo, spec: &RemoteSpec, b: &str) -> Result<(), RemoteError> {
    let local = RemoteError::Clone;
    let mut last_refusal = String::new();
    for attempt in 0..MAX_PUSH_ATTEMPTS {
        if backup::queued(repo, b).map_err(local)?.is_empty() {
            return Ok(());
        }
        let update = RefUpdate {
            name: format!("refs/heads/{b}"),
            expected_old: backup::remote_tip(repo.git(), b).map_err(local)?,
            new: backup::local_tip(repo.git(), b)
                .map_err(local)?
                .ok_or_else(|| RemoteError::Local(format!("{b} has no commit to push")))?,
        };
        match remote::push(repo, spec, std::slice::from_ref(&update)) {
            Ok(()) => {
                crate::pause::point("backup-pushed");
                backup::set_remote_tip(repo.git(), b, update.new).map_err(local)?;
                log::info!("pushed the backups to {} ({b})", spec.url);
                return Ok(());
            }
            Err(RemoteError::Moved(reason)) => {
                let before = update.expected_old;
                let tip = remote::fetch_into(repo, spec, b, backup::BACKUP_REMOTE)?;
                if tip == before {
                    last_refusal = reason;
                    std::thread::sleep(backoff(attempt));
                    continue;
                }
                log::info!(
                    "{} moved while pushing; replaying queued backups onto it",
                    spec.url
                );
                backup::integrate(repo, b, tip).map_err(local)?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(RemoteError::Transient(format!(
        "{} refused to update {b} {MAX_PUSH_ATTEMPTS} times ({last_refusal})",
        spec.url
    )))
}

/// Pushes the branch; when another writer got there first, fetches, replays our queued
/// commits onto the new tip and tries again, a bounded number of times. A refusal while the
/// remote tip stays where it was is contention too (another host's push holds the branch's
/// lock on the server at that moment): it is retried after a short, jittered pause.
fn push_queue(
    repo: &DataRepo,
    spec: &RemoteSpec,
    backup_branch: Option<&str>,
) -> Result<(), RemoteError> {
    let local = RemoteError::Clone;
    let branch = repo.branch().to_owned();
    let mut last_refusal = String::new();
    for attempt in 0..MAX_PUSH_ATTEMPTS {
        // The backup branch goes in the same push whenever it has commits queued.
        let backup = match backup_branch {
            Some(b) if !backup::queued(repo, b).map_err(local)?.is_empty() => Some(b),
            _ => None,
        };
        let snapshots_queued = !repo.queued().map_err(local)?.is_empty();
        if !snapshots_queued && backup.is_none() {
            return Ok(());
        }
        // Only branches with something queued are sent (an update to where a ref already is
        // would be a no-op command).
        let mut updates = Vec::with_capacity(2);
        if snapshots_queued {
            updates.push(RefUpdate {
                name: format!("refs/heads/{branch}"),
                expected_old: repo.remote_tip().map_err(local)?,
                new: repo
                    .tip()
                    .map_err(local)?
                    .ok_or_else(|| RemoteError::Local("the branch has no commit to push".into()))?,
            });
        }
        if let Some(b) = backup {
            updates.push(RefUpdate {
                name: format!("refs/heads/{b}"),
                expected_old: backup::remote_tip(repo.git(), b).map_err(local)?,
                new: backup::local_tip(repo.git(), b)
                    .map_err(local)?
                    .ok_or_else(|| RemoteError::Local(format!("{b} has no commit to push")))?,
            });
        }
        match remote::push(repo, spec, &updates) {
            Ok(()) => {
                // The remote has it; the clone does not know yet. A run killed here finds its
                // queue refused as stale next time, fetches, and sees it already pushed.
                crate::pause::point("pushed");
                repo.set_remote_tip(repo.tip().map_err(local)?)
                    .map_err(local)?;
                if let Some(b) = backup {
                    if let Some(tip) = backup::local_tip(repo.git(), b).map_err(local)? {
                        backup::set_remote_tip(repo.git(), b, tip).map_err(local)?;
                    }
                }
                return Ok(());
            }
            Err(RemoteError::Moved(reason)) => {
                let before = repo.remote_tip().map_err(local)?;
                let tip = remote::fetch(repo, spec, &branch)?;
                let backup_moved = match backup {
                    Some(b) => {
                        let before = backup::remote_tip(repo.git(), b).map_err(local)?;
                        let tip = remote::fetch(repo, spec, b)?;
                        backup::integrate(repo, b, tip).map_err(local)?;
                        tip != before
                    }
                    None => false,
                };
                if tip == before && !backup_moved {
                    log::info!(
                        "{} refused to update {branch} ({reason}) without moving; retrying",
                        spec.url
                    );
                    last_refusal = reason;
                    std::thread::sleep(backoff(attempt));
                    continue;
                }
                log::info!(
                    "{} moved while pushing; replaying queued snapshots onto it",
                    spec.url
                );
                // A conflicting snapshot name keeps its exit code (73), as at commit time.
                repo.integrate_remote(tip).map_err(local)?;
            }
            Err(e) => return Err(e),
        }
    }
    if !last_refusal.is_empty() {
        return Err(RemoteError::Transient(format!(
            "{} refused to update {branch} ({last_refusal}) {MAX_PUSH_ATTEMPTS} times; another writer \
             may have been pushing at the same moments, or (a local remote only) a lock file of a \
             killed push is left in it",
            spec.url
        )));
    }
    Err(RemoteError::Transient(format!(
        "{} kept moving under us; gave up after {MAX_PUSH_ATTEMPTS} attempts",
        spec.url
    )))
}

/// A remote named by config key `key`: its URL checked (credentials in it are refused, and
/// never printed back), a local path made absolute, and the token when it will be sent (its
/// `${VAR}` is only required then).
fn remote_spec(
    config: &Config,
    target: &Target,
    key: &str,
    url: String,
) -> Result<(RemoteSpec, UrlKind), ConfigError> {
    let kind = remote::classify_url(&url).map_err(|why| {
        config.invalid(
            key,
            format!("{:?} {why}", remote::without_credentials(&url)),
        )
    })?;
    let url = if kind == UrlKind::Local {
        absolute_local(&url)
    } else {
        url
    };
    let token = match (kind, target.no_push) {
        (UrlKind::Local, _) | (_, true) => None,
        _ => config.push_token()?.map(Secret::new),
    };
    Ok((RemoteSpec { url, token }, kind))
}

/// Gives our HTTP transport (registered by [`git_options::init`]) this run's settings, before any
/// network use. A CA bundle named by `SSL_CERT_FILE` that cannot be used fails the push (the
/// snapshot is still committed and queued), as a bad `snapshots.ca_file` fails the config.
fn http_transport(publish: &PublishSettings, target: &Target) -> Option<RemoteError> {
    let (spec, kind) = publish.remote.as_ref()?;
    if *kind == UrlKind::Local || target.no_push {
        return None;
    }
    http::configure(&spec.url, spec.token.clone(), publish.ca_file.as_deref())
        .err()
        .map(|e| RemoteError::Refused(format!("the CA certificates file {e}")))
}

/// How long to wait before push attempt `attempt + 1` after a refusal: growing, with jitter so
/// that hosts refused together do not retry together.
fn backoff(attempt: usize) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jitter = u64::from(nanos % 250);
    Duration::from_millis(100 * (attempt as u64 + 1) + jitter)
}

/// Appends an audit event; a failing audit log must not undo a published snapshot.
pub fn record(publish: &PublishSettings, event: &str, context: &SnapshotContext) {
    let Some(dir) = &publish.audit_dir else {
        log::warn!("runtime.data_dir is not set; {event} not written to the audit log");
        return;
    };
    if let Err(e) = audit::append(dir, event, context) {
        log::warn!(
            "cannot append to {}: {e}",
            dir.join(audit::FILE_NAME).display()
        );
    }
}

/// GitHub's `owner/repo`: exactly two non-empty parts of letters, digits, `-`, `_`, `.`.
fn validate_repo_path(path: &str) -> Result<(), String> {
    let parts: Vec<&str> = path.split('/').collect();
    let ok_part = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
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
    std::path::absolute(url)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| url.to_owned())
}

/// The clone every command works on: `--clone-dir`, else `snapshots.clone_dir`, else
/// `<runtime.data_dir>/snapshot-repo`, so `push`, `status`, `verify` and the rest agree.
pub fn clone_dir(config: &Config, flag: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = flag {
        return Ok(dir.to_owned());
    }
    if let Some(dir) = config.expand_opt(&config.snapshots.clone_dir)? {
        return Ok(PathBuf::from(dir));
    }
    let data_dir = config.data_dir()?.ok_or_else(|| {
        config.invalid(
            "snapshots.clone_dir",
            "is not set and there is no runtime.data_dir to put it in (or pass --clone-dir)",
        )
    })?;
    Ok(data_dir.join("snapshot-repo"))
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
