//! `export` end to end: the real binary on real Gitcord databases.

use std::time::{Duration, Instant};

use crate::support::net::HeldPort;
use crate::support::testenv::{set_key, tree, Case, TestEnv};

/// Every conformance case, byte for byte, with the snapshot path on stdout.
#[test]
fn every_conformance_case_is_reproduced_byte_for_byte() {
    let cases = Case::all();
    assert!(
        cases.len() >= 5,
        "conformance cases missing: {}",
        cases.len()
    );
    for case in cases {
        let env = TestEnv::new();
        let out = env.path("out");
        let mut args = case.export_args();
        args.extend(["--out".into(), out.display().to_string()]);
        let run = env.run(&args);
        run.expect_code(0);
        let written = out.join(&case.snapshot_dir);
        assert_eq!(
            run.stdout,
            format!("{}\n", written.display()),
            "{}",
            case.name
        );
        let want = tree(&case.dir.join("expected"));
        let got = tree(&out);
        assert_eq!(want.len(), 7, "{}", case.name);
        let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want), "{}: file set", case.name);
        for ((name, want), (_, got)) in want.iter().zip(&got) {
            assert!(
                want == got,
                "{}: {name} differs:\n{}",
                case.name,
                String::from_utf8_lossy(got)
            );
        }
    }
}

#[test]
fn an_offset_in_at_is_converted_to_utc() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let mut args = case.export_args();
    let at = args.iter().position(|a| a == "--at").unwrap() + 1;
    args[at] = "2024-01-31T14:00:00+02:00".into();
    args.extend(["--out".into(), env.path("out").display().to_string()]);
    env.run(&args).expect_code(0);
    assert_eq!(tree(&env.path("out")), tree(&case.dir.join("expected")));
}

#[test]
fn the_database_is_left_exactly_as_it_was() {
    let case = Case::load("many");
    let env = TestEnv::new();
    let dir = env.copy_case(&case, "gitcord");
    let before = std::fs::read(dir.join("state.db")).unwrap();
    let mut args = case.export_args();
    let db = args.iter().position(|a| a == "--state-db").unwrap() + 1;
    args[db] = dir.join("state.db").display().to_string();
    args.extend(["--out".into(), env.path("out").display().to_string()]);
    env.run(&args).expect_code(0);
    assert_eq!(std::fs::read(dir.join("state.db")).unwrap(), before);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["config.yaml", "roles.json", "state.db"],
        "no -journal/-wal/-shm left behind"
    );
}

#[test]
fn defaults_come_from_the_config_relative_to_the_working_directory() {
    // data_dir "." and snapshots.roles_file, resolved against the working directory as Gitcord does.
    let case = Case::load("basic");
    let env = TestEnv::new();
    env.copy_case(&case, ".");
    let config = std::fs::read_to_string(case.config()).unwrap() + "  roles_file: \"roles.json\"\n";
    env.write("config.yaml", config);
    let run = env.run([
        "export",
        "--config",
        "config.yaml",
        "--run-id",
        &case.run_id,
        "--at",
        &case.at,
        "--out",
        "out",
    ]);
    run.expect_code(0);
    assert_eq!(tree(&env.path("out")), tree(&case.dir.join("expected")));
}

