//! One "newest snapshot" (issue 21, item 4): `latest.json`, `status`, `restore latest`,
//! `diff latest` and the working copy name the same directory, the last one published:
//! the latest `generated_at` to the microsecond, then the one history added later. Each test
//! is a case where the old definitions (name order, byte-wise maximum, git order skipping
//! unreadable directories, the last name) disagreed.

use crate::support::git::git;
use crate::support::host::Host;

const CLONE: &str = "clone";

fn push(host: &Host, run_id: &str, at: &str) {
    host.run(&[
        "push",
        "--config",
        "config.yaml",
        "--roles-file",
        "roles.json",
        "--clone-dir",
        CLONE,
        "--no-push",
        "--run-id",
        run_id,
        "--at",
        at,
    ])
    .expect_code(0);
}

/// Every place that names the newest snapshot, as (what, name).
fn newest_everywhere(host: &Host) -> Vec<(&'static str, String)> {
    let git_dir = host.clone_path(CLONE).join(".git");
    let latest: serde_json::Value =
        serde_json::from_str(&git(&git_dir, &["show", "main:latest.json"])).unwrap();
    let from_index = latest["snapshot_dir"]
        .as_str()
        .unwrap()
        .trim_start_matches("snapshots/")
        .to_owned();
    let config = ["--config", "config.yaml", "--clone-dir", CLONE];
    let status = host.run(&[&["status", "--json"][..], &config].concat());
    status.expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let diff = host.run(&[&["diff", "latest", "latest", "--json"][..], &config].concat());
    diff.expect_code(0);
    let diff: serde_json::Value = serde_json::from_str(&diff.stdout).unwrap();
    let out = host.env.path("restored.db");
    let _ = std::fs::remove_file(&out);
    // The backup brings Gitcord's audit log back too; the host's own stays where it is.
    let audit = host.env.path("restored-audit.jsonl");
    let _ = std::fs::remove_file(&audit);
    let restore = host.run(
        &[
            &[
                "restore",
                "--snapshot",
                "latest",
                "--to",
                &out.display().to_string(),
                "--audit-log",
                &audit.display().to_string(),
                "--json",
            ][..],
            &config,
        ]
        .concat(),
    );
    restore.expect_code(0);
    let restore: serde_json::Value = serde_json::from_str(&restore.stdout).unwrap();
    let view: Vec<String> = std::fs::read_dir(host.clone_path(CLONE).join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(view.len(), 1, "{view:?}");
    vec![
        ("latest.json", from_index),
        (
            "status",
            status["newest_snapshot"].as_str().unwrap().to_owned(),
        ),
        (
            "diff latest",
            diff["to"].as_str().unwrap_or_default().to_owned(),
        ),
        (
            "restore latest",
            restore["snapshot"].as_str().unwrap_or_default().to_owned(),
        ),
        ("working copy", view[0].clone()),
    ]
}

fn assert_newest(host: &Host, want: &str) {
    for (what, name) in newest_everywhere(host) {
        assert_eq!(name, want, "{what}");
    }
}

/// The README's demo run twice in the same second: the second run is the newest although
/// its random run id sorts first (name order said the first run).
#[test]
fn two_runs_in_the_same_second_the_second_is_newest() {
    let host = Host::for_case("basic");
    push(
        &host,
        "ffffffff-0000-4000-8000-000000000001",
        "2024-01-31T12:00:00.100000Z",
    );
    push(
        &host,
        "00000000-0000-4000-8000-000000000002",
        "2024-01-31T12:00:00.900000Z",
    );
    assert_newest(&host, "2024-01-31T12-00-00-00000000");
}

/// The same `generated_at` to the microsecond: history decides, the later commit is newest.
#[test]
fn equal_times_are_ordered_by_commit() {
    let host = Host::for_case("basic");
    push(
        &host,
        "ffffffff-0000-4000-8000-000000000001",
        "2024-01-31T12:00:00Z",
    );
    push(
        &host,
        "00000000-0000-4000-8000-000000000002",
        "2024-01-31T12:00:00Z",
    );
    assert_newest(&host, "2024-01-31T12-00-00-00000000");
    // And the other way round, in another clone: still the later commit.
    let host = Host::for_case("basic");
    push(
        &host,
        "00000000-0000-4000-8000-000000000002",
        "2024-01-31T12:00:00Z",
    );
    push(
        &host,
        "ffffffff-0000-4000-8000-000000000001",
        "2024-01-31T12:00:00Z",
    );
    assert_newest(&host, "2024-01-31T12-00-00-ffffffff");
    // `latest~1` is the other one.
    let config = ["--config", "config.yaml", "--clone-dir", CLONE];
    let diff = host.run(&[&["diff", "latest~1", "latest", "--json"][..], &config].concat());
    diff.expect_code(0);
    let diff: serde_json::Value = serde_json::from_str(&diff.stdout).unwrap();
    assert_eq!(diff["from"], "2024-01-31T12-00-00-00000000");
}

/// A backdated run is published last but is not the newest: time decides first.
#[test]
fn a_backdated_run_is_not_the_newest() {
    let host = Host::for_case("basic");
    push(
        &host,
        "00000000-0000-4000-8000-000000000002",
        "2024-01-31T12:00:00Z",
    );
    push(
        &host,
        "ffffffff-0000-4000-8000-000000000001",
        "2024-01-30T12:00:00Z",
    );
    assert_newest(&host, "2024-01-31T12-00-00-00000000");
}

/// A directory with a newer name that is not a readable snapshot (a foreign writer's, only a
/// `meta.json`): `latest.json` skipped it, `restore latest` and `diff latest` took it. Now
/// nothing names it.
#[test]
fn an_unreadable_newer_directory_is_nobodys_newest() {
    let host = Host::for_case("basic");
    push(
        &host,
        "00000000-0000-4000-8000-000000000002",
        "2024-01-31T12:00:00Z",
    );
    let git_dir = host.clone_path(CLONE).join(".git");
    let repo = git2::Repository::open_bare(&git_dir).unwrap();
    let tip = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    let mut index = git2::Index::new().unwrap();
    index.read_tree(&tip.tree().unwrap()).unwrap();
    let meta = git(
        &git_dir,
        &[
            "show",
            "main:snapshots/2024-01-31T12-00-00-00000000/meta.json",
        ],
    );
    crate::support::git::put(
        &repo,
        &mut index,
        "snapshots/2099-01-01T00-00-00-deadbeef/meta.json",
        meta.as_bytes(),
    );
    let tree = repo.find_tree(index.write_tree_to(&repo).unwrap()).unwrap();
    let sig =
        git2::Signature::new("x", "x@example.com", &git2::Time::new(1_706_800_000, 0)).unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "foreign",
        &tree,
        &[&tip],
    )
    .unwrap();
    assert_newest(&host, "2024-01-31T12-00-00-00000000");
}
