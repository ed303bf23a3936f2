//! Talking to the data repository's remote: fetch the branch, push the queue.
//!
//! HTTP(S) goes over the crate's own transport ([`crate::publish::http`]: ureq + rustls), which
//! sends the token in a header (user `x-access-token`), never through the URL or the clone's
//! config, and only once per operation: a rejected token ends the attempt instead of looping.
//! Failures are sorted into what cron should simply retry (network, timeouts, 5xx) and what an
//! operator must fix (401/403, a rejected ref or hook, an untrusted certificate); both keep the
//! queue.

use std::cell::RefCell;

use git2::{ErrorClass, ErrorCode, FetchOptions, Oid, PushOptions, RemoteCallbacks};

use crate::net::{is_loopback_authority, Secret};
use crate::publish::clone::{DataRepo, REMOTE_NAME};
use crate::publish::http::{self, Failure};
pub use crate::publish::sendpack::RefUpdate;
use crate::publish::sendpack::{self, PushError};
use crate::text::one_line;

/// Where the data repository lives and how to authenticate to it.
#[derive(Clone, Debug)]
pub struct RemoteSpec {
    /// HTTPS URL, loopback HTTP URL, `file://` URL or local path. Never carries credentials.
    pub url: String,
    /// Sent only in the `Authorization` header, by [`crate::publish::http`].
    pub token: Option<Secret>,
}

/// What kind of URL a remote is, which decides whether a token may be sent to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlKind {
    /// `https://`: the token is sent, TLS always verified.
    Https,
    /// `http://` to a loopback address: allowed for local tests and proxies.
    LoopbackHttp,
    /// A local path or `file://` URL: no network, no token.
    Local,
}

/// Why a URL cannot be used as the data repository.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// `user:token@host` in the URL would end up in `.git/config`.
    #[error("must not contain credentials; put the token in snapshots.token or github.token")]
    Credentials,
    /// A token over plain HTTP could be read by anyone on the path.
    #[error("uses plain http:// to a host that is not loopback; use https://")]
    PlainHttp,
    /// `?access_token=...` or any query or fragment: it would be stored in `.git/config` with
    /// the URL, and a git remote has no use for one.
    #[error("must not carry a query or fragment (?... or #...); put the token in snapshots.token or github.token")]
    Query,
    /// SSH and other transports are not supported.
    #[error("is not an https:// URL, a file:// URL or a local path")]
    Unsupported,
}

/// Classifies `url`, refusing the forms that would leak or misplace the token.
pub fn classify_url(url: &str) -> Result<UrlKind, UrlError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        // scp-like "git@host:path" is SSH; anything else without a scheme is a path.
        return if url.contains('@') && url.contains(':') {
            Err(UrlError::Unsupported)
        } else {
            Ok(UrlKind::Local)
        };
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let network = matches!(scheme.to_ascii_lowercase().as_str(), "https" | "http");
    if network && rest.contains(['?', '#']) {
        return Err(UrlError::Query);
    }
    match scheme.to_ascii_lowercase().as_str() {
        "file" => Ok(UrlKind::Local),
        "https" | "http" if authority.contains('@') => Err(UrlError::Credentials),
        "https" => Ok(UrlKind::Https),
        "http" if is_loopback_authority(authority) => Ok(UrlKind::LoopbackHttp),
        "http" => Err(UrlError::PlainHttp),
        _ => Err(UrlError::Unsupported),
    }
}

pub use crate::net::without_credentials;

/// Why talking to the remote failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Worth retrying as it is: unreachable, timeout, 5xx.
    #[error("{0}; the snapshot stays queued and the next run retries")]
    Transient(String),
    /// A failure on this machine (a lock, a full disk, permissions, a damaged object in the
    /// clone): the network is not to blame, and retrying as is may not help.
    #[error(
        "{0}; this is a problem of the local clone, not of the network; the snapshot stays queued"
    )]
    Local(String),
    /// The clone failed while pushing or replaying (typed, so that each condition keeps the
    /// exit code it has everywhere else: a snapshot-name conflict is 73, a damaged clone 74).
    #[error("{0}")]
    Clone(crate::publish::clone::RepoError),
    /// libgit2 failed in a way it does not classify as the network, the remote or this
    /// machine; it is not guessed to be any of them.
    #[error("{0}; libgit2 does not say whether the network, the remote or this machine is at fault; the snapshot stays queued")]
    Unclassified(String),
    /// The remote said no; an operator must act.
    #[error("{0}; the snapshot stays queued")]
    Refused(String),
    /// The remote refused the update in a way another writer would cause (a newer tip, a
    /// locked ref); the reason is kept for when the remote turns out not to have moved.
    #[error("the remote refused to update the branch: {0}")]
    Moved(String),
}

