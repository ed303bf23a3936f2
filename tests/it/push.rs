//! `push` end to end: the real binary, a real TLS smart-HTTP git server with basic auth, real
//! clones. Assertions are on exit codes, bytes and the state of the remote.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::git::{check_latest, fsck, git, history, tree_files};
use crate::support::git_server::{GitServer, Mode};
use crate::support::host::{dir_name, git_time, Host, TOKEN_VAR};
use crate::support::testenv::{remove_key, set_key, tree, Case, ChildGuard, TestEnv};

/// Every file below `dir` (the clone, the host directory), searched for `needle`.
fn assert_nowhere(dir: &Path, needle: &str) {
    for (path, bytes) in tree(dir) {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the token was found in {path}"
        );
    }
}

#[test]
fn first_push_into_an_empty_repository_publishes_the_exact_files() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    let run = host.push_case("clone");
    run.expect_code(0);
    assert!(run.stdout.contains("pushed to"), "{}", run.stdout);

    // The remote holds exactly the conformance bytes, in one commit with Gitcord's message.
    let want = tree(&host.case.dir.join("expected"));
    for (path, bytes) in &want {
        let got = git(&bare, &["show", &format!("main:{path}")]);
        assert_eq!(got.as_bytes(), &bytes[..], "{path}");
    }
    let files = tree_files(&bare);
    assert_eq!(files.len(), 7 + 1, "seven files and latest.json: {files:?}");
    assert_eq!(
        check_latest(&bare),
        "snapshots/2024-01-31T12-00-00-abc12345"
    );
    let log = git(
        &bare,
        &["log", "--format=%an <%ae>|%aI|%cn <%ce>|%cI|%B", "main"],
    );
    let want_msg = &host.case.commit_message;
    assert_eq!(
        log.trim_end(),
        format!(
            "gitcord-snapshot <gitcord-snapshot@users.noreply.github.com>|2024-01-31T12:00:00Z|\
             gitcord-snapshot <gitcord-snapshot@users.noreply.github.com>|2024-01-31T12:00:00Z|{want_msg}"
        )
    );
    // Only the newest snapshot is checked out in the clone, and nothing is queued.
    let clone = host.clone_path("clone");
    let view: Vec<_> = std::fs::read_dir(clone.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(view, ["2024-01-31T12-00-00-abc12345"]);
    let second = host.push("clone", 1, &[]);
    second.expect_code(0);
    let view: Vec<_> = std::fs::read_dir(clone.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(view, [dir_name(1).as_str()]);
    assert_eq!(
        history(&bare).0,
        ["2024-01-31T12-00-00-abc12345".to_owned(), dir_name(1)]
    );
    fsck(&clone.join(".git"));
    fsck(&bare);

    // Audit trail, as Gitcord writes it.
    let audit = host.audit();
    let kinds: Vec<&str> = audit
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "snapshot_written",
            "snapshot_pushed",
            "snapshot_written",
            "snapshot_pushed"
        ]
    );
    assert_eq!(
        audit[0]["context"]["snapshot_dir"],
        host.case.snapshot_dir.as_str()
    );
    assert_eq!(audit[0]["context"]["run_id"], host.case.run_id.as_str());
    assert_eq!(audit[0]["context"]["files_written"], 7);
    assert_eq!(audit[0]["context"]["org"], "my-org");
    assert_eq!(audit[0]["context"]["repo"], "my-org/gitcord-data");
    assert_nowhere(host.env.dir.path(), server.token());
}

#[test]
fn the_same_inputs_onto_the_same_parent_give_the_same_commit() {
    let server = GitServer::start();
    let (a, b) = (server.create_bare_repo("a"), server.create_bare_repo("b"));
    Host::for_server(&server, "a")
        .push("clone", 7, &[])
        .expect_code(0);
    Host::for_server(&server, "b")
        .push("clone", 7, &[])
        .expect_code(0);
    let offline = Host::new("/nonexistent/offline.git", "unused", None);
    offline.push("clone", 7, &["--no-push"]).expect_code(0);
    let local = git(
        &offline.clone_path("clone").join(".git"),
        &["rev-parse", "main"],
    );
    assert_eq!(
        git(&a, &["rev-parse", "main"]),
        git(&b, &["rev-parse", "main"])
    );
    assert_eq!(git(&a, &["rev-parse", "main"]), local);
}

