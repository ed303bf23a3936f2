//! `restore` end to end: real clones made by `push --no-push` from the conformance cases, the
//! real binary restoring them, and `export` of the restored database compared byte for byte.

use std::path::{Path, PathBuf};

use crate::support::git;
use crate::support::host::Host;
use crate::support::testenv::{set_key, tree, Case, Run};

/// The seven files of a snapshot.
const FILE_NAMES: [&str; 7] = [
    "meta.json",
    "identities.json",
    "scores.json",
    "contributors.json",
    "roles.json",
    "issue_requests.json",
    "notifications.json",
];
use rusqlite::{Connection, OpenFlags};

/// The files a restored database must give back exactly (contributors cannot be restored).
const ROUND_TRIP: [&str; 6] = [
    "meta.json",
    "identities.json",
    "scores.json",
    "roles.json",
    "issue_requests.json",
    "notifications.json",
];

/// What the restore tests do on a [`Host`] made with [`Host::for_case`].
trait RestoreHost {
    fn push_offline(&self, case: &Case, clone: &str);
    fn restore(&self, clone: &str, snapshot: &str, to: &str) -> Run;
    fn export(&self, case: &Case, db: &Path, out: &str) -> Vec<(String, Vec<u8>)>;
}

impl RestoreHost for Host {
    /// `push --no-push` of `case`'s state (its run id and time) into clone `clone`, with the
    /// backup off: these tests restore from the snapshot's own files, as restore does for a
    /// snapshot older than the backup (tests/it/backup.rs restores from backups).
    fn push_offline(&self, case: &Case, clone: &str) {
        let config = self.env.write(
            "config.no-backup.yaml",
            set_key(&case.config_text(), "snapshots", "backup", "false"),
        );
        let args = [
            "push",
            "--config",
            &config.display().to_string(),
            "--state-db",
            &case.state_db().display().to_string(),
            "--roles-file",
            &case.roles().display().to_string(),
            "--clone-dir",
            clone,
            "--run-id",
            &case.run_id,
            "--at",
            &case.at,
            "--no-push",
        ];
        self.env.run(args).expect_code(0);
    }

    fn restore(&self, clone: &str, snapshot: &str, to: &str) -> Run {
        self.env.run([
            "restore",
            "--config",
            "config.yaml",
            "--clone-dir",
            clone,
            "--snapshot",
            snapshot,
            "--to",
            to,
        ])
    }

    /// `export` from `db` with `case`'s roles, run id and time; returns the snapshot's files.
    fn export(&self, case: &Case, db: &Path, out: &str) -> Vec<(String, Vec<u8>)> {
        let mut args = case.export_args();
        let i = args.iter().position(|a| a == "--state-db").unwrap() + 1;
        args[i] = db.display().to_string();
        args.extend(["--out".into(), self.env.path(out).display().to_string()]);
        self.env.run(&args).expect_code(0);
        files_of(&self.env.path(out).join(&case.snapshot_dir))
    }
}

/// The files directly in `dir`, as (name, bytes), sorted by name.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that every round-trip file of `got` equals the one in `want`, byte for byte.
fn assert_round_trip(label: &str, want: &[(String, Vec<u8>)], got: &[(String, Vec<u8>)]) {
    for name in ROUND_TRIP {
        let w = &want
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{label}: {name} missing"))
            .1;
        let g = &got
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{label}: {name} not exported"))
            .1;
        assert!(
            w == g,
            "{label}: {name} differs after the round trip:\n{}",
            String::from_utf8_lossy(g)
        );
    }
}

