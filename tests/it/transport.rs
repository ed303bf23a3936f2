//! git over HTTPS on our own transport (ureq + rustls, no OpenSSL): a real proxy on loopback
//! taken from the environment as git takes it, `no_proxy`, redirects of a moved repository,
//! and CA files. The TLS, token and status cases are in push.rs.

use crate::support::git::{fsck, history};
use crate::support::git_server::GitServer;
use crate::support::host::{dir_name, Host};
use crate::support::net::HeldPort;
use crate::support::proxy::Proxy;
use crate::support::testenv::Run;

/// `push` of snapshot `n` with the host's environment plus `extra` variables.
fn push_with(host: &Host, n: u32, extra: &[(&str, &str)]) -> Run {
    let vars = host.env_vars();
    let mut all: Vec<(&str, Option<&str>)> =
        vars.iter().map(|(k, v)| (*k, Some(v.as_str()))).collect();
    // Nothing from the test's own environment decides the route.
    for k in [
        "https_proxy",
        "HTTPS_PROXY",
        "http_proxy",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
    ] {
        all.push((k, None));
    }
    all.extend(extra.iter().map(|(k, v)| (*k, Some(*v))));
    host.env.run_with(host.args("clone", n, &[]), &all)
}

#[test]
fn https_goes_through_the_environments_proxy_and_no_proxy_bypasses_it() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let proxy = Proxy::start();
    let host = Host::for_server(&server, "data");

    // https_proxy, as git and curl read it: every request is tunnelled through the proxy.
    push_with(&host, 0, &[("https_proxy", &proxy.url())]).expect_code(0);
    let first = proxy.connects_to(server.port());
    assert!(
        first >= 2,
        "the discovery, fetch and push went through the proxy ({first} CONNECTs)\n{}",
        proxy.log()
    );
    // HTTPS_PROXY too.
    push_with(&host, 1, &[("HTTPS_PROXY", &proxy.url())]).expect_code(0);
    let second = proxy.connects_to(server.port());
    assert!(second > first, "{}", proxy.log());
    // no_proxy / NO_PROXY name the host: straight to the server, the proxy sees nothing.
    push_with(
        &host,
        2,
        &[
            ("https_proxy", &proxy.url()),
            ("no_proxy", "example.com,127.0.0.1"),
        ],
    )
    .expect_code(0);
    push_with(
        &host,
        3,
        &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "*")],
    )
    .expect_code(0);
    assert_eq!(proxy.connects_to(server.port()), second, "{}", proxy.log());
    // The tunnel carries TLS: the proxy never sees the token.
    assert!(!proxy.log().contains(server.token()));

    // A proxy that is down: the push is retried later, the queue kept, nothing blamed on TLS.
    let down = HeldPort::closed();
    push_with(
        &host,
        4,
        &[("https_proxy", &format!("http://127.0.0.1:{}", down.port()))],
    )
    .expect_error(75, &["cannot reach", "1 snapshot commit(s) queued"]);
    push_with(&host, 5, &[]).expect_code(0);
    assert_eq!(history(&bare), ((0..6).map(dir_name).collect(), true));
    fsck(&bare);
}

#[test]
fn a_moved_repository_is_followed_on_the_first_request_within_https_only() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let moved = server.url("data").replace("/git/", "/moved/");
    let host = Host::new(&moved, server.token(), Some(server.ca_file()));
    host.push("clone", 0, &[]).expect_code(0);
    host.push("clone", 1, &[]).expect_code(0);
    assert_eq!(history(&bare), (vec![dir_name(0), dir_name(1)], true));
    let log = server.access_log();
    // Each operation asks the old place first, then talks to where it led.
    assert!(
        log.contains("GET /moved/data.git/info/refs?service=git-receive-pack 301"),
        "{log}"
    );
    assert!(
        log.contains("POST /git/data.git/git-receive-pack 200"),
        "{log}"
    );
    assert!(!log.contains("POST /moved/"), "{log}");

    // A redirect from https to http is not followed: the token would travel in clear.
    let insecure = server.url("data").replace("/git/", "/insecure/");
    let host = Host::new(&insecure, server.token(), Some(server.ca_file()));
    host.push("clone", 2, &[])
        .expect_error(77, &["another scheme"]);
    assert_eq!(history(&bare).0, [dir_name(0), dir_name(1)]);
}

#[test]
fn ca_files_that_cannot_be_used_are_named() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let mut host = Host::for_server(&server, "data");
    // SSL_CERT_FILE with no certificate: the snapshot is committed and queued, the push fails
    // naming the file.
    host.env.write("empty.pem", "no certificates here\n");
    host.ca = Some(host.env.path("empty.pem"));
    host.push("clone", 0, &[])
        .expect_error(77, &["empty.pem", "holds no PEM certificate", "queued"]);
    // snapshots.ca_file alone (no SSL_CERT_FILE) is enough to trust the server.
    host.ca = None;
    host.add_config(&format!("  ca_file: \"{}\"\n", server.ca_file().display()));
    host.push("clone", 1, &[]).expect_code(0);
    assert_eq!(history(&bare), (vec![dir_name(0), dir_name(1)], true));
}