#[test]
fn a_wrong_token_exits_77_keeps_the_queue_and_leaks_nothing() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let mut host = Host::for_server(&server, "data");
    host.token = "ghp_wrong_token_value_123".into();
    let run = host.push("clone", 0, &[]);
    run.expect_error(77, &["rejected the token", "401", "queued"]);
    assert!(server.refs("data").is_empty(), "nothing reached the remote");
    let clone = host.clone_path("clone").join(".git");
    assert_eq!(
        history(&clone).0,
        [dir_name(0)],
        "the commit waits in the clone"
    );
    // One rejected attempt ends it: no credential loop.
    let attempts = server
        .access_log()
        .lines()
        .filter(|l| l.contains(" 401 "))
        .count();
    assert!(
        attempts <= 2,
        "credential loop: {attempts} rejected requests\n{}",
        server.access_log()
    );
    for secret in [host.token.as_str(), server.token()] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
        assert_nowhere(host.env.dir.path(), secret);
    }
    let failed = host
        .audit()
        .into_iter()
        .find(|e| e["event_type"] == "snapshot_push_failed")
        .unwrap();
    assert_eq!(failed["context"]["queued"], 1);

    // With the right token the next run pushes the queue, in order, then its own snapshot.
    host.token = server.token().to_owned();
    host.push("clone", 1, &[]).expect_code(0);
    assert_eq!(history(&bare), (vec![dir_name(0), dir_name(1)], true));
}

#[test]
fn transient_failures_exit_75_and_the_next_run_drains_the_queue_in_order() {
    let mut server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    host.push("clone", 0, &[]).expect_code(0);

    server.set_mode(Mode::Unavailable503);
    host.push("clone", 1, &[])
        .expect_error(75, &["503", "queued"]);
    server.set_mode(Mode::Normal);
    server.stop();
    host.push("clone", 2, &[])
        .expect_error(75, &["cannot reach", "2 snapshot commit(s) queued"]);
    assert_eq!(history(&bare).0, [dir_name(0)]);

    server.restart();
    let run = host.push("clone", 3, &[]);
    run.expect_code(0);
    assert_eq!(history(&bare), ((0..4).map(dir_name).collect(), true));
    // Each snapshot keeps its own time.
    let times = git(&bare, &["log", "--reverse", "--format=%aI %cI", "main"]);
    for (n, line) in times.lines().enumerate() {
        let t = git_time(n as u32);
        assert_eq!(line, format!("{t} {t}"));
    }
}

#[test]
fn refusals_exit_77_with_what_to_fix() {
    let server = GitServer::start();
    server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    host.push("clone", 0, &[]).expect_code(0);

    server.set_mode(Mode::PushForbidden403);
    host.push("clone", 1, &[])
        .expect_error(77, &["403", "write access"]);
    server.set_mode(Mode::Normal);

    server.install_rejecting_hook(
        "data",
        "GH007: Your push would publish a private email address.",
    );
    host.push("clone", 2, &[])
        .expect_error(77, &["rejected", "GH007", "2 snapshot commit(s) queued"]);
    server.remove_hook("data", "pre-receive");
    host.push("clone", 3, &[]).expect_code(0);
    assert_eq!(
        history(&server.repo_path("data")),
        ((0..4).map(dir_name).collect(), true)
    );
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let server = GitServer::start();
    server.create_bare_repo("data");
    let mut host = Host::for_server(&server, "data");
    host.ca = None;
    host.push("clone", 0, &[])
        .expect_error(77, &["TLS", "snapshots.ca_file"]);
    assert!(server.refs("data").is_empty());
    // The same CA given in the config works.
    let config = std::fs::read_to_string(host.env.path("config.yaml")).unwrap()
        + &format!("  ca_file: \"{}\"\n", server.ca_file().display());
    host.env.write("config.yaml", config);
    host.push("clone", 1, &[]).expect_code(0);
    assert_eq!(
        history(&server.repo_path("data")).0,
        [dir_name(0), dir_name(1)]
    );
}

