//! Member roles read from Discord's REST API, the way Gitcord's `list_member_roles` reads them.
//!
//! Same requests and same mapping as Gitcord: `GET /guilds/{id}/roles`, then
//! `GET /guilds/{id}/members?limit=1000[&after=<last user id>]` until an empty page, each
//! member's role ids mapped to names with unknown ids and empty names dropped. Deliberately
//! different: a 429 (and a 5xx) is waited out and retried, within a bound, where Gitcord gives
//! up on the first one; and every failure is an error, so the caller can refuse to publish a
//! snapshot that would say everyone lost their roles.
//!
//! The bot token only ever travels in the `Authorization` header: it is in no URL, message,
//! log line or `Debug` output, and plain `http://` is refused unless the API is on this machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use ureq::tls::{RootCerts, TlsConfig};

use crate::input::roles::RoleMap;
use crate::net::{is_loopback_host, Secret};
use crate::text::one_line;

/// Gitcord's hard-coded base URL, used when `discord.api_base` is not set.
pub const DEFAULT_API_BASE: &str = "https://discord.com/api/v10";

/// The largest page Discord serves, and the one Gitcord asks for.
const PAGE_LIMIT: usize = 1000;
/// Retries of one request after a 429 or a 5xx, before the run fails.
const MAX_RETRIES: u32 = 5;
/// All the waiting one run does for Discord; a cron run must end in bounded time.
const MAX_TOTAL_WAIT: Duration = Duration::from_secs(60);
/// Wait after a 429 that says nothing about how long to wait.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);
/// A host that does not answer within this is down, or not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Discord answers within seconds; a stalled response must not hang the run.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// A page of 1,000 members is well under a megabyte; anything near this is not Discord.
const BODY_LIMIT: u64 = 64 * 1024 * 1024;
/// Discord asks bots to name themselves as `DiscordBot ($url, $version)`.
const USER_AGENT: &str = concat!(
    "DiscordBot (gitcord-snapshot, ",
    env!("CARGO_PKG_VERSION"),
    ") gitcord-snapshot/",
    env!("CARGO_PKG_VERSION")
);

/// Where and as whom to ask Discord: a checked `discord:` section of the config.
#[derive(Clone, Debug)]
pub struct DiscordApi {
    base: String,
    guild_id: String,
    token: Secret,
    loopback: bool,
}

/// Why the `discord:` values cannot be used; [`ApiConfigError::key`] names the config key.
#[derive(Debug, thiserror::Error)]
pub enum ApiConfigError {
    /// `discord.api_base` is not an `http(s)://host[/path]` URL.
    #[error("must be an https URL such as {DEFAULT_API_BASE}: {0}")]
    BadBase(String),
    /// `discord.api_base` is plain http to another machine: the token would cross the network
    /// in clear.
    #[error(
        "is plain http to {0}, which is not this machine: use https (plain http is only allowed to \
         127.0.0.0/8, localhost and ::1, so that the bot token never crosses a network unencrypted)"
    )]
    PlainHttp(String),
    /// `discord.guild_id` is not a Discord id; it goes into the request path.
    #[error("must be a Discord id (digits only), found {0:?}")]
    BadGuildId(String),
    /// `discord.token` cannot be sent as a header value.
    #[error("is empty or contains spaces or control characters")]
    BadToken,
}

impl ApiConfigError {
    /// The config key the problem is in, for the message.
    pub fn key(&self) -> &'static str {
        match self {
            ApiConfigError::BadBase(_) | ApiConfigError::PlainHttp(_) => "discord.api_base",
            ApiConfigError::BadGuildId(_) => "discord.guild_id",
            ApiConfigError::BadToken => "discord.token",
        }
    }
}

impl DiscordApi {
    /// Checks the config values before anything is sent: `base` (`None` for Discord itself;
    /// a trailing `/` is dropped), the guild id and the token.
    pub fn new(
        base: Option<&str>,
        guild_id: &str,
        token: Secret,
    ) -> Result<DiscordApi, ApiConfigError> {
        let base = base
            .unwrap_or(DEFAULT_API_BASE)
            .trim_end_matches('/')
            .to_owned();
        let loopback = check_base(&base)?;
        if guild_id.is_empty() || !guild_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiConfigError::BadGuildId(guild_id.to_owned()));
        }
        if token.expose().is_empty() || !token.expose().bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiConfigError::BadToken);
        }
        Ok(DiscordApi {
            base,
            guild_id: guild_id.to_owned(),
            token,
            loopback,
        })
    }
}

#[cfg(test)]
impl DiscordApi {
    /// The base URL requests go to, without a trailing `/`.
    fn base(&self) -> &str {
        &self.base
    }
}