/// `sqlite_master` as (type, name, tbl_name, sql), in creation order: what `.schema` prints.
fn schema(db: &Path) -> Vec<(String, String, String, Option<String>)> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `sqlite3 DB .schema`: Gitcord's own view of the schema. The `sqlite3` CLI is a test
/// dependency (scripts/install-test-deps.sh installs it): missing, the test fails.
fn sqlite3_schema(db: &Path) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(".schema")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run sqlite3 ({e}); run scripts/install-test-deps.sh to install it")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// The acceptance test: for each case, push, restore `latest`, export the restored database
/// and get the snapshot's files back; the schema is Gitcord's, and nothing else is left.
#[test]
fn restore_then_export_gives_the_snapshot_back_byte_for_byte() {
    for name in ["basic", "many", "unicode"] {
        let host = Host::for_case(name);
        host.push_offline(&host.case, "clone");
        let run = host.restore("clone", "latest", "restored/state.db");
        run.expect_code(0);
        let db = host.env.path("restored/state.db");
        assert_eq!(run.stdout, "restored/state.db\n", "{name}");
        assert_eq!(
            names_in(&host.env.path("restored")),
            ["state.db"],
            "{name}: no temporary or -journal file"
        );
        assert_eq!(
            run.stderr
                .matches("contributions cannot be restored")
                .count(),
            1,
            "{name}: {}",
            run.stderr
        );

        // The snapshot as committed (the clone's view of the newest one) equals the reference.
        let snapshot = files_of(&host.env.path("clone").join(&host.case.snapshot_dir));
        assert_eq!(snapshot, files_of(&host.case.expected_dir()), "{name}");
        let exported = host.export(&host.case, &db, "out");
        assert_round_trip(name, &snapshot, &exported);

        assert_eq!(
            schema(&db),
            schema(&host.case.state_db()),
            "{name}: sqlite_master"
        );
        assert_eq!(
            sqlite3_schema(&db),
            sqlite3_schema(&host.case.state_db()),
            "{name}: .schema"
        );
        let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        for table in ["contributions", "cursors", "sqlite_sequence"] {
            assert_eq!(count(&conn, table), 0, "{name}: {table}");
        }
    }
}