/// What the callbacks recorded during one fetch or push: credential requests, a missing token,
/// a refused ref and the remote's messages, read afterwards to name the cause of a failure.
#[derive(Default)]
struct CallbackRecord {
    rejected: RefCell<Option<String>>,
    remote_messages: RefCell<String>,
}

/// libgit2's callbacks for one operation. No credential callback: the token is sent by our
/// HTTP transport, and local remotes need none.
fn callbacks(outcome: &CallbackRecord) -> RemoteCallbacks<'_> {
    // A failure left over from an earlier operation must not be blamed on this one.
    http::take_failure();
    let mut cb = RemoteCallbacks::new();
    cb.push_update_reference(move |_refname, status| {
        if let Some(msg) = status {
            *outcome.rejected.borrow_mut() = Some(msg.to_owned());
        }
        Ok(())
    });
    cb.transfer_progress(|_| {
        crate::pause::point("fetch");
        true
    });
    cb.push_transfer_progress(|_, _, _| crate::pause::point("push"));
    cb.sideband_progress(move |data| {
        let mut all = outcome.remote_messages.borrow_mut();
        if all.len() < 4096 {
            all.push_str(&String::from_utf8_lossy(data));
        }
        true
    });
    cb
}

/// Fetches the branch; returns the remote's tip, `None` if the remote has no such branch.
pub fn fetch(repo: &DataRepo, spec: &RemoteSpec, branch: &str) -> Result<Option<Oid>, RemoteError> {
    fetch_into(repo, spec, branch, REMOTE_NAME)
}

/// [`fetch`] into `refs/remotes/<namespace>/`: the backup repository has a namespace of its
/// own, so that its branches never mix with the data repository's.
pub fn fetch_into(
    repo: &DataRepo,
    spec: &RemoteSpec,
    branch: &str,
    namespace: &str,
) -> Result<Option<Oid>, RemoteError> {
    let outcome = CallbackRecord::default();
    let mut remote = repo
        .git()
        .remote_anonymous(&spec.url)
        .map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    let mut opts = FetchOptions::new();
    // Pruning drops the tracking ref when the remote has no such branch (an emptied remote).
    // Proxy and redirects are our transport's (see `publish::http`).
    opts.remote_callbacks(callbacks(&outcome))
        .download_tags(git2::AutotagOption::None)
        .prune(git2::FetchPrune::On);
    let refspec = format!("+refs/heads/{branch}:refs/remotes/{namespace}/{branch}");
    let tracking = format!("refs/remotes/{namespace}/{branch}");
    let before = tracking_tip(repo, &tracking)?;
    remote
        .fetch(&[&refspec], Some(&mut opts), None)
        .map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    let tip = tracking_tip(repo, &tracking)?;
    if let Some(tip) = tip {
        if let Err(why) = crate::publish::foreign::check_remote_tip(repo.git(), branch, tip) {
            // The tracking ref goes back to what was last accepted: nothing refers to it.
            let restored = match before {
                Some(oid) => repo
                    .git()
                    .reference(&tracking, oid, true, "refused remote tip")
                    .map(|_| ()),
                None => repo
                    .git()
                    .find_reference(&tracking)
                    .and_then(|mut r| r.delete()),
            };
            restored.map_err(|e| RemoteError::Local(e.message().to_owned()))?;
            return Err(RemoteError::Refused(why));
        }
    }
    Ok(tip)
}

/// Where remote-tracking ref `tracking` points, `None` when it does not exist.
fn tracking_tip(repo: &DataRepo, tracking: &str) -> Result<Option<Oid>, RemoteError> {
    match repo.git().refname_to_id(tracking) {
        Ok(oid) => Ok(Some(oid)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(RemoteError::Local(e.message().to_owned())),
    }
}

/// The remote's default branch (what its HEAD points to), `None` for an empty remote.
pub fn default_branch(repo: &DataRepo, spec: &RemoteSpec) -> Result<Option<String>, RemoteError> {
    let outcome = CallbackRecord::default();
    let mut remote = repo
        .git()
        .remote_anonymous(&spec.url)
        .map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    let conn = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks(&outcome)), None)
        .map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    let name = match conn.default_branch() {
        Ok(buf) => buf
            .as_str()
            .and_then(|s| s.strip_prefix("refs/heads/"))
            .map(str::to_owned),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(classify(e, &outcome, &spec.url, repo)),
    };
    Ok(name)
}

