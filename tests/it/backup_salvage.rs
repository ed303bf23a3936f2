//! Queued backups survive a damaged clone (issue 18 point 7: crash healing covers the backup).
//! A host queues snapshots and their backups while the TLS git server refuses pushes, its clone
//! is damaged the way `crash.rs` damages one, and the next run sets the clone aside, rebuilds it
//! from the remote and salvages both queues: the remote then has a backup of every snapshot,
//! each restores (from a fresh bare clone) to its database, and `verify --prove-restore`
//! passes. Once with the backup in the data repository, once in a repository of its own.

use std::path::{Path, PathBuf};

use crate::backup::{
    assert_every_backup_proves, assert_restores, bare_clone, dump, dump_without_secrets, install,
    restore, BRANCH,
};
use crate::support::git::{fsck, git, history};
use crate::support::git_server::{GitServer, Mode};
use crate::support::host::{dir_name, Host};
use crate::support::testenv::Run;

/// The snapshots the backup commits on the backup branch of `git_dir` name, oldest first, and
/// whether that history is linear.
fn backed_up(git_dir: &Path, branch: &str) -> (Vec<String>, bool) {
    let log = git(git_dir, &["log", "--reverse", "--format=%P|%s", branch]);
    let mut names = Vec::new();
    let mut linear = true;
    for line in log.lines() {
        let (parents, subject) = line.split_once('|').unwrap();
        linear &= parents.split_whitespace().count() <= 1;
        let name = subject
            .strip_prefix("Backup of state.db for snapshots/")
            .unwrap_or_else(|| panic!("not a backup commit: {subject}"));
        names.push(name.to_owned());
    }
    (names, linear)
}

/// The `.git.broken-*` directories in the clone.
fn broken_copies(clone: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(clone)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".git.broken-"))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// `(written, kept)` ranges of the run's backup, from its `-v` log line.
fn ranges(run: &Run) -> (u64, u64) {
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("backed up state.db as"))
        .unwrap_or_else(|| panic!("no backup line: {}", run.stderr));
    let (_, rest) = line
        .split_once(&format!("on {BRANCH}: "))
        .unwrap_or_else(|| panic!("{line}"));
    let written = rest.split(' ').next().unwrap().parse().unwrap();
    let kept = rest
        .split("), ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (written, kept)
}

/// Restores each of snapshots `1..=4` from a fresh bare clone (`fresh`, made by the caller) and
/// compares it with the fixture it was taken from; then proves every backup by restore and
/// export.
fn every_snapshot_restores(host: &Host, fresh: &str) {
    for v in 1..=4 {
        assert_restores(host, fresh, v);
    }
    assert_every_backup_proves(host, fresh, 4);
}

/// The run after the damage: exit 0, one copy set aside, the salvage named, and the backup
/// written incrementally (the set-aside copy's cache carried over).
fn healed(host: &Host, run: &Run, backups_salvaged: usize) {
    run.expect_code(0);
    let clone = host.clone_path("clone");
    assert_eq!(broken_copies(&clone).len(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "salvaged {backups_salvaged} queued backup(s) from"
        )),
        "{}",
        run.stderr
    );
    let (written, kept) = ranges(run);
    assert!(
        kept > 0,
        "{written} written, {kept} kept: the cache was not carried over"
    );
    fsck(&clone.join(".git"));
    // The clone itself verifies, and nothing is queued any more.
    let verify = host.run(&["verify", "--config", "config.yaml"]);
    verify.expect_code(0);
    assert!(verify.stdout.contains("4 backups"), "{}", verify.stdout);
    let status = host.run(&["status", "--config", "config.yaml", "--json"]);
    status.expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["queued"], 0);
    assert_eq!(status["backup"]["queued"], 0);
}

