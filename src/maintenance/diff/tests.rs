//! The diff's unit tests: comparisons of hand-made snapshots and their rendering. Apart from
//! `diff.rs` to keep that file about the comparison itself.

use super::*;

fn id(github: &str, discord: &str) -> Identity {
    Identity {
        github_user: github.into(),
        discord_user_id: discord.into(),
    }
}

fn score(user: &str, points: Number) -> Score {
    Score {
        github_user: user.into(),
        points,
    }
}

fn roles(user: &str, names: &[&str]) -> Roles {
    Roles {
        discord_user_id: user.into(),
        roles: names.iter().map(|&n| n.into()).collect(),
    }
}

fn request(json: &str) -> IssueRequest {
    let row: Map<String, Value> = serde_json::from_str(json).unwrap();
    let request_id = match &row["request_id"] {
        Value::String(s) => IdOrName(s.clone()),
        other => IdOrName(other.to_string()),
    };
    IssueRequest { request_id, row }
}

const HEADER: &str = r#""generated_at": "2024-01-31T12:00:00+00:00", "org": "o", "run_id": "r", "schema_version": "1.0.0""#;

fn file(name: &str, data: &str) -> (String, Vec<u8>) {
    (
        name.to_owned(),
        format!(r#"{{"data": {data}, {HEADER}}}"#).into_bytes(),
    )
}

fn files(
    identities: &str,
    scores: &str,
    contributors: &str,
    roles: &str,
    requests: &str,
) -> Vec<(String, Vec<u8>)> {
    let meta = format!(
        r#"{{"period_end": "2024-01-31T12:00:00+00:00", "period_start": "2024-01-01T12:00:00+00:00", {HEADER}}}"#
    );
    vec![
        ("meta.json".to_owned(), meta.into_bytes()),
        file("identities.json", identities),
        file("scores.json", scores),
        file("contributors.json", contributors),
        file("roles.json", roles),
        file("issue_requests.json", requests),
        file("notifications.json", "[]"),
    ]
}

#[test]
fn parses_ids_as_text_and_points_of_any_numeric_type() {
    let content = parse(
        "s",
        &files(
            r#"[{"github_user": "alice", "discord_user_id": 123}, {"github_user": "bob", "discord_user_id": "223"}]"#,
            r#"[{"github_user": "a", "points": 1, "period_end": "e", "period_start": "s"},
                {"github_user": "b", "points": 2.5, "period_end": "e", "period_start": "s"},
                {"github_user": "c", "points": " 7 ", "period_end": "e", "period_start": "s"}]"#,
            r#"[{"github_user": "a", "comments": 2, "issues_opened": 0, "prs_opened": 0, "prs_reviewed": 0,
                 "total_score": 0, "period_end": "e", "period_start": "s", "extra": true}]"#,
            r#"[{"discord_user_id": 1, "roles": ["x", 2]}]"#,
            r#"[{"request_id": 7, "issue_number": 42}]"#,
        ),
    )
    .unwrap();
    assert_eq!(content.identities, [id("alice", "123"), id("bob", "223")]);
    let points: Vec<String> = content
        .scores
        .iter()
        .map(|s| s.points.to_string())
        .collect();
    assert_eq!(points, ["1", "2.5", "7"]);
    assert_eq!(content.contributors[0].comments, Number::Int(2));
    assert_eq!(content.contributors[0].prs_opened, Number::Int(0));
    assert_eq!(
        content.roles[0].roles,
        [IdOrName::from("x"), IdOrName::from("2")]
    );
    assert_eq!(content.issue_requests[0].request_id, IdOrName::from("7"));
}