#[test]
fn another_writer_moved_the_remote_so_queued_commits_are_replayed_linearly() {
    let mut server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let a = Host::for_server(&server, "data");
    let b = Host::for_server(&server, "data");
    a.push("clone", 0, &[]).expect_code(0);
    // A commits offline (server down): queued on top of snapshot 0.
    server.stop();
    a.push("clone", 1, &[]).expect_code(75);
    server.restart();
    // Meanwhile B publishes snapshot 2.
    b.push("clone", 2, &[]).expect_code(0);
    // A's next run fetches, replays 1 onto 2, then adds 3.
    let run = a.push("clone", 3, &["-v"]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("replaying queued snapshots"),
        "the run must have replayed: {}",
        run.stderr
    );
    let (names, linear) = history(&bare);
    assert!(linear, "no merge commits");
    assert_eq!(names, [dir_name(0), dir_name(2), dir_name(1), dir_name(3)]);
    let times = git(&bare, &["log", "--format=%aI %cI", "-1", "main~1"]);
    let t1 = git_time(1);
    assert_eq!(
        times.trim(),
        format!("{t1} {t1}"),
        "a replayed commit keeps its times"
    );
    assert_eq!(tree_files(&bare).len(), 4 * 7 + 1);
    // The replayed commits' index was recomputed: it names the newest snapshot by name.
    assert_eq!(check_latest(&bare), format!("snapshots/{}", dir_name(3)));
    fsck(&bare);
}