#[test]
fn restored_rows_look_as_gitcord_writes_them() {
    let host = Host::for_case("unicode");
    host.push_offline(&host.case, "clone");
    host.restore("clone", "latest", "state2.db").expect_code(0);
    let conn =
        Connection::open_with_flags(host.env.path("state2.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let at = "2025-06-15T23:59:59.123456+00:00";
    let mut stmt = conn
        .prepare(
            "SELECT discord_user_id, github_user, verified, verification_code, expires_at, created_at, verified_at, \
             unlinked_at, github_user_normalized FROM identity_links ORDER BY discord_user_id",
        )
        .unwrap();
    type Link = (
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
        String,
        String,
        Option<String>,
        String,
    );
    let links: Vec<Link> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let link = |d: &str, g: &str, n: &str| -> Link {
        (
            d.into(),
            g.into(),
            1,
            None,
            None,
            at.into(),
            at.into(),
            None,
            n.into(),
        )
    };
    assert_eq!(
        links,
        [
            link("10", "åsa", "åsa"),
            link("111", "zoë", "zoë"),
            link("2", "Zed", "zed")
        ]
    );
    let updated: Vec<String> = conn
        .prepare("SELECT DISTINCT updated_at FROM scores")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(updated, [at]);
    // SQLite types survive (INTEGER stays INTEGER, TEXT stays TEXT, NULL stays NULL): the same
    // as in Gitcord's database for every restored row.
    let original =
        Connection::open_with_flags(host.case.state_db(), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let types = |conn: &Connection| -> Vec<String> {
        conn.prepare(
            "SELECT request_id || ':' || typeof(issue_number) FROM issue_requests WHERE status = 'pending' \
             UNION ALL SELECT dedupe_key || ':' || typeof(channel_id) || typeof(target) FROM notifications_sent \
             UNION ALL SELECT github_user || ':' || typeof(points) FROM scores ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let restored = types(&conn);
    assert!(
        restored.iter().any(|t| t.ends_with(":nulltext"))
            && restored.iter().any(|t| t.ends_with(":texttext"))
    );
    assert_eq!(restored, types(&original));
    let status: String = conn
        .query_row(
            "SELECT group_concat(DISTINCT status) FROM issue_requests",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "pending");
}

#[test]
fn latest_tilde_n_and_names_pick_older_snapshots() {
    let host = Host::for_case("basic");
    let many = Case::load("many");
    host.push_offline(&host.case, "clone");
    host.push_offline(&many, "clone");
    // latest~1 is basic's snapshot (many's is newer).
    host.restore("clone", "latest~1", "previous.db")
        .expect_code(0);
    let exported = host.export(&host.case, &host.env.path("previous.db"), "out1");
    assert_round_trip("latest~1", &files_of(&host.case.expected_dir()), &exported);
    // A name works as well, and latest is many's.
    let name = host.case.snapshot_dir.trim_start_matches("snapshots/");
    host.restore("clone", name, "named.db").expect_code(0);
    assert_eq!(
        std::fs::read(host.env.path("named.db")).unwrap(),
        std::fs::read(host.env.path("previous.db")).unwrap()
    );
    host.restore("clone", "latest", "latest.db").expect_code(0);
    let exported = host.export(&many, &host.env.path("latest.db"), "out2");
    assert_round_trip("latest", &files_of(&many.expected_dir()), &exported);
}

#[test]
fn an_existing_file_is_never_overwritten() {
    let host = Host::for_case("basic");
    host.push_offline(&host.case, "clone");
    let existing = host.env.write("keep/state.db", b"precious bytes");
    let run = host.restore("clone", "latest", "keep/state.db");
    run.expect_error(73, &["keep/state.db", "already exists"]);
    assert_eq!(std::fs::read(&existing).unwrap(), b"precious bytes");
    assert_eq!(names_in(&host.env.path("keep")), ["state.db"]);
    assert!(run.stdout.is_empty());
    // A dangling symlink counts as existing too: it would be followed.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("nowhere.db", host.env.path("keep/link.db")).unwrap();
        host.restore("clone", "latest", "keep/link.db")
            .expect_error(73, &["keep/link.db"]);
        assert!(!host.env.path("keep/nowhere.db").exists());
    }
}

#[test]
fn an_unknown_snapshot_is_refused_clearly() {
    let host = Host::for_case("basic");
    host.push_offline(&host.case, "clone");
    for spec in ["2099-01-01T00-00-00-deadbeef", "latest~1", "latest~x"] {
        let run = host.restore("clone", spec, "out/state.db");
        assert_ne!(run.code, 0);
        run.expect_error(run.code, &["no snapshot", spec]);
        assert!(!host.env.path("out/state.db").exists());
    }
    // No clone at all: say how to make one.
    host.restore("missing-clone", "latest", "out/state.db")
        .expect_error(66, &["no clone", "missing-clone", "git clone --bare"]);
}

/// A snapshot's files as `commit_snapshot` takes them.
type Files = Vec<(&'static str, Vec<u8>)>;

/// Commits `files` as snapshot `name` on top of the clone's `main`, with plain git: a damaged
/// or foreign snapshot, as another tool would write it.
fn commit_snapshot(clone: &Path, name: &str, files: Files) {
    let repo = git2::Repository::open_bare(clone.join(".git")).unwrap();
    let tip = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    let mut index = git2::Index::new().unwrap();
    index.read_tree(&tip.tree().unwrap()).unwrap();
    for (file, bytes) in &files {
        crate::support::git::put(
            &repo,
            &mut index,
            &format!("snapshots/{name}/{file}"),
            bytes,
        );
    }
    let tree = repo.find_tree(index.write_tree_to(&repo).unwrap()).unwrap();
    let sig = git2::Signature::new(
        "test",
        "test@example.invalid",
        &git2::Time::new(1_893_456_000, 0),
    )
    .unwrap();
    repo.commit(Some("refs/heads/main"), &sig, &sig, "test", &tree, &[&tip])
        .unwrap();
}

/// The `basic` snapshot's files with `file` replaced by `edit(file's text)`.
fn edited(case: &Case, file: &str, edit: impl Fn(String) -> String) -> Files {
    FILE_NAMES
        .iter()
        .map(|n| {
            let bytes = std::fs::read(case.expected_dir().join(n)).unwrap();
            let bytes = if *n == file {
                edit(String::from_utf8(bytes).unwrap()).into_bytes()
            } else {
                bytes
            };
            (*n, bytes)
        })
        .collect()
}

#[test]
fn a_malformed_snapshot_exits_65_naming_the_file_and_leaves_nothing() {
    let host = Host::for_case("basic");
    host.push_offline(&host.case, "clone");
    let clone = host.env.path("clone");
    let cases: Vec<(&str, Files, &[&str])> = vec![
        (
            "points as text",
            edited(&host.case, "scores.json", |t| {
                t.replace("\"points\": 150", "\"points\": \"150\"")
            }),
            &["scores.json", "data[0].points"],
        ),
        (
            "unknown column",
            edited(&host.case, "identities.json", |t| {
                t.replace("\"github_user\"", "\"gh_user\"")
            }),
            &["identities.json", "data[0]"],
        ),
        (
            "not JSON",
            edited(&host.case, "notifications.json", |t| {
                t[..t.len() / 2].to_owned()
            }),
            &["notifications.json"],
        ),
        (
            "missing channel_id",
            edited(&host.case, "notifications.json", |t| {
                t.replacen("\"channel_id\": null,", "", 1)
            }),
            &["notifications.json", "channel_id"],
        ),
        (
            "repeated key",
            edited(&host.case, "scores.json", |t| {
                t.replace("\"github_user\": \"bob\"", "\"github_user\": \"alice\"")
            }),
            &["scores.json", "data[1]", "repeats"],
        ),
        (
            "no data",
            edited(&host.case, "issue_requests.json", |t| {
                t.replace("\"data\"", "\"rows\"")
            }),
            &["issue_requests.json", "data"],
        ),
        (
            "other generated_at",
            edited(&host.case, "scores.json", |t| {
                t.replace(
                    "2024-01-31T12:00:00+00:00\",\n  \"org",
                    "2024-01-31T13:00:00+00:00\",\n  \"org",
                )
            }),
            &["scores.json", "generated_at"],
        ),
    ];
    for (i, (what, files, fragments)) in cases.into_iter().enumerate() {
        let name = format!("2030-01-01T00-00-{i:02}-bad{i:05}");
        commit_snapshot(&clone, &name, files);
        let run = host.restore("clone", &name, "restored/state.db");
        run.expect_error(65, fragments);
        let dir = host.env.path("restored");
        assert!(
            !dir.exists() || names_in(&dir).is_empty(),
            "{what}: left {:?}",
            names_in(&dir)
        );
    }
}

#[test]
fn the_clone_is_not_changed_by_a_restore() {
    let host = Host::for_case("basic");
    host.push_offline(&host.case, "clone");
    let before = tree(&host.env.path("clone"));
    host.restore("clone", "latest", "state.restored.db")
        .expect_code(0);
    assert_eq!(tree(&host.env.path("clone")), before);
}

/// When the host lost the clone too: a bare clone of the data repository is all restore needs.
#[test]
fn a_fresh_bare_clone_of_the_data_repository_works() {
    let host = Host::for_case("basic");
    host.push_offline(&host.case, "clone");
    let fresh: PathBuf = host.env.path("fresh/.git");
    let out = git::command()
        .args(["clone", "--quiet", "--bare"])
        .arg(host.env.path("clone/.git"))
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    host.restore("fresh", "latest", "state.db.new")
        .expect_code(0);
    let exported = host.export(&host.case, &host.env.path("state.db.new"), "out");
    assert_round_trip(
        "fresh clone",
        &files_of(&host.case.expected_dir()),
        &exported,
    );
}