#[test]
fn bad_files_are_named_with_the_place_in_them() {
    let mut fs = files(
        "[]",
        r#"[{"github_user": "a", "points": "many", "period_end": "e", "period_start": "s"}]"#,
        "[]",
        "[]",
        "[]",
    );
    let err = parse("snap", &fs).unwrap_err().to_string();
    assert!(
        err.contains("snap") && err.contains("scores.json") && err.contains("data[0].points"),
        "{err}"
    );
    fs[2] = file("scores.json", "[]");
    fs[5] = file("issue_requests.json", r#"[{"status": "pending"}]"#);
    let err = parse("snap", &fs).unwrap_err().to_string();
    assert!(
        err.contains("issue_requests.json") && err.contains("data[0].request_id: missing"),
        "{err}"
    );
    fs[5] = file("issue_requests.json", r#"[{"request_id": null}]"#);
    let err = parse("snap", &fs).unwrap_err().to_string();
    assert!(err.contains("data[0].request_id: null"), "{err}");
    fs.remove(4);
    assert!(matches!(
        parse("snap", &fs),
        Err(DiffError::Invalid {
            file: "roles.json",
            ..
        })
    ));
}

#[test]
fn identities_are_compared_as_pairs() {
    let a = [id("alice", "1"), id("bob", "2")];
    let b = [id("alice", "1"), id("bob", "3"), id("carol", "4")];
    let c = identity_changes(&a, &b);
    assert_eq!(c.linked, [id("bob", "3"), id("carol", "4")]);
    assert_eq!(c.unlinked, [id("bob", "2")]);
    assert_eq!(identity_changes(&b, &b), IdentityChanges::default());
}

#[test]
fn scores_sort_by_absolute_change_then_name() {
    use Number::{Int, Real};
    let a = [
        score("alice", Int(150)),
        score("bob", Int(20)),
        score("gone", Int(5)),
        score("same", Int(3)),
    ];
    let b = [
        score("alice", Int(162)),
        score("bob", Real(8.0)),
        score("new", Int(30)),
        score("same", Real(3.0)),
    ];
    let got: Vec<(String, String)> = score_changes(&a, &b)
        .iter()
        .map(|s| (s.github_user.0.clone(), s.delta.signed()))
        .collect();
    let want = [
        ("new", "+30"),
        ("alice", "+12"),
        ("bob", "-12"),
        ("gone", "-5"),
    ];
    assert_eq!(got, want.map(|(u, d)| (u.to_owned(), d.to_owned())));
    let changes = score_changes(&a, &b);
    assert_eq!((changes[0].from, changes[0].to), (None, Some(Int(30))));
    assert_eq!((changes[3].from, changes[3].to), (Some(Int(5)), None));
    // Integer arithmetic never overflows into a panic.
    let big = score_changes(&[score("x", Int(i64::MIN))], &[score("x", Int(i64::MAX))]);
    assert!(matches!(big[0].delta, Real(_)));
}

#[test]
fn roles_are_multisets_per_user() {
    let a = SnapshotContent {
        roles: vec![
            roles("1", &["Contributor", "Maintainer"]),
            roles("2", &["A"]),
            roles("3", &[]),
        ],
        identities: vec![id("alice", "1")],
        ..Default::default()
    };
    let b = SnapshotContent {
        roles: vec![
            roles("1", &["Maintainer"]),
            roles("2", &["A", "A", "B"]),
            roles("4", &["C"]),
        ],
        identities: vec![id("bob", "2")],
        ..Default::default()
    };
    let c = role_changes(&a, &b);
    assert_eq!(c.len(), 3, "{c:?}"); // user 3 left with no roles: nothing to say
    assert_eq!(
        (c[0].gained.len(), c[0].lost.clone()),
        (0, vec![IdOrName::from("Contributor")])
    );
    assert_eq!(c[1].gained, [IdOrName::from("A"), IdOrName::from("B")]);
    assert_eq!(role_line(&c[0]), "1 (alice): -Contributor");
    assert_eq!(role_line(&c[1]), "2 (bob): +A, +B");
    assert_eq!(role_line(&c[2]), "4: +C");
    let more = SnapshotContent {
        roles: vec![roles("2", &["A", "A", "A"])],
        ..Default::default()
    };
    let back = role_changes(&more, &a);
    assert_eq!(role_line(&back[0]), "1 (alice): +Contributor, +Maintainer");
    assert_eq!(role_line(&back[1]), "2: -A ×2");
}

#[test]
fn requests_opened_and_resolved_by_id() {
    let r123 = request(
        r#"{"request_id": "req-123", "github_user": "alice", "owner": "o", "repo": "r", "issue_number": 42}"#,
    );
    let r124 = request(r#"{"request_id": "req-124", "issue_url": "https://x/1"}"#);
    let r125 = request(
        r#"{"request_id": "req-125", "github_user": "bob", "owner": "o", "repo": "r", "issue_number": "44"}"#,
    );
    let r126 = request(r#"{"request_id": 126}"#);
    let c = issue_request_changes(
        &[r123.clone(), r124.clone()],
        &[r124, r125.clone(), r126.clone()],
    );
    assert_eq!(c.opened, [r126, r125]);
    assert_eq!(c.resolved, [r123]);
    let lines: Vec<String> = c
        .opened
        .iter()
        .map(|r| r.line(false))
        .chain(c.resolved.iter().map(|r| r.line(true)))
        .collect();
    assert_eq!(
        lines,
        ["126", "req-125 bob o/r#44", "req-123 (alice o/r#42)"]
    );
}

#[test]
fn contributor_counts_that_changed() {
    let alice = Contributor {
        github_user: "alice".into(),
        comments: Number::Int(1),
        prs_opened: Number::Int(2),
        ..Default::default()
    };
    let alice2 = Contributor {
        comments: Number::Int(2),
        total_score: Number::Real(0.5),
        ..alice.clone()
    };
    let bob = Contributor {
        github_user: "bob".into(),
        prs_reviewed: Number::Int(1),
        ..Default::default()
    };
    let c = contributor_changes(&[alice.clone(), bob], &[alice2]);
    assert_eq!(c.len(), 2);
    assert_eq!(
        c[0].changes.keys().copied().collect::<Vec<_>>(),
        ["comments", "total_score"]
    );
    assert_eq!(
        c[1].changes["prs_reviewed"],
        FromTo {
            from: Number::Int(1),
            to: Number::Int(0)
        }
    );
    let same = std::slice::from_ref(&alice);
    assert!(contributor_changes(same, same).is_empty());
}

#[test]
fn the_report_has_every_section_even_when_nothing_changed() {
    let same = SnapshotContent::default();
    let c = compare("a", &same, "b", &same);
    assert!(c.is_empty());
    assert_eq!(
        c.to_text(),
        "Snapshots: a → b\nIdentities: no changes\nScores: no changes\nRoles: no changes\n\
         Issue requests: no changes\nContributors: no changes\n"
    );
}

#[test]
fn the_report_lists_each_change() {
    let a = SnapshotContent {
        identities: vec![id("alice", "1")],
        scores: vec![score("alice", Number::Int(150))],
        roles: vec![roles("1", &["X"])],
        issue_requests: vec![request(
            r#"{"request_id": "r1", "github_user": "alice\n", "issue_url": "u"}"#,
        )],
        ..Default::default()
    };
    let b = SnapshotContent {
        identities: vec![id("alice", "1"), id("bob", "2")],
        scores: vec![score("alice", Number::Int(162))],
        contributors: vec![Contributor {
            github_user: "bob".into(),
            comments: Number::Int(3),
            ..Default::default()
        }],
        ..Default::default()
    };
    let c = compare("a", &a, "b", &b);
    assert_eq!(
        c.to_text(),
        "Snapshots: a → b\n\
         Identities: 1 linked, 0 unlinked\n  + bob ↔ 2\n\
         Scores: 1 changed, 0 new, 0 gone\n  alice 150 → 162 (+12)\n\
         Roles: 0 gained, 1 lost\n  1 (alice): -X\n\
         Issue requests: 0 opened, 1 resolved\n  - r1 (alice\\n u)\n\
         Contributors: 1 changed\n  bob: comments 0 → 3\n"
    );
    let json: Value = serde_json::from_str(&c.to_json().unwrap()).unwrap();
    assert_eq!(
        json["identities"]["linked"],
        serde_json::json!([{"github_user": "bob", "discord_user_id": "2"}])
    );
    assert_eq!(
        json["scores"],
        serde_json::json!([{"github_user": "alice", "from": 150, "to": 162, "delta": 12}])
    );
    assert_eq!(json["issue_requests"]["resolved"][0]["issue_url"], "u");
    assert_eq!(json["issue_requests"]["opened"], serde_json::json!([]));
}