#[test]
fn without_run_id_and_at_a_fresh_uuid_and_now_are_used() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let args = |out: &str| {
        let mut a: Vec<String> = case.export_args()[..7].to_vec();
        a.extend(["--out".into(), out.into()]);
        a
    };
    let first = env.run(args("out"));
    first.expect_code(0);
    let second = env.run(args("out"));
    second.expect_code(0);
    assert_ne!(first.stdout, second.stdout, "two runs, two run ids");
    let dir = env.dir.path().join(first.stdout.trim());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    let run_id = meta["run_id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(run_id).unwrap().get_version_num(), 4);
    assert!(dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .ends_with(&run_id[..8]));
    let generated = meta["generated_at"].as_str().unwrap();
    let t = chrono::DateTime::parse_from_rfc3339(generated).unwrap();
    assert!(
        (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
            .num_seconds()
            .abs()
            < 60
    );
    assert!(generated.ends_with("+00:00"));
}

fn export_basic(
    env: &TestEnv,
    change: impl FnOnce(&mut Vec<String>),
) -> crate::support::testenv::Run {
    let case = Case::load("basic");
    let mut args = case.export_args();
    args.extend(["--out".into(), env.path("out").display().to_string()]);
    change(&mut args);
    env.run(&args)
}

fn set_flag(args: &mut [String], flag: &str, value: String) {
    let i = args.iter().position(|a| a == flag).unwrap() + 1;
    args[i] = value;
}

fn assert_nothing_written(env: &TestEnv) {
    assert!(
        tree(&env.path("out")).is_empty(),
        "something was written: {:?}",
        tree(&env.path("out"))
    );
}

#[test]
fn a_missing_database_is_named_and_exits_66() {
    let env = TestEnv::new();
    let missing = env.path("nowhere/state.db");
    let run = export_basic(&env, |a| {
        set_flag(a, "--state-db", missing.display().to_string())
    });
    run.expect_error(66, &["does not exist", "nowhere/state.db"]);
    assert_nothing_written(&env);
    assert!(!missing.exists(), "the database must not be created");
}

#[test]
fn a_corrupt_database_exits_65() {
    let env = TestEnv::new();
    let junk = env.write(
        "state.db",
        "this is not an sqlite database, just text ".repeat(200),
    );
    let run = export_basic(&env, |a| {
        set_flag(a, "--state-db", junk.display().to_string())
    });
    run.expect_error(65, &["corrupt or not an SQLite database", "state.db"]);
    assert_nothing_written(&env);
}

#[test]
fn a_database_of_another_application_exits_65() {
    let env = TestEnv::new();
    let db = env.path("other.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let run = export_basic(&env, |a| {
        set_flag(a, "--state-db", db.display().to_string())
    });
    run.expect_error(65, &["no table", "Gitcord"]);
    assert_nothing_written(&env);
}

#[test]
fn an_older_gitcord_database_exports_with_one_warning_per_missing_part() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let dir = env.copy_case(&case, "old");
    let conn = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    conn.execute_batch(
        "DROP TABLE issue_requests; DROP TABLE notifications_sent;
         DROP INDEX idx_identity_links_discord_github_norm;
         ALTER TABLE identity_links DROP COLUMN unlinked_at;
         ALTER TABLE identity_links DROP COLUMN github_user_normalized;",
    )
    .unwrap();
    drop(conn);
    let run = export_basic(&env, |a| {
        set_flag(a, "--state-db", dir.join("state.db").display().to_string())
    });
    run.expect_code(0);
    for part in [
        "issue_requests",
        "notifications_sent",
        "unlinked_at",
        "github_user_normalized",
    ] {
        let n = run
            .stderr
            .lines()
            .filter(|l| l.contains("warn") && l.contains(part))
            .count();
        assert_eq!(n, 1, "one warning naming {part}:\n{}", run.stderr);
    }
    let out = env.path("out").join(&case.snapshot_dir);
    let data = |f: &str| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(out.join(f)).unwrap()).unwrap()
            ["data"]
            .clone()
    };
    assert_eq!(data("issue_requests.json"), serde_json::json!([]));
    assert_eq!(data("notifications.json"), serde_json::json!([]));
    let expected = std::fs::read(case.expected_dir().join("identities.json")).unwrap();
    assert_eq!(
        std::fs::read(out.join("identities.json")).unwrap(),
        expected
    );
}

/// Holds an exclusive lock on `db`, as Gitcord does while it commits, until dropped.
struct Locker(rusqlite::Connection);

impl Locker {
    fn lock(db: &std::path::Path) -> Locker {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        Locker(conn)
    }
}

