//! What the two network clients (the git remote and Discord) share: a secret type that never
//! prints, the one loopback test that decides where plain HTTP may carry a credential, and the
//! one builder of the certificates both trust (one TLS stack, ureq + rustls, for both).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// A token from the config or the environment. It has no `Display`, its `Debug` is redacted,
/// and the value is only reachable through [`Secret::expose`], at the one place that sends it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(token: String) -> Secret {
        Secret(token)
    }

    /// The value, for the request that carries it (and for redacting messages).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Whether `host` (a name or an IP address, IPv6 with or without brackets, no port) is this
/// machine: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a URL authority (`host[:port]`, `[v6]:port`) names this machine.
pub fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    is_loopback_host(host)
}

/// A file of extra CA certificates that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{} {reason}", path.display())]
pub struct CaFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// Mozilla's roots (`webpki-root-certs`) plus every certificate in each PEM file of `extra`
/// (a private CA, a TLS-inspecting proxy, the system's bundle). A file that cannot be read or
/// holds no certificate is an error naming it: trusting less than asked would fail later with
/// a message that blames the server.
pub fn root_certs(extra: &[&Path]) -> Result<RootCerts, CaFileError> {
    let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()))
        .collect();
    for path in extra {
        let ca_error = |reason: String| CaFileError {
            path: path.to_path_buf(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(format!("cannot be read: {e}")))?;
        let before = roots.len();
        for item in ureq::tls::parse_pem(&pem) {
            // Keys and other sections are not roots.
            if let PemItem::Certificate(cert) =
                item.map_err(|e| ca_error(format!("is not valid PEM: {e}")))?
            {
                roots.push(cert);
            }
        }
        if roots.len() == before {
            return Err(ca_error("holds no PEM certificate".into()));
        }
        log::debug!(
            "trusting {} extra certificates from {}",
            roots.len() - before,
            path.display()
        );
    }
    Ok(RootCerts::from(roots))
}

/// ureq's TLS settings trusting [`root_certs`]`(extra)`; rustls verifies every certificate
/// chain and host name against them, always.
pub fn tls_config(extra: &[&Path]) -> Result<TlsConfig, CaFileError> {
    Ok(TlsConfig::builder().root_certs(root_certs(extra)?).build())
}

/// `url` without any `user:password@`, query or fragment, for messages: a token pasted into a
/// URL must not be printed back.
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // scp-like `user:token@host:path`: keep only what follows the userinfo.
        return url
            .rsplit_once('@')
            .map_or(url, |(_, host)| host)
            .to_owned();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_means_this_machine_only() {
        for yes in [
            "127.0.0.1",
            "127.8.9.10",
            "localhost",
            "LOCALHOST",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(yes), "{yes}");
        }
        for no in [
            "10.0.0.1",
            "192.168.1.1",
            "example.com",
            "127.0.0.1.example.com",
            "localhost.example",
        ] {
            assert!(!is_loopback_host(no), "{no}");
        }
        assert!(is_loopback_authority("127.0.0.1:8443"));
        assert!(is_loopback_authority("[::1]:80"));
        assert!(!is_loopback_authority("example.com:80"));
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(
            format!("{:?}", Secret::new("ghp_x".into())),
            "Secret(<redacted>)"
        );
    }
}
