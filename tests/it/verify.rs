//! `verify` end to end: the real binary on real clones made by `push --no-push`, then
//! tampered with directly in the clone's bare repository. Assertions are on exit codes and
//! exact output.

use std::path::Path;

use crate::support::git::put;
use crate::support::host::{at, dir_name, run_id};
use crate::support::testenv::{Case, Run, TestEnv};
use git2::{Index, Repository, Signature, Time};

const CLONE: &str = "clone";
const SUMMARY_ERROR: &str = "gitcord-snapshot: error: verify found";

/// A host with the `basic` case's inputs and a clone holding snapshots `0..n`.
fn host_with_snapshots(n: u32) -> TestEnv {
    let case = Case::load("basic");
    let env = TestEnv::new();
    env.copy_case(&case, ".");
    for i in 0..n {
        let run = env.run([
            "push",
            "--config",
            "config.yaml",
            "--roles-file",
            "roles.json",
            "--clone-dir",
            CLONE,
            "--no-push",
            "--run-id",
            &run_id(i),
            "--at",
            &at(i),
        ]);
        run.expect_code(0);
    }
    env
}

fn verify(env: &TestEnv, extra: &[&str]) -> Run {
    let mut args = vec!["verify", "--config", "config.yaml", "--clone-dir", CLONE];
    args.extend_from_slice(extra);
    env.run(args)
}

fn open(env: &TestEnv) -> Repository {
    Repository::open_bare(env.path(CLONE).join(".git")).unwrap()
}

/// Commits on top of `main` a tree made by `edit` from the tip's, with `parents` extra
/// parents (for a merge), and moves `main`: what a hand edit or a foreign tool would do.
/// Such a tool knows nothing of the readers' index, so it drops `latest.json` (which `verify`
/// then has nothing to check); [`commit_keeping_index`] keeps it. Returns the commit id.
fn commit_on_tip(
    env: &TestEnv,
    message: &str,
    extra_parents: &[git2::Oid],
    edit: impl FnOnce(&Repository, &mut Index),
) -> String {
    commit_edit(env, message, extra_parents, |repo, index| {
        index.remove_path(Path::new("latest.json")).unwrap();
        edit(repo, index)
    })
}

/// [`commit_on_tip`], keeping `latest.json` as it was (so it goes stale if `edit` changes
/// `snapshots/`).
fn commit_keeping_index(
    env: &TestEnv,
    message: &str,
    edit: impl FnOnce(&Repository, &mut Index),
) -> String {
    commit_edit(env, message, &[], edit)
}

fn commit_edit(
    env: &TestEnv,
    message: &str,
    extra_parents: &[git2::Oid],
    edit: impl FnOnce(&Repository, &mut Index),
) -> String {
    let repo = open(env);
    let tip = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    let mut index = Index::new().unwrap();
    index.read_tree(&tip.tree().unwrap()).unwrap();
    edit(&repo, &mut index);
    let tree = repo.find_tree(index.write_tree_to(&repo).unwrap()).unwrap();
    let sig = Signature::new(
        "someone",
        "someone@example.com",
        &Time::new(1_706_800_000, 0),
    )
    .unwrap();
    let others: Vec<git2::Commit<'_>> = extra_parents
        .iter()
        .map(|p| repo.find_commit(*p).unwrap())
        .collect();
    let mut parents = vec![&tip];
    parents.extend(others.iter());
    let oid = repo
        .commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            message,
            &tree,
            &parents,
        )
        .unwrap();
    oid.to_string()
}

/// A file's bytes at the tip of `main`.
fn read(repo: &Repository, path: &str) -> Vec<u8> {
    let tip = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    let entry = tip.tree().unwrap().get_path(Path::new(path)).unwrap();
    repo.find_blob(entry.id()).unwrap().content().to_vec()
}

fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.contains(from), "{from:?} not in {text}");
    text.replace(from, to).into_bytes()
}

fn short(commit: &str) -> &str {
    &commit[..8]
}

/// Asserts exit 65, nothing on stdout, and exactly these problem lines plus the error line.
fn expect_problems(run: &Run, lines: &[String]) {
    run.expect_code(65);
    assert_eq!(run.stdout, "");
    let mut want = lines.join("\n");
    want.push_str(&format!(
        "\n{SUMMARY_ERROR} {} problem(s) in the data repository (listed above)\n",
        lines.len()
    ));
    assert_eq!(run.stderr, want);
}