#[test]
fn a_lock_held_too_long_exits_75_and_writes_nothing() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let dir = env.copy_case(&case, "locked");
    let db = dir.join("state.db");
    let _lock = Locker::lock(&db);
    let started = Instant::now();
    let run = export_basic(&env, |a| {
        set_flag(a, "--state-db", db.display().to_string());
        a.extend(["--busy-timeout".into(), "0.5".into()]);
    });
    run.expect_error(75, &["locked", "try again"]);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it should wait for the lock first"
    );
    assert_nothing_written(&env);
}

#[test]
fn a_lock_released_within_the_timeout_is_waited_out() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let dir = env.copy_case(&case, "locked");
    let db = dir.join("state.db");
    let lock = Locker::lock(&db);
    let mut args = case.export_args();
    set_flag(&mut args, "--state-db", db.display().to_string());
    args.extend([
        "--out".into(),
        env.path("out").display().to_string(),
        "--busy-timeout".into(),
        "20".into(),
    ]);
    let child = env
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    lock.0.execute_batch("COMMIT").unwrap();
    drop(lock);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree(&env.path("out")), tree(&case.dir.join("expected")));
}

#[test]
fn an_unset_variable_is_named_only_when_the_run_needs_it() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let config = std::fs::read_to_string(case.config()).unwrap();
    // DISCORD_TOKEN is not needed when roles come from a file.
    let unneeded = config.replace(
        "discord_conformance_not_a_real_token",
        "${GITCORD_TEST_UNSET_DISCORD}",
    );
    let path = env.write("unneeded.yaml", unneeded);
    let run = export_basic(&env, |a| {
        set_flag(a, "--config", path.display().to_string())
    });
    run.expect_code(0);

    let needed = config.replace("org: \"my-org\"", "org: \"${GITCORD_TEST_UNSET_ORG}\"");
    let path = env.write("needed.yaml", needed);
    std::fs::remove_dir_all(env.path("out")).unwrap();
    let run = export_basic(&env, |a| {
        set_flag(a, "--config", path.display().to_string())
    });
    run.expect_error(
        78,
        &[
            "needed.yaml",
            "github.org",
            "GITCORD_TEST_UNSET_ORG",
            "not set",
        ],
    );
    assert_nothing_written(&env);

    let run = env.run_with(
        {
            let mut a = case.export_args();
            set_flag(&mut a, "--config", path.display().to_string());
            a.extend(["--out".into(), env.path("out").display().to_string()]);
            a
        },
        &[("GITCORD_TEST_UNSET_ORG", Some("my-org"))],
    );
    run.expect_code(0);
    assert_eq!(
        tree(&env.path("out")),
        tree(&case.dir.join("expected")),
        "expanded from the environment"
    );
}

#[test]
fn bad_yaml_names_file_line_and_column() {
    let env = TestEnv::new();
    let path = env.write(
        "gitcord.yaml",
        "github:\n  org: \"my-org\"\n  token: [oops\nscoring: {}\n",
    );
    let run = export_basic(&env, |a| {
        set_flag(a, "--config", path.display().to_string())
    });
    run.expect_error(78, &["gitcord.yaml", "line ", "column "]);
    assert_nothing_written(&env);
}

#[test]
fn a_wrong_type_names_the_key_path() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let config = std::fs::read_to_string(case.config())
        .unwrap()
        .replace("period_days: 30", "period_days: monthly");
    let path = env.write("gitcord.yaml", config);
    let run = export_basic(&env, |a| {
        set_flag(a, "--config", path.display().to_string())
    });
    run.expect_error(78, &["gitcord.yaml", "scoring.period_days", "monthly"]);
    assert_nothing_written(&env);
}

#[test]
fn a_missing_config_exits_78() {
    let env = TestEnv::new();
    let run = export_basic(&env, |a| set_flag(a, "--config", "no-such.yaml".into()));
    run.expect_error(78, &["no-such.yaml"]);
}

