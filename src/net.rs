//! What the two network clients (the git remote and Discord) share about keeping credentials
//! safe: a secret type that never prints, and the one loopback test that decides where plain
//! HTTP may carry a credential.

use std::fmt;
use std::net::IpAddr;

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