/// A host whose clone published snapshot 1 to repository `data` of `server` (returned), then
/// committed 2 and 3 with their backups and queued them (the server answered 503).
fn two_queued(server: &mut GitServer) -> (PathBuf, Host) {
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(server, "data");
    install(&host, 1);
    host.push("clone", 1, &[]).expect_code(0);
    server.set_mode(Mode::Unavailable503);
    for v in 2..=3 {
        install(&host, v);
        host.push("clone", v, &[]).expect_code(75);
    }
    server.set_mode(Mode::Normal);
    (bare, host)
}

/// Snapshot 1 published; 2 and 3 committed with their backups and queued (503); the clone
/// damaged by `damage`; snapshot 4 pushed.
fn both_queues_are_salvaged(damage: impl FnOnce(&Path)) {
    let mut server = GitServer::start();
    let (bare, host) = two_queued(&mut server);
    let git_dir = host.clone_path("clone").join(".git");
    let names = |r: std::ops::RangeInclusive<u32>| r.map(dir_name).collect::<Vec<_>>();
    assert_eq!(backed_up(&bare, BRANCH).0, names(1..=1), "premise");
    assert_eq!(backed_up(&git_dir, BRANCH).0, names(1..=3), "premise");
    damage(&git_dir);

    install(&host, 4);
    let run = host.push("clone", 4, &["-v"]);
    healed(&host, &run, 2);
    let (snapshots, linear) = history(&bare);
    assert!(linear);
    assert_eq!(snapshots, names(1..=4));
    let (backups, linear) = backed_up(&bare, BRANCH);
    assert!(linear);
    assert_eq!(backups, names(1..=4), "a backup of every snapshot, once");
    fsck(&bare);

    bare_clone(&bare, &host.env.path("fresh/.git"));
    every_snapshot_restores(&host, "fresh");
    server.stop();
}

#[test]
fn queued_backups_are_salvaged_when_the_branch_ref_is_garbage() {
    both_queues_are_salvaged(|git_dir| {
        std::fs::write(git_dir.join("refs/heads/main"), "garbage\n").unwrap();
    });
}

#[test]
fn queued_backups_are_salvaged_when_the_backup_ref_is_garbage_too() {
    // The backup branch's tip is found among the copy's objects.
    both_queues_are_salvaged(|git_dir| {
        std::fs::write(git_dir.join("refs/heads/main"), "garbage\n").unwrap();
        std::fs::write(git_dir.join(format!("refs/heads/{BRANCH}")), "garbage\n").unwrap();
    });
}

#[test]
fn a_garbage_backup_ref_alone_gets_the_clone_rebuilt_and_its_queue_salvaged() {
    // Before the health check read every branch, this clone failed every run with 74.
    both_queues_are_salvaged(|git_dir| {
        std::fs::write(git_dir.join(format!("refs/heads/{BRANCH}")), "garbage\n").unwrap();
    });
}