#[test]
fn bad_at_and_run_id_are_usage_errors() {
    for (flag, value) in [
        ("--at", "2024-01-31 noon"),
        ("--at", "2024-01-31T12:00:00"),
        ("--run-id", "../../etc"),
    ] {
        let env = TestEnv::new();
        let run = export_basic(&env, |a| set_flag(a, flag, value.into()));
        run.expect_error(64, &[flag, value]);
        assert_nothing_written(&env);
    }
}

#[test]
fn roles_file_problems_are_named() {
    let env = TestEnv::new();
    let bad = env.write("roles.json", r#"{"123": "Maintainer"}"#);
    let run = export_basic(&env, |a| {
        set_flag(a, "--roles-file", bad.display().to_string())
    });
    run.expect_error(65, &["roles.json", "is not a", "object"]);
    assert_nothing_written(&env);

    let run = export_basic(&env, |a| {
        set_flag(
            a,
            "--roles-file",
            env.path("none.json").display().to_string(),
        )
    });
    run.expect_error(66, &["none.json"]);
    assert_nothing_written(&env);

    // No roles file: the roles come from Discord, here a port held closed (never the internet).
    let held = HeldPort::closed();
    let closed = held.addr();
    let config = set_key(
        &Case::load("basic").config_text(),
        "discord",
        "api_base",
        &format!("http://{closed}/api/v10"),
    );
    let config = env.write("closed.yaml", config);
    let run = export_basic(&env, |a| {
        let i = a.iter().position(|x| x == "--roles-file").unwrap();
        a.drain(i..i + 2);
        set_flag(a, "--config", config.display().to_string());
    });
    run.expect_error(69, &["cannot reach Discord", &closed.to_string()]);
    assert_nothing_written(&env);
}

#[test]
fn an_existing_snapshot_directory_is_never_overwritten() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let existing = env.write(&format!("out/{}/meta.json", case.snapshot_dir), "precious");
    let run = export_basic(&env, |_| {});
    run.expect_error(73, &["already exists", &case.snapshot_dir]);
    assert_eq!(std::fs::read(&existing).unwrap(), b"precious");
    assert_eq!(tree(&env.path("out")).len(), 1, "nothing added beside it");
}

#[test]
fn an_invalid_payload_is_a_data_error_naming_the_row() {
    let case = Case::load("difficulty");
    let env = TestEnv::new();
    let dir = env.copy_case(&case, "bad");
    rusqlite::Connection::open(dir.join("state.db"))
        .unwrap()
        .execute_batch("UPDATE contributions SET payload_json = '{broken' WHERE id = 3")
        .unwrap();
    let mut args = case.export_args();
    set_flag(
        &mut args,
        "--state-db",
        dir.join("state.db").display().to_string(),
    );
    args.extend(["--out".into(), env.path("out").display().to_string()]);
    env.run(&args)
        .expect_error(65, &["contributions row 3", "payload_json"]);
    assert_nothing_written(&env);
}

#[test]
fn help_and_version_exit_0_and_unknown_flags_exit_64() {
    let env = TestEnv::new();
    let run = env.run(["--help"]);
    run.expect_code(0);
    assert!(run.stdout.contains("export"));
    env.run(["--version"]).expect_code(0);
    env.run(["export", "--bogus"])
        .expect_error(64, &["--bogus"]);
    env.run(["export"]).expect_error(64, &["--config", "--out"]);
}

