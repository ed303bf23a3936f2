//! git's smart HTTP on the crate's one HTTP/TLS stack (ureq + rustls, as for Discord): the
//! advertisement (`GET info/refs?service=...`) and the RPC calls (`POST git-upload-pack` /
//! `git-receive-pack`), for libgit2 through a registered subtransport ([`register`]) and for
//! our own push.
//!
//! What each request does, the way git does it:
//! - TLS is always verified, against Mozilla's roots, the system's bundle, `SSL_CERT_FILE` and
//!   `snapshots.ca_file` (built once by [`crate::net::tls_config`]).
//! - The token goes only in an `Authorization: Basic` header (user `x-access-token`), only to
//!   the configured scheme and host, sent with the first request: a 401 then means the token
//!   was rejected, and that ends the run (no second attempt, no loop).
//! - Redirects are followed on the first request only (`info/refs`), within the same scheme,
//!   as git's `http.followRedirects=initial`; the RPC calls then go to where it led.
//! - A proxy from `https_proxy`/`HTTPS_PROXY`/`all_proxy`/`ALL_PROXY`, skipped for the hosts
//!   in `no_proxy`/`NO_PROXY`, as git (curl) takes them. Plain `http://` is only ever allowed
//!   to this machine and never goes through a proxy, which could read the token off it.
//! - Timeouts: connecting, and each read or write, so a hung remote becomes a retryable failure.
//!
//! Per-run settings (token, CA file, proxy) reach the transport libgit2 creates through a small
//! process-wide context, [`configure`], set by the session before any network use; what went
//! wrong on the wire is kept in a slot ([`take_failure`]) so that the caller can classify it
//! (libgit2 only passes a message on).

mod subtransport;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use ureq::http::Response;
use ureq::tls::TlsConfig;
use ureq::{Agent, Body, BodyReader, SendBody};

pub use subtransport::register;

use crate::net::{CaFileError, Secret};

/// Who we say we are; git servers (GitHub among them) expect a `git/` agent on smart HTTP.
const USER_AGENT: &str = concat!("git/2.0 (gitcord-snapshot ", env!("CARGO_PKG_VERSION"), ")");
/// A host that does not accept a connection within this is down, or not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest silence on an open connection (libgit2's own default server timeout was 60 s).
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Test-only: a shorter [`IO_TIMEOUT`] in milliseconds, so that a test of a server that never
/// answers does not wait a minute (like `crate::pause`, production never sets it).
pub const IO_TIMEOUT_VAR: &str = "GITCORD_SNAPSHOT_TEST_IO_TIMEOUT_MS";
/// Test-only: a smaller [`POST_BUFFER`] in bytes, so that a test's small push takes the
/// streamed (chunked) path that a large one takes.
pub const POST_BUFFER_VAR: &str = "GITCORD_SNAPSHOT_TEST_POST_BUFFER";
/// A request body up to this is sent with a `Content-Length`; a larger one is streamed in
/// chunks as it is written (git's `http.postBuffer` default).
const POST_BUFFER: usize = 1 << 20;
/// As many redirects as anyone needs to find a moved repository.
const MAX_REDIRECTS: usize = 5;
/// The user name sent with the token (what GitHub expects for installation and fine-grained
/// tokens, and what any other user name does for a classic one).
const TOKEN_USER: &str = "x-access-token";
/// Where distributions keep the system's CA bundle (Debian/Ubuntu, Fedora/RHEL, openSUSE,
/// Alpine/macOS): the roots OpenSSL trusted by default, with any the administrator added.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The two git services spoken over HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Fetch.
    UploadPack,
    /// Push.
    ReceivePack,
}

impl Service {
    /// The service's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }
}

/// What went wrong talking to the remote, for the caller to put in an operator's words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// 401 and no token configured.
    #[error("the remote asks for credentials and no token is configured")]
    NoToken,
    /// 401 to a request that carried the token.
    #[error("the remote rejected the token (HTTP 401)")]
    TokenRejected,
    /// 401 from a host a redirect led to, which is never sent the token.
    #[error("redirected to {0}, which asks for credentials; the token is only sent to the configured host")]
    AuthElsewhere(String),
    /// Any other status than 200.
    #[error("unexpected http status code: {0}")]
    Status(u16),
    /// The TLS handshake failed (an untrusted or mismatched certificate, above all).
    #[error("{0}")]
    Tls(String),
    /// No answer: DNS, connection, timeout, a connection cut.
    #[error("{0}")]
    Unreachable(String),
    /// An answer that is not git's smart HTTP, or a redirect git would not follow.
    #[error("{0}")]
    Protocol(String),
}