#[test]
fn a_server_that_never_answers_times_out_and_the_snapshot_is_queued() {
    // A listener that accepts connections and never says a word (not even TLS's hello).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept() {
            open.push(stream);
            if open.len() == 4 {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    });
    let host = Host::new(
        &format!("https://127.0.0.1:{port}/git/data.git"),
        "tok_unused",
        None,
    );
    let started = std::time::Instant::now();
    push_with(&host, 0, &[("GITCORD_SNAPSHOT_TEST_IO_TIMEOUT_MS", "1500")]).expect_error(
        75,
        &["cannot reach", "timed out", "1 snapshot commit(s) queued"],
    );
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(8), "{took:?}");
    let clone = host.clone_path("clone").join(".git");
    assert_eq!(history(&clone).0, [dir_name(0)], "committed, queued");
    drop(held);
}

#[test]
fn http_statuses_are_classified_as_before() {
    let server = GitServer::start();
    // No such repository: http-backend answers 404.
    let missing = Host::for_server(&server, "missing");
    missing
        .push("clone", 0, &[])
        .expect_error(77, &["was not found (HTTP 404)", "remote_url"]);
    // A 500 is the server's trouble: retried later.
    server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    server.set_mode(crate::support::git_server::Mode::InternalError500);
    host.push("clone", 0, &[])
        .expect_error(75, &["HTTP 500", "queued"]);
    server.set_mode(crate::support::git_server::Mode::Normal);
    host.push("clone", 1, &[]).expect_code(0);
    assert_eq!(
        history(&server.repo_path("data")),
        (vec![dir_name(0), dir_name(1)], true)
    );
}

#[test]
fn a_push_larger_than_the_post_buffer_is_streamed_in_chunks() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    // A 1 KB post buffer: every push body (several KB) is streamed while it is written, as a
    // push over 1 MB is, in chunked transfer encoding through nginx to git http-backend.
    let small = [("GITCORD_SNAPSHOT_TEST_POST_BUFFER", "1024")];
    push_with(&host, 0, &small).expect_code(0);
    push_with(&host, 1, &small).expect_code(0);
    assert_eq!(history(&bare), (vec![dir_name(0), dir_name(1)], true));
    fsck(&bare);
    let log = server.access_log();
    let bodies: Vec<u64> = log
        .lines()
        .filter(|l| l.starts_with("POST /git/data.git/git-receive-pack 200"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(bodies.len(), 2, "{log}");
    assert!(bodies[0] > 1024, "the first push is over the buffer: {log}");
}

#[test]
fn the_token_is_in_no_log_line_even_at_trace_level() {
    use base64::Engine as _;
    let server = GitServer::start();
    server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    let run = push_with(&host, 0, &[("RUST_LOG", "trace")]);
    run.expect_code(0);
    assert!(run.stderr.contains("git-receive-pack"), "logs were on");
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("x-access-token:{}", server.token()));
    for secret in [server.token(), basic.as_str()] {
        assert!(
            !run.stderr.contains(secret) && !run.stdout.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn a_redirect_to_another_server_is_followed_without_the_token() {
    let first = GitServer::start();
    let second = GitServer::start();
    first.create_bare_repo("data");
    let bare = second.create_bare_repo("data");
    // The first server says the repository is now on the second (another port: another origin).
    let url = first
        .url("data")
        .replace("/git/", &format!("/elsewhere/{}/", second.port()));
    // Each test server has a CA of its own: the host trusts both.
    let both = std::env::temp_dir().join(format!(
        "gitcord-snapshot-two-cas-{}-{}.pem",
        std::process::id(),
        second.port()
    ));
    let pem = std::fs::read_to_string(first.ca_file()).unwrap()
        + &std::fs::read_to_string(second.ca_file()).unwrap();
    std::fs::write(&both, pem).unwrap();
    let host = Host::new(&url, first.token(), Some(both.clone()));
    let run = host.push("clone", 0, &[]);
    let _ = std::fs::remove_file(&both);
    run.expect_error(
        77,
        &["asks for credentials", "only sent to the configured host"],
    );
    assert!(!run.stderr.contains(first.token()), "{}", run.stderr);
    // The first server was sent the token; the second was asked without it, and nothing was
    // pushed there.
    let asked = first.access_log();
    assert!(
        asked.contains("/elsewhere/") && asked.contains(" 301 x-access-token "),
        "{asked}"
    );
    let second_log = second.access_log();
    let requests: Vec<&str> = second_log.lines().collect();
    assert!(!requests.is_empty(), "the redirect was followed");
    for line in &requests {
        assert!(
            line.contains(" 401 - "),
            "a request reached the second server with credentials: {line}"
        );
    }
    assert!(!second_log.contains("POST"), "{second_log}");
    assert_eq!(history(&bare).0, Vec::<String>::new());
}
