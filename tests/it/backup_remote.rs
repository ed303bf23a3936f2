//! Backups in a repository of their own (`snapshots.backup_remote_url`, issue 18 point 7):
//! two bare repositories on the TLS git server, the data repository getting no backup object
//! at all, the backup repository the branch, a restore from a fresh bare clone of the backup
//! repository alone, and a backup repository that cannot be reached.

use std::collections::BTreeSet;

use crate::backup::{assert_restores, bare_clone, install, restore, BRANCH};
use crate::support::git_server::GitServer;
use crate::support::host::{dir_name, Host};

/// A host pushing snapshots to `data` and backups to `backups` on `server`.
fn host(server: &GitServer) -> Host {
    let host = Host::for_server(server, "data");
    host.add_config(&format!("  backup_remote_url: {}\n", server.url("backups")));
    host
}

/// Object ids of every object in repository `name` (loose and packed, reachable or not).
fn object_ids(server: &GitServer, name: &str) -> BTreeSet<String> {
    server
        .git_checked(
            name,
            &[
                "cat-file",
                "--batch-all-objects",
                "--batch-check=%(objectname)",
            ],
        )
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The snapshots the backup commits on `name`'s backup branch name, oldest first.
fn backed_up(server: &GitServer, name: &str) -> Vec<String> {
    server
        .git_checked(name, &["log", "--format=%s", "--reverse", BRANCH])
        .lines()
        .map(|l| l.rsplit('/').next().unwrap().to_owned())
        .collect()
}

fn status(host: &Host) -> serde_json::Value {
    let run = host.run(&["status", "--config", "config.yaml", "--json"]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn backups_go_to_their_own_repository_and_restore_from_a_bare_clone_of_it() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    server.create_bare_repo("backups");
    let host = host(&server);
    for v in 1..=4 {
        install(&host, v);
        host.push("clone", v, &[]).expect_code(0);
    }
    // The data repository: the snapshot branch and nothing of the backup.
    let data_refs = server.refs("data");
    assert_eq!(data_refs.len(), 1, "{data_refs:?}");
    assert!(!data_refs[0].0.contains(BRANCH), "{data_refs:?}");
    // The backup repository: the backup branch alone, one backup per snapshot.
    let backup_refs = server.refs("backups");
    assert_eq!(
        backup_refs
            .iter()
            .map(|(r, _)| r.as_str())
            .collect::<Vec<_>>(),
        [format!("refs/heads/{BRANCH}")],
    );
    assert_eq!(
        backed_up(&server, "backups"),
        (1..=4).map(dir_name).collect::<Vec<_>>()
    );
    // Not one object of the backups (commits, trees, chunks) reached the data repository.
    let backup_objects: BTreeSet<String> = server
        .git_checked("backups", &["rev-list", "--objects", BRANCH])
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert!(backup_objects.len() > 20, "{}", backup_objects.len());
    let data_objects = object_ids(&server, "data");
    assert!(!data_objects.is_empty());
    let shared: Vec<&String> = backup_objects.intersection(&data_objects).collect();
    assert!(
        shared.is_empty(),
        "backup objects in the data repository: {shared:?}"
    );
    // The clone keeps the two apart, and status says where backups go.
    let clone = git2::Repository::open_bare(host.clone_path("clone").join(".git")).unwrap();
    assert_eq!(
        clone
            .refname_to_id(&format!("refs/remotes/backup/{BRANCH}"))
            .unwrap()
            .to_string(),
        backup_refs[0].1
    );
    assert!(clone
        .refname_to_id(&format!("refs/remotes/origin/{BRANCH}"))
        .is_err());
    let st = status(&host);
    assert_eq!(st["backup"]["repository"], server.url("backups"));
    assert_eq!(st["backup"]["queued"], 0);
    assert_eq!(st["backup"]["newest_remote"], dir_name(4));
    let text = host.run(&["status", "--config", "config.yaml"]);
    text.expect_code(0);
    assert!(
        text.stdout.contains(&format!(
            "backup:           {BRANCH} of {}",
            server.url("backups")
        )),
        "{}",
        text.stdout
    );

    // The host is gone. The README's recipe: a bare clone of the data repository, the backup
    // branch fetched into it from the backup repository, restore from that.
    let fresh = host.env.path("fresh/.git");
    bare_clone(&server.repo_path("data"), &fresh);
    let fetched = crate::support::git::command()
        .arg("--git-dir")
        .arg(&fresh)
        .arg("fetch")
        .arg("--quiet")
        .arg(server.repo_path("backups"))
        .arg(format!("{BRANCH}:{BRANCH}"))
        .output()
        .unwrap();
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    // Without the backup branch, restore says there is no backup (and writes what the
    // snapshot holds): the data repository alone is not the backup.
    let without = host.env.path("snapshot-only/.git");
    bare_clone(&server.repo_path("data"), &without);
    let partial = restore(&host, "snapshot-only", &dir_name(4), "partial/state.db");
    partial.expect_code(0);
    assert!(
        partial.stderr.contains("there is no backup"),
        "{}",
        partial.stderr
    );
    for v in 1..=4 {
        assert_restores(&host, "fresh", v);
    }
    server.stop();
}

#[test]
fn an_unreachable_backup_repository_leaves_the_snapshot_pushed_and_the_backup_queued() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    // The backup repository does not exist yet (a wrong path).
    let host = host(&server);
    install(&host, 1);
    let run = host.push("clone", 1, &[]);
    // The same exit code as a snapshot push to a repository that does not exist.
    let other = Host::for_server(&server, "nowhere");
    install(&other, 1);
    let snapshot_failure = other.push("clone", 1, &[]);
    assert_ne!(snapshot_failure.code, 0);
    run.expect_code(snapshot_failure.code);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].contains("backup push failed")
            && errors[0].contains(&server.url("backups"))
            && errors[0].contains("the snapshots were pushed"),
        "{}",
        run.stderr
    );
    // The snapshot is on the data repository; its backup is queued.
    let clone = git2::Repository::open_bare(host.clone_path("clone").join(".git")).unwrap();
    let local = clone.refname_to_id("refs/heads/main").unwrap().to_string();
    assert_eq!(server.ref_target("data", "refs/heads/main"), Some(local));
    let data_refs = server.refs("data");
    assert_eq!(data_refs.len(), 1, "{data_refs:?}");
    let st = status(&host);
    assert_eq!(st["queued"], 0);
    assert_eq!(st["backup"]["queued"], 1);
    assert_eq!(st["backup"]["newest"], dir_name(1));
    assert_eq!(st["backup"]["newest_remote"], serde_json::Value::Null);

    // The backup repository is there now: the next run pushes both backups.
    server.create_bare_repo("backups");
    install(&host, 2);
    host.push("clone", 2, &[]).expect_code(0);
    assert_eq!(backed_up(&server, "backups"), [dir_name(1), dir_name(2)]);
    assert_eq!(status(&host)["backup"]["queued"], 0);
    assert_eq!(server.refs("data").len(), 1);
    server.stop();
}