/// A database large enough for many chunks, with duplicates (5%) and difficulty labels, read
/// on one, two and three threads: the same bytes every time, and the counts a `SELECT
/// DISTINCT` gives, computed here by SQLite itself.
#[test]
fn reading_on_several_threads_writes_the_same_bytes_as_on_one() {
    let env = TestEnv::new();
    let (db, config, roles) = (
        env.path("state.db"),
        env.path("config.yaml"),
        env.path("roles.json"),
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gen-bench-db.py");
    let gen = std::process::Command::new("python3")
        .arg(script)
        .arg(&db)
        .args([
            "--contributions",
            "90000",
            "--users",
            "400",
            "--links",
            "300",
        ])
        .args([
            "--score-rows",
            "600",
            "--issue-requests",
            "40",
            "--notifications",
            "300",
        ])
        .args(["--roles", "300", "--dup-rate", "0.05", "--seed", "11", "-q"])
        .arg("--config-out")
        .arg(&config)
        .arg("--roles-out")
        .arg(&roles)
        .output()
        .expect("python3");
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    std::fs::write(
        &config,
        crate::support::testenv::loopback_config(&std::fs::read_to_string(&config).unwrap()),
    )
    .unwrap();
    let at = "2025-01-31T00:00:00+00:00";
    let export = |threads: &str, out: &str| {
        let args = [
            "-vv",
            "export",
            "--config",
            &config.display().to_string(),
            "--state-db",
            &db.display().to_string(),
            "--roles-file",
            &roles.display().to_string(),
            "--run-id",
            "00000000-0000-4000-8000-000000000009",
            "--at",
            at,
            "--out",
            &env.path(out).display().to_string(),
        ];
        let run = env.run_with(args, &[("GITCORD_SNAPSHOT_READ_THREADS", Some(threads))]);
        run.expect_code(0);
        let used = format!("on {threads} connection(s)");
        assert!(run.stderr.contains(&used), "{used} not in: {}", run.stderr);
        tree(&env.path(out))
    };
    let one = export("1", "one");
    assert_eq!(one.len(), 7);
    assert_eq!(export("2", "two"), one, "two threads");
    assert_eq!(export("3", "three"), one, "three threads");

    // The counts, from SQLite's own DISTINCT over the window.
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let dups: i64 = conn
        .query_row(
            "SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT github_user, event_type, repo, created_at, payload_json FROM contributions)) FROM contributions",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(dups > 1000, "the database has duplicates to remove: {dups}");
    let mut want = std::collections::BTreeMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT github_user, sum(event_type = 'issue_opened'), \
             sum(event_type IN ('pr_opened', 'pr_merged')), sum(event_type = 'pr_reviewed'), \
             sum(event_type = 'comment') FROM (SELECT DISTINCT github_user, event_type, repo, \
             created_at, payload_json FROM contributions WHERE created_at >= ?1 AND created_at <= ?2) \
             GROUP BY github_user",
        )
        .unwrap();
    let rows = stmt
        .query_map(["2025-01-01T00:00:00+00:00", at], |r| {
            Ok((
                r.get::<_, String>(0)?,
                [r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
            ))
        })
        .unwrap();
    for row in rows {
        let (user, counts) = row.unwrap();
        want.insert(user, counts);
    }
    let (_, contributors) = one
        .iter()
        .find(|(n, _)| n.ends_with("contributors.json"))
        .unwrap();
    let contributors: serde_json::Value = serde_json::from_slice(contributors).unwrap();
    let got: std::collections::BTreeMap<String, [i64; 4]> = contributors["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let n = |k: &str| s[k].as_i64().unwrap();
            let user = s["github_user"].as_str().unwrap().to_string();
            (
                user,
                [
                    n("issues_opened"),
                    n("prs_opened"),
                    n("prs_reviewed"),
                    n("comments"),
                ],
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_bad_thread_count_is_refused_before_anything_is_read() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let mut args = case.export_args();
    args.extend(["--out".into(), env.path("out").display().to_string()]);
    for bad in ["0", "many"] {
        let run = env.run_with(&args, &[("GITCORD_SNAPSHOT_READ_THREADS", Some(bad))]);
        run.expect_code(64);
        assert!(run.stderr.contains("--read-threads"), "{}", run.stderr);
        assert!(!env.path("out").exists());
    }
}