/// Accepts `https://host[:port][/path]`, and `http://` to a loopback host only; returns
/// whether the host is loopback.
fn check_base(base: &str) -> Result<bool, ApiConfigError> {
    let bad = |why: &str| ApiConfigError::BadBase(why.to_owned());
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| bad(&format!("{base:?} has no scheme")))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        // Do not echo it: user info may be a password.
        return Err(bad(
            "the URL must not contain user info (user@ or user:password@)",
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(bad(&format!("{base:?} has a query or fragment")));
    }
    let uri: ureq::http::Uri = base.parse().map_err(|e| bad(&format!("{base:?}: {e}")))?;
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad(&format!("{base:?} has no host")))?;
    let loopback = is_loopback_host(host);
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(loopback),
        "http" if loopback => Ok(true),
        "http" => Err(ApiConfigError::PlainHttp(host.to_owned())),
        _ => Err(bad(&format!("{base:?} is neither http nor https"))),
    }
}

/// Why the roles could not be read from Discord. Messages name the request, never the token.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// 401: the token is wrong or revoked.
    #[error(
        "Discord refused the bot token (401 Unauthorized) for GET {url}{says}: check discord.token"
    )]
    Unauthorized {
        /// The request.
        url: String,
        /// Discord's own message, if it sent one.
        says: String,
    },
    /// 403: the bot may not list the guild's members.
    #[error(
        "Discord denied access (403 Forbidden) to GET {url}{says}: the bot must be in the guild, and \
         listing members needs its Server Members intent enabled"
    )]
    Forbidden {
        /// The request.
        url: String,
        /// Discord's own message, if it sent one.
        says: String,
    },
    /// 404: no such guild (or `discord.api_base` points somewhere else).
    #[error(
        "Discord found no such guild (404 Not Found) for GET {url}{says}: check discord.guild_id and discord.api_base"
    )]
    NotFound {
        /// The request.
        url: String,
        /// Discord's own message, if it sent one.
        says: String,
    },
    /// Still 429 after the retries, or Discord asks for a longer wait than the run allows.
    #[error(
        "Discord still rate-limits GET {url} (429 Too Many Requests) after {retries} retries and \
         {waited:.1} s of waiting; giving up rather than waiting {next:.1} s more, try again later"
    )]
    RateLimited {
        /// The request.
        url: String,
        /// Retries made.
        retries: u32,
        /// Seconds waited during this run.
        waited: f64,
        /// Seconds Discord asked for next.
        next: f64,
    },
    /// Any other status: a 5xx after the retries, or one this client has no use for.
    #[error("Discord answered {status} to GET {url}{says} (after {retries} retries)")]
    Status {
        /// The request.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Discord's own message, if it sent one.
        says: String,
        /// Retries made.
        retries: u32,
    },
    /// A 200 whose body is not the JSON Discord documents.
    #[error("Discord sent an unexpected response to GET {url}: {reason}")]
    Malformed {
        /// The request.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No HTTP answer at all: DNS, connection, TLS, timeout.
    #[error("cannot reach Discord at {url}: {reason}")]
    Unreachable {
        /// The request.
        url: String,
        /// What failed.
        reason: String,
    },
    /// `SSL_CERT_FILE` is set but gives no certificate to trust.
    #[error("SSL_CERT_FILE {path} (extra CA certificates for Discord) {reason}")]
    CaFile {
        /// The file named by the variable.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl DiscordError {
    /// Whether Discord itself could not be read (as opposed to a problem on this machine);
    /// only those may fall back to an empty mapping.
    pub fn is_remote(&self) -> bool {
        !matches!(self, DiscordError::CaFile { .. })
    }
}

#[derive(Deserialize)]
struct Role {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct Member {
    user: User,
    roles: Vec<String>,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    retry_after: Option<f64>,
}

/// Reads the roles from Discord. With `required` false (`snapshots.roles_required: false`), a
/// Discord that cannot be read gives Gitcord's answer instead: no roles, and one warning.
pub fn load_roles(api: &DiscordApi, required: bool) -> Result<RoleMap, DiscordError> {
    match fetch_member_roles(api) {
        Ok(roles) => Ok(roles),
        Err(e) if !required && e.is_remote() => {
            log::warn!(
                "{}; writing empty roles because snapshots.roles_required is false",
                one_line(&e.to_string())
            );
            Ok(RoleMap::new())
        }
        Err(e) => Err(e),
    }
}

/// Role names per member of the guild, every member included (no roles: `[]`), names in
/// Discord's order (the snapshot sorts them).
pub fn fetch_member_roles(api: &DiscordApi) -> Result<RoleMap, DiscordError> {
    let mut client = Client::new(api)?;
    let guild = format!("{}/guilds/{}", api.base, api.guild_id);
    let roles: Vec<Role> = client.get_json(&format!("{guild}/roles"))?;
    let lookup: HashMap<&str, &str> = roles
        .iter()
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    let mut out = RoleMap::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            None => format!("{guild}/members?limit={PAGE_LIMIT}"),
            Some(id) => format!("{guild}/members?limit={PAGE_LIMIT}&after={id}"),
        };
        let page: Vec<Member> = client.get_json(&url)?;
        let Some(last) = page.last() else { break };
        let last = last.user.id.clone();
        if last.is_empty() || !last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DiscordError::Malformed {
                url,
                reason: format!("member user id {last:?} is not a Discord id"),
            });
        }
        if after.as_deref() == Some(last.as_str()) {
            // Paging would never end.
            return Err(DiscordError::Malformed {
                url,
                reason: format!("the page after {last} ends with {last} again"),
            });
        }
        for member in page {
            let names = member
                .roles
                .iter()
                .filter_map(|id| lookup.get(id.as_str()))
                .filter(|name| !name.is_empty())
                .map(|name| (*name).to_owned())
                .collect();
            out.insert(member.user.id, names);
        }
        after = Some(last);
    }
    log::info!("read the roles of {} members from Discord", out.len());
    Ok(out)
}

