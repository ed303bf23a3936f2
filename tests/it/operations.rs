//! `status`, `prune`, `push --skip-unchanged` and `push --metrics-file`, end to end against
//! real clones and a real TLS git server.

use crate::support::git::{check_latest, git, snapshot_dirs};
use crate::support::git_server::{GitServer, Mode};
use crate::support::host::{dir_name as name, Host};

#[test]
fn status_reports_queue_newest_snapshots_last_push_and_lock() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    host.push("clone", 0, &[]).expect_code(0);
    server.stop();
    host.push("clone", 1, &[]).expect_code(75);
    host.push("clone", 2, &[]).expect_code(75);

    let run = host.run(&["status", "--config", "config.yaml", "--json"]);
    run.expect_code(0);
    let s: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(s["queued"], 2);
    assert_eq!(s["oldest_queued_at"], "2024-01-31T13:00:00+00:00");
    assert_eq!(s["branch"], "main");
    assert_eq!(s["remote"], server.url("data"));
    assert_eq!(s["newest_snapshot"], name(2));
    assert_eq!(s["newest_remote_snapshot"], name(0));
    assert_eq!(s["last_push"]["event"], "snapshot_push_failed");
    assert!(s["last_push"]["error"]
        .as_str()
        .unwrap()
        .contains("cannot reach"));
    assert_eq!(s["locked"], false);
    assert!(!run.stdout.contains(server.token()));

    let text = host.run(&["status", "--config", "config.yaml"]);
    text.expect_code(0);
    assert!(
        text.stdout
            .contains("queued:           2 commit(s), oldest from 2024-01-31T13:00:00+00:00"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("lock:             free"));

    // A lock held by a running push shows.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(host.env.path("clone/.gitcord-snapshot.lock"))
        .unwrap();
    lock.lock().unwrap();
    let s: serde_json::Value = serde_json::from_str(
        &host
            .run(&["status", "--config", "config.yaml", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(s["locked"], true);
    lock.unlock().unwrap();

    server.restart();
    host.push("clone", 3, &[]).expect_code(0);
    let s: serde_json::Value = serde_json::from_str(
        &host
            .run(&["status", "--config", "config.yaml", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(s["queued"], 0);
    assert_eq!(s["oldest_queued_at"], serde_json::Value::Null);
    assert_eq!(s["newest_remote_snapshot"], name(3));
    assert_eq!(s["last_push"]["event"], "snapshot_pushed");
}

#[test]
fn status_of_a_missing_clone_is_a_clear_error() {
    let host = Host::local();
    host.run(&["status", "--config", "config.yaml"])
        .expect_error(66, &["does not exist", "run push first"]);
    host.env.write("clone/stray.txt", "not a clone");
    host.run(&["status", "--config", "config.yaml"])
        .expect_error(78, &["not a git repository", "clone"]);
}

#[test]
fn skip_unchanged_makes_no_commit_until_the_data_changes() {
    let host = Host::local();
    let bare = host.remote_git_dir();
    host.push("clone", 0, &[]).expect_code(0);
    let run = host.push("clone", 1, &["--skip-unchanged"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains(&format!("nothing changed since snapshots/{}", name(0))),
        "{}",
        run.stdout
    );
    assert_eq!(snapshot_dirs(&bare), [name(0)]);
    // Without the flag a snapshot is made as usual.
    host.push("clone", 2, &[]).expect_code(0);
    // A change in the data (a new verified identity) makes a new snapshot even with the flag.
    rusqlite::Connection::open(host.env.path("state.db"))
        .unwrap()
        .execute_batch("UPDATE identity_links SET verified = 1 WHERE github_user = 'mallory'")
        .unwrap();
    host.push("clone", 3, &["--skip-unchanged"]).expect_code(0);
    assert_eq!(snapshot_dirs(&bare), [name(0), name(2), name(3)]);
    // A skipped run still drains an older queue, and says so in the audit log.
    let remote_url = bare.display().to_string();
    std::fs::rename(&bare, host.remote.as_ref().unwrap().path("away.git")).unwrap();
    rusqlite::Connection::open(host.env.path("state.db"))
        .unwrap()
        .execute_batch("UPDATE scores SET points = points + 1 WHERE github_user = 'alice'")
        .unwrap();
    host.push("clone", 5, &[]).expect_code(75);
    std::fs::rename(host.remote.as_ref().unwrap().path("away.git"), &bare).unwrap();
    let run = host.push("clone", 6, &["--skip-unchanged"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("nothing changed")
            && run.stdout.contains(&format!("pushed to {remote_url}")),
        "{}",
        run.stdout
    );
    assert_eq!(snapshot_dirs(&bare), [name(0), name(2), name(3), name(5)]);
    let audit = std::fs::read_to_string(host.env.path("audit_events.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["event_type"], "snapshot_pushed");
    assert_eq!(
        last["context"]["snapshot_dir"],
        format!("snapshots/{}", name(5))
    );
    // The config key does the same as the flag.
    let config =
        std::fs::read_to_string(host.env.path("config.yaml")).unwrap() + "  skip_unchanged: true\n";
    host.env.write("config.yaml", config);
    host.push("clone", 7, &[]).expect_code(0);
    assert_eq!(snapshot_dirs(&bare).len(), 4);
}

#[test]
fn metrics_describe_each_run_including_failures() {
    let server = GitServer::start();
    server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    host.add_config("  metrics_file: \"metrics/gitcord.prom\"\n");
    std::fs::create_dir_all(host.env.path("metrics")).unwrap();
    let metric = |name: &str| -> f64 {
        let text = std::fs::read_to_string(host.env.path("metrics/gitcord.prom")).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("gitcord_snapshot_{name} ")))
            .unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    host.push("clone", 0, &[]).expect_code(0);
    assert_eq!(metric("queued_commits"), 0.0);
    assert_eq!(metric("last_run_exit_code"), 0.0);
    let pushed_at = metric("last_push_success_timestamp_seconds");
    assert!((chrono::Utc::now().timestamp() as f64 - pushed_at).abs() < 60.0);
    assert!(metric("last_run_snapshot_bytes") > 1000.0);

    server.set_mode(Mode::Unavailable503);
    host.push("clone", 1, &[]).expect_code(75);
    host.push("clone", 2, &[]).expect_code(75);
    assert_eq!(metric("queued_commits"), 2.0);
    assert_eq!(metric("last_run_exit_code"), 75.0);
    assert_eq!(
        metric("last_push_success_timestamp_seconds"),
        pushed_at,
        "the last success is remembered"
    );
    // The oldest queued snapshot is from 2024: its age is large and alertable.
    assert!(metric("oldest_queued_age_seconds") > 86_400.0 * 300.0);

    // The flag overrides the config key.
    server.set_mode(Mode::Normal);
    host.push("clone", 3, &["--metrics-file", "other.prom"])
        .expect_code(0);
    assert!(std::fs::read_to_string(host.env.path("other.prom"))
        .unwrap()
        .contains("gitcord_snapshot_queued_commits 0"));
    let names: Vec<_> = std::fs::read_dir(host.env.path("metrics"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["gitcord.prom"], "no temporary files");

    // A config that does not even load still reports its exit code where --metrics-file says.
    host.env.write("broken.yaml", "github: [");
    host.run(&[
        "push",
        "--config",
        "broken.yaml",
        "--metrics-file",
        "other.prom",
    ])
    .expect_code(78);
    assert!(std::fs::read_to_string(host.env.path("other.prom"))
        .unwrap()
        .contains("gitcord_snapshot_last_run_exit_code 78"));
}

#[test]
fn prune_removes_from_the_tip_keeps_history_and_dry_run_changes_nothing() {
    let host = Host::local();
    let bare = host.remote_git_dir();
    for n in 0..6 {
        host.push("clone", n, &[]).expect_code(0);
    }
    let before = git(&bare, &["rev-parse", "main"]);

    let dry = host.run(&[
        "prune",
        "--config",
        "config.yaml",
        "--keep-last",
        "2",
        "--dry-run",
    ]);
    dry.expect_code(0);
    let want_removed: Vec<String> = (0..4)
        .map(|n| format!("would remove {}", name(n)))
        .collect();
    let want_kept: Vec<String> = (4..6).map(|n| format!("keep {}", name(n))).collect();
    assert_eq!(
        dry.stdout.lines().collect::<Vec<_>>(),
        [want_removed.clone(), want_kept.clone()].concat()
    );
    assert_eq!(
        git(&bare, &["rev-parse", "main"]),
        before,
        "dry run changed the remote"
    );

    let run = host.run(&[
        "prune",
        "--config",
        "config.yaml",
        "--keep-last",
        "2",
        "--keep-within",
        "5h",
    ]);
    run.expect_code(0);
    // keep-within 5h of the newest (hour 5) keeps hours 0..=5: nothing to remove.
    assert!(!run.stdout.contains("removed"), "{}", run.stdout);
    let run = host.run(&[
        "prune",
        "--config",
        "config.yaml",
        "--keep-last",
        "2",
        "--keep-within",
        "2h",
    ]);
    run.expect_code(0);
    assert!(run.stdout.contains("pushed to"), "{}", run.stdout);
    assert_eq!(snapshot_dirs(&bare), [name(3), name(4), name(5)]);
    // History keeps everything; the prune commit carries the trailer.
    let message = git(&bare, &["log", "-1", "--format=%B", "main"]);
    assert!(
        message.starts_with("Gitcord snapshot prune: removed 3 of 6 snapshots"),
        "{message}"
    );
    assert!(
        message.contains("Gitcord-Snapshot-Prune: keep-last 2, keep-within 0m2h"),
        "{message}"
    );
    assert_eq!(
        git(&bare, &["ls-tree", "-r", "--name-only", "main~1"])
            .lines()
            .count(),
        6 * 7 + 1
    );
    // The prune commit's index counts what the tip keeps.
    assert_eq!(check_latest(&bare), format!("snapshots/{}", name(5)));
    // Later snapshots go on top as usual.
    host.push("clone", 6, &[]).expect_code(0);
    assert_eq!(snapshot_dirs(&bare), [name(3), name(4), name(5), name(6)]);
}

#[test]
fn prune_without_rules_is_refused() {
    let host = Host::local();
    host.push("clone", 0, &[]).expect_code(0);
    host.run(&["prune", "--config", "config.yaml"])
        .expect_error(64, &["--keep-"]);
    host.run(&["prune", "--config", "config.yaml", "--keep-within", "3w"])
        .expect_error(64, &["--keep-within"]);
}