/// Pushes `updates` (every ref in one push, atomically when the server can) and reads the
/// server's verdict on each. Over HTTP(S) this is our own receive-pack client
/// ([`crate::publish::sendpack`]: a thin pack of what the new commits add); a local remote is
/// written by libgit2.
pub fn push(repo: &DataRepo, spec: &RemoteSpec, updates: &[RefUpdate]) -> Result<(), RemoteError> {
    if classify_url(&spec.url).is_ok_and(|kind| kind == UrlKind::Local) {
        return push_local(repo, spec, updates);
    }
    http::take_failure();
    let pushed = sendpack::push(repo.git(), &spec.url, updates);
    http::take_failure();
    let sent = pushed.map_err(|e| push_error(e, &spec.url))?;
    log::info!(
        "sent {} object(s), {} as deltas, {} bytes ({} pack)",
        sent.objects,
        sent.deltas,
        sent.bytes,
        if sent.thin { "thin" } else { "full" }
    );
    Ok(())
}

/// A push refused or failed, in an operator's words.
fn push_error(e: PushError, url: &str) -> RemoteError {
    let said = |messages: &str| {
        let messages = one_line(messages);
        if messages.is_empty() {
            String::new()
        } else {
            format!(" (remote said: {messages})")
        }
    };
    match e {
        PushError::Wire(failure) => wire_error(failure, url),
        PushError::Local(message) => RemoteError::Local(format!(
            "cannot read what to push from the clone: {message}"
        )),
        PushError::Protocol(message) => RemoteError::Transient(format!("{url}: {message}")),
        PushError::Moved(reason) => RemoteError::Moved(reason),
        PushError::Unpack { reason, messages } => RemoteError::Refused(format!(
            "{url} could not unpack the pushed objects ({reason}){}",
            said(&messages)
        )),
        PushError::Rejected {
            name,
            reason,
            messages,
        } => rejection(&format!("{name} {reason}"), &messages),
    }
}

/// Pushes to a local remote (a path or `file://`) with libgit2: each update's local ref of the
/// same name to the remote's.
fn push_local(
    repo: &DataRepo,
    spec: &RemoteSpec,
    updates: &[RefUpdate],
) -> Result<(), RemoteError> {
    let outcome = CallbackRecord::default();
    let mut remote = repo
        .git()
        .remote_anonymous(&spec.url)
        .map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    let mut opts = PushOptions::new();
    opts.remote_callbacks(callbacks(&outcome));
    let refspecs: Vec<String> = updates
        .iter()
        .map(|u| format!("{}:{}", u.name, u.name))
        .collect();
    remote
        .push(&refspecs, Some(&mut opts))
        .map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    if let Some(reason) = outcome.rejected.borrow().as_ref() {
        return Err(rejection(reason, &outcome.remote_messages.borrow()));
    }
    Ok(())
}

/// A ref the server refused. A lost race with another writer is retried; anything else
/// (a hook, branch protection, GitHub's private e-mail check) is for the operator.
fn rejection(reason: &str, remote_messages: &str) -> RemoteError {
    let mut lower = reason.to_ascii_lowercase();
    // An atomic push (the snapshot and backup branches together) that lost a race says only
    // "atomic transaction failed" for each ref; the cause (another writer's ref lock, or a
    // ref created since the advertisement) is in the messages the server printed.
    if lower.contains("atomic") {
        lower.push(' ');
        lower.push_str(&remote_messages.to_ascii_lowercase());
    }
    if [
        "fetch first",
        "non-fast-forward",
        "failed to lock",
        "cannot lock",
        "stale info",
        "failed to update ref",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        return RemoteError::Moved(reason.to_owned());
    }
    let messages = one_line(remote_messages);
    let detail = if messages.is_empty() {
        String::new()
    } else {
        format!(" (remote said: {messages})")
    };
    RemoteError::Refused(format!(
        "the remote rejected the push: {reason}{detail}; fix the repository's rules or snapshots.author_email"
    ))
}