#[test]
fn a_run_killed_after_the_backup_repository_took_its_push_heals_without_a_second_backup() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    server.create_bare_repo("backups");
    let host = host(&server);
    install(&host, 1);
    host.push("clone", 1, &[]).expect_code(0);
    install(&host, 2);
    crate::crash::kill_at(&host, "clone", 2, "backup-pushed");
    // The backup repository has backup 2; the clone still counts it as queued.
    assert_eq!(backed_up(&server, "backups"), [dir_name(1), dir_name(2)]);
    let clone = git2::Repository::open_bare(host.clone_path("clone").join(".git")).unwrap();
    let local = clone
        .refname_to_id(&format!("refs/heads/{BRANCH}"))
        .unwrap()
        .to_string();
    assert_eq!(
        server.ref_target("backups", &format!("refs/heads/{BRANCH}")),
        Some(local.clone())
    );
    assert_ne!(
        clone
            .refname_to_id(&format!("refs/remotes/backup/{BRANCH}"))
            .unwrap()
            .to_string(),
        local,
        "premise: the clone did not record the push"
    );
    drop(clone);
    assert_eq!(status(&host)["backup"]["queued"], 1);
    // The next run: exit 0, one backup per snapshot, in order, nothing queued, fsck clean.
    install(&host, 3);
    host.push("clone", 3, &[]).expect_code(0);
    assert_eq!(
        backed_up(&server, "backups"),
        [dir_name(1), dir_name(2), dir_name(3)]
    );
    assert_eq!(status(&host)["backup"]["queued"], 0);
    assert_eq!(server.refs("data").len(), 1);
    crate::support::git::fsck(&server.repo_path("backups"));
    crate::support::git::fsck(&host.clone_path("clone").join(".git"));
    server.stop();
}

