//! What the clone's recovery must never do (touch what is not its own, drop a branch whose
//! name looks temporary) and what a rebuild must keep (the configured branch, a queue whose
//! salvage was interrupted).

use crate::support::git::{fsck, git, history, output};
use crate::support::git_server::{GitServer, Mode};
use crate::support::host::{dir_name, Host};

#[test]
fn a_repository_that_is_not_ours_is_refused_and_left_exactly_as_it_was() {
    let host = Host::for_case("basic");
    let clone = host.clone_path("clone");
    let git_dir = clone.join(".git");
    std::fs::create_dir_all(&clone).unwrap();
    let out = crate::support::git::command()
        .args(["init", "-q", "-b", "main"])
        .arg(&clone)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(clone.join("work.txt"), "mine\n").unwrap();
    git(
        &git_dir,
        &["--work-tree", clone.to_str().unwrap(), "add", "work.txt"],
    );
    git(
        &git_dir,
        &[
            "-c",
            "user.name=u",
            "-c",
            "user.email=u@example.com",
            "commit",
            "-q",
            "-m",
            "mine",
        ],
    );
    git(&git_dir, &["branch", "tmp_work"]);
    std::fs::write(git_dir.join("index.lock"), "").unwrap();
    std::fs::create_dir_all(git_dir.join(".tmp-notes")).unwrap();
    let listing = |dir: &std::path::Path| {
        let mut entries = walk(dir);
        entries.sort();
        entries
    };
    let before = listing(&clone);
    assert!(before.len() > 20, "{}", before.len());
    host.push("clone", 0, &["--no-push"])
        .expect_error(78, &["not create", "refusing"]);
    let after = listing(&clone);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a, b, "changed: {}", b.path);
    }
    assert_eq!(after, before, "nothing added, changed or removed");
    assert!(git(&git_dir, &["branch", "--list", "tmp_work"]).contains("tmp_work"));
}

/// One entry of a directory tree, as much of it as can change: its kind, permission bits,
/// modification time and, for a file, its bytes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    path: String,
    dir: bool,
    mode: u32,
    mtime_ns: i128,
    bytes: Vec<u8>,
}

fn walk(dir: &std::path::Path) -> Vec<Entry> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        let mtime = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let is_dir = meta.is_dir();
        out.push(Entry {
            path: e.path().display().to_string(),
            dir: is_dir,
            mode: meta.permissions().mode(),
            mtime_ns: mtime.as_nanos() as i128,
            bytes: if meta.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            },
        });
        if is_dir {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn a_branch_named_like_a_temporary_file_is_kept() {
    let host = Host::for_case("basic");
    host.add_config("  branch: \"tmp_data\"\n");
    for n in 0..3 {
        host.push("clone", n, &["--no-push"]).expect_code(0);
    }
    let git_dir = host.clone_path("clone").join(".git");
    let log = git(&git_dir, &["log", "--format=%s", "tmp_data"]);
    assert_eq!(log.lines().count(), 3, "{log}");
}

#[test]
fn a_rebuild_keeps_the_configured_branch() {
    let server = GitServer::start();
    let bare = server.create_bare_repo_with_branch("data", "data");
    let host = Host::for_server(&server, "data");
    host.add_config("  branch: \"data\"\n");
    host.push("clone", 0, &[]).expect_code(0);
    host.push("clone", 1, &[]).expect_code(0);
    // Damage: the remote-tracking ref holds garbage.
    let git_dir = host.clone_path("clone").join(".git");
    std::fs::write(git_dir.join("refs/remotes/origin/data"), "not a ref\n").unwrap();
    let run = host.push("clone", 2, &[]);
    run.expect_code(0);
    assert!(run.stderr.contains("is damaged"), "{}", run.stderr);
    let aside: Vec<_> = std::fs::read_dir(host.clone_path("clone"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".git.broken-"))
        .collect();
    assert_eq!(aside.len(), 1, "the broken clone is kept");
    assert_eq!(
        git(&git_dir, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/data"
    );
    let status = host.run(&["status", "--config", "config.yaml", "--clone-dir", "clone"]);
    assert!(
        status.stdout.contains("branch:           data"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("snapshots:        3"),
        "{}",
        status.stdout
    );
    let verify = host.run(&["verify", "--config", "config.yaml", "--clone-dir", "clone"]);
    assert_eq!(
        verify.stdout, "verified 3 commits, 3 snapshots, 3 backups: no problems\n",
        "{}",
        verify.stderr
    );
    let out = output(&bare, &["log", "--format=%s", "data"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    fsck(&bare);
    fsck(&git_dir);
}

#[test]
fn a_salvage_interrupted_by_a_kill_is_finished_by_the_next_run() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    host.push("clone", 0, &[]).expect_code(0);
    server.set_mode(Mode::Unavailable503);
    host.push("clone", 1, &[]).expect_code(75); // queued
    server.set_mode(Mode::Normal);
    // What a run killed right after setting the damaged clone aside leaves: no .git, the
    // broken one beside it, not yet salvaged.
    let clone = host.clone_path("clone");
    std::fs::rename(
        clone.join(".git"),
        clone.join(".git.broken-20250101T000000.000000Z"),
    )
    .unwrap();
    let run = host.push("clone", 2, &[]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("salvaged 1 queued commit"),
        "{}",
        run.stderr
    );
    let (names, linear) = history(&bare);
    assert!(linear);
    assert_eq!(
        names,
        [dir_name(0), dir_name(1), dir_name(2)],
        "the queued snapshot is not lost"
    );
    // Salvaged once: the next run does not replay it again.
    let again = host.push("clone", 3, &[]);
    again.expect_code(0);
    assert!(!again.stderr.contains("salvaged"), "{}", again.stderr);
    assert_eq!(history(&bare).0.len(), 4);
    fsck(&bare);
}

#[test]
fn the_working_copy_shows_the_newest_snapshot_also_after_a_backdated_run() {
    let host = Host::for_case("basic");
    host.push("clone", 2, &["--no-push"]).expect_code(0);
    host.push("clone", 0, &["--no-push"]).expect_code(0); // older --at
    let view: Vec<String> = std::fs::read_dir(host.clone_path("clone").join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(view, [dir_name(2)]);
}
