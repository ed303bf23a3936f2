//! Talking to the data repository's remote: fetch the branch, push the queue.
//!
//! The token reaches libgit2 only through the credential callback (user `x-access-token`),
//! never through the URL or the clone's config, and only once per operation: a rejected token
//! ends the attempt instead of looping. Failures are sorted into what cron should simply
//! retry (network, timeouts, 5xx) and what an operator must fix (401/403, a rejected ref or
//! hook, an untrusted certificate); both keep the queue.

use std::cell::{Cell, RefCell};

use git2::{Cred, ErrorClass, ErrorCode, FetchOptions, Oid, PushOptions, RemoteCallbacks};

use crate::net::{is_loopback_authority, Secret};
use crate::publish::clone::{DataRepo, REMOTE_NAME};
use crate::text::one_line;

/// Where the data repository lives and how to authenticate to it.
#[derive(Clone, Debug)]
pub struct RemoteSpec {
    /// HTTPS URL, loopback HTTP URL, `file://` URL or local path. Never carries credentials.
    pub url: String,
    /// Sent only through the credential callback.
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
    let authority = rest.split('/').next().unwrap_or_default();
    match scheme.to_ascii_lowercase().as_str() {
        "file" => Ok(UrlKind::Local),
        "https" | "http" if authority.contains('@') => Err(UrlError::Credentials),
        "https" => Ok(UrlKind::Https),
        "http" if is_loopback_authority(authority) => Ok(UrlKind::LoopbackHttp),
        "http" => Err(UrlError::PlainHttp),
        _ => Err(UrlError::Unsupported),
    }
}

/// `url` without any `user:password@`, for messages: a token pasted into a URL must not be
/// printed back.
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

/// The `host[:port]` part of a URL, lower-cased; empty for a local path.
fn authority_of(url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return String::new();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_ascii_lowercase()
}

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
    /// The remote said no; an operator must act.
    #[error("{0}; the snapshot stays queued")]
    Refused(String),
    /// The remote refused the update in a way another writer would cause (a newer tip, a
    /// locked ref); the reason is kept for when the remote turns out not to have moved.
    #[error("the remote refused to update the branch: {0}")]
    Moved(String),
}

/// Per-operation state the callbacks fill in.
#[derive(Default)]
struct Outcome {
    credential_requests: Cell<u32>,
    no_token: Cell<bool>,
    rejected: RefCell<Option<String>>,
    remote_messages: RefCell<String>,
}

fn callbacks<'a>(spec: &'a RemoteSpec, outcome: &'a Outcome) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    let expected_host = authority_of(&spec.url);
    cb.credentials(move |url, _user, _allowed| {
        let n = outcome.credential_requests.get() + 1;
        outcome.credential_requests.set(n);
        // Only the configured host ever gets the token (redirects are off, but be sure).
        if authority_of(url) != expected_host {
            return Err(git2::Error::from_str(
                "credentials requested by another host; refusing",
            ));
        }
        match &spec.token {
            None => {
                outcome.no_token.set(true);
                Err(git2::Error::from_str("the remote asks for credentials"))
            }
            // A second request means the first answer was rejected: stop here.
            Some(_) if n > 1 => Err(git2::Error::from_str("the token was rejected")),
            Some(token) => Cred::userpass_plaintext("x-access-token", token.expose()),
        }
    });
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

/// The environment's proxy for remote hosts; none for this machine, where a proxy could only
/// read the token off a plain-HTTP loopback connection.
fn proxy_options(spec: &RemoteSpec) -> git2::ProxyOptions<'static> {
    let mut proxy = git2::ProxyOptions::new();
    if !is_loopback_authority(&authority_of(&spec.url)) {
        proxy.auto();
    }
    proxy
}