/// Sorts a libgit2 failure into retry-later or operator-must-act, in words an operator reads.
fn classify(e: git2::Error, _outcome: &CallbackRecord, url: &str, repo: &DataRepo) -> RemoteError {
    // What our HTTP transport saw on the wire says more than libgit2's message.
    if let Some(failure) = http::take_failure() {
        return wire_error(failure, url);
    }
    let message = one_line(e.message());
    if e.code() == ErrorCode::Auth {
        return status_error(401, url, &message);
    }
    if e.code() == ErrorCode::NotFastForward {
        return RemoteError::Moved(message);
    }
    if is_local_failure(&e, repo.git().path()) {
        return RemoteError::Local(format!("cannot update the clone: {message}"));
    }
    if e.class() == ErrorClass::Ssl || e.code() == ErrorCode::Certificate {
        return RemoteError::Refused(format!(
            "TLS with {url} failed: {message}; if the server uses a private CA, set snapshots.ca_file"
        ));
    }
    match http_status(&message) {
        Some(code) => status_error(code, url, &message),
        _ if e.class() == ErrorClass::Repository && e.code() == ErrorCode::NotFound => {
            RemoteError::Refused(format!("{url}: {message}"))
        }
        // Only what libgit2 reports from the wire is the network's.
        _ if matches!(
            e.class(),
            ErrorClass::Net | ErrorClass::Http | ErrorClass::Os | ErrorClass::Ssh
        ) =>
        {
            RemoteError::Transient(format!("cannot reach {url}: {message}"))
        }
        _ => RemoteError::Unclassified(format!(
            "talking to {url} failed: {message} (libgit2 error class {:?}, code {:?})",
            e.class(),
            e.code()
        )),
    }
}

/// What an HTTP status other than 200 means for the operator.
fn status_error(code: u16, url: &str, message: &str) -> RemoteError {
    match code {
        403 => RemoteError::Refused(format!(
            "{url} refused access (HTTP 403); the token needs write access to the data repository"
        )),
        404 => RemoteError::Refused(format!(
            "{url} was not found (HTTP 404); check snapshots.repo_path / remote_url"
        )),
        401 => RemoteError::Refused(format!(
            "{url} rejected the token (HTTP 401); check snapshots.token / github.token"
        )),
        500..=599 => RemoteError::Transient(format!("{url} answered HTTP {code}")),
        _ => RemoteError::Transient(format!("cannot reach {url}: {message}")),
    }
}

/// A failure our HTTP transport recorded, in an operator's words.
pub(crate) fn wire_error(failure: Failure, url: &str) -> RemoteError {
    match failure {
        Failure::NoToken => RemoteError::Refused(format!(
            "{url} requires authentication and no token is configured (set snapshots.token or github.token)"
        )),
        Failure::TokenRejected => status_error(401, url, ""),
        Failure::Status(code) => status_error(code, url, &format!("unexpected HTTP status {code}")),
        Failure::AuthElsewhere(_) | Failure::Protocol(_) => {
            RemoteError::Refused(format!("{url}: {}", one_line(&failure.to_string())))
        }
        Failure::Tls(message) => RemoteError::Refused(format!(
            "TLS with {url} failed: {}; if the server uses a private CA, set snapshots.ca_file",
            one_line(&message)
        )),
        Failure::Unreachable(message) => {
            RemoteError::Transient(format!("cannot reach {url}: {}", one_line(&message)))
        }
    }
}

/// Whether libgit2 failed on this machine rather than on the wire: a lock it could not take,
/// or a file of the clone it could not write or read. libgit2 names the file in such errors;
/// a damaged object that arrived over the network names no file of ours and stays the
/// remote's (retried), and a damaged clone is caught before any network use by the health
/// check.
fn is_local_failure(e: &git2::Error, git_dir: &std::path::Path) -> bool {
    let dir = git_dir.to_string_lossy();
    e.code() == ErrorCode::Locked || e.message().contains(dir.trim_end_matches('/'))
}