/// The per-run settings, set once by the session.
struct Settings {
    /// Sent only to `token_origin`.
    token: Option<Secret>,
    /// `scheme://host[:port]` of the configured remote, lower-cased.
    token_origin: String,
    tls: TlsConfig,
    /// The proxy URL for `https://` (may carry the proxy's own credentials: never printed).
    https_proxy: Option<String>,
    /// `no_proxy` entries, lower-cased, without a leading dot.
    no_proxy: Vec<String>,
    io_timeout: Duration,
    post_buffer: usize,
}

static SETTINGS: RwLock<Option<Arc<Settings>>> = RwLock::new(None);
static FAILURE: Mutex<Option<Failure>> = Mutex::new(None);

/// Sets this run's settings for every git HTTP request that follows: the token for
/// `remote_url`'s scheme and host, the CA file on top of the default roots, the proxy from the
/// environment. Called by the session before any network use; a later call replaces them.
pub fn configure(
    remote_url: &str,
    token: Option<Secret>,
    ca_file: Option<&Path>,
) -> Result<(), CaFileError> {
    let settings = Settings::new(remote_url, token, ca_file)?;
    *SETTINGS.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(settings));
    Ok(())
}

/// The failure the last request recorded, if any, taking it (the next operation starts clean).
pub fn take_failure() -> Option<Failure> {
    FAILURE.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Keeps `failure` for [`take_failure`] and returns it.
fn record(failure: Failure) -> Failure {
    *FAILURE.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure.clone());
    failure
}

fn settings() -> Result<Arc<Settings>, Failure> {
    if let Some(s) = SETTINGS.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Ok(Arc::clone(s));
    }
    // Not configured (a caller that pushes nothing with a token): no token, default roots.
    let s = Settings::new("", None, None).map_err(|e| Failure::Protocol(e.to_string()))?;
    Ok(Arc::new(s))
}

impl Settings {
    fn new(
        remote_url: &str,
        token: Option<Secret>,
        ca_file: Option<&Path>,
    ) -> Result<Settings, CaFileError> {
        let env_file = std::env::var_os("SSL_CERT_FILE")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let mut extra: Vec<&Path> = env_file.iter().map(PathBuf::as_path).collect();
        extra.extend(ca_file);
        // The system's bundle when there is one; one that cannot be read is not ours to fix.
        let system = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file());
        let tls = match system {
            Some(bundle) => {
                let mut with_system = vec![bundle];
                with_system.extend(&extra);
                match crate::net::tls_config(&with_system) {
                    Err(e) if e.path == bundle => {
                        log::debug!("not using the system's CA bundle: {e}");
                        crate::net::tls_config(&extra)?
                    }
                    other => other?,
                }
            }
            None => crate::net::tls_config(&extra)?,
        };
        let env = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
        };
        let https_proxy = env(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]);
        let no_proxy = env(&["no_proxy", "NO_PROXY"])
            .map(|list| parse_no_proxy(&list))
            .unwrap_or_default();
        let io_timeout = std::env::var(IO_TIMEOUT_VAR)
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(IO_TIMEOUT, Duration::from_millis);
        let post_buffer = std::env::var(POST_BUFFER_VAR)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(POST_BUFFER);
        Ok(Settings {
            post_buffer,
            token,
            token_origin: origin_of(remote_url).unwrap_or_default(),
            tls,
            https_proxy,
            no_proxy,
            io_timeout,
        })
    }

    /// The proxy for a request to `scheme://host`, if any.
    fn proxy_for(&self, scheme: &str, host: &str) -> Option<&str> {
        if scheme != "https" || no_proxy_matches(&self.no_proxy, host) {
            return None;
        }
        self.https_proxy.as_deref()
    }
}

/// `no_proxy` as curl reads it: comma- (or space-) separated host names, domains (with or
/// without a leading dot) and addresses; `*` alone means every host.
fn parse_no_proxy(list: &str) -> Vec<String> {
    list.split([',', ' ', '\t'])
        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
        .map(|e| e.trim_start_matches('[').trim_end_matches(']').to_owned())
        .filter(|e| !e.is_empty())
        .collect()
}

