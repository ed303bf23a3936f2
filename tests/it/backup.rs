//! The backup of every table of `state.db` (issue 18), end to end: databases written by
//! Gitcord's own storage code (fixtures/backup, `scripts/gen-backup-fixtures.py`) pushed one
//! after another to the TLS git server, then each snapshot restored from a fresh bare clone of
//! the server's repository and compared with `sqlite3 .dump` of the original.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::git;
use crate::support::git_server::GitServer;
use crate::support::host::{dir_name, Host};
use crate::support::testenv::Run;

pub(crate) const BRANCH: &str = "gitcord-backup";

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/backup")
        .join(name)
}

/// Puts fixture state `v` (database and audit log) where the host's Gitcord keeps them.
pub(crate) fn install(host: &Host, v: u32) {
    std::fs::copy(fixture(&format!("v{v}.db")), host.env.path("state.db")).unwrap();
    std::fs::copy(
        fixture(&format!("v{v}.audit_events.jsonl")),
        host.env.path("audit_events.jsonl"),
    )
    .unwrap();
}

/// `sqlite3 .dump` of `db`, as bytes (TEXT that is not UTF-8 is dumped as it is stored).
pub(crate) fn dump_bytes(db: &Path) -> Vec<u8> {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(".dump")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `sqlite3 .dump` of `db` (fixtures hold only UTF-8 text).
pub(crate) fn dump(db: &Path) -> String {
    String::from_utf8(dump_bytes(db)).expect("a dump of UTF-8 text")
}

/// Overwrites leaf page number `offset` (counted from the table's first) of `table` in `db`
/// with garbage, found with SQLite's `dbstat` (pages of 4 KB, SQLite's default).
pub(crate) fn damage_leaf_page(db: &Path, table: &str, offset: u32) {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(format!(
            "SELECT pageno FROM dbstat WHERE name = '{table}' AND pagetype = 'leaf' LIMIT 1 OFFSET {offset}"
        ))
        .output()
        .unwrap();
    let page: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let mut bytes = std::fs::read(db).unwrap();
    bytes[(page - 1) * 4096..page * 4096].fill(0x5a);
    std::fs::write(db, &bytes).unwrap();
}

/// `sqlite3 .dump` of fixture `v` with the one secret column as restore leaves it (NULL).
pub(crate) fn dump_without_secrets(v: u32, scratch: &Path) -> String {
    let copy = scratch.join(format!("v{v}-nosecret.db"));
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(fixture(&format!("v{v}.db")), &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    conn.execute("UPDATE identity_links SET verification_code = NULL", [])
        .unwrap();
    drop(conn);
    dump(&copy)
}

/// Pending claims (with a code) of fixture `v`: `(discord_user_id, github_user)`.
pub(crate) fn pending(v: u32) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open_with_flags(
        fixture(&format!("v{v}.db")),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT discord_user_id, github_user FROM identity_links WHERE verification_code IS NOT NULL ORDER BY rowid")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

pub(crate) fn restore(host: &Host, clone: &str, snapshot: &str, to: &str) -> Run {
    host.run(&[
        "restore",
        "--config",
        "config.yaml",
        "--clone-dir",
        clone,
        "--snapshot",
        snapshot,
        "--to",
        to,
        "-v",
    ])
}

/// Restores snapshot `v` from clone `clone` into `restored-<clone>-<v>/state.db` and checks
/// that it is fixture `v`'s database (its secret column NULL).
pub(crate) fn assert_restores(host: &Host, clone: &str, v: u32) {
    let to = format!("restored-{clone}-{v}/state.db");
    restore(host, clone, &dir_name(v), &to).expect_code(0);
    assert_eq!(
        dump(&host.env.path(&to)),
        dump_without_secrets(v, &host.env.path(".")),
        "snapshot {v}"
    );
}

/// `verify --prove-restore all` on clone `clone` restores and re-exports each of its `n`
/// backups to its snapshot's seven files, and finds no problem.
pub(crate) fn assert_every_backup_proves(host: &Host, clone: &str, n: u32) {
    let proof = host.run(&[
        "verify",
        "--config",
        "config.yaml",
        "--clone-dir",
        clone,
        "--prove-restore",
        "all",
    ]);
    proof.expect_code(0);
    assert_eq!(
        proof.stdout,
        format!(
            "verified {n} commits, {n} snapshots, {n} backups, {n} restore(s) proved: no problems\n"
        )
    );
}

pub(crate) fn bare_clone(from: &Path, to: &Path) {
    let out = git::command()
        .args(["clone", "--quiet", "--bare"])
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every object in a bare repository, as `git cat-file --batch-all-objects --batch` prints
/// them (loose and packed, reachable or not).
pub(crate) fn all_objects(git_dir: &Path) -> Vec<u8> {
    git::output(
        git_dir,
        &["cat-file", "--batch-all-objects", "--batch", "--unordered"],
    )
    .stdout
}

/// Pushes fixture states 1..=4 as snapshots 1..=4 to a new repository on `server`.
fn push_all(server: &GitServer) -> Host {
    server.create_bare_repo("data");
    let host = Host::for_server(server, "data");
    for v in 1..=4 {
        install(&host, v);
        host.push("clone", v, &[]).expect_code(0);
    }
    host
}

#[test]
fn every_snapshot_restores_to_its_database_from_a_fresh_bare_clone() {
    let mut server = GitServer::start();
    let host = push_all(&server);
    // The fixtures hold each kind of change between states (written by Gitcord's own code).
    let dumps: Vec<String> = (1..=4)
        .map(|v| dump(&fixture(&format!("v{v}.db"))))
        .collect();
    assert!(dumps[0].contains(
        "'req-0','1001','user-0','org','repo-0',10,'https://github.com/org/repo-0/issues/10','"
    ));
    assert!(
        dumps[1].contains("'approved');"),
        "issue request resolved in v2"
    );
    assert!(
        !dumps[0].contains("'200099'") && dumps[1].contains("'200099'"),
        "notification replaced in v2"
    );
    assert!(
        dumps[1].contains("'1004','dave'") && !dumps[2].contains("'1004','dave'"),
        "expired claim deleted in v3"
    );
    assert!(
        !dumps[2].contains("edited") && dumps[3].contains("edited"),
        "old contribution changed in v4"
    );
    assert_ne!(dumps[0], dumps[1]);

    // The host is gone: a bare clone of the server's repository is all there is.
    let fresh = host.env.path("fresh/.git");
    bare_clone(&server.repo_path("data"), &fresh);
    for v in 1..=4 {
        let to = format!("restored{v}/state.db");
        let run = restore(&host, "fresh", &dir_name(v), &to);
        run.expect_code(0);
        let restored = host.env.path(&to);
        assert_eq!(
            dump(&restored),
            dump_without_secrets(v, &host.env.path(".")),
            "snapshot {v}"
        );
        // The audit log comes back beside the database, byte for byte.
        assert_eq!(
            std::fs::read(host.env.path(&format!("restored{v}/audit_events.jsonl"))).unwrap(),
            std::fs::read(fixture(&format!("v{v}.audit_events.jsonl"))).unwrap(),
            "snapshot {v}"
        );
        // Every pending claim whose code was withheld is named, to be started again.
        let named: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("must be started again"))
            .collect();
        let want = pending(v);
        assert!(!want.is_empty());
        assert_eq!(named.len(), want.len(), "{}", run.stderr);
        for (d, g) in want {
            assert!(
                named
                    .iter()
                    .any(|l| l.contains(&format!("Discord user {d} as GitHub user {g} "))),
                "{d}/{g}: {}",
                run.stderr
            );
        }
    }
    // The proof: each backup restored and exported with its snapshot's run id, time and roles
    // gives back all seven files byte for byte, contributors.json included.
    assert_every_backup_proves(&host, "fresh", 4);
    // It can fail: with other weights the restored database scores differently.
    let config = std::fs::read_to_string(host.env.path("config.yaml")).unwrap();
    assert!(config.contains("pr_merged: 5"));
    host.env
        .write("other.yaml", config.replace("pr_merged: 5", "pr_merged: 6"));
    let proof = host.run(&[
        "verify",
        "--config",
        "other.yaml",
        "--clone-dir",
        "fresh",
        "--prove-restore",
        &dir_name(2),
    ]);
    assert_eq!(proof.code, 65, "{}", proof.stderr);
    assert!(
        proof.stderr.contains(&format!(
            "snapshots/{}/contributors.json: differs when the backup is restored",
            dir_name(2)
        )),
        "{}",
        proof.stderr
    );
    // latest and latest~N name the same snapshots.
    restore(&host, "fresh", "latest~2", "l2/state.db").expect_code(0);
    assert_eq!(
        dump(&host.env.path("l2/state.db")),
        dump(&host.env.path("restored2/state.db"))
    );
    // Restore never overwrites, the database nor the audit log (exit 73).
    std::fs::create_dir_all(host.env.path("taken")).unwrap();
    std::fs::write(host.env.path("taken/audit_events.jsonl"), "mine\n").unwrap();
    restore(&host, "fresh", "latest", "taken/state.db").expect_code(73);
    assert!(!host.env.path("taken/state.db").exists());
    assert_eq!(
        std::fs::read_to_string(host.env.path("taken/audit_events.jsonl")).unwrap(),
        "mine\n"
    );
    server.stop();
}

#[test]
fn the_verification_code_never_reaches_the_remote() {
    let mut server = GitServer::start();
    let host = push_all(&server);
    let objects = all_objects(&server.repo_path("data"));
    assert!(objects.len() > 10_000, "the remote holds the backups");
    let text = String::from_utf8_lossy(&objects);
    assert!(text.contains("\"redacted\":true"));
    for v in 1..=4 {
        for (d, _) in pending(v) {
            let code = format!("CODE{d}");
            assert!(!text.contains(&code), "{code} was published");
        }
    }
    // Neither anything derived from it: the clone's cache holds fingerprints of the published
    // form only, and never leaves the host.
    let cache = std::fs::read(host.env.path("clone/.git/gitcord-snapshot-backup-cache")).unwrap();
    assert!(!String::from_utf8_lossy(&cache).contains("CODE"));
    server.stop();
}

/// The backup commit on the server's backup branch that names snapshot `n`.
fn backup_commit(server: &GitServer, n: u32) -> String {
    let log = server.git_checked("data", &["log", "--format=%H %s", BRANCH]);
    log.lines()
        .find(|l| l.ends_with(&format!("snapshots/{}", dir_name(n))))
        .unwrap_or_else(|| panic!("no backup of snapshot {n} in\n{log}"))
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn a_run_where_nothing_changed_adds_a_manifest_and_a_commit() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    install(&host, 3);
    host.push("clone", 1, &[]).expect_code(0);
    install(&host, 3);
    host.push("clone", 2, &[]).expect_code(0);
    let (a, b) = (backup_commit(&server, 1), backup_commit(&server, 2));
    let new = server.git_checked("data", &["rev-list", "--objects", &b, &format!("^{a}")]);
    let new: Vec<&str> = new.lines().collect();
    // The commit, its root tree and backup.json: nothing else.
    assert_eq!(new.len(), 3, "{new:?}");
    assert!(new.iter().any(|l| l.ends_with(" backup.json")), "{new:?}");
    let changed = server.git_checked("data", &["diff", "--name-only", &a, &b]);
    assert_eq!(changed, "backup.json");
    // And a change to one old row rewrites that row's range only (and the trees above it).
    install(&host, 4);
    host.push("clone", 3, &[]).expect_code(0);
    let c = backup_commit(&server, 3);
    let changed = server.git_checked("data", &["diff", "--name-only", &b, &c]);
    assert_eq!(
        changed,
        "backup.json\ntables/contributions/80/00/00/00/00/00/0-255.jsonl"
    );
    // The backup branch has its own root: the snapshot branch never reaches it.
    let base = server.git("data", &["merge-base", "main", BRANCH]);
    assert!(!base.status.success(), "the branches share history");
    server.stop();
}

#[test]
fn a_single_branch_clone_of_the_snapshot_branch_downloads_no_backup() {
    let mut server = GitServer::start();
    let _host = push_all(&server);
    let env = crate::support::testenv::TestEnv::new();
    let out = git::command()
        .args([
            "clone",
            "--quiet",
            "--bare",
            "--single-branch",
            "--no-local",
            "--branch",
            "main",
        ])
        .arg(server.repo_path("data"))
        .arg(env.path("reader.git"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let objects = all_objects(&env.path("reader.git"));
    let text = String::from_utf8_lossy(&objects);
    assert!(!text.contains("backup.json") && !text.contains("\"redacted\""));
    server.stop();
}

#[test]
fn a_snapshot_older_than_the_backup_is_restored_as_before_and_says_so() {
    let host = Host::for_case("basic");
    // Snapshot 1 with the backup off, snapshot 2 with it on.
    let config = std::fs::read_to_string(host.env.path("config.yaml")).unwrap();
    host.env
        .write("config.yaml", format!("{config}  backup: false\n"));
    install(&host, 2);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    host.env.write("config.yaml", config);
    host.push("clone", 2, &["--no-push"]).expect_code(0);
    let old = restore(&host, "clone", &dir_name(1), "old/state.db");
    old.expect_code(0);
    assert!(old.stderr.contains("predates the backup"), "{}", old.stderr);
    let new = restore(&host, "clone", &dir_name(2), "new/state.db");
    new.expect_code(0);
    assert!(!new.stderr.contains("predates"), "{}", new.stderr);
    assert_eq!(
        dump(&host.env.path("new/state.db")),
        dump_without_secrets(2, &host.env.path("."))
    );
}

/// Commits `tree` (the backup tip's tree changed by `change`) on the clone's backup branch.
fn tamper(clone: &Path, change: impl FnOnce(&git2::Repository, &git2::Tree<'_>) -> git2::Oid) {
    let repo = git2::Repository::open_bare(clone.join(".git")).unwrap();
    let tip = repo
        .find_reference(&format!("refs/heads/{BRANCH}"))
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let tree = repo.find_tree(change(&repo, &tip.tree().unwrap())).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    let msg = tip.message().unwrap().to_owned();
    let oid = repo.commit(None, &sig, &sig, &msg, &tree, &[&tip]).unwrap();
    repo.reference(&format!("refs/heads/{BRANCH}"), oid, true, "tamper")
        .unwrap();
}

/// `tree` with the blob at `path` (a/b/c) replaced by `oid` (or removed when `None`).
fn replace(
    repo: &git2::Repository,
    tree: &git2::Tree<'_>,
    path: &[&str],
    oid: Option<git2::Oid>,
) -> git2::Oid {
    let mut b = repo.treebuilder(Some(tree)).unwrap();
    if path.len() == 1 {
        match oid {
            Some(oid) => {
                b.insert(path[0], oid, 0o100644).unwrap();
            }
            None => b.remove(path[0]).unwrap(),
        };
        return b.write().unwrap();
    }
    let sub = repo
        .find_tree(tree.get_name(path[0]).unwrap().id())
        .unwrap();
    let new = replace(repo, &sub, &path[1..], oid);
    b.insert(path[0], new, 0o040000).unwrap();
    b.write().unwrap()
}

/// Makes a tampered tree from the backup tip's tree.
type Tamper<'a> = Box<dyn Fn(&git2::Repository, &git2::Tree<'_>) -> git2::Oid + 'a>;

#[test]
fn verify_finds_a_tampered_chunk_a_missing_one_and_a_wrong_count() {
    let chunk = [
        "tables",
        "scores",
        "80",
        "00",
        "00",
        "00",
        "00",
        "00",
        "0-255.jsonl",
    ];
    let cases: Vec<(&str, Tamper<'_>, &str)> = vec![
        (
            "tampered chunk",
            Box::new(|repo, tree| {
                let blob = repo.blob(b"[1,\"x\",\"a\",\"b\",1,\"c\"]\n").unwrap();
                replace(repo, tree, &chunk, Some(blob))
            }),
            "tables/scores: is missing or is not tree",
        ),
        (
            "missing chunk",
            Box::new(|repo, tree| replace(repo, tree, &chunk, None)),
            "tables/scores: is missing or is not tree",
        ),
        (
            "wrong count",
            Box::new(|repo, tree| {
                let e = tree.get_name("backup.json").unwrap();
                let text =
                    String::from_utf8(repo.find_blob(e.id()).unwrap().content().to_vec()).unwrap();
                let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
                let tables = m["tables"].as_array_mut().unwrap();
                let scores = tables.iter_mut().find(|t| t["name"] == "scores").unwrap();
                scores["rows"] = serde_json::json!(scores["rows"].as_u64().unwrap() + 1);
                let blob = repo
                    .blob(serde_json::to_string_pretty(&m).unwrap().as_bytes())
                    .unwrap();
                replace(repo, tree, &["backup.json"], Some(blob))
            }),
            "tables/scores: holds 14 rows in 1 chunks, the manifest says 15 in 1",
        ),
        (
            "a chunk whose rows are not what its name says",
            Box::new(|repo, tree| {
                // A consistent manifest pointing at a chunk holding a rowid outside its range.
                let blob = repo.blob(b"[999,\"x\",\"a\",\"b\",1,\"c\"]\n").unwrap();
                let new = replace(repo, tree, &chunk, Some(blob));
                let new_tree = repo.find_tree(new).unwrap();
                let scores_tree = new_tree.get_path(Path::new("tables/scores")).unwrap().id();
                let e = tree.get_name("backup.json").unwrap();
                let text =
                    String::from_utf8(repo.find_blob(e.id()).unwrap().content().to_vec()).unwrap();
                let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
                let tables = m["tables"].as_array_mut().unwrap();
                let scores = tables.iter_mut().find(|t| t["name"] == "scores").unwrap();
                scores["tree"] = serde_json::json!(scores_tree.to_string());
                let blob = repo
                    .blob(serde_json::to_string_pretty(&m).unwrap().as_bytes())
                    .unwrap();
                replace(repo, &new_tree, &["backup.json"], Some(blob))
            }),
            "rowid 999 is out of order or outside its range",
        ),
    ];
    for (what, change, fragment) in cases {
        let host = Host::for_case("basic");
        install(&host, 2);
        host.push("clone", 1, &["--no-push"]).expect_code(0);
        let ok = host.run(&["verify", "--config", "config.yaml", "--clone-dir", "clone"]);
        ok.expect_code(0);
        assert!(
            ok.stdout.contains("1 backups: no problems"),
            "{}",
            ok.stdout
        );
        tamper(&host.env.path("clone"), change);
        let run = host.run(&["verify", "--config", "config.yaml", "--clone-dir", "clone"]);
        assert_ne!(run.code, 0, "{what}: {}", run.stdout);
        assert!(run.stderr.contains(fragment), "{what}: {}", run.stderr);
    }
}

/// The snapshots each backup commit on the server's backup branch names, oldest first, and
/// whether the branch is linear.
fn backed_up(server: &GitServer) -> Vec<String> {
    let log = server.git_checked("data", &["log", "--format=%P|%s", "--reverse", BRANCH]);
    log.lines()
        .map(|l| {
            let (parents, subject) = l.split_once('|').unwrap();
            assert!(parents.split(' ').count() <= 1, "a merge: {l}");
            subject.rsplit('/').next().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn backups_are_queued_and_replayed_onto_another_writers_like_snapshots() {
    use crate::support::git_server::Mode;
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    let a = Host::for_server(&server, "data");
    let b = Host::for_server(&server, "data");
    install(&a, 1);
    a.push("clone", 1, &[]).expect_code(0);
    // A's next run cannot reach the server: its snapshot and its backup wait in the queue.
    server.set_mode(Mode::Unavailable503);
    install(&a, 2);
    a.push("clone", 2, &[]).expect_code(75);
    server.set_mode(Mode::Normal);
    assert_eq!(backed_up(&server), [dir_name(1)]);
    let status = a.run(&["status", "--config", "config.yaml", "--json"]);
    status.expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        status["backup"],
        serde_json::json!({
            "branch": BRANCH,
            "queued": 1,
            "newest": dir_name(2),
            "newest_remote": dir_name(1),
            "repository": null,
        })
    );
    // Another host publishes meanwhile, on top of what it found.
    install(&b, 3);
    b.push("clone", 3, &[]).expect_code(0);
    assert_eq!(backed_up(&server), [dir_name(1), dir_name(3)]);
    // A's next run replays its queued backup onto B's, and sends both in one push.
    install(&a, 4);
    a.push("clone", 4, &[]).expect_code(0);
    assert_eq!(
        backed_up(&server),
        [dir_name(1), dir_name(3), dir_name(2), dir_name(4)]
    );
    let fresh = a.env.path("fresh/.git");
    bare_clone(&server.repo_path("data"), &fresh);
    for v in 1..=4 {
        let to = format!("r{v}/state.db");
        restore(&a, "fresh", &dir_name(v), &to).expect_code(0);
        assert_eq!(
            dump(&a.env.path(&to)),
            dump_without_secrets(v, &a.env.path(".")),
            "snapshot {v}"
        );
    }
    let verify = a.run(&["verify", "--config", "config.yaml", "--clone-dir", "fresh"]);
    verify.expect_code(0);
    assert!(verify.stdout.contains("4 backups"), "{}", verify.stdout);
    server.stop();
}

/// Starts `push` of snapshot `n` stopped at pause point `phase` (src/pause.rs), and kills it
/// there with SIGKILL.
fn kill_at(host: &Host, n: u32, phase: &str) {
    use std::os::unix::process::ExitStatusExt;
    let file = host.env.path(&format!("paused-{n}"));
    let mut child = crate::support::testenv::ChildGuard::spawn(
        host.command("clone", n, &[])
            .env("GITCORD_SNAPSHOT_PAUSE_AT", phase)
            .env("GITCORD_SNAPSHOT_PAUSE_FILE", &file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_to_string(&file).unwrap_or_default() != phase {
        assert!(
            child.child().try_wait().unwrap().is_none(),
            "ended before {phase}"
        );
        assert!(std::time::Instant::now() < deadline, "no pause at {phase}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.child().kill().unwrap();
    let status = child.child().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[test]
fn a_run_killed_during_the_backup_leaves_no_backup_commit_or_a_whole_one() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    install(&host, 1);
    host.push("clone", 1, &[]).expect_code(0);
    // Killed with the backup's objects written but not committed: no backup of 2.
    install(&host, 2);
    kill_at(&host, 2, "backup");
    install(&host, 3);
    host.push("clone", 3, &[]).expect_code(0);
    assert_eq!(backed_up(&server), [dir_name(1), dir_name(3)]);
    // Killed with the backup committed, its cache not updated: the next run starts over.
    install(&host, 4);
    kill_at(&host, 4, "backup-cache");
    let run = host.push("clone", 5, &["-v"]);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("describes another backup than the branch tip"),
        "{}",
        run.stderr
    );
    assert_eq!(
        backed_up(&server),
        [dir_name(1), dir_name(3), dir_name(4), dir_name(5)]
    );
    git::fsck(&server.repo_path("data"));
    git::fsck(&host.env.path("clone/.git"));
    let fresh = host.env.path("fresh/.git");
    bare_clone(&server.repo_path("data"), &fresh);
    for (n, v) in [(1, 1), (3, 3), (4, 4), (5, 4)] {
        let to = format!("r{n}/state.db");
        restore(&host, "fresh", &dir_name(n), &to).expect_code(0);
        assert_eq!(
            dump(&host.env.path(&to)),
            dump_without_secrets(v, &host.env.path(".")),
            "snapshot {n}"
        );
    }
    let old = restore(&host, "fresh", &dir_name(2), "r2/state.db");
    old.expect_code(0);
    assert!(old.stderr.contains("predates the backup"), "{}", old.stderr);
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// The benchmark (scripts/bench-backup.sh): ignored by CI.

/// What one Gitcord run does to the database (issue 18's yardstick run): 1,000 new
/// contributions, a new score row for every scored user (a new period ending now), 50
/// notifications, a few issue requests and identity links changed, the cursor moved.
fn gitcord_run(db: &Path, round: u32) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let now = format!("2025-01-31T{:02}:00:00+00:00", round % 24);
    conn.execute_batch("BEGIN").unwrap();
    conn.execute(
        "INSERT INTO contributions (github_user, event_type, repo, created_at, payload_json)
         SELECT github_user, event_type, repo, ?1, payload_json FROM contributions
         ORDER BY id DESC LIMIT 1000",
        [&now],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO scores (github_user, period_start, period_end, points, updated_at)
         SELECT github_user, period_start, ?1, points + 1, ?1 FROM scores
         WHERE period_end = (SELECT max(period_end) FROM scores)",
        [&now],
    )
    .unwrap();
    conn.execute(
        "INSERT OR REPLACE INTO notifications_sent
         (dedupe_key, event_type, github_user, discord_user_id, repo, target, channel_id, sent_at)
         SELECT 'bench:' || ?2 || ':' || rowid, event_type, github_user, discord_user_id, repo,
                target, channel_id, ?1 FROM notifications_sent ORDER BY rowid LIMIT 50",
        rusqlite::params![now, round],
    )
    .unwrap();
    conn.execute(
        "UPDATE issue_requests SET status = 'approved' WHERE rowid IN
         (SELECT rowid FROM issue_requests WHERE status = 'pending' ORDER BY rowid LIMIT 3)",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE identity_links SET verified = 1, verified_at = ?1, verification_code = NULL,
         expires_at = NULL WHERE rowid IN
         (SELECT rowid FROM identity_links WHERE verified = 0 ORDER BY rowid LIMIT 3)",
        [&now],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO cursors (source, cursor) VALUES ('github', ?1)
         ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor",
        [&now],
    )
    .unwrap();
    conn.execute_batch("COMMIT").unwrap();
}

/// The yardstick: the rows that changed between two databases as `sqlite3 .dump` INSERT
/// statements (those of `after` that `before` lacks), compressed with gzip -6.
fn yardstick(before: &Path, after: &Path) -> (usize, usize) {
    let old: std::collections::HashSet<String> = dump(before).lines().map(str::to_owned).collect();
    let changed: Vec<String> = dump(after)
        .lines()
        .filter(|l| l.starts_with("INSERT") && !old.contains(*l))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut gz, changed.concat().as_bytes()).unwrap();
    (changed.len(), gz.finish().unwrap().len())
}

#[test]
#[ignore = "benchmark: run scripts/bench-backup.sh"]
fn bench_backup() {
    use crate::bench::{apparent_size, last_receive_pack_bytes, measured};
    let contributions: u64 = std::env::var("BENCH_CONTRIBUTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_gitcord-snapshot"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The database, generated once per size and kept (scripts/gen-bench-db.py).
    let cache = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/bench"))
        .join(format!("backup-db-{contributions}"));
    if !cache.join("state.db").exists() {
        std::fs::create_dir_all(&cache).unwrap();
        let ok = Command::new("python3")
            .arg(root.join("scripts/gen-bench-db.py"))
            .arg(cache.join("state.db"))
            .args(["--contributions", &contributions.to_string(), "-q"])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let mut server = GitServer::start();
    let env = crate::support::testenv::TestEnv::new();
    for f in ["state.db", "roles.json", "config.yaml"] {
        std::fs::copy(cache.join(f), env.path(f)).unwrap();
    }
    let config = std::fs::read_to_string(env.path("config.yaml")).unwrap();
    let config = config.replace(
        &format!("data_dir: {:?}", cache.display().to_string()),
        "data_dir: \".\"",
    );
    assert!(config.contains("data_dir: \".\""), "{config}");
    for (repo, backup) in [("data", "true"), ("plain", "false")] {
        server.create_bare_repo(repo);
        let c =
            crate::support::testenv::set_key(&config, "snapshots", "remote_url", &server.url(repo));
        let c = crate::support::testenv::set_key(
            &c,
            "snapshots",
            "token",
            "${GITCORD_SNAPSHOT_TEST_TOKEN}",
        );
        let c = crate::support::testenv::set_key(&c, "snapshots", "backup", backup);
        env.write(&format!("{repo}.yaml"), c);
    }
    let run = |repo: &str, n: u32, log: &str| {
        // BENCH_PERF_DIR: each push recorded by `perf record --call-graph dwarf` there
        // (perf-<repo>-<n>.data), to see where the backup's CPU goes.
        let mut cmd = match std::env::var_os("BENCH_PERF_DIR") {
            Some(dir) => {
                let mut perf = Command::new("perf");
                perf.args([
                    "record",
                    "-q",
                    "--call-graph",
                    "dwarf,32768",
                    "-F",
                    "2000",
                    "-o",
                ])
                .arg(Path::new(&dir).join(format!("perf-{repo}-{n}.data")))
                .arg("--")
                .arg(&binary);
                perf
            }
            None => Command::new(&binary),
        };
        git::isolate(&mut cmd);
        cmd.current_dir(env.path("."))
            .env_remove("RUST_LOG")
            .env("GITCORD_SNAPSHOT_TEST_TOKEN", server.token())
            .env("SSL_CERT_FILE", server.ca_file())
            .args(["-v", "push", "--config", &format!("{repo}.yaml")])
            .args(["--clone-dir", &format!("clone-{repo}")])
            .args(["--roles-file", "roles.json"])
            .args(["--run-id", &crate::support::host::run_id(n)])
            .args(["--at", &format!("2025-01-31T{:02}:00:00+00:00", n % 24)]);
        let cost = measured(&mut cmd, &env.path(log));
        (
            cost,
            last_receive_pack_bytes(&server),
            apparent_size(&server.repo_path(repo)),
        )
    };
    let secs = |d: std::time::Duration| d.as_secs_f64();
    // An export of the same database at snapshot time `n` into `out`, measured.
    let export_at = |n: u32, out: &str| {
        let mut cmd = Command::new(&binary);
        cmd.current_dir(env.path("."))
            .args([
                "export",
                "--config",
                "plain.yaml",
                "--roles-file",
                "roles.json",
            ])
            .args(["--run-id", &crate::support::host::run_id(100 + n)])
            .args(["--out", out])
            .args(["--at", &format!("2025-01-31T{:02}:00:00+00:00", n % 24)]);
        measured(&mut cmd, &env.path("export.log"))
    };
    let export = {
        let cost = export_at(2, "export-out");
        let dirs: Vec<_> = std::fs::read_dir(env.path("export-out/snapshots"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let size = std::fs::metadata(dirs[0].join("contributors.json"))
            .unwrap()
            .len();
        assert!(
            size > 100_000,
            "the export's window holds the contributions"
        );
        cost
    };
    let mut sizes = (
        apparent_size(&server.repo_path("data")),
        apparent_size(&server.repo_path("plain")),
    );
    let mut backup_tip: Option<String> = None;
    let mut rows = Vec::new();
    let mut step = |n: u32, what: &str, yardstick: String| {
        let (with, bytes, size) = run("data", n, &format!("data-{n}.log"));
        let (without, plain_bytes, plain_size) = run("plain", n, &format!("plain-{n}.log"));
        let (growth, plain_growth) = (size - sizes.0, plain_size - sizes.1);
        sizes = (size, plain_size);
        // The remote's growth due to the backup: the new backup objects as the server stores
        // them (their size on disk, packed or loose).
        let tip = server.git_checked("data", &["rev-parse", BRANCH]);
        let mut range = vec!["rev-list".to_owned(), "--objects".to_owned(), tip.clone()];
        if let Some(old) = &backup_tip {
            range.push(format!("^{old}"));
        }
        let args: Vec<&str> = range.iter().map(String::as_str).collect();
        let objects = server.git_checked("data", &args);
        let ids: String = objects
            .lines()
            .map(|l| format!("{}\n", l.split(' ').next().unwrap()))
            .collect();
        let mut cat = git::git_command(&server.repo_path("data"));
        cat.args(["cat-file", "--batch-check=%(objectsize:disk)"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = cat.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), ids.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let on_disk: u64 = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.trim().parse::<u64>().unwrap())
            .sum();
        backup_tip = Some(tip);
        rows.push(format!(
            "| {what} | {:.2} / {:.2} | {:.2} / {:.2} | {bytes} / {} | {growth} / {} | {on_disk} | {yardstick} |",
            secs(with.cpu),
            secs(without.cpu),
            secs(with.wall),
            secs(without.wall),
            bytes as i64 - plain_bytes as i64,
            plain_growth,
        ));
        (with, without)
    };
    // 1. The first backup.
    let first = step(1, "first push: every row backed up", "—".into());
    // 2. After one Gitcord run's changes.
    std::fs::copy(env.path("state.db"), env.path("before.db")).unwrap();
    gitcord_run(&env.path("state.db"), 2);
    let (changed_rows, gz) = yardstick(&env.path("before.db"), &env.path("state.db"));
    let inc = step(
        2,
        "after one Gitcord run",
        format!(
            "{changed_rows} rows: {gz} bytes; budget 2x + 16 KB = {}",
            2 * gz + 16 * 1024
        ),
    );
    // 3. Nothing changed.
    let same = step(3, "nothing changed", "0 rows: budget 16 KB = 16384".into());
    // CPU per run, which one push measures too noisily to compare with the export: five more
    // rounds of one Gitcord run then nothing changed, each push made with and without the
    // backup, beside an export of the same database at the same time; medians.
    let (mut inc_added, mut same_added, mut exports) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..5u32 {
        let n = 4 + 2 * round;
        gitcord_run(&env.path("state.db"), n);
        let (with, _, _) = run("data", n, "round-data.log");
        let (without, _, _) = run("plain", n, "round-plain.log");
        inc_added.push(secs(with.cpu) - secs(without.cpu));
        exports.push(secs(export_at(n, "export-rounds").cpu));
        let (with, _, _) = run("data", n + 1, "round-data.log");
        let (without, _, _) = run("plain", n + 1, "round-plain.log");
        same_added.push(secs(with.cpu) - secs(without.cpu));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rounds = format!(
        "CPU per run over 5 rounds (medians; each round one Gitcord run, then nothing changed): \
         the export alone {:.2} s; the backup adds {:.2} s after a Gitcord run ({:.2}x the export), \
         {:.2} s when nothing changed ({:.2}x); all rounds: export {:?}, after a run {:?}, unchanged {:?}",
        median(&mut exports),
        median(&mut inc_added),
        median(&mut inc_added) / median(&mut exports),
        median(&mut same_added),
        median(&mut same_added) / median(&mut exports),
        exports.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>(),
        inc_added.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>(),
        same_added.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>(),
    );
    // 4. Restore from a fresh bare clone, and the proof.
    bare_clone(&server.repo_path("data"), &env.path("fresh/.git"));
    let mut cmd = Command::new(&binary);
    cmd.current_dir(env.path("."))
        .args(["restore", "--config", "data.yaml", "--clone-dir", "fresh"])
        .args(["--snapshot", "latest", "--to", "restored/state.db"]);
    let restore = measured(&mut cmd, &env.path("restore.log"));
    let mut cmd = Command::new(&binary);
    cmd.current_dir(env.path("."))
        .args(["verify", "--config", "data.yaml", "--clone-dir", "fresh"])
        .args(["--prove-restore", "latest"]);
    let prove = measured(&mut cmd, &env.path("prove.log"));
    let mut cmd = Command::new(&binary);
    cmd.current_dir(env.path(".")).args([
        "verify",
        "--config",
        "data.yaml",
        "--clone-dir",
        "fresh",
    ]);
    let verify = measured(&mut cmd, &env.path("verify.log"));
    assert!(!dump(&env.path("restored/state.db")).is_empty());
    server.stop();
    println!("\n1M-row database: {contributions} contributions (scripts/gen-bench-db.py)\n");
    println!("| push | CPU s: with backup / without | wall s: with / without | bytes pushed: with backup / the backup's share | remote growth: with backup / without | the backup's new objects on the remote | yardstick: changed rows as .dump INSERTs, gzip -6 |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for r in &rows {
        println!("{r}");
    }
    println!(
        "\nexport alone: {:.2} s CPU, {:.2} s wall",
        secs(export.cpu),
        secs(export.wall)
    );
    println!(
        "CPU the backup adds to a push (same push with snapshots.backup: false): first {:.2} s, incremental {:.2} s, nothing changed {:.2} s",
        secs(first.0.cpu) - secs(first.1.cpu),
        secs(inc.0.cpu) - secs(inc.1.cpu),
        secs(same.0.cpu) - secs(same.1.cpu)
    );
    println!("{rounds}");
    println!(
        "restore --snapshot latest from a fresh bare clone: {:.2} s CPU, {:.2} s wall",
        secs(restore.cpu),
        secs(restore.wall)
    );
    println!(
        "verify --prove-restore latest: {:.2} s CPU, {:.2} s wall; verify (every backup's integrity): {:.2} s CPU, {:.2} s wall",
        secs(prove.cpu),
        secs(prove.wall),
        secs(verify.cpu),
        secs(verify.wall)
    );
    for log in ["data-1.log", "data-2.log", "data-3.log"] {
        let text = std::fs::read_to_string(env.path(log)).unwrap();
        if let Some(l) = text.lines().find(|l| l.contains("backed up state.db")) {
            println!("{log}: {l}");
        }
    }
}

#[test]
fn backup_commits_are_signed_and_the_same_on_every_host() {
    use std::os::unix::fs::PermissionsExt;
    let mut server = GitServer::start();
    let keys = crate::support::testenv::TestEnv::new();
    let key = keys.path("signing_key");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/signing/test_ed25519"),
        &key,
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key)
        .output()
        .unwrap();
    assert!(public.status.success());
    let public = String::from_utf8(public.stdout).unwrap();
    let fields: Vec<&str> = public.split_whitespace().take(2).collect();
    let signers = keys.write(
        "allowed",
        format!("gitcord-snapshot {}\n", fields.join(" ")),
    );
    let mut tips = Vec::new();
    for repo in ["a", "b"] {
        server.create_bare_repo(repo);
        let host = Host::for_server(&server, repo);
        host.add_config(&format!("  signing_key: \"{}\"\n", key.display()));
        for v in 1..=2 {
            install(&host, v);
            host.push("clone", v, &[]).expect_code(0);
        }
        let bare = server.repo_path(repo);
        for commit in git::git(&bare, &["rev-list", BRANCH]).lines() {
            let out = git::git_command(&bare)
                .args(["-c", "gpg.format=ssh"])
                .arg("-c")
                .arg(format!("gpg.ssh.allowedSignersFile={}", signers.display()))
                .args(["verify-commit", commit])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{commit}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tips.push(
            server
                .ref_target(repo, &format!("refs/heads/{BRANCH}"))
                .unwrap(),
        );
    }
    assert_eq!(tips[0], tips[1], "same inputs, same backup commits");
    server.stop();
}

#[test]
fn every_sqlite_type_rowid_and_size_comes_back_exactly() {
    let host = Host::for_case("basic");
    install(&host, 1);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE odd (a, b REAL, c BLOB, d TEXT);
         INSERT INTO odd (rowid, a, b, c, d) VALUES
           (-9223372036854775808, 0.1, -0.0, x'00ff', 'min'),
           (-5, 1e308, 2.5, NULL, CAST(x'ff41' AS TEXT)),
           (0, 9223372036854775807, 3, x'', ''),
           (9223372036854775807, 'zoë \"q\"\n\t\\', 1, 'text in a blob column', NULL);
         CREATE TABLE big (t TEXT);
         CREATE INDEX big_t ON big (substr(t, 1, 3));
         CREATE VIEW v AS SELECT count(*) FROM big;
         CREATE TABLE big_log (r);
         CREATE TRIGGER trg AFTER INSERT ON big BEGIN INSERT INTO big_log VALUES (new.rowid); END;
         PRAGMA user_version = 7;
         ANALYZE;",
    )
    .unwrap();
    // Three rows of 300 KB in one range: the range is split into halves below 512 KB each.
    for i in 0..3 {
        conn.execute(
            "INSERT INTO big (rowid, t) VALUES (?1, ?2)",
            rusqlite::params![10 + i, "x".repeat(300_000)],
        )
        .unwrap();
    }
    drop(conn);
    let want = {
        let copy = host.env.path("want.db");
        std::fs::copy(host.env.path("state.db"), &copy).unwrap();
        let c = rusqlite::Connection::open(&copy).unwrap();
        c.execute("UPDATE identity_links SET verification_code = NULL", [])
            .unwrap();
        drop(c);
        dump_bytes(&copy)
    };
    let text = String::from_utf8_lossy(&want);
    // The trigger ran when the rows were written; restore must not run it again.
    assert_eq!(text.matches("INSERT INTO big_log VALUES(").count(), 3);
    assert!(
        text.contains("CREATE TRIGGER") && text.contains("X'00ff'"),
        "premise"
    );
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    let files = git::git(
        &host.env.path("clone/.git"),
        &["ls-tree", "-r", "--name-only", BRANCH, "tables/big"],
    );
    assert_eq!(files.lines().count(), 3, "{files}");
    restore(&host, "clone", "latest", "r/state.db").expect_code(0);
    let restored = host.env.path("r/state.db");
    assert!(dump_bytes(&restored) == want, "the dumps differ");
    let conn = rusqlite::Connection::open(&restored).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 7);
    let types: Vec<String> = conn
        .prepare("SELECT typeof(a) || typeof(b) || typeof(c) || typeof(d) FROM odd ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        types,
        [
            "realrealblobtext",
            "realrealnulltext",
            "integerrealblobtext",
            "textrealtextnull"
        ]
    );
    let raw: Vec<u8> = conn
        .query_row(
            "SELECT CAST(d AS BLOB) FROM odd WHERE rowid = -5",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(raw, b"\xffA");
}

#[test]
fn a_table_the_backup_cannot_copy_stops_the_push_with_one_line() {
    let host = Host::for_case("basic");
    install(&host, 1);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch("CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID;")
        .unwrap();
    drop(conn);
    let run = host.push("clone", 1, &["--no-push"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("table kv has no rowid (WITHOUT ROWID)")
            && run.stderr.contains("snapshots.backup: false"),
        "{}",
        run.stderr
    );
    let config = std::fs::read_to_string(host.env.path("config.yaml")).unwrap();
    host.env
        .write("config.yaml", format!("{config}  backup: false\n"));
    host.push("clone", 1, &["--no-push"]).expect_code(0);
}

#[test]
fn a_lost_pack_of_backup_chunks_is_written_again_by_the_next_run() {
    let host = Host::for_case("basic");
    install(&host, 1);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    // The run's chunks went into one pack of their own; the snapshot's objects are loose.
    let packs = host.env.path("clone/.git/objects/pack");
    let files: Vec<PathBuf> = std::fs::read_dir(&packs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "pack")));
    for f in files {
        std::fs::remove_file(f).unwrap();
    }
    install(&host, 2);
    let run = host.push("clone", 2, &["--no-push", "-v"]);
    run.expect_code(0);
    // Backup 1 is queued (never pushed) and its chunks are gone, so it could never be pushed:
    // the clone is set aside and rebuilt (backup 1 stays there), and the new backup is whole.
    assert!(
        run.stderr
            .contains("the queue of refs/heads/gitcord-backup")
            && run.stderr.contains("moving it aside"),
        "{}",
        run.stderr
    );
    restore(&host, "clone", &dir_name(2), "r/state.db").expect_code(0);
    assert_eq!(
        dump(&host.env.path("r/state.db")),
        dump_without_secrets(2, &host.env.path("."))
    );
}

#[test]
fn a_lost_pack_of_pushed_backup_chunks_is_written_again_by_the_next_run() {
    let mut server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    install(&host, 1);
    host.push("clone", 1, &[]).expect_code(0);
    let packs = host.env.path("clone/.git/objects/pack");
    for e in std::fs::read_dir(&packs).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    // The remote has backup 1, whose chunks the push deltas changed ones against: the clone
    // is rebuilt from the remote, and the next backup is incremental again.
    install(&host, 2);
    let run = host.push("clone", 2, &["-v"]);
    run.expect_code(0);
    // Before the health check looked up the remote backup's objects, the push failed with 74
    // on every run ("cannot read what to push from the clone"), snapshots queued behind it.
    assert!(
        run.stderr.contains("refs/remotes/origin/gitcord-backup")
            && run.stderr.contains("moving it aside"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(" 0 kept;"), "{}", run.stderr);
    assert_eq!(backed_up(&server), [dir_name(1), dir_name(2)]);
    let fresh = host.env.path("fresh/.git");
    bare_clone(&bare, &fresh);
    restore(&host, "fresh", &dir_name(2), "r/state.db").expect_code(0);
    assert_eq!(
        dump(&host.env.path("r/state.db")),
        dump_without_secrets(2, &host.env.path("."))
    );
    server.stop();
}

#[test]
fn restore_runs_nothing_but_create_statements_from_a_backup() {
    let host = Host::for_case("basic");
    install(&host, 1);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    for (what, sql) in [
        (
            "a second statement",
            "CREATE TABLE x (a); DROP TABLE contributions",
        ),
        ("not a CREATE", "ATTACH DATABASE 'elsewhere.db' AS e"),
    ] {
        tamper(&host.env.path("clone"), |repo, tree| {
            let e = tree.get_name("backup.json").unwrap();
            let text =
                String::from_utf8(repo.find_blob(e.id()).unwrap().content().to_vec()).unwrap();
            let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
            m["schema"][0]["sql"] = serde_json::json!(sql);
            let blob = repo
                .blob(serde_json::to_string_pretty(&m).unwrap().as_bytes())
                .unwrap();
            replace(repo, tree, &["backup.json"], Some(blob))
        });
        let run = restore(&host, "clone", "latest", "r/state.db");
        assert_eq!(run.code, 65, "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains("cannot be created"),
            "{what}: {}",
            run.stderr
        );
        assert!(!host.env.path("r/state.db").exists());
        assert!(!host.env.path("elsewhere.db").exists());
    }
}