/// The HTTP status in libgit2's "unexpected http status code: 503" and similar messages.
fn http_status(message: &str) -> Option<u16> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("status code")?;
    lower[at..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| s.len() == 3)
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_that_would_leak_the_token_are_refused() {
        assert_eq!(
            classify_url("https://github.com/o/r.git").unwrap(),
            UrlKind::Https
        );
        assert_eq!(
            classify_url("http://127.0.0.1:8080/r.git").unwrap(),
            UrlKind::LoopbackHttp
        );
        assert_eq!(
            classify_url("http://localhost/r.git").unwrap(),
            UrlKind::LoopbackHttp
        );
        assert_eq!(
            classify_url("http://[::1]:80/r.git").unwrap(),
            UrlKind::LoopbackHttp
        );
        assert_eq!(classify_url("file:///srv/r.git").unwrap(), UrlKind::Local);
        assert_eq!(classify_url("/srv/r.git").unwrap(), UrlKind::Local);
        assert!(matches!(
            classify_url("http://example.com/r.git"),
            Err(UrlError::PlainHttp)
        ));
        assert!(matches!(
            classify_url("http://127.0.0.1.example.com/r"),
            Err(UrlError::PlainHttp)
        ));
        assert!(matches!(
            classify_url("https://x-access-token:t@github.com/o/r"),
            Err(UrlError::Credentials)
        ));
        for leaky in [
            "https://github.com/o/r.git?access_token=tok",
            "https://github.com?access_token=tok",
            "https://tok@github.com?x=1",
            "https://github.com/o/r.git#tok",
            "http://127.0.0.1/r.git?token=tok",
        ] {
            assert!(classify_url(leaky).is_err(), "{leaky}");
            assert!(!without_credentials(leaky).contains("tok"), "{leaky}");
        }
        assert_eq!(
            without_credentials("https://u:tok@h/p?access_token=tok#tok"),
            "https://h/p"
        );
        assert!(matches!(
            classify_url("git@github.com:o/r.git"),
            Err(UrlError::Unsupported)
        ));
        assert!(matches!(
            classify_url("ssh://git@github.com/o/r.git"),
            Err(UrlError::Unsupported)
        ));
    }

    #[test]
    fn an_error_libgit2_does_not_classify_is_not_blamed_on_the_network() {
        let dir = tempfile::tempdir().unwrap();
        let repo = DataRepo::open(&dir.path().join("c"), None, std::time::Duration::ZERO).unwrap();
        let outcome = CallbackRecord::default();
        let err = |class, message: &str| git2::Error::new(ErrorCode::GenericError, class, message);
        let url = "https://example.com/r.git";
        for class in [
            ErrorClass::Invalid,
            ErrorClass::Object,
            ErrorClass::Odb,
            ErrorClass::Callback,
            ErrorClass::None,
        ] {
            match classify(err(class, "something odd"), &outcome, url, &repo) {
                RemoteError::Unclassified(m) => {
                    assert!(
                        m.contains("something odd") && !m.contains("cannot reach"),
                        "{m}"
                    )
                }
                other => panic!("{class:?}: {other:?}"),
            }
        }
        for class in [ErrorClass::Net, ErrorClass::Http, ErrorClass::Os] {
            assert!(matches!(
                classify(err(class, "connection reset"), &outcome, url, &repo),
                RemoteError::Transient(_)
            ));
        }
    }

    #[test]
    fn messages_never_carry_credentials() {
        assert_eq!(
            without_credentials("https://x:tok@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(without_credentials("https://tok@h:8443"), "https://h:8443");
        assert_eq!(
            without_credentials("https://github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(without_credentials("/srv/r.git"), "/srv/r.git");
    }

    #[test]
    fn http_status_is_read_from_libgit2_messages() {
        assert_eq!(http_status("unexpected http status code: 503"), Some(503));
        assert_eq!(
            http_status("request failed with status code: 403"),
            Some(403)
        );
        assert_eq!(
            http_status("failed to connect to 127.0.0.1: Connection refused"),
            None
        );
    }

    #[test]
    fn the_token_never_prints() {
        let spec = RemoteSpec {
            url: "https://h/r".into(),
            token: Some(Secret::new("ghp_secret".into())),
        };
        assert!(!format!("{spec:?}").contains("ghp_secret"));
    }

    #[test]
    fn lost_races_are_retried_and_hooks_are_refusals() {
        assert!(matches!(
            rejection("failed to update ref", ""),
            RemoteError::Moved(_)
        ));
        // git's receive-pack, atomic, when another writer created or moved the ref first.
        assert!(matches!(
            rejection(
                "refs/heads/main atomic transaction failed",
                "error: cannot lock ref 'refs/heads/main': reference already exists\n",
            ),
            RemoteError::Moved(_)
        ));
        // An atomic push refused by a hook is still a refusal.
        assert!(matches!(
            rejection(
                "refs/heads/main atomic transaction failed",
                "remote: GH007: private email\n",
            ),
            RemoteError::Refused(_)
        ));
        let refused = rejection(
            "pre-receive hook declined",
            "remote: GH007: private email\n",
        );
        assert!(refused.to_string().contains("GH007"), "{refused}");
    }
}
