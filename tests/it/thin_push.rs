//! Our own push (src/publish/sendpack): a thin pack of what the new commits add, over the
//! real TLS server. The remote's `git fsck --strict` after every kind of push, the bytes a push
//! sends at a thousand snapshots, a server that advertises `no-thin`, and what the server
//! refuses (an unpack error; hooks are in push.rs) reported with the queue kept.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::bench::{last_receive_pack_bytes, measured, Ours, Template};
use crate::support::git::{fsck, git, history};
use crate::support::git_server::{GitServer, Mode};
use crate::support::host::{dir_name, Host};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_gitcord-snapshot"))
}

/// The size of the remote tip's `snapshots/` tree, as git stores it (uncompressed).
fn snapshots_tree_size(bare: &Path) -> u64 {
    git(bare, &["cat-file", "-s", "main:snapshots"])
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn every_kind_of_push_leaves_the_remote_fsck_clean() {
    let mut server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let a = Host::for_server(&server, "data");
    a.push("clone", 0, &[]).expect_code(0);
    fsck(&bare);

    // A queue of several commits, sent in one push.
    server.set_mode(Mode::Unavailable503);
    a.push("clone", 1, &[]).expect_code(75);
    a.push("clone", 2, &[]).expect_code(75);
    server.set_mode(Mode::Normal);
    a.push("clone", 3, &[]).expect_code(0);
    assert_eq!(history(&bare), ((0..4).map(dir_name).collect(), true));
    fsck(&bare);

    // A replay after another writer.
    let b = Host::for_server(&server, "data");
    b.push("clone", 4, &[]).expect_code(0);
    a.push("clone", 5, &[]).expect_code(0);
    assert_eq!(history(&bare), ((0..6).map(dir_name).collect(), true));
    fsck(&bare);

    // A prune, and a push after it.
    a.run(&["prune", "--config", "config.yaml", "--keep-last", "2"])
        .expect_code(0);
    fsck(&bare);
    a.push("clone", 6, &[]).expect_code(0);
    fsck(&bare);
    assert_eq!(
        git(&bare, &["ls-tree", "--name-only", "main", "snapshots/"])
            .lines()
            .count(),
        3
    );

    // Signed commits.
    let key = a.env.path("signing_key");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/signing/test_ed25519"),
        &key,
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    a.add_config(&format!("  signing_key: \"{}\"\n", key.display()));
    a.push("clone", 7, &[]).expect_code(0);
    a.push("clone", 8, &[]).expect_code(0);
    assert!(git(&bare, &["cat-file", "commit", "main"]).contains("gpgsig -----BEGIN SSH SIGNATURE"));
    fsck(&bare);
    server.stop();
}

#[test]
fn a_push_at_a_thousand_snapshots_sends_a_thin_pack_and_no_thin_servers_get_a_full_one() {
    let server = GitServer::start();
    let template = Template::make(&server);
    for name in ["thin", "full"] {
        let bare = server.create_bare_repo(name);
        template.import(&bare, 1000);
    }
    let tree = snapshots_tree_size(&server.repo_path("thin"));
    assert!(
        tree >= 50_000,
        "premise: a large snapshots/ tree ({tree} bytes)"
    );

    // Thin: the new snapshots/ tree goes as a delta against the remote's.
    let ours = Ours::new(&server, "thin", binary());
    measured(&mut ours.push("clone", 0, &[]), &ours.path("run.log"));
    measured(&mut ours.push("clone", 1, &[]), &ours.path("run.log"));
    let thin = last_receive_pack_bytes(&server);
    let bare = server.repo_path("thin");
    fsck(&bare);
    assert_eq!(
        git(&bare, &["rev-list", "--count", "main"]).trim(),
        "1002",
        "both snapshots landed"
    );

    // The same push to a server that advertises no-thin (and whose index-pack would refuse
    // a thin pack): every object whole or against one in the pack, so the tree goes whole.
    let url = server.url("full");
    let full_url = url.replace("/git/", "/nothin/");
    let config = std::fs::read_to_string(ours.path("config.yaml")).unwrap();
    let other = Ours::new(&server, "full", binary());
    std::fs::write(
        other.path("config.yaml"),
        std::fs::read_to_string(other.path("config.yaml"))
            .unwrap()
            .replace(&url, &full_url),
    )
    .unwrap();
    assert!(config.contains("/git/thin.git"));
    measured(&mut other.push("clone", 0, &[]), &other.path("run.log"));
    measured(&mut other.push("clone", 1, &[]), &other.path("run.log"));
    let full = last_receive_pack_bytes(&server);
    let log = server.access_log();
    assert!(
        log.contains("POST /nothin/full.git/git-receive-pack 200"),
        "{log}"
    );
    let bare = server.repo_path("full");
    fsck(&bare);
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "1002");
    assert_eq!(
        git(&bare, &["rev-parse", "main^{tree}"]),
        git(&server.repo_path("thin"), &["rev-parse", "main^{tree}"]),
        "the same snapshots on both"
    );

    println!("snapshots/ tree {tree} bytes; thin push {thin} bytes; full push {full} bytes");
    assert!(
        thin * 5 < tree,
        "a thin push ({thin} bytes) is far below the snapshots/ tree ({tree} bytes)"
    );
    assert!(
        full > thin + tree / 4,
        "a full push ({full} bytes) carries the snapshots/ tree whole (thin: {thin})"
    );
}

#[test]
fn an_unpack_error_is_reported_and_the_queue_kept() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    host.push("clone", 0, &[]).expect_code(0);
    // The server refuses any pack over 100 bytes: index-pack / unpack-objects fail.
    server.git_checked("data", &["config", "receive.maxInputSize", "100"]);
    host.push("clone", 1, &[])
        .expect_error(77, &["could not unpack", "1 snapshot commit(s) queued"]);
    assert_eq!(history(&bare).0, [dir_name(0)]);
    server.git_checked("data", &["config", "--unset", "receive.maxInputSize"]);
    host.push("clone", 2, &[]).expect_code(0);
    assert_eq!(history(&bare), ((0..3).map(dir_name).collect(), true));
    fsck(&bare);
}
