//! `diff` end to end: the real binary on a clone holding two real snapshots, built with
//! `push --no-push` from the `basic` case's state before and after a day of Gitcord activity.

use crate::support::host::{at, run_id};
use crate::support::testenv::{Case, Run, TestEnv};

const A: &str = "2024-01-31T12-00-00-00000001";
const B: &str = "2024-01-31T13-00-00-00000002";

/// What changed between the two snapshots, as Gitcord would have written it to state.db.
const ACTIVITY: &str = "
    INSERT INTO identity_links (discord_user_id, github_user, verified, created_at, verified_at, github_user_normalized)
        VALUES ('523456789012345678', 'carol', 1, '2024-01-31T12:10:00+00:00', '2024-01-31T12:10:00+00:00', 'carol');
    UPDATE identity_links SET verified = 0, unlinked_at = '2024-01-31T12:20:00+00:00' WHERE github_user = 'bob';
    UPDATE scores SET points = 162 WHERE github_user = 'alice' AND period_end = '2024-01-31T12:00:00+00:00';
    UPDATE scores SET points = 50 WHERE github_user = 'bob' AND period_end = '2024-01-31T12:00:00+00:00';
    INSERT INTO scores VALUES ('dave', '2024-01-01T12:00:00+00:00', '2024-01-31T12:00:00+00:00', 12, '2024-01-31T12:30:00+00:00');
    UPDATE issue_requests SET status = 'approved' WHERE request_id = 'req-123';
    INSERT INTO issue_requests VALUES ('req-125', '223456789012345678', 'bob', 'my-org', 'my-repo', 44,
        'https://github.com/my-org/my-repo/issues/44', '2024-01-31T12:30:00+00:00', 'pending');
    INSERT INTO contributions (github_user, event_type, repo, created_at, payload_json)
        VALUES ('alice', 'comment', 'my-repo', '2024-01-31T12:30:00+00:00', '{\"issue_number\":44}');
";

const ROLES_AFTER: &str = r#"{
  "123456789012345678": ["Maintainer"],
  "223456789012345678": ["Mentor", "Contributor"],
  "523456789012345678": ["Contributor", "Contributor"]
}"#;

/// A Gitcord host whose clone (`clone/`) holds snapshot A, then snapshot B after [`ACTIVITY`].
fn host_with_two_snapshots() -> TestEnv {
    let env = TestEnv::new();
    env.copy_case(&Case::load("basic"), ".");
    env.write("roles-after.json", ROLES_AFTER);
    push(&env, 1, "roles.json").expect_code(0);
    let db = rusqlite::Connection::open(env.path("state.db")).unwrap();
    db.execute_batch(ACTIVITY).unwrap();
    drop(db);
    push(&env, 2, "roles-after.json").expect_code(0);
    env
}

/// `push --no-push` of snapshot `n`, taken `n - 1` hours after the `basic` case's time.
fn push(env: &TestEnv, n: u32, roles: &str) -> Run {
    env.run([
        "push",
        "--config",
        "config.yaml",
        "--roles-file",
        roles,
        "--clone-dir",
        "clone",
        "--run-id",
        &run_id(n),
        "--at",
        &at(n - 1),
        "--no-push",
    ])
}

fn diff(env: &TestEnv, args: &[&str]) -> Run {
    let mut all = vec!["diff", "--config", "config.yaml", "--clone-dir", "clone"];
    all.extend(args);
    env.run(all)
}