#[test]
fn queued_backups_are_salvaged_into_a_backup_repository_of_its_own() {
    let mut server = GitServer::start();
    let data = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    host.add_config(&format!("  backup_remote_url: {}\n", server.url("backups")));
    let git_dir = host.clone_path("clone").join(".git");
    // The backup repository does not exist yet: snapshot 1 is pushed, its backup queued.
    install(&host, 1);
    let run = host.push("clone", 1, &[]);
    assert!(run.stderr.contains("backup push failed"), "{}", run.stderr);
    assert_eq!(history(&data).0, [dir_name(1)]);
    // Then the server refuses everything: snapshot 2 and its backup are queued.
    server.set_mode(Mode::Unavailable503);
    install(&host, 2);
    host.push("clone", 2, &[]).expect_code(75);
    server.set_mode(Mode::Normal);
    let backups = server.create_bare_repo("backups");
    assert_eq!(
        backed_up(&git_dir, BRANCH).0,
        [dir_name(1), dir_name(2)],
        "premise"
    );
    // Snapshot 1's commit, which the remote has, truncated.
    let oid = git(&git_dir, &["rev-parse", "main~1"]);
    let oid = oid.trim();
    let path = git_dir.join("objects").join(&oid[..2]).join(&oid[2..]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    install(&host, 3);
    let run = host.push("clone", 3, &["-v"]);
    run.expect_code(0);
    assert_eq!(broken_copies(&host.clone_path("clone")).len(), 1);
    assert!(
        run.stderr.contains("salvaged 2 queued backup(s) from"),
        "{}",
        run.stderr
    );
    let names: Vec<String> = (1..=3).map(dir_name).collect();
    assert_eq!(history(&data), (names.clone(), true));
    assert_eq!(backed_up(&backups, BRANCH), (names, true));
    // The data repository still holds no backup, and the clone tracks the backup repository.
    assert_eq!(server.refs("data").len(), 1, "{:?}", server.refs("data"));
    let clone = git2::Repository::open_bare(&git_dir).unwrap();
    assert_eq!(
        clone
            .refname_to_id(&format!("refs/remotes/backup/{BRANCH}"))
            .unwrap()
            .to_string(),
        server
            .ref_target("backups", &format!("refs/heads/{BRANCH}"))
            .unwrap()
    );
    fsck(&backups);
    // Restorable from the data repository's bare clone with the backup branch fetched in.
    let fresh = host.env.path("fresh/.git");
    bare_clone(&data, &fresh);
    let fetched = crate::support::git::command()
        .arg("--git-dir")
        .arg(&fresh)
        .args(["fetch", "--quiet"])
        .arg(&backups)
        .arg(format!("{BRANCH}:{BRANCH}"))
        .output()
        .unwrap();
    assert!(fetched.status.success());
    for v in 1..=3 {
        assert_restores(&host, "fresh", v);
    }
    let verify = host.run(&["verify", "--config", "config.yaml"]);
    verify.expect_code(0);
    assert!(verify.stdout.contains("3 backups"), "{}", verify.stdout);
    server.stop();
}

#[test]
fn the_backup_of_a_snapshot_left_out_stays_aside_and_a_second_salvage_adds_nothing() {
    let mut server = GitServer::start();
    let (bare, host) = two_queued(&mut server);
    let clone = host.clone_path("clone");
    let git_dir = clone.join(".git");
    // Snapshot 2's meta.json (a blob only it has) is truncated: snapshot 2 cannot be salvaged.
    let blob = git(
        &git_dir,
        &[
            "rev-parse",
            &format!("main~1:snapshots/{}/meta.json", dir_name(2)),
        ],
    );
    let blob = blob.trim();
    let path = git_dir.join("objects").join(&blob[..2]).join(&blob[2..]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    install(&host, 4);
    let run = host.push("clone", 4, &[]);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains(&format!("the backup of snapshots/{} (commit", dir_name(2)))
            && run.stderr.contains("is not salvaged: its snapshot was not"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("salvaged 1 queued backup(s) from"),
        "{}",
        run.stderr
    );
    let want = [dir_name(1), dir_name(3), dir_name(4)];
    assert_eq!(history(&bare), (want.to_vec(), true));
    assert_eq!(backed_up(&bare, BRANCH), (want.to_vec(), true));
    // The left-out backup is still in the set-aside copy.
    let aside = broken_copies(&clone);
    assert_eq!(aside.len(), 1);
    assert_eq!(
        backed_up(&aside[0], BRANCH).0,
        [dir_name(1), dir_name(2), dir_name(3)]
    );
    let to = "restored3/state.db";
    restore(&host, "clone", &dir_name(3), to).expect_code(0);
    assert_eq!(
        dump(&host.env.path(to)),
        dump_without_secrets(3, &host.env.path("."))
    );

    // A run killed after salvaging, before marking the copy salvaged: the next run salvages it
    // again, and adds no second backup of anything.
    let marker = aside[0].join("gitcord-snapshot-salvaged");
    assert!(marker.exists(), "premise: the copy is marked salvaged");
    std::fs::remove_file(&marker).unwrap();
    install(&host, 4);
    let run = host.push("clone", 5, &[]);
    run.expect_code(0);
    assert!(marker.exists(), "{}", run.stderr);
    assert!(
        !run.stderr.contains("queued backup(s) from"),
        "{}",
        run.stderr
    );
    let want = [dir_name(1), dir_name(3), dir_name(4), dir_name(5)];
    assert_eq!(history(&bare), (want.to_vec(), true));
    assert_eq!(backed_up(&bare, BRANCH), (want.to_vec(), true));
    fsck(&bare);
    server.stop();
}

/// Every pack of `git_dir` turned into loose objects (so that one object can be taken away).
fn unpack_all(git_dir: &Path) {
    let pack_dir = git_dir.join("objects/pack");
    let aside = git_dir.join("packs-aside");
    std::fs::create_dir_all(&aside).unwrap();
    for e in std::fs::read_dir(&pack_dir).unwrap() {
        let p = e.unwrap().path();
        std::fs::rename(&p, aside.join(p.file_name().unwrap())).unwrap();
    }
    for e in std::fs::read_dir(&aside).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pack") {
            let status = crate::support::git::git_command(git_dir)
                .arg("unpack-objects")
                .arg("-q")
                .stdin(std::fs::File::open(&p).unwrap())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    std::fs::remove_dir_all(&aside).unwrap();
}

/// A chunk of a queued backup lost below a readable backup tip (a disk losing one object):
/// the next run still publishes its snapshot, and every snapshot that reaches the remote has a
/// whole backup there.
#[test]
fn a_queued_backup_missing_a_chunk_blocks_nothing() {
    let mut server = GitServer::start();
    let (bare, host) = two_queued(&mut server);
    let git_dir = host.clone_path("clone").join(".git");
    // A chunk file that only the backup of snapshot 2 has (v2 changed its rows).
    let changed = git(
        &git_dir,
        &[
            "diff-tree",
            "-r",
            "--no-renames",
            "--diff-filter=AM",
            "--format=",
            &format!("{BRANCH}~2"),
            &format!("{BRANCH}~1"),
        ],
    );
    let blob = changed
        .lines()
        .filter(|l| l.contains("tables/"))
        .map(|l| l.split_whitespace().nth(3).unwrap().to_owned())
        .find(|b| {
            // Not also in snapshot 3's backup.
            !git(&git_dir, &["ls-tree", "-r", BRANCH]).contains(b.as_str())
        })
        .unwrap_or_else(|| panic!("no chunk only backup 2 has:\n{changed}"));
    unpack_all(&git_dir);
    std::fs::remove_file(git_dir.join("objects").join(&blob[..2]).join(&blob[2..])).unwrap();

    install(&host, 4);
    let run = host.push("clone", 4, &["-v"]);
    // Before the health check read the backup branch's queue, this failed with 74 ("cannot
    // read what to push from the clone") on every run, the snapshots queued behind it.
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("the queue of refs/heads/gitcord-backup")
            && run.stderr.contains(&blob),
        "{}",
        run.stderr
    );
    assert_eq!(broken_copies(&host.clone_path("clone")).len(), 1);
    assert!(
        run.stderr.contains("salvaged 1 queued backup(s) from"),
        "{}",
        run.stderr
    );
    let names = |v: &[u32]| v.iter().map(|v| dir_name(*v)).collect::<Vec<_>>();
    assert_eq!(history(&bare), (names(&[1, 2, 3, 4]), true));
    // Backup 2 lost its chunk: it stays in the set-aside copy; the others are whole.
    assert_eq!(backed_up(&bare, BRANCH), (names(&[1, 3, 4]), true));
    fsck(&bare);
    let fresh = host.env.path("fresh/.git");
    bare_clone(&bare, &fresh);
    for v in [1, 3, 4] {
        assert_restores(&host, "fresh", v);
    }
    // The next run finds nothing wrong.
    install(&host, 4);
    let run = host.push("clone", 5, &[]);
    run.expect_code(0);
    assert_eq!(broken_copies(&host.clone_path("clone")).len(), 1);
    server.stop();
}