#[test]
fn two_clones_pushing_at_once_land_every_snapshot() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let hosts = [
        Host::for_server(&server, "data"),
        Host::for_server(&server, "data"),
    ];
    let mut n = 0;
    let mut replays = 0;
    for _round in 0..3 {
        let children: Vec<ChildGuard> = hosts
            .iter()
            .map(|h| {
                n += 1;
                ChildGuard::spawn(
                    h.command("clone", n, &["-v"])
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped()),
                )
            })
            .collect();
        for child in children {
            let out = child.wait_with_output();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            replays += stderr.matches("replaying queued snapshots").count();
        }
    }
    // The premise: the clones really raced for the remote. Whichever clone pushed first in a
    // round has not seen the other's push of that round, so each later round makes at least one
    // of them find the remote moved and replay (the first round may, too).
    assert!(
        replays >= 2,
        "only {replays} replay(s): the clones never found the remote moved"
    );
    let (mut names, linear) = history(&bare);
    assert!(linear);
    names.sort();
    let mut want: Vec<String> = (1..=6).map(dir_name).collect();
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn overlapping_runs_on_one_clone_take_turns() {
    let host = Host::local();
    let bare = host.remote_git_dir();
    // Another run holds the clone's lock (a fresh clone directory holds nothing else yet) while
    // three runs start, so all three overlap it and each other and must wait their turn.
    host.env.write("clone/.gitcord-snapshot.lock", "");
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(host.clone_path("clone").join(".gitcord-snapshot.lock"))
        .unwrap();
    lock.lock().unwrap();
    let logs: Vec<_> = (1..=3)
        .map(|n| host.env.path(&format!("run{n}.log")))
        .collect();
    let children: Vec<ChildGuard> = (1..=3)
        .map(|n| {
            let log = std::fs::File::create(&logs[n as usize - 1]).unwrap();
            ChildGuard::spawn(
                host.command("clone", n, &["-v"])
                    .stdout(Stdio::piped())
                    .stderr(log),
            )
        })
        .collect();
    let waited = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap()
            .contains("waiting for another run to release")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !logs.iter().all(|l| waited(l)) {
        assert!(
            Instant::now() < deadline,
            "not all three runs reached the lock: {:?}",
            logs.iter()
                .map(|l| std::fs::read_to_string(l).unwrap())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    lock.unlock().unwrap();
    drop(lock);
    for (child, log) in children.into_iter().zip(&logs) {
        let out = child.wait_with_output();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            std::fs::read_to_string(log).unwrap()
        );
    }
    let (mut names, linear) = history(&bare);
    assert!(linear);
    names.sort();
    assert_eq!(names, (1..=3).map(dir_name).collect::<Vec<_>>());

    // A run that cannot get the lock in time says so and exits 75.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(host.clone_path("clone").join(".gitcord-snapshot.lock"))
        .unwrap();
    lock.lock().unwrap();
    host.push("clone", 9, &["--lock-timeout", "0.3"])
        .expect_error(75, &["holds the lock"]);
    lock.unlock().unwrap();
    host.push("clone", 9, &[]).expect_code(0);
}

#[test]
fn kill_9_at_random_moments_loses_nothing_and_leaves_a_sound_clone() {
    use std::os::unix::process::ExitStatusExt;
    // The remote is a real server: as in production, another process writes it, so a kill of
    // ours can interrupt our side of a push but never leave the remote half-updated.
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    let clone_git = host.clone_path("clone").join(".git");
    // How long a whole run takes here (another repository, so this clone starts empty): kills
    // are spread over that span, so they land all through a run.
    server.create_bare_repo("probe");
    let probe = Host::for_server(&server, "probe");
    let started = Instant::now();
    probe.push("clone", 0, &[]).expect_code(0);
    let span = started.elapsed().as_micros().max(20_000) as u64 * 6 / 5;
    let mut committed: Vec<String> = Vec::new();
    // A new seed each run explores new kill moments; it is printed so a failure can be replayed.
    let mut seed: u64 = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill test seed: KILL_SEED={seed} (kills spread over {span} us)");
    // A kill counts when it landed in a running process (the process died of SIGKILL, not of
    // its own exit) once the clone existed, so the checks below saw what it left behind.
    const WANT_KILLS: u32 = 12;
    let mut landed = 0;
    let mut n = 0;
    while landed < WANT_KILLS && n < 80 {
        n += 1;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % span);
        let mut child = ChildGuard::spawn(
            host.command("clone", n, &[])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        std::thread::sleep(delay);
        let _ = child.child().kill(); // SIGKILL
        let status = child.child().wait().unwrap();
        if !clone_git.exists() {
            continue; // killed before the clone existed
        }
        if status.signal() == Some(libc::SIGKILL) {
            landed += 1;
        }
        assert!(
            clone_git.join("HEAD").is_file(),
            "a half-initialised .git after a kill"
        );
        // Whatever was committed before stays committed.
        let now: Vec<String> = history(&clone_git).0;
        assert!(
            now.starts_with(&committed) || is_subsequence(&committed, &now),
            "lost commits: had {committed:?}, now {now:?}"
        );
        committed = now;
        // Never a partial snapshot in a commit.
        if !committed.is_empty() {
            let files = git(&clone_git, &["ls-tree", "-r", "--name-only", "main"]);
            assert_eq!(files.lines().count(), committed.len() * 7 + 1, "{files}");
        }
    }
    eprintln!(
        "kill test: {landed} kills landed in {n} runs, {} snapshot(s) committed",
        committed.len()
    );
    assert!(
        landed >= WANT_KILLS,
        "only {landed} of {n} kills landed in a running push after the clone existed"
    );
    assert!(
        !committed.is_empty(),
        "no run got as far as a commit: the kills never tested keeping one"
    );
    // The next run recovers on its own and pushes everything.
    host.push("clone", 100, &[]).expect_code(0);
    fsck(&clone_git);
    fsck(&bare);
    let (names, linear) = history(&bare);
    assert!(linear);
    assert!(
        is_subsequence(&committed, &names),
        "{committed:?} not all in {names:?}"
    );
    assert_eq!(names.last().unwrap(), &dir_name(100));
}

fn is_subsequence(small: &[String], big: &[String]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}

#[test]
fn offline_without_a_remote_creates_a_local_repository() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    env.copy_case(&case, ".");
    // No remote_url: the default, on github.com, is derived from repo_path. The only token is
    // an unset variable, so a run that wrongly went online would stop at the token (exit 78)
    // before contacting anything, and could not send a token.
    const UNSET: &str = "GITCORD_SNAPSHOT_TEST_UNSET_TOKEN";
    let config = std::fs::read_to_string(env.path("config.yaml")).unwrap();
    let config = remove_key(&config, "snapshots", "remote_url");
    let config = set_key(&config, "github", "token", &format!("${{{UNSET}}}"));
    assert!(
        !config.contains("remote_url") && !config.contains("ghp_"),
        "{config}"
    );
    env.write("config.yaml", config);
    let run = env.run_with(
        [
            "push",
            "--config",
            "config.yaml",
            "--roles-file",
            "roles.json",
            "--clone-dir",
            "local",
            "--no-push",
            "--run-id",
            &case.run_id,
            "--at",
            &case.at,
        ],
        &[(UNSET, None)],
    );
    run.expect_code(0);
    assert!(
        run.stdout.contains("not pushed, 1 commit(s) queued"),
        "{}",
        run.stdout
    );
    let git_dir = env.path("local/.git");
    assert_eq!(
        git(&git_dir, &["log", "--format=%s", "main"]).trim(),
        case.commit_message
    );
    // The remote is the configured repo_path; nothing was contacted and no token was needed.
    assert_eq!(
        git(&git_dir, &["config", "remote.origin.url"]).trim(),
        "https://github.com/my-org/gitcord-data.git"
    );
    assert_eq!(
        tree(&env.path("local/snapshots")),
        tree(&case.dir.join("expected/snapshots"))
    );
}