fn no_proxy_matches(entries: &[String], host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    entries.iter().any(|e| {
        e == "*"
            || *e == host
            || host
                .strip_suffix(e.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

/// `scheme://host[:port]`, lower-cased, of an http(s) URL; `None` for anything else.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// The host of an origin (`scheme://host[:port]`), without the port.
fn host_of(origin: &str) -> &str {
    let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// One repository on a smart-HTTP remote: where it is (after any redirect) and the client
/// that talks to it.
pub struct HttpRemote {
    settings: Arc<Settings>,
    agent: Agent,
    /// The repository URL, without a trailing slash; moved by a redirect of `info/refs`.
    base: String,
    /// Whether `info/refs` was asked for already: later requests follow no redirect.
    discovered: bool,
}

impl HttpRemote {
    /// A client for the repository at `url` (`https://`, or `http://` to this machine).
    pub fn new(url: &str) -> Result<HttpRemote, Failure> {
        let settings = settings()?;
        let base = url.trim_end_matches('/').to_owned();
        let agent = agent_for(&settings, &base)?;
        Ok(HttpRemote {
            settings,
            agent,
            base,
            discovered: false,
        })
    }

    /// `GET info/refs?service=...`: the refs and capabilities, as a stream. The first call
    /// follows redirects (same scheme only) and moves the repository URL to where they led.
    pub fn advertisement(&mut self, service: Service) -> Result<BodyReader<'static>, Failure> {
        let suffix = format!("/info/refs?service={}", service.name());
        let mut url = format!("{}{suffix}", self.base);
        let follow = if self.discovered { 0 } else { MAX_REDIRECTS };
        self.discovered = true;
        for hop in 0..=follow {
            log::debug!("GET {url}");
            let request = self
                .agent
                .get(&url)
                .header("Accept", "*/*")
                .header("Pragma", "no-cache");
            let (request, sent) = self.authorize(request, &url);
            let response = request.call().map_err(|e| record(wire_failure(&e)))?;
            let status = response.status().as_u16();
            if !(300..400).contains(&status) || status == 304 || follow == 0 {
                let advert = format!("application/x-{}-advertisement", service.name());
                return self.accept(response, sent, &url, &advert);
            }
            if hop == follow {
                return Err(record(Failure::Protocol(format!(
                    "more than {MAX_REDIRECTS} redirects"
                ))));
            }
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    record(Failure::Protocol(format!(
                        "answered HTTP {status} without a Location"
                    )))
                })?;
            let next = resolve_location(&url, location);
            let (from, to) = (origin_of(&url), origin_of(&next));
            let same_scheme = match (&from, &to) {
                (Some(a), Some(b)) => {
                    a.split_once("://").map(|x| x.0) == b.split_once("://").map(|x| x.0)
                }
                _ => false,
            };
            if !same_scheme {
                return Err(record(Failure::Protocol(format!(
                    "redirected to {}, another scheme; git follows redirects within the same scheme only",
                    crate::net::without_credentials(&next)
                ))));
            }
            let Some(base) = next.strip_suffix(&suffix) else {
                return Err(record(Failure::Protocol(format!(
                    "redirected to {}, which is not the repository's info/refs",
                    crate::net::without_credentials(&next)
                ))));
            };
            log::info!(
                "{} redirects to {}",
                self.base,
                crate::net::without_credentials(base)
            );
            if to != origin_of(&self.base) {
                self.agent = agent_for(&self.settings, &next)?;
            }
            self.base = base.trim_end_matches('/').to_owned();
            url = next;
        }
        Err(record(Failure::Protocol(format!(
            "more than {MAX_REDIRECTS} redirects"
        ))))
    }

    /// `POST <service>`: a request whose body is written into the returned [`RpcRequest`]
    /// and whose answer [`RpcRequest::finish`] returns.
    pub fn rpc(&self, service: Service) -> RpcRequest {
        RpcRequest {
            url: format!("{}/{}", self.base, service.name()),
            service,
            agent: self.agent.clone(),
            auth: self.auth_for(&format!("{}/{}", self.base, service.name())),
            settings: Arc::clone(&self.settings),
            state: RpcState::Buffering(Vec::new()),
        }
    }

    /// The `Authorization` header value for `url`, if the token may go there.
    fn auth_for(&self, url: &str) -> Option<String> {
        let token = self.settings.token.as_ref()?;
        if origin_of(url).as_deref() != Some(self.settings.token_origin.as_str()) {
            return None;
        }
        Some(basic_auth(token))
    }

    fn authorize<B>(
        &self,
        request: ureq::RequestBuilder<B>,
        url: &str,
    ) -> (ureq::RequestBuilder<B>, bool) {
        match self.auth_for(url) {
            Some(auth) => (request.header("Authorization", &auth), true),
            None => (request, false),
        }
    }

    fn accept(
        &self,
        response: Response<Body>,
        token_sent: bool,
        url: &str,
        content_type: &str,
    ) -> Result<BodyReader<'static>, Failure> {
        check_response(&self.settings, response, token_sent, url, content_type).map_err(record)
    }
}

/// `Basic base64(x-access-token:token)`.
fn basic_auth(token: &Secret) -> String {
    use base64::Engine as _;
    let pair = format!("{TOKEN_USER}:{}", token.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The agent for requests to `url`: our TLS roots, no redirect of its own, timeouts, and the
/// proxy the environment names for that host.
fn agent_for(settings: &Settings, url: &str) -> Result<Agent, Failure> {
    let origin = origin_of(url).ok_or_else(|| {
        Failure::Protocol(format!(
            "{} is not an http(s) URL",
            crate::net::without_credentials(url)
        ))
    })?;
    let scheme = origin.split_once("://").map_or("", |x| x.0);
    let proxy = match settings.proxy_for(scheme, host_of(&origin)) {
        None => None,
        Some(p) => Some(ureq::Proxy::new(p).map_err(|_| {
            Failure::Protocol(
                "the proxy named by https_proxy/HTTPS_PROXY/all_proxy is not a valid proxy URL"
                    .into(),
            )
        })?),
    };
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(USER_AGENT)
        .tls_config(settings.tls.clone())
        .proxy(proxy)
        .timeout_resolve(Some(CONNECT_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(settings.io_timeout))
        .timeout_per_write(Some(settings.io_timeout))
        .build();
    Ok(config.into())
}

/// A `Location` made absolute against the URL that answered with it.
fn resolve_location(from: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let origin = origin_of(from).unwrap_or_default();
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = from.split('?').next().unwrap_or(from);
    let dir = path.rsplit_once('/').map_or(path, |(d, _)| d);
    format!("{dir}/{location}")
}

/// A 200 with git's content type, as a stream; anything else as a [`Failure`].
fn check_response(
    settings: &Settings,
    response: Response<Body>,
    token_sent: bool,
    url: &str,
    content_type: &str,
) -> Result<BodyReader<'static>, Failure> {
    let status = response.status().as_u16();
    match status {
        200 => {}
        401 if token_sent => return Err(Failure::TokenRejected),
        401 if settings.token.is_some() => {
            return Err(Failure::AuthElsewhere(
                origin_of(url).unwrap_or_else(|| url.to_owned()),
            ))
        }
        401 => return Err(Failure::NoToken),
        _ => return Err(Failure::Status(status)),
    }
    let got = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if got.split(';').next().map(str::trim) != Some(content_type) {
        return Err(Failure::Protocol(format!(
            "answered with content type {got:?} instead of {content_type:?}; is it a git smart-HTTP server?"
        )));
    }
    Ok(response.into_body().into_reader())
}

/// What ureq's error means for an operator: TLS, or no answer.
fn wire_failure(e: &ureq::Error) -> Failure {
    let text = e.to_string();
    let tls = match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => true,
        // rustls reports a refused certificate as an I/O error of kind InvalidData.
        ureq::Error::Io(io) => {
            io.kind() == io::ErrorKind::InvalidData && io.get_ref().is_some() && {
                let t = text.to_ascii_lowercase();
                t.contains("certificate") || t.contains("tls") || t.contains("handshake")
            }
        }
        _ => false,
    };
    if tls {
        Failure::Tls(text)
    } else if let ureq::Error::Timeout(_) = e {
        Failure::Unreachable(format!("timed out waiting for the server ({text})"))
    } else {
        Failure::Unreachable(text)
    }
}

/// A POST being written: buffered up to [`POST_BUFFER`], then streamed (chunked) from a
/// thread that sends while the caller writes.
pub struct RpcRequest {
    url: String,
    service: Service,
    agent: Agent,
    auth: Option<String>,
    settings: Arc<Settings>,
    state: RpcState,
}

enum RpcState {
    Buffering(Vec<u8>),
    Streaming {
        pipe: io::PipeWriter,
        sender: JoinHandle<Result<Response<Body>, ureq::Error>>,
    },
    Done,
}

impl RpcRequest {
    fn request(&self) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let name = self.service.name();
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", &format!("application/x-{name}-request"))
            .header("Accept", &format!("application/x-{name}-result"));
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        request
    }

    /// Sends what was written (or ends the stream) and returns the answer's body.
    pub fn finish(&mut self) -> Result<BodyReader<'static>, Failure> {
        log::debug!("POST {}", self.url);
        let response = match std::mem::replace(&mut self.state, RpcState::Done) {
            RpcState::Buffering(body) => self.request().send(&body[..]),
            RpcState::Streaming { pipe, sender } => {
                drop(pipe);
                sender.join().unwrap_or_else(|_| {
                    Err(ureq::Error::Io(io::Error::other(
                        "the sending thread panicked",
                    )))
                })
            }
            RpcState::Done => {
                return Err(record(Failure::Protocol("a request was sent twice".into())))
            }
        };
        let response = response.map_err(|e| record(wire_failure(&e)))?;
        let content_type = format!("application/x-{}-result", self.service.name());
        check_response(
            &self.settings,
            response,
            self.auth.is_some(),
            &self.url,
            &content_type,
        )
        .map_err(record)
    }
}

