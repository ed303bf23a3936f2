//! Proves that the test git server (support/git_server.rs) is a real
//! smart-HTTP server over TLS with basic auth, using the system `git` CLI.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::support::git;
use crate::support::git_server::{GitServer, Mode};
use tempfile::TempDir;

/// A client-side workspace: a home dir, an askpass script and a git command
/// builder that never touches the caller's git config.
struct Client {
    dir: TempDir,
    askpass: PathBuf,
    ca: Option<PathBuf>,
}

impl Client {
    fn new(server: &GitServer, password: &str) -> Client {
        let dir = TempDir::new().unwrap();
        let askpass = server.write_askpass(&dir.path().join("auth"), password);
        fs::create_dir_all(dir.path().join("home")).unwrap();
        Client {
            dir,
            askpass,
            ca: Some(server.ca_file()),
        }
    }

    fn without_ca(mut self) -> Client {
        self.ca = None;
        self
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn git(&self, cwd: &Path, args: &[&str]) -> Output {
        let mut cmd = git::command();
        for var in [
            "GIT_SSL_CAINFO",
            "GIT_SSL_CAPATH",
            "GIT_SSL_NO_VERIFY",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "GIT_ASKPASS",
            "SSH_ASKPASS",
        ] {
            cmd.env_remove(var);
        }
        cmd.current_dir(cwd)
            .env("HOME", self.path("home"))
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", &self.askpass)
            .env("GIT_AUTHOR_NAME", "Smoke Test")
            .env("GIT_AUTHOR_EMAIL", "smoke@example.invalid")
            .env("GIT_COMMITTER_NAME", "Smoke Test")
            .env("GIT_COMMITTER_EMAIL", "smoke@example.invalid")
            .env("LC_ALL", "C")
            .args(["-c", "credential.helper=", "-c", "init.defaultBranch=main"])
            .args(args);
        if let Some(ca) = &self.ca {
            cmd.env("GIT_SSL_CAINFO", ca);
        }
        cmd.output().expect("run git")
    }

    fn git_ok(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.git(cwd, args);
        assert!(
            out.status.success(),
            "git {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `git init` a local repo with one commit; returns (dir, commit id).
    fn local_repo_with_commit(&self, name: &str, msg: &str) -> (PathBuf, String) {
        let repo = self.path(name);
        fs::create_dir_all(&repo).unwrap();
        self.git_ok(&repo, &["init", "-q"]);
        fs::write(
            repo.join("snapshot.json"),
            format!("{{\"msg\":\"{msg}\"}}\n"),
        )
        .unwrap();
        self.git_ok(&repo, &["add", "snapshot.json"]);
        self.git_ok(&repo, &["commit", "-q", "-m", msg]);
        let head = self.git_ok(&repo, &["rev-parse", "HEAD"]);
        (repo, head)
    }
}

/// Access-log lines (`METHOD URI STATUS user`) with HTTP status `status`. The tests judge git's
/// failures by what the server saw, not by git's or curl's wording.
fn answered(server: &GitServer, status: u16) -> usize {
    server
        .access_log()
        .lines()
        .filter(|l| l.split(' ').nth(2) == Some(&status.to_string()))
        .count()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_failed(out: &Output, what: &str) {
    assert!(
        !out.status.success(),
        "{what}: expected failure but git succeeded:\n{}",
        stderr(out)
    );
    assert_ne!(out.status.code(), Some(0), "{what}");
    eprintln!(
        "[{what}] git exited {} with:\n{}",
        out.status,
        stderr(out).trim_end()
    );
}

#[test]
fn clone_commit_push_with_token_lands_in_bare_repo() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    assert!(bare.join("HEAD").is_file());
    assert!(server.url("data").starts_with("https://127.0.0.1:"));
    assert!(!server.url("data").contains('@'), "no credentials in URL");

    let client = Client::new(&server, server.token());
    let clone = client.path("clone");
    let root = client.path("");
    client.git_ok(
        &root,
        &["clone", &server.url("data"), clone.to_str().unwrap()],
    );

    fs::write(clone.join("a.json"), "{\"n\":1}\n").unwrap();
    client.git_ok(&clone, &["add", "a.json"]);
    client.git_ok(&clone, &["commit", "-q", "-m", "first snapshot"]);
    let head = client.git_ok(&clone, &["rev-parse", "HEAD"]);
    client.git_ok(&clone, &["push", "origin", "HEAD:refs/heads/main"]);

    // The commit is in the server's bare repository.
    assert_eq!(
        server.ref_target("data", "refs/heads/main").as_deref(),
        Some(head.as_str())
    );
    let log = server.git_checked("data", &["log", "--format=%H %s", "main"]);
    assert_eq!(log, format!("{head} first snapshot"));
    assert_eq!(
        git::git(&bare, &["log", "-1", "--format=%H", "main"]).trim(),
        head
    );

    // The push went through basic auth as x-access-token.
    let access = server.access_log();
    assert!(
        access.contains("POST /git/data.git/git-receive-pack 200 x-access-token"),
        "access log:\n{access}"
    );
    assert!(
        access.contains(" 401 "),
        "unauthenticated first request gets 401:\n{access}"
    );

    // A second clone sees the pushed commit (fetch path works too).
    let clone2 = client.path("clone2");
    client.git_ok(
        &root,
        &["clone", "-q", &server.url("data"), clone2.to_str().unwrap()],
    );
    assert_eq!(client.git_ok(&clone2, &["rev-parse", "HEAD"]), head);
}

#[test]
fn wrong_token_is_rejected_with_401_and_nothing_lands() {
    let server = GitServer::start();
    server.create_bare_repo("data");
    let client = Client::new(&server, "definitely-not-the-token");
    let (repo, _) = client.local_repo_with_commit("local", "should not land");

    let out = client.git(
        &repo,
        &["push", &server.url("data"), "HEAD:refs/heads/main"],
    );
    assert_failed(&out, "push with wrong token");
    assert!(answered(&server, 401) >= 1, "{}", server.access_log());
    assert_eq!(answered(&server, 200), 0, "{}", server.access_log());
    assert!(server.refs("data").is_empty(), "no ref must be created");
    assert_eq!(server.ref_target("data", "refs/heads/main"), None);

    // Also without any credentials at all (askpass answers nothing useful).
    let out = client.git(&repo, &["ls-remote", &server.url("data")]);
    assert_failed(&out, "ls-remote with wrong token");
}

#[test]
fn untrusted_certificate_is_rejected() {
    let server = GitServer::start();
    server.create_bare_repo("data");
    let client = Client::new(&server, server.token()).without_ca();
    let (repo, _) = client.local_repo_with_commit("local", "no tls trust");

    let out = client.git(
        &repo,
        &["push", &server.url("data"), "HEAD:refs/heads/main"],
    );
    assert_failed(&out, "push without CA trust");
    // Refused in the TLS handshake: not one HTTP request reached the server.
    assert_eq!(
        server.access_log(),
        "",
        "requests despite an untrusted certificate"
    );
    assert!(server.refs("data").is_empty());

    // Positive control: with the CA, the certificate is valid for both
    // 127.0.0.1 (IP SAN) and localhost (DNS SAN).
    let trusted = Client::new(&server, server.token());
    trusted.git_ok(
        &repo,
        &["push", &server.url("data"), "HEAD:refs/heads/main"],
    );
    let localhost_url = server.url("data").replace("127.0.0.1", "localhost");
    trusted.git_ok(&repo, &["ls-remote", &localhost_url]);
}

#[test]
fn unavailable_503_mode_fails_push_then_recovers_without_restart() {
    let server = GitServer::start();
    server.create_bare_repo("data");
    let client = Client::new(&server, server.token());
    let (repo, head) = client.local_repo_with_commit("local", "during outage");
    let pids = server.pids();

    server.set_mode(Mode::Unavailable503);
    let out = client.git(
        &repo,
        &["push", &server.url("data"), "HEAD:refs/heads/main"],
    );
    assert_failed(&out, "push in 503 mode");
    assert!(answered(&server, 503) >= 1, "{}", server.access_log());
    assert!(server.refs("data").is_empty());

    server.set_mode(Mode::Normal);
    client.git_ok(
        &repo,
        &["push", &server.url("data"), "HEAD:refs/heads/main"],
    );
    assert_eq!(
        server.ref_target("data", "main").as_deref(),
        Some(head.as_str())
    );
    assert_eq!(
        server.pids(),
        pids,
        "mode switch must not restart the server"
    );
}

#[test]
fn other_failure_modes_and_rejecting_hook() {
    let server = GitServer::start();
    server.create_bare_repo("data");
    let client = Client::new(&server, server.token());
    let (repo, head) = client.local_repo_with_commit("local", "modes");
    let push = |c: &Client| {
        c.git(
            &repo,
            &["push", &server.url("data"), "HEAD:refs/heads/main"],
        )
    };

    server.set_mode(Mode::InternalError500);
    let out = push(&client);
    assert_failed(&out, "500 mode");
    assert!(answered(&server, 500) >= 1, "{}", server.access_log());

    server.set_mode(Mode::Unauthorized401);
    let out = push(&client);
    assert_failed(&out, "401 mode");
    let unauthorized = answered(&server, 401);
    assert!(unauthorized >= 1, "{}", server.access_log());
    assert_eq!(answered(&server, 200), 0, "{}", server.access_log());

    server.set_mode(Mode::Forbidden403);
    let out = push(&client);
    assert_failed(&out, "403 mode");
    let forbidden = answered(&server, 403);
    assert!(forbidden >= 1, "{}", server.access_log());

    server.set_mode(Mode::PushForbidden403);
    client.git_ok(&repo, &["ls-remote", &server.url("data")]); // fetch side still works
    let out = push(&client);
    assert_failed(&out, "push-forbidden mode");
    assert!(
        answered(&server, 403) > forbidden,
        "{}",
        server.access_log()
    );
    assert!(
        server
            .access_log()
            .lines()
            .any(|l| l.contains("service=git-receive-pack") && l.contains(" 403 ")),
        "{}",
        server.access_log()
    );
    assert!(server.refs("data").is_empty());

    server.set_mode(Mode::Normal);
    server.install_rejecting_hook("data", "snapshots are frozen: it's maintenance time");
    let out = push(&client);
    assert_failed(&out, "push with rejecting pre-receive hook");
    // The hook's own words reach the pusher; the pack itself was uploaded (the hook ran).
    let err = stderr(&out);
    assert!(
        err.contains("snapshots are frozen: it's maintenance time"),
        "stderr: {err}"
    );
    assert!(
        server
            .access_log()
            .contains("POST /git/data.git/git-receive-pack 200 x-access-token"),
        "{}",
        server.access_log()
    );
    assert!(server.refs("data").is_empty());

    server.remove_hook("data", "pre-receive");
    client.git_ok(
        &repo,
        &["push", &server.url("data"), "HEAD:refs/heads/main"],
    );
    assert_eq!(
        server.ref_target("data", "main").as_deref(),
        Some(head.as_str())
    );
}

#[test]
fn stopped_server_refuses_connections_and_restart_serves_again() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    let client = Client::new(&server, server.token());
    let (repo, first) = client.local_repo_with_commit("local", "before stop");
    client.git_ok(
        &repo,
        &["push", &server.url("data"), "HEAD:refs/heads/main"],
    );
    let port = server.port();
    let pids = server.pids();

    let access_before = server.access_log();
    server.stop();
    assert!(!server.is_running());
    for pid in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists"
        );
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let err = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    fs::write(repo.join("snapshot.json"), "{\"n\":2}\n").unwrap();
    client.git_ok(&repo, &["commit", "-q", "-am", "while down"]);
    let out = client.git(
        &repo,
        &["push", &server.url("data"), "HEAD:refs/heads/main"],
    );
    assert_failed(&out, "push to stopped server");
    assert_eq!(
        server.access_log(),
        access_before,
        "no request reached a stopped server"
    );
    assert_eq!(
        server.ref_target("data", "main").as_deref(),
        Some(first.as_str())
    );

    server.restart();
    assert_eq!(server.port(), port, "restart keeps the port");
    client.git_ok(
        &repo,
        &["push", &server.url("data"), "HEAD:refs/heads/main"],
    );
    let second = client.git_ok(&repo, &["rev-parse", "HEAD"]);
    assert_eq!(
        server.ref_target("data", "main").as_deref(),
        Some(second.as_str())
    );
}

#[test]
fn servers_are_independent_and_drop_kills_processes() {
    let a = GitServer::start();
    let b = GitServer::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.token(), b.token());
    a.create_bare_repo("data");
    b.create_bare_repo("data");

    // a's token does not work on b.
    let client_a = Client::new(&a, a.token());
    let (repo, head) = client_a.local_repo_with_commit("local", "independent");
    client_a.git_ok(&repo, &["push", &a.url("data"), "HEAD:refs/heads/main"]);
    let mut wrong = Client::new(&b, a.token());
    wrong.ca = Some(b.ca_file());
    let out = wrong.git(&repo, &["push", &b.url("data"), "HEAD:refs/heads/main"]);
    assert_failed(&out, "a's token on b");
    assert_eq!(a.ref_target("data", "main").as_deref(), Some(head.as_str()));
    assert!(b.refs("data").is_empty());

    // a's CA does not validate b's certificate.
    let mut cross = Client::new(&b, b.token());
    cross.ca = Some(a.ca_file());
    let out = cross.git(&repo, &["ls-remote", &b.url("data")]);
    assert_failed(&out, "a's CA against b");

    let pids: Vec<u32> = a.pids().into_iter().chain(b.pids()).collect();
    assert_eq!(pids.len(), 4);
    let root = a.root().to_path_buf();
    drop(a);
    drop(b);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} outlived the server"
        );
    }
    assert!(!root.exists(), "temp dir removed on drop");
}