#[test]
fn disabled_snapshots_exit_0_and_touch_nothing() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    env.copy_case(&case, ".");
    let config = std::fs::read_to_string(case.config())
        .unwrap()
        .replace("enabled: true", "enabled: false");
    env.write("config.yaml", config);
    let run = env.run([
        "push",
        "--config",
        "config.yaml",
        "--roles-file",
        "roles.json",
        "--clone-dir",
        "clone",
    ]);
    run.expect_code(0);
    assert!(run.stdout.contains("disabled"));
    assert!(!env.path("clone").exists());
}

#[test]
fn a_foreign_clone_dir_is_refused_and_left_untouched() {
    let host = Host::new("/srv/data.git", "unused", None);
    host.env.write("notgit/keep.txt", "mine");
    let run = host.push("notgit", 0, &["--no-push"]);
    run.expect_error(78, &["not a git repository", "notgit"]);
    assert_eq!(
        tree(&host.env.path("notgit")),
        vec![("keep.txt".to_owned(), b"mine".to_vec())]
    );

    // Someone's own project (a git repository, but not a clone of the data repository).
    let project = git2::Repository::init(host.env.path("project")).unwrap();
    host.env.write("project/main.rs", "fn main() {}");
    let run = host.push("project", 0, &["--no-push"]);
    run.expect_error(78, &["did not create", "project"]);
    assert!(project.head().is_err(), "nothing committed into it");
    assert!(!host.env.path("project/snapshots").exists());

    host.push("clone", 0, &["--no-push"]).expect_code(0);
    let other = Host::new("/srv/other.git", "unused", None);
    let run = other.push(
        &host.clone_path("clone").display().to_string(),
        1,
        &["--no-push"],
    );
    run.expect_error(78, &["is a clone of /srv/data.git", "/srv/other.git"]);
}