/// Fetches the branch; returns the remote's tip, `None` if the remote has no such branch.
pub fn fetch(repo: &DataRepo, spec: &RemoteSpec, branch: &str) -> Result<Option<Oid>, RemoteError> {
    let outcome = Outcome::default();
    let mut remote = repo
        .git()
        .remote_anonymous(&spec.url)
        .map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    let mut opts = FetchOptions::new();
    // Pruning drops the tracking ref when the remote has no such branch (an emptied remote).
    opts.remote_callbacks(callbacks(spec, &outcome))
        .proxy_options(proxy_options(spec))
        .follow_redirects(git2::RemoteRedirect::None)
        .download_tags(git2::AutotagOption::None)
        .prune(git2::FetchPrune::On);
    let refspec = format!("+refs/heads/{branch}:refs/remotes/{REMOTE_NAME}/{branch}");
    remote
        .fetch(&[&refspec], Some(&mut opts), None)
        .map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    match repo
        .git()
        .refname_to_id(&format!("refs/remotes/{REMOTE_NAME}/{branch}"))
    {
        Ok(oid) => Ok(Some(oid)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(RemoteError::Local(e.message().to_owned())),
    }
}

/// The remote's default branch (what its HEAD points to), `None` for an empty remote.
pub fn default_branch(repo: &DataRepo, spec: &RemoteSpec) -> Result<Option<String>, RemoteError> {
    let outcome = Outcome::default();
    let mut remote = repo
        .git()
        .remote_anonymous(&spec.url)
        .map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    let conn = remote
        .connect_auth(
            git2::Direction::Fetch,
            Some(callbacks(spec, &outcome)),
            Some(proxy_options(spec)),
        )
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

/// Pushes the local branches (everything queued, in order) to the remote branches of the same
/// names, in one push.
pub fn push(repo: &DataRepo, spec: &RemoteSpec, branches: &[&str]) -> Result<(), RemoteError> {
    let outcome = Outcome::default();
    let mut remote = repo
        .git()
        .remote_anonymous(&spec.url)
        .map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    let mut opts = PushOptions::new();
    opts.remote_callbacks(callbacks(spec, &outcome))
        .proxy_options(proxy_options(spec))
        .follow_redirects(git2::RemoteRedirect::None);
    let refspecs: Vec<String> = branches
        .iter()
        .map(|b| format!("refs/heads/{b}:refs/heads/{b}"))
        .collect();
    // To leave out what the remote has, libgit2's push reads every tree under the remote
    // tip (one per snapshot directory of the history), and by default re-hashes each object
    // it reads: a tenth of a run's CPU after a year. Those trees are only read to be left
    // out, and what is sent was read and hashed by the health check of this run (the queue,
    // see `DataRepo::open`) or written by it; zlib's checksum still catches a damaged object,
    // and the server hashes everything it receives. So the push alone skips the re-hashing.
    git2::opts::strict_hash_verification(false);
    let pushed = remote.push(&refspecs, Some(&mut opts));
    git2::opts::strict_hash_verification(true);
    pushed.map_err(|e| classify(e, &outcome, &spec.url, repo))?;
    if let Some(reason) = outcome.rejected.borrow().as_ref() {
        return Err(rejection(reason, &outcome.remote_messages.borrow()));
    }
    Ok(())
}

/// A ref the server refused. A lost race with another writer is retried; anything else
/// (a hook, branch protection, GitHub's private e-mail check) is for the operator.
fn rejection(reason: &str, remote_messages: &str) -> RemoteError {
    let lower = reason.to_ascii_lowercase();
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
fn classify(e: git2::Error, outcome: &Outcome, url: &str, repo: &DataRepo) -> RemoteError {
    let message = one_line(e.message());

    if outcome.no_token.get() {
        return RemoteError::Refused(format!(
            "{url} requires authentication and no token is configured (set snapshots.token or github.token)"
        ));
    }
    if outcome.credential_requests.get() > 1 || e.code() == ErrorCode::Auth {
        return RemoteError::Refused(format!(
            "{url} rejected the token (HTTP 401); check snapshots.token / github.token"
        ));
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
    let status = http_status(&message);
    match status {
        Some(403) => RemoteError::Refused(format!(
            "{url} refused access (HTTP 403); the token needs write access to the data repository"
        )),
        Some(404) => RemoteError::Refused(format!(
            "{url} was not found (HTTP 404); check snapshots.repo_path / remote_url"
        )),
        Some(401) => RemoteError::Refused(format!(
            "{url} rejected the token (HTTP 401); check snapshots.token / github.token"
        )),
        Some(code) if (500..600).contains(&code) => {
            RemoteError::Transient(format!("{url} answered HTTP {code}"))
        }
        _ if e.class() == ErrorClass::Repository && e.code() == ErrorCode::NotFound => {
            RemoteError::Refused(format!("{url}: {message}"))
        }
        _ => RemoteError::Transient(format!("cannot reach {url}: {message}")),
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
        assert_eq!(
            authority_of("https://u:p@GitHub.com:443/o/r"),
            "github.com:443"
        );
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
        let refused = rejection(
            "pre-receive hook declined",
            "remote: GH007: private email\n",
        );
        assert!(refused.to_string().contains("GH007"), "{refused}");
    }
}