/// One run's HTTP client: the agent plus the waiting done so far, shared by all requests.
struct Client<'a> {
    agent: ureq::Agent,
    api: &'a DiscordApi,
    waited: Duration,
}

impl<'a> Client<'a> {
    fn new(api: &'a DiscordApi) -> Result<Client<'a>, DiscordError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Discord's API does not redirect; following one could carry the token elsewhere.
            .max_redirects(0)
            .user_agent(USER_AGENT)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_send_request(Some(RESPONSE_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
            .timeout_recv_body(Some(RESPONSE_TIMEOUT));
        if api.loopback {
            // A proxy from the environment must not see a local API (or its token).
            config = config.proxy(None);
        }
        if api
            .base
            .get(..6)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https:"))
        {
            if let Some(tls) = tls_config()? {
                config = config.tls_config(tls);
            }
        }
        Ok(Client {
            agent: config.build().into(),
            api,
            waited: Duration::ZERO,
        })
    }

    /// GET `url` as JSON, waiting out 429s and 5xx within the run's bounds.
    fn get_json<T: DeserializeOwned>(&mut self, url: &str) -> Result<T, DiscordError> {
        let auth = format!("Bot {}", self.api.token.expose());
        let mut retries = 0;
        loop {
            log::debug!("GET {url}");
            let mut response = self
                .agent
                .get(url)
                .header("Authorization", &auth)
                .call()
                .map_err(|e| self.unreachable(url, e))?;
            let status = response.status().as_u16();
            let header_wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok());
            let body = response
                .body_mut()
                .with_config()
                .limit(BODY_LIMIT)
                .read_to_vec()
                .map_err(|e| self.unreachable(url, e))?;
            if status == 200 {
                return serde_json::from_slice(&body).map_err(|e| DiscordError::Malformed {
                    url: url.to_owned(),
                    reason: e.to_string(),
                });
            }
            let error: Option<ErrorBody> = serde_json::from_slice(&body).ok();
            let says = self.says(error.as_ref());
            let url = url.to_owned();
            match status {
                401 => return Err(DiscordError::Unauthorized { url, says }),
                403 => return Err(DiscordError::Forbidden { url, says }),
                404 => return Err(DiscordError::NotFound { url, says }),
                429 | 500..=599 => {
                    let asked = error.and_then(|e| e.retry_after).or(header_wait);
                    let wait = match asked {
                        Some(s) if s.is_finite() => Duration::from_secs_f64(s.clamp(0.0, 3600.0)),
                        _ if status == 429 => DEFAULT_RATE_LIMIT_WAIT,
                        // 1, 2, 4, 8, 16 s: a 5xx without advice gets time to recover.
                        _ => Duration::from_secs(1 << retries.min(4)),
                    };
                    if retries >= MAX_RETRIES || self.waited + wait > MAX_TOTAL_WAIT {
                        return Err(if status == 429 {
                            DiscordError::RateLimited {
                                url,
                                retries,
                                waited: self.waited.as_secs_f64(),
                                next: wait.as_secs_f64(),
                            }
                        } else {
                            DiscordError::Status {
                                url,
                                status,
                                says,
                                retries,
                            }
                        });
                    }
                    log::info!(
                        "Discord answered {status} to GET {url}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    std::thread::sleep(wait);
                    self.waited += wait;
                    retries += 1;
                }
                _ => {
                    return Err(DiscordError::Status {
                        url,
                        status,
                        says,
                        retries,
                    })
                }
            }
        }
    }

    fn unreachable(&self, url: &str, e: ureq::Error) -> DiscordError {
        DiscordError::Unreachable {
            url: url.to_owned(),
            reason: self.redact(&e.to_string()),
        }
    }

    /// Discord's own words from an error body, shortened to one line, for the message.
    fn says(&self, error: Option<&ErrorBody>) -> String {
        match error.and_then(|e| e.message.as_deref()) {
            Some(m) => {
                let m: String = self.redact(&one_line(m)).chars().take(200).collect();
                format!(" (Discord says {m:?})")
            }
            None => String::new(),
        }
    }

    /// Belt and braces: whatever a server or a library echoes, the token is not printed.
    fn redact(&self, text: &str) -> String {
        text.replace(self.api.token.expose(), "<redacted>")
    }
}

/// Mozilla's roots plus the certificates in `SSL_CERT_FILE`, when that is set (a private CA
/// or a TLS-inspecting proxy); `None` keeps ureq's default, Mozilla's roots alone.
fn tls_config() -> Result<Option<TlsConfig>, DiscordError> {
    match std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        Some(path) => Ok(Some(
            TlsConfig::builder()
                .root_certs(roots_with(Path::new(&path))?)
                .build(),
        )),
        None => Ok(None),
    }
}

/// Mozilla's roots plus every certificate in the PEM file at `path` (the one builder in
/// `net`, shared with the git remote).
fn roots_with(path: &Path) -> Result<RootCerts, DiscordError> {
    crate::net::root_certs(&[path]).map_err(|e| DiscordError::CaFile {
        path: e.path,
        reason: e.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: Option<&str>) -> Result<DiscordApi, ApiConfigError> {
        DiscordApi::new(base, "123", Secret::new("tok".into()))
    }

    #[test]
    fn the_default_base_is_gitcords() {
        assert_eq!(api(None).unwrap().base(), "https://discord.com/api/v10");
        assert_eq!(
            api(Some("https://example.com/api/")).unwrap().base(),
            "https://example.com/api"
        );
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080/api",
            "http://127.1.2.3",
            "http://localhost:1/x",
            "http://[::1]:9/",
        ] {
            assert!(api(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.invalid/api",
            "http://10.0.0.1",
            "http://[::2]/",
            "http://localhost.example.com",
        ] {
            let err = api(Some(bad)).unwrap_err();
            assert!(matches!(err, ApiConfigError::PlainHttp(_)), "{bad}: {err}");
            assert_eq!(err.key(), "discord.api_base");
        }
    }

    #[test]
    fn other_bases_are_refused_without_echoing_credentials() {
        for bad in [
            "discord.com/api",
            "ftp://discord.com",
            "https://",
            "https://d.com/api?x=1",
        ] {
            assert!(
                matches!(api(Some(bad)), Err(ApiConfigError::BadBase(_))),
                "{bad}"
            );
        }
        let err = api(Some("https://user:hunter2@discord.com/api"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn guild_ids_and_tokens_are_checked_without_showing_the_token() {
        let err = DiscordApi::new(None, "12/../34", Secret::new("t".into())).unwrap_err();
        assert_eq!(err.key(), "discord.guild_id");
        for bad in ["", "has space", "line\nbreak"] {
            let err = DiscordApi::new(None, "1", Secret::new(bad.into())).unwrap_err();
            assert_eq!(err.key(), "discord.token");
            assert!(bad.is_empty() || !err.to_string().contains(bad));
        }
    }

    #[test]
    fn extra_ca_certificates_are_added_to_mozillas() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let pem = file(
            "ca.pem",
            "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n",
        );
        let RootCerts::Specific(roots) = roots_with(&pem).unwrap() else {
            panic!("not specific roots")
        };
        assert_eq!(
            roots.len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + 1
        );
        assert_eq!(roots.last().unwrap().der(), [0, 1, 2, 3]);
        for (path, why) in [
            (file("empty.pem", "no certificates here\n"), "holds no PEM"),
            (dir.path().join("none.pem"), "cannot be read"),
        ] {
            let err = roots_with(&path).unwrap_err();
            assert!(!err.is_remote());
            assert!(
                err.to_string().contains(why) && err.to_string().contains("SSL_CERT_FILE"),
                "{err}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let api = DiscordApi::new(None, "1", Secret::new("secret-token-value".into())).unwrap();
        assert!(!format!("{api:?}").contains("secret-token-value"));
    }
}