#[test]
fn urls_that_would_expose_the_token_are_refused_before_any_network() {
    for (url, fragment) in [
        ("http://example.com/o/r.git", "plain http"),
        (
            "https://x-access-token:secret@example.com/o/r.git",
            "must not contain credentials",
        ),
        ("git@github.com:o/r.git", "not an https"),
    ] {
        let host = Host::new(url, "t", None);
        let run = host.push("clone", 0, &[]);
        run.expect_error(78, &["snapshots.remote_url", fragment]);
        assert!(
            !run.stderr.contains("secret") && !run.stdout.contains("secret"),
            "credentials echoed: {}",
            run.stderr
        );
        assert!(!host.clone_path("clone").exists());
    }
    // An unset token variable is named when the run needs it.
    let server = GitServer::start();
    server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    let run = host.env.run_with(
        host.args("clone", 0, &[]),
        &[
            (TOKEN_VAR, None),
            (
                "SSL_CERT_FILE",
                Some(&server.ca_file().display().to_string()),
            ),
        ],
    );
    run.expect_error(78, &[TOKEN_VAR, "snapshots.token"]);
}

#[test]
fn without_a_configured_branch_the_remotes_default_is_used_even_after_an_offline_start() {
    let server = GitServer::start();
    let bare = server.create_bare_repo_with_branch("data", "master");
    // Someone published onto master first.
    let first = Host::for_server(&server, "data");
    let config = std::fs::read_to_string(first.env.path("config.yaml"))
        .unwrap()
        .replace("branch: \"main\"", "branch: \"master\"");
    first.env.write("config.yaml", config);
    first.push("clone", 0, &[]).expect_code(0);

    // This host sets no branch, starts offline, then goes online.
    let host = Host::for_server(&server, "data");
    let config = std::fs::read_to_string(host.env.path("config.yaml"))
        .unwrap()
        .replace("  branch: \"main\"\n", "");
    host.env.write("config.yaml", config);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    host.push("clone", 2, &[]).expect_code(0);
    let log = git(&bare, &["log", "--reverse", "--format=%s", "master"]);
    let runs: Vec<&str> = log
        .lines()
        .map(|l| l.rsplit("run: ").next().unwrap().trim_end_matches(')'))
        .collect();
    assert_eq!(runs, ["00000000", "00000001", "00000002"]);
    assert!(
        server.ref_target("data", "refs/heads/main").is_none(),
        "no stray main branch"
    );
}

#[test]
fn leftovers_of_a_killed_run_are_cleaned_up_by_the_next() {
    let host = Host::local();
    let bare = host.remote_git_dir();
    // Killed while initialising: a half-built .git under its temporary name.
    host.env.write("clone/.git.init-x1y2z3/objects/info/x", "");
    host.env.write("clone/.gitcord-snapshot.lock", "");
    host.push("clone", 0, &[]).expect_code(0);
    assert!(!host.clone_path("clone").join(".git.init-x1y2z3").exists());
    // Killed while holding git's own lock files and writing the working copy.
    let git_dir = host.clone_path("clone").join(".git");
    for stale in [
        "config.lock",
        "refs/heads/main.lock",
        "objects/pack/pack_git2_abc",
    ] {
        host.env.write(&format!("clone/.git/{stale}"), "");
    }
    host.env
        .write("clone/snapshots/.tmp-snapshot-q/meta.json", "{");
    let run = host.push("clone", 1, &[]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("left by an interrupted run"),
        "{}",
        run.stderr
    );
    for stale in [
        "config.lock",
        "refs/heads/main.lock",
        "objects/pack/pack_git2_abc",
    ] {
        assert!(!git_dir.join(stale).exists(), "{stale}");
    }
    assert!(!host
        .clone_path("clone")
        .join("snapshots/.tmp-snapshot-q")
        .exists());
    assert_eq!(history(&bare), (vec![dir_name(0), dir_name(1)], true));
    fsck(&git_dir);
}