#[test]
fn backups_replay_onto_another_writers_in_the_backup_repository() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    server.create_bare_repo("backups");
    let a = host(&server);
    let b = host(&server);
    install(&a, 1);
    a.push("clone", 1, &[]).expect_code(0);
    // B's first run starts from A's backups (fetched from the backup repository).
    install(&b, 2);
    b.push("clone", 2, &[]).expect_code(0);
    assert_eq!(backed_up(&server, "backups"), [dir_name(1), dir_name(2)]);
    // A's next push of its backup is refused (B moved the branch) and replayed onto B's.
    install(&a, 3);
    a.push("clone", 3, &[]).expect_code(0);
    assert_eq!(
        backed_up(&server, "backups"),
        [dir_name(1), dir_name(2), dir_name(3)]
    );
    let parents = server.git_checked("backups", &["log", "--format=%P", BRANCH]);
    assert!(
        parents.lines().all(|p| p.split(' ').count() <= 1),
        "{parents}"
    );
    assert!(server.refs("data").iter().all(|(r, _)| !r.contains(BRANCH)));
    server.stop();
}

#[test]
fn a_backup_url_with_credentials_is_refused_as_remote_url_is() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    let url = server
        .url("backups")
        .replace("https://", "https://someone:hunter2@");
    host.add_config(&format!("  backup_remote_url: {url}\n"));
    install(&host, 1);
    let run = host.push("clone", 1, &[]);
    run.expect_code(78);
    assert!(
        run.stderr.contains("snapshots.backup_remote_url"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(server.refs("data").is_empty());
    server.stop();
}

#[test]
fn moving_the_backup_to_its_own_repository_sends_every_backup_there() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    server.create_bare_repo("backups");
    let host = Host::for_server(&server, "data");
    install(&host, 1);
    host.push("clone", 1, &[]).expect_code(0);
    let old = server.ref_target("data", &format!("refs/heads/{BRANCH}"));
    assert!(old.is_some());
    host.add_config(&format!("  backup_remote_url: {}\n", server.url("backups")));
    install(&host, 2);
    host.push("clone", 2, &[]).expect_code(0);
    assert_eq!(backed_up(&server, "backups"), [dir_name(1), dir_name(2)]);
    // The data repository's backup branch is left where it was (deleting it is the operator's).
    assert_eq!(
        server.ref_target("data", &format!("refs/heads/{BRANCH}")),
        old
    );
    assert_eq!(status(&host)["backup"]["queued"], 0);
    server.stop();
}

