//! Packing the clone (src/publish/clone/packfile.rs): our own deltas for the loose objects and
//! merges that copy packs. Many runs across several packings and merges must leave a clone that
//! git itself accepts whole (`fsck --full`, `verify-pack`), holding every object it was given,
//! and a remote with every snapshot once. Real binary, real TLS git server.

use std::path::{Path, PathBuf};

use crate::crash::kill_at;
use crate::support::git::{fsck, git, history};
use crate::support::git_server::GitServer;
use crate::support::host::{dir_name, Host};

fn packs(git_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(git_dir.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    out.sort();
    out
}

#[test]
fn many_pushes_across_packings_and_merges_keep_the_clone_whole_and_the_remote_complete() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    let git_dir = host.clone_path("clone").join(".git");
    let runs = 9;
    let (mut packings, mut merges, mut absorbed) = (0, 0, 0);
    let mut fillers = Vec::new();
    for n in 0..runs {
        if n > 0 {
            // Gitcord ran: a few new contributions, so the backup writes a pack of changed
            // chunks (each with its previous version as base) that the packing takes in.
            let db = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
            db.execute(
                "INSERT INTO contributions (github_user, event_type, repo, created_at, payload_json)
                 SELECT github_user, event_type, repo, ?1, payload_json FROM contributions
                 ORDER BY id DESC LIMIT 3",
                [format!("2024-01-31T{n:02}:30:00+00:00")],
            )
            .unwrap();
            drop(db);
            // Enough loose objects that this run packs (the snapshots' own objects with them),
            // none of them reachable: they must survive every packing and merge all the same.
            let repo = git2::Repository::open_bare(&git_dir).unwrap();
            for i in 0..520 {
                fillers.push(repo.blob(format!("filler {n} {i}\n").as_bytes()).unwrap());
            }
        }
        let run = host.push("clone", n, &["-v"]);
        run.expect_code(0);
        if run.stderr.contains("loose objects") && run.stderr.contains("packed ") {
            packings += 1;
        }
        if run.stderr.contains("merging ") {
            merges += 1;
        }
        // The backup's packs of this run's chunks are taken into the packing.
        absorbed += run
            .stderr
            .lines()
            .filter_map(|l| l.split_once("loose objects and ")?.1.split_once(' '))
            .filter_map(|(n, _)| n.parse::<u32>().ok())
            .sum::<u32>();
        assert!(!run.stderr.contains("cannot pack"), "{}", run.stderr);
        if n % 3 == 2 {
            fsck(&git_dir);
        }
    }
    assert_eq!(packings, runs - 1, "every run after the first packed");
    assert!(merges >= 3, "{merges} merges");
    assert!(absorbed >= 1, "no backup pack taken into a packing");
    // The clone: git accepts it whole, every pack of it, and nothing given to it was lost.
    git(&git_dir, &["fsck", "--full", "--strict", "--no-dangling"]);
    let packs = packs(&git_dir);
    assert!(packs.len() <= 6, "{packs:?}");
    for p in &packs {
        git(
            &git_dir,
            &["verify-pack", p.with_extension("idx").to_str().unwrap()],
        );
    }
    let repo = git2::Repository::open_bare(&git_dir).unwrap();
    let odb = repo.odb().unwrap();
    for (i, id) in fillers.iter().enumerate() {
        let blob = odb.read(*id).unwrap();
        let n = i / 520 + 1;
        assert_eq!(blob.data(), format!("filler {n} {}\n", i % 520).as_bytes());
    }
    // What the last run wrote after packing (its backup, the push's bookkeeping) stays loose.
    let left: usize = std::fs::read_dir(git_dir.join("objects"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().len() == 2)
        .map(|e| std::fs::read_dir(e.path()).unwrap().count())
        .sum();
    assert!(left < 100, "{left} loose objects left");
    // The remote: every snapshot once, in order, and the clone's branch agrees.
    let want: Vec<String> = (0..runs).map(dir_name).collect();
    assert_eq!(history(&bare).0, want);
    assert_eq!(history(&git_dir).0, want);
    fsck(&bare);
    // A run after all this still reads the packed history and pushes.
    host.push("clone", runs, &[]).expect_code(0);
    assert_eq!(history(&bare).0.len(), runs as usize + 1);
}

/// A run killed while merging packs, or once the merged pack is in place but before the old
/// ones are gone, leaves a clone the next run uses and pushes from, with nothing lost.
#[test]
fn killed_while_merging_packs_or_before_removing_the_old_ones() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    let git_dir = host.clone_path("clone").join(".git");
    host.push("clone", 0, &[]).expect_code(0);
    let mut fillers = Vec::new();
    let mut add_fillers = |n: u32| {
        let repo = git2::Repository::open_bare(&git_dir).unwrap();
        for i in 0..520 {
            fillers.push(repo.blob(format!("filler {n} {i}\n").as_bytes()).unwrap());
        }
    };
    // Two packings of about the same size: the second merges them (the run fails the test if
    // it does not reach the phase).
    add_fillers(1);
    host.push("clone", 1, &[]).expect_code(0);
    add_fillers(2);
    kill_at(&host, "clone", 2, "merge");
    let half: Vec<String> = std::fs::read_dir(git_dir.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp_"))
        .collect();
    assert!(!half.is_empty(), "premise: a merged pack half written");
    host.push("clone", 3, &[]).expect_code(0);
    fsck(&git_dir);
    add_fillers(4);
    let before = packs(&git_dir).len();
    kill_at(&host, "clone", 4, "merged");
    assert!(
        packs(&git_dir).len() > before,
        "premise: the merged pack and the old ones side by side"
    );
    fsck(&git_dir);
    host.push("clone", 5, &[]).expect_code(0);
    git(&git_dir, &["fsck", "--full", "--strict", "--no-dangling"]);
    let left: Vec<String> = std::fs::read_dir(git_dir.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp_"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let repo = git2::Repository::open_bare(&git_dir).unwrap();
    for id in &fillers {
        repo.find_blob(*id).unwrap();
    }
    let want: Vec<String> = (0..6).map(dir_name).collect();
    assert_eq!(history(&bare).0, want);
    fsck(&bare);
}

/// A pack of ours damaged after it was written is found by the next run's health check, which
/// sets the clone aside and rebuilds it from the remote, queue included.
#[test]
fn a_damaged_pack_of_ours_gets_the_clone_rebuilt() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    let git_dir = host.clone_path("clone").join(".git");
    host.push("clone", 0, &[]).expect_code(0);
    let repo = git2::Repository::open_bare(&git_dir).unwrap();
    for i in 0..520 {
        repo.blob(format!("filler {i}\n").as_bytes()).unwrap();
    }
    drop(repo);
    let before = packs(&git_dir);
    let run = host.push("clone", 1, &["-v"]);
    run.expect_code(0);
    assert!(run.stderr.contains("packing: "), "{}", run.stderr);
    let ours: Vec<PathBuf> = packs(&git_dir)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert!(!ours.is_empty(), "premise: the run wrote a pack");
    // The tip's objects are in it (packed after the commit): garble its second half.
    for p in &ours {
        let mut bytes = std::fs::read(p).unwrap();
        let half = bytes.len() / 2;
        for b in &mut bytes[half..] {
            *b = !*b;
        }
        let mut perms = std::fs::metadata(p).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(p, perms).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let run = host.push("clone", 2, &[]);
    run.expect_code(0);
    assert!(run.stderr.contains("is damaged"), "{}", run.stderr);
    let want: Vec<String> = (0..3).map(dir_name).collect();
    assert_eq!(history(&bare).0, want);
    fsck(&bare);
    fsck(&git_dir);
}