#[test]
fn a_clean_history_passes_with_one_summary_line() {
    let env = host_with_snapshots(3);
    let run = verify(&env, &[]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "verified 3 commits, 3 snapshots, 3 backups: no problems\n"
    );
    assert_eq!(
        run.stderr, "",
        "no progress output when stderr is not a terminal"
    );

    let run = verify(&env, &["--json"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "{\"commits\":3,\"snapshots\":3,\"backups\":3,\"problems\":[]}\n"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn a_later_commit_that_edits_an_old_snapshot_is_named_with_the_file() {
    let env = host_with_snapshots(3);
    let path = format!("snapshots/{}/scores.json", dir_name(0));
    let tamper = commit_on_tip(&env, "fix alice's points", &[], |repo, index| {
        let bytes = replace(&read(repo, &path), "\"points\": 150", "\"points\": 151");
        put(repo, index, &path, &bytes);
    });
    // Later, well-behaved snapshots do not hide it, and do not repeat it.
    let run = env.run([
        "push",
        "--config",
        "config.yaml",
        "--roles-file",
        "roles.json",
        "--clone-dir",
        CLONE,
        "--no-push",
        "--run-id",
        &run_id(3),
        "--at",
        &at(3),
    ]);
    run.expect_code(0);
    let run = verify(&env, &[]);
    expect_problems(
        &run,
        &[format!(
            "verify: {} {path}: modified; snapshot files must never change",
            short(&tamper)
        )],
    );

    let run = verify(&env, &["--json"]);
    run.expect_code(65);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report,
        serde_json::json!({
            "backups": 4,
            "commits": 5,
            "snapshots": 4,
            "problems": [{"commit": tamper, "path": path, "problem": "modified; snapshot files must never change"}],
        })
    );
    assert_eq!(run.stdout.lines().count(), 1, "one JSON object on one line");
}

#[test]
fn deleting_a_snapshot_needs_the_prune_trailer_and_a_prune_may_only_delete() {
    let env = host_with_snapshots(3);
    let dir = format!("snapshots/{}", dir_name(0));
    let base = open(&env).refname_to_id("refs/heads/main").unwrap();

    let plain = commit_on_tip(&env, "remove the oldest snapshot", &[], |_, index| {
        index.remove_dir(Path::new(&dir), 0).unwrap()
    });
    let run = verify(&env, &[]);
    expect_problems(
        &run,
        &[format!(
            "verify: {} {dir}: snapshot deleted by a commit without a Gitcord-Snapshot-Prune trailer; snapshots are append-only",
            short(&plain)
        )],
    );

    // The same removal as a prune commit is fine.
    open(&env)
        .reference("refs/heads/main", base, true, "test: reset")
        .unwrap();
    let message =
        "Gitcord snapshot prune: removed 1 of 3 snapshots\n\nGitcord-Snapshot-Prune: keep-last 2\n";
    commit_on_tip(&env, message, &[], |_, index| {
        index.remove_dir(Path::new(&dir), 0).unwrap()
    });
    let run = verify(&env, &[]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "verified 4 commits, 3 snapshots, 3 backups: no problems\n"
    );
    assert_eq!(run.stderr, "");

    // A prune that also touches a kept snapshot is still a violation, for that file only.
    let kept = format!("snapshots/{}/roles.json", dir_name(1));
    let bad_prune = commit_on_tip(
        &env,
        "prune\n\nGitcord-Snapshot-Prune: keep-last 1\n",
        &[],
        |repo, index| {
            index
                .remove_dir(Path::new(&format!("snapshots/{}", dir_name(2))), 0)
                .unwrap();
            let bytes = replace(&read(repo, &kept), "Maintainer", "Owner");
            put(repo, index, &kept, &bytes);
        },
    );
    let run = verify(&env, &[]);
    expect_problems(
        &run,
        &[format!(
            "verify: {} {kept}: modified; snapshot files must never change (a prune may only remove whole snapshot directories)",
            short(&bad_prune)
        )],
    );
}

#[test]
fn a_pruned_snapshot_re_added_with_other_content_is_reported() {
    let env = host_with_snapshots(3);
    let dir = format!("snapshots/{}", dir_name(0));
    let scores = format!("{dir}/scores.json");
    let original = read(&open(&env), &scores);
    let message =
        "Gitcord snapshot prune: removed 1 of 3 snapshots\n\nGitcord-Snapshot-Prune: keep-last 2\n";
    commit_on_tip(&env, message, &[], |_, index| {
        index.remove_dir(Path::new(&dir), 0).unwrap()
    });
    // Re-adding the identical directory rewrites nothing that readers saw...
    let files: Vec<(String, Vec<u8>)> = [
        "meta",
        "identities",
        "scores",
        "contributors",
        "roles",
        "issue_requests",
        "notifications",
    ]
    .iter()
    .map(|f| {
        let path = format!("{dir}/{f}.json");
        let repo = open(&env);
        let commit = repo
            .revparse_single("main~1")
            .unwrap()
            .peel_to_commit()
            .unwrap();
        let entry = commit.tree().unwrap().get_path(Path::new(&path)).unwrap();
        let bytes = repo.find_blob(entry.id()).unwrap().content().to_vec();
        (path, bytes)
    })
    .collect();
    let readd = |changed: bool| {
        let files = files.clone();
        move |repo: &Repository, index: &mut Index| {
            for (path, bytes) in &files {
                let bytes = if changed && path.ends_with("scores.json") {
                    replace(bytes, "150", "151")
                } else {
                    bytes.clone()
                };
                put(repo, index, path, &bytes);
            }
        }
    };
    let base = open(&env).refname_to_id("refs/heads/main").unwrap();
    commit_on_tip(&env, "restore a snapshot", &[], readd(false));
    verify(&env, &[]).expect_code(0);
    // ...re-adding it with other content does.
    open(&env)
        .reference("refs/heads/main", base, true, "test: reset")
        .unwrap();
    let tampered = commit_on_tip(&env, "restore a snapshot", &[], readd(true));
    let run = verify(&env, &[]);
    expect_problems(
        &run,
        &[format!(
            "verify: {} {dir}: re-added with different content than when it was first published",
            short(&tampered)
        )],
    );
    assert!(original.windows(3).any(|w| w == b"150"));
}

#[test]
fn a_merge_commit_is_reported() {
    let env = host_with_snapshots(2);
    let repo = open(&env);
    let first = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap()
        .parent_id(0)
        .unwrap();
    let merge = commit_on_tip(&env, "merge", &[first], |_, _| {});
    let run = verify(&env, &[]);
    expect_problems(
        &run,
        &[format!(
            "verify: {}: merge commit with 2 parents; the history must be linear",
            short(&merge)
        )],
    );
}

#[test]
fn broken_snapshots_are_reported_with_their_paths() {
    let env = host_with_snapshots(2);
    let repo = open(&env);
    let good = format!("snapshots/{}", dir_name(0));
    let files: Vec<(String, Vec<u8>)> = [
        "meta.json",
        "identities.json",
        "scores.json",
        "contributors.json",
        "roles.json",
        "issue_requests.json",
        "notifications.json",
    ]
    .iter()
    .map(|f| (f.to_string(), read(&repo, &format!("{good}/{f}"))))
    .collect();
    // Three new snapshots, valid but for one fault each; run ids chosen to fit their names.
    let name = |run: &str| format!("snapshots/2024-01-31T12-00-00-{run}");
    let with_run = |bytes: &[u8], run: &str| {
        replace(
            bytes,
            &run_id(0),
            &format!("{run}-0000-4000-8000-000000000000"),
        )
    };
    let commit = commit_on_tip(&env, "hand-made snapshots", &[], |repo, index| {
        for (file, bytes) in &files {
            let mut bytes = with_run(bytes, "dddddddd");
            if file == "scores.json" {
                bytes = replace(&bytes, "\"points\": 150", "\"points\": \"150\"");
            }
            put(repo, index, &format!("{}/{file}", name("dddddddd")), &bytes);

            if file != "roles.json" {
                put(
                    repo,
                    index,
                    &format!("{}/{file}", name("eeeeeeee")),
                    &with_run(&bytes_of(&files, file), "eeeeeeee"),
                );
            }

            let mut bytes = with_run(bytes_of(&files, file).as_slice(), "ffffffff");
            if file == "scores.json" {
                bytes = replace(
                    &bytes,
                    "ffffffff-0000-4000-8000-000000000000",
                    "ffffffff-0000-4000-8000-000000000001",
                );
            }
            put(repo, index, &format!("{}/{file}", name("ffffffff")), &bytes);
        }
        put(
            repo,
            index,
            &format!("{}/notes.txt", name("eeeeeeee")),
            b"hello",
        );
    });
    let c = short(&commit);
    let run = verify(&env, &[]);
    expect_problems(
        &run,
        &[
            format!(r#"verify: {c} {}/scores.json: data[0].points: "150" is not of type "number""#, name("dddddddd")),
            format!("verify: {c} {}/notes.txt: unexpected file; a snapshot holds exactly the seven files", name("eeeeeeee")),
            format!("verify: {c} {}/roles.json: missing", name("eeeeeeee")),
            format!(
                r#"verify: {c} {}/scores.json: run_id "ffffffff-0000-4000-8000-000000000001" does not agree with meta.json ("ffffffff-0000-4000-8000-000000000000")"#,
                name("ffffffff")
            ),
        ],
    );

    let run = verify(&env, &["--json"]);
    run.expect_code(65);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["commits"], 3);
    assert_eq!(report["snapshots"], 5);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 4);
    for p in problems {
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["commit", "path", "problem"]);
        assert_eq!(p["commit"], commit.as_str());
    }
    assert_eq!(
        problems[2]["path"],
        format!("{}/roles.json", name("eeeeeeee"))
    );
    assert_eq!(problems[2]["problem"], "missing");
}