#[test]
fn metrics_describe_the_backup_queue_and_what_each_run_backed_up() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    // The backup repository does not exist yet: every backup stays queued.
    let host = host(&server);
    host.add_config("  metrics_file: \"gitcord.prom\"\n");
    let metrics = || -> std::collections::BTreeMap<String, f64> {
        std::fs::read_to_string(host.env.path("gitcord.prom"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (name, value) = l.rsplit_once(' ').unwrap();
                (
                    name.strip_prefix("gitcord_snapshot_").unwrap().to_owned(),
                    value.parse().unwrap(),
                )
            })
            .collect()
    };
    install(&host, 1);
    let first = host.push("clone", 1, &[]);
    assert_ne!(first.code, 0);
    let m = metrics();
    assert_eq!(m["last_run_exit_code"], f64::from(first.code));
    assert_eq!(m["queued_commits"], 0.0, "the snapshot was pushed");
    assert_eq!(m["backup_queued_commits"], 1.0);
    // Snapshot 1 is from 2024: its queued backup is old enough to alert on.
    assert!(m["backup_oldest_queued_age_seconds"] > 86_400.0 * 300.0);
    assert_eq!(m["backup_last_pushed_timestamp_seconds"], 0.0);
    // A first backup writes every range and keeps none.
    let written = m["last_run_backup_ranges_written"];
    assert!(written > 0.0);
    assert_eq!(m["last_run_backup_ranges_kept"], 0.0);
    assert!(m["last_run_backup_bytes_serialized"] > 1000.0);
    assert!(m["last_run_backup_read_seconds"] >= 0.0);
    assert_eq!(m.len(), 14, "{m:?}");

    // The repository is there now; the same database again: both backups pushed, and the run's
    // backup kept every range it wrote the first time.
    server.create_bare_repo("backups");
    install(&host, 1);
    host.push("clone", 2, &[]).expect_code(0);
    let m = metrics();
    assert_eq!(m["backup_queued_commits"], 0.0);
    assert_eq!(m["backup_oldest_queued_age_seconds"], 0.0);
    let at2 = chrono::DateTime::parse_from_rfc3339(&crate::support::host::at(2))
        .unwrap()
        .timestamp();
    assert_eq!(m["backup_last_pushed_timestamp_seconds"], at2 as f64);
    assert_eq!(m["last_run_backup_ranges_written"], 0.0);
    assert_eq!(m["last_run_backup_ranges_kept"], written);
    assert_eq!(m["last_run_backup_bytes_serialized"], 0.0);
    assert_eq!(backed_up(&server, "backups"), [dir_name(1), dir_name(2)]);

    // With the backup off, no backup series at all.
    host.add_config("  backup: false\n");
    host.push("clone", 3, &[]).expect_code(0);
    let m = metrics();
    assert_eq!(m["last_run_exit_code"], 0.0);
    assert!(m.keys().all(|k| !k.contains("backup")), "{m:?}");
    assert_eq!(m.len(), 7);
    server.stop();
}

#[test]
fn moving_the_backup_back_to_the_data_repository_sends_every_backup_there() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    server.create_bare_repo("backups");
    let host = host(&server);
    for v in 1..=2 {
        install(&host, v);
        host.push("clone", v, &[]).expect_code(0);
    }
    assert_eq!(backed_up(&server, "backups"), [dir_name(1), dir_name(2)]);
    assert_eq!(server.refs("data").len(), 1);
    // The operator removes backup_remote_url again.
    let config = std::fs::read_to_string(host.env.path("config.yaml")).unwrap();
    let without: String = config
        .lines()
        .filter(|l| !l.contains("backup_remote_url"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, config, "premise: the key was there");
    host.env.write("config.yaml", without);
    install(&host, 3);
    host.push("clone", 3, &[]).expect_code(0);
    // Every backup is now on the data repository's backup branch, the backup repository left
    // where it was, and the clone has nothing queued.
    assert_eq!(
        backed_up(&server, "data"),
        [dir_name(1), dir_name(2), dir_name(3)]
    );
    assert_eq!(backed_up(&server, "backups"), [dir_name(1), dir_name(2)]);
    assert_eq!(status(&host)["backup"]["queued"], 0);
    for v in 1..=3 {
        let fresh = host.env.path(&format!("fresh{v}/.git"));
        bare_clone(&server.repo_path("data"), &fresh);
        assert_restores(&host, &format!("fresh{v}"), v);
    }
    server.stop();
}

#[test]
fn no_push_with_a_backup_repository_touches_neither_repository_and_queues_the_backup() {
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    server.create_bare_repo("backups");
    let host = host(&server);
    install(&host, 1);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    assert!(server.refs("data").is_empty());
    assert!(server.refs("backups").is_empty());
    let st = status(&host);
    assert_eq!(st["queued"], 1);
    assert_eq!(st["backup"]["queued"], 1);
    install(&host, 2);
    host.push("clone", 2, &[]).expect_code(0);
    assert_eq!(backed_up(&server, "backups"), [dir_name(1), dir_name(2)]);
    assert_eq!(server.refs("data").len(), 1);
    assert_eq!(status(&host)["backup"]["queued"], 0);
    server.stop();
}