impl Write for RpcRequest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.state {
            RpcState::Buffering(body) if body.len() + buf.len() <= self.settings.post_buffer => {
                body.extend_from_slice(buf);
                Ok(buf.len())
            }
            RpcState::Buffering(body) => {
                let head = std::mem::take(body);
                let (reader, mut pipe) = io::pipe()?;
                let request = self.request();
                let sender =
                    std::thread::spawn(move || request.send(SendBody::from_owned_reader(reader)));
                pipe.write_all(&head)?;
                pipe.write_all(buf)?;
                self.state = RpcState::Streaming { pipe, sender };
                Ok(buf.len())
            }
            RpcState::Streaming { pipe, .. } => match pipe.write_all(buf) {
                Ok(()) => Ok(buf.len()),
                // The sender stopped reading: its own error says why.
                Err(e) => {
                    let RpcState::Streaming { pipe, sender } =
                        std::mem::replace(&mut self.state, RpcState::Done)
                    else {
                        return Err(e);
                    };
                    drop(pipe);
                    let why = match sender.join() {
                        Ok(Err(err)) => record(wire_failure(&err)),
                        Ok(Ok(response)) => record(Failure::Status(response.status().as_u16())),
                        Err(_) => record(Failure::Unreachable(e.to_string())),
                    };
                    Err(io::Error::other(why.to_string()))
                }
            },
            RpcState::Done => Err(io::Error::other("the request was already sent")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_is_read_as_curl_reads_it() {
        let list = parse_no_proxy(" .example.com, localhost ,[::1] 10.0.0.1");
        assert_eq!(list, ["example.com", "localhost", "::1", "10.0.0.1"]);
        for yes in [
            "example.com",
            "git.EXAMPLE.com",
            "localhost",
            "[::1]",
            "10.0.0.1",
        ] {
            assert!(no_proxy_matches(&list, yes), "{yes}");
        }
        for no in ["badexample.com", "example.org", "10.0.0.10", "127.0.0.1"] {
            assert!(!no_proxy_matches(&list, no), "{no}");
        }
        assert!(no_proxy_matches(&parse_no_proxy("*"), "anything.at.all"));
        assert!(!no_proxy_matches(&parse_no_proxy(""), "github.com"));
    }

    #[test]
    fn origins_and_hosts() {
        assert_eq!(
            origin_of("https://u:p@GitHub.com:443/o/r.git").as_deref(),
            Some("https://github.com:443")
        );
        assert_eq!(origin_of("file:///srv/r"), None);
        assert_eq!(host_of("https://github.com:443"), "github.com");
        assert_eq!(host_of("https://[::1]:8443"), "::1");
        assert_eq!(host_of("http://localhost"), "localhost");
    }

    #[test]
    fn redirect_locations_are_made_absolute() {
        let from = "https://h:1/git/a.git/info/refs?service=git-upload-pack";
        assert_eq!(
            resolve_location(from, "https://o/x/info/refs?service=git-upload-pack"),
            "https://o/x/info/refs?service=git-upload-pack"
        );
        assert_eq!(
            resolve_location(from, "/git/b.git/info/refs"),
            "https://h:1/git/b.git/info/refs"
        );
        assert_eq!(
            resolve_location(from, "refs2"),
            "https://h:1/git/a.git/info/refs2"
        );
    }

    #[test]
    fn basic_auth_carries_the_token_user() {
        assert_eq!(
            basic_auth(&Secret::new("t".into())),
            "Basic eC1hY2Nlc3MtdG9rZW46dA=="
        );
    }
}