fn bytes_of(files: &[(String, Vec<u8>)], name: &str) -> Vec<u8> {
    files.iter().find(|(f, _)| f == name).unwrap().1.clone()
}

#[test]
fn a_missing_or_foreign_clone_is_refused_and_an_empty_one_has_nothing_to_check() {
    let env = host_with_snapshots(0);
    verify(&env, &[]).expect_error(66, &["does not exist", CLONE]);
    env.write(&format!("{CLONE}/keep.txt"), "mine");
    verify(&env, &[]).expect_error(78, &["not a git repository", CLONE]);
    git2::Repository::init_bare(env.path(CLONE).join(".git")).unwrap();
    let run = verify(&env, &[]);
    run.expect_code(0);
    assert_eq!(run.stdout, "verified 0 commits, 0 snapshots: no problems\n");
}

#[test]
fn a_real_prune_passes_verify() {
    let env = host_with_snapshots(3);
    let run = env.run([
        "prune",
        "--config",
        "config.yaml",
        "--clone-dir",
        CLONE,
        "--no-push",
        "--keep-last",
        "2",
    ]);
    run.expect_code(0);
    let run = verify(&env, &[]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "verified 4 commits, 3 snapshots, 3 backups: no problems\n"
    );
}

#[test]
fn a_readers_index_that_does_not_match_its_tree_is_reported() {
    let env = host_with_snapshots(2);
    let run = verify(&env, &[]);
    run.expect_code(0);
    // Another writer adds a newer snapshot and leaves latest.json naming the old one.
    let newest = format!("snapshots/{}", dir_name(5));
    let files: Vec<(String, Vec<u8>)> = [
        "meta.json",
        "identities.json",
        "scores.json",
        "contributors.json",
        "roles.json",
        "issue_requests.json",
        "notifications.json",
    ]
    .iter()
    .map(|f| {
        (
            f.to_string(),
            read(&open(&env), &format!("snapshots/{}/{f}", dir_name(1))),
        )
    })
    .collect();
    let stale = commit_keeping_index(&env, "a foreign snapshot", |repo, index| {
        for (f, bytes) in &files {
            // Same bytes under a newer name: a foreign copy, flagged for its name as well.
            put(repo, index, &format!("{newest}/{f}"), bytes);
        }
    });
    let run = verify(&env, &[]);
    run.expect_code(65);
    assert!(
        run.stderr.contains(&format!(
            "verify: {} latest.json: does not match its commit's tree: names snapshots/{} but the newest snapshot is {newest}",
            short(&stale),
            dir_name(1)
        )),
        "{}",
        run.stderr
    );
    // A tampered hash is caught too, and so is a file that is not the index's format.
    let env = host_with_snapshots(1);
    let tampered = commit_keeping_index(&env, "edit the index", |repo, index| {
        let latest = read(repo, "latest.json");
        let text = String::from_utf8(latest).unwrap();
        let at = text.find("\"sha256\": \"").unwrap() + 11;
        let mut edited = text.clone();
        edited.replace_range(at..at + 1, if &text[at..at + 1] == "0" { "1" } else { "0" });
        put(repo, index, "latest.json", edited.as_bytes());
    });
    let run = verify(&env, &[]);
    expect_problems(
        &run,
        &[format!(
            "verify: {} latest.json: does not match its commit's tree: does not match the files of the snapshot it names",
            short(&tampered)
        )],
    );
    let env = host_with_snapshots(1);
    let garbage = commit_keeping_index(&env, "break the index", |repo, index| {
        put(repo, index, "latest.json", b"{\"snapshot_dir\": 5}");
    });
    let run = verify(&env, &[]);
    run.expect_code(65);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with(&format!("verify: {} latest.json: ", short(&garbage))))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("is a required property")),
        "{}",
        run.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("does not match its commit's tree")),
        "{}",
        run.stderr
    );
}