#[test]
fn the_report_tells_each_change_in_words() {
    let env = host_with_two_snapshots();
    let run = diff(&env, &["latest~1", "latest"]);
    run.expect_code(0);
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.stdout,
        format!(
            "Snapshots: {A} → {B}
Identities: 1 linked, 1 unlinked
  + carol ↔ 523456789012345678
  - bob ↔ 223456789012345678
Scores: 2 changed, 1 new, 0 gone
  bob 20 → 50 (+30)
  alice 150 → 162 (+12)
  dave (new) 12 (+12)
Roles: 3 gained, 1 lost
  123456789012345678 (alice): -Contributor
  223456789012345678 (bob): +Mentor
  523456789012345678 (carol): +Contributor ×2
Issue requests: 1 opened, 1 resolved
  + req-125 bob my-org/my-repo#44
  - req-123 (alice my-org/my-repo#42)
Contributors: 1 changed
  alice: comments 1 → 2
"
        )
    );
    // Names work as well as latest~N, and the order of the arguments is the direction.
    let by_name = diff(&env, &[A, B]);
    assert_eq!(by_name.expect_code(0).stdout, run.stdout);
    let back = diff(&env, &[B, A]);
    assert!(back
        .expect_code(0)
        .stdout
        .contains("  bob 50 → 20 (-30)\n  alice 162 → 150 (-12)\n  dave (gone) 12 (-12)\n"));
}

#[test]
fn the_same_snapshot_twice_has_no_changes() {
    let env = host_with_two_snapshots();
    let run = diff(&env, &["latest", B]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        format!(
            "Snapshots: {B} → {B}\nIdentities: no changes\nScores: no changes\nRoles: no changes\n\
             Issue requests: no changes\nContributors: no changes\n"
        )
    );
}

#[test]
fn json_holds_the_same_changes_as_structures() {
    let env = host_with_two_snapshots();
    let run = diff(&env, &["--json", "latest~1", "latest"]);
    run.expect_code(0);
    let got: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    let want = serde_json::json!({
        "from": A,
        "to": B,
        "identities": {
            "linked": [{"github_user": "carol", "discord_user_id": "523456789012345678"}],
            "unlinked": [{"github_user": "bob", "discord_user_id": "223456789012345678"}],
        },
        "scores": [
            {"github_user": "bob", "from": 20, "to": 50, "delta": 30},
            {"github_user": "alice", "from": 150, "to": 162, "delta": 12},
            {"github_user": "dave", "from": null, "to": 12, "delta": 12},
        ],
        "roles": [
            {"discord_user_id": "123456789012345678", "github_users": ["alice"], "gained": [], "lost": ["Contributor"]},
            {"discord_user_id": "223456789012345678", "github_users": ["bob"], "gained": ["Mentor"], "lost": []},
            {"discord_user_id": "523456789012345678", "github_users": ["carol"], "gained": ["Contributor", "Contributor"], "lost": []},
        ],
        "issue_requests": {
            "opened": [{
                "created_at": "2024-01-31T12:30:00+00:00",
                "discord_user_id": "223456789012345678",
                "github_user": "bob",
                "issue_number": 44,
                "issue_url": "https://github.com/my-org/my-repo/issues/44",
                "owner": "my-org",
                "repo": "my-repo",
                "request_id": "req-125",
                "status": "pending",
            }],
            "resolved": [{
                "created_at": "2024-01-30T10:00:00+00:00",
                "discord_user_id": "123456789012345678",
                "github_user": "alice",
                "issue_number": 42,
                "issue_url": "https://github.com/my-org/my-repo/issues/42",
                "owner": "my-org",
                "repo": "my-repo",
                "request_id": "req-123",
                "status": "pending",
            }],
        },
        "contributors": [{"github_user": "alice", "changes": {"comments": {"from": 1, "to": 2}}}],
    });
    assert_eq!(got, want, "{}", run.stdout);
}

#[test]
fn an_unknown_snapshot_is_a_usage_error_naming_it() {
    let env = host_with_two_snapshots();
    diff(&env, &["latest~2", "latest"]).expect_error(64, &["\"latest~2\""]);
    diff(&env, &["latest", "2023-01-01T00-00-00-deadbeef"])
        .expect_error(64, &["2023-01-01T00-00-00-deadbeef"]);
    assert_eq!(
        diff(&env, &["latest"]).code,
        64,
        "both snapshots are required"
    );
}

#[test]
fn a_missing_clone_is_missing_input() {
    let env = TestEnv::new();
    env.copy_case(&Case::load("basic"), ".");
    diff(&env, &["latest~1", "latest"]).expect_error(66, &["does not exist", "run push first"]);
}
